//! Per-partition log configuration (Kafka topic-level names in comments).

use crate::constants::*;
use crate::error::LogError;

/// When appended data is written and fsynced, beyond what waiters ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fdatasync after every write: every acknowledged batch is durable.
    EveryBatch,
    /// fdatasync once `bytes` unsynced bytes piled up or the oldest unsynced byte is `ms` old,
    /// whichever first (`u64::MAX` disables a bound). Waiters asking for durability still
    /// get it at once (group commit).
    Interval { bytes: u64, ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// segment.bytes
    pub segment_bytes: u64,
    /// segment.ms
    pub segment_ms: u64,
    /// retention.ms; negative: no time limit.
    pub retention_ms: i64,
    /// retention.bytes; negative: no size limit.
    pub retention_bytes: i64,
    /// max.message.bytes: the largest batch accepted.
    pub max_message_bytes: u32,
    /// index.interval.bytes
    pub index_interval_bytes: u32,
    pub flush: FlushPolicy,
    /// Recent batches kept in memory for tail reads.
    pub batch_cache_bytes: usize,
    /// Appended-but-unwritten bytes before `append` waits for a write (backpressure).
    pub pending_bytes_max: usize,
    /// Zero-fill this far ahead of the tail so data fsyncs skip extent conversion; 0: off.
    pub zero_fill_ahead_bytes: u64,
    /// Keep a segment retention deletes (up to `RECYCLE_POOL_FILES_MAX` per partition) and
    /// write the next new segment over it, instead of unlinking it and allocating anew.
    pub recycle_segments: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_ms: SEGMENT_MS_DEFAULT,
            retention_ms: RETENTION_MS_DEFAULT,
            retention_bytes: RETENTION_BYTES_DEFAULT,
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            flush: FlushPolicy::EveryBatch,
            batch_cache_bytes: BATCH_CACHE_BYTES_DEFAULT,
            pending_bytes_max: PENDING_BYTES_MAX_DEFAULT,
            zero_fill_ahead_bytes: ZERO_FILL_AHEAD_BYTES_DEFAULT,
            recycle_segments: RECYCLE_SEGMENTS_DEFAULT,
        }
    }
}

impl LogConfig {
    /// Refuses values the engine cannot honour, naming the key.
    pub fn validate(&self) -> Result<(), LogError> {
        let bad = |msg: String| Err(LogError::Config(msg));
        if self.max_message_bytes < 128 || self.max_message_bytes > MAX_MESSAGE_BYTES_CEILING {
            return bad(format!(
                "max.message.bytes = {} must be in [128, {MAX_MESSAGE_BYTES_CEILING}]",
                self.max_message_bytes
            ));
        }
        let seg_min = SEGMENT_BYTES_MIN.max(u64::from(self.max_message_bytes) + PAGE_BYTES as u64);
        if self.segment_bytes < seg_min || self.segment_bytes > SEGMENT_BYTES_MAX {
            return bad(format!(
                "segment.bytes = {} must be in [{seg_min}, {SEGMENT_BYTES_MAX}] (at least max.message.bytes + 4096)",
                self.segment_bytes
            ));
        }
        if self.segment_ms == 0 {
            return bad("segment.ms must be > 0".into());
        }
        if self.index_interval_bytes == 0 {
            return bad("index.interval.bytes must be > 0".into());
        }
        if self.pending_bytes_max < self.max_message_bytes as usize {
            return bad(format!(
                "pending bytes max {} must hold one max.message.bytes batch ({})",
                self.pending_bytes_max, self.max_message_bytes
            ));
        }
        if let FlushPolicy::Interval { bytes: 0, .. } | FlushPolicy::Interval { ms: 0, .. } =
            self.flush
        {
            return bad("flush interval bytes and ms must be > 0 (use every-batch instead)".into());
        }
        Ok(())
    }
}
