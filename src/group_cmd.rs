//! `cfa group list | describe GROUP`: consumer groups, their members, assignments,
//! committed offsets and lag, through `cfa_net::client::Admin`.

use std::collections::BTreeMap;

use anyhow::Result;
use cfa_net::client::{Admin, GroupDescription, TopicPartition};
use cfa_net::protocol::GroupListing;

use crate::client_cmd::{or_dash, print_lines, table, ClientOpts};

#[derive(clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(clap::Subcommand)]
enum GroupCommand {
    /// Print every group: id, state, member count.
    List,
    /// Print a group's members and, per partition, the committed offset, the log end
    /// offset, the lag and the member that holds it.
    Describe { group: String },
}

pub fn run(args: GroupArgs) -> Result<()> {
    let admin = Admin::new(&args.client.bootstrap)?;
    match args.command {
        GroupCommand::List => print_lines(list_lines(&admin.list_groups()?)),
        GroupCommand::Describe { group } => {
            print_lines(describe_lines(&admin.describe_group(&group)?))
        }
    }
}

fn list_lines(groups: &[GroupListing]) -> Vec<String> {
    let mut rows = vec![vec!["GROUP".into(), "STATE".into(), "MEMBERS".into()]];
    rows.extend(groups.iter().map(|g| {
        vec![
            g.group_id.clone(),
            format!("{:?}", g.state),
            g.member_count.to_string(),
        ]
    }));
    table(&rows)
}

/// A summary line, the members (with their assignments), then one row per partition.
fn describe_lines(g: &GroupDescription) -> Vec<String> {
    let mut lines = vec![format!(
        "Group: {}\tState: {:?}\tGeneration: {}\tAssignor: {}\tLeader: {}\tMembers: {}",
        g.group_id,
        g.state,
        g.generation_id,
        g.assignor.as_deref().unwrap_or("-"),
        g.leader_id.as_deref().unwrap_or("-"),
        g.members.len()
    )];
    let mut holder: BTreeMap<TopicPartition, &str> = BTreeMap::new();
    if !g.members.is_empty() {
        let mut rows = vec![vec![
            "MEMBER".to_owned(),
            "CLIENT-ID".to_owned(),
            "ASSIGNMENT".to_owned(),
        ]];
        for m in &g.members {
            let mut assigned = Vec::new();
            for t in &m.assignment {
                for &p in &t.partitions {
                    let tp = TopicPartition::new(&t.topic, p);
                    assigned.push(tp.to_string());
                    holder.insert(tp, &m.member_id);
                }
            }
            let assignment = if assigned.is_empty() {
                "-".to_owned()
            } else {
                assigned.join(",")
            };
            rows.push(vec![m.member_id.clone(), m.client_id.clone(), assignment]);
        }
        lines.push(String::new());
        lines.extend(table(&rows));
    }
    let mut rows = vec![[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG-END",
        "LAG",
        "MEMBER",
    ]
    .map(str::to_owned)
    .to_vec()];
    for o in &g.offsets {
        rows.push(vec![
            o.partition.topic.to_string(),
            o.partition.partition.to_string(),
            or_dash(o.committed),
            or_dash(o.log_end_offset),
            or_dash(o.lag),
            holder.get(&o.partition).unwrap_or(&"-").to_string(),
        ]);
    }
    lines.push(String::new());
    lines.extend(table(&rows));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_net::client::PartitionLag;
    use cfa_net::protocol::{GroupMemberDescription, GroupState, TopicPartitions};

    #[test]
    fn list_prints_id_state_and_members() {
        let groups = [GroupListing {
            group_id: "website".into(),
            state: GroupState::Stable,
            member_count: 2,
        }];
        let lines = list_lines(&groups);
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["GROUP", "STATE", "MEMBERS"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["website", "Stable", "2"]
        );
    }

    #[test]
    fn describe_shows_members_offsets_lag_and_holders() {
        let lag = |p: u32, committed: Option<u64>, end: u64| PartitionLag {
            partition: TopicPartition::new("soccer", p),
            committed,
            log_end_offset: Some(end),
            lag: committed.map(|c| end - c),
        };
        let g = GroupDescription {
            group_id: "website".into(),
            state: GroupState::Stable,
            assignor: Some("range".into()),
            leader_id: Some("m-1".into()),
            generation_id: 4,
            members: vec![GroupMemberDescription {
                member_id: "m-1".into(),
                client_id: "cfa-consume".into(),
                session_timeout_ms: 45_000,
                rebalance_timeout_ms: 300_000,
                topics: vec!["soccer".into()],
                assignment: vec![TopicPartitions {
                    topic: "soccer".into(),
                    partitions: vec![0],
                }],
            }],
            offsets: vec![lag(0, Some(7), 10), lag(1, None, 3)],
        };
        let lines = describe_lines(&g);
        assert!(lines[0].starts_with("Group: website\tState: Stable\tGeneration: 4"));
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(cells(&lines[3]), ["m-1", "cfa-consume", "soccer-0"]);
        let n = lines.len();
        assert_eq!(
            cells(&lines[n - 3]),
            [
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG",
                "MEMBER"
            ]
        );
        assert_eq!(cells(&lines[n - 2]), ["soccer", "0", "7", "10", "3", "m-1"]);
        assert_eq!(cells(&lines[n - 1]), ["soccer", "1", "-", "3", "-", "-"]);
    }
}
