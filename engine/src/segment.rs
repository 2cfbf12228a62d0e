//! One segment: a `.log` file of record batches plus its sparse indexes.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::batch::{batch_crc, BatchHeader, BATCH_MAGIC};
use crate::constants::{BATCH_HEADER_BYTES, MAX_MESSAGE_BYTES_CEILING, SEGMENT_NAME_DIGITS};
use crate::index::SegmentIndex;
use crate::storage::StorageFile;

/// Bytes read at once while scanning a segment during recovery.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

pub fn log_name(base_offset: u64) -> String {
    format!("{base_offset:0width$}.log", width = SEGMENT_NAME_DIGITS)
}

pub fn index_name(base_offset: u64) -> String {
    format!("{base_offset:0width$}.index", width = SEGMENT_NAME_DIGITS)
}

pub fn timeindex_name(base_offset: u64) -> String {
    format!(
        "{base_offset:0width$}.timeindex",
        width = SEGMENT_NAME_DIGITS
    )
}

/// A deleted segment's file kept for reuse (`00000000000000000042.recycle`: it held
/// offsets from 42, all below the log start by now).
pub fn recycle_name(base_offset: u64) -> String {
    format!("{base_offset:0width$}.recycle", width = SEGMENT_NAME_DIGITS)
}

/// Parses `00000000000000000042.log` into 42.
pub fn parse_log_name(name: &str) -> Option<u64> {
    parse_name(name, ".log")
}

/// Parses `00000000000000000042.recycle` into 42.
pub fn parse_recycle_name(name: &str) -> Option<u64> {
    parse_name(name, ".recycle")
}

fn parse_name(name: &str, suffix: &str) -> Option<u64> {
    let stem = name.strip_suffix(suffix)?;
    (stem.len() == SEGMENT_NAME_DIGITS && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

pub struct Segment<F> {
    pub base_offset: u64,
    pub file: Rc<F>,
    pub path: PathBuf,
    /// Logical bytes: every batch appended, written or not.
    pub size: u64,
    /// Bytes on disk (written, maybe not yet synced). Equal to `size` once sealed.
    pub written_size: u64,
    /// Offset after the last batch appended.
    pub next_offset: u64,
    pub index: SegmentIndex,
    /// File bytes reserved by fallocate (or the file size).
    pub allocated: u64,
    /// Bytes from 0 known to be written (data or zero fill): no unwritten extents below.
    pub zeroed_until: u64,
    /// Clock time the segment got its first batch (for segment.ms).
    pub first_append_ms: Option<i64>,
    pub sealed: bool,
}

impl<F: StorageFile> Segment<F> {
    pub fn new(base_offset: u64, file: F, path: PathBuf) -> Self {
        Segment {
            base_offset,
            file: Rc::new(file),
            path,
            size: 0,
            written_size: 0,
            next_offset: base_offset,
            index: SegmentIndex::default(),
            allocated: 0,
            zeroed_until: 0,
            first_append_ms: None,
            sealed: false,
        }
    }

    /// A segment found on disk: `size` valid bytes, all written and durable.
    pub fn recovered(
        base_offset: u64,
        file: F,
        path: PathBuf,
        index: SegmentIndex,
        size: u64,
        next_offset: u64,
    ) -> Self {
        Segment {
            index,
            size,
            written_size: size,
            allocated: size,
            zeroed_until: size,
            next_offset,
            ..Segment::new(base_offset, file, path)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.next_offset == self.base_offset
    }

    /// Max timestamp of the segment's batches (retention by time), if any.
    pub fn max_timestamp_ms(&self) -> Option<i64> {
        self.index.max_timestamp_ms()
    }

    /// Bytes readable from the file (`written_size` for the active segment).
    pub fn readable_size(&self) -> u64 {
        self.written_size
    }
}

/// What a scan of a segment file found.
pub struct ScanResult {
    pub index: SegmentIndex,
    /// Bytes of valid, contiguous batches from the start of the file.
    pub valid_bytes: u64,
    pub next_offset: u64,
    pub first_timestamp_ms: Option<i64>,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// Header checks that need no CRC: stops a scan at zeros, garbage or a gap in offsets.
fn plausible(h: &BatchHeader, expected_offset: u64) -> Result<(), String> {
    let len = h.len();
    if h.magic != BATCH_MAGIC {
        return Err(format!("bad magic {}", h.magic));
    }
    if len < BATCH_HEADER_BYTES || len > MAX_MESSAGE_BYTES_CEILING as usize {
        return Err(format!("implausible batch length {len}"));
    }
    if h.base_offset() != expected_offset {
        return Err(format!(
            "base offset {} where {expected_offset} was expected",
            h.base_offset()
        ));
    }
    if h.record_count() == 0 || h.last_offset_delta.get() != h.record_count() - 1 {
        return Err("bad record count".into());
    }
    Ok(())
}

/// Reads a segment from the start and validates it batch by batch (length, offsets, CRC),
/// rebuilding its index. Stops at the first invalid batch: everything after is a torn or
/// corrupt tail.
pub async fn scan<F: StorageFile>(
    file: &F,
    base_offset: u64,
    file_bytes: u64,
    index_interval_bytes: u32,
) -> std::io::Result<ScanResult> {
    let mut res = ScanResult {
        index: SegmentIndex::default(),
        valid_bytes: 0,
        next_offset: base_offset,
        first_timestamp_ms: None,
        stopped: None,
    };
    let mut chunk = Bytes::new();
    let mut chunk_pos = 0u64;
    loop {
        let pos = res.valid_bytes;
        if pos + BATCH_HEADER_BYTES as u64 > file_bytes {
            break;
        }
        let need_header = pos + BATCH_HEADER_BYTES as u64;
        if pos < chunk_pos || need_header > chunk_pos + chunk.len() as u64 {
            chunk_pos = pos;
            chunk = file.read_at(pos, SCAN_CHUNK_BYTES).await?;
        }
        let at = (pos - chunk_pos) as usize;
        let header = match BatchHeader::parse(&chunk[at..]) {
            Ok(h) => *h,
            Err(_) => break,
        };
        if chunk[at..at + BATCH_HEADER_BYTES].iter().all(|b| *b == 0) {
            break; // preallocated zeros: the clean end of the log
        }
        if let Err(why) = plausible(&header, res.next_offset) {
            res.stopped = Some(format!("at byte {pos}: {why}"));
            break;
        }
        let len = header.len();
        if pos + len as u64 > file_bytes {
            res.stopped = Some(format!(
                "at byte {pos}: batch of {len} bytes runs past the end"
            ));
            break;
        }
        if at + len > chunk.len() {
            chunk_pos = pos;
            chunk = file.read_at(pos, len.max(SCAN_CHUNK_BYTES)).await?;
        }
        let at = (pos - chunk_pos) as usize;
        let bytes = &chunk[at..at + len];
        if batch_crc(bytes) != header.crc.get() {
            res.stopped = Some(format!("at byte {pos}: CRC mismatch"));
            break;
        }
        let rel = (res.next_offset - base_offset) as u32;
        res.index.on_batch(
            rel,
            pos as u32,
            len as u32,
            header.max_timestamp_ms(),
            index_interval_bytes,
        );
        res.first_timestamp_ms
            .get_or_insert(header.first_timestamp_ms.get());
        res.next_offset = header.last_offset() + 1;
        res.valid_bytes += len as u64;
    }
    Ok(res)
}

/// Paths of a segment's three files.
pub fn paths(dir: &Path, base_offset: u64) -> [PathBuf; 3] {
    [
        dir.join(log_name(base_offset)),
        dir.join(index_name(base_offset)),
        dir.join(timeindex_name(base_offset)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        assert_eq!(log_name(42), "00000000000000000042.log");
        assert_eq!(parse_log_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_name("42.log"), None);
        assert_eq!(parse_log_name("00000000000000000042.index"), None);
        // Pool files: never taken for segments, and odd names are ignored, not guessed at.
        assert_eq!(recycle_name(42), "00000000000000000042.recycle");
        assert_eq!(parse_recycle_name("00000000000000000042.recycle"), Some(42));
        assert_eq!(parse_log_name("00000000000000000042.recycle"), None);
        assert_eq!(parse_recycle_name("0000000000000000004x.recycle"), None);
        assert_eq!(parse_recycle_name("42.recycle"), None);
    }
}
