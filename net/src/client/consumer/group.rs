//! Group membership on the client side: the link to the coordinator, the heartbeat
//! thread, and the order of rebalance steps (commit, revoke, assign).
//!
//! The coordinator computes assignments (cluster/src/group/coordinator.rs). Its contract
//! with clients, which this module keeps:
//! - after a SyncGroup answer, every partition the new assignment no longer holds is
//!   released (committed if auto-commit is on, revoked through the listener, no longer
//!   fetched) before the next Heartbeat or JoinGroup; no Heartbeat is sent while a
//!   JoinGroup or SyncGroup is outstanding;
//! - before rejoining an eager generation, everything is released; in a cooperative one
//!   (`cooperative-sticky`) the partitions are kept, and consumed, while rejoining.
//!
//! The steps themselves run in the caller's thread, from `poll`; the heartbeat thread only
//! keeps the session alive and flags a needed rejoin or a lost membership.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::connection::{lock, Connection};
use crate::client::error::ClientError;
use crate::client::metadata::Cluster;
use crate::client::requests::{call, coordinator_addr};
use crate::client::TopicPartition;
use crate::protocol::{ErrorCode, HeartbeatRequest};

/// Assignors whose generations are cooperative (Kafka's COOPERATIVE protocol).
const COOPERATIVE_ASSIGNORS: &[&str] = &["cooperative-sticky"];

pub(crate) fn is_cooperative(assignor: &str) -> bool {
    COOPERATIVE_ASSIGNORS.contains(&assignor)
}

/// One step of a rebalance, run in order by the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Commit the positions of these partitions (auto-commit).
    Commit(Vec<TopicPartition>),
    /// Call `on_partitions_revoked`, then stop consuming them.
    Revoke(Vec<TopicPartition>),
    /// Call `on_partitions_lost` (membership lost: nothing may be committed), then stop.
    Lost(Vec<TopicPartition>),
    /// Start consuming them, then call `on_partitions_assigned`.
    Assign(Vec<TopicPartition>),
}

fn list(set: &BTreeSet<TopicPartition>) -> Vec<TopicPartition> {
    set.iter().cloned().collect()
}

/// Before a JoinGroup: an eager member releases everything it owns.
pub(crate) fn steps_before_join(
    owned: &BTreeSet<TopicPartition>,
    cooperative: bool,
    auto_commit: bool,
) -> Vec<Step> {
    if cooperative || owned.is_empty() {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if auto_commit {
        steps.push(Step::Commit(list(owned)));
    }
    steps.push(Step::Revoke(list(owned)));
    steps
}

/// After a SyncGroup answer: release what the assignment took away, then take on what it
/// added. `Assign` always comes last, even when empty (the listener learns the
/// generation is complete, as in Kafka).
pub(crate) fn steps_after_sync(
    owned: &BTreeSet<TopicPartition>,
    assignment: &BTreeSet<TopicPartition>,
    auto_commit: bool,
) -> Vec<Step> {
    let revoked: BTreeSet<TopicPartition> = owned.difference(assignment).cloned().collect();
    let added: BTreeSet<TopicPartition> = assignment.difference(owned).cloned().collect();
    let mut steps = Vec::new();
    if !revoked.is_empty() {
        if auto_commit {
            steps.push(Step::Commit(list(&revoked)));
        }
        steps.push(Step::Revoke(list(&revoked)));
    }
    steps.push(Step::Assign(list(&added)));
    steps
}

/// The coordinator dropped the member (session expired, fenced generation): what it
/// owned is lost, not revoked; committing would be refused anyway.
pub(crate) fn steps_when_fenced(owned: &BTreeSet<TopicPartition>) -> Vec<Step> {
    if owned.is_empty() {
        return Vec::new();
    }
    vec![Step::Lost(list(owned))]
}

/// On close: a final commit, then revoke.
pub(crate) fn steps_on_close(owned: &BTreeSet<TopicPartition>, auto_commit: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if auto_commit && !owned.is_empty() {
        steps.push(Step::Commit(list(owned)));
    }
    if !owned.is_empty() {
        steps.push(Step::Revoke(list(owned)));
    }
    steps
}

/// Whether a group error means the member id or generation is no longer valid.
pub(crate) fn is_fenced(code: Option<ErrorCode>) -> bool {
    matches!(
        code,
        Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)
    )
}

/// Which of the two coordinator connections a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// JoinGroup and SyncGroup: a JoinGroup may be held for seconds, and a broker answers
    /// one connection's requests in order, so rebalances get their own connection.
    Rebalance,
    /// Heartbeats, commits, committed offsets, LeaveGroup.
    Control,
}

/// The connections to the group's coordinator (not shared with fetches, which the
/// broker may hold for `fetch_max_wait_ms`), reopened when they break or the
/// coordinator moves.
pub(crate) struct CoordinatorLink {
    cluster: Cluster,
    group_id: String,
    rebalance: Mutex<Option<Connection>>,
    control: Mutex<Option<Connection>>,
}

impl CoordinatorLink {
    pub fn new(cluster: Cluster, group_id: String) -> CoordinatorLink {
        CoordinatorLink {
            cluster,
            group_id,
            rebalance: Mutex::new(None),
            control: Mutex::new(None),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    fn slot(&self, channel: Channel) -> &Mutex<Option<Connection>> {
        match channel {
            Channel::Rebalance => &self.rebalance,
            Channel::Control => &self.control,
        }
    }

    pub fn get(&self, channel: Channel) -> Result<Connection, ClientError> {
        let mut conn = lock(self.slot(channel));
        if let Some(c) = conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let addr = coordinator_addr(&self.cluster, &self.group_id)?;
        let c = self.cluster.connect_dedicated(&addr)?;
        *conn = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connections after NotCoordinator or a transport error.
    pub fn reset_on(&self, err: &ClientError) {
        if err.invalidates_metadata() {
            self.close();
            self.cluster.request_refresh();
        }
    }

    pub fn close(&self) {
        for channel in [Channel::Rebalance, Channel::Control] {
            if let Some(c) = lock(self.slot(channel)).take() {
                c.close();
            }
        }
    }
}

/// Heartbeat state shared by the consumer and its heartbeat thread.
#[derive(Debug)]
struct HeartbeatState {
    /// Heartbeats go out only while enabled (a synced generation, nothing outstanding).
    enabled: bool,
    member_id: String,
    generation_id: i32,
    /// A heartbeat is outstanding.
    in_flight: bool,
    /// The coordinator answered RebalanceInProgress: rejoin.
    rejoin_needed: bool,
    /// The coordinator no longer knows the member or generation.
    fenced: Option<ClientError>,
    stop: bool,
    next_at: Instant,
}

pub(crate) struct Heartbeat {
    shared: Arc<(Mutex<HeartbeatState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HeartbeatTiming {
    pub interval: Duration,
    /// Bound on one heartbeat's wait for its answer.
    pub request_timeout: Duration,
    /// Pause after a failed heartbeat.
    pub retry_backoff: Duration,
}

impl Heartbeat {
    pub fn start(
        link: Arc<CoordinatorLink>,
        timing: HeartbeatTiming,
    ) -> Result<Heartbeat, ClientError> {
        let shared = Arc::new((
            Mutex::new(HeartbeatState {
                enabled: false,
                member_id: String::new(),
                generation_id: -1,
                in_flight: false,
                rejoin_needed: false,
                fenced: None,
                stop: false,
                next_at: Instant::now(),
            }),
            Condvar::new(),
        ));
        let for_thread = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(format!("cfa-heartbeat-{}", link.group_id()))
            .spawn(move || heartbeat_loop(&for_thread, &link, timing))
            .map_err(|e| ClientError::Config(format!("cannot start the heartbeat thread: {e}")))?;
        Ok(Heartbeat {
            shared,
            thread: Some(thread),
        })
    }

    /// Starts heartbeats for a synced generation (after its steps ran).
    pub fn enable(&self, member_id: &str, generation_id: i32, interval: Duration) {
        let (state, cv) = &*self.shared;
        let mut s = lock(state);
        s.enabled = true;
        s.member_id = member_id.to_owned();
        s.generation_id = generation_id;
        s.rejoin_needed = false;
        s.fenced = None;
        s.next_at = Instant::now() + interval;
        cv.notify_all();
    }

    /// Stops heartbeats and waits for an outstanding one to be answered, so that no
    /// heartbeat overlaps the JoinGroup or SyncGroup that follows.
    pub fn pause(&self) {
        let (state, cv) = &*self.shared;
        let mut s = lock(state);
        s.enabled = false;
        while s.in_flight {
            s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn rejoin_needed(&self) -> bool {
        lock(&self.shared.0).rejoin_needed
    }

    /// The fencing error, once.
    pub fn take_fenced(&self) -> Option<ClientError> {
        lock(&self.shared.0).fenced.take()
    }

    /// Asks for a rejoin (a commit or heartbeat saw the rebalance).
    pub fn request_rejoin(&self) {
        lock(&self.shared.0).rejoin_needed = true;
    }

    pub fn stop(&mut self) {
        {
            let (state, cv) = &*self.shared;
            let mut s = lock(state);
            s.stop = true;
            s.enabled = false;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            // A panicked heartbeat thread has nothing left to clean up.
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}

fn heartbeat_loop(
    shared: &(Mutex<HeartbeatState>, Condvar),
    link: &CoordinatorLink,
    timing: HeartbeatTiming,
) {
    let (state, cv) = shared;
    loop {
        let (member_id, generation_id) = {
            let mut s = lock(state);
            loop {
                if s.stop {
                    return;
                }
                let now = Instant::now();
                if s.enabled && now >= s.next_at {
                    break;
                }
                let wait = if s.enabled {
                    s.next_at - now
                } else {
                    Duration::from_secs(3600)
                };
                s = cv
                    .wait_timeout(s, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            s.in_flight = true;
            (s.member_id.clone(), s.generation_id)
        };
        let result = send_heartbeat(link, &member_id, generation_id, timing.request_timeout);
        let mut s = lock(state);
        s.in_flight = false;
        cv.notify_all();
        let current = s.enabled && s.generation_id == generation_id && s.member_id == member_id;
        let mut pause = timing.interval;
        match result {
            _ if !current => {}
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::RebalanceInProgress) => s.rejoin_needed = true,
            Err(e) if is_fenced(e.code()) => {
                s.fenced = Some(e);
                s.enabled = false;
            }
            Err(e) => {
                link.reset_on(&e);
                pause = timing.retry_backoff.min(timing.interval);
            }
        }
        s.next_at = Instant::now() + pause;
    }
}

fn send_heartbeat(
    link: &CoordinatorLink,
    member_id: &str,
    generation_id: i32,
    timeout: Duration,
) -> Result<(), ClientError> {
    let conn = link.get(Channel::Control)?;
    let request = HeartbeatRequest {
        group_id: link.group_id().to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
    };
    let context = format!("Heartbeat for group '{}'", link.group_id());
    let r = call!(conn, Heartbeat, request, timeout, context.clone())?;
    match ClientError::from_code(context, r.error_code, r.error_message) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ps: &[u32]) -> BTreeSet<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new("t", p)).collect()
    }

    fn tps(ps: &[u32]) -> Vec<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new("t", p)).collect()
    }

    #[test]
    fn eager_members_release_everything_before_joining() {
        let steps = steps_before_join(&set(&[0, 1]), false, true);
        assert_eq!(
            steps,
            vec![Step::Commit(tps(&[0, 1])), Step::Revoke(tps(&[0, 1]))]
        );
        let steps = steps_before_join(&set(&[0, 1]), false, false);
        assert_eq!(steps, vec![Step::Revoke(tps(&[0, 1]))]);
        assert!(steps_before_join(&set(&[]), false, true).is_empty());
    }

    #[test]
    fn cooperative_members_keep_partitions_while_joining() {
        assert!(steps_before_join(&set(&[0, 1]), true, true).is_empty());
        assert!(is_cooperative("cooperative-sticky"));
        assert!(!is_cooperative("range") && !is_cooperative("sticky"));
    }

    #[test]
    fn after_sync_commit_then_revoke_then_assign() {
        let steps = steps_after_sync(&set(&[0, 1, 2]), &set(&[2, 3]), true);
        assert_eq!(
            steps,
            vec![
                Step::Commit(tps(&[0, 1])),
                Step::Revoke(tps(&[0, 1])),
                Step::Assign(tps(&[3])),
            ]
        );
        // Eager: nothing owned after the pre-join revoke, so all of it is assigned.
        let steps = steps_after_sync(&set(&[]), &set(&[2, 3]), true);
        assert_eq!(steps, vec![Step::Assign(tps(&[2, 3]))]);
        // Unchanged assignment: only the (empty) assign notification.
        let steps = steps_after_sync(&set(&[1]), &set(&[1]), true);
        assert_eq!(steps, vec![Step::Assign(vec![])]);
    }

    #[test]
    fn fenced_members_lose_without_committing_and_close_commits_first() {
        assert_eq!(steps_when_fenced(&set(&[4])), vec![Step::Lost(tps(&[4]))]);
        assert!(steps_when_fenced(&set(&[])).is_empty());
        assert_eq!(
            steps_on_close(&set(&[4]), true),
            vec![Step::Commit(tps(&[4])), Step::Revoke(tps(&[4]))]
        );
        assert_eq!(
            steps_on_close(&set(&[4]), false),
            vec![Step::Revoke(tps(&[4]))]
        );
        assert!(is_fenced(Some(ErrorCode::UnknownMemberId)));
        assert!(is_fenced(Some(ErrorCode::IllegalGeneration)));
        assert!(!is_fenced(Some(ErrorCode::RebalanceInProgress)));
        assert!(!is_fenced(None));
    }
}
