//! The example corpus in `schemas/examples/` is the reader's golden test set: its README holds one row per file
//! (verdict, diagnostic codes, limits, reason). This test holds the files, the README and the reader to each other,
//! and checks that every usable example, once canonically written, is accepted by our XSD under `xmllint`.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use edxml::{Limits, Severity};

struct Row {
    file: String,
    usable: bool,
    codes: Vec<String>,
    limits: Limits,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/examples")
}

fn rows() -> Vec<Row> {
    let readme =
        std::fs::read_to_string(examples_dir().join("README.md")).expect("examples README");
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 5, "README row must have 5 cells: {line}");
            let file = cells[0].trim_matches('`').to_string();
            let usable = match cells[1] {
                "usable" => true,
                "rejected" => false,
                other => panic!("unknown verdict {other:?} in row {line}"),
            };
            let codes = if cells[2] == "—" {
                Vec::new()
            } else {
                cells[2].split(',').map(|c| c.trim().to_string()).collect()
            };
            let mut limits = Limits::default();
            if cells[3] != "default" {
                for setting in cells[3].split(',') {
                    let (key, value) = setting.trim().split_once('=').expect("limit as key=value");
                    let value: usize = value.parse().expect("limit value is a number");
                    match key {
                        "max_bytes" => limits.max_bytes = value,
                        "max_depth" => limits.max_depth = value,
                        other => panic!("unknown limit {other} in row {line}"),
                    }
                }
            }
            assert!(!cells[4].is_empty(), "every example needs a reason: {line}");
            Row {
                file,
                usable,
                codes,
                limits,
            }
        })
        .collect()
}

fn files_on_disk() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for sub in ["valid", "invalid"] {
        for entry in std::fs::read_dir(examples_dir().join(sub)).expect("examples subdir") {
            let name = entry
                .expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name");
            files.insert(format!("{sub}/{name}"));
        }
    }
    files
}

#[test]
fn readme_and_files_agree() {
    let listed: BTreeSet<String> = rows().into_iter().map(|r| r.file).collect();
    let on_disk = files_on_disk();
    assert_eq!(
        listed, on_disk,
        "schemas/examples/README.md must list exactly the files present"
    );
    assert!(
        on_disk.len() >= 20,
        "the corpus needs at least 20 packages, has {}",
        on_disk.len()
    );
    for row in rows() {
        let in_valid = row.file.starts_with("valid/");
        assert_eq!(
            in_valid, row.usable,
            "{}: usable files live in valid/, rejected ones in invalid/",
            row.file
        );
    }
}

#[test]
fn every_rejection_reason_has_an_example() {
    let rejected: BTreeSet<String> = rows()
        .into_iter()
        .filter(|r| !r.usable)
        .flat_map(|r| r.codes)
        .collect();
    for code in [
        "not_xml",
        "doctype",
        "entity",
        "too_deep",
        "too_large",
        "not_edxml",
        "no_from",
        "no_to",
        "bad_attachment",
        "missing_attachment",
        "no_status_code",
        "no_response_for",
    ] {
        assert!(
            rejected.contains(code),
            "no invalid example for rejection {code}"
        );
    }
}

#[test]
fn reader_verdicts_match_the_readme() {
    let mut failures = Vec::new();
    for row in rows() {
        let bytes = std::fs::read(examples_dir().join(&row.file)).expect("example file");
        match (edxml::read(&bytes, &row.limits), row.usable) {
            (Ok(parsed), true) => {
                let got: BTreeSet<&str> = parsed.findings.iter().map(|f| f.code).collect();
                if row.codes.is_empty() && !got.is_empty() {
                    failures.push(format!("{}: expected no finding, got {got:?}", row.file));
                }
                for code in &row.codes {
                    if !got.contains(code.as_str()) {
                        failures.push(format!(
                            "{}: expected warning {code}, got {got:?}",
                            row.file
                        ));
                    }
                }
                for f in &parsed.findings {
                    if f.severity != Severity::Warning {
                        failures.push(format!(
                            "{}: a usable package reported an error {}",
                            row.file, f.code
                        ));
                    }
                    if f.line == 0
                        || f.column == 0
                        || f.message.vi.is_empty()
                        || f.message.en.is_empty()
                    {
                        failures.push(format!(
                            "{}: finding {} lacks a position or a message",
                            row.file, f.code
                        ));
                    }
                }
            }
            (Err(rejected), false) => {
                let first = rejected
                    .findings
                    .iter()
                    .find(|f| f.severity == Severity::Error);
                match first {
                    None => {
                        failures.push(format!("{}: rejected without an error finding", row.file))
                    }
                    Some(err) => {
                        if err.code != row.codes[0] {
                            failures.push(format!(
                                "{}: expected error {}, got {}",
                                row.file, row.codes[0], err.code
                            ));
                        }
                        if err.line == 0 || err.column == 0 {
                            failures.push(format!(
                                "{}: error {} has no line/column",
                                row.file, err.code
                            ));
                        }
                        if err.message.vi.is_empty()
                            || err.message.en.is_empty()
                            || err.message.vi == err.message.en
                        {
                            failures.push(format!(
                                "{}: error {} needs a Vietnamese and an English message",
                                row.file, err.code
                            ));
                        }
                    }
                }
            }
            (Ok(_), false) => failures.push(format!(
                "{}: expected a rejection, the reader accepted it",
                row.file
            )),
            (Err(rejected), true) => {
                let codes: Vec<&str> = rejected.findings.iter().map(|f| f.code).collect();
                failures.push(format!(
                    "{}: expected usable, rejected with {codes:?}",
                    row.file
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "example corpus mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn usable_examples_round_trip_and_pass_the_schema_after_formatting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut written = Vec::new();
    for row in rows().into_iter().filter(|r| r.usable) {
        let bytes = std::fs::read(examples_dir().join(&row.file)).expect("example file");
        let parsed = edxml::read(&bytes, &row.limits).expect("usable example reads");
        let canonical = edxml::to_bytes(&parsed.package);
        let again = edxml::read(&canonical, &Limits::default()).expect("canonical form reads back");
        assert!(
            again.findings.is_empty(),
            "{}: canonical form still has findings {:?}",
            row.file,
            again.findings.iter().map(|f| f.code).collect::<Vec<_>>()
        );
        assert_eq!(
            again.package, parsed.package,
            "{}: canonical form changes the model",
            row.file
        );
        assert_eq!(
            edxml::to_bytes(&again.package),
            canonical,
            "{}: writing twice differs",
            row.file
        );
        let out = dir.path().join(row.file.replace('/', "-"));
        std::fs::write(&out, &canonical).expect("write canonical");
        written.push(out);
    }
    let schema = examples_dir().join("../edxml.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .args(&written)
        .output()
        .expect(
            "xmllint must be installed (Debian package libxml2-utils; ops/test.sh installs it)",
        );
    assert!(
        output.status.success(),
        "xmllint rejected canonical examples:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
