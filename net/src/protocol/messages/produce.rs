//! Produce and InitProducerId. Record batches ride in the frame's payload area.

use bytes::Bytes;

use crate::generated as fb;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{
    batch_refs, batches, code, list, opt_str, opt_text, tables, verified_root, Body, Fbb, Root,
};

/// When the broker answers a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No response at all (wire value 0): the broker sends nothing back.
    None,
    /// Once the leader has the batches (1); its fsync policy decides durability.
    Leader,
    /// Once every in-sync replica has them (-1).
    All,
}

impl Acks {
    pub fn as_i8(self) -> i8 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    pub fn from_i8(value: i8) -> Option<Acks> {
        match value {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }

    /// Kafka's spelling: "0", "1" or "all" (also "-1").
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }

    /// The inverse of [`Acks::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    pub acks: Acks,
    /// How long the broker may wait for the acks before answering RequestTimedOut.
    pub timeout_ms: u32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartition {
    pub partition: u32,
    /// Whole record batches (docs/format.md, "Record batch"), each as the producer built it.
    /// Decoded requests hold slices of the received frame.
    pub batches: Vec<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResponse {
    pub throttle_time_ms: u32,
    pub topics: Vec<ProduceTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceTopicResponse {
    pub name: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// Offset of the first record appended (also for DuplicateSequence: the original's).
    pub base_offset: u64,
    /// Set when the topic stamps log-append time instead of create time.
    pub log_append_time_ms: Option<i64>,
    pub log_start_offset: u64,
}

/// An idempotent producer's identity, as stamped in its batch headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// Asks the broker for a producer id and epoch; with `current`, asks to bump the epoch of
/// an existing producer (after a fatal sequence error, for instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub current: Option<ProducerIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Body for ProduceRequest {
    fn build(&self, fbb: &mut Fbb<'_>, payload: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::ProducePartitionArgs {
                    partition: p.partition,
                    batches: Some(batch_refs(fbb, &p.batches, payload)),
                };
                Ok(fb::ProducePartition::create(fbb, &args))
            })?;
            let args = fb::ProduceTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::ProduceTopic::create(fbb, &args))
        })?;
        let args = fb::ProduceRequestArgs {
            acks: self.acks.as_i8(),
            timeout_ms: self.timeout_ms,
            topics: Some(topics),
        };
        Ok(fb::ProduceRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], payload: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ProduceRequest>(body, "ProduceRequest")?;
        let acks = Acks::from_i8(t.acks()).ok_or(ProtocolError::InvalidValue {
            field: "ProduceRequest.acks",
            value: i64::from(t.acks()),
        })?;
        let topics = list(t.topics(), |t| {
            Ok(ProduceTopic {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(ProducePartition {
                        partition: p.partition(),
                        batches: batches(p.batches(), payload)?,
                    })
                })?,
            })
        })?;
        Ok(ProduceRequest {
            acks,
            timeout_ms: t.timeout_ms(),
            topics,
        })
    }
}

impl Body for ProduceResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::ProducePartitionResponseArgs {
                    partition: p.partition,
                    error_code: p.error_code.as_u16(),
                    error_message: opt_str(fbb, &p.error_message),
                    base_offset: p.base_offset,
                    log_append_time_ms: p.log_append_time_ms,
                    log_start_offset: p.log_start_offset,
                };
                Ok(fb::ProducePartitionResponse::create(fbb, &args))
            })?;
            let args = fb::ProduceTopicResponseArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::ProduceTopicResponse::create(fbb, &args))
        })?;
        let args = fb::ProduceResponseArgs {
            throttle_time_ms: self.throttle_time_ms,
            topics: Some(topics),
        };
        Ok(fb::ProduceResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ProduceResponse>(body, "ProduceResponse")?;
        let topics = list(t.topics(), |t| {
            Ok(ProduceTopicResponse {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(ProducePartitionResponse {
                        partition: p.partition(),
                        error_code: code(p.error_code()),
                        error_message: opt_text(p.error_message()),
                        base_offset: p.base_offset(),
                        log_append_time_ms: p.log_append_time_ms(),
                        log_start_offset: p.log_start_offset(),
                    })
                })?,
            })
        })?;
        Ok(ProduceResponse {
            throttle_time_ms: t.throttle_time_ms(),
            topics,
        })
    }
}

impl Body for InitProducerIdRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let current = self
            .current
            .map(|c| fb::ProducerIdentity::new(c.producer_id, c.producer_epoch));
        let args = fb::InitProducerIdRequestArgs {
            current: current.as_ref(),
        };
        Ok(fb::InitProducerIdRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::InitProducerIdRequest>(body, "InitProducerIdRequest")?;
        let current = t.current().map(|c| ProducerIdentity {
            producer_id: c.producer_id(),
            producer_epoch: c.producer_epoch(),
        });
        Ok(InitProducerIdRequest { current })
    }
}

impl Body for InitProducerIdResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::InitProducerIdResponseArgs {
            throttle_time_ms: self.throttle_time_ms,
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
        };
        Ok(fb::InitProducerIdResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::InitProducerIdResponse>(body, "InitProducerIdResponse")?;
        Ok(InitProducerIdResponse {
            throttle_time_ms: t.throttle_time_ms(),
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            producer_id: t.producer_id(),
            producer_epoch: t.producer_epoch(),
        })
    }
}
