//! Compressed record batches: round trips through every codec, the broker-side checks on
//! compressed bytes (validate, CRC), and the decoder's refusals (garbage, truncation,
//! bit flips, decompression bombs), none of which may panic.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use cfa_engine::batch::{
    decode_records, encode_batch, encode_compressed, set_base_offset, validate, BatchHeader,
    CRC_START,
};
use cfa_engine::compression::{compress_into, decompress, Compression};
use cfa_engine::constants::{
    BATCH_HEADER_BYTES, DECOMPRESSED_BYTES_MAX, MAX_MESSAGE_BYTES_CEILING,
};
use cfa_engine::{BatchBuilder, BatchError, Codec, ProducerStamp};
use proptest::prelude::*;

const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One generated record: timestamp, key, value, headers.
#[derive(Debug, Clone)]
struct Rec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
}

/// Bytes that are sometimes compressible (runs of few symbols), sometimes not.
fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..max),
        proptest::collection::vec(0u8..4, 0..max),
        (any::<u8>(), 0..max * 4).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        any::<i64>().prop_map(|t| t >> 2), // deltas from the first stay within i64
        proptest::option::of(payload(40)),
        proptest::option::of(payload(300)),
        proptest::collection::vec((payload(16), proptest::option::of(payload(32))), 0..4),
    )
        .prop_map(|(ts, key, value, headers)| Rec {
            ts,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Codec> {
    proptest::sample::select(CODECS.to_vec())
}

fn build(recs: &[Rec], first_ts: i64, compression: Compression) -> BytesMut {
    let mut b = BatchBuilder::new(first_ts);
    for r in recs {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    b.finish_with(ProducerStamp::NONE, compression)
        .expect("compresses")
}

/// A batch of `count` records with compressible values, compressed with `codec`.
fn compressible(codec: Codec, count: u32) -> BytesMut {
    let mut b = BatchBuilder::new(1_000);
    for i in 0..count {
        let v = format!("value {i} of a compressible batch, value {i} again").repeat(4);
        b.push(1_000 + i64::from(i), Some(b"key"), Some(v.as_bytes()), &[]);
    }
    let batch = b
        .finish_with(ProducerStamp::NONE, Compression::from(codec))
        .expect("compresses");
    let header = BatchHeader::parse(&batch).expect("header");
    assert_eq!(
        header.codec(),
        Ok(codec),
        "compressible batch keeps its codec"
    );
    batch
}

/// Re-frames `section` under the header fields of `batch`, with a fresh CRC, so that the
/// decoder (not the CRC) has to notice what is wrong with it.
fn reframe(batch: &[u8], codec: Codec, section: &[u8]) -> Bytes {
    let h = BatchHeader::parse(batch).expect("header");
    encode_batch(
        codec,
        h.first_timestamp_ms.get(),
        h.max_timestamp_ms.get(),
        h.record_count(),
        ProducerStamp::NONE,
        section,
    )
    .freeze()
}

#[test]
fn compressible_batches_use_their_codec_and_shrink() {
    let raw = {
        let mut b = BatchBuilder::new(1_000);
        for i in 0..200 {
            let v = format!("value {i} of a compressible batch, value {i} again").repeat(4);
            b.push(1_000 + i, Some(b"key"), Some(v.as_bytes()), &[]);
        }
        b.finish(ProducerStamp::NONE)
    };
    for codec in CODECS {
        let batch = compressible(codec, 200);
        assert!(
            batch.len() * 3 < raw.len(),
            "{codec}: {} of {}",
            batch.len(),
            raw.len()
        );
        let recs = decode_records(&batch.freeze()).expect("decodes");
        assert_eq!(recs.len(), 200);
        assert_eq!(recs[199].timestamp_ms, 1_199);
    }
}

#[test]
fn incompressible_batches_are_stored_uncompressed() {
    // A short value of distinct bytes: every codec's framing makes it longer.
    let mut b = BatchBuilder::new(5);
    b.push(5, None, Some(b"\x01\x02\x03\x04\x05\x06\x07\x08"), &[]);
    let raw_len = b.size_bytes();
    for codec in CODECS {
        let mut b = BatchBuilder::new(5);
        b.push(5, None, Some(b"\x01\x02\x03\x04\x05\x06\x07\x08"), &[]);
        let batch = b
            .finish_with(ProducerStamp::NONE, Compression::from(codec))
            .expect("compresses")
            .freeze();
        let h = validate(&batch, u32::MAX).expect("valid");
        assert_eq!(h.codec(), Ok(Codec::None), "{codec}");
        assert_eq!(batch.len(), raw_len);
        let recs = decode_records(&batch).expect("decodes");
        assert_eq!(
            recs[0].value.as_deref(),
            Some(&b"\x01\x02\x03\x04\x05\x06\x07\x08"[..])
        );
    }
}

#[test]
fn codec_none_through_finish_with_equals_finish() {
    let make = || {
        let mut b = BatchBuilder::new(9);
        b.push(10, Some(b"k"), Some(b"v"), &[(b"h", None)]);
        b
    };
    let plain = make().finish(ProducerStamp::NONE);
    let with = make()
        .finish_with(ProducerStamp::NONE, Compression::NONE)
        .expect("no compression");
    assert_eq!(plain, with);
}

#[test]
fn producer_refuses_a_section_no_consumer_could_inflate() {
    let mut b = BatchBuilder::new(0);
    b.push(0, None, Some(&vec![0u8; DECOMPRESSED_BYTES_MAX]), &[]);
    let err = b
        .finish_with(ProducerStamp::NONE, Compression::from(Codec::Zstd))
        .expect_err("too large");
    assert!(
        matches!(err, BatchError::RecordsTooLarge { max, .. } if max == DECOMPRESSED_BYTES_MAX)
    );
}

/// Zeros that inflate to `len` bytes, compressed with each library directly (the engine's
/// own compressor refuses input this large).
fn bomb(codec: Codec, len: usize) -> Vec<u8> {
    let zeros = vec![0u8; len];
    match codec {
        Codec::None => zeros,
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&zeros).expect("gzip");
            e.finish().expect("gzip")
        }
        Codec::Snappy => snap::raw::Encoder::new()
            .compress_vec(&zeros)
            .expect("snappy"),
        Codec::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(&zeros).expect("lz4");
            e.finish().expect("lz4")
        }
        Codec::Zstd => zstd::bulk::compress(&zeros, 1).expect("zstd"),
    }
}

#[test]
fn decompression_bombs_are_refused() {
    for codec in CODECS {
        let section = bomb(codec, DECOMPRESSED_BYTES_MAX + 1);
        // small enough to store (snappy's best ratio is about 21:1, the others far more)
        let batch = encode_batch(codec, 0, 0, 1, ProducerStamp::NONE, &section).freeze();
        validate(&batch, MAX_MESSAGE_BYTES_CEILING).expect("the broker stores it: it cannot tell");
        assert_eq!(
            decode_records(&batch),
            Err(BatchError::DecompressedTooLarge {
                codec,
                max: DECOMPRESSED_BYTES_MAX
            }),
            "{codec}"
        );
    }
}

#[test]
fn exactly_the_limit_inflates() {
    for codec in CODECS {
        let section = bomb(codec, DECOMPRESSED_BYTES_MAX);
        let raw = decompress(codec, &section, DECOMPRESSED_BYTES_MAX).expect("at the limit");
        assert_eq!(raw.len(), DECOMPRESSED_BYTES_MAX);
    }
}

#[test]
fn snappy_length_header_claiming_too_much_is_refused_before_work() {
    // A raw snappy block is a varint length then elements; this one claims 1 GiB.
    let mut section = Vec::new();
    let mut n: u64 = 1 << 30;
    while n >= 0x80 {
        section.push((n as u8) | 0x80);
        n >>= 7;
    }
    section.push(n as u8);
    section.extend_from_slice(&[0u8; 16]);
    assert!(matches!(
        decompress(Codec::Snappy, &section, DECOMPRESSED_BYTES_MAX),
        Err(BatchError::DecompressedTooLarge { .. })
    ));
}

#[test]
fn decoders_report_codec_errors_by_type() {
    let batch = compressible(Codec::Gzip, 10);
    let section = &batch[BATCH_HEADER_BYTES..];
    // gzip bytes stored under the zstd codec
    let err = decode_records(&reframe(&batch, Codec::Zstd, section)).expect_err("not zstd");
    assert!(
        matches!(
            err,
            BatchError::CorruptCompressed {
                codec: Codec::Zstd,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("records section is not valid zstd"),
        "{msg}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every codec returns exactly the records that went in, with offsets from the
    /// base offset, and the stored batch passes the broker's checks uncompressed.
    #[test]
    fn records_round_trip_through_every_codec(
        recs in proptest::collection::vec(rec(), 1..12),
        first_ts in any::<i64>().prop_map(|t| t >> 2),
        codec in codec(),
        base in 0u64..u64::MAX / 2,
    ) {
        let mut batch = build(&recs, first_ts, Compression::from(codec));
        set_base_offset(&mut batch, base);
        let batch = batch.freeze();
        let h = validate(&batch, u32::MAX).expect("valid");
        let stored = h.codec().expect("known codec");
        prop_assert!(stored == codec || stored == Codec::None);
        prop_assert_eq!(h.record_count() as usize, recs.len());
        let out = decode_records(&batch).expect("decodes");
        prop_assert_eq!(out.len(), recs.len());
        for (i, (got, want)) in out.iter().zip(&recs).enumerate() {
            prop_assert_eq!(got.offset, base + i as u64);
            prop_assert_eq!(got.timestamp_ms, want.ts);
            prop_assert_eq!(got.key.as_deref(), want.key.as_deref());
            prop_assert_eq!(got.value.as_deref(), want.value.as_deref());
            prop_assert_eq!(got.headers.len(), want.headers.len());
            for (gh, (wk, wv)) in got.headers.iter().zip(&want.headers) {
                prop_assert_eq!(gh.key.as_ref(), wk.as_slice());
                prop_assert_eq!(gh.value.as_deref(), wv.as_deref());
            }
        }
    }

    /// Compress then decompress is the identity on any bytes, at every codec.
    #[test]
    fn sections_round_trip(raw in payload(4096), codec in codec()) {
        let mut out = BytesMut::new();
        compress_into(Compression::from(codec), &raw, &mut out).expect("compresses");
        prop_assert_eq!(decompress(codec, &out, raw.len()).expect("inflates"), raw);
    }

    /// Random bytes stored under any codec give a typed error, never a panic.
    #[test]
    fn garbage_sections_are_refused(section in proptest::collection::vec(any::<u8>(), 0..600), codec in codec()) {
        let batch = encode_batch(codec, 0, 0, 1, ProducerStamp::NONE, &section).freeze();
        prop_assert!(decode_records(&batch).is_err());
        let _ = decompress(codec, &section, DECOMPRESSED_BYTES_MAX);
    }

    /// A compressed section cut short anywhere is refused.
    #[test]
    fn truncated_sections_are_refused(codec in codec(), count in 1u32..40, cut in any::<prop::sample::Index>()) {
        let batch = compressible(codec, count);
        let section = &batch[BATCH_HEADER_BYTES..];
        let keep = cut.index(section.len());
        let err = decode_records(&reframe(&batch, codec, &section[..keep]));
        prop_assert!(err.is_err(), "{} cut to {} of {}", codec, keep, section.len());
    }

    /// A flipped bit anywhere in a compressed batch is caught by the CRC before anyone
    /// inflates it; and inflating the flipped section anyway never panics.
    #[test]
    fn flipped_bits_are_caught(codec in codec(), count in 1u32..40, bit in any::<prop::sample::Index>()) {
        let batch = compressible(codec, count);
        validate(&batch, u32::MAX).expect("compressed batch validates");
        let mut flipped = batch.clone();
        let bit = bit.index((flipped.len() - CRC_START) * 8);
        flipped[CRC_START + bit / 8] ^= 1 << (bit % 8);
        prop_assert!(validate(&flipped, u32::MAX).is_err());

        let mut section = batch[BATCH_HEADER_BYTES..].to_vec();
        let bit = bit % (section.len() * 8);
        section[bit / 8] ^= 1 << (bit % 8);
        let _ = decode_records(&reframe(&batch, codec, &section));
    }

    /// A stored codec of 5-7 is refused by validate and by the decoder.
    #[test]
    fn unknown_codec_bits_are_refused(bits in 5u16..8) {
        let mut patched = compressible(Codec::Lz4, 3);
        patched[18..20].copy_from_slice(&bits.to_le_bytes());
        // a fresh CRC over the patched attributes, so that the codec check has to refuse it
        let crc = crc32fast::hash(&patched[CRC_START..]);
        patched[12..16].copy_from_slice(&crc.to_le_bytes());
        prop_assert_eq!(validate(&patched, u32::MAX).err(), Some(BatchError::UnknownCodec(bits as u8)));
        prop_assert_eq!(decode_records(&patched.freeze()).err(), Some(BatchError::UnknownCodec(bits as u8)));
    }

    /// encode_compressed with a level gives the same records as the default level.
    #[test]
    fn levels_only_change_the_bytes(
        recs in proptest::collection::vec(rec(), 1..6),
        level in prop_oneof![(1i32..=9).prop_map(|l| (Codec::Gzip, l)), (-5i32..=19).prop_map(|l| (Codec::Zstd, l))],
    ) {
        let raw = build(&recs, 0, Compression::NONE);
        let h = BatchHeader::parse(&raw).expect("header");
        let compression = Compression::new(level.0, Some(level.1)).expect("valid level");
        let batch = encode_compressed(
            compression,
            h.first_timestamp_ms.get(),
            h.max_timestamp_ms.get(),
            h.record_count(),
            ProducerStamp::NONE,
            &raw[BATCH_HEADER_BYTES..],
        ).expect("compresses").freeze();
        validate(&batch, u32::MAX).expect("valid");
        prop_assert_eq!(decode_records(&batch).expect("decodes"), decode_records(&raw.freeze()).expect("decodes"));
    }
}
