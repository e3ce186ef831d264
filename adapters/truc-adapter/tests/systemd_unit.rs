//! `ops/systemd/truc-adapter.service`: hardened (a user of its own, read-only system, no new
//! privileges, a file limit, restarted), its commands are ones `truc-adapter` understands (every
//! flag is in `truc-adapter --help`), and `systemd-analyze verify` accepts it when installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_adapter_service_is_hardened_and_runs_commands_truc_adapter_understands() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/systemd/truc-adapter.service"),
    )
    .unwrap();
    let settings: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {l}"))
        })
        .collect();
    let value = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(value("User"), ["truc-adapter"]);
    assert_eq!(value("ProtectSystem"), ["strict"]);
    assert_eq!(value("NoNewPrivileges"), ["yes"]);
    assert_eq!(value("ReadWritePaths"), ["/var/lib/truc-adapter"]);
    assert_eq!(value("Restart"), ["always"]);
    assert!(value("LimitNOFILE")[0].parse::<u64>().unwrap() >= 4096);

    let help = Command::new(env!("CARGO_BIN_EXE_truc-adapter"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let mut execs = value("ExecStartPre");
    execs.extend(value("ExecStart"));
    assert_eq!(execs.len(), 2);
    for exec in &execs {
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/truc-adapter", "{exec}");
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{flag} is in truc-adapter --help:\n{help}"
            );
        }
    }
    // --check with a missing configuration file fails with exit 2 (it is read, not ignored).
    let out = Command::new(env!("CARGO_BIN_EXE_truc-adapter"))
        .args(["--config", "/nonexistent/adapter.toml", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not installed: the unit was checked against truc-adapter only");
        return;
    };
    assert!(version.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let unit = tmp.path().join("truc-adapter.service");
    std::fs::write(
        &unit,
        text.replace(
            "/usr/local/bin/truc-adapter ",
            &format!("{} ", env!("CARGO_BIN_EXE_truc-adapter")),
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
