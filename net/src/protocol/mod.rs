//! The cfa wire protocol: the single source of truth for the bytes on a connection.
//!
//! Pure: no I/O, no async, no clocks. The broker and the client SDK call this module and
//! nothing else to turn bytes into domain values and back. Flatbuffers types never leave
//! it; record batches pass through as `bytes::Bytes` without copies.
//!
//! - Receiving: append socket bytes to a `BytesMut`, cut frames with [`FrameSplitter`],
//!   then [`decode_request`] (broker) or [`decode_response`] (client).
//! - Sending: [`Encoder::request`] / [`Encoder::response`] give an [`OutFrame`] whose
//!   `head` and `payload` chunks go to the socket with one vectored write.
//! - Handshake: exchange [`ApiVersionsRequest`] / [`ApiVersionsResponse`] and pick
//!   versions with [`negotiate`].
//!
//! Byte layout: docs/format.md, "Wire protocol". Schema: net/schema/*.fbs.

mod api;
mod codec;
mod error;
mod error_code;
mod frame;
pub mod messages;
mod payload;
mod splitter;
mod wire;

pub use api::{
    negotiate, supported_versions, ApiKey, ApiVersionRange, NegotiatedVersions, UnsupportedApi,
    VersionRange,
};
pub use codec::{
    decode_request, decode_response, encode_request, encode_response, DecodedRequest,
    DecodedResponse, Encoder, FailedResponse, Request, Response,
};
pub use error::{EncodeError, ProtocolError};
pub use error_code::ErrorCode;
pub use frame::{FrameHeader, OutFrame, FLAGS_KNOWN, FLAG_RESPONSE};
pub use messages::*;
pub use splitter::FrameSplitter;
