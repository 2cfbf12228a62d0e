//! The consumer-group coordinator service on shard 0 (being written: see the helper task).

use std::rc::Rc;

use crate::protocol::{ErrorCode, FailedResponse, Request, Response};
use crate::server::config::BrokerConfig;
use crate::server::shard::Shard;

pub(crate) struct GroupService {}

impl GroupService {
    pub fn new(_config: &BrokerConfig) -> GroupService {
        GroupService {}
    }

    /// Loads committed offsets and starts the coordinator's timer task.
    pub async fn start(&self, _shard: &Rc<Shard>) -> Result<(), crate::server::ServerError> {
        Ok(())
    }

    pub async fn serve(&self, _shard: &Rc<Shard>, req: Request) -> Response {
        Response::Failed(FailedResponse {
            api_key: req.api_key().as_u16(),
            error_code: ErrorCode::CoordinatorNotAvailable,
            error_message: Some("group coordinator not started".into()),
        })
    }
}
