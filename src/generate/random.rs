//! Seeded randomness: one independent stream per purpose and index (so a
//! conversation's content does not depend on how many came before it),
//! the distributions the generator draws from, and ids.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub(super) const STREAM_GAPS: u64 = 1;
pub(super) const STREAM_CONTENT: u64 = 2;
pub(super) const STREAM_PERTURB: u64 = 3;
pub(super) const STREAM_FORMAT: u64 = 4;
pub(super) const STREAM_RECORDS: u64 = 5;
pub(super) const STREAM_POOLS: u64 = 6;
pub(super) const STREAM_CUSTOMER: u64 = 7;

pub(super) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn rng_for(seed: u64, stream: u64, idx: u64) -> SmallRng {
    SmallRng::seed_from_u64(splitmix(splitmix(seed ^ splitmix(stream)) ^ idx))
}

/// A bijection on 48-bit values (odd multiplications and xor-shifts), so
/// distinct indexes give distinct, random-looking id tails.
pub(super) fn permute48(x: u64) -> u64 {
    const M: u64 = 0xFFFF_FFFF_FFFF;
    let mut x = x & M;
    x = x.wrapping_mul(0x9E37_79B9_7F4B) & M;
    x ^= x >> 23;
    x = x.wrapping_mul(0xC2B2_AE3D_27D5) & M;
    x ^= x >> 21;
    x
}

pub(super) fn chance(r: &mut SmallRng, p: f64) -> bool {
    r.gen::<f64>() < p
}

pub(super) fn uni(r: &mut SmallRng, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        lo
    } else {
        r.gen_range(lo..=hi)
    }
}

/// Log-normal duration with the given median, clamped to `[lo, hi]`.
pub(super) fn lognorm(r: &mut SmallRng, median: f64, sigma: f64, lo: i64, hi: i64) -> i64 {
    let u1 = r.gen::<f64>().max(1e-12);
    let u2 = r.gen::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    ((median * (sigma * z).exp()) as i64).clamp(lo, hi.max(lo))
}

pub(super) fn gap(r: &mut SmallRng, mean: i64) -> i64 {
    if mean <= 0 {
        return 0;
    }
    let u = r.gen::<f64>();
    (-(1.0 - u).ln() * mean as f64).round() as i64
}

pub(super) fn pick<'a, T>(r: &mut SmallRng, v: &'a [T]) -> &'a T {
    &v[r.gen_range(0..v.len())]
}

pub(super) fn uuid_str(r: &mut SmallRng) -> String {
    let b: [u8; 16] = r.gen();
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn id_tails_are_a_bijection() {
        let tails: HashSet<u64> = (0..200_000u64).map(permute48).collect();
        assert_eq!(tails.len(), 200_000);
        assert!(tails.iter().all(|t| *t <= 0xFFFF_FFFF_FFFF));
        // Neighbouring indexes do not give neighbouring tails.
        assert!((permute48(1) as i64 - permute48(2) as i64).abs() > 1 << 20);
    }
}
