//! Delivery reports: one per record, waited on or handed to a callback.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::client::connection::lock;
use crate::client::error::ClientError;

/// Where a record ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: Arc<str>,
    pub partition: u32,
    /// The record's offset; `None` with acks=0 (the broker does not answer).
    pub offset: Option<u64>,
    /// The record's timestamp: the broker's append time if the topic stamps it, else the
    /// create time the producer wrote.
    pub timestamp_ms: i64,
    /// Bytes of the record's key and value as sent (0 when absent), as Kafka's
    /// `serializedKeySize` / `serializedValueSize` (there -1 when absent).
    pub key_bytes: usize,
    pub value_bytes: usize,
    /// When the producer completed the record: it read the broker's answer (acks=0: it
    /// wrote the request). One clock reading per batch, so a handler that measures
    /// latency needs no reading of its own per record.
    pub acked_at: Instant,
}

/// The outcome of one record.
pub type DeliveryResult = Result<RecordMetadata, ClientError>;

pub(crate) type DeliveryCallback = Box<dyn FnOnce(DeliveryResult) + Send>;

/// A producer's one receiver of the reports of records sent with
/// [`Producer::send_with_opaque`](crate::client::Producer::send_with_opaque): called on
/// the sender thread with the record's `opaque` (keep it short). librdkafka's
/// `dr_msg_cb` with a per-message opaque: set once, so a report costs no allocation and
/// no shared counter, where a per-record callback is allocated on the caller's thread,
/// freed on the sender's, and holds whatever it captured (max-rate profiles showed
/// those cross-thread frees and reference counts). The report is lent, not given: one
/// [`RecordMetadata`] serves all the records of a batch, so none costs a clone of the
/// topic name (an atomic count shared with the sending thread).
pub type DeliveryHandler = Arc<dyn Fn(u64, &DeliveryResult) + Send + Sync>;

/// Where a record's report goes: the slot behind a [`DeliveryFuture`], or straight to the
/// callback of [`Producer::send_with_callback`](crate::client::Producer::send_with_callback)
/// (no slot, no lock: the report is handed over on the sender thread).
pub(crate) enum Completion {
    Slot(Arc<DeliverySlot>),
    Callback(DeliveryCallback),
    /// For the producer's [`DeliveryHandler`].
    Opaque(u64),
}

impl Completion {
    /// Reports `result`; the slot and the callback get their own copy of it.
    pub fn complete(self, result: &DeliveryResult, handler: Option<&DeliveryHandler>) {
        match self {
            Completion::Slot(slot) => slot.complete(result.clone()),
            Completion::Callback(callback) => callback(result.clone()),
            Completion::Opaque(opaque) => {
                let handler = handler.expect("send_with_opaque refuses a producer without one");
                handler(opaque, result)
            }
        }
    }
}

enum SlotState {
    Pending(Option<DeliveryCallback>),
    Done(DeliveryResult),
    /// The result went to a callback, or was taken by `wait`.
    Taken,
}

struct Slot {
    state: SlotState,
    /// Threads blocked in `wait`/`wait_timeout`. Completion wakes the condvar only when
    /// there are any: a notify is a futex syscall, and in max-rate profiles one per
    /// record showed in the sender thread, which completes every record.
    waiters: u32,
}

/// Shared between a [`DeliveryFuture`] and the producer, which completes it once.
pub(crate) struct DeliverySlot {
    slot: Mutex<Slot>,
    done: Condvar,
}

impl DeliverySlot {
    pub fn new() -> Arc<DeliverySlot> {
        Arc::new(DeliverySlot {
            slot: Mutex::new(Slot {
                state: SlotState::Pending(None),
                waiters: 0,
            }),
            done: Condvar::new(),
        })
    }

    /// Completes the slot: runs the callback (on the caller's thread) or stores the
    /// result for `wait`. A second completion is a bug.
    pub fn complete(&self, result: DeliveryResult) {
        let mut slot = lock(&self.slot);
        match std::mem::replace(&mut slot.state, SlotState::Taken) {
            SlotState::Pending(Some(callback)) => {
                drop(slot);
                callback(result);
            }
            SlotState::Pending(None) => {
                slot.state = SlotState::Done(result);
                let wake = slot.waiters > 0;
                drop(slot);
                if wake {
                    self.done.notify_all();
                }
            }
            SlotState::Done(_) | SlotState::Taken => panic!("a delivery report completed twice"),
        }
    }

    /// Blocks on the condvar for at most `timeout` (`None`: no limit), counted as a
    /// waiter meanwhile.
    fn block<'a>(
        &'a self,
        mut slot: MutexGuard<'a, Slot>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Slot> {
        slot.waiters += 1;
        let mut slot = match timeout {
            None => self.done.wait(slot).unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                self.done
                    .wait_timeout(slot, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        slot.waiters -= 1;
        slot
    }
}

/// The delivery report of one record: wait for it ([`wait`](DeliveryFuture::wait),
/// [`wait_timeout`](DeliveryFuture::wait_timeout)) or hand it a callback
/// ([`on_delivery`](DeliveryFuture::on_delivery)). Dropping it loses nothing: the record
/// is still delivered.
pub struct DeliveryFuture {
    slot: Arc<DeliverySlot>,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("done", &self.is_done())
            .finish()
    }
}

impl DeliveryFuture {
    pub(crate) fn new(slot: Arc<DeliverySlot>) -> DeliveryFuture {
        DeliveryFuture { slot }
    }

    /// Whether the report is in (a callback may already have consumed it).
    pub fn is_done(&self) -> bool {
        !matches!(lock(&self.slot.slot).state, SlotState::Pending(_))
    }

    /// Blocks until the report is in. The producer bounds this by delivery_timeout_ms.
    pub fn wait(self) -> DeliveryResult {
        let mut slot = lock(&self.slot.slot);
        loop {
            match std::mem::replace(&mut slot.state, SlotState::Taken) {
                SlotState::Done(result) => return result,
                pending @ SlotState::Pending(_) => slot.state = pending,
                SlotState::Taken => unreachable!("only wait takes a stored result"),
            }
            slot = self.slot.block(slot, None);
        }
    }

    /// Waits up to `timeout`; a `ClientError::Timeout` if the report is not in by then
    /// (the future stays usable: wait again).
    pub fn wait_timeout(&self, timeout: Duration) -> DeliveryResult {
        let deadline = Instant::now() + timeout;
        let mut slot = lock(&self.slot.slot);
        loop {
            if let SlotState::Done(result) = &slot.state {
                return result.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::timeout(
                    "waiting for a delivery report",
                    timeout,
                ));
            }
            slot = self.slot.block(slot, Some(deadline - now));
        }
    }

    /// Runs `callback` with the report: now if it is in, else on the producer's sender
    /// thread when it comes (keep it short).
    pub fn on_delivery(self, callback: impl FnOnce(DeliveryResult) + Send + 'static) {
        let mut slot = lock(&self.slot.slot);
        match std::mem::replace(&mut slot.state, SlotState::Taken) {
            SlotState::Done(result) => {
                drop(slot);
                callback(result);
            }
            SlotState::Pending(_) => slot.state = SlotState::Pending(Some(Box::new(callback))),
            SlotState::Taken => unreachable!("a future is consumed by on_delivery or wait"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn meta(offset: u64) -> RecordMetadata {
        RecordMetadata {
            topic: "t".into(),
            partition: 0,
            offset: Some(offset),
            timestamp_ms: 1,
            key_bytes: 0,
            value_bytes: 1,
            acked_at: Instant::now(),
        }
    }

    #[test]
    fn wait_returns_the_result_from_another_thread() {
        let slot = DeliverySlot::new();
        let future = DeliveryFuture::new(Arc::clone(&slot));
        assert!(!future.is_done());
        let err = future
            .wait_timeout(Duration::from_millis(10))
            .expect_err("pending");
        assert!(matches!(err, ClientError::Timeout { .. }));
        let t = std::thread::spawn(move || slot.complete(Ok(meta(7))));
        assert_eq!(future.wait().expect("delivered").offset, Some(7));
        t.join().expect("thread");
    }

    #[test]
    fn waiters_already_blocked_are_woken_and_timed_waits_count_too() {
        let slot = DeliverySlot::new();
        let future = Arc::new(DeliveryFuture::new(Arc::clone(&slot)));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let f = Arc::clone(&future);
                std::thread::spawn(move || f.wait_timeout(Duration::from_secs(30)))
            })
            .collect();
        // Complete only once both are blocked, so the wake-up is what ends their wait.
        while lock(&slot.slot).waiters < 2 {
            std::thread::yield_now();
        }
        slot.complete(Ok(meta(3)));
        for w in waiting {
            assert_eq!(
                w.join().expect("thread").expect("delivered").offset,
                Some(3)
            );
        }
        assert_eq!(lock(&slot.slot).waiters, 0);
    }

    #[test]
    fn callbacks_run_once_whether_registered_before_or_after() {
        let (tx, rx) = mpsc::channel();
        let slot = DeliverySlot::new();
        let tx2 = tx.clone();
        DeliveryFuture::new(Arc::clone(&slot)).on_delivery(move |r| {
            tx2.send(r.map(|m| m.offset)).expect("send");
        });
        slot.complete(Ok(meta(1)));
        let late = DeliverySlot::new();
        late.complete(Err(ClientError::Closed { what: "producer" }));
        let future = DeliveryFuture::new(late);
        assert!(future.is_done());
        future.on_delivery(move |r| tx.send(r.map(|m| m.offset)).expect("send"));
        assert_eq!(rx.recv().expect("first"), Ok(Some(1)));
        assert!(rx.recv().expect("second").is_err());
        assert!(rx.try_recv().is_err(), "each callback ran once");
    }
}
