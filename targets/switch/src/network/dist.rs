//! Key distributions of generated records: `uniform` or `zipf:S` over the keys `0..K`.

use naas_ir::laws::Rng;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Dist {
    Uniform,
    /// Key `k` (0-based rank) drawn with probability proportional to `1 / (k + 1)^s`.
    Zipf(f64),
}

impl Dist {
    /// Parses `uniform` or `zipf:1.1` (the exponent must be finite and positive).
    pub fn parse(text: &str) -> Result<Dist, String> {
        match text.trim().split_once(':') {
            None if text.trim() == "uniform" => Ok(Dist::Uniform),
            Some(("zipf", s)) => match s.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Ok(Dist::Zipf(s)),
                _ => Err(format!(
                    "invalid distribution `{text}`: the zipf exponent must be a positive number, found `{s}`"
                )),
            },
            _ => Err(format!("invalid distribution `{text}`: expected `uniform` or `zipf:S` (e.g. `zipf:1.1`)")),
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

/// Draws keys from a distribution over `0..keys`.
#[derive(Clone, Debug)]
pub struct KeySampler {
    keys: u32,
    /// The cumulative distribution for zipf; empty for uniform.
    cdf: Vec<f64>,
}

impl KeySampler {
    pub fn new(dist: Dist, keys: u32) -> KeySampler {
        let keys = keys.max(1);
        let cdf = match dist {
            Dist::Uniform => Vec::new(),
            Dist::Zipf(s) => {
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
                cdf
            }
        };
        KeySampler { keys, cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> u32 {
        if self.cdf.is_empty() {
            return (rng.next_u64() % u64::from(self.keys)) as u32;
        }
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (self.cdf.partition_point(|c| *c < u) as u32).min(self.keys - 1)
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
        assert!(Dist::parse("zipf:-1").unwrap_err().contains("positive number"));
        assert!(Dist::parse("zipf:x").unwrap_err().contains("positive number"));
        assert!(Dist::parse("normal").unwrap_err().contains("expected `uniform` or `zipf:S`"));
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
}
