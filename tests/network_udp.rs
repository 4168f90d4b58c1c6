//! End-to-end tests of aggregation over real sockets (spec §18): `naasc run --network` with
//! node processes on loopback, in both exec modes, against `--target host`; malformed and
//! foreign datagrams sent at a running node; a node killed mid-run; and packet loss injected by
//! the kernel (nftables in a network namespace) or, where that cannot be set up, in process.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{naasc, root, stderr, stdout, temp_file, TempFile};
use naas_net::wire::{self, Kind};
use naas_stdx::Rng;

/// `rows` rows with every column the examples read: `delay` (reduce), `sample`
/// (robust_mean), `micros` (histogram), `timestamp` and `value` (latest), `x` (top_k).
fn generate(rows: usize, keys: u64, seed: u64) -> TempFile {
    let mut rng = Rng::new(seed);
    let mut text = String::from("key,delay,sample,micros,timestamp,value,x\n");
    for _ in 0..rows {
        let key = rng.next_u64() % keys;
        let signed = |rng: &mut Rng, span: u64| (rng.next_u64() % (2 * span)) as i64 - span as i64;
        let delay = signed(&mut rng, 500);
        let sample = signed(&mut rng, 100_000);
        let micros = rng.next_u64() % 5_000;
        let timestamp = rng.next_u64() % 1_000;
        let value = signed(&mut rng, 1_000);
        let x = signed(&mut rng, 1 << 40);
        text.push_str(&format!("k{key},{delay},{sample},{micros},{timestamp},{value},{x}\n"));
    }
    temp_file("data.csv", text.as_bytes())
}

fn run_ok(example: &str, input: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", example, "--input", input.to_str().unwrap(), "--key", "key"];
    args.extend_from_slice(extra);
    let output = naasc(&args);
    assert_eq!(output.status.code(), Some(0), "naasc {args:?}: {}", stderr(&output));
    stdout(&output)
}

/// The canonical examples whose merge lowers to the switch (top_k onto insertion chains).
const SWITCH_EXAMPLES: [&str; 5] = [
    "examples/reduce.naas",
    "examples/robust_mean.naas",
    "examples/histogram.naas",
    "examples/latest.naas",
    "examples/top_k.naas",
];

#[test]
fn every_switch_example_equals_the_host_target_in_both_exec_modes() {
    let input = generate(3_000, 300, 1);
    for example in SWITCH_EXAMPLES {
        let host = run_ok(example, &input, &[]);
        assert!(host.lines().count() > 250, "{example}: {host}");
        for exec in ["switch", "host"] {
            let net = run_ok(example, &input, &["--network", "tree:fanout=2,depth=2", "--exec", exec]);
            assert_eq!(net, host, "{example} --exec {exec}");
        }
    }
    // A program that does not lower to the switch (float state, no `--fixed-point`) is
    // refused for `--exec switch`, pointing at `--exec host`, where a host box merges it.
    let floats = temp_file("floats.naas", b"aggregate s(v: i64) -> f64:\n    return sum(f64(v))\n");
    let floats = floats.to_str().unwrap();
    let host = run_ok(floats, &input, &["--bind", "v=value"]);
    let net = run_ok(floats, &input, &["--bind", "v=value", "--network", "tree:fanout=2,depth=2", "--exec", "host"]);
    assert_eq!(net, host);
    let refused = naasc(&[
        "run",
        floats,
        "--input",
        input.to_str().unwrap(),
        "--key",
        "key",
        "--bind",
        "v=value",
        "--network",
        "tree:fanout=2,depth=1",
        "--exec",
        "switch",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--exec host"), "{}", stderr(&refused));
}

#[test]
fn a_state_larger_than_a_datagram_is_refused_naming_the_limit() {
    let source = std::fs::read_to_string(root().join("examples/top_k.naas")).unwrap().replace("K = 4", "K = 9000");
    let program = temp_file("big.naas", source.as_bytes());
    let input = temp_file("big.csv", b"key,x\na,1\nb,2\n");
    let output = naasc(&[
        "run",
        program.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--key",
        "key",
        "--network",
        "tree:fanout=2,depth=1",
        "--exec",
        "host",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("72000 bytes") && stderr(&output).contains("at most 65455 bytes"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn collisions_multiple_uplinks_and_the_report_keep_results_exact() {
    let input = generate(2_000, 200, 2);
    let host = run_ok("examples/reduce.naas", &input, &[]);
    // Three slots per lane: most keys collide and travel unmerged.
    let report = temp_file("report.json", b"");
    let net = run_ok(
        "examples/reduce.naas",
        &input,
        &["--network", "tree:fanout=2,depth=2", "--switch-slots", "3", "--report", report.to_str().unwrap()],
    );
    assert_eq!(net, host);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["target"], "network");
    let network = &report["network"];
    assert!(network["collisions"].as_u64().unwrap() > 0, "{network}");
    assert_eq!(network["nodes"].as_array().unwrap().len(), 6);
    assert!(network["entries_at_reducer"].as_u64().unwrap() >= network["ideal_entries_at_reducer"].as_u64().unwrap());
    // Without collisions the reducer receives the fan-in bound, as the simulator predicts for
    // the same topology and input.
    let entries_at_reducer = |extra: &[&str]| {
        let report = temp_file("report.json", b"");
        let mut args = vec!["--report", report.to_str().unwrap()];
        args.extend_from_slice(extra);
        assert_eq!(run_ok("examples/reduce.naas", &input, &args), host);
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let network = &report["network"];
        (network["entries_at_reducer"].as_u64().unwrap(), network["ideal_entries_at_reducer"].as_u64().unwrap())
    };
    let real = entries_at_reducer(&["--network", "tree:fanout=2,depth=2"]);
    let simulated = entries_at_reducer(&["--target", "switch-sim", "--topology", "tree:fanout=2,depth=2"]);
    assert_eq!(real, simulated);
    assert_eq!(real.0, real.1);
    // Leaf-spine: every leaf spreads keys over two spines.
    let net = run_ok("examples/reduce.naas", &input, &["--network", "leaf-spine:leaves=2,spines=2,hosts=2"]);
    assert_eq!(net, host);
}

#[test]
fn seeded_loss_duplication_in_process_keeps_results_exact() {
    let input = generate(3_000, 400, 3);
    for example in ["examples/reduce.naas", "examples/histogram.naas"] {
        let host = run_ok(example, &input, &[]);
        for (exec, seed) in [("switch", "5"), ("host", "6")] {
            let faults = format!("0.05,0.05,{seed}");
            let extra = ["--network", "tree:fanout=2,depth=2", "--exec", exec, "--inject-faults", &faults];
            assert_eq!(run_ok(example, &input, &extra), host, "{example} --exec {exec}");
        }
    }
}

/// A `naasc node` started as a user would, and its address.
fn start_node(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_naasc"))
        .arg("node")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().strip_prefix("naasc-node-listening ").unwrap().parse().unwrap();
    (child, address)
}

/// Kills a child still running when dropped.
struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn malformed_and_foreign_datagrams_are_counted_and_dropped() {
    let input = generate(1_000, 50, 4);
    let host = run_ok("examples/reduce.naas", &input, &[]);
    let reports = [temp_file("n0.json", b""), temp_file("n1.json", b"")];
    let mut nodes = Vec::new();
    let mut addresses = Vec::new();
    for report in &reports {
        let (child, address) =
            start_node(&["examples/reduce.naas", "--exec", "host", "--once", "--report", report.to_str().unwrap()]);
        nodes.push(Stop(child));
        addresses.push(address);
    }
    // Well-formed datagrams of this aggregation but of no job the node serves, one of another
    // aggregation, random bytes and a truncated datagram.
    let source = std::fs::read_to_string(root().join("examples/reduce.naas")).unwrap();
    let aggregation = naas_runtime::Aggregation::from_source("reduce.naas", &source, None).unwrap();
    let template = naas_net::node::template(&aggregation, None, 4242);
    let mut data = Vec::new();
    wire::encode(&template.header(Kind::Data, 0, 0), &[], &mut data);
    let mut foreign = template.header(Kind::Setup, wire::SETUP_LINK, 0);
    foreign.fingerprint ^= 1;
    let mut setup = Vec::new();
    wire::encode(&foreign, b"{}", &mut setup);
    let mut rng = Rng::new(9);
    let random: Vec<u8> = (0..300).map(|_| rng.next_u64() as u8).collect();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [&data[..], &setup[..], &random[..], &data[..data.len() - 3]] {
        socket.send_to(datagram, addresses[0]).unwrap();
    }
    // While the job runs, more garbage: random bytes and datagrams of another job.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let target = addresses[0];
    let noise = std::thread::spawn(move || {
        let mut rng = Rng::new(10);
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let random: Vec<u8> = (0..1 + rng.next_u64() % 200).map(|_| rng.next_u64() as u8).collect();
            let _ = socket.send_to(&random, target);
            let _ = socket.send_to(&data, target);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let attach = format!("{},{}", addresses[0], addresses[1]);
    let net = run_ok(
        "examples/reduce.naas",
        &input,
        &["--network", "tree:fanout=2,depth=1", "--exec", "host", "--attach", &attach, "--timeout", "30"],
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    noise.join().unwrap();
    assert_eq!(net, host, "the node's results are exact after and despite the garbage");
    for node in &mut nodes {
        let status = node.0.wait().unwrap();
        assert!(status.success(), "a node serving one job exits 0 after it");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    // The first four, then the noise: before the set-up, and during the job.
    assert!(report["bad_packets_before_setup"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["foreign_packets_before_setup"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["bad_packets"].as_u64().unwrap() > 0, "{report}");
    assert!(report["foreign_packets"].as_u64().unwrap() > 0, "{report}");
    assert!(report["merges"].as_u64().unwrap() > 0, "{report}");
    let (busy, seconds) = (report["busy_seconds"].as_f64().unwrap(), report["seconds"].as_f64().unwrap());
    assert!(busy > 0.0 && busy < seconds, "busy from the first data to its own end of stream: {report}");
}

/// A set-up the node cannot serve (no uplink, a link id twice, an address that is not one) is
/// refused before it is acknowledged: no acknowledgement comes back, and the node fails naming
/// the job and why.
#[test]
fn an_invalid_set_up_is_refused_before_it_is_acknowledged() {
    let source = std::fs::read_to_string(root().join("examples/reduce.naas")).unwrap();
    let aggregation = naas_runtime::Aggregation::from_source("reduce.naas", &source, None).unwrap();
    let cases = [
        (r#"{"name":"s","downlinks":[1],"uplinks":[],"idle_timeout_ms":1000}"#, "has no uplink"),
        (r#"{"name":"s","downlinks":[1],"uplinks":[[1,"127.0.0.1:9"]],"idle_timeout_ms":1000}"#, "appears twice"),
        (r#"{"name":"s","downlinks":[1],"uplinks":[[2,"nowhere"]],"idle_timeout_ms":1000}"#, "not a socket address"),
    ];
    for (job, (payload, says)) in (77u64..).zip(cases) {
        let mut node = Command::new(env!("CARGO_BIN_EXE_naasc"))
            .args(["node", "examples/reduce.naas", "--exec", "host", "--once"])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(node.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address: SocketAddr = line.trim().strip_prefix("naasc-node-listening ").unwrap().parse().unwrap();
        let template = naas_net::node::template(&aggregation, None, job);
        let mut setup = Vec::new();
        wire::encode(&template.header(Kind::Setup, wire::SETUP_LINK, 0), payload.as_bytes(), &mut setup);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        socket.send_to(&setup, address).unwrap();
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                let kind = wire::decode(&buf[..len]).map(|d| d.header.kind);
                assert!(kind.is_err() || kind.as_ref().ok() != Some(&Kind::Ack), "an invalid set-up was acknowledged");
            }
        }
        let output = node.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let text = stderr(&output);
        assert!(text.contains(&format!("job {job}")) && text.contains(says), "{text}");
    }
}

/// Runs reduce.naas on a network of one live hop and one attached address where a bound
/// socket never answers (standing for a dead node), with `--timeout 2` and `extra` flags: the
/// output, the silent address and how long the run took.
fn run_with_a_silent_hop(extra: &[&str]) -> (Output, String, Duration) {
    let input = generate(100, 10, 5);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let (live, live_address) = start_node(&["examples/reduce.naas", "--exec", "host", "--once"]);
    let _live = Stop(live);
    let attach = format!("{live_address},{silent_address}");
    let mut args = vec!["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "key"];
    args.extend_from_slice(extra);
    args.extend(["--network", "tree:fanout=2,depth=1", "--exec", "host", "--attach", &attach, "--timeout", "2"]);
    let started = Instant::now();
    let output = naasc(&args);
    (output, silent_address, started.elapsed())
}

#[test]
fn an_attached_address_where_no_node_runs_fails_within_the_timeout_naming_it() {
    let (output, silent, took) = run_with_a_silent_hop(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(took < Duration::from_secs(20));
    let message = stderr(&output);
    assert!(message.contains(&silent) && message.contains("--timeout"), "{message}");
}

/// The pids of `naasc node` processes whose parent is `parent`, with their `--name`.
fn node_children(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The parent pid is the second field after the parenthesised command name.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest.to_string()) else { continue };
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.get(1).map(String::as_str) != Some("node") {
            continue;
        }
        if let Some(at) = args.iter().position(|a| a == "--name") {
            found.push((pid, args.get(at + 1).cloned().unwrap_or_default()));
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn killing_a_node_mid_run_fails_the_run_naming_it_and_leaves_no_process() {
    let input = generate(20_000, 2_000, 6);
    let run = Command::new(env!("CARGO_BIN_EXE_naasc"))
        .args(["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "key"])
        .args(["--network", "tree:fanout=2,depth=2", "--timeout", "30", "--inject-faults", "0.2,0,1"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let nodes = loop {
        let nodes = node_children(run.id());
        if nodes.len() == 6 {
            break nodes;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the nodes did not start");
        std::thread::sleep(Duration::from_millis(5));
    };
    let (victim, name) = nodes[2].clone();
    let killed = Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    assert!(killed.success());
    let output: Output = run.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(30), "failed within the timeout");
    let message = stderr(&output);
    assert!(message.contains(&format!("node `{name}`")) && message.contains("killed by signal 9"), "{message}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while nodes.iter().any(|(pid, _)| alive(*pid)) {
        assert!(Instant::now() < deadline, "a node of the run is still running: {nodes:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace, deleted when dropped.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// A namespace whose loopback drops 5% of UDP datagrams and duplicates 5% (nftables), or why
/// there is none.
fn lossy_namespace() -> Result<Namespace, String> {
    let uid = Command::new("id").arg("-u").output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("network namespaces need root".to_string());
    }
    for tool in ["ip", "nft"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map_err(|e| e.to_string())?;
        if !found.status.success() {
            return Err(format!("`{tool}` is not installed (scripts/test.sh installs nftables as root)"));
        }
    }
    let name = format!("naasc-net-{}", std::process::id());
    sh(&["ip", "netns", "add", &name])?;
    let namespace = Namespace(name.clone());
    let exec = |args: &[&str]| {
        let mut full = vec!["ip", "netns", "exec", &name];
        full.extend_from_slice(args);
        sh(&full)
    };
    exec(&["ip", "link", "set", "lo", "up"])?;
    exec(&["nft", "add", "table", "inet", "naas"])?;
    exec(&["nft", "add chain inet naas input { type filter hook input priority 0; }"])?;
    // Every UDP datagram in the namespace is the job's: the nodes', the mappers' and the
    // reducer's ports (all picked by the system) lose 5%.
    exec(&["nft", "add rule inet naas input meta l4proto udp numgen random mod 100 < 5 counter drop"])?;
    // Duplication: `dup` exists in the netdev family, on the ingress hook of a device; a copy
    // sent back to `lo` arrives as a second datagram (it is seen before the drop above, which
    // may then drop either copy). A kernel without it still tests loss.
    let duplicating = exec(&["nft", "add table netdev naasdup"])
        .and_then(|()| {
            exec(&["nft", "add chain netdev naasdup ingress { type filter hook ingress device lo priority 0; }"])
        })
        .and_then(|()| {
            exec(&[
                "nft",
                "add rule netdev naasdup ingress meta l4proto udp numgen random mod 100 < 5 counter dup to lo",
            ])
        });
    if let Err(why) = duplicating {
        eprintln!("kernel_packet_loss_keeps_results_exact: duplication not tested: {why}");
    }
    Ok(namespace)
}

#[test]
fn kernel_packet_loss_keeps_results_exact() {
    let input = generate(5_000, 1_000, 7);
    let namespace = match lossy_namespace() {
        Ok(namespace) => namespace,
        Err(why) => {
            eprintln!("kernel_packet_loss_keeps_results_exact: skipped: {why}; the in-process variant still runs");
            return;
        }
    };
    for example in ["examples/reduce.naas", "examples/latest.naas"] {
        let host = run_ok(example, &input, &[]);
        for exec in ["switch", "host"] {
            let output = Command::new("ip")
                .args(["netns", "exec", &namespace.0, env!("CARGO_BIN_EXE_naasc"), "run", example, "--input"])
                .arg(&*input)
                .args(["--key", "key", "--network", "tree:fanout=2,depth=2", "--exec", exec, "--timeout", "60"])
                .current_dir(root())
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            assert_eq!(stdout(&output), host, "{example} --exec {exec}");
        }
    }
    let rules = Command::new("ip").args(["netns", "exec", &namespace.0, "nft", "list", "ruleset"]).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    // One counter per rule: the drop's, then (where the kernel has it) the duplication's.
    let counters: Vec<u64> = rules
        .split("counter packets ")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
        .collect();
    assert!(!counters.is_empty() && counters.iter().all(|&n| n > 0), "the kernel dropped and duplicated: {rules}");
}

#[test]
fn stopping_the_run_stops_its_nodes() {
    let input = generate(20_000, 2_000, 8);
    for signal in ["-INT", "-KILL"] {
        let mut run = Command::new(env!("CARGO_BIN_EXE_naasc"))
            .args(["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "key"])
            .args(["--network", "tree:fanout=2,depth=2", "--inject-faults", "0.3,0,2"])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let nodes = loop {
            let nodes = node_children(run.id());
            if nodes.len() == 6 {
                break nodes;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the nodes did not start");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(Command::new("kill").args([signal, &run.id().to_string()]).status().unwrap().success());
        let status = run.wait().unwrap();
        assert!(!status.success(), "{signal}: {status}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while nodes.iter().any(|(pid, _)| alive(*pid)) {
            assert!(Instant::now() < deadline, "{signal}: a node outlived the run: {nodes:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_hop_that_accepts_the_job_but_never_acknowledges_fails_the_run_naming_it() {
    let input = generate(500, 20, 9);
    let source = std::fs::read_to_string(root().join("examples/reduce.naas")).unwrap();
    let aggregation = naas_runtime::Aggregation::from_source("reduce.naas", &source, None).unwrap();
    // A hop that answers its set-up as a node does, then stays silent.
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mute_address = mute.local_addr().unwrap();
    mute.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let responder = std::thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((len, from)) = mute.recv_from(&mut buf) else { continue };
            let Ok(datagram) = wire::decode(&buf[..len]) else { continue };
            if datagram.header.kind == Kind::Setup {
                let template = naas_net::node::template(&aggregation, None, datagram.header.job);
                let mut ack = Vec::new();
                wire::encode(&template.header(Kind::Ack, wire::SETUP_LINK, 0), &0u64.to_le_bytes(), &mut ack);
                mute.send_to(&ack, from).unwrap();
            }
        }
    });
    let (live, live_address) = start_node(&["examples/reduce.naas", "--exec", "host", "--once"]);
    let _live = Stop(live);
    let attach = format!("{live_address},{mute_address}");
    let started = Instant::now();
    let output = naasc(&[
        "run",
        "examples/reduce.naas",
        "--input",
        input.to_str().unwrap(),
        "--key",
        "key",
        "--network",
        "tree:fanout=2,depth=1",
        "--exec",
        "host",
        "--attach",
        &attach,
        "--timeout",
        "3",
    ]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    responder.join().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(20));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("node `s1.1` at {mute_address} has acknowledged nothing"))
            && message.contains("no end of stream from s1.1"),
        "{message}"
    );
}

#[test]
fn a_node_serves_job_after_job_until_stopped() {
    let input = generate(1_000, 100, 10);
    let (first, first_address) = start_node(&["examples/reduce.naas", "--exec", "switch"]);
    let (second, second_address) = start_node(&["examples/reduce.naas", "--exec", "switch"]);
    let mut nodes = [Stop(first), Stop(second)];
    let attach = format!("{first_address},{second_address}");
    for example_input in [&input, &generate(800, 30, 11)] {
        let host = run_ok("examples/reduce.naas", example_input, &[]);
        let net =
            run_ok("examples/reduce.naas", example_input, &["--network", "tree:fanout=2,depth=1", "--attach", &attach]);
        assert_eq!(net, host);
    }
    for node in &mut nodes {
        assert!(node.0.try_wait().unwrap().is_none(), "a node without --once keeps serving");
    }
    // A node of another --exec does not take the job: the run names it.
    let (host_node, host_address) = start_node(&["examples/reduce.naas", "--exec", "host"]);
    let _host_node = Stop(host_node);
    let attach = format!("{first_address},{host_address}");
    let output = naasc(&[
        "run",
        "examples/reduce.naas",
        "--input",
        input.to_str().unwrap(),
        "--key",
        "key",
        "--network",
        "tree:fanout=2,depth=1",
        "--attach",
        &attach,
        "--timeout",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("`s1.1` at {host_address} did not answer")), "{}", stderr(&output));
}

/// An input of several units for the timely engine (which reads 1 MiB blocks), so that its
/// workers and processes each fold some and several mappers send.
fn several_units() -> &'static TempFile {
    static FILE: std::sync::OnceLock<TempFile> = std::sync::OnceLock::new();
    FILE.get_or_init(|| generate(120_000, 2_000, 11))
}

/// `--network` with `--engine timely`: one process with two workers and three processes of
/// one worker each, both exec modes, equal the host target; key ids are agreed through
/// timely (worker 0 numbers the union of every worker's keys), so the reducer names every key.
#[test]
fn timely_jobs_over_the_network_equal_the_host_target() {
    let input = several_units();
    assert!(std::fs::metadata(&**input).unwrap().len() > 4 << 20, "the input spans several units");
    for example in ["examples/reduce.naas", "examples/latest.naas"] {
        let host = run_ok(example, input, &[]);
        for exec in ["switch", "host"] {
            for shape in [&["--workers", "2"][..], &["--processes", "3", "--workers", "1"]] {
                let mut extra = vec!["--engine", "timely", "--network", "tree:fanout=2,depth=2", "--exec", exec];
                extra.extend_from_slice(shape);
                let net = run_ok(example, input, &extra);
                assert_eq!(net, host, "{example} --exec {exec} {shape:?}");
            }
        }
    }
    // One unit: most mappers have nothing to send, but each still ends its stream, from the
    // process that owns it.
    let small = generate(2_000, 100, 12);
    let host = run_ok("examples/reduce.naas", &small, &[]);
    let extra = ["--engine", "timely", "--processes", "3", "--workers", "1", "--network", "tree:fanout=4,depth=2"];
    assert_eq!(run_ok("examples/reduce.naas", &small, &extra), host);
}

/// A timely job whose network has a hop that never answers fails within `--timeout`, naming
/// the node, and leaves no process behind it (the launcher stops its processes).
#[test]
fn a_timely_job_whose_hop_never_answers_fails_within_the_timeout_naming_it() {
    let (output, silent, took) = run_with_a_silent_hop(&["--engine", "timely", "--processes", "2", "--workers", "1"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains(&silent), "{text}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// With `--fixed-point`, a non-finite float is a bad row of the input on the timely engine as
/// on the local one (not a state the switch cannot hold, found after the map phase).
#[test]
fn a_non_finite_float_is_a_bad_row_with_fixed_point_on_both_engines() {
    let program = temp_file("floats.naas", b"aggregate s(v: f64) -> f64:\n    return sum(v)\n");
    let input = temp_file("inf.csv", b"key,v\na,1.5\nb,inf\na,2\n");
    for engine in ["local", "timely"] {
        let output = naasc(&[
            "run",
            program.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--key",
            "key",
            "--engine",
            engine,
            "--network",
            "tree:fanout=2,depth=1",
            "--fixed-point",
            "16",
        ]);
        assert_eq!(output.status.code(), Some(1), "{engine}: {}", stderr(&output));
        assert!(stderr(&output).contains("inf.csv:3:2: column `v`: `inf` is not a finite number"), "{engine}");
    }
}

/// A program's warnings are printed once, by the command the user ran, not again by every
/// node it launches or every timely process.
#[test]
fn warnings_are_printed_once_however_many_processes_run_the_program() {
    let program = temp_file("floats.naas", b"aggregate s(v: f64) -> f64:\n    return sum(v)\n");
    let input = temp_file("data.csv", b"key,v\na,1.5\nb,2\na,2\n");
    let runs: [&[&str]; 2] = [
        &["--network", "tree:fanout=2,depth=2", "--exec", "host"],
        &["--engine", "timely", "--processes", "2", "--network", "tree:fanout=2,depth=1", "--exec", "host"],
    ];
    for extra in runs {
        let mut args = vec!["run", program.to_str().unwrap(), "--input", input.to_str().unwrap(), "--key", "key"];
        args.extend_from_slice(extra);
        let output = naasc(&args);
        assert!(output.status.success(), "{extra:?}: {}", stderr(&output));
        assert_eq!(stderr(&output).matches("warning[W0501]").count(), 1, "{extra:?}: {}", stderr(&output));
    }
}

/// The `--report` of a timely job over the network has the network's counts, also when a
/// launcher ran it (process 0, the reducer, hands them over): every key reached the reducer.
#[test]
fn a_timely_jobs_report_has_the_network_counts() {
    let input = generate(3_000, 300, 13);
    let dir = naas_test_support::temp_dir();
    for processes in ["1", "2"] {
        let report = dir.path().join(format!("report{processes}.json"));
        let output = naasc(&[
            "run",
            "examples/reduce.naas",
            "--input",
            input.to_str().unwrap(),
            "--key",
            "key",
            "--engine",
            "timely",
            "--processes",
            processes,
            "--workers",
            "1",
            "--network",
            "tree:fanout=2,depth=2",
            "--report",
            report.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let network = &report["network"];
        assert_eq!(network["entries_at_reducer"], report["keys"], "{processes}: {report}");
        assert_eq!(network["switches"], 6, "{processes}: {report}");
        assert!(network["ideal_entries_at_reducer"].is_null(), "{processes}: {report}");
    }
}
