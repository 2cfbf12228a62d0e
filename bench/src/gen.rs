//! What the producers send: record values (stamped with their intended send time) and
//! keys by distribution, lent to the producer's copying send. Pure and deterministic
//! for a seed.

use crate::constants::{STAMP_BYTES, ZIPF_TABLE_MAX};
use crate::workload::{KeyDistribution, Workload};

/// The client's xorshift64* generator: fast, good enough to pick sizes and keys.
pub use cfa_net::client::retry::XorShift as Rng;

/// Record values: a fixed pseudo-random payload (printable, so codecs see something like
/// text rather than zeros), lent as a slice: the producer copies it into a batch, so
/// nothing is allocated or reference-counted per record.
///
/// Stamped (a workload with consumers, which measure end-to-end latency): the first
/// `STAMP_BYTES` of each value carry its intended send time, written into one scratch
/// buffer that every value reuses. Unstamped (nobody reads the values): every value is a
/// slice of the one payload, as kafka-producer-perf-test and OMB send one payload over
/// and over; building a copy per record was ~6% of a max-rate run's CPU, work a real
/// producer's data arrives without.
pub struct Values {
    /// The payload: what unstamped values are slices of, and stamped ones copies of.
    template: Vec<u8>,
    stamped: bool,
    /// The stamped value being lent.
    scratch: Vec<u8>,
    size_min_bytes: usize,
    size_max_bytes: usize,
}

impl Values {
    pub fn new(size_min_bytes: usize, size_max_bytes: usize, seed: u64, stamped: bool) -> Values {
        assert!(size_min_bytes <= size_max_bytes);
        let mut rng = Rng::new(seed);
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.:-_ABCDEFGHIJ";
        let template: Vec<u8> = (0..size_max_bytes)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
            .collect();
        let scratch = if stamped {
            template.clone()
        } else {
            Vec::new()
        };
        Values {
            template,
            stamped,
            scratch,
            size_min_bytes,
            size_max_bytes,
        }
    }

    /// The next value's size.
    pub fn size(&self, rng: &mut Rng) -> usize {
        let span = (self.size_max_bytes - self.size_min_bytes) as u64;
        self.size_min_bytes
            + if span == 0 {
                0
            } else {
                rng.below(span + 1) as usize
            }
    }

    /// A value of `size` bytes; stamped values carry `stamp_ns` in their first bytes
    /// (when it fits). Valid until the next call.
    pub fn next(&mut self, size: usize, stamp_ns: u64) -> &[u8] {
        assert!(
            size <= self.size_max_bytes,
            "a value within the workload's sizes"
        );
        if !self.stamped {
            return &self.template[..size];
        }
        // The scratch buffer is the payload with a stamp over its head; past the stamp it
        // never changes.
        if size >= STAMP_BYTES {
            self.scratch[..STAMP_BYTES].copy_from_slice(&stamp_ns.to_le_bytes());
            &self.scratch[..size]
        } else {
            &self.template[..size]
        }
    }
}

/// The send stamp of a value, if it carries one.
pub fn stamp_of(value: &[u8]) -> Option<u64> {
    let head: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// Largest key table kept in memory; beyond it keys are formatted per record.
const KEY_TABLE_MAX: u64 = 100_000;

/// Keys by distribution.
pub struct Keys {
    distribution: KeyDistribution,
    key_count: u64,
    table: Vec<Vec<u8>>,
    /// Zipf: cumulative probabilities of ranks 1..=n.
    zipf_cdf: Vec<f64>,
    hot_percent: f64,
    /// The hot key's variants (compound keys `hot#0..`), used round-robin.
    hot_variants: Vec<Vec<u8>>,
    hot_next: usize,
    /// A key beyond the table, formatted for the record being sent.
    scratch: Vec<u8>,
}

impl Keys {
    pub fn new(w: &Workload) -> Keys {
        let table_len = match w.key_distribution {
            KeyDistribution::None | KeyDistribution::RoundRobin => 0,
            _ => w.key_count.min(KEY_TABLE_MAX),
        };
        let zipf_cdf = match w.key_distribution {
            KeyDistribution::Zipfian => zipf_cdf(w.key_count.min(ZIPF_TABLE_MAX), w.zipf_exponent),
            _ => Vec::new(),
        };
        let hot_variants = match (w.key_distribution, w.hot_key_spread) {
            (KeyDistribution::HotKey, 1) => vec![key_bytes(0)],
            (KeyDistribution::HotKey, n) => (0..n)
                .map(|i| format!("key-00000000#{i}").into_bytes())
                .collect(),
            _ => Vec::new(),
        };
        Keys {
            distribution: w.key_distribution,
            key_count: w.key_count,
            table: (0..table_len).map(key_bytes).collect(),
            zipf_cdf,
            hot_percent: w.hot_key_percent,
            hot_variants,
            hot_next: 0,
            scratch: Vec::new(),
        }
    }

    /// The next record's key (`None` for keyless distributions). Valid until the next
    /// call.
    pub fn next(&mut self, rng: &mut Rng) -> Option<&[u8]> {
        match self.distribution {
            KeyDistribution::None | KeyDistribution::RoundRobin => None,
            KeyDistribution::Uniform => Some(self.key(rng.below(self.key_count))),
            KeyDistribution::Zipfian => {
                let u = rng.unit();
                let rank = self.zipf_cdf.partition_point(|&c| c < u);
                Some(self.key(rank.min(self.zipf_cdf.len() - 1) as u64))
            }
            KeyDistribution::HotKey => {
                if rng.unit() * 100.0 < self.hot_percent {
                    self.hot_next = (self.hot_next + 1) % self.hot_variants.len();
                    Some(&self.hot_variants[self.hot_next])
                } else {
                    // The other keys, never the hot one.
                    let others = self.key_count.saturating_sub(1).max(1);
                    Some(self.key(1 + rng.below(others)))
                }
            }
        }
    }

    fn key(&mut self, n: u64) -> &[u8] {
        if let Some(k) = self.table.get(n as usize) {
            return k;
        }
        self.scratch.clear();
        write_key(&mut self.scratch, n);
        &self.scratch
    }
}

fn key_bytes(n: u64) -> Vec<u8> {
    let mut key = Vec::new();
    write_key(&mut key, n);
    key
}

fn write_key(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    write!(out, "key-{n:08}").expect("writing to a Vec cannot fail");
}

/// Cumulative Zipf probabilities for ranks 1..=n with exponent s.
fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn workload(extra: &str) -> Workload {
        let text = format!(
            "name = \"t\"\n[topics]\npartitions = 6\n[messages]\nsize_bytes = 64\n{extra}\n[producers]\ncount = 1\n"
        );
        Workload::parse(&text, "test", None).expect("valid workload")
    }

    fn counts(extra: &str, draws: usize) -> HashMap<Option<Vec<u8>>, usize> {
        let mut keys = Keys::new(&workload(extra));
        let mut rng = Rng::new(7);
        let mut out = HashMap::new();
        for _ in 0..draws {
            *out.entry(keys.next(&mut rng).map(<[u8]>::to_vec))
                .or_default() += 1;
        }
        out
    }

    #[test]
    fn values_carry_their_stamp_and_size() {
        let mut v = Values::new(8, 2000, 1, true);
        let mut rng = Rng::new(3);
        let mut sizes = Vec::new();
        for i in 0..2000u64 {
            let size = v.size(&mut rng);
            let value = v.next(size, i * 1000);
            assert_eq!(value.len(), size);
            assert_eq!(stamp_of(value), Some(i * 1000));
            sizes.push(size);
        }
        assert!(sizes.iter().any(|&s| s < 100) && sizes.iter().any(|&s| s > 1900));
        let mut tiny = Values::new(4, 4, 1, true);
        assert_eq!(
            stamp_of(tiny.next(4, 5)),
            None,
            "too short to carry a stamp"
        );
    }

    #[test]
    fn values_are_one_payload_with_or_without_a_stamp() {
        let mut stamped = Values::new(10, 1000, 7, true);
        let mut v = Values::new(10, 1000, 7, false);
        let mut rng = Rng::new(3);
        let first = v.next(10, 0).as_ptr();
        for i in 0..500u64 {
            let size = v.size(&mut rng);
            let value = v.next(size, i).to_vec();
            assert_eq!(value.len(), size);
            assert_eq!(v.next(10, i + 1).as_ptr(), first, "no copy");
            // The same text as a stamped value past its stamp, whatever came before.
            let s = stamped.next(size, i);
            assert_eq!(stamp_of(s), Some(i));
            assert_eq!(&value[STAMP_BYTES..], &s[STAMP_BYTES..]);
        }
    }

    #[test]
    fn keyless_distributions_have_no_keys() {
        assert_eq!(counts("key_distribution = \"none\"", 100).len(), 1);
        assert!(counts("key_distribution = \"round-robin\"", 100).contains_key(&None));
    }

    #[test]
    fn uniform_keys_cover_the_key_space_evenly() {
        let c = counts("key_distribution = \"uniform\"\nkey_count = 10", 100_000);
        assert_eq!(c.len(), 10);
        assert!(c.values().all(|&n| (9_000..11_000).contains(&n)), "{c:?}");
    }

    #[test]
    fn zipf_puts_the_most_weight_on_the_first_rank() {
        let c = counts(
            "key_distribution = \"zipfian\"\nkey_count = 100\nzipf_exponent = 1.0",
            100_000,
        );
        let first = c[&Some(key_bytes(0))];
        let second = c[&Some(key_bytes(1))];
        // Rank 1 has 1/H(100) = 19.3% of the mass, rank 2 half of that.
        assert!((17_000..22_000).contains(&first), "{first}");
        assert!(
            (first as f64 / second as f64 - 2.0).abs() < 0.3,
            "{first} {second}"
        );
    }

    #[test]
    fn hot_key_takes_its_share_and_spreads_when_asked() {
        let c = counts(
            "key_distribution = \"hot-key\"\nkey_count = 100\nhot_key_percent = 90",
            100_000,
        );
        let hot = c[&Some(key_bytes(0))];
        assert!((89_000..91_000).contains(&hot), "{hot}");
        let spread = counts(
            "key_distribution = \"hot-key\"\nkey_count = 100\nhot_key_percent = 90\nhot_key_spread = 3",
            90_000,
        );
        for i in 0..3 {
            let n = spread[&Some(format!("key-00000000#{i}").into_bytes())];
            assert!((26_000..28_000).contains(&n), "variant {i}: {n}");
        }
    }
}
