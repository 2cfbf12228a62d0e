//! Stable numeric error codes of the wire protocol.
//!
//! A code's number never changes and is never reused, even if the variant is retired
//! (Apache Iggy's rule): clients of any age must read the same meaning from it. The table
//! in docs/format.md lists them; a test keeps the two in step.

use cfa_cluster::group::GroupError;
use cfa_engine::{BatchError, LogError};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $retriable:literal, $message:literal; )*) => {
        /// What went wrong, carried on the wire as a u16 (`0` = no error). Responses pair it
        /// with an optional message that names the cause.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name = $value, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The code for a wire value, or `None` if this build does not know it.
            pub fn from_u16(value: u16) -> Option<ErrorCode> {
                match value {
                    $( $value => Some(ErrorCode::$name), )*
                    _ => None,
                }
            }

            /// A short default message, used when a response carries no message of its own.
            pub fn default_message(self) -> &'static str {
                match self {
                    $( ErrorCode::$name => $message, )*
                }
            }

            /// Whether the same request may succeed if retried later (after refreshing
            /// metadata or backing off), as opposed to a request that is wrong as sent.
            pub fn is_retriable(self) -> bool {
                match self {
                    $( ErrorCode::$name => $retriable, )*
                }
            }

            /// The variant name, e.g. `UnknownTopic`.
            pub fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$name => stringify!($name), )*
                }
            }
        }
    };
}

error_codes! {
    /// No error.
    None = 0, false, "no error";
    /// The broker failed in a way no other code describes; also what a client reads for a
    /// code newer than itself.
    Unknown = 1, false, "unexpected broker error";
    /// The frame could not be parsed: bad length, header, flatbuffer or payload references.
    InvalidFrame = 2, false, "malformed frame";
    /// The frame parsed, but a field value is not allowed.
    InvalidRequest = 3, false, "invalid request";
    /// The API key is not one this broker knows.
    UnknownApi = 4, false, "unknown API";
    /// The broker does not speak this version of the API.
    UnsupportedVersion = 5, false, "unsupported API version";
    /// The topic does not exist (yet).
    UnknownTopic = 6, true, "unknown topic";
    /// The topic exists but has no such partition.
    UnknownPartition = 7, true, "unknown partition";
    /// The topic name breaks the naming rule (1-249 chars of [a-zA-Z0-9._-], not . or ..).
    InvalidTopicName = 8, false, "invalid topic name";
    /// The partition count is zero or above the broker's limit.
    InvalidPartitions = 9, false, "invalid number of partitions";
    /// The replication factor is zero or exceeds the number of brokers.
    InvalidReplicationFactor = 10, false, "invalid replication factor";
    /// A topic of that name exists already.
    TopicAlreadyExists = 11, false, "topic already exists";
    /// A record batch is larger than the topic's max.message.bytes.
    RecordTooLarge = 12, false, "record batch exceeds max.message.bytes";
    /// A record batch failed its CRC check.
    CorruptMessage = 13, false, "record batch CRC mismatch";
    /// A record batch is malformed (length, magic, counts or codec).
    InvalidRecord = 14, false, "invalid record batch";
    /// This broker does not lead the partition; refresh metadata.
    NotLeader = 15, true, "broker is not the partition leader";
    /// The partition has no leader right now (election in progress).
    LeaderNotAvailable = 16, true, "partition leader not available";
    /// The request did not complete within its timeout.
    RequestTimedOut = 17, true, "request timed out";
    /// An idempotent producer's sequence skipped ahead: a batch was lost in between.
    OutOfOrderSequence = 18, false, "out-of-order sequence number";
    /// The batch was already appended (a retry); its original offsets are returned.
    DuplicateSequence = 19, false, "duplicate sequence number";
    /// A newer producer with the same id took over (fenced), or the epoch is unknown.
    InvalidProducerEpoch = 20, false, "invalid producer epoch";
    /// The broker holds no state for this producer id.
    UnknownProducerId = 21, false, "unknown producer id";
    /// The requested offset is outside the partition's log.
    OffsetOutOfRange = 22, false, "offset out of range";
    /// The group coordinator is not available yet.
    CoordinatorNotAvailable = 23, true, "group coordinator not available";
    /// This broker is not the coordinator of the group.
    NotCoordinator = 24, true, "broker is not the group coordinator";
    /// The group does not know this member id (expired or never joined).
    UnknownMemberId = 25, false, "unknown member id";
    /// The generation id is not the group's current one.
    IllegalGeneration = 26, false, "illegal generation";
    /// The group is rebalancing: join again.
    RebalanceInProgress = 27, true, "rebalance in progress";
    /// No group has this id.
    GroupIdNotFound = 28, false, "group id not found";
    /// The group id is empty or otherwise not allowed.
    InvalidGroupId = 29, false, "invalid group id";
    /// session.timeout.ms is outside the broker's allowed range.
    InvalidSessionTimeout = 30, false, "invalid session timeout";
    /// No assignor is common to the member and the broker.
    NoCommonAssignor = 31, false, "no common assignor";
    /// The partition's log failed on disk (I/O error; the log is poisoned until restart).
    StorageError = 32, false, "storage error";
    /// No space left on the broker's disk.
    NoSpace = 33, true, "no space left on device";
    /// The client exceeded its quota; retry after throttle_time_ms.
    Throttled = 34, true, "request throttled";
    /// A broker policy refused the request.
    PolicyViolation = 35, false, "policy violation";
    /// A topic configuration key or value is not valid.
    InvalidConfig = 36, false, "invalid configuration";
    /// The broker is shutting down.
    BrokerShuttingDown = 37, true, "broker shutting down";
    /// Fewer in-sync replicas than min.insync.replicas: acks=all refused before appending.
    NotEnoughReplicas = 38, true, "not enough in-sync replicas";
    /// Appended on the leader, but the in-sync set shrank below min.insync.replicas before
    /// the batch was replicated.
    NotEnoughReplicasAfterAppend = 39, true, "not enough in-sync replicas after append";
    /// The group already has its maximum number of members.
    GroupMaxSizeReached = 40, false, "group has its maximum number of members";
    /// The coordinator already holds its maximum number of groups.
    GroupLimitReached = 41, true, "coordinator holds its maximum number of groups";
    /// The group still has members (deleting a group needs it empty).
    NonEmptyGroup = 42, false, "group is not empty";
    /// An offset commit's metadata string is longer than the broker allows.
    OffsetMetadataTooLarge = 43, false, "offset metadata too large";
}

impl ErrorCode {
    /// The wire value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// The code for a wire value; a code this build does not know reads as `Unknown`, so a
    /// newer broker's answer still surfaces as an error with its message.
    pub fn from_wire(value: u16) -> ErrorCode {
        ErrorCode::from_u16(value).unwrap_or(ErrorCode::Unknown)
    }

    pub fn is_error(self) -> bool {
        self != ErrorCode::None
    }

    /// One line for a user: the response's message if it carried one, else the default.
    pub fn describe(self, message: Option<&str>) -> String {
        match message {
            Some(m) if !m.is_empty() => format!("{}: {m}", self.name()),
            _ => format!("{}: {}", self.name(), self.default_message()),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.default_message())
    }
}

// Wildcards on purpose: the engine adds refusal reasons (codecs, compression limits) and a
// new one must not break the build of the protocol; its closest wire code is the default.
impl From<&BatchError> for ErrorCode {
    fn from(e: &BatchError) -> ErrorCode {
        match e {
            BatchError::TooLarge { .. } => ErrorCode::RecordTooLarge,
            BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
            _ => ErrorCode::InvalidRecord,
        }
    }
}

impl From<&LogError> for ErrorCode {
    fn from(e: &LogError) -> ErrorCode {
        match e {
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::InvalidBatch(b) => ErrorCode::from(b),
            LogError::NoSpace { .. } => ErrorCode::NoSpace,
            LogError::Config(_) => ErrorCode::InvalidConfig,
            // Closed: its topic was deleted (or the broker is stopping): clients refresh
            // their metadata and retry, as for a partition that moved.
            LogError::Closed { .. } => ErrorCode::UnknownPartition,
            // Poisoned, I/O and corruption: the partition's storage failed.
            _ => ErrorCode::StorageError,
        }
    }
}

impl From<&GroupError> for ErrorCode {
    fn from(e: &GroupError) -> ErrorCode {
        match e {
            GroupError::InvalidGroupId { .. } => ErrorCode::InvalidGroupId,
            GroupError::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
            GroupError::UnknownMemberId { .. } => ErrorCode::UnknownMemberId,
            GroupError::IllegalGeneration { .. } => ErrorCode::IllegalGeneration,
            GroupError::RebalanceInProgress { .. } => ErrorCode::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol { .. } => ErrorCode::NoCommonAssignor,
            GroupError::GroupMaxSizeReached { .. } => ErrorCode::GroupMaxSizeReached,
            GroupError::GroupLimitReached { .. } => ErrorCode::GroupLimitReached,
            // Being deleted: the group comes back (empty) once its tombstones are durable.
            GroupError::GroupDeleting { .. } => ErrorCode::CoordinatorNotAvailable,
            GroupError::GroupIdNotFound { .. } => ErrorCode::GroupIdNotFound,
            GroupError::NonEmptyGroup { .. } => ErrorCode::NonEmptyGroup,
            GroupError::UnknownTopicOrPartition { .. } => ErrorCode::UnknownPartition,
            GroupError::OffsetMetadataTooLarge { .. } => ErrorCode::OffsetMetadataTooLarge,
            // The commit would not fit one batch of the offsets topic.
            GroupError::CommitTooLarge { .. } => ErrorCode::RecordTooLarge,
            // Rebalance timeout out of range, strings too long, lists too long, empty
            // fields; and, as for the engine, reasons added later.
            _ => ErrorCode::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_unique_and_round_trip() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.as_u16() as usize, i, "{code:?} breaks numeric order");
            assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(*code));
            assert!(!code.default_message().is_empty());
        }
        assert_eq!(ErrorCode::from_wire(60000), ErrorCode::Unknown);
        assert!(!ErrorCode::None.is_error());
    }

    #[test]
    fn values_are_stable() {
        // Pinned: changing any of these breaks every deployed client.
        assert_eq!(ErrorCode::UnknownTopic as u16, 6);
        assert_eq!(ErrorCode::RecordTooLarge as u16, 12);
        assert_eq!(ErrorCode::NotLeader as u16, 15);
        assert_eq!(ErrorCode::StorageError as u16, 32);
        assert_eq!(ErrorCode::NotEnoughReplicasAfterAppend as u16, 39);
        assert_eq!(ErrorCode::OffsetMetadataTooLarge as u16, 43);
    }

    #[test]
    fn engine_errors_map_to_codes() {
        let too_large = BatchError::TooLarge {
            size: 2 << 20,
            max: 1 << 20,
        };
        assert_eq!(ErrorCode::from(&too_large), ErrorCode::RecordTooLarge);
        let crc = BatchError::CrcMismatch {
            expected: 1,
            actual: 2,
        };
        assert_eq!(
            ErrorCode::from(&LogError::InvalidBatch(crc)),
            ErrorCode::CorruptMessage
        );
        let poisoned = LogError::Poisoned {
            dir: "t-0".into(),
            cause: "fsync".into(),
        };
        assert_eq!(ErrorCode::from(&poisoned), ErrorCode::StorageError);
        let generation = GroupError::IllegalGeneration {
            group_id: "g".into(),
            generation_id: 1,
            current: 2,
        };
        assert_eq!(ErrorCode::from(&generation), ErrorCode::IllegalGeneration);
        let empty = GroupError::Empty { what: "group id" };
        assert_eq!(ErrorCode::from(&empty), ErrorCode::InvalidRequest);
    }

    #[test]
    fn describe_prefers_the_message() {
        let s = ErrorCode::UnknownTopic.describe(Some("unknown topic 'x'"));
        assert_eq!(s, "UnknownTopic: unknown topic 'x'");
        let s = ErrorCode::UnknownTopic.describe(None);
        assert_eq!(s, "UnknownTopic: unknown topic");
    }
}
