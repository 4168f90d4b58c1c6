//! A cache hint: loading a cache line before it is needed, so that independent lookups into a
//! large table (a switch's slot table, a state table's key index) overlap their misses.

/// A hint to load the cache line holding `value` (no effect but timing, and none where the
/// target has no stable prefetch instruction).
#[inline(always)]
#[allow(unsafe_code, reason = "the prefetch intrinsic is unsafe to call; it cannot fault or change memory")]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads nothing architecturally and never faults, whatever the address;
    // this one comes from a live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetching_changes_nothing() {
        let values = vec![7u64; 1024];
        for value in &values {
            super::prefetch(value);
        }
        assert!(values.iter().all(|&v| v == 7));
    }
}
