//! Domain types shared by several APIs.

use crate::generated as fb;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::wire::{
    code, list, opt_str, opt_text, tables, u32_list, u32s, FbTables, Fbb, Tables,
};

/// A broker's id in the cluster.
pub type NodeId = u32;

/// Known topic configuration keys (Kafka's names). Values travel as strings.
pub mod config_keys {
    pub const RETENTION_MS: &str = "retention.ms";
    pub const RETENTION_BYTES: &str = "retention.bytes";
    pub const SEGMENT_BYTES: &str = "segment.bytes";
    pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
    pub const CLEANUP_POLICY: &str = "cleanup.policy";
    pub const ALL: &[&str] = &[
        RETENTION_MS,
        RETENTION_BYTES,
        SEGMENT_BYTES,
        MAX_MESSAGE_BYTES,
        CLEANUP_POLICY,
    ];
}

/// A topic configuration key and its value, both as text (`retention.ms` = `604800000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
}

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

/// Outcome for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    pub name: String,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

/// Outcome for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

/// Outcomes for the partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionResults {
    pub name: String,
    pub partitions: Vec<PartitionResult>,
}

pub(crate) fn build_configs<'f>(
    fbb: &mut Fbb<'f>,
    configs: &[ConfigEntry],
) -> Result<Tables<'f, fb::ConfigEntry<'f>>, EncodeError> {
    tables(fbb, configs, |fbb, c| {
        let args = fb::ConfigEntryArgs {
            key: Some(fbb.create_string(&c.key)),
            value: Some(fbb.create_string(&c.value)),
        };
        Ok(fb::ConfigEntry::create(fbb, &args))
    })
}

pub(crate) fn parse_configs(
    v: FbTables<'_, fb::ConfigEntry<'_>>,
) -> Result<Vec<ConfigEntry>, ProtocolError> {
    list(v, |c| {
        Ok(ConfigEntry {
            key: c.key().to_owned(),
            value: c.value().to_owned(),
        })
    })
}

pub(crate) fn build_topic_partitions<'f>(
    fbb: &mut Fbb<'f>,
    items: &[TopicPartitions],
) -> Result<Tables<'f, fb::TopicPartitions<'f>>, EncodeError> {
    tables(fbb, items, |fbb, t| {
        let args = fb::TopicPartitionsArgs {
            topic: Some(fbb.create_string(&t.topic)),
            partitions: Some(u32s(fbb, &t.partitions)),
        };
        Ok(fb::TopicPartitions::create(fbb, &args))
    })
}

pub(crate) fn parse_topic_partitions(
    v: FbTables<'_, fb::TopicPartitions<'_>>,
) -> Result<Vec<TopicPartitions>, ProtocolError> {
    list(v, |t| {
        Ok(TopicPartitions {
            topic: t.topic().to_owned(),
            partitions: u32_list(t.partitions()),
        })
    })
}

pub(crate) fn build_topic_results<'f>(
    fbb: &mut Fbb<'f>,
    items: &[TopicResult],
) -> Result<Tables<'f, fb::TopicResult<'f>>, EncodeError> {
    tables(fbb, items, |fbb, t| {
        let args = fb::TopicResultArgs {
            name: Some(fbb.create_string(&t.name)),
            error_code: t.error_code.as_u16(),
            error_message: opt_str(fbb, &t.error_message),
        };
        Ok(fb::TopicResult::create(fbb, &args))
    })
}

pub(crate) fn parse_topic_results(
    v: FbTables<'_, fb::TopicResult<'_>>,
) -> Result<Vec<TopicResult>, ProtocolError> {
    list(v, |t| {
        Ok(TopicResult {
            name: t.name().to_owned(),
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
        })
    })
}

pub(crate) fn build_partition_results<'f>(
    fbb: &mut Fbb<'f>,
    items: &[TopicPartitionResults],
) -> Result<Tables<'f, fb::TopicPartitionResults<'f>>, EncodeError> {
    tables(fbb, items, |fbb, t| {
        let partitions = tables(fbb, &t.partitions, |fbb, p| {
            let args = fb::PartitionResultArgs {
                partition: p.partition,
                error_code: p.error_code.as_u16(),
                error_message: opt_str(fbb, &p.error_message),
            };
            Ok(fb::PartitionResult::create(fbb, &args))
        })?;
        let args = fb::TopicPartitionResultsArgs {
            name: Some(fbb.create_string(&t.name)),
            partitions: Some(partitions),
        };
        Ok(fb::TopicPartitionResults::create(fbb, &args))
    })
}

pub(crate) fn parse_partition_results(
    v: FbTables<'_, fb::TopicPartitionResults<'_>>,
) -> Result<Vec<TopicPartitionResults>, ProtocolError> {
    list(v, |t| {
        Ok(TopicPartitionResults {
            name: t.name().to_owned(),
            partitions: list(t.partitions(), |p| {
                Ok(PartitionResult {
                    partition: p.partition(),
                    error_code: code(p.error_code()),
                    error_message: opt_text(p.error_message()),
                })
            })?,
        })
    })
}
