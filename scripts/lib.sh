# Shared by the benchmark scripts (sourced, not run): builds Warren, makes a temporary
# directory removed on exit together with every server started, and starts Warren and
# Apache ZooKeeper 3.8 (Debian package) standalone or in ensembles.
# Before sourcing, a script may set build_args (more packages or examples to build).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p warren ${build_args[@]+"${build_args[@]}"}
warren=$PWD/target/release/warren
tmp=$(mktemp -d)
pids=()
cleanup() { kill -9 ${pids[@]+"${pids[@]}"} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
zookeeper_classpath=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:$(ls /usr/share/java/slf4j-simple.jar 2>/dev/null || true)

# standalone_config <dataDir> <client port> [more zoo.cfg lines]: a standalone zoo.cfg.
standalone_config() {
  printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n%s\n' \
    "$1" "$2" "${3:-}"
}

# start <warren|zookeeper> <zoo.cfg> <log> [ZooKeeper's main class] [ZooKeeper's heap]:
# starts a server in the background; its pid is in $started and is killed on exit.
start() {
  if [ "$1" = warren ]; then
    "$warren" server "$2" 2>> "$3" &
  else
    java "-Xmx${5:-1000m}" -cp "$zookeeper_classpath" "${4:-org.apache.zookeeper.server.ZooKeeperServerMain}" "$2" >> "$3" 2>&1 &
  fi
  started=$!
  pids+=("$started")
}

# stop <pid>: kills a server, waits for it, and forgets it (its pid may be reused).
stop() {
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local kept=() pid
  for pid in ${pids[@]+"${pids[@]}"}; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  pids=(${kept[@]+"${kept[@]}"})
}

# wait_up <client port>: until the server there answers ruok (a minute at most).
wait_up() {
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$1),1); s.sendall(b'ruok'); sys.exit(0 if s.recv(4)==b'imok' else 1)" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "server on port $1 did not start" >&2
  exit 1
}
