//! Round trips of every request and response through the wire format: encode, split from
//! a byte stream, decode, compare. Record batches must come back as views of the frame.

mod protocol_support;

use bytes::{Bytes, BytesMut};
use cfa_net::protocol::*;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use protocol_support::*;

/// Encodes, feeds the frame to a splitter in `chunk`-byte pieces, decodes.
fn request_round_trip(request: &Request, request_id: u32, chunk: usize) -> DecodedRequest {
    let out = encode_request(request_id, 0, request).expect("encodes");
    assert_eq!(out.len(), out.to_bytes().len());
    let frame = split_one(&out.to_bytes(), chunk);
    let decoded = decode_request(frame.clone()).expect("decodes");
    assert_batches_point_into(&frame, &request_batches(&decoded.request));
    decoded
}

fn response_round_trip(response: &Response, request_id: u32, chunk: usize) -> DecodedResponse {
    let out = encode_response(request_id, 0, response).expect("encodes");
    let frame = split_one(&out.to_bytes(), chunk);
    let decoded = decode_response(frame.clone()).expect("decodes");
    assert_batches_point_into(&frame, &response_batches(&decoded.response));
    decoded
}

fn split_one(wire: &[u8], chunk: usize) -> Bytes {
    let mut splitter = FrameSplitter::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        assert!(splitter.bytes_needed(&buf) > 0);
        buf.extend_from_slice(piece);
        while let Some(f) = splitter.next_frame(&mut buf).expect("valid stream") {
            frames.push(f);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(frames.len(), 1);
    frames.pop().expect("one frame")
}

/// Runs 64 generated cases of one message type through `round_trip_one`.
fn check<T: std::fmt::Debug>(strategy: BoxedStrategy<T>, wrap: fn(T) -> Message) {
    let mut runner = TestRunner::new(ProptestConfig::with_cases(64));
    let cases = (strategy, any::<u32>(), 1usize..200);
    let result = runner.run(&cases, |(value, id, chunk)| {
        round_trip_one(wrap(value), id, chunk);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

macro_rules! round_trips {
    ($($name:ident => $wrap:expr;)*) => {
        $(
            #[test]
            fn $name() {
                // The test shares its name with the strategy; the path picks the strategy.
                check(protocol_support::$name(), $wrap);
            }
        )*
    };
}

enum Message {
    Request(Request),
    Response(Response),
}

fn round_trip_one(m: Message, id: u32, chunk: usize) {
    match m {
        Message::Request(r) => {
            let d = request_round_trip(&r, id, chunk);
            assert_eq!(d.request_id, id);
            assert_eq!(d.request, r);
        }
        Message::Response(r) => {
            let d = response_round_trip(&r, id, chunk);
            assert_eq!(d.request_id, id);
            assert_eq!(d.response, r);
        }
    }
}

fn req<T: Into<Request>>(t: T) -> Message {
    Message::Request(t.into())
}

fn resp<T: Into<Response>>(t: T) -> Message {
    Message::Response(t.into())
}

fn failed(f: FailedResponse) -> Message {
    Message::Response(Response::Failed(f))
}

round_trips! {
    api_versions_request => req;
    api_versions_response => resp;
    metadata_request => req;
    metadata_response => resp;
    create_topics_request => req;
    create_topics_response => resp;
    delete_topics_request => req;
    delete_topics_response => resp;
    list_topics_request => req;
    list_topics_response => resp;
    describe_topic_request => req;
    describe_topic_response => resp;
    produce_request => req;
    produce_response => resp;
    fetch_request => req;
    fetch_response => resp;
    list_offsets_request => req;
    list_offsets_response => resp;
    init_producer_id_request => req;
    init_producer_id_response => resp;
    join_group_request => req;
    join_group_response => resp;
    sync_group_request => req;
    sync_group_response => resp;
    heartbeat_request => req;
    heartbeat_response => resp;
    leave_group_request => req;
    leave_group_response => resp;
    offset_commit_request => req;
    offset_commit_response => resp;
    offset_fetch_request => req;
    offset_fetch_response => resp;
    list_groups_request => req;
    list_groups_response => resp;
    describe_group_request => req;
    describe_group_response => resp;
    failed_response => failed;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Many frames back to back in one stream, cut at arbitrary points, come out in order.
    #[test]
    fn streams_of_frames_split_in_order(
        requests in proptest::collection::vec(any_request(), 1..8),
        cuts in proptest::collection::vec(1usize..64, 1..32),
    ) {
        let mut wire = Vec::new();
        let mut encoder = Encoder::new();
        for (id, r) in requests.iter().enumerate() {
            wire.extend_from_slice(&encoder.request(id as u32, 0, r).expect("encodes").to_bytes());
        }
        let mut splitter = FrameSplitter::new();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = splitter.next_frame(&mut buf).expect("valid") {
                decoded.push(decode_request(f).expect("decodes"));
            }
        }
        prop_assert_eq!(decoded.len(), requests.len());
        for (id, (d, r)) in decoded.iter().zip(&requests).enumerate() {
            prop_assert_eq!(d.request_id, id as u32);
            prop_assert_eq!(&d.request, r);
        }
    }
}

fn batch(len: usize, fill: u8) -> Bytes {
    Bytes::from(vec![fill; len])
}

/// The zero-copy contract on both sides: the encoder hands out the caller's `Bytes`
/// (same memory), the decoder hands out slices of the received frame.
#[test]
fn produce_batches_are_neither_copied_nor_reencoded() {
    let batches = vec![batch(1000, 1), batch(3, 2), batch(70_000, 3)];
    let request = ProduceRequest {
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "soccer".into(),
            partitions: vec![
                ProducePartition {
                    partition: 0,
                    batches: batches[..2].to_vec(),
                },
                ProducePartition {
                    partition: 5,
                    batches: batches[2..].to_vec(),
                },
            ],
        }],
    };
    let out = encode_request(1, 0, &request.clone().into()).expect("encodes");
    assert_eq!(out.payload.len(), 3);
    for (sent, given) in out.payload.iter().zip(&batches) {
        assert_eq!(sent.as_ptr(), given.as_ptr(), "encoder copied a batch");
    }
    assert!(out.head.len() < 200, "batches leaked into the head");
    let frame = out.to_bytes();
    let decoded = decode_request(frame.clone()).expect("decodes");
    assert_eq!(decoded.request, Request::Produce(request));
    let got = request_batches(&decoded.request);
    assert_batches_point_into(&frame, &got);
    assert_eq!(
        got[2].as_ptr() as usize,
        frame.as_ptr() as usize + frame.len() - 70_000
    );
}

#[test]
fn fetch_batches_point_into_the_frame() {
    let response = FetchResponse {
        throttle_time_ms: 0,
        topics: vec![FetchTopicResponse {
            name: "t".into(),
            partitions: vec![
                FetchPartitionResponse {
                    partition: 0,
                    error_code: ErrorCode::None,
                    error_message: None,
                    high_watermark: 10,
                    log_start_offset: 0,
                    batches: vec![batch(64, 7), batch(128, 8)],
                },
                FetchPartitionResponse {
                    partition: 1,
                    error_code: ErrorCode::OffsetOutOfRange,
                    error_message: Some("offset 99 is out of range: the log holds [0, 10)".into()),
                    high_watermark: 10,
                    log_start_offset: 0,
                    batches: vec![],
                },
            ],
        }],
    };
    let frame = encode_response(9, 0, &response.clone().into())
        .expect("encodes")
        .to_bytes();
    let decoded = decode_response(frame.clone()).expect("decodes");
    assert_eq!(decoded.response, Response::Fetch(response));
    let got = response_batches(&decoded.response);
    assert_eq!(got.len(), 2);
    assert_batches_point_into(&frame, &got);
}

/// A real record batch from the engine travels unchanged and still validates.
#[test]
fn engine_batches_survive_the_trip_and_validate() {
    let mut builder = cfa_engine::BatchBuilder::new(1_700_000_000_000);
    builder.push(1_700_000_000_001, Some(b"game-42"), Some(b"goal"), &[]);
    let batch = builder.finish(cfa_engine::ProducerStamp::NONE).freeze();
    let request = ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 1000,
        topics: vec![ProduceTopic {
            name: "soccer".into(),
            partitions: vec![ProducePartition {
                partition: 3,
                batches: vec![batch.clone()],
            }],
        }],
    };
    let frame = encode_request(2, 0, &request.into())
        .expect("encodes")
        .to_bytes();
    let Request::Produce(p) = decode_request(frame).expect("decodes").request else {
        panic!("not a produce request");
    };
    let got = &p.topics[0].partitions[0].batches[0];
    assert_eq!(got, &batch);
    cfa_engine::batch::validate(got, 1 << 20).expect("valid batch");
}

#[test]
fn handshake_negotiates_from_decoded_lists() {
    let request = ApiVersionsRequest {
        client_id: "cfa-cli".into(),
        versions: supported_versions(),
    };
    let frame = encode_request(0, 0, &request.into())
        .expect("encodes")
        .to_bytes();
    let Request::ApiVersions(r) = decode_request(frame).expect("decodes").request else {
        panic!("not ApiVersions");
    };
    let v = negotiate(&supported_versions(), &r.versions, &ApiKey::ALL).expect("self");
    assert_eq!(v.get(ApiKey::Produce), Some(0));
}
