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
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
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
        let mut h = self.lock();
        let p99 = if h.1.is_empty() {
            0
        } else {
            h.1.value_at_quantile(0.99)
        };
        h.1.reset();
        p99
    }

    pub fn whole(&self) -> Histogram<u64> {
        self.lock().0.clone()
    }

    pub fn whole_p99(&self) -> u64 {
        let h = self.lock();
        if h.0.is_empty() {
            0
        } else {
            h.0.value_at_quantile(0.99)
        }
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
    /// Records handed to `send` (all phases).
    pub sent: AtomicU64,
    /// Acknowledged records (all phases) and those acknowledged inside the window.
    pub acked: AtomicU64,
    pub acked_bytes: AtomicU64,
    pub acked_in_window: AtomicU64,
    pub acked_bytes_in_window: AtomicU64,
    /// Acknowledged records whose intended send time is inside the window (what the
    /// consumers must read before they are done).
    pub acked_measured: AtomicU64,
    pub send_errors: AtomicU64,
    pub delivery_errors: AtomicU64,
    pub consume_errors: AtomicU64,
    pub consumed: AtomicU64,
    pub consumed_bytes: AtomicU64,
    pub consumed_in_window: AtomicU64,
    pub consumed_bytes_in_window: AtomicU64,
    /// Consumed records whose send stamp is inside the window.
    pub consumed_measured: AtomicU64,
    /// When the first record was consumed (`u64::MAX` before).
    pub first_consumed_ns: AtomicU64,
    pub publish: Latencies,
    pub e2e: Latencies,
    /// The first error message of the run (later ones are only counted).
    first_error: Mutex<Option<String>>,
}

impl RunStats {
    pub fn new(clock: Clock) -> RunStats {
        RunStats {
            clock,
            measure_start_ns: AtomicU64::new(u64::MAX),
            measure_end_ns: AtomicU64::new(u64::MAX),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            acked_bytes: AtomicU64::new(0),
            acked_in_window: AtomicU64::new(0),
            acked_bytes_in_window: AtomicU64::new(0),
            acked_measured: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            delivery_errors: AtomicU64::new(0),
            consume_errors: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            consumed_bytes: AtomicU64::new(0),
            consumed_in_window: AtomicU64::new(0),
            consumed_bytes_in_window: AtomicU64::new(0),
            consumed_measured: AtomicU64::new(0),
            first_consumed_ns: AtomicU64::new(u64::MAX),
            publish: Latencies::new(),
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

    /// A delivery report arrived for a record intended at `intended_ns`.
    pub fn on_delivery(&self, ok: bool, intended_ns: u64, bytes: u64) {
        if !ok {
            self.delivery_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = self.clock.now_ns();
        self.acked.fetch_add(1, Ordering::Relaxed);
        self.acked_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.in_window(now) {
            self.acked_in_window.fetch_add(1, Ordering::Relaxed);
            self.acked_bytes_in_window
                .fetch_add(bytes, Ordering::Relaxed);
        }
        if self.measured(intended_ns) {
            self.acked_measured.fetch_add(1, Ordering::Relaxed);
            self.publish
                .record_us(now.saturating_sub(intended_ns) / 1000);
        }
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
            + self.delivery_errors.load(Ordering::Relaxed)
            + self.consume_errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_counts() {
        let s = RunStats::new(Clock::new());
        s.set_window(0, u64::MAX - 1);
        s.on_delivery(true, 0, 100);
        s.set_window(u64::MAX - 2, u64::MAX - 1);
        s.on_delivery(true, 0, 100); // acked outside the window, intended before it
        s.on_delivery(false, 0, 100);
        assert_eq!(s.acked.load(Ordering::Relaxed), 2);
        assert_eq!(s.acked_in_window.load(Ordering::Relaxed), 1);
        assert_eq!(s.acked_bytes_in_window.load(Ordering::Relaxed), 100);
        assert_eq!(s.acked_measured.load(Ordering::Relaxed), 1);
        assert_eq!(s.errors(), 1);
        assert_eq!(s.publish.whole().len(), 1);
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
