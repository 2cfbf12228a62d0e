//! Typed errors of the protocol module: one enum for decoding (anything a peer can send),
//! one for encoding (values this side cannot put on the wire).

use crate::protocol::api::{ApiKey, VersionRange};
use crate::protocol::error_code::ErrorCode;

/// Why received bytes were refused. Every variant is a property of the bytes, never a
/// panic; `error_code()` gives the code to answer with when the request id is known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame length field {length} exceeds the limit of {max} bytes after the length field")]
    FrameTooLarge { length: u64, max: usize },
    #[error("frame length field {length} is below the {min}-byte header")]
    FrameTooSmall { length: u64, min: usize },
    #[error("frame holds {actual} bytes but its length field announces {declared} + 4")]
    LengthMismatch { declared: u64, actual: usize },
    #[error("flatbuffer body of {body} bytes does not fit the {available} bytes after the header")]
    BodyOutOfRange { body: u64, available: usize },
    #[error("flatbuffer body of {body} bytes exceeds the limit of {max}")]
    BodyTooLarge { body: u64, max: usize },
    #[error("expected a {expected} frame, got flags {flags:#06x}")]
    WrongDirection { expected: &'static str, flags: u16 },
    #[error("reserved frame flags {0:#06x} are set")]
    ReservedFlags(u16),
    #[error("a request frame carries error code {0} in its header")]
    ErrorInRequest(u16),
    #[error("an error frame carries error code 0")]
    ErrorFrameWithoutError,
    #[error("unknown API key {0}")]
    UnknownApi(u16),
    #[error("{api} version {version} is not supported (this build speaks {supported})")]
    UnsupportedVersion {
        api: ApiKey,
        version: u16,
        supported: VersionRange,
    },
    #[error("invalid flatbuffer for {what}: {source}")]
    InvalidFlatbuffer {
        what: &'static str,
        #[source]
        source: flatbuffers::InvalidFlatbuffer,
    },
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("payload reference [{offset}, +{length}) runs past the {area}-byte payload area")]
    PayloadOutOfRange {
        offset: u32,
        length: u32,
        area: usize,
    },
    #[error("payload reference at {offset} overlaps or leaves a gap: the next batch starts at {expected}")]
    PayloadNotContiguous { offset: u32, expected: usize },
    #[error("{unused} bytes at the end of the {area}-byte payload area are referenced by nothing")]
    PayloadUnreferenced { unused: usize, area: usize },
}

impl ProtocolError {
    /// The wire code to answer a request that failed to decode with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ProtocolError::UnknownApi(_) => ErrorCode::UnknownApi,
            ProtocolError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ProtocolError::InvalidValue { .. } => ErrorCode::InvalidRequest,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::FrameTooSmall { .. }
            | ProtocolError::LengthMismatch { .. }
            | ProtocolError::BodyOutOfRange { .. }
            | ProtocolError::BodyTooLarge { .. }
            | ProtocolError::WrongDirection { .. }
            | ProtocolError::ReservedFlags(_)
            | ProtocolError::ErrorInRequest(_)
            | ProtocolError::ErrorFrameWithoutError
            | ProtocolError::InvalidFlatbuffer { .. }
            | ProtocolError::PayloadOutOfRange { .. }
            | ProtocolError::PayloadNotContiguous { .. }
            | ProtocolError::PayloadUnreferenced { .. } => ErrorCode::InvalidFrame,
        }
    }
}

/// Why a domain value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("frame of {bytes} bytes exceeds the limit of {max}")]
    FrameTooLarge { bytes: usize, max: usize },
    #[error("flatbuffer body of {bytes} bytes exceeds the limit of {max}")]
    BodyTooLarge { bytes: usize, max: usize },
    #[error("{api} version {version} is not supported (this build speaks {supported})")]
    UnsupportedVersion {
        api: ApiKey,
        version: u16,
        supported: VersionRange,
    },
    #[error("value {value} of {field} cannot be encoded")]
    InvalidValue { field: &'static str, value: i64 },
}
