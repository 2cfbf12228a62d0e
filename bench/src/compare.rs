//! The comparison behind `cfa bench compare`: a cfa run and the baselines' runs of the
//! same load, side by side with the machine's limits (machine-limits.sh), as a markdown
//! table and plot rows. Ratios are taken within one sitting only.

use std::path::Path;
use std::process::Command;

use cfa_engine::tuning::FlushMode;
use serde::Serialize;

use crate::baselines::{BaselineLoad, BaselineOutcome};
use crate::disk_probe::ProbeResult;
use crate::floor::{Blocks, FloorResult};
use crate::machine::parse_machine_limits;
use crate::plot::ComparisonRow;
use crate::results::RunDocument;
use crate::workload::{ConsumerStart, Workload};

/// One workload's line-up.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub workload: String,
    pub cfa: RunDocument,
    pub baseline_load: BaselineLoad,
    pub baselines: Vec<BaselineOutcome>,
    /// The pipeline floor of a max-rate workload on this machine (`floor.rs`), fresh
    /// blocks first; empty for fixed-rate workloads or when the limits were not measured.
    pub floor: Vec<FloorResult>,
    /// The fresh-blocks floor again, right after the cfa run: the disk of a shared machine
    /// moves from minute to minute (1.27M to 1.72M records/s within an hour here), so
    /// cfa's share is read against the floor on both sides of its run.
    pub floor_after: Option<FloorResult>,
    /// For an fsync-per-batch workload: the disk alone, write + fdatasync cycles at the
    /// rate cfa sustained, one stream per partition (`disk_probe.rs`); else none.
    pub disk_under_load: Option<ProbeResult>,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub mb_is_bytes: u64,
    pub machine_limits_before: Option<serde_json::Value>,
    pub machine_limits_after: Option<serde_json::Value>,
    pub entries: Vec<Entry>,
}

/// Runs machine-limits.sh on `data_dir`, writes its report to `report_file` and returns
/// its JSON (`None`, said on stderr, when the script is absent or fails).
pub fn machine_limits(
    script: &Path,
    data_dir: &Path,
    report_file: &Path,
) -> std::io::Result<Option<serde_json::Value>> {
    if !script.is_file() {
        eprintln!(
            "machine-limits: {} is absent; no ratios to the machine's limits",
            script.display()
        );
        return Ok(None);
    }
    std::fs::create_dir_all(data_dir)?;
    eprintln!(
        "machine-limits: bash {} {}",
        script.display(),
        data_dir.display()
    );
    let out = Command::new("bash").arg(script).arg(data_dir).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(dir) = report_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(report_file, &text)?;
    if !out.status.success() {
        eprintln!(
            "machine-limits failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return Ok(None);
    }
    Ok(parse_machine_limits(&text))
}

/// Records a baseline run gets: as many as cfa acknowledged in its window (the same
/// volume), the backlog for consume-backlog, bounded.
const BASELINE_RECORDS_MAX: u64 = 20_000_000;

pub fn baseline_load(w: &Workload, doc: &RunDocument) -> BaselineLoad {
    let r = &doc.result;
    let records = match (w.consumer_start, r.backlog_records) {
        (ConsumerStart::Backlog, Some(n)) => n,
        _ => r.produce_records,
    };
    let durable = w.acks() == "all"
        && w.profile.log.flush_mode.unwrap_or(FlushMode::EveryBatch) == FlushMode::EveryBatch;
    BaselineLoad {
        workload: w.name.clone(),
        record_bytes: w.mean_record_bytes().round() as usize,
        partitions: w.total_partitions() as u32,
        producers: w.producers,
        records: records.clamp(1, BASELINE_RECORDS_MAX),
        durable,
        acks: w.acks().to_owned(),
        batch_bytes: w.producer.batch_size_bytes.unwrap_or(16 << 10),
        linger_ms: w.producer.linger_ms.unwrap_or(5),
        consumers: w.consumers(),
        max_seconds: w.duration_s * 6.0 + 60.0,
        // A backlog is built at max rate (then read); other fixed-rate loads keep their rate.
        rate_mb_per_s: r
            .target_records_per_s
            .filter(|_| w.consumer_start != ConsumerStart::Backlog)
            .map(|rate| rate * w.mean_record_bytes() / 1e6),
    }
}

pub fn outcome_line(o: &BaselineOutcome) -> String {
    match o {
        BaselineOutcome::Ran(b) => format!(
            "{}: {:.0} records/s, {:.1} MB/s, p99 {}",
            b.system,
            b.produce_records_per_s,
            b.produce_mb_per_s,
            b.publish_latency_us
                .p99
                .map_or("-".to_owned(), |us| format!("{:.2} ms", us as f64 / 1000.0))
        ),
        BaselineOutcome::Absent { system, reason } => format!("{system}: absent ({reason})"),
        BaselineOutcome::Skipped { system, reason } => format!("{system}: not run ({reason})"),
        BaselineOutcome::Failed { system, error } => format!("{system}: failed ({error})"),
    }
}

fn num(v: &Option<serde_json::Value>, key: &str) -> Option<f64> {
    v.as_ref()?.get(key)?.as_f64()
}

/// The machine's limits as MB/s and us, the mean of before and after.
struct Limits {
    disk_mb_per_s: Option<f64>,
    loopback_mb_per_s: Option<f64>,
    fdatasync_p99_us: Option<f64>,
}

fn mean_limits(c: &Comparison) -> Limits {
    let mean = |key: &str, scale: f64| {
        let v: Vec<f64> = [&c.machine_limits_before, &c.machine_limits_after]
            .iter()
            .filter_map(|l| num(l, key))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 * scale)
    };
    Limits {
        disk_mb_per_s: mean("seq_write_direct_1m_qd32_mbps", 1.0),
        loopback_mb_per_s: mean("loopback_tcp_1stream_gbyteps", 1000.0),
        fdatasync_p99_us: mean("fdatasync_64k_p99_us", 1.0),
    }
}

/// `a / b` with two decimals, "-" without a (positive) `b`.
fn ratio(a: f64, b: Option<f64>) -> String {
    b.filter(|b| *b > 0.0)
        .map_or("-".to_owned(), |b| format!("{:.2}", a / b))
}

/// Microseconds as milliseconds with two decimals, "-" when unknown.
fn opt_ms(us: Option<u64>) -> String {
    us.map_or("-".to_owned(), |us| format!("{:.2}", us as f64 / 1000.0))
}

pub fn markdown(c: &Comparison) -> String {
    let l = mean_limits(c);
    let mut md = String::new();
    md.push_str(&format!(
        "Machine limits (machine-limits.sh, mean of before/after): disk direct-I/O write 1 MiB qd32 {} MB/s, loopback TCP {} MB/s, fdatasync p99 after a 64 KiB write {} us. MB = 10^6 bytes.\n\n",
        l.disk_mb_per_s.map_or("-".into(), |v| format!("{v:.0}")),
        l.loopback_mb_per_s.map_or("-".into(), |v| format!("{v:.0}")),
        l.fdatasync_p99_us.map_or("-".into(), |v| format!("{v:.0}")),
    ));
    md.push_str("x floor: against the pipeline floor on fresh blocks, the mean of the runs just before and just after cfa's (`cfa bench floor`: the same records framed, CRC-checked, sent over loopback TCP and written with direct I/O by threads doing nothing else), the CPU-and-disk bound of a max-rate run here.\n\n");
    md.push_str("| workload | system | rate | produce records/s | produce MB/s | x disk | x loopback | x floor | cfa / this | publish p50 ms | p99 ms | p99.9 ms | consume MB/s | e2e p99 ms | errors |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for e in &c.entries {
        let r = &e.cfa.result;
        let floor_mb = fresh_floor_mb(e);
        let ms = |us: u64| opt_ms(Some(us));
        let rate = r
            .target_records_per_s
            .map_or("max".to_owned(), |t| format!("{t:.0}/s"));
        md.push_str(&format!(
            "| {} | cfa | {rate} | {:.0} | {:.1} | {} | {} | {} | 1.00 | {} | {} | {} | {:.1} | {} | {} |\n",
            e.workload,
            r.produce_records_per_s,
            r.produce_mb_per_s,
            ratio(r.produce_mb_per_s, l.disk_mb_per_s),
            ratio(r.produce_mb_per_s, l.loopback_mb_per_s),
            ratio(r.produce_mb_per_s, floor_mb),
            ms(r.publish_latency_us.p50),
            ms(r.publish_latency_us.p99),
            ms(r.publish_latency_us.p999),
            r.consume_mb_per_s,
            r.e2e_latency_us.map_or("-".to_owned(), |p| ms(p.p99)),
            r.errors
        ));
        for o in &e.baselines {
            md.push_str(&baseline_row(
                &e.workload,
                r.produce_mb_per_s,
                o,
                &l,
                floor_mb,
            ));
        }
        for (f, label) in floors(e) {
            md.push_str(&floor_row(
                &e.workload,
                &label,
                r.produce_mb_per_s,
                f,
                &l,
                floor_mb,
            ));
        }
    }
    for e in &c.entries {
        if let Some(line) = floor_drift_line(e) {
            md.push_str(&line);
        }
    }
    for e in &c.entries {
        if let Some(p) = &e.disk_under_load {
            let p99 = e.cfa.result.publish_latency_us.p99;
            md.push_str(&disk_under_load_line(
                &e.workload,
                p99,
                p,
                l.fdatasync_p99_us,
            ));
        }
    }
    md.push_str("\nNotes on the baselines (from their runners):\n\n");
    for e in &c.entries {
        for o in &e.baselines {
            if let BaselineOutcome::Ran(b) = o {
                md.push_str(&format!(
                    "- {} / {}: {} Command: `{}`\n",
                    e.workload,
                    b.system,
                    b.notes,
                    b.command.replace('\n', "; ")
                ));
            }
        }
    }
    md
}

/// How an fsync-per-batch run's publish p99 compares with the idle fdatasync p99 (the
/// target's yardstick) and with the disk's own write + fdatasync p99 at the same load.
fn disk_under_load_line(
    workload: &str,
    publish_p99_us: u64,
    p: &ProbeResult,
    idle_fdatasync_p99_us: Option<f64>,
) -> String {
    let p99 = publish_p99_us as f64;
    let loaded = p.write_fdatasync_cycle_us.p99 as f64;
    format!(
        "\n{}: the disk alone at the rate cfa sustained ({}, {} cycles) gave write + fdatasync p50 {} us, p99 {} us: {} x the idle fdatasync p99. cfa's publish p99 is {} x the idle fdatasync p99 and {} x the disk's p99 at this load.\n",
        workload,
        p.pattern,
        p.cycles,
        p.write_fdatasync_cycle_us.p50,
        p.write_fdatasync_cycle_us.p99,
        ratio(loaded, idle_fdatasync_p99_us),
        ratio(p99, idle_fdatasync_p99_us),
        ratio(p99, Some(loaded)),
    )
}

/// A failure's message is cut to this many characters in the table (the JSON has it all).
const FAILURE_CHARS_MAX: usize = 160;

/// The fresh-blocks floor's MB/s measured before an entry's cfa run, if it was.
fn fresh_floor_before_mb(e: &Entry) -> Option<f64> {
    e.floor
        .iter()
        .find(|f| f.config.blocks == Blocks::Fresh)
        .map(|f| f.mb_per_s)
}

/// The fresh-blocks floor's MB/s that cfa is compared with: the mean of the runs before
/// and after cfa's, or the one that was measured.
fn fresh_floor_mb(e: &Entry) -> Option<f64> {
    let after = e.floor_after.as_ref().map(|f| f.mb_per_s);
    floor_mean(fresh_floor_before_mb(e), after)
}

fn floor_mean(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) => Some((b + a) / 2.0),
        (b, a) => b.or(a),
    }
}

/// The floor moved by more than this share between the runs around cfa's: the table's
/// "x floor" then says little, and the report line says so.
const FLOOR_DRIFT_WARN_SHARE: f64 = 0.10;

/// How far the fresh-blocks floor moved across cfa's run, and cfa's share of each side.
fn floor_drift_line(e: &Entry) -> Option<String> {
    let before = fresh_floor_before_mb(e)?;
    let after = e.floor_after.as_ref()?.mb_per_s;
    Some(drift_line(
        &e.workload,
        before,
        after,
        e.cfa.result.produce_mb_per_s,
    ))
}

fn drift_line(workload: &str, before: f64, after: f64, cfa: f64) -> String {
    let drift = after / before - 1.0;
    let verdict = if drift.abs() > FLOOR_DRIFT_WARN_SHARE {
        format!(
            " The floor moved by more than {:.0}%: the machine changed during the run, so cfa's share lies somewhere in that range.",
            FLOOR_DRIFT_WARN_SHARE * 100.0
        )
    } else {
        String::new()
    };
    format!(
        "\n{workload}: the fresh-blocks floor gave {before:.1} MB/s before cfa's run and {after:.1} MB/s after it ({:+.0}%); cfa is {} x the one before, {} x the one after.{verdict}\n",
        drift * 100.0,
        ratio(cfa, Some(before)),
        ratio(cfa, Some(after)),
    )
}

/// An entry's floor runs in the order they ran, each with its table label: the fresh
/// and written runs before cfa's ("before" only when a run after it exists), then the
/// fresh run after it.
fn floors(e: &Entry) -> Vec<(&FloorResult, String)> {
    let label =
        |f: &FloorResult, when: &str| format!("floor, {} blocks{when}", f.config.blocks.name());
    let before = if e.floor_after.is_some() {
        ", before"
    } else {
        ""
    };
    let mut out: Vec<(&FloorResult, String)> =
        e.floor.iter().map(|f| (f, label(f, before))).collect();
    out.extend(e.floor_after.iter().map(|f| (f, label(f, ", after"))));
    out
}

fn floor_row(
    workload: &str,
    label: &str,
    cfa_mb: f64,
    f: &FloorResult,
    l: &Limits,
    floor_mb: Option<f64>,
) -> String {
    format!(
        "| {workload} | {label} | max | {:.0} | {:.1} | {} | {} | {} | {} | - | - | - | - | - | 0 |\n",
        f.records_per_s,
        f.mb_per_s,
        ratio(f.mb_per_s, l.disk_mb_per_s),
        ratio(f.mb_per_s, l.loopback_mb_per_s),
        ratio(f.mb_per_s, floor_mb),
        ratio(cfa_mb, Some(f.mb_per_s)),
    )
}

fn baseline_row(
    workload: &str,
    cfa_mb: f64,
    o: &BaselineOutcome,
    l: &Limits,
    floor_mb: Option<f64>,
) -> String {
    match o {
        BaselineOutcome::Ran(b) => format!(
            "| {workload} | {} | | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | - | 0 |\n",
            b.system,
            b.produce_records_per_s,
            b.produce_mb_per_s,
            ratio(b.produce_mb_per_s, l.disk_mb_per_s),
            ratio(b.produce_mb_per_s, l.loopback_mb_per_s),
            ratio(b.produce_mb_per_s, floor_mb),
            ratio(cfa_mb, Some(b.produce_mb_per_s)),
            opt_ms(b.publish_latency_us.p50),
            opt_ms(b.publish_latency_us.p99),
            opt_ms(b.publish_latency_us.p999),
            b.consume_mb_per_s
                .map_or("-".to_owned(), |v| format!("{v:.1}")),
        ),
        BaselineOutcome::Absent { system, reason } => {
            format!("| {workload} | {system} | absent: {reason} | | | | | | | | | | | | |\n")
        }
        BaselineOutcome::Skipped { system, reason } => {
            format!("| {workload} | {system} | not run: {reason} | | | | | | | | | | | | |\n")
        }
        BaselineOutcome::Failed { system, error } => {
            let error: String = error.chars().take(FAILURE_CHARS_MAX).collect();
            format!(
                "| {workload} | {system} | failed: {} | | | | | | | | | | | | |\n",
                error.replace('|', "/").replace('\n', " ")
            )
        }
    }
}

pub fn rows(c: &Comparison) -> Vec<ComparisonRow> {
    let l = mean_limits(c);
    let mut rows = Vec::new();
    for e in &c.entries {
        let r = &e.cfa.result;
        rows.push(ComparisonRow {
            workload: e.workload.clone(),
            system: "cfa".into(),
            produce_mb_per_s: r.produce_mb_per_s,
            publish_p99_us: Some(r.publish_latency_us.p99),
        });
        for o in &e.baselines {
            if let BaselineOutcome::Ran(b) = o {
                rows.push(ComparisonRow {
                    workload: e.workload.clone(),
                    system: b.system.clone(),
                    produce_mb_per_s: b.produce_mb_per_s,
                    publish_p99_us: b.publish_latency_us.p99,
                });
            }
        }
        for (f, label) in floors(e) {
            rows.push(ComparisonRow {
                workload: e.workload.clone(),
                system: label,
                produce_mb_per_s: f.mb_per_s,
                publish_p99_us: None,
            });
        }
        if r.target_records_per_s.is_none() {
            for (name, v) in [
                ("disk write limit", l.disk_mb_per_s),
                ("loopback limit", l.loopback_mb_per_s),
            ] {
                if let Some(v) = v {
                    rows.push(ComparisonRow {
                        workload: e.workload.clone(),
                        system: name.into(),
                        produce_mb_per_s: v,
                        publish_p99_us: None,
                    });
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentiles;

    fn probe(p50: u64, p99: u64) -> ProbeResult {
        ProbeResult {
            pattern: "6 files".into(),
            write_bytes: 64 << 10,
            cycles: 1000,
            write_fdatasync_cycle_us: Percentiles {
                p50,
                p90: p99,
                p99,
                p999: p99,
                p9999: p99,
                max: p99,
            },
        }
    }

    #[test]
    fn cfa_is_read_against_the_floor_on_both_sides_of_its_run() {
        assert_eq!(floor_mean(Some(1200.0), Some(1600.0)), Some(1400.0));
        assert_eq!(floor_mean(Some(1200.0), None), Some(1200.0));
        assert_eq!(floor_mean(None, None), None);
        let steady = drift_line("w", 1000.0, 1050.0, 800.0);
        assert!(steady.contains("(+5%)"), "{steady}");
        assert!(
            steady.contains("0.80 x the one before, 0.76 x the one after"),
            "{steady}"
        );
        assert!(!steady.contains("machine changed"), "{steady}");
        let moved = drift_line("w", 1600.0, 1200.0, 1000.0);
        assert!(moved.contains("(-25%)"), "{moved}");
        assert!(moved.contains("machine changed"), "{moved}");
    }

    #[test]
    fn the_loaded_disk_line_gives_both_ratios() {
        let line = disk_under_load_line("durable-1kb", 9000, &probe(300, 900), Some(90.0));
        assert!(
            line.contains("p50 300 us, p99 900 us: 10.00 x the idle"),
            "{line}"
        );
        assert!(line.contains("publish p99 is 100.00 x the idle fdatasync p99 and 10.00 x the disk's p99 at this load"), "{line}");
    }

    #[test]
    fn without_machine_limits_the_idle_ratios_are_dashes() {
        let line = disk_under_load_line("durable-1kb", 9000, &probe(300, 900), None);
        assert!(line.contains("p99 900 us: - x the idle"), "{line}");
        assert!(line.contains("and 10.00 x the disk's p99"), "{line}");
    }
}
