//! Broker-level benchmark: an embedded broker on 127.0.0.1 (or an external one), driven
//! through the client SDK exactly as an application would: 1 KiB keyless records, a topic
//! of N partitions, producers at max rate (labelled as such) with acks=1 and acks=all,
//! then a consumer reading everything back.
//!
//! Latency is per record, from `send()` to its delivery report, sampled (every
//! `LATENCY_SAMPLE_EVERY`th record) so that measuring does not slow the producer down.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cfa_net::client::{
    Acks, Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle, ServerError};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::{latency_histogram, mb_per_s, Percentiles};

/// Record size of the standard scenarios (1 KiB value, no key).
pub const RECORD_BYTES: usize = 1024;
/// Every this-many-th record's delivery latency is recorded.
pub const LATENCY_SAMPLE_EVERY: u64 = 16;
/// A scenario stops after this many bytes even if its time is not up (bounds disk use).
pub const SCENARIO_BYTES_MAX: u64 = 8_000_000_000;
/// The read-back phase stops after this long even if records are left.
pub const CONSUME_PHASE_MAX: Duration = Duration::from_secs(10);
/// Producer batch size and linger of the standard runs (Kafka's defaults are 16 KiB / 5 ms;
/// a max-rate run uses bigger batches, as kafka-producer-perf-test users do).
pub const BATCH_SIZE_BYTES: usize = 256 << 10;
pub const LINGER_MS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum BrokerBenchError {
    #[error("broker: {0}")]
    Server(#[from] ServerError),
    #[error("client: {0}")]
    Client(#[from] ClientError),
    #[error("bench data dir {dir}: {source}")]
    DataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// One broker-level scenario.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerScenario {
    pub name: String,
    pub partitions: u32,
    pub record_bytes: usize,
    /// "0", "1" or "all".
    pub acks: String,
    pub duration_s: f64,
    pub batch_size_bytes: usize,
    pub linger_ms: u64,
    /// Max rate: send as fast as the producer's buffer takes records.
    pub rate: &'static str,
}

/// What one scenario measured. MB = 10^6 bytes.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerResult {
    pub scenario: BrokerScenario,
    pub produce_records: u64,
    pub produce_records_per_s: f64,
    pub produce_mb_per_s: f64,
    /// send() -> delivery report, microseconds (sampled).
    pub publish_latency_us: Percentiles,
    pub consume_records: u64,
    pub consume_records_per_s: f64,
    pub consume_mb_per_s: f64,
    pub errors: u64,
}

/// The standard pair: acks=1 and acks=all, 6 partitions, 1 KiB records.
pub fn standard_scenarios(duration_s: f64, partitions: u32) -> Vec<BrokerScenario> {
    ["1", "all"]
        .iter()
        .map(|acks| BrokerScenario {
            name: format!("max-rate-1kib-acks-{acks}"),
            partitions,
            record_bytes: RECORD_BYTES,
            acks: (*acks).to_owned(),
            duration_s,
            batch_size_bytes: BATCH_SIZE_BYTES,
            linger_ms: LINGER_MS,
            rate: "max",
        })
        .collect()
}

/// Starts the embedded broker for the bench: the default profile's log settings, a fresh
/// data dir under `data_dir`, 127.0.0.1 on a free port, one shard per core.
pub fn start_embedded(
    data_dir: &Path,
    log: cfa_engine::LogConfig,
) -> Result<BrokerHandle, BrokerBenchError> {
    let mut config = BrokerConfig::for_tests(data_dir);
    config.shards = std::thread::available_parallelism().map_or(1, |n| n.get());
    config.io_memory_bytes = cfa_engine::constants::IO_MEMORY_BYTES_DEFAULT;
    config.log = log;
    Ok(Broker::start(config)?)
}

/// Runs the scenarios one after another against `bootstrap`, each on its own topic.
pub fn run(
    bootstrap: SocketAddr,
    scenarios: &[BrokerScenario],
) -> Result<Vec<BrokerResult>, BrokerBenchError> {
    let admin = Admin::new(&bootstrap.to_string())?;
    let mut out = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let topic = format!("cfa-bench-{}-{}-{i}", std::process::id(), s.name);
        admin.create_topic(&topic, Some(s.partitions), None, &[])?;
        let produced = produce(bootstrap, &topic, s)?;
        let (consumed, consume_s) = consume(bootstrap, &topic, s.partitions, produced.records)?;
        let bytes_per_record = s.record_bytes as u64;
        out.push(BrokerResult {
            scenario: s.clone(),
            produce_records: produced.records,
            produce_records_per_s: produced.records as f64 / produced.secs,
            produce_mb_per_s: mb_per_s(produced.records * bytes_per_record, produced.secs),
            publish_latency_us: Percentiles::from_histogram(&produced.latency),
            consume_records: consumed,
            consume_records_per_s: consumed as f64 / consume_s,
            consume_mb_per_s: mb_per_s(consumed * bytes_per_record, consume_s),
            errors: produced.errors,
        });
        let _ = admin.delete_topic(&topic);
    }
    Ok(out)
}

struct Produced {
    records: u64,
    secs: f64,
    latency: Histogram<u64>,
    errors: u64,
}

fn acks(s: &str) -> Acks {
    match s {
        "0" => Acks::None,
        "1" => Acks::Leader,
        _ => Acks::All,
    }
}

fn produce(
    bootstrap: SocketAddr,
    topic: &str,
    s: &BrokerScenario,
) -> Result<Produced, BrokerBenchError> {
    let mut config = ProducerConfig::new(&bootstrap.to_string());
    config.acks = acks(&s.acks);
    config.batch_size_bytes = s.batch_size_bytes;
    config.linger_ms = s.linger_ms;
    config.enable_idempotence = config.acks == Acks::All;
    let producer = Producer::new(config)?;
    let value = Bytes::from(vec![b'x'; s.record_bytes]);
    let delivered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(latency_histogram()));
    let max_records = SCENARIO_BYTES_MAX / s.record_bytes as u64;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(s.duration_s);
    let mut sent = 0u64;
    let mut progress = Progress::new(start);
    while sent < max_records && (sent % 1024 != 0 || Instant::now() < deadline) {
        if sent % 1024 == 0 {
            progress.maybe_print(&s.name, s.record_bytes, sent, &delivered, &errors, &latency);
        }
        sent += 1;
        // Only sampled records read the clock: a clock read per record showed in profiles.
        let sample = (sent % LATENCY_SAMPLE_EVERY == 0).then(|| (latency.clone(), Instant::now()));
        let report = producer.send(ProducerRecord::new(topic.to_owned(), value.clone()))?;
        let (delivered, errors) = (delivered.clone(), errors.clone());
        report.on_delivery(move |r| {
            match r {
                Ok(_) => delivered.fetch_add(1, Ordering::Relaxed),
                Err(_) => errors.fetch_add(1, Ordering::Relaxed),
            };
            if let Some((h, t0)) = sample {
                let us = t0.elapsed().as_micros().max(1) as u64;
                if let Ok(mut h) = h.lock() {
                    h.saturating_record(us);
                }
            }
        });
    }
    producer.close(); // waits for every delivery report
    let secs = start.elapsed().as_secs_f64();
    let latency = latency
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| latency_histogram());
    Ok(Produced {
        records: delivered.load(Ordering::Relaxed),
        secs,
        latency,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// The live line printed every `PROGRESS_INTERVAL` while producing (stderr): delivered
/// rate and MB/s over the last interval, p99 so far, backlog (sent, not yet reported).
struct Progress {
    last: Instant,
    last_delivered: u64,
}

/// How often the live progress line is printed.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

impl Progress {
    fn new(start: Instant) -> Progress {
        Progress {
            last: start,
            last_delivered: 0,
        }
    }

    fn maybe_print(
        &mut self,
        name: &str,
        record_bytes: usize,
        sent: u64,
        delivered: &AtomicU64,
        errors: &AtomicU64,
        latency: &Mutex<Histogram<u64>>,
    ) {
        let secs = self.last.elapsed().as_secs_f64();
        if secs < PROGRESS_INTERVAL.as_secs_f64() {
            return;
        }
        let done = delivered.load(Ordering::Relaxed);
        let failed = errors.load(Ordering::Relaxed);
        let rate = (done - self.last_delivered) as f64 / secs;
        let p99_us = latency.lock().map_or(0, |h| h.value_at_quantile(0.99));
        eprintln!(
            "{name}: {rate:>9.0} records/s {:>7.1} MB/s  p99 so far {:>7.1} ms  backlog {:>8} records  errors {failed}",
            rate * record_bytes as f64 / 1e6,
            p99_us as f64 / 1000.0,
            sent.saturating_sub(done + failed),
        );
        self.last = Instant::now();
        self.last_delivered = done;
    }
}

/// Reads every partition from the start until `expected` records or the time cap.
fn consume(
    bootstrap: SocketAddr,
    topic: &str,
    partitions: u32,
    expected: u64,
) -> Result<(u64, f64), BrokerBenchError> {
    let mut consumer = Consumer::new(ConsumerConfig::new(&bootstrap.to_string(), None))?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone())?;
    consumer.seek_to_beginning(&tps)?;
    let start = Instant::now();
    let mut got = 0u64;
    while got < expected && start.elapsed() < CONSUME_PHASE_MAX {
        got += consumer.poll(Duration::from_millis(200))?.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = consumer.close();
    Ok((got, secs))
}

/// The table people know from kafka-producer-perf-test: records/s, MB/s, latencies.
pub fn print_table(results: &[BrokerResult]) {
    println!("broker over loopback through the client SDK; MB = 10^6 bytes; latency = send -> delivery report, us");
    println!(
        "{:<24} {:>5} {:>4} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>11} {:>10} {:>6}",
        "scenario",
        "parts",
        "acks",
        "records/s",
        "MB/s",
        "p50",
        "p99",
        "p999",
        "max",
        "rate",
        "consume r/s",
        "cons MB/s",
        "errors"
    );
    for r in results {
        let l = &r.publish_latency_us;
        println!(
            "{:<24} {:>5} {:>4} {:>10.0} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>9} {:>11.0} {:>10.1} {:>6}",
            r.scenario.name,
            r.scenario.partitions,
            r.scenario.acks,
            r.produce_records_per_s,
            r.produce_mb_per_s,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            r.scenario.rate,
            r.consume_records_per_s,
            r.consume_mb_per_s,
            r.errors
        );
    }
}
