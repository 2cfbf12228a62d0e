//! The open-loop driver: runs one workload against a broker (embedded or external)
//! through the client SDK, the way applications use it.
//!
//! Measurement rules:
//! - At a target rate, record i of a producer is *intended* at `start + i / rate`. The
//!   producer sleeps until then (never skips), and every latency counts from the intended
//!   time: a broker stall delays every record behind it, and the stall shows in the
//!   percentiles instead of silently lowering the send rate (no coordinated omission).
//! - At max rate (rate 0) there is no schedule: the intended time is when `send` was
//!   called (read once per `MAX_RATE_CLOCK_EVERY` records), and the output says "max".
//! - Each value carries its intended time in its first 8 bytes, so consumers in this
//!   process measure end-to-end latency on the same clock.
//! - Throughput counts acknowledgements (and receipts) inside the measured window, after
//!   the warm-up; latency histograms take the records intended inside it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cfa_net::client::partitioner::KeylessStrategy;
use cfa_net::client::{
    Admin, ClientError, Consumer, ConsumerConfig, DeliveryHandler, OffsetReset, Producer,
    ProducerConfig, ProducerRecordRef,
};
use cfa_net::protocol::ApiKey;
use cfa_net::server::metrics::{HistogramSnapshot, Metrics};
use cfa_net::server::{Broker, BrokerConfig, BrokerHandle, ServerError};
use serde::Serialize;

use crate::constants::{
    CONSUMER_DRAIN_MAX, CONSUMER_JOIN_MAX, MAX_RATE_CLOCK_EVERY, PACING_SLEEP_MIN, POLL_TIMEOUT,
    PROGRESS_INTERVAL, RUN_BYTES_MAX, RUN_OVERTIME_MAX,
};
use crate::gen::{stamp_of, Keys, Rng, Values};
use crate::machine::Usage;
use crate::report::{mb_per_s, Percentiles};
use crate::stats::{Clock, RunStats};
use crate::workload::{ConsumerStart, KeyDistribution, Workload};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("embedded broker: {0}")]
    Broker(#[from] ServerError),
    #[error("{what}: {source}")]
    Client {
        what: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error("bench data dir {dir}: {source}")]
    DataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Run(String),
}

fn client(what: &str) -> impl FnOnce(ClientError) -> DriverError + '_ {
    move |source| DriverError::Client {
        what: what.to_owned(),
        source: Box::new(source),
    }
}

/// A broker started for one workload with that workload's tuning profile, in a fresh
/// data dir under the given parent, on 127.0.0.1 and a free port.
pub struct EmbeddedBroker {
    handle: BrokerHandle,
    _dir: tempfile::TempDir,
}

impl EmbeddedBroker {
    pub fn start(parent: &Path, w: &Workload) -> Result<EmbeddedBroker, DriverError> {
        let data_dir = |source| DriverError::DataDir {
            dir: parent.display().to_string(),
            source,
        };
        std::fs::create_dir_all(parent).map_err(data_dir)?;
        let dir = tempfile::tempdir_in(parent).map_err(data_dir)?;
        let mut config = BrokerConfig::from_profile(&w.profile)?;
        config.data_dir = dir.path().to_owned();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.metrics_listen = None;
        Ok(EmbeddedBroker {
            handle: Broker::start(config)?,
            _dir: dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The broker's own counters, read at the window's edges (`RunResult::broker_side`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.handle.metrics()
    }

    pub fn stop(self) -> Result<(), DriverError> {
        Ok(self.handle.shutdown()?)
    }
}

/// One second of the run, as the progress line printed it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    /// Seconds since the measured window began (negative during warm-up).
    pub t_s: f64,
    pub produce_records_per_s: f64,
    pub produce_mb_per_s: f64,
    pub consume_records_per_s: f64,
    pub consume_mb_per_s: f64,
    pub publish_p99_us: u64,
    pub e2e_p99_us: u64,
    /// Sent, not yet acknowledged.
    pub queued_records: u64,
    /// Acknowledged, not yet read (per group).
    pub lag_records: u64,
}

/// Errors by kind; `first` is the first message seen.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorDetail {
    pub send: u64,
    pub delivery: u64,
    pub consume: u64,
    pub first: Option<String>,
}

/// The embedded broker's view of the window, from its Prometheus histograms: means are
/// exact, percentiles are bucket bounds (the true value is at most that; `null` past the
/// last bound). Microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerSide {
    /// fdatasyncs, and writes that carried their own sync (O_DSYNC), per second.
    pub fsyncs_per_s: f64,
    pub fsync_mean_us: Option<f64>,
    pub fsync_p50_at_most_us: Option<u64>,
    pub fsync_p99_at_most_us: Option<u64>,
    pub produce_requests_per_s: f64,
    /// From decoded to answered, the acknowledgement's wait for the disk included.
    pub produce_request_mean_us: Option<f64>,
    pub produce_request_p50_at_most_us: Option<u64>,
    pub produce_request_p99_at_most_us: Option<u64>,
}

/// The broker histograms `BrokerSide` is made of, at one instant.
#[derive(Debug, Clone)]
struct BrokerSnapshot {
    fsync: HistogramSnapshot,
    produce: HistogramSnapshot,
}

impl BrokerSnapshot {
    fn take(m: &Metrics) -> BrokerSnapshot {
        BrokerSnapshot {
            fsync: m.fsync_snapshot(),
            produce: m.request_duration_snapshot(ApiKey::Produce),
        }
    }

    fn side_since(&self, start: &BrokerSnapshot, window_s: f64) -> BrokerSide {
        let fsync = self.fsync.since(&start.fsync);
        let produce = self.produce.since(&start.produce);
        BrokerSide {
            fsyncs_per_s: fsync.count() as f64 / window_s,
            fsync_mean_us: fsync.mean_us(),
            fsync_p50_at_most_us: fsync.quantile_bound_us(0.5),
            fsync_p99_at_most_us: fsync.quantile_bound_us(0.99),
            produce_requests_per_s: produce.count() as f64 / window_s,
            produce_request_mean_us: produce.mean_us(),
            produce_request_p50_at_most_us: produce.quantile_bound_us(0.5),
            produce_request_p99_at_most_us: produce.quantile_bound_us(0.99),
        }
    }
}

/// What one workload measured. MB = 10^6 bytes; latencies in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub workload: String,
    pub description: String,
    pub tuning_profile: String,
    /// "embedded" or the external broker's address.
    pub broker: String,
    /// "max" (no target: send as fast as the producer takes records) or "fixed".
    pub rate_mode: &'static str,
    pub target_records_per_s: Option<f64>,
    /// With `rate_percent_of_max`: the max rate the probe measured.
    pub probe_max_records_per_s: Option<f64>,
    pub latency_from: &'static str,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub topics: u32,
    pub partitions: u32,
    pub record_bytes_mean: f64,
    pub key_distribution: KeyDistribution,
    pub hot_key_spread: u32,
    pub producers: u32,
    pub consumer_groups: u32,
    pub consumers_per_group: u32,
    pub acks: String,
    pub batch_size_bytes: Option<usize>,
    pub linger_ms: Option<u64>,
    pub compression: Option<String>,
    pub produce_records: u64,
    pub produce_records_per_s: f64,
    pub produce_mb_per_s: f64,
    pub consume_records: u64,
    pub consume_records_per_s: f64,
    pub consume_mb_per_s: f64,
    pub publish_latency_us: Percentiles,
    /// `null` when the workload has no consumers.
    pub e2e_latency_us: Option<Percentiles>,
    /// At a target rate: how late the producers handed records to `send` after their
    /// intended time: the load generator's own delay plus any time blocked in earlier
    /// `send` calls (a full producer buffer). It is inside the publish latency, which
    /// counts from the intended time. `null` at max rate, where there is no schedule.
    pub send_lateness_us: Option<Percentiles>,
    /// What the embedded broker itself measured in the window (`null` for an external
    /// broker): its fdatasyncs and produce requests, to set the publish latency beside.
    pub broker_side: Option<BrokerSide>,
    pub errors: u64,
    pub error_detail: ErrorDetail,
    /// Batches the producers resent after a retriable error.
    pub retries: u64,
    /// Consume-backlog: seconds until the readers had read the backlog.
    pub backlog_records: Option<u64>,
    pub backlog_drain_s: Option<f64>,
    /// CPU seconds per second of this process (broker, if embedded, and clients) during
    /// the window.
    pub cpu_cores_used: f64,
    /// The same by thread group (a thread's name up to its first digit: `bench-producer`,
    /// the client's `cfa-producer-cf` senders, `cfa-shard`, the kernel's `iou-wrk` ...),
    /// for the threads alive at the window's end: where the CPU went.
    pub cpu_cores_by_thread: std::collections::BTreeMap<String, f64>,
    /// Bytes this process read from storage during the window (direct I/O included):
    /// 0 means consumers were served from memory.
    pub storage_read_bytes: Option<u64>,
    pub seconds: Vec<Second>,
}

/// Runs `w` against the broker at `bootstrap`. `embedded` only labels the result.
/// `broker`: the embedded broker's counters, for `RunResult::broker_side` (`None` for an
/// external broker).
pub fn run(
    bootstrap: SocketAddr,
    broker_label: &str,
    broker: Option<&Metrics>,
    w: &Workload,
    progress: bool,
) -> Result<RunResult, DriverError> {
    let mut w = w.clone();
    let probe_max = match w.rate_percent_of_max {
        Some(pct) => {
            let max = probe_max_rate(bootstrap, broker_label, broker, &w, progress)?;
            w.rate_records_per_s = ((max * pct / 100.0) as u64).max(1);
            eprintln!(
                "{}: the probe measured {max:.0} records/s at max rate; running at {pct}% = {} records/s",
                w.name, w.rate_records_per_s
            );
            Some(max)
        }
        None => None,
    };
    let admin =
        Admin::new(&bootstrap.to_string()).map_err(client("connecting the admin client"))?;
    let topics = create_topics(&admin, &w)?;
    let result = run_on_topics(bootstrap, broker_label, broker, &w, &topics, progress);
    for t in &topics {
        // Best effort: the data dir of an embedded broker goes away anyway.
        let _ = admin.delete_topic(t);
    }
    let mut result = result?;
    result.probe_max_records_per_s = probe_max;
    Ok(result)
}

/// A max-rate run of `w` without consumers for `probe_s` (after 1 s of warm-up).
fn probe_max_rate(
    bootstrap: SocketAddr,
    label: &str,
    broker: Option<&Metrics>,
    w: &Workload,
    progress: bool,
) -> Result<f64, DriverError> {
    let mut probe = w.clone();
    probe.name = format!("{}-probe", w.name);
    probe.rate_records_per_s = 0;
    probe.rate_percent_of_max = None;
    probe.duration_s = w.probe_s;
    probe.warmup_s = 1.0;
    probe.consumer_groups = 0;
    probe.consumer_start = ConsumerStart::Tail;
    probe.backlog_bytes = 0;
    let r = run(bootstrap, label, broker, &probe, progress)?;
    if r.produce_records_per_s <= 0.0 {
        return Err(DriverError::Run(format!(
            "{}: the max-rate probe acknowledged nothing ({} errors{})",
            w.name,
            r.errors,
            r.error_detail
                .first
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        )));
    }
    Ok(r.produce_records_per_s)
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

fn create_topics(admin: &Admin, w: &Workload) -> Result<Vec<String>, DriverError> {
    let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
    (0..w.topics)
        .map(|i| {
            let name = format!("bench-{}-{}-{seq}-{i}", w.name, std::process::id());
            admin
                .create_topic(&name, Some(w.partitions), None, &[])
                .map_err(client("creating the bench topic"))?;
            Ok(name)
        })
        .collect()
}

fn run_on_topics(
    bootstrap: SocketAddr,
    label: &str,
    broker: Option<&Metrics>,
    w: &Workload,
    topics: &[String],
    progress: bool,
) -> Result<RunResult, DriverError> {
    // Shared names: a record clones a reference, not the name.
    let topics: Arc<Vec<Arc<str>>> =
        Arc::new(topics.iter().map(|t| Arc::from(t.as_str())).collect());
    let backlog_records = match w.consumer_start {
        ConsumerStart::Backlog => Some(build_backlog(bootstrap, w, &topics, progress)?),
        ConsumerStart::Tail => None,
    };
    let stats = Arc::new(RunStats::new(Clock::new(), w.producers));
    let stop_consumers = Arc::new(AtomicBool::new(false));
    let consumers = start_consumers(bootstrap, w, &topics, &stats, &stop_consumers)?;
    // Tail readers must hold their partitions before the window opens or they miss its
    // start; backlog readers start from the beginning either way, and their drain time
    // counts from their first record.
    consumers.wait_assigned(w)?;
    let start_ns = stats.clock.now_ns();
    let measure_start = start_ns + secs_ns(w.warmup_s);
    let measure_end = measure_start + secs_ns(w.duration_s);
    stats.set_window(measure_start, measure_end);
    let stop_producers = Arc::new(AtomicBool::new(false));
    let plan = Plan {
        start_ns,
        end_ns: measure_end,
        rate_per_s: (!w.is_max_rate()).then(|| w.rate_per_producer()),
        records_max: RUN_BYTES_MAX / w.mean_record_bytes().max(1.0) as u64 / u64::from(w.producers),
    };
    let producers = start_producers(bootstrap, w, &topics, &stats, &stop_producers, &plan)?;
    let watch = watch_window(w, &stats, broker, progress, backlog_records);
    let resends = join_producers(producers, &stats, &stop_producers, measure_end);
    drain_consumers(w, &stats, &consumers);
    stop_consumers.store(true, Ordering::Relaxed);
    consumers.join(&stats);
    Ok(result(w, label, &stats, watch, resends, backlog_records))
}

/// What the main thread saw while the window ran.
struct Watched {
    seconds: Vec<Second>,
    usage_start: Usage,
    usage_end: Usage,
    broker_start: Option<BrokerSnapshot>,
    broker_end: Option<BrokerSnapshot>,
    backlog_drain_s: Option<f64>,
}

fn secs_ns(s: f64) -> u64 {
    (s * 1e9) as u64
}

// ---------------------------------------------------------------- producers

struct Plan {
    start_ns: u64,
    end_ns: u64,
    rate_per_s: Option<f64>,
    records_max: u64,
}

fn producer_config(bootstrap: SocketAddr, w: &Workload) -> Result<ProducerConfig, DriverError> {
    let mut config = ProducerConfig::new(&bootstrap.to_string());
    config.client_id = format!("cfa-bench-{}", w.name);
    if w.key_distribution == KeyDistribution::RoundRobin {
        config.keyless = KeylessStrategy::RoundRobin;
    }
    w.producer
        .apply(&mut config)
        .map_err(client("producer settings"))?;
    Ok(config)
}

fn start_producers(
    bootstrap: SocketAddr,
    w: &Workload,
    topics: &Arc<Vec<Arc<str>>>,
    stats: &Arc<RunStats>,
    stop: &Arc<AtomicBool>,
    plan: &Plan,
) -> Result<Vec<JoinHandle<u64>>, DriverError> {
    (0..w.producers)
        .map(|i| {
            let index = i as usize;
            let producer = Producer::with_delivery_handler(
                producer_config(bootstrap, w)?,
                delivery_handler(Arc::clone(stats), index),
            )
            .map_err(client("starting a producer"))?;
            let job = ProducerJob {
                producer,
                w: w.clone(),
                topics: Arc::clone(topics),
                stats: Arc::clone(stats),
                stop: Arc::clone(stop),
                plan: Plan { ..*plan },
                seed: 0x9e37_79b9_7f4a_7c15 ^ u64::from(i + 1),
                index,
            };
            std::thread::Builder::new()
                .name(format!("bench-producer-{i}"))
                .spawn(move || job.run())
                .map_err(|e| DriverError::Run(format!("spawning a producer thread: {e}")))
        })
        .collect()
}

/// Producer `index`'s reports, each with its record's intended send time as the opaque:
/// one handler per producer, so a report costs no allocation and no reference count
/// shared between the sending thread and the sender thread.
fn delivery_handler(stats: Arc<RunStats>, index: usize) -> DeliveryHandler {
    Arc::new(move |intended_ns, r| match r {
        Ok(m) => {
            let acked_ns = stats.clock.ns_at(m.acked_at);
            stats.on_delivery(index, Some(m.value_bytes as u64), intended_ns, acked_ns)
        }
        Err(e) => {
            stats.note_error(e);
            stats.on_delivery(index, None, intended_ns, stats.clock.now_ns());
        }
    })
}

struct ProducerJob {
    producer: Producer,
    /// This producer's number: its tally in `stats`.
    index: usize,
    w: Workload,
    topics: Arc<Vec<Arc<str>>>,
    stats: Arc<RunStats>,
    stop: Arc<AtomicBool>,
    plan: Plan,
    seed: u64,
}

impl ProducerJob {
    /// Sends until the plan's end, then closes the producer (which waits for every
    /// delivery report, bounded by its delivery timeout). Returns its resend count.
    fn run(self) -> u64 {
        set_timer_slack_ns(1000);
        let clock = self.stats.clock;
        let stamped = self.w.consumers() > 0;
        let mut values = Values::new(
            self.w.size_min_bytes,
            self.w.size_max_bytes,
            self.seed,
            stamped,
        );
        let mut keys = Keys::new(&self.w);
        let mut rng = Rng::new(self.seed);
        let mut now = clock.now_ns();
        for i in 0..self.plan.records_max {
            let intended = match self.plan.rate_per_s {
                None => {
                    if i % MAX_RATE_CLOCK_EVERY == 0 {
                        now = clock.now_ns();
                    }
                    now
                }
                Some(rate) => self.plan.start_ns + (i as f64 * 1e9 / rate) as u64,
            };
            if intended >= self.plan.end_ns || self.stop.load(Ordering::Relaxed) {
                break;
            }
            if self.plan.rate_per_s.is_some() {
                let sent = pace(&clock, intended);
                self.stats.on_paced_send(self.index, intended, sent);
            }
            let size = values.size(&mut rng);
            let topic = &self.topics[i as usize % self.topics.len()];
            let record = ProducerRecordRef {
                key: keys.next(&mut rng),
                timestamp_ms: Some(clock.wall_ms(intended)),
                ..ProducerRecordRef::new(topic, values.next(size, intended))
            };
            self.send(record, intended);
        }
        let resends = self.producer.resends();
        self.producer.close();
        resends
    }

    fn send(&self, record: ProducerRecordRef<'_>, intended_ns: u64) {
        let tally = self.stats.producer(self.index);
        // Counted before: the report may arrive before `send_ref_with_opaque` returns.
        tally.on_sent();
        if let Err(e) = self.producer.send_ref_with_opaque(record, intended_ns) {
            tally.on_not_sent();
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            self.stats.note_error(&e);
            // A producer that cannot send (broker gone) must not spin at full speed.
            std::thread::sleep(POLL_TIMEOUT);
        }
    }
}

/// Sleeps until the run clock reads `intended_ns`; never returns early, never spins.
///
/// A producer spinning on `sched_yield` kept the kernel worker that completes the broker's
/// O_DSYNC writes off its core for up to 0.47 s (ftrace, durable-1kb at 130k records/s),
/// so the harness measured its own interference. Sleeping for every record instead cost
/// a quarter of both cores in timer programming (perf: `clock_nanosleep` at 65k sleeps/s
/// per thread in this VM), so a sleep lasts at least `PACING_SLEEP_MIN` and the records
/// due by its end go out back to back. Their lateness is counted: latency runs from the
/// intended time.
///
/// Returns the clock reading at which it let the record go.
fn pace(clock: &Clock, intended_ns: u64) -> u64 {
    loop {
        let now = clock.now_ns();
        if now >= intended_ns {
            return now;
        }
        std::thread::sleep(Duration::from_nanos(intended_ns - now).max(PACING_SLEEP_MIN));
    }
}

/// Lowers this thread's timer slack (default 50 us) so paced sleeps end on time.
fn set_timer_slack_ns(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and touches only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong);
    }
}

fn join_producers(
    producers: Vec<JoinHandle<u64>>,
    stats: &RunStats,
    stop: &AtomicBool,
    end_ns: u64,
) -> u64 {
    // Producers stop by themselves at the window's end; this flag is for a run that
    // overruns (a producer blocked in `send` past the end).
    let deadline = end_ns + RUN_OVERTIME_MAX.as_nanos() as u64;
    while producers.iter().any(|p| !p.is_finished()) && stats.clock.now_ns() < deadline {
        if stats.clock.now_ns() > end_ns {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    producers.into_iter().map(|p| p.join().unwrap_or(0)).sum()
}

/// Produces `backlog_bytes` at max rate with nobody reading; returns the records.
fn build_backlog(
    bootstrap: SocketAddr,
    w: &Workload,
    topics: &Arc<Vec<Arc<str>>>,
    progress: bool,
) -> Result<u64, DriverError> {
    let stats = Arc::new(RunStats::new(Clock::new(), w.producers));
    stats.set_window(0, u64::MAX - 1);
    let per_producer =
        (w.backlog_bytes as f64 / w.mean_record_bytes() / f64::from(w.producers)).ceil() as u64;
    let plan = Plan {
        start_ns: 0,
        end_ns: u64::MAX - 1,
        rate_per_s: None,
        records_max: per_producer,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let producers = start_producers(bootstrap, w, topics, &stats, &stop, &plan)?;
    let started = stats.clock.now_ns();
    let mut last = 0;
    while producers.iter().any(|p| !p.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let now = stats.clock.now_ns();
        if progress && now - last >= PROGRESS_INTERVAL.as_nanos() as u64 {
            last = now;
            let acked = stats.acked();
            eprintln!(
                "{}: building the backlog: {acked} of {} records acknowledged ({:.0} s)",
                w.name,
                per_producer * u64::from(w.producers),
                (now - started) as f64 / 1e9
            );
        }
    }
    for p in producers {
        let _ = p.join();
    }
    let acked = stats.acked();
    if stats.errors() > 0 {
        return Err(DriverError::Run(format!(
            "{}: {} errors while building the backlog (first: {})",
            w.name,
            stats.errors(),
            stats.first_error().unwrap_or_default()
        )));
    }
    Ok(acked)
}

// ---------------------------------------------------------------- consumers

struct Consumers {
    threads: Vec<JoinHandle<Result<(), ClientError>>>,
    /// Each member's current assignment size.
    assigned: Arc<Vec<AtomicU64>>,
}

fn start_consumers(
    bootstrap: SocketAddr,
    w: &Workload,
    topics: &Arc<Vec<Arc<str>>>,
    stats: &Arc<RunStats>,
    stop: &Arc<AtomicBool>,
) -> Result<Consumers, DriverError> {
    let n = w.consumers() as usize;
    let assigned: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let run = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut threads = Vec::with_capacity(n);
    for member in 0..n {
        let group = member as u32 / w.consumers_per_group;
        let mut config = ConsumerConfig::new(
            &bootstrap.to_string(),
            Some(&format!(
                "bench-{}-{}-{run}-g{group}",
                w.name,
                std::process::id()
            )),
        );
        config.client_id = format!("cfa-bench-{}-c{member}", w.name);
        config.auto_offset_reset = match w.consumer_start {
            ConsumerStart::Tail => OffsetReset::Latest,
            ConsumerStart::Backlog => OffsetReset::Earliest,
        };
        let consumer = Consumer::new(config).map_err(client("starting a consumer"))?;
        let job = ConsumerJob {
            consumer,
            topics: Arc::clone(topics),
            stats: Arc::clone(stats),
            stop: Arc::clone(stop),
            assigned: Arc::clone(&assigned),
            member,
        };
        let t = std::thread::Builder::new()
            .name(format!("bench-consumer-{member}"))
            .spawn(move || job.run())
            .map_err(|e| DriverError::Run(format!("spawning a consumer thread: {e}")))?;
        threads.push(t);
    }
    Ok(Consumers { threads, assigned })
}

impl Consumers {
    /// Waits until every group holds every partition (stable for three looks), so that
    /// readers starting at the tail miss nothing of the measured window.
    fn wait_assigned(&self, w: &Workload) -> Result<(), DriverError> {
        if self.threads.is_empty() {
            return Ok(());
        }
        let want = w.total_partitions() * u64::from(w.consumer_groups);
        let start = std::time::Instant::now();
        let mut stable = 0;
        while stable < 3 {
            if start.elapsed() > CONSUMER_JOIN_MAX {
                return Err(DriverError::Run(format!(
                    "{}: consumers did not get all {want} partitions within {:?}",
                    w.name, CONSUMER_JOIN_MAX
                )));
            }
            if self.threads.iter().any(|t| t.is_finished()) {
                return Err(DriverError::Run(format!(
                    "{}: a consumer stopped while joining",
                    w.name
                )));
            }
            let have: u64 = self
                .assigned
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .sum();
            stable = if have == want { stable + 1 } else { 0 };
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn join(self, stats: &RunStats) {
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(&e);
                }
                Err(_) => {
                    stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                    stats.note_message("a consumer thread panicked".into());
                }
            }
        }
    }
}

struct ConsumerJob {
    consumer: Consumer,
    topics: Arc<Vec<Arc<str>>>,
    stats: Arc<RunStats>,
    stop: Arc<AtomicBool>,
    assigned: Arc<Vec<AtomicU64>>,
    member: usize,
}

/// Consecutive poll failures after which a consumer gives up.
const POLL_FAILURES_MAX: u32 = 50;

impl ConsumerJob {
    fn run(mut self) -> Result<(), ClientError> {
        let topics: Vec<&str> = self.topics.iter().map(|t| &**t).collect();
        self.consumer.subscribe(&topics, None)?;
        let mut e2e_us = Vec::new();
        let mut failures = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let records = match self.consumer.poll(POLL_TIMEOUT) {
                Ok(r) => {
                    failures = 0;
                    r
                }
                Err(e) if failures < POLL_FAILURES_MAX => {
                    failures += 1;
                    self.stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.note_error(&e);
                    std::thread::sleep(POLL_TIMEOUT);
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.assigned[self.member]
                .store(self.consumer.assignment().len() as u64, Ordering::Relaxed);
            let now = self.stats.clock.now_ns();
            let (mut bytes, mut measured) = (0u64, 0u64);
            for r in &records {
                let value = r.value.as_deref().unwrap_or_default();
                bytes += value.len() as u64;
                if let Some(stamp) = stamp_of(value).filter(|s| self.stats.measured(*s)) {
                    measured += 1;
                    e2e_us.push(now.saturating_sub(stamp) / 1000);
                }
            }
            self.stats
                .on_consumed(now, records.len() as u64, bytes, &e2e_us, measured);
            e2e_us.clear();
        }
        self.consumer.close()
    }
}

/// After the producers are done: lets consumers read every measured record (bounded).
fn drain_consumers(w: &Workload, stats: &RunStats, consumers: &Consumers) {
    if consumers.threads.is_empty() {
        return;
    }
    let want = stats.acked_measured() * u64::from(w.consumer_groups);
    let start = std::time::Instant::now();
    while stats.consumed_measured.load(Ordering::Relaxed) < want
        && start.elapsed() < CONSUMER_DRAIN_MAX
        && consumers.threads.iter().all(|t| !t.is_finished())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- the window

/// Prints the live line every second until the window ends and collects the seconds.
fn watch_window(
    w: &Workload,
    stats: &RunStats,
    broker: Option<&Metrics>,
    progress: bool,
    backlog_records: Option<u64>,
) -> Watched {
    let start_ns = stats.measure_start_ns.load(Ordering::Relaxed);
    let end_ns = stats.measure_end_ns.load(Ordering::Relaxed);
    let mut last = Snapshot::take(stats);
    let mut watched = Watched {
        seconds: Vec::new(),
        // Both are read below: the start when the window opens, the end when it closes.
        usage_start: Usage::default(),
        usage_end: Usage::default(),
        broker_start: None,
        broker_end: None,
        backlog_drain_s: None,
    };
    let mut started = false;
    let tick = PROGRESS_INTERVAL.as_nanos() as u64;
    loop {
        let now = stats.clock.now_ns();
        if !started && now >= start_ns {
            watched.usage_start = Usage::now();
            watched.broker_start = broker.map(BrokerSnapshot::take);
            started = true;
        }
        if now >= end_ns {
            watched.usage_end = Usage::now();
            watched.broker_end = broker.map(BrokerSnapshot::take);
            break;
        }
        let next = (last.t_ns + tick).min(if started { end_ns } else { start_ns });
        std::thread::sleep(Duration::from_nanos(
            next.saturating_sub(now).max(1_000_000),
        ));
        let snap = Snapshot::take(stats);
        if snap.t_ns - last.t_ns >= tick / 2 {
            let second = snap.second(&last, stats, start_ns, w.consumer_groups);
            if progress {
                print_progress(w, &second, snap.t_ns < start_ns, stats.errors());
            }
            watched.seconds.push(second);
            last = snap;
        }
        if let (Some(backlog), None) = (backlog_records, watched.backlog_drain_s) {
            let read = stats.consumed.load(Ordering::Relaxed);
            let first = stats.first_consumed_ns.load(Ordering::Relaxed);
            if read >= backlog * u64::from(w.consumer_groups) && first != u64::MAX {
                watched.backlog_drain_s =
                    Some(stats.clock.now_ns().saturating_sub(first) as f64 / 1e9);
            }
        }
    }
    watched
}

/// Counters at one instant.
struct Snapshot {
    t_ns: u64,
    acked: u64,
    acked_bytes: u64,
    consumed: u64,
    consumed_bytes: u64,
}

impl Snapshot {
    fn take(s: &RunStats) -> Snapshot {
        Snapshot {
            t_ns: s.clock.now_ns(),
            acked: s.acked(),
            acked_bytes: s.acked_bytes(),
            consumed: s.consumed.load(Ordering::Relaxed),
            consumed_bytes: s.consumed_bytes.load(Ordering::Relaxed),
        }
    }

    fn second(&self, before: &Snapshot, s: &RunStats, start_ns: u64, groups: u32) -> Second {
        let dt = (self.t_ns - before.t_ns) as f64 / 1e9;
        let sent = s.sent();
        let failed = s.delivery_errors();
        Second {
            t_s: (self.t_ns as f64 - start_ns as f64) / 1e9,
            produce_records_per_s: (self.acked - before.acked) as f64 / dt,
            produce_mb_per_s: mb_per_s(self.acked_bytes - before.acked_bytes, dt),
            consume_records_per_s: (self.consumed - before.consumed) as f64 / dt,
            consume_mb_per_s: mb_per_s(self.consumed_bytes - before.consumed_bytes, dt),
            publish_p99_us: s.publish_take_second_p99(),
            e2e_p99_us: s.e2e.take_second_p99(),
            queued_records: sent.saturating_sub(self.acked + failed),
            lag_records: if groups == 0 {
                0
            } else {
                self.acked.saturating_sub(self.consumed / u64::from(groups))
            },
        }
    }
}

fn print_progress(w: &Workload, s: &Second, warmup: bool, errors: u64) {
    let phase = if warmup { "warm-up" } else { "measure" };
    let mut line = format!(
        "{} [{phase} {:>5.1}s] produce {:>9.0} rec/s {:>7.1} MB/s p99 {:>8.2} ms queued {:>8}",
        w.name,
        s.t_s,
        s.produce_records_per_s,
        s.produce_mb_per_s,
        s.publish_p99_us as f64 / 1000.0,
        s.queued_records
    );
    if w.consumers() > 0 {
        line.push_str(&format!(
            " | consume {:>9.0} rec/s {:>7.1} MB/s e2e p99 {:>8.2} ms lag {:>9}",
            s.consume_records_per_s,
            s.consume_mb_per_s,
            s.e2e_p99_us as f64 / 1000.0,
            s.lag_records
        ));
    }
    line.push_str(&format!(" | errors {errors}"));
    eprintln!("{line}");
}

fn result(
    w: &Workload,
    label: &str,
    stats: &RunStats,
    watched: Watched,
    retries: u64,
    backlog_records: Option<u64>,
) -> RunResult {
    let window_s = w.duration_s;
    let produced = stats.acked_in_window();
    let produced_bytes = stats.acked_bytes_in_window();
    let mut consumed = stats.consumed_in_window.load(Ordering::Relaxed);
    let mut consumed_bytes = stats.consumed_bytes_in_window.load(Ordering::Relaxed);
    let mut consume_s = window_s;
    if let (Some(records), Some(drain_s)) = (backlog_records, watched.backlog_drain_s) {
        // The drain rate: the backlog over the time it took to read it.
        consumed = records * u64::from(w.consumer_groups);
        consumed_bytes = (consumed as f64 * w.mean_record_bytes()) as u64;
        consume_s = drain_s.max(1e-3);
    }
    let usage_s = watched.usage_end.cpu_s - watched.usage_start.cpu_s;
    let storage_read_bytes = match (
        watched.usage_start.storage_read_bytes,
        watched.usage_end.storage_read_bytes,
    ) {
        (Some(a), Some(b)) if label == "embedded" => Some(b.saturating_sub(a)),
        _ => None,
    };
    let detail = ErrorDetail {
        send: stats.send_errors.load(Ordering::Relaxed),
        delivery: stats.delivery_errors(),
        consume: stats.consume_errors.load(Ordering::Relaxed),
        first: stats.first_error(),
    };
    RunResult {
        workload: w.name.clone(),
        description: w.description.clone(),
        tuning_profile: w.tuning_name.clone(),
        broker: label.to_owned(),
        rate_mode: if w.is_max_rate() { "max" } else { "fixed" },
        target_records_per_s: (!w.is_max_rate()).then_some(w.rate_records_per_s as f64),
        probe_max_records_per_s: None,
        latency_from: if w.is_max_rate() {
            "the send() call (max rate: no schedule)"
        } else {
            "the intended send time (open loop)"
        },
        duration_s: window_s,
        warmup_s: w.warmup_s,
        topics: w.topics,
        partitions: w.partitions,
        record_bytes_mean: w.mean_record_bytes(),
        key_distribution: w.key_distribution,
        hot_key_spread: w.hot_key_spread,
        producers: w.producers,
        consumer_groups: w.consumer_groups,
        consumers_per_group: w.consumers_per_group,
        acks: w.acks().to_owned(),
        batch_size_bytes: w.producer.batch_size_bytes,
        linger_ms: w.producer.linger_ms,
        compression: w.producer.compression.clone(),
        produce_records: produced,
        produce_records_per_s: produced as f64 / window_s,
        produce_mb_per_s: mb_per_s(produced_bytes, window_s),
        consume_records: consumed,
        consume_records_per_s: consumed as f64 / consume_s,
        consume_mb_per_s: mb_per_s(consumed_bytes, consume_s),
        publish_latency_us: Percentiles::from_histogram(&stats.publish_whole()),
        e2e_latency_us: (w.consumers() > 0)
            .then(|| Percentiles::from_histogram(&stats.e2e.whole())),
        send_lateness_us: (!w.is_max_rate())
            .then(|| Percentiles::from_histogram(&stats.lateness_whole())),
        broker_side: match (&watched.broker_start, &watched.broker_end) {
            (Some(a), Some(b)) => Some(b.side_since(a, window_s)),
            _ => None,
        },
        errors: detail.send + detail.delivery + detail.consume,
        error_detail: detail,
        retries,
        backlog_records,
        backlog_drain_s: watched.backlog_drain_s,
        cpu_cores_used: usage_s / window_s,
        cpu_cores_by_thread: watched
            .usage_end
            .cores_by_thread_group(&watched.usage_start, window_s),
        storage_read_bytes,
        seconds: watched.seconds,
    }
}
