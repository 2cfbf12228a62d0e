//! Requests, results and effects of the group coordinator: plain owned values, so the
//! coordinator can move behind a trait (or another broker) without changing them.

use std::collections::BTreeMap;

use bytes::BytesMut;

use crate::constants::{
    GROUPS_MAX_DEFAULT, GROUP_MEMBERS_MAX_DEFAULT, INITIAL_REBALANCE_DELAY_MS_DEFAULT,
    OFFSET_METADATA_BYTES_MAX, SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN,
};
use crate::group::error::GroupError;
use crate::group::offsets::{CommittedOffset, OffsetKey};
use crate::group::{Assignment, GroupState, TopicPartition};

/// Settings of one coordinator (Kafka's `group.*` broker settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// group.initial.rebalance.delay.ms.
    pub initial_rebalance_delay_ms: u64,
    /// group.max.size.
    pub group_members_max: usize,
    /// Groups this coordinator holds at most.
    pub groups_max: usize,
    /// group.min.session.timeout.ms.
    pub session_timeout_ms_min: u32,
    /// group.max.session.timeout.ms.
    pub session_timeout_ms_max: u32,
    /// offset.metadata.max.bytes.
    pub offset_metadata_bytes_max: usize,
    /// Unique per coordinator start (the server passes e.g. its boot time in ms): it is
    /// part of every member id handed out, so ids from an earlier run are never reused.
    pub member_id_nonce: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay_ms: INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            group_members_max: GROUP_MEMBERS_MAX_DEFAULT,
            groups_max: GROUPS_MAX_DEFAULT,
            session_timeout_ms_min: SESSION_TIMEOUT_MS_MIN,
            session_timeout_ms_max: SESSION_TIMEOUT_MS_MAX,
            offset_metadata_bytes_max: OFFSET_METADATA_BYTES_MAX,
            member_id_nonce: 0,
        }
    }
}

/// Chosen by the server for each JoinGroup request it parks; effects answer by token.
pub type JoinToken = u64;

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Names this request in the [`Effect::JoinResponse`] that answers it.
    pub token: JoinToken,
    pub group_id: String,
    /// Empty for a new member: the coordinator assigns one.
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Supported assignors, most preferred first.
    pub assignors: Vec<String>,
}

/// A member as the leader's join response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub client_id: String,
    pub topics: Vec<String>,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation_id: i32,
    pub member_id: String,
    pub leader_id: String,
    /// The assignor the coordinator chose for this generation.
    pub assignor: String,
    /// Every member, for the leader only (empty for the others), as in Kafka. The
    /// assignment is computed by the coordinator, so the list is informational.
    pub members: Vec<JoinMember>,
}

/// Why a rebalance started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceReason {
    /// A member joined for the first time.
    NewMember { member_id: String },
    /// A member rejoined with other topics or assignors.
    MemberChanged { member_id: String },
    /// A member left, or was removed (see [`RemovalReason`]).
    MemberRemoved { member_id: String },
    /// The partition count of a subscribed topic changed, or one was created or deleted.
    TopicMetadata,
    /// A member released partitions that were withheld from their new owner
    /// (cooperative rebalancing: this follow-up hands them out).
    PartitionsReleased,
}

/// Why a member was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// LeaveGroup.
    Left,
    /// No heartbeat within its session timeout.
    SessionExpired,
    /// Did not rejoin before the rebalance timeout.
    JoinTimeout,
    /// Did not sync before the rebalance timeout after its generation formed.
    SyncTimeout,
}

/// What the server must do (or may log) after a coordinator call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the parked JoinGroup request `token` (sent for `member_id`).
    JoinResponse {
        token: JoinToken,
        group_id: String,
        member_id: String,
        result: Result<JoinResult, GroupError>,
    },
    /// For logs and metrics: a rebalance began; members learn it from their heartbeats.
    RebalanceStarted {
        group_id: String,
        generation_id: i32,
        reason: RebalanceReason,
    },
    /// For logs and metrics: a member is gone.
    MemberRemoved {
        group_id: String,
        member_id: String,
        reason: RemovalReason,
    },
}

/// A SyncGroup answer: the member's share of the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub assignor: String,
    pub assignment: Assignment,
    /// The generation's rebalance protocol. Cooperative: keep your partitions when you
    /// rejoin. Eager: release everything before you rejoin. Either way, release what
    /// this assignment no longer holds before your next Heartbeat or JoinGroup.
    pub cooperative: bool,
}

/// One partition's entry in an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub partition: TopicPartition,
    pub offset: u64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    pub metadata: String,
}

/// An OffsetCommit request. `generation_id` -1 with an empty `member_id` is a consumer
/// that assigns partitions itself (`assign()`): accepted while the group has no members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub entries: Vec<CommitEntry>,
}

/// A validated commit: append `batch` to the group's partition of `__consumer_offsets`,
/// wait until it is replicated (acks=all), then call
/// [`complete_commit`](crate::group::GroupCoordinator::complete_commit) with `pending`
/// and answer the client. If the append fails, drop `pending`: nothing changed.
#[derive(Debug)]
pub struct PreparedCommit {
    /// One batch, so the commit is durable all or nothing; `None` for a commit of no
    /// partitions (complete it right away).
    pub batch: Option<BytesMut>,
    pub pending: PendingCommit,
}

/// The in-memory half of a commit, applied once its batch is durable. Pending commits
/// must be completed in the order their batches were appended, so that memory agrees with
/// what a replay of the log gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommit {
    pub(crate) group_id: String,
    pub(crate) offsets: Vec<(TopicPartition, CommittedOffset)>,
}

impl PendingCommit {
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn offsets(&self) -> &[(TopicPartition, CommittedOffset)] {
        &self.offsets
    }
}

/// A validated group deletion: the group is `Dead` until the server calls
/// [`complete_delete_group`](crate::group::GroupCoordinator::complete_delete_group)
/// (after appending every batch, in order, with acks=all) or
/// [`abort_delete_group`](crate::group::GroupCoordinator::abort_delete_group) (an append
/// failed).
#[derive(Debug)]
pub struct PreparedDelete {
    /// Tombstones for every committed offset, split so each batch stays within
    /// `OFFSET_BATCH_BYTES_MAX` (empty when the group has no offsets). Tombstones are
    /// idempotent: if only some batches survive a crash, the group is Empty again after
    /// the restart, holds fewer offsets, and a retried deletion finishes the job.
    pub batches: Vec<BytesMut>,
    pub pending: PendingDelete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelete {
    pub(crate) group_id: String,
    pub(crate) keys: Vec<OffsetKey>,
}

impl PendingDelete {
    pub fn group_id(&self) -> &str {
        &self.group_id
    }
}

/// One line of ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub state: GroupState,
    pub members: usize,
}

/// One member in DescribeGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub topics: Vec<String>,
    /// Its assignment in the latest generation it is part of (empty for a member that
    /// joined during the current rebalance).
    pub assignment: Assignment,
    /// Partitions outside its assignment that it has not confirmed releasing yet
    /// (cooperative rebalancing); they are withheld from every other member meanwhile.
    pub revoking: Assignment,
}

/// DescribeGroup: everything `cfa group describe` prints except lag, which the caller
/// computes from `offsets` and the log end offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    /// Assignor of the current generation; `None` before the first one or when Empty.
    pub assignor: Option<String>,
    pub leader_id: Option<String>,
    /// In member-id order.
    pub members: Vec<MemberDescription>,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
}
