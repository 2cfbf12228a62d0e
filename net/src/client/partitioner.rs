//! Which partition a produced record goes to, chosen as Kafka's Java producer chooses it.
//!
//! - A record with a key goes to `toPositive(murmur2(key)) % partition_count`, over *all*
//!   partitions whether or not they have a leader right now, so that a key always lands
//!   on the same partition, and on the same one as with a Kafka client for the same
//!   partition count. An empty key is a key (hashed); only a missing key is keyless.
//! - A record without a key goes where a [`KeylessPartitioner`] says: [`StickyPartitioner`]
//!   (Kafka's default since KIP-480: fill one partition's batch, then move on) or
//!   [`RoundRobin`] (one partition per record, in turn).
//!
//! Everything here is pure and deterministic: no clock, no randomness, no I/O. The
//! producer tells the sticky partitioner when a batch is complete.

use std::num::NonZeroU32;

/// Seed and mixing constants of Kafka's `org.apache.kafka.common.utils.Utils.murmur2`.
const MURMUR2_SEED: u32 = 0x9747_b28c;
const MURMUR2_M: u32 = 0x5bd1_e995;
const MURMUR2_R: u32 = 24;

/// Kafka's murmur2 hash of `data`, bit-identical to `Utils.murmur2(byte[])` (MurmurHash2,
/// seed 0x9747b28c, little-endian 4-byte words, then the 1-3 tail bytes).
///
/// Java computes in `int` with wrapping multiplication and `>>>` (a logical shift); the
/// same is done here in `u32`, and the bits are returned as Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java arrays hold fewer than 2^31 bytes; a longer slice hashes its length mod 2^32.
    let mut h = MURMUR2_SEED ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Java's fall-through switch: byte i of the tail goes to bits 8i, then one mix.
        for (i, byte) in tail.iter().enumerate() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which would fold
/// `i32::MIN` and differ from Kafka for half the hashes).
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// The partition of a keyed record, as Kafka's `BuiltInPartitioner.partitionForKey`:
/// `toPositive(murmur2(key)) % partition_count`.
pub fn partition_for_key(key: &[u8], partition_count: NonZeroU32) -> u32 {
    to_positive(murmur2(key)) % partition_count.get()
}

/// The partition of one record: by key when it has one, else the keyless partitioner's.
/// `available` lists the partitions that have a leader now (see [`KeylessPartitioner`]).
pub fn choose_partition(
    key: Option<&[u8]>,
    keyless: &mut impl KeylessPartitioner,
    available: &[u32],
    partition_count: NonZeroU32,
) -> u32 {
    match key {
        Some(key) => partition_for_key(key, partition_count),
        None => keyless.partition(available, partition_count),
    }
}

/// Chooses partitions for records without a key. A producer keeps one per topic.
pub trait KeylessPartitioner {
    /// The partition for the next keyless record.
    ///
    /// `available` lists the partitions of the topic that have a leader now, each below
    /// `partition_count`, in any order. When it is empty, any partition of the topic may be
    /// chosen (Kafka does the same: the records wait for a leader rather than fail).
    ///
    /// # Panics
    /// If it picks an entry of `available` that is not below `partition_count`: the
    /// caller's metadata contradicts itself.
    fn partition(&mut self, available: &[u32], partition_count: NonZeroU32) -> u32;

    /// The batch being filled for `partition` is complete (full, or sent after linger):
    /// the next keyless record may go elsewhere.
    fn batch_completed(&mut self, partition: u32);
}

/// Keyless records go to one partition until its batch is complete, then to the next
/// partition in round-robin order over the available ones (KIP-480's sticky partitioner,
/// with round-robin instead of a random pick so that it is deterministic and spreads
/// batches evenly).
///
/// Sticking fills batches faster at low rates (fewer, larger requests, lower latency);
/// the round-robin move keeps partitions even over time.
#[derive(Debug, Clone)]
pub struct StickyPartitioner {
    /// The partition being filled and its index in the `available` slice it was picked
    /// from (`usize::MAX` when picked from all partitions), so that checking it is still
    /// available costs O(1) while the list is unchanged.
    current: Option<(u32, usize)>,
    /// The partition whose batch completed last: the next pick avoids it when it can.
    previous: Option<u32>,
    cursor: RoundRobinCursor,
}

impl StickyPartitioner {
    /// `start` is where the round-robin order begins; give producers different starts
    /// (a random number, a hash of the client id) so they do not all begin on the same
    /// partition.
    pub fn new(start: u32) -> StickyPartitioner {
        StickyPartitioner {
            current: None,
            previous: None,
            cursor: RoundRobinCursor { next: start },
        }
    }

    /// The partition keyless records currently stick to, if any.
    pub fn current(&self) -> Option<u32> {
        self.current.map(|(partition, _)| partition)
    }

    fn still_usable(&self, available: &[u32], partition_count: NonZeroU32) -> Option<u32> {
        let (partition, index) = self.current?;
        let usable = partition < partition_count.get()
            && (available.is_empty()
                || available.get(index) == Some(&partition)
                || available.contains(&partition));
        usable.then_some(partition)
    }
}

impl KeylessPartitioner for StickyPartitioner {
    fn partition(&mut self, available: &[u32], partition_count: NonZeroU32) -> u32 {
        if let Some(partition) = self.still_usable(available, partition_count) {
            return partition;
        }
        let mut pick = self.cursor.next_pick(available, partition_count);
        let candidates = if available.is_empty() {
            partition_count.get() as usize
        } else {
            available.len()
        };
        if candidates > 1 && Some(pick.0) == self.previous {
            pick = self.cursor.next_pick(available, partition_count);
        }
        self.current = Some(pick);
        pick.0
    }

    fn batch_completed(&mut self, partition: u32) {
        // A completion for another partition (a batch filled by keyed records, or by this
        // partitioner before it moved on) must not make it move again: Kafka's onNewBatch
        // compares with the previous partition for the same reason.
        if self.current() == Some(partition) {
            self.current = None;
            self.previous = Some(partition);
        }
    }
}

/// Each keyless record goes to the next partition in turn over the available ones
/// (Kafka's `RoundRobinPartitioner`). Spreads records evenly, at the price of many small
/// batches.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    cursor: RoundRobinCursor,
}

impl RoundRobin {
    /// `start`: where the order begins, as for [`StickyPartitioner::new`].
    pub fn new(start: u32) -> RoundRobin {
        RoundRobin {
            cursor: RoundRobinCursor { next: start },
        }
    }
}

impl KeylessPartitioner for RoundRobin {
    fn partition(&mut self, available: &[u32], partition_count: NonZeroU32) -> u32 {
        self.cursor.next_pick(available, partition_count).0
    }

    fn batch_completed(&mut self, _partition: u32) {}
}

/// The keyless strategies, for configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeylessStrategy {
    #[default]
    Sticky,
    RoundRobin,
}

/// A keyless partitioner chosen at run time, without boxing.
#[derive(Debug, Clone)]
pub enum Keyless {
    Sticky(StickyPartitioner),
    RoundRobin(RoundRobin),
}

impl Keyless {
    pub fn new(strategy: KeylessStrategy, start: u32) -> Keyless {
        match strategy {
            KeylessStrategy::Sticky => Keyless::Sticky(StickyPartitioner::new(start)),
            KeylessStrategy::RoundRobin => Keyless::RoundRobin(RoundRobin::new(start)),
        }
    }
}

impl KeylessPartitioner for Keyless {
    fn partition(&mut self, available: &[u32], partition_count: NonZeroU32) -> u32 {
        match self {
            Keyless::Sticky(p) => p.partition(available, partition_count),
            Keyless::RoundRobin(p) => p.partition(available, partition_count),
        }
    }

    fn batch_completed(&mut self, partition: u32) {
        match self {
            Keyless::Sticky(p) => p.batch_completed(partition),
            Keyless::RoundRobin(p) => p.batch_completed(partition),
        }
    }
}

/// The shared round-robin counter: the n-th pick is candidate `n mod candidates`, the
/// candidates being `available` or, when it is empty, every partition.
#[derive(Debug, Clone)]
struct RoundRobinCursor {
    next: u32,
}

impl RoundRobinCursor {
    /// The picked partition and its index in `available` (`usize::MAX` if picked from all).
    fn next_pick(&mut self, available: &[u32], partition_count: NonZeroU32) -> (u32, usize) {
        let n = self.next;
        self.next = n.wrapping_add(1);
        if available.is_empty() {
            return (n % partition_count.get(), usize::MAX);
        }
        let index = n as usize % available.len();
        let partition = available[index];
        assert!(
            partition < partition_count.get(),
            "available partition {partition} of a topic with {partition_count} partitions"
        );
        (partition, index)
    }
}
