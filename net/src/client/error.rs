//! The one error type of the client SDK.
//!
//! Every variant names its cause in one line (what the CLI prints). Errors that come from
//! the broker keep its [`ErrorCode`] and message. The type is `Clone` because one failure
//! (a batch refused, a connection lost) is reported to every record or request it
//! concerns.

use std::time::Duration;

use cfa_engine::BatchError;

use crate::protocol::{ApiKey, EncodeError, ErrorCode, ProtocolError};

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// A configuration value is out of range or contradicts another one.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// No connection could be made.
    #[error("broker unreachable at {addr}: {cause}")]
    Unreachable { addr: String, cause: String },

    /// The broker closed the connection (or it broke) while requests were outstanding.
    #[error("connection to {addr} closed by broker{}", detail(.cause))]
    ConnectionClosed { addr: String, cause: Option<String> },

    /// A read or write on an established connection failed.
    #[error("I/O error on the connection to {addr}: {cause}")]
    Io { addr: String, cause: String },

    /// The broker sent bytes that are not a valid response; the connection is closed.
    #[error("invalid response from {addr}: {source}")]
    Protocol {
        addr: String,
        #[source]
        source: ProtocolError,
    },

    /// A request could not be encoded (too large for a frame, for instance).
    #[error("cannot encode {api} request: {source}")]
    Encode {
        api: ApiKey,
        #[source]
        source: EncodeError,
    },

    /// The broker speaks no version of an API this call needs.
    #[error("the broker at {addr} does not support {api}")]
    UnsupportedApi { addr: String, api: ApiKey },

    /// The broker answered with an error code. `context` says what was asked
    /// ("Produce to soccer-3", "JoinGroup website").
    #[error("{context}: {}", .code.describe(.message.as_deref()))]
    Broker {
        context: String,
        code: ErrorCode,
        message: Option<String>,
    },

    /// The broker answered with another API's response than the request's.
    #[error("{addr} answered a {expected} request with a {got} response")]
    UnexpectedResponse {
        addr: String,
        expected: ApiKey,
        got: String,
    },

    /// Something did not happen within its time bound.
    #[error("{what} timed out after {} ms", .after.as_millis())]
    Timeout { what: String, after: Duration },

    /// A record is larger than a client-side limit; it was not sent.
    #[error("record of {size} bytes exceeds {limit} {max}")]
    RecordTooLarge {
        size: usize,
        max: usize,
        /// The setting that bounds it (`max.request.bytes`, `buffer.memory.bytes`, ...).
        limit: &'static str,
    },

    /// A record batch could not be built or read (compression, CRC, malformed records).
    #[error("{context}: {source}")]
    Batch {
        context: String,
        #[source]
        source: BatchError,
    },

    /// The topic is not known to the cluster.
    #[error("unknown topic '{topic}'{}", detail(.message))]
    UnknownTopic {
        topic: String,
        message: Option<String>,
    },

    /// The topic exists but has no such partition.
    #[error("topic '{topic}' has no partition {partition} ({count} partitions)")]
    UnknownPartition {
        topic: String,
        partition: u32,
        count: u32,
    },

    /// A consumer has no offset to start a partition from and its reset policy is `none`.
    #[error("no committed offset for {topic}-{partition} and auto_offset_reset is none")]
    NoOffset { topic: String, partition: u32 },

    /// The call is not allowed in the current state (not subscribed, not assigned,
    /// inside a rebalance callback, ...).
    #[error("{0}")]
    IllegalState(String),

    /// The client was closed; nothing more is sent.
    #[error("{what} is closed")]
    Closed { what: &'static str },
}

fn detail(cause: &Option<String>) -> String {
    match cause {
        Some(c) if !c.is_empty() => format!(": {c}"),
        _ => String::new(),
    }
}

impl ClientError {
    /// A broker error for `context`; `None` for `ErrorCode::None`.
    pub fn from_code(
        context: impl Into<String>,
        code: ErrorCode,
        message: Option<String>,
    ) -> Option<ClientError> {
        code.is_error().then(|| ClientError::Broker {
            context: context.into(),
            code,
            message,
        })
    }

    /// The broker's error code, if the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: lost connections, timeouts and the
    /// broker's retriable codes. Configuration and size errors are final.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. } => true,
            ClientError::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// Whether cached metadata may be stale: the partition moved, the topic is new or the
    /// connection to its leader broke.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            ClientError::Unreachable { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::Io { .. } => true,
            ClientError::Broker { code, .. } => matches!(
                code,
                ErrorCode::NotLeader
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::UnknownTopic
                    | ErrorCode::UnknownPartition
                    | ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorNotAvailable
            ),
            _ => false,
        }
    }

    pub(crate) fn timeout(what: impl Into<String>, after: Duration) -> ClientError {
        ClientError::Timeout {
            what: what.into(),
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let e = ClientError::Unreachable {
            addr: "127.0.0.1:9192".into(),
            cause: "Connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "broker unreachable at 127.0.0.1:9192: Connection refused"
        );
        let e = ClientError::from_code(
            "Produce to soccer-3",
            ErrorCode::RecordTooLarge,
            Some("batch of 2000000 bytes exceeds max.message.bytes 1048576".into()),
        )
        .expect("an error");
        assert_eq!(
            e.to_string(),
            "Produce to soccer-3: RecordTooLarge: batch of 2000000 bytes exceeds max.message.bytes 1048576"
        );
        assert_eq!(e.code(), Some(ErrorCode::RecordTooLarge));
        assert!(!e.is_retriable());
        let e = ClientError::RecordTooLarge {
            size: 2_000_000,
            max: 1_048_576,
            limit: "max.request.bytes",
        };
        assert_eq!(
            e.to_string(),
            "record of 2000000 bytes exceeds max.request.bytes 1048576"
        );
        let e = ClientError::ConnectionClosed {
            addr: "a:1".into(),
            cause: None,
        };
        assert_eq!(e.to_string(), "connection to a:1 closed by broker");
        let e = ClientError::timeout("Fetch", Duration::from_millis(1500));
        assert_eq!(e.to_string(), "Fetch timed out after 1500 ms");
    }

    #[test]
    fn retriable_and_metadata_classification() {
        assert!(ClientError::from_code("x", ErrorCode::None, None).is_none());
        let not_leader = ClientError::from_code("x", ErrorCode::NotLeader, None).expect("e");
        assert!(not_leader.is_retriable() && not_leader.invalidates_metadata());
        let timed_out = ClientError::from_code("x", ErrorCode::RequestTimedOut, None).expect("e");
        assert!(timed_out.is_retriable() && !timed_out.invalidates_metadata());
        let closed = ClientError::ConnectionClosed {
            addr: "a".into(),
            cause: None,
        };
        assert!(closed.is_retriable() && closed.invalidates_metadata());
        assert!(!ClientError::Config("x".into()).is_retriable());
    }
}
