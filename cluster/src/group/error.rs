//! Typed errors of the group coordinator and of the offset record codec.
//!
//! The variants mirror Kafka's error codes where one exists (named in each doc comment),
//! so the network layer can map them one to one.

use cfa_engine::BatchError;

/// Why a group request was refused. Nothing changed in the coordinator when one is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// INVALID_GROUP_ID.
    #[error("invalid group id: {reason}")]
    InvalidGroupId { reason: &'static str },
    /// INVALID_SESSION_TIMEOUT.
    #[error("session timeout {timeout_ms} ms is outside [{min_ms}, {max_ms}] ms")]
    InvalidSessionTimeout {
        timeout_ms: u32,
        min_ms: u32,
        max_ms: u32,
    },
    /// INVALID_REQUEST (Kafka accepts any value; cfa bounds how long a member can stall a
    /// rebalance).
    #[error("rebalance timeout {timeout_ms} ms is outside [1, {max_ms}] ms")]
    InvalidRebalanceTimeout { timeout_ms: u32, max_ms: u32 },
    /// INVALID_REQUEST: a string field is longer than its limit.
    #[error("{what} of {bytes} bytes exceeds the limit of {max} bytes")]
    TooLong {
        what: &'static str,
        bytes: usize,
        max: usize,
    },
    /// INVALID_REQUEST: a list field has more entries than its limit.
    #[error("{count} {what} exceed the limit of {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// INVALID_REQUEST: a required field is empty.
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    /// UNKNOWN_MEMBER_ID.
    #[error("member {member_id:?} is not a member of group {group_id:?}")]
    UnknownMemberId { group_id: String, member_id: String },
    /// ILLEGAL_GENERATION.
    #[error(
        "generation {generation_id} is not the current generation {current} of group {group_id:?}"
    )]
    IllegalGeneration {
        group_id: String,
        generation_id: i32,
        current: i32,
    },
    /// REBALANCE_IN_PROGRESS: the member must rejoin.
    #[error("group {group_id:?} is rebalancing: rejoin")]
    RebalanceInProgress { group_id: String },
    /// INCONSISTENT_GROUP_PROTOCOL: no assignor that this coordinator implements is
    /// supported by the member and every other member.
    #[error("no assignor of {offered:?} is implemented here and supported by every member of group {group_id:?}")]
    InconsistentGroupProtocol {
        group_id: String,
        offered: Vec<String>,
    },
    /// GROUP_MAX_SIZE_REACHED.
    #[error("group {group_id:?} already has the maximum of {max} members")]
    GroupMaxSizeReached { group_id: String, max: usize },
    /// No Kafka equivalent: the coordinator holds its maximum number of groups.
    #[error("the coordinator already holds the maximum of {max} groups")]
    GroupLimitReached { max: usize },
    /// COORDINATOR_NOT_AVAILABLE: the group is being deleted; retry later.
    #[error("group {group_id:?} is being deleted")]
    GroupDeleting { group_id: String },
    /// GROUP_ID_NOT_FOUND.
    #[error("group {group_id:?} does not exist")]
    GroupIdNotFound { group_id: String },
    /// NON_EMPTY_GROUP: only a group without members can be deleted.
    #[error("group {group_id:?} still has {members} members")]
    NonEmptyGroup { group_id: String, members: usize },
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: u32 },
    /// OFFSET_METADATA_TOO_LARGE.
    #[error(
        "metadata of {bytes} bytes for {topic}-{partition} exceeds offset.metadata.max.bytes {max}"
    )]
    OffsetMetadataTooLarge {
        topic: String,
        partition: u32,
        bytes: usize,
        max: usize,
    },
    /// RECORD_LIST_TOO_LARGE: the commit would not fit one record batch of the offsets
    /// topic, so it could not be appended atomically.
    #[error("commit encodes to {bytes} bytes, above the offsets batch limit of {max} bytes")]
    CommitTooLarge { bytes: usize, max: usize },
}

/// Why bytes of the offsets topic could not be decoded. Replay stops at the first one:
/// the batch passed its CRC check, so this is a newer format or a bug, and guessing
/// would lose committed offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetRecordError {
    #[error("offset {what} is empty")]
    Missing { what: &'static str },
    #[error("unknown offset {what} version {version}")]
    UnknownVersion { what: &'static str, version: u8 },
    #[error("offset {what} ends at byte {at}, inside a field")]
    Truncated { what: &'static str, at: usize },
    #[error("offset {what} has {extra} trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("offset {what} holds a string that is not UTF-8")]
    NotUtf8 { what: &'static str },
    #[error("offset {what} field {field} of {bytes} bytes does not fit a u16 length")]
    FieldTooLong {
        what: &'static str,
        field: &'static str,
        bytes: usize,
    },
    #[error("record {index} of the batch at offset {base_offset} has no key")]
    NullKey { base_offset: u64, index: usize },
    #[error("invalid batch in the offsets topic: {0}")]
    Batch(#[from] BatchError),
}
