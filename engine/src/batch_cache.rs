//! Recent batches of one partition, kept in memory so tail reads never touch the disk
//! (direct I/O bypasses the page cache, so the broker keeps its own).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::batch::set_base_offset;

#[derive(Debug, Clone)]
pub struct CachedBatch {
    pub base_offset: u64,
    pub last_offset: u64,
    /// The batch; until `patched`, with the producer's base offset in its header.
    pub bytes: Bytes,
    /// Whether `bytes` carries `base_offset` in its header. A batch appended as a slice of
    /// a request frame ([`crate::PartitionLog::append_shared`]) is kept as the producer
    /// sent it, and the first read makes the corrected copy.
    pub patched: bool,
    /// Bytes it counts against the budget: at least what it alone keeps in memory (a slice
    /// keeps its whole allocation), so the budget bounds memory, not just batch bytes.
    pub charge: usize,
}

impl CachedBatch {
    /// A batch that owns its memory and carries its offsets.
    pub fn owned(base_offset: u64, last_offset: u64, bytes: Bytes) -> CachedBatch {
        CachedBatch {
            base_offset,
            last_offset,
            charge: bytes.len(),
            bytes,
            patched: true,
        }
    }

    /// Makes the corrected copy of a batch kept as the producer sent it.
    fn patch(&mut self) {
        if self.patched {
            return;
        }
        let mut b = BytesMut::from(&self.bytes[..]);
        set_base_offset(&mut b, self.base_offset);
        self.bytes = b.freeze();
        self.patched = true;
        self.charge = self.bytes.len();
    }
}

#[derive(Debug)]
pub struct BatchCache {
    batches: VecDeque<CachedBatch>,
    bytes: usize,
    bytes_max: usize,
}

impl BatchCache {
    pub fn new(bytes_max: usize) -> Self {
        BatchCache {
            batches: VecDeque::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Adds the newest batch and evicts the oldest beyond the byte budget (the newest
    /// batch always stays).
    pub fn push(&mut self, batch: CachedBatch) {
        if let Some(last) = self.batches.back() {
            assert_eq!(
                last.last_offset + 1,
                batch.base_offset,
                "cache holds a contiguous run"
            );
        }
        assert!(
            batch.charge >= batch.bytes.len(),
            "a batch charges at least its bytes"
        );
        self.bytes += batch.charge;
        self.batches.push_back(batch);
        while self.bytes > self.bytes_max && self.batches.len() > 1 {
            self.pop_front();
        }
    }

    /// Changes the byte budget (the broker shares one budget among a shard's partitions)
    /// and evicts the oldest batches beyond it at once.
    pub fn set_bytes_max(&mut self, bytes_max: usize) {
        self.bytes_max = bytes_max;
        while self.bytes > self.bytes_max && self.batches.len() > 1 {
            self.pop_front();
        }
    }

    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    fn pop_front(&mut self) {
        if let Some(b) = self.batches.pop_front() {
            self.bytes -= b.charge;
        }
    }

    /// Drops batches below `offset` (retention moved the log start).
    pub fn evict_below(&mut self, offset: u64) {
        while self.batches.front().is_some_and(|b| b.last_offset < offset) {
            self.pop_front();
        }
    }

    /// Drops everything (after a truncation).
    pub fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }

    /// Whether `offset` can be served from here.
    pub fn covers(&self, offset: u64) -> bool {
        self.batches
            .front()
            .is_some_and(|b| b.base_offset <= offset)
    }

    /// Batches holding `from` onwards and starting below `end`, at least one, then up to
    /// `max_bytes` in all, each with its offsets in its header (corrected copies are made
    /// here, once, and kept).
    pub fn read(&mut self, from: u64, end: u64, max_bytes: usize) -> Vec<Bytes> {
        let start = self.batches.partition_point(|b| b.last_offset < from);
        let mut out = Vec::new();
        let mut total = 0;
        for b in self.batches.range_mut(start..) {
            if b.base_offset >= end || (!out.is_empty() && total + b.bytes.len() > max_bytes) {
                break;
            }
            let charged = b.charge;
            b.patch();
            self.bytes -= charged - b.charge;
            total += b.bytes.len();
            out.push(b.bytes.clone());
        }
        out
    }

    /// The first offset the cache holds, if any.
    pub fn first_offset(&self) -> Option<u64> {
        self.batches.front().map(|b| b.base_offset)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: u64, len: usize) -> CachedBatch {
        CachedBatch::owned(base, base, Bytes::from(vec![0u8; len]))
    }

    #[test]
    fn a_smaller_budget_evicts_the_oldest_at_once_and_keeps_the_newest() {
        let mut c = BatchCache::new(10_000);
        for i in 0..10 {
            c.push(batch(i, 1000));
        }
        assert_eq!(c.bytes(), 10_000);
        c.set_bytes_max(3000);
        assert_eq!(c.bytes(), 3000);
        assert_eq!(c.first_offset(), Some(7));
        c.set_bytes_max(0);
        assert_eq!(c.first_offset(), Some(9), "the newest batch always stays");
        c.set_bytes_max(5000);
        c.push(batch(10, 1000));
        assert_eq!(
            c.bytes(),
            2000,
            "a larger budget fills up again from new batches"
        );
    }
}
