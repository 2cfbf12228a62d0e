//! Engine-level benchmark: N partition logs on the real disk (glommio, O_DIRECT), 1 KiB
//! records packed into batches, concurrent producers per partition awaiting "written"
//! (acks=1 with group commit) or "durable" (fsync per batch), then read-back throughput
//! from the batch cache and from disk.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cfa_engine::storage::glommio_fs::{check_memlock, GlommioStorage};
use cfa_engine::{
    BatchBuilder, Clock, Durability, FlushPolicy, LogConfig, PartitionLog, ProducerStamp,
    StopSignal, SystemClock,
};
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::counting_storage::{counting, CountingStorage, IoStats, IoStatsRef};
use crate::report::{latency_histogram, mb_per_s, Percentiles};

/// io_memory of the bench executor (1 MiB): fits the 8 MiB memlock limit 3x over.
pub const IO_MEMORY_BYTES: usize = cfa_engine::constants::IO_MEMORY_BYTES_DEFAULT;
/// Concurrent producers per partition (each keeps one batch in flight).
pub const PRODUCERS_PER_PARTITION_DEFAULT: usize = 4;
/// A scenario stops after this many bytes in all (shared evenly by its shards) even if
/// its time is not up (12 GB: 1.7 GB/s for 7 s; bounds the disk space a run takes).
pub const SCENARIO_BYTES_MAX: u64 = 12_000_000_000;
/// Group-commit policy of the acks=1 scenarios: fsync every 4 MiB.
pub const GROUP_COMMIT_FSYNC_BYTES: u64 = 4 << 20;
/// ... or every 100 ms, whichever comes first.
pub const GROUP_COMMIT_FSYNC_MS: u64 = 100;
/// Largest partition count a bench accepts.
pub const PARTITIONS_MAX: usize = 1024;
/// Bytes one fetch asks for in the read phase (1 MiB, Kafka's max.partition.fetch.bytes).
pub const READ_FETCH_BYTES: usize = 1 << 20;
/// The cache read phase re-reads each partition's cached tail for this long ...
pub const READ_CACHE_PHASE: Duration = Duration::from_secs(1);
/// ... or this many rounds over the shard's partitions, whichever comes first.
pub const READ_CACHE_ROUNDS_MAX: u32 = 100_000;
/// The disk read phase stops after this long even if data is left (a 7 s write phase can
/// leave 8 GB behind).
pub const READ_DISK_PHASE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Memlock(String),
    #[error("bench data dir {dir}: {source}")]
    DataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage engine: {0}")]
    Log(#[from] cfa_engine::LogError),
    #[error("glommio executor: {0}")]
    Executor(String),
    #[error("invalid bench setting: {0}")]
    Invalid(String),
}

/// What a producer waits for before sending the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckMode {
    /// acks=1 analogue: written to the device; fsync grouped by bytes/time.
    Written,
    /// acks=all with fsync per batch: fdatasync before the ack.
    Durable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub partitions: usize,
    pub batch_bytes: usize,
    pub record_bytes: usize,
    pub producers_per_partition: usize,
    /// Executors (one per core, thread-per-core); partition p belongs to shard p % shards.
    pub shards: usize,
    pub ack: AckMode,
    pub duration_s: f64,
    pub zero_fill_ahead_bytes: u64,
    /// Also measure read-back throughput (cache and disk).
    pub read_back: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub records: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub write_records_per_s: f64,
    /// MB = 10^6 bytes.
    pub write_mb_per_s: f64,
    pub ack_latency_us: Percentiles,
    /// Bytes the engine handed to the disk (page padding and zero-fill included).
    pub device_written_bytes: u64,
    pub device_write_calls: u64,
    /// Latency of one write call (up to 1 MiB) as the engine saw it.
    pub device_write_latency_us: Percentiles,
    /// fdatasyncs the engine issued during the write phase.
    pub fdatasyncs: u64,
    /// fdatasync latency as the engine saw it (io_uring submit to completion).
    pub fdatasync_latency_us: Percentiles,
    /// Writes that carried their own sync (O_DSYNC, one round trip) and their latency.
    pub durable_writes: u64,
    pub durable_write_latency_us: Percentiles,
    pub read_cache_mb_per_s: Option<f64>,
    pub read_disk_mb_per_s: Option<f64>,
    /// Batch bytes the disk read phase returned, and bytes it read from the files to get
    /// them (more when a fetch reads a chunk twice).
    pub read_disk_bytes: Option<u64>,
    pub read_disk_device_bytes: Option<u64>,
}

impl Scenario {
    fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: String| Err(BenchError::Invalid(m));
        if self.partitions == 0 || self.partitions > PARTITIONS_MAX {
            return bad(format!(
                "partitions must be 1..={PARTITIONS_MAX}, got {}",
                self.partitions
            ));
        }
        if self.shards == 0 || self.shards > self.partitions {
            return bad(format!(
                "shards must be 1..=partitions, got {}",
                self.shards
            ));
        }
        if self.record_bytes == 0 || self.batch_bytes < self.record_bytes {
            return bad(format!(
                "batch bytes {} must hold at least one record of {} bytes",
                self.batch_bytes, self.record_bytes
            ));
        }
        if self.batch_bytes > cfa_engine::constants::MAX_MESSAGE_BYTES_CEILING as usize / 2 {
            return bad(format!("batch bytes {} is above 8 MiB", self.batch_bytes));
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 3600.0) {
            return bad(format!(
                "duration must be in (0, 3600] s, got {}",
                self.duration_s
            ));
        }
        Ok(())
    }

    fn log_config(&self) -> LogConfig {
        let max_message_bytes = (self.batch_bytes + 4096).max(1 << 20) as u32;
        LogConfig {
            max_message_bytes,
            pending_bytes_max: (self.batch_bytes * (self.producers_per_partition + 1)).max(8 << 20),
            flush: match self.ack {
                AckMode::Written => FlushPolicy::Interval {
                    bytes: GROUP_COMMIT_FSYNC_BYTES,
                    ms: GROUP_COMMIT_FSYNC_MS,
                },
                AckMode::Durable => FlushPolicy::EveryBatch,
            },
            zero_fill_ahead_bytes: self.zero_fill_ahead_bytes,
            retention_bytes: -1,
            retention_ms: -1,
            ..LogConfig::default()
        }
    }
}

/// One shard per core, never more shards than partitions.
pub fn default_shards(partitions: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(partitions).max(1)
}

/// The standard run behind `cfa bench` (about 30 s in all with the default duration).
pub fn standard_scenarios(duration_s: f64, partitions: usize) -> Vec<Scenario> {
    let s = |name: &str, batch_bytes: usize, ack: AckMode, read_back: bool| Scenario {
        name: name.to_owned(),
        partitions,
        batch_bytes,
        record_bytes: 1024,
        producers_per_partition: PRODUCERS_PER_PARTITION_DEFAULT,
        shards: default_shards(partitions),
        ack,
        duration_s,
        zero_fill_ahead_bytes: cfa_engine::constants::ZERO_FILL_AHEAD_BYTES_DEFAULT,
        read_back,
    };
    // One producer on one partition: the fsync latency a lone acks=all client sees,
    // comparable with the disk's fdatasync latency at queue depth 1.
    let lone = Scenario {
        partitions: 1,
        producers_per_partition: 1,
        shards: 1,
        ..s(
            "fsync-per-batch-64kib-qd1",
            64 << 10,
            AckMode::Durable,
            false,
        )
    };
    vec![
        s(
            "acks1-group-commit-1mib-batches",
            1 << 20,
            AckMode::Written,
            true,
        ),
        s(
            "acks1-group-commit-64kib-batches",
            64 << 10,
            AckMode::Written,
            false,
        ),
        s(
            "fsync-per-batch-64kib-batches",
            64 << 10,
            AckMode::Durable,
            false,
        ),
        lone,
    ]
}

/// Runs scenarios one after another, each in a fresh temp dir under `data_dir`, each on
/// `shards` executors pinned one per core.
pub fn run_scenarios(
    data_dir: &Path,
    scenarios: &[Scenario],
) -> Result<Vec<ScenarioResult>, BenchError> {
    let shards_max = scenarios.iter().map(|s| s.shards).max().unwrap_or(1);
    check_memlock(IO_MEMORY_BYTES, shards_max).map_err(BenchError::Memlock)?;
    if !cfa_engine::malloc_tuning::keep_freed_memory() {
        tracing::warn!("malloc settings not applied: expect page faults on every write buffer");
    }
    std::fs::create_dir_all(data_dir).map_err(|source| BenchError::DataDir {
        dir: data_dir.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for s in scenarios {
        s.validate()?;
        let tmp = tempfile::tempdir_in(data_dir).map_err(|source| BenchError::DataDir {
            dir: data_dir.display().to_string(),
            source,
        })?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut handles = Vec::with_capacity(s.shards);
        for shard in 0..s.shards {
            let (dir, scenario) = (tmp.path().to_owned(), s.clone());
            let parts: Vec<usize> = (shard..s.partitions).step_by(s.shards).collect();
            let handle = LocalExecutorBuilder::new(Placement::Fixed(shard % cores))
                .name(&format!("cfa-shard-{shard}"))
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move { run_shard(&dir, scenario, parts).await })
                .map_err(|e| BenchError::Executor(e.to_string()))?;
            handles.push(handle);
        }
        let mut outcomes = Vec::with_capacity(handles.len());
        for h in handles {
            outcomes.push(
                h.join()
                    .map_err(|e| BenchError::Executor(e.to_string()))??,
            );
        }
        out.push(merge(s.clone(), outcomes));
    }
    Ok(out)
}

/// What one shard measured.
struct ShardOutcome {
    records: u64,
    bytes: u64,
    elapsed_s: f64,
    histogram: Histogram<u64>,
    /// The file layer's counters over the write phase.
    io: IoStats,
    read_cache: Option<ReadOutcome>,
    read_disk: Option<ReadOutcome>,
}

/// What one read phase of one shard measured.
#[derive(Debug, Clone, Copy, Default)]
struct ReadOutcome {
    bytes: u64,
    secs: f64,
    /// Bytes read from the files (0 for the cache phase).
    device_bytes: u64,
}

impl ReadOutcome {
    fn add(self, o: ReadOutcome) -> ReadOutcome {
        ReadOutcome {
            bytes: self.bytes + o.bytes,
            secs: self.secs.max(o.secs),
            device_bytes: self.device_bytes + o.device_bytes,
        }
    }
}

fn merge(scenario: Scenario, outcomes: Vec<ShardOutcome>) -> ScenarioResult {
    let mut histogram = latency_histogram();
    let mut io = IoStats::default();
    let (mut records, mut bytes, mut elapsed_s) = (0, 0, 0f64);
    let (mut cache, mut disk) = (ReadOutcome::default(), ReadOutcome::default());
    for o in &outcomes {
        records += o.records;
        bytes += o.bytes;
        elapsed_s = elapsed_s.max(o.elapsed_s);
        histogram
            .add(&o.histogram)
            .expect("histograms share bounds");
        add_io(&mut io, &o.io);
        cache = o.read_cache.map_or(cache, |r| cache.add(r));
        disk = o.read_disk.map_or(disk, |r| disk.add(r));
    }
    let read_back = scenario.read_back;
    ScenarioResult {
        write_records_per_s: records as f64 / elapsed_s.max(1e-9),
        write_mb_per_s: mb_per_s(bytes, elapsed_s),
        scenario,
        records,
        bytes,
        elapsed_s,
        ack_latency_us: Percentiles::from_histogram(&histogram),
        device_written_bytes: io.written_bytes,
        device_write_calls: io.write_calls,
        device_write_latency_us: Percentiles::from_histogram(&io.write_histogram),
        fdatasyncs: io.fdatasyncs,
        fdatasync_latency_us: Percentiles::from_histogram(&io.fdatasync_histogram),
        durable_writes: io.durable_writes,
        durable_write_latency_us: Percentiles::from_histogram(&io.durable_write_histogram),
        read_cache_mb_per_s: read_back.then(|| mb_per_s(cache.bytes, cache.secs)),
        read_disk_mb_per_s: read_back.then(|| mb_per_s(disk.bytes, disk.secs)),
        read_disk_bytes: read_back.then_some(disk.bytes),
        read_disk_device_bytes: read_back.then_some(disk.device_bytes),
    }
}

fn add_io(sum: &mut IoStats, o: &IoStats) {
    sum.write_calls += o.write_calls;
    sum.written_bytes += o.written_bytes;
    sum.write_histogram
        .add(&o.write_histogram)
        .expect("histograms share bounds");
    sum.fdatasyncs += o.fdatasyncs;
    sum.fdatasync_histogram
        .add(&o.fdatasync_histogram)
        .expect("histograms share bounds");
    sum.durable_writes += o.durable_writes;
    sum.durable_write_histogram
        .add(&o.durable_write_histogram)
        .expect("histograms share bounds");
}

type Log = PartitionLog<CountingStorage<GlommioStorage>>;

/// Opens the shard's partitions, all at once (a reopen scans each active segment, so
/// one at a time would leave the disk at queue depth 1).
async fn open_logs(
    dir: &Path,
    s: &Scenario,
    parts: &[usize],
    stats: &IoStatsRef,
) -> Result<Vec<Rc<Log>>, BenchError> {
    let tasks: Vec<_> = parts
        .iter()
        .map(|&p| {
            let storage = counting(GlommioStorage, stats.clone());
            let (path, config) = (partition_dir(dir, p), s.log_config());
            glommio::spawn_local(async move {
                Log::open(storage, &path, config, Rc::new(SystemClock)).await
            })
        })
        .collect();
    let mut logs = Vec::with_capacity(parts.len());
    for t in tasks {
        logs.push(Rc::new(t.await?));
    }
    Ok(logs)
}

fn partition_dir(dir: &Path, p: usize) -> PathBuf {
    dir.join(format!("bench-{p}"))
}

/// One batch of `batch_bytes / record_bytes` records, built once and copied per send
/// (as a broker copies it out of a socket buffer).
fn template_batch(s: &Scenario) -> BytesMut {
    let count = (s.batch_bytes / s.record_bytes).max(1);
    let value = vec![b'x'; s.record_bytes.saturating_sub(16)];
    let mut b = BatchBuilder::with_capacity(0, s.batch_bytes);
    let now = SystemClock.now_ms();
    for _ in 0..count {
        b.push(now, None, Some(&value), &[]);
    }
    b.finish(ProducerStamp::NONE)
}

struct Totals {
    records: u64,
    bytes: u64,
    /// This shard's share of SCENARIO_BYTES_MAX.
    bytes_max: u64,
    histogram: Histogram<u64>,
}

impl Totals {
    fn full(&self) -> bool {
        self.bytes >= self.bytes_max
    }
}

async fn run_shard(dir: &Path, s: Scenario, parts: Vec<usize>) -> Result<ShardOutcome, BenchError> {
    let stats = IoStatsRef::default();
    let logs = open_logs(dir, &s, &parts, &stats).await?;
    let template = template_batch(&s);
    let records_per_batch =
        u64::from(cfa_engine::BatchHeader::parse(&template).map_or(1, |h| h.record_count()));
    let totals = Rc::new(RefCell::new(Totals {
        records: 0,
        bytes: 0,
        bytes_max: SCENARIO_BYTES_MAX / s.shards as u64,
        histogram: latency_histogram(),
    }));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(s.duration_s);
    let level = match s.ack {
        AckMode::Written => Durability::Written,
        AckMode::Durable => Durability::Durable,
    };
    let mut tasks = Vec::new();
    for log in &logs {
        for _ in 0..s.producers_per_partition {
            let (log, totals, template) = (log.clone(), totals.clone(), template.clone());
            tasks.push(glommio::spawn_local(async move {
                produce(&log, &template, records_per_batch, level, deadline, &totals).await
            }));
        }
    }
    // The owner's maintenance, as the broker runs it: one task per partition, woken by
    // the log's changes and by policy deadlines. It stops with the producers (which may
    // stop early, at the byte bound), so that it never stretches the measured time.
    let stop = Rc::new(StopSignal::new());
    let maintenance: Vec<_> = logs
        .iter()
        .map(|log| {
            let (log, stop) = (log.clone(), stop.clone());
            glommio::spawn_local(
                async move { log.run_maintenance(&stop, glommio::timer::sleep).await },
            )
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    stop.stop();
    for m in maintenance {
        m.await?;
    }
    for log in &logs {
        log.flush(Durability::Durable).await?;
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let io = stats.borrow().clone();
    let read_cache = match s.read_back {
        true => Some(read_cache_phase(&logs).await?),
        false => None,
    };
    for log in &logs {
        log.close().await?;
    }
    let read_disk = match s.read_back {
        true => Some(read_disk_phase(dir, &s, &parts).await?),
        false => None,
    };
    let t = Rc::try_unwrap(totals)
        .map_err(|_| BenchError::Executor("producer still running".into()))?;
    let t = t.into_inner();
    Ok(ShardOutcome {
        records: t.records,
        bytes: t.bytes,
        elapsed_s,
        histogram: t.histogram,
        io,
        read_cache,
        read_disk,
    })
}

async fn produce(
    log: &Log,
    template: &BytesMut,
    records_per_batch: u64,
    level: Durability,
    deadline: Instant,
    totals: &RefCell<Totals>,
) -> Result<(), BenchError> {
    while Instant::now() < deadline && !totals.borrow().full() {
        let t0 = Instant::now();
        let info = log.append(BytesMut::from(&template[..])).await?;
        log.wait_for(info.next_offset, level).await?;
        let us = t0.elapsed().as_micros().max(1) as u64;
        let mut t = totals.borrow_mut();
        t.records += records_per_batch;
        t.bytes += template.len() as u64;
        t.histogram.saturating_record(us);
    }
    Ok(())
}

/// Reads what each partition's batch cache holds, over and over, for READ_CACHE_PHASE.
async fn read_cache_phase(logs: &[Rc<Log>]) -> Result<ReadOutcome, BenchError> {
    let start = Instant::now();
    let deadline = start + READ_CACHE_PHASE;
    let mut bytes = 0u64;
    let mut rounds = 0u32;
    while Instant::now() < deadline && rounds < READ_CACHE_ROUNDS_MAX {
        for log in logs {
            let next = log.offsets().next;
            let Some(from) = log.cached_from() else {
                continue;
            };
            bytes += read_range(log, from, next, deadline).await?;
        }
        rounds += 1;
    }
    Ok(ReadOutcome {
        bytes,
        secs: start.elapsed().as_secs_f64(),
        device_bytes: 0,
    })
}

/// Reads `[from, to)` fetch by fetch until `deadline` and checks each batch's CRC, as a
/// consumer does (reads from the cache are zero-copy, so without that the figure would
/// only count reference-count increments). Returns the bytes read.
async fn read_range(
    log: &Log,
    mut from: u64,
    to: u64,
    deadline: Instant,
) -> Result<u64, BenchError> {
    let mut bytes = 0u64;
    while from < to && Instant::now() < deadline {
        let batches = log.read(from, READ_FETCH_BYTES, to).await?;
        let Some(last) = batches.last() else { break };
        for b in &batches {
            cfa_engine::batch::validate(b, u32::MAX).map_err(|e| BenchError::Log(e.into()))?;
            bytes += b.len() as u64;
        }
        from = cfa_engine::BatchHeader::parse(last).map_or(to, |h| h.last_offset() + 1);
    }
    Ok(bytes)
}

/// Reopens the shard's partitions (cold cache) and reads them front to back from disk,
/// one consumer task per partition, for at most READ_DISK_PHASE.
async fn read_disk_phase(
    dir: &Path,
    s: &Scenario,
    parts: &[usize],
) -> Result<ReadOutcome, BenchError> {
    let stats = IoStatsRef::default();
    let opened = Instant::now();
    let logs = open_logs(dir, s, parts, &stats).await?;
    // Opening scans the active segment (recovery); count only what the fetches read.
    let device_before = stats.borrow().read_bytes;
    tracing::debug!(
        partitions = parts.len(),
        open_s = opened.elapsed().as_secs_f64(),
        scanned_bytes = device_before,
        "reopened for the disk read phase"
    );
    let start = Instant::now();
    let deadline = start + READ_DISK_PHASE;
    let tasks: Vec<_> = logs
        .iter()
        .map(|log| {
            let log = log.clone();
            glommio::spawn_local(async move {
                let o = log.offsets();
                read_range(&log, o.log_start, o.next, deadline).await
            })
        })
        .collect();
    let mut bytes = 0u64;
    for t in tasks {
        bytes += t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let device_bytes = stats.borrow().read_bytes - device_before;
    for log in &logs {
        log.close().await?;
    }
    Ok(ReadOutcome {
        bytes,
        secs,
        device_bytes,
    })
}

/// Prints results as two tables (MB = 10^6 bytes, latencies in microseconds): what
/// producers and consumers saw, then what the engine asked of the disk.
pub fn print_table(results: &[ScenarioResult]) {
    print_client_table(results);
    println!();
    print_disk_table(results);
}

fn print_client_table(results: &[ScenarioResult]) {
    println!("append -> ack latency in us; MB = 10^6 bytes");
    println!(
        "{:<34} {:>8} {:>8} {:>10} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>13} {:>12}",
        "scenario",
        "parts/sh",
        "batch",
        "records/s",
        "write MB/s",
        "p50",
        "p90",
        "p99",
        "p999",
        "max",
        "cache rd MB/s",
        "disk rd MB/s"
    );
    for r in results {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let l = &r.ack_latency_us;
        println!(
            "{:<34} {:>8} {:>8} {:>10.0} {:>9.1} {:>7} {:>7} {:>7} {:>7} {:>7} {:>13} {:>12}",
            r.scenario.name,
            format!("{}/{}", r.scenario.partitions, r.scenario.shards),
            r.scenario.batch_bytes,
            r.write_records_per_s,
            r.write_mb_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            opt(r.read_cache_mb_per_s),
            opt(r.read_disk_mb_per_s),
        );
    }
}

fn print_disk_table(results: &[ScenarioResult]) {
    println!(
        "what the engine asked of the disk in the write phase; call latencies in us (p50/p99)"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>11} {:>13} {:>10} {:>13} {:>12} {:>13} {:>11}",
        "scenario",
        "zero-fill",
        "device MB",
        "dev/app",
        "write calls",
        "write lat",
        "fdatasyncs",
        "fdatasync lat",
        "dsync writes",
        "dsync lat",
        "rd dev/app",
    );
    for r in results {
        let (w, f, d) = (
            &r.device_write_latency_us,
            &r.fdatasync_latency_us,
            &r.durable_write_latency_us,
        );
        let read_amp = match (r.read_disk_device_bytes, r.read_disk_bytes) {
            (Some(d), Some(b)) if b > 0 => format!("{:.2}", d as f64 / b as f64),
            _ => "-".to_owned(),
        };
        println!(
            "{:<34} {:>10} {:>10.0} {:>8.2} {:>11} {:>13} {:>10} {:>13} {:>12} {:>13} {:>11}",
            r.scenario.name,
            r.scenario.zero_fill_ahead_bytes,
            r.device_written_bytes as f64 / 1e6,
            r.device_written_bytes as f64 / (r.bytes.max(1) as f64),
            r.device_write_calls,
            format!("{}/{}", w.p50, w.p99),
            r.fdatasyncs,
            format!("{}/{}", f.p50, f.p99),
            r.durable_writes,
            format!("{}/{}", d.p50, d.p99),
            read_amp,
        );
    }
}
