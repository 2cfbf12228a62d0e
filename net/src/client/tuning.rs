//! The `[producer]` section of a tuning profile (tuning/*.toml): the producer settings
//! the bench (and any tool that takes a profile) applies over [`ProducerConfig`]'s
//! defaults. Every key is optional; unknown keys are refused with their name, values are
//! checked by [`ProducerConfig::validate`] after they are applied.

use serde::{Deserialize, Serialize};

use crate::client::{ClientError, Codec, Compression, ProducerConfig};
use crate::protocol::Acks;

/// `[producer]`: Kafka's producer knobs, units last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerTuning {
    /// "0" | "1" | "all".
    pub acks: Option<String>,
    pub batch_size_bytes: Option<usize>,
    pub linger_ms: Option<u64>,
    /// "none" | "gzip" | "snappy" | "lz4" | "zstd".
    pub compression: Option<String>,
    pub buffer_memory_bytes: Option<usize>,
    pub max_in_flight_per_connection: Option<usize>,
    pub enable_idempotence: Option<bool>,
    pub delivery_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub retry_backoff_ms: Option<u64>,
    pub shard_aware: Option<bool>,
}

impl ProducerTuning {
    /// Sets every key present on `config`, then validates the result. When `acks` is set
    /// and `enable_idempotence` is not, idempotence follows Kafka's rule: on for
    /// acks=all, off otherwise (it needs acks=all).
    pub fn apply(&self, config: &mut ProducerConfig) -> Result<(), ClientError> {
        if let Some(text) = &self.acks {
            config.acks = parse_acks(text)?;
            config.enable_idempotence = config.acks == Acks::All;
        }
        if let Some(text) = &self.compression {
            config.compression = parse_compression(text)?;
        }
        set(&mut config.batch_size_bytes, self.batch_size_bytes);
        set(&mut config.linger_ms, self.linger_ms);
        set(&mut config.buffer_memory_bytes, self.buffer_memory_bytes);
        set(
            &mut config.max_in_flight_per_connection,
            self.max_in_flight_per_connection,
        );
        set(&mut config.enable_idempotence, self.enable_idempotence);
        set(&mut config.delivery_timeout_ms, self.delivery_timeout_ms);
        set(&mut config.request_timeout_ms, self.request_timeout_ms);
        set(&mut config.retry_backoff_ms, self.retry_backoff_ms);
        set(&mut config.shard_aware, self.shard_aware);
        config.validate()
    }

    /// `self` with every key `over` sets replaced by `over`'s value.
    pub fn overridden_by(&self, over: &ProducerTuning) -> ProducerTuning {
        ProducerTuning {
            acks: over.acks.clone().or_else(|| self.acks.clone()),
            batch_size_bytes: over.batch_size_bytes.or(self.batch_size_bytes),
            linger_ms: over.linger_ms.or(self.linger_ms),
            compression: over
                .compression
                .clone()
                .or_else(|| self.compression.clone()),
            buffer_memory_bytes: over.buffer_memory_bytes.or(self.buffer_memory_bytes),
            max_in_flight_per_connection: over
                .max_in_flight_per_connection
                .or(self.max_in_flight_per_connection),
            enable_idempotence: over.enable_idempotence.or(self.enable_idempotence),
            delivery_timeout_ms: over.delivery_timeout_ms.or(self.delivery_timeout_ms),
            request_timeout_ms: over.request_timeout_ms.or(self.request_timeout_ms),
            retry_backoff_ms: over.retry_backoff_ms.or(self.retry_backoff_ms),
            shard_aware: over.shard_aware.or(self.shard_aware),
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// "0" | "1" | "all" (or "-1"), with an error naming the key.
pub fn parse_acks(text: &str) -> Result<Acks, ClientError> {
    Acks::parse(text).ok_or_else(|| {
        ClientError::Config(format!("acks = {text:?}: expected \"0\", \"1\" or \"all\""))
    })
}

/// A codec name, with an error naming the key.
pub fn parse_compression(text: &str) -> Result<Compression, ClientError> {
    let codec = text
        .parse::<Codec>()
        .map_err(|e| ClientError::Config(format!("compression = {text:?}: {e}")))?;
    Ok(Compression::from(codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(text: &str) -> Result<ProducerTuning, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn keys_apply_and_idempotence_follows_acks() {
        let t =
            tuning("acks = \"1\"\nbatch_size_bytes = 65536\nlinger_ms = 2\ncompression = \"gzip\"")
                .expect("parses");
        let mut c = ProducerConfig::default();
        t.apply(&mut c).expect("valid");
        assert_eq!(c.acks, Acks::Leader);
        assert!(!c.enable_idempotence, "acks=1 cannot be idempotent");
        assert_eq!((c.batch_size_bytes, c.linger_ms), (65536, 2));
        assert_eq!(c.compression, Compression::from(Codec::Gzip));
        let all = tuning("acks = \"all\"").expect("parses");
        all.apply(&mut c).expect("valid");
        assert!(c.enable_idempotence);
        assert!(c.shard_aware, "on by default");
        let off = tuning("shard_aware = false").expect("parses");
        off.apply(&mut c).expect("valid");
        assert!(!c.shard_aware);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let e = tuning("lingr_ms = 5").expect_err("unknown key");
        assert!(e.to_string().contains("lingr_ms"), "{e}");
        let mut c = ProducerConfig::default();
        let e = tuning("acks = \"2\"").expect("parses").apply(&mut c);
        assert!(e.expect_err("bad acks").to_string().contains("acks"));
        let e = tuning("compression = \"brotli\"")
            .expect("parses")
            .apply(&mut c);
        assert!(e.expect_err("bad codec").to_string().contains("brotli"));
        let e = tuning("batch_size_bytes = 1")
            .expect("parses")
            .apply(&mut c);
        assert!(e
            .expect_err("tiny batch")
            .to_string()
            .contains("batch_size_bytes"));
    }

    #[test]
    fn overrides_win_key_by_key() {
        let base = tuning("acks = \"all\"\nlinger_ms = 5").expect("parses");
        let over = tuning("linger_ms = 0").expect("parses");
        let merged = base.overridden_by(&over);
        assert_eq!(merged.acks.as_deref(), Some("all"));
        assert_eq!(merged.linger_ms, Some(0));
    }
}
