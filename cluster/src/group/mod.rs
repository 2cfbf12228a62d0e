//! Consumer groups: the coordinator state machine, the partition assignors, and the
//! committed-offset store with its record codec.
//!
//! Everything here is pure and synchronous: no I/O, no async, no clock. Time comes in as
//! `now_ms`, and what the network layer must do comes out as values ([`Effect`]s for
//! parked JoinGroup requests, record batches to append for commits). See
//! [`GroupCoordinator`] for the protocol and the contract with the server.

pub mod api;
pub mod assignor;
pub mod coordinator;
pub mod error;
mod membership;
pub mod offsets;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use api::{
    CommitEntry, CommitRequest, CoordinatorConfig, Effect, GroupDescription, GroupListing,
    JoinMember, JoinRequest, JoinResult, JoinToken, MemberDescription, PendingCommit,
    PendingDelete, PreparedCommit, PreparedDelete, RebalanceReason, RemovalReason, SyncResult,
};
pub use assignor::{
    Assignor, AssignorMember, Assignors, RangeAssignor, RoundRobinAssignor, StickyAssignor,
};
pub use coordinator::GroupCoordinator;
pub use error::{GroupError, OffsetRecordError};
pub use offsets::{offsets_partition_for, CommittedOffset, OffsetKey, OffsetRecord, OffsetStore};

/// Topic name -> partition count, as the caller (the metadata layer) knows it.
/// A topic with 0 partitions is treated as absent.
pub type TopicMetadata = BTreeMap<String, u32>;

/// What one member consumes: topic -> partitions, each list sorted ascending.
pub type Assignment = BTreeMap<String, Vec<u32>>;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Shared: clients copy a partition's name into every record, report and request
    /// they build for it, and a reference count is cheaper than an allocation each time.
    pub topic: Arc<str>,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }

    /// With a name already shared (no copy of it).
    pub fn shared(topic: &Arc<str>, partition: u32) -> Self {
        TopicPartition {
            topic: Arc::clone(topic),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The states of Kafka's classic group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members (the group may still hold committed offsets).
    Empty,
    /// A rebalance is collecting joins; members must rejoin.
    PreparingRebalance,
    /// The generation is formed and assigned; waiting for every member to sync.
    CompletingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
    /// Being deleted: its offset tombstones are being appended.
    Dead,
}

impl GroupState {
    /// The name Kafka tools print.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
