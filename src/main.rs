//! The `cfa` command: CLI parsing and wiring only; the work lives in the crates.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfa_bench::disk_probe;
use cfa_bench::engine_bench::{self, AckMode, Scenario};
use clap::{Parser, Subcommand};

mod broker_cmd;

#[derive(Parser)]
#[command(name = "cfa", version, about = "cfa: an event-streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker until SIGTERM or SIGINT (then it flushes, fsyncs and closes).
    Broker(broker_cmd::BrokerArgs),
    /// Benchmark an embedded storage engine in a temp dir under a standard load.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 7.0)]
    duration_s: f64,
    /// Partitions written concurrently.
    #[arg(long, default_value_t = 6)]
    partitions: usize,
    /// Executors, one per core (default: cores, at most one per partition).
    #[arg(long)]
    shards: Option<usize>,
    /// Run one custom batch size (bytes, records of 1 KiB) instead of the standard set:
    /// an acks=1 group-commit scenario and an fsync-per-batch scenario.
    #[arg(long)]
    batch_bytes: Option<usize>,
    /// Producers per partition, each with one batch in flight (custom runs only).
    #[arg(long)]
    producers: Option<usize>,
    /// Zero-fill ahead of the tail, bytes (0 disables).
    #[arg(long)]
    zero_fill_ahead_bytes: Option<u64>,
    /// Where the temp data dirs go (must support O_DIRECT: not tmpfs).
    #[arg(long, default_value = "target/cfa-bench-data")]
    data_dir: PathBuf,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Broker(args) => broker_cmd::run(args),
        Command::Bench(args) => bench(args),
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let mut scenarios = match args.batch_bytes {
        None => engine_bench::standard_scenarios(args.duration_s, args.partitions),
        Some(b) => custom_scenarios(&args, b),
    };
    if let Some(n) = args.shards {
        scenarios
            .iter_mut()
            .for_each(|s| s.shards = n.min(s.partitions));
    }
    if let Some(z) = args.zero_fill_ahead_bytes {
        scenarios
            .iter_mut()
            .for_each(|s| s.zero_fill_ahead_bytes = z);
    }
    eprintln!(
        "cfa bench: {} scenario(s) x {} s on {} partition(s), data in {}",
        scenarios.len(),
        args.duration_s,
        args.partitions,
        args.data_dir.display()
    );
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let probe = || disk_probe::fresh_append_write_fdatasync(&args.data_dir);
    let floor_before = probe().context("disk probe before the scenarios")?;
    let results =
        engine_bench::run_scenarios(&args.data_dir, &scenarios).context("engine bench failed")?;
    let floor_after = probe().context("disk probe after the scenarios")?;
    engine_bench::print_table(&results);
    print_floor(&results, &[&floor_before, &floor_after]);
    if let Some(path) = args.json {
        let json = serde_json::json!({
            "bench": "engine",
            "mb_is_bytes": 1_000_000,
            "disk_floor_before": floor_before,
            "disk_floor_after": floor_after,
            "results": results,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Prints the disk's own write+fdatasync cycle (measured before and after the scenarios)
/// and each fsync-per-batch scenario's ack p99 as a ratio to the worse of the two.
fn print_floor(results: &[engine_bench::ScenarioResult], floors: &[&disk_probe::ProbeResult]) {
    println!();
    for (when, f) in ["before", "after"].iter().zip(floors) {
        let c = &f.write_fdatasync_cycle_us;
        println!(
            "disk floor {when}: {} ({} cycles): p50 {} us, p99 {} us",
            f.pattern, f.cycles, c.p50, c.p99
        );
    }
    let floor_p99 = floors
        .iter()
        .map(|f| f.write_fdatasync_cycle_us.p99)
        .max()
        .unwrap_or(1)
        .max(1);
    for r in results
        .iter()
        .filter(|r| r.scenario.ack == AckMode::Durable)
    {
        println!(
            "{}: ack p99 {} us = {:.2} x the disk floor's p99",
            r.scenario.name,
            r.ack_latency_us.p99,
            r.ack_latency_us.p99 as f64 / floor_p99 as f64
        );
    }
}

fn custom_scenarios(args: &BenchArgs, batch_bytes: usize) -> Vec<Scenario> {
    let base = engine_bench::standard_scenarios(args.duration_s, args.partitions)
        .into_iter()
        .next()
        .expect("the standard set is not empty");
    [AckMode::Written, AckMode::Durable]
        .into_iter()
        .map(|ack| Scenario {
            name: format!("{ack:?}-{batch_bytes}b-batches").to_lowercase(),
            batch_bytes,
            producers_per_partition: args.producers.unwrap_or(base.producers_per_partition),
            ack,
            ..base.clone()
        })
        .collect()
}
