//! The process's allocator settings.

/// Allocations of at least this many bytes get pages of their own (glibc's `mmap`), which go
/// back to the system when they are freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const OWN_PAGES_FROM: usize = 4 << 20;

/// Fixes glibc's threshold for allocations that get their own pages.
///
/// By default glibc raises that threshold to the size of any such block freed (up to 32 MiB),
/// so that after a job's large tables grow and free their old halves, later large buffers
/// (results, sorted runs) come from the per-thread heaps, and stay counted in the process's
/// memory after they are freed. `naasc run` with a million keys peaked about 35 MB higher
/// with the default (265 against 299 MiB, measured side by side, the same time). A fixed
/// 4 MiB keeps the blocks of input (1 MiB) and the batches reusing heap memory.
pub fn fix_large_allocation_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    set_mmap_threshold(OWN_PAGES_FROM);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "mallopt has no safe wrapper; it only sets an allocator parameter")]
fn set_mmap_threshold(bytes: usize) {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` reads its two integers and changes a setting of the allocator; it is
    // called before any other thread starts. A refusal (0) leaves glibc's default, which is
    // only about memory, never about results.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, value);
    }
}
