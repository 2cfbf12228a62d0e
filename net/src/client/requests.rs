//! Request helpers shared by the consumer and the admin client: typed calls, offset
//! lookups (ListOffsets to each partition's leader), committed offsets (OffsetFetch to
//! the group's coordinator).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use cfa_cluster::constants::OFFSETS_TOPIC;
use cfa_cluster::group::offsets_partition_for;

use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::metadata::Cluster;
use crate::client::retry::Backoff;
use crate::client::TopicPartition;
use crate::protocol::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic, NodeId, OffsetFetchRequest,
    OffsetSpec, TopicPartitions,
};

/// Sends `$request` on `$conn` and unpacks the `$api` response; a whole-request failure
/// becomes `ClientError::Broker` with `$context`.
macro_rules! call {
    ($conn:expr, $api:ident, $request:expr, $timeout:expr, $context:expr) => {{
        let conn: &$crate::client::connection::Connection = &$conn;
        match conn.call($crate::protocol::Request::$api($request), $timeout)? {
            $crate::protocol::Response::$api(r) => Ok::<_, ClientError>(r),
            $crate::protocol::Response::Failed(f) => Err(ClientError::Broker {
                context: $context.into(),
                code: f.error_code,
                message: f.error_message,
            }),
            other => Err(conn.unexpected($crate::protocol::ApiKey::$api, &other)),
        }
    }};
}
pub(crate) use call;

/// An offset found by ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// `None` when no batch reaches a timestamp lookup.
    pub offset: Option<u64>,
    pub timestamp_ms: Option<i64>,
}

/// Looks up `spec` for every partition in `tps`, asking each leader for its partitions.
/// Retries partitions whose leader moved (after a metadata refresh) until `deadline`.
pub(crate) fn list_offsets(
    cluster: &Cluster,
    tps: &[TopicPartition],
    spec: OffsetSpec,
    deadline: Instant,
) -> Result<BTreeMap<TopicPartition, ListedOffset>, ClientError> {
    let topics: Vec<String> = tps
        .iter()
        .map(|tp| tp.topic.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    cluster.want_topics(&topics);
    let mut out = BTreeMap::new();
    let mut todo: BTreeSet<TopicPartition> = tps.iter().cloned().collect();
    let config = cluster.config();
    let mut backoff = Backoff::new(config.retry_backoff_ms, config.retry_backoff_max_ms);
    loop {
        let mut last_error = None;
        for (node, group) in by_leader(cluster, &todo, deadline)? {
            match list_on(cluster, node, &group, spec) {
                Ok(found) => {
                    for (tp, result) in found {
                        match result {
                            Ok(listed) => {
                                todo.remove(&tp);
                                out.insert(tp, listed);
                            }
                            Err(e) if e.is_retriable() => last_error = Some(e),
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.is_retriable() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        let Some(err) = last_error else {
            return Ok(out);
        };
        if todo.is_empty() {
            return Ok(out);
        }
        cluster.request_refresh();
        let pause = backoff.next_delay();
        if Instant::now() + pause >= deadline {
            return Err(err);
        }
        std::thread::sleep(pause);
    }
}

/// The partitions of `tps` grouped by leader, waiting for metadata as needed.
fn by_leader(
    cluster: &Cluster,
    tps: &BTreeSet<TopicPartition>,
    deadline: Instant,
) -> Result<BTreeMap<NodeId, Vec<TopicPartition>>, ClientError> {
    let mut groups: BTreeMap<NodeId, Vec<TopicPartition>> = BTreeMap::new();
    for tp in tps {
        let info = cluster.wait_for_topic(&tp.topic, deadline)?;
        if tp.partition >= info.partition_count() {
            return Err(ClientError::UnknownPartition {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                count: info.partition_count(),
            });
        }
        let leader = match info.leader(tp.partition) {
            Some(l) => l,
            None => {
                cluster.refresh()?;
                cluster.leader(tp).ok_or_else(|| ClientError::Broker {
                    context: format!("finding the leader of {tp}"),
                    code: crate::protocol::ErrorCode::LeaderNotAvailable,
                    message: None,
                })?
            }
        };
        groups.entry(leader).or_default().push(tp.clone());
    }
    Ok(groups)
}

type PartitionOutcome = Result<ListedOffset, ClientError>;

fn list_on(
    cluster: &Cluster,
    node: NodeId,
    tps: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<Vec<(TopicPartition, PartitionOutcome)>, ClientError> {
    let conn = cluster.connection_to(node)?;
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for tp in tps {
        topics
            .entry(&tp.topic)
            .or_default()
            .push(ListOffsetsPartition {
                partition: tp.partition,
                spec,
            });
    }
    let request = ListOffsetsRequest {
        topics: topics
            .into_iter()
            .map(|(name, partitions)| ListOffsetsTopic {
                name: name.to_owned(),
                partitions,
            })
            .collect(),
    };
    let response = call!(
        conn,
        ListOffsets,
        request,
        cluster.request_timeout(),
        "ListOffsets"
    )?;
    let mut out = Vec::new();
    for tp in tps {
        let answer = response
            .topics
            .iter()
            .filter(|t| t.name == *tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition == tp.partition);
        let outcome = match answer {
            None => Err(ClientError::Broker {
                context: format!("ListOffsets for {tp}"),
                code: crate::protocol::ErrorCode::Unknown,
                message: Some("the response does not mention the partition".into()),
            }),
            Some(p) => match ClientError::from_code(
                format!("ListOffsets for {tp}"),
                p.error_code,
                p.error_message.clone(),
            ) {
                Some(e) => Err(e),
                None => Ok(ListedOffset {
                    offset: p.offset,
                    timestamp_ms: p.timestamp_ms,
                }),
            },
        };
        out.push((tp.clone(), outcome));
    }
    Ok(out)
}

/// The address of `group_id`'s coordinator: the leader of its `__consumer_offsets`
/// partition when metadata lists that topic (Kafka's placement), else any broker.
pub(crate) fn coordinator_addr(cluster: &Cluster, group_id: &str) -> Result<String, ClientError> {
    let offsets = cluster
        .fetch_metadata(Some(vec![OFFSETS_TOPIC.to_owned()]))
        .ok()
        .and_then(|m| m.topics.into_iter().find(|t| t.name == OFFSETS_TOPIC))
        .filter(|t| !t.error_code.is_error() && !t.partitions.is_empty());
    if let Some(topic) = offsets {
        let partition = offsets_partition_for(group_id, topic.partitions.len() as u32);
        let leader = topic
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .and_then(|p| p.leader_id);
        if let Some(addr) = leader.and_then(|node| cluster.broker_addr(node)) {
            return Ok(addr);
        }
    }
    Ok(cluster.any_connection()?.addr().to_string())
}

/// The (shared) connection to `group_id`'s coordinator.
pub(crate) fn coordinator_connection(
    cluster: &Cluster,
    group_id: &str,
) -> Result<Connection, ClientError> {
    let addr = coordinator_addr(cluster, group_id)?;
    cluster.connection_at(&addr)
}

/// Committed offsets of `group_id` for `tps` (`None`: every partition it committed).
/// Partitions without a commit are absent from the result.
pub(crate) fn offset_fetch(
    conn: &Connection,
    cluster: &Cluster,
    group_id: &str,
    tps: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, u64>, ClientError> {
    let topics = tps.map(|tps| {
        let mut by_topic: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
            .into_iter()
            .map(|(topic, partitions)| TopicPartitions {
                topic: topic.to_owned(),
                partitions,
            })
            .collect()
    });
    let request = OffsetFetchRequest {
        group_id: group_id.to_owned(),
        topics,
    };
    let context = format!("OffsetFetch for group '{group_id}'");
    let r = call!(
        conn,
        OffsetFetch,
        request,
        cluster.request_timeout(),
        context.clone()
    )?;
    if let Some(e) = ClientError::from_code(context.clone(), r.error_code, r.error_message) {
        return Err(e);
    }
    let mut out = BTreeMap::new();
    for t in r.topics {
        for p in t.partitions {
            let tp = TopicPartition::new(&t.name, p.partition);
            if let Some(e) =
                ClientError::from_code(format!("{context}, {tp}"), p.error_code, p.error_message)
            {
                return Err(e);
            }
            if let Some(offset) = p.offset {
                out.insert(tp, offset);
            }
        }
    }
    Ok(out)
}
