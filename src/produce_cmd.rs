//! `cfa produce TOPIC < lines`: one record per stdin line through
//! `cfa_net::client::Producer`. Prints nothing on success; on failure, one line naming
//! the first input line that failed and why.
//!
//! Records are sent as they are read (the producer batches them); the command waits for
//! every delivery report before it exits. At the first failure it stops reading, still
//! delivers the lines sent before it, and reports the failure of the earliest line.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};

use anyhow::{anyhow, bail, Result};
use cfa_engine::batch::BatchBuilder;
use cfa_engine::constants::BATCH_HEADER_BYTES;
use cfa_engine::ProducerStamp;
use cfa_net::client::{
    Acks, Admin, Codec, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
    TopicDescription,
};
use cfa_net::constants::PAYLOAD_BYTES_MAX;

use crate::client_cmd::{
    error_line, ClientOpts, PRODUCE_PENDING_REPORTS_MAX, RECORD_OVERHEAD_BYTES_MAX,
};

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    client: ClientOpts,
    /// The topic to write to.
    topic: String,
    /// The key of every record (records with one key go to one partition, in order).
    #[arg(long, conflicts_with = "key_separator")]
    key: Option<String>,
    /// Split each line at the first SEP: the key before it, the value after it.
    /// A line without SEP is an error.
    #[arg(long, value_name = "SEP", value_parser = parse_separator)]
    key_separator: Option<String>,
    /// When a record counts as delivered: 0 (sent), 1 (leader has it), all (in-sync set).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Batch compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
}

/// How a line becomes a record.
#[derive(Debug, Clone, Copy)]
enum KeyMode<'a> {
    None,
    Fixed(&'a [u8]),
    Separator(&'a [u8]),
}

/// The first failure and the input line (1-based) it belongs to.
#[derive(Debug)]
struct Failure {
    line: u64,
    error: anyhow::Error,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, error_line(&self.error))
    }
}

/// What the input lines are checked against before they are sent.
struct Limits {
    /// The topic's max.message.bytes, when the broker reported it.
    max_message_bytes: Option<usize>,
    /// The longest line read: the largest record the producer sends at all.
    line_bytes_max: usize,
    compression: Compression,
}

pub fn run(args: ProduceArgs) -> Result<()> {
    // Describing the topic first names an unknown topic or an unreachable broker at once
    // (rather than after the producer's max.block.ms), and gives max.message.bytes.
    let topic = Admin::new(&args.client.bootstrap)?.describe_topic(&args.topic)?;
    let max_message_bytes = max_message_bytes(&topic);
    let config = producer_config(&args, max_message_bytes)?;
    let limits = Limits {
        max_message_bytes,
        line_bytes_max: config.max_request_bytes - BATCH_HEADER_BYTES,
        compression: config.compression,
    };
    let producer = Producer::new(config)?;
    let key_mode = match (&args.key, &args.key_separator) {
        (Some(k), _) => KeyMode::Fixed(k.as_bytes()),
        (None, Some(s)) => KeyMode::Separator(s.as_bytes()),
        (None, None) => KeyMode::None,
    };
    let mut reports = VecDeque::new();
    let sent = send_lines(
        &producer,
        &args.topic,
        key_mode,
        &limits,
        &mut io::stdin().lock(),
        &mut reports,
    );
    // Delivers what was sent before any failure, so the outcome of every line before
    // the reported one is "delivered".
    producer.close();
    let delivered = wait_all(&mut reports);
    match (sent.err(), delivered.err()) {
        (None, None) => Ok(()),
        (Some(f), None) | (None, Some(f)) => Err(anyhow!("{f}")),
        (Some(a), Some(b)) => Err(anyhow!("{}", if a.line < b.line { a } else { b })),
    }
}

/// Reads lines until EOF or the first failure (a bad line, a refused send, or a failed
/// delivery report seen so far).
fn send_lines(
    producer: &Producer,
    topic: &str,
    key_mode: KeyMode<'_>,
    limits: &Limits,
    input: &mut impl BufRead,
    reports: &mut VecDeque<(u64, DeliveryFuture)>,
) -> Result<(), Failure> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        line += 1;
        let fail = |error| Failure { line, error };
        if !read_line(input, &mut buf, limits.line_bytes_max).map_err(fail)? {
            return Ok(());
        }
        let record = to_record(topic, &buf, key_mode).map_err(fail)?;
        check_size(&record, limits).map_err(fail)?;
        let report = producer.send(record).map_err(|e| fail(e.into()))?;
        reports.push_back((line, report));
        wait_done(reports)?;
    }
}

/// Takes the finished reports off the front (and waits for the oldest while too many
/// are pending); fails with the first failed one.
fn wait_done(reports: &mut VecDeque<(u64, DeliveryFuture)>) -> Result<(), Failure> {
    while let Some((_, front)) = reports.front() {
        if !front.is_done() && reports.len() <= PRODUCE_PENDING_REPORTS_MAX {
            return Ok(());
        }
        let (line, report) = reports.pop_front().expect("front exists");
        report.wait().map_err(|e| Failure {
            line,
            error: e.into(),
        })?;
    }
    Ok(())
}

/// Waits for every report, in input order; the first failure wins.
fn wait_all(reports: &mut VecDeque<(u64, DeliveryFuture)>) -> Result<(), Failure> {
    let mut first = None;
    for (line, report) in reports.drain(..) {
        if let Err(e) = report.wait() {
            first.get_or_insert(Failure {
                line,
                error: e.into(),
            });
        }
    }
    first.map_or(Ok(()), Err)
}

/// Reads one line into `buf` without its `\n` (or `\r\n`). Returns false at EOF. A line
/// longer than `max` bytes is an error: no record that large could be sent.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> Result<bool> {
    buf.clear();
    // Two spare bytes for the line end, so a maximal line with "\r\n" still fits.
    let limit = max as u64 + 2;
    let n = input.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > max {
        bail!("the line is longer than {max} bytes, the largest record cfa produce sends");
    }
    Ok(true)
}

fn to_record(topic: &str, line: &[u8], key_mode: KeyMode<'_>) -> Result<ProducerRecord> {
    let record = |key: Option<&[u8]>, value: &[u8]| {
        let r = ProducerRecord::new(topic, value.to_vec());
        match key {
            Some(k) => r.with_key(k.to_vec()),
            None => r,
        }
    };
    Ok(match key_mode {
        KeyMode::None => record(None, line),
        KeyMode::Fixed(k) => record(Some(k), line),
        KeyMode::Separator(sep) => {
            assert!(!sep.is_empty(), "the parser refuses an empty separator");
            let Some(at) = line.windows(sep.len()).position(|w| w == sep) else {
                bail!(
                    "no key separator {:?} in the line",
                    String::from_utf8_lossy(sep)
                );
            };
            record(Some(&line[..at]), &line[at + sep.len()..])
        }
    })
}

/// Refuses a record whose batch (alone, compressed as it will be sent) exceeds the
/// topic's max.message.bytes: the broker would refuse it, and the message then names the
/// record rather than a batch. The producer keeps batches within the limit (its batch
/// size is capped by it), so a record that passes is never refused for its size.
fn check_size(record: &ProducerRecord, limits: &Limits) -> Result<()> {
    let Some(max) = limits.max_message_bytes else {
        return Ok(());
    };
    let key = record.key.as_deref();
    let value = record.value.as_deref().unwrap_or_default();
    let bound =
        BATCH_HEADER_BYTES + RECORD_OVERHEAD_BYTES_MAX + key.map_or(0, <[u8]>::len) + value.len();
    if bound <= max {
        return Ok(());
    }
    // Near the limit: measure exactly (encoding once more is cheap next to sending).
    let size = one_record_batch_bytes(key, value, limits.compression)?;
    if size > max {
        bail!(
            "record of {size} bytes exceeds max.message.bytes {max} of topic '{}'",
            record.topic
        );
    }
    Ok(())
}

/// The bytes of a batch holding only this record, as the producer would encode it.
fn one_record_batch_bytes(
    key: Option<&[u8]>,
    value: &[u8],
    compression: Compression,
) -> Result<usize> {
    let mut builder = BatchBuilder::new(0);
    builder.push(0, key, Some(value), &[]);
    Ok(builder.finish_with(ProducerStamp::NONE, compression)?.len())
}

/// The topic's max.message.bytes, if the broker reported a number.
fn max_message_bytes(topic: &TopicDescription) -> Option<usize> {
    topic
        .configs
        .iter()
        .find(|c| c.key == "max.message.bytes")
        .and_then(|c| c.value.parse().ok())
}

fn producer_config(args: &ProduceArgs, max_message_bytes: Option<usize>) -> Result<ProducerConfig> {
    let mut c = ProducerConfig::new(&args.client.bootstrap);
    c.client_id = "cfa-produce".to_owned();
    c.acks = args.acks;
    // Idempotence needs acks=all; with 0 or 1 the user chose speed over exactly-once.
    c.enable_idempotence = args.acks == Acks::All;
    c.compression = args.compression;
    if let Some(max) = max_message_bytes {
        // Batches stay within the topic's limit (a batch never grows by compression), and
        // records up to the limit fit one request.
        c.batch_size_bytes = c.batch_size_bytes.min(max).max(BATCH_HEADER_BYTES + 1);
        c.max_request_bytes = c.max_request_bytes.max(max.min(PAYLOAD_BYTES_MAX));
    }
    c.validate()?;
    Ok(c)
}

fn parse_acks(s: &str) -> Result<Acks> {
    Acks::parse(s).ok_or_else(|| anyhow!("expected 0, 1 or all"))
}

fn parse_compression(s: &str) -> Result<Compression> {
    Ok(Compression::from(s.parse::<Codec>()?))
}

fn parse_separator(s: &str) -> Result<String> {
    if s.is_empty() {
        bail!("the key separator must not be empty");
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut r = io::Cursor::new(input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut r, &mut buf, max) {
                Ok(true) => out.push(Ok(buf.clone())),
                Ok(false) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn lines_lose_their_line_ends_and_keep_everything_else() {
        let got = lines(b"a\nb\r\n\n  c \nlast", 100);
        let want: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"a".to_vec()),
            Ok(b"b".to_vec()),
            Ok(b"".to_vec()),
            Ok(b"  c ".to_vec()),
            Ok(b"last".to_vec()),
        ];
        assert_eq!(got, want);
        assert!(lines(b"", 100).is_empty());
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused() {
        assert_eq!(lines(b"abcd\r\n", 4), vec![Ok(b"abcd".to_vec())]);
        let got = lines(b"abcde\nx\n", 4);
        assert_eq!(got.len(), 1);
        let err = got[0].as_ref().expect_err("too long");
        assert!(err.contains("longer than 4 bytes"), "{err}");
        assert!(lines(b"abcdefgh", 4)[0].is_err());
    }

    #[test]
    fn key_modes_split_at_the_first_separator() {
        let r = to_record("t", b"k1::v:1", KeyMode::Separator(b"::")).expect("split");
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:1"[..]));
        let r = to_record("t", b"::v", KeyMode::Separator(b"::")).expect("empty key");
        assert_eq!(r.key.as_deref(), Some(&b""[..]));
        let err = to_record("t", b"novalue", KeyMode::Separator(b":")).expect_err("no sep");
        assert!(err.to_string().contains("no key separator"), "{err}");
        let r = to_record("t", b"a:b", KeyMode::Fixed(b"game")).expect("fixed");
        assert_eq!(r.key.as_deref(), Some(&b"game"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"a:b"[..]));
        let r = to_record("t", b"a:b", KeyMode::None).expect("keyless");
        assert_eq!(r.key, None);
    }

    #[test]
    fn the_fast_size_bound_is_an_upper_bound() {
        for key_len in [0usize, 1, 200, 20_000] {
            for value_len in [0usize, 1, 127, 128, 16_383, 16_384, 300_000] {
                let key = vec![7u8; key_len];
                let value = vec![9u8; value_len];
                let exact =
                    one_record_batch_bytes(Some(&key), &value, Compression::NONE).expect("encodes");
                let bound = BATCH_HEADER_BYTES + RECORD_OVERHEAD_BYTES_MAX + key_len + value_len;
                assert!(exact <= bound, "{key_len}/{value_len}: {exact} > {bound}");
            }
        }
    }

    #[test]
    fn size_check_names_the_record_size_and_the_limit() {
        let limits = |max, compression| Limits {
            max_message_bytes: Some(max),
            line_bytes_max: 1 << 20,
            compression,
        };
        let small = ProducerRecord::new("t", vec![b'x'; 100]);
        check_size(&small, &limits(1024, Compression::NONE)).expect("fits");
        let big = ProducerRecord::new("t", vec![b'x'; 2000]);
        let err = check_size(&big, &limits(1024, Compression::NONE)).expect_err("too big");
        let exact = one_record_batch_bytes(None, &[b'x'; 2000], Compression::NONE).expect("e");
        assert_eq!(
            err.to_string(),
            format!("record of {exact} bytes exceeds max.message.bytes 1024 of topic 't'")
        );
        // Compressed, the same record fits: the check measures what is sent.
        check_size(&big, &limits(1024, Compression::from(Codec::Gzip))).expect("compressed");
        let no_limit = Limits {
            max_message_bytes: None,
            ..limits(0, Compression::NONE)
        };
        check_size(&big, &no_limit).expect("no limit known");
    }

    #[test]
    fn flags_parse_as_kafka_spells_them() {
        assert_eq!(parse_acks("0").expect("0"), Acks::None);
        assert_eq!(parse_acks("1").expect("1"), Acks::Leader);
        assert_eq!(parse_acks("all").expect("all"), Acks::All);
        assert!(parse_acks("2").is_err());
        assert_eq!(
            parse_compression("zstd").expect("zstd").codec(),
            Codec::Zstd
        );
        assert!(parse_compression("brotli").is_err());
        assert!(parse_separator("").is_err());
    }
}
