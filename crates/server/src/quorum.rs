//! The connections between the servers of an ensemble.
//!
//! Each server listens on its quorum port and its election port, and keeps one outgoing
//! connection to each other member on each port (reconnecting while it is down). The
//! election port's connections carry ZAB's election notifications; the quorum port's carry
//! ZAB's ordered stream (synchronization, proposals, acks, commits, pings, and the
//! replicas' own messages relayed inside it: forwarded writes, syncs, session liveness). A
//! connection carries one direction only, so each is a plain FIFO pipe: what one server
//! writes on it reaches the other in order, or the connection breaks and ZAB sees the gap.
//!
//! On the wire, a connection starts with [`MAGIC`] and the sender's server id (u64); then
//! ZAB's frames follow (`zab::encode_frame`). Decoding happens here, on the connection's
//! task; the driver gets whole messages.

use crate::config::{Ensemble, Member};
use crate::driver::ToDriver;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use zab::{Message, ServerId};

/// Names the protocol's version too: a server of another version is refused at once
/// rather than misread (2: messages split over frames, a snapshot's length a u64).
const MAGIC: &[u8; 4] = b"WRN2";

/// Frames waiting for one connection; beyond this the newest are dropped (ZAB sees the
/// gap and synchronizes again), so a dead peer never holds more than this much memory.
const LINK_QUEUE: usize = 16 * 1024;

/// What arrives from another server.
#[derive(Debug)]
pub(crate) enum FromPeer {
    Zab {
        stream: (u64, u64),
        msg: Message,
    },
    /// The quorum connection from this server closed.
    Down,
}

/// The sending ends of the connections to the other members.
pub(crate) struct Links {
    election: BTreeMap<ServerId, Link>,
    quorum: BTreeMap<ServerId, Link>,
}

/// The sending end of one connection.
struct Link {
    frames: mpsc::Sender<Vec<u8>>,
    /// On an ordered (quorum) connection: told to drop the connection (a frame had to be
    /// dropped, or ZAB gave up on the peer), so that the peer sees it break at once.
    reset: Option<Arc<Notify>>,
}

impl Links {
    pub fn send_zab(&self, to: ServerId, stream: (u64, u64), msg: &Message) {
        let links = if stream.1 == 0 { &self.election } else { &self.quorum };
        Self::push(links, to, zab::encode_frame(stream, msg));
    }

    fn push(links: &BTreeMap<ServerId, Link>, to: ServerId, frame: Vec<u8>) {
        let Some(link) = links.get(&to) else { return };
        if link.frames.try_send(frame).is_err() {
            tracing::debug!(peer = to.0, "peer connection queue full: message dropped");
            if let Some(reset) = &link.reset {
                reset.notify_one();
            }
        }
    }

    /// Drops the ordered connection to `to` (it reconnects at once), so that the peer sees
    /// it go.
    pub fn reset(&self, to: ServerId) {
        if let Some(reset) = self.quorum.get(&to).and_then(|l| l.reset.as_ref()) {
            reset.notify_one();
        }
    }
}

/// Binds this server's quorum and election ports, and starts the connections to the
/// others. What arrives goes to the driver.
pub(crate) async fn start(me: u64, ensemble: &Ensemble, driver: mpsc::Sender<ToDriver>) -> std::io::Result<Links> {
    let own = ensemble.member(me).ok_or_else(|| std::io::Error::other("not a member"))?;
    let members: Vec<u64> = ensemble.members.iter().map(|m| m.id).collect();
    for (port, ordered) in [(own.quorum_port, true), (own.election_port, false)] {
        let listener = TcpListener::bind((own.host.as_str(), port)).await?;
        tracing::info!(address = %listener.local_addr()?, what = if ordered { "quorum" } else { "election" }, "listening for peers");
        tokio::spawn(accept(listener, members.clone(), ordered, driver.clone()));
    }
    let mut links = Links { election: BTreeMap::new(), quorum: BTreeMap::new() };
    for member in ensemble.members.iter().filter(|m| m.id != me) {
        for (port, ordered) in [(member.election_port, false), (member.quorum_port, true)] {
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            let reset = ordered.then(|| Arc::new(Notify::new()));
            tokio::spawn(dial(me, member.clone(), port, rx, reset.clone()));
            let map = if ordered { &mut links.quorum } else { &mut links.election };
            map.insert(ServerId(member.id), Link { frames: tx, reset });
        }
    }
    Ok(links)
}

async fn accept(listener: TcpListener, members: Vec<u64>, ordered: bool, driver: mpsc::Sender<ToDriver>) {
    // Numbers the connections, so that the driver tells an old connection's end from
    // the new connection that replaced it.
    for link in 1u64.. {
        let (stream, addr) = crate::accept(&listener, "peer").await;
        let (members, driver) = (members.clone(), driver.clone());
        tokio::spawn(async move {
            match receive(stream, link, &members, ordered, &driver).await {
                Ok(from) => tracing::debug!(%addr, peer = from, "peer connection closed"),
                Err(e) => tracing::info!(%addr, error = %e, "peer connection closed"),
            }
        });
    }
}

/// Reads one incoming connection until it closes; returns the sender's id.
async fn receive(
    mut stream: TcpStream,
    link: u64,
    members: &[u64],
    ordered: bool,
    driver: &mpsc::Sender<ToDriver>,
) -> std::io::Result<u64> {
    let _ = stream.set_nodelay(true);
    let mut hello = [0u8; 12];
    stream.read_exact(&mut hello).await?;
    let from = u64::from_be_bytes(hello[4..].try_into().unwrap_or_default());
    if &hello[..4] != MAGIC {
        return Err(std::io::Error::other("a peer that speaks another version of the protocol between servers"));
    }
    if !members.contains(&from) {
        return Err(std::io::Error::other("not a member of this ensemble"));
    }
    let result = read_frames(&mut stream, from, link, driver).await;
    if ordered {
        let _ = driver.send(ToDriver::Peer { from: ServerId(from), link, msg: FromPeer::Down }).await;
    }
    result.map(|()| from)
}

/// Reads frames until the connection closes, joins each message's frames, decodes it and
/// hands it to the driver.
async fn read_frames(
    stream: &mut (impl AsyncRead + Unpin),
    from: u64,
    link: u64,
    driver: &mpsc::Sender<ToDriver>,
) -> std::io::Result<()> {
    let invalid = |e: zab::WireError| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
    let mut stream = tokio::io::BufReader::with_capacity(64 << 10, stream);
    let mut body = Vec::new();
    loop {
        let mut prefix = [0u8; 4];
        match stream.read_exact(&mut prefix).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && body.is_empty() => return Ok(()),
            Err(e) => return Err(e),
        }
        let (len, more) = zab::frame_len(prefix).map_err(invalid)?;
        zab::check_body_growth(body.len(), len).map_err(invalid)?;
        let start = body.len();
        // Exactly: a snapshot's frames would otherwise reserve up to twice its size.
        body.reserve_exact(len);
        body.resize(start + len, 0);
        stream.read_exact(&mut body[start..]).await?;
        if more {
            continue;
        }
        let decoded = zab::decode_body(&body).map_err(invalid);
        body.clear();
        // A snapshot's worth of buffer is not kept for the small messages that follow.
        body.shrink_to(1 << 20);
        let (stream, msg) = decoded?;
        let msg = FromPeer::Zab { stream, msg };
        if driver.send(ToDriver::Peer { from: ServerId(from), link, msg }).await.is_err() {
            return Ok(());
        }
    }
}

/// Keeps one outgoing connection up and writes the frames queued for it, in order.
async fn dial(me: u64, member: Member, port: u16, mut frames: mpsc::Receiver<Vec<u8>>, reset: Option<Arc<Notify>>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let stream = match TcpStream::connect((member.host.as_str(), port)).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(peer = member.id, port, error = %e, "cannot reach peer yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let _ = stream.set_nodelay(true);
        let (mut closed, writer) = stream.into_split();
        let mut stream = BufWriter::with_capacity(64 << 10, writer);
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&me.to_be_bytes());
        if stream.write_all(&hello).await.is_err() || stream.flush().await.is_err() {
            continue;
        }
        loop {
            // The peer never writes on this connection, so anything read means it is gone:
            // notice that at once, not after a write that the dead peer silently drops.
            let mut byte = [0u8; 1];
            let frame = tokio::select! {
                frame = frames.recv() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                _ = closed.read(&mut byte) => {
                    tracing::info!(peer = member.id, port, "peer closed the connection; reconnecting");
                    break;
                }
                _ = async { reset.as_ref()?.notified().await; Some(()) }, if reset.is_some() => {
                    tracing::info!(peer = member.id, port, "dropping the connection (a frame was lost, or the peer is no longer counted on)");
                    break;
                }
            };
            let mut written = stream.write_all(&frame).await;
            // Write what else is queued before flushing: one syscall for a burst.
            while written.is_ok() {
                match frames.try_recv() {
                    Ok(next) => written = stream.write_all(&next).await,
                    Err(_) => break,
                }
            }
            if written.is_err() || stream.flush().await.is_err() {
                // What was buffered is lost with the connection; ZAB sees the gap.
                tracing::info!(peer = member.id, port, "peer connection lost; reconnecting");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_split_over_frames_arrives_whole() {
        let snap = Message::Snap { epoch: 1, zxid: 7, snapshot: vec![9; 1000] };
        let ping = Message::Ping { epoch: 1 };
        let mut bytes = zab::encode_frames((3, 1), &snap, 64);
        bytes.extend(zab::encode_frame((3, 2), &ping));
        let (tx, mut rx) = mpsc::channel(4);
        let mut reader = &bytes[..];
        read_frames(&mut reader, 2, 5, &tx).await.unwrap();
        for (position, sent) in [((3, 1), snap), ((3, 2), ping)] {
            match rx.recv().await {
                Some(ToDriver::Peer { from: ServerId(2), link: 5, msg: FromPeer::Zab { stream, msg } }) => {
                    assert_eq!((stream, msg), (position, sent));
                }
                _ => panic!("expected {sent:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_connection_that_ends_inside_a_message_is_an_error() {
        let snap = Message::Snap { epoch: 1, zxid: 7, snapshot: vec![9; 1000] };
        let bytes = zab::encode_frames((3, 1), &snap, 64);
        let (tx, _rx) = mpsc::channel(4);
        // Cut after the first whole frame: the message's other frames never come.
        let mut reader = &bytes[..68];
        assert!(read_frames(&mut reader, 2, 5, &tx).await.is_err());
    }
}
