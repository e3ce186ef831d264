//! `truc demo` (issue 5, point 6): on an empty folder it makes the PKI and three units, runs the
//! relay and three folder adapters, and shows a sample document reaching the province and the
//! commune with both 01 receipts back at the ministry; it keeps running until a signal and then
//! stops everything cleanly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

fn demo(dir: &std::path::Path, port: u16, once: bool) -> Command {
    let mut c = Command::new(truc_bin());
    c.args(["--lang", "en", "demo", "--port", &port.to_string(), "--dir"])
        .arg(dir);
    if once {
        c.arg("--once");
    }
    c
}

/// The relay id the demo printed for its document.
fn relay_id(stdout: &str) -> String {
    stdout
        .split("accepted by the relay, id")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no relay id in:\n{stdout}"))
        .to_owned()
}

#[test]
fn demo_shows_a_document_delivered_to_two_units_with_both_receipts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = demo(&dir, free_port(), true).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("accepted by the relay, id"), "{stdout}");
    assert_eq!(stdout.matches("  arrived at ").count(), 2, "{stdout}");
    assert!(stdout.contains("both 01 (arrived) receipts"), "{stdout}");
    // The timeline: both recipients at 01.
    assert_eq!(stdout.matches("— arrived (01)").count(), 2, "{stdout}");
    for folder in ["tinh", "xa"] {
        assert_eq!(count_files(&dir.join(folder).join("inbox"), ".edxml"), 1);
    }
    assert_eq!(count_files(&dir.join("bo").join("receipts"), ".edxml"), 2);
    assert_eq!(count_files(&dir.join("bo").join("sent"), ".result.json"), 1);

    let first_id = relay_id(&stdout);

    // Again on the same folder: the PKI and directory are reused, a new document goes through.
    let out = demo(&dir, free_port(), true).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("Made a development PKI"), "{stdout}");
    // A new package, not the first run's answered again: with a number of seconds in its
    // DocumentId, two runs within one second sent the same bytes and the relay took the second
    // for a resubmission (the count below then saw 2 receipts instead of 4).
    assert_ne!(relay_id(&stdout), first_id, "{stdout}");
    let receipts = dir.join("bo").join("receipts");
    let listing = || -> String {
        let mut names: Vec<String> = std::fs::read_dir(&receipts)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                        let about = text
                            .split("<edXML:DocumentId>")
                            .nth(1)
                            .and_then(|t| t.split('<').next())
                            .unwrap_or("?")
                            .to_owned();
                        format!("{} (about {about})", e.file_name().to_string_lossy())
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.join("\n")
    };
    assert_eq!(
        count_files(&receipts, ".edxml"),
        4,
        "receipts/ holds:\n{}\nsecond run said:\n{stdout}",
        listing()
    );
}

#[test]
fn demo_keeps_running_until_a_signal_then_stops_cleanly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let mut child = demo(&tmp.path().join("demo"), free_port(), false)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("demo ended early:\n{seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("press Ctrl-C to stop") {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        rest.iter().any(|l| l.contains("The demo has stopped")),
        "{rest:?}"
    );
}
