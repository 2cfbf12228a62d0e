//! Committed offsets: the record codec of the `__consumer_offsets` topic and the
//! [`OffsetStore`] that is rebuilt by replaying it.
//!
//! Durability contract (the server's side): a commit becomes a list of [`OffsetRecord`]s,
//! encoded as **one** record batch ([`build_batch`]); the server appends that batch to the
//! group's partition of `__consumer_offsets` (see [`offsets_partition_for`]) and waits
//! for acks=all before it applies the commit in memory and answers. On start-up it reads
//! every batch of the partitions it coordinates and feeds them, in log order, to
//! [`OffsetStore::replay_batch`]: the last record of a key wins and a tombstone (null
//! value) deletes the key. The byte layout is in docs/format.md, section "Consumer-group
//! offset records".

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use cfa_engine::batch::{decode_records, validate, BatchBuilder, ProducerStamp};

use crate::group::error::OffsetRecordError;
use crate::group::TopicPartition;

/// Version byte of an offset-commit key. Other values are reserved for future record
/// kinds (Kafka keeps group metadata in the same topic under another key version).
pub const OFFSET_KEY_VERSION: u8 = 1;

/// Version byte of an offset-commit value.
pub const OFFSET_VALUE_VERSION: u8 = 1;

/// Fixed bytes of a key: version, two u16 lengths, u32 partition.
const KEY_FIXED_BYTES: usize = 1 + 2 + 2 + 4;

/// Fixed bytes of a value: version, offset, leader epoch, timestamp, metadata length.
const VALUE_FIXED_BYTES: usize = 1 + 8 + 4 + 8 + 2;

/// Key of one record: whose offset for which partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetKey {
    pub group_id: String,
    pub topic: String,
    pub partition: u32,
}

impl OffsetKey {
    pub fn new(group_id: &str, tp: &TopicPartition) -> Self {
        OffsetKey {
            group_id: group_id.to_owned(),
            topic: tp.topic.to_string(),
            partition: tp.partition,
        }
    }

    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&self.topic, self.partition)
    }
}

/// One committed offset, as stored and as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: u64,
    /// Leader epoch of the last consumed record, -1 when the client did not say.
    pub leader_epoch: i32,
    /// Client metadata string (at most `OFFSET_METADATA_BYTES_MAX` bytes at commit time).
    pub metadata: String,
    /// When the coordinator accepted the commit, ms since the Unix epoch.
    pub commit_timestamp_ms: i64,
}

/// One record of the offsets topic: a commit (`value` is `Some`) or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    pub key: OffsetKey,
    pub value: Option<CommittedOffset>,
}

/// Encodes a key: version, u16 group length, group, u16 topic length, topic, u32 partition.
pub fn encode_key(key: &OffsetKey) -> Result<Vec<u8>, OffsetRecordError> {
    let mut out = Vec::with_capacity(KEY_FIXED_BYTES + key.group_id.len() + key.topic.len());
    out.push(OFFSET_KEY_VERSION);
    put_str(&mut out, "key", "group id", &key.group_id)?;
    put_str(&mut out, "key", "topic", &key.topic)?;
    out.extend_from_slice(&key.partition.to_le_bytes());
    Ok(out)
}

/// Encodes a value: version, u64 offset, i32 leader epoch, i64 commit timestamp, u16
/// metadata length, metadata.
pub fn encode_value(value: &CommittedOffset) -> Result<Vec<u8>, OffsetRecordError> {
    let mut out = Vec::with_capacity(VALUE_FIXED_BYTES + value.metadata.len());
    out.push(OFFSET_VALUE_VERSION);
    out.extend_from_slice(&value.offset.to_le_bytes());
    out.extend_from_slice(&value.leader_epoch.to_le_bytes());
    out.extend_from_slice(&value.commit_timestamp_ms.to_le_bytes());
    put_str(&mut out, "value", "metadata", &value.metadata)?;
    Ok(out)
}

/// Decodes a key written by [`encode_key`]. Any other bytes give an error, never a panic.
pub fn decode_key(bytes: &[u8]) -> Result<OffsetKey, OffsetRecordError> {
    let mut r = Reader::new(bytes, "key");
    r.version(OFFSET_KEY_VERSION)?;
    let group_id = r.string()?;
    let topic = r.string()?;
    let partition = u32::from_le_bytes(r.array()?);
    r.finish()?;
    Ok(OffsetKey {
        group_id,
        topic,
        partition,
    })
}

/// Decodes a value written by [`encode_value`].
pub fn decode_value(bytes: &[u8]) -> Result<CommittedOffset, OffsetRecordError> {
    let mut r = Reader::new(bytes, "value");
    r.version(OFFSET_VALUE_VERSION)?;
    let offset = u64::from_le_bytes(r.array()?);
    let leader_epoch = i32::from_le_bytes(r.array()?);
    let commit_timestamp_ms = i64::from_le_bytes(r.array()?);
    let metadata = r.string()?;
    r.finish()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// Builds one uncompressed record batch holding `records` in order, each record
/// timestamped `timestamp_ms`. `None` when there is nothing to append.
pub fn build_batch(
    records: &[OffsetRecord],
    timestamp_ms: i64,
) -> Result<Option<BytesMut>, OffsetRecordError> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut builder = BatchBuilder::new(timestamp_ms);
    for record in records {
        let key = encode_key(&record.key)?;
        let value = record.value.as_ref().map(encode_value).transpose()?;
        builder.push(timestamp_ms, Some(&key), value.as_deref(), &[]);
    }
    Ok(Some(builder.finish(ProducerStamp::NONE)))
}

/// Bytes a record adds to a batch beyond its key and value, at most: length varint (5),
/// attributes (1), timestamp delta (1, always 0 here), offset delta (5), key and value
/// lengths (3 each), header count (1).
const RECORD_OVERHEAD_BYTES_MAX: usize = 5 + 1 + 1 + 5 + 3 + 3 + 1;

/// Like [`build_batch`], but splits `records` (in order) into as many batches as needed
/// so that none exceeds `batch_bytes_max` (a single record larger than that still gets a
/// batch of its own). For tombstones, where all-or-nothing does not matter.
pub fn build_batches(
    records: &[OffsetRecord],
    timestamp_ms: i64,
    batch_bytes_max: usize,
) -> Result<Vec<BytesMut>, OffsetRecordError> {
    let mut batches = Vec::new();
    let mut builder = BatchBuilder::new(timestamp_ms);
    for record in records {
        let key = encode_key(&record.key)?;
        let value = record.value.as_ref().map(encode_value).transpose()?;
        let record_bytes =
            key.len() + value.as_ref().map_or(0, Vec::len) + RECORD_OVERHEAD_BYTES_MAX;
        if builder.record_count() > 0 && builder.size_bytes() + record_bytes > batch_bytes_max {
            let full = std::mem::replace(&mut builder, BatchBuilder::new(timestamp_ms));
            batches.push(full.finish(ProducerStamp::NONE));
        }
        builder.push(timestamp_ms, Some(&key), value.as_deref(), &[]);
    }
    if builder.record_count() > 0 {
        batches.push(builder.finish(ProducerStamp::NONE));
    }
    Ok(batches)
}

/// Decodes every record of one batch of the offsets topic (CRC checked first).
pub fn decode_batch(batch: &Bytes) -> Result<Vec<OffsetRecord>, OffsetRecordError> {
    let header = validate(batch, u32::MAX)?;
    let base_offset = header.base_offset();
    let records = decode_records(batch)?;
    let mut out = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let key = record
            .key
            .as_ref()
            .ok_or(OffsetRecordError::NullKey { base_offset, index })?;
        let key = decode_key(key)?;
        let value = record.value.as_deref().map(decode_value).transpose()?;
        out.push(OffsetRecord { key, value });
    }
    Ok(out)
}

/// Partition of `__consumer_offsets` that holds a group's offsets: Kafka's rule
/// (`abs(groupId.hashCode()) % partitions`, with Java's String hash over UTF-16 code
/// units), so a group lands where a Kafka cluster of the same size would put it.
pub fn offsets_partition_for(group_id: &str, partitions: u32) -> u32 {
    assert!(
        partitions > 0,
        "the offsets topic has at least one partition"
    );
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs as u32 % partitions
}

/// Committed offsets of every group, as of the last applied record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetStore {
    groups: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
}

impl OffsetStore {
    pub fn new() -> Self {
        OffsetStore::default()
    }

    /// Rebuilds a store from batches of the offsets topic, in log order.
    pub fn replay<'a>(
        batches: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<OffsetStore, OffsetRecordError> {
        let mut store = OffsetStore::new();
        for batch in batches {
            store.replay_batch(batch)?;
        }
        Ok(store)
    }

    /// Applies every record of one batch. On error nothing of this batch is applied.
    /// Returns the number of records applied.
    pub fn replay_batch(&mut self, batch: &Bytes) -> Result<usize, OffsetRecordError> {
        let records = decode_batch(batch)?;
        for record in &records {
            self.apply(record);
        }
        Ok(records.len())
    }

    /// Applies one record: last writer wins, a tombstone deletes.
    pub fn apply(&mut self, record: &OffsetRecord) {
        let tp = record.key.topic_partition();
        match &record.value {
            Some(value) => {
                self.groups
                    .entry(record.key.group_id.clone())
                    .or_default()
                    .insert(tp, value.clone());
            }
            None => {
                if let Some(offsets) = self.groups.get_mut(&record.key.group_id) {
                    offsets.remove(&tp);
                    if offsets.is_empty() {
                        self.groups.remove(&record.key.group_id);
                    }
                }
            }
        }
    }

    /// The records that commit `offsets` for `group_id` (what the server appends).
    pub fn commit_records(
        group_id: &str,
        offsets: impl IntoIterator<Item = (TopicPartition, CommittedOffset)>,
    ) -> Vec<OffsetRecord> {
        offsets
            .into_iter()
            .map(|(tp, value)| OffsetRecord {
                key: OffsetKey::new(group_id, &tp),
                value: Some(value),
            })
            .collect()
    }

    /// Tombstones for every offset `group_id` holds now (what deleting the group appends).
    pub fn tombstones_for_group(&self, group_id: &str) -> Vec<OffsetRecord> {
        self.group(group_id)
            .into_iter()
            .flat_map(|offsets| offsets.keys())
            .map(|tp| OffsetRecord {
                key: OffsetKey::new(group_id, tp),
                value: None,
            })
            .collect()
    }

    pub fn get(&self, group_id: &str, tp: &TopicPartition) -> Option<&CommittedOffset> {
        self.groups.get(group_id)?.get(tp)
    }

    /// Every committed offset of a group; `None` when it has none.
    pub fn group(&self, group_id: &str) -> Option<&BTreeMap<TopicPartition, CommittedOffset>> {
        self.groups.get(group_id)
    }

    /// Number of committed offsets a group holds.
    pub fn group_len(&self, group_id: &str) -> usize {
        self.groups.get(group_id).map_or(0, BTreeMap::len)
    }

    /// Groups that hold at least one committed offset, in id order.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Every (key, value) held, in key order; for tests and tools.
    pub fn iter(&self) -> impl Iterator<Item = (OffsetKey, &CommittedOffset)> {
        self.groups.iter().flat_map(|(group_id, offsets)| {
            offsets
                .iter()
                .map(move |(tp, value)| (OffsetKey::new(group_id, tp), value))
        })
    }
}

fn put_str(
    out: &mut Vec<u8>,
    what: &'static str,
    field: &'static str,
    s: &str,
) -> Result<(), OffsetRecordError> {
    let len = u16::try_from(s.len()).map_err(|_| OffsetRecordError::FieldTooLong {
        what,
        field,
        bytes: s.len(),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Bounds-checked little-endian reader: every read can fail, none can panic.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OffsetRecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(OffsetRecordError::Truncated {
                what: self.what,
                at: self.buf.len(),
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OffsetRecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn version(&mut self, expected: u8) -> Result<(), OffsetRecordError> {
        let [version] = self
            .array::<1>()
            .map_err(|_| OffsetRecordError::Missing { what: self.what })?;
        if version != expected {
            return Err(OffsetRecordError::UnknownVersion {
                what: self.what,
                version,
            });
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String, OffsetRecordError> {
        let len = u16::from_le_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| OffsetRecordError::NotUtf8 { what: self.what })
    }

    fn finish(&self) -> Result<(), OffsetRecordError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(OffsetRecordError::TrailingBytes {
                what: self.what,
                extra,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offset(offset: u64, metadata: &str) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: metadata.to_owned(),
            commit_timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn key_and_value_bytes_match_the_documented_layout() {
        let key = OffsetKey {
            group_id: "g".into(),
            topic: "t1".into(),
            partition: 7,
        };
        assert_eq!(
            encode_key(&key).expect("encodes"),
            [1, 1, 0, b'g', 2, 0, b't', b'1', 7, 0, 0, 0]
        );
        let value = CommittedOffset {
            offset: 0x0102,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms: 5,
        };
        let mut expected = vec![1, 2, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        expected.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 1, 0, b'm']);
        assert_eq!(encode_value(&value).expect("encodes"), expected);
    }

    #[test]
    fn decoders_name_what_is_wrong() {
        assert_eq!(
            decode_key(&[]),
            Err(OffsetRecordError::Missing { what: "key" })
        );
        assert_eq!(
            decode_key(&[2]),
            Err(OffsetRecordError::UnknownVersion {
                what: "key",
                version: 2
            })
        );
        assert!(matches!(
            decode_key(&[1, 5, 0, b'g']),
            Err(OffsetRecordError::Truncated { .. })
        ));
        assert!(matches!(
            decode_key(&[1, 1, 0, 0xff, 0, 0, 0, 0, 0, 0]),
            Err(OffsetRecordError::NotUtf8 { .. })
        ));
        let mut key = encode_key(&OffsetKey::new("g", &TopicPartition::new("t", 0))).expect("ok");
        key.push(0);
        assert_eq!(
            decode_key(&key),
            Err(OffsetRecordError::TrailingBytes {
                what: "key",
                extra: 1
            })
        );
    }

    #[test]
    fn oversized_fields_are_refused_not_truncated() {
        let long = "x".repeat(usize::from(u16::MAX) + 1);
        assert!(matches!(
            encode_value(&offset(1, &long)),
            Err(OffsetRecordError::FieldTooLong { .. })
        ));
    }

    #[test]
    fn replay_applies_commits_and_tombstones_in_order() {
        let tp = TopicPartition::new("t", 0);
        let mut records = OffsetStore::commit_records("g", [(tp.clone(), offset(5, "a"))]);
        records.extend(OffsetStore::commit_records(
            "g",
            [(tp.clone(), offset(9, "b"))],
        ));
        let first = build_batch(&records, 1)
            .expect("ok")
            .expect("some")
            .freeze();
        let mut store = OffsetStore::replay([&first]).expect("replays");
        assert_eq!(store.get("g", &tp), Some(&offset(9, "b")));
        let tombstones = store.tombstones_for_group("g");
        assert_eq!(tombstones.len(), 1);
        let second = build_batch(&tombstones, 2)
            .expect("ok")
            .expect("some")
            .freeze();
        store.replay_batch(&second).expect("replays");
        assert_eq!(store.group("g"), None);
        assert_eq!(build_batch(&[], 3).expect("ok"), None);
    }

    #[test]
    fn a_batch_with_a_bad_record_applies_nothing() {
        let mut b = BatchBuilder::new(0);
        let key = encode_key(&OffsetKey::new("g", &TopicPartition::new("t", 0))).expect("ok");
        b.push(
            0,
            Some(&key),
            Some(&encode_value(&offset(1, "")).expect("ok")),
            &[],
        );
        b.push(0, None, Some(b"x"), &[]);
        let batch = b.finish(ProducerStamp::NONE).freeze();
        let mut store = OffsetStore::new();
        assert_eq!(
            store.replay_batch(&batch),
            Err(OffsetRecordError::NullKey {
                base_offset: 0,
                index: 1
            })
        );
        assert_eq!(store, OffsetStore::new());
    }

    #[test]
    fn group_partition_matches_kafka() {
        // Java: "my-group".hashCode() == -1_906_497_762, so partition 12 of 50.
        assert_eq!(offsets_partition_for("my-group", 50), 12);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's abs gives 0.
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
        assert_eq!(offsets_partition_for("", 16), 0);
    }

    fn arb_string() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-c\u{e9}\u{1F600}]{0,6}").expect("regex")
    }

    fn arb_value() -> impl Strategy<Value = CommittedOffset> {
        (any::<u64>(), any::<i32>(), arb_string(), any::<i64>()).prop_map(
            |(offset, leader_epoch, metadata, commit_timestamp_ms)| CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp_ms,
            },
        )
    }

    proptest! {
        #[test]
        fn key_and_value_round_trip(group in arb_string(), topic in arb_string(),
                                    partition in any::<u32>(), value in arb_value()) {
            let key = OffsetKey { group_id: group, topic, partition };
            prop_assert_eq!(decode_key(&encode_key(&key).expect("fits")).expect("decodes"), key);
            prop_assert_eq!(decode_value(&encode_value(&value).expect("fits")).expect("decodes"), value);
        }

        /// Garbage never panics a decoder, whether raw or inside a valid batch.
        #[test]
        fn decoders_survive_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                    key in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = decode_key(&bytes);
            let _ = decode_value(&bytes);
            let _ = OffsetStore::new().replay_batch(&Bytes::from(bytes.clone()));
            let mut b = BatchBuilder::new(0);
            b.push(0, Some(&key), Some(&bytes), &[]);
            let _ = OffsetStore::new().replay_batch(&b.finish(ProducerStamp::NONE).freeze());
        }

        /// Random commits and tombstones, encoded in random batch sizes and replayed, give
        /// exactly the map a last-writer-wins model gives.
        #[test]
        fn replay_equals_the_model(
            ops in proptest::collection::vec((0usize..3, 0usize..2, 0u32..4, proptest::option::weighted(0.8, arb_value())), 1..60),
            batch_bytes_max in 64usize..2048,
        ) {
            let records: Vec<OffsetRecord> = ops.iter().map(|(g, t, p, value)| OffsetRecord {
                key: OffsetKey { group_id: format!("g{g}"), topic: format!("t{t}"), partition: *p },
                value: value.clone(),
            }).collect();
            let mut model: BTreeMap<OffsetKey, CommittedOffset> = BTreeMap::new();
            for r in &records {
                match &r.value {
                    Some(v) => { model.insert(r.key.clone(), v.clone()); }
                    None => { model.remove(&r.key); }
                }
            }
            let batches: Vec<Bytes> = build_batches(&records, 7, batch_bytes_max)
                .expect("fits").into_iter().map(BytesMut::freeze).collect();
            for b in &batches {
                // A batch only exceeds the bound when one record alone does.
                prop_assert!(b.len() <= batch_bytes_max || decode_batch(b).expect("valid").len() == 1);
            }
            let store = OffsetStore::replay(&batches).expect("replays");
            let replayed: BTreeMap<OffsetKey, CommittedOffset> =
                store.iter().map(|(k, v)| (k, v.clone())).collect();
            prop_assert_eq!(replayed, model);
            let single = build_batch(&records, 7).expect("fits").expect("non-empty").freeze();
            prop_assert_eq!(OffsetStore::replay([&single]).expect("replays"), store);
        }

        /// Every prefix of a valid key or value shorter than itself is refused.
        #[test]
        fn truncations_are_refused(group in arb_string(), value in arb_value(), cut in any::<usize>()) {
            let key = encode_key(&OffsetKey { group_id: group, topic: "t".into(), partition: 1 }).expect("fits");
            prop_assert!(decode_key(&key[..cut % key.len()]).is_err());
            let value = encode_value(&value).expect("fits");
            prop_assert!(decode_value(&value[..cut % value.len()]).is_err());
        }
    }
}
