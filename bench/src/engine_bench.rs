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
    SystemClock,
};
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::{latency_histogram, mb_per_s, Percentiles};

/// io_memory of the bench executor (1 MiB): fits the 8 MiB memlock limit 3x over.
pub const IO_MEMORY_BYTES: usize = cfa_engine::constants::IO_MEMORY_BYTES_DEFAULT;
/// Concurrent producers per partition (each keeps one batch in flight).
pub const PRODUCERS_PER_PARTITION_DEFAULT: usize = 4;
/// A scenario stops after this many bytes even if its time is not up (4 GB).
pub const SCENARIO_BYTES_MAX: u64 = 4_000_000_000;
/// Group-commit policy of the acks=1 scenarios: fsync every 4 MiB.
pub const GROUP_COMMIT_FSYNC_BYTES: u64 = 4 << 20;
/// ... or every 100 ms, whichever comes first.
pub const GROUP_COMMIT_FSYNC_MS: u64 = 100;
/// Largest partition count a bench accepts.
pub const PARTITIONS_MAX: usize = 1024;
/// Bytes one fetch asks for in the read phase (1 MiB).
pub const READ_FETCH_BYTES: usize = 1 << 20;

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
    pub read_cache_mb_per_s: Option<f64>,
    pub read_disk_mb_per_s: Option<f64>,
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

/// The standard run behind `cfa bench` (about 30 s in all with the default duration).
pub fn standard_scenarios(duration_s: f64, partitions: usize) -> Vec<Scenario> {
    let s = |name: &str, batch_bytes: usize, ack: AckMode, read_back: bool| Scenario {
        name: name.to_owned(),
        partitions,
        batch_bytes,
        record_bytes: 1024,
        producers_per_partition: PRODUCERS_PER_PARTITION_DEFAULT,
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

/// Runs scenarios one after another, each in a fresh temp dir under `data_dir`.
pub fn run_scenarios(
    data_dir: &Path,
    scenarios: &[Scenario],
) -> Result<Vec<ScenarioResult>, BenchError> {
    check_memlock(IO_MEMORY_BYTES, 1).map_err(BenchError::Memlock)?;
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
        let dir = tmp.path().to_owned();
        let scenario = s.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name("cfa-bench")
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move { run_one(&dir, scenario).await })
            .map_err(|e| BenchError::Executor(e.to_string()))?;
        let result = handle
            .join()
            .map_err(|e| BenchError::Executor(e.to_string()))??;
        out.push(result);
    }
    Ok(out)
}

type Log = PartitionLog<GlommioStorage>;

async fn open_logs(dir: &Path, s: &Scenario) -> Result<Vec<Rc<Log>>, BenchError> {
    let mut logs = Vec::with_capacity(s.partitions);
    for p in 0..s.partitions {
        let log = Log::open(
            GlommioStorage,
            &partition_dir(dir, p),
            s.log_config(),
            Rc::new(SystemClock),
        )
        .await?;
        logs.push(Rc::new(log));
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
    histogram: Histogram<u64>,
}

async fn run_one(dir: &Path, s: Scenario) -> Result<ScenarioResult, BenchError> {
    let logs = open_logs(dir, &s).await?;
    let template = template_batch(&s);
    let records_per_batch =
        u64::from(cfa_engine::BatchHeader::parse(&template).map_or(1, |h| h.record_count()));
    let totals = Rc::new(RefCell::new(Totals {
        records: 0,
        bytes: 0,
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
    for t in tasks {
        t.await?;
    }
    for log in &logs {
        log.flush(Durability::Durable).await?;
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let (records, bytes, latency) = {
        let t = totals.borrow();
        (
            t.records,
            t.bytes,
            Percentiles::from_histogram(&t.histogram),
        )
    };
    let (read_cache, read_disk) = if s.read_back {
        let cache = read_cache_mb_per_s(&logs).await?;
        for log in &logs {
            log.close().await?;
        }
        let disk = read_disk_mb_per_s(dir, &s).await?;
        (Some(cache), Some(disk))
    } else {
        for log in &logs {
            log.close().await?;
        }
        (None, None)
    };
    Ok(ScenarioResult {
        write_records_per_s: records as f64 / elapsed_s,
        write_mb_per_s: mb_per_s(bytes, elapsed_s),
        scenario: s,
        records,
        bytes,
        elapsed_s,
        ack_latency_us: latency,
        read_cache_mb_per_s: read_cache,
        read_disk_mb_per_s: read_disk,
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
    let mut sent = 0u64;
    while Instant::now() < deadline && sent < SCENARIO_BYTES_MAX {
        let t0 = Instant::now();
        let info = log.append(BytesMut::from(&template[..])).await?;
        log.wait_for(info.next_offset, level).await?;
        let us = t0.elapsed().as_micros().max(1) as u64;
        sent += template.len() as u64;
        let mut t = totals.borrow_mut();
        t.records += records_per_batch;
        t.bytes += template.len() as u64;
        t.histogram.saturating_record(us);
        if t.bytes >= SCENARIO_BYTES_MAX {
            break;
        }
    }
    Ok(())
}

/// Reads what each partition's batch cache holds, repeatedly, for about a second.
async fn read_cache_mb_per_s(logs: &[Rc<Log>]) -> Result<f64, BenchError> {
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut rounds = 0u32;
    while start.elapsed() < Duration::from_secs(1) && rounds < 100_000 {
        for log in logs {
            let next = log.offsets().next;
            let Some(from) = log.cached_from() else {
                continue;
            };
            bytes += read_range(log, from, next).await?;
        }
        rounds += 1;
    }
    Ok(mb_per_s(bytes, start.elapsed().as_secs_f64()))
}

/// Reads `[from, to)` fetch by fetch and checks each batch's CRC, as a consumer does
/// (reads from the cache are zero-copy, so without that the figure would only count
/// reference-count increments). Returns the bytes read.
async fn read_range(log: &Log, mut from: u64, to: u64) -> Result<u64, BenchError> {
    let mut bytes = 0u64;
    while from < to {
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

/// Reopens every partition (cold cache) and reads it front to back from disk.
async fn read_disk_mb_per_s(dir: &Path, s: &Scenario) -> Result<f64, BenchError> {
    let logs = open_logs(dir, s).await?;
    let start = Instant::now();
    let mut bytes = 0u64;
    for log in &logs {
        let o = log.offsets();
        bytes += read_range(log, o.log_start, o.next).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    for log in &logs {
        log.close().await?;
    }
    Ok(mb_per_s(bytes, secs))
}

/// Prints results as a table (MB = 10^6 bytes, latencies in microseconds).
pub fn print_table(results: &[ScenarioResult]) {
    println!(
        "{:<36} {:>5} {:>9} {:>12} {:>10} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "scenario",
        "parts",
        "batch",
        "records/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "max us",
        "cache MB/s",
        "disk MB/s"
    );
    for r in results {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        println!(
            "{:<36} {:>5} {:>9} {:>12.0} {:>10.1} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            r.scenario.name,
            r.scenario.partitions,
            r.scenario.batch_bytes,
            r.write_records_per_s,
            r.write_mb_per_s,
            r.ack_latency_us.p50,
            r.ack_latency_us.p99,
            r.ack_latency_us.p999,
            r.ack_latency_us.max,
            opt(r.read_cache_mb_per_s),
            opt(r.read_disk_mb_per_s),
        );
    }
}
