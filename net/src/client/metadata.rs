//! What the client knows of the cluster: brokers, topics, partitions and their leaders,
//! and one connection per broker.
//!
//! [`MetadataCache`] is the pure part (apply a Metadata response, answer lookups).
//! [`Cluster`] wraps it with the connections: bootstrap list, refresh with back-off when a
//! caller reports stale metadata (UnknownTopic, NotLeader, a broken connection), and a
//! periodic refresh after `metadata_max_age_ms`.

use std::collections::{BTreeMap, HashMap};

use ahash::AHashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::connection::{lock, resolve, Connection, ConnectionConfig, Faults};
use crate::client::error::ClientError;
use crate::client::retry::Backoff;
use crate::client::TopicPartition;
use crate::constants::{BOOTSTRAP_SERVERS_MAX, CLIENT_ID_BYTES_MAX, CONNECTION_IN_FLIGHT_MAX};
use crate::protocol::{ErrorCode, MetadataRequest, MetadataResponse, NodeId, Request, Response};

/// Settings every client shares: where the cluster is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `host:port` of one or more brokers; the rest are learned from metadata.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub metadata_max_age_ms: u64,
    /// Requests in flight per connection.
    pub in_flight_max: usize,
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), ClientError> {
        let fail = |m: String| Err(ClientError::Config(m));
        if self.bootstrap.is_empty() || self.bootstrap.iter().any(|b| b.trim().is_empty()) {
            return fail("bootstrap needs at least one host:port".into());
        }
        if self.bootstrap.len() > BOOTSTRAP_SERVERS_MAX {
            return fail(format!(
                "bootstrap lists {} brokers, at most {BOOTSTRAP_SERVERS_MAX} allowed",
                self.bootstrap.len()
            ));
        }
        if self.client_id.len() > CLIENT_ID_BYTES_MAX {
            return fail(format!(
                "client_id of {} bytes exceeds {CLIENT_ID_BYTES_MAX}",
                self.client_id.len()
            ));
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return fail("connect_timeout_ms and request_timeout_ms must be positive".into());
        }
        if self.retry_backoff_ms == 0 || self.retry_backoff_ms > self.retry_backoff_max_ms {
            return fail(format!(
                "retry_backoff_ms {} must be positive and at most retry_backoff_max_ms {}",
                self.retry_backoff_ms, self.retry_backoff_max_ms
            ));
        }
        if !(1..=CONNECTION_IN_FLIGHT_MAX).contains(&self.in_flight_max) {
            return fail(format!(
                "in-flight requests per connection {} must be in 1..={CONNECTION_IN_FLIGHT_MAX}",
                self.in_flight_max
            ));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig {
            client_id: self.client_id.clone(),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            request_timeout: self.request_timeout(),
            in_flight_max: self.in_flight_max,
        }
    }
}

/// Splits a comma-separated bootstrap list (`a:9192,b:9192`).
pub fn parse_bootstrap(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One partition as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    /// `None` while the partition has no leader.
    pub leader: Option<NodeId>,
    pub leader_epoch: u32,
    /// The leader's shard that owns the partition, if the broker said.
    pub leader_shard: Option<u16>,
}

/// Where a partition's requests go: its leader and, on that broker, the shard that owns
/// the partition. Requests sent to the shard's own listener are served where the
/// partition lives; without one (`shard: None`, or the broker lists no shard ports) they
/// go to the broker's address, and its receiving shard forwards them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Leader {
    pub node: NodeId,
    pub shard: Option<u16>,
}

impl std::fmt::Display for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shard {
            Some(shard) => write!(f, "node {} shard {shard}", self.node),
            None => write!(f, "node {}", self.node),
        }
    }
}

/// One topic as metadata describes it; partitions indexed by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
    /// Partitions with a leader, ascending (kept for the keyless partitioner, which
    /// needs them for every record).
    available: Vec<u32>,
}

impl TopicInfo {
    /// `partitions` numbered 0..n in order.
    pub fn new(name: String, partitions: Vec<PartitionInfo>) -> TopicInfo {
        assert!(
            partitions
                .iter()
                .enumerate()
                .all(|(i, p)| p.partition as usize == i),
            "partitions are numbered 0..n in order"
        );
        let available = partitions
            .iter()
            .filter(|p| p.leader.is_some())
            .map(|p| p.partition)
            .collect();
        TopicInfo {
            name,
            partitions,
            available,
        }
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    pub fn partition_count_nonzero(&self) -> Option<NonZeroU32> {
        NonZeroU32::new(self.partition_count())
    }

    /// Partitions that have a leader now (for the keyless partitioner).
    pub fn available(&self) -> &[u32] {
        &self.available
    }

    pub fn leader(&self, partition: u32) -> Option<NodeId> {
        self.partitions
            .get(partition as usize)
            .and_then(|p| p.leader)
    }

    /// The leader with its owning shard.
    pub fn leader_shard(&self, partition: u32) -> Option<Leader> {
        let p = self.partitions.get(partition as usize)?;
        Some(Leader {
            node: p.leader?,
            shard: p.leader_shard,
        })
    }
}

/// Why a topic is missing from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

/// Brokers and topics from the latest Metadata responses.
#[derive(Debug, Clone, Default)]
pub struct MetadataCache {
    brokers: BTreeMap<NodeId, String>,
    /// Each broker's shard listeners (`host:port`, by shard); absent: it has none.
    shard_addrs: BTreeMap<NodeId, Vec<String>>,
    controller: Option<NodeId>,
    /// Looked up for every record sent: ahash, not std's SipHash (1% of a max-rate run).
    topics: AHashMap<String, Arc<TopicInfo>>,
    /// Topics the broker answered with an error for (unknown topic, ...).
    errors: AHashMap<String, TopicError>,
}

impl MetadataCache {
    /// Applies a response. Brokers are replaced; topics in the response replace their
    /// entries, others stay (a response may cover only some topics).
    pub fn apply(&mut self, response: &MetadataResponse) {
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
                .collect();
            self.shard_addrs = response
                .brokers
                .iter()
                .filter(|b| !b.shard_ports.is_empty())
                .map(|b| {
                    let addrs = b.shard_ports.iter().map(|p| format!("{}:{p}", b.host));
                    (b.node_id, addrs.collect())
                })
                .collect();
        }
        self.controller = response.controller_id;
        for t in &response.topics {
            if t.error_code.is_error() {
                self.topics.remove(&t.name);
                let err = TopicError {
                    code: t.error_code,
                    message: t.error_message.clone(),
                };
                self.errors.insert(t.name.clone(), err);
                continue;
            }
            self.errors.remove(&t.name);
            self.topics.insert(t.name.clone(), Arc::new(topic_info(t)));
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        self.topics.get(name).cloned()
    }

    pub fn topic_error(&self, name: &str) -> Option<&TopicError> {
        self.errors.get(name)
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.topics.get(&*tp.topic)?.leader(tp.partition)
    }

    pub fn broker_addr(&self, node: NodeId) -> Option<&str> {
        self.brokers.get(&node).map(String::as_str)
    }

    /// The leader of `tp` and its owning shard; the shard only when the broker lists a
    /// listener for it, so that one `Leader` is one connection (the sender's in-flight
    /// limit is per connection).
    pub fn leader_shard(&self, tp: &TopicPartition) -> Option<Leader> {
        let mut leader = self.topics.get(&*tp.topic)?.leader_shard(tp.partition)?;
        if self.shard_addr(leader).is_none() {
            leader.shard = None;
        }
        Some(leader)
    }

    /// The address of `leader`'s shard listener, if its broker lists one for that shard.
    pub fn shard_addr(&self, leader: Leader) -> Option<&str> {
        let addrs = self.shard_addrs.get(&leader.node)?;
        addrs.get(usize::from(leader.shard?)).map(String::as_str)
    }

    pub fn brokers(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.brokers.iter().map(|(n, a)| (*n, a.as_str()))
    }

    pub fn controller(&self) -> Option<NodeId> {
        self.controller
    }

    /// Forgets a topic's partitions (after NotLeader, say) so lookups wait for a refresh.
    pub fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }
}

/// The partitions of a topic in the response, indexed by partition number. A response
/// that skips a partition number (it should not) leaves that one leaderless rather than
/// shifting the others.
fn topic_info(t: &crate::protocol::TopicMetadata) -> TopicInfo {
    // Partitions are numbered 0..n; an entry numbered outside that range (a broker bug)
    // is ignored rather than allowed to size the table.
    let count = t.partitions.len();
    let mut partitions: Vec<PartitionInfo> = (0..count as u32)
        .map(|partition| PartitionInfo {
            partition,
            leader: None,
            leader_epoch: 0,
            leader_shard: None,
        })
        .collect();
    for p in t
        .partitions
        .iter()
        .filter(|p| (p.partition as usize) < count)
    {
        let slot = &mut partitions[p.partition as usize];
        slot.leader = if p.error_code.is_error() {
            None
        } else {
            p.leader_id
        };
        slot.leader_epoch = p.leader_epoch;
        slot.leader_shard = p.leader_shard;
    }
    TopicInfo::new(t.name.clone(), partitions)
}

/// The cluster as a client sees it: metadata plus one connection per broker. Cheap to
/// clone; clones share everything.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<ClusterInner>,
}

struct ClusterInner {
    config: ClusterConfig,
    faults: Arc<Faults>,
    cache: Mutex<CacheState>,
    conns: Mutex<HashMap<SocketAddr, Connection>>,
    /// Serialises refreshes, and holds their back-off.
    refresh: Mutex<Backoff>,
    /// Bumped whenever the cache changes (under its lock). The producer keeps each
    /// topic's route with the generation it was read at and asks again only when this
    /// moved: the cache's mutex and the route's refcount, touched for every record, were
    /// contended with the sender thread (max-rate profiles).
    generation: AtomicU64,
}

/// Whether the cache was never refreshed, or last refreshed at least `age` ago.
fn older_than(state: &CacheState, age: Duration) -> bool {
    state.refreshed_at.is_none_or(|t| t.elapsed() >= age)
}

struct CacheState {
    cache: MetadataCache,
    /// Topics the client uses: every refresh asks for them.
    wanted: Vec<String>,
    refreshed_at: Option<Instant>,
    /// Set by callers that saw stale metadata.
    stale: bool,
    /// The earliest time the next refresh may start (back-off after a failure).
    next_refresh_at: Option<Instant>,
}

impl Cluster {
    pub fn new(config: ClusterConfig) -> Result<Cluster, ClientError> {
        Cluster::with_faults(config, Arc::default())
    }

    pub fn with_faults(config: ClusterConfig, faults: Arc<Faults>) -> Result<Cluster, ClientError> {
        config.validate()?;
        let refresh = Backoff::new(config.retry_backoff_ms, config.retry_backoff_max_ms);
        Ok(Cluster {
            inner: Arc::new(ClusterInner {
                config,
                faults,
                cache: Mutex::new(CacheState {
                    cache: MetadataCache::default(),
                    wanted: Vec::new(),
                    refreshed_at: None,
                    stale: true,
                    next_refresh_at: None,
                }),
                conns: Mutex::new(HashMap::new()),
                refresh: Mutex::new(refresh),
                generation: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// Changes whenever the metadata cache does: what was read from it at an equal
    /// generation is still what it holds.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.inner.faults
    }

    pub fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout()
    }

    /// A snapshot of the cache.
    pub fn snapshot(&self) -> MetadataCache {
        lock(&self.inner.cache).cache.clone()
    }

    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        lock(&self.inner.cache).cache.topic(name)
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<NodeId> {
        lock(&self.inner.cache).cache.leader(tp)
    }

    /// Where `tp`'s requests go: its leader's owning shard, or with `shard_aware` off
    /// the leader alone (one connection per broker).
    pub fn leader_shard(&self, tp: &TopicPartition, shard_aware: bool) -> Option<Leader> {
        let state = lock(&self.inner.cache);
        if shard_aware {
            return state.cache.leader_shard(tp);
        }
        let node = state.cache.leader(tp)?;
        Some(Leader { node, shard: None })
    }

    /// Marks metadata stale: the next `maybe_refresh` refreshes (after the back-off).
    pub fn request_refresh(&self) {
        lock(&self.inner.cache).stale = true;
    }

    /// Marks a topic's entry unusable until the next refresh.
    pub fn invalidate_topic(&self, topic: &str) {
        let mut state = lock(&self.inner.cache);
        state.cache.invalidate(topic);
        self.inner.generation.fetch_add(1, Ordering::Release);
        state.stale = true;
    }

    /// Adds topics to those every refresh covers.
    pub fn want_topics(&self, topics: &[String]) {
        let mut state = lock(&self.inner.cache);
        for t in topics {
            if !state.wanted.contains(t) {
                state.wanted.push(t.clone());
                state.stale = true;
            }
        }
    }

    /// Refreshes if metadata is stale or old and the back-off allows it now. Errors are
    /// kept for the back-off and returned.
    pub fn maybe_refresh(&self) -> Result<(), ClientError> {
        let max_age = Duration::from_millis(self.inner.config.metadata_max_age_ms);
        self.refresh_if(|state| state.stale || older_than(state, max_age))
            .map(|_| ())
    }

    /// Refreshes now unless the last refresh is younger than `age` or the back-off
    /// forbids it; returns whether it did. For a caller whose input contradicts the
    /// metadata (a partition past the known count): the topic may have grown, and a
    /// caller that keeps sending such input costs at most one refresh per `age`.
    pub fn refresh_unless_newer_than(&self, age: Duration) -> Result<bool, ClientError> {
        self.refresh_if(|state| older_than(state, age))
    }

    /// Refreshes if `wanted` says so and the back-off allows it now; returns whether it
    /// did.
    fn refresh_if(&self, wanted: impl FnOnce(&CacheState) -> bool) -> Result<bool, ClientError> {
        let due = {
            let state = lock(&self.inner.cache);
            let allowed = state.next_refresh_at.is_none_or(|t| Instant::now() >= t);
            wanted(&state) && allowed
        };
        if due {
            self.refresh()?;
        }
        Ok(due)
    }

    /// When the next refresh may start, if metadata is stale (for a caller's sleep).
    pub fn refresh_due_at(&self) -> Option<Instant> {
        let state = lock(&self.inner.cache);
        state
            .stale
            .then(|| state.next_refresh_at.unwrap_or_else(Instant::now))
    }

    /// Fetches metadata for every wanted topic now.
    pub fn refresh(&self) -> Result<(), ClientError> {
        let mut backoff = lock(&self.inner.refresh);
        let topics = lock(&self.inner.cache).wanted.clone();
        let result = self.fetch_metadata(Some(topics));
        let mut state = lock(&self.inner.cache);
        match result {
            Ok(response) => {
                state.cache.apply(&response);
                self.inner.generation.fetch_add(1, Ordering::Release);
                state.refreshed_at = Some(Instant::now());
                state.stale = false;
                state.next_refresh_at = None;
                backoff.reset();
                Ok(())
            }
            Err(e) => {
                state.next_refresh_at = Some(Instant::now() + backoff.next_delay());
                Err(e)
            }
        }
    }

    /// One Metadata request to any reachable broker.
    pub fn fetch_metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        let conn = self.any_connection()?;
        let response = conn.call(
            Request::Metadata(MetadataRequest { topics }),
            self.request_timeout(),
        );
        match response {
            Ok(Response::Metadata(m)) => Ok(m),
            Ok(Response::Failed(f)) => Err(ClientError::Broker {
                context: format!("Metadata from {}", conn.addr()),
                code: f.error_code,
                message: f.error_message,
            }),
            Ok(other) => Err(conn.unexpected(crate::protocol::ApiKey::Metadata, &other)),
            Err(e) => Err(e),
        }
    }

    /// The topic's metadata, refreshing (with back-off) until it is known or `deadline`
    /// passes. A topic the broker reports as unknown fails at once: cfa does not create
    /// topics on first use, so waiting would not help.
    pub fn wait_for_topic(
        &self,
        topic: &str,
        deadline: Instant,
    ) -> Result<Arc<TopicInfo>, ClientError> {
        let usable = |info: Option<Arc<TopicInfo>>| info.filter(|i| i.partition_count() > 0);
        {
            // The common case (a known topic) takes one lock and allocates nothing: this
            // runs for every record a producer sends.
            let mut state = lock(&self.inner.cache);
            if !state.wanted.iter().any(|t| t == topic) {
                state.wanted.push(topic.to_owned());
                state.stale = true;
            }
            if let Some(info) = usable(state.cache.topic(topic)) {
                return Ok(info);
            }
        }
        loop {
            let refreshed = self.refresh();
            if refreshed.is_ok() {
                let state = lock(&self.inner.cache);
                if let Some(err) = state.cache.topic_error(topic) {
                    if err.code == ErrorCode::UnknownTopic {
                        return Err(ClientError::UnknownTopic {
                            topic: topic.to_owned(),
                            message: err.message.clone(),
                        });
                    }
                }
                if let Some(info) = usable(state.cache.topic(topic)) {
                    return Ok(info);
                }
            }
            if let Err(e @ ClientError::Unreachable { .. }) = &refreshed {
                // Never reached any broker: a wrong address or a broker that is down;
                // say so now rather than after max_block_ms.
                if lock(&self.inner.cache).refreshed_at.is_none() {
                    return Err(e.clone());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(match refreshed {
                    Err(e) => e,
                    Ok(()) => self.topic_timeout(topic),
                });
            }
            let pause = Duration::from_millis(self.inner.config.retry_backoff_ms);
            let wake = lock(&self.inner.cache)
                .next_refresh_at
                .unwrap_or(now + pause)
                .min(deadline);
            std::thread::sleep(wake.saturating_duration_since(now));
        }
    }

    pub fn topic_timeout(&self, topic: &str) -> ClientError {
        let state = lock(&self.inner.cache);
        match state.cache.topic_error(topic) {
            Some(err) => ClientError::Broker {
                context: format!("Metadata for '{topic}'"),
                code: err.code,
                message: err.message.clone(),
            },
            None => ClientError::UnknownTopic {
                topic: topic.to_owned(),
                message: Some("not in metadata yet".to_owned()),
            },
        }
    }

    /// The connection to broker `node`, opened if needed.
    pub fn connection_to(&self, node: NodeId) -> Result<Connection, ClientError> {
        let addr = lock(&self.inner.cache)
            .cache
            .broker_addr(node)
            .map(str::to_owned);
        let Some(addr) = addr else {
            self.request_refresh();
            return Err(ClientError::Unreachable {
                addr: format!("node {node}"),
                cause: "the broker is not in the cluster metadata".to_owned(),
            });
        };
        self.connection_at(&addr)
    }

    /// The connection to `leader`: its shard's own listener when the broker lists one,
    /// else the broker's address. A shard listener that cannot be reached (a firewall
    /// that lets only the main port through, say) is not fatal: the broker's address
    /// serves every partition too, one hop between shards further.
    pub fn connection_for(&self, leader: Leader) -> Result<Connection, ClientError> {
        let shard_addr = lock(&self.inner.cache)
            .cache
            .shard_addr(leader)
            .map(str::to_owned);
        if let Some(addr) = shard_addr {
            match self.connection_at(&addr) {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::debug!(%leader, %addr, error = %e, "shard listener unreachable; using the broker's address");
                    self.request_refresh();
                }
            }
        }
        self.connection_to(leader.node)
    }

    /// The connection to `addr` (`host:port`), opened if needed.
    pub fn connection_at(&self, addr: &str) -> Result<Connection, ClientError> {
        let sock = resolve(addr)?;
        let mut conns = lock(&self.inner.conns);
        if let Some(c) = conns.get(&sock) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let config = self.inner.config.connection_config();
        let conn = Connection::connect(sock, &config, Arc::clone(&self.inner.faults))?;
        conns.insert(sock, conn.clone());
        Ok(conn)
    }

    /// A new connection to `addr`, not shared with anyone: for requests the broker may
    /// hold for long (a JoinGroup waits for the whole group), since a broker answers the
    /// requests of one connection in order.
    pub fn connect_dedicated(&self, addr: &str) -> Result<Connection, ClientError> {
        let sock = resolve(addr)?;
        let config = self.inner.config.connection_config();
        Connection::connect(sock, &config, Arc::clone(&self.inner.faults))
    }

    /// The `host:port` of broker `node`, if metadata lists it.
    pub fn broker_addr(&self, node: NodeId) -> Option<String> {
        lock(&self.inner.cache)
            .cache
            .broker_addr(node)
            .map(str::to_owned)
    }

    /// A connection to any broker: a live one if there is one, else the known brokers
    /// and then the bootstrap list, in order. The error names every address tried.
    pub fn any_connection(&self) -> Result<Connection, ClientError> {
        if let Some(c) = lock(&self.inner.conns).values().find(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let mut candidates: Vec<String> = lock(&self.inner.cache)
            .cache
            .brokers()
            .map(|(_, a)| a.to_owned())
            .collect();
        for b in &self.inner.config.bootstrap {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        let mut failures = Vec::new();
        for addr in &candidates {
            match self.connection_at(addr) {
                Ok(c) => return Ok(c),
                Err(ClientError::Unreachable { cause, .. }) => failures.push((addr, cause)),
                Err(e) => failures.push((addr, e.to_string())),
            }
        }
        let addr = candidates.join(", ");
        let cause = match failures.as_slice() {
            [(_, cause)] => cause.clone(),
            many => many
                .iter()
                .map(|(a, c)| format!("{a}: {c}"))
                .collect::<Vec<_>>()
                .join("; "),
        };
        Err(ClientError::Unreachable { addr, cause })
    }

    /// The controller's connection if metadata names one, else any broker's.
    pub fn controller_connection(&self) -> Result<Connection, ClientError> {
        if lock(&self.inner.cache).refreshed_at.is_none() {
            // Best effort: without metadata any broker will do.
            let _ = self.refresh();
        }
        let controller = lock(&self.inner.cache).cache.controller();
        match controller.map(|n| self.connection_to(n)) {
            Some(Ok(c)) => Ok(c),
            _ => self.any_connection(),
        }
    }

    /// Closes every connection.
    pub fn close(&self) {
        let conns: Vec<Connection> = lock(&self.inner.conns).drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::METADATA_MAX_AGE_MS_DEFAULT;
    use crate::protocol::{BrokerInfo, PartitionMetadata, TopicMetadata};

    fn partition(p: u32, leader: Option<u32>) -> PartitionMetadata {
        PartitionMetadata {
            partition: p,
            error_code: ErrorCode::None,
            error_message: None,
            leader_id: leader,
            leader_epoch: 3,
            replicas: vec![1],
            isr: vec![1],
            leader_shard: None,
        }
    }

    fn response(topics: Vec<TopicMetadata>) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9192,
                shard_ports: Vec::new(),
            }],
            controller_id: Some(1),
            topics,
        }
    }

    fn topic(name: &str, partitions: Vec<PartitionMetadata>) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            error_code: ErrorCode::None,
            error_message: None,
            partitions,
        }
    }

    #[test]
    fn cache_indexes_partitions_and_leaders() {
        let mut cache = MetadataCache::default();
        // Out of order, one leaderless: the index is the partition number.
        let t = topic(
            "soccer",
            vec![
                partition(2, Some(1)),
                partition(0, Some(1)),
                partition(1, None),
            ],
        );
        cache.apply(&response(vec![t]));
        let info = cache.topic("soccer").expect("known");
        assert_eq!(info.partition_count(), 3);
        assert_eq!(info.available(), &[0, 2]);
        assert_eq!(cache.leader(&TopicPartition::new("soccer", 1)), None);
        assert_eq!(cache.leader(&TopicPartition::new("soccer", 2)), Some(1));
        assert_eq!(cache.leader(&TopicPartition::new("soccer", 3)), None);
        assert_eq!(cache.broker_addr(1), Some("127.0.0.1:9192"));
        assert_eq!(cache.controller(), Some(1));
    }

    #[test]
    fn topic_errors_replace_entries_and_partial_responses_keep_others() {
        let mut cache = MetadataCache::default();
        cache.apply(&response(vec![
            topic("a", vec![partition(0, Some(1))]),
            topic("b", vec![partition(0, Some(1))]),
        ]));
        let mut gone = topic("a", vec![]);
        gone.error_code = ErrorCode::UnknownTopic;
        gone.error_message = Some("unknown topic 'a'".into());
        cache.apply(&response(vec![gone]));
        assert!(cache.topic("a").is_none());
        assert_eq!(
            cache.topic_error("a").map(|e| e.code),
            Some(ErrorCode::UnknownTopic)
        );
        assert!(cache.topic("b").is_some(), "b was not in the response");
        cache.apply(&response(vec![topic("a", vec![partition(0, Some(1))])]));
        assert!(cache.topic("a").is_some() && cache.topic_error("a").is_none());
        cache.invalidate("b");
        assert!(cache.topic("b").is_none());
    }

    #[test]
    fn a_leader_names_its_shard_only_where_the_broker_lists_a_listener() {
        let mut cache = MetadataCache::default();
        let owned = |p: u32, shard: u16| PartitionMetadata {
            leader_shard: Some(shard),
            ..partition(p, Some(1))
        };
        let t = || topic("t", vec![owned(0, 0), owned(1, 1), owned(2, 2)]);
        // No shard listeners: every partition goes to the broker's address.
        cache.apply(&response(vec![t()]));
        let tp = |p| TopicPartition::new("t", p);
        for p in 0..3 {
            let leader = cache.leader_shard(&tp(p)).expect("has a leader");
            assert_eq!(
                leader,
                Leader {
                    node: 1,
                    shard: None
                }
            );
        }
        // Two listeners: shards 0 and 1 get theirs; shard 2 (not listed) falls back.
        let mut r = response(vec![t()]);
        r.brokers[0].shard_ports = vec![9300, 9301];
        cache.apply(&r);
        let leader = cache.leader_shard(&tp(1)).expect("has a leader");
        assert_eq!(
            leader,
            Leader {
                node: 1,
                shard: Some(1)
            }
        );
        assert_eq!(leader.to_string(), "node 1 shard 1");
        assert_eq!(cache.shard_addr(leader), Some("127.0.0.1:9301"));
        assert_eq!(cache.leader_shard(&tp(2)).and_then(|l| l.shard), None);
        assert_eq!(cache.leader_shard(&tp(3)), None, "no such partition");
        // A response without brokers keeps them; one with brokers but no ports drops them.
        cache.apply(&MetadataResponse {
            brokers: Vec::new(),
            ..response(vec![t()])
        });
        assert_eq!(cache.leader_shard(&tp(0)).and_then(|l| l.shard), Some(0));
        cache.apply(&response(vec![t()]));
        assert_eq!(cache.leader_shard(&tp(0)).and_then(|l| l.shard), None);
    }

    #[test]
    fn a_partition_error_means_no_leader() {
        let mut cache = MetadataCache::default();
        let mut p = partition(0, Some(1));
        p.error_code = ErrorCode::LeaderNotAvailable;
        cache.apply(&response(vec![topic("t", vec![p])]));
        assert_eq!(cache.leader(&TopicPartition::new("t", 0)), None);
    }

    #[test]
    fn config_validation_names_the_setting() {
        let good = ClusterConfig {
            bootstrap: parse_bootstrap("127.0.0.1:9192, 127.0.0.1:9193"),
            client_id: "c".into(),
            connect_timeout_ms: 1000,
            request_timeout_ms: 1000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1000,
            metadata_max_age_ms: METADATA_MAX_AGE_MS_DEFAULT,
            in_flight_max: 5,
        };
        assert_eq!(good.bootstrap.len(), 2);
        good.validate().expect("valid");
        let mut bad = good.clone();
        bad.bootstrap = parse_bootstrap(" , ");
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.retry_backoff_ms = 2000;
        let err = bad.validate().expect_err("backoff above max");
        assert!(err.to_string().contains("retry_backoff_ms"), "{err}");
        let mut bad = good;
        bad.in_flight_max = 0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn unreachable_bootstrap_names_every_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let cluster = Cluster::new(ClusterConfig {
            bootstrap: vec![addr.clone()],
            client_id: "c".into(),
            connect_timeout_ms: 500,
            request_timeout_ms: 500,
            retry_backoff_ms: 10,
            retry_backoff_max_ms: 20,
            metadata_max_age_ms: METADATA_MAX_AGE_MS_DEFAULT,
            in_flight_max: 5,
        })
        .expect("config");
        let err = cluster.any_connection().expect_err("nothing listens");
        assert!(
            err.to_string()
                .starts_with(&format!("broker unreachable at {addr}: ")),
            "{err}"
        );
        let deadline = Instant::now() + Duration::from_millis(100);
        let err = cluster
            .wait_for_topic("t", deadline)
            .expect_err("unreachable");
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    }
}
