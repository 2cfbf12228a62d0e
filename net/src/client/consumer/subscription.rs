//! Per-partition consumer bookkeeping: the assigned partitions, each one's position (the
//! offset of the next record `poll` returns), records fetched and not yet returned.
//!
//! Pure: fetch results come in as decoded records, nothing here does I/O.
//!
//! Rules that make delivery at-least-once and in order:
//! - a partition is fetched only when it has a position, from its fetch offset: the
//!   position when nothing is buffered, else just past the last buffered record. It is
//!   fetched again while records are still buffered (prefetch: the next fetch travels
//!   while the application works through the last one) as long as fewer than
//!   `prefetch_bytes` are buffered, so a partition holds at most that plus one fetch;
//! - a fetch is kept only if it still starts at the fetch offset; its records below that
//!   offset are dropped (a batch is returned whole, so its first records may precede
//!   it), and records arrive in offset order;
//! - returning a record moves the position past it; a commit commits positions, so only
//!   records `poll` already returned are covered;
//! - `seek`, reassignment and resets bump the partition's epoch: a fetch sent before is
//!   ignored when it lands.

use std::collections::{BTreeMap, VecDeque};

use crate::client::consumer::ConsumerRecord;
use crate::client::TopicPartition;

/// How a partition without a position gets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PositionSource {
    /// The group's committed offset, else the reset policy.
    Committed,
    /// The reset policy (after OffsetOutOfRange).
    ResetPolicy,
}

#[derive(Debug)]
struct PartitionState {
    position: Option<u64>,
    /// Where a missing position comes from.
    source: PositionSource,
    buffered: VecDeque<ConsumerRecord>,
    /// `record_bytes` of everything in `buffered` (what the prefetch limit counts).
    buffered_bytes: usize,
    /// A prefetch met OffsetOutOfRange: fetch again only once the buffer is empty.
    prefetch_held: bool,
    /// Bumped whenever the position is set from outside the fetch path.
    epoch: u64,
    high_watermark: Option<u64>,
}

impl PartitionState {
    fn new() -> PartitionState {
        PartitionState {
            position: None,
            source: PositionSource::Committed,
            buffered: VecDeque::new(),
            buffered_bytes: 0,
            prefetch_held: false,
            epoch: 0,
            high_watermark: None,
        }
    }

    /// Where the next fetch starts: past the last buffered record, else the position.
    fn fetch_offset(&self) -> Option<u64> {
        match self.buffered.back() {
            Some(r) => Some(r.offset + 1),
            None => self.position,
        }
    }

    fn clear_buffer(&mut self) {
        self.buffered.clear();
        self.buffered_bytes = 0;
        self.prefetch_held = false;
    }

    /// Whether the partition may be fetched now, by the prefetch rule.
    fn wants_fetch(&self, prefetch_bytes: usize) -> bool {
        self.buffered.is_empty() || (!self.prefetch_held && self.buffered_bytes < prefetch_bytes)
    }

    fn push(&mut self, r: ConsumerRecord) {
        self.buffered_bytes += record_bytes(&r);
        self.buffered.push_back(r);
    }

    fn pop(&mut self) -> Option<ConsumerRecord> {
        let r = self.buffered.pop_front()?;
        self.buffered_bytes -= record_bytes(&r);
        if self.buffered.is_empty() {
            self.prefetch_held = false; // the next fetch is from the position
        }
        Some(r)
    }
}

/// What a buffered record holds on to, for the prefetch limit: its payload and the
/// record itself (so records without payload are counted too).
fn record_bytes(r: &ConsumerRecord) -> usize {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, |b| b.len());
    let headers: usize = r.headers.iter().map(|h| h.key.len() + len(&h.value)).sum();
    std::mem::size_of::<ConsumerRecord>() + len(&r.key) + len(&r.value) + headers
}

/// One partition to fetch: where from, and the epoch the answer must still match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    pub tp: TopicPartition,
    pub offset: u64,
    pub epoch: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Subscription {
    partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Where the next `drain` starts, so partitions take turns.
    rotation: usize,
}

impl Subscription {
    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    /// Adds partitions (without positions); those already assigned keep their state.
    pub fn add(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions
                .entry(tp.clone())
                .or_insert_with(PartitionState::new);
        }
    }

    /// Drops partitions with their buffered records.
    pub fn remove(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions.remove(tp);
        }
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions.get(tp).and_then(|p| p.position)
    }

    /// Sets the position of an assigned partition (seek, committed offset, reset);
    /// drops what was buffered. `false` if the partition is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> bool {
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        p.position = Some(offset);
        p.source = PositionSource::Committed;
        p.clear_buffer();
        p.epoch += 1;
        true
    }

    /// Forgets the position: the partition needs one from `source` before it is fetched.
    pub fn invalidate(&mut self, tp: &TopicPartition, source: PositionSource) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.position = None;
            p.source = source;
            p.clear_buffer();
            p.epoch += 1;
        }
    }

    /// Partitions that need a position, with where it should come from.
    pub fn missing_positions(&self) -> Vec<(TopicPartition, PositionSource)> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.position.is_none())
            .map(|(tp, p)| (tp.clone(), p.source))
            .collect()
    }

    /// Partitions to fetch now: positioned, with less than `prefetch_bytes` buffered,
    /// each from its fetch offset.
    pub fn fetchable(&self, prefetch_bytes: usize) -> Vec<FetchPosition> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.wants_fetch(prefetch_bytes))
            .filter_map(|(tp, p)| {
                Some(FetchPosition {
                    tp: tp.clone(),
                    offset: p.fetch_offset()?,
                    epoch: p.epoch,
                })
            })
            .collect()
    }

    /// Takes in fetched records for `at` (in offset order). Ignored if the partition was
    /// revoked or repositioned since the fetch was sent. Returns how many were kept.
    pub fn on_fetched(
        &mut self,
        at: &FetchPosition,
        records: impl IntoIterator<Item = ConsumerRecord>,
        high_watermark: u64,
    ) -> usize {
        let Some(p) = self.partitions.get_mut(&at.tp) else {
            return 0;
        };
        if p.epoch != at.epoch || p.fetch_offset() != Some(at.offset) {
            return 0;
        }
        p.high_watermark = Some(high_watermark);
        let mut next = at.offset;
        let records = records.into_iter();
        p.buffered.reserve(records.size_hint().0);
        let before = p.buffered.len();
        for r in records {
            // Below the fetch offset, or out of order (a broken batch): skip.
            if r.offset < next {
                continue;
            }
            next = r.offset + 1;
            p.push(r);
        }
        p.buffered.len() - before
    }

    /// `at` was a prefetch the broker answered with OffsetOutOfRange: no more prefetches
    /// of that partition until its buffer is empty (then it is fetched from the position,
    /// and a reset follows the policy if that is out of range too). Ignored if stale.
    pub fn hold_prefetch(&mut self, at: &FetchPosition) {
        if let Some(p) = self.partitions.get_mut(&at.tp) {
            if p.epoch == at.epoch && p.fetch_offset() == Some(at.offset) {
                p.prefetch_held = true;
            }
        }
    }

    /// Up to `max` buffered records, partitions taking turns; positions move past them.
    pub fn drain(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let n = self.partitions.len();
        let buffered: usize = self.partitions.values().map(|p| p.buffered.len()).sum();
        // One allocation of the final size (growing by doubling moved every record).
        let mut out = Vec::with_capacity(max.min(buffered));
        if n == 0 || max == 0 || buffered == 0 {
            return out;
        }
        let start = self.rotation % n;
        self.rotation = self.rotation.wrapping_add(1);
        let mut parts: Vec<&mut PartitionState> = self.partitions.values_mut().collect();
        parts.rotate_left(start);
        drain_into(&mut parts, max, &mut out);
        out
    }

    /// Positions of every positioned partition (what a commit commits).
    pub fn positions(&self) -> BTreeMap<TopicPartition, u64> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| Some((tp.clone(), p.position?)))
            .collect()
    }

    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions.get(tp).and_then(|p| p.high_watermark)
    }
}

fn drain_into(parts: &mut [&mut PartitionState], max: usize, out: &mut Vec<ConsumerRecord>) {
    for p in parts.iter_mut() {
        while out.len() < max {
            let Some(r) = p.pop() else {
                break;
            };
            assert!(
                p.position.is_some_and(|pos| r.offset >= pos),
                "buffered records are at or past the position"
            );
            p.position = Some(r.offset + 1);
            out.push(r);
        }
        if out.len() >= max {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(tp: &TopicPartition, offset: u64) -> ConsumerRecord {
        ConsumerRecord {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset,
            timestamp_ms: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn records_below_the_position_are_skipped_and_positions_advance() {
        let mut s = Subscription::default();
        s.add(&[tp(0)]);
        assert!(s.fetchable(0).is_empty(), "no position yet");
        assert_eq!(
            s.missing_positions(),
            vec![(tp(0), PositionSource::Committed)]
        );
        assert!(s.seek(&tp(0), 5));
        let at = s.fetchable(0).pop().expect("fetchable");
        assert_eq!(at.offset, 5);
        // The batch starts at 3: records 3 and 4 were consumed already.
        let kept = s.on_fetched(&at, (3..9).map(|o| record(&tp(0), o)), 9);
        assert_eq!(kept, 4);
        assert!(
            s.fetchable(0).is_empty(),
            "buffered partitions are not fetched"
        );
        let got: Vec<u64> = s.drain(3).iter().map(|r| r.offset).collect();
        assert_eq!(got, vec![5, 6, 7]);
        assert_eq!(s.position(&tp(0)), Some(8));
        assert_eq!(s.drain(10).len(), 1);
        assert_eq!(s.positions().get(&tp(0)), Some(&9));
        assert_eq!(s.high_watermark(&tp(0)), Some(9));
    }

    #[test]
    fn a_fetch_sent_before_a_seek_or_revoke_is_ignored() {
        let mut s = Subscription::default();
        s.add(&[tp(0), tp(1)]);
        s.seek(&tp(0), 0);
        s.seek(&tp(1), 0);
        let stale: Vec<FetchPosition> = s.fetchable(0);
        s.seek(&tp(0), 100);
        s.remove(&[tp(1)]);
        assert_eq!(s.on_fetched(&stale[0], vec![record(&tp(0), 0)], 1), 0);
        assert_eq!(s.on_fetched(&stale[1], vec![record(&tp(1), 0)], 1), 0);
        assert_eq!(s.position(&tp(0)), Some(100));
        s.invalidate(&tp(0), PositionSource::ResetPolicy);
        assert_eq!(
            s.missing_positions(),
            vec![(tp(0), PositionSource::ResetPolicy)]
        );
    }

    #[test]
    fn partitions_take_turns() {
        let mut s = Subscription::default();
        s.add(&[tp(0), tp(1)]);
        for p in [0, 1] {
            s.seek(&tp(p), 0);
            let at = s
                .fetchable(0)
                .into_iter()
                .find(|f| f.tp == tp(p))
                .expect("at");
            s.on_fetched(&at, (0..10).map(|o| record(&tp(p), o)), 10);
        }
        let first = s.drain(5);
        let second = s.drain(5);
        assert!(first.iter().all(|r| r.partition == first[0].partition));
        assert_ne!(
            first[0].partition, second[0].partition,
            "the next drain starts elsewhere"
        );
    }

    #[test]
    fn a_partition_is_fetched_again_while_less_than_the_prefetch_is_buffered() {
        let one = record_bytes(&record(&tp(0), 0));
        let mut s = Subscription::default();
        s.add(&[tp(0)]);
        s.seek(&tp(0), 0);
        let at = s.fetchable(3 * one).pop().expect("fetchable");
        assert_eq!(s.on_fetched(&at, (0..2).map(|o| record(&tp(0), o)), 2), 2);
        // Two buffered, room for three: the next fetch starts past the buffer.
        let next = s.fetchable(3 * one).pop().expect("prefetch");
        assert_eq!(next.offset, 2);
        assert!(
            s.fetchable(0).is_empty(),
            "no prefetch: buffered is not fetched"
        );
        // The application takes one while the prefetch travels; it still lands.
        assert_eq!(s.drain(1)[0].offset, 0);
        assert_eq!(s.on_fetched(&next, (1..5).map(|o| record(&tp(0), o)), 5), 3);
        assert!(s.fetchable(3 * one).is_empty(), "four buffered: full");
        let got: Vec<u64> = s.drain(10).iter().map(|r| r.offset).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(s.fetchable(3 * one).pop().map(|f| f.offset), Some(5));
        // A prefetch sent before a seek is dropped, and the seek empties the buffer.
        let at = s.fetchable(3 * one).pop().expect("fetchable");
        assert_eq!(s.on_fetched(&at, (5..6).map(|o| record(&tp(0), o)), 6), 1);
        let stale = s.fetchable(3 * one).pop().expect("prefetch");
        s.seek(&tp(0), 0);
        assert_eq!(
            s.on_fetched(&stale, (6..7).map(|o| record(&tp(0), o)), 7),
            0
        );
        assert_eq!(s.fetchable(3 * one).pop().map(|f| f.offset), Some(0));
        assert!(s.drain(10).is_empty());
    }

    #[test]
    fn a_prefetch_out_of_range_waits_for_the_buffer_to_drain() {
        let one = record_bytes(&record(&tp(0), 0));
        let mut s = Subscription::default();
        s.add(&[tp(0)]);
        s.seek(&tp(0), 0);
        let at = s.fetchable(4 * one).pop().expect("fetchable");
        assert_eq!(s.on_fetched(&at, (0..2).map(|o| record(&tp(0), o)), 2), 2);
        let prefetch = s.fetchable(4 * one).pop().expect("prefetch");
        assert_eq!(prefetch.offset, 2);
        s.hold_prefetch(&prefetch);
        assert!(
            s.fetchable(4 * one).is_empty(),
            "held while records are buffered"
        );
        assert_eq!(s.drain(1)[0].offset, 0);
        assert!(s.fetchable(4 * one).is_empty(), "still one buffered");
        assert_eq!(s.drain(1)[0].offset, 1);
        // Empty: fetched from the position again (where the reset policy can apply).
        let again = s.fetchable(4 * one).pop().expect("fetchable when empty");
        assert_eq!((again.offset, s.position(&tp(0))), (2, Some(2)));
        // A stale hold (sent before a seek) changes nothing.
        s.seek(&tp(0), 0);
        s.hold_prefetch(&prefetch);
        assert_eq!(s.fetchable(4 * one).pop().map(|f| f.offset), Some(0));
    }

    proptest! {
        /// Whatever the fetches return (overlapping, repeated, landing after the
        /// application took records), with or without prefetch, the records drained are
        /// every offset from the start position, each once, in order; and what a
        /// partition buffers stays within the prefetch limit plus one fetch.
        #[test]
        fn drained_offsets_are_contiguous_and_unique(
            start in 0u64..50,
            fetches in proptest::collection::vec((0u64..60, 1u64..20, 0usize..4), 1..30),
            prefetch_records in 0usize..5,
        ) {
            let one = record_bytes(&record(&tp(0), 0));
            let prefetch = prefetch_records * one;
            let mut s = Subscription::default();
            s.add(&[tp(0)]);
            s.seek(&tp(0), start);
            let mut seen = Vec::new();
            for (from, len, batch) in fetches {
                let sent = s.fetchable(prefetch).pop();
                // The application takes records while the fetch travels.
                seen.extend(s.drain(batch).into_iter().map(|r| r.offset));
                if let Some(at) = sent {
                    // A fetch returns a contiguous run that starts at or before its offset.
                    let first = from.min(at.offset);
                    s.on_fetched(&at, (first..at.offset + len).map(|o| record(&tp(0), o)), 0);
                }
                let p = s.partitions.get(&tp(0)).expect("assigned");
                prop_assert!(p.buffered_bytes <= prefetch + 20 * one);
                prop_assert_eq!(p.buffered_bytes, p.buffered.len() * one);
            }
            seen.extend(s.drain(usize::MAX).into_iter().map(|r| r.offset));
            let expected: Vec<u64> = (start..start + seen.len() as u64).collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
