//! The frame: length, fixed header, flatbuffer body, raw payload area.
//!
//! Byte layout (docs/format.md, "Wire protocol"), all little-endian:
//!
//! ```text
//!  0  u32 length        bytes after this field
//!  4  u16 api_key
//!  6  u16 api_version
//!  8  u32 request_id    chosen by the client, echoed by the broker
//! 12  u16 flags         bit 0: response; other bits 0
//! 14  u16 error_code    0 in requests; in responses non-zero = whole request failed
//! 16  u32 body_length   length of the flatbuffer that follows
//! 20  body              flatbuffer (root table per API and direction)
//! 20+body_length ..     raw payload area: record batches, referenced from the body
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::constants::{BODY_BYTES_MAX, FRAME_BYTES_MAX, FRAME_HEADER_BYTES, FRAME_LENGTH_BYTES};
use crate::protocol::error::{EncodeError, ProtocolError};

/// Flags bit 0: the frame is a response.
pub const FLAG_RESPONSE: u16 = 1;

/// Flag bits a frame may carry; the rest are reserved and must be 0.
pub const FLAGS_KNOWN: u16 = FLAG_RESPONSE;

/// The fixed header of a frame, as on the wire (api key and error code raw, so that a
/// frame with an unknown key can still be answered by request id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes after the length field: header rest + body + payload area.
    pub length: u32,
    pub api_key: u16,
    pub api_version: u16,
    pub request_id: u32,
    pub flags: u16,
    pub error_code: u16,
    pub body_length: u32,
}

impl FrameHeader {
    /// Parses the fixed header at the start of a whole frame and checks the lengths it
    /// announces against `frame.len()` and the limits. Does not look at api key, version,
    /// flags or error code: callers check what their direction requires.
    pub fn parse(frame: &[u8]) -> Result<FrameHeader, ProtocolError> {
        let length = check_length_field(frame)?;
        let whole = FRAME_LENGTH_BYTES as u64 + u64::from(length);
        if whole != frame.len() as u64 {
            return Err(ProtocolError::LengthMismatch {
                declared: u64::from(length),
                actual: frame.len(),
            });
        }
        let header = FrameHeader {
            length,
            api_key: u16_at(frame, 4),
            api_version: u16_at(frame, 6),
            request_id: u32_at(frame, 8),
            flags: u16_at(frame, 12),
            error_code: u16_at(frame, 14),
            body_length: u32_at(frame, 16),
        };
        let body = u64::from(header.body_length);
        if body > BODY_BYTES_MAX as u64 {
            return Err(ProtocolError::BodyTooLarge {
                body,
                max: BODY_BYTES_MAX,
            });
        }
        let available = frame.len() - FRAME_HEADER_BYTES;
        if body > available as u64 {
            return Err(ProtocolError::BodyOutOfRange { body, available });
        }
        Ok(header)
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// Byte range of the flatbuffer body within the frame.
    pub fn body_range(&self) -> std::ops::Range<usize> {
        FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + self.body_length as usize
    }

    /// Checks the flags for the expected direction, and that reserved bits are clear.
    pub(crate) fn check_direction(&self, response: bool) -> Result<(), ProtocolError> {
        if self.flags & !FLAGS_KNOWN != 0 {
            return Err(ProtocolError::ReservedFlags(self.flags & !FLAGS_KNOWN));
        }
        if self.is_response() != response {
            return Err(ProtocolError::WrongDirection {
                expected: if response { "response" } else { "request" },
                flags: self.flags,
            });
        }
        Ok(())
    }
}

/// Reads and checks the length field at the start of `buf` (at least 4 bytes long): it
/// must announce at least a header and at most the frame limit.
pub(crate) fn check_length_field(buf: &[u8]) -> Result<u32, ProtocolError> {
    if buf.len() < FRAME_LENGTH_BYTES {
        return Err(ProtocolError::FrameTooSmall {
            length: buf.len() as u64,
            min: FRAME_HEADER_BYTES,
        });
    }
    let length = u32_at(buf, 0);
    let after_min = FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES;
    let after_max = FRAME_BYTES_MAX - FRAME_LENGTH_BYTES;
    if (length as usize) < after_min {
        return Err(ProtocolError::FrameTooSmall {
            length: u64::from(length),
            min: after_min,
        });
    }
    if length as usize > after_max {
        return Err(ProtocolError::FrameTooLarge {
            length: u64::from(length),
            max: after_max,
        });
    }
    Ok(length)
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// An encoded frame, ready for a vectored write: `head` is length + header + flatbuffer,
/// `payload` the record batches of the payload area in order, shared (not copied) with
/// whoever holds them (the log's batch cache, the producer's buffers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    pub head: Bytes,
    pub payload: Vec<Bytes>,
}

impl OutFrame {
    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload_len()
    }

    /// Never true: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn payload_len(&self) -> usize {
        self.payload.iter().map(Bytes::len).sum()
    }

    /// The pieces in wire order (for `writev`).
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.head).chain(self.payload.iter())
    }

    /// The frame as one contiguous buffer. Copies the payload: for tests and for callers
    /// that cannot write vectored; the data path writes `chunks()`.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        for chunk in self.chunks() {
            out.put_slice(chunk);
        }
        out.freeze()
    }
}

/// Fields of a header to write; lengths are computed from the parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderFields {
    pub api_key: u16,
    pub api_version: u16,
    pub request_id: u32,
    pub flags: u16,
    pub error_code: u16,
}

/// Builds the head (length, header, body) of a frame whose payload area holds
/// `payload_bytes`, checking the limits.
pub(crate) fn build_head(
    fields: HeaderFields,
    body: &[u8],
    payload_bytes: usize,
) -> Result<Bytes, EncodeError> {
    if body.len() > BODY_BYTES_MAX {
        return Err(EncodeError::BodyTooLarge {
            bytes: body.len(),
            max: BODY_BYTES_MAX,
        });
    }
    let whole = FRAME_HEADER_BYTES
        .saturating_add(body.len())
        .saturating_add(payload_bytes);
    if whole > FRAME_BYTES_MAX {
        return Err(EncodeError::FrameTooLarge {
            bytes: whole,
            max: FRAME_BYTES_MAX,
        });
    }
    let length = u32::try_from(whole - FRAME_LENGTH_BYTES).expect("bounded by FRAME_BYTES_MAX");
    let body_length = u32::try_from(body.len()).expect("bounded by BODY_BYTES_MAX");
    let mut head = BytesMut::with_capacity(FRAME_HEADER_BYTES + body.len());
    head.put_u32_le(length);
    head.put_u16_le(fields.api_key);
    head.put_u16_le(fields.api_version);
    head.put_u32_le(fields.request_id);
    head.put_u16_le(fields.flags);
    head.put_u16_le(fields.error_code);
    head.put_u32_le(body_length);
    assert_eq!(head.len(), FRAME_HEADER_BYTES);
    head.put_slice(body);
    Ok(head.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> HeaderFields {
        HeaderFields {
            api_key: 6,
            api_version: 0,
            request_id: 77,
            flags: FLAG_RESPONSE,
            error_code: 0,
        }
    }

    #[test]
    fn head_round_trips_through_parse() {
        let head = build_head(fields(), &[1, 2, 3, 4], 10).expect("small");
        let mut frame = head.to_vec();
        frame.extend_from_slice(&[9; 10]);
        let h = FrameHeader::parse(&frame).expect("valid");
        assert_eq!(h.length as usize, frame.len() - 4);
        assert_eq!((h.api_key, h.request_id, h.body_length), (6, 77, 4));
        assert!(h.is_response());
        assert_eq!(&frame[h.body_range()], &[1, 2, 3, 4]);
        h.check_direction(true).expect("response");
        assert!(h.check_direction(false).is_err());
    }

    #[test]
    fn limits_are_enforced_on_both_sides() {
        let too_big = build_head(fields(), &[], FRAME_BYTES_MAX);
        assert!(matches!(too_big, Err(EncodeError::FrameTooLarge { .. })));
        let mut frame = build_head(fields(), &[0; 8], 0).expect("ok").to_vec();
        // Body length past the end of the frame.
        frame[16..20].copy_from_slice(&9u32.to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&frame),
            Err(ProtocolError::BodyOutOfRange {
                body: 9,
                available: 8
            })
        ));
        frame[0..4].copy_from_slice(&(1u32 << 31).to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&frame),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        frame[0..4].copy_from_slice(&15u32.to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&frame),
            Err(ProtocolError::FrameTooSmall { length: 15, .. })
        ));
    }
}
