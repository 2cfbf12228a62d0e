//! Whole frames to and from domain values: the API the server and the client call.

use bytes::Bytes;
use flatbuffers::FlatBufferBuilder;

use crate::constants::{ENCODER_BUILDER_BYTES_INITIAL, ENCODER_BUILDER_BYTES_KEPT};
use crate::generated as fb;
use crate::protocol::api::{supported_versions, ApiKey};
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{build_head, FrameHeader, HeaderFields, OutFrame, FLAG_RESPONSE};
use crate::protocol::messages::*;
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{opt_str, opt_text, verified_root, Body, Fbb, Root};

/// A response to a request that failed as a whole: the frame header carries the error
/// code and the body only an optional message. Used when the broker cannot even decode
/// the request (unknown API, unsupported version, malformed frame) or refuses it before
/// looking at it (shutting down, throttled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedResponse {
    /// Echo of the request's API key, raw: it may be one this build does not know.
    pub api_key: u16,
    /// Never `ErrorCode::None`.
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

macro_rules! messages {
    ($($api:ident($req:ident, $resp:ident)),* $(,)?) => {
        /// Every request, one variant per API.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $($api($req),)*
        }

        /// Every response, one variant per API, plus a whole-request failure.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Response {
            $($api($resp),)*
            Failed(FailedResponse),
        }

        impl Request {
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(Request::$api(_) => ApiKey::$api,)*
                }
            }

            fn build(&self, fbb: &mut Fbb<'_>, payload: &mut PayloadWriter) -> Result<Root, EncodeError> {
                match self {
                    $(Request::$api(m) => m.build(fbb, payload),)*
                }
            }

            fn parse(api: ApiKey, body: &[u8], payload: &mut PayloadReader) -> Result<Request, ProtocolError> {
                match api {
                    $(ApiKey::$api => $req::parse(body, payload).map(Request::$api),)*
                }
            }
        }

        impl Response {
            /// The API this answers; raw because a failure may echo an unknown key.
            pub fn api_key_raw(&self) -> u16 {
                match self {
                    $(Response::$api(_) => ApiKey::$api.as_u16(),)*
                    Response::Failed(f) => f.api_key,
                }
            }

            fn build(&self, fbb: &mut Fbb<'_>, payload: &mut PayloadWriter) -> Result<Root, EncodeError> {
                match self {
                    $(Response::$api(m) => m.build(fbb, payload),)*
                    Response::Failed(f) => {
                        let args = fb::ErrorBodyArgs { message: opt_str(fbb, &f.error_message) };
                        Ok(fb::ErrorBody::create(fbb, &args).as_union_value())
                    }
                }
            }

            fn parse(api: ApiKey, body: &[u8], payload: &mut PayloadReader) -> Result<Response, ProtocolError> {
                match api {
                    $(ApiKey::$api => $resp::parse(body, payload).map(Response::$api),)*
                }
            }
        }

        $(
            impl From<$req> for Request {
                fn from(m: $req) -> Request {
                    Request::$api(m)
                }
            }

            impl From<$resp> for Response {
                fn from(m: $resp) -> Response {
                    Response::$api(m)
                }
            }
        )*
    };
}

messages! {
    ApiVersions(ApiVersionsRequest, ApiVersionsResponse),
    Metadata(MetadataRequest, MetadataResponse),
    CreateTopics(CreateTopicsRequest, CreateTopicsResponse),
    DeleteTopics(DeleteTopicsRequest, DeleteTopicsResponse),
    ListTopics(ListTopicsRequest, ListTopicsResponse),
    DescribeTopic(DescribeTopicRequest, DescribeTopicResponse),
    Produce(ProduceRequest, ProduceResponse),
    Fetch(FetchRequest, FetchResponse),
    ListOffsets(ListOffsetsRequest, ListOffsetsResponse),
    InitProducerId(InitProducerIdRequest, InitProducerIdResponse),
    JoinGroup(JoinGroupRequest, JoinGroupResponse),
    SyncGroup(SyncGroupRequest, SyncGroupResponse),
    Heartbeat(HeartbeatRequest, HeartbeatResponse),
    LeaveGroup(LeaveGroupRequest, LeaveGroupResponse),
    OffsetCommit(OffsetCommitRequest, OffsetCommitResponse),
    OffsetFetch(OffsetFetchRequest, OffsetFetchResponse),
    ListGroups(ListGroupsRequest, ListGroupsResponse),
    DescribeGroup(DescribeGroupRequest, DescribeGroupResponse),
}

impl Response {
    /// The API this answers, `None` for a failure that echoes an unknown key.
    pub fn api_key(&self) -> Option<ApiKey> {
        ApiKey::from_u16(self.api_key_raw())
    }
}

/// A decoded request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRequest {
    pub request_id: u32,
    pub api_version: u16,
    pub request: Request,
}

/// A decoded response frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedResponse {
    pub request_id: u32,
    pub api_version: u16,
    pub response: Response,
}

/// Encodes frames, keeping its flatbuffer builder between them (one per connection or
/// shard, so steady-state encoding does not allocate a builder per frame).
pub struct Encoder {
    fbb: FlatBufferBuilder<'static>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder {
            fbb: FlatBufferBuilder::with_capacity(ENCODER_BUILDER_BYTES_INITIAL),
        }
    }

    /// A request frame (client side). `api_version` comes from [`crate::protocol::negotiate`].
    pub fn request(
        &mut self,
        request_id: u32,
        api_version: u16,
        request: &Request,
    ) -> Result<OutFrame, EncodeError> {
        check_version(request.api_key(), api_version)?;
        let fields = HeaderFields {
            api_key: request.api_key().as_u16(),
            api_version,
            request_id,
            flags: 0,
            error_code: 0,
        };
        self.frame(fields, |fbb, payload| request.build(fbb, payload))
    }

    /// A response frame (broker side), echoing the request's id and version.
    pub fn response(
        &mut self,
        request_id: u32,
        api_version: u16,
        response: &Response,
    ) -> Result<OutFrame, EncodeError> {
        let error_code = match response {
            Response::Failed(f) if !f.error_code.is_error() => {
                return Err(EncodeError::InvalidValue {
                    field: "FailedResponse.error_code",
                    value: 0,
                })
            }
            Response::Failed(f) => f.error_code.as_u16(),
            other => {
                let api = other.api_key().expect("a typed response has a known key");
                check_version(api, api_version)?;
                0
            }
        };
        let fields = HeaderFields {
            api_key: response.api_key_raw(),
            api_version,
            request_id,
            flags: FLAG_RESPONSE,
            error_code,
        };
        self.frame(fields, |fbb, payload| response.build(fbb, payload))
    }

    /// The answer to a request frame that failed to decode with `err`, or `None` when its
    /// header is unreadable (then the connection must be closed). ApiVersions keeps its
    /// frozen v0 contract: an unsupported ApiVersions version gets a v0 ApiVersionsResponse
    /// listing what this broker speaks, so any client can learn which version to use.
    pub fn failure_reply(&mut self, frame: &[u8], err: &ProtocolError) -> Option<OutFrame> {
        let h = FrameHeader::parse(frame).ok()?;
        if h.is_response() {
            return None;
        }
        let message = Some(err.to_string());
        if matches!(
            err,
            ProtocolError::UnsupportedVersion {
                api: ApiKey::ApiVersions,
                ..
            }
        ) {
            let body = ApiVersionsResponse {
                error_code: ErrorCode::UnsupportedVersion,
                error_message: message,
                versions: supported_versions(),
            };
            return self.response(h.request_id, 0, &body.into()).ok();
        }
        let failed = FailedResponse {
            api_key: h.api_key,
            error_code: err.error_code(),
            error_message: message,
        };
        self.response(h.request_id, h.api_version, &Response::Failed(failed))
            .ok()
    }

    fn frame(
        &mut self,
        fields: HeaderFields,
        build: impl FnOnce(&mut Fbb<'static>, &mut PayloadWriter) -> Result<Root, EncodeError>,
    ) -> Result<OutFrame, EncodeError> {
        self.fbb.reset();
        let mut payload = PayloadWriter::default();
        let root = build(&mut self.fbb, &mut payload)?;
        self.fbb.finish_minimal(root);
        let body_bytes = self.fbb.finished_data().len();
        let head = build_head(fields, self.fbb.finished_data(), payload.bytes());
        // A builder grown by one huge body would keep its memory forever: drop it.
        if body_bytes > ENCODER_BUILDER_BYTES_KEPT {
            self.fbb = FlatBufferBuilder::with_capacity(ENCODER_BUILDER_BYTES_INITIAL);
        }
        Ok(OutFrame {
            head: head?,
            payload: payload.into_chunks(),
        })
    }
}

/// Encodes a request frame with a fresh builder. See [`Encoder::request`].
pub fn encode_request(
    request_id: u32,
    api_version: u16,
    request: &Request,
) -> Result<OutFrame, EncodeError> {
    Encoder::new().request(request_id, api_version, request)
}

/// Encodes a response frame with a fresh builder. See [`Encoder::response`].
pub fn encode_response(
    request_id: u32,
    api_version: u16,
    response: &Response,
) -> Result<OutFrame, EncodeError> {
    Encoder::new().response(request_id, api_version, response)
}

fn check_version(api: ApiKey, version: u16) -> Result<(), EncodeError> {
    if api.supports(version) {
        return Ok(());
    }
    Err(EncodeError::UnsupportedVersion {
        api,
        version,
        supported: api.versions(),
    })
}

fn known_api(h: &FrameHeader) -> Result<ApiKey, ProtocolError> {
    let api = ApiKey::from_u16(h.api_key).ok_or(ProtocolError::UnknownApi(h.api_key))?;
    if !api.supports(h.api_version) {
        return Err(ProtocolError::UnsupportedVersion {
            api,
            version: h.api_version,
            supported: api.versions(),
        });
    }
    Ok(api)
}

/// Splits a checked frame into its body and a reader over its payload area (a slice of
/// `frame`, so decoded batches point into it).
fn parts<'a>(frame: &'a Bytes, h: &FrameHeader) -> (&'a [u8], PayloadReader) {
    let body = h.body_range();
    let area = frame.slice(body.end..);
    (&frame[body], PayloadReader::new(area))
}

/// Decodes a whole request frame (as returned by `FrameSplitter`), broker side. Record
/// batches in the result are slices of `frame`. On error, [`Encoder::failure_reply`] builds
/// the answer.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, ProtocolError> {
    let h = FrameHeader::parse(&frame)?;
    h.check_direction(false)?;
    if h.error_code != 0 {
        return Err(ProtocolError::ErrorInRequest(h.error_code));
    }
    let api = known_api(&h)?;
    let (body, mut payload) = parts(&frame, &h);
    let request = Request::parse(api, body, &mut payload)?;
    payload.finish()?;
    Ok(DecodedRequest {
        request_id: h.request_id,
        api_version: h.api_version,
        request,
    })
}

/// Decodes a whole response frame, client side. Record batches in the result are slices
/// of `frame`. A whole-request failure decodes to `Response::Failed`.
pub fn decode_response(frame: Bytes) -> Result<DecodedResponse, ProtocolError> {
    let h = FrameHeader::parse(&frame)?;
    h.check_direction(true)?;
    let (body, mut payload) = parts(&frame, &h);
    let response = if h.error_code != 0 {
        let t = verified_root::<fb::ErrorBody>(body, "ErrorBody")?;
        Response::Failed(FailedResponse {
            api_key: h.api_key,
            error_code: ErrorCode::from_wire(h.error_code),
            error_message: opt_text(t.message()),
        })
    } else {
        Response::parse(known_api(&h)?, body, &mut payload)?
    };
    payload.finish()?;
    Ok(DecodedResponse {
        request_id: h.request_id,
        api_version: h.api_version,
        response,
    })
}
