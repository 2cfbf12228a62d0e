//! `cfa bench`: workloads (bench/workloads/*.toml) against an embedded broker (or
//! `--bootstrap ADDR`) through the client SDK; `cfa bench compare` runs them beside the
//! baseline brokers; `--engine` benchmarks the storage engine alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cfa_bench::disk_probe;
use cfa_bench::driver::{self, EmbeddedBroker, RunResult};
use cfa_bench::engine_bench::{self, AckMode, Scenario};
use cfa_bench::floor;
use cfa_bench::machine::{parse_machine_limits, Build, Machine};
use cfa_bench::results::{self, RunDocument};
use cfa_bench::workload::{Workload, DEFAULT_SUITE, DEFAULT_SUITE_DURATION_S};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Run workloads against cfa and every baseline broker found in ../shared/baselines,
    /// with the machine's disk and loopback limits, and print the ratios. Without
    /// --workload it runs all eight standard workloads at their own durations.
    Compare(crate::bench_compare::CompareArgs),
    /// The pipeline floor: the records of a max-rate workload moved over loopback TCP to
    /// direct-I/O files by threads that do only what any broker and client must (frame,
    /// CRC, send, receive, check, write, ack). It is the CPU bound of a max-rate run on
    /// this machine; `bench compare` reports cfa as a share of it. Default workload:
    /// max-throughput-1kb.
    Floor(RunArgs),
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// A workload: a standard name (max-throughput-1kb, durable-1kb, latency-1kb-50mbps,
    /// many-partitions, hot-key, consume-tail, consume-backlog, seed-capacity) or a path
    /// to a workload file. Repeat for several. Default: the short standard run
    /// (max-throughput-1kb, latency-1kb-50mbps, consume-tail; 8 s each).
    #[arg(long = "workload")]
    pub workloads: Vec<String>,
    /// Seconds of each workload's measured phase (overrides the workload file).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Seconds of warm-up before it (overrides the workload file).
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Overrides a hot-key workload's compound-key spread (1 = one hot key).
    #[arg(long)]
    pub hot_key_spread: Option<u32>,
    /// Drive this external broker instead of starting an embedded one per workload.
    #[arg(long)]
    pub bootstrap: Option<SocketAddr>,
    /// Also write the results as JSON to this file (one workload: its object; several:
    /// an array of them).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where each run's JSON and plot (SVG) are saved.
    #[arg(long, default_value = "bench/results")]
    pub results_dir: PathBuf,
    /// Do not save JSON and plots in --results-dir.
    #[arg(long)]
    pub no_save: bool,
    /// machine-limits.sh's output, to put its figures into the results' `machine`.
    #[arg(long)]
    pub machine_limits: Option<PathBuf>,
    /// Where embedded brokers keep their data (must support O_DIRECT: not tmpfs).
    #[arg(long, default_value = "target/cfa-bench-data")]
    pub data_dir: PathBuf,
    /// Benchmark the storage engine alone (no network, no client) instead of a broker.
    #[arg(long)]
    engine: bool,
    /// --engine: partitions written concurrently.
    #[arg(long, default_value_t = 6)]
    partitions: usize,
    /// --engine: executors, one per core (default: cores, at most one per partition).
    #[arg(long)]
    shards: Option<usize>,
    /// --engine: one custom batch size (bytes, records of 1 KiB) instead of the standard
    /// set: an acks=1 group-commit scenario and an fsync-per-batch scenario.
    #[arg(long)]
    batch_bytes: Option<usize>,
    /// --engine: producers per partition, each with one batch in flight (custom runs).
    #[arg(long)]
    producers: Option<usize>,
    /// --engine: zero-fill ahead of the tail, bytes (0 disables).
    #[arg(long)]
    zero_fill_ahead_bytes: Option<u64>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    match args.command {
        Some(BenchCommand::Compare(c)) => crate::bench_compare::run(c),
        Some(BenchCommand::Floor(a)) => floor(a).map(|_| ()),
        None if args.run.engine => engine(args.run),
        None => {
            run_workloads(&args.run)?;
            Ok(())
        }
    }
}

/// Loads the workloads named on the command line (or the default suite) with the
/// command line's overrides applied.
pub fn workloads(args: &RunArgs) -> Result<Vec<Workload>> {
    let names: Vec<String> = if args.workloads.is_empty() {
        DEFAULT_SUITE.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.workloads.clone()
    };
    names
        .iter()
        .map(|n| {
            let mut w = Workload::load(n)?;
            if args.workloads.is_empty() {
                w.duration_s = DEFAULT_SUITE_DURATION_S;
            }
            w.apply_overrides(args.duration_s, args.warmup_s, args.hot_key_spread)?;
            Ok(w)
        })
        .collect()
}

/// machine-limits.sh's saved output (`--machine-limits FILE`): the JSON of its
/// `JSON: {...}` line, or an error naming the file.
pub fn read_machine_limits(path: &std::path::Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_machine_limits(&text).with_context(|| {
        format!(
            "{}: no \"JSON: {{...}}\" line (machine-limits.sh output expected)",
            path.display()
        )
    })
}

/// Runs every workload, prints the table, saves JSON and plots; returns the documents.
pub fn run_workloads(args: &RunArgs) -> Result<Vec<RunDocument>> {
    let list = workloads(args)?;
    let limits = args
        .machine_limits
        .as_deref()
        .map(read_machine_limits)
        .transpose()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let machine = Machine::probe(&args.data_dir, limits);
    let build = Build::probe();
    let mut docs = Vec::new();
    for w in &list {
        let result = run_one(args, w)?;
        println!("{}", results::perf_test_line(&result));
        let doc = RunDocument::new(result, w, machine.clone(), build.clone());
        if !args.no_save {
            let (json, svg) =
                results::save(&results::result_stem(&args.results_dir, &w.name), &doc)?;
            eprintln!("saved {} and {}", json.display(), svg.display());
        }
        docs.push(doc);
    }
    println!();
    let runs: Vec<RunResult> = docs.iter().map(|d| d.result.clone()).collect();
    results::print_table(&runs);
    if let Some(path) = &args.json {
        match docs.as_slice() {
            [one] => results::write_json(path, one)?,
            many => results::write_json(path, &many)?,
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(docs)
}

/// One workload: against the external broker, or a fresh embedded one with the
/// workload's tuning profile.
pub fn run_one(args: &RunArgs, w: &Workload) -> Result<RunResult> {
    eprintln!(
        "== {}: {} (profile {}, {} s + {} s warm-up)",
        w.name, w.description, w.tuning_name, w.duration_s, w.warmup_s
    );
    if let Some(addr) = args.bootstrap {
        return driver::run(addr, &addr.to_string(), None, w, true)
            .with_context(|| format!("workload {}", w.name));
    }
    let broker = EmbeddedBroker::start(&args.data_dir, w)
        .with_context(|| format!("starting the embedded broker for {}", w.name))?;
    let metrics = broker.metrics();
    let result = driver::run(broker.addr(), "embedded", Some(&metrics), w, true);
    let stopped = broker.stop();
    let result = result.with_context(|| format!("workload {}", w.name))?;
    stopped.context("stopping the embedded broker")?;
    if result.errors > 0 && result.produce_records == 0 {
        bail!(
            "workload {}: nothing acknowledged, {} errors (first: {})",
            w.name,
            result.errors,
            result.error_detail.first.clone().unwrap_or_default()
        );
    }
    Ok(result)
}

fn duration_s(args: &RunArgs) -> f64 {
    args.duration_s.unwrap_or(7.0)
}

/// `cfa bench floor`: each named workload's floor (default max-throughput-1kb).
pub fn floor(mut args: RunArgs) -> Result<Vec<floor::FloorResult>> {
    if args.workloads.is_empty() {
        args.workloads = vec![FLOOR_DEFAULT_WORKLOAD.to_owned()];
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let mut out = Vec::new();
    for w in workloads(&args)? {
        for blocks in [floor::Blocks::Fresh, floor::Blocks::Written] {
            let r = floor::run(
                &args.data_dir,
                &floor::FloorConfig::for_workload(&w, blocks),
            )?;
            println!("{}: {}", w.name, floor::summary_line(&r));
            out.push(r);
        }
    }
    if let Some(path) = &args.json {
        results::write_json(path, &out)?;
    }
    Ok(out)
}

/// The workload `cfa bench floor` measures when none is named.
const FLOOR_DEFAULT_WORKLOAD: &str = "max-throughput-1kb";

fn engine(args: RunArgs) -> Result<()> {
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

fn custom_scenarios(args: &RunArgs, batch_bytes: usize) -> Vec<Scenario> {
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
