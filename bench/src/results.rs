//! What a finished run leaves behind: the JSON document (the run's figures with the
//! machine and build facts around them), the printed tables, the plot, and where the
//! files go.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::constants::CPU_LINE_CORES_MIN;
use crate::driver::{BrokerSide, RunResult};
use crate::machine::{Build, Machine};
use crate::plot::{self, RunPlot, SecondSample};
use crate::workload::Workload;

/// One run as saved: every `RunResult` key at the top level, plus the context.
#[derive(Debug, Clone, Serialize)]
pub struct RunDocument {
    #[serde(flatten)]
    pub result: RunResult,
    /// MB in every `*_mb_per_s` key is 10^6 bytes.
    pub mb_is_bytes: u64,
    /// UTC time the run finished, RFC 3339.
    pub finished_at: String,
    pub build: Build,
    pub machine: Machine,
    /// The workload as run (every layer applied).
    pub workload_resolved: Workload,
}

impl RunDocument {
    pub fn new(result: RunResult, w: &Workload, machine: Machine, build: Build) -> RunDocument {
        RunDocument {
            result,
            mb_is_bytes: 1_000_000,
            finished_at: utc_now_rfc3339(),
            build,
            machine,
            workload_resolved: w.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plot: {0}")]
    Plot(#[from] plot::PlotError),
}

/// Writes `value` as pretty JSON to `path`, creating its directory.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ResultsError> {
    let text = serde_json::to_string_pretty(value)?;
    write_file(path, text.as_bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let wrap = |source| ResultsError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(wrap)?;
    }
    std::fs::write(path, bytes).map_err(wrap)
}

/// `DIR/WORKLOAD-YYYYMMDDTHHMMSSZ` (add the extension).
pub fn result_stem(dir: &Path, workload: &str) -> PathBuf {
    let stamp: String = utc_now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    dir.join(format!("{workload}-{stamp}"))
}

/// Saves the document as STEM.json and its plot as STEM.svg.
pub fn save(stem: &Path, doc: &RunDocument) -> Result<(PathBuf, PathBuf), ResultsError> {
    let json = stem.with_extension("json");
    write_json(&json, doc)?;
    let svg = stem.with_extension("svg");
    write_plot(&svg, doc)?;
    Ok((json, svg))
}

/// The run's plot: throughput and p99 per second, latency percentiles.
pub fn write_plot(path: &Path, doc: &RunDocument) -> Result<(), ResultsError> {
    let r = &doc.result;
    let seconds: Vec<SecondSample> = r
        .seconds
        .iter()
        .map(|s| SecondSample {
            t_s: s.t_s,
            produce_mb_per_s: s.produce_mb_per_s,
            consume_mb_per_s: s.consume_mb_per_s,
            publish_p99_us: s.publish_p99_us,
            e2e_p99_us: s.e2e_p99_us,
        })
        .collect();
    let rate = match r.target_records_per_s {
        Some(t) => format!("{t:.0} records/s target"),
        None => "max rate".to_owned(),
    };
    let title = format!(
        "{} ({rate}, acks={}) · cfa {} ({}) · {} cores, {}",
        r.workload,
        r.acks,
        doc.build.cfa_version,
        doc.build.commit,
        doc.machine.cores,
        doc.machine.filesystem
    );
    plot::write_run_svg(
        path,
        &RunPlot {
            title: &title,
            seconds: &seconds,
            publish_latency_us: &r.publish_latency_us,
            e2e_latency_us: r.e2e_latency_us.as_ref(),
        },
    )?;
    Ok(())
}

/// kafka-producer-perf-test's summary line, for one run (MB = 10^6 bytes here).
pub fn perf_test_line(r: &RunResult) -> String {
    let l = &r.publish_latency_us;
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "{}: {} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms p50 latency, {:.2} ms max latency, {:.2} ms 90th, {:.2} ms 99th, {:.2} ms 99.9th, {:.2} ms 99.99th.",
        r.workload,
        r.produce_records,
        r.produce_records_per_s,
        r.produce_mb_per_s,
        ms(l.p50),
        ms(l.max),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.p9999)
    )
}

/// The final table over every run (OMB's columns: rate, throughput, latency quantiles).
pub fn print_table(runs: &[RunResult]) {
    println!("MB = 10^6 bytes; latencies in ms; publish = intended send -> acknowledged; e2e = intended send -> consumed");
    println!(
        "{:<20} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>6}",
        "workload",
        "rate",
        "prod r/s",
        "MB/s",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "cons r/s",
        "MB/s",
        "e2e p50",
        "e2e p99",
        "errors"
    );
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    for r in runs {
        let l = &r.publish_latency_us;
        let rate = r
            .target_records_per_s
            .map_or_else(|| "max".to_owned(), |t| format!("{t:.0}"));
        let (e50, e99) = r
            .e2e_latency_us
            .map_or(("-".to_owned(), "-".to_owned()), |e| (ms(e.p50), ms(e.p99)));
        println!(
            "{:<20} {:>9} {:>10.0} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10.0} {:>8.1} {:>8} {:>8} {:>6}",
            r.workload,
            rate,
            r.produce_records_per_s,
            r.produce_mb_per_s,
            ms(l.p50),
            ms(l.p99),
            ms(l.p999),
            ms(l.p9999),
            ms(l.max),
            r.consume_records_per_s,
            r.consume_mb_per_s,
            e50,
            e99,
            r.errors
        );
    }
    for r in runs {
        if let Some(late) = r.send_lateness_us {
            println!(
                "{}: records went to send() {} / {} ms (p50 / p99) after their intended time \
                 (generator delay + blocking in send); that is inside the latencies above",
                r.workload,
                ms(late.p50),
                ms(late.p99)
            );
        }
        if let Some(b) = &r.broker_side {
            println!("{}: {}", r.workload, broker_side_line(b));
        }
        if let Some(line) = cpu_line(r) {
            println!("{}: {line}", r.workload);
        }
    }
}

/// Where the window's CPU went, by thread group, busiest first: cores, and CPU ns per
/// acknowledged record.
fn cpu_line(r: &RunResult) -> Option<String> {
    if r.cpu_cores_by_thread.is_empty() || r.produce_records_per_s <= 0.0 {
        return None;
    }
    let mut groups: Vec<(&String, &f64)> = r.cpu_cores_by_thread.iter().collect();
    groups.sort_by(|a, b| b.1.total_cmp(a.1));
    let parts: Vec<String> = groups
        .iter()
        .filter(|(_, &cores)| cores >= CPU_LINE_CORES_MIN)
        .map(|(name, &cores)| {
            let ns = cores * 1e9 / r.produce_records_per_s;
            format!("{name} {cores:.2} ({ns:.0})")
        })
        .collect();
    Some(format!(
        "CPU {:.2} cores, by thread: {} (cores, and ns per record)",
        r.cpu_cores_used,
        parts.join(", ")
    ))
}

/// The embedded broker's own figures for the window, in one line.
fn broker_side_line(b: &BrokerSide) -> String {
    let mean = |us: Option<f64>| us.map_or_else(|| "-".to_owned(), |u| format!("{:.2}", u / 1e3));
    let bound = |us: Option<u64>| {
        us.map_or_else(
            || "beyond the last bucket".to_owned(),
            |u| format!("<= {:.2}", u as f64 / 1e3),
        )
    };
    format!(
        "the broker measured {:.0} fdatasyncs/s, mean {} ms, p99 {} ms; {:.0} produce requests/s, \
         decoded to answered mean {} ms, p99 {} ms",
        b.fsyncs_per_s,
        mean(b.fsync_mean_us),
        bound(b.fsync_p99_at_most_us),
        b.produce_requests_per_s,
        mean(b.produce_request_mean_us),
        bound(b.produce_request_p99_at_most_us),
    )
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ` (no time-zone database needed).
pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let rem = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_right() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_614_245), "2026-11-25T13:44:05Z");
    }
}
