//! Every limit and default of the storage engine, in one place.
//!
//! TigerBeetle-style: a bound on every buffer, queue and batch, so that memory
//! stays bounded under any load. Names carry their unit last.

/// Direct I/O alignment: every write starts at a multiple of this and is a multiple of it long.
pub const PAGE_BYTES: usize = 4096;

/// Fixed size of a record-batch header (see docs/format.md).
pub const BATCH_HEADER_BYTES: usize = 64;

/// A batch builder hashes its records section (CRC32) each time this much (16 KiB) more
/// has been written: the bytes are still in the core's cache then (L1 holds 48 KiB on this
/// machine). Measured with a standalone loop here: ~28 ns per KiB so, 110-125 ns per KiB
/// when a whole 256 KiB batch is hashed at seal time from L3 or DRAM, as the sender did.
/// Smaller steps pay the hasher's per-call overhead (1 KiB steps: ~55 ns per KiB).
pub const BATCH_CRC_STEP_BYTES: usize = 16 << 10;

/// A cache line on x86-64: the step of the batch builder's prefetches.
pub const CACHE_LINE_BYTES: usize = 64;

/// The most a batch builder prefetches ahead of its next record (4 KiB): as much as
/// one record of the common sizes needs; a larger record's copy streams anyway, and a
/// longer run of prefetches only waits for the core's line-fill buffers. With 1 KiB
/// records the prefetch cut the max-rate CPU per record by ~4% (bench/REPORT.md).
pub const BATCH_PREFETCH_BYTES_MAX: usize = 4 << 10;

/// Default max.message.bytes: the largest record batch a partition accepts (1 MiB).
pub const MAX_MESSAGE_BYTES_DEFAULT: u32 = 1 << 20;

/// Hard ceiling for max.message.bytes, whatever the config says (16 MiB).
pub const MAX_MESSAGE_BYTES_CEILING: u32 = 16 << 20;

/// Default segment.bytes: roll the active segment when it would grow past this (1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;

/// Smallest segment.bytes accepted (must hold one max-size batch plus a page).
pub const SEGMENT_BYTES_MIN: u64 = 64 * 1024;

/// Largest segment.bytes accepted: index positions are u32 (4 GiB - 1 page).
pub const SEGMENT_BYTES_MAX: u64 = (u32::MAX as u64 + 1) - PAGE_BYTES as u64;

/// Default segment.ms: roll a non-empty active segment this old (7 days).
pub const SEGMENT_MS_DEFAULT: u64 = 7 * 24 * 3600 * 1000;

/// Default retention.ms (7 days). Negative in config means "no time limit".
pub const RETENTION_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;

/// Default retention.bytes per partition (1 GiB). Negative means "no size limit".
pub const RETENTION_BYTES_DEFAULT: i64 = 1 << 30;

/// Default index.interval.bytes: one sparse index entry per this many log bytes (4 KiB).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;

/// Default per-partition batch cache: recent batches kept in memory for tail reads (4 MiB).
pub const BATCH_CACHE_BYTES_DEFAULT: usize = 4 << 20;

/// Appended but not yet written bytes per partition before `append` waits for a write (8 MiB).
/// This is the engine's backpressure bound.
pub const PENDING_BYTES_MAX_DEFAULT: usize = 8 << 20;

/// One write system call carries at most this much (1 MiB); larger flushes are split
/// into several writes issued together, so the disk sees a queue depth above one.
pub const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// A partition's write buffers (staging, see staging.rs) are at least this big (64 KiB), so
/// a run of small batches lands in few, larger writes; at most WRITE_CHUNK_BYTES. With a
/// thousand partitions each holding one buffer, 64 MiB.
pub const STAGE_CHUNK_MIN_BYTES: usize = 64 << 10;

/// Default zero-fill ahead of the tail: off. Measured on the project machine (engine bench,
/// 6 partitions, fsync per 64 KiB batch, 16 MiB ahead): +28% records/s and -30% p50
/// acknowledgement latency (data writes are overwrites, their fsyncs commit no ext4 extent
/// conversion), but p99 +20% and every byte written twice. Worth it where p50 and
/// throughput matter more than p99 and disk bandwidth.
pub const ZERO_FILL_AHEAD_BYTES_DEFAULT: u64 = 0;

/// One `zero_fill_ahead` call writes at most this much (4 MiB), then fdatasyncs the extent
/// conversions. Smaller steps made those fdatasyncs more frequent.
pub const ZERO_FILL_STEP_BYTES: u64 = 4 << 20;

/// One zero-fill write carries this much (256 KiB), one write in flight at a time: the
/// zeros keep ahead of a partition's data while the disk queue stays short, so data
/// writes and their fdatasyncs do not queue behind megabytes of zeros.
pub const ZERO_FILL_WRITE_BYTES: usize = 256 * 1024;

/// Default for recycling deleted segments: on. Measured on the project machine
/// (max-throughput-1kb, where retention deletes six 1 GiB segments at once about 9 s in,
/// 2 interleaved pairs): 1.16-1.20M records/s and a publish max of 39-51 ms, against
/// 1.05-1.06M and 1.08-1.09 s when unlinking. On a disk mounted with online `discard`,
/// freeing a written GiB trims it (0.2 s) and stalls every writer meanwhile.
pub const RECYCLE_SEGMENTS_DEFAULT: bool = true;

/// Deleted segment files a partition keeps for reuse (1): one suffices when each roll
/// is followed by one deletion, and each kept file is disk that retention.bytes does not
/// count.
pub const RECYCLE_POOL_FILES_MAX: usize = 1;

/// A disk read for fetch reads at least this much at once (64 KiB) to amortise the syscall.
pub const READ_CHUNK_BYTES_MIN: usize = 64 * 1024;

/// A single fetch from disk never reads more than this (8 MiB).
pub const READ_BYTES_MAX: usize = 8 << 20;

/// Default io_memory for one glommio executor (1 MiB). glommio registers it with each of its
/// three rings, which counts 3x against RLIMIT_MEMLOCK (8 MiB on the project machines).
pub const IO_MEMORY_BYTES_DEFAULT: usize = 1 << 20;

/// Segment file names: base offset zero-padded to this many digits.
pub const SEGMENT_NAME_DIGITS: usize = 20;

/// Largest records section a compressed batch may inflate to (32 MiB: twice the
/// max.message.bytes ceiling). Decoders stop at this many bytes and refuse the batch, so a
/// small hostile batch (a zip bomb) cannot make a consumer allocate without bound; producers
/// refuse to compress a records section larger than this, since no consumer could read it.
pub const DECOMPRESSED_BYTES_MAX: usize = 2 * MAX_MESSAGE_BYTES_CEILING as usize;

/// zstd decoders accept back-reference windows up to 2^this bytes. A window never needs to
/// exceed the content, so log2 of `DECOMPRESSED_BYTES_MAX` is enough, and a frame that asks
/// for more (to make the decoder allocate a large window) is refused.
pub const ZSTD_WINDOW_LOG_MAX: u32 = DECOMPRESSED_BYTES_MAX.ilog2();

/// gzip levels accepted (Kafka's compression.gzip.level range): 1 fastest, 9 smallest.
pub const GZIP_LEVEL_MIN: i32 = 1;
pub const GZIP_LEVEL_MAX: i32 = 9;

/// Default gzip level: zlib's default, which Kafka also uses.
pub const GZIP_LEVEL_DEFAULT: i32 = 6;

/// zstd levels accepted: the library's full range (negative levels are the fast modes),
/// as Kafka's compression.zstd.level.
pub const ZSTD_LEVEL_MIN: i32 = -(1 << 17);
pub const ZSTD_LEVEL_MAX: i32 = 22;

/// Default zstd level: the library's default, which Kafka also uses.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

const _: () = assert!(DECOMPRESSED_BYTES_MAX.is_power_of_two());
const _: () = assert!(DECOMPRESSED_BYTES_MAX >= MAX_MESSAGE_BYTES_CEILING as usize);
