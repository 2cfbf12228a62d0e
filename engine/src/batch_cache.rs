//! Recent batches of one partition, kept in memory so tail reads never touch the disk
//! (direct I/O bypasses the page cache, so the broker keeps its own).

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct CachedBatch {
    pub base_offset: u64,
    pub last_offset: u64,
    pub bytes: Bytes,
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
        self.bytes += batch.bytes.len();
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
            self.bytes -= b.bytes.len();
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
    /// `max_bytes` in all.
    pub fn read(&self, from: u64, end: u64, max_bytes: usize) -> Vec<Bytes> {
        let start = self.batches.partition_point(|b| b.last_offset < from);
        let mut out = Vec::new();
        let mut total = 0;
        for b in self.batches.range(start..) {
            if b.base_offset >= end || (!out.is_empty() && total + b.bytes.len() > max_bytes) {
                break;
            }
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
        CachedBatch {
            base_offset: base,
            last_offset: base,
            bytes: Bytes::from(vec![0u8; len]),
        }
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
