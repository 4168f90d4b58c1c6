//! End-to-end tests of `naasc run --engine timely` as processes: the launcher and its
//! processes start fast and quietly, two jobs at once do not disturb each other, a process
//! killed mid-run is named and the others stop with one line each, nothing outlives the
//! launcher, streams are refused rather than hung on, and faults are located as the local
//! engine locates them.
//!
//! Process-killing tests find the job's processes through `/proc` (Linux) and poll with
//! generous deadlines, because the machine running them may be busy.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{naasc, root, stderr, stdout, temp_file, TempFile};

/// Generous: the machine may be building other things at the same time.
const DEADLINE: Duration = Duration::from_secs(120);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_naasc")
}

/// A small input of 1,000 rows over 10 keys.
fn small_input() -> PathBuf {
    // Kept for the whole test binary (a static is never dropped), so every test can read it.
    static FILE: OnceLock<TempFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut text = String::from("host,delay\n");
        for i in 0..1000 {
            text.push_str(&format!("h{},{}\n", i % 10, i % 97));
        }
        temp_file("small.csv", text.as_bytes())
    })
    .to_path_buf()
}

/// An input big enough (3 M rows, 23 MB) that a job is still running seconds after it started.
/// It is written once (under a name that says what it holds, renamed into place whole, so
/// concurrent runs share it safely) rather than once per run.
fn big_input() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join("naasc-timely-test-3M-rows-v1.csv");
        if path.exists() {
            return path;
        }
        let partial = temp_file("big.csv", b"");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).unwrap());
        out.write_all(b"host,delay\n").unwrap();
        for i in 0..3_000_000u32 {
            writeln!(out, "h{},{}", i % 1000, i % 97).unwrap();
        }
        out.flush().unwrap();
        drop(out);
        std::fs::rename(&partial, &path).unwrap();
        path
    })
    .clone()
}

fn run_args(input: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "host"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn spawn(args: &[String]) -> Child {
    Command::new(bin())
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `check` until it returns `Some`, or panics with `what` after [`DEADLINE`].
fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit (killing it and failing the test after [`DEADLINE`]) and
/// returns its output.
fn finish(mut child: Child, what: &str) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{what} hung; stderr so far:\n{}", stderr(&output));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// `(pid, state, ppid)` of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields after it follow the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The job processes started by `launcher`, by their index.
fn job_processes(launcher: u32) -> Vec<(usize, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if stat(pid).map(|(_, ppid)| ppid) != Some(launcher) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if let Some(at) = args.iter().position(|a| *a == b"--timely-process") {
            if let Some(index) = args.get(at + 1).and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()) {
                found.push((index, pid));
            }
        }
    }
    found.sort_unstable();
    found
}

/// Polls until `launcher` has started `n` job processes, and returns their pids by index.
fn wait_for_processes(launcher: u32, n: usize) -> Vec<u32> {
    poll("the job's processes", || {
        let found = job_processes(launcher);
        (found.len() == n).then(|| found.into_iter().map(|(_, pid)| pid).collect())
    })
}

/// Bytes a process has read (through read(2)); the job reads its input after connecting.
fn bytes_read(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("rchar: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// Polls until process `pid` has read a few MB of the big input: the job is running.
fn wait_until_mid_run(pid: u32) {
    poll("the job to read its input", || (bytes_read(pid) > 4 << 20 || !alive(pid)).then_some(()));
    assert!(alive(pid), "the job finished before it could be interrupted: make the input bigger");
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn local_result(input: &Path) -> String {
    let output = naasc(&run_args(input, &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// No panic message, abort or backtrace.
fn assert_no_panic(text: &str) {
    for bad in ["panicked", "poisoned", "aborting", "RUST_BACKTRACE", "timely communication error:"] {
        assert!(!text.contains(bad), "`{bad}` in stderr:\n{text}");
    }
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    status.code()
}

#[test]
fn two_processes_give_the_local_results_with_nothing_on_stderr() {
    let input = small_input();
    let expected = local_result(&input);
    for extra in [&["--processes", "2", "--workers", "1"][..], &["--processes", "3", "--workers", "2"]] {
        let mut args = run_args(&input, &["--engine", "timely"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let output = finish(spawn(&args), "a timely job");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), expected);
        // Timely's own connection code printed "error connecting to worker 0 ...; retrying".
        assert_eq!(stderr(&output), "", "{extra:?}");
    }
}

/// Each job's processes bind their own ports and hand them over through the launcher, so jobs
/// started together cannot take each other's ports or connect to each other.
#[test]
fn jobs_started_at_the_same_time_do_not_disturb_each_other() {
    let input = small_input();
    let expected = local_result(&input);
    let args = run_args(&input, &["--engine", "timely", "--processes", "2", "--workers", "1"]);
    let jobs: Vec<Child> = (0..3).map(|_| spawn(&args)).collect();
    for job in jobs {
        let output = finish(job, "one of three concurrent timely jobs");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), expected);
        assert_eq!(stderr(&output), "");
    }
}

#[test]
fn a_process_killed_mid_run_is_named_and_the_others_stop_with_one_line() {
    let args = run_args(&big_input(), &["--engine", "timely", "--processes", "3", "--workers", "1"]);
    let launcher = spawn(&args);
    let pids = wait_for_processes(launcher.id(), 3);
    wait_until_mid_run(pids[1]);
    signal(pids[1], "KILL");
    let output = finish(launcher, "the launcher after a process was killed");
    let text = stderr(&output);
    assert_eq!(exit_code(output.status), Some(1), "{text}");
    assert!(stdout(&output).is_empty());
    assert_no_panic(&text);
    assert!(text.contains("naasc: error: process 1 of 3 was killed by signal 9 (SIGKILL)"), "{text}");
    // The two survivors: one line each, and nothing else but the launcher's line.
    for survivor in [0, 2] {
        let lines = text.lines().filter(|l| l.starts_with(&format!("naasc: process {survivor} of 3: lost"))).count();
        assert_eq!(lines, 1, "{text}");
    }
    assert_eq!(text.lines().count(), 3, "{text}");
    for pid in pids {
        poll("the survivors to exit", || (!alive(pid)).then_some(()));
    }
}

/// Before, process 1 retried "error connecting to worker 0" once a second, forever.
#[test]
fn a_process_killed_at_start_up_fails_the_job_instead_of_hanging_it() {
    let args = run_args(&big_input(), &["--engine", "timely", "--processes", "2", "--workers", "1"]);
    let launcher = spawn(&args);
    let pids = wait_for_processes(launcher.id(), 2);
    signal(pids[0], "KILL");
    let output = finish(launcher, "the launcher after process 0 was killed at start-up");
    let text = stderr(&output);
    assert_eq!(exit_code(output.status), Some(1), "{text}");
    assert_no_panic(&text);
    assert!(text.contains("naasc: error: process 0 of 2 was killed by signal 9 (SIGKILL)"), "{text}");
    poll("process 1 to exit", || (!alive(pids[1])).then_some(()));
}

/// A process that is blocked (here: stopped) when the launcher dies must die too; before, the
/// processes ran on until they next wrote to the launcher, or forever when blocked.
#[test]
fn the_processes_die_with_the_launcher() {
    for (name, mid_run) in [("TERM", true), ("KILL", true), ("TERM", false)] {
        let args = run_args(&big_input(), &["--engine", "timely", "--processes", "2", "--workers", "1"]);
        let launcher = spawn(&args);
        let pids = wait_for_processes(launcher.id(), 2);
        if mid_run {
            wait_until_mid_run(pids[0]);
        }
        signal(pids[1], "STOP");
        signal(launcher.id(), name);
        let output = finish(launcher, "the signalled launcher");
        assert!(!output.status.success());
        for &pid in &pids {
            poll(&format!("process {pid} to die with its launcher (kill -{name})"), || (!alive(pid)).then_some(()));
        }
    }
}

/// Every worker opens the input by path: a FIFO or a pipe would be read by one of them only
/// (the header by the launcher), so the timely engine refuses them instead of hanging.
#[test]
fn the_timely_engine_refuses_streams_and_reads_a_redirected_file() {
    // The FIFO lives in the placeholder's directory, removed when the placeholder is dropped.
    let placeholder = temp_file("placeholder", b"");
    let fifo = placeholder.with_file_name("input.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for processes in ["1", "2"] {
        let args = run_args(&fifo, &["--engine", "timely", "--processes", processes]);
        let output = finish(spawn(&args), "a timely job on a FIFO");
        assert_eq!(exit_code(output.status), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains("is not a regular file"), "{}", stderr(&output));
        assert!(stderr(&output).contains("--engine local"), "{}", stderr(&output));
    }
    let input = small_input();
    let data = std::fs::read(&input).unwrap();
    for processes in ["1", "2"] {
        // A pipe on stdin.
        let args = run_args(Path::new("/dev/stdin"), &["--engine", "timely", "--processes", processes]);
        let mut child = Command::new(bin())
            .args(&args)
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // The job may refuse before reading anything: a broken pipe is fine.
        let _ = pipe.write_all(&data);
        drop(pipe);
        let output = finish(child, "a timely job on a pipe");
        assert_eq!(exit_code(output.status), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains("`/dev/stdin` is not a regular file"), "{}", stderr(&output));
        // A file redirected to stdin is a file: every process reads it whole.
        let output = Command::new(bin())
            .args(&args)
            .current_dir(root())
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), local_result(&input), "{processes} process(es)");
    }
}

/// A fault in the lift (on a record), or in finish, prints what the local engine prints: the
/// row's position or the key, and the source operation's location.
#[test]
fn faults_are_located_as_the_local_engine_locates_them() {
    let lift = temp_file("q.naas", b"aggregate q(x: i64, d: i64) -> i64:\n    return sum(x // d)\n");
    let lift_input = temp_file("q.csv", b"k,x,d\na,1,1\nb,2,0\nc,1,0\nb,1,0\n");
    let finish_program = temp_file("f.naas", b"aggregate f(x: i64) -> i64:\n    return sum(x) // (i64(count()) - 2)\n");
    let finish_input = temp_file("f.csv", b"k,x\na,1\na,2\nb,3\n");
    for (program, input, expected) in [
        (&lift, &lift_input, "q.csv:3: integer division by zero in `q.lift`\n  --> "),
        (&finish_program, &finish_input, "key `a`: integer division by zero in `f.finish`\n  --> "),
    ] {
        let base = ["run", program.to_str().unwrap(), "--input", input.to_str().unwrap(), "--key", "k"];
        let local = naasc(&base);
        assert_eq!(exit_code(local.status), Some(1));
        let local_text = stderr(&local);
        assert!(local_text.contains(expected), "{local_text}");
        for extra in [&["--engine", "timely", "--workers", "2"][..], &["--engine", "timely", "--processes", "2"]] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let output = naasc(&args);
            assert_eq!(exit_code(output.status), Some(1), "{extra:?}");
            assert!(stdout(&output).is_empty());
            let text = stderr(&output);
            // The local engine's two lines, word for word (the launcher adds which process failed).
            assert!(text.starts_with(&local_text), "{extra:?}: {text}\nlocal: {local_text}");
        }
    }
}

/// The processes' errors come out as whole lines, never cut into each other.
#[test]
fn the_errors_of_several_processes_do_not_interleave() {
    let mut text = String::from("host,delay\n");
    for i in 0..40_000 {
        // Every row is invalid, so every worker of every process skips rows and says so.
        text.push_str(&format!("h{},x{i}\n", i % 50));
    }
    let input = temp_file("invalid.csv", text.as_bytes());
    for _ in 0..3 {
        let args = run_args(&input, &["--engine", "timely", "--processes", "4", "--workers", "2", "--skip-invalid"]);
        let output = finish(spawn(&args), "a timely job with invalid rows");
        let text = stderr(&output);
        assert!(output.status.success(), "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with("naasc: skipped ") || line.starts_with("  "),
                "a broken line `{line}` in:\n{text}"
            );
        }
    }
}

// ---- The cluster form: `--hostfile FILE --process I`, each process started on its own ----

/// An aggregation with integer state only, so that results do not depend on the merge order.
const INTEGER_PROGRAM: &str = "aggregate stats(delay: i64) -> tuple[i64, i64, i64, u64]:\n    \
                               return sum(delay), min(delay), max(delay), count()\n";

/// A port free on `ip` when asked (the system's pick); a process may still take it before the
/// job binds it, so [`cluster`] retries the whole job on "cannot listen".
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// Runs one job as `ips.len()` processes started one by one, as a user would: each is a
/// separate `naasc run ... --hostfile FILE --process I` (the last first, so the others wait for
/// their peers), with `per_process(I)`'s extra arguments. Returns their outputs by process.
fn cluster(program: &Path, ips: &[&str], per_process: impl Fn(usize) -> Vec<String>) -> Vec<Output> {
    for attempt in 0..3 {
        let hosts: String = ips.iter().map(|ip| format!("{ip}:{}\n", free_port(ip))).collect();
        let hostfile = temp_file("hosts.txt", format!("# one process per line\n{hosts}").as_bytes());
        let children: Vec<(usize, Child)> = (0..ips.len())
            .rev()
            .map(|process| {
                let mut args: Vec<String> = vec!["run".into(), program.to_str().unwrap().into()];
                args.extend(per_process(process));
                args.extend(
                    ["--engine", "timely", "--hostfile", hostfile.to_str().unwrap(), "--process"].map(String::from),
                );
                args.push(process.to_string());
                let child = spawn(&args);
                std::thread::sleep(Duration::from_millis(150));
                (process, child)
            })
            .collect();
        let mut outputs: Vec<(usize, Output)> =
            children.into_iter().map(|(p, child)| (p, finish(child, &format!("cluster process {p}")))).collect();
        outputs.sort_by_key(|(p, _)| *p);
        let outputs: Vec<Output> = outputs.into_iter().map(|(_, o)| o).collect();
        if attempt < 2 && outputs.iter().any(|o| stderr(o).contains("cannot listen on")) {
            continue;
        }
        return outputs;
    }
    unreachable!("the loop returns on its last attempt")
}

fn integer_program() -> TempFile {
    temp_file("stats.naas", INTEGER_PROGRAM.as_bytes())
}

fn local_run(program: &Path, input: &Path) -> String {
    let output = naasc(&["run", program.to_str().unwrap(), "--input", input.to_str().unwrap(), "--key", "host"]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Three processes on three addresses (127.0.0.1-3 stand for three machines), two workers
/// each, every one reading its share (units `u mod 6`) of one file: process 0 prints exactly
/// the local engine's output, the others print nothing, and nobody says anything on stderr.
#[test]
fn a_cluster_of_three_processes_on_distinct_addresses_matches_the_local_engine() {
    let program = integer_program();
    let input = big_input();
    let expected = local_run(&program, &input);
    let outputs = cluster(&program, &["127.0.0.1", "127.0.0.2", "127.0.0.3"], |_| {
        ["--input", input.to_str().unwrap(), "--key", "host", "--workers", "2"].map(String::from).to_vec()
    });
    for (process, output) in outputs.iter().enumerate() {
        assert!(output.status.success(), "process {process}: {}", stderr(output));
        assert_eq!(stderr(output), "", "process {process}");
    }
    assert_eq!(stdout(&outputs[0]), expected);
    assert_eq!(stdout(&outputs[1]), "");
    assert_eq!(stdout(&outputs[2]), "");
}

/// With `--input-per-process`, each process reads its own file whole (the rows are split over
/// three files here), and `-o` is written by process 0 alone, with the local engine's output
/// over all the rows; `--report` counts every process's rows.
#[test]
fn a_cluster_reading_a_file_per_process_writes_the_results_once() {
    let program = integer_program();
    let mut whole = String::from("host,delay\n");
    let mut parts = vec![String::from("host,delay\n"); 3];
    for i in 0..300_000u64 {
        let row = format!("h{},{}\n", (i * 7919) % 701, (i % 1013) as i64 - 300);
        whole.push_str(&row);
        // Unequal shares: process 2 gets most of the rows.
        parts[[0, 1, 2, 2, 2][(i % 5) as usize]].push_str(&row);
    }
    let whole = temp_file("whole.csv", whole.as_bytes());
    let parts: Vec<TempFile> = parts.iter().map(|text| temp_file("part.csv", text.as_bytes())).collect();
    let out_dir = naas_test_support::temp_dir();
    let out = |p: usize| out_dir.path().join(format!("out{p}.csv"));
    let report = |p: usize| out_dir.path().join(format!("report{p}.json"));
    let expected = local_run(&program, &whole);
    let outputs = cluster(&program, &["127.0.0.1", "127.0.0.2", "127.0.0.3"], |p| {
        let mut args: Vec<String> =
            ["--input", parts[p].to_str().unwrap(), "--key", "host", "--workers", "1"].map(String::from).to_vec();
        args.extend(["--input-per-process".to_string(), "-o".to_string(), out(p).display().to_string()]);
        args.extend(["--report".to_string(), report(p).display().to_string()]);
        args
    });
    for (process, output) in outputs.iter().enumerate() {
        assert!(output.status.success(), "process {process}: {}", stderr(output));
        assert_eq!(stdout(output), "", "process {process}");
    }
    assert_eq!(std::fs::read_to_string(out(0)).unwrap(), expected);
    assert!(!out(1).exists() && !out(2).exists(), "only process 0 writes the results");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report(0)).unwrap()).unwrap();
    assert_eq!(report["rows"], 300_000);
    assert_eq!(report["keys"], 701);
}

/// A process whose peer never starts fails within `--timeout`, naming the peer and its
/// address, with exit code 1.
#[test]
fn a_cluster_process_whose_peer_never_starts_fails_naming_it_within_the_timeout() {
    let program = integer_program();
    let input = small_input();
    let (p0, p1) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let hostfile = temp_file("hosts.txt", format!("127.0.0.1:{p0}\n127.0.0.2:{p1}\n").as_bytes());
    for process in ["0", "1"] {
        let started = Instant::now();
        let output = naasc(&[
            "run",
            program.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--key",
            "host",
            "--engine",
            "timely",
            "--hostfile",
            hostfile.to_str().unwrap(),
            "--process",
            process,
            "--timeout",
            "1.5",
        ]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let other = if process == "0" { format!("1 (127.0.0.2:{p1})") } else { format!("0 (127.0.0.1:{p0})") };
        let text = stderr(&output);
        assert!(text.contains(&format!("process(es) {other} did not connect within 1.5 s (--timeout)")), "{text}");
        assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
        assert_no_panic(&text);
    }
}

/// A peer killed mid-run: the process that loses it says which and exits with code 1.
#[test]
fn a_cluster_process_whose_peer_dies_mid_run_fails_naming_it() {
    let program = integer_program();
    let input = big_input();
    let hosts = format!("127.0.0.1:{}\n127.0.0.2:{}\n", free_port("127.0.0.1"), free_port("127.0.0.2"));
    let hostfile = temp_file("hosts.txt", hosts.as_bytes());
    let args = |process: &str| -> Vec<String> {
        let mut args = run_args(&input, &["--engine", "timely", "--workers", "1", "--process", process]);
        args[1] = program.to_str().unwrap().to_string();
        args.extend(["--hostfile".to_string(), hostfile.to_str().unwrap().to_string()]);
        args
    };
    let peer = spawn(&args("1"));
    let survivor = spawn(&args("0"));
    wait_until_mid_run(peer.id());
    signal(peer.id(), "KILL");
    let output = finish(survivor, "the surviving process");
    let _ = finish(peer, "the killed process");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("process 0 of 2: lost the connection to process 1"), "{text}");
    assert_no_panic(&text);
}

/// The cluster form's flags that do not fit each other are usage errors naming the flag.
#[test]
fn cluster_flags_that_do_not_fit_are_usage_errors() {
    let input = small_input();
    let hostfile = temp_file("hosts.txt", b"127.0.0.1:1\n127.0.0.2:2\n");
    let bad_line = temp_file("hosts.txt", b"127.0.0.1:1\nnot an address\n");
    let duplicate = temp_file("hosts.txt", b"127.0.0.1:1\n\n127.0.0.1:1\n");
    let empty = temp_file("hosts.txt", b"# nobody\n");
    let h = hostfile.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--engine", "timely", "--hostfile", h], "--hostfile needs --process"),
        (vec!["--engine", "timely", "--process", "0"], "--process needs --hostfile"),
        (vec!["--hostfile", h, "--process", "0"], "add --engine timely"),
        (vec!["--engine", "timely", "--hostfile", h, "--process", "0", "--processes", "2"], "drop --processes"),
        (vec!["--engine", "timely", "--hostfile", h, "--process", "2"], "numbered from 0 to 1"),
        (vec!["--engine", "timely", "--input-per-process"], "--input-per-process applies to --hostfile"),
        (vec!["--engine", "timely", "--hostfile", h, "--process", "0", "--timeout", "0"], "--timeout"),
        (vec!["--engine", "timely", "--hostfile", bad_line.to_str().unwrap(), "--process", "0"], ":2: expected"),
        (vec!["--engine", "timely", "--hostfile", duplicate.to_str().unwrap(), "--process", "0"], "also on line 1"),
        (vec!["--engine", "timely", "--hostfile", empty.to_str().unwrap(), "--process", "0"], "lists no process"),
    ];
    for (extra, says) in cases {
        let args = run_args(&input, &extra);
        let output = naasc(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(says), "{extra:?}: {}", stderr(&output));
    }
}

/// The cluster form with `--network`: process 0 starts the nodes and is the reducer, every
/// process sends the mappers its workers own, and process 0 prints the local engine's output.
#[test]
fn a_cluster_sends_its_states_through_the_network() {
    let program = integer_program();
    let input = big_input();
    let expected = local_run(&program, &input);
    let outputs = cluster(&program, &["127.0.0.1", "127.0.0.2", "127.0.0.3"], |_| {
        let args = ["--input", input.to_str().unwrap(), "--key", "host", "--workers", "1"];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--network", "tree:fanout=2,depth=2", "--exec", "host"].map(String::from));
        args
    });
    for (process, output) in outputs.iter().enumerate() {
        assert!(output.status.success(), "process {process}: {}", stderr(output));
    }
    assert_eq!(stdout(&outputs[0]), expected);
    assert!(stderr(&outputs[0]).contains("reached the reducer"), "{}", stderr(&outputs[0]));
    assert_eq!(stdout(&outputs[1]), "");
}
