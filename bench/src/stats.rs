//! What a run counts, shared by the producer and consumer threads and read each second
//! by the progress line: the run's clock, the measured window, counters and HDR
//! histograms (whole run and the current second).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::report::latency_histogram;

/// Nanoseconds since the run's epoch: one clock for send stamps, deliveries and
/// receipts (producers and consumers live in this process).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    /// The wall clock at `epoch`, ms since the Unix epoch.
    epoch_wall_ms: i64,
}

impl Clock {
    pub fn new() -> Clock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the wall clock is past 1970");
        Clock {
            epoch: Instant::now(),
            epoch_wall_ms: wall.as_millis() as i64,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The run-clock reading of an instant taken elsewhere (0 before the epoch): the
    /// producer stamps each batch's reports once, and reading the clock per record
    /// instead showed in max-rate profiles (2% of the samples).
    pub fn ns_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The wall-clock time (ms since the Unix epoch) of run-clock reading `ns`: records
    /// get their create time from the reading the bench already took, so the client does
    /// not read the wall clock once per record.
    pub fn wall_ms(&self, ns: u64) -> i64 {
        self.epoch_wall_ms + (ns / 1_000_000) as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A whole-run histogram and the current second's.
pub struct Latencies {
    inner: Mutex<(Histogram<u64>, Histogram<u64>)>,
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies {
            inner: Mutex::new((latency_histogram(), latency_histogram())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Histogram<u64>, Histogram<u64>)> {
        // A panicking recorder cannot leave a histogram half-written in a way that
        // matters for a report: keep going with what is there.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record_us(&self, us: u64) {
        let mut h = self.lock();
        h.0.saturating_record(us.max(1));
        h.1.saturating_record(us.max(1));
    }

    /// Records many at once (one lock for a whole poll's records).
    pub fn record_all_us(&self, values_us: &[u64]) {
        if values_us.is_empty() {
            return;
        }
        let mut h = self.lock();
        for &us in values_us {
            h.0.saturating_record(us.max(1));
            h.1.saturating_record(us.max(1));
        }
    }

    /// The current second's p99 (0 without samples), then starts a new second.
    pub fn take_second_p99(&self) -> u64 {
        p99(&self.take_second())
    }

    /// The current second's histogram, then starts a new second.
    pub fn take_second(&self) -> Histogram<u64> {
        let mut h = self.lock();
        let second = h.1.clone();
        h.1.reset();
        second
    }

    pub fn whole(&self) -> Histogram<u64> {
        self.lock().0.clone()
    }

    pub fn whole_p99(&self) -> u64 {
        p99(&self.lock().0)
    }
}

/// A histogram's p99, 0 when it is empty.
fn p99(h: &Histogram<u64>) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(0.99)
    }
}

/// Adds up histograms made by `latency_histogram` (same bounds, so adding cannot fail).
fn merged(parts: impl Iterator<Item = Histogram<u64>>) -> Histogram<u64> {
    let mut all = latency_histogram();
    for part in parts {
        all.add(&part)
            .expect("latency histograms share their bounds");
    }
    all
}

/// A value on cache lines of its own (two: the adjacent-line prefetcher pairs them).
#[repr(align(128))]
#[derive(Default)]
struct OwnLine<T>(T);

/// One producer's counters and publish latencies, on cache lines of their own. Delivery
/// callbacks run on each producer's sender thread; with one shared set of counters and
/// one histogram lock, the cores passed those lines back and forth for every record.
#[repr(align(128))]
#[derive(Default)]
pub struct ProducerTally {
    /// Records handed to `send` (all phases). Written by the sending thread for every
    /// record, so on a line apart from the counters the sender thread writes.
    sent: OwnLine<AtomicU64>,
    /// Acknowledged records (all phases) and those acknowledged inside the window.
    acked: AtomicU64,
    acked_bytes: AtomicU64,
    acked_in_window: AtomicU64,
    acked_bytes_in_window: AtomicU64,
    /// Acknowledged records whose intended send time is inside the window (what the
    /// consumers must read before they are done).
    acked_measured: AtomicU64,
    delivery_errors: AtomicU64,
    publish: Latencies,
    /// How late the paced producer handed records to `send` (the generator's own share
    /// of every publish latency).
    lateness: Latencies,
}

/// Adds `n` to a counter that only one thread ever writes (others only read it): a
/// plain load and store, where `fetch_add` is a locked instruction that waits for the
/// core's store buffer to drain. Per record, on the producer's and the sender's hot
/// paths, those waits showed in max-rate profiles.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl ProducerTally {
    /// Called only on the producer's own sending thread (the single writer of `sent`).
    pub fn on_sent(&self) {
        bump(&self.sent.0, 1);
    }

    /// Takes back an `on_sent` whose `send` failed (nothing was queued); same thread.
    pub fn on_not_sent(&self) {
        bump(&self.sent.0, u64::MAX); // wrapping: adds -1
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

/// Counters and histograms of one run. Times are the run clock's nanoseconds.
pub struct RunStats {
    pub clock: Clock,
    /// The measured window [start, end): throughput counts what happens inside it,
    /// latency histograms take records whose intended send time is inside it.
    pub measure_start_ns: AtomicU64,
    pub measure_end_ns: AtomicU64,
    /// Per producer: what it sent, what was acknowledged, its publish latencies.
    producers: Box<[ProducerTally]>,
    pub send_errors: AtomicU64,
    pub consume_errors: AtomicU64,
    pub consumed: AtomicU64,
    pub consumed_bytes: AtomicU64,
    pub consumed_in_window: AtomicU64,
    pub consumed_bytes_in_window: AtomicU64,
    /// Consumed records whose send stamp is inside the window.
    pub consumed_measured: AtomicU64,
    /// When the first record was consumed (`u64::MAX` before).
    pub first_consumed_ns: AtomicU64,
    pub e2e: Latencies,
    /// The first error message of the run (later ones are only counted).
    first_error: Mutex<Option<String>>,
}

impl RunStats {
    /// Counters for `producers` producers (numbered from 0) and any number of consumers.
    pub fn new(clock: Clock, producers: u32) -> RunStats {
        RunStats {
            clock,
            measure_start_ns: AtomicU64::new(u64::MAX),
            measure_end_ns: AtomicU64::new(u64::MAX),
            producers: (0..producers).map(|_| ProducerTally::default()).collect(),
            send_errors: AtomicU64::new(0),
            consume_errors: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            consumed_bytes: AtomicU64::new(0),
            consumed_in_window: AtomicU64::new(0),
            consumed_bytes_in_window: AtomicU64::new(0),
            consumed_measured: AtomicU64::new(0),
            first_consumed_ns: AtomicU64::new(u64::MAX),
            e2e: Latencies::new(),
            first_error: Mutex::new(None),
        }
    }

    pub fn note_error(&self, e: &dyn std::fmt::Display) {
        self.note_message(e.to_string());
    }

    pub fn note_message(&self, message: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_window(&self, start_ns: u64, end_ns: u64) {
        assert!(start_ns <= end_ns, "the window ends after it starts");
        self.measure_start_ns.store(start_ns, Ordering::Relaxed);
        self.measure_end_ns.store(end_ns, Ordering::Relaxed);
    }

    pub fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.measure_start_ns.load(Ordering::Relaxed)
            && t_ns < self.measure_end_ns.load(Ordering::Relaxed)
    }

    /// Whether a record intended at `intended_ns` belongs to the latency histograms.
    pub fn measured(&self, intended_ns: u64) -> bool {
        self.in_window(intended_ns)
    }

    /// Producer `producer`'s tally.
    pub fn producer(&self, producer: usize) -> &ProducerTally {
        &self.producers[producer]
    }

    /// A delivery report arrived for a record of `producer` intended at `intended_ns`:
    /// `Some(value bytes)` if it was delivered, acknowledged at run-clock reading `now`.
    pub fn on_delivery(&self, producer: usize, delivered: Option<u64>, intended_ns: u64, now: u64) {
        // The producer's reports all come from its one sender thread (the client calls
        // the delivery handler nowhere else), the single writer of these counters.
        let p = &self.producers[producer];
        let Some(bytes) = delivered else {
            bump(&p.delivery_errors, 1);
            return;
        };
        bump(&p.acked, 1);
        bump(&p.acked_bytes, bytes);
        if self.in_window(now) {
            bump(&p.acked_in_window, 1);
            bump(&p.acked_bytes_in_window, bytes);
        }
        if self.measured(intended_ns) {
            bump(&p.acked_measured, 1);
            p.publish.record_us(now.saturating_sub(intended_ns) / 1000);
        }
    }

    fn sum(&self, counter: impl Fn(&ProducerTally) -> &AtomicU64) -> u64 {
        self.producers
            .iter()
            .map(|p| counter(p).load(Ordering::Relaxed))
            .sum()
    }

    pub fn sent(&self) -> u64 {
        self.sum(|p| &p.sent.0)
    }

    pub fn acked(&self) -> u64 {
        self.sum(|p| &p.acked)
    }

    pub fn acked_bytes(&self) -> u64 {
        self.sum(|p| &p.acked_bytes)
    }

    pub fn acked_in_window(&self) -> u64 {
        self.sum(|p| &p.acked_in_window)
    }

    pub fn acked_bytes_in_window(&self) -> u64 {
        self.sum(|p| &p.acked_bytes_in_window)
    }

    pub fn acked_measured(&self) -> u64 {
        self.sum(|p| &p.acked_measured)
    }

    pub fn delivery_errors(&self) -> u64 {
        self.sum(|p| &p.delivery_errors)
    }

    /// A paced record of `producer` intended at `intended_ns` went to `send` at `sent_ns`.
    pub fn on_paced_send(&self, producer: usize, intended_ns: u64, sent_ns: u64) {
        if self.measured(intended_ns) {
            let late_us = sent_ns.saturating_sub(intended_ns) / 1000;
            self.producers[producer].lateness.record_us(late_us);
        }
    }

    /// Every paced producer's send lateness over the whole run.
    pub fn lateness_whole(&self) -> Histogram<u64> {
        merged(self.producers.iter().map(|p| p.lateness.whole()))
    }

    /// Every producer's publish latencies over the whole run.
    pub fn publish_whole(&self) -> Histogram<u64> {
        merged(self.producers.iter().map(|p| p.publish.whole()))
    }

    /// The p99 of every producer's publish latencies of the current second, then starts
    /// a new second.
    pub fn publish_take_second_p99(&self) -> u64 {
        p99(&merged(
            self.producers.iter().map(|p| p.publish.take_second()),
        ))
    }

    /// A consumer got `records` records (sizes and stamps) at `now_ns`.
    pub fn on_consumed(
        &self,
        now_ns: u64,
        records: u64,
        bytes: u64,
        e2e_us: &[u64],
        measured: u64,
    ) {
        if records > 0 {
            // Only the first store wins; later ones find the slot taken.
            let _ = self.first_consumed_ns.compare_exchange(
                u64::MAX,
                now_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.consumed.fetch_add(records, Ordering::Relaxed);
        self.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.in_window(now_ns) {
            self.consumed_in_window
                .fetch_add(records, Ordering::Relaxed);
            self.consumed_bytes_in_window
                .fetch_add(bytes, Ordering::Relaxed);
        }
        self.consumed_measured
            .fetch_add(measured, Ordering::Relaxed);
        self.e2e.record_all_us(e2e_us);
    }

    pub fn errors(&self) -> u64 {
        self.send_errors.load(Ordering::Relaxed)
            + self.delivery_errors()
            + self.consume_errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_instant_reads_as_nanoseconds_since_the_epoch() {
        let c = Clock::new();
        assert_eq!(c.ns_at(c.epoch + Duration::from_micros(5)), 5_000);
        let before = c.epoch.checked_sub(Duration::from_millis(1));
        assert_eq!(before.map(|b| c.ns_at(b)), before.map(|_| 0));
    }

    #[test]
    fn only_the_window_counts() {
        let s = RunStats::new(Clock::new(), 2);
        s.set_window(0, u64::MAX - 1);
        s.on_delivery(0, Some(100), 0, 1_000);
        s.set_window(u64::MAX - 2, u64::MAX - 1);
        s.on_delivery(1, Some(100), 0, 1_000); // acked outside the window, intended before it
        s.on_delivery(1, None, 0, 1_000);
        assert_eq!(s.acked(), 2);
        assert_eq!(s.acked_in_window(), 1);
        assert_eq!(s.acked_bytes_in_window(), 100);
        assert_eq!(s.acked_measured(), 1);
        assert_eq!(s.errors(), 1);
        assert_eq!(s.publish_whole().len(), 1);
    }

    #[test]
    fn every_producer_counts_in_the_sums_and_the_latencies() {
        let s = RunStats::new(Clock::new(), 3);
        s.set_window(0, u64::MAX - 1);
        for p in 0..3 {
            s.producer(p).on_sent();
            s.on_delivery(p, Some(10 * (p as u64 + 1)), 0, 5_000);
        }
        assert_eq!((s.sent(), s.acked(), s.acked_bytes()), (3, 3, 60));
        assert_eq!(s.publish_whole().len(), 3);
        assert!(s.publish_take_second_p99() > 0);
        assert_eq!(
            s.publish_take_second_p99(),
            0,
            "every producer's second was reset"
        );
        assert_eq!(s.publish_whole().len(), 3);
    }

    #[test]
    fn send_lateness_counts_records_intended_in_the_window() {
        let s = RunStats::new(Clock::new(), 2);
        s.set_window(1_000_000, 2_000_000);
        s.on_paced_send(0, 1_000_000, 1_250_000); // 250 us late
        s.on_paced_send(1, 1_500_000, 1_500_000); // on time (recorded as 1 us)
        s.on_paced_send(1, 500_000, 1_900_000); // intended before the window: not counted
        let h = s.lateness_whole();
        assert_eq!(h.len(), 2);
        assert!((249..=251).contains(&h.max()), "max {}", h.max());
    }

    #[test]
    fn a_second_p99_resets_and_the_whole_run_keeps_everything() {
        let l = Latencies::new();
        l.record_all_us(&[10, 20, 30_000]);
        assert!(l.take_second_p99() >= 29_000);
        assert_eq!(l.take_second_p99(), 0, "the second was reset");
        assert_eq!(l.whole().len(), 3);
        assert!(l.whole_p99() >= 29_000);
    }
}
