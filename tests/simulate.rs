//! End-to-end tests of `naasc simulate` and `naasc run --target switch-sim` on inputs that
//! used to crash, hang, take quadratic time or give a wrong answer: huge key spaces and
//! topologies, long chains, fixed-point rounding, faults in `finish`, extreme flags, and
//! what the reports say.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::time::Instant;

use common::{naasc, stderr, stdout, temp_file};

fn simulate(args: &[&str]) -> std::process::Output {
    naasc(&[&["simulate"][..], args].concat())
}

/// A zipf key space is sized by what is drawn, not by `--keys`: 2^32 - 1 keys used to
/// allocate a 34 GB table (and abort), 10^8 keys 790 MB for 1,000 records.
#[test]
fn zipf_over_huge_key_spaces_runs_in_constant_memory() {
    for keys in ["4294967295", "100000000", "65537"] {
        for dist in ["zipf:1.1", "zipf:0.5", "zipf:1", "uniform"] {
            let out = simulate(&["examples/reduce.naas", "--records", "1000", "--keys", keys, "--dist", dist]);
            assert_eq!(out.status.code(), Some(0), "{keys} {dist}: {}", stderr(&out));
            assert!(stdout(&out).contains("1000 records over"), "{}", stdout(&out));
        }
    }
}

/// Topologies are counted exactly before anything is built.
#[test]
fn oversized_topologies_are_rejected_before_building() {
    for (topology, expected) in [
        ("leaf-spine:leaves=340000,spines=340000,hosts=1", "115600680001 links, more than the limit of 1048576"),
        ("tree:fanout=1,depth=4294967295", "4294967297 nodes, more than the limit of 1048576"),
        ("tree:fanout=1,depth=2000000", "2000002 nodes, more than the limit of 1048576"),
        ("tree:fanout=3,depth=4294967295", "more than 1048576 nodes"),
    ] {
        let started = Instant::now();
        let out = simulate(&["examples/reduce.naas", "--topology", topology, "--records", "10"]);
        assert_eq!(out.status.code(), Some(2), "{topology}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{topology}: {}", stderr(&out));
        assert!(started.elapsed().as_secs() < 20, "{topology}: {:?}", started.elapsed());
    }
}

/// A chain-shaped topology file of 100,000 nodes, declared leaf first, simulates in linear
/// time (it took 49 s in a release build, quadratic in the chain's length).
#[test]
fn a_long_chain_simulates_in_linear_time() {
    let n = 100_000;
    let mut text = format!("mapper m parent s{}\n", n - 3);
    for i in (1..n - 2).rev() {
        text.push_str(&format!("switch s{i} parent s{}\n", i - 1));
    }
    text.push_str("switch s0 parent r\nreducer r\n");
    let path = temp_file("chain.topo", text.as_bytes());
    let started = Instant::now();
    let out =
        simulate(&["examples/reduce.naas", "--topology", path.to_str().unwrap(), "--records", "20", "--keys", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("result matches the centralised reference: true"));
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

const FLOAT_SUM: &str = "aggregate total(x: f64) -> f64:\n    return sum(x)\n";

/// Runs `source` on `csv` on the host and on switch-sim with `extra` flags; returns both
/// outputs.
fn host_and_switch(source: &str, csv: &str, extra: &[&str]) -> (std::process::Output, std::process::Output) {
    let program = temp_file("job.naas", source.as_bytes());
    let input = temp_file("input.csv", csv.as_bytes());
    let base = ["run", program.to_str().unwrap(), "--input", input.to_str().unwrap(), "--key", "k"];
    let host = naasc(&base);
    let switch = naasc(&[&base[..], &["--target", "switch-sim"], extra].concat());
    (host, switch)
}

fn total(output: &std::process::Output) -> f64 {
    let out = stdout(output);
    let line = out.lines().nth(1).unwrap_or_else(|| panic!("no result in {out:?} / {}", stderr(output)));
    line.split(',').nth(1).unwrap().parse().unwrap()
}

/// Fixed-point sums are rounded once per entry; the comparison with the central merge allows
/// the bound of spec section 15.5 (N / (2S) per sum) instead of failing correct jobs.
#[test]
fn fixed_point_jobs_match_within_the_rounding_bound() {
    let mut many = String::from("k,x\n");
    let mut seed = 12345u64;
    for _ in 0..20_000 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        many.push_str(&format!("a,{:.6}\n", (seed >> 11) as f64 / (1u64 << 53) as f64 * 1000.0));
    }
    for (csv, scale, records) in
        [("k,x\na,0.0004\na,0.0004\na,0.0004\n".to_string(), "1000", 3.0), (many, "1000", 20_000.0)]
    {
        let (host, switch) = host_and_switch(FLOAT_SUM, &csv, &["--fixed-point", scale]);
        assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));
        assert_eq!(switch.status.code(), Some(0), "{}", stderr(&switch));
        let bound = records / (2.0 * scale.parse::<f64>().unwrap());
        assert!((total(&host) - total(&switch)).abs() <= bound * 1.000_001, "{} vs {}", total(&host), total(&switch));
    }
    // `naasc simulate` of a float program in fixed point: the generator draws values that
    // fit the scale (it used to stop on its edge value 1e300).
    let program = temp_file("float.naas", FLOAT_SUM.as_bytes());
    for scale in ["1", "1000", "1000000000"] {
        let out = simulate(&[program.to_str().unwrap(), "--fixed-point", scale, "--records", "20000", "--keys", "7"]);
        assert_eq!(out.status.code(), Some(0), "scale {scale}: {}", stderr(&out));
        assert!(stdout(&out).contains("result matches the centralised reference: true"), "{}", stdout(&out));
    }
}

/// A fault in `finish` is the program's: the same located message as on the host, not a
/// network mismatch.
#[test]
fn finish_faults_are_reported_as_on_the_host() {
    let source = "aggregate inv(x: i64) -> i64:\n    return 1000 // (sum(x) - sum(x))\n";
    let (host, switch) = host_and_switch(source, "k,x\na,1\na,2\n", &[]);
    assert_eq!(host.status.code(), Some(1));
    assert_eq!(switch.status.code(), Some(1));
    let message = stderr(&host);
    assert!(message.contains("key `a`: integer division by zero in `inv.finish`"), "{message}");
    assert!(message.contains(":2:12: the operation that faulted"), "{message}");
    assert!(stderr(&switch).ends_with(&message), "{} vs {message}", stderr(&switch));
    let program = temp_file("inv.naas", source.as_bytes());
    let out = simulate(&[program.to_str().unwrap(), "--records", "100", "--keys", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("naasc: error: key `0`: integer division by zero in `inv.finish`"), "{message}");
    assert!(message.contains("inv.naas:2:12: the operation that faulted"), "{message}");
    assert!(!message.contains("differ"), "{message}");
}

/// Limits are documented and named in their messages; values are shown cut.
#[test]
fn limits_and_messages_are_clear() {
    let out = simulate(&["examples/reduce.naas", "--loss", "0.999", "--records", "100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--loss must be at most 0.99"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("internal error"), "{}", stderr(&out));
    let out =
        simulate(&["examples/reduce.naas", "--loss", "0.99", "--records", "50", "--topology", "tree:fanout=2,depth=0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = simulate(&["examples/reduce.naas", "--slots", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--slots must be between 1 and 67108864"), "{}", stderr(&out));
    let huge = format!("{}", 1e300);
    for (flag, value) in [
        ("--loss", huge.as_str()),
        ("--dist", &format!("zipf:{huge}x")),
        ("--topology", &format!("tree:fanout={huge}")),
    ] {
        let out = simulate(&["examples/reduce.naas", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(stderr(&out).len() < 400 && stderr(&out).contains("characters)"), "{flag}: {}", stderr(&out));
    }
    let out = simulate(&["examples/reduce.naas", "--topology", "file:/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("larger than 67108864 bytes, the limit of a topology file"), "{}", stderr(&out));
    // More keys than the profile's key bits can name: the message names the profile's
    // `key_bits`, not an internal parameter.
    let profile = std::fs::read_to_string(common::root().join("targets/switch/profiles/tofino1.toml")).unwrap();
    let profile = temp_file("narrow.toml", profile.replace("key_bits = 32", "key_bits = 8").as_bytes());
    let csv: String = std::iter::once("k,x\n".to_string()).chain((0..300).map(|i| format!("key{i},{i}\n"))).collect();
    let (_, switch) = host_and_switch(
        "aggregate s(x: i64) -> i64:\n    return sum(x)\n",
        &csv,
        &["--profile", profile.to_str().unwrap()],
    );
    assert_eq!(switch.status.code(), Some(1), "{}", stderr(&switch));
    let message = stderr(&switch);
    assert!(message.contains("300 keys do not fit the profile `tofino1`: its `key_bits` = 8"), "{message}");
    assert!(message.contains("at most 255 distinct keys") && !message.contains("`keys` must"), "{message}");
}

/// The report spells the slot index as the flag does, and counts of one are singular.
#[test]
fn reports_read_well() {
    let report = temp_file("report.json", b"");
    let out = simulate(&[
        "examples/reduce.naas",
        "--topology",
        "tree:fanout=1,depth=0",
        "--records",
        "1",
        "--keys",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["slot_index"], "hash");
    let text = stdout(&out);
    assert!(text.contains("(1 mapper, 0 switches, "), "{text}");
    assert!(text.contains("1 record over 1 key"), "{text}");
    assert!(text.contains(": 1 link, "), "{text}");
    assert!(text.contains(", 1 entry\n"), "{text}");
    assert!(!text.contains(" 1 links") && !text.contains(" 1 entries") && !text.contains(" 1 packets"), "{text}");
    let out = simulate(&[
        "examples/reduce.naas",
        "--slot-index",
        "direct",
        "--records",
        "10",
        "--keys",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["slot_index"], "direct");
}

/// `--lanes`, `--max-passes` and `--profile tofino2` reach the lowering and the simulator, and
/// the reports say what they chose: lanes, slots per lane, passes and the share of line rate.
#[test]
fn lanes_passes_and_profiles_are_reported() {
    let out = naasc(&["compile", "examples/reduce.naas", "--target", "switch-sim", "--lanes", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("lanes                2 (the packet size allows 52"), "{text}");
    assert!(text.contains("key slots per lane   163840"), "{text}");
    assert!(text.contains("passes               1 (at line rate)"), "{text}");

    let out = naasc(&["compile", "examples/reduce.naas", "--target", "switch-sim", "--profile", "tofino2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("resources on tofino2:"), "{}", stdout(&out));
    assert!(stdout(&out).contains("of 20 per pass"), "{}", stdout(&out));

    // More lanes than a packet carries is the program's error, naming the flag and the bound.
    let out = naasc(&["compile", "examples/reduce.naas", "--target", "switch-sim", "--lanes", "60"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("`--lanes 60`: a packet of `tofino1` carries 1 to 52 entries"), "{}", stderr(&out));
    let out = naasc(&["compile", "examples/reduce.naas", "--target", "switch-sim", "--max-passes", "17"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // A state that needs recirculation: rejected at line rate, simulated exactly with it.
    let source = "aggregate wide(x: u32) -> array[u32, 120]:\n    identity = [0] * 120\n\n    def lift(x: u32) -> array[u32, 120]:\n        h: array[u32, 120] = [0] * 120\n        h[x % 120] = 1\n        return h\n\n    def merge(a: array[u32, 120], b: array[u32, 120]) -> array[u32, 120]:\n        out = a\n        for i in range(120):\n            out[i] += b[i]\n        return out\n";
    let path = temp_file("wide.naas", source.as_bytes());
    let file = path.to_str().unwrap();
    let out = naasc(&["compile", file, "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("error[E0605]"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-passes N"), "{}", stderr(&out));
    let out = simulate(&[
        file,
        "--max-passes",
        "2",
        "--records",
        "500",
        "--keys",
        "20",
        "--loss",
        "0.01",
        "--dup",
        "0.001",
        "--reorder",
        "0.05",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("2 passes (recirculated: 0.500 of line rate)"), "{text}");
    assert!(text.contains("result matches the centralised reference: true"), "{text}");
}

/// The latest-value example lowers to one register pair per lane (two comparison units on
/// the timestamps, the values' max in a sub-ALU on a tie), simulates exactly under loss,
/// duplication and reordering, and `naasc run --target switch-sim` gives the host's result,
/// ties in the timestamp broken by the larger value.
#[test]
fn latest_value_runs_in_the_switch_exactly() {
    let out = naasc(&["compile", "examples/latest.naas", "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "(r1, r2) = latest.max((r1, r2), (e0, e1))   if f0   [c0 = e0 >.u r1, c1 = e0 == r1; if c0: r1 = e0, r2 = e1; if c1: r2 = max.s(r2, e1)]"
        ),
        "{}",
        stdout(&out)
    );
    let out = simulate(&[
        "examples/latest.naas",
        "--records",
        "20000",
        "--keys",
        "300",
        "--dist",
        "zipf:1.1",
        "--loss",
        "0.01",
        "--dup",
        "0.001",
        "--reorder",
        "0.05",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("result matches the centralised reference: true"), "{}", stdout(&out));
    let csv = "sensor,timestamp,value\na,5,10\nb,3,1\na,7,-4\na,7,2\nb,3,9\nc,1,1\nc,0,100\n";
    let input = temp_file("latest.csv", csv.as_bytes());
    let input = input.to_str().unwrap();
    let host = naasc(&["run", "examples/latest.naas", "--input", input, "--key", "sensor"]);
    let switch = naasc(&["run", "examples/latest.naas", "--input", input, "--key", "sensor", "--target", "switch-sim"]);
    assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));
    assert_eq!(switch.status.code(), Some(0), "{}", stderr(&switch));
    assert_eq!(stdout(&host), "sensor,latest.0,latest.1\na,7,2\nb,3,9\nc,1,1\n");
    assert_eq!(stdout(&switch), stdout(&host));
}

/// A latest-value pair whose timestamps tie often (`u8`, 20,000 records over 50 keys), so
/// that the pair's tie action (the values' max) decides many merges, with the fields in the
/// other order and the smaller pair kept: exact under loss, duplication and reordering.
#[test]
fn latest_value_with_frequent_timestamp_ties_is_exact() {
    let source = "aggregate earliest(t: u8, v: i16) -> tuple[i16, u8]:\n    identity = (I16_MAX, U8_MAX)\n\n    def lift(t: u8, v: i16) -> tuple[i16, u8]:\n        return v, t\n\n    def merge(a: tuple[i16, u8], b: tuple[i16, u8]) -> tuple[i16, u8]:\n        if a[1] < b[1] or (a[1] == b[1] and a[0] <= b[0]):\n            return a\n        return b\n";
    let file = temp_file("earliest.naas", source.as_bytes());
    let file = file.to_str().unwrap();
    let out = naasc(&["compile", file, "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("if c1: r1 = min.s(r1, e0)"), "{}", stdout(&out));
    for seed in ["1", "2"] {
        let out = simulate(&[
            file,
            "--records",
            "20000",
            "--keys",
            "50",
            "--loss",
            "0.01",
            "--dup",
            "0.001",
            "--reorder",
            "0.05",
            "--seed",
            seed,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("result matches the centralised reference: true"), "{text}");
    }
}

/// `top_k.naas` (the K largest, a merge of sorted runs) lowers to an insertion chain,
/// simulates exactly under loss, duplication and reordering, and the reducer receives at
/// most K values per key per child (exactly the bound with direct slots, where nothing
/// collides); a switch's K-runs are charged a pass per value.
#[test]
fn top_k_runs_in_the_switch_exactly_within_k_values_per_child() {
    let out = naasc(&["compile", "examples/top_k.naas", "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("insertion chain: 4 elements of 2 words"), "{}", stdout(&out));
    assert!(stdout(&out).contains("(r2, v.w1) = cas.max.s(r2, v.w1) -> f1"), "{}", stdout(&out));
    for index in ["direct", "hash"] {
        let report = temp_file("top_k.json", b"");
        let out = simulate(&[
            "examples/top_k.naas",
            "--topology",
            "tree:fanout=4,depth=2",
            "--records",
            "30000",
            "--keys",
            "200",
            "--dist",
            "zipf:1.1",
            "--loss",
            "0.01",
            "--dup",
            "0.001",
            "--reorder",
            "0.05",
            "--slot-index",
            index,
            "--report",
            report.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("result matches the centralised reference: true"), "{text}");
        assert!(text.contains("at most 4 per key per child"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let number = |key: &str| json[key].as_u64().unwrap_or_else(|| panic!("{key} in {json}"));
        assert_eq!(number("insertion_chain"), 4);
        assert_eq!(number("values_bound_at_reducer"), 4 * number("ideal_entries_at_reducer"));
        assert!(number("values_at_reducer") > 0);
        if index == "direct" {
            assert_eq!(number("collisions"), 0, "{text}");
            assert!(number("values_at_reducer") <= number("values_bound_at_reducer"), "{text}");
        }
        // Mappers' one-value runs take one pass; switches' flushed runs up to four.
        assert!(number("pipeline_passes") > number("switch_packets"), "{text}");
        assert!(number("pipeline_passes") <= 4 * number("switch_packets"), "{text}");
        let fraction = json["line_rate_fraction"].as_f64().unwrap();
        assert!((0.25..1.0).contains(&fraction), "{fraction}");
    }
}

/// `naasc run --target switch-sim` gives the host's result for the K largest (i64, with
/// ties, the extremes and keys with fewer than K values) and for the K smallest (i32, the
/// mirror form with one counter).
#[test]
fn top_and_bottom_k_run_on_switch_sim_as_on_the_host() {
    let mut csv = String::from("k,x\n");
    let mut state = 7u64;
    for row in 0..3000u64 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let key = (state >> 33) % 97;
        let x = match row % 11 {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => 5,
            _ => (state >> 20) as i64 % 1000 - 500,
        };
        csv.push_str(&format!("k{key},{x}\n"));
    }
    csv.push_str("lonely,3\n");
    let top_k = std::fs::read_to_string(common::root().join("examples/top_k.naas")).unwrap();
    let (host, switch) = host_and_switch(&top_k, &csv, &[]);
    assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));
    assert_eq!(switch.status.code(), Some(0), "{}", stderr(&switch));
    assert!(stdout(&host).contains("lonely,3,-9223372036854775808"), "{}", stdout(&host));
    assert_eq!(stdout(&switch), stdout(&host));
    let bottom = "aggregate low(x: i32) -> array[i32, 3]:\n    identity = [I32_MAX] * 3\n\n    def lift(x: i32) -> array[i32, 3]:\n        out = [I32_MAX] * 3\n        out[0] = x\n        return out\n\n    def merge(a: array[i32, 3], b: array[i32, 3]) -> array[i32, 3]:\n        out = [I32_MAX] * 3\n        i = 0\n        for n in range(3):\n            j = n - i\n            if a[i] <= b[j]:\n                out[n] = a[i]\n                i += 1\n            else:\n                out[n] = b[j]\n        return out\n";
    let narrow: String = csv
        .lines()
        .map(|line| match line.split_once(',') {
            Some((k, x)) if k != "k" => format!("{k},{}\n", x.parse::<i64>().unwrap().clamp(-1000, 1000)),
            _ => format!("{line}\n"),
        })
        .collect();
    let (host, switch) = host_and_switch(bottom, &narrow, &["--lanes", "2"]);
    assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));
    assert_eq!(switch.status.code(), Some(0), "{}", stderr(&switch));
    assert_eq!(stdout(&switch), stdout(&host));
    // The switches merged (the job did not fall back to the host).
    assert!(stderr(&switch).contains(" merges") && !stderr(&switch).contains("made 0 merges"), "{}", stderr(&switch));
}

/// Merges that look like a merge of sorted runs but are not one are never lowered. The two
/// largest *distinct* values (equal heads are taken once) are a lawful aggregate that the
/// host runs, and the switch target keeps E0602 at the indexes with a note giving two runs
/// on which it is not the top K; taking the smaller head first is not even lawful, and the
/// merge-law checker rejects it before lowering.
#[test]
fn a_near_miss_top_k_keeps_its_diagnostic() {
    let top_k = std::fs::read_to_string(common::root().join("examples/top_k.naas")).unwrap();
    let distinct = top_k.replace(
        "            if a[i] >= b[j]:\n                out[n] = a[i]\n                i += 1\n",
        "            if a[i] == b[j]:\n                out[n] = a[i]\n                i += 1\n                j += 1\n            elif a[i] > b[j]:\n                out[n] = a[i]\n                i += 1\n",
    );
    assert_ne!(distinct, top_k);
    let program = temp_file("distinct.naas", distinct.as_bytes());
    let out = naasc(&["compile", program.to_str().unwrap(), "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("error[E0602]"), "{text}");
    assert!(text.contains("it is not one: for the sorted runs"), "{text}");
    let host = naasc(&["check", program.to_str().unwrap()]);
    assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));

    let smaller_first = top_k.replace("a[i] >= b[j]", "a[i] <= b[j]");
    let program = temp_file("near_miss.naas", smaller_first.as_bytes());
    let out = naasc(&["compile", program.to_str().unwrap(), "--target", "switch-sim"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("error[E0503]") && stderr(&out).contains("def merge"), "{}", stderr(&out));
}
