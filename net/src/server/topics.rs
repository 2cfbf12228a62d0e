//! Topic metadata: names, partition counts and per-topic config overrides, kept durably in
//! `<data dir>/topics.json` (replaced atomically: temp file, fsync, rename, fsync the
//! directory). Shard 0 owns the file; every shard keeps a copy of the table, updated by
//! message when topics are created or deleted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use cfa_engine::manager::validate_topic_name;
use cfa_engine::LogConfig;
use serde::{Deserialize, Serialize};

use crate::constants::{PARTITIONS_PER_TOPIC_MAX, TOPICS_MAX};
use crate::protocol::{ConfigEntry, ErrorCode};

/// The internal topic that holds committed consumer-group offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
    /// Overrides of the broker's log defaults, Kafka key names ("retention.ms", ...).
    pub configs: BTreeMap<String, String>,
}

/// A refusal with the code and message a client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub code: ErrorCode,
    pub message: String,
}

impl TopicError {
    fn new(code: ErrorCode, message: String) -> Self {
        TopicError { code, message }
    }
}

/// The topic overrides a user may set, and how they map onto the log config.
const CONFIG_KEYS: [&str; 6] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "cleanup.policy",
];

impl TopicMeta {
    /// Validates a create request; `replication_factor` None takes the most this cluster
    /// (one broker) can hold.
    pub fn new(
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u16>,
        configs: &[ConfigEntry],
        defaults: &LogConfig,
    ) -> Result<TopicMeta, TopicError> {
        validate_topic_name(name).map_err(|m| TopicError::new(ErrorCode::InvalidTopicName, m))?;
        if name.starts_with("__") && name != OFFSETS_TOPIC {
            return Err(TopicError::new(
                ErrorCode::InvalidTopicName,
                format!("topic names starting with \"__\" are reserved: {name:?}"),
            ));
        }
        let partitions = partitions.unwrap_or(1);
        if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(TopicError::new(
                ErrorCode::InvalidPartitions,
                format!("partitions must be 1..={PARTITIONS_PER_TOPIC_MAX}, got {partitions}"),
            ));
        }
        let rf = replication_factor.unwrap_or(1);
        if rf != 1 {
            return Err(TopicError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("replication factor {rf} is larger than the 1 broker available"),
            ));
        }
        let mut map = BTreeMap::new();
        for c in configs {
            if !CONFIG_KEYS.contains(&c.key.as_str()) {
                return Err(TopicError::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "unknown topic config {:?} (known: {})",
                        c.key,
                        CONFIG_KEYS.join(", ")
                    ),
                ));
            }
            map.insert(c.key.clone(), c.value.clone());
        }
        let meta = TopicMeta {
            name: name.to_owned(),
            partitions,
            replication_factor: rf,
            configs: map,
        };
        meta.log_config(defaults)?;
        Ok(meta)
    }

    /// The log config of this topic's partitions: the broker defaults with the overrides.
    pub fn log_config(&self, defaults: &LogConfig) -> Result<LogConfig, TopicError> {
        let mut c = defaults.clone();
        for (k, v) in &self.configs {
            let bad = |why: String| {
                TopicError::new(
                    ErrorCode::InvalidConfig,
                    format!("topic config {k}={v:?}: {why}"),
                )
            };
            let int = || {
                v.parse::<i64>()
                    .map_err(|e| bad(format!("not an integer ({e})")))
            };
            let unsigned = || {
                v.parse::<u64>()
                    .map_err(|e| bad(format!("not a non-negative integer ({e})")))
            };
            match k.as_str() {
                "retention.ms" => c.retention_ms = int()?,
                "retention.bytes" => c.retention_bytes = int()?,
                "segment.bytes" => c.segment_bytes = unsigned()?,
                "segment.ms" => c.segment_ms = unsigned()?,
                "max.message.bytes" => {
                    c.max_message_bytes =
                        u32::try_from(unsigned()?).map_err(|_| bad("too large".into()))?
                }
                "cleanup.policy" if v == "delete" => {}
                "cleanup.policy" => {
                    return Err(bad("only \"delete\" is supported (no compaction)".into()))
                }
                _ => return Err(bad("unknown key".into())),
            }
        }
        c.validate().map_err(|e| {
            TopicError::new(
                ErrorCode::InvalidConfig,
                format!("topic {}: {e}", self.name),
            )
        })?;
        Ok(c)
    }

    /// Every config the topic runs with: overrides, then the broker defaults.
    pub fn effective_configs(&self, defaults: &LogConfig) -> Vec<ConfigEntry> {
        let c = self
            .log_config(defaults)
            .unwrap_or_else(|_| defaults.clone());
        let entry = |k: &str, v: String| ConfigEntry {
            key: k.to_owned(),
            value: v,
        };
        vec![
            entry("retention.ms", c.retention_ms.to_string()),
            entry("retention.bytes", c.retention_bytes.to_string()),
            entry("segment.bytes", c.segment_bytes.to_string()),
            entry("segment.ms", c.segment_ms.to_string()),
            entry("max.message.bytes", c.max_message_bytes.to_string()),
            entry("cleanup.policy", "delete".to_owned()),
        ]
    }
}

/// All topics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicTable {
    pub topics: BTreeMap<String, TopicMeta>,
}

impl TopicTable {
    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn insert(&mut self, meta: TopicMeta) -> Result<(), TopicError> {
        if self.topics.contains_key(&meta.name) {
            return Err(TopicError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic {:?} already exists", meta.name),
            ));
        }
        if self.topics.len() >= TOPICS_MAX {
            return Err(TopicError::new(
                ErrorCode::PolicyViolation,
                format!("the broker holds the most topics it allows ({TOPICS_MAX})"),
            ));
        }
        self.topics.insert(meta.name.clone(), meta);
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicMeta> {
        self.topics.remove(name)
    }
}

fn table_path(data_dir: &Path) -> PathBuf {
    data_dir.join("topics.json")
}

/// Reads the table; a missing file is an empty table.
pub fn load(data_dir: &Path) -> std::io::Result<TopicTable> {
    match std::fs::read(table_path(data_dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", table_path(data_dir).display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TopicTable::default()),
        Err(e) => Err(e),
    }
}

/// Replaces the table durably. Topic changes are rare: blocking file I/O is fine here.
pub fn store(data_dir: &Path, table: &TopicTable) -> std::io::Result<()> {
    let path = table_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(table).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(k: &str, v: &str) -> ConfigEntry {
        ConfigEntry {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn create_validates_names_counts_and_configs() {
        let d = LogConfig::default();
        let ok = TopicMeta::new("soccer", Some(6), None, &[cfg("retention.ms", "1000")], &d)
            .expect("valid");
        assert_eq!(ok.log_config(&d).expect("config").retention_ms, 1000);
        let e = |r: Result<TopicMeta, TopicError>| r.expect_err("refused");
        assert_eq!(
            e(TopicMeta::new("a b", Some(1), None, &[], &d)).code,
            ErrorCode::InvalidTopicName
        );
        assert_eq!(
            e(TopicMeta::new("x", Some(0), None, &[], &d)).code,
            ErrorCode::InvalidPartitions
        );
        assert_eq!(
            e(TopicMeta::new("x", Some(1), Some(3), &[], &d)).code,
            ErrorCode::InvalidReplicationFactor
        );
        let bad = e(TopicMeta::new(
            "x",
            Some(1),
            None,
            &[cfg("retention.mss", "1")],
            &d,
        ));
        assert!(bad.message.contains("retention.mss"), "{}", bad.message);
        let bad = e(TopicMeta::new(
            "x",
            Some(1),
            None,
            &[cfg("max.message.bytes", "1")],
            &d,
        ));
        assert_eq!(bad.code, ErrorCode::InvalidConfig);
        assert_eq!(
            e(TopicMeta::new("__x", Some(1), None, &[], &d)).code,
            ErrorCode::InvalidTopicName
        );
    }

    #[test]
    fn table_survives_a_store_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("empty"), TopicTable::default());
        let mut t = TopicTable::default();
        let d = LogConfig::default();
        t.insert(TopicMeta::new("a", Some(2), None, &[], &d).expect("valid"))
            .expect("insert");
        assert_eq!(
            t.insert(TopicMeta::new("a", Some(2), None, &[], &d).expect("valid"))
                .expect_err("dup")
                .code,
            ErrorCode::TopicAlreadyExists
        );
        store(dir.path(), &t).expect("store");
        assert_eq!(load(dir.path()).expect("load"), t);
    }
}
