//! Hostile and broken input: garbage, mutated and truncated frames, bad lengths, unknown
//! APIs and versions, invalid flatbuffers, bad payload references. Every case must end in
//! a typed error (or a valid value), never a panic or an unbounded allocation.

mod protocol_support;

use bytes::{Bytes, BytesMut};
use cfa_engine::constants::{MAX_MESSAGE_BYTES_CEILING, MAX_MESSAGE_BYTES_DEFAULT};
use cfa_net::constants::*;
use cfa_net::protocol::*;
use proptest::prelude::*;
use protocol_support::*;

/// Decodes `frame` both ways; whatever decodes must re-encode and decode to the same value.
fn decode_both_ways(frame: &Bytes) {
    if let Ok(d) = decode_request(frame.clone()) {
        let again = encode_request(d.request_id, d.api_version, &d.request)
            .expect("a decoded request re-encodes")
            .to_bytes();
        assert_eq!(
            decode_request(again).expect("re-decodes").request,
            d.request
        );
    }
    if let Ok(d) = decode_response(frame.clone()) {
        let again = encode_response(d.request_id, d.api_version, &d.response)
            .expect("a decoded response re-encodes")
            .to_bytes();
        assert_eq!(
            decode_response(again).expect("re-decodes").response,
            d.response
        );
    }
}

fn set_u16(frame: &mut [u8], at: usize, v: u16) {
    frame[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn set_u32(frame: &mut [u8], at: usize, v: u32) {
    frame[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Header with a consistent length field around `body` and `payload`.
fn raw_frame(api_key: u16, flags: u16, body: &[u8], payload: &[u8]) -> Bytes {
    let mut f = Vec::new();
    let length = (FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES + body.len() + payload.len()) as u32;
    f.extend_from_slice(&length.to_le_bytes());
    f.extend_from_slice(&api_key.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&5u32.to_le_bytes());
    f.extend_from_slice(&flags.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(body);
    f.extend_from_slice(payload);
    Bytes::from(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes through the splitter and every decoder.
    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut splitter = FrameSplitter::new();
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(frame)) = splitter.next_frame(&mut buf) {
            decode_both_ways(&frame);
        }
        decode_both_ways(&Bytes::from(data));
    }

    /// Garbage bodies behind a well-formed header reach the flatbuffer verifier of every
    /// API in both directions.
    #[test]
    fn garbage_bodies_are_verified(
        api in 0u16..20,
        flags in 0u16..2,
        body in proptest::collection::vec(any::<u8>(), 0..256),
        payload in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let frame = raw_frame(api, flags, &body, &payload);
        decode_both_ways(&frame);
        let r = if flags == 0 { decode_request(frame).err() } else { decode_response(frame).err() };
        if let Some(e) = r {
            // Typed, with a code to answer with.
            prop_assert!(e.error_code().is_error());
        }
    }

    /// Valid frames with bytes overwritten anywhere after the length field.
    #[test]
    fn mutated_frames_never_panic(
        frame in any_frame(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut f = frame.to_vec();
        for (at, byte) in edits {
            let i = FRAME_LENGTH_BYTES + at % (f.len() - FRAME_LENGTH_BYTES);
            f[i] = byte;
        }
        decode_both_ways(&Bytes::from(f));
    }

    /// Valid frames cut short anywhere: an error from the decoders, and the splitter waits.
    #[test]
    fn truncated_frames_at_every_length(frame in any_frame()) {
        let mut splitter = FrameSplitter::new();
        for len in 0..frame.len() {
            let cut = frame.slice(..len);
            prop_assert!(decode_request(cut.clone()).is_err());
            prop_assert!(decode_response(cut.clone()).is_err());
            let mut buf = BytesMut::from(&cut[..]);
            prop_assert!(splitter.next_frame(&mut buf).expect("a prefix is not an error").is_none());
            // The same cut with the length field fixed up: still never a panic.
            if len >= FRAME_HEADER_BYTES {
                let mut fixed = cut.to_vec();
                set_u32(&mut fixed, 0, (len - FRAME_LENGTH_BYTES) as u32);
                decode_both_ways(&Bytes::from(fixed));
            }
        }
    }

    /// Any length field above the limit or below the header is refused from its 4 bytes.
    #[test]
    fn out_of_range_length_fields_are_refused(
        length in prop_oneof![
            (FRAME_BYTES_MAX - FRAME_LENGTH_BYTES + 1) as u32..=u32::MAX,
            0u32..(FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES) as u32,
        ],
    ) {
        let mut buf = BytesMut::from(&length.to_le_bytes()[..]);
        let err = FrameSplitter::new().next_frame(&mut buf).expect_err("refused");
        let typed = matches!(
            err,
            ProtocolError::FrameTooLarge { .. } | ProtocolError::FrameTooSmall { .. }
        );
        prop_assert!(typed, "{:?}", err);
        prop_assert_eq!(err.error_code(), ErrorCode::InvalidFrame);
    }
}

fn produce_frame(batches: Vec<Bytes>) -> Vec<u8> {
    let request = ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 100,
        topics: vec![ProduceTopic {
            name: "t".into(),
            partitions: vec![ProducePartition {
                partition: 0,
                batches,
            }],
        }],
    };
    encode_request(3, 0, &request.into())
        .expect("encodes")
        .to_bytes()
        .to_vec()
}

#[test]
fn length_field_of_two_to_the_31_is_an_error_not_an_allocation() {
    let mut wire = produce_frame(vec![Bytes::from_static(b"abc")]);
    set_u32(&mut wire, 0, 1 << 31);
    let mut buf = BytesMut::from(&wire[..]);
    let cap = buf.capacity();
    let err = FrameSplitter::new()
        .next_frame(&mut buf)
        .expect_err("refused");
    assert!(matches!(err, ProtocolError::FrameTooLarge { length, .. } if length == 1 << 31));
    assert_eq!(
        buf.capacity(),
        cap,
        "nothing was reserved for the bogus frame"
    );
    assert!(decode_request(Bytes::from(wire)).is_err());
}

#[test]
fn unknown_api_key_is_typed_and_answered() {
    let mut wire = produce_frame(vec![]);
    set_u16(&mut wire, 4, 999);
    let err = decode_request(Bytes::from(wire.clone())).expect_err("unknown");
    assert_eq!(err, ProtocolError::UnknownApi(999));
    assert_eq!(err.error_code(), ErrorCode::UnknownApi);
    let reply = Encoder::new()
        .failure_reply(&wire, &err)
        .expect("header readable");
    let d = decode_response(reply.to_bytes()).expect("client decodes the failure");
    assert_eq!(d.request_id, 3);
    let Response::Failed(f) = d.response else {
        panic!("expected a failure, got {:?}", d.response);
    };
    assert_eq!((f.api_key, f.error_code), (999, ErrorCode::UnknownApi));
    assert!(f.error_message.expect("message").contains("999"));
}

#[test]
fn unsupported_version_is_typed_and_answered() {
    let mut wire = produce_frame(vec![]);
    set_u16(&mut wire, 6, 7);
    let err = decode_request(Bytes::from(wire.clone())).expect_err("unsupported");
    assert!(matches!(
        err,
        ProtocolError::UnsupportedVersion {
            api: ApiKey::Produce,
            version: 7,
            ..
        }
    ));
    assert_eq!(err.error_code(), ErrorCode::UnsupportedVersion);
    let reply = Encoder::new().failure_reply(&wire, &err).expect("answer");
    let d = decode_response(reply.to_bytes()).expect("decodes");
    assert!(matches!(
        d.response,
        Response::Failed(FailedResponse {
            error_code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
    // Encoding an unsupported version is refused too.
    let r = encode_request(1, 7, &ListTopicsRequest {}.into());
    assert!(matches!(r, Err(EncodeError::UnsupportedVersion { .. })));
}

#[test]
fn unsupported_api_versions_version_gets_the_frozen_v0_answer() {
    let request = ApiVersionsRequest {
        client_id: "future-client".into(),
        versions: vec![],
    };
    let mut wire = encode_request(11, 0, &request.into())
        .expect("encodes")
        .to_bytes()
        .to_vec();
    set_u16(&mut wire, 6, 3);
    let err = decode_request(Bytes::from(wire.clone())).expect_err("v3 unknown");
    let reply = Encoder::new().failure_reply(&wire, &err).expect("answer");
    let d = decode_response(reply.to_bytes()).expect("decodes");
    assert_eq!((d.request_id, d.api_version), (11, 0));
    let Response::ApiVersions(v) = d.response else {
        panic!("expected ApiVersions, got {:?}", d.response);
    };
    assert_eq!(v.error_code, ErrorCode::UnsupportedVersion);
    assert_eq!(v.versions, supported_versions());
}

#[test]
fn invalid_flatbuffers_are_typed_errors() {
    for body in [&[][..], &[0xff; 8][..], &[100, 0, 0, 0, 0, 0, 0, 0][..]] {
        let frame = raw_frame(ApiKey::Metadata.as_u16(), 0, body, &[]);
        let err = decode_request(frame).expect_err("invalid");
        assert!(
            matches!(
                err,
                ProtocolError::InvalidFlatbuffer {
                    what: "MetadataRequest",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.error_code(), ErrorCode::InvalidFrame);
    }
}

#[test]
fn a_missing_required_field_is_refused_by_the_verifier() {
    // A DescribeTopicRequest is a table whose only field, the name, is required. This one
    // is an empty table: root offset 8, vtable at 4 (size 4, table size 4), table at 8
    // pointing back to its vtable.
    let body = [8, 0, 0, 0, 4, 0, 4, 0, 4, 0, 0, 0];
    let frame = raw_frame(ApiKey::DescribeTopic.as_u16(), 0, &body, &[]);
    let err = decode_request(frame).expect_err("name missing");
    let ProtocolError::InvalidFlatbuffer { source, .. } = &err else {
        panic!("expected an invalid flatbuffer, got {err:?}");
    };
    assert!(source.to_string().contains("name"), "{source}");
}

#[test]
fn wrong_direction_and_reserved_bits_are_refused() {
    let wire = produce_frame(vec![]);
    let err = decode_response(Bytes::from(wire.clone())).expect_err("a request");
    assert!(matches!(err, ProtocolError::WrongDirection { .. }));
    let mut flagged = wire.clone();
    set_u16(&mut flagged, 12, 0x8000);
    let err = decode_request(Bytes::from(flagged)).expect_err("reserved bit");
    assert_eq!(err, ProtocolError::ReservedFlags(0x8000));
    let mut with_error = wire;
    set_u16(&mut with_error, 14, 6);
    let err = decode_request(Bytes::from(with_error)).expect_err("error in request");
    assert_eq!(err, ProtocolError::ErrorInRequest(6));
    let r = encode_response(
        1,
        0,
        &Response::Failed(FailedResponse {
            api_key: 0,
            error_code: ErrorCode::None,
            error_message: None,
        }),
    );
    assert!(matches!(r, Err(EncodeError::InvalidValue { .. })));
}

/// Finds the PayloadRef (offset, length) in the body: the batch lengths are distinctive.
fn find_ref(wire: &[u8], offset: u32, length: u32) -> usize {
    let mut pattern = offset.to_le_bytes().to_vec();
    pattern.extend_from_slice(&length.to_le_bytes());
    wire.windows(8)
        .position(|w| w == pattern)
        .expect("payload reference present")
}

#[test]
fn payload_references_out_of_range_overlapping_or_leaving_gaps_are_refused() {
    let (a, b) = (0x0135usize, 0x0246usize);
    let wire = produce_frame(vec![Bytes::from(vec![1; a]), Bytes::from(vec![2; b])]);
    decode_request(Bytes::from(wire.clone())).expect("valid as built");
    let second = find_ref(&wire, a as u32, b as u32);

    // Overlap: the second batch claims to start inside the first.
    let mut overlap = wire.clone();
    set_u32(&mut overlap, second, 0x10);
    let err = decode_request(Bytes::from(overlap)).expect_err("overlap");
    assert!(
        matches!(err, ProtocolError::PayloadNotContiguous { offset: 0x10, expected } if expected == a)
    );

    // Out of range: the second batch runs past the payload area.
    let mut past = wire.clone();
    set_u32(&mut past, second + 4, b as u32 + 1);
    let err = decode_request(Bytes::from(past)).expect_err("past the end");
    assert!(matches!(err, ProtocolError::PayloadOutOfRange { .. }));
    let mut huge = wire.clone();
    set_u32(&mut huge, second + 4, u32::MAX);
    assert!(matches!(
        decode_request(Bytes::from(huge)),
        Err(ProtocolError::PayloadOutOfRange { .. })
    ));

    // Gap: the second batch is shorter, leaving unreferenced bytes behind it.
    let mut short = wire.clone();
    set_u32(&mut short, second + 4, b as u32 - 1);
    let err = decode_request(Bytes::from(short)).expect_err("unreferenced tail");
    assert!(matches!(
        err,
        ProtocolError::PayloadUnreferenced { unused: 1, .. }
    ));

    // Payload area one byte shorter than the references (length field fixed up).
    let mut cut = wire[..wire.len() - 1].to_vec();
    let len = cut.len() - FRAME_LENGTH_BYTES;
    set_u32(&mut cut, 0, len as u32);
    assert!(matches!(
        decode_request(Bytes::from(cut)),
        Err(ProtocolError::PayloadOutOfRange { .. })
    ));
}

#[test]
fn body_length_past_the_frame_or_the_limit_is_refused() {
    let mut wire = produce_frame(vec![]);
    let body = u32::from_le_bytes([wire[16], wire[17], wire[18], wire[19]]);
    set_u32(&mut wire, 16, body + 1);
    assert!(matches!(
        decode_request(Bytes::from(wire.clone())),
        Err(ProtocolError::BodyOutOfRange { .. })
    ));
    set_u32(&mut wire, 16, (BODY_BYTES_MAX + 1) as u32);
    assert!(matches!(
        decode_request(Bytes::from(wire)),
        Err(ProtocolError::BodyTooLarge { .. })
    ));
}

#[test]
fn constants_are_sane() {
    let ceiling = MAX_MESSAGE_BYTES_CEILING as usize;
    assert!(FRAME_BYTES_MAX > ceiling + FRAME_HEADER_BYTES + BODY_BYTES_MAX);
    assert!(
        PAYLOAD_BYTES_MAX >= ceiling,
        "one max-size batch fits a frame"
    );
    assert!(PAYLOAD_BYTES_MAX >= 16 * MAX_MESSAGE_BYTES_DEFAULT as usize);
    // Checked at compile time: a violation fails the build of this test.
    const {
        assert!(FRAME_BYTES_MIN >= FRAME_HEADER_BYTES);
        assert!(FRAME_BYTES_MAX < 1 << 31);
        assert!(BODY_BYTES_MAX < FRAME_BYTES_MAX);
        assert!(VERIFIER_APPARENT_BYTES_MAX >= BODY_BYTES_MAX);
        assert!(ENCODER_BUILDER_BYTES_INITIAL <= ENCODER_BUILDER_BYTES_KEPT);
    }
}

/// A produce request with many default-size (1 MiB) batches and one at the ceiling fits;
/// one byte more than the frame limit is refused at encode time. The batches share one
/// allocation, so the test stays cheap.
#[test]
fn large_produce_requests_fit_and_oversize_ones_are_refused() {
    let mib = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES_DEFAULT as usize]);
    let ceiling = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES_CEILING as usize]);
    let mut batches = vec![mib.clone(); 8];
    batches.push(ceiling);
    let out = encode_request(1, 0, &produce_request_of(batches)).expect("fits");
    assert!(out.len() < FRAME_BYTES_MAX);
    let frame = out.to_bytes();
    let mut buf = BytesMut::from(&frame[..]);
    let split = FrameSplitter::new()
        .next_frame(&mut buf)
        .expect("ok")
        .expect("whole");
    assert_eq!(decode_request(split).expect("decodes").request_id, 1);

    let too_many = vec![mib; FRAME_BYTES_MAX / MAX_MESSAGE_BYTES_DEFAULT as usize];
    let err = encode_request(1, 0, &produce_request_of(too_many)).expect_err("too large");
    assert!(matches!(err, EncodeError::FrameTooLarge { .. }), "{err:?}");
}

fn produce_request_of(batches: Vec<Bytes>) -> Request {
    ProduceRequest {
        acks: Acks::All,
        timeout_ms: 1,
        topics: vec![ProduceTopic {
            name: "big".into(),
            partitions: vec![ProducePartition {
                partition: 0,
                batches,
            }],
        }],
    }
    .into()
}

/// The verifier limits admit the largest legitimate bodies: a Metadata response close
/// to the body limit, and a body made of the smallest possible tables.
#[test]
fn verifier_limits_admit_bodies_up_to_the_body_limit() {
    let partition = |p: u32| PartitionMetadata {
        partition: p,
        error_code: ErrorCode::None,
        error_message: None,
        leader_id: Some(p % 3),
        leader_epoch: 1,
        replicas: vec![0, 1, 2],
        isr: vec![0, 1, 2],
        leader_shard: Some((p % 2) as u16),
    };
    // About 3.9 MB of body: its apparent size (about 1.6x) exceeds the body limit, so the
    // verifier's apparent-size bound must stay above the body limit for this to decode.
    let topics: Vec<TopicMetadata> = (0..640)
        .map(|t| TopicMetadata {
            name: format!("topic-{t}"),
            error_code: ErrorCode::None,
            error_message: None,
            partitions: (0..100).map(partition).collect(),
        })
        .collect();
    let response: Response = MetadataResponse {
        brokers: vec![],
        controller_id: Some(0),
        topics,
    }
    .into();
    let out = encode_response(1, 0, &response).expect("fits the body limit");
    assert!(
        out.head.len() > BODY_BYTES_MAX * 7 / 8,
        "test body too small: {}",
        out.head.len()
    );
    let d = decode_response(out.to_bytes()).expect("verifier admits it");
    assert_eq!(d.response, response);

    let many: Response = ListTopicsResponse {
        topics: (0..BODY_BYTES_MAX / 40)
            .map(|_| TopicListing {
                name: String::new(),
                partitions: 0,
                replication_factor: 0,
            })
            .collect(),
    }
    .into();
    let out = encode_response(1, 0, &many).expect("fits");
    let d = decode_response(out.to_bytes()).expect("verifier admits many small tables");
    assert_eq!(d.response, many);
}
