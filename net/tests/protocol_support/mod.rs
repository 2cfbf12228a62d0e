//! proptest strategies for every domain type of the wire protocol, shared by the
//! protocol_* test files. Lists are short (0..4) so that a case stays small while every
//! field, option and nesting level still varies.

#![allow(dead_code)]

use bytes::Bytes;
use cfa_net::protocol::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

pub fn text() -> BoxedStrategy<String> {
    // Any Unicode, including NUL and multi-byte characters: flatbuffers strings must carry
    // them unchanged.
    ".{0,12}".boxed()
}

pub fn msg() -> BoxedStrategy<Option<String>> {
    of(text()).boxed()
}

pub fn code() -> BoxedStrategy<ErrorCode> {
    select(ErrorCode::ALL.to_vec()).boxed()
}

pub fn u32s() -> BoxedStrategy<Vec<u32>> {
    vec(any::<u32>(), 0..4).boxed()
}

pub fn strings() -> BoxedStrategy<Vec<String>> {
    vec(text(), 0..4).boxed()
}

/// A few record batches of arbitrary bytes (the protocol does not look inside them).
pub fn batches() -> BoxedStrategy<Vec<Bytes>> {
    vec(vec(any::<u8>(), 0..48).prop_map(Bytes::from), 0..4).boxed()
}

fn few<T: std::fmt::Debug + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
    vec(s, 0..4).boxed()
}

pub fn version_range() -> BoxedStrategy<ApiVersionRange> {
    (any::<u16>(), any::<u16>(), any::<u16>())
        .prop_map(|(api_key, min_version, max_version)| ApiVersionRange {
            api_key,
            min_version,
            max_version,
        })
        .boxed()
}

pub fn config_entry() -> BoxedStrategy<ConfigEntry> {
    (text(), text())
        .prop_map(|(key, value)| ConfigEntry { key, value })
        .boxed()
}

pub fn topic_partitions() -> BoxedStrategy<TopicPartitions> {
    (text(), u32s())
        .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions })
        .boxed()
}

pub fn topic_result() -> BoxedStrategy<TopicResult> {
    (text(), code(), msg())
        .prop_map(|(name, error_code, error_message)| TopicResult {
            name,
            error_code,
            error_message,
        })
        .boxed()
}

pub fn group_state() -> BoxedStrategy<GroupState> {
    select(vec![
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ])
    .boxed()
}

// ---- handshake ----

pub fn api_versions_request() -> BoxedStrategy<ApiVersionsRequest> {
    (text(), few(version_range()))
        .prop_map(|(client_id, versions)| ApiVersionsRequest {
            client_id,
            versions,
        })
        .boxed()
}

pub fn api_versions_response() -> BoxedStrategy<ApiVersionsResponse> {
    (code(), msg(), few(version_range()))
        .prop_map(
            |(error_code, error_message, versions)| ApiVersionsResponse {
                error_code,
                error_message,
                versions,
            },
        )
        .boxed()
}

// ---- topics ----

pub fn metadata_request() -> BoxedStrategy<MetadataRequest> {
    of(strings())
        .prop_map(|topics| MetadataRequest { topics })
        .boxed()
}

pub fn metadata_response() -> BoxedStrategy<MetadataResponse> {
    let broker = (any::<u32>(), text(), any::<u16>(), vec(any::<u16>(), 0..4))
        .prop_map(|(node_id, host, port, shard_ports)| BrokerInfo {
            node_id,
            host,
            port,
            shard_ports,
        })
        .boxed();
    let partition = (
        any::<u32>(),
        code(),
        msg(),
        of(any::<u32>()),
        any::<u32>(),
        u32s(),
        u32s(),
        of(any::<u16>()),
    )
        .prop_map(|t| PartitionMetadata {
            partition: t.0,
            error_code: t.1,
            error_message: t.2,
            leader_id: t.3,
            leader_epoch: t.4,
            replicas: t.5,
            isr: t.6,
            leader_shard: t.7,
        })
        .boxed();
    let topic = (text(), code(), msg(), few(partition))
        .prop_map(
            |(name, error_code, error_message, partitions)| TopicMetadata {
                name,
                error_code,
                error_message,
                partitions,
            },
        )
        .boxed();
    (few(broker), of(any::<u32>()), few(topic))
        .prop_map(|(brokers, controller_id, topics)| MetadataResponse {
            brokers,
            controller_id,
            topics,
        })
        .boxed()
}

pub fn create_topics_request() -> BoxedStrategy<CreateTopicsRequest> {
    let topic = (
        text(),
        of(any::<u32>()),
        of(any::<u16>()),
        few(config_entry()),
    )
        .prop_map(
            |(name, partitions, replication_factor, configs)| CreatableTopic {
                name,
                partitions,
                replication_factor,
                configs,
            },
        )
        .boxed();
    (few(topic), any::<u32>())
        .prop_map(|(topics, timeout_ms)| CreateTopicsRequest { topics, timeout_ms })
        .boxed()
}

pub fn create_topics_response() -> BoxedStrategy<CreateTopicsResponse> {
    few(topic_result())
        .prop_map(|topics| CreateTopicsResponse { topics })
        .boxed()
}

pub fn delete_topics_request() -> BoxedStrategy<DeleteTopicsRequest> {
    (strings(), any::<u32>())
        .prop_map(|(names, timeout_ms)| DeleteTopicsRequest { names, timeout_ms })
        .boxed()
}

pub fn delete_topics_response() -> BoxedStrategy<DeleteTopicsResponse> {
    few(topic_result())
        .prop_map(|topics| DeleteTopicsResponse { topics })
        .boxed()
}

pub fn list_topics_request() -> BoxedStrategy<ListTopicsRequest> {
    Just(ListTopicsRequest {}).boxed()
}

pub fn list_topics_response() -> BoxedStrategy<ListTopicsResponse> {
    let listing = (text(), any::<u32>(), any::<u16>())
        .prop_map(|(name, partitions, replication_factor)| TopicListing {
            name,
            partitions,
            replication_factor,
        })
        .boxed();
    few(listing)
        .prop_map(|topics| ListTopicsResponse { topics })
        .boxed()
}

pub fn describe_topic_request() -> BoxedStrategy<DescribeTopicRequest> {
    text()
        .prop_map(|name| DescribeTopicRequest { name })
        .boxed()
}

pub fn describe_topic_response() -> BoxedStrategy<DescribeTopicResponse> {
    let partition = (
        (any::<u32>(), code(), msg(), of(any::<u32>()), any::<u32>()),
        (u32s(), u32s(), any::<u64>(), any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |(
                (partition, error_code, error_message, leader_id, leader_epoch),
                (replicas, isr, log_start_offset, log_end_offset, high_watermark),
            )| PartitionDescription {
                partition,
                error_code,
                error_message,
                leader_id,
                leader_epoch,
                replicas,
                isr,
                log_start_offset,
                log_end_offset,
                high_watermark,
            },
        )
        .boxed();
    (text(), code(), msg(), few(partition), few(config_entry()))
        .prop_map(
            |(name, error_code, error_message, partitions, configs)| DescribeTopicResponse {
                name,
                error_code,
                error_message,
                partitions,
                configs,
            },
        )
        .boxed()
}

// ---- produce ----

pub fn acks() -> BoxedStrategy<Acks> {
    select(vec![Acks::None, Acks::Leader, Acks::All]).boxed()
}

pub fn produce_request() -> BoxedStrategy<ProduceRequest> {
    let partition = (any::<u32>(), batches())
        .prop_map(|(partition, batches)| ProducePartition { partition, batches })
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| ProduceTopic { name, partitions })
        .boxed();
    (acks(), any::<u32>(), few(topic))
        .prop_map(|(acks, timeout_ms, topics)| ProduceRequest {
            acks,
            timeout_ms,
            topics,
        })
        .boxed()
}

pub fn produce_response() -> BoxedStrategy<ProduceResponse> {
    let partition = (
        any::<u32>(),
        code(),
        msg(),
        any::<u64>(),
        of(any::<i64>()),
        any::<u64>(),
    )
        .prop_map(
            |(
                partition,
                error_code,
                error_message,
                base_offset,
                log_append_time_ms,
                log_start_offset,
            )| ProducePartitionResponse {
                partition,
                error_code,
                error_message,
                base_offset,
                log_append_time_ms,
                log_start_offset,
            },
        )
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| ProduceTopicResponse { name, partitions })
        .boxed();
    (any::<u32>(), few(topic))
        .prop_map(|(throttle_time_ms, topics)| ProduceResponse {
            throttle_time_ms,
            topics,
        })
        .boxed()
}

pub fn init_producer_id_request() -> BoxedStrategy<InitProducerIdRequest> {
    of((any::<i64>(), any::<i16>()))
        .prop_map(|current| InitProducerIdRequest {
            current: current.map(|(producer_id, producer_epoch)| ProducerIdentity {
                producer_id,
                producer_epoch,
            }),
        })
        .boxed()
}

pub fn init_producer_id_response() -> BoxedStrategy<InitProducerIdResponse> {
    (any::<u32>(), code(), msg(), any::<i64>(), any::<i16>())
        .prop_map(
            |(throttle_time_ms, error_code, error_message, producer_id, producer_epoch)| {
                InitProducerIdResponse {
                    throttle_time_ms,
                    error_code,
                    error_message,
                    producer_id,
                    producer_epoch,
                }
            },
        )
        .boxed()
}

// ---- fetch ----

pub fn fetch_request() -> BoxedStrategy<FetchRequest> {
    let partition = (any::<u32>(), any::<u64>(), any::<u32>())
        .prop_map(
            |(partition, fetch_offset, partition_max_bytes)| FetchPartition {
                partition,
                fetch_offset,
                partition_max_bytes,
            },
        )
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| FetchTopic { name, partitions })
        .boxed();
    (
        of(any::<u32>()),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        few(topic),
    )
        .prop_map(
            |(replica_id, max_wait_ms, min_bytes, max_bytes, topics)| FetchRequest {
                replica_id,
                max_wait_ms,
                min_bytes,
                max_bytes,
                topics,
            },
        )
        .boxed()
}

pub fn fetch_partition_response() -> BoxedStrategy<FetchPartitionResponse> {
    (
        any::<u32>(),
        code(),
        msg(),
        any::<u64>(),
        any::<u64>(),
        batches(),
    )
        .prop_map(
            |(partition, error_code, error_message, high_watermark, log_start_offset, batches)| {
                FetchPartitionResponse {
                    partition,
                    error_code,
                    error_message,
                    high_watermark,
                    log_start_offset,
                    batches,
                }
            },
        )
        .boxed()
}

pub fn fetch_response() -> BoxedStrategy<FetchResponse> {
    let topic = (text(), few(fetch_partition_response()))
        .prop_map(|(name, partitions)| FetchTopicResponse { name, partitions })
        .boxed();
    (any::<u32>(), few(topic))
        .prop_map(|(throttle_time_ms, topics)| FetchResponse {
            throttle_time_ms,
            topics,
        })
        .boxed()
}

pub fn offset_spec() -> BoxedStrategy<OffsetSpec> {
    prop_oneof![
        Just(OffsetSpec::Earliest),
        Just(OffsetSpec::Latest),
        (0..=i64::MAX).prop_map(OffsetSpec::Timestamp),
    ]
    .boxed()
}

pub fn list_offsets_request() -> BoxedStrategy<ListOffsetsRequest> {
    let partition = (any::<u32>(), offset_spec())
        .prop_map(|(partition, spec)| ListOffsetsPartition { partition, spec })
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| ListOffsetsTopic { name, partitions })
        .boxed();
    few(topic)
        .prop_map(|topics| ListOffsetsRequest { topics })
        .boxed()
}

pub fn list_offsets_response() -> BoxedStrategy<ListOffsetsResponse> {
    let partition = (
        any::<u32>(),
        code(),
        msg(),
        of(any::<u64>()),
        of(any::<i64>()),
    )
        .prop_map(
            |(partition, error_code, error_message, offset, timestamp_ms)| {
                ListOffsetsPartitionResponse {
                    partition,
                    error_code,
                    error_message,
                    offset,
                    timestamp_ms,
                }
            },
        )
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| ListOffsetsTopicResponse { name, partitions })
        .boxed();
    few(topic)
        .prop_map(|topics| ListOffsetsResponse { topics })
        .boxed()
}

// ---- groups ----

pub fn join_group_request() -> BoxedStrategy<JoinGroupRequest> {
    (
        (text(), text(), text()),
        (any::<u32>(), any::<u32>(), strings(), strings()),
    )
        .prop_map(
            |(
                (group_id, member_id, client_id),
                (session_timeout_ms, rebalance_timeout_ms, topics, assignors),
            )| JoinGroupRequest {
                group_id,
                member_id,
                client_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                topics,
                assignors,
            },
        )
        .boxed()
}

pub fn join_group_response() -> BoxedStrategy<JoinGroupResponse> {
    let member = (text(), text(), strings())
        .prop_map(|(member_id, client_id, topics)| JoinGroupMember {
            member_id,
            client_id,
            topics,
        })
        .boxed();
    (
        (code(), msg(), any::<i32>()),
        (text(), text(), text(), few(member)),
    )
        .prop_map(
            |(
                (error_code, error_message, generation_id),
                (member_id, leader_id, assignor, members),
            )| JoinGroupResponse {
                error_code,
                error_message,
                generation_id,
                member_id,
                leader_id,
                assignor,
                members,
            },
        )
        .boxed()
}

pub fn sync_group_request() -> BoxedStrategy<SyncGroupRequest> {
    (text(), any::<i32>(), text())
        .prop_map(|(group_id, generation_id, member_id)| SyncGroupRequest {
            group_id,
            generation_id,
            member_id,
        })
        .boxed()
}

pub fn sync_group_response() -> BoxedStrategy<SyncGroupResponse> {
    (code(), msg(), few(topic_partitions()))
        .prop_map(
            |(error_code, error_message, assignment)| SyncGroupResponse {
                error_code,
                error_message,
                assignment,
            },
        )
        .boxed()
}

pub fn heartbeat_request() -> BoxedStrategy<HeartbeatRequest> {
    (text(), any::<i32>(), text())
        .prop_map(|(group_id, generation_id, member_id)| HeartbeatRequest {
            group_id,
            generation_id,
            member_id,
        })
        .boxed()
}

pub fn heartbeat_response() -> BoxedStrategy<HeartbeatResponse> {
    (code(), msg())
        .prop_map(|(error_code, error_message)| HeartbeatResponse {
            error_code,
            error_message,
        })
        .boxed()
}

pub fn leave_group_request() -> BoxedStrategy<LeaveGroupRequest> {
    (text(), text())
        .prop_map(|(group_id, member_id)| LeaveGroupRequest {
            group_id,
            member_id,
        })
        .boxed()
}

pub fn leave_group_response() -> BoxedStrategy<LeaveGroupResponse> {
    (code(), msg())
        .prop_map(|(error_code, error_message)| LeaveGroupResponse {
            error_code,
            error_message,
        })
        .boxed()
}

pub fn offset_commit_request() -> BoxedStrategy<OffsetCommitRequest> {
    let partition = (any::<u32>(), any::<u64>(), any::<i32>(), text())
        .prop_map(
            |(partition, offset, leader_epoch, metadata)| OffsetCommitPartition {
                partition,
                offset,
                leader_epoch,
                metadata,
            },
        )
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| OffsetCommitTopic { name, partitions })
        .boxed();
    (text(), any::<i32>(), text(), few(topic))
        .prop_map(
            |(group_id, generation_id, member_id, topics)| OffsetCommitRequest {
                group_id,
                generation_id,
                member_id,
                topics,
            },
        )
        .boxed()
}

pub fn offset_commit_response() -> BoxedStrategy<OffsetCommitResponse> {
    let partition = (any::<u32>(), code(), msg())
        .prop_map(|(partition, error_code, error_message)| PartitionResult {
            partition,
            error_code,
            error_message,
        })
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| TopicPartitionResults { name, partitions })
        .boxed();
    (code(), msg(), few(topic))
        .prop_map(|(error_code, error_message, topics)| OffsetCommitResponse {
            error_code,
            error_message,
            topics,
        })
        .boxed()
}

pub fn offset_fetch_request() -> BoxedStrategy<OffsetFetchRequest> {
    (text(), of(few(topic_partitions())))
        .prop_map(|(group_id, topics)| OffsetFetchRequest { group_id, topics })
        .boxed()
}

pub fn offset_fetch_response() -> BoxedStrategy<OffsetFetchResponse> {
    let partition = (
        any::<u32>(),
        code(),
        msg(),
        of(any::<u64>()),
        any::<i32>(),
        text(),
    )
        .prop_map(
            |(partition, error_code, error_message, offset, leader_epoch, metadata)| {
                OffsetFetchPartition {
                    partition,
                    error_code,
                    error_message,
                    offset,
                    leader_epoch,
                    metadata,
                }
            },
        )
        .boxed();
    let topic = (text(), few(partition))
        .prop_map(|(name, partitions)| OffsetFetchTopic { name, partitions })
        .boxed();
    (code(), msg(), few(topic))
        .prop_map(|(error_code, error_message, topics)| OffsetFetchResponse {
            error_code,
            error_message,
            topics,
        })
        .boxed()
}

pub fn list_groups_request() -> BoxedStrategy<ListGroupsRequest> {
    Just(ListGroupsRequest {}).boxed()
}

pub fn list_groups_response() -> BoxedStrategy<ListGroupsResponse> {
    let group = (text(), group_state(), any::<u32>())
        .prop_map(|(group_id, state, member_count)| GroupListing {
            group_id,
            state,
            member_count,
        })
        .boxed();
    few(group)
        .prop_map(|groups| ListGroupsResponse { groups })
        .boxed()
}

pub fn describe_group_request() -> BoxedStrategy<DescribeGroupRequest> {
    text()
        .prop_map(|group_id| DescribeGroupRequest { group_id })
        .boxed()
}

pub fn describe_group_response() -> BoxedStrategy<DescribeGroupResponse> {
    let member = (
        (text(), text(), any::<u32>(), any::<u32>()),
        (strings(), few(topic_partitions())),
    )
        .prop_map(
            |(
                (member_id, client_id, session_timeout_ms, rebalance_timeout_ms),
                (topics, assignment),
            )| GroupMemberDescription {
                member_id,
                client_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                topics,
                assignment,
            },
        )
        .boxed();
    (
        (code(), msg(), text(), group_state()),
        (msg(), msg(), any::<i32>(), few(member)),
    )
        .prop_map(
            |(
                (error_code, error_message, group_id, state),
                (assignor, leader_id, generation_id, members),
            )| DescribeGroupResponse {
                error_code,
                error_message,
                group_id,
                state,
                assignor,
                leader_id,
                generation_id,
                members,
            },
        )
        .boxed()
}

pub fn failed_response() -> BoxedStrategy<FailedResponse> {
    let error = select(ErrorCode::ALL[1..].to_vec());
    (any::<u16>(), error, msg())
        .prop_map(|(api_key, error_code, error_message)| FailedResponse {
            api_key,
            error_code,
            error_message,
        })
        .boxed()
}

// ---- every message ----

pub fn any_request() -> BoxedStrategy<Request> {
    prop_oneof![
        api_versions_request().prop_map(Request::from),
        metadata_request().prop_map(Request::from),
        create_topics_request().prop_map(Request::from),
        delete_topics_request().prop_map(Request::from),
        list_topics_request().prop_map(Request::from),
        describe_topic_request().prop_map(Request::from),
        produce_request().prop_map(Request::from),
        fetch_request().prop_map(Request::from),
        list_offsets_request().prop_map(Request::from),
        init_producer_id_request().prop_map(Request::from),
        join_group_request().prop_map(Request::from),
        sync_group_request().prop_map(Request::from),
        heartbeat_request().prop_map(Request::from),
        leave_group_request().prop_map(Request::from),
        offset_commit_request().prop_map(Request::from),
        offset_fetch_request().prop_map(Request::from),
        list_groups_request().prop_map(Request::from),
        describe_group_request().prop_map(Request::from),
    ]
    .boxed()
}

pub fn any_response() -> BoxedStrategy<Response> {
    prop_oneof![
        api_versions_response().prop_map(Response::from),
        metadata_response().prop_map(Response::from),
        create_topics_response().prop_map(Response::from),
        delete_topics_response().prop_map(Response::from),
        list_topics_response().prop_map(Response::from),
        describe_topic_response().prop_map(Response::from),
        produce_response().prop_map(Response::from),
        fetch_response().prop_map(Response::from),
        list_offsets_response().prop_map(Response::from),
        init_producer_id_response().prop_map(Response::from),
        join_group_response().prop_map(Response::from),
        sync_group_response().prop_map(Response::from),
        heartbeat_response().prop_map(Response::from),
        leave_group_response().prop_map(Response::from),
        offset_commit_response().prop_map(Response::from),
        offset_fetch_response().prop_map(Response::from),
        list_groups_response().prop_map(Response::from),
        describe_group_response().prop_map(Response::from),
        failed_response().prop_map(Response::Failed),
    ]
    .boxed()
}

/// A valid request or response frame, as bytes on the wire.
pub fn any_frame() -> BoxedStrategy<Bytes> {
    prop_oneof![
        (any_request(), any::<u32>()).prop_map(|(r, id)| {
            encode_request(id, 0, &r)
                .expect("small request encodes")
                .to_bytes()
        }),
        (any_response(), any::<u32>()).prop_map(|(r, id)| {
            encode_response(id, 0, &r)
                .expect("small response encodes")
                .to_bytes()
        }),
    ]
    .boxed()
}

/// Every record batch of a decoded request or response, in wire order.
pub fn request_batches(r: &Request) -> Vec<Bytes> {
    match r {
        Request::Produce(p) => p
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.batches.iter().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

pub fn response_batches(r: &Response) -> Vec<Bytes> {
    match r {
        Response::Fetch(f) => f
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.batches.iter().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

/// Asserts each batch is a view into `frame` (no copy), and that together they tile the
/// end of the frame in order.
pub fn assert_batches_point_into(frame: &Bytes, batches: &[Bytes]) {
    let start = frame.as_ptr() as usize;
    let end = start + frame.len();
    let total: usize = batches.iter().map(Bytes::len).sum();
    let mut expected = end - total;
    for b in batches {
        let at = b.as_ptr() as usize;
        if !b.is_empty() {
            assert!(
                at >= start && at + b.len() <= end,
                "batch at {at:#x} (+{}) is outside the frame [{start:#x}, {end:#x})",
                b.len()
            );
            assert_eq!(
                at, expected,
                "batches must follow each other in the payload area"
            );
        }
        expected += b.len();
    }
    assert_eq!(expected, end);
}
