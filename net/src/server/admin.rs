//! Shard 0's services: topic creation and deletion (it owns topics.json and tells every
//! shard), producer-id allocation, and the consumer-group coordinator.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

use crate::constants::PRODUCER_ID_BLOCK;
use crate::protocol::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ErrorCode, FailedResponse, InitProducerIdRequest, InitProducerIdResponse, Request, Response,
    TopicResult,
};
use crate::server::config::BrokerConfig;
use crate::server::shard::{Shard, ShardReply, ShardRequest};
use crate::server::topics::{self, TopicMeta};

pub(crate) struct Admin {
    pid_file: PathBuf,
    next_pid: Cell<i64>,
    pid_end: Cell<i64>,
    pub groups: crate::server::groups::GroupService,
}

impl Admin {
    pub fn new(config: &BrokerConfig) -> Admin {
        Admin {
            pid_file: config.data_dir.join("producer-ids"),
            next_pid: Cell::new(0),
            pid_end: Cell::new(0),
            groups: crate::server::groups::GroupService::new(config),
        }
    }

    /// A producer id never handed out before, on this data dir: ids come in blocks whose
    /// end is made durable before the first id of the block is used.
    fn allocate_pid(&self) -> std::io::Result<i64> {
        if self.next_pid.get() >= self.pid_end.get() {
            let start = match std::fs::read_to_string(&self.pid_file) {
                Ok(s) => s.trim().parse::<i64>().map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", self.pid_file.display()),
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            let start = start.max(self.pid_end.get());
            let end = start + PRODUCER_ID_BLOCK;
            let tmp = self.pid_file.with_extension("tmp");
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(end.to_string().as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &self.pid_file)?;
            if let Some(dir) = self.pid_file.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            self.next_pid.set(start);
            self.pid_end.set(end);
        }
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        Ok(pid)
    }
}

fn failed(api: u16, code: ErrorCode, msg: String) -> Response {
    Response::Failed(FailedResponse {
        api_key: api,
        error_code: code,
        error_message: Some(msg),
    })
}

/// Serves a whole request on shard 0.
pub(crate) async fn serve_whole(shard: &Rc<Shard>, req: Request) -> Response {
    let Some(admin) = &shard.admin else {
        return failed(
            req.api_key().as_u16(),
            ErrorCode::NotCoordinator,
            "not shard 0".into(),
        );
    };
    match req {
        Request::CreateTopics(r) => Response::CreateTopics(create_topics(shard, r).await),
        Request::DeleteTopics(r) => Response::DeleteTopics(delete_topics(shard, r).await),
        Request::InitProducerId(r) => Response::InitProducerId(init_producer_id(admin, r)),
        other => admin.groups.serve(shard, other).await,
    }
}

fn init_producer_id(admin: &Admin, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        error_message: None,
        producer_id: -1,
        producer_epoch: -1,
    };
    // A producer that already has an id keeps it with the next epoch (fencing its older
    // incarnation); a new one gets a fresh id at epoch 0.
    if let Some(cur) = r.current {
        if cur.producer_id >= 0 && cur.producer_epoch < i16::MAX {
            resp.producer_id = cur.producer_id;
            resp.producer_epoch = cur.producer_epoch + 1;
            return resp;
        }
    }
    match admin.allocate_pid() {
        Ok(pid) => {
            resp.producer_id = pid;
            resp.producer_epoch = 0;
        }
        Err(e) => {
            resp.error_code = ErrorCode::StorageError;
            resp.error_message = Some(format!("allocating a producer id: {e}"));
        }
    }
    resp
}

fn topic_result(name: &str, code: ErrorCode, msg: Option<String>) -> TopicResult {
    TopicResult {
        name: name.to_owned(),
        error_code: code,
        error_message: msg,
    }
}

/// Tells every shard (this one included) about a topic change and waits for all.
async fn broadcast(shard: &Rc<Shard>, make: impl Fn() -> ShardRequest) -> Result<(), String> {
    let calls = (0..shard.shards).map(|to| shard.call(to, make()));
    for rep in futures_util::future::join_all(calls).await {
        match rep {
            ShardReply::Done(Ok(())) => {}
            ShardReply::Done(Err(e)) => return Err(e),
            other => return Err(format!("unexpected reply {other:?}")),
        }
    }
    Ok(())
}

pub(crate) async fn create_topics(
    shard: &Rc<Shard>,
    r: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut out = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let meta = match TopicMeta::new(
            &t.name,
            t.partitions,
            t.replication_factor,
            &t.configs,
            &shard.config.log,
        ) {
            Ok(m) => m,
            Err(e) => {
                out.push(topic_result(&t.name, e.code, Some(e.message)));
                continue;
            }
        };
        out.push(create_topic(shard, meta).await);
    }
    CreateTopicsResponse { topics: out }
}

/// Creates one validated topic: durable in topics.json first, then opened on every shard.
pub(crate) async fn create_topic(shard: &Rc<Shard>, meta: TopicMeta) -> TopicResult {
    let name = meta.name.clone();
    let mut table = shard.topics.borrow().clone();
    if let Err(e) = table.insert(meta.clone()) {
        return topic_result(&name, e.code, Some(e.message));
    }
    if let Err(e) = topics::store(&shard.config.data_dir, &table) {
        return topic_result(
            &name,
            ErrorCode::StorageError,
            Some(format!("writing topics.json: {e}")),
        );
    }
    let res = broadcast(shard, || ShardRequest::TopicCreated(meta.clone())).await;
    groups_learn_topics(shard);
    match res {
        Ok(()) => topic_result(&name, ErrorCode::None, None),
        Err(e) => topic_result(
            &name,
            ErrorCode::StorageError,
            Some(format!("opening partitions of {name}: {e}")),
        ),
    }
}

/// The group coordinator learns the partition counts of shard 0's topic table (even after
/// a failed broadcast: the table holds what this shard actually opened or dropped).
fn groups_learn_topics(shard: &Shard) {
    if let Some(admin) = &shard.admin {
        admin.groups.topics_changed(shard);
    }
}

pub(crate) async fn delete_topics(
    shard: &Rc<Shard>,
    r: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut out = Vec::with_capacity(r.names.len());
    for name in r.names {
        if name == topics::OFFSETS_TOPIC {
            out.push(topic_result(
                &name,
                ErrorCode::PolicyViolation,
                Some(format!("{name} is internal and cannot be deleted")),
            ));
            continue;
        }
        let mut table = shard.topics.borrow().clone();
        if table.remove(&name).is_none() {
            out.push(topic_result(
                &name,
                ErrorCode::UnknownTopic,
                Some(format!("unknown topic {name:?}")),
            ));
            continue;
        }
        if let Err(e) = topics::store(&shard.config.data_dir, &table) {
            out.push(topic_result(
                &name,
                ErrorCode::StorageError,
                Some(format!("writing topics.json: {e}")),
            ));
            continue;
        }
        let res = broadcast(shard, || ShardRequest::TopicDeleted(name.clone())).await;
        groups_learn_topics(shard);
        out.push(match res {
            Ok(()) => topic_result(&name, ErrorCode::None, None),
            Err(e) => topic_result(
                &name,
                ErrorCode::StorageError,
                Some(format!("deleting partitions of {name}: {e}")),
            ),
        });
    }
    DeleteTopicsResponse { topics: out }
}
