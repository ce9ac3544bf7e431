//! The client's error type: one variant per ZooKeeper error code (`KeeperException.Code`),
//! plus the few conditions that only a client can see (a closed handle, a bad connect
//! string, an invalid path caught before it is sent).
//!
//! Server codes are values the caller matches on (`Err(Error::NoNode)`), not strings.
//! `Display` gives a short lowercase message; [`Error::keeper_message`] gives the text
//! ZooKeeper's Java client uses (`KeeperErrorCode = NoNode`), which tools that imitate
//! `zkCli.sh` need.

use proto::ErrorCode;
use thiserror::Error;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("system error")]
    SystemError,
    #[error("runtime inconsistency (an op after the failing one in a multi)")]
    RuntimeInconsistency,
    #[error("data inconsistency")]
    DataInconsistency,
    /// The connection went away before the reply came: the operation may or may not have
    /// been applied. The session itself may well be alive; the client reconnects on its own.
    #[error("connection loss")]
    ConnectionLoss,
    #[error("marshalling error")]
    MarshallingError,
    #[error("unimplemented")]
    Unimplemented,
    #[error("operation timeout")]
    OperationTimeout,
    #[error("bad arguments")]
    BadArguments,
    #[error("unknown session")]
    UnknownSession,
    #[error("new config has no quorum")]
    NewConfigNoQuorum,
    #[error("reconfig in progress")]
    ReconfigInProgress,
    #[error("node does not exist")]
    NoNode,
    #[error("not authorized")]
    NoAuth,
    #[error("bad version")]
    BadVersion,
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    #[error("node already exists")]
    NodeExists,
    #[error("node not empty")]
    NotEmpty,
    /// The session is gone for good; every later call fails the same way.
    #[error("session expired")]
    SessionExpired,
    #[error("invalid callback")]
    InvalidCallback,
    #[error("invalid ACL")]
    InvalidAcl,
    /// The server rejected an auth packet and closed the connection; the client stops.
    #[error("authentication failed")]
    AuthFailed,
    #[error("session moved")]
    SessionMoved,
    #[error("not a read-only call")]
    NotReadOnly,
    #[error("ephemeral node on local session")]
    EphemeralOnLocalSession,
    #[error("no such watcher")]
    NoWatcher,
    #[error("request timeout")]
    RequestTimeout,
    #[error("reconfig is disabled")]
    ReconfigDisabled,
    #[error("session closed because client failed to authenticate")]
    SessionClosedRequireSaslAuth,
    #[error("quota exceeded")]
    QuotaExceeded,
    #[error("op throttled due to high load")]
    ThrottledOp,
    /// A code this client does not know.
    #[error("error code {0}")]
    Unknown(i32),
    /// A multi failed: nothing was applied. `index` is the first op that failed.
    #[error("multi op {index} failed: {error}")]
    MultiFailed { index: usize, error: Box<Error> },
    /// The client was closed (or its session closed); no more calls go out.
    #[error("client closed")]
    Closed,
    #[error("invalid connect string {0:?}: {1}")]
    BadConnectString(String, &'static str),
    /// A path the server would reject, caught before sending; the message is the one
    /// ZooKeeper's `PathUtils.validatePath` gives.
    #[error("{0}")]
    InvalidPath(String),
    /// A reply did not decode or did not match the request (the connection is dropped).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Every server code: its number, its variant, and the text of Java's
/// `KeeperException.getCodeMessage`. One table, so the three cannot drift apart; the
/// numbers are `proto`'s.
const SERVER_CODES: &[(i32, Error, &str)] = &[
    (ErrorCode::SystemError as i32, Error::SystemError, "SystemError"),
    (ErrorCode::RuntimeInconsistency as i32, Error::RuntimeInconsistency, "RuntimeInconsistency"),
    (ErrorCode::DataInconsistency as i32, Error::DataInconsistency, "DataInconsistency"),
    (ErrorCode::ConnectionLoss as i32, Error::ConnectionLoss, "ConnectionLoss"),
    (ErrorCode::MarshallingError as i32, Error::MarshallingError, "MarshallingError"),
    (ErrorCode::Unimplemented as i32, Error::Unimplemented, "Unimplemented"),
    (ErrorCode::OperationTimeout as i32, Error::OperationTimeout, "OperationTimeout"),
    (ErrorCode::BadArguments as i32, Error::BadArguments, "BadArguments"),
    (ErrorCode::UnknownSession as i32, Error::UnknownSession, "UnknownSession"),
    (ErrorCode::NewConfigNoQuorum as i32, Error::NewConfigNoQuorum, "NewConfigNoQuorum"),
    (ErrorCode::ReconfigInProgress as i32, Error::ReconfigInProgress, "ReconfigInProgress"),
    (ErrorCode::NoNode as i32, Error::NoNode, "NoNode"),
    (ErrorCode::NoAuth as i32, Error::NoAuth, "NoAuth"),
    (ErrorCode::BadVersion as i32, Error::BadVersion, "BadVersion"),
    (ErrorCode::NoChildrenForEphemerals as i32, Error::NoChildrenForEphemerals, "NoChildrenForEphemerals"),
    (ErrorCode::NodeExists as i32, Error::NodeExists, "NodeExists"),
    (ErrorCode::NotEmpty as i32, Error::NotEmpty, "Directory not empty"),
    (ErrorCode::SessionExpired as i32, Error::SessionExpired, "Session expired"),
    (ErrorCode::InvalidCallback as i32, Error::InvalidCallback, "Invalid callback"),
    (ErrorCode::InvalidAcl as i32, Error::InvalidAcl, "InvalidACL"),
    (ErrorCode::AuthFailed as i32, Error::AuthFailed, "AuthFailed"),
    (ErrorCode::SessionMoved as i32, Error::SessionMoved, "Session moved"),
    (ErrorCode::NotReadOnly as i32, Error::NotReadOnly, "Not a read-only call"),
    (ErrorCode::EphemeralOnLocalSession as i32, Error::EphemeralOnLocalSession, "Ephemeral node on local session"),
    (ErrorCode::NoWatcher as i32, Error::NoWatcher, "No such watcher"),
    (ErrorCode::RequestTimeout as i32, Error::RequestTimeout, "Unknown error REQUESTTIMEOUT"),
    (ErrorCode::ReconfigDisabled as i32, Error::ReconfigDisabled, "Reconfig is disabled"),
    (
        ErrorCode::SessionClosedRequireSaslAuth as i32,
        Error::SessionClosedRequireSaslAuth,
        "Session closed because client failed to authenticate",
    ),
    (ErrorCode::QuotaExceeded as i32, Error::QuotaExceeded, "Quota has exceeded"),
    (ErrorCode::ThrottledOp as i32, Error::ThrottledOp, "Op throttled due to high load"),
];

impl Error {
    /// The error for a reply's `err` field; `None` for 0 (OK).
    pub fn from_code(code: i32) -> Option<Error> {
        if code == 0 {
            return None;
        }
        Some(SERVER_CODES.iter().find(|(c, ..)| *c == code).map_or(Error::Unknown(code), |(_, e, _)| e.clone()))
    }

    /// The server code this error stands for. Client-side conditions map to the code
    /// Java's client raises for them (a closed client is ConnectionLoss there too).
    fn server_equivalent(&self) -> Result<&(i32, Error, &'static str), i32> {
        let same = match self {
            Error::Closed | Error::Protocol(_) => Error::ConnectionLoss,
            Error::BadConnectString(..) | Error::InvalidPath(_) => Error::BadArguments,
            Error::MultiFailed { error, .. } => return error.server_equivalent(),
            Error::Unknown(code) => return Err(*code),
            other => other.clone(),
        };
        Ok(SERVER_CODES.iter().find(|(_, e, _)| *e == same).expect("every other variant is in the table"))
    }

    /// ZooKeeper's code for this error.
    pub fn code(&self) -> i32 {
        match self.server_equivalent() {
            Ok((code, ..)) => *code,
            Err(code) => code,
        }
    }

    /// The message Java's `KeeperException.getMessage()` gives, with ` for <path>` when
    /// `path` is given: `KeeperErrorCode = NoNode for /a`.
    pub fn keeper_message(&self, path: Option<&str>) -> String {
        let text = match self.server_equivalent() {
            Ok((_, _, text)) => text.to_string(),
            Err(code) => format!("Unknown error {code}"),
        };
        match path {
            Some(path) => format!("KeeperErrorCode = {text} for {path}"),
            None => format!("KeeperErrorCode = {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [-1, -2, -3, -4, -5, -6, -7, -8, -12, -13, -14, -101, -102, -103, -108, -110, -111, -112, -113]
            .into_iter()
            .chain([-114, -115, -118, -119, -120, -121, -122, -123, -124, -125, -127, -999])
        {
            assert_eq!(Error::from_code(code).unwrap().code(), code);
        }
        assert_eq!(Error::from_code(0), None);
    }

    #[test]
    fn keeper_messages_match_java() {
        assert_eq!(Error::NoNode.keeper_message(Some("/p")), "KeeperErrorCode = NoNode for /p");
        assert_eq!(Error::NotEmpty.keeper_message(None), "KeeperErrorCode = Directory not empty");
        assert_eq!(Error::NoWatcher.keeper_message(Some("/t")), "KeeperErrorCode = No such watcher for /t");
    }
}
