//! The record batch: the unit of storage, replication and transfer.
//!
//! A batch is a 64-byte little-endian header (see [`BatchHeader`] and docs/format.md)
//! followed by the records. The broker validates a batch once (length, magic, CRC,
//! counts), writes its base offset in place, and from then on moves the bytes unchanged:
//! into the segment, into the batch cache, out to consumers.

use bytes::{BufMut, Bytes, BytesMut};
use zerocopy::little_endian::{I16, I32, I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::compression::{check_records_size, compress_into, decompress, Compression};
use crate::constants::{BATCH_CRC_STEP_BYTES, BATCH_HEADER_BYTES, DECOMPRESSED_BYTES_MAX};
use crate::error::BatchError;

/// Format version written in every batch header.
pub const BATCH_MAGIC: u8 = 1;

/// Bytes at the start of the header that the CRC does not cover: base offset (assigned by
/// the broker after the producer computed the CRC), batch length and the CRC itself.
pub const CRC_START: usize = 16;

/// The fixed batch header. Field order and widths are the on-disk and on-wire format.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    /// Offset of the first record; set by the broker when appending.
    pub base_offset: U64,
    /// Length of the whole batch in bytes, header included.
    pub batch_length: U32,
    /// CRC32 (IEEE) of bytes [16, batch_length).
    pub crc: U32,
    pub magic: u8,
    pub reserved0: u8,
    /// Bits 0-2 compression codec, bit 3 timestamp type (0 create time, 1 log append time).
    pub attributes: U16,
    /// record_count - 1: offset of the last record relative to base_offset.
    pub last_offset_delta: U32,
    pub first_timestamp_ms: I64,
    pub max_timestamp_ms: I64,
    /// Idempotent producer id, -1 when the producer is not idempotent.
    pub producer_id: I64,
    pub producer_epoch: I16,
    pub reserved1: U16,
    /// Sequence number of the first record for (producer id, partition), -1 if none.
    pub base_sequence: I32,
    pub record_count: U32,
    pub reserved2: U32,
}

const _: () = assert!(std::mem::size_of::<BatchHeader>() == BATCH_HEADER_BYTES);

/// Compression codec of the records section (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    pub fn from_attributes(attributes: u16) -> Result<Codec, BatchError> {
        match (attributes & 0x7) as u8 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(BatchError::UnknownCodec(other)),
        }
    }
}

impl BatchHeader {
    /// Reads the header at the start of `buf` without copying.
    pub fn parse(buf: &[u8]) -> Result<&BatchHeader, BatchError> {
        BatchHeader::ref_from_prefix(buf)
            .map(|(h, _)| h)
            .map_err(|_| BatchError::TooShort {
                len: buf.len(),
                header: BATCH_HEADER_BYTES,
            })
    }

    pub fn base_offset(&self) -> u64 {
        self.base_offset.get()
    }

    pub fn len(&self) -> usize {
        self.batch_length.get() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.batch_length.get() == 0
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> u64 {
        self.base_offset.get() + u64::from(self.last_offset_delta.get())
    }

    pub fn record_count(&self) -> u32 {
        self.record_count.get()
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms.get()
    }

    pub fn codec(&self) -> Result<Codec, BatchError> {
        Codec::from_attributes(self.attributes.get())
    }
}

/// CRC32 of the covered part of a batch.
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32fast::hash(&batch[CRC_START..])
}

/// The batch CRC from the header's covered bytes and a hasher that has seen exactly the
/// records section after them: the same value as [`batch_crc`] of the whole batch.
fn crc_with_records(header: &[u8; BATCH_HEADER_BYTES], records: &crc32fast::Hasher) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[CRC_START..]);
    crc.combine(records);
    crc.finalize()
}

/// A hasher that has seen `records`.
fn records_hasher(records: &[u8]) -> crc32fast::Hasher {
    let mut crc = crc32fast::Hasher::new();
    crc.update(records);
    crc
}

/// Checks everything the broker can check without decompressing: length, magic, CRC,
/// counts, codec and size limit. Returns the header on success.
pub fn validate(batch: &[u8], max_message_bytes: u32) -> Result<&BatchHeader, BatchError> {
    let header = validate_except_crc(batch, max_message_bytes)?;
    check_crc(header, batch_crc(batch))?;
    Ok(header)
}

/// [`validate`] without the CRC, for a caller that computes it while copying the batch
/// (the log's append: one pass over the bytes instead of two) and then calls [`check_crc`].
pub fn validate_except_crc(
    batch: &[u8],
    max_message_bytes: u32,
) -> Result<&BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() > max_message_bytes as usize {
        return Err(BatchError::TooLarge {
            size: batch.len(),
            max: max_message_bytes,
        });
    }
    if header.len() != batch.len() {
        return Err(BatchError::LengthMismatch {
            declared: u64::from(header.batch_length.get()),
            actual: batch.len(),
        });
    }
    if header.magic != BATCH_MAGIC {
        return Err(BatchError::BadMagic(header.magic));
    }
    let count = header.record_count.get();
    if count == 0 || header.last_offset_delta.get() != count - 1 {
        return Err(BatchError::BadCount {
            count,
            delta: header.last_offset_delta.get(),
        });
    }
    header.codec()?;
    Ok(header)
}

/// Compares the CRC computed over a batch's covered bytes with the one its header carries.
pub fn check_crc(header: &BatchHeader, actual: u32) -> Result<(), BatchError> {
    if actual != header.crc.get() {
        return Err(BatchError::CrcMismatch {
            expected: header.crc.get(),
            actual,
        });
    }
    Ok(())
}

/// Writes the broker-assigned base offset into a validated batch, in place.
/// The CRC does not cover the base offset, so it stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    let (header, _) = BatchHeader::mut_from_prefix(batch).expect("validated batch has a header");
    header.base_offset = U64::new(base_offset);
}

/// One record header (a key/value pair of bytes attached to a record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Producer identity stamped into a batch (idempotent producers), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerStamp {
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Builds a batch record by record (the producer side), then finishes it uncompressed
/// ([`BatchBuilder::finish`]) or compressed ([`BatchBuilder::finish_with`]).
///
/// Records are encoded straight into the batch's own buffer behind a placeholder header,
/// so an uncompressed batch is sealed in place: each value is copied once, from the
/// caller's slice into the batch, and never again on the producer side. The records
/// section is hashed as it grows, [`BATCH_CRC_STEP_BYTES`] at a time, while its bytes are
/// still in cache; sealing hashes only the header and the last step.
pub struct BatchBuilder {
    /// The header placeholder ([`BATCH_HEADER_BYTES`]) followed by the records section.
    buf: BytesMut,
    /// CRC32 state over `buf[BATCH_HEADER_BYTES..hashed_until]`.
    records_crc: crc32fast::Hasher,
    hashed_until: usize,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    count: u32,
}

/// Asks the cache for up to `bytes` (at most
/// [`crate::constants::BATCH_PREFETCH_BYTES_MAX`]) of `buf`'s spare capacity: the memory
/// the next record is copied into. A batch buffer is memory no core has touched lately.
/// Without this, each record's copy leaves its cache-missing stores in the store buffer,
/// and the next locked instruction (the accumulator's unlock) stalls until they drain.
/// Prefetched while the caller makes its next record, those stores hit.
fn prefetch_spare(buf: &BytesMut, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::constants::{BATCH_PREFETCH_BYTES_MAX, CACHE_LINE_BYTES};
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let spare_bytes = (buf.capacity() - buf.len()).min(bytes.min(BATCH_PREFETCH_BYTES_MAX));
        let end = buf.as_ptr().wrapping_add(buf.len());
        for offset in (0..spare_bytes).step_by(CACHE_LINE_BYTES) {
            let line = end.wrapping_add(offset).cast::<i8>();
            // SAFETY: a prefetch is only a hint: it neither faults nor reads into the
            // program, and `line` lies inside the buffer's allocation.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (buf, bytes);
}

impl BatchBuilder {
    pub fn new(first_timestamp_ms: i64) -> Self {
        BatchBuilder::with_capacity(first_timestamp_ms, 0)
    }

    /// A builder whose buffer holds `body_bytes` of records before it has to grow.
    pub fn with_capacity(first_timestamp_ms: i64, body_bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_BYTES + body_bytes);
        buf.put_bytes(0, BATCH_HEADER_BYTES);
        BatchBuilder {
            buf,
            records_crc: crc32fast::Hasher::new(),
            hashed_until: BATCH_HEADER_BYTES,
            first_timestamp_ms,
            max_timestamp_ms: first_timestamp_ms,
            count: 0,
        }
    }

    pub fn record_count(&self) -> u32 {
        self.count
    }

    /// Bytes the finished batch will have (header plus records so far).
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends a record; its offset delta is its position in the batch.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        let ts_delta = timestamp_ms - self.first_timestamp_ms;
        let offset_delta = i64::from(self.count);
        let headers_len = headers
            .iter()
            .map(|(k, v)| bytes_field_len(Some(k)) + bytes_field_len(*v))
            .sum::<usize>();
        // The length prefix comes first, so the record's size is counted before writing.
        let record_len = 1
            + varlong_len(ts_delta)
            + varlong_len(offset_delta)
            + bytes_field_len(key)
            + bytes_field_len(value)
            + varlong_len(headers.len() as i64)
            + headers_len;
        let before = self.buf.len();
        let out = &mut self.buf;
        out.reserve(varlong_len(record_len as i64) + record_len);
        put_varlong(out, record_len as i64);
        out.put_u8(0); // record attributes, unused
        put_varlong(out, ts_delta);
        put_varlong(out, offset_delta);
        put_bytes(out, key);
        put_bytes(out, value);
        put_varlong(out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(out, Some(k));
            put_bytes(out, *v);
        }
        debug_assert_eq!(
            self.buf.len() - before,
            varlong_len(record_len as i64) + record_len,
            "the record's length prefix matches what was written"
        );
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        self.count += 1;
        self.hash_records(BATCH_CRC_STEP_BYTES);
        // The next record is most likely the size of this one.
        prefetch_spare(&self.buf, self.buf.len() - before);
    }

    /// Hashes the records written since the last call, if there are at least `min_bytes`.
    fn hash_records(&mut self, min_bytes: usize) {
        let fresh = &self.buf[self.hashed_until..];
        if fresh.len() >= min_bytes {
            self.records_crc.update(fresh);
            self.hashed_until = self.buf.len();
        }
    }

    /// Finishes an uncompressed batch, in place.
    pub fn finish(mut self, stamp: ProducerStamp) -> BytesMut {
        assert!(self.count > 0, "a batch holds at least one record");
        self.hash_records(0);
        assert_eq!(self.hashed_until, self.buf.len(), "every record is hashed");
        seal_batch(
            self.buf,
            &self.records_crc,
            Codec::None,
            self.first_timestamp_ms,
            self.max_timestamp_ms,
            self.count,
            stamp,
        )
    }

    /// Finishes a batch whose records section is compressed with `compression`
    /// (see [`encode_compressed`], which may store it uncompressed instead). Without a
    /// codec the batch is sealed in place, like [`BatchBuilder::finish`].
    pub fn finish_with(
        self,
        stamp: ProducerStamp,
        compression: Compression,
    ) -> Result<BytesMut, BatchError> {
        assert!(self.count > 0, "a batch holds at least one record");
        if compression.codec() == Codec::None {
            check_records_size(self.buf.len() - BATCH_HEADER_BYTES)?;
            return Ok(self.finish(stamp));
        }
        encode_compressed(
            compression,
            self.first_timestamp_ms,
            self.max_timestamp_ms,
            self.count,
            stamp,
            &self.buf[BATCH_HEADER_BYTES..],
        )
    }

    /// Hands out the encoded records section, so a caller can frame it later with
    /// [`encode_compressed`] or [`encode_batch`].
    pub fn into_parts(mut self) -> (Bytes, i64, i64, u32) {
        let records = self.buf.split_off(BATCH_HEADER_BYTES);
        (
            records.freeze(),
            self.first_timestamp_ms,
            self.max_timestamp_ms,
            self.count,
        )
    }
}

/// Frames a records section (possibly compressed) as a batch with a valid CRC, base offset 0.
pub fn encode_batch(
    codec: Codec,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    count: u32,
    stamp: ProducerStamp,
    records: &[u8],
) -> BytesMut {
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + records.len());
    out.put_bytes(0, BATCH_HEADER_BYTES);
    out.put_slice(records);
    seal_batch(
        out,
        &records_hasher(records),
        codec,
        first_timestamp_ms,
        max_timestamp_ms,
        count,
        stamp,
    )
}

/// Compresses an uncompressed records section `raw` with `compression` and frames it as a
/// batch with a valid CRC, base offset 0.
///
/// When the compressed section would not be smaller than `raw` (tiny or incompressible
/// records), the batch is stored uncompressed, codec none: fewer bytes stored and sent, and
/// no inflate for consumers. Kafka keeps the requested codec; readers cope either way since
/// every header names its codec. Refuses a `raw` larger than [`DECOMPRESSED_BYTES_MAX`].
pub fn encode_compressed(
    compression: Compression,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    count: u32,
    stamp: ProducerStamp,
    raw: &[u8],
) -> Result<BytesMut, BatchError> {
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + raw.len());
    out.put_bytes(0, BATCH_HEADER_BYTES);
    compress_into(compression, raw, &mut out)?;
    let mut codec = compression.codec();
    if codec != Codec::None && out.len() - BATCH_HEADER_BYTES >= raw.len() {
        out.truncate(BATCH_HEADER_BYTES);
        out.put_slice(raw);
        codec = Codec::None;
    }
    let records = records_hasher(&out[BATCH_HEADER_BYTES..]);
    Ok(seal_batch(
        out,
        &records,
        codec,
        first_timestamp_ms,
        max_timestamp_ms,
        count,
        stamp,
    ))
}

/// Fills in the header of `out` (64 placeholder bytes followed by the stored records
/// section) and its CRC; `records_crc` has seen exactly that records section.
fn seal_batch(
    mut out: BytesMut,
    records_crc: &crc32fast::Hasher,
    codec: Codec,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    count: u32,
    stamp: ProducerStamp,
) -> BytesMut {
    assert!(count > 0, "a batch holds at least one record");
    assert!(out.len() >= BATCH_HEADER_BYTES);
    let len = out.len();
    let header = BatchHeader {
        base_offset: U64::new(0),
        batch_length: U32::new(u32::try_from(len).expect("batch length fits u32")),
        crc: U32::new(0),
        magic: BATCH_MAGIC,
        reserved0: 0,
        attributes: U16::new(codec as u16),
        last_offset_delta: U32::new(count - 1),
        first_timestamp_ms: I64::new(first_timestamp_ms),
        max_timestamp_ms: I64::new(max_timestamp_ms),
        producer_id: I64::new(stamp.producer_id),
        producer_epoch: I16::new(stamp.producer_epoch),
        reserved1: U16::new(0),
        base_sequence: I32::new(stamp.base_sequence),
        record_count: U32::new(count),
        reserved2: U32::new(0),
    };
    let crc = crc_with_records(
        header
            .as_bytes()
            .try_into()
            .expect("the header is 64 bytes"),
        records_crc,
    );
    out[..BATCH_HEADER_BYTES].copy_from_slice(header.as_bytes());
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(crc, batch_crc(&out), "the running CRC is the batch's CRC");
    out
}

/// Decodes the records of a batch, inflating a compressed records section first (at most
/// [`DECOMPRESSED_BYTES_MAX`] bytes). `batch` must have passed [`validate`].
///
/// Records of an uncompressed batch share `batch`'s memory; those of a compressed one share
/// the inflated section. In `MalformedRecord { at }`, `at` is a byte position in the batch,
/// or in the inflated records section for a compressed batch.
pub fn decode_records(batch: &Bytes) -> Result<Vec<Record>, BatchError> {
    let mut records = Vec::new();
    decode_records_into(batch, &mut records, |r| r)?;
    Ok(records)
}

/// [`decode_records`] into the caller's vector: each record, passed through `map`, is
/// appended to `out` in order, after one reservation for the batch's count. On an error,
/// `out` may already hold the records before the bad one.
pub fn decode_records_into<T>(
    batch: &Bytes,
    out: &mut Vec<T>,
    mut map: impl FnMut(Record) -> T,
) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let codec = header.codec()?;
    let base = header.base_offset();
    let first_ts = header.first_timestamp_ms.get();
    let count = header.record_count() as usize;
    let (section, start) = match codec {
        Codec::None => (batch.clone(), BATCH_HEADER_BYTES),
        _ => {
            let stored = &batch[BATCH_HEADER_BYTES..];
            let raw = decompress(codec, stored, DECOMPRESSED_BYTES_MAX)?;
            (Bytes::from(raw), 0)
        }
    };
    let mut cur = Cursor {
        buf: &section,
        pos: start,
    };
    // A record takes at least 8 bytes: a corrupt count cannot reserve more than that.
    out.reserve(count.min(section.len() / 8));
    for _ in 0..count {
        out.push(map(cur.record(base, first_ts)?));
    }
    if cur.pos != section.len() {
        return Err(cur.err("trailing bytes after the last record"));
    }
    Ok(())
}

struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    fn err(&self, what: &'static str) -> BatchError {
        BatchError::MalformedRecord { at: self.pos, what }
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.err("varint runs past the end"))?;
            self.pos += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn bytes(&mut self) -> Result<Option<Bytes>, BatchError> {
        let len = self.varlong()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self
            .pos
            .checked_add(len as usize)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.err("length runs past the end"))?;
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(Some(out))
    }

    fn record(&mut self, base: u64, first_ts: i64) -> Result<Record, BatchError> {
        let len = self.varlong()?;
        let start = self.pos;
        if len < 0 || start + len as usize > self.buf.len() {
            return Err(self.err("record length runs past the end"));
        }
        self.pos += 1; // record attributes
        let ts_delta = self.varlong()?;
        let offset_delta = self.varlong()?;
        let key = self.bytes()?;
        let value = self.bytes()?;
        let header_count = self.varlong()?;
        if header_count < 0 || header_count as usize > self.buf.len() {
            return Err(self.err("bad header count"));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let key = self.bytes()?.ok_or_else(|| self.err("null header key"))?;
            headers.push(Header {
                key,
                value: self.bytes()?,
            });
        }
        if self.pos != start + len as usize {
            return Err(self.err("record length disagrees with its fields"));
        }
        Ok(Record {
            offset: base + offset_delta as u64,
            timestamp_ms: first_ts.wrapping_add(ts_delta),
            key,
            value,
            headers,
        })
    }
}

/// Bytes of `v` as a zigzag varlong.
fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    // 7 payload bits per byte; zero still takes one byte.
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-prefixed field (`None`: the -1 length alone).
fn bytes_field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varlong_len(-1),
        Some(b) => varlong_len(b.len() as i64) + b.len(),
    }
}

fn put_varlong(out: &mut impl BufMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

fn put_bytes(out: &mut impl BufMut, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(value: &[u8]) -> BytesMut {
        let mut b = BatchBuilder::new(1000);
        b.push(1001, Some(b"k"), Some(value), &[(b"h", Some(b"v"))]);
        b.finish(ProducerStamp::NONE)
    }

    #[test]
    fn varlong_len_matches_the_encoding() {
        for v in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            127,
            128,
            8191,
            8192,
            i64::MAX,
            i64::MIN,
        ]
        .into_iter()
        .chain((0..64).map(|s| 1i64 << s))
        .chain((0..64).map(|s| (1i64 << s).wrapping_neg()))
        {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(varlong_len(v), out.len(), "varlong length of {v}");
        }
    }

    #[test]
    fn roundtrip_one_record() {
        let mut batch = one(b"hello");
        set_base_offset(&mut batch, 42);
        let batch = batch.freeze();
        let h = validate(&batch, 1 << 20).expect("valid");
        assert_eq!(h.base_offset(), 42);
        assert_eq!(h.last_offset(), 42);
        let recs = decode_records(&batch).expect("decodes");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].offset, 42);
        assert_eq!(recs[0].timestamp_ms, 1001);
        assert_eq!(recs[0].value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(recs[0].headers[0].key.as_ref(), b"h");
    }

    #[test]
    fn rejects_bad_crc_length_and_size() {
        let mut batch = one(b"hello");
        let n = batch.len();
        batch[n - 1] ^= 1;
        assert!(matches!(
            validate(&batch, 1 << 20),
            Err(BatchError::CrcMismatch { .. })
        ));
        let batch = one(b"hello");
        assert!(matches!(
            validate(&batch[..n - 1], 1 << 20),
            Err(BatchError::LengthMismatch { .. })
        ));
        assert!(matches!(
            validate(&batch, 10),
            Err(BatchError::TooLarge { .. })
        ));
        assert!(matches!(
            validate(&batch[..10], 1 << 20),
            Err(BatchError::TooShort { .. })
        ));
    }

    proptest! {
        #[test]
        fn records_roundtrip(recs in proptest::collection::vec(
            (any::<i32>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200))), 1..20),
            base in 0u64..u64::MAX / 2)
        {
            let mut b = BatchBuilder::new(0);
            for (ts, k, v) in &recs {
                b.push(i64::from(*ts), k.as_deref(), v.as_deref(), &[]);
            }
            let mut batch = b.finish(ProducerStamp::NONE);
            set_base_offset(&mut batch, base);
            let batch = batch.freeze();
            validate(&batch, u32::MAX).expect("valid");
            let out = decode_records(&batch).expect("decodes");
            prop_assert_eq!(out.len(), recs.len());
            for (i, (r, (ts, k, v))) in out.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset, base + i as u64);
                prop_assert_eq!(r.timestamp_ms, i64::from(*ts));
                prop_assert_eq!(r.key.as_deref(), k.as_deref());
                prop_assert_eq!(r.value.as_deref(), v.as_deref());
            }
        }

        /// The CRC a builder keeps as records are pushed (in steps, some records larger
        /// than a step, some smaller) is the CRC of the whole sealed batch, stamp included.
        #[test]
        fn the_running_crc_is_the_crc_of_the_whole_batch(
            sizes in proptest::collection::vec(0usize..3 * BATCH_CRC_STEP_BYTES, 1..12),
            producer_id in any::<i64>(), base_sequence in any::<i32>())
        {
            let mut b = BatchBuilder::new(7);
            for (i, n) in sizes.iter().enumerate() {
                let value: Vec<u8> = (0..*n).map(|j| (i * 31 + j) as u8).collect();
                b.push(7 + i as i64, Some(b"k"), Some(&value), &[(b"h", Some(b"v"))]);
            }
            let stamp = ProducerStamp { producer_id, producer_epoch: 3, base_sequence };
            let batch = b.finish(stamp);
            let header = BatchHeader::parse(&batch).expect("a header");
            prop_assert_eq!(header.crc.get(), crc32fast::hash(&batch[CRC_START..]));
            prop_assert_eq!(header.base_sequence.get(), base_sequence);
            validate(&batch, u32::MAX).expect("valid");
        }

        /// The decoders never panic on arbitrary bytes: they return a value or an error.
        #[test]
        fn decoders_survive_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let bytes = Bytes::from(bytes);
            let _ = validate(&bytes, u32::MAX);
            let _ = decode_records(&bytes);
        }

        /// Flipping any bit of the CRC-covered region is detected.
        #[test]
        fn any_bit_flip_is_caught(value in proptest::collection::vec(any::<u8>(), 1..300), bit in any::<usize>()) {
            let mut batch = one(&value);
            let covered_bits = (batch.len() - CRC_START) * 8;
            let bit = bit % covered_bits;
            batch[CRC_START + bit / 8] ^= 1 << (bit % 8);
            prop_assert!(validate(&batch, u32::MAX).is_err());
        }
    }
}
