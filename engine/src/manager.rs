//! The registry of every partition log under one data directory (one shard's share).
//!
//! A partition lives in `<data_dir>/<topic>-<partition>/`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::clock::ClockRef;
use crate::config::LogConfig;
use crate::error::{LogError, LogResult};
use crate::log::PartitionLog;
use crate::storage::Storage;

/// Longest topic name (as Kafka: 249 characters).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId {
    pub topic: String,
    pub partition: u32,
}

impl PartitionId {
    pub fn new(topic: &str, partition: u32) -> Self {
        PartitionId {
            topic: topic.to_owned(),
            partition,
        }
    }

    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name `topic-N`; `None` for anything else.
    pub fn parse_dir_name(name: &str) -> Option<PartitionId> {
        let (topic, p) = name.rsplit_once('-')?;
        validate_topic_name(topic).ok()?;
        let partition: u32 = p.parse().ok()?;
        (p == partition.to_string()).then(|| PartitionId::new(topic, partition))
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka's rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name must be 1 to {TOPIC_NAME_BYTES_MAX} characters, got {}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} has the illegal character {c:?} (allowed: a-z A-Z 0-9 . _ -)"
        ));
    }
    Ok(())
}

pub struct LogManager<S: Storage> {
    storage: S,
    data_dir: PathBuf,
    clock: ClockRef,
    logs: BTreeMap<PartitionId, Rc<PartitionLog<S>>>,
}

impl<S: Storage> LogManager<S> {
    /// Opens every partition directory under `data_dir`, each with the config
    /// `config_for` gives its topic. Directories that are not partitions are ignored.
    pub async fn open(
        storage: S,
        data_dir: &Path,
        clock: ClockRef,
        config_for: impl Fn(&str) -> LogConfig,
    ) -> LogResult<Self> {
        let name = data_dir.display().to_string();
        storage
            .create_dir_all(data_dir)
            .await
            .map_err(|e| LogError::io(&name, "creating the data directory", e))?;
        let dirs = storage
            .list_subdirs(data_dir)
            .await
            .map_err(|e| LogError::io(&name, "listing the data directory", e))?;
        let mut logs = BTreeMap::new();
        for dir in dirs {
            let Some(id) = PartitionId::parse_dir_name(&dir) else {
                continue;
            };
            let config = config_for(&id.topic);
            let log =
                PartitionLog::open(storage.clone(), &data_dir.join(&dir), config, clock.clone())
                    .await?;
            logs.insert(id, Rc::new(log));
        }
        Ok(LogManager {
            storage,
            data_dir: data_dir.to_owned(),
            clock,
            logs,
        })
    }

    pub fn get(&self, id: &PartitionId) -> Option<Rc<PartitionLog<S>>> {
        self.logs.get(id).cloned()
    }

    pub fn ids(&self) -> impl Iterator<Item = &PartitionId> {
        self.logs.keys()
    }

    pub fn len(&self) -> usize {
        self.logs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    /// Creates (or opens, if it exists) the log of one partition.
    pub async fn create(
        &mut self,
        id: PartitionId,
        config: LogConfig,
    ) -> LogResult<Rc<PartitionLog<S>>> {
        validate_topic_name(&id.topic).map_err(LogError::Config)?;
        if let Some(log) = self.logs.get(&id) {
            return Ok(log.clone());
        }
        let dir = self.data_dir.join(id.dir_name());
        let log = Rc::new(
            PartitionLog::open(self.storage.clone(), &dir, config, self.clock.clone()).await?,
        );
        self.storage.sync_dir(&self.data_dir).await.map_err(|e| {
            LogError::io(
                &self.data_dir.display().to_string(),
                "syncing the data directory",
                e,
            )
        })?;
        self.logs.insert(id, log.clone());
        Ok(log)
    }

    /// Closes and deletes a partition's log and directory.
    pub async fn delete(&mut self, id: &PartitionId) -> LogResult<bool> {
        let Some(log) = self.logs.remove(id) else {
            return Ok(false);
        };
        log.close().await?;
        let dir = self.data_dir.join(id.dir_name());
        let name = dir.display().to_string();
        self.storage
            .remove_dir_all(&dir)
            .await
            .map_err(|e| LogError::io(&name, "deleting a partition", e))?;
        Ok(true)
    }

    /// Runs retention on every log; returns the segments deleted.
    pub async fn enforce_retention(&self) -> LogResult<usize> {
        let mut n = 0;
        for log in self.logs.values() {
            n += log.enforce_retention().await?;
        }
        Ok(n)
    }

    /// Applies the time-based flush policy of every log.
    pub async fn maintain(&self) -> LogResult<()> {
        // All partitions at once: one partition's fdatasync must not delay the others'.
        futures_util::future::try_join_all(self.logs.values().map(|log| log.maintain())).await?;
        Ok(())
    }

    /// Flushes and closes every log.
    pub async fn close(&mut self) -> LogResult<()> {
        for log in std::mem::take(&mut self.logs).into_values() {
            log.close().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("soccer.games_2024-x").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert_eq!(
            PartitionId::parse_dir_name("my-topic-3"),
            Some(PartitionId::new("my-topic", 3))
        );
        assert_eq!(PartitionId::parse_dir_name("topic-03"), None);
        assert_eq!(PartitionId::parse_dir_name("lost+found"), None);
    }
}
