//! Typed errors of the engine, one enum per concern.

use std::io;

use crate::batch::Codec;

/// Why a record batch was refused before anything was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch of {len} bytes is shorter than the {header} byte header")]
    TooShort { len: usize, header: usize },
    #[error("batch header says {declared} bytes but {actual} bytes were given")]
    LengthMismatch { declared: u64, actual: usize },
    #[error("unsupported batch magic {0} (expected 1)")]
    BadMagic(u8),
    #[error("batch CRC mismatch: header has {expected:#010x}, bytes hash to {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("batch has record_count {count} but last_offset_delta {delta}")]
    BadCount { count: u32, delta: u32 },
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("malformed record at byte {at}: {what}")]
    MalformedRecord { at: usize, what: &'static str },
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: u32 },
    #[error(
        "{codec} records section inflates past {max} bytes; refused (decompression bomb guard)"
    )]
    DecompressedTooLarge { codec: Codec, max: usize },
    #[error("records section is not valid {codec}: {detail}")]
    CorruptCompressed { codec: Codec, detail: String },
    #[error("{codec} compression failed: {detail}")]
    CompressFailed { codec: Codec, detail: String },
    #[error("records section of {size} bytes exceeds the {max} bytes a consumer may inflate")]
    RecordsTooLarge { size: usize, max: usize },
    #[error("compression level {level} is not valid for {codec} (allowed: {allowed})")]
    BadCompressionLevel {
        codec: Codec,
        level: i32,
        allowed: &'static str,
    },
    #[error("unknown compression codec {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
    UnknownCodecName(String),
}

/// Errors of a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("offset {offset} is out of range: the log holds [{start}, {end})")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    #[error("log {dir} is poisoned by an earlier I/O failure ({cause}); it takes no more writes until the broker restarts and recovers it")]
    Poisoned { dir: String, cause: String },
    #[error("log {dir} is closed (its topic was deleted, or the broker is shutting down)")]
    Closed { dir: String },
    #[error("no space left on device while {context} in {dir}")]
    NoSpace { dir: String, context: &'static str },
    #[error("I/O error while {context} in {dir}: {source}")]
    Io {
        dir: String,
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("invalid log config: {0}")]
    Config(String),
    #[error("corrupt {what} in {path}: {detail}")]
    Corrupt {
        what: &'static str,
        path: String,
        detail: String,
    },
}

impl LogError {
    /// Classifies an I/O error: ENOSPC becomes `NoSpace`, the rest `Io`.
    pub fn io(dir: &str, context: &'static str, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            LogError::NoSpace {
                dir: dir.to_owned(),
                context,
            }
        } else {
            LogError::Io {
                dir: dir.to_owned(),
                context,
                source,
            }
        }
    }
}

pub type LogResult<T> = Result<T, LogError>;
