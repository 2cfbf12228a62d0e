//! Compression of a batch's records section (attributes bits 0-2 name the codec).
//!
//! The whole records section (everything after the 64-byte header) is compressed as one
//! block. The batch CRC covers the stored, compressed bytes, so the broker validates a
//! batch without inflating it; only clients compress and decompress.
//!
//! Stored formats (the byte contract is in docs/format.md):
//! - gzip: an RFC 1952 gzip stream (flate2); concatenated members are accepted.
//! - snappy: one *raw* snappy block (snap::raw), no framing. The section is one block
//!   already, and the batch CRC covers it, so the framed format's per-64-KiB CRC32C chunks
//!   would buy nothing; the raw header's length lets a bomb be refused before any work.
//! - lz4: one LZ4 frame (lz4_flex::frame), 64 KiB independent blocks, content size set,
//!   no checksums (the batch CRC covers the bytes).
//! - zstd: one zstd frame (RFC 8878) with its content size; windows above
//!   2^`ZSTD_WINDOW_LOG_MAX` are refused.
//!
//! Decompression is bounded: decoders stream into a buffer and stop one byte past the
//! caller's limit (normally [`DECOMPRESSED_BYTES_MAX`]); size fields in the compressed data
//! are only allocation hints, capped by that limit. Invalid input is a typed
//! [`BatchError`], never a panic.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use crate::batch::Codec;
use crate::constants::{
    DECOMPRESSED_BYTES_MAX, GZIP_LEVEL_DEFAULT, GZIP_LEVEL_MAX, GZIP_LEVEL_MIN, ZSTD_LEVEL_DEFAULT,
    ZSTD_LEVEL_MAX, ZSTD_LEVEL_MIN, ZSTD_WINDOW_LOG_MAX,
};
use crate::error::BatchError;

impl Codec {
    /// The codec's name as Kafka spells it in `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = BatchError;

    /// Parses a `compression.type` value: none, gzip, snappy, lz4 or zstd.
    fn from_str(name: &str) -> Result<Codec, BatchError> {
        [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ]
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| BatchError::UnknownCodecName(name.to_owned()))
    }
}

/// A codec with a valid level: what a producer compresses its batches with.
///
/// Only gzip and zstd have levels; a level given to another codec is refused rather than
/// ignored, so that a mistyped config does not silently do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    codec: Codec,
    /// Meaningful for gzip and zstd only; 0 for the others.
    level: i32,
}

impl Compression {
    pub const NONE: Compression = Compression {
        codec: Codec::None,
        level: 0,
    };

    /// `level: None` takes the codec's default (gzip 6, zstd 3, as Kafka).
    pub fn new(codec: Codec, level: Option<i32>) -> Result<Compression, BatchError> {
        let Some(level) = level else {
            return Ok(Compression::from(codec));
        };
        let (min, max, allowed) = match codec {
            Codec::Gzip => (GZIP_LEVEL_MIN, GZIP_LEVEL_MAX, "1 to 9"),
            Codec::Zstd => (ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX, "-131072 to 22"),
            Codec::None | Codec::Snappy | Codec::Lz4 => (1, 0, "none, this codec has no levels"),
        };
        if !(min..=max).contains(&level) {
            return Err(BatchError::BadCompressionLevel {
                codec,
                level,
                allowed,
            });
        }
        Ok(Compression { codec, level })
    }

    pub fn codec(self) -> Codec {
        self.codec
    }

    /// The level, for the codecs that have one.
    pub fn level(self) -> Option<i32> {
        match self.codec {
            Codec::Gzip | Codec::Zstd => Some(self.level),
            Codec::None | Codec::Snappy | Codec::Lz4 => None,
        }
    }
}

impl From<Codec> for Compression {
    /// The codec at its default level.
    fn from(codec: Codec) -> Compression {
        let level = match codec {
            Codec::Gzip => GZIP_LEVEL_DEFAULT,
            Codec::Zstd => ZSTD_LEVEL_DEFAULT,
            Codec::None | Codec::Snappy | Codec::Lz4 => 0,
        };
        Compression { codec, level }
    }
}

/// Refuses a records section larger than [`DECOMPRESSED_BYTES_MAX`]: no consumer could
/// inflate it, compressed or not.
pub fn check_records_size(raw_bytes: usize) -> Result<(), BatchError> {
    if raw_bytes > DECOMPRESSED_BYTES_MAX {
        return Err(BatchError::RecordsTooLarge {
            size: raw_bytes,
            max: DECOMPRESSED_BYTES_MAX,
        });
    }
    Ok(())
}

/// Appends `raw` compressed with `compression` to `out` (a plain copy for `Codec::None`).
/// Refuses input larger than [`DECOMPRESSED_BYTES_MAX`] ([`check_records_size`]).
pub fn compress_into(
    compression: Compression,
    raw: &[u8],
    out: &mut BytesMut,
) -> Result<(), BatchError> {
    check_records_size(raw.len())?;
    match compression.codec {
        Codec::None => {
            out.put_slice(raw);
            Ok(())
        }
        Codec::Gzip => gzip_compress(raw, compression.level, out),
        Codec::Snappy => snappy_compress(raw, out),
        Codec::Lz4 => lz4_compress(raw, out),
        Codec::Zstd => zstd_compress(raw, compression.level, out),
    }
}

/// Inflates a records section stored with `codec`. Output longer than `max_bytes` is
/// refused with `DecompressedTooLarge` once that many bytes were produced; input that is
/// not valid for the codec (garbage, truncated, trailing bytes) with `CorruptCompressed`.
pub fn decompress(codec: Codec, stored: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    match codec {
        Codec::None if stored.len() > max_bytes => Err(too_large(codec, max_bytes)),
        Codec::None => Ok(stored.to_vec()),
        Codec::Gzip => gzip_decompress(stored, max_bytes),
        Codec::Snappy => snappy_decompress(stored, max_bytes),
        Codec::Lz4 => lz4_decompress(stored, max_bytes),
        Codec::Zstd => zstd_decompress(stored, max_bytes),
    }
}

fn gzip_compress(raw: &[u8], level: i32, out: &mut BytesMut) -> Result<(), BatchError> {
    assert!((GZIP_LEVEL_MIN..=GZIP_LEVEL_MAX).contains(&level));
    let level = flate2::Compression::new(level.unsigned_abs());
    // flate2 writes mtime 0 and no file name: the same records give the same bytes.
    let mut encoder = flate2::write::GzEncoder::new(out.writer(), level);
    encoder
        .write_all(raw)
        .and_then(|()| encoder.try_finish())
        .map_err(|e| compress_failed(Codec::Gzip, &e))
}

fn gzip_decompress(stored: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    // The trailer's ISIZE (length mod 2^32) is only a hint for the first allocation.
    let hint = stored
        .last_chunk::<4>()
        .map_or(0, |isize| u32::from_le_bytes(*isize) as usize);
    // MultiGzDecoder also parses whatever follows the first member, so trailing garbage is
    // an error rather than silently ignored.
    let decoder = flate2::bufread::MultiGzDecoder::new(stored);
    read_bounded(Codec::Gzip, decoder, hint, max_bytes)
}

fn snappy_compress(raw: &[u8], out: &mut BytesMut) -> Result<(), BatchError> {
    let bound = snap::raw::max_compress_len(raw.len());
    if bound == 0 {
        return Err(BatchError::CompressFailed {
            codec: Codec::Snappy,
            detail: format!("{} bytes is too long for one snappy block", raw.len()),
        });
    }
    let start = out.len();
    out.resize(start + bound, 0);
    let result = snap::raw::Encoder::new().compress(raw, &mut out[start..]);
    match result {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(compress_failed(Codec::Snappy, &e))
        }
    }
}

fn snappy_decompress(stored: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    // A raw block starts with its decompressed length: a bomb is refused before any work,
    // and the buffer is allocated once (never above the limit). The decoder checks that
    // the block produces exactly that many bytes.
    let len = snap::raw::decompress_len(stored).map_err(|e| corrupt(Codec::Snappy, &e))?;
    if len > max_bytes {
        return Err(too_large(Codec::Snappy, max_bytes));
    }
    let mut out = vec![0; len];
    let n = snap::raw::Decoder::new()
        .decompress(stored, &mut out)
        .map_err(|e| corrupt(Codec::Snappy, &e))?;
    assert_eq!(n, len, "snap checks the block against its header");
    Ok(out)
}

fn lz4_compress(raw: &[u8], out: &mut BytesMut) -> Result<(), BatchError> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    // 64 KiB independent blocks, as Kafka's LZ4 stream: decoders need little memory.
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .content_size(Some(raw.len() as u64));
    let mut encoder = FrameEncoder::with_frame_info(info, out.writer());
    encoder
        .write_all(raw)
        .map_err(|e| compress_failed(Codec::Lz4, &e))?;
    encoder
        .finish()
        .map(|_| ())
        .map_err(|e| compress_failed(Codec::Lz4, &e))
}

fn lz4_decompress(stored: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    // The section must be exactly one frame: lz4_flex would read what follows as the start
    // of another frame and quietly stop at 4 to 6 stray bytes.
    match lz4_frame_len(stored) {
        Some(len) if len == stored.len() => {}
        Some(len) => {
            return Err(BatchError::CorruptCompressed {
                codec: Codec::Lz4,
                detail: format!("{} bytes follow the lz4 frame", stored.len() - len),
            })
        }
        None => {
            return Err(BatchError::CorruptCompressed {
                codec: Codec::Lz4,
                detail: "not one complete lz4 frame".to_owned(),
            })
        }
    }
    // The decoder checks block sizes, and the content size when the frame has one.
    let decoder = lz4_flex::frame::FrameDecoder::new(stored);
    read_bounded(
        Codec::Lz4,
        decoder,
        stored.len().saturating_mul(4),
        max_bytes,
    )
}

/// Length of the LZ4 frame (format 1.6.x) at the start of `stored`, found by walking its
/// block size words without decompressing; `None` when it is not one or runs past the end.
fn lz4_frame_len(stored: &[u8]) -> Option<usize> {
    const MAGIC: u32 = 0x184D_2204;
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    const FLG_DICT_ID: u8 = 0x01;
    let word_at = |pos: usize| -> Option<u32> {
        let bytes = stored.get(pos..pos.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    };
    if word_at(0)? != MAGIC {
        return None;
    }
    let flg = *stored.get(4)?;
    let has = |flag: u8, bytes: usize| if flg & flag != 0 { bytes } else { 0 };
    // magic, FLG, BD, optional content size and dictionary id, header checksum
    let mut pos = 4 + 2 + has(FLG_CONTENT_SIZE, 8) + has(FLG_DICT_ID, 4) + 1;
    loop {
        let word = word_at(pos)?;
        pos += 4;
        if word == 0 {
            break; // end mark
        }
        let block_bytes = (word & 0x7fff_ffff) as usize; // high bit: stored uncompressed
        pos = pos
            .checked_add(block_bytes)?
            .checked_add(has(FLG_BLOCK_CHECKSUM, 4))?;
    }
    pos += has(FLG_CONTENT_CHECKSUM, 4);
    (pos <= stored.len()).then_some(pos)
}

fn zstd_compress(raw: &[u8], level: i32, out: &mut BytesMut) -> Result<(), BatchError> {
    assert!((ZSTD_LEVEL_MIN..=ZSTD_LEVEL_MAX).contains(&level));
    // The one-shot API knows the input size: it writes the content size into the frame and
    // keeps the window within the input, so decoders' ZSTD_WINDOW_LOG_MAX always suffices.
    let bound = zstd::zstd_safe::compress_bound(raw.len());
    let start = out.len();
    out.resize(start + bound, 0);
    match zstd::bulk::compress_to_buffer(raw, &mut out[start..], level) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(compress_failed(Codec::Zstd, &e))
        }
    }
}

fn zstd_decompress(stored: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let hint = match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
        Ok(None) | Err(_) => stored.len().saturating_mul(4),
    };
    let corrupt_zstd = |e: std::io::Error| corrupt(Codec::Zstd, &e);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(stored)
        .map_err(corrupt_zstd)?
        .single_frame();
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(corrupt_zstd)?;
    let out = read_bounded(Codec::Zstd, &mut decoder, hint, max_bytes)?;
    let rest = decoder.finish();
    if !rest.is_empty() {
        return Err(BatchError::CorruptCompressed {
            codec: Codec::Zstd,
            detail: format!("{} bytes follow the zstd frame", rest.len()),
        });
    }
    Ok(out)
}

/// Reads `reader` to its end into one buffer, stopping one byte past `max_bytes`.
/// `hint` sizes the first allocation (capped by the limit); growth past it doubles, so the
/// buffer never exceeds twice the limit whatever the input claims.
fn read_bounded(
    codec: Codec,
    reader: impl Read,
    hint: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(hint.min(max_bytes));
    let limit = u64::try_from(max_bytes).map_or(u64::MAX, |m| m.saturating_add(1));
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, &e))?;
    if out.len() > max_bytes {
        return Err(too_large(codec, max_bytes));
    }
    Ok(out)
}

fn too_large(codec: Codec, max: usize) -> BatchError {
    BatchError::DecompressedTooLarge { codec, max }
}

fn corrupt(codec: Codec, e: &dyn fmt::Display) -> BatchError {
    BatchError::CorruptCompressed {
        codec,
        detail: e.to_string(),
    }
}

fn compress_failed(codec: Codec, e: &dyn fmt::Display) -> BatchError {
    BatchError::CompressFailed {
        codec,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    #[test]
    fn level_constants_match_the_zstd_library() {
        let range = zstd::compression_level_range();
        assert_eq!(*range.start(), ZSTD_LEVEL_MIN);
        assert_eq!(*range.end(), ZSTD_LEVEL_MAX);
        assert_eq!(zstd::DEFAULT_COMPRESSION_LEVEL, ZSTD_LEVEL_DEFAULT);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for codec in ALL {
            assert_eq!(codec.name().parse::<Codec>(), Ok(codec));
        }
        assert_eq!(
            "lz5".parse::<Codec>(),
            Err(BatchError::UnknownCodecName("lz5".into()))
        );
        assert!("GZIP".parse::<Codec>().is_err());
    }

    #[test]
    fn levels_are_checked_per_codec() {
        assert_eq!(
            Compression::new(Codec::Gzip, None).map(|c| c.level()),
            Ok(Some(6))
        );
        assert_eq!(
            Compression::new(Codec::Zstd, None).map(|c| c.level()),
            Ok(Some(3))
        );
        assert_eq!(
            Compression::new(Codec::Zstd, Some(-5)).map(|c| c.level()),
            Ok(Some(-5))
        );
        assert_eq!(
            Compression::new(Codec::Gzip, Some(9)).map(|c| c.level()),
            Ok(Some(9))
        );
        assert!(Compression::new(Codec::Gzip, Some(0)).is_err());
        assert!(Compression::new(Codec::Gzip, Some(10)).is_err());
        assert!(Compression::new(Codec::Zstd, Some(23)).is_err());
        assert!(Compression::new(Codec::Lz4, Some(1)).is_err());
        assert!(Compression::new(Codec::Snappy, Some(1)).is_err());
        assert_eq!(
            Compression::new(Codec::Lz4, None).map(|c| c.level()),
            Ok(None)
        );
    }

    #[test]
    fn every_level_of_gzip_and_a_spread_of_zstd_round_trip() {
        let raw: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let cases = (1..=9)
            .map(|l| (Codec::Gzip, l))
            .chain([-100, -1, 0, 1, 3, 19, 22].map(|l| (Codec::Zstd, l)));
        for (codec, level) in cases {
            let c = Compression::new(codec, Some(level)).expect("valid level");
            let mut out = BytesMut::new();
            compress_into(c, &raw, &mut out).expect("compresses");
            assert_eq!(decompress(codec, &out, raw.len()).as_deref(), Ok(&raw[..]));
        }
    }

    #[test]
    fn compress_appends_after_existing_bytes() {
        let raw = b"abcabcabcabcabcabcabcabc".repeat(10);
        for codec in ALL {
            let mut out = BytesMut::from(&b"prefix"[..]);
            compress_into(Compression::from(codec), &raw, &mut out).expect("compresses");
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(decompress(codec, &out[6..], 1 << 20), Ok(raw.clone()));
        }
    }

    #[test]
    fn limit_is_exact() {
        let raw = vec![7u8; 4096];
        for codec in ALL {
            let mut out = BytesMut::new();
            compress_into(Compression::from(codec), &raw, &mut out).expect("compresses");
            assert_eq!(decompress(codec, &out, 4096).map(|v| v.len()), Ok(4096));
            assert_eq!(
                decompress(codec, &out, 4095),
                Err(BatchError::DecompressedTooLarge { codec, max: 4095 })
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_stream_are_refused() {
        let raw = b"hello hello hello hello".repeat(20);
        for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd, Codec::Snappy] {
            let mut out = BytesMut::new();
            compress_into(Compression::from(codec), &raw, &mut out).expect("compresses");
            out.put_slice(b"junk");
            assert!(
                matches!(
                    decompress(codec, &out, 1 << 20),
                    Err(BatchError::CorruptCompressed { .. })
                ),
                "{codec}"
            );
        }
    }

    #[test]
    fn zstd_frame_asking_for_a_huge_window_is_refused() {
        // A streamed frame (no content size) compressed with a 2^27 window: the decoder
        // would have to allocate 128 MiB for it.
        let raw = vec![1u8; 1 << 16];
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
        encoder.window_log(ZSTD_WINDOW_LOG_MAX + 2).expect("window");
        encoder.write_all(&raw).expect("write");
        let framed = encoder.finish().expect("finish");
        let err = decompress(Codec::Zstd, &framed, DECOMPRESSED_BYTES_MAX);
        assert!(
            matches!(&err, Err(BatchError::CorruptCompressed { detail, .. }) if detail.contains("memory")),
            "{err:?}"
        );
        // The same frame decodes when the decoder allows the window: the refusal above is
        // the window limit, not a broken frame.
        let mut decoder = zstd::stream::read::Decoder::new(&framed[..]).expect("decoder");
        decoder
            .window_log_max(ZSTD_WINDOW_LOG_MAX + 2)
            .expect("window");
        let mut inflated = Vec::new();
        decoder.read_to_end(&mut inflated).expect("decodes");
        assert_eq!(inflated, raw);
    }
}
