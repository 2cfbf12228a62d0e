//! The `[log]` section of a tuning profile (tuning/*.toml): the engine's own keys.
//!
//! Every key is optional and defaults to Kafka's default; unknown keys are refused with
//! an error naming them, so a typo never silently falls back to a default.

use serde::Deserialize;

use crate::config::{FlushPolicy, LogConfig};
use crate::error::LogError;

/// How fsync is scheduled, as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushMode {
    /// fdatasync after every write.
    EveryBatch,
    /// fdatasync after `flush_interval_bytes` or `flush_interval_ms`, whichever first.
    Interval,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTuning {
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<u64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub max_message_bytes: Option<u32>,
    pub index_interval_bytes: Option<u32>,
    pub flush_mode: Option<FlushMode>,
    pub flush_interval_bytes: Option<u64>,
    pub flush_interval_ms: Option<u64>,
    pub batch_cache_bytes: Option<usize>,
    pub pending_bytes_max: Option<usize>,
    pub zero_fill_ahead_bytes: Option<u64>,
    pub recycle_segments: Option<bool>,
}

impl LogTuning {
    /// Applies the keys that are set over `base` and validates the result.
    pub fn apply(&self, base: &LogConfig) -> Result<LogConfig, LogError> {
        let mut c = base.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            segment_bytes,
            segment_ms,
            retention_ms,
            retention_bytes,
            max_message_bytes,
            index_interval_bytes,
            batch_cache_bytes,
            pending_bytes_max,
            zero_fill_ahead_bytes,
            recycle_segments
        );
        let (old_bytes, old_ms) = match base.flush {
            FlushPolicy::Interval { bytes, ms } => (bytes, ms),
            FlushPolicy::EveryBatch => (u64::MAX, u64::MAX),
        };
        let interval_keys = self.flush_interval_bytes.is_some() || self.flush_interval_ms.is_some();
        c.flush = match self.flush_mode {
            Some(FlushMode::EveryBatch) if interval_keys => {
                return Err(LogError::Config(
                    "log.flush_interval_bytes / log.flush_interval_ms only apply with flush_mode = \"interval\"".into(),
                ))
            }
            Some(FlushMode::EveryBatch) => FlushPolicy::EveryBatch,
            Some(FlushMode::Interval) => FlushPolicy::Interval {
                bytes: self.flush_interval_bytes.unwrap_or(old_bytes),
                ms: self.flush_interval_ms.unwrap_or(old_ms),
            },
            None if interval_keys => {
                return Err(LogError::Config(
                    "log.flush_interval_bytes / log.flush_interval_ms need flush_mode = \"interval\"".into(),
                ))
            }
            None => base.flush,
        };
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LogTuning, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn keys_apply_and_unknown_keys_are_named() {
        let t = parse("segment_bytes = 2097152\nflush_mode = \"interval\"\nflush_interval_ms = 5")
            .expect("parses");
        let c = t.apply(&LogConfig::default()).expect("valid");
        assert_eq!(c.segment_bytes, 2 << 20);
        assert_eq!(
            c.flush,
            FlushPolicy::Interval {
                bytes: u64::MAX,
                ms: 5
            }
        );
        let err = parse("segmnt_bytes = 1").expect_err("typo refused");
        assert!(err.to_string().contains("segmnt_bytes"), "{err}");
        let err = parse("segment_bytes = 10")
            .expect("parses")
            .apply(&LogConfig::default())
            .expect_err("too small");
        assert!(err.to_string().contains("segment.bytes"), "{err}");
        let err = parse("flush_interval_ms = 5")
            .expect("parses")
            .apply(&LogConfig::default())
            .expect_err("needs mode");
        assert!(err.to_string().contains("flush_mode"), "{err}");
    }
}
