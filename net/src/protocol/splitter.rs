//! Incremental frame splitting: bytes in as they arrive, whole frames out, no copies.

use bytes::{Bytes, BytesMut};

use crate::constants::{FRAME_HEADER_BYTES, FRAME_LENGTH_BYTES};
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::check_length_field;

/// Cuts complete frames off the front of a connection's read buffer.
///
/// The caller appends whatever the socket delivered to a `BytesMut` and calls
/// [`FrameSplitter::next_frame`] until it returns `Ok(None)`. A frame comes back as a
/// `Bytes` that shares the buffer's allocation (`split_to` + `freeze`, no copy), length
/// field included, ready for `decode_request` / `decode_response`.
///
/// A length field below the header size or above `FRAME_BYTES_MAX` (a corrupted stream,
/// or a peer speaking another protocol) is an error as soon as its 4 bytes arrive, before
/// anything is allocated for it. After an error the stream has lost its framing: close
/// the connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameSplitter {
    _private: (),
}

impl FrameSplitter {
    pub fn new() -> FrameSplitter {
        FrameSplitter { _private: () }
    }

    /// The next complete frame at the front of `buf`, removed from it; `None` when more
    /// bytes are needed.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        if buf.len() < FRAME_LENGTH_BYTES {
            return Ok(None);
        }
        let whole = FRAME_LENGTH_BYTES + check_length_field(buf)? as usize;
        assert!(whole >= FRAME_HEADER_BYTES);
        if buf.len() < whole {
            return Ok(None);
        }
        Ok(Some(buf.split_to(whole).freeze()))
    }

    /// How many more bytes the next frame needs before `next_frame` can return it (at
    /// least the length field): a hint for sizing the next read. 0 when a whole frame is
    /// buffered; an invalid length field is reported by `next_frame`, not here.
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        if buf.len() < FRAME_LENGTH_BYTES {
            return FRAME_LENGTH_BYTES - buf.len();
        }
        match check_length_field(buf) {
            Ok(length) => (FRAME_LENGTH_BYTES + length as usize).saturating_sub(buf.len()),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::FRAME_BYTES_MAX;

    fn frame(body_and_payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        let length = (FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES + body_and_payload.len()) as u32;
        f.extend_from_slice(&length.to_le_bytes());
        f.extend_from_slice(&[0; FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES]);
        f.extend_from_slice(body_and_payload);
        f
    }

    #[test]
    fn splits_frames_delivered_byte_by_byte_without_copying() {
        let a = frame(&[1, 2, 3]);
        let b = frame(&[]);
        let stream: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut s = FrameSplitter::new();
        let mut buf = BytesMut::with_capacity(stream.len());
        let mut out = Vec::new();
        for &byte in &stream {
            buf.extend_from_slice(&[byte]);
            while let Some(f) = s.next_frame(&mut buf).expect("valid") {
                out.push(f);
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][..], &a[..]);
        assert_eq!(&out[1][..], &b[..]);
        assert!(buf.is_empty());

        // Several frames in one read come out as views of the same allocation.
        let mut buf = BytesMut::from(&stream[..]);
        let base = buf.as_ptr() as usize;
        let first = s.next_frame(&mut buf).expect("ok").expect("whole");
        let second = s.next_frame(&mut buf).expect("ok").expect("whole");
        assert_eq!(first.as_ptr() as usize, base);
        assert_eq!(second.as_ptr() as usize, base + a.len());
    }

    #[test]
    fn bad_lengths_are_errors_before_the_body_arrives() {
        let mut s = FrameSplitter::new();
        let mut buf = BytesMut::from(&(1u32 << 31).to_le_bytes()[..]);
        assert!(matches!(
            s.next_frame(&mut buf),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        let over = (FRAME_BYTES_MAX - FRAME_LENGTH_BYTES + 1) as u32;
        let mut buf = BytesMut::from(&over.to_le_bytes()[..]);
        assert!(s.next_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&15u32.to_le_bytes()[..]);
        assert!(matches!(
            s.next_frame(&mut buf),
            Err(ProtocolError::FrameTooSmall { length: 15, .. })
        ));
    }

    #[test]
    fn bytes_needed_tracks_the_missing_part() {
        let s = FrameSplitter::new();
        let f = frame(&[7; 10]);
        assert_eq!(s.bytes_needed(&f[..2]), 2);
        assert_eq!(s.bytes_needed(&f[..4]), f.len() - 4);
        assert_eq!(s.bytes_needed(&f[..f.len() - 1]), 1);
        assert_eq!(s.bytes_needed(&f), 0);
    }
}
