//! Every limit and default of the cluster layer, in one place.
//!
//! TigerBeetle-style: a bound on every collection the coordinator keeps, so that memory
//! stays bounded whatever clients send. Names carry their unit last. Where a value
//! follows Kafka, the Kafka setting is named.

use cfa_engine::constants::MAX_MESSAGE_BYTES_DEFAULT;

/// Longest group id (bytes of UTF-8). Kafka has no hard limit; 255 keeps keys of the
/// offsets topic small and is far above what clients use.
pub const GROUP_ID_BYTES_MAX: usize = 255;

/// Longest client id (bytes). The member id is built from it, so it is bounded too.
pub const CLIENT_ID_BYTES_MAX: usize = 255;

/// Longest member id a client may present: a client id, `-`, and the coordinator's
/// suffix (two hex u64 and a separator: at most 33 bytes).
pub const MEMBER_ID_BYTES_MAX: usize = CLIENT_ID_BYTES_MAX + 1 + 33;

/// Longest topic name (bytes), as the engine and Kafka (249).
pub const TOPIC_NAME_BYTES_MAX: usize = cfa_engine::manager::TOPIC_NAME_BYTES_MAX;

/// Longest assignor (protocol) name a member may list.
pub const ASSIGNOR_NAME_BYTES_MAX: usize = 64;

/// Assignors one member may list in its preference order.
pub const ASSIGNORS_PER_MEMBER_MAX: usize = 16;

/// Topics one member may subscribe to.
pub const SUBSCRIPTIONS_PER_MEMBER_MAX: usize = 1024;

/// Default group.max.size: members of one group. Kafka's default is unbounded; every
/// member costs a parked join and an assignment, so cfa bounds it.
pub const GROUP_MEMBERS_MAX_DEFAULT: usize = 1000;

/// Default bound on the number of groups one coordinator holds (with or without members).
pub const GROUPS_MAX_DEFAULT: usize = 10_000;

/// group.min.session.timeout.ms (Kafka: 6 s).
pub const SESSION_TIMEOUT_MS_MIN: u32 = 6_000;

/// group.max.session.timeout.ms (Kafka: 30 min).
pub const SESSION_TIMEOUT_MS_MAX: u32 = 30 * 60 * 1000;

/// Consumer default session.timeout.ms (Kafka 3.0+: 45 s).
pub const SESSION_TIMEOUT_MS_DEFAULT: u32 = 45_000;

/// Consumer default max.poll.interval.ms, which Kafka consumers send as the rebalance
/// timeout (5 min).
pub const REBALANCE_TIMEOUT_MS_DEFAULT: u32 = 5 * 60 * 1000;

/// Longest rebalance timeout accepted (1 h): a member may hold a rebalance this long.
pub const REBALANCE_TIMEOUT_MS_MAX: u32 = 60 * 60 * 1000;

/// group.initial.rebalance.delay.ms (Kafka: 3 s): the first rebalance of an Empty group
/// waits this long (re-armed while new members keep arriving, up to the rebalance
/// timeout), so consumers started together land in one generation.
pub const INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;

/// offset.metadata.max.bytes (Kafka: 4096): the metadata string of one committed offset.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Committed offsets one group may hold (distinct topic-partitions).
pub const OFFSETS_PER_GROUP_MAX: usize = 100_000;

/// Topic-partitions in one OffsetCommit request.
pub const COMMIT_PARTITIONS_MAX: usize = 10_000;

/// Largest record batch one commit or group deletion produces: the engine's default
/// max.message.bytes, so the offsets topic accepts it with default settings. A commit
/// is appended as one batch so that it is durable all or nothing.
pub const OFFSET_BATCH_BYTES_MAX: usize = MAX_MESSAGE_BYTES_DEFAULT as usize;

/// Internal topic holding committed offsets (as Kafka).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// offsets.topic.num.partitions. Kafka uses 50; cfa starts with 16 because every
/// partition that receives commits preallocates its own segment (16 MiB steps), while
/// 16 still spreads coordinators over the brokers of a small cluster. Fixed once the
/// topic exists: the partition of a group is a function of this count.
pub const OFFSETS_TOPIC_PARTITIONS_DEFAULT: u32 = 16;
