//! What the client verbs (`topic`, `produce`, `consume`, `group`) share: the
//! `--bootstrap` option, the CLI's limits, and writing to stdout.

use std::io::{self, Write};

/// Where the client verbs look for a broker unless told: the broker's own default listen
/// address, so `cfa broker` and `cfa produce` find each other with no flags.
pub const BOOTSTRAP_DEFAULT: &str = cfa_net::constants::LISTEN_DEFAULT;

/// Delivery reports `cfa produce` holds before it waits for the oldest: bounds the memory
/// a long stdin costs (the producer's buffer memory bounds the records themselves).
pub const PRODUCE_PENDING_REPORTS_MAX: usize = 16_384;

/// Bytes a record adds to a batch beyond its key and value, at most: the format's
/// varints (length, timestamp and offset deltas, key and value lengths, header count) at
/// their widest plus the attributes byte, rounded up. `cfa produce` checks records against
/// max.message.bytes exactly only when this bound says they might not fit.
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 64;

/// Longest a single `poll` of `cfa consume` waits, so that Ctrl-C, `--timeout-ms` and
/// group changes are noticed within this much time.
pub const CONSUME_POLL_MS: u64 = 200;

/// With `--group` and `--timeout-ms`, how much longer than the timeout `cfa consume`
/// waits to join its group before it gives up with an error: the coordinator holds a new
/// group's first generation back for its initial rebalance delay (3 s), and a live group
/// waits for every member to rejoin.
pub const CONSUME_JOIN_WAIT_MS_MAX: u64 = 60_000;

/// Bytes `cfa consume` buffers for stdout before it writes them (flushed after every poll
/// as well, so a slow topic still shows each record at once).
pub const STDOUT_BUFFER_BYTES: usize = 64 << 10;

/// The broker to talk to.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOpts {
    /// Broker address(es): host:port, comma-separated.
    #[arg(long, global = true, default_value = BOOTSTRAP_DEFAULT, value_name = "ADDR")]
    pub bootstrap: String,
}

/// Whether a failed write to stdout means the reader went away (`cfa consume | head`):
/// a normal end, not an error.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// An error and its causes on one line, each cause once: client errors already name
/// their source in their own message, so plain `{:#}` would repeat it.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace(['\n', '\r'], " ")
}

/// Writes `lines` (each without its newline) to stdout and flushes. Used by the verbs
/// that print small listings; a closed stdout ends the listing quietly.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = lines
        .into_iter()
        .try_for_each(|l| writeln!(out, "{l}"))
        .and_then(|()| out.flush());
    match result {
        Err(e) if !is_broken_pipe(&e) => Err(anyhow::Error::new(e).context("writing to stdout")),
        _ => Ok(()),
    }
}

/// Lays out rows as left-aligned columns two spaces apart (the last column unpadded).
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        })
        .collect()
}

/// An optional number as the tables print it: `-` when unknown.
pub fn or_dash(n: Option<impl ToString>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_leaves_the_last_unpadded() {
        let rows = vec![
            vec!["TOPIC".into(), "PARTITION".into(), "LAG".into()],
            vec!["soccer-long".into(), "0".into(), "12".into()],
        ];
        assert_eq!(
            table(&rows),
            vec![
                "TOPIC        PARTITION  LAG".to_owned(),
                "soccer-long  0          12".to_owned(),
            ]
        );
        assert!(table(&[]).is_empty());
    }

    #[test]
    fn error_lines_name_each_cause_once() {
        let e = anyhow::Error::new(std::io::Error::other("disk on fire")).context("writing x");
        assert_eq!(error_line(&e), "writing x: disk on fire");
        let batch = cfa_engine::BatchError::UnknownCodecName("brotli".into());
        let client = cfa_net::client::ClientError::Batch {
            context: "Produce to t-0".into(),
            source: batch.clone(),
        };
        let e = anyhow::Error::new(client);
        assert_eq!(error_line(&e), format!("Produce to t-0: {batch}"));
        let e = anyhow::anyhow!("two\nlines");
        assert_eq!(error_line(&e), "two lines");
    }

    #[test]
    fn dash_for_unknown() {
        assert_eq!(or_dash(Some(3u64)), "3");
        assert_eq!(or_dash(None::<u64>), "-");
    }
}
