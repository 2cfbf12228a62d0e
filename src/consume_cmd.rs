//! `cfa consume TOPIC`: prints records, one value per line (key TAB value with
//! `--print-key`), through `cfa_net::client::Consumer`.
//!
//! - Without `--group`: a standalone consumer assigned every partition, starting at the
//!   end (only new records) or, with `--from-beginning`, at the log start. Nothing is
//!   committed.
//! - With `--group`: a group member (the coordinator shares the partitions among the
//!   group's consumers). It starts at the group's committed offsets; where the group
//!   committed nothing, at the end or, with `--from-beginning`, at the log start. After
//!   each batch it prints, it commits exactly the records printed: the next run of the
//!   group starts after them.
//!
//! When it stops (as kafka-console-consumer): after `--max-messages N` records; when
//! `--timeout-ms T` passes with no new record; with neither flag, only on Ctrl-C
//! (SIGINT) or SIGTERM. With `--group`, waiting for the group to form is not idleness:
//! the `--timeout-ms` clock starts when the consumer has joined (and restarts at each
//! rebalance); joining may take up to `CONSUME_JOIN_WAIT_MS_MAX` on top of it. Reaching a
//! stop condition exits 0, as does a closed stdout (`cfa consume ... | head`; noticed at
//! the next write, so an idle topic keeps it running until a record or a signal comes).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cfa_net::client::{
    Admin, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition,
};

use crate::client_cmd::{
    is_broken_pipe, ClientOpts, CONSUME_JOIN_WAIT_MS_MAX, CONSUME_POLL_MS, STDOUT_BUFFER_BYTES,
};

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    client: ClientOpts,
    /// The topic to read.
    topic: String,
    /// Consume as a member of this group and commit what is printed.
    #[arg(long)]
    group: Option<String>,
    /// Start at the log start (with --group: where the group committed nothing).
    #[arg(long)]
    from_beginning: bool,
    /// Stop after printing N records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    /// Stop once T ms pass with no new record. With neither this nor --max-messages,
    /// consume until Ctrl-C.
    #[arg(long, value_name = "T")]
    timeout_ms: Option<u64>,
    /// Print the key, a tab, then the value.
    #[arg(long)]
    print_key: bool,
}

/// Why the consume loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    MaxMessages,
    Idle,
    Signal,
    StdoutClosed,
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is handled (a slow close) exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    // Describing the topic first names an unknown topic or an unreachable broker at once,
    // and gives the partitions a standalone consumer assigns itself.
    let topic = Admin::new(&args.client.bootstrap)?.describe_topic(&args.topic)?;
    let mut consumer = Consumer::new(consumer_config(&args))?;
    match &args.group {
        Some(_) => consumer.subscribe(&[args.topic.as_str()], None)?,
        None => consumer.assign(
            topic
                .partitions
                .iter()
                .map(|p| TopicPartition::new(&args.topic, p.partition))
                .collect(),
        )?,
    }
    let consumed = consume(&mut consumer, &args, &stop);
    // Leaves the group whatever happened, so the group does not wait a session timeout.
    let closed = consumer.close();
    consumed?;
    closed?;
    Ok(())
}

fn consumer_config(args: &ConsumeArgs) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(&args.client.bootstrap, args.group.as_deref());
    c.client_id = "cfa-consume".to_owned();
    // Commits are explicit: exactly the records printed.
    c.enable_auto_commit = false;
    c.auto_offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    if let Some(n) = args.max_messages {
        // Fetch no more than is printed, so few records are read in vain.
        c.max_poll_records = c
            .max_poll_records
            .min(usize::try_from(n).unwrap_or(usize::MAX));
    }
    c
}

/// Polls and prints until a stop condition holds.
fn consume(consumer: &mut Consumer, args: &ConsumeArgs, stop: &AtomicBool) -> Result<Stop> {
    let mut out = io::BufWriter::with_capacity(STDOUT_BUFFER_BYTES, io::stdout().lock());
    let mut clock = IdleClock::new(args.timeout_ms, args.group.is_some());
    let mut printed = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(Stop::Signal);
        }
        if args.max_messages.is_some_and(|n| printed >= n) {
            return Ok(Stop::MaxMessages);
        }
        let now = Instant::now();
        clock.observe_generation(consumer.generation_id(), now);
        let expired = clock.expired(now).with_context(|| {
            format!(
                "consuming '{}' in group '{}'",
                args.topic,
                args.group.as_deref().unwrap_or("-")
            )
        })?;
        if expired {
            return Ok(Stop::Idle);
        }
        let records = consumer.poll(clock.poll_wait(now))?;
        if records.is_empty() {
            continue;
        }
        clock.restart(Instant::now());
        let room = args.max_messages.map_or(u64::MAX, |n| n - printed);
        let take = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(records.len());
        let batch = &records[..take];
        match print_batch(&mut out, batch, args.print_key) {
            Err(e) if is_broken_pipe(&e) => return Ok(Stop::StdoutClosed),
            other => other.context("writing to stdout")?,
        }
        printed += take as u64;
        if let Some(group) = &args.group {
            consumer
                .commit_offsets_sync(next_offsets(batch))
                .with_context(|| format!("committing the offsets of group '{group}'"))?;
        }
    }
}

/// Writes the records and flushes, so each batch shows at once.
fn print_batch(
    out: &mut impl Write,
    records: &[ConsumerRecord],
    print_key: bool,
) -> io::Result<()> {
    for r in records {
        if print_key {
            write_field(out, r.key.as_deref())?;
            out.write_all(b"\t")?;
        }
        write_field(out, r.value.as_deref())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A key or value as printed: its bytes, or `null` when absent (as Kafka prints it).
fn write_field(out: &mut impl Write, field: Option<&[u8]>) -> io::Result<()> {
    out.write_all(field.unwrap_or(b"null"))
}

/// The offset to commit per partition: one past the last record printed.
fn next_offsets(records: &[ConsumerRecord]) -> BTreeMap<TopicPartition, u64> {
    let mut next = BTreeMap::new();
    for r in records {
        let offset = next.entry(r.topic_partition()).or_insert(0);
        *offset = (*offset).max(r.offset + 1);
    }
    next
}

/// The `--timeout-ms` clock: how long the consumer has seen nothing new.
#[derive(Debug)]
struct IdleClock {
    timeout: Option<Duration>,
    /// Group mode: the clock runs from the first join (joining is not idleness).
    group: bool,
    since: Instant,
    /// The generation last seen (-1: not joined yet).
    generation: i32,
}

impl IdleClock {
    fn new(timeout_ms: Option<u64>, group: bool) -> IdleClock {
        IdleClock {
            timeout: timeout_ms.map(Duration::from_millis),
            group,
            since: Instant::now(),
            generation: -1,
        }
    }

    fn restart(&mut self, now: Instant) {
        self.since = now;
    }

    /// A new generation (the first join, a rebalance) is something new: the clock
    /// restarts.
    fn observe_generation(&mut self, generation: i32, now: Instant) {
        if self.group && generation != self.generation {
            self.generation = generation;
            self.restart(now);
        }
    }

    fn joining(&self) -> bool {
        self.group && self.generation < 0
    }

    /// The longest the clock may run before the consumer stops (None: forever).
    fn limit(&self) -> Option<Duration> {
        let grace = Duration::from_millis(CONSUME_JOIN_WAIT_MS_MAX);
        self.timeout
            .map(|t| if self.joining() { t + grace } else { t })
    }

    /// Whether the consumer should stop now; an error if it never joined its group.
    fn expired(&self, now: Instant) -> Result<bool> {
        let Some(limit) = self.limit() else {
            return Ok(false);
        };
        let idle = now.saturating_duration_since(self.since);
        if idle < limit {
            return Ok(false);
        }
        if self.joining() {
            bail!("did not join the group within {} ms", limit.as_millis());
        }
        Ok(true)
    }

    /// How long the next poll may wait: short enough to notice signals and the timeout.
    fn poll_wait(&self, now: Instant) -> Duration {
        let tick = Duration::from_millis(CONSUME_POLL_MS);
        match self.limit() {
            None => tick,
            Some(limit) => {
                let left = (self.since + limit).saturating_duration_since(now);
                tick.min(left)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn record(p: u32, offset: u64, key: Option<&str>, value: Option<&str>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: p,
            offset,
            timestamp_ms: 0,
            key: key.map(|k| k.as_bytes().to_vec().into()),
            value: value.map(|v| v.as_bytes().to_vec().into()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn values_print_one_a_line_keys_before_a_tab_nulls_as_null() {
        let records = [
            record(0, 0, Some("k"), Some("v1")),
            record(0, 1, None, Some("v2")),
            record(1, 0, Some("k2"), None),
        ];
        let mut out = Vec::new();
        print_batch(&mut out, &records, false).expect("write");
        assert_eq!(out, b"v1\nv2\nnull\n");
        out.clear();
        print_batch(&mut out, &records, true).expect("write");
        assert_eq!(out, b"k\tv1\nnull\tv2\nk2\tnull\n");
    }

    #[test]
    fn commits_name_one_past_the_last_printed_record_per_partition() {
        let records = [
            record(0, 4, None, Some("a")),
            record(1, 9, None, Some("b")),
            record(0, 5, None, Some("c")),
        ];
        let next = next_offsets(&records);
        assert_eq!(next.len(), 2);
        assert_eq!(next[&TopicPartition::new("t", 0)], 6);
        assert_eq!(next[&TopicPartition::new("t", 1)], 10);
    }

    #[test]
    fn the_idle_clock_runs_from_the_last_record() {
        let t0 = Instant::now();
        let mut c = IdleClock::new(Some(1000), false);
        c.restart(t0);
        assert!(!c.expired(t0 + Duration::from_millis(999)).expect("ok"));
        assert!(c.expired(t0 + Duration::from_millis(1000)).expect("ok"));
        assert_eq!(
            c.poll_wait(t0 + Duration::from_millis(950)),
            Duration::from_millis(50)
        );
        c.restart(t0 + Duration::from_millis(900));
        assert!(!c.expired(t0 + Duration::from_millis(1800)).expect("ok"));
        // Standalone consumers have no generation: it never restarts the clock.
        c.observe_generation(-1, t0 + Duration::from_millis(1850));
        assert!(c.expired(t0 + Duration::from_millis(1900)).expect("ok"));
        let forever = IdleClock::new(None, false);
        assert!(!forever.expired(t0 + Duration::from_secs(3600)).expect("ok"));
        assert_eq!(
            forever.poll_wait(t0),
            Duration::from_millis(CONSUME_POLL_MS)
        );
    }

    #[test]
    fn in_a_group_the_clock_starts_at_the_join_and_joining_is_bounded() {
        let t0 = Instant::now();
        let mut c = IdleClock::new(Some(1000), true);
        c.restart(t0);
        // Not joined: the timeout alone does not stop it.
        assert!(!c.expired(t0 + Duration::from_millis(1500)).expect("ok"));
        c.observe_generation(1, t0 + Duration::from_millis(3000));
        assert!(!c.expired(t0 + Duration::from_millis(3999)).expect("ok"));
        assert!(c.expired(t0 + Duration::from_millis(4000)).expect("ok"));
        // A rebalance restarts it.
        c.observe_generation(2, t0 + Duration::from_millis(3900));
        assert!(!c.expired(t0 + Duration::from_millis(4500)).expect("ok"));
        let never = IdleClock::new(Some(1000), true);
        let late = never.since + Duration::from_millis(1000 + CONSUME_JOIN_WAIT_MS_MAX);
        let err = never.expired(late).expect_err("never joined");
        assert!(err.to_string().contains("did not join the group"), "{err}");
    }
}
