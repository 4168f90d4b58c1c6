//! Key distributions of generated records: `uniform` or `zipf:S` over the keys `0..K`.

use naas_stdx::Rng;

use super::error::{quote, DistError};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Dist {
    Uniform,
    /// Key `k` (0-based rank) drawn with probability proportional to `1 / (k + 1)^s`.
    Zipf(f64),
}

impl Dist {
    /// Parses `uniform` or `zipf:1.1` (the exponent must be finite and positive).
    pub fn parse(text: &str) -> Result<Dist, DistError> {
        // The text is a flag's value and may be very long; messages show its start.
        let shown = || quote(text).into_owned();
        match text.trim().split_once(':') {
            None if text.trim() == "uniform" => Ok(Dist::Uniform),
            Some(("zipf", s)) => match s.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Ok(Dist::Zipf(s)),
                _ => Err(DistError::ZipfExponent { text: shown(), exponent: quote(s).into_owned() }),
            },
            _ => Err(DistError::Unknown { text: shown() }),
        }
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dist::Uniform => f.write_str("uniform"),
            Dist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// The largest key space whose zipf distribution [`KeySampler`] keeps as a table (512 KiB of
/// cumulative probabilities); larger ones are sampled without a table.
pub const MAX_ZIPF_TABLE_KEYS: u32 = 1 << 16;

/// Draws keys from a distribution over `0..keys`. Its memory does not depend on `keys`
/// beyond [`MAX_ZIPF_TABLE_KEYS`]: a key space is a flag (up to 2^32 - 1 keys), and a table
/// of it would cost 8 bytes per key however few records are drawn.
#[derive(Clone, Debug)]
pub struct KeySampler {
    keys: u32,
    method: Method,
}

#[derive(Clone, Debug)]
enum Method {
    Uniform,
    /// Zipf by inverse transform over the cumulative distribution (exact, one binary search
    /// per key), for key spaces up to [`MAX_ZIPF_TABLE_KEYS`].
    Table(Vec<f64>),
    /// Zipf by rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate
    /// variates from monotone discrete distributions", 1996), as Apache Commons RNG's
    /// `RejectionInversionZipfSampler` does it: constant memory and expected time for any
    /// exponent and key space.
    Rejection(ZipfRejection),
}

impl KeySampler {
    pub fn new(dist: Dist, keys: u32) -> KeySampler {
        let keys = keys.max(1);
        let method = match dist {
            Dist::Uniform => Method::Uniform,
            Dist::Zipf(s) if keys <= MAX_ZIPF_TABLE_KEYS => {
                let mut total = 0.0;
                let mut cdf: Vec<f64> = (0..keys)
                    .map(|k| {
                        total += 1.0 / f64::from(k + 1).powf(s);
                        total
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= total;
                }
                Method::Table(cdf)
            }
            Dist::Zipf(s) => Method::Rejection(ZipfRejection::new(s, keys)),
        };
        KeySampler { keys, method }
    }

    pub fn sample(&self, rng: &mut Rng) -> u32 {
        match &self.method {
            Method::Uniform => (rng.next_u64() % u64::from(self.keys)) as u32,
            Method::Table(cdf) => {
                let u = unit(rng);
                (cdf.partition_point(|c| *c < u) as u32).min(self.keys - 1)
            }
            Method::Rejection(zipf) => zipf.sample(rng) - 1,
        }
    }
}

/// A uniform number in `[0, 1)` with 53 random bits.
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The constants of rejection-inversion sampling of ranks `1..=n` with probability
/// proportional to `rank^-s`. `h(x) = x^-s` bounds the probabilities from above by the area
/// under it, `h_integral` is an antiderivative; a uniform draw over the area, inverted,
/// gives a candidate rank, accepted unless it falls in the gap between the area and the bar.
#[derive(Clone, Debug)]
struct ZipfRejection {
    s: f64,
    n: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    /// Candidates within this distance of their rank are accepted without a test.
    squeeze: f64,
}

impl ZipfRejection {
    fn new(s: f64, n: u32) -> ZipfRejection {
        let mut zipf = ZipfRejection { s, n: f64::from(n), h_integral_x1: 0.0, h_integral_n: 0.0, squeeze: 0.0 };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(f64::from(n) + 0.5);
        zipf.squeeze = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// A rank in `1..=n`. Each round accepts with probability above one half for every
    /// exponent, so the expected number of rounds is below two; the bound on rounds only
    /// guards against a floating-point corner, and takes the last candidate.
    fn sample(&self, rng: &mut Rng) -> u32 {
        let mut rank = 1.0;
        for _ in 0..1_000 {
            let u = self.h_integral_n + unit(rng) * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            rank = (x + 0.5).floor().clamp(1.0, self.n);
            if rank - x <= self.squeeze || u >= self.h_integral(rank + 0.5) - self.h(rank) {
                break;
            }
        }
        rank as u32
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `(x^(1-s) - 1) / (1 - s)`, and `ln x` at `s = 1`, computed stably near `s = 1`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, and its Taylor series near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, and its Taylor series near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(Dist::parse("uniform").unwrap(), Dist::Uniform);
        assert_eq!(Dist::parse("zipf:1.1").unwrap(), Dist::Zipf(1.1));
        assert!(Dist::parse("zipf:-1").unwrap_err().to_string().contains("positive number"));
        assert!(Dist::parse("zipf:x").unwrap_err().to_string().contains("positive number"));
        assert!(Dist::parse("normal").unwrap_err().to_string().contains("expected `uniform` or `zipf:S`"));
    }

    #[test]
    fn zipf_favours_small_ranks() {
        let sampler = KeySampler::new(Dist::Zipf(1.2), 100);
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 100];
        for _ in 0..10_000 {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[99]);
    }

    /// A key space of 2^32 - 1 keys (the largest `--keys`) is sampled in constant memory,
    /// for every exponent (including 1, where the area under `x^-s` is a logarithm), and
    /// every key is in range.
    #[test]
    fn zipf_over_huge_key_spaces_needs_no_table() {
        for s in [0.01, 0.5, 0.999_999_999, 1.0, 1.1, 2.0, 40.0] {
            let sampler = KeySampler::new(Dist::Zipf(s), u32::MAX);
            assert!(matches!(sampler.method, Method::Rejection(_)));
            let mut rng = Rng::new(3);
            for _ in 0..2_000 {
                assert!(sampler.sample(&mut rng) < u32::MAX);
            }
        }
        let sampler = KeySampler::new(Dist::Zipf(1.1), 1 << 20);
        let mut rng = Rng::new(5);
        let zeros = (0..20_000).filter(|_| sampler.sample(&mut rng) == 0).count();
        // P(rank 1) = 1 / H(2^20, 1.1), about 0.1 (H is about 9.4).
        assert!((1_600..2_600).contains(&zeros), "{zeros}");
    }

    /// Rejection-inversion draws the same distribution as the table: compared on a key space
    /// small enough for both, the frequencies of the first ranks agree within sampling error.
    #[test]
    fn rejection_matches_the_table() {
        for s in [0.7, 1.0, 1.3] {
            let table = KeySampler::new(Dist::Zipf(s), 1_000);
            let rejection = KeySampler { keys: 1_000, method: Method::Rejection(ZipfRejection::new(s, 1_000)) };
            let count = |sampler: &KeySampler, seed: u64| {
                let mut rng = Rng::new(seed);
                let mut counts = [0u32; 4];
                for _ in 0..40_000 {
                    let key = sampler.sample(&mut rng) as usize;
                    if key < 4 {
                        counts[key] += 1;
                    }
                }
                counts
            };
            let (a, b) = (count(&table, 1), count(&rejection, 2));
            for (x, y) in a.iter().zip(&b) {
                let (x, y) = (f64::from(*x), f64::from(*y));
                assert!((x - y).abs() <= 5.0 * x.sqrt().max(10.0), "s={s}: {a:?} vs {b:?}");
            }
        }
    }
}
