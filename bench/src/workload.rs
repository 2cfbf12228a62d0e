//! Workload files (bench/workloads/*.toml), in the spirit of the OpenMessaging
//! Benchmark's: topics and partitions, message size, key distribution, producers and
//! consumers, target rate or max rate, duration and warm-up, the producer's knobs, and the
//! tuning profile (tuning/*.toml) the embedded broker starts with.
//!
//! Settings are layered, later wins: built-in defaults, the profile's `[producer]` and
//! `[bench]` sections, the workload file, the command line (`--duration-s`). The standard
//! workloads and profiles are compiled in (from the same files), so `cfa bench` works from
//! any directory; a path on the command line reads that file instead.

use std::path::{Path, PathBuf};

use cfa_net::client::tuning::ProducerTuning;
use cfa_net::server::Profile;
use serde::{Deserialize, Serialize};

use crate::constants::{
    BACKLOG_BYTES_MAX, CONSUMERS_MAX, DURATION_S_MAX, KEY_COUNT_MAX, PARTITIONS_MAX, PRODUCERS_MAX,
    RATE_RECORDS_PER_S_MAX, RECORD_BYTES_MAX, TOPICS_MAX, WARMUP_S_MAX,
};

/// The standard set, in the order `cfa bench compare` runs them.
pub const STANDARD: &[(&str, &str)] = &[
    (
        "max-throughput-1kb",
        include_str!("../workloads/max-throughput-1kb.toml"),
    ),
    ("durable-1kb", include_str!("../workloads/durable-1kb.toml")),
    (
        "latency-1kb-50mbps",
        include_str!("../workloads/latency-1kb-50mbps.toml"),
    ),
    (
        "many-partitions",
        include_str!("../workloads/many-partitions.toml"),
    ),
    ("hot-key", include_str!("../workloads/hot-key.toml")),
    (
        "consume-tail",
        include_str!("../workloads/consume-tail.toml"),
    ),
    (
        "consume-backlog",
        include_str!("../workloads/consume-backlog.toml"),
    ),
    (
        "seed-capacity",
        include_str!("../workloads/seed-capacity.toml"),
    ),
];

/// The tuning profiles, compiled in from tuning/.
pub const PROFILES: &[(&str, &str)] = &[
    ("default", include_str!("../../tuning/default.toml")),
    ("durable", include_str!("../../tuning/durable.toml")),
    ("throughput", include_str!("../../tuning/throughput.toml")),
    ("latency", include_str!("../../tuning/latency.toml")),
];

/// What `cfa bench` runs with no `--workload`: the short standard run, three workloads
/// of 8 s each after 2 s of warm-up (~30 s in all).
pub const DEFAULT_SUITE: &[&str] = &["max-throughput-1kb", "latency-1kb-50mbps", "consume-tail"];
/// The measured seconds of each workload in the default suite.
pub const DEFAULT_SUITE_DURATION_S: f64 = 8.0;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("unknown workload {0:?}: not a file, and not one of the standard set ({1})")]
    Unknown(String, String),
    #[error("unknown tuning profile {0:?}: not a file, and not one of default, durable, throughput, latency")]
    UnknownProfile(String),
}

/// How records get keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// No key; the producer's sticky partitioner fills one batch at a time.
    None,
    /// No key; keyless records spread over partitions one by one.
    RoundRobin,
    /// Keys drawn uniformly from `key_count` keys.
    Uniform,
    /// Keys drawn from `key_count` keys with a Zipf law (`zipf_exponent`).
    Zipfian,
    /// `hot_key_percent` of records carry one key, the rest are uniform.
    HotKey,
}

/// The `[topics]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    #[serde(default = "one_u32")]
    pub count: u32,
    pub partitions: u32,
}

/// The `[messages]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// Fixed value size; or a uniform size between the two bounds below.
    pub size_bytes: Option<usize>,
    pub size_min_bytes: Option<usize>,
    pub size_max_bytes: Option<usize>,
    #[serde(default = "key_none")]
    pub key_distribution: KeyDistribution,
    #[serde(default = "key_count_default")]
    pub key_count: u64,
    #[serde(default = "zipf_default")]
    pub zipf_exponent: f64,
    #[serde(default = "hot_default")]
    pub hot_key_percent: f64,
    /// The compound-key remedy for a hot key: the hot key becomes `key#0 .. key#N-1`
    /// (spread round-robin), so it lands on up to N partitions. 1 = off.
    #[serde(default = "one_u32")]
    pub hot_key_spread: u32,
}

/// The `[producers]` table: how many, how fast, and the producer knobs (the
/// `[producer]` section's keys, which override the tuning profile's key by key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct Producers {
    pub count: u32,
    /// Target rate over all producers; 0 = max rate (labelled as such).
    pub rate_records_per_s: u64,
    /// Instead of a fixed rate: this percentage of the max rate, measured by a max-rate
    /// probe of `probe_s` seconds on a topic of its own right before the run.
    pub rate_percent_of_max: Option<f64>,
    pub probe_s: f64,
    #[serde(flatten)]
    pub tuning: ProducerTuning,
}

impl TryFrom<toml::Table> for Producers {
    type Error = String;

    /// Takes the bench's own keys out, then reads the rest as a `[producer]` section,
    /// which refuses unknown keys (serde cannot flatten and refuse at once).
    fn try_from(mut t: toml::Table) -> Result<Producers, String> {
        fn take<T: serde::de::DeserializeOwned>(
            t: &mut toml::Table,
            key: &str,
        ) -> Result<Option<T>, String> {
            t.remove(key)
                .map(|v| v.try_into().map_err(|e| format!("producers.{key}: {e}")))
                .transpose()
        }
        Ok(Producers {
            count: take(&mut t, "count")?.unwrap_or(1),
            rate_records_per_s: take(&mut t, "rate_records_per_s")?.unwrap_or(0),
            rate_percent_of_max: take(&mut t, "rate_percent_of_max")?,
            probe_s: take(&mut t, "probe_s")?.unwrap_or_else(probe_default),
            tuning: toml::Value::Table(t)
                .try_into()
                .map_err(|e| format!("[producers]: {e}"))?,
        })
    }
}

/// Where consumers start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerStart {
    /// Joined before the producers start; read what is produced from then on.
    Tail,
    /// Start after `backlog_bytes` were produced, from the beginning of the log.
    Backlog,
}

/// The `[consumers]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumers {
    /// Consumer groups; each reads every record once.
    #[serde(default)]
    pub groups: u32,
    /// Members per group (each a client with its own connection and thread).
    #[serde(default = "one_u32")]
    pub per_group: u32,
    #[serde(default = "start_tail")]
    pub start: ConsumerStart,
    /// Bytes (MB = 10^6) produced at max rate before the consumers start (`start =
    /// "backlog"`); the measured phase begins when they do.
    #[serde(default)]
    pub backlog_bytes: u64,
}

impl Default for Consumers {
    fn default() -> Self {
        Consumers {
            groups: 0,
            per_group: 1,
            start: ConsumerStart::Tail,
            backlog_bytes: 0,
        }
    }
}

/// The `[bench]` section of a tuning profile: run defaults a workload may override.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchTuning {
    pub duration_s: Option<f64>,
    pub warmup_s: Option<f64>,
}

/// A workload file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A profile name (default, durable, throughput, latency) or a path to a TOML file.
    #[serde(default = "profile_default")]
    pub tuning: String,
    pub duration_s: Option<f64>,
    pub warmup_s: Option<f64>,
    pub topics: Topics,
    pub messages: Messages,
    pub producers: Producers,
    #[serde(default)]
    pub consumers: Consumers,
}

/// A workload with every layer applied and every value checked: what the driver runs.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub name: String,
    pub description: String,
    /// Where the workload came from (a path or "built-in").
    pub origin: String,
    pub tuning_name: String,
    /// The profile as the broker reads it (its `[broker]` and `[log]` sections).
    #[serde(skip)]
    pub profile: Profile,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub topics: u32,
    pub partitions: u32,
    pub size_min_bytes: usize,
    pub size_max_bytes: usize,
    pub key_distribution: KeyDistribution,
    pub key_count: u64,
    pub zipf_exponent: f64,
    pub hot_key_percent: f64,
    pub hot_key_spread: u32,
    pub producers: u32,
    pub rate_records_per_s: u64,
    pub rate_percent_of_max: Option<f64>,
    pub probe_s: f64,
    /// The profile's `[producer]` with the workload's keys over it.
    pub producer: ProducerTuning,
    pub consumer_groups: u32,
    pub consumers_per_group: u32,
    pub consumer_start: ConsumerStart,
    pub backlog_bytes: u64,
}

impl Workload {
    /// A standard workload's name, or a path to a workload file.
    pub fn load(name_or_path: &str) -> Result<Workload, WorkloadError> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let dir = path.parent().map(Path::to_path_buf);
            return Workload::parse(&text, &path.display().to_string(), dir.as_deref());
        }
        let text = STANDARD
            .iter()
            .find(|(n, _)| *n == name_or_path)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = STANDARD.iter().map(|(n, _)| *n).collect();
                WorkloadError::Unknown(name_or_path.to_owned(), names.join(", "))
            })?;
        Workload::parse(text, &format!("built-in workload {name_or_path}"), None)
    }

    /// Parses a workload file's text; `dir` resolves a relative profile path.
    pub fn parse(text: &str, origin: &str, dir: Option<&Path>) -> Result<Workload, WorkloadError> {
        let file: WorkloadFile = toml::from_str(text).map_err(|e| WorkloadError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let (profile, bench) = load_profile(&file.tuning, dir)?;
        let w = resolve(file, origin, profile, bench)?;
        w.validate()?;
        Ok(w)
    }

    /// Command-line overrides (they win over every file), checked like the file's values.
    pub fn apply_overrides(
        &mut self,
        duration_s: Option<f64>,
        warmup_s: Option<f64>,
        hot_key_spread: Option<u32>,
    ) -> Result<(), WorkloadError> {
        if let Some(d) = duration_s {
            self.duration_s = d;
        }
        if let Some(w) = warmup_s {
            self.warmup_s = w;
        }
        if let Some(n) = hot_key_spread {
            if self.key_distribution != KeyDistribution::HotKey {
                return Err(WorkloadError::Invalid {
                    origin: self.origin.clone(),
                    message: "--hot-key-spread needs key_distribution = \"hot-key\"".into(),
                });
            }
            self.hot_key_spread = n;
            self.name = format!("{}-spread-{n}", self.name);
        }
        self.validate()
    }

    /// Records per second each producer aims at (0 = max rate).
    pub fn rate_per_producer(&self) -> f64 {
        self.rate_records_per_s as f64 / f64::from(self.producers)
    }

    pub fn is_max_rate(&self) -> bool {
        self.rate_records_per_s == 0 && self.rate_percent_of_max.is_none()
    }

    pub fn total_partitions(&self) -> u64 {
        u64::from(self.topics) * u64::from(self.partitions)
    }

    pub fn consumers(&self) -> u32 {
        self.consumer_groups * self.consumers_per_group
    }

    /// The acks the producers use ("0", "1" or "all").
    pub fn acks(&self) -> &str {
        self.producer.acks.as_deref().unwrap_or("all")
    }

    /// Mean record value size.
    pub fn mean_record_bytes(&self) -> f64 {
        (self.size_min_bytes + self.size_max_bytes) as f64 / 2.0
    }

    fn validate(&self) -> Result<(), WorkloadError> {
        let fail = |message: String| {
            Err(WorkloadError::Invalid {
                origin: self.origin.clone(),
                message,
            })
        };
        let range = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if self.name.is_empty() {
            return fail("name must not be empty".into());
        }
        if !range(self.duration_s, 0.1, DURATION_S_MAX) {
            return fail(format!(
                "duration_s = {}: 0.1 ..= {DURATION_S_MAX}",
                self.duration_s
            ));
        }
        if !range(self.warmup_s, 0.0, WARMUP_S_MAX) {
            return fail(format!(
                "warmup_s = {}: 0 ..= {WARMUP_S_MAX}",
                self.warmup_s
            ));
        }
        if !(1..=TOPICS_MAX).contains(&self.topics) {
            return fail(format!(
                "topics.count = {}: 1 ..= {TOPICS_MAX}",
                self.topics
            ));
        }
        if self.partitions == 0 || self.total_partitions() > PARTITIONS_MAX {
            return fail(format!(
                "topics.partitions = {} x {} topics: 1 ..= {PARTITIONS_MAX} partitions in all",
                self.partitions, self.topics
            ));
        }
        if self.size_min_bytes > self.size_max_bytes || self.size_max_bytes > RECORD_BYTES_MAX {
            return fail(format!(
                "message size {} ..= {} bytes: the bounds must be ordered and at most {RECORD_BYTES_MAX}",
                self.size_min_bytes, self.size_max_bytes
            ));
        }
        self.validate_keys()?;
        if !(1..=PRODUCERS_MAX).contains(&self.producers) {
            return fail(format!(
                "producers.count = {}: 1 ..= {PRODUCERS_MAX}",
                self.producers
            ));
        }
        if self.rate_records_per_s > RATE_RECORDS_PER_S_MAX {
            return fail(format!(
                "producers.rate_records_per_s = {}: at most {RATE_RECORDS_PER_S_MAX} (0 = max rate)",
                self.rate_records_per_s
            ));
        }
        if let Some(pct) = self.rate_percent_of_max {
            if !(pct.is_finite() && pct > 0.0 && pct <= 100.0) || self.rate_records_per_s != 0 {
                return fail(format!(
                    "producers.rate_percent_of_max = {pct}: (0, 100], and not with rate_records_per_s"
                ));
            }
        }
        if !(self.probe_s.is_finite() && self.probe_s >= 1.0 && self.probe_s <= WARMUP_S_MAX) {
            return fail(format!(
                "producers.probe_s = {}: 1 ..= {WARMUP_S_MAX}",
                self.probe_s
            ));
        }
        if self.consumers() > CONSUMERS_MAX {
            return fail(format!(
                "consumers: {} groups x {} members: at most {CONSUMERS_MAX} in all",
                self.consumer_groups, self.consumers_per_group
            ));
        }
        self.validate_backlog()?;
        let mut probe = cfa_net::client::ProducerConfig::new("127.0.0.1:1");
        self.producer
            .apply(&mut probe)
            .map_err(|e| WorkloadError::Invalid {
                origin: self.origin.clone(),
                message: format!("producer settings: {e}"),
            })
    }

    fn validate_keys(&self) -> Result<(), WorkloadError> {
        let fail = |message: String| {
            Err(WorkloadError::Invalid {
                origin: self.origin.clone(),
                message,
            })
        };
        if !(1..=KEY_COUNT_MAX).contains(&self.key_count) {
            return fail(format!(
                "messages.key_count = {}: 1 ..= {KEY_COUNT_MAX}",
                self.key_count
            ));
        }
        if !(self.zipf_exponent.is_finite()
            && self.zipf_exponent > 0.0
            && self.zipf_exponent <= 5.0)
        {
            return fail(format!(
                "messages.zipf_exponent = {}: (0, 5]",
                self.zipf_exponent
            ));
        }
        if !(self.hot_key_percent.is_finite() && (0.0..=100.0).contains(&self.hot_key_percent)) {
            return fail(format!(
                "messages.hot_key_percent = {}: 0 ..= 100",
                self.hot_key_percent
            ));
        }
        if self.hot_key_spread == 0 || u64::from(self.hot_key_spread) > KEY_COUNT_MAX {
            return fail(format!(
                "messages.hot_key_spread = {}: 1 ..= {KEY_COUNT_MAX}",
                self.hot_key_spread
            ));
        }
        Ok(())
    }

    fn validate_backlog(&self) -> Result<(), WorkloadError> {
        let fail = |message: String| {
            Err(WorkloadError::Invalid {
                origin: self.origin.clone(),
                message,
            })
        };
        let backlog = self.consumer_start == ConsumerStart::Backlog;
        if backlog && (self.backlog_bytes == 0 || self.consumers() == 0) {
            return fail("consumers.start = \"backlog\" needs backlog_bytes > 0 and at least one consumer group".into());
        }
        if !backlog && self.backlog_bytes != 0 {
            return fail("consumers.backlog_bytes is only read with start = \"backlog\"".into());
        }
        if self.backlog_bytes > BACKLOG_BYTES_MAX {
            return fail(format!(
                "consumers.backlog_bytes = {}: at most {BACKLOG_BYTES_MAX}",
                self.backlog_bytes
            ));
        }
        Ok(())
    }
}

/// Reads a profile by name (compiled in) or path, returning what the broker reads and
/// the `[bench]` section.
pub fn load_profile(
    name_or_path: &str,
    dir: Option<&Path>,
) -> Result<(Profile, BenchTuning), WorkloadError> {
    let (text, origin) = match profile_text(name_or_path, dir)? {
        (Some(t), origin) => (t, origin),
        (None, _) => return Err(WorkloadError::UnknownProfile(name_or_path.to_owned())),
    };
    let parse = |e: toml::de::Error| WorkloadError::Parse {
        origin: origin.clone(),
        message: e.to_string(),
    };
    let profile: Profile = toml::from_str(&text).map_err(parse)?;
    let bench = match &profile.bench {
        Some(table) => table.clone().try_into().map_err(parse)?,
        None => BenchTuning::default(),
    };
    Ok((profile, bench))
}

fn profile_text(
    name_or_path: &str,
    dir: Option<&Path>,
) -> Result<(Option<String>, String), WorkloadError> {
    let candidates: Vec<PathBuf> = match dir {
        Some(d) if Path::new(name_or_path).is_relative() => {
            vec![d.join(name_or_path), PathBuf::from(name_or_path)]
        }
        _ => vec![PathBuf::from(name_or_path)],
    };
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        let text = std::fs::read_to_string(p).map_err(|source| WorkloadError::Read {
            path: p.display().to_string(),
            source,
        })?;
        return Ok((Some(text), p.display().to_string()));
    }
    let builtin = PROFILES.iter().find(|(n, _)| *n == name_or_path);
    Ok((
        builtin.map(|(_, t)| (*t).to_owned()),
        format!("built-in profile {name_or_path}"),
    ))
}

fn resolve(
    file: WorkloadFile,
    origin: &str,
    profile: Profile,
    bench: BenchTuning,
) -> Result<Workload, WorkloadError> {
    let m = &file.messages;
    let (size_min_bytes, size_max_bytes) = match (m.size_bytes, m.size_min_bytes, m.size_max_bytes)
    {
        (Some(s), None, None) => (s, s),
        (None, Some(lo), Some(hi)) => (lo, hi),
        _ => {
            return Err(WorkloadError::Invalid {
                origin: origin.to_owned(),
                message: "messages: set size_bytes, or both size_min_bytes and size_max_bytes"
                    .into(),
            })
        }
    };
    let base = profile.producer.clone().unwrap_or_default();
    Ok(Workload {
        name: file.name,
        description: file.description,
        origin: origin.to_owned(),
        tuning_name: file.tuning,
        duration_s: file.duration_s.or(bench.duration_s).unwrap_or(10.0),
        warmup_s: file.warmup_s.or(bench.warmup_s).unwrap_or(2.0),
        topics: file.topics.count,
        partitions: file.topics.partitions,
        size_min_bytes,
        size_max_bytes,
        key_distribution: m.key_distribution,
        key_count: m.key_count,
        zipf_exponent: m.zipf_exponent,
        hot_key_percent: m.hot_key_percent,
        hot_key_spread: m.hot_key_spread,
        producers: file.producers.count,
        rate_records_per_s: file.producers.rate_records_per_s,
        rate_percent_of_max: file.producers.rate_percent_of_max,
        probe_s: file.producers.probe_s,
        producer: base.overridden_by(&file.producers.tuning),
        consumer_groups: file.consumers.groups,
        consumers_per_group: file.consumers.per_group,
        consumer_start: file.consumers.start,
        backlog_bytes: file.consumers.backlog_bytes,
        profile,
    })
}

fn one_u32() -> u32 {
    1
}
fn key_none() -> KeyDistribution {
    KeyDistribution::None
}
fn key_count_default() -> u64 {
    1000
}
fn zipf_default() -> f64 {
    1.0
}
fn hot_default() -> f64 {
    90.0
}
fn start_tail() -> ConsumerStart {
    ConsumerStart::Tail
}
fn probe_default() -> f64 {
    5.0
}
fn profile_default() -> String {
    "default".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_workload_and_profile_loads() {
        for (name, _) in STANDARD {
            let w = Workload::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&w.name, name, "the file's name matches its entry");
        }
        for (name, _) in PROFILES {
            load_profile(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_compiled_in_files_are_the_files_in_the_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("workloads");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("bench/workloads")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".toml"))
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(".toml")
                    .to_owned()
            })
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = STANDARD.iter().map(|(n, _)| (*n).to_owned()).collect();
        built_in.sort();
        assert_eq!(
            on_disk, built_in,
            "every file in bench/workloads is in STANDARD"
        );
    }

    const BASE: &str = r#"
name = "t"
tuning = "throughput"
duration_s = 5
[topics]
partitions = 3
[messages]
size_bytes = 100
[producers]
count = 2
linger_ms = 0
"#;

    #[test]
    fn layers_apply_in_order() {
        let w = Workload::parse(BASE, "test", None).expect("valid");
        assert_eq!(w.duration_s, 5.0, "the workload's own value");
        assert_eq!(
            w.producer.linger_ms,
            Some(0),
            "the workload overrides the profile"
        );
        let (profile, _) = load_profile("throughput", None).expect("profile");
        let from_profile = profile.producer.expect("throughput has [producer]");
        assert_eq!(w.producer.batch_size_bytes, from_profile.batch_size_bytes);
        assert_eq!((w.size_min_bytes, w.size_max_bytes), (100, 100));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[topics]\npartitions = 3", "partitions = 0", "partitions"),
            (
                "size_bytes = 100",
                "size_bytes = 100\nkey_distribution = \"zipf\"",
                "zipf",
            ),
            ("count = 2", "count = 0", "producers.count"),
            ("linger_ms = 0", "linger_ms = 0\nlingr = 1", "lingr"),
            ("linger_ms = 0", "linger_ms = 0\nacks = \"2\"", "acks"),
            ("tuning = \"throughput\"", "tuning = \"nope\"", "nope"),
            ("size_bytes = 100", "size_min_bytes = 10", "size_max_bytes"),
            ("duration_s = 5", "duration_s = -1", "duration_s"),
        ];
        for (from, to, needle) in cases {
            let text = BASE.replace(from, to);
            assert_ne!(text, BASE, "{from} is in the base");
            let e = Workload::parse(&text, "test", None).expect_err(needle);
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn backlog_needs_consumers_and_bytes() {
        let text = format!("{BASE}[consumers]\nstart = \"backlog\"\n");
        let e = Workload::parse(&text, "test", None).expect_err("no bytes");
        assert!(e.to_string().contains("backlog"), "{e}");
        let ok =
            format!("{BASE}[consumers]\ngroups = 1\nstart = \"backlog\"\nbacklog_bytes = 1000\n");
        Workload::parse(&ok, "test", None).expect("valid");
    }
}
