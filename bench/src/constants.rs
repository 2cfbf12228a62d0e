//! Every limit of the bench harness in one place: what a workload may ask for, and the
//! bounds that keep every load loop finite in time, memory and disk.

use std::time::Duration;

/// Longest measured phase a workload may ask for (s).
pub const DURATION_S_MAX: f64 = 3600.0;
/// Longest warm-up (s).
pub const WARMUP_S_MAX: f64 = 600.0;
pub const TOPICS_MAX: u32 = 100;
/// Partitions over all topics of one workload.
pub const PARTITIONS_MAX: u64 = 10_000;
/// Largest record value a workload may ask for (the broker's default max.message.bytes
/// is 1 MiB; a batch needs room for its header).
pub const RECORD_BYTES_MAX: usize = 1_000_000;
pub const KEY_COUNT_MAX: u64 = 100_000_000;
/// Producer clients (each a thread and a connection per broker).
pub const PRODUCERS_MAX: u32 = 64;
/// Consumer clients over all groups.
pub const CONSUMERS_MAX: u32 = 64;
/// Highest target rate (records/s over all producers); 0 means max rate.
pub const RATE_RECORDS_PER_S_MAX: u64 = 100_000_000;
/// Largest backlog built before a consume-backlog phase (bytes).
pub const BACKLOG_BYTES_MAX: u64 = 64_000_000_000;
/// A run stops producing after this many bytes even if its time is not up (disk use).
pub const RUN_BYTES_MAX: u64 = 64_000_000_000;

/// In max-rate mode the clock is read once per this many records (their intended send
/// time is that reading; the error is the time to send this many records, ~10-50 us).
pub const MAX_RATE_CLOCK_EVERY: u64 = 16;
/// Bytes at the start of each value carrying its intended send time (ns since the run's
/// epoch, little endian), for end-to-end latency. Shorter values carry none.
pub const STAMP_BYTES: usize = 8;
/// How often the live progress line and the per-second samples are taken.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// After the producers stop, consumers get this long to read what was acknowledged.
pub const CONSUMER_DRAIN_MAX: Duration = Duration::from_secs(30);
/// How long consumers may take to join their groups and get every partition.
pub const CONSUMER_JOIN_MAX: Duration = Duration::from_secs(60);
/// A producer's `close` (delivering what is queued) is bounded by its delivery timeout;
/// the driver gives up on a stuck run after this much longer than planned.
pub const RUN_OVERTIME_MAX: Duration = Duration::from_secs(120);
/// Consumer poll timeout (bounds how long a stop request waits).
pub const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Open-loop pacing: the shortest sleep of a producer ahead of its schedule. Shorter sleeps
/// cost more CPU in timer programming than the records they pace (see `driver::pace`);
/// a record sent up to this much late has the lateness in its latency.
pub const PACING_SLEEP_MIN: Duration = Duration::from_micros(100);
/// Distinct values in the zipfian key table (its CDF is precomputed).
pub const ZIPF_TABLE_MAX: u64 = 1_000_000;

/// The pipeline floor (`floor.rs`): at most this many producer/receiver pairs.
pub const FLOOR_STREAMS_MAX: u32 = 64;
/// The floor writes at most this many files side by side (one per partition, up to this;
/// a workload with more partitions gets a floor of this many files).
pub const FLOOR_FILES_MAX: u32 = 64;
/// Largest floor batch (bytes); the receiver holds one of this size per stream.
pub const FLOOR_BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Batches a floor producer keeps unacknowledged (as a producer's in-flight requests).
pub const FLOOR_IN_FLIGHT_MAX: usize = 8;
/// Direct-I/O alignment of the floor's buffers, offsets and write lengths.
pub const FLOOR_ALIGN_BYTES: usize = 4096;
/// The floor fallocates its files in steps of this many bytes, as the engine's segments.
pub const FLOOR_FALLOCATE_BYTES: u64 = 16 * 1024 * 1024;
/// A fresh-blocks floor file is rolled at this size (the default segment size).
pub const FLOOR_FILE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// A fresh-blocks floor stream deletes its oldest file past this many bytes (disk use).
pub const FLOOR_STREAM_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;
/// A written-blocks floor stream overwrites files of this size in all (split among its
/// files) in a circle.
pub const FLOOR_WRITTEN_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Write size used to write that file once before the run.
pub const FLOOR_PREWRITE_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Direct-I/O writes a floor stream keeps in flight (writer threads and buffers).
pub const FLOOR_WRITES_IN_FLIGHT: usize = 4;

/// Bytes per write of the disk probe (`disk_probe.rs`): the lone producer's batch.
pub const PROBE_WRITE_BYTES: usize = 64 << 10;
/// Writes per probe stream (at most 128 MiB of disk per file) ...
pub const PROBE_WRITES_MAX: usize = 2048;
/// ... or this long, whichever ends first.
pub const PROBE_DURATION: Duration = Duration::from_secs(3);
/// The loaded probe's streams: one file and one thread each, as partitions have.
pub const PROBE_LOADED_STREAMS_MAX: usize = 64;

/// Thread groups below this many cores are left off a run's CPU line (the main thread,
/// idle helpers).
pub const CPU_LINE_CORES_MIN: f64 = 0.01;
