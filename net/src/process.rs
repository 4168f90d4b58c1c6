//! Child processes of a launcher (a job's node processes): they die with it, their stderr is
//! relayed line by line, and a guard kills and reaps every one still running when the launcher
//! returns, on every path.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus};

/// Makes the kernel kill the process `command` starts when this one dies, however it dies
/// (`kill -KILL` included), so no child outlives its launcher.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "pre_exec is unsafe; the closure only makes two async-signal-safe system calls")]
pub fn die_with_launcher(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let launcher = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it calls prctl and getppid, allocates nothing and
    // takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The launcher may have died before the prctl: then nobody would send the signal.
            if u32::try_from(libc::getppid()).ok() != Some(launcher) {
                return Err(std::io::Error::other("the launcher has stopped"));
            }
            Ok(())
        });
    }
}

/// Elsewhere the children notice the launcher's end when their stdin ends.
#[cfg(not(target_os = "linux"))]
pub fn die_with_launcher(_command: &mut Command) {}

/// Writes one whole line to stderr, so lines of different processes never interleave.
pub fn relay(line: &[u8]) {
    let _ = std::io::stderr().lock().write_all(line);
}

/// Relays a child's stderr line by line.
pub fn relay_stderr(stderr: impl Read) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                relay(&line);
            }
        }
    }
}

/// How a process ended, for a launcher's message.
pub fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                3 => " (SIGQUIT)",
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                13 => " (SIGPIPE)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("was killed by signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("failed with exit code {code} (its error is above)"),
        None => format!("failed ({status})"),
    }
}

/// Children of a launcher, killed and reaped when dropped (if still running).
#[derive(Debug, Default)]
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}
