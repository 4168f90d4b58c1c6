//! Register words and packet fields as the simulators store them: [`Word`] is `u32` where a
//! profile's words and keys fit 32 bits (half the memory and cache lines) and `u64` otherwise,
//! with the helpers both simulators share (widening a run of words, cache-line-aligned
//! buffers). The pipeline simulator's tables and the network simulator's packets use them.

use crate::profile::TargetProfile;

/// A register word or packet field as the simulators store it: `u32` when every value fits
/// 32 bits (see [`fits_u32`]), else `u64`. Tables and packets of 32-bit words take half the
/// memory, and so half the cache lines, of 64-bit ones.
pub trait Word: Copy + Default + std::fmt::Debug + 'static {
    /// Words in a cache line.
    const PER_LINE: usize = 64 / std::mem::size_of::<Self>();

    fn get(self) -> u64;
    /// `x` as a field; `x` must fit (the caller chose the width from the profile).
    fn narrow(x: u64) -> Self;
    /// `x` as a field, if it fits.
    fn try_narrow(x: u64) -> Option<Self>;
}

/// Whether a program on `profile` can keep its registers and packet fields in `u32`s: its
/// register words are at most 32 bits wide and its keys, stored plus one, fit 32 bits (what
/// [`TargetProfile::validate`] guarantees of a valid profile).
pub fn fits_u32(profile: &TargetProfile) -> bool {
    profile.register_word_bits <= 32 && profile.max_key() < u64::from(u32::MAX)
}

/// Appends `words` to `out` as 64-bit values.
pub(crate) fn widen_into<W: Word>(words: &[W], out: &mut Vec<u64>) {
    out.extend(words.iter().map(|word| word.get()));
}

/// Zeroed room for `words` words, and where in it the first cache-line-aligned word is (the
/// vector has a cache line of slack for that: `words + W::PER_LINE` words in all).
pub(crate) fn line_aligned<W: Word>(words: usize) -> (Vec<W>, usize) {
    let vec = vec![W::default(); words + W::PER_LINE];
    let misalignment = (vec.as_ptr() as usize / std::mem::size_of::<W>()) % W::PER_LINE;
    (vec, (W::PER_LINE - misalignment) % W::PER_LINE)
}

impl Word for u64 {
    #[inline(always)]
    fn get(self) -> u64 {
        self
    }

    #[inline(always)]
    fn narrow(x: u64) -> u64 {
        x
    }

    fn try_narrow(x: u64) -> Option<u64> {
        Some(x)
    }
}

impl Word for u32 {
    #[inline(always)]
    fn get(self) -> u64 {
        u64::from(self)
    }

    #[inline(always)]
    fn narrow(x: u64) -> u32 {
        debug_assert!(x <= u64::from(u32::MAX), "{x} does not fit a 32-bit field");
        x as u32
    }

    fn try_narrow(x: u64) -> Option<u32> {
        u32::try_from(x).ok()
    }
}
