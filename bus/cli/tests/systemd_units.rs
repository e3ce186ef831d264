//! `ops/systemd/truc-relay.service`: hardened (a user of its own, read-only system, no new
//! privileges, a file limit, restart on failure), and its commands are ones `truc` understands:
//! every `Exec*` line runs (with `--check`) against a valid configuration, every flag is in
//! `truc serve --help`, and `systemd-analyze verify` accepts the unit when it is installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn unit_file() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/systemd/truc-relay.service"),
    )
    .unwrap()
}

/// `(key, value)` of every setting (comments and section headers skipped).
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn value<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_relay_service_is_hardened_and_runs_commands_truc_understands() {
    let text = unit_file();
    let s = settings(&text);
    assert_eq!(value(&s, "User"), ["truc"]);
    assert_eq!(value(&s, "ProtectSystem"), ["strict"]);
    assert_eq!(value(&s, "NoNewPrivileges"), ["yes"]);
    assert_eq!(value(&s, "ReadWritePaths"), ["/var/lib/truc"]);
    assert_eq!(value(&s, "Restart"), ["on-failure"]);
    assert_eq!(
        value(&s, "KillSignal"),
        ["SIGTERM"],
        "truc serve stops cleanly on it"
    );
    let nofile: u64 = value(&s, "LimitNOFILE")[0].parse().unwrap();
    assert!(nofile >= 65_536, "{nofile}");

    let help = Command::new(env!("CARGO_BIN_EXE_truc"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("truc.toml");
    std::fs::write(&config, "version = 1\ndata_dir = \"data\"\n").unwrap();
    let mut execs = value(&s, "ExecStartPre");
    execs.extend(value(&s, "ExecStart"));
    assert_eq!(execs.len(), 2);
    for exec in execs {
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/truc", "{exec}");
        assert_eq!(words[1], "serve", "{exec}");
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{flag} is in truc serve --help"
            );
        }
        // The same arguments, the configuration swapped for a valid one, checked only.
        let mut args: Vec<String> = words[1..]
            .iter()
            .map(|w| {
                if *w == "/etc/truc/truc.toml" {
                    config.to_str().unwrap().to_owned()
                } else {
                    (*w).to_owned()
                }
            })
            .collect();
        if !args.iter().any(|a| a == "--check") {
            args.push("--check".into());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_truc"))
            .args(&args)
            .env_remove("TRUC_DATA")
            .env_remove("TRUC_CONFIG")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{exec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // systemd's own check, where systemd is installed: the unit with the binary where it is.
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not installed: the unit was checked against truc only");
        return;
    };
    assert!(version.status.success());
    let unit = tmp.path().join("truc-relay.service");
    std::fs::write(
        &unit,
        text.replace(
            "/usr/local/bin/truc ",
            &format!("{} ", env!("CARGO_BIN_EXE_truc")),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", unit.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}
