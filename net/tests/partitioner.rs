//! The client's partitioner: Kafka's murmur2 against published vectors, keyed placement,
//! and the keyless strategies (sticky, round-robin).

use std::collections::HashSet;
use std::num::NonZeroU32;

use cfa_net::client::partitioner::{
    choose_partition, murmur2, partition_for_key, to_positive, Keyless, KeylessPartitioner,
    KeylessStrategy, RoundRobin, StickyPartitioner,
};
use proptest::prelude::*;

fn n(count: u32) -> NonZeroU32 {
    NonZeroU32::new(count).expect("non-zero")
}

/// Apache Kafka's own vectors: `UtilsTest.testMurmur2`,
/// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
/// (apache/kafka, e.g. commit f55581dc73953c3509a4702433aeeeddc2970779).
const KAFKA_UTILS_TEST: &[(&[u8], i32)] = &[
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58897971,
    ),
    (b"abc", 479470107),
];

/// librdkafka's `unittest_murmur2` in src/rdmurmur2.c (confluentinc/librdkafka, commit
/// 6cbbd2f7aee9cad3be4aea2c169f12b5b3d787b0), "java_murmur2_results": Java's signed
/// results written as hex. Covers every tail length and the empty key.
const LIBRDKAFKA: &[(&[u8], u32)] = &[
    (b"kafka", 0xd067cf64),
    (b"giberish123456789", 0x8f552b0c),
    (b"1234", 0x9fc97b14),
    (b"234", 0xe7c009ca),
    (b"34", 0x873930da),
    (b"4", 0x5a4b5ca1),
    (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
    (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
    (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e),
    (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f),
    (b"", 0x106e08d9),
];

/// KafkaJS's Java-compatible partitioner test, src/producer/partitioners/defaultJava/
/// murmur2.spec.js (tulios/kafkajs), values printed by Kafka's Utils.murmur2 through its
/// Test.java.
const KAFKAJS_JAVA: &[(&[u8], i32)] = &[
    (b"0", 971027396),
    (b"1", -1993445489),
    (b"128", -326012175),
    (b"2187", -1508407203),
    (b"16384", -325739742),
    (b"78125", -1654490814),
    (b"279936", 1462227128),
    (b"823543", -2014198330),
    (b"2097152", 607668903),
    (b"4782969", -1182699775),
    (b"10000000", -1830336757),
    (b"19487171", -1603849305),
    (b"35831808", -857013643),
    (b"62748517", -1167431028),
    (b"105413504", -381294639),
    (b"170859375", -1658323481),
    (b"100:48069", 1009543857),
];

#[test]
fn murmur2_matches_kafka_utils_test() {
    for (key, want) in KAFKA_UTILS_TEST {
        assert_eq!(murmur2(key), *want, "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn murmur2_matches_librdkafka_java_results() {
    for (key, want) in LIBRDKAFKA {
        assert_eq!(
            murmur2(key),
            *want as i32,
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn murmur2_matches_kafkajs_java_values() {
    for (key, want) in KAFKAJS_JAVA {
        assert_eq!(murmur2(key), *want, "{}", String::from_utf8_lossy(key));
    }
}

/// Placement by key, from the Go client movio/go-kafka's partitioner/murmur2_test.go:
/// toPositive(murmur2(key)) and the partition for 2, 3, 100 and 999 partitions. "⌘" is
/// three bytes above 0x7f, so Java's sign-extended bytes (`& 0xff`) are exercised too.
#[test]
fn keys_land_where_kafka_puts_them() {
    let cases: &[(&str, u32, [u32; 4])] = &[
        ("", 275646681, [1, 0, 81, 603]),
        ("⌘", 39915425, [1, 2, 25, 380]),
        ("oh no", 939168436, [0, 1, 36, 544]),
        (
            "c03a3475-3ed6-4ed1-8ae5-1c432da43e73",
            376769867,
            [1, 2, 67, 14],
        ),
    ];
    for (key, positive, partitions) in cases {
        assert_eq!(to_positive(murmur2(key.as_bytes())), *positive, "{key}");
        for (count, want) in [2, 3, 100, 999].into_iter().zip(partitions) {
            assert_eq!(
                partition_for_key(key.as_bytes(), n(count)),
                *want,
                "{key} over {count}"
            );
        }
    }
    // Kafka's vector "foobar": toPositive(-790332482) = 1357151166, and 1357151166 % 50.
    assert_eq!(partition_for_key(b"foobar", n(50)), 16);
    assert_eq!(partition_for_key(b"foobar", n(1)), 0);
}

#[test]
fn to_positive_clears_the_sign_bit_like_java() {
    assert_eq!(to_positive(-1), 0x7fff_ffff);
    assert_eq!(to_positive(i32::MIN), 0);
    assert_eq!(to_positive(i32::MAX), 0x7fff_ffff);
    assert_eq!(to_positive(-790332482), 1357151166);
}

/// A literal transcription of Kafka's Java, in i32 with `>>>` as a shift of the u32 bits,
/// to compare against on random input (every length and tail).
fn java_murmur2(data: &[u8]) -> i32 {
    let length = data.len() as i32;
    let seed = 0x9747b28c_u32 as i32;
    let m: i32 = 0x5bd1e995;
    let r = 24;
    let ushr = |x: i32, s: u32| ((x as u32) >> s) as i32;
    let byte = |i: usize| i32::from(data[i]) & 0xff;
    let mut h = seed ^ length;
    let length4 = length / 4;
    for i in 0..length4 as usize {
        let i4 = i * 4;
        let mut k = byte(i4)
            .wrapping_add(byte(i4 + 1) << 8)
            .wrapping_add(byte(i4 + 2) << 16)
            .wrapping_add(byte(i4 + 3) << 24);
        k = k.wrapping_mul(m);
        k ^= ushr(k, r);
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let base = (length & !3) as usize;
    let rem = length % 4;
    if rem >= 3 {
        h ^= byte(base + 2) << 16;
    }
    if rem >= 2 {
        h ^= byte(base + 1) << 8;
    }
    if rem >= 1 {
        h ^= byte(base);
        h = h.wrapping_mul(m);
    }
    h ^= ushr(h, 13);
    h = h.wrapping_mul(m);
    h ^= ushr(h, 15);
    h
}

proptest! {
    #[test]
    fn partition_for_key_is_always_in_range(
        key in proptest::collection::vec(any::<u8>(), 0..200),
        count in 1u32..=u32::MAX,
    ) {
        let p = partition_for_key(&key, n(count));
        prop_assert!(p < count);
        prop_assert!(p <= 0x7fff_ffff);
        prop_assert_eq!(p, partition_for_key(&key, n(count)), "stable");
    }

    #[test]
    fn murmur2_equals_the_java_transcription(key in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(murmur2(&key), java_murmur2(&key));
    }

    /// Keyless partitioners only ever pick an available partition (or, with none
    /// available, any partition of the topic).
    #[test]
    fn keyless_picks_stay_in_range(
        ops in proptest::collection::vec((any::<bool>(), any::<u32>()), 1..200),
        count in 1u32..50,
        available_mask in any::<u64>(),
        sticky in any::<bool>(),
        start in any::<u32>(),
    ) {
        let available: Vec<u32> = (0..count).filter(|p| available_mask >> p & 1 == 1).collect();
        let strategy = if sticky { KeylessStrategy::Sticky } else { KeylessStrategy::RoundRobin };
        let mut keyless = Keyless::new(strategy, start);
        for (complete, _) in ops {
            let p = keyless.partition(&available, n(count));
            prop_assert!(p < count);
            prop_assert!(available.is_empty() || available.contains(&p));
            if complete {
                keyless.batch_completed(p);
            }
        }
    }
}

/// A deterministic xorshift64* generator: the spread test is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_keys_spread_over_every_partition() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for count in [3u32, 7, 64, 1000] {
        let keys = 200 * count as usize;
        let mut hits = vec![0u32; count as usize];
        for _ in 0..keys {
            // 4 bytes and up: shorter keys repeat (one empty key, 256 one-byte keys), and
            // a repeated key lands on its partition every time.
            let len = 4 + (rng.next() % 36) as usize;
            let key: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            hits[partition_for_key(&key, n(count)) as usize] += 1;
        }
        // 200 keys expected per partition; a binomial spread keeps every partition far
        // inside [100, 300] (more than 7 standard deviations either way).
        let (min, max) = (hits.iter().min(), hits.iter().max());
        assert!(
            min >= Some(&100) && max <= Some(&300),
            "{count} partitions: {min:?}..{max:?}"
        );
    }
    // Sequential keys such as "user-0".."user-9999" spread as well.
    let mut hits = [0u32; 12];
    for i in 0..12_000 {
        hits[partition_for_key(format!("user-{i}").as_bytes(), n(12)) as usize] += 1;
    }
    assert!(hits.iter().all(|h| (700..=1300).contains(h)), "{hits:?}");
}

#[test]
fn sticky_stays_until_its_batch_completes_then_moves_round_robin() {
    let available = [0, 1, 2, 3];
    let mut s = StickyPartitioner::new(0);
    assert_eq!(s.current(), None);
    let mut order = Vec::new();
    for _ in 0..6 {
        let p = s.partition(&available, n(4));
        for _ in 0..50 {
            assert_eq!(s.partition(&available, n(4)), p, "sticks");
        }
        assert_eq!(s.current(), Some(p));
        order.push(p);
        s.batch_completed(p);
    }
    assert_eq!(order, [0, 1, 2, 3, 0, 1]);
}

#[test]
fn sticky_ignores_completions_of_other_partitions() {
    let mut s = StickyPartitioner::new(5);
    let p = s.partition(&[], n(8));
    assert_eq!(p, 5);
    s.batch_completed(2); // a keyed batch on partition 2 completed
    assert_eq!(s.partition(&[], n(8)), 5);
    s.batch_completed(5);
    assert_eq!(s.partition(&[], n(8)), 6);
}

#[test]
fn sticky_only_uses_available_partitions_and_leaves_one_that_loses_its_leader() {
    let mut s = StickyPartitioner::new(0);
    let p = s.partition(&[1, 4, 6], n(8));
    assert_eq!(p, 1);
    // partition 1 loses its leader: move on without waiting for the batch
    let q = s.partition(&[4, 6], n(8));
    assert!(q == 4 || q == 6, "{q}");
    // the list is reordered but still holds q: stay
    assert_eq!(s.partition(&[6, 4], n(8)), q);
    // the topic shrinks under it (metadata of a recreated topic): move to a valid one
    let mut t = StickyPartitioner::new(7);
    assert_eq!(t.partition(&[], n(8)), 7);
    assert!(t.partition(&[], n(4)) < 4);
}

#[test]
fn sticky_never_picks_the_same_partition_twice_in_a_row_when_it_can_move() {
    let mut s = StickyPartitioner::new(0);
    let mut last = None;
    // the available list changes between batches so the cursor alone would repeat
    let lists: [&[u32]; 6] = [&[0, 1], &[1, 0], &[0, 1, 2], &[2], &[2, 3], &[3, 2]];
    for list in lists.iter().cycle().take(60) {
        let p = s.partition(list, n(4));
        if list.len() > 1 {
            assert_ne!(Some(p), last, "repeated {p} with {list:?} available");
        }
        s.batch_completed(p);
        last = Some(p);
    }
    // a single available partition is reused, batch after batch
    let mut one = StickyPartitioner::new(3);
    for _ in 0..5 {
        assert_eq!(one.partition(&[2], n(4)), 2);
        one.batch_completed(2);
    }
}

#[test]
fn sticky_spreads_batches_evenly() {
    let available: Vec<u32> = (0..10).collect();
    let mut s = StickyPartitioner::new(123);
    let mut batches = vec![0u32; 10];
    for _ in 0..1000 {
        let p = s.partition(&available, n(10));
        batches[p as usize] += 1;
        s.batch_completed(p);
    }
    assert!(batches.iter().all(|b| *b == 100), "{batches:?}");
}

#[test]
fn round_robin_moves_every_record_over_available_partitions() {
    let mut r = RoundRobin::new(0);
    let picks: Vec<u32> = (0..7).map(|_| r.partition(&[2, 0, 1], n(3))).collect();
    assert_eq!(picks, [2, 0, 1, 2, 0, 1, 2]);
    r.batch_completed(2); // no effect
    let mut r = RoundRobin::new(0);
    let mut hits = [0u32; 5];
    for _ in 0..100 {
        hits[r.partition(&[0, 3], n(5)) as usize] += 1;
    }
    assert_eq!(hits, [50, 0, 0, 50, 0]);
    // nothing available: every partition in turn
    let mut r = RoundRobin::new(u32::MAX - 1);
    let picks: HashSet<u32> = (0..6).map(|_| r.partition(&[], n(3))).collect();
    assert_eq!(picks.len(), 3);
}

#[test]
fn keyed_records_hash_over_all_partitions_keyless_ask_the_partitioner() {
    let mut keyless = Keyless::new(KeylessStrategy::default(), 0);
    // "foobar" goes to 16 of 50 even when 16 has no leader: a key never moves.
    assert_eq!(
        choose_partition(Some(b"foobar"), &mut keyless, &[0, 1], n(50)),
        16
    );
    // an empty key is a key, not a keyless record
    assert_eq!(
        choose_partition(Some(b""), &mut keyless, &[0, 1], n(100)),
        81
    );
    let p = choose_partition(None, &mut keyless, &[0, 1], n(50));
    assert!(p == 0 || p == 1);
    assert_eq!(choose_partition(None, &mut keyless, &[0, 1], n(50)), p);
}

#[test]
#[should_panic(expected = "available partition 9 of a topic with 4 partitions")]
fn contradictory_metadata_is_an_assertion() {
    RoundRobin::new(0).partition(&[9], n(4));
}
