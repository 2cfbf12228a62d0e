//! Fetch and ListOffsets. Fetched record batches ride in the frame's payload area.

use bytes::Bytes;

use crate::generated as fb;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::common::NodeId;
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{
    batch_refs, batches, code, list, opt_str, opt_text, tables, verified_root, Body, Fbb, Root,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// A follower's node id when a replica fetches; `None` for consumers (who see only up
    /// to the high watermark).
    pub replica_id: Option<NodeId>,
    /// Longest the broker may hold the request waiting for `min_bytes`.
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    /// Bound on the whole response's batches (at least one batch is returned even if it is
    /// larger, so a consumer never stalls on a big batch).
    pub max_bytes: u32,
    pub topics: Vec<FetchTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: u32,
    pub fetch_offset: u64,
    pub partition_max_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub throttle_time_ms: u32,
    pub topics: Vec<FetchTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopicResponse {
    pub name: String,
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Whole record batches as stored; the broker passes the log's `Bytes` through, and
    /// decoded responses hold slices of the received frame.
    pub batches: Vec<Bytes>,
}

/// What offset ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (wire value -2).
    Earliest,
    /// The high watermark: the next offset a consumer would read (wire value -1).
    Latest,
    /// The first batch whose max timestamp is at or after this many ms since the epoch
    /// (>= 0 on the wire).
    Timestamp(i64),
}

impl OffsetSpec {
    pub const EARLIEST: i64 = -2;
    pub const LATEST: i64 = -1;

    pub fn to_wire(self) -> Result<i64, EncodeError> {
        match self {
            OffsetSpec::Earliest => Ok(OffsetSpec::EARLIEST),
            OffsetSpec::Latest => Ok(OffsetSpec::LATEST),
            OffsetSpec::Timestamp(ts) if ts >= 0 => Ok(ts),
            OffsetSpec::Timestamp(ts) => Err(EncodeError::InvalidValue {
                field: "ListOffsetsPartition.timestamp",
                value: ts,
            }),
        }
    }

    pub fn from_wire(value: i64) -> Option<OffsetSpec> {
        match value {
            OffsetSpec::EARLIEST => Some(OffsetSpec::Earliest),
            OffsetSpec::LATEST => Some(OffsetSpec::Latest),
            ts if ts >= 0 => Some(OffsetSpec::Timestamp(ts)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    pub topics: Vec<ListOffsetsTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    pub partition: u32,
    pub spec: OffsetSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    pub topics: Vec<ListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// `None` when no batch reaches the asked timestamp.
    pub offset: Option<u64>,
    /// The found batch's max timestamp, for timestamp lookups.
    pub timestamp_ms: Option<i64>,
}

impl Body for FetchRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::FetchPartitionArgs {
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                };
                Ok(fb::FetchPartition::create(fbb, &args))
            })?;
            let args = fb::FetchTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::FetchTopic::create(fbb, &args))
        })?;
        let args = fb::FetchRequestArgs {
            replica_id: self.replica_id,
            max_wait_ms: self.max_wait_ms,
            min_bytes: self.min_bytes,
            max_bytes: self.max_bytes,
            topics: Some(topics),
        };
        Ok(fb::FetchRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::FetchRequest>(body, "FetchRequest")?;
        let topics = list(t.topics(), |t| {
            Ok(FetchTopic {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(FetchPartition {
                        partition: p.partition(),
                        fetch_offset: p.fetch_offset(),
                        partition_max_bytes: p.partition_max_bytes(),
                    })
                })?,
            })
        })?;
        Ok(FetchRequest {
            replica_id: t.replica_id(),
            max_wait_ms: t.max_wait_ms(),
            min_bytes: t.min_bytes(),
            max_bytes: t.max_bytes(),
            topics,
        })
    }
}

impl Body for FetchResponse {
    fn build(&self, fbb: &mut Fbb<'_>, payload: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let refs = batch_refs(fbb, &p.batches, payload);
                let args = fb::FetchPartitionResponseArgs {
                    partition: p.partition,
                    error_code: p.error_code.as_u16(),
                    error_message: opt_str(fbb, &p.error_message),
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                    batches: Some(refs),
                };
                Ok(fb::FetchPartitionResponse::create(fbb, &args))
            })?;
            let args = fb::FetchTopicResponseArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::FetchTopicResponse::create(fbb, &args))
        })?;
        let args = fb::FetchResponseArgs {
            throttle_time_ms: self.throttle_time_ms,
            topics: Some(topics),
        };
        Ok(fb::FetchResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], payload: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::FetchResponse>(body, "FetchResponse")?;
        let topics = list(t.topics(), |t| {
            Ok(FetchTopicResponse {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(FetchPartitionResponse {
                        partition: p.partition(),
                        error_code: code(p.error_code()),
                        error_message: opt_text(p.error_message()),
                        high_watermark: p.high_watermark(),
                        log_start_offset: p.log_start_offset(),
                        batches: batches(p.batches(), payload)?,
                    })
                })?,
            })
        })?;
        Ok(FetchResponse {
            throttle_time_ms: t.throttle_time_ms(),
            topics,
        })
    }
}

impl Body for ListOffsetsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::ListOffsetsPartitionArgs {
                    partition: p.partition,
                    timestamp: p.spec.to_wire()?,
                };
                Ok(fb::ListOffsetsPartition::create(fbb, &args))
            })?;
            let args = fb::ListOffsetsTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::ListOffsetsTopic::create(fbb, &args))
        })?;
        let args = fb::ListOffsetsRequestArgs {
            topics: Some(topics),
        };
        Ok(fb::ListOffsetsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ListOffsetsRequest>(body, "ListOffsetsRequest")?;
        let topics = list(t.topics(), |t| {
            Ok(ListOffsetsTopic {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    let spec = OffsetSpec::from_wire(p.timestamp()).ok_or(
                        ProtocolError::InvalidValue {
                            field: "ListOffsetsPartition.timestamp",
                            value: p.timestamp(),
                        },
                    )?;
                    Ok(ListOffsetsPartition {
                        partition: p.partition(),
                        spec,
                    })
                })?,
            })
        })?;
        Ok(ListOffsetsRequest { topics })
    }
}

impl Body for ListOffsetsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::ListOffsetsPartitionResponseArgs {
                    partition: p.partition,
                    error_code: p.error_code.as_u16(),
                    error_message: opt_str(fbb, &p.error_message),
                    offset: p.offset,
                    timestamp_ms: p.timestamp_ms,
                };
                Ok(fb::ListOffsetsPartitionResponse::create(fbb, &args))
            })?;
            let args = fb::ListOffsetsTopicResponseArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::ListOffsetsTopicResponse::create(fbb, &args))
        })?;
        let args = fb::ListOffsetsResponseArgs {
            topics: Some(topics),
        };
        Ok(fb::ListOffsetsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ListOffsetsResponse>(body, "ListOffsetsResponse")?;
        let topics = list(t.topics(), |t| {
            Ok(ListOffsetsTopicResponse {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(ListOffsetsPartitionResponse {
                        partition: p.partition(),
                        error_code: code(p.error_code()),
                        error_message: opt_text(p.error_message()),
                        offset: p.offset(),
                        timestamp_ms: p.timestamp_ms(),
                    })
                })?,
            })
        })?;
        Ok(ListOffsetsResponse { topics })
    }
}
