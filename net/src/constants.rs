//! Every limit and default of the network layer, in one place.
//!
//! TigerBeetle-style: a bound on every frame, buffer and queue, with the unit last in the
//! name. The wire limits here are part of the protocol (docs/format.md, "Wire protocol").

use cfa_engine::constants::MAX_MESSAGE_BYTES_CEILING;

/// The u32 little-endian length field that starts every frame.
pub const FRAME_LENGTH_BYTES: usize = 4;

/// The fixed frame header, length field included: length u32, api key u16, api version
/// u16, request id u32, flags u16, error code u16, body length u32.
pub const FRAME_HEADER_BYTES: usize = 20;

/// Smallest whole frame (length field included): a header and an empty body. A length
/// field below `FRAME_BYTES_MIN - FRAME_LENGTH_BYTES` is refused before anything else.
pub const FRAME_BYTES_MIN: usize = FRAME_HEADER_BYTES;

/// Largest flatbuffer body of one frame (4 MiB). The body holds only names, numbers and
/// payload references (record batches travel in the payload area), so even a Metadata
/// response for ~10,000 partitions stays far below it. Bounding it separately from the
/// frame caps the flatbuffer verifier's work and the domain values a decoder allocates.
pub const BODY_BYTES_MAX: usize = 4 << 20;

/// Largest whole frame, length field included (32 MiB). Why this figure:
/// - One record batch at the engine's max.message.bytes ceiling (16 MiB) plus a full body
///   and the header must fit, or a topic configured at the ceiling would accept batches
///   no client can send: 16 MiB + 4 MiB + 20 bytes, rounded up to a power of two.
/// - At the 1 MiB max.message.bytes default it carries 28 such batches in one produce
///   request, and a fetch response can return the engine's 8 MiB read bound several times.
/// - It bounds memory: a connection buffers at most one incomplete frame, so a broker with
///   N connections holds at most N x 32 MiB of partial frames, and a corrupted or
///   hostile length field (say 2^31) is refused instead of allocated.
pub const FRAME_BYTES_MAX: usize = 32 << 20;

/// Largest raw payload area (record batches) of one frame: what is left of the largest
/// frame after the header and the largest body. A broker clamps fetch `max_bytes` to this.
pub const PAYLOAD_BYTES_MAX: usize = FRAME_BYTES_MAX - FRAME_HEADER_BYTES - BODY_BYTES_MAX;

/// Flatbuffer verifier: deepest table nesting accepted. The deepest body of the schema
/// (DescribeGroupResponse -> member -> assignment) is 3 tables deep; 16 leaves room for
/// schema growth while stopping a crafted deep chain early.
pub const VERIFIER_DEPTH_MAX: usize = 16;

/// Flatbuffer verifier: most tables accepted in one body. A table is at least 4 bytes plus
/// its offset, so a 4 MiB body cannot legitimately hold more than about 2^20.
pub const VERIFIER_TABLES_MAX: usize = BODY_BYTES_MAX / 4;

/// Flatbuffer verifier: largest "apparent" size, i.e. bytes checked if shared objects were
/// expanded into a tree. Each table re-checks its shared vtable, so a valid body appears
/// larger than it is: 1.4x to 1.7x for our schema (measured on Metadata, ListTopics and
/// DescribeGroup responses); 4x the body bound leaves margin while stopping
/// DAG-amplification bodies early. protocol_errors.rs decodes a body near the limit.
pub const VERIFIER_APPARENT_BYTES_MAX: usize = 4 * BODY_BYTES_MAX;

/// Initial capacity of an encoder's flatbuffer builder (4 KiB); it grows as needed and an
/// `Encoder` keeps it between frames.
pub const ENCODER_BUILDER_BYTES_INITIAL: usize = 4 << 10;

/// An `Encoder` whose last body exceeded this (256 KiB) replaces its builder, so one large
/// Metadata response does not pin megabytes per connection for its lifetime.
pub const ENCODER_BUILDER_BYTES_KEPT: usize = 256 << 10;

const _: () = assert!(FRAME_BYTES_MIN == FRAME_HEADER_BYTES);
const _: () = assert!(
    FRAME_BYTES_MAX >= FRAME_HEADER_BYTES + BODY_BYTES_MAX + MAX_MESSAGE_BYTES_CEILING as usize
);
// Lengths and payload offsets travel as u32, and a frame length of 2^31 must be refused.
const _: () = assert!(FRAME_BYTES_MAX < (1 << 31));

// ---- broker (net/src/server) ----

/// Default listen address (Kafka's 9092 shifted by 100: no clash with a local Kafka).
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9192";

/// Most shards (executors) a broker runs.
pub const SHARDS_MAX: usize = 256;

/// glommio io_memory per shard: default 1 MiB; glommio registers it with each of its three
/// rings, so 2 shards need 2 x (3 MiB + 512 KiB) of locked memory (the 8 MiB default limit
/// of many machines).
pub const SHARD_IO_MEMORY_BYTES_DEFAULT: usize = 1 << 20;
/// Smallest io_memory accepted (512 KiB).
pub const SHARD_IO_MEMORY_BYTES_MIN: usize = 512 << 10;
/// Largest io_memory accepted (1 GiB).
pub const SHARD_IO_MEMORY_BYTES_MAX: usize = 1 << 30;

/// Request bytes one connection may have read but not answered (default 64 MiB): past it
/// the broker stops reading from that connection.
pub const CONNECTION_INFLIGHT_BYTES_DEFAULT: usize = 64 << 20;
pub const CONNECTION_INFLIGHT_BYTES_MIN: usize = 1 << 20;
pub const CONNECTION_INFLIGHT_BYTES_MAX: usize = 1 << 30;
/// Requests one connection may have unanswered (Kafka clients send at most 5).
pub const CONNECTION_INFLIGHT_REQUESTS_MAX: usize = 64;
/// Bytes asked of the socket per read (64 KiB), more when a frame needs more.
pub const CONNECTION_READ_BYTES: usize = 64 << 10;

/// Messages one shard may have queued to another over the mesh.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Most topics a broker holds.
pub const TOPICS_MAX: usize = 10_000;
/// Most partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Partitions of the internal `__consumer_offsets` topic (all on shard 0, beside the
/// group coordinator).
pub const OFFSETS_TOPIC_PARTITIONS: u32 = 4;
/// Segment size of `__consumer_offsets` (64 MiB: commits are small).
pub const OFFSETS_TOPIC_SEGMENT_BYTES: u64 = 64 << 20;

/// Idempotent producers remembered per partition (least recently used go first).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 1024;
/// Batches remembered per producer and partition for duplicate detection (Kafka: 5).
pub const PRODUCER_BATCHES_KEPT: usize = 5;
/// Producer ids reserved per durable write of the id counter.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// JoinGroup requests the group coordinator holds unanswered at most (each waits for its
/// generation to form, up to the rebalance timeout). Past it a join is refused with a
/// retriable CoordinatorNotAvailable instead of growing the table.
pub const GROUP_JOINS_PARKED_MAX: usize = 10_000;
/// Bytes read per step when the coordinator replays `__consumer_offsets` on start (1 MiB).
pub const OFFSETS_REPLAY_READ_BYTES: usize = 1 << 20;
