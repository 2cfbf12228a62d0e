//! Broker configuration: the `[broker]` and `[log]` sections of a tuning profile
//! (tuning/*.toml), then command-line overrides. Unknown sections and keys are refused
//! with an error naming them; every value is range-checked before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cfa_engine::tuning::LogTuning;
use cfa_engine::LogConfig;
use serde::Deserialize;

use crate::constants::{
    CONNECTION_INFLIGHT_BYTES_DEFAULT, CONNECTION_INFLIGHT_BYTES_MAX,
    CONNECTION_INFLIGHT_BYTES_MIN, LISTEN_DEFAULT, RETENTION_CHECK_INTERVAL_MS_DEFAULT,
    RETENTION_CHECK_INTERVAL_MS_MAX, RETENTION_CHECK_INTERVAL_MS_MIN, SHARDS_MAX,
    SHARD_BATCH_CACHE_BYTES_DEFAULT, SHARD_BATCH_CACHE_BYTES_MAX, SHARD_BATCH_CACHE_BYTES_MIN,
    SHARD_IO_MEMORY_BYTES_DEFAULT, SHARD_IO_MEMORY_BYTES_MAX, SHARD_IO_MEMORY_BYTES_MIN,
};
use crate::server::ServerError;

/// The `[broker]` section. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerTuning {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub node_id: Option<u32>,
    pub shards: Option<usize>,
    pub io_memory_bytes: Option<usize>,
    pub shard_batch_cache_bytes: Option<usize>,
    pub connection_inflight_bytes: Option<usize>,
    pub metrics_listen: Option<String>,
    pub retention_check_interval_ms: Option<u64>,
    pub shard_listeners: Option<bool>,
    pub shard_port_base: Option<u16>,
}

/// A whole tuning profile as the broker reads it. Sections other brokers' tools read
/// (the bench's `[producer]` and `[bench]`) are accepted and ignored here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub broker: BrokerTuning,
    #[serde(default)]
    pub log: LogTuning,
    /// Read by the bench and other clients; parsed here so that a typo fails at start.
    #[serde(default)]
    pub producer: Option<crate::client::tuning::ProducerTuning>,
    #[serde(default)]
    pub bench: Option<toml::Table>,
}

impl Profile {
    /// Reads and parses a profile; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Profile, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(format!("cannot read config {}: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("config {}: {e}", path.display())))
    }
}

/// Everything a broker needs to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub node_id: u32,
    /// Executors, one pinned per core; each owns a share of the partitions.
    pub shards: usize,
    /// glommio io_memory per shard (registered with io_uring, counts against memlock).
    pub io_memory_bytes: usize,
    /// Batch-cache bytes each shard's partitions share (each partition: the smaller of
    /// its own `batch_cache_bytes` and this over the shard's partition count).
    pub shard_batch_cache_bytes: usize,
    /// Request bytes one connection may have in flight before the broker stops reading
    /// from it (backpressure reaches the client through TCP).
    pub connection_inflight_bytes: usize,
    /// Prometheus text endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// How often each shard deletes segments past retention.ms / retention.bytes.
    pub retention_check_interval_ms: u64,
    /// With more than one shard: each shard also listens on a port of its own, and
    /// metadata tells clients which shard owns each partition, so that a client sends a
    /// partition's requests to its owner (no hop between shards, no copy between cores).
    pub shard_listeners: bool,
    /// Shard `i` listens on `shard_port_base + i`; 0: on ports the OS picks.
    pub shard_port_base: u16,
    /// Defaults for every partition log; topics may override some keys.
    pub log: LogConfig,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_addr(what: &str, s: &str) -> Result<SocketAddr, ServerError> {
    s.parse()
        .map_err(|e| ServerError::Config(format!("{what} = {s:?}: not an IP:port address ({e})")))
}

impl BrokerConfig {
    /// Built from a profile (and the defaults for whatever it leaves out).
    pub fn from_profile(p: &Profile) -> Result<BrokerConfig, ServerError> {
        let b = &p.broker;
        let log = p
            .log
            .apply(&LogConfig::default())
            .map_err(|e| ServerError::Config(format!("[log]: {e}")))?;
        let config = BrokerConfig {
            data_dir: b
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("cfa-data")),
            listen: parse_addr(
                "broker.listen",
                b.listen.as_deref().unwrap_or(LISTEN_DEFAULT),
            )?,
            node_id: b.node_id.unwrap_or(0),
            shards: match b.shards.unwrap_or(0) {
                0 => cores(),
                n => n,
            },
            io_memory_bytes: b.io_memory_bytes.unwrap_or(SHARD_IO_MEMORY_BYTES_DEFAULT),
            shard_batch_cache_bytes: b
                .shard_batch_cache_bytes
                .unwrap_or(SHARD_BATCH_CACHE_BYTES_DEFAULT),
            connection_inflight_bytes: b
                .connection_inflight_bytes
                .unwrap_or(CONNECTION_INFLIGHT_BYTES_DEFAULT),
            metrics_listen: b
                .metrics_listen
                .as_deref()
                .map(|s| parse_addr("broker.metrics_listen", s))
                .transpose()?,
            retention_check_interval_ms: b
                .retention_check_interval_ms
                .unwrap_or(RETENTION_CHECK_INTERVAL_MS_DEFAULT),
            shard_listeners: b.shard_listeners.unwrap_or(true),
            shard_port_base: b.shard_port_base.unwrap_or(0),
            log,
        };
        config.validate()?;
        Ok(config)
    }

    /// A broker for tests: 127.0.0.1 on a free port, one shard, small memory.
    pub fn for_tests(data_dir: &Path) -> BrokerConfig {
        BrokerConfig {
            data_dir: data_dir.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            node_id: 0,
            shards: 1,
            io_memory_bytes: SHARD_IO_MEMORY_BYTES_MIN,
            shard_batch_cache_bytes: SHARD_BATCH_CACHE_BYTES_DEFAULT,
            connection_inflight_bytes: CONNECTION_INFLIGHT_BYTES_DEFAULT,
            metrics_listen: None,
            retention_check_interval_ms: RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            shard_listeners: true,
            shard_port_base: 0,
            log: LogConfig {
                segment_bytes: 16 << 20,
                ..LogConfig::default()
            },
        }
    }

    /// Range checks, each error naming the key.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: String| Err(ServerError::Config(m));
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return bad(format!(
                "broker.shards = {}: must be 1..={SHARDS_MAX} (0 = one per core)",
                self.shards
            ));
        }
        if !(SHARD_BATCH_CACHE_BYTES_MIN..=SHARD_BATCH_CACHE_BYTES_MAX)
            .contains(&self.shard_batch_cache_bytes)
        {
            return Err(ServerError::Config(format!(
                "broker.shard_batch_cache_bytes = {}: must be {SHARD_BATCH_CACHE_BYTES_MIN}..={SHARD_BATCH_CACHE_BYTES_MAX}",
                self.shard_batch_cache_bytes
            )));
        }
        if !(SHARD_IO_MEMORY_BYTES_MIN..=SHARD_IO_MEMORY_BYTES_MAX).contains(&self.io_memory_bytes)
        {
            return bad(format!(
                "broker.io_memory_bytes = {}: must be {SHARD_IO_MEMORY_BYTES_MIN}..={SHARD_IO_MEMORY_BYTES_MAX}",
                self.io_memory_bytes
            ));
        }
        let inflight = CONNECTION_INFLIGHT_BYTES_MIN..=CONNECTION_INFLIGHT_BYTES_MAX;
        if !inflight.contains(&self.connection_inflight_bytes) {
            return bad(format!(
                "broker.connection_inflight_bytes = {}: must be {CONNECTION_INFLIGHT_BYTES_MIN}..={CONNECTION_INFLIGHT_BYTES_MAX}",
                self.connection_inflight_bytes
            ));
        }
        let retention = RETENTION_CHECK_INTERVAL_MS_MIN..=RETENTION_CHECK_INTERVAL_MS_MAX;
        if !retention.contains(&self.retention_check_interval_ms) {
            return bad(format!(
                "broker.retention_check_interval_ms = {}: must be {RETENTION_CHECK_INTERVAL_MS_MIN}..={RETENTION_CHECK_INTERVAL_MS_MAX}",
                self.retention_check_interval_ms
            ));
        }
        if (self.connection_inflight_bytes as u64) < u64::from(self.log.max_message_bytes) {
            return bad(format!(
                "broker.connection_inflight_bytes = {} is below log.max_message_bytes = {}: no batch could be read",
                self.connection_inflight_bytes, self.log.max_message_bytes
            ));
        }
        self.validate_shard_ports()?;
        self.log
            .validate()
            .map_err(|e| ServerError::Config(format!("[log]: {e}")))
    }

    /// Whether the shards get listeners of their own (see `shard_listeners`).
    pub fn has_shard_listeners(&self) -> bool {
        self.shard_listeners && self.shards > 1
    }

    /// The address shard `shard`'s own listener binds (port 0: the OS picks).
    pub fn shard_listen(&self, shard: usize) -> SocketAddr {
        assert!(shard < self.shards, "shard {shard} of {}", self.shards);
        let port = match self.shard_port_base {
            0 => 0,
            base => base + u16::try_from(shard).expect("validated: base + shard fits a port"),
        };
        SocketAddr::new(self.listen.ip(), port)
    }

    fn validate_shard_ports(&self) -> Result<(), ServerError> {
        if !self.has_shard_listeners() || self.shard_port_base == 0 {
            return Ok(());
        }
        let first = u32::from(self.shard_port_base);
        let last = first + self.shards as u32 - 1;
        let bad = |m: String| Err(ServerError::Config(m));
        if last > u32::from(u16::MAX) {
            return bad(format!(
                "broker.shard_port_base = {first}: with {} shards the last port would be {last}, past 65535",
                self.shards
            ));
        }
        let listen = u32::from(self.listen.port());
        if (first..=last).contains(&listen) {
            return bad(format!(
                "broker.shard_port_base = {first}: shard ports {first}..={last} include broker.listen's port {listen}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(s: &str) -> Result<Profile, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = profile("[broker]\nlisten_addr = \"x\"").expect_err("unknown key");
        assert!(e.to_string().contains("listen_addr"), "{e}");
        let e = profile("[brokers]\n").expect_err("unknown section");
        assert!(e.to_string().contains("brokers"), "{e}");
        let p = profile("[broker]\nlisten = \"localhost\"").expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("bad address");
        assert!(e.to_string().contains("broker.listen"), "{e}");
        let p = profile("[broker]\nshards = 100000").expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("too many shards");
        assert!(e.to_string().contains("broker.shards"), "{e}");
        let p = profile("[broker]\nretention_check_interval_ms = 0").expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("interval too short");
        assert!(e.to_string().contains("retention_check_interval_ms"), "{e}");
        let p = profile("[broker]\nretention_check_interval_ms = 100").expect("parses");
        let c = BrokerConfig::from_profile(&p).expect("in range");
        assert_eq!(c.retention_check_interval_ms, 100);
        let p = profile("[log]\nmax_message_bytes = 1").expect("parses");
        assert!(BrokerConfig::from_profile(&p).is_err());
        let p = profile("[broker]\nshard_batch_cache_bytes = 1000").expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("budget too small");
        assert!(e.to_string().contains("shard_batch_cache_bytes"), "{e}");
        let p = profile("[broker]\nshard_batch_cache_bytes = 2097152").expect("parses");
        let c = BrokerConfig::from_profile(&p).expect("in range");
        assert_eq!(c.shard_batch_cache_bytes, 2 << 20);
    }

    #[test]
    fn shard_ports_are_checked_and_derived() {
        let p = profile("[broker]\nshards = 4\nshard_port_base = 65534").expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("past 65535");
        assert!(e.to_string().contains("shard_port_base"), "{e}");
        let p =
            profile("[broker]\nshards = 4\nlisten = \"127.0.0.1:9302\"\nshard_port_base = 9300")
                .expect("parses");
        let e = BrokerConfig::from_profile(&p).expect_err("overlaps listen");
        assert!(e.to_string().contains("9302"), "{e}");
        let p = profile("[broker]\nshards = 4\nshard_port_base = 9300").expect("parses");
        let c = BrokerConfig::from_profile(&p).expect("in range");
        assert!(c.has_shard_listeners());
        assert_eq!(c.shard_listen(3).to_string(), "127.0.0.1:9303");
        // One shard, or switched off: no listeners, and no port range to check.
        let p = profile("[broker]\nshards = 1\nshard_port_base = 65535").expect("parses");
        assert!(!BrokerConfig::from_profile(&p)
            .expect("one shard")
            .has_shard_listeners());
        let p = profile("[broker]\nshards = 4\nshard_listeners = false\nshard_port_base = 65535")
            .expect("parses");
        assert!(!BrokerConfig::from_profile(&p)
            .expect("off")
            .has_shard_listeners());
        let p = profile("[broker]\nshards = 2").expect("parses");
        let c = BrokerConfig::from_profile(&p).expect("defaults");
        assert_eq!(c.shard_listen(1).port(), 0, "default: the OS picks");
    }

    #[test]
    fn defaults_are_valid() {
        let c = BrokerConfig::from_profile(&Profile::default()).expect("defaults");
        assert_eq!(c.listen.to_string(), LISTEN_DEFAULT);
        assert!(c.shards >= 1);
        assert_eq!(
            c.retention_check_interval_ms,
            RETENTION_CHECK_INTERVAL_MS_DEFAULT
        );
        BrokerConfig::for_tests(Path::new("/tmp/x"))
            .validate()
            .expect("test config");
    }
}
