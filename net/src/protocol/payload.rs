//! The raw payload area: record batches after the flatbuffer, referenced by (offset, length).
//!
//! Batches are never re-encoded and never copied into the flatbuffer. The encoder hands
//! them over as the `Bytes` it was given; the decoder returns `Bytes::slice`s of the frame.
//! Rule: the references, in the order the body lists them (depth first: topics, then
//! partitions, then batches), tile the payload area exactly, from offset 0 to its end. That
//! rules out overlap, gaps and out-of-range references with one linear pass.

use bytes::Bytes;

use crate::generated as fb;
use crate::protocol::error::ProtocolError;

/// Collects the batches of a frame being encoded, in body order.
#[derive(Debug, Default)]
pub(crate) struct PayloadWriter {
    chunks: Vec<Bytes>,
    bytes: usize,
}

impl PayloadWriter {
    /// Appends a batch and returns its reference. Offsets past u32 saturate; the frame
    /// limit check in `build_head` refuses such a frame before any reference escapes.
    pub fn push(&mut self, batch: &Bytes) -> fb::PayloadRef {
        let offset = u32::try_from(self.bytes).unwrap_or(u32::MAX);
        let length = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        self.bytes = self.bytes.saturating_add(batch.len());
        self.chunks.push(batch.clone());
        fb::PayloadRef::new(offset, length)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn into_chunks(self) -> Vec<Bytes> {
        self.chunks
    }
}

/// Resolves the references of a frame being decoded, in body order.
#[derive(Debug)]
pub(crate) struct PayloadReader {
    area: Bytes,
    next: usize,
}

impl PayloadReader {
    /// `area` is a slice of the received frame, so batches point into it.
    pub fn new(area: Bytes) -> PayloadReader {
        PayloadReader { area, next: 0 }
    }

    /// The batch a reference names; it must start where the previous one ended.
    pub fn take(&mut self, r: &fb::PayloadRef) -> Result<Bytes, ProtocolError> {
        let (offset, length) = (r.offset(), r.length());
        if offset as usize != self.next {
            return Err(ProtocolError::PayloadNotContiguous {
                offset,
                expected: self.next,
            });
        }
        let end = (offset as usize)
            .checked_add(length as usize)
            .filter(|&end| end <= self.area.len())
            .ok_or(ProtocolError::PayloadOutOfRange {
                offset,
                length,
                area: self.area.len(),
            })?;
        self.next = end;
        Ok(self.area.slice(offset as usize..end))
    }

    /// Checks that every byte of the area was referenced.
    pub fn finish(self) -> Result<(), ProtocolError> {
        assert!(self.next <= self.area.len());
        if self.next != self.area.len() {
            return Err(ProtocolError::PayloadUnreferenced {
                unused: self.area.len() - self.next,
                area: self.area.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_must_tile_the_area() {
        let area = Bytes::from_static(&[1, 2, 3, 4, 5, 6]);
        let mut r = PayloadReader::new(area.clone());
        let a = r.take(&fb::PayloadRef::new(0, 2)).expect("first");
        let b = r.take(&fb::PayloadRef::new(2, 4)).expect("second");
        assert_eq!((&a[..], &b[..]), (&[1, 2][..], &[3, 4, 5, 6][..]));
        assert_eq!(b.as_ptr() as usize, area.as_ptr() as usize + 2);
        r.finish().expect("tiled");

        let mut r = PayloadReader::new(area.clone());
        r.take(&fb::PayloadRef::new(0, 4)).expect("first");
        let overlap = r.take(&fb::PayloadRef::new(2, 2));
        assert!(matches!(
            overlap,
            Err(ProtocolError::PayloadNotContiguous {
                offset: 2,
                expected: 4
            })
        ));
        let past = r.take(&fb::PayloadRef::new(4, 3));
        assert!(matches!(past, Err(ProtocolError::PayloadOutOfRange { .. })));
        let huge = r.take(&fb::PayloadRef::new(4, u32::MAX));
        assert!(matches!(huge, Err(ProtocolError::PayloadOutOfRange { .. })));
        assert!(matches!(
            r.finish(),
            Err(ProtocolError::PayloadUnreferenced { unused: 2, area: 6 })
        ));
    }

    #[test]
    fn writer_lays_batches_back_to_back() {
        let mut w = PayloadWriter::default();
        let a = w.push(&Bytes::from_static(b"abc"));
        let b = w.push(&Bytes::from_static(b"de"));
        assert_eq!(
            (a.offset(), a.length(), b.offset(), b.length()),
            (0, 3, 3, 2)
        );
        assert_eq!(w.bytes(), 5);
        assert_eq!(w.into_chunks().len(), 2);
    }
}
