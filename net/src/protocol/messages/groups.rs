//! Consumer groups. The broker computes assignments (server-side, as in Kafka's KIP-848):
//! a member joins with its subscription and assignor preferences, then SyncGroup hands it
//! its share; no client ever sends assignments.

use crate::generated as fb;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::common::{
    build_partition_results, build_topic_partitions, parse_partition_results,
    parse_topic_partitions, TopicPartitionResults, TopicPartitions,
};
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{
    code, list, opt_str, opt_text, string_list, strs, tables, text, verified_root, Body, Fbb, Root,
};

/// Where a group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may still be kept).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Everyone joined; assignments are being handed out.
    CompletingRebalance,
    Stable,
    /// The group is being removed.
    Dead,
}

impl GroupState {
    fn to_wire(self) -> fb::GroupState {
        match self {
            GroupState::Empty => fb::GroupState::Empty,
            GroupState::PreparingRebalance => fb::GroupState::PreparingRebalance,
            GroupState::CompletingRebalance => fb::GroupState::CompletingRebalance,
            GroupState::Stable => fb::GroupState::Stable,
            GroupState::Dead => fb::GroupState::Dead,
        }
    }

    fn from_wire(s: fb::GroupState, field: &'static str) -> Result<GroupState, ProtocolError> {
        Ok(match s {
            fb::GroupState::Empty => GroupState::Empty,
            fb::GroupState::PreparingRebalance => GroupState::PreparingRebalance,
            fb::GroupState::CompletingRebalance => GroupState::CompletingRebalance,
            fb::GroupState::Stable => GroupState::Stable,
            fb::GroupState::Dead => GroupState::Dead,
            other => {
                return Err(ProtocolError::InvalidValue {
                    field,
                    value: i64::from(other.0),
                })
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time; the broker assigns one.
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor names in order of preference (e.g. "range", "roundrobin").
    pub assignors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub generation_id: i32,
    pub member_id: String,
    pub leader_id: String,
    /// The assignor the broker chose.
    pub assignor: String,
    pub members: Vec<JoinGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    pub member_id: String,
    pub client_id: String,
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// This member's partitions.
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// `RebalanceInProgress` tells the member to join again.
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub member_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// `generation_id` -1 with an empty `member_id`: a consumer that assigns partitions
/// itself, accepted while the group has no members.
pub struct OffsetCommitRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition: u32,
    /// The next offset to consume.
    pub offset: u64,
    /// Leader epoch of the last consumed record, -1 when unknown.
    pub leader_epoch: i32,
    /// Free text stored with the offset.
    pub metadata: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    /// Group-level failure (unknown member, illegal generation); then `topics` may be empty.
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub topics: Vec<TopicPartitionResults>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    /// `None`: every partition the group committed an offset for.
    pub topics: Option<Vec<TopicPartitions>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub topics: Vec<OffsetFetchTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartition {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// `None` when the group committed nothing for the partition.
    pub offset: Option<u64>,
    /// Leader epoch of the last consumed record, -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    pub groups: Vec<GroupListing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub state: GroupState,
    pub member_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupRequest {
    pub group_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub group_id: String,
    pub state: GroupState,
    /// `None` before the first generation.
    pub assignor: Option<String>,
    pub leader_id: Option<String>,
    /// -1 before the first generation.
    pub generation_id: i32,
    pub members: Vec<GroupMemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartitions>,
}

impl Body for JoinGroupRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::JoinGroupRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            member_id: Some(fbb.create_string(&self.member_id)),
            client_id: Some(fbb.create_string(&self.client_id)),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            topics: Some(strs(fbb, &self.topics)),
            assignors: Some(strs(fbb, &self.assignors)),
        };
        Ok(fb::JoinGroupRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::JoinGroupRequest>(body, "JoinGroupRequest")?;
        Ok(JoinGroupRequest {
            group_id: t.group_id().to_owned(),
            member_id: text(t.member_id()),
            client_id: text(t.client_id()),
            session_timeout_ms: t.session_timeout_ms(),
            rebalance_timeout_ms: t.rebalance_timeout_ms(),
            topics: string_list(t.topics()),
            assignors: string_list(t.assignors()),
        })
    }
}

impl Body for JoinGroupResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let members = tables(fbb, &self.members, |fbb, m| {
            let args = fb::JoinGroupMemberArgs {
                member_id: Some(fbb.create_string(&m.member_id)),
                client_id: Some(fbb.create_string(&m.client_id)),
                topics: Some(strs(fbb, &m.topics)),
            };
            Ok(fb::JoinGroupMember::create(fbb, &args))
        })?;
        let args = fb::JoinGroupResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            generation_id: self.generation_id,
            member_id: Some(fbb.create_string(&self.member_id)),
            leader_id: Some(fbb.create_string(&self.leader_id)),
            assignor: Some(fbb.create_string(&self.assignor)),
            members: Some(members),
        };
        Ok(fb::JoinGroupResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::JoinGroupResponse>(body, "JoinGroupResponse")?;
        let members = list(t.members(), |m| {
            Ok(JoinGroupMember {
                member_id: m.member_id().to_owned(),
                client_id: text(m.client_id()),
                topics: string_list(m.topics()),
            })
        })?;
        Ok(JoinGroupResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            generation_id: t.generation_id(),
            member_id: text(t.member_id()),
            leader_id: text(t.leader_id()),
            assignor: text(t.assignor()),
            members,
        })
    }
}

impl Body for SyncGroupRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::SyncGroupRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            generation_id: self.generation_id,
            member_id: Some(fbb.create_string(&self.member_id)),
        };
        Ok(fb::SyncGroupRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::SyncGroupRequest>(body, "SyncGroupRequest")?;
        Ok(SyncGroupRequest {
            group_id: t.group_id().to_owned(),
            generation_id: t.generation_id(),
            member_id: t.member_id().to_owned(),
        })
    }
}

impl Body for SyncGroupResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let assignment = build_topic_partitions(fbb, &self.assignment)?;
        let args = fb::SyncGroupResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            assignment: Some(assignment),
        };
        Ok(fb::SyncGroupResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::SyncGroupResponse>(body, "SyncGroupResponse")?;
        Ok(SyncGroupResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            assignment: parse_topic_partitions(t.assignment())?,
        })
    }
}

impl Body for HeartbeatRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::HeartbeatRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            generation_id: self.generation_id,
            member_id: Some(fbb.create_string(&self.member_id)),
        };
        Ok(fb::HeartbeatRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::HeartbeatRequest>(body, "HeartbeatRequest")?;
        Ok(HeartbeatRequest {
            group_id: t.group_id().to_owned(),
            generation_id: t.generation_id(),
            member_id: t.member_id().to_owned(),
        })
    }
}

impl Body for HeartbeatResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::HeartbeatResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
        };
        Ok(fb::HeartbeatResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::HeartbeatResponse>(body, "HeartbeatResponse")?;
        Ok(HeartbeatResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
        })
    }
}

impl Body for LeaveGroupRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::LeaveGroupRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            member_id: Some(fbb.create_string(&self.member_id)),
        };
        Ok(fb::LeaveGroupRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::LeaveGroupRequest>(body, "LeaveGroupRequest")?;
        Ok(LeaveGroupRequest {
            group_id: t.group_id().to_owned(),
            member_id: t.member_id().to_owned(),
        })
    }
}

impl Body for LeaveGroupResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::LeaveGroupResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
        };
        Ok(fb::LeaveGroupResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::LeaveGroupResponse>(body, "LeaveGroupResponse")?;
        Ok(LeaveGroupResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
        })
    }
}

impl Body for OffsetCommitRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::OffsetCommitPartitionArgs {
                    partition: p.partition,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: Some(fbb.create_string(&p.metadata)),
                };
                Ok(fb::OffsetCommitPartition::create(fbb, &args))
            })?;
            let args = fb::OffsetCommitTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::OffsetCommitTopic::create(fbb, &args))
        })?;
        let args = fb::OffsetCommitRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            generation_id: self.generation_id,
            member_id: Some(fbb.create_string(&self.member_id)),
            topics: Some(topics),
        };
        Ok(fb::OffsetCommitRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::OffsetCommitRequest>(body, "OffsetCommitRequest")?;
        let topics = list(t.topics(), |t| {
            Ok(OffsetCommitTopic {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(OffsetCommitPartition {
                        partition: p.partition(),
                        offset: p.offset(),
                        leader_epoch: p.leader_epoch(),
                        metadata: text(p.metadata()),
                    })
                })?,
            })
        })?;
        Ok(OffsetCommitRequest {
            group_id: t.group_id().to_owned(),
            generation_id: t.generation_id(),
            member_id: t.member_id().to_owned(),
            topics,
        })
    }
}

impl Body for OffsetCommitResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = build_partition_results(fbb, &self.topics)?;
        let args = fb::OffsetCommitResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            topics: Some(topics),
        };
        Ok(fb::OffsetCommitResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::OffsetCommitResponse>(body, "OffsetCommitResponse")?;
        Ok(OffsetCommitResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            topics: parse_partition_results(t.topics())?,
        })
    }
}

impl Body for OffsetFetchRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = match &self.topics {
            Some(t) => Some(build_topic_partitions(fbb, t)?),
            None => None,
        };
        let args = fb::OffsetFetchRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
            topics,
        };
        Ok(fb::OffsetFetchRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::OffsetFetchRequest>(body, "OffsetFetchRequest")?;
        let topics = match t.topics() {
            Some(v) => Some(parse_topic_partitions(Some(v))?),
            None => None,
        };
        Ok(OffsetFetchRequest {
            group_id: t.group_id().to_owned(),
            topics,
        })
    }
}

impl Body for OffsetFetchResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let topics = tables(fbb, &self.topics, |fbb, t| {
            let partitions = tables(fbb, &t.partitions, |fbb, p| {
                let args = fb::OffsetFetchPartitionArgs {
                    partition: p.partition,
                    error_code: p.error_code.as_u16(),
                    error_message: opt_str(fbb, &p.error_message),
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: Some(fbb.create_string(&p.metadata)),
                };
                Ok(fb::OffsetFetchPartition::create(fbb, &args))
            })?;
            let args = fb::OffsetFetchTopicArgs {
                name: Some(fbb.create_string(&t.name)),
                partitions: Some(partitions),
            };
            Ok(fb::OffsetFetchTopic::create(fbb, &args))
        })?;
        let args = fb::OffsetFetchResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            topics: Some(topics),
        };
        Ok(fb::OffsetFetchResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::OffsetFetchResponse>(body, "OffsetFetchResponse")?;
        let topics = list(t.topics(), |t| {
            Ok(OffsetFetchTopic {
                name: t.name().to_owned(),
                partitions: list(t.partitions(), |p| {
                    Ok(OffsetFetchPartition {
                        partition: p.partition(),
                        error_code: code(p.error_code()),
                        error_message: opt_text(p.error_message()),
                        offset: p.offset(),
                        leader_epoch: p.leader_epoch(),
                        metadata: text(p.metadata()),
                    })
                })?,
            })
        })?;
        Ok(OffsetFetchResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            topics,
        })
    }
}

impl Body for ListGroupsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::ListGroupsRequestArgs {};
        Ok(fb::ListGroupsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        verified_root::<fb::ListGroupsRequest>(body, "ListGroupsRequest")?;
        Ok(ListGroupsRequest {})
    }
}

impl Body for ListGroupsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let groups = tables(fbb, &self.groups, |fbb, g| {
            let args = fb::GroupListingArgs {
                group_id: Some(fbb.create_string(&g.group_id)),
                state: g.state.to_wire(),
                member_count: g.member_count,
            };
            Ok(fb::GroupListing::create(fbb, &args))
        })?;
        let args = fb::ListGroupsResponseArgs {
            groups: Some(groups),
        };
        Ok(fb::ListGroupsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ListGroupsResponse>(body, "ListGroupsResponse")?;
        let groups = list(t.groups(), |g| {
            Ok(GroupListing {
                group_id: g.group_id().to_owned(),
                state: GroupState::from_wire(g.state(), "GroupListing.state")?,
                member_count: g.member_count(),
            })
        })?;
        Ok(ListGroupsResponse { groups })
    }
}

impl Body for DescribeGroupRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::DescribeGroupRequestArgs {
            group_id: Some(fbb.create_string(&self.group_id)),
        };
        Ok(fb::DescribeGroupRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DescribeGroupRequest>(body, "DescribeGroupRequest")?;
        Ok(DescribeGroupRequest {
            group_id: t.group_id().to_owned(),
        })
    }
}

impl Body for DescribeGroupResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let members = tables(fbb, &self.members, |fbb, m| {
            let assignment = build_topic_partitions(fbb, &m.assignment)?;
            let args = fb::GroupMemberDescriptionArgs {
                member_id: Some(fbb.create_string(&m.member_id)),
                client_id: Some(fbb.create_string(&m.client_id)),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                topics: Some(strs(fbb, &m.topics)),
                assignment: Some(assignment),
            };
            Ok(fb::GroupMemberDescription::create(fbb, &args))
        })?;
        let args = fb::DescribeGroupResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            group_id: Some(fbb.create_string(&self.group_id)),
            state: self.state.to_wire(),
            assignor: opt_str(fbb, &self.assignor),
            leader_id: opt_str(fbb, &self.leader_id),
            generation_id: self.generation_id,
            members: Some(members),
        };
        Ok(fb::DescribeGroupResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::DescribeGroupResponse>(body, "DescribeGroupResponse")?;
        let members = list(t.members(), |m| {
            Ok(GroupMemberDescription {
                member_id: m.member_id().to_owned(),
                client_id: text(m.client_id()),
                session_timeout_ms: m.session_timeout_ms(),
                rebalance_timeout_ms: m.rebalance_timeout_ms(),
                topics: string_list(m.topics()),
                assignment: parse_topic_partitions(m.assignment())?,
            })
        })?;
        Ok(DescribeGroupResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            group_id: t.group_id().to_owned(),
            state: GroupState::from_wire(t.state(), "DescribeGroupResponse.state")?,
            assignor: opt_text(t.assignor()),
            leader_id: opt_text(t.leader_id()),
            generation_id: t.generation_id(),
            members,
        })
    }
}
