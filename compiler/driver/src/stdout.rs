//! Writing to standard output so that failures are seen: Rust's `print!` silently drops
//! output when descriptor 1 is closed (it treats `EBADF` as success) and panics on any other
//! error. Commands write their results through [`write_all`] instead, which reports a closed
//! or failing stdout (exit 1) and ends quietly when a reader that has seen enough closes a
//! pipe (`naasc run ... | head -1`), as other Unix tools do.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::Exit;

/// Descriptor 1 was closed when `naasc` started.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Notes whether stdout was closed when `naasc` started. Call once, first thing in `main`.
///
/// Rust's runtime reopens a closed standard descriptor on `/dev/null` before `main`, read and
/// write (`O_RDWR`), so that no file the program opens takes its number; writes then vanish
/// without an error. A shell's `>/dev/null` opens it write-only, so a read-write `/dev/null`
/// on descriptor 1 is the runtime's stand-in for a closed stdout.
pub fn guard_standard_streams() {
    let closed = std::io::stdout().as_fd().try_clone_to_owned().is_err() || stdout_is_runtime_stand_in();
    STDOUT_CLOSED.store(closed, Ordering::Relaxed);
}

/// Whether descriptor 1 is `/dev/null` opened read-write (Linux's `/proc` tells; elsewhere
/// this answers no).
fn stdout_is_runtime_stand_in() -> bool {
    let Ok(target) = std::fs::read_link("/proc/self/fd/1") else { return false };
    if target != std::path::Path::new("/dev/null") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else { return false };
    let flags = info.lines().find_map(|line| line.strip_prefix("flags:")).map(str::trim);
    // The access mode is the low two bits of the octal flags: 2 is O_RDWR.
    flags.and_then(|f| u32::from_str_radix(f, 8).ok()).is_some_and(|flags| flags & 0o3 == 0o2)
}

/// Why standard output could not take the results.
#[derive(Debug)]
pub enum StdoutError {
    /// Descriptor 1 was closed when `naasc` started (`naasc run ... >&-`).
    Closed,
    /// The reader closed its end of a pipe: it has all it wants.
    ReaderGone,
    /// Any other write error (a full disk, an I/O error).
    Failed(std::io::Error),
}

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdoutError::Closed => f.write_str("standard output is closed"),
            StdoutError::ReaderGone => f.write_str("the reader of standard output closed the pipe"),
            StdoutError::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl From<std::io::Error> for StdoutError {
    fn from(error: std::io::Error) -> StdoutError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            StdoutError::ReaderGone
        } else {
            StdoutError::Failed(error)
        }
    }
}

impl StdoutError {
    /// Prints the error (unless the reader is simply done) and gives the exit code: a reader
    /// that closed the pipe ends the command quietly with 0; anything else is exit 1.
    pub fn report(&self, what: &str) -> Exit {
        match self {
            StdoutError::ReaderGone => Exit::Ok,
            error => {
                eprintln!("naasc: cannot write {what} to standard output: {error}");
                Exit::Program
            }
        }
    }
}

/// A writer on standard output, or [`StdoutError::Closed`] when it was closed at startup.
pub fn writer() -> Result<std::io::StdoutLock<'static>, StdoutError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(StdoutError::Closed);
    }
    Ok(std::io::stdout().lock())
}

/// Writes `bytes` to standard output and flushes it.
pub fn write_all(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = writer()?;
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
