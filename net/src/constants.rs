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

// ---- client ----
//
// Defaults follow Kafka's client settings of the same name (units last); every queue and
// buffer of the client SDK has its bound here.

/// Connecting to a broker gives up after this long (10 s).
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// request.timeout.ms: how long a request waits for its response (30 s).
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// retry.backoff.ms: first pause before a retry (100 ms).
pub const RETRY_BACKOFF_MS_DEFAULT: u64 = 100;

/// retry.backoff.max.ms: the exponential back-off stops growing here (1 s).
pub const RETRY_BACKOFF_MAX_MS_DEFAULT: u64 = 1_000;

/// Each back-off is spread by up to +/- this share (Kafka's 20 %), so that clients that
/// failed together do not retry in lock step.
pub const RETRY_BACKOFF_JITTER_PERCENT: u64 = 20;

/// Requests one connection has in flight at most, whatever the caller asks for: bounds
/// the waiter table and what a broker holds for one client.
pub const CONNECTION_IN_FLIGHT_MAX: usize = 64;

/// A connection's reader thread reads up to this much per call (256 KiB): a fetch
/// response of a few MiB arrives in a handful of reads.
pub const CONNECTION_READ_CHUNK_BYTES: usize = 256 << 10;

/// Granularity of request deadlines: the reader thread's read timeout (20 ms), after
/// which it expires requests past their deadline.
pub const CONNECTION_TICK_MS: u64 = 20;

/// Brokers in a bootstrap list at most.
pub const BOOTSTRAP_SERVERS_MAX: usize = 64;

/// client.id length bound; the group coordinator refuses longer ones.
pub const CLIENT_ID_BYTES_MAX: usize = cfa_cluster::constants::CLIENT_ID_BYTES_MAX;

/// metadata.max.age.ms: cached metadata is refreshed at least this often (5 min).
pub const METADATA_MAX_AGE_MS_DEFAULT: u64 = 300_000;

/// batch.size: a partition's open batch is closed once it holds this many bytes (16 KiB).
pub const BATCH_SIZE_BYTES_DEFAULT: usize = 16 << 10;

/// linger.ms: a batch waits at most this long for more records (5 ms).
pub const LINGER_MS_DEFAULT: u64 = 5;

/// buffer.memory: bytes of records a producer holds before `send` blocks (32 MiB).
pub const BUFFER_MEMORY_BYTES_DEFAULT: usize = 32 << 20;

/// max.block.ms: `send` blocks this long at most for buffer space or metadata (60 s).
pub const MAX_BLOCK_MS_DEFAULT: u64 = 60_000;

/// max.in.flight.requests.per.connection (5).
pub const MAX_IN_FLIGHT_PER_CONNECTION_DEFAULT: usize = 5;

/// An idempotent producer keeps per-partition order only with at most 5 requests in
/// flight per connection: the broker remembers the last 5 batches of each producer.
pub const MAX_IN_FLIGHT_IDEMPOTENT_MAX: usize = 5;

/// delivery.timeout.ms: a record's delivery report comes within this long of `send` (2 min).
pub const DELIVERY_TIMEOUT_MS_DEFAULT: u64 = 120_000;

/// max.request.size: largest produce request, and so largest record, a producer sends
/// (1 MiB, the default max.message.bytes).
pub const MAX_REQUEST_BYTES_DEFAULT: usize = 1 << 20;

/// Records one producer batch holds at most (the wire's record count is a u32; this keeps
/// the per-record completion list of a batch bounded too).
pub const BATCH_RECORDS_MAX: usize = 1 << 20;

/// session.timeout.ms (45 s): the coordinator removes a member silent for this long.
pub const SESSION_TIMEOUT_MS_DEFAULT: u32 = cfa_cluster::constants::SESSION_TIMEOUT_MS_DEFAULT;

/// heartbeat.interval.ms (3 s).
pub const HEARTBEAT_INTERVAL_MS_DEFAULT: u32 = 3_000;

/// max.poll.interval.ms, sent as the rebalance timeout: how long a member may take to
/// rejoin during a rebalance (5 min).
pub const REBALANCE_TIMEOUT_MS_DEFAULT: u32 = cfa_cluster::constants::REBALANCE_TIMEOUT_MS_DEFAULT;

/// max.poll.records: records one `poll` returns at most (500).
pub const MAX_POLL_RECORDS_DEFAULT: usize = 500;

/// fetch.max.bytes (50 MiB, Kafka's figure). A fetch request asks for at most
/// `PAYLOAD_BYTES_MAX` of it, the most one frame carries.
pub const FETCH_MAX_BYTES_DEFAULT: u32 = 50 << 20;

/// max.partition.fetch.bytes (1 MiB).
pub const MAX_PARTITION_FETCH_BYTES_DEFAULT: u32 = 1 << 20;

/// Records a consumer may hold per partition and still fetch it again (1 MiB, as
/// counted by the subscription: payload plus the record itself). The next fetch then
/// travels while the application works through the last one; 0 fetches only an empty
/// partition (Kafka's rule). A partition holds at most this plus one fetch.
pub const PARTITION_PREFETCH_BYTES_DEFAULT: u32 = 1 << 20;

/// The most `partition_prefetch_bytes` may be (64 MiB per partition).
pub const PARTITION_PREFETCH_BYTES_MAX: u32 = 64 << 20;

/// fetch.max.wait.ms (500 ms): how long the broker may hold a fetch for fetch.min.bytes.
pub const FETCH_MAX_WAIT_MS_DEFAULT: u32 = 500;

/// fetch.min.bytes (1).
pub const FETCH_MIN_BYTES_DEFAULT: u32 = 1;

/// auto.commit.interval.ms (5 s).
pub const AUTO_COMMIT_INTERVAL_MS_DEFAULT: u64 = 5_000;

/// Assignors a consumer offers by default, most preferred first (Kafka 3's default list).
pub const ASSIGNORS_DEFAULT: &[&str] = &["range", "cooperative-sticky"];

const _: () = assert!(MAX_REQUEST_BYTES_DEFAULT <= PAYLOAD_BYTES_MAX);
const _: () = assert!(MAX_IN_FLIGHT_PER_CONNECTION_DEFAULT <= MAX_IN_FLIGHT_IDEMPOTENT_MAX);
const _: () = assert!(MAX_IN_FLIGHT_IDEMPOTENT_MAX <= CONNECTION_IN_FLIGHT_MAX);
const _: () = assert!(RETRY_BACKOFF_MS_DEFAULT <= RETRY_BACKOFF_MAX_MS_DEFAULT);

// ---- broker (net/src/server) ----

/// Default listen address (Kafka's 9092 shifted by 100: no clash with a local Kafka).
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9192";

/// Most shards (executors) a broker runs.
pub const SHARDS_MAX: usize = 256;
// Metadata carries a partition's shard as a ushort.
const _: () = assert!(SHARDS_MAX <= u16::MAX as usize);

/// glommio io_memory per shard: default 1 MiB; glommio registers it with each of its three
/// rings, so 2 shards need 2 x (3 MiB + 512 KiB) of locked memory (the 8 MiB default limit
/// of many machines).
pub const SHARD_IO_MEMORY_BYTES_DEFAULT: usize = 1 << 20;
/// Smallest io_memory accepted (512 KiB).
pub const SHARD_IO_MEMORY_BYTES_MIN: usize = 512 << 10;
/// Largest io_memory accepted (1 GiB).
pub const SHARD_IO_MEMORY_BYTES_MAX: usize = 1 << 30;

/// Batch-cache bytes one shard's partitions share (default 256 MiB): each partition gets
/// the smaller of its own batch_cache_bytes and this divided among the shard's
/// partitions, so memory stays bounded as partitions grow to the thousands.
pub const SHARD_BATCH_CACHE_BYTES_DEFAULT: usize = 256 << 20;
/// Smallest shard cache budget accepted (1 MiB).
pub const SHARD_BATCH_CACHE_BYTES_MIN: usize = 1 << 20;
/// Largest shard cache budget accepted (1 TiB).
pub const SHARD_BATCH_CACHE_BYTES_MAX: usize = 1 << 40;

/// Request bytes one connection may have read but not answered (default 64 MiB): past it
/// the broker stops reading from that connection.
pub const CONNECTION_INFLIGHT_BYTES_DEFAULT: usize = 64 << 20;
pub const CONNECTION_INFLIGHT_BYTES_MIN: usize = 1 << 20;
pub const CONNECTION_INFLIGHT_BYTES_MAX: usize = 1 << 30;
/// Requests one connection may have unanswered (Kafka clients send at most 5).
pub const CONNECTION_INFLIGHT_REQUESTS_MAX: usize = 64;
/// Bytes asked of the socket by a connection's first read (4 KiB): the buffer is
/// allocated for what a read asks. When reads zero-filled that room first, a 64 KiB first
/// read made every idle connection resident (server_idle_connections.rs: 743 MiB of RSS
/// growth for 9,938 idle connections, both ends in one process; 161 MiB with this). One
/// extra read per connection lifetime is the cost.
pub const CONNECTION_FIRST_READ_BYTES: usize = 4 << 10;
/// Bytes asked of the socket per read (64 KiB), more when a frame needs more.
pub const CONNECTION_READ_BYTES: usize = 64 << 10;
/// A produced batch is appended as a slice of its request frame (no copy) when the frame's
/// allocation is at most this many times the batch (16); a smaller share is copied out.
/// The slice is charged with the whole allocation in the partition's pending and cache
/// budgets, so the ratio bounds how much of those budgets a batch may use up: the copy
/// it saves was 11% of a max-rate run's CPU.
pub const SHARED_BATCH_PIN_RATIO_MAX: usize = 16;
/// A broker connection reads straight into its buffer's uninitialised memory; when the
/// socket is empty it waits through glommio with a read into a buffer of this size (4
/// KiB, copied over), kept per connection.
pub const CONNECTION_WAIT_READ_BYTES: usize = 4 << 10;

/// How often each shard applies retention (retention.ms / retention.bytes) to its
/// partitions, as Kafka's log.retention.check.interval.ms (default 5 min). One timer per
/// shard; a partition whose active segment rolls is also checked right away.
pub const RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Shortest check interval accepted (10 ms): below it the timer costs more than it buys.
pub const RETENTION_CHECK_INTERVAL_MS_MIN: u64 = 10;
/// Longest check interval accepted (1 day).
pub const RETENTION_CHECK_INTERVAL_MS_MAX: u64 = 86_400_000;

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
/// A partition's producer table is rebuilt after a crash (no valid snapshot) from about
/// this many bytes at the end of its log (64 MiB): Kafka's clients retry a batch for at most
/// delivery.timeout.ms (2 min), so a retry older than the last 64 MiB of a partition is
/// unlikely. The rebuild starts at the base of the segment holding that point, so it reads
/// at most this plus one segment (the engine's crash recovery already scans the active one).
pub const PRODUCER_STATE_REBUILD_BYTES: u64 = 64 << 20;
/// Bytes asked of the log per read while rebuilding producer state (1 MiB).
pub const PRODUCER_STATE_REBUILD_READ_BYTES: usize = 1 << 20;
/// The producer-state snapshot file in each partition directory (docs/format.md).
pub const PRODUCER_SNAPSHOT_FILE: &str = "producers.snapshot";

/// Producer ids reserved per durable write of the id counter.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// JoinGroup requests the group coordinator holds unanswered at most (each waits for its
/// generation to form, up to the rebalance timeout). Past it a join is refused with a
/// retriable CoordinatorNotAvailable instead of growing the table.
pub const GROUP_JOINS_PARKED_MAX: usize = 10_000;
/// Bytes read per step when the coordinator replays `__consumer_offsets` on start (1 MiB).
pub const OFFSETS_REPLAY_READ_BYTES: usize = 1 << 20;

// ---- metrics endpoint (net/src/server/metrics) ----

/// Upper bounds (microseconds) of the `cfa_fsync_duration_seconds` buckets: 50 us to 2.5 s.
/// The machine's fdatasync runs 60-85 us after an overwrite and 2-8 ms after an append
/// (design.md), so the low buckets separate those two regimes and the high ones catch a
/// stalling disk.
pub const METRICS_FSYNC_BUCKETS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];
/// Upper bounds (microseconds) of the `cfa_request_duration_seconds` buckets: 100 us to
/// 30 s, since a long-poll fetch legitimately waits up to its max_wait_ms.
pub const METRICS_REQUEST_BUCKETS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];
/// Most buckets a histogram may have (bounds the atomics per histogram and the lines per
/// scrape).
pub const METRICS_HISTOGRAM_BUCKETS_MAX: usize = 32;
/// Partitions a scrape lists at most (six series each). Partitions opened past it are
/// still counted but not listed, and `cfa_metrics_series_dropped_total` says so: the
/// scrape body stays around 10 MiB at most.
pub const METRICS_PARTITION_SERIES_MAX: usize = 20_000;
/// Committed offsets (group, topic, partition) kept for `cfa_group_lag_records` at most.
pub const METRICS_GROUP_LAG_SERIES_MAX: usize = 20_000;
/// Largest HTTP request head the metrics endpoint reads (8 KiB); a larger one gets 431.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 << 10;
/// A scrape connection must send its request head within this long, and each write of
/// the response must progress within it (5 s): one stuck scraper cannot hold the
/// single-connection endpoint for long.
pub const METRICS_CONNECTION_TIMEOUT_MS: u64 = 5_000;
/// While no scraper connects, the metrics thread checks its stop flag this often (50 ms):
/// what a broker shutdown may wait for it.
pub const METRICS_ACCEPT_POLL_MS: u64 = 50;

const _: () = assert!(METRICS_FSYNC_BUCKETS_US.len() <= METRICS_HISTOGRAM_BUCKETS_MAX);
const _: () = assert!(METRICS_REQUEST_BUCKETS_US.len() <= METRICS_HISTOGRAM_BUCKETS_MAX);
