//! The `cfa` command: CLI parsing and wiring only; the work lives in the crates.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfa_bench::engine_bench::{self, AckMode, Scenario};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cfa", version, about = "cfa: an event-streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    let results =
        engine_bench::run_scenarios(&args.data_dir, &scenarios).context("engine bench failed")?;
    engine_bench::print_table(&results);
    if let Some(path) = args.json {
        let json =
            serde_json::json!({ "bench": "engine", "mb_is_bytes": 1_000_000, "results": results });
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
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
