//! The consumer: `poll` records from subscribed (group) or assigned partitions.
//!
//! - Group mode ([`Consumer::subscribe`]): the consumer joins its group (JoinGroup,
//!   SyncGroup; the coordinator computes the assignment), a heartbeat thread keeps the
//!   session alive, and rebalances run inside `poll`, in the caller's thread: commit (with
//!   auto-commit) and `on_partitions_revoked` before a partition is given up,
//!   `on_partitions_assigned` after new ones arrive. See `group.rs` for the contract.
//! - Manual mode ([`Consumer::assign`]): no coordination; commits carry generation -1,
//!   as Kafka's standalone consumers do.
//!
//! Fetching: one Fetch in flight per leader, long-polled (`fetch_max_wait_ms`, bounded by
//! the time `poll` has left); answers are decoded, records below the position dropped.
//! Delivery is at-least-once: positions move when `poll` returns records, and commits
//! commit positions.
//!
//! A `Consumer` is used from one thread at a time (it is `Send`, not `Sync`), as in Kafka.

mod fetcher;
mod group;
mod subscription;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::metadata::{parse_bootstrap, Cluster, ClusterConfig, Leader};
use crate::client::requests::{call, list_offsets, offset_fetch};
use crate::client::retry::Backoff;
use crate::client::{RecordHeader, TopicPartition};
use crate::constants::{
    ASSIGNORS_DEFAULT, AUTO_COMMIT_INTERVAL_MS_DEFAULT, CONNECT_TIMEOUT_MS_DEFAULT,
    FETCH_MAX_BYTES_DEFAULT, FETCH_MAX_WAIT_MS_DEFAULT, FETCH_MIN_BYTES_DEFAULT,
    HEARTBEAT_INTERVAL_MS_DEFAULT, MAX_PARTITION_FETCH_BYTES_DEFAULT, MAX_POLL_RECORDS_DEFAULT,
    METADATA_MAX_AGE_MS_DEFAULT, PARTITION_PREFETCH_BYTES_DEFAULT, PARTITION_PREFETCH_BYTES_MAX,
    REBALANCE_TIMEOUT_MS_DEFAULT, REQUEST_TIMEOUT_MS_DEFAULT, RETRY_BACKOFF_MAX_MS_DEFAULT,
    RETRY_BACKOFF_MS_DEFAULT, SESSION_TIMEOUT_MS_DEFAULT,
};
use crate::protocol::{
    ErrorCode, JoinGroupRequest, LeaveGroupRequest, OffsetCommitPartition, OffsetCommitRequest,
    OffsetCommitResponse, OffsetCommitTopic, OffsetSpec, Request, Response, SyncGroupRequest,
};

use fetcher::{FetchSettings, Outcome};
use group::{
    is_cooperative, is_fenced, steps_after_sync, steps_before_join, steps_on_close,
    steps_when_fenced, Channel, CoordinatorLink, Heartbeat, HeartbeatTiming, Step,
};
use subscription::{FetchPosition, PositionSource, Subscription};

/// Longest `poll` waits in one go before it looks at the group state again (a heartbeat
/// may have asked for a rejoin meanwhile).
const POLL_TICK_MS: u64 = 100;

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced from now on.
    #[default]
    Latest,
    /// No default: `poll` fails with `ClientError::NoOffset`.
    None,
}

/// Consumer settings (Kafka's names, units last).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `host:port` of one or more brokers.
    pub bootstrap: Vec<String>,
    /// Needed by `subscribe` and by commits.
    pub group_id: Option<String>,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    /// max.poll.interval.ms: how long the group waits for this member to rejoin during a
    /// rebalance (sent as the JoinGroup's rebalance timeout).
    pub rebalance_timeout_ms: u32,
    pub max_poll_records: usize,
    pub fetch_max_bytes: u32,
    pub max_partition_fetch_bytes: u32,
    /// A partition is fetched again while fewer than this many bytes of it are buffered
    /// (0: only when nothing is; see `PARTITION_PREFETCH_BYTES_DEFAULT`).
    pub partition_prefetch_bytes: u32,
    pub fetch_max_wait_ms: u32,
    pub fetch_min_bytes: u32,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub auto_offset_reset: OffsetReset,
    /// Assignor names, most preferred first (the coordinator's names: range,
    /// roundrobin, sticky, cooperative-sticky).
    pub assignors: Vec<String>,
    /// Verify each fetched batch's CRC before decoding it.
    pub check_crcs: bool,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub metadata_max_age_ms: u64,
    /// Fetch each partition from the connection of the shard that owns it, where the
    /// broker lists shard listeners (one fetch in flight per shard); `false`: one fetch
    /// per broker, whose receiving shard asks the others.
    pub shard_aware: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            bootstrap: vec!["127.0.0.1:9192".to_owned()],
            group_id: None,
            client_id: "cfa-consumer".to_owned(),
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS_DEFAULT,
            rebalance_timeout_ms: REBALANCE_TIMEOUT_MS_DEFAULT,
            max_poll_records: MAX_POLL_RECORDS_DEFAULT,
            fetch_max_bytes: FETCH_MAX_BYTES_DEFAULT,
            max_partition_fetch_bytes: MAX_PARTITION_FETCH_BYTES_DEFAULT,
            partition_prefetch_bytes: PARTITION_PREFETCH_BYTES_DEFAULT,
            fetch_max_wait_ms: FETCH_MAX_WAIT_MS_DEFAULT,
            fetch_min_bytes: FETCH_MIN_BYTES_DEFAULT,
            enable_auto_commit: true,
            auto_commit_interval_ms: AUTO_COMMIT_INTERVAL_MS_DEFAULT,
            auto_offset_reset: OffsetReset::Latest,
            assignors: ASSIGNORS_DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
            check_crcs: true,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            retry_backoff_ms: RETRY_BACKOFF_MS_DEFAULT,
            retry_backoff_max_ms: RETRY_BACKOFF_MAX_MS_DEFAULT,
            metadata_max_age_ms: METADATA_MAX_AGE_MS_DEFAULT,
            shard_aware: true,
        }
    }
}

impl ConsumerConfig {
    /// Defaults for `bootstrap` (comma-separated `host:port` list) and an optional group.
    pub fn new(bootstrap: &str, group_id: Option<&str>) -> ConsumerConfig {
        ConsumerConfig {
            bootstrap: parse_bootstrap(bootstrap),
            group_id: group_id.map(str::to_owned),
            ..ConsumerConfig::default()
        }
    }

    /// Checks every value and their combinations; the error names the setting.
    pub fn validate(&self) -> Result<(), ClientError> {
        self.cluster_config().validate()?;
        let fail = |m: String| Err(ClientError::Config(m));
        if self.group_id.as_deref() == Some("") {
            return fail("group_id must not be empty (use None for no group)".into());
        }
        if self.session_timeout_ms == 0 || self.heartbeat_interval_ms == 0 {
            return fail("session_timeout_ms and heartbeat_interval_ms must be positive".into());
        }
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return fail(format!(
                "heartbeat_interval_ms {} must be below session_timeout_ms {}",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        if self.rebalance_timeout_ms == 0 {
            return fail("rebalance_timeout_ms must be positive".into());
        }
        if self.max_poll_records == 0 {
            return fail("max_poll_records must be at least 1".into());
        }
        if self.max_partition_fetch_bytes == 0 || self.fetch_max_bytes == 0 {
            return fail("fetch_max_bytes and max_partition_fetch_bytes must be positive".into());
        }
        if self.partition_prefetch_bytes > PARTITION_PREFETCH_BYTES_MAX {
            return fail(format!(
                "partition_prefetch_bytes {} exceeds the most allowed, {PARTITION_PREFETCH_BYTES_MAX}",
                self.partition_prefetch_bytes
            ));
        }
        if self.fetch_min_bytes > self.fetch_max_bytes {
            return fail(format!(
                "fetch_min_bytes {} exceeds fetch_max_bytes {}",
                self.fetch_min_bytes, self.fetch_max_bytes
            ));
        }
        if self.enable_auto_commit && self.auto_commit_interval_ms == 0 {
            return fail("auto_commit_interval_ms must be positive".into());
        }
        if self.assignors.is_empty() || self.assignors.iter().any(String::is_empty) {
            return fail("assignors needs at least one non-empty name".into());
        }
        Ok(())
    }

    fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            bootstrap: self.bootstrap.clone(),
            client_id: self.client_id.clone(),
            connect_timeout_ms: self.connect_timeout_ms,
            request_timeout_ms: self.request_timeout_ms,
            retry_backoff_ms: self.retry_backoff_ms,
            retry_backoff_max_ms: self.retry_backoff_max_ms,
            metadata_max_age_ms: self.metadata_max_age_ms,
            // A fetch per broker plus metadata and offset lookups.
            in_flight_max: 4,
        }
    }

    fn fetch_settings(&self) -> FetchSettings {
        FetchSettings {
            max_wait_ms: self.fetch_max_wait_ms,
            min_bytes: self.fetch_min_bytes,
            max_bytes: self.fetch_max_bytes,
            partition_max_bytes: self.max_partition_fetch_bytes,
            prefetch_bytes: self.partition_prefetch_bytes as usize,
            check_crcs: self.check_crcs,
        }
    }
}

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Shared by every record of the partition (one reference count, not a copy, each).
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

impl ConsumerRecord {
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::shared(&self.topic, self.partition)
    }
}

/// Rebalance callbacks, called from `poll` (and `close`) in the caller's thread. The
/// consumer is passed in, so a callback may `seek`, `commit_sync` or ask for `position`;
/// calling `poll` from a callback is refused.
pub trait RebalanceListener: Send {
    /// Before partitions are given up (after the auto-commit of their positions).
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        let _ = (consumer, partitions);
    }

    /// After partitions were assigned (their positions come from the committed offsets
    /// unless the callback seeks).
    fn on_partitions_assigned(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        let _ = (consumer, partitions);
    }

    /// The membership was lost (session expired, fenced): the partitions already belong
    /// to others, nothing can be committed for them. Defaults to `on_partitions_revoked`.
    fn on_partitions_lost(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(consumer, partitions);
    }
}

/// The outcome of a commit: the offsets committed, or why it failed.
pub type CommitResult = Result<BTreeMap<TopicPartition, u64>, ClientError>;

/// Called with the outcome of an async commit.
pub type CommitCallback = Box<dyn FnOnce(CommitResult) + Send>;

enum Mode {
    Unset,
    Subscribed,
    Assigned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    /// Must (re)join before consuming as a member.
    Unjoined,
    /// A JoinGroup is outstanding.
    Joining { token: u64 },
    /// Synced: heartbeats run.
    Stable,
}

struct GroupCtx {
    link: Arc<CoordinatorLink>,
    heartbeat: Heartbeat,
    topics: Vec<String>,
    member_id: String,
    generation_id: i32,
    /// Whether the last synced generation is cooperative.
    cooperative: bool,
    state: JoinState,
    /// Partitions this member holds (released only through rebalance steps).
    owned: BTreeSet<TopicPartition>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

enum Event {
    Fetch {
        leader: Leader,
        token: u64,
        result: Result<Response, ClientError>,
    },
    Join {
        token: u64,
        result: Result<Response, ClientError>,
    },
    Commit {
        token: u64,
        result: Result<Response, ClientError>,
    },
}

struct PendingFetch {
    token: u64,
    positions: Vec<FetchPosition>,
}

struct PendingCommit {
    offsets: BTreeMap<TopicPartition, u64>,
    callback: Option<CommitCallback>,
}

/// How `shutdown` leaves the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseMode {
    /// Final commit, revoke callbacks, LeaveGroup.
    Full,
    /// LeaveGroup only (drop without close).
    Quiet,
    /// Nothing: as if the process died (tests).
    Crash,
}

/// A consumer. See the module documentation.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Cluster,
    subs: Subscription,
    mode: Mode,
    listener: Option<Box<dyn RebalanceListener>>,
    group: Option<GroupCtx>,
    /// The group's coordinator link, when `group_id` is set (commits, committed offsets).
    link: Option<Arc<CoordinatorLink>>,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    fetches: HashMap<Leader, PendingFetch>,
    leader_retry_at: HashMap<Leader, Instant>,
    next_token: u64,
    commits: HashMap<u64, PendingCommit>,
    /// Finished async commits whose callbacks run at the next call.
    finished_commits: Vec<(CommitCallback, CommitResult)>,
    next_auto_commit: Instant,
    in_callback: bool,
    closed: bool,
    settings: FetchSettings,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("client_id", &self.config.client_id)
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.subs.assigned())
            .finish()
    }
}

impl Consumer {
    /// Validates the config. Connects lazily, on the first call that needs the cluster.
    pub fn new(config: ConsumerConfig) -> Result<Consumer, ClientError> {
        config.validate()?;
        let cluster = Cluster::new(config.cluster_config())?;
        let link = config
            .group_id
            .clone()
            .map(|g| Arc::new(CoordinatorLink::new(cluster.clone(), g)));
        let (events_tx, events_rx) = mpsc::channel();
        let settings = config.fetch_settings();
        let next_auto_commit =
            Instant::now() + Duration::from_millis(config.auto_commit_interval_ms);
        Ok(Consumer {
            config,
            cluster,
            subs: Subscription::default(),
            mode: Mode::Unset,
            listener: None,
            group: None,
            link,
            events_tx,
            events_rx,
            fetches: HashMap::new(),
            leader_retry_at: HashMap::new(),
            next_token: 0,
            commits: HashMap::new(),
            finished_commits: Vec::new(),
            next_auto_commit,
            in_callback: false,
            closed: false,
            settings,
        })
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn check_callable(&self, what: &str) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed { what: "consumer" });
        }
        if self.in_callback && what == "poll" {
            return Err(ClientError::IllegalState(
                "poll was called from a rebalance callback".into(),
            ));
        }
        Ok(())
    }

    /// Joins the group (`group_id` must be set) consuming `topics`; the coordinator
    /// assigns the partitions. Subscribing again replaces the topics and rejoins.
    pub fn subscribe(
        &mut self,
        topics: &[&str],
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<(), ClientError> {
        self.check_callable("subscribe")?;
        if matches!(self.mode, Mode::Assigned) {
            return Err(ClientError::IllegalState(
                "subscribe after assign: a consumer uses one or the other".into(),
            ));
        }
        let Some(link) = self.link.clone() else {
            return Err(ClientError::Config("subscribe needs a group_id".into()));
        };
        if topics.is_empty() || topics.iter().any(|t| t.is_empty()) {
            return Err(ClientError::Config(
                "subscribe needs non-empty topic names".into(),
            ));
        }
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        self.cluster.want_topics(&topics);
        if listener.is_some() {
            self.listener = listener;
        }
        if let Some(g) = self.group.as_mut() {
            g.topics = topics;
            if g.state == JoinState::Stable {
                g.state = JoinState::Unjoined;
            }
            return Ok(());
        }
        let timing = HeartbeatTiming {
            interval: Duration::from_millis(u64::from(self.config.heartbeat_interval_ms)),
            request_timeout: self.request_timeout().min(Duration::from_millis(u64::from(
                self.config.session_timeout_ms,
            ))),
            retry_backoff: Duration::from_millis(self.config.retry_backoff_ms),
        };
        let heartbeat = Heartbeat::start(Arc::clone(&link), timing)?;
        self.group = Some(GroupCtx {
            link,
            heartbeat,
            topics,
            member_id: String::new(),
            generation_id: -1,
            cooperative: false,
            state: JoinState::Unjoined,
            owned: BTreeSet::new(),
            backoff: Backoff::new(
                self.config.retry_backoff_ms,
                self.config.retry_backoff_max_ms,
            ),
            retry_at: None,
        });
        self.mode = Mode::Subscribed;
        Ok(())
    }

    /// Consumes exactly `partitions`, without group coordination. Positions come from
    /// the group's committed offsets (if `group_id` is set) or `auto_offset_reset`.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<(), ClientError> {
        self.check_callable("assign")?;
        if matches!(self.mode, Mode::Subscribed) {
            return Err(ClientError::IllegalState(
                "assign after subscribe: a consumer uses one or the other".into(),
            ));
        }
        let topics: Vec<String> = partitions
            .iter()
            .map(|tp| tp.topic.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.cluster.want_topics(&topics);
        let keep: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let gone: Vec<TopicPartition> = self
            .subs
            .assigned()
            .into_iter()
            .filter(|tp| !keep.contains(tp))
            .collect();
        self.subs.remove(&gone);
        self.subs.add(&partitions);
        self.mode = Mode::Assigned;
        Ok(())
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.subs.assigned()
    }

    /// The member id the coordinator gave this consumer (group mode, after joining).
    pub fn member_id(&self) -> Option<&str> {
        self.group
            .as_ref()
            .map(|g| g.member_id.as_str())
            .filter(|m| !m.is_empty())
    }

    /// The high watermark of `tp` as of the latest fetch (the lag is this minus the
    /// position).
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<u64> {
        self.subs.high_watermark(tp)
    }

    /// The generation this member last synced (-1 before).
    pub fn generation_id(&self) -> i32 {
        self.group.as_ref().map_or(-1, |g| g.generation_id)
    }

    /// Records, up to `max_poll_records`, waiting up to `timeout` for some. Runs group
    /// rebalances, rebalance callbacks, async commit callbacks and auto-commits.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.check_callable("poll")?;
        if matches!(self.mode, Mode::Unset) {
            return Err(ClientError::IllegalState(
                "poll needs subscribe() or assign() first".into(),
            ));
        }
        let deadline = Instant::now() + timeout;
        self.run_commit_callbacks();
        self.maybe_auto_commit();
        loop {
            self.process_events(Duration::ZERO)?;
            self.drive_group()?;
            // Errors keep their back-off in the cluster; fetches wait for leaders.
            let _ = self.cluster.maybe_refresh();
            self.resolve_positions()?;
            let records = self.subs.drain(self.config.max_poll_records);
            self.send_fetches(deadline);
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wait = (deadline - now).min(Duration::from_millis(POLL_TICK_MS));
            self.process_events(wait)?;
        }
    }

    // ---- events ----

    /// Handles every queued event, waiting up to `wait` for the first.
    fn process_events(&mut self, wait: Duration) -> Result<(), ClientError> {
        let first = if wait.is_zero() {
            self.events_rx.try_recv().ok()
        } else {
            self.events_rx.recv_timeout(wait).ok()
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut result = self.handle_event(first);
        while let Ok(event) = self.events_rx.try_recv() {
            let r = self.handle_event(event);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    fn handle_event(&mut self, event: Event) -> Result<(), ClientError> {
        match event {
            Event::Fetch {
                leader,
                token,
                result,
            } => self.on_fetch(leader, token, result),
            Event::Join { token, result } => self.on_join(token, result),
            Event::Commit { token, result } => {
                self.on_commit(token, result);
                Ok(())
            }
        }
    }

    // ---- fetching ----

    fn send_fetches(&mut self, deadline: Instant) {
        let now = Instant::now();
        let busy: HashSet<TopicPartition> = self
            .fetches
            .values()
            .flat_map(|f| f.positions.iter().map(|p| p.tp.clone()))
            .collect();
        let mut by_leader: BTreeMap<Leader, Vec<FetchPosition>> = BTreeMap::new();
        for at in self.subs.fetchable(self.settings.prefetch_bytes) {
            if busy.contains(&at.tp) {
                continue;
            }
            match self.cluster.leader_shard(&at.tp, self.config.shard_aware) {
                Some(leader) => by_leader.entry(leader).or_default().push(at),
                None => self.cluster.request_refresh(),
            }
        }
        let left_ms = deadline.saturating_duration_since(now).as_millis();
        let max_wait_ms = u32::try_from(left_ms)
            .unwrap_or(u32::MAX)
            .min(self.settings.max_wait_ms);
        for (leader, positions) in by_leader {
            let waiting = self.leader_retry_at.get(&leader).is_some_and(|t| *t > now);
            if self.fetches.contains_key(&leader) || waiting {
                continue;
            }
            self.send_fetch(leader, positions, max_wait_ms);
        }
    }

    fn send_fetch(&mut self, leader: Leader, positions: Vec<FetchPosition>, max_wait_ms: u32) {
        let request = Request::Fetch(fetcher::fetch_request(
            &positions,
            &self.settings,
            max_wait_ms,
        ));
        let token = self.token();
        let tx = self.events_tx.clone();
        let callback = Box::new(move |result| {
            // The consumer is gone: nobody wants the records.
            let _ = tx.send(Event::Fetch {
                leader,
                token,
                result,
            });
        });
        let timeout = self.request_timeout() + Duration::from_millis(u64::from(max_wait_ms));
        let sent = self
            .cluster
            .connection_for(leader)
            .and_then(|conn| conn.send(&request, timeout, callback));
        match sent {
            Ok(()) => {
                self.fetches
                    .insert(leader, PendingFetch { token, positions });
            }
            Err(e) => self.leader_failed(leader, &e),
        }
    }

    fn leader_failed(&mut self, leader: Leader, err: &ClientError) {
        if err.invalidates_metadata() {
            self.cluster.request_refresh();
        }
        let pause = Duration::from_millis(self.config.retry_backoff_ms);
        self.leader_retry_at.insert(leader, Instant::now() + pause);
    }

    fn on_fetch(
        &mut self,
        leader: Leader,
        token: u64,
        result: Result<Response, ClientError>,
    ) -> Result<(), ClientError> {
        if self.fetches.get(&leader).is_none_or(|f| f.token != token) {
            return Ok(());
        }
        let pending = self.fetches.remove(&leader).expect("checked above");
        let response = match result {
            Ok(Response::Fetch(r)) => r,
            Ok(Response::Failed(f)) => {
                let err = ClientError::Broker {
                    context: format!("Fetch from {leader}"),
                    code: f.error_code,
                    message: f.error_message,
                };
                self.leader_failed(leader, &err);
                return if err.is_retriable() { Ok(()) } else { Err(err) };
            }
            Ok(other) => {
                let err = ClientError::UnexpectedResponse {
                    addr: leader.to_string(),
                    expected: crate::protocol::ApiKey::Fetch,
                    got: format!("api key {}", other.api_key_raw()),
                };
                self.leader_failed(leader, &err);
                return Err(err);
            }
            Err(e) if e.is_retriable() => {
                self.leader_failed(leader, &e);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut first_error = None;
        for outcome in fetcher::outcomes(pending.positions, &response, &self.settings) {
            match outcome {
                Outcome::Records {
                    at,
                    records,
                    high_watermark,
                } => {
                    self.subs.on_fetched(&at, records, high_watermark);
                }
                Outcome::OutOfRange(at) => {
                    if self.subs.position(&at.tp) == Some(at.offset) {
                        self.subs.invalidate(&at.tp, PositionSource::ResetPolicy);
                    } else {
                        // A prefetch past what is buffered: deliver the buffer first; the
                        // fetch from the position then meets the reset policy.
                        self.subs.hold_prefetch(&at);
                    }
                }
                Outcome::Stale(tp) => self.cluster.invalidate_topic(&tp.topic),
                Outcome::Failed(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    // ---- positions ----

    /// Gives every assigned partition without a position one: its committed offset, else
    /// the reset policy. Retriable lookup failures leave it for the next poll.
    fn resolve_positions(&mut self) -> Result<(), ClientError> {
        let missing = self.subs.missing_positions();
        if missing.is_empty() {
            return Ok(());
        }
        let mut reset: Vec<TopicPartition> = Vec::new();
        let mut from_commit: Vec<TopicPartition> = Vec::new();
        for (tp, source) in missing {
            match (source, &self.link) {
                (PositionSource::Committed, Some(_)) => from_commit.push(tp),
                _ => reset.push(tp),
            }
        }
        if !from_commit.is_empty() {
            match self.fetch_committed(&from_commit) {
                Ok(committed) => {
                    for tp in from_commit {
                        match committed.get(&tp) {
                            Some(&offset) => {
                                self.subs.seek(&tp, offset);
                            }
                            None => reset.push(tp),
                        }
                    }
                }
                Err(e) if e.is_retriable() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if reset.is_empty() {
            return Ok(());
        }
        let spec = match self.config.auto_offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::None => {
                return Err(ClientError::NoOffset {
                    topic: reset[0].topic.to_string(),
                    partition: reset[0].partition,
                })
            }
        };
        match self.lookup_offsets(&reset, spec) {
            Ok(()) => Ok(()),
            Err(e) if e.is_retriable() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn lookup_offsets(
        &mut self,
        tps: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.request_timeout();
        let found = list_offsets(&self.cluster, tps, spec, deadline)?;
        for (tp, listed) in found {
            // Latest and Earliest always name an offset; a timestamp may find none.
            if let Some(offset) = listed.offset {
                self.subs.seek(&tp, offset);
            }
        }
        Ok(())
    }

    fn fetch_committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, u64>, ClientError> {
        let link = self
            .link
            .as_ref()
            .ok_or_else(|| ClientError::Config("committed offsets need a group_id".into()))?;
        let conn = link.get(Channel::Control)?;
        let result = offset_fetch(&conn, &self.cluster, link.group_id(), Some(tps));
        if let Err(e) = &result {
            link.reset_on(e);
        }
        result
    }

    /// Moves the position of an assigned partition; the next `poll` reads from there.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<(), ClientError> {
        self.check_callable("seek")?;
        if !self.subs.seek(tp, offset) {
            return Err(not_assigned(tp));
        }
        Ok(())
    }

    /// Moves the positions to the log start offsets.
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        self.seek_to(tps, OffsetSpec::Earliest)
    }

    /// Moves the positions to the high watermarks (only new records will come).
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        self.seek_to(tps, OffsetSpec::Latest)
    }

    fn seek_to(&mut self, tps: &[TopicPartition], spec: OffsetSpec) -> Result<(), ClientError> {
        self.check_callable("seek")?;
        if let Some(tp) = tps.iter().find(|tp| !self.subs.is_assigned(tp)) {
            return Err(not_assigned(tp));
        }
        self.lookup_offsets(tps, spec)
    }

    /// The offset of the next record `poll` returns for `tp`, looked up (committed
    /// offset or reset policy) if not known yet.
    pub fn position(&mut self, tp: &TopicPartition) -> Result<u64, ClientError> {
        self.check_callable("position")?;
        if !self.subs.is_assigned(tp) {
            return Err(not_assigned(tp));
        }
        if let Some(p) = self.subs.position(tp) {
            return Ok(p);
        }
        self.resolve_positions()?;
        self.subs.position(tp).ok_or_else(|| {
            ClientError::timeout(
                format!("looking up the position of {tp}"),
                self.request_timeout(),
            )
        })
    }

    /// The group's committed offsets for `tps` (absent: nothing committed).
    pub fn committed(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, u64>, ClientError> {
        self.check_callable("committed")?;
        self.fetch_committed(tps)
    }

    // ---- commits ----

    /// Commits the positions of every assigned partition and waits for the answer.
    pub fn commit_sync(&mut self) -> Result<(), ClientError> {
        self.check_callable("commit_sync")?;
        self.run_commit_callbacks();
        let offsets = self.subs.positions();
        self.commit_offsets(offsets)
    }

    /// Commits `offsets` (the next offset to consume, per partition) and waits.
    pub fn commit_offsets_sync(
        &mut self,
        offsets: BTreeMap<TopicPartition, u64>,
    ) -> Result<(), ClientError> {
        self.check_callable("commit_offsets_sync")?;
        self.commit_offsets(offsets)
    }

    /// Commits the positions without waiting; `callback` runs with the outcome in a later
    /// `poll`, `commit_sync` or `close`, in the caller's thread.
    pub fn commit_async(&mut self, callback: Option<CommitCallback>) {
        let offsets = self.subs.positions();
        self.send_commit(offsets, callback);
    }

    fn commit_request(
        &self,
        offsets: &BTreeMap<TopicPartition, u64>,
    ) -> Option<OffsetCommitRequest> {
        let link = self.link.as_ref()?;
        let (generation_id, member_id) = match &self.group {
            Some(g) => (g.generation_id, g.member_id.clone()),
            None => (-1, String::new()),
        };
        let mut topics: Vec<OffsetCommitTopic> = Vec::new();
        for (tp, &offset) in offsets {
            let partition = OffsetCommitPartition {
                partition: tp.partition,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            };
            match topics.last_mut().filter(|t| t.name == *tp.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(OffsetCommitTopic {
                    name: tp.topic.to_string(),
                    partitions: vec![partition],
                }),
            }
        }
        Some(OffsetCommitRequest {
            group_id: link.group_id().to_owned(),
            generation_id,
            member_id,
            topics,
        })
    }

    fn commit_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, u64>,
    ) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(request) = self.commit_request(&offsets) else {
            return Err(ClientError::Config("commits need a group_id".into()));
        };
        let link = Arc::clone(self.link.as_ref().expect("commit_request checked the link"));
        let conn = link.get(Channel::Control)?;
        let context = format!("OffsetCommit for group '{}'", link.group_id());
        let result = call!(
            conn,
            OffsetCommit,
            request,
            self.request_timeout(),
            context.clone()
        )
        .and_then(|r| commit_outcome(&context, r));
        if let Err(e) = &result {
            self.after_commit_error(e);
        }
        result
    }

    /// Sends a commit; its answer comes back as an event. A commit that cannot be sent
    /// reports its error to the callback.
    fn send_commit(
        &mut self,
        offsets: BTreeMap<TopicPartition, u64>,
        callback: Option<CommitCallback>,
    ) {
        let request = match (self.closed, self.commit_request(&offsets)) {
            (false, Some(request)) => request,
            (closed, _) => {
                let err = match closed {
                    true => ClientError::Closed { what: "consumer" },
                    false => ClientError::Config("commits need a group_id".into()),
                };
                if let Some(cb) = callback {
                    self.finished_commits.push((cb, Err(err)));
                }
                return;
            }
        };
        let link = Arc::clone(self.link.as_ref().expect("commit_request checked the link"));
        let token = self.token();
        let tx = self.events_tx.clone();
        let sent = link.get(Channel::Control).and_then(|conn| {
            conn.send(
                &Request::OffsetCommit(request),
                self.request_timeout(),
                Box::new(move |result| {
                    // The consumer is gone: nobody waits for the outcome.
                    let _ = tx.send(Event::Commit { token, result });
                }),
            )
        });
        match sent {
            Ok(()) => {
                self.commits
                    .insert(token, PendingCommit { offsets, callback });
            }
            Err(e) => {
                link.reset_on(&e);
                if let Some(cb) = callback {
                    self.finished_commits.push((cb, Err(e)));
                }
            }
        }
    }

    fn on_commit(&mut self, token: u64, result: Result<Response, ClientError>) {
        let Some(pending) = self.commits.remove(&token) else {
            return;
        };
        let context = match &self.link {
            Some(link) => format!("OffsetCommit for group '{}'", link.group_id()),
            None => "OffsetCommit".to_owned(),
        };
        let outcome = match result {
            Ok(Response::OffsetCommit(r)) => commit_outcome(&context, r),
            Ok(Response::Failed(f)) => Err(ClientError::Broker {
                context: context.clone(),
                code: f.error_code,
                message: f.error_message,
            }),
            Ok(other) => Err(ClientError::UnexpectedResponse {
                addr: "the coordinator".into(),
                expected: crate::protocol::ApiKey::OffsetCommit,
                got: format!("api key {}", other.api_key_raw()),
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            self.after_commit_error(e);
        }
        if let Some(cb) = pending.callback {
            self.finished_commits
                .push((cb, outcome.map(|()| pending.offsets)));
        }
    }

    /// A refused commit may mean the group moved on: rejoin.
    fn after_commit_error(&mut self, err: &ClientError) {
        if let Some(link) = &self.link {
            link.reset_on(err);
        }
        let rebalancing =
            err.code() == Some(ErrorCode::RebalanceInProgress) || is_fenced(err.code());
        if let Some(g) = self.group.as_ref().filter(|_| rebalancing) {
            g.heartbeat.request_rejoin();
        }
    }

    fn run_commit_callbacks(&mut self) {
        for (cb, result) in std::mem::take(&mut self.finished_commits) {
            cb(result);
        }
    }

    fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit || self.link.is_none() {
            return;
        }
        let now = Instant::now();
        if now < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = now + Duration::from_millis(self.config.auto_commit_interval_ms);
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.state != JoinState::Stable)
        {
            return;
        }
        let offsets = self.subs.positions();
        if !offsets.is_empty() {
            // Nobody waits on an auto-commit; a refusal still triggers a rejoin
            // (after_commit_error), and the next one carries newer positions anyway.
            self.send_commit(offsets, None);
        }
    }

    // ---- the group ----

    fn drive_group(&mut self) -> Result<(), ClientError> {
        let Some(g) = self.group.as_mut() else {
            return Ok(());
        };
        if let Some(err) = g.heartbeat.take_fenced() {
            let steps = steps_when_fenced(&g.owned);
            if err.code() == Some(ErrorCode::UnknownMemberId) {
                g.member_id.clear();
            }
            g.state = JoinState::Unjoined;
            self.run_steps(steps);
        }
        let Some(g) = self.group.as_mut() else {
            return Ok(());
        };
        if g.state == JoinState::Stable && g.heartbeat.rejoin_needed() {
            g.state = JoinState::Unjoined;
        }
        if g.state != JoinState::Unjoined || g.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let steps = steps_before_join(&g.owned, g.cooperative, self.config.enable_auto_commit);
        self.run_steps(steps);
        self.send_join()
    }

    fn send_join(&mut self) -> Result<(), ClientError> {
        let token = self.token();
        let g = self.group.as_mut().expect("group mode");
        g.heartbeat.pause();
        let request = JoinGroupRequest {
            group_id: g.link.group_id().to_owned(),
            member_id: g.member_id.clone(),
            client_id: self.config.client_id.clone(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.rebalance_timeout_ms,
            topics: g.topics.clone(),
            assignors: self.config.assignors.clone(),
        };
        // The coordinator holds a JoinGroup until the group forms, up to the rebalance
        // timeout.
        let timeout = Duration::from_millis(u64::from(self.config.rebalance_timeout_ms))
            + Duration::from_millis(self.config.request_timeout_ms);
        let tx = self.events_tx.clone();
        let sent = g.link.get(Channel::Rebalance).and_then(|conn| {
            conn.send(
                &Request::JoinGroup(request),
                timeout,
                Box::new(move |result| {
                    let _ = tx.send(Event::Join { token, result });
                }),
            )
        });
        match sent {
            Ok(()) => {
                g.state = JoinState::Joining { token };
                Ok(())
            }
            Err(e) => self.join_failed(e),
        }
    }

    /// A join or sync failed: retry after a back-off if it may succeed later.
    fn join_failed(&mut self, err: ClientError) -> Result<(), ClientError> {
        let g = self.group.as_mut().expect("group mode");
        g.state = JoinState::Unjoined;
        g.link.reset_on(&err);
        let code = err.code();
        if code == Some(ErrorCode::UnknownMemberId) {
            // Forgotten by the coordinator: join as a new member, right away.
            g.member_id.clear();
            g.retry_at = None;
            return Ok(());
        }
        if matches!(
            code,
            Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration)
        ) {
            g.retry_at = None;
            return Ok(());
        }
        if err.is_retriable() {
            g.retry_at = Some(Instant::now() + g.backoff.next_delay());
            return Ok(());
        }
        Err(err)
    }

    fn on_join(
        &mut self,
        token: u64,
        result: Result<Response, ClientError>,
    ) -> Result<(), ClientError> {
        let Some(g) = self.group.as_ref() else {
            return Ok(());
        };
        if g.state != (JoinState::Joining { token }) {
            return Ok(());
        }
        let context = format!("JoinGroup '{}'", g.link.group_id());
        let joined = match result {
            Ok(Response::JoinGroup(r)) => {
                match ClientError::from_code(&context, r.error_code, r.error_message.clone()) {
                    Some(e) => Err(e),
                    None => Ok(r),
                }
            }
            Ok(Response::Failed(f)) => Err(ClientError::Broker {
                context,
                code: f.error_code,
                message: f.error_message,
            }),
            Ok(other) => Err(ClientError::UnexpectedResponse {
                addr: "the coordinator".into(),
                expected: crate::protocol::ApiKey::JoinGroup,
                got: format!("api key {}", other.api_key_raw()),
            }),
            Err(e) => Err(e),
        };
        let r = match joined {
            Ok(r) => r,
            Err(e) => return self.join_failed(e),
        };
        let g = self.group.as_mut().expect("group mode");
        g.member_id = r.member_id;
        g.generation_id = r.generation_id;
        self.sync(is_cooperative(&r.assignor))
    }

    fn sync(&mut self, cooperative: bool) -> Result<(), ClientError> {
        let timeout = self.request_timeout();
        let g = self.group.as_ref().expect("group mode");
        let request = SyncGroupRequest {
            group_id: g.link.group_id().to_owned(),
            generation_id: g.generation_id,
            member_id: g.member_id.clone(),
        };
        let context = format!("SyncGroup '{}'", g.link.group_id());
        let synced = g
            .link
            .get(Channel::Rebalance)
            .and_then(|conn| call!(conn, SyncGroup, request, timeout, context.clone()));
        let r = match synced.and_then(|r| {
            match ClientError::from_code(&context, r.error_code, r.error_message.clone()) {
                Some(e) => Err(e),
                None => Ok(r),
            }
        }) {
            Ok(r) => r,
            Err(e) => return self.join_failed(e),
        };
        let assignment: BTreeSet<TopicPartition> = r
            .assignment
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|&p| TopicPartition::new(&t.topic, p))
            })
            .collect();
        let g = self.group.as_mut().expect("group mode");
        g.cooperative = cooperative;
        g.backoff.reset();
        g.retry_at = None;
        let steps = steps_after_sync(&g.owned, &assignment, self.config.enable_auto_commit);
        self.run_steps(steps);
        let g = self.group.as_mut().expect("group mode");
        assert_eq!(
            g.owned, assignment,
            "the steps leave the member owning its assignment"
        );
        g.state = JoinState::Stable;
        let interval = Duration::from_millis(u64::from(self.config.heartbeat_interval_ms));
        g.heartbeat.enable(&g.member_id, g.generation_id, interval);
        Ok(())
    }

    /// Runs rebalance steps in order (see `group.rs`), keeping `owned` and the
    /// subscription in step.
    fn run_steps(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Commit(tps) => {
                    let positions = self.subs.positions();
                    let offsets: BTreeMap<TopicPartition, u64> = tps
                        .iter()
                        .filter_map(|tp| Some((tp.clone(), *positions.get(tp)?)))
                        .collect();
                    // A failed commit before a revoke means those records may be
                    // delivered again to the next owner: at-least-once allows it.
                    let _ = self.commit_offsets(offsets);
                }
                Step::Revoke(tps) => {
                    self.with_listener(|l, c| l.on_partitions_revoked(c, &tps));
                    self.release(&tps);
                }
                Step::Lost(tps) => {
                    self.with_listener(|l, c| l.on_partitions_lost(c, &tps));
                    self.release(&tps);
                }
                Step::Assign(tps) => {
                    self.subs.add(&tps);
                    if let Some(g) = self.group.as_mut() {
                        g.owned.extend(tps.iter().cloned());
                    }
                    self.with_listener(|l, c| l.on_partitions_assigned(c, &tps));
                }
            }
        }
    }

    fn release(&mut self, tps: &[TopicPartition]) {
        self.subs.remove(tps);
        for f in self.fetches.values_mut() {
            // Answers for released partitions are dropped by the subscription anyway;
            // this keeps them from counting as busy.
            f.positions.retain(|p| !tps.contains(&p.tp));
        }
        if let Some(g) = self.group.as_mut() {
            for tp in tps {
                g.owned.remove(tp);
            }
        }
    }

    fn with_listener(&mut self, f: impl FnOnce(&mut dyn RebalanceListener, &mut Consumer)) {
        let Some(mut listener) = self.listener.take() else {
            return;
        };
        self.in_callback = true;
        f(listener.as_mut(), self);
        self.in_callback = false;
        if self.listener.is_none() {
            self.listener = Some(listener);
        }
    }

    // ---- closing ----

    /// Commits (with auto-commit), revokes through the listener, leaves the group and
    /// closes the connections. Returns the first error met on the way; the consumer is
    /// closed either way.
    pub fn close(mut self) -> Result<(), ClientError> {
        self.shutdown(CloseMode::Full)
    }

    /// Test hook: stops heartbeats and drops the connections without committing or
    /// leaving, as if the process died. The group notices after session_timeout_ms.
    #[doc(hidden)]
    pub fn simulate_crash(mut self) {
        // Crash mode sends nothing, so there is no error to report.
        let _ = self.shutdown(CloseMode::Crash);
    }

    fn shutdown(&mut self, mode: CloseMode) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        let mut result = Ok(());
        if mode == CloseMode::Full {
            self.run_commit_callbacks();
            result = self.final_commit_and_revoke();
        }
        if mode != CloseMode::Crash {
            if let Err(e) = self.leave_group() {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        self.closed = true;
        if let Some(g) = self.group.as_mut() {
            g.heartbeat.stop();
            g.link.close();
        }
        if let Some(link) = &self.link {
            link.close();
        }
        self.cluster.close();
        result
    }

    fn final_commit_and_revoke(&mut self) -> Result<(), ClientError> {
        let auto = self.config.enable_auto_commit;
        match self.group.as_ref() {
            Some(g) => {
                let stable = g.state == JoinState::Stable;
                let steps = steps_on_close(&g.owned, auto && stable);
                self.run_steps(steps);
                Ok(())
            }
            None if auto && self.link.is_some() => {
                let offsets = self.subs.positions();
                self.commit_offsets(offsets)
            }
            None => Ok(()),
        }
    }

    fn leave_group(&mut self) -> Result<(), ClientError> {
        let Some(g) = self.group.as_mut() else {
            return Ok(());
        };
        g.heartbeat.pause();
        if g.member_id.is_empty() {
            return Ok(());
        }
        let request = LeaveGroupRequest {
            group_id: g.link.group_id().to_owned(),
            member_id: g.member_id.clone(),
        };
        let context = format!("LeaveGroup '{}'", g.link.group_id());
        let conn: Connection = g.link.get(Channel::Control)?;
        let r = call!(
            conn,
            LeaveGroup,
            request,
            self.request_timeout(),
            context.clone()
        )?;
        match ClientError::from_code(context, r.error_code, r.error_message) {
            // Already gone (session expired): leaving is done.
            Some(e) if is_fenced(e.code()) => Ok(()),
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Dropped without close: leave the group so it need not wait out the session,
        // but run no callbacks and commit nothing.
        let _ = self.shutdown(CloseMode::Quiet);
    }
}

fn not_assigned(tp: &TopicPartition) -> ClientError {
    ClientError::IllegalState(format!("{tp} is not assigned to this consumer"))
}

/// The first error in an OffsetCommit answer, group-level first.
fn commit_outcome(context: &str, r: OffsetCommitResponse) -> Result<(), ClientError> {
    if let Some(e) = ClientError::from_code(context, r.error_code, r.error_message) {
        return Err(e);
    }
    for t in r.topics {
        for p in t.partitions {
            let ctx = format!("{context}, {}-{}", t.name, p.partition);
            if let Some(e) = ClientError::from_code(ctx, p.error_code, p.error_message) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PartitionResult, TopicPartitionResults};

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = ConsumerConfig::new("127.0.0.1:9192", Some("g"));
        c.validate().expect("valid");
        assert_eq!(c.session_timeout_ms, 45_000);
        assert_eq!(c.heartbeat_interval_ms, 3_000);
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.fetch_max_bytes, 50 << 20);
        assert_eq!(c.max_partition_fetch_bytes, 1 << 20);
        assert_eq!(c.fetch_max_wait_ms, 500);
        assert_eq!(c.fetch_min_bytes, 1);
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval_ms, 5_000);
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.assignors, vec!["range", "cooperative-sticky"]);
    }

    #[test]
    fn validation_names_the_setting() {
        let check = |f: fn(&mut ConsumerConfig), needle: &str| {
            let mut c = ConsumerConfig::new("127.0.0.1:9192", Some("g"));
            f(&mut c);
            let err = c.validate().expect_err(needle);
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        };
        check(
            |c| c.heartbeat_interval_ms = 50_000,
            "heartbeat_interval_ms",
        );
        check(|c| c.group_id = Some(String::new()), "group_id");
        check(|c| c.max_poll_records = 0, "max_poll_records");
        check(|c| c.fetch_min_bytes = u32::MAX, "fetch_min_bytes");
        check(|c| c.assignors.clear(), "assignors");
        check(|c| c.auto_commit_interval_ms = 0, "auto_commit_interval_ms");
        check(
            |c| c.partition_prefetch_bytes = PARTITION_PREFETCH_BYTES_MAX + 1,
            "partition_prefetch_bytes",
        );
    }

    #[test]
    fn misuse_is_refused_without_a_broker() {
        let mut c = Consumer::new(ConsumerConfig::new("127.0.0.1:1", None)).expect("config");
        let err = c
            .poll(Duration::from_millis(1))
            .expect_err("nothing to poll");
        assert!(matches!(err, ClientError::IllegalState(_)), "{err}");
        let err = c.subscribe(&["t"], None).expect_err("no group");
        assert!(err.to_string().contains("group_id"), "{err}");
        c.assign(vec![TopicPartition::new("t", 0)]).expect("assign");
        let err = c
            .seek(&TopicPartition::new("t", 1), 0)
            .expect_err("not assigned");
        assert!(err.to_string().contains("t-1 is not assigned"), "{err}");
        c.seek(&TopicPartition::new("t", 0), 5).expect("assigned");
        assert_eq!(c.position(&TopicPartition::new("t", 0)).expect("known"), 5);
        let err = c.commit_sync().expect_err("no group id");
        assert!(err.to_string().contains("group_id"), "{err}");
        c.close().expect("nothing to clean up");
    }

    #[test]
    fn commit_outcome_reports_the_first_partition_error() {
        let ok = OffsetCommitResponse {
            error_code: ErrorCode::None,
            error_message: None,
            topics: vec![TopicPartitionResults {
                name: "t".into(),
                partitions: vec![PartitionResult {
                    partition: 0,
                    error_code: ErrorCode::None,
                    error_message: None,
                }],
            }],
        };
        commit_outcome("c", ok.clone()).expect("ok");
        let mut bad = ok;
        bad.topics[0].partitions[0].error_code = ErrorCode::UnknownPartition;
        let err = commit_outcome("c", bad).expect_err("partition error");
        assert_eq!(err.code(), Some(ErrorCode::UnknownPartition));
        assert!(
            err.to_string().starts_with("c, t-0: UnknownPartition"),
            "{err}"
        );
    }
}
