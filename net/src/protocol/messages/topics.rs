//! Cluster and topic administration: Metadata, CreateTopics, DeleteTopics, ListTopics,
//! DescribeTopic.

use crate::generated as fb;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::common::{
    build_configs, build_topic_results, parse_configs, parse_topic_results, ConfigEntry, NodeId,
    TopicResult,
};
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{
    code, list, opt_str, opt_text, string_list, strs, tables, u32_list, u32s, verified_root, Body,
    Fbb, Root,
};

/// Which topics to describe; `None` means every topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    pub topics: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerInfo>,
    pub controller_id: Option<NodeId>,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: NodeId,
    pub host: String,
    pub port: u16,
    /// Each shard's own listener, indexed by shard (on `host`); empty when the broker has
    /// none. A connection there is served by that shard, so the requests for its own
    /// partitions are appended where they were received.
    pub shard_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// `UnknownTopic` for a requested topic that does not exist, for example.
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// `None` while the partition has no leader.
    pub leader_id: Option<NodeId>,
    pub leader_epoch: u32,
    pub replicas: Vec<NodeId>,
    /// The in-sync replicas.
    pub isr: Vec<NodeId>,
    /// The leader's shard that owns the partition (an index into its `shard_ports`).
    pub leader_shard: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    /// How long the broker waits for the topics to be created everywhere.
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopic {
    pub name: String,
    /// `None`: the broker's default.
    pub partitions: Option<u32>,
    /// `None`: the broker's default.
    pub replication_factor: Option<u16>,
    /// Overrides; see [`crate::protocol::config_keys`].
    pub configs: Vec<ConfigEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsResponse {
    pub topics: Vec<TopicResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    pub names: Vec<String>,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicsResponse {
    pub topics: Vec<TopicResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListTopicsRequest {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTopicsResponse {
    pub topics: Vec<TopicListing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTopicRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTopicResponse {
    pub name: String,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub partitions: Vec<PartitionDescription>,
    /// Effective configuration.
    pub configs: Vec<ConfigEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub leader_id: Option<NodeId>,
    pub leader_epoch: u32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub log_start_offset: u64,
    /// The next offset to be written.
    pub log_end_offset: u64,
    pub high_watermark: u64,
}

impl Body for MetadataRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = self.topics.as_ref().map(|t| strs(fbb, t));
        let args = fb::MetadataRequestArgs { topics };
        Ok(fb::MetadataRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::MetadataRequest>(body, "MetadataRequest")?;
        let topics = t.topics().map(|v| string_list(Some(v)));
        Ok(MetadataRequest { topics })
    }
}

impl Body for MetadataResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let brokers = tables(fbb, &self.brokers, |fbb, b| {
            let args = fb::BrokerInfoArgs {
                node_id: b.node_id,
                host: Some(fbb.create_string(&b.host)),
                port: b.port,
                shard_ports: (!b.shard_ports.is_empty()).then(|| fbb.create_vector(&b.shard_ports)),
            };
            Ok(fb::BrokerInfo::create(fbb, &args))
        })?;
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::PartitionMetadataArgs {
                    partition: p.partition,
                    error_code: p.error_code.as_u16(),
                    error_message: opt_str(fbb, &p.error_message),
                    leader_id: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: Some(u32s(fbb, &p.replicas)),
                    isr: Some(u32s(fbb, &p.isr)),
                    leader_shard: p.leader_shard,
                };
                Ok(fb::PartitionMetadata::create(fbb, &args))
            })?;
            let args = fb::TopicMetadataArgs {
                name: Some(fbb.create_string(&t.name)),
                error_code: t.error_code.as_u16(),
                error_message: opt_str(fbb, &t.error_message),
                partitions: Some(partitions),
            };
            Ok(fb::TopicMetadata::create(fbb, &args))
        })?;
        let args = fb::MetadataResponseArgs {
            brokers: Some(brokers),
            controller_id: self.controller_id,
            topics: Some(topics),
        };
        Ok(fb::MetadataResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::MetadataResponse>(body, "MetadataResponse")?;
        let brokers = list(t.brokers(), |b| {
            Ok(BrokerInfo {
                node_id: b.node_id(),
                host: b.host().to_owned(),
                port: b.port(),
                shard_ports: b
                    .shard_ports()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default(),
            })
        })?;
        let topics = list(t.topics(), |t| {
            Ok(TopicMetadata {
                name: t.name().to_owned(),
                error_code: code(t.error_code()),
                error_message: opt_text(t.error_message()),
                partitions: list(t.partitions(), |p| {
                    Ok(PartitionMetadata {
                        partition: p.partition(),
                        error_code: code(p.error_code()),
                        error_message: opt_text(p.error_message()),
                        leader_id: p.leader_id(),
                        leader_epoch: p.leader_epoch(),
                        replicas: u32_list(p.replicas()),
                        isr: u32_list(p.isr()),
                        leader_shard: p.leader_shard(),
                    })
                })?,
            })
        })?;
        Ok(MetadataResponse {
            brokers,
            controller_id: t.controller_id(),
            topics,
        })
    }
}

impl Body for CreateTopicsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let configs = build_configs(fbb, &t.configs)?;
            let args = fb::CreatableTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                configs: Some(configs),
            };
            Ok(fb::CreatableTopic::create(fbb, &args))
        })?;
        let args = fb::CreateTopicsRequestArgs {
            topics: Some(topics),
            timeout_ms: self.timeout_ms,
        };
        Ok(fb::CreateTopicsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::CreateTopicsRequest>(body, "CreateTopicsRequest")?;
        let topics = list(t.topics(), |t| {
            Ok(CreatableTopic {
                name: t.name().to_owned(),
                partitions: t.partitions(),
                replication_factor: t.replication_factor(),
                configs: parse_configs(t.configs())?,
            })
        })?;
        Ok(CreateTopicsRequest {
            topics,
            timeout_ms: t.timeout_ms(),
        })
    }
}

impl Body for CreateTopicsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = build_topic_results(fbb, &self.topics)?;
        let args = fb::CreateTopicsResponseArgs {
            topics: Some(topics),
        };
        Ok(fb::CreateTopicsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::CreateTopicsResponse>(body, "CreateTopicsResponse")?;
        Ok(CreateTopicsResponse {
            topics: parse_topic_results(t.topics())?,
        })
    }
}

impl Body for DeleteTopicsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::DeleteTopicsRequestArgs {
            names: Some(strs(fbb, &self.names)),
            timeout_ms: self.timeout_ms,
        };
        Ok(fb::DeleteTopicsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DeleteTopicsRequest>(body, "DeleteTopicsRequest")?;
        Ok(DeleteTopicsRequest {
            names: string_list(t.names()),
            timeout_ms: t.timeout_ms(),
        })
    }
}

impl Body for DeleteTopicsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = build_topic_results(fbb, &self.topics)?;
        let args = fb::DeleteTopicsResponseArgs {
            topics: Some(topics),
        };
        Ok(fb::DeleteTopicsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DeleteTopicsResponse>(body, "DeleteTopicsResponse")?;
        Ok(DeleteTopicsResponse {
            topics: parse_topic_results(t.topics())?,
        })
    }
}

impl Body for ListTopicsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::ListTopicsRequestArgs {};
        Ok(fb::ListTopicsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        verified_root::<fb::ListTopicsRequest>(body, "ListTopicsRequest")?;
        Ok(ListTopicsRequest {})
    }
}

impl Body for ListTopicsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let args = fb::TopicListingArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: t.partitions,
                replication_factor: t.replication_factor,
            };
            Ok(fb::TopicListing::create(fbb, &args))
        })?;
        let args = fb::ListTopicsResponseArgs {
            topics: Some(topics),
        };
        Ok(fb::ListTopicsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ListTopicsResponse>(body, "ListTopicsResponse")?;
        let topics = list(t.topics(), |t| {
            Ok(TopicListing {
                name: t.name().to_owned(),
                partitions: t.partitions(),
                replication_factor: t.replication_factor(),
            })
        })?;
        Ok(ListTopicsResponse { topics })
    }
}

impl Body for DescribeTopicRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::DescribeTopicRequestArgs {
            name: Some(fbb.create_string(&self.name)),
        };
        Ok(fb::DescribeTopicRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DescribeTopicRequest>(body, "DescribeTopicRequest")?;
        Ok(DescribeTopicRequest {
            name: t.name().to_owned(),
        })
    }
}

impl Body for DescribeTopicResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let partitions = tables(fbb, &self.partitions, |fbb, p| {
            let args = fb::PartitionDescriptionArgs {
                partition: p.partition,
                error_code: p.error_code.as_u16(),
                error_message: opt_str(fbb, &p.error_message),
                leader_id: p.leader_id,
                leader_epoch: p.leader_epoch,
                replicas: Some(u32s(fbb, &p.replicas)),
                isr: Some(u32s(fbb, &p.isr)),
                log_start_offset: p.log_start_offset,
                log_end_offset: p.log_end_offset,
                high_watermark: p.high_watermark,
            };
            Ok(fb::PartitionDescription::create(fbb, &args))
        })?;
        let configs = build_configs(fbb, &self.configs)?;
        let args = fb::DescribeTopicResponseArgs {
            name: Some(fbb.create_string(&self.name)),
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            partitions: Some(partitions),
            configs: Some(configs),
        };
        Ok(fb::DescribeTopicResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DescribeTopicResponse>(body, "DescribeTopicResponse")?;
        let partitions = list(t.partitions(), |p| {
            Ok(PartitionDescription {
                partition: p.partition(),
                error_code: code(p.error_code()),
                error_message: opt_text(p.error_message()),
                leader_id: p.leader_id(),
                leader_epoch: p.leader_epoch(),
                replicas: u32_list(p.replicas()),
                isr: u32_list(p.isr()),
                log_start_offset: p.log_start_offset(),
                log_end_offset: p.log_end_offset(),
                high_watermark: p.high_watermark(),
            })
        })?;
        Ok(DescribeTopicResponse {
            name: t.name().to_owned(),
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            partitions,
            configs: parse_configs(t.configs())?,
        })
    }
}
