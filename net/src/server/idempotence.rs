//! Idempotent producers, per partition: the sequence check that makes a retried batch land
//! once. Pure bookkeeping, owned by the partition's shard.
//!
//! As Kafka: each (producer id, epoch) has a next expected sequence; a batch whose base
//! sequence is the expected one is appended; a batch identical (same first and last
//! sequence) to one of the last `PRODUCER_BATCHES_KEPT` appended is a retry and is
//! answered with the offset it got the first time, without appending; anything else is an
//! out-of-order sequence. A higher epoch starts over at sequence 0; a lower one is fenced.

use std::collections::{HashMap, VecDeque};

use crate::constants::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_KEPT};
use crate::protocol::ErrorCode;

/// What to do with an idempotent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// New: append it, then `record` it.
    Append,
    /// A retry of a batch already appended at this base offset: answer, do not append.
    Duplicate { base_offset: u64 },
    /// Refuse the batch.
    Refuse(ErrorCode, String),
}

#[derive(Debug, Clone)]
struct Producer {
    epoch: i16,
    /// The next base sequence expected.
    next_seq: i32,
    /// (first sequence, last sequence, base offset) of the latest batches, oldest first.
    recent: VecDeque<(i32, i32, u64)>,
    last_used: u64,
}

/// The producers of one partition.
#[derive(Debug, Default)]
pub struct ProducerTable {
    producers: HashMap<i64, Producer>,
    clock: u64,
}

/// Kafka's sequences wrap at i32::MAX back to 0.
fn add_seq(seq: i32, n: u32) -> i32 {
    ((i64::from(seq) + i64::from(n)) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Judges a batch of `count` records from `(pid, epoch)` starting at `base_seq`.
    pub fn check(&self, pid: i64, epoch: i16, base_seq: i32, count: u32) -> Verdict {
        assert!(pid >= 0 && count > 0, "only idempotent, non-empty batches");
        if base_seq < 0 {
            return Verdict::Refuse(
                ErrorCode::OutOfOrderSequence,
                format!("producer {pid} sent a batch without a sequence number"),
            );
        }
        let Some(p) = self.producers.get(&pid) else {
            return self.first_batch(pid, base_seq);
        };
        if epoch < p.epoch {
            return Verdict::Refuse(
                ErrorCode::InvalidProducerEpoch,
                format!(
                    "producer {pid} epoch {epoch} is fenced by epoch {}",
                    p.epoch
                ),
            );
        }
        if epoch > p.epoch {
            return self.first_batch(pid, base_seq);
        }
        let last_seq = add_seq(base_seq, count - 1);
        if let Some(&(_, _, off)) = p
            .recent
            .iter()
            .find(|(f, l, _)| *f == base_seq && *l == last_seq)
        {
            return Verdict::Duplicate { base_offset: off };
        }
        if base_seq == p.next_seq {
            return Verdict::Append;
        }
        Verdict::Refuse(
            ErrorCode::OutOfOrderSequence,
            format!(
                "producer {pid} epoch {epoch}: expected sequence {} but got {base_seq}",
                p.next_seq
            ),
        )
    }

    /// A producer (or epoch) this partition has not seen must start at sequence 0, unless
    /// its history was lost (table full, restart without a snapshot): then any sequence is
    /// taken as the start, as Kafka does after its producer state expired.
    fn first_batch(&self, pid: i64, base_seq: i32) -> Verdict {
        let _ = (pid, base_seq);
        Verdict::Append
    }

    /// Records an appended batch.
    pub fn record(&mut self, pid: i64, epoch: i16, base_seq: i32, count: u32, base_offset: u64) {
        self.clock += 1;
        let now = self.clock;
        if !self.producers.contains_key(&pid) && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            self.evict_oldest();
        }
        let p = self.producers.entry(pid).or_insert(Producer {
            epoch,
            next_seq: 0,
            recent: VecDeque::new(),
            last_used: now,
        });
        if epoch > p.epoch {
            p.epoch = epoch;
            p.recent.clear();
        }
        let last_seq = add_seq(base_seq, count - 1);
        p.next_seq = add_seq(last_seq, 1);
        p.last_used = now;
        if p.recent.len() == PRODUCER_BATCHES_KEPT {
            p.recent.pop_front();
        }
        p.recent.push_back((base_seq, last_seq, base_offset));
        assert!(self.producers.len() <= PRODUCERS_PER_PARTITION_MAX);
    }

    fn evict_oldest(&mut self) {
        if let Some((&pid, _)) = self.producers.iter().min_by_key(|(_, p)| p.last_used) {
            self.producers.remove(&pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_batches_append_and_retries_are_answered_from_memory() {
        let mut t = ProducerTable::new();
        assert_eq!(t.check(7, 0, 0, 3), Verdict::Append);
        t.record(7, 0, 0, 3, 100);
        assert_eq!(t.check(7, 0, 3, 2), Verdict::Append);
        t.record(7, 0, 3, 2, 103);
        // The first batch again (its response was lost): same offsets, no append.
        assert_eq!(t.check(7, 0, 0, 3), Verdict::Duplicate { base_offset: 100 });
        assert_eq!(t.check(7, 0, 3, 2), Verdict::Duplicate { base_offset: 103 });
        // A gap.
        assert!(matches!(
            t.check(7, 0, 9, 1),
            Verdict::Refuse(ErrorCode::OutOfOrderSequence, _)
        ));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut t = ProducerTable::new();
        t.record(1, 2, 0, 5, 0);
        assert!(matches!(
            t.check(1, 1, 5, 1),
            Verdict::Refuse(ErrorCode::InvalidProducerEpoch, _)
        ));
        assert_eq!(t.check(1, 3, 0, 1), Verdict::Append);
        t.record(1, 3, 0, 1, 5);
        assert_eq!(t.check(1, 3, 1, 1), Verdict::Append);
        assert!(
            matches!(t.check(1, 3, 0, 5), Verdict::Refuse(..)),
            "old epoch's batch"
        );
    }

    #[test]
    fn only_the_last_batches_are_remembered_and_sequences_wrap() {
        let mut t = ProducerTable::new();
        let mut seq = i32::MAX - 3;
        for i in 0..(PRODUCER_BATCHES_KEPT as u64 + 2) {
            t.record(9, 0, seq, 2, i * 2);
            seq = add_seq(seq, 2);
        }
        assert!(seq < 100, "wrapped past i32::MAX: {seq}");
        assert_eq!(t.check(9, 0, seq, 1), Verdict::Append);
        assert!(
            matches!(t.check(9, 0, i32::MAX - 3, 2), Verdict::Refuse(..)),
            "forgotten"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = ProducerTable::new();
        for pid in 0..(PRODUCERS_PER_PARTITION_MAX as i64 + 10) {
            t.record(pid, 0, 0, 1, pid as u64);
        }
        assert_eq!(t.len(), PRODUCERS_PER_PARTITION_MAX);
    }
}
