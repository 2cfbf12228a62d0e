//! The record accumulator: per-partition queues of batches being filled, the keyless
//! partitioners, and the buffer-memory account that makes `send` block when full.
//!
//! Pure: no threads, no clock of its own (callers pass `now`), so batching, linger and
//! memory rules are tested without a broker. The producer holds it under one mutex.
//!
//! Per partition the queue holds batches oldest first; only the last one takes records.
//! A batch is *ready* to send when it is full (or a later batch exists), when it has
//! waited `linger`, or when a flush or close is in progress.

use std::collections::{BTreeMap, VecDeque};

use ahash::AHashMap as HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cfa_engine::constants::BATCH_HEADER_BYTES;
use cfa_engine::BatchBuilder;

use crate::client::metadata::TopicInfo;
use crate::client::partitioner::{choose_partition, Keyless, KeylessPartitioner, KeylessStrategy};
use crate::client::producer::delivery::Completion;
use crate::client::{RecordHeader, TopicPartition};
use crate::constants::BATCH_RECORDS_MAX;

/// Bytes of a varint-encoded value, at most (a zigzag varlong).
const VARLONG_BYTES_MAX: usize = 10;

/// An upper bound on the bytes a record adds to a batch's records section: the format's
/// varints at their widest (docs/format.md, "Records").
pub(crate) fn record_size_bound(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    let field = |b: Option<&[u8]>| VARLONG_BYTES_MAX + b.map_or(0, <[u8]>::len);
    let headers_bytes: usize = headers
        .iter()
        .map(|h| field(Some(&h.key)) + field(h.value.as_deref()))
        .sum();
    // length prefix, attributes, timestamp delta, offset delta, key, value, header count.
    VARLONG_BYTES_MAX
        + 1
        + 2 * VARLONG_BYTES_MAX
        + field(key)
        + field(value)
        + VARLONG_BYTES_MAX
        + headers_bytes
}

/// A record waiting in a batch: where its report goes and what the report needs.
pub(crate) struct PendingRecord {
    pub completion: Completion,
    pub timestamp_ms: i64,
    /// For the report's `key_bytes` / `value_bytes`.
    pub key_bytes: usize,
    pub value_bytes: usize,
}

/// A batch taken from the accumulator: records encoded, not yet framed (the sender
/// frames it once it knows the batch's sequence number).
pub(crate) struct DrainedBatch {
    /// Its name is the accumulator's shared one, which every report of the batch shares.
    pub tp: TopicPartition,
    pub builder: BatchBuilder,
    pub records: Vec<PendingRecord>,
    pub created: Instant,
    /// Buffer memory to release when the batch completes.
    pub reserved_bytes: usize,
}

struct OpenBatch {
    builder: BatchBuilder,
    records: Vec<PendingRecord>,
    created: Instant,
    reserved_bytes: usize,
    /// The buffer capacity it was opened with (counted in `open_capacity_bytes`).
    capacity_bytes: usize,
    /// No more records go in (it reached batch_size, or a record did not fit).
    full: bool,
}

/// One record for [`Accumulator::append`].
pub(crate) struct AppendRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader],
    pub timestamp_ms: i64,
    pub completion: Completion,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AccumulatorConfig {
    pub batch_size_bytes: usize,
    pub linger: Duration,
    pub buffer_memory_bytes: usize,
    pub keyless: KeylessStrategy,
    /// Where keyless round-robin orders start (vary it between producers).
    pub keyless_start: u32,
}

/// One topic's part of the accumulator: one index finds all of it.
struct TopicState {
    /// The name, shared with the reports of its records.
    name: Arc<str>,
    /// Where its records may go, as of a metadata generation.
    route: Option<Route>,
    keyless: Keyless,
    /// partition -> batches, oldest first; a partition without batches has no entry.
    queues: BTreeMap<u32, VecDeque<OpenBatch>>,
}

/// A topic's metadata as the producer last read it from the cluster.
struct Route {
    generation: u64,
    info: Arc<TopicInfo>,
}

/// Where [`Accumulator::place`] puts a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Partition(u32),
    /// No route for this topic at this metadata generation: read the topic from the
    /// cluster and [`Accumulator::set_route`] it.
    NoRoute,
    /// The record names a partition the topic does not have.
    UnknownPartition {
        count: u32,
    },
}

pub(crate) struct Accumulator {
    config: AccumulatorConfig,
    /// name -> index in `states`; topics are never removed, so an index stays valid.
    topics: HashMap<String, usize>,
    states: Vec<TopicState>,
    /// The topic the last record went to: consecutive records of one topic compare its
    /// name instead of hashing it (three hashes per record showed in max-rate profiles).
    last_topic: Option<usize>,
    /// Batches in all queues (open or waiting to be sent).
    queued_batches: usize,
    used_bytes: usize,
    /// Buffer capacity of the open batches: a batch starts at full `batch_size` while
    /// these fit in buffer memory (no regrowth copies), smaller beyond that, so a
    /// thousand open batches of a keyed producer do not each hold `batch_size`.
    open_capacity_bytes: usize,
    /// Records appended and not yet completed (in queues or in flight).
    incomplete_records: usize,
    /// Flushes in progress: while non-zero every batch is ready.
    flushing: usize,
}

impl Accumulator {
    pub fn new(config: AccumulatorConfig) -> Accumulator {
        assert!(config.batch_size_bytes > BATCH_HEADER_BYTES);
        assert!(config.buffer_memory_bytes >= config.batch_size_bytes);
        Accumulator {
            config,
            topics: HashMap::new(),
            states: Vec::new(),
            last_topic: None,
            queued_batches: 0,
            used_bytes: 0,
            open_capacity_bytes: 0,
            incomplete_records: 0,
            flushing: 0,
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Buffer capacity held by the open batches (see `open_capacity_bytes`).
    #[cfg(test)]
    pub fn open_capacity_bytes(&self) -> usize {
        self.open_capacity_bytes
    }

    pub fn incomplete_records(&self) -> usize {
        self.incomplete_records
    }

    /// Whether `bytes` more fit in buffer memory. An empty buffer takes any record the
    /// size checks let through, so one large record cannot wait forever.
    pub fn has_space(&self, bytes: usize) -> bool {
        self.used_bytes == 0 || self.used_bytes + bytes <= self.config.buffer_memory_bytes
    }

    /// The partition for a record of `topic`: `explicit` if the topic has it, else by
    /// key if there is one, else the topic's keyless partitioner over the partitions
    /// that have a leader. Uses the route set at `generation` (the cluster's now).
    pub fn place(
        &mut self,
        topic: &str,
        explicit: Option<u32>,
        key: Option<&[u8]>,
        generation: u64,
    ) -> Placement {
        let Some(index) = self.find_topic(topic) else {
            return Placement::NoRoute;
        };
        let TopicState { route, keyless, .. } = &mut self.states[index];
        let Some(route) = route.as_ref().filter(|r| r.generation == generation) else {
            return Placement::NoRoute;
        };
        let count = route
            .info
            .partition_count_nonzero()
            .expect("set_route takes topics with partitions");
        match explicit {
            Some(p) if p >= count.get() => Placement::UnknownPartition { count: count.get() },
            Some(p) => Placement::Partition(p),
            None => Placement::Partition(choose_partition(
                key,
                keyless,
                route.info.available(),
                count,
            )),
        }
    }

    /// Keeps `info` as the route of its topic, read from the cluster at `generation`.
    pub fn set_route(&mut self, generation: u64, info: Arc<TopicInfo>) {
        assert!(info.partition_count() > 0, "a route has partitions");
        let index = self.topic_index(&info.name);
        self.states[index].route = Some(Route { generation, info });
    }

    /// The index of `topic`'s state, if it has one.
    fn find_topic(&mut self, topic: &str) -> Option<usize> {
        if let Some(i) = self.last_topic.filter(|&i| &*self.states[i].name == topic) {
            return Some(i);
        }
        let i = *self.topics.get(topic)?;
        self.last_topic = Some(i);
        Some(i)
    }

    /// The index of `topic`'s state, created on first use (allocates its name once).
    fn topic_index(&mut self, topic: &str) -> usize {
        if let Some(i) = self.find_topic(topic) {
            return i;
        }
        let keyless = Keyless::new(self.config.keyless, self.config.keyless_start);
        self.states.push(TopicState {
            name: Arc::from(topic),
            route: None,
            keyless,
            queues: BTreeMap::new(),
        });
        let i = self.states.len() - 1;
        self.topics.insert(topic.to_owned(), i);
        self.last_topic = Some(i);
        i
    }

    fn topic_state(&self, topic: &str) -> Option<&TopicState> {
        self.topics.get(topic).map(|&i| &self.states[i])
    }

    /// Appends a record (its partition chosen) and reserves `bytes` of buffer memory for
    /// it. The caller checked `has_space` and the size limits. Returns whether the sender
    /// should look at the queues now: a batch was opened (its linger clock starts) or
    /// became full.
    pub fn append(
        &mut self,
        record: AppendRecord<'_>,
        partition: u32,
        bytes: usize,
        now: impl FnOnce() -> Instant,
    ) -> bool {
        let batch_size = self.config.batch_size_bytes;
        let full_size_fits =
            self.open_capacity_bytes + batch_size <= self.config.buffer_memory_bytes;
        let index = self.topic_index(record.topic);
        let state = &mut self.states[index];
        let queue = state.queues.entry(partition).or_default();
        let fits = queue.back().is_some_and(|b| {
            !b.full
                && b.records.len() < BATCH_RECORDS_MAX
                && b.builder.size_bytes() + bytes <= batch_size
        });
        let mut opened_bytes = None;
        if !fits {
            if let Some(last) = queue.back_mut().filter(|b| !b.full) {
                last.full = true;
                state.keyless.batch_completed(partition);
            }
            let capacity_bytes = if full_size_fits {
                batch_size
            } else {
                batch_size.min(bytes * 2)
            };
            queue.push_back(OpenBatch {
                builder: BatchBuilder::with_capacity(
                    record.timestamp_ms,
                    capacity_bytes.saturating_sub(BATCH_HEADER_BYTES),
                ),
                // As many report slots as records of this size fill the buffer: one
                // allocation instead of a doubling series.
                records: Vec::with_capacity((capacity_bytes / bytes).clamp(1, BATCH_RECORDS_MAX)),
                // The linger clock is read only here: once per batch, not per record.
                created: now(),
                reserved_bytes: 0,
                capacity_bytes,
                full: false,
            });
            opened_bytes = Some(capacity_bytes);
        }
        let batch = queue.back_mut().expect("a batch was just ensured");
        let headers: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|h| (&h.key[..], h.value.as_deref()))
            .collect();
        batch
            .builder
            .push(record.timestamp_ms, record.key, record.value, &headers);
        batch.records.push(PendingRecord {
            completion: record.completion,
            timestamp_ms: record.timestamp_ms,
            key_bytes: record.key.map_or(0, <[u8]>::len),
            value_bytes: record.value.map_or(0, <[u8]>::len),
        });
        batch.reserved_bytes += bytes;
        let now_full = batch.builder.size_bytes() >= batch_size;
        if now_full {
            batch.full = true;
            state.keyless.batch_completed(partition);
        }
        if let Some(capacity_bytes) = opened_bytes {
            self.open_capacity_bytes += capacity_bytes;
            self.queued_batches += 1;
        }
        self.used_bytes += bytes;
        self.incomplete_records += 1;
        opened_bytes.is_some() || now_full
    }

    pub fn begin_flush(&mut self) {
        self.flushing += 1;
    }

    pub fn end_flush(&mut self) {
        assert!(self.flushing > 0, "end_flush without begin_flush");
        self.flushing -= 1;
    }

    /// Partitions whose oldest batch is ready now (all of them when `drain_all`), and
    /// the earliest time another becomes ready by linger.
    pub fn ready(&self, now: Instant, drain_all: bool) -> (Vec<TopicPartition>, Option<Instant>) {
        let all = drain_all || self.flushing > 0;
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for state in &self.states {
            for (&partition, queue) in &state.queues {
                let Some(front) = queue.front() else { continue };
                let due = front.created + self.config.linger;
                if all || front.full || queue.len() > 1 || due <= now {
                    ready.push(TopicPartition::shared(&state.name, partition));
                } else {
                    next = Some(next.map_or(due, |n: Instant| n.min(due)));
                }
            }
        }
        ready.sort();
        (ready, next)
    }

    /// The bytes of `tp`'s oldest batch as built so far (header included), if it has one.
    pub fn front_bytes(&self, tp: &TopicPartition) -> Option<usize> {
        let state = self.topic_state(&tp.topic)?;
        let batch = state.queues.get(&tp.partition)?.front()?;
        Some(batch.builder.size_bytes())
    }

    /// Takes the oldest batch of `tp`. A batch taken before it was full completes it
    /// for the sticky partitioner (sent after linger: the next records go elsewhere).
    pub fn take(&mut self, tp: &TopicPartition) -> Option<DrainedBatch> {
        let index = *self.topics.get(&*tp.topic)?;
        let state = &mut self.states[index];
        let queue = state.queues.get_mut(&tp.partition)?;
        let batch = queue.pop_front()?;
        if queue.is_empty() {
            state.queues.remove(&tp.partition);
        }
        if !batch.full {
            state.keyless.batch_completed(tp.partition);
        }
        assert!(self.queued_batches > 0);
        self.queued_batches -= 1;
        assert!(!batch.records.is_empty(), "a queued batch holds a record");
        assert!(batch.capacity_bytes <= self.open_capacity_bytes);
        self.open_capacity_bytes -= batch.capacity_bytes;
        Some(DrainedBatch {
            tp: TopicPartition::shared(&state.name, tp.partition),
            builder: batch.builder,
            records: batch.records,
            created: batch.created,
            reserved_bytes: batch.reserved_bytes,
        })
    }

    /// Batches older than `deadline` allows (created before `cutoff`), taken out to be
    /// failed: records that never found a leader within delivery_timeout_ms.
    pub fn take_expired(&mut self, cutoff: Instant) -> Vec<DrainedBatch> {
        let mut expired = Vec::new();
        let tps: Vec<TopicPartition> = self
            .states
            .iter()
            .flat_map(|state| {
                state
                    .queues
                    .iter()
                    .filter(|(_, q)| q.front().is_some_and(|b| b.created <= cutoff))
                    .map(move |(p, _)| TopicPartition::shared(&state.name, *p))
            })
            .collect();
        for tp in tps {
            while self
                .topic_state(&tp.topic)
                .and_then(|state| state.queues.get(&tp.partition))
                .and_then(|q| q.front())
                .is_some_and(|b| b.created <= cutoff)
            {
                expired.extend(self.take(&tp));
            }
        }
        expired
    }

    /// Takes every batch (the producer is closing without delivering).
    pub fn take_all(&mut self) -> Vec<DrainedBatch> {
        let (ready, _) = self.ready(Instant::now(), true);
        let mut out = Vec::new();
        for tp in ready {
            while let Some(b) = self.take(&tp) {
                out.push(b);
            }
        }
        out
    }

    /// A batch of `records` records holding `bytes` of memory completed (delivered or
    /// failed).
    pub fn completed(&mut self, records: usize, bytes: usize) {
        assert!(
            records <= self.incomplete_records,
            "more completions than records"
        );
        assert!(
            bytes <= self.used_bytes,
            "more memory released than reserved"
        );
        self.incomplete_records -= records;
        self.used_bytes -= bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.queued_batches == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::metadata::PartitionInfo;
    use crate::client::producer::delivery::DeliverySlot;

    fn config(batch: usize, linger_ms: u64, memory: usize) -> AccumulatorConfig {
        AccumulatorConfig {
            batch_size_bytes: batch,
            linger: Duration::from_millis(linger_ms),
            buffer_memory_bytes: memory,
            keyless: KeylessStrategy::Sticky,
            keyless_start: 0,
        }
    }

    fn append(acc: &mut Accumulator, topic: &str, partition: u32, value: &[u8], now: Instant) {
        let bytes = record_size_bound(None, Some(value), &[]);
        let record = AppendRecord {
            topic,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp_ms: 1,
            completion: Completion::Slot(DeliverySlot::new()),
        };
        assert!(acc.has_space(bytes));
        acc.append(record, partition, bytes, || now);
    }

    fn route(partitions: u32) -> Arc<TopicInfo> {
        let partitions = (0..partitions)
            .map(|p| PartitionInfo {
                partition: p,
                leader: Some(1),
                leader_epoch: 0,
                leader_shard: None,
            })
            .collect();
        Arc::new(TopicInfo::new("t".to_owned(), partitions))
    }

    #[test]
    fn batches_open_at_full_size_while_buffer_memory_covers_them() {
        // Four batches of 1 KiB fit in 4 KiB of buffer memory; the fifth and sixth open
        // small and grow as records come.
        let mut acc = Accumulator::new(config(1024, 1_000, 4096));
        let now = Instant::now();
        let value = [7u8; 10];
        let small = 2 * record_size_bound(None, Some(&value), &[]);
        for p in 0..6 {
            append(&mut acc, "t", p, &value, now);
        }
        assert_eq!(acc.open_capacity_bytes(), 4 * 1024 + 2 * small);
        acc.take(&TopicPartition::new("t", 0)).expect("batch");
        acc.take(&TopicPartition::new("t", 1)).expect("batch");
        assert_eq!(acc.open_capacity_bytes(), 2 * 1024 + 2 * small);
        // Room again for a whole batch: the next one opened gets the full size.
        append(&mut acc, "t", 6, &value, now);
        assert_eq!(acc.open_capacity_bytes(), 3 * 1024 + 2 * small);
        for p in 2..=6 {
            acc.take(&TopicPartition::new("t", p)).expect("batch");
        }
        assert_eq!(acc.open_capacity_bytes(), 0);
    }

    #[test]
    fn size_bound_covers_the_encoded_record() {
        let headers = vec![RecordHeader {
            key: bytes::Bytes::from_static(b"h"),
            value: Some(bytes::Bytes::from_static(b"hv")),
        }];
        let mut b = BatchBuilder::new(0);
        let before = b.size_bytes();
        b.push(
            i64::MAX / 2,
            Some(b"key"),
            Some(&[7; 300]),
            &[(b"h", Some(b"hv"))],
        );
        let actual = b.size_bytes() - before;
        let bound = record_size_bound(Some(b"key"), Some(&[7; 300]), &headers);
        assert!(actual <= bound, "{actual} > {bound}");
        assert!(bound - actual < 80, "the bound is not wildly loose");
    }

    #[test]
    fn linger_and_fullness_decide_readiness() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(config(300, 5, 10_000));
        append(&mut acc, "t", 0, &[1; 10], t0);
        let (ready, next) = acc.ready(t0, false);
        assert!(ready.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_millis(5)));
        let (ready, _) = acc.ready(t0 + Duration::from_millis(5), false);
        assert_eq!(ready, vec![TopicPartition::new("t", 0)]);
        // Filling partition 1 past batch_size makes it ready before linger.
        for _ in 0..4 {
            append(&mut acc, "t", 1, &[1; 40], t0);
        }
        let (ready, _) = acc.ready(t0, false);
        assert_eq!(ready, vec![TopicPartition::new("t", 1)]);
        let b = acc.take(&TopicPartition::new("t", 1)).expect("batch");
        assert!(b.builder.size_bytes() <= 300);
        assert_eq!(
            b.records.len(),
            3,
            "three records fit within the size bound"
        );
        // A flush makes everything ready.
        acc.begin_flush();
        assert_eq!(acc.ready(t0, false).0.len(), 2);
        acc.end_flush();
    }

    #[test]
    fn a_record_larger_than_batch_size_gets_its_own_batch() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(config(100, 5, 10_000));
        append(&mut acc, "t", 0, &[1; 10], t0);
        append(&mut acc, "t", 0, &[1; 500], t0);
        append(&mut acc, "t", 0, &[1; 10], t0);
        let tp = TopicPartition::new("t", 0);
        let counts: Vec<usize> = std::iter::from_fn(|| acc.take(&tp))
            .map(|b| b.records.len())
            .collect();
        assert_eq!(counts, vec![1, 1, 1]);
        assert!(acc.is_empty());
    }

    #[test]
    fn memory_is_reserved_until_completion() {
        let t0 = Instant::now();
        let bytes = record_size_bound(None, Some(&[0; 50]), &[]);
        let mut acc = Accumulator::new(config(100, 0, 2 * bytes + 10));
        append(&mut acc, "t", 0, &[0; 50], t0);
        append(&mut acc, "t", 1, &[0; 50], t0);
        assert!(!acc.has_space(bytes), "two records fill the memory");
        assert_eq!(acc.incomplete_records(), 2);
        let b = acc.take(&TopicPartition::new("t", 0)).expect("batch");
        assert!(!acc.has_space(bytes), "draining does not free memory");
        acc.completed(b.records.len(), b.reserved_bytes);
        assert!(acc.has_space(bytes));
        assert_eq!(acc.incomplete_records(), 1);
        assert_eq!(acc.used_bytes(), bytes);
    }

    #[test]
    fn expiry_takes_only_old_batches() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let mut acc = Accumulator::new(config(100, 5, 10_000));
        append(&mut acc, "t", 0, &[1; 80], t0);
        append(&mut acc, "t", 0, &[1; 80], t1);
        append(&mut acc, "u", 0, &[1; 10], t1);
        let expired = acc.take_expired(t0 + Duration::from_secs(1));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].tp, TopicPartition::new("t", 0));
        assert_eq!(acc.take_all().len(), 2);
        assert!(acc.is_empty());
    }

    #[test]
    fn sticky_keyless_records_move_on_when_a_batch_completes() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(config(200, 5, 100_000));
        acc.set_route(7, route(3));
        let mut seen = Vec::new();
        for _ in 0..12 {
            let Placement::Partition(p) = acc.place("t", None, None, 7) else {
                panic!("the route is current");
            };
            seen.push(p);
            append(&mut acc, "t", p, &[1; 60], t0);
        }
        // Each batch takes two 60-byte records (plus bounds) before it is full.
        let distinct: std::collections::BTreeSet<u32> = seen.iter().copied().collect();
        assert_eq!(distinct.len(), 3, "{seen:?}");
        assert!(
            seen.windows(2).any(|w| w[0] == w[1]),
            "sticks for a while: {seen:?}"
        );
        // Keyed records ignore stickiness.
        let count = std::num::NonZeroU32::new(3).expect("3");
        assert!(matches!(
            acc.place("t", None, Some(b"k"), 7),
            Placement::Partition(p) if p == crate::client::partitioner::partition_for_key(b"k", count)
        ));
    }

    #[test]
    fn a_route_is_used_only_at_the_generation_it_was_read() {
        let mut acc = Accumulator::new(config(200, 5, 100_000));
        assert!(matches!(acc.place("t", None, None, 1), Placement::NoRoute));
        acc.set_route(1, route(2));
        assert!(matches!(
            acc.place("t", Some(1), None, 1),
            Placement::Partition(1)
        ));
        assert!(matches!(
            acc.place("t", Some(2), None, 1),
            Placement::UnknownPartition { count: 2 }
        ));
        // The metadata changed (the topic grew): the old route is not trusted.
        assert!(matches!(
            acc.place("t", Some(2), None, 2),
            Placement::NoRoute
        ));
        acc.set_route(2, route(4));
        assert!(matches!(
            acc.place("t", Some(2), None, 2),
            Placement::Partition(2)
        ));
        assert!(matches!(acc.place("u", None, None, 2), Placement::NoRoute));
    }

    #[test]
    fn records_of_interleaved_topics_go_to_their_own_queues() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new(config(10_000, 5, 100_000));
        // Alternating names miss the last-topic shortcut every time; runs of one name hit it.
        let names = ["a", "b", "a", "a", "c", "b", "b", "a", "c"];
        for (i, name) in names.iter().enumerate() {
            append(&mut acc, name, (i % 2) as u32, &[i as u8; 10], t0);
        }
        let mut counts = std::collections::BTreeMap::new();
        for b in acc.take_all() {
            *counts
                .entry((b.tp.topic.to_string(), b.tp.partition))
                .or_insert(0) += b.records.len();
        }
        let mut want = std::collections::BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            *want.entry((name.to_string(), (i % 2) as u32)).or_insert(0) += 1;
        }
        assert_eq!(counts, want);
        assert!(acc.is_empty());
    }
}
