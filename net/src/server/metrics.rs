//! The broker's Prometheus metrics: a registry the shards fill and the metrics thread
//! reads (text exposition format 0.0.4).
//!
//! Hot paths take no lock: each shard and each partition holds an `Arc` to its own
//! counters, created once (shard start, partition open), and bumps atomics with Relaxed
//! ordering (every counter is written by one shard only, so there is no contention and no
//! ordering between counters to keep). Only registration, the group coordinator's commit
//! notes and scraping touch a `Mutex`. A scrape reads counters while shards write them:
//! each value is exact, a histogram's `_sum` may lag its buckets by an observation.
//!
//! Consumer-group lag is computed at scrape time from the committed offsets the
//! coordinator reports (`set_committed`) and the partitions' log-end-offset gauges.

mod http;
mod storage;

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cfa_engine::{BatchHeader, LogOffsets};

pub(crate) use http::MetricsServer;
pub use storage::{metered, MeteredStorage, SyncTimer};

use crate::constants::{
    METRICS_FSYNC_BUCKETS_US, METRICS_GROUP_LAG_SERIES_MAX, METRICS_HISTOGRAM_BUCKETS_MAX,
    METRICS_PARTITION_SERIES_MAX, METRICS_REQUEST_BUCKETS_US,
};
use crate::protocol::{ApiKey, ErrorCode, Response};

// ---- histograms ----

/// A Prometheus histogram over fixed buckets, built from atomics.
pub struct Histogram {
    /// Inclusive upper bounds in microseconds, strictly increasing; +Inf is implicit.
    bounds_us: &'static [u64],
    /// Observations per bucket, not cumulative; the last one is +Inf.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// A histogram's values at one instant (summable across shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub bounds_us: &'static [u64],
    /// Per bucket, not cumulative; the last one is +Inf.
    pub buckets: Vec<u64>,
    pub sum_ns: u64,
}

impl Histogram {
    pub fn new(bounds_us: &'static [u64]) -> Histogram {
        assert!(!bounds_us.is_empty() && bounds_us.len() <= METRICS_HISTOGRAM_BUCKETS_MAX);
        assert!(
            bounds_us.windows(2).all(|w| w[0] < w[1]),
            "bucket bounds must increase"
        );
        Histogram {
            bounds_us,
            buckets: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // `le` is inclusive: the first bucket whose bound is at or above the value.
        let i = self
            .bounds_us
            .partition_point(|&b| b.saturating_mul(1_000) < ns);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds_us: self.bounds_us,
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            sum_ns: self.sum_ns.load(Relaxed),
        }
    }
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was observed after `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        assert_eq!(self.bounds_us, earlier.bounds_us, "different buckets");
        HistogramSnapshot {
            bounds_us: self.bounds_us,
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum_ns: self.sum_ns.wrapping_sub(earlier.sum_ns),
        }
    }

    /// Mean observation in microseconds (exact: from the sum); `None` when empty.
    pub fn mean_us(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum_ns as f64 / 1e3 / n as f64)
    }

    /// The bound of the bucket holding quantile `q` (0..=1): the q-quantile is at most this
    /// many microseconds. `None` when empty or when it falls past the last bound (+Inf).
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        assert!((0.0..=1.0).contains(&q), "a quantile is within 0..=1");
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b;
            if seen >= rank {
                return self.bounds_us.get(i).copied();
            }
        }
        unreachable!("the buckets sum to the count")
    }

    /// Adds another snapshot of a histogram with the same buckets.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        assert_eq!(self.bounds_us, other.bounds_us, "different buckets");
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
    }
}

// ---- per partition ----

/// Counters and gauges of one partition, bumped by its owning shard.
#[derive(Default)]
pub struct PartitionMetrics {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
    log_end_offset: AtomicU64,
    log_start_offset: AtomicU64,
}

impl PartitionMetrics {
    /// One batch appended (duplicates of idempotent retries are not).
    pub fn appended(&self, bytes: usize, records: u32, next_offset: u64) {
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
        self.records_in.fetch_add(u64::from(records), Relaxed);
        self.log_end_offset.store(next_offset, Relaxed);
    }

    /// Batches read for a fetch; records counted from their headers.
    pub fn fetched(&self, batches: &[Bytes]) {
        let bytes: usize = batches.iter().map(|b| b.len()).sum();
        let records: u64 = batches
            .iter()
            .filter_map(|b| BatchHeader::parse(b).ok())
            .map(|h| u64::from(h.record_count()))
            .sum();
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
        self.records_out.fetch_add(records, Relaxed);
    }

    pub fn set_offsets(&self, o: &LogOffsets) {
        self.log_end_offset.store(o.next, Relaxed);
        self.log_start_offset.store(o.log_start, Relaxed);
    }

    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset.load(Relaxed)
    }
}

// ---- per shard ----

/// Counters of one shard, bumped by that shard only.
pub struct ShardMetrics {
    fsync: Histogram,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    /// Partition work this shard handed to the owning shard (`cfa_shard_calls_total`).
    calls_sent: AtomicU64,
    /// One per API, indexed by its key.
    request_durations: Box<[Histogram]>,
    /// Requests by API and error: `api * ErrorCode::ALL.len() + error index`.
    requests: Box<[AtomicU64]>,
    requests_undecodable: AtomicU64,
}

fn error_index(code: ErrorCode) -> usize {
    // ErrorCode::ALL is in declaration order, which is what the derived Ord compares.
    ErrorCode::ALL
        .binary_search(&code)
        .expect("ErrorCode::ALL lists every code")
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        for (i, api) in ApiKey::ALL.iter().enumerate() {
            assert_eq!(usize::from(api.as_u16()), i, "ApiKey::ALL indexes by key");
        }
        ShardMetrics {
            fsync: Histogram::new(METRICS_FSYNC_BUCKETS_US),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            calls_sent: AtomicU64::new(0),
            request_durations: ApiKey::ALL
                .iter()
                .map(|_| Histogram::new(METRICS_REQUEST_BUCKETS_US))
                .collect(),
            requests: (0..ApiKey::ALL.len() * ErrorCode::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            requests_undecodable: AtomicU64::new(0),
        }
    }

    /// One fdatasync, or one write that carried its own sync, took `elapsed`.
    pub fn fsync_done(&self, elapsed: Duration) {
        self.fsync.observe(elapsed);
    }

    /// A request received here needed another shard (the partition's owner, or shard 0's
    /// services): one message each way over the mesh.
    pub fn call_sent(&self) {
        self.calls_sent.fetch_add(1, Relaxed);
    }

    /// How many calls to other shards this shard made.
    pub fn calls_sent(&self) -> u64 {
        self.calls_sent.load(Relaxed)
    }

    /// Counts a connection as open until the guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
        ConnectionGuard(self.clone())
    }

    /// A request was answered (or, with no response, finished) `elapsed` after it was
    /// decoded.
    pub fn request_done(&self, api: ApiKey, error: ErrorCode, elapsed: Duration) {
        let api = usize::from(api.as_u16());
        self.request_durations[api].observe(elapsed);
        self.requests[api * ErrorCode::ALL.len() + error_index(error)].fetch_add(1, Relaxed);
    }

    /// A frame that could not be decoded into a request.
    pub fn request_undecodable(&self) {
        self.requests_undecodable.fetch_add(1, Relaxed);
    }
}

/// Keeps a connection counted in `cfa_connections_open`.
pub struct ConnectionGuard(Arc<ShardMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let before = self.0.connections_open.fetch_sub(1, Relaxed);
        assert!(before > 0, "closed more connections than were opened");
    }
}

/// The first error among `codes`, `None` if there is none.
fn first_error(codes: impl IntoIterator<Item = ErrorCode>) -> ErrorCode {
    codes
        .into_iter()
        .find(|c| c.is_error())
        .unwrap_or(ErrorCode::None)
}

/// The error a request's response reports: its top-level code if it is an error, else
/// the first error among its topics and partitions, else `None`. Acks=0 produces have no
/// response and count as `None`.
pub fn response_error(resp: Option<&Response>) -> ErrorCode {
    use std::iter::once;
    let Some(resp) = resp else {
        return ErrorCode::None;
    };
    match resp {
        Response::ApiVersions(r) => r.error_code,
        Response::Metadata(r) => first_error(
            r.topics
                .iter()
                .flat_map(|t| once(t.error_code).chain(t.partitions.iter().map(|p| p.error_code))),
        ),
        Response::CreateTopics(r) => first_error(r.topics.iter().map(|t| t.error_code)),
        Response::DeleteTopics(r) => first_error(r.topics.iter().map(|t| t.error_code)),
        Response::ListTopics(_) | Response::ListGroups(_) => ErrorCode::None,
        Response::DescribeTopic(r) => {
            first_error(once(r.error_code).chain(r.partitions.iter().map(|p| p.error_code)))
        }
        Response::Produce(r) => first_error(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        Response::Fetch(r) => first_error(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        Response::ListOffsets(r) => first_error(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        Response::OffsetCommit(r) => first_error(
            once(r.error_code).chain(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            ),
        ),
        Response::OffsetFetch(r) => first_error(
            once(r.error_code).chain(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            ),
        ),
        Response::InitProducerId(r) => r.error_code,
        Response::JoinGroup(r) => r.error_code,
        Response::SyncGroup(r) => r.error_code,
        Response::Heartbeat(r) => r.error_code,
        Response::LeaveGroup(r) => r.error_code,
        Response::DescribeGroup(r) => r.error_code,
        Response::Failed(r) => r.error_code,
    }
}

// ---- the registry ----

/// Committed offsets by group, then (topic, partition).
#[derive(Default)]
struct Committed {
    groups: BTreeMap<String, BTreeMap<(String, u32), u64>>,
    entries: usize,
}

/// Every metric of one broker.
pub struct Metrics {
    shards: Vec<Arc<ShardMetrics>>,
    partitions: Mutex<BTreeMap<(String, u32), Arc<PartitionMetrics>>>,
    committed: Mutex<Committed>,
    /// Partitions and committed offsets left out of scrapes by the series caps.
    series_dropped: AtomicU64,
}

/// A poisoned lock only means a thread panicked while holding it; the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn new(shards: usize) -> Metrics {
        assert!(shards > 0);
        Metrics {
            shards: (0..shards).map(|_| Arc::new(ShardMetrics::new())).collect(),
            partitions: Mutex::new(BTreeMap::new()),
            committed: Mutex::new(Committed::default()),
            series_dropped: AtomicU64::new(0),
        }
    }

    /// fdatasyncs (and writes that carried their own sync) of every shard so far.
    pub fn fsync_snapshot(&self) -> HistogramSnapshot {
        self.sum_over_shards(|s| s.fsync.snapshot())
    }

    /// Durations of every shard's `api` requests so far, from decoded to answered.
    pub fn request_duration_snapshot(&self, api: ApiKey) -> HistogramSnapshot {
        self.sum_over_shards(|s| s.request_durations[usize::from(api.as_u16())].snapshot())
    }

    fn sum_over_shards(&self, f: impl Fn(&ShardMetrics) -> HistogramSnapshot) -> HistogramSnapshot {
        let mut total = f(&self.shards[0]);
        for s in &self.shards[1..] {
            total.add(&f(s));
        }
        total
    }

    /// The counters of shard `id`, for that shard to keep.
    pub fn shard(&self, id: usize) -> &Arc<ShardMetrics> {
        &self.shards[id]
    }

    /// The counters of a partition being opened. A partition still registered (reopened)
    /// keeps its counters. Past the series cap the counters work but are not listed.
    pub fn register_partition(&self, topic: &str, partition: u32) -> Arc<PartitionMetrics> {
        let mut parts = lock(&self.partitions);
        let key = (topic.to_owned(), partition);
        if let Some(m) = parts.get(&key) {
            return m.clone();
        }
        let m = Arc::new(PartitionMetrics::default());
        if parts.len() < METRICS_PARTITION_SERIES_MAX {
            parts.insert(key, m.clone());
        } else {
            self.series_dropped.fetch_add(1, Relaxed);
        }
        m
    }

    /// Forgets a deleted partition (only if `m` is what is registered under its name).
    pub fn unregister_partition(&self, topic: &str, partition: u32, m: &Arc<PartitionMetrics>) {
        let mut parts = lock(&self.partitions);
        let key = (topic.to_owned(), partition);
        if parts.get(&key).is_some_and(|r| Arc::ptr_eq(r, m)) {
            parts.remove(&key);
        }
    }

    /// The group coordinator committed `offset` (the next offset the group will consume).
    pub fn set_committed(&self, group: &str, topic: &str, partition: u32, offset: u64) {
        let mut c = lock(&self.committed);
        let key = (topic.to_owned(), partition);
        if let Some(o) = c.groups.get_mut(group).and_then(|g| g.get_mut(&key)) {
            *o = offset;
            return;
        }
        if c.entries >= METRICS_GROUP_LAG_SERIES_MAX {
            self.series_dropped.fetch_add(1, Relaxed);
            return;
        }
        c.groups
            .entry(group.to_owned())
            .or_default()
            .insert(key, offset);
        c.entries += 1;
    }

    /// A group is gone (deleted or expired with its offsets).
    pub fn remove_group(&self, group: &str) {
        let mut c = lock(&self.committed);
        if let Some(g) = c.groups.remove(group) {
            assert!(c.entries >= g.len());
            c.entries -= g.len();
        }
    }

    /// Every metric in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let parts: Vec<((String, u32), Arc<PartitionMetrics>)> = lock(&self.partitions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = String::with_capacity(4096 + parts.len() * 600);
        render_partitions(&mut out, &parts);
        self.render_lag(&mut out, &parts);
        self.render_shards(&mut out);
        self.render_requests(&mut out);
        family(
            &mut out,
            "cfa_metrics_series_dropped_total",
            "counter",
            "Partitions and committed offsets left out of scrapes by the series caps.",
        );
        sample(
            &mut out,
            "cfa_metrics_series_dropped_total",
            &[],
            self.series_dropped.load(Relaxed),
        );
        out
    }

    fn render_lag(&self, out: &mut String, parts: &[((String, u32), Arc<PartitionMetrics>)]) {
        let name = "cfa_group_lag_records";
        family(
            out,
            name,
            "gauge",
            "Records between a group's committed offset and the partition's log end offset.",
        );
        let c = lock(&self.committed);
        for (group, offsets) in &c.groups {
            for ((topic, partition), &committed) in offsets {
                let key = (topic.clone(), *partition);
                // A committed offset of a deleted partition has no lag to show.
                let Ok(i) = parts.binary_search_by(|(k, _)| k.cmp(&key)) else {
                    continue;
                };
                let lag = parts[i].1.log_end_offset().saturating_sub(committed);
                let p = partition.to_string();
                let labels = [
                    ("group", group.as_str()),
                    ("topic", topic),
                    ("partition", &p),
                ];
                sample(out, name, &labels, lag);
            }
        }
    }

    /// One sample of `name` per shard, labelled with the shard's number.
    fn per_shard<T: Display>(
        &self,
        out: &mut String,
        name: &str,
        value: impl Fn(&ShardMetrics) -> T,
    ) {
        for (id, s) in self.shards.iter().enumerate() {
            let shard = id.to_string();
            sample(out, name, &[("shard", &shard)], value(s));
        }
    }

    fn render_shards(&self, out: &mut String) {
        let name = "cfa_fsync_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Latency of fdatasync calls and of writes that carry their own sync (O_DSYNC).",
        );
        for (id, s) in self.shards.iter().enumerate() {
            let shard = id.to_string();
            histogram(out, name, &[("shard", &shard)], &s.fsync.snapshot());
        }
        let name = "cfa_connections_open";
        family(out, name, "gauge", "Client connections open.");
        self.per_shard(out, name, |s| s.connections_open.load(Relaxed));
        let name = "cfa_shard_calls_total";
        family(
            out,
            name,
            "counter",
            "Calls this shard made to another shard: requests received here for partitions (or services) another shard owns.",
        );
        self.per_shard(out, name, |s| s.calls_sent.load(Relaxed));
        let name = "cfa_connections_accepted_total";
        family(out, name, "counter", "Client connections accepted.");
        let accepted: u64 = self
            .shards
            .iter()
            .map(|s| s.connections_accepted.load(Relaxed))
            .sum();
        sample(out, name, &[], accepted);
    }

    fn render_requests(&self, out: &mut String) {
        let name = "cfa_requests_total";
        family(
            out,
            name,
            "counter",
            "Requests answered, by API and by the first error code of the response.",
        );
        let errors = ErrorCode::ALL.len();
        for (a, api) in ApiKey::ALL.iter().enumerate() {
            let api = api.to_string();
            for (e, code) in ErrorCode::ALL.iter().enumerate() {
                let i = a * errors + e;
                let n: u64 = self
                    .shards
                    .iter()
                    .map(|s| s.requests[i].load(Relaxed))
                    .sum();
                if n > 0 {
                    let labels = [("api", api.as_str()), ("error", code.name())];
                    sample(out, name, &labels, n);
                }
            }
        }
        let name = "cfa_request_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time from a request's decoding to its response written to the socket.",
        );
        for (a, api) in ApiKey::ALL.iter().enumerate() {
            let mut total = self.shards[0].request_durations[a].snapshot();
            for s in &self.shards[1..] {
                total.add(&s.request_durations[a].snapshot());
            }
            if total.count() > 0 {
                histogram(out, name, &[("api", &api.to_string())], &total);
            }
        }
        let name = "cfa_requests_undecodable_total";
        family(
            out,
            name,
            "counter",
            "Request frames that could not be decoded.",
        );
        let n: u64 = self
            .shards
            .iter()
            .map(|s| s.requests_undecodable.load(Relaxed))
            .sum();
        sample(out, name, &[], n);
    }
}

fn render_partitions(out: &mut String, parts: &[((String, u32), Arc<PartitionMetrics>)]) {
    type Get = fn(&PartitionMetrics) -> &AtomicU64;
    let families: [(&str, &str, &str, Get); 6] = [
        (
            "cfa_partition_bytes_in_total",
            "counter",
            "Bytes of record batches appended.",
            |m| &m.bytes_in,
        ),
        (
            "cfa_partition_records_in_total",
            "counter",
            "Records appended (from batch headers).",
            |m| &m.records_in,
        ),
        (
            "cfa_partition_bytes_out_total",
            "counter",
            "Bytes of record batches read for fetches.",
            |m| &m.bytes_out,
        ),
        (
            "cfa_partition_records_out_total",
            "counter",
            "Records read for fetches (from batch headers).",
            |m| &m.records_out,
        ),
        (
            "cfa_partition_log_end_offset",
            "gauge",
            "The offset the next appended record gets.",
            |m| &m.log_end_offset,
        ),
        (
            "cfa_partition_log_start_offset",
            "gauge",
            "The first offset still in the log.",
            |m| &m.log_start_offset,
        ),
    ];
    for (name, kind, help, get) in families {
        family(out, name, kind, help);
        for ((topic, partition), m) in parts {
            let p = partition.to_string();
            sample(
                out,
                name,
                &[("topic", topic), ("partition", &p)],
                get(m).load(Relaxed),
            );
        }
    }
}

// ---- text format ----

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `name{a="x",b="y"} value`; label values escaped as the format asks.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn seconds_from_us(us: u64) -> f64 {
    us as f64 / 1e6
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (i, n) in h.buckets.iter().enumerate() {
        cumulative += n;
        let le = match h.bounds_us.get(i) {
            Some(&us) => seconds_from_us(us).to_string(),
            None => "+Inf".to_owned(),
        };
        let mut with_le = labels.to_vec();
        with_le.push(("le", &le));
        sample(out, &bucket, &with_le, cumulative);
    }
    sample(out, &format!("{name}_sum"), labels, h.sum_ns as f64 / 1e9);
    sample(out, &format!("{name}_count"), labels, cumulative);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        FailedResponse, ProducePartitionResponse, ProduceResponse, ProduceTopicResponse,
    };

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn a_window_of_a_histogram_gives_its_mean_and_quantile_bounds() {
        static BOUNDS: &[u64] = &[10, 100, 1_000];
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::from_micros(5_000)); // before the window
        let start = h.snapshot();
        assert_eq!(h.snapshot().since(&start).mean_us(), None, "empty window");
        assert_eq!(h.snapshot().since(&start).quantile_bound_us(0.5), None);
        for _ in 0..98 {
            h.observe(Duration::from_micros(8));
        }
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(500));
        let w = h.snapshot().since(&start);
        assert_eq!(w.count(), 100);
        let mean = w.mean_us().expect("observations");
        assert!((mean - (98.0 * 8.0 + 550.0) / 100.0).abs() < 1e-9, "{mean}");
        assert_eq!(w.quantile_bound_us(0.5), Some(10));
        assert_eq!(w.quantile_bound_us(0.98), Some(10));
        assert_eq!(w.quantile_bound_us(0.99), Some(100));
        assert_eq!(w.quantile_bound_us(1.0), Some(1_000));
        h.observe(Duration::from_secs(1));
        h.observe(Duration::from_secs(1));
        let w = h.snapshot().since(&start);
        assert_eq!(w.quantile_bound_us(1.0), None, "past the last bound");
    }

    #[test]
    fn the_registry_sums_its_shards_histograms() {
        let m = Metrics::new(2);
        m.shard(0).fsync_done(Duration::from_micros(40));
        m.shard(1).fsync_done(Duration::from_micros(60));
        m.shard(1)
            .request_done(ApiKey::Produce, ErrorCode::None, Duration::from_millis(2));
        assert_eq!(m.fsync_snapshot().count(), 2);
        assert_eq!(m.fsync_snapshot().mean_us(), Some(50.0));
        assert_eq!(m.request_duration_snapshot(ApiKey::Produce).count(), 1);
        assert_eq!(m.request_duration_snapshot(ApiKey::Fetch).count(), 0);
    }

    #[test]
    fn histogram_buckets_are_inclusive_and_cumulative() {
        static BOUNDS: &[u64] = &[10, 100];
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::from_micros(10)); // on the bound: first bucket
        h.observe(Duration::from_nanos(10_001)); // just above: second
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_secs(1)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.buckets, [1, 2, 1]);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_ns, 10_000 + 10_001 + 100_000 + 1_000_000_000);
        let mut out = String::new();
        histogram(&mut out, "x_seconds", &[("shard", "0")], &s);
        let want = "x_seconds_bucket{shard=\"0\",le=\"0.00001\"} 1\n\
                    x_seconds_bucket{shard=\"0\",le=\"0.0001\"} 3\n\
                    x_seconds_bucket{shard=\"0\",le=\"+Inf\"} 4\n\
                    x_seconds_sum{shard=\"0\"} 1.000120001\n\
                    x_seconds_count{shard=\"0\"} 4\n";
        assert_eq!(out, want);
    }

    #[test]
    #[should_panic(expected = "increase")]
    fn unsorted_bounds_are_refused() {
        static BOUNDS: &[u64] = &[10, 10];
        let _ = Histogram::new(BOUNDS);
    }

    #[test]
    fn lag_is_log_end_minus_committed() {
        let m = Metrics::new(1);
        let p = m.register_partition("t", 0);
        p.appended(100, 5, 42);
        m.set_committed("g\"1", "t", 0, 40);
        m.set_committed("g\"1", "gone", 0, 1); // no such partition: not listed
        let text = m.render();
        assert_eq!(
            line(&text, "cfa_group_lag_records{"),
            Some("cfa_group_lag_records{group=\"g\\\"1\",topic=\"t\",partition=\"0\"} 2")
        );
        assert_eq!(text.matches("cfa_group_lag_records{").count(), 1);
        m.set_committed("g\"1", "t", 0, 50); // ahead of the gauge: no negative lag
        assert!(m.render().contains("partition=\"0\"} 0\n"));
        m.remove_group("g\"1");
        assert!(!m.render().contains("cfa_group_lag_records{"));
        assert_eq!(lock(&m.committed).entries, 0);
    }

    #[test]
    fn partitions_register_once_and_unregister() {
        let m = Metrics::new(2);
        let a = m.register_partition("t", 3);
        a.appended(10, 2, 2);
        a.fetched(&[]);
        let again = m.register_partition("t", 3);
        assert!(
            Arc::ptr_eq(&a, &again),
            "a reopened partition keeps its counters"
        );
        let text = m.render();
        assert!(text.contains("cfa_partition_bytes_in_total{topic=\"t\",partition=\"3\"} 10\n"));
        assert!(text.contains("cfa_partition_records_in_total{topic=\"t\",partition=\"3\"} 2\n"));
        assert!(text.contains("cfa_partition_log_end_offset{topic=\"t\",partition=\"3\"} 2\n"));
        let other = Arc::new(PartitionMetrics::default());
        m.unregister_partition("t", 3, &other); // not the registered one: kept
        assert!(m.render().contains("partition=\"3\""));
        m.unregister_partition("t", 3, &a);
        assert!(!m.render().contains("partition=\"3\""));
    }

    #[test]
    fn series_caps_hold() {
        let m = Metrics::new(1);
        for p in 0..METRICS_PARTITION_SERIES_MAX as u32 + 3 {
            m.register_partition("t", p);
        }
        assert_eq!(lock(&m.partitions).len(), METRICS_PARTITION_SERIES_MAX);
        for p in 0..METRICS_GROUP_LAG_SERIES_MAX as u32 + 2 {
            m.set_committed("g", "t", p, 0);
        }
        assert_eq!(lock(&m.committed).entries, METRICS_GROUP_LAG_SERIES_MAX);
        m.set_committed("g", "t", 0, 7); // an existing entry still updates
        assert_eq!(lock(&m.committed).groups["g"][&("t".to_owned(), 0)], 7);
        assert!(m.render().contains("cfa_metrics_series_dropped_total 5\n"));
    }

    #[test]
    fn requests_sum_over_shards_by_api_and_error() {
        let m = Metrics::new(2);
        m.shard(0)
            .request_done(ApiKey::Produce, ErrorCode::None, Duration::from_micros(150));
        m.shard(1)
            .request_done(ApiKey::Produce, ErrorCode::None, Duration::from_micros(90));
        m.shard(1).request_done(
            ApiKey::Produce,
            ErrorCode::UnknownTopic,
            Duration::from_millis(1),
        );
        let text = m.render();
        assert!(text.contains("cfa_requests_total{api=\"Produce\",error=\"None\"} 2\n"));
        assert!(text.contains("cfa_requests_total{api=\"Produce\",error=\"UnknownTopic\"} 1\n"));
        assert!(text.contains("cfa_request_duration_seconds_count{api=\"Produce\"} 3\n"));
        assert!(
            text.contains("cfa_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0001\"} 1\n")
        );
        assert!(
            !text.contains("api=\"Fetch\""),
            "APIs never called are not listed"
        );
    }

    #[test]
    fn connections_are_counted_while_open() {
        let m = Metrics::new(1);
        let g1 = m.shard(0).connection_opened();
        let g2 = m.shard(0).connection_opened();
        drop(g1);
        let text = m.render();
        assert!(text.contains("cfa_connections_open{shard=\"0\"} 1\n"));
        assert!(text.contains("cfa_connections_accepted_total 2\n"));
        assert!(text.contains("cfa_shard_calls_total{shard=\"0\"} 0\n"));
        m.shard(0).call_sent();
        assert!(m
            .render()
            .contains("cfa_shard_calls_total{shard=\"0\"} 1\n"));
        assert_eq!(m.shard(0).calls_sent(), 1);
        drop(g2);
        assert!(m.render().contains("cfa_connections_open{shard=\"0\"} 0\n"));
    }

    #[test]
    fn response_error_finds_the_first_error() {
        let part = |code| ProducePartitionResponse {
            partition: 0,
            error_code: code,
            error_message: None,
            base_offset: 0,
            log_append_time_ms: None,
            log_start_offset: 0,
        };
        let produce = |codes: &[ErrorCode]| {
            Response::Produce(ProduceResponse {
                throttle_time_ms: 0,
                topics: vec![ProduceTopicResponse {
                    name: "t".into(),
                    partitions: codes.iter().map(|&c| part(c)).collect(),
                }],
            })
        };
        assert_eq!(response_error(None), ErrorCode::None);
        let ok = produce(&[ErrorCode::None, ErrorCode::None]);
        assert_eq!(response_error(Some(&ok)), ErrorCode::None);
        let bad = produce(&[ErrorCode::None, ErrorCode::UnknownPartition]);
        assert_eq!(response_error(Some(&bad)), ErrorCode::UnknownPartition);
        let failed = Response::Failed(FailedResponse {
            api_key: 6,
            error_code: ErrorCode::BrokerShuttingDown,
            error_message: None,
        });
        assert_eq!(response_error(Some(&failed)), ErrorCode::BrokerShuttingDown);
    }

    #[test]
    fn every_error_code_has_an_index() {
        for (i, &c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(error_index(c), i);
        }
    }
}
