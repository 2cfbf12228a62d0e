//! `cfa bench compare`: every workload against cfa (embedded broker), then against each
//! baseline broker found in ../shared/baselines, in one sitting, with the machine's own
//! limits (machine-limits.sh: disk direct-I/O write, fdatasync, loopback TCP) measured
//! before and after; prints the ratios and saves JSON, a plot and a markdown summary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cfa_bench::baselines::{self, BaselineLoad};
use cfa_bench::compare::{self, baseline_load, outcome_line, Comparison, Entry};
use cfa_bench::constants::{PROBE_DURATION, PROBE_LOADED_STREAMS_MAX};
use cfa_bench::disk_probe::{self, ProbeResult};
use cfa_bench::floor;
use cfa_bench::plot;
use cfa_bench::results::{self, RunDocument};
use cfa_bench::workload::{Workload, STANDARD};

use crate::bench_cmd::{self, RunArgs};

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The baselines (default: ../shared/baselines beside the repository).
    #[arg(long)]
    pub baselines: Option<PathBuf>,
    /// Scratch space for the baselines' data dirs and the tansu install.
    #[arg(long, default_value = "target/cfa-baselines")]
    pub work_dir: PathBuf,
    /// Do not run machine-limits.sh (no ratios to the disk and loopback).
    #[arg(long)]
    pub no_limits: bool,
    /// Run cfa only.
    #[arg(long)]
    pub no_baselines: bool,
}

pub fn run(mut args: CompareArgs) -> Result<()> {
    if args.run.workloads.is_empty() {
        args.run.workloads = STANDARD.iter().map(|(n, _)| (*n).to_owned()).collect();
    }
    let baselines_dir = args
        .baselines
        .clone()
        .unwrap_or_else(baselines::default_baselines_dir);
    // With --no-save nothing goes to the results dir; machine-limits' report (which the
    // script must write somewhere) lands beside the brokers' data instead.
    let stamp_dir = if args.run.no_save {
        &args.run.data_dir
    } else {
        &args.run.results_dir
    };
    let stamp = results::result_stem(stamp_dir, "compare");
    let before = limits(&args, &baselines_dir, &stamp, "before")?;
    let workloads = bench_cmd::workloads(&args.run)?;
    let mut entries = Vec::new();
    for w in &workloads {
        entries.push(compare_one(&args, &baselines_dir, w, before.clone())?);
    }
    let after = limits(&args, &baselines_dir, &stamp, "after")?;
    let comparison = Comparison {
        mb_is_bytes: 1_000_000,
        machine_limits_before: before,
        machine_limits_after: after,
        entries,
    };
    let markdown = compare::markdown(&comparison);
    println!("\n{markdown}");
    if args.run.no_save {
        return Ok(());
    }
    results::write_json(&stamp.with_extension("json"), &comparison)?;
    std::fs::write(stamp.with_extension("md"), &markdown)
        .with_context(|| format!("writing {}", stamp.with_extension("md").display()))?;
    plot::write_comparison_svg(
        &stamp.with_extension("svg"),
        "cfa vs. baselines vs. this machine's limits (produce MB/s, publish p99)",
        &compare::rows(&comparison),
    )?;
    eprintln!("saved {}.{{json,md,svg}}", stamp.display());
    Ok(())
}

fn limits(
    args: &CompareArgs,
    baselines_dir: &Path,
    stamp: &Path,
    when: &str,
) -> Result<Option<serde_json::Value>> {
    if args.no_limits {
        return Ok(None);
    }
    if let Some(path) = &args.run.machine_limits {
        return bench_cmd::read_machine_limits(path).map(Some);
    }
    let script = baselines_dir.join("../tools/machine-limits.sh");
    let report = PathBuf::from(format!("{}-machine-limits-{when}.txt", stamp.display()));
    compare::machine_limits(&script, &args.run.data_dir, &report)
        .with_context(|| format!("running {}", script.display()))
}

fn compare_one(
    args: &CompareArgs,
    baselines_dir: &Path,
    w: &Workload,
    limits: Option<serde_json::Value>,
) -> Result<Entry> {
    let floor = floor_of(args, w)?;
    let mut run_args = args.run.clone();
    run_args.machine_limits = None;
    let result = bench_cmd::run_one(&run_args, w)?;
    let floor_after = floor_after(args, w, &floor)?;
    let machine = cfa_bench::machine::Machine::probe(&args.run.data_dir, limits);
    let doc = RunDocument::new(result, w, machine, cfa_bench::machine::Build::probe());
    if !args.run.no_save {
        let (json, svg) =
            results::save(&results::result_stem(&args.run.results_dir, &w.name), &doc)?;
        eprintln!("saved {} and {}", json.display(), svg.display());
    }
    let load = baseline_load(w, &doc);
    let disk_under_load = disk_under_load(args, &load, doc.result.produce_mb_per_s)?;
    let outcomes = if args.no_baselines {
        Vec::new()
    } else {
        eprintln!(
            "{}: baselines on the same load ({} records)",
            w.name, load.records
        );
        baselines::run_all(baselines_dir, &args.work_dir, &load)
    };
    for o in &outcomes {
        eprintln!("  {}", outcome_line(o));
    }
    Ok(Entry {
        workload: w.name.clone(),
        cfa: doc,
        baseline_load: load,
        baselines: outcomes,
        floor,
        floor_after,
        disk_under_load,
    })
}

/// For an fsync-per-batch workload: the disk alone under the rate cfa just sustained
/// (`disk_probe::loaded_append_write_fdatasync`, one stream per partition), measured right
/// after the run, so its publish p99 can be read against what the disk gives at that load
/// as well as against the idle fdatasync p99. None with --no-limits.
fn disk_under_load(
    args: &CompareArgs,
    load: &BaselineLoad,
    produce_mb_per_s: f64,
) -> Result<Option<ProbeResult>> {
    if args.no_limits || !load.durable || produce_mb_per_s <= 0.0 {
        return Ok(None);
    }
    let streams = (load.partitions as usize).clamp(1, PROBE_LOADED_STREAMS_MAX);
    let r = disk_probe::loaded_append_write_fdatasync(
        &args.run.data_dir,
        streams,
        produce_mb_per_s * 1e6,
        PROBE_DURATION,
    )
    .context("the disk probe under load")?;
    eprintln!(
        "{}: the disk alone under this load ({}): write + fdatasync p50 {} us, p99 {} us ({} cycles)",
        load.workload,
        r.pattern,
        r.write_fdatasync_cycle_us.p50,
        r.write_fdatasync_cycle_us.p99,
        r.cycles
    );
    Ok(Some(r))
}

/// The fresh-blocks floor once more, right after the cfa run, when one ran before it.
fn floor_after(
    args: &CompareArgs,
    w: &Workload,
    before: &[floor::FloorResult],
) -> Result<Option<floor::FloorResult>> {
    if before.is_empty() {
        return Ok(None);
    }
    run_floor(args, w, floor::Blocks::Fresh, "after the run: ").map(Some)
}

/// One floor run of `w` on `blocks`, said on stderr after `when`.
fn run_floor(
    args: &CompareArgs,
    w: &Workload,
    blocks: floor::Blocks,
    when: &str,
) -> Result<floor::FloorResult> {
    let config = floor::FloorConfig::for_workload(w, blocks);
    let r = floor::run(&args.run.data_dir, &config)?;
    eprintln!("{}: {when}{}", w.name, floor::summary_line(&r));
    Ok(r)
}

/// The pipeline floor (fresh blocks, then written blocks) of a max-rate workload without
/// consumers, measured just before its cfa run; none with --no-limits.
fn floor_of(args: &CompareArgs, w: &Workload) -> Result<Vec<floor::FloorResult>> {
    if args.no_limits || !w.is_max_rate() || w.consumer_groups > 0 {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&args.run.data_dir)
        .with_context(|| format!("creating {}", args.run.data_dir.display()))?;
    [floor::Blocks::Fresh, floor::Blocks::Written]
        .into_iter()
        .map(|blocks| run_floor(args, w, blocks, ""))
        .collect()
}
