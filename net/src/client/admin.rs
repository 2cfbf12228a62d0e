//! The admin client: topics, groups and offsets, as the CLI's `cfa topic ...` and
//! `cfa group ...` commands need them. Every call is one blocking round trip (two or
//! three for `describe_group`, which adds lag).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::client::error::ClientError;
use crate::client::metadata::{parse_bootstrap, Cluster, ClusterConfig};
use crate::client::requests::{call, coordinator_connection, list_offsets, offset_fetch};
use crate::client::TopicPartition;
use crate::constants::{
    CONNECT_TIMEOUT_MS_DEFAULT, METADATA_MAX_AGE_MS_DEFAULT, REQUEST_TIMEOUT_MS_DEFAULT,
    RETRY_BACKOFF_MAX_MS_DEFAULT, RETRY_BACKOFF_MS_DEFAULT,
};
use crate::protocol::{
    ConfigEntry, CreatableTopic, CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupRequest,
    DescribeTopicRequest, GroupListing, GroupMemberDescription, GroupState, ListGroupsRequest,
    ListTopicsRequest, OffsetSpec, PartitionDescription, TopicListing, TopicResult,
};

pub use crate::client::requests::ListedOffset;

/// Admin client settings.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
}

impl AdminConfig {
    /// Defaults for `bootstrap` (comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> AdminConfig {
        AdminConfig {
            bootstrap: parse_bootstrap(bootstrap),
            client_id: "cfa-admin".to_owned(),
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            retry_backoff_ms: RETRY_BACKOFF_MS_DEFAULT,
            retry_backoff_max_ms: RETRY_BACKOFF_MAX_MS_DEFAULT,
        }
    }
}

/// A topic as DescribeTopic reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: Vec<PartitionDescription>,
    /// Effective configuration.
    pub configs: Vec<ConfigEntry>,
}

/// One partition's committed offset and lag in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: TopicPartition,
    /// `None`: the group committed nothing for it.
    pub committed: Option<u64>,
    /// The log end offset consumers can read to (the high watermark, as Kafka's tools
    /// print it); `None` if the lookup failed.
    pub log_end_offset: Option<u64>,
    /// `log_end_offset - committed` when both are known.
    pub lag: Option<u64>,
}

/// A group as `cfa group describe` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub assignor: Option<String>,
    pub leader_id: Option<String>,
    /// -1 before the first generation.
    pub generation_id: i32,
    pub members: Vec<GroupMemberDescription>,
    /// Every partition the group committed or a member is assigned, in order.
    pub offsets: Vec<PartitionLag>,
}

/// The admin client. Cheap to keep around; connections are opened on first use.
pub struct Admin {
    cluster: Cluster,
}

impl Admin {
    /// An admin client for `bootstrap` (comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> Result<Admin, ClientError> {
        Admin::with_config(AdminConfig::new(bootstrap))
    }

    pub fn with_config(config: AdminConfig) -> Result<Admin, ClientError> {
        let cluster = Cluster::new(ClusterConfig {
            bootstrap: config.bootstrap,
            client_id: config.client_id,
            connect_timeout_ms: config.connect_timeout_ms,
            request_timeout_ms: config.request_timeout_ms,
            retry_backoff_ms: config.retry_backoff_ms,
            retry_backoff_max_ms: config.retry_backoff_max_ms,
            metadata_max_age_ms: METADATA_MAX_AGE_MS_DEFAULT,
            in_flight_max: 1,
        })?;
        Ok(Admin { cluster })
    }

    fn timeout(&self) -> Duration {
        self.cluster.request_timeout()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout()
    }

    /// Creates a topic; `None` takes the broker's default partition count or replication
    /// factor. Returns once the broker answers (the topic exists).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u16>,
        configs: &[ConfigEntry],
    ) -> Result<(), ClientError> {
        let conn = self.cluster.controller_connection()?;
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_owned(),
                partitions,
                replication_factor,
                configs: configs.to_vec(),
            }],
            timeout_ms: timeout_ms(self.timeout()),
        };
        let context = format!("creating topic '{name}'");
        let r = call!(conn, CreateTopics, request, self.timeout(), context.clone())?;
        self.cluster.request_refresh();
        topic_outcome(&r.topics, name, &context)
    }

    pub fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let conn = self.cluster.controller_connection()?;
        let request = DeleteTopicsRequest {
            names: vec![name.to_owned()],
            timeout_ms: timeout_ms(self.timeout()),
        };
        let context = format!("deleting topic '{name}'");
        let r = call!(conn, DeleteTopics, request, self.timeout(), context.clone())?;
        self.cluster.request_refresh();
        topic_outcome(&r.topics, name, &context)
    }

    pub fn list_topics(&self) -> Result<Vec<TopicListing>, ClientError> {
        let conn = self.cluster.any_connection()?;
        let r = call!(
            conn,
            ListTopics,
            ListTopicsRequest {},
            self.timeout(),
            "listing topics"
        )?;
        let mut topics = r.topics;
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        let conn = self.cluster.any_connection()?;
        let request = DescribeTopicRequest {
            name: name.to_owned(),
        };
        let context = format!("describing topic '{name}'");
        let r = call!(
            conn,
            DescribeTopic,
            request,
            self.timeout(),
            context.clone()
        )?;
        if let Some(e) = ClientError::from_code(context, r.error_code, r.error_message) {
            return Err(unknown_topic_error(e, name));
        }
        Ok(TopicDescription {
            name: r.name,
            partitions: r.partitions,
            configs: r.configs,
        })
    }

    pub fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let conn = self.cluster.any_connection()?;
        let r = call!(
            conn,
            ListGroups,
            ListGroupsRequest {},
            self.timeout(),
            "listing groups"
        )?;
        let mut groups = r.groups;
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// Members, assignments, committed offsets and lag of a group.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let conn = coordinator_connection(&self.cluster, group_id)?;
        let request = DescribeGroupRequest {
            group_id: group_id.to_owned(),
        };
        let context = format!("describing group '{group_id}'");
        let r = call!(
            conn,
            DescribeGroup,
            request,
            self.timeout(),
            context.clone()
        )?;
        if let Some(e) = ClientError::from_code(context, r.error_code, r.error_message) {
            return Err(e);
        }
        let committed = offset_fetch(&conn, &self.cluster, group_id, None)?;
        let mut partitions: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
        for m in &r.members {
            for t in &m.assignment {
                for &p in &t.partitions {
                    partitions.insert(TopicPartition::new(&t.topic, p));
                }
            }
        }
        let ends = self.log_end_offsets(&partitions);
        let offsets = partitions
            .into_iter()
            .map(|tp| {
                let committed = committed.get(&tp).copied();
                let log_end_offset = ends.get(&tp).copied();
                let lag = match (log_end_offset, committed) {
                    (Some(end), Some(c)) => Some(end.saturating_sub(c)),
                    _ => None,
                };
                PartitionLag {
                    partition: tp,
                    committed,
                    log_end_offset,
                    lag,
                }
            })
            .collect();
        Ok(GroupDescription {
            group_id: r.group_id,
            state: r.state,
            assignor: r.assignor,
            leader_id: r.leader_id,
            generation_id: r.generation_id,
            members: r.members,
            offsets,
        })
    }

    /// Log end offsets, per topic; a topic whose lookup fails (deleted since the commit)
    /// is left out rather than failing the whole description.
    fn log_end_offsets(&self, tps: &BTreeSet<TopicPartition>) -> BTreeMap<TopicPartition, u64> {
        let mut by_topic: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp.clone());
        }
        let mut out = BTreeMap::new();
        for group in by_topic.into_values() {
            if let Ok(found) =
                list_offsets(&self.cluster, &group, OffsetSpec::Latest, self.deadline())
            {
                out.extend(
                    found
                        .into_iter()
                        .filter_map(|(tp, l)| Some((tp, l.offset?))),
                );
            }
        }
        out
    }

    /// The offset `spec` names in every partition of `topic`, in partition order.
    pub fn list_offsets(
        &self,
        topic: &str,
        spec: OffsetSpec,
    ) -> Result<Vec<(u32, ListedOffset)>, ClientError> {
        let info = self.cluster.wait_for_topic(topic, self.deadline())?;
        let tps: Vec<TopicPartition> = (0..info.partition_count())
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        let found = list_offsets(&self.cluster, &tps, spec, self.deadline())?;
        Ok(found.into_iter().map(|(tp, l)| (tp.partition, l)).collect())
    }

    /// The group's committed offsets (every partition it committed).
    pub fn committed_offsets(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<TopicPartition, u64>, ClientError> {
        let conn = coordinator_connection(&self.cluster, group_id)?;
        offset_fetch(&conn, &self.cluster, group_id, None)
    }
}

fn timeout_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The outcome for `name` in a per-topic result list.
fn topic_outcome(results: &[TopicResult], name: &str, context: &str) -> Result<(), ClientError> {
    let Some(r) = results.iter().find(|r| r.name == name) else {
        return Err(ClientError::Broker {
            context: context.to_owned(),
            code: crate::protocol::ErrorCode::Unknown,
            message: Some("the response does not mention the topic".into()),
        });
    };
    match ClientError::from_code(context, r.error_code, r.error_message.clone()) {
        Some(e) => Err(unknown_topic_error(e, name)),
        None => Ok(()),
    }
}

/// UnknownTopic reads better as its own variant ("unknown topic 'x'").
fn unknown_topic_error(e: ClientError, name: &str) -> ClientError {
    match e {
        ClientError::Broker {
            code: crate::protocol::ErrorCode::UnknownTopic,
            message,
            ..
        } => ClientError::UnknownTopic {
            topic: name.to_owned(),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn result(name: &str, code: ErrorCode, message: Option<&str>) -> TopicResult {
        TopicResult {
            name: name.into(),
            error_code: code,
            error_message: message.map(str::to_owned),
        }
    }

    #[test]
    fn topic_outcomes_keep_the_broker_code_and_message() {
        let ok = [result("a", ErrorCode::None, None)];
        topic_outcome(&ok, "a", "creating topic 'a'").expect("created");
        let exists = [result(
            "a",
            ErrorCode::TopicAlreadyExists,
            Some("topic 'a' exists"),
        )];
        let err = topic_outcome(&exists, "a", "creating topic 'a'").expect_err("exists");
        assert_eq!(err.code(), Some(ErrorCode::TopicAlreadyExists));
        assert_eq!(
            err.to_string(),
            "creating topic 'a': TopicAlreadyExists: topic 'a' exists"
        );
        let unknown = [result("b", ErrorCode::UnknownTopic, None)];
        let err = topic_outcome(&unknown, "b", "deleting topic 'b'").expect_err("unknown");
        assert_eq!(err.to_string(), "unknown topic 'b'");
        let err = topic_outcome(&ok, "c", "creating topic 'c'").expect_err("missing");
        assert!(err.to_string().contains("does not mention"), "{err}");
    }

    #[test]
    fn config_parses_the_bootstrap_list() {
        let c = AdminConfig::new("a:1,b:2");
        assert_eq!(c.bootstrap, vec!["a:1".to_owned(), "b:2".to_owned()]);
        assert!(Admin::with_config(AdminConfig::new("")).is_err());
    }
}
