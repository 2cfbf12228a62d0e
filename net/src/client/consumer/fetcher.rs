//! Fetch requests and their answers: which partitions go in one request, and what each
//! partition's answer means for the consumer (records, a reset, stale metadata, an error).
//!
//! Pure: the consumer sends the requests and applies the outcomes.

use bytes::Bytes;
use cfa_engine::batch::{decode_records_into, validate};

use crate::client::consumer::subscription::FetchPosition;
use crate::client::consumer::ConsumerRecord;
use crate::client::error::ClientError;
use crate::client::TopicPartition;
use crate::constants::PAYLOAD_BYTES_MAX;
use crate::protocol::{ErrorCode, FetchPartition, FetchRequest, FetchResponse, FetchTopic};

/// The fetch settings of a consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchSettings {
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub partition_max_bytes: u32,
    /// See `ConsumerConfig::partition_prefetch_bytes`.
    pub prefetch_bytes: usize,
    pub check_crcs: bool,
}

/// A Fetch request for `positions` (all led by one broker), topics in order.
pub(crate) fn fetch_request(
    positions: &[FetchPosition],
    s: &FetchSettings,
    max_wait_ms: u32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for at in positions {
        let partition = FetchPartition {
            partition: at.tp.partition,
            fetch_offset: at.offset,
            partition_max_bytes: s.partition_max_bytes,
        };
        match topics.last_mut().filter(|t| t.name == *at.tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic {
                name: at.tp.topic.to_string(),
                partitions: vec![partition],
            }),
        }
    }
    FetchRequest {
        replica_id: None,
        max_wait_ms,
        min_bytes: s.min_bytes,
        // A frame carries at most PAYLOAD_BYTES_MAX of batches.
        max_bytes: s.max_bytes.min(PAYLOAD_BYTES_MAX as u32),
        topics,
    }
}

/// What one partition's answer asks of the consumer.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Records (possibly none) from the position on.
    Records {
        at: FetchPosition,
        records: Vec<ConsumerRecord>,
        high_watermark: u64,
    },
    /// The position is outside the log: apply the reset policy.
    OutOfRange(FetchPosition),
    /// Leadership or topic metadata is stale: refresh and fetch again.
    Stale(TopicPartition),
    /// An error the caller must see.
    Failed(ClientError),
}

/// The outcome of each partition asked for in `positions`.
pub(crate) fn outcomes(
    positions: Vec<FetchPosition>,
    response: &FetchResponse,
    s: &FetchSettings,
) -> Vec<Outcome> {
    positions
        .into_iter()
        .map(|at| {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.name == *at.tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition == at.tp.partition);
            let Some(p) = answer else {
                // Not answered (the broker trimmed the response): fetch again later.
                return Outcome::Records {
                    at,
                    records: Vec::new(),
                    high_watermark: 0,
                };
            };
            match p.error_code {
                ErrorCode::None => match decode(&at.tp, &p.batches, s.check_crcs) {
                    Ok(records) => Outcome::Records {
                        at,
                        records,
                        high_watermark: p.high_watermark,
                    },
                    Err(e) => Outcome::Failed(e),
                },
                ErrorCode::OffsetOutOfRange => Outcome::OutOfRange(at),
                code if code.is_retriable() => Outcome::Stale(at.tp),
                code => Outcome::Failed(ClientError::Broker {
                    context: format!("Fetch from {}", at.tp),
                    code,
                    message: p.error_message.clone(),
                }),
            }
        })
        .collect()
}

/// The records of `batches`, in order. A batch whose CRC fails (when checked) or whose
/// records do not decode is an error naming the partition and offset.
pub(crate) fn decode(
    tp: &TopicPartition,
    batches: &[Bytes],
    check_crcs: bool,
) -> Result<Vec<ConsumerRecord>, ClientError> {
    let mut out = Vec::new();
    for batch in batches {
        let context = || {
            let base = cfa_engine::BatchHeader::parse(batch).map(|h| h.base_offset());
            match base {
                Ok(offset) => format!("fetched batch of {tp} at offset {offset}"),
                Err(_) => format!("fetched batch of {tp}"),
            }
        };
        if check_crcs {
            validate(batch, u32::MAX).map_err(|source| ClientError::Batch {
                context: context(),
                source,
            })?;
        }
        // Straight into `out`: no vector per batch, one reservation per batch.
        let record = |r: cfa_engine::batch::Record| ConsumerRecord {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key,
            value: r.value,
            headers: r.headers,
        };
        decode_records_into(batch, &mut out, record).map_err(|source| ClientError::Batch {
            context: context(),
            source,
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FetchPartitionResponse, FetchTopicResponse};
    use cfa_engine::batch::set_base_offset;
    use cfa_engine::compression::Compression;
    use cfa_engine::{BatchBuilder, Codec, ProducerStamp};
    use proptest::prelude::*;

    fn settings() -> FetchSettings {
        FetchSettings {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: u32::MAX,
            partition_max_bytes: 1 << 20,
            prefetch_bytes: 0,
            check_crcs: true,
        }
    }

    fn at(topic: &str, p: u32, offset: u64) -> FetchPosition {
        FetchPosition {
            tp: TopicPartition::new(topic, p),
            offset,
            epoch: 0,
        }
    }

    fn batch(base: u64, n: u8, codec: Codec) -> Bytes {
        let mut b = BatchBuilder::new(1000);
        for i in 0..n {
            b.push(
                1000 + i64::from(i),
                Some(&[i]),
                Some(&[i; 40]),
                &[(b"h", Some(b"v"))],
            );
        }
        let mut bytes = b
            .finish_with(ProducerStamp::NONE, Compression::from(codec))
            .expect("encode");
        set_base_offset(&mut bytes, base);
        bytes.freeze()
    }

    fn response(p: FetchPartitionResponse) -> FetchResponse {
        FetchResponse {
            throttle_time_ms: 0,
            topics: vec![FetchTopicResponse {
                name: "t".into(),
                partitions: vec![p],
            }],
        }
    }

    fn partition(code: ErrorCode, batches: Vec<Bytes>) -> FetchPartitionResponse {
        FetchPartitionResponse {
            partition: 0,
            error_code: code,
            error_message: None,
            high_watermark: 42,
            log_start_offset: 0,
            batches,
        }
    }

    #[test]
    fn request_groups_partitions_by_topic_and_caps_bytes() {
        let r = fetch_request(
            &[at("a", 0, 5), at("a", 1, 7), at("b", 0, 0)],
            &settings(),
            100,
        );
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[1].fetch_offset, 7);
        assert_eq!(r.max_bytes as usize, PAYLOAD_BYTES_MAX);
        assert_eq!(r.max_wait_ms, 100);
        assert_eq!(r.replica_id, None);
    }

    #[test]
    fn every_codec_decodes_with_offsets_and_headers() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let out = outcomes(
                vec![at("t", 0, 10)],
                &response(partition(
                    ErrorCode::None,
                    vec![batch(10, 3, codec), batch(13, 2, codec)],
                )),
                &settings(),
            );
            let Outcome::Records {
                records,
                high_watermark,
                ..
            } = &out[0]
            else {
                panic!("{codec}: {out:?}");
            };
            assert_eq!(*high_watermark, 42);
            let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![10, 11, 12, 13, 14], "{codec}");
            assert_eq!(records[1].key.as_deref(), Some(&[1u8][..]));
            assert_eq!(records[1].headers[0].key.as_ref(), b"h");
        }
    }

    #[test]
    fn errors_map_to_outcomes() {
        let s = settings();
        let out = outcomes(
            vec![at("t", 0, 99)],
            &response(partition(ErrorCode::OffsetOutOfRange, vec![])),
            &s,
        );
        assert!(matches!(out[0], Outcome::OutOfRange(_)));
        let out = outcomes(
            vec![at("t", 0, 0)],
            &response(partition(ErrorCode::NotLeader, vec![])),
            &s,
        );
        assert!(matches!(out[0], Outcome::Stale(_)));
        let out = outcomes(
            vec![at("t", 0, 0)],
            &response(partition(ErrorCode::StorageError, vec![])),
            &s,
        );
        let Outcome::Failed(e) = &out[0] else {
            panic!("{out:?}")
        };
        assert!(
            e.to_string().starts_with("Fetch from t-0: StorageError"),
            "{e}"
        );
        let out = outcomes(
            vec![at("t", 1, 0)],
            &response(partition(ErrorCode::None, vec![])),
            &s,
        );
        assert!(matches!(&out[0], Outcome::Records { records, .. } if records.is_empty()));
    }

    #[test]
    fn a_corrupt_batch_names_partition_and_offset() {
        let mut bad = batch(7, 2, Codec::None).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let err = decode(&TopicPartition::new("t", 3), &[Bytes::from(bad)], true).expect_err("crc");
        assert!(
            err.to_string()
                .starts_with("fetched batch of t-3 at offset 7: "),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn garbage_batches_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                       check in any::<bool>()) {
            let _ = decode(&TopicPartition::new("t", 0), &[Bytes::from(bytes)], check);
        }
    }
}
