//! `cfa topic create | list | describe | delete`: topic administration through
//! `cfa_net::client::Admin`.

use anyhow::{bail, Result};
use cfa_net::client::{Admin, TopicDescription};
use cfa_net::protocol::ConfigEntry;

use crate::client_cmd::{print_lines, table, ClientOpts};

#[derive(clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the broker's default, 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        partitions: Option<u32>,
        /// Replicas per partition (default: as many as the cluster holds).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        replication_factor: Option<u16>,
        /// A topic setting, key=value (retention.ms, max.message.bytes, ...); repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<ConfigEntry>,
    },
    /// Print topic names, one a line.
    List {
        /// Also list internal topics (`__consumer_offsets`).
        #[arg(long)]
        include_internal: bool,
    },
    /// Print a topic's partitions (leader, replicas, isr, log start and end) and configs.
    Describe { name: String },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub fn run(args: TopicArgs) -> Result<()> {
    let admin = Admin::new(&args.client.bootstrap)?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            admin.create_topic(&name, partitions, replication_factor, &configs)?;
            print_lines([format!("Created topic {name}.")])
        }
        TopicCommand::List { include_internal } => {
            let names = admin
                .list_topics()?
                .into_iter()
                .map(|t| t.name)
                .filter(|n| include_internal || !is_internal(n));
            print_lines(names)
        }
        TopicCommand::Describe { name } => {
            print_lines(describe_lines(&admin.describe_topic(&name)?))
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name)?;
            print_lines([format!("Deleted topic {name}.")])
        }
    }
}

/// Topic names starting with "__" are the broker's own (the broker refuses to create
/// others with that prefix).
fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

fn parse_config(s: &str) -> Result<ConfigEntry> {
    let Some((key, value)) = s.split_once('=') else {
        bail!("expected key=value, got {s:?}");
    };
    if key.is_empty() {
        bail!("empty key in {s:?}");
    }
    Ok(ConfigEntry {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// A summary line, then one line per partition (Kafka's `kafka-topics --describe` layout,
/// with the log offsets added).
fn describe_lines(t: &TopicDescription) -> Vec<String> {
    let replication = t.partitions.first().map_or(0, |p| p.replicas.len());
    let configs: Vec<String> = t
        .configs
        .iter()
        .map(|c| format!("{}={}", c.key, c.value))
        .collect();
    let mut lines = vec![format!(
        "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        t.name,
        t.partitions.len(),
        replication,
        configs.join(",")
    )];
    let ids = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut rows = vec![[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START",
        "LOG-END",
        "HIGH-WATERMARK",
        "ERROR",
    ]
    .map(str::to_owned)
    .to_vec()];
    for p in &t.partitions {
        let error = if p.error_code.is_error() {
            p.error_code.describe(p.error_message.as_deref())
        } else {
            "-".to_owned()
        };
        rows.push(vec![
            p.partition.to_string(),
            p.leader_id
                .map_or_else(|| "none".to_owned(), |l| l.to_string()),
            ids(&p.replicas),
            ids(&p.isr),
            p.log_start_offset.to_string(),
            p.log_end_offset.to_string(),
            p.high_watermark.to_string(),
            error,
        ]);
    }
    lines.extend(table(&rows).into_iter().map(|l| format!("\t{l}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfa_net::protocol::{ErrorCode, PartitionDescription};

    #[test]
    fn config_flags_split_at_the_first_equals_sign() {
        let c = parse_config("retention.ms=60000").expect("parses");
        assert_eq!(
            (c.key.as_str(), c.value.as_str()),
            ("retention.ms", "60000")
        );
        let c = parse_config("k=a=b").expect("parses");
        assert_eq!((c.key.as_str(), c.value.as_str()), ("k", "a=b"));
        assert!(parse_config("retention.ms").is_err());
        assert!(parse_config("=1").is_err());
    }

    #[test]
    fn describe_prints_every_partition_and_the_configs() {
        let partition = |p: u32, end: u64| PartitionDescription {
            partition: p,
            error_code: ErrorCode::None,
            error_message: None,
            leader_id: Some(0),
            leader_epoch: 0,
            replicas: vec![0],
            isr: vec![0],
            log_start_offset: 0,
            log_end_offset: end,
            high_watermark: end,
        };
        let t = TopicDescription {
            name: "soccer".into(),
            partitions: vec![partition(0, 5), partition(1, 12)],
            configs: vec![ConfigEntry {
                key: "max.message.bytes".into(),
                value: "1024".into(),
            }],
        };
        let lines = describe_lines(&t);
        assert_eq!(
            lines[0],
            "Topic: soccer\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: max.message.bytes=1024"
        );
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[1].starts_with("\tPARTITION  LEADER"), "{}", lines[1]);
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(cells, ["1", "0", "0", "0", "0", "12", "12", "-"]);
    }

    #[test]
    fn internal_topics_are_the_double_underscore_ones() {
        assert!(is_internal("__consumer_offsets"));
        assert!(!is_internal("soccer"));
        assert!(!is_internal("_private"));
    }
}
