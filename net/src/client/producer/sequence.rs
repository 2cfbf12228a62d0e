//! Sequence numbers of an idempotent producer, per partition.
//!
//! Each batch carries the sequence of its first record; the broker appends a batch only
//! if it continues the partition's sequence, and answers DuplicateSequence (with the
//! original offsets) for a batch it already has. So a batch whose fate is unknown (lost
//! connection, timeout) is resent byte for byte, and order holds if resends go out in
//! sequence order: while a partition has a batch to resend, nothing new is sent to it,
//! and the resends go one at a time, each once nothing is in flight.
//!
//! Sequences are kept as u64 counters that never wrap and stamped modulo 2^31 (the wire
//! field is a non-negative i32 that wraps to 0, as in Kafka).

use std::collections::BTreeSet;

use ahash::AHashMap as HashMap;

use crate::client::TopicPartition;

#[derive(Debug, Default)]
struct PartitionSequences {
    /// Sequence of the next new batch.
    next: u64,
    /// Base sequences of batches sent and not answered.
    in_flight: BTreeSet<u64>,
    /// Base sequences of batches waiting to be resent.
    retry: BTreeSet<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Sequences {
    partitions: HashMap<TopicPartition, PartitionSequences>,
}

/// The wire value of a sequence counter.
pub(crate) fn stamp(sequence: u64) -> i32 {
    (sequence % (1u64 << 31)) as i32
}

impl Sequences {
    fn get(&self, tp: &TopicPartition) -> Option<&PartitionSequences> {
        self.partitions.get(tp)
    }

    fn entry(&mut self, tp: &TopicPartition) -> &mut PartitionSequences {
        self.partitions.entry(tp.clone()).or_default()
    }

    /// Gives a new batch of `records` records its base sequence.
    pub fn assign(&mut self, tp: &TopicPartition, records: u32) -> u64 {
        assert!(records > 0);
        let p = self.entry(tp);
        let base = p.next;
        p.next += u64::from(records);
        base
    }

    /// Takes back the sequence just assigned to a batch that could not be built.
    pub fn unassign(&mut self, tp: &TopicPartition, seq: u64, records: u32) {
        let p = self.entry(tp);
        assert_eq!(
            seq + u64::from(records),
            p.next,
            "only the latest assignment"
        );
        p.next = seq;
    }

    /// Whether a new batch may go to `tp` now (no resend pending there).
    pub fn may_send_new(&self, tp: &TopicPartition) -> bool {
        self.get(tp).is_none_or(|p| p.retry.is_empty())
    }

    /// Whether the resend of `seq` may go now: it is the earliest pending resend and
    /// nothing of `tp` is in flight.
    pub fn may_resend(&self, tp: &TopicPartition, seq: u64) -> bool {
        self.get(tp)
            .is_some_and(|p| p.in_flight.is_empty() && p.retry.first() == Some(&seq))
    }

    pub fn sent(&mut self, tp: &TopicPartition, seq: u64) {
        let p = self.entry(tp);
        assert!(seq < p.next, "sequence {seq} was never assigned");
        p.retry.remove(&seq);
        let fresh = p.in_flight.insert(seq);
        assert!(fresh, "sequence {seq} of {tp} sent twice at once");
    }

    /// The broker appended (or already had) the batch.
    pub fn acked(&mut self, tp: &TopicPartition, seq: u64) {
        let removed = self.entry(tp).in_flight.remove(&seq);
        assert!(
            removed,
            "ack for sequence {seq} of {tp} that is not in flight"
        );
    }

    /// The batch's fate is unknown or it was refused for a passing reason: resend it.
    pub fn will_resend(&mut self, tp: &TopicPartition, seq: u64) {
        let p = self.entry(tp);
        p.in_flight.remove(&seq);
        p.retry.insert(seq);
    }

    /// The batch failed for good: its sequence leaves a gap, so the producer must move
    /// to a new epoch before this partition can take more batches.
    pub fn dropped(&mut self, tp: &TopicPartition, seq: u64) {
        let p = self.entry(tp);
        p.in_flight.remove(&seq);
        p.retry.remove(&seq);
    }

    /// Whether a batch before `seq` is still unacknowledged: then an OutOfOrderSequence
    /// for `seq` only means the broker has not seen that one yet.
    pub fn earlier_unacked(&self, tp: &TopicPartition, seq: u64) -> bool {
        self.get(tp).is_some_and(|p| {
            p.in_flight.range(..seq).next().is_some() || p.retry.range(..seq).next().is_some()
        })
    }

    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    /// A new producer epoch: every partition starts again at 0. Nothing may be in flight;
    /// batches still to resend get new numbers through `assign` + `requeue`.
    pub fn reset(&mut self) {
        assert_eq!(self.in_flight(), 0, "epoch change with batches in flight");
        self.partitions.clear();
    }

    /// Marks a renumbered batch (after `reset` and `assign`) as waiting to be resent.
    pub fn requeue(&mut self, tp: &TopicPartition, seq: u64) {
        let p = self.entry(tp);
        assert!(seq < p.next, "requeue of an unassigned sequence");
        p.retry.insert(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    #[test]
    fn sequences_advance_by_record_count_and_stamp_wraps() {
        let mut s = Sequences::default();
        assert_eq!(s.assign(&tp(), 3), 0);
        assert_eq!(s.assign(&tp(), 2), 3);
        assert_eq!(s.assign(&TopicPartition::new("t", 1), 1), 0);
        assert_eq!(stamp(5), 5);
        assert_eq!(stamp((1 << 31) + 7), 7);
        assert_eq!(stamp((1 << 31) - 1), i32::MAX);
    }

    #[test]
    fn a_failed_batch_blocks_new_ones_and_resends_in_order() {
        let mut s = Sequences::default();
        let (a, b, c) = (s.assign(&tp(), 1), s.assign(&tp(), 1), s.assign(&tp(), 1));
        for q in [a, b, c] {
            s.sent(&tp(), q);
        }
        // a's connection broke: b and c answer OutOfOrderSequence, which is explained.
        s.will_resend(&tp(), a);
        assert!(s.earlier_unacked(&tp(), b));
        s.will_resend(&tp(), c);
        assert!(!s.may_send_new(&tp()));
        assert!(!s.may_resend(&tp(), a), "b is still in flight");
        s.will_resend(&tp(), b);
        assert!(s.may_resend(&tp(), a));
        assert!(!s.may_resend(&tp(), b), "a goes first");
        s.sent(&tp(), a);
        assert!(!s.may_resend(&tp(), b), "one resend at a time");
        s.acked(&tp(), a);
        assert!(s.may_resend(&tp(), b));
        s.sent(&tp(), b);
        s.acked(&tp(), b);
        s.sent(&tp(), c);
        s.acked(&tp(), c);
        assert!(s.may_send_new(&tp()));
        assert!(!s.earlier_unacked(&tp(), 10));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn an_unexplained_out_of_order_has_nothing_earlier() {
        let mut s = Sequences::default();
        let a = s.assign(&tp(), 4);
        s.sent(&tp(), a);
        assert!(!s.earlier_unacked(&tp(), a));
        s.dropped(&tp(), a);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn reset_renumbers_from_zero() {
        let mut s = Sequences::default();
        let a = s.assign(&tp(), 5);
        let b = s.assign(&tp(), 5);
        s.sent(&tp(), a);
        s.acked(&tp(), a);
        s.sent(&tp(), b);
        s.will_resend(&tp(), b);
        s.reset();
        let renumbered = s.assign(&tp(), 5);
        assert_eq!(renumbered, 0);
        s.requeue(&tp(), renumbered);
        assert!(!s.may_send_new(&tp()));
        assert!(s.may_resend(&tp(), 0));
    }
}
