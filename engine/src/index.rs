//! Sparse offset index and time index of one segment.
//!
//! Kept in memory; written to `.index` / `.timeindex` when the segment is sealed, and
//! rebuilt by scanning the log when a file is missing or does not match the log size.

use crate::constants::PAGE_BYTES;

const INDEX_MAGIC: &[u8; 8] = b"CFAIDX01";
const TIMEINDEX_MAGIC: &[u8; 8] = b"CFATIX01";
/// File header: magic (8) + log bytes covered (8).
const FILE_HEADER_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp of every batch before the indexed one in this segment.
    pub max_timestamp_before_ms: i64,
    pub relative_offset: u32,
}

#[derive(Debug, Clone, Default)]
pub struct SegmentIndex {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    bytes_since_entry: u64,
    max_timestamp_ms: Option<i64>,
}

impl SegmentIndex {
    /// Records a batch appended at `position`; adds an entry for the first batch and then
    /// whenever `interval_bytes` accumulated since the previous entry.
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        len: u32,
        max_ts: i64,
        interval_bytes: u32,
    ) {
        if self.offsets.is_empty() || self.bytes_since_entry >= u64::from(interval_bytes) {
            if let Some(last) = self.offsets.last() {
                assert!(last.relative_offset < relative_offset && last.position < position);
            }
            self.offsets.push(OffsetEntry {
                relative_offset,
                position,
            });
            self.times.push(TimeEntry {
                max_timestamp_before_ms: self.max_timestamp_ms.unwrap_or(i64::MIN),
                relative_offset,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += u64::from(len);
        self.max_timestamp_ms = Some(self.max_timestamp_ms.map_or(max_ts, |m| m.max(max_ts)));
    }

    /// Position to start scanning for `relative_offset`: the last entry at or below it.
    pub fn position_for(&self, relative_offset: u32) -> u32 {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 {
            0
        } else {
            self.offsets[i - 1].position
        }
    }

    /// Relative offset to start scanning for the first batch with max timestamp >= ts:
    /// every batch before it has smaller timestamps.
    pub fn scan_start_for_time(&self, ts: i64) -> u32 {
        let i = self
            .times
            .partition_point(|e| e.max_timestamp_before_ms < ts);
        if i == 0 {
            0
        } else {
            self.times[i - 1].relative_offset
        }
    }

    pub fn max_timestamp_ms(&self) -> Option<i64> {
        self.max_timestamp_ms
    }

    pub fn entries(&self) -> usize {
        self.offsets.len()
    }

    pub fn encode_offsets(&self, log_bytes: u64) -> Vec<u8> {
        let mut out = header(INDEX_MAGIC, log_bytes, self.offsets.len() * 8);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
        }
        out
    }

    pub fn encode_times(&self, log_bytes: u64) -> Vec<u8> {
        let mut out = header(TIMEINDEX_MAGIC, log_bytes, self.times.len() * 12);
        for e in &self.times {
            out.extend_from_slice(&e.max_timestamp_before_ms.to_le_bytes());
            out.extend_from_slice(&e.relative_offset.to_le_bytes());
        }
        out
    }

    /// Loads both files; `None` if either is missing, malformed, or was written for a log
    /// of another size (stale), in which case the caller rebuilds by scanning.
    pub fn decode(offsets: &[u8], times: &[u8], log_bytes: u64) -> Option<SegmentIndex> {
        let o = body(offsets, INDEX_MAGIC, log_bytes, 8)?;
        let t = body(times, TIMEINDEX_MAGIC, log_bytes, 12)?;
        let offsets: Vec<OffsetEntry> = o
            .chunks_exact(8)
            .map(|c| OffsetEntry {
                relative_offset: u32::from_le_bytes(c[0..4].try_into().expect("4 bytes")),
                position: u32::from_le_bytes(c[4..8].try_into().expect("4 bytes")),
            })
            .collect();
        let times: Vec<TimeEntry> = t
            .chunks_exact(12)
            .map(|c| TimeEntry {
                max_timestamp_before_ms: i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                relative_offset: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
            })
            .collect();
        let increasing = offsets
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
        let in_log = offsets
            .iter()
            .all(|e| u64::from(e.position) < log_bytes.max(1));
        let times_ok = times.len() == offsets.len()
            && times
                .windows(2)
                .all(|w| w[0].max_timestamp_before_ms <= w[1].max_timestamp_before_ms);
        if !(increasing && in_log && times_ok) || (offsets.is_empty() && log_bytes > 0) {
            return None;
        }
        Some(SegmentIndex {
            offsets,
            times,
            bytes_since_entry: 0,
            max_timestamp_ms: None,
        })
    }

    /// Position of the last entry (0 when empty).
    pub fn last_position(&self) -> u32 {
        self.offsets.last().map_or(0, |e| e.position)
    }

    /// Max timestamp of the batches before the last entry.
    pub fn last_max_timestamp_before(&self) -> i64 {
        self.times
            .last()
            .map_or(i64::MIN, |e| e.max_timestamp_before_ms)
    }

    pub fn set_max_timestamp_ms(&mut self, ts: i64) {
        self.max_timestamp_ms = Some(ts);
    }
}

fn header(magic: &[u8; 8], log_bytes: u64, body_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_HEADER_BYTES + body_bytes + PAGE_BYTES);
    out.extend_from_slice(magic);
    out.extend_from_slice(&log_bytes.to_le_bytes());
    out
}

fn body<'a>(file: &'a [u8], magic: &[u8; 8], log_bytes: u64, entry: usize) -> Option<&'a [u8]> {
    if file.len() < FILE_HEADER_BYTES || &file[..8] != magic {
        return None;
    }
    let covered = u64::from_le_bytes(file[8..16].try_into().ok()?);
    let body = &file[FILE_HEADER_BYTES..];
    (covered == log_bytes && body.len() % entry == 0).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_entries_and_lookup() {
        let mut ix = SegmentIndex::default();
        // ten batches of 1000 bytes, 10 records each, interval 4096
        for i in 0..10u32 {
            ix.on_batch(i * 10, i * 1000, 1000, i64::from(i) * 100, 4096);
        }
        assert_eq!(ix.entries(), 2); // batch 0, then batch 5 (5000 bytes since)
        assert_eq!(ix.position_for(0), 0);
        assert_eq!(ix.position_for(49), 0);
        assert_eq!(ix.position_for(50), 5000);
        assert_eq!(ix.position_for(99), 5000);
        let bytes = ix.encode_offsets(10_000);
        let times = ix.encode_times(10_000);
        let back = SegmentIndex::decode(&bytes, &times, 10_000).expect("decodes");
        assert_eq!(back.position_for(77), ix.position_for(77));
        assert!(
            SegmentIndex::decode(&bytes, &times, 9_999).is_none(),
            "stale size"
        );
        assert!(
            SegmentIndex::decode(&bytes[..20], &times, 10_000).is_none(),
            "torn"
        );
    }

    #[test]
    fn time_lookup_starts_before_first_match() {
        let mut ix = SegmentIndex::default();
        for i in 0..10u32 {
            ix.on_batch(i, i * 5000, 5000, i64::from(i) * 100, 4096);
        }
        // every batch indexed; the first batch with max ts >= 350 is batch 4
        assert_eq!(ix.scan_start_for_time(350), 4);
        assert_eq!(ix.scan_start_for_time(0), 0);
        assert_eq!(ix.scan_start_for_time(10_000), 9);
    }

    proptest::proptest! {
        /// The index decoder never panics on arbitrary bytes, and anything it accepts
        /// satisfies the lookup invariants.
        #[test]
        fn decode_survives_garbage(
            offsets in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            times in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            log_bytes in 0u64..100_000,
            magic in proptest::prelude::any::<bool>(),
        ) {
            let mut o = offsets;
            let mut t = times;
            if magic && o.len() >= 16 && t.len() >= 16 {
                o[..8].copy_from_slice(INDEX_MAGIC);
                o[8..16].copy_from_slice(&log_bytes.to_le_bytes());
                t[..8].copy_from_slice(TIMEINDEX_MAGIC);
                t[8..16].copy_from_slice(&log_bytes.to_le_bytes());
            }
            if let Some(ix) = SegmentIndex::decode(&o, &t, log_bytes) {
                let p = ix.position_for(u32::MAX);
                proptest::prop_assert!(u64::from(p) < log_bytes.max(1));
            }
        }
    }
}
