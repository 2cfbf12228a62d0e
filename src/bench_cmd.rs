//! `cfa bench`: the broker through the client SDK (default), or the storage engine alone
//! (`--engine`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cfa_bench::engine_bench::{self, AckMode, Scenario};
use cfa_bench::{broker_bench, disk_probe};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Benchmark the storage engine alone (no network, no client) instead of a broker.
    #[arg(long)]
    engine: bool,
    /// Drive this external broker instead of starting an embedded one.
    #[arg(long)]
    bootstrap: Option<SocketAddr>,
    /// Seconds each scenario runs (default 10 for the broker, 7 for --engine).
    #[arg(long)]
    duration_s: Option<f64>,
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

fn duration_s(args: &BenchArgs) -> f64 {
    args.duration_s
        .unwrap_or(if args.engine { 7.0 } else { 10.0 })
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.engine {
        engine(args)
    } else {
        broker(args)
    }
}

/// The broker over loopback through the client SDK: acks=1 and acks=all at max rate.
fn broker(args: BenchArgs) -> Result<()> {
    let partitions = u32::try_from(args.partitions).context("--partitions")?;
    let scenarios = broker_bench::standard_scenarios(duration_s(&args), partitions);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let tmp = tempfile::tempdir_in(&args.data_dir)
        .with_context(|| format!("a temp dir in {}", args.data_dir.display()))?;
    let embedded = match args.bootstrap {
        Some(_) => None,
        None => {
            let log = cfa_engine::LogConfig {
                flush: cfa_engine::FlushPolicy::Interval {
                    bytes: 4 << 20,
                    ms: 100,
                },
                ..cfa_engine::LogConfig::default()
            };
            Some(
                broker_bench::start_embedded(tmp.path(), log)
                    .context("starting the embedded broker")?,
            )
        }
    };
    let addr = match (&embedded, args.bootstrap) {
        (_, Some(a)) => a,
        (Some(b), None) => b.local_addr(),
        (None, None) => unreachable!("one of them is set"),
    };
    eprintln!(
        "cfa bench: broker at {addr} ({}), {} scenario(s) x {} s, {} partitions, 1 KiB records",
        if embedded.is_some() {
            "embedded, data in a temp dir"
        } else {
            "external"
        },
        scenarios.len(),
        duration_s(&args),
        partitions
    );
    let results = broker_bench::run(addr, &scenarios).context("broker bench failed")?;
    if let Some(b) = embedded {
        b.shutdown().context("stopping the embedded broker")?;
    }
    broker_bench::print_table(&results);
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "bench": "broker", "mb_is_bytes": 1_000_000, "bootstrap": addr.to_string(), "results": results });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn engine(args: BenchArgs) -> Result<()> {
    let mut scenarios = match args.batch_bytes {
        None => engine_bench::standard_scenarios(duration_s(&args), args.partitions),
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
        duration_s(&args),
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
    let base = engine_bench::standard_scenarios(duration_s(args), args.partitions)
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
