//! Requests as the shard that received them serves them: metadata from its own copy of
//! the topic table, partition work routed to the owning shard, admin and group requests
//! to shard 0.

use std::rc::Rc;

use crate::constants::PAYLOAD_BYTES_MAX;
use crate::protocol::{
    supported_versions, ApiVersionsRequest, ApiVersionsResponse, BrokerInfo, DescribeTopicRequest,
    DescribeTopicResponse, ErrorCode, FailedResponse, FetchRequest, FetchResponse,
    FetchTopicResponse, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, ListTopicsResponse, MetadataRequest, MetadataResponse,
    PartitionMetadata, ProducePartitionResponse, ProduceRequest, ProduceResponse,
    ProduceTopicResponse, Request, Response, TopicListing, TopicMetadata,
};
use crate::server::shard::{fetch_error, produce_error, Shard, ShardReply, ShardRequest};

/// A response that is not ready yet (produce acks, fetch waits, group joins).
pub(crate) type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>>>>;

fn unexpected(api: u16, rep: &ShardReply) -> Response {
    Response::Failed(FailedResponse {
        api_key: api,
        error_code: ErrorCode::Unknown,
        error_message: Some(format!("internal: unexpected shard reply {rep:?}")),
    })
}

/// Starts serving `req`. Produce appends happen before this returns (so that requests of
/// one connection append in the order they were sent); the returned future waits for the
/// rest. `None` from it means no response (acks=0).
/// `frame_bytes`: the length of the frame `req` was decoded from (its record batches are
/// slices of it).
pub(crate) async fn dispatch(shard: &Rc<Shard>, req: Request, frame_bytes: usize) -> Pending {
    if shard.shutting_down.get() {
        let api = req.api_key().as_u16();
        return Box::pin(async move {
            Some(Response::Failed(FailedResponse {
                api_key: api,
                error_code: ErrorCode::BrokerShuttingDown,
                error_message: Some("the broker is shutting down".into()),
            }))
        });
    }
    match req {
        Request::Produce(r) => produce(shard, r, frame_bytes).await,
        other => {
            let shard = shard.clone();
            Box::pin(async move { Some(serve(&shard, other).await) })
        }
    }
}

async fn serve(shard: &Rc<Shard>, req: Request) -> Response {
    match req {
        Request::ApiVersions(r) => Response::ApiVersions(api_versions(r)),
        Request::Metadata(r) => Response::Metadata(metadata(shard, r)),
        Request::ListTopics(_) => Response::ListTopics(list_topics(shard)),
        Request::DescribeTopic(r) => Response::DescribeTopic(describe_topic(shard, r).await),
        Request::Fetch(r) => Response::Fetch(fetch(shard, r).await),
        Request::ListOffsets(r) => Response::ListOffsets(list_offsets(shard, r).await),
        Request::Produce(_) => unreachable!("produce is dispatched before"),
        whole => {
            let api = whole.api_key().as_u16();
            match shard.call(0, ShardRequest::Whole(whole)).await {
                ShardReply::Whole(r) => r,
                other => unexpected(api, &other),
            }
        }
    }
}

fn api_versions(_r: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::None,
        error_message: None,
        versions: supported_versions(),
    }
}

fn metadata(shard: &Rc<Shard>, r: MetadataRequest) -> MetadataResponse {
    let node = shard.config.node_id;
    let topics = shard.topics.borrow();
    let names: Vec<String> = match r.topics {
        Some(names) => names,
        None => topics.topics.keys().cloned().collect(),
    };
    let topic_metas = names
        .into_iter()
        .map(|name| match topics.get(&name) {
            Some(meta) => TopicMetadata {
                error_code: ErrorCode::None,
                error_message: None,
                partitions: (0..meta.partitions)
                    .map(|p| PartitionMetadata {
                        partition: p,
                        error_code: ErrorCode::None,
                        error_message: None,
                        leader_id: Some(node),
                        leader_epoch: 0,
                        replicas: vec![node],
                        isr: vec![node],
                        leader_shard: Some(shard_index(shard.owner(&name, p))),
                    })
                    .collect(),
                name,
            },
            None => TopicMetadata {
                error_message: Some(format!("unknown topic {name:?}")),
                name,
                error_code: ErrorCode::UnknownTopic,
                partitions: Vec::new(),
            },
        })
        .collect();
    MetadataResponse {
        brokers: vec![BrokerInfo {
            node_id: node,
            host: shard.advertised.addr.ip().to_string(),
            port: shard.advertised.addr.port(),
            shard_ports: shard.advertised.shard_ports.to_vec(),
        }],
        controller_id: Some(node),
        topics: topic_metas,
    }
}

fn shard_index(shard: usize) -> u16 {
    u16::try_from(shard).expect("SHARDS_MAX fits a u16")
}

fn list_topics(shard: &Rc<Shard>) -> ListTopicsResponse {
    let topics = shard.topics.borrow();
    ListTopicsResponse {
        topics: topics
            .topics
            .values()
            .map(|t| TopicListing {
                name: t.name.clone(),
                partitions: t.partitions,
                replication_factor: t.replication_factor,
            })
            .collect(),
    }
}

async fn describe_topic(shard: &Rc<Shard>, r: DescribeTopicRequest) -> DescribeTopicResponse {
    let meta = shard.topics.borrow().get(&r.name).cloned();
    let Some(meta) = meta else {
        return DescribeTopicResponse {
            error_message: Some(format!("unknown topic {:?}", r.name)),
            name: r.name,
            error_code: ErrorCode::UnknownTopic,
            partitions: Vec::new(),
            configs: Vec::new(),
        };
    };
    let calls = (0..meta.partitions).map(|p| {
        let req = ShardRequest::Describe {
            topic: meta.name.clone(),
            partition: p,
        };
        shard.call(shard.owner(&meta.name, p), req)
    });
    let mut partitions = Vec::with_capacity(meta.partitions as usize);
    for rep in futures_util::future::join_all(calls).await {
        if let ShardReply::Describe(d) = rep {
            partitions.push(d);
        }
    }
    DescribeTopicResponse {
        name: r.name,
        error_code: ErrorCode::None,
        error_message: None,
        partitions,
        configs: meta.effective_configs(&shard.config.log),
    }
}

/// Unknown topic or partition, checked on the receiving shard before routing.
fn check_partition(shard: &Shard, topic: &str, partition: u32) -> Result<(), (ErrorCode, String)> {
    match shard.topics.borrow().get(topic) {
        None => Err((ErrorCode::UnknownTopic, format!("unknown topic {topic:?}"))),
        Some(m) if partition >= m.partitions => Err((
            ErrorCode::UnknownPartition,
            format!(
                "topic {topic:?} has {} partitions; there is no partition {partition}",
                m.partitions
            ),
        )),
        Some(_) => Ok(()),
    }
}

async fn produce(shard: &Rc<Shard>, r: ProduceRequest, frame_bytes: usize) -> Pending {
    let acks = r.acks;
    let mut waits = Vec::new();
    for t in r.topics {
        for p in t.partitions {
            let (topic, partition) = (t.name.clone(), p.partition);
            if let Err((code, msg)) = check_partition(shard, &topic, partition) {
                let resp = produce_error(partition, code, msg);
                waits.push((
                    topic,
                    futures_util::future::Either::Left(async move { resp }),
                ));
                continue;
            }
            let owner = shard.owner(&topic, partition);
            if owner == shard.id {
                // Appended now, in request order; the acks wait goes into the future.
                let appended = shard
                    .produce_append(&topic, partition, &p.batches, frame_bytes)
                    .await;
                let s = shard.clone();
                let fut: std::pin::Pin<
                    Box<dyn std::future::Future<Output = ProducePartitionResponse>>,
                > = Box::pin(async move { s.produce_finish(appended, acks).await });
                waits.push((topic, futures_util::future::Either::Right(fut)));
            } else {
                // Sent now, in request order (the mesh is FIFO and the owner appends inline).
                let s = shard.clone();
                let req = ShardRequest::Produce {
                    topic: topic.clone(),
                    partition,
                    batches: p.batches,
                    frame_bytes,
                    acks,
                };
                let call = s.call_started(owner, req).await;
                let fut: std::pin::Pin<
                    Box<dyn std::future::Future<Output = ProducePartitionResponse>>,
                > = Box::pin(async move {
                    match call.await {
                        ShardReply::Produce(r) => r,
                        other => produce_error(
                            partition,
                            ErrorCode::Unknown,
                            format!("internal: {other:?}"),
                        ),
                    }
                });
                waits.push((topic, futures_util::future::Either::Right(fut)));
            }
        }
    }
    Box::pin(async move {
        // Awaited together: a partition's wait drives its write round, so awaiting them in
        // turn held each partition's write until the ones before it were written.
        let done = futures_util::future::join_all(
            waits
                .into_iter()
                .map(|(topic, w)| async move { (topic, w.await) }),
        )
        .await;
        let mut topics: Vec<ProduceTopicResponse> = Vec::new();
        for (topic, resp) in done {
            match topics.last_mut() {
                Some(t) if t.name == topic => t.partitions.push(resp),
                _ => topics.push(ProduceTopicResponse {
                    name: topic,
                    partitions: vec![resp],
                }),
            }
        }
        (acks != crate::protocol::Acks::None).then_some(Response::Produce(ProduceResponse {
            throttle_time_ms: 0,
            topics,
        }))
    })
}

async fn fetch(shard: &Rc<Shard>, r: FetchRequest) -> FetchResponse {
    let max_total = (r.max_bytes as usize).clamp(1, PAYLOAD_BYTES_MAX);
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(u64::from(r.max_wait_ms));
    loop {
        let (resp, bytes) = fetch_once(shard, &r, max_total).await;
        let errors = resp
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != ErrorCode::None);
        let now = std::time::Instant::now();
        if bytes >= r.min_bytes.max(1) as usize
            || errors
            || now >= deadline
            || shard.shutting_down.get()
        {
            return resp;
        }
        wait_for_data(shard, &r, deadline - now).await;
        if std::time::Instant::now() >= deadline {
            return fetch_once(shard, &r, max_total).await.0;
        }
    }
}

/// One pass over the partitions, each read on its owner, within the byte budgets.
///
/// When every partition's budget fits the request's total (the usual case: 1 MiB per
/// partition against 50 MiB), all reads start at once, so a fetch costs one read's time,
/// not the sum of a cross-shard hop and a read per partition. Otherwise partitions are
/// read one after another and each gets what the ones before it left (Kafka's order).
async fn fetch_once(
    shard: &Rc<Shard>,
    r: &FetchRequest,
    max_total: usize,
) -> (FetchResponse, usize) {
    let budgets_sum = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_max_bytes as usize).max(1))
        .fold(0usize, usize::saturating_add);
    if budgets_sum <= max_total {
        fetch_concurrent(shard, r).await
    } else {
        fetch_sequential(shard, r, max_total).await
    }
}

/// Reads one partition on its owner with `max_bytes`; an unknown partition is an error
/// entry, not a read.
async fn fetch_partition(
    shard: &Rc<Shard>,
    topic: &str,
    partition: u32,
    offset: u64,
    max_bytes: usize,
) -> crate::protocol::FetchPartitionResponse {
    if let Err((code, msg)) = check_partition(shard, topic, partition) {
        return fetch_error(partition, code, msg);
    }
    let req = ShardRequest::Fetch {
        topic: topic.to_owned(),
        partition,
        offset,
        max_bytes,
    };
    match shard.call(shard.owner(topic, partition), req).await {
        ShardReply::Fetch(f) => f,
        other => fetch_error(
            partition,
            ErrorCode::Unknown,
            format!("internal: {other:?}"),
        ),
    }
}

/// Every partition read at once, each within its own budget (they all fit the total).
async fn fetch_concurrent(shard: &Rc<Shard>, r: &FetchRequest) -> (FetchResponse, usize) {
    let reads = r.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| {
            let budget = (p.partition_max_bytes as usize).max(1);
            fetch_partition(shard, &t.name, p.partition, p.fetch_offset, budget)
        })
    });
    let mut parts = futures_util::future::join_all(reads).await.into_iter();
    let mut total = 0usize;
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let partitions: Vec<_> = parts.by_ref().take(t.partitions.len()).collect();
            total += partitions.iter().map(batch_bytes).sum::<usize>();
            FetchTopicResponse {
                name: t.name.clone(),
                partitions,
            }
        })
        .collect();
    assert!(parts.next().is_none(), "one answer per requested partition");
    (response(topics), total)
}

/// Partitions read in order, each within what the ones before it left of the total.
async fn fetch_sequential(
    shard: &Rc<Shard>,
    r: &FetchRequest,
    max_total: usize,
) -> (FetchResponse, usize) {
    let mut total = 0usize;
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            // Kafka: a partition may exceed its budget by one batch (the log returns at
            // least one); once the total is spent, the rest get offsets only.
            let budget = (p.partition_max_bytes as usize)
                .min(max_total.saturating_sub(total))
                .max(1);
            let max_bytes = if total >= max_total { 0 } else { budget };
            let resp =
                fetch_partition(shard, &t.name, p.partition, p.fetch_offset, max_bytes).await;
            total += batch_bytes(&resp);
            parts.push(resp);
        }
        topics.push(FetchTopicResponse {
            name: t.name.clone(),
            partitions: parts,
        });
    }
    (response(topics), total)
}

/// Record-batch bytes in one partition's answer (what the fetch budgets count).
fn batch_bytes(p: &crate::protocol::FetchPartitionResponse) -> usize {
    p.batches.iter().map(|b| b.len()).sum()
}

fn response(topics: Vec<FetchTopicResponse>) -> FetchResponse {
    FetchResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Long polling: waits until a requested partition gets data past its fetch offset.
async fn wait_for_data(shard: &Rc<Shard>, r: &FetchRequest, wait: std::time::Duration) {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<(String, u32, u64)>> =
        Default::default();
    for t in &r.topics {
        for p in &t.partitions {
            by_owner
                .entry(shard.owner(&t.name, p.partition))
                .or_default()
                .push((t.name.clone(), p.partition, p.fetch_offset));
        }
    }
    let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
    let calls: Vec<_> = by_owner
        .into_iter()
        .map(|(owner, parts)| Box::pin(shard.call(owner, ShardRequest::Wait { parts, wait_ms })))
        .collect();
    if !calls.is_empty() {
        futures_util::future::select_all(calls).await;
    }
}

async fn list_offsets(shard: &Rc<Shard>, r: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            if let Err((code, msg)) = check_partition(shard, &t.name, p.partition) {
                parts.push(ListOffsetsPartitionResponse {
                    partition: p.partition,
                    error_code: code,
                    error_message: Some(msg),
                    offset: None,
                    timestamp_ms: None,
                });
                continue;
            }
            let req = ShardRequest::ListOffset {
                topic: t.name.clone(),
                partition: p.partition,
                spec: p.spec,
            };
            if let ShardReply::ListOffset(lo) =
                shard.call(shard.owner(&t.name, p.partition), req).await
            {
                parts.push(lo);
            }
        }
        topics.push(ListOffsetsTopicResponse {
            name: t.name,
            partitions: parts,
        });
    }
    ListOffsetsResponse { topics }
}
