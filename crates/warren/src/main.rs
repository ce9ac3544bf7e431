//! `warren`: the server and its tools in one binary. Argument parsing and error reporting
//! live here; everything else is in the library crates.

mod bench;
mod data_tools;
mod import;
mod shell;
mod zookeeper;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "warren", version = server::VERSION, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server. Without a config file: standalone on 127.0.0.1:2181, data under ./data.
    Server {
        /// A ZooKeeper `zoo.cfg`; `myid` is read from its dataDir.
        config: Option<PathBuf>,
    },
    /// Measure a ZooKeeper-compatible server (Warren or ZooKeeper) under load.
    Bench(bench::BenchArgs),
    /// Import an Apache ZooKeeper 3.8 data directory (tree, ACLs, Stats, sessions).
    ImportZookeeper(import::ImportArgs),
    /// Warren's transaction log: `warren log dump [PATH]`.
    Log(data_tools::LogArgs),
    /// Warren's snapshots: `warren snapshot dump PATH`.
    Snapshot(data_tools::SnapshotArgs),
    /// Delete all but the newest snapshots and the log segments they need.
    Purge(data_tools::PurgeArgs),
    /// ZooKeeper's shell: `warren shell [-server HOST:PORT,...] [COMMAND ...]`, as zkCli.sh.
    #[command(disable_help_flag = true)]
    Shell {
        /// zkCli.sh's single-dash arguments (`-server`, `-timeout`, `-r`), then a command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // RUST_LOG wins; otherwise the server's `logLevel` from zoo.cfg, once it is read.
    let from_env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let (filter, level) = tracing_subscriber::reload::Layer::new(from_env.clone().unwrap_or_else(|| "info".into()));
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    match cli.command {
        Command::Server { config } => {
            // A panicking task (a bug) would leave a process that accepts connections and
            // serves nothing; the server stops instead, so that its ensemble goes on
            // without it and a supervisor restarts it.
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                report(info);
                tracing::error!("a task panicked; stopping the server");
                std::process::exit(70);
            }));
            run_server(config, |configured| {
                if from_env.is_none() {
                    let _ = level.modify(|filter| *filter = tracing_subscriber::EnvFilter::new(configured));
                }
            })
        }
        Command::Bench(args) => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench::run(args))
        }
        Command::ImportZookeeper(args) => import::run(args),
        Command::Log(args) => data_tools::log(args),
        Command::Snapshot(args) => data_tools::snapshot(args),
        Command::Purge(args) => data_tools::purge(args),
        Command::Shell { args } => std::process::exit(shell::run(args)?),
    }
}

fn run_server(path: Option<PathBuf>, set_log_level: impl FnOnce(&str)) -> anyhow::Result<()> {
    let config = data_tools::load_config(path.as_deref())?;
    if let Some(level) = &config.log_level {
        set_log_level(level);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating dataDir {}", config.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let address = (config.client_port_address, config.client_port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the client port {}:{}", address.0, address.1))?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("interrupted: shutting down");
        };
        server::run(config, listener, shutdown).await?;
        Ok(())
    })
}
