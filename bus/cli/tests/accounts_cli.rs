//! `truc accounts …` as an operator runs it: the real binary, a real data directory, exit codes
//! and output checked; the file it writes is what the portal reads.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn truc(data: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_truc"));
    c.args(args)
        .env_remove("TRUC_LANG")
        .env_remove("TRUC_CONFIG")
        .env_remove("TRUC_PASSWORD")
        .env("TRUC_DATA", data)
        .stdin(std::process::Stdio::null());
    if let Some(p) = password {
        c.env("TRUC_PASSWORD", p);
    }
    c.output().expect("run truc")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn add_list_disable_and_the_portal_reads_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let o = truc(
        &data,
        Some("mat-khau-van-thu"),
        &["accounts", "add", "vanthu", "--unit", "000.00.00.H41"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("văn thư \"vanthu\" của đơn vị 000.00.00.H41"),
        "{}",
        out(&o)
    );
    let o = truc(
        &data,
        Some("mat-khau-quan-tri"),
        &["accounts", "add", "quantri", "--operator"],
    );
    assert!(o.status.success(), "{}", out(&o));

    // The same name twice, a short password, neither --unit nor --operator: refused, named.
    let o = truc(
        &data,
        Some("mat-khau-van-thu"),
        &["accounts", "add", "vanthu", "--unit", "000.00.00.H42"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("[accounts.exists]"), "{}", out(&o));
    let o = truc(
        &data,
        Some("ngan"),
        &[
            "--lang",
            "en",
            "accounts",
            "add",
            "x",
            "--unit",
            "000.00.00.H42",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("at least 10 characters"), "{}", out(&o));
    let o = truc(&data, Some("mat-khau-van-thu"), &["accounts", "add", "y"]);
    assert_ne!(o.status.code(), Some(0));

    let o = truc(&data, None, &["accounts", "list", "--json"]);
    assert!(o.status.success(), "{}", out(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["unit"], "000.00.00.H41");
    assert_eq!(rows[1]["role"], "operator");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("argon2"),
        "no hashes printed"
    );

    let o = truc(&data, None, &["accounts", "disable", "vanthu"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = truc(&data, None, &["accounts", "disable", "ai-do"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("[accounts.unknown]"));

    // What the portal reads: the account is disabled, the password verifies, never stored.
    let text = std::fs::read_to_string(data.join("accounts.json")).unwrap();
    assert!(!text.contains("mat-khau"));
    let book = portal::AccountBook::new(data.join("accounts.json"));
    let a = book.get("vanthu").unwrap();
    assert!(a.disabled);
    assert!(a.verify("mat-khau-van-thu"));
    assert!(book.get("quantri").unwrap().verify("mat-khau-quan-tri"));
}
