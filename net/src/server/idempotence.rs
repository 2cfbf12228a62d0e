//! Idempotent producers, per partition: the sequence check that makes a retried batch land
//! once. Pure bookkeeping, owned by the partition's shard.
//!
//! As Kafka: each (producer id, epoch) has a next expected sequence; a batch whose base
//! sequence is the expected one is appended; a batch identical (same first and last
//! sequence) to one of the last `PRODUCER_BATCHES_KEPT` appended is a retry and is
//! answered with the offset it got the first time, without appending; anything else is an
//! out-of-order sequence. A higher epoch starts over at sequence 0; a lower one is fenced.
//!
//! The table survives restarts: a clean close writes it to a snapshot (the byte format is
//! [`ProducerTable::encode_snapshot`], documented in docs/format.md), and a start without a
//! usable snapshot rebuilds it from the tail of the log (net/src/server/producer_state.rs).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::constants::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_KEPT};
use crate::protocol::ErrorCode;

/// First bytes of a producer-state snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CFAPRODS";
/// The snapshot version this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;
/// magic, version u16, reserved u16, log end offset u64, producer count u32.
const SNAPSHOT_HEADER_BYTES: usize = 24;
/// producer id i64, epoch i16, next sequence i32, batch count u8, reserved u8.
const SNAPSHOT_PRODUCER_BYTES: usize = 16;
/// first sequence i32, last sequence i32, base offset u64.
const SNAPSHOT_BATCH_BYTES: usize = 16;
/// The CRC32 trailer.
const SNAPSHOT_CRC_BYTES: usize = 4;
/// Largest valid snapshot: a full table, every producer with every batch kept.
pub const SNAPSHOT_BYTES_MAX: usize = SNAPSHOT_HEADER_BYTES
    + PRODUCERS_PER_PARTITION_MAX
        * (SNAPSHOT_PRODUCER_BYTES + PRODUCER_BATCHES_KEPT * SNAPSHOT_BATCH_BYTES)
    + SNAPSHOT_CRC_BYTES;
const _: () = assert!(PRODUCER_BATCHES_KEPT <= u8::MAX as usize);
const _: () = assert!(PRODUCERS_PER_PARTITION_MAX <= u32::MAX as usize);

/// Why a producer-state snapshot was refused (the partition then rebuilds its table from
/// the log instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("producer snapshot of {len} bytes: shorter than a header and checksum, or longer than {SNAPSHOT_BYTES_MAX}")]
    Length { len: usize },
    #[error("producer snapshot: bad magic (not a producer snapshot)")]
    Magic,
    #[error(
        "producer snapshot: version {0} is not supported (this build reads {SNAPSHOT_VERSION})"
    )]
    Version(u16),
    #[error(
        "producer snapshot: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("producer snapshot: {0}")]
    Invalid(String),
}

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

    /// The snapshot of this table for a log whose end offset is `log_end_offset`: every
    /// producer, least recently used first (so a load keeps the eviction order). Layout in
    /// docs/format.md, "Producer-state snapshot".
    pub fn encode_snapshot(&self, log_end_offset: u64) -> Vec<u8> {
        let mut order: Vec<(&i64, &Producer)> = self.producers.iter().collect();
        order.sort_by_key(|(_, p)| p.last_used);
        let batches: usize = order.iter().map(|(_, p)| p.recent.len()).sum();
        let len = SNAPSHOT_HEADER_BYTES
            + order.len() * SNAPSHOT_PRODUCER_BYTES
            + batches * SNAPSHOT_BATCH_BYTES
            + SNAPSHOT_CRC_BYTES;
        assert!(len <= SNAPSHOT_BYTES_MAX, "the table is bounded");
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&log_end_offset.to_le_bytes());
        let count = u32::try_from(order.len()).expect("bounded by PRODUCERS_PER_PARTITION_MAX");
        out.extend_from_slice(&count.to_le_bytes());
        for (pid, p) in order {
            out.extend_from_slice(&pid.to_le_bytes());
            out.extend_from_slice(&p.epoch.to_le_bytes());
            out.extend_from_slice(&p.next_seq.to_le_bytes());
            out.push(u8::try_from(p.recent.len()).expect("bounded by PRODUCER_BATCHES_KEPT"));
            out.push(0);
            for &(first, last, base) in &p.recent {
                out.extend_from_slice(&first.to_le_bytes());
                out.extend_from_slice(&last.to_le_bytes());
                out.extend_from_slice(&base.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(out.len(), len);
        out
    }

    /// Reads a snapshot: the log end offset it was written for and the table. Anything
    /// malformed is an error, never a panic (the bytes come from disk).
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(u64, ProducerTable), SnapshotError> {
        let len = bytes.len();
        if !(SNAPSHOT_HEADER_BYTES + SNAPSHOT_CRC_BYTES..=SNAPSHOT_BYTES_MAX).contains(&len) {
            return Err(SnapshotError::Length { len });
        }
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != SNAPSHOT_MAGIC {
            return Err(SnapshotError::Magic);
        }
        let version = r.u16()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        let (body, trailer) = bytes.split_at(len - SNAPSHOT_CRC_BYTES);
        let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let mut r = Reader {
            bytes: body,
            at: r.at,
        };
        if r.u16()? != 0 {
            return Err(invalid("reserved header bytes are not zero"));
        }
        let log_end = r.u64()?;
        let count = r.u32()? as usize;
        if count > PRODUCERS_PER_PARTITION_MAX {
            return Err(invalid(format!(
                "{count} producers, more than the {PRODUCERS_PER_PARTITION_MAX} a partition keeps"
            )));
        }
        let mut table = ProducerTable::new();
        let mut seen = HashSet::with_capacity(count);
        for _ in 0..count {
            let (pid, producer) = read_producer(&mut r, log_end)?;
            if !seen.insert(pid) {
                return Err(invalid(format!("producer {pid} appears twice")));
            }
            table.clock += 1;
            table.producers.insert(
                pid,
                Producer {
                    last_used: table.clock,
                    ..producer
                },
            );
        }
        if r.at != body.len() {
            return Err(invalid(format!(
                "{} bytes after the last producer",
                body.len() - r.at
            )));
        }
        Ok((log_end, table))
    }

    fn evict_oldest(&mut self) {
        if let Some((&pid, _)) = self.producers.iter().min_by_key(|(_, p)| p.last_used) {
            self.producers.remove(&pid);
        }
    }
}

fn invalid(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(why.into())
}

/// One producer of a snapshot, checked: sequences valid, 1 to `PRODUCER_BATCHES_KEPT`
/// batches at increasing offsets below the log end, the next sequence after the last.
fn read_producer(r: &mut Reader<'_>, log_end: u64) -> Result<(i64, Producer), SnapshotError> {
    let pid = r.i64()?;
    let epoch = r.i16()?;
    let next_seq = r.i32()?;
    let batches = usize::from(r.u8()?);
    if r.u8()? != 0 {
        return Err(invalid(format!(
            "producer {pid}: reserved byte is not zero"
        )));
    }
    if pid < 0 || next_seq < 0 {
        return Err(invalid(format!(
            "producer {pid}: negative id or next sequence {next_seq}"
        )));
    }
    if batches == 0 || batches > PRODUCER_BATCHES_KEPT {
        return Err(invalid(format!(
            "producer {pid}: {batches} batches (1..={PRODUCER_BATCHES_KEPT} are kept)"
        )));
    }
    let mut recent = VecDeque::with_capacity(batches);
    let mut prev_offset = None;
    for _ in 0..batches {
        let (first, last, base) = (r.i32()?, r.i32()?, r.u64()?);
        if first < 0 || last < 0 || base >= log_end || prev_offset.is_some_and(|p| base <= p) {
            return Err(invalid(format!(
                "producer {pid}: batch (sequences {first}..={last}, offset {base}) is out of range or order"
            )));
        }
        prev_offset = Some(base);
        recent.push_back((first, last, base));
    }
    let (_, last, _) = *recent.back().expect("at least one batch");
    if add_seq(last, 1) != next_seq {
        return Err(invalid(format!(
            "producer {pid}: next sequence {next_seq} does not follow the last batch's {last}"
        )));
    }
    let producer = Producer {
        epoch,
        next_seq,
        recent,
        last_used: 0,
    };
    Ok((pid, producer))
}

/// Little-endian reads that fail instead of panicking past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(invalid(format!(
                "truncated: {n} bytes wanted at byte {} of {}",
                self.at,
                self.bytes.len()
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, SnapshotError> {
        self.array().map(u16::from_le_bytes)
    }

    fn i16(&mut self) -> Result<i16, SnapshotError> {
        self.array().map(i16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.array().map(i32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        self.array().map(i64::from_le_bytes)
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

#[cfg(test)]
mod snapshot_tests {
    use proptest::prelude::*;

    use super::*;

    /// A table built from `(pid, epoch, count)` records, each at the producer's next
    /// sequence, offsets growing.
    fn table_from(ops: &[(i64, i16, u32)]) -> (ProducerTable, u64) {
        let mut t = ProducerTable::new();
        let mut offset = 0u64;
        for &(pid, epoch, count) in ops {
            let seq = match t.producers.get(&pid) {
                Some(p) if p.epoch == epoch => p.next_seq,
                _ => 0,
            };
            if matches!(t.check(pid, epoch, seq, count), Verdict::Append) {
                t.record(pid, epoch, seq, count, offset);
                offset += u64::from(count);
            }
        }
        (t, offset)
    }

    /// What a table answers for every batch it remembers, and for the next one.
    fn verdicts(t: &ProducerTable) -> Vec<(i64, i32, Verdict)> {
        let mut out = Vec::new();
        for (&pid, p) in &t.producers {
            for &(first, last, _) in &p.recent {
                let count = (i64::from(last) - i64::from(first)).rem_euclid(1 << 31) as u32 + 1;
                out.push((pid, first, t.check(pid, p.epoch, first, count)));
            }
            out.push((pid, p.next_seq, t.check(pid, p.epoch, p.next_seq, 1)));
        }
        out.sort_by_key(|(pid, seq, _)| (*pid, *seq));
        out
    }

    #[test]
    fn a_snapshot_round_trips_and_answers_retries() {
        let (t, end) = table_from(&[(7, 0, 3), (7, 0, 2), (9, 1, 1), (7, 0, 4)]);
        let bytes = t.encode_snapshot(end);
        let (e, back) = ProducerTable::decode_snapshot(&bytes).expect("valid");
        assert_eq!(e, end);
        assert_eq!(back.len(), 2);
        assert_eq!(
            back.check(7, 0, 3, 2),
            Verdict::Duplicate { base_offset: 3 }
        );
        assert_eq!(back.check(7, 0, 9, 1), Verdict::Append);
        assert_eq!(back.encode_snapshot(end), bytes, "byte-identical re-encode");
    }

    #[test]
    fn damaged_snapshots_are_refused_with_the_reason() {
        let (t, end) = table_from(&[(1, 0, 1), (2, 0, 5)]);
        let good = t.encode_snapshot(end);
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        assert!(matches!(
            ProducerTable::decode_snapshot(&flipped),
            Err(SnapshotError::Checksum { .. })
        ));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert_eq!(
            ProducerTable::decode_snapshot(&magic).err(),
            Some(SnapshotError::Magic)
        );
        let mut version = good.clone();
        version[8] = 2;
        assert_eq!(
            ProducerTable::decode_snapshot(&version).err(),
            Some(SnapshotError::Version(2))
        );
        assert!(matches!(
            ProducerTable::decode_snapshot(&good[..good.len() - 1]),
            Err(SnapshotError::Checksum { .. })
        ));
        assert!(matches!(
            ProducerTable::decode_snapshot(&good[..10]),
            Err(SnapshotError::Length { .. })
        ));
        // A well-formed body whose content is wrong, under a valid checksum: a batch at
        // the log end offset (nothing can be there yet).
        let mut body = good[..good.len() - 4].to_vec();
        body[12..20].copy_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        assert!(matches!(
            ProducerTable::decode_snapshot(&body),
            Err(SnapshotError::Invalid(_))
        ));
    }

    fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = ProducerTable::decode_snapshot(&bytes);
        }

        /// Past the checksum: a valid header and a random body with a correct CRC.
        #[test]
        fn garbage_bodies_with_a_valid_checksum_never_panic(
            count in 0u32..5,
            end in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut b = SNAPSHOT_MAGIC.to_vec();
            b.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(&end.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&body);
            if let Ok((e, t)) = ProducerTable::decode_snapshot(&with_crc(b)) {
                prop_assert_eq!(e, end);
                prop_assert_eq!(t.len(), count as usize);
            }
        }

        #[test]
        fn round_trips_hold(
            ops in proptest::collection::vec((0i64..6, 0i16..3, 1u32..50), 0..80),
            extra in 0u64..10,
        ) {
            let (t, end) = table_from(&ops);
            let bytes = t.encode_snapshot(end + extra);
            let (e, back) = ProducerTable::decode_snapshot(&bytes).expect("own snapshot");
            prop_assert_eq!(e, end + extra);
            prop_assert_eq!(verdicts(&back), verdicts(&t));
            prop_assert_eq!(back.encode_snapshot(end + extra), bytes);
        }

        /// Any single-bit flip of a valid snapshot is caught (CRC32 detects every
        /// single-bit error), and never panics.
        #[test]
        fn bit_flips_are_refused(
            ops in proptest::collection::vec((0i64..4, 0i16..2, 1u32..9), 1..20),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let (t, end) = table_from(&ops);
            let mut bytes = t.encode_snapshot(end);
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(ProducerTable::decode_snapshot(&bytes).is_err());
        }
    }
}
