//! README.md's tour is a contract with new users: every `naasc` command of its command block
//! runs as written, from the repository root, on the data shipped in `examples/data/`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{naasc, root, stderr, stdout};

/// The `naasc` commands of the first `sh` block after the tour's heading.
fn tour_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let tour = &readme[readme.find("## A 30-second tour").expect("README.md has a tour")..];
    let block = tour.split("```sh\n").nth(1).expect("the tour has a command block");
    let block = &block[..block.find("```").expect("the command block is closed")];
    block.lines().filter(|line| !line.trim().is_empty()).map(str::to_string).collect()
}

#[test]
fn every_tour_command_runs_as_written() {
    let commands = tour_commands();
    assert!(commands.len() >= 8, "the tour shows the main commands: {commands:?}");
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "naasc", "every tour command is a naasc command: `{command}`");
        assert!(
            !command.contains(['\'', '"', '|', '>', '<', '$']),
            "no shell syntax the test would not reproduce: `{command}`"
        );
        let output = naasc(&words[1..]);
        assert!(output.status.success(), "`{command}` failed:\n{}", stderr(&output));
        let said = stdout(&output) + &stderr(&output);
        assert!(!said.trim().is_empty(), "`{command}` printed nothing");
    }
}

#[test]
fn the_shipped_data_shows_both_a_clean_run_and_skipped_rows() {
    let clean = naasc(&["run", "examples/reduce.naas", "--input", "examples/data/flights.csv", "--key", "carrier"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert_eq!(stdout(&clean).lines().count(), 9, "a header and eight carriers");
    let strict =
        naasc(&["run", "examples/histogram.naas", "--input", "examples/data/requests.csv", "--key", "service"]);
    assert_eq!(strict.status.code(), Some(1), "requests.csv holds invalid rows");
    assert!(stderr(&strict).contains("examples/data/requests.csv:"), "{}", stderr(&strict));
    let skipping = naasc(&[
        "run",
        "examples/histogram.naas",
        "--input",
        "examples/data/requests.csv",
        "--key",
        "service",
        "--skip-invalid",
    ]);
    assert!(skipping.status.success(), "{}", stderr(&skipping));
    assert!(stderr(&skipping).contains("invalid row(s) of 3000:"), "{}", stderr(&skipping));
}
