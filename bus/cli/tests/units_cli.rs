//! `truc units …` as an operator runs it: the real binary, a real data directory, the sample files
//! under `schemas/units/`, exit codes and output checked.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn truc(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_truc"))
        .args(args)
        .env_remove("TRUC_LANG")
        .env("TRUC_DATA", data)
        .output()
        .expect("run truc")
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/units")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    (tmp, data)
}

#[test]
fn import_then_list_and_show_in_vietnamese() {
    let (_tmp, data) = data_dir();
    let out = truc(&data, &["units", "import", &sample("sample.csv")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("Đã nhập 11 đơn vị (11 mới, 0 thay thế), 4 mã cũ, 5 nhóm"),
        "{text}"
    );
    assert!(text.contains("danh bạ hiện có 11 đơn vị"), "{text}");

    // list --under takes an old code and is recursive
    let out = truc(&data, &["units", "list", "--under", "T41"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "000.00.01.H41  Ủy ban nhân dân thành phố Nha Trang",
            "000.00.02.H41  Ủy ban nhân dân huyện Cam Lâm",
            "000.01.01.H41  Ủy ban nhân dân phường Lộc Thọ, thành phố Nha Trang",
            "000.01.02.H41  Ủy ban nhân dân xã Cam Hải Đông, huyện Cam Lâm  (tạm ngừng)",
            "000.02.01.H41  Ủy ban nhân dân phường Vĩnh Hải, thành phố Nha Trang",
        ]
    );
    assert!(stderr(&out).contains("5 đơn vị"));

    let out = truc(&data, &["units", "show", "X41.01.01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("X41.01.01 là mã cũ của 000.01.01.H41."),
        "{text}"
    );
    assert!(
        text.contains("Đơn vị cha: 000.00.01.H41 (Ủy ban nhân dân thành phố Nha Trang)"),
        "{text}"
    );
    assert!(text.contains("Trạng thái: đang hoạt động"), "{text}");

    let out = truc(&data, &["units", "show", "000.00.00.H41"]);
    assert!(
        stdout(&out).contains("Đơn vị trực thuộc: 2 trực tiếp, 5 tất cả các cấp"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_output_and_the_json_import_form() {
    let (_tmp, data) = data_dir();
    // --data on the command line wins over TRUC_DATA
    let other = data.with_file_name("other");
    let out = truc(
        &data,
        &[
            "units",
            "--data",
            other.to_str().unwrap(),
            "import",
            &sample("sample.csv"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = truc(&data, &["units", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        units.as_array().unwrap().len(),
        0,
        "TRUC_DATA's directory is still empty"
    );

    let data = other;
    let out = truc(
        &data,
        &["units", "import", &sample("sample.json"), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["report"]["units"], 3);
    assert_eq!(report["directory_units"], 14);

    let out = truc(
        &data,
        &["units", "list", "--group", "nam_trung_bo", "--json"],
    );
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["000.00.00.H41", "000.00.00.H42", "000.00.00.H43"]);

    let out = truc(&data, &["units", "show", "000.01.02.H41", "--json"]);
    let unit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unit["state"], "suspended");
    assert_eq!(unit["parent"], "000.00.02.H41");
    assert_eq!(unit["groups"], serde_json::json!(["xa"]));
}

#[test]
fn a_bad_file_lists_every_problem_and_imports_nothing() {
    let (tmp, data) = data_dir();
    let file = tmp.path().join("bad.csv");
    std::fs::write(
        &file,
        "code,name,parent\n\
         000.00.00.H41,Khánh Hòa,\n\
         000.00.00.h41,Sai chữ thường,\n\
         000.00.01.H41,Nha Trang,000.00.00.H99\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = truc(&data, &["units", "import", f]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "{f}:3: code: Mã định danh \"000.00.00.h41\": nhóm thứ tư \"h41\""
        )),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{f}:4: parent: Đơn vị cha 000.00.00.H99 không có trong tệp"
        )),
        "{err}"
    );
    assert_eq!(
        lines[2],
        format!("{f}: 2 lỗi; chưa ghi gì vào danh bạ. Sửa các lỗi trên rồi nhập lại.")
    );
    assert!(stdout(&out).is_empty());

    let out = truc(&data, &["--lang", "en", "units", "import", f]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{f}:3: code: Unit code \"000.00.00.h41\": the fourth group \"h41\" must be an upper-case letter and 2 digits")),
        "{err}"
    );
    assert!(
        err.contains("nothing was written to the directory"),
        "{err}"
    );

    // the good first line was not imported either
    let out = truc(&data, &["units", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn unknown_and_malformed_codes_say_what_to_do() {
    let (_tmp, data) = data_dir();
    let out = truc(&data, &["units", "import", &sample("sample.csv")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = truc(&data, &["units", "show", "000.00.00.H99"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("Đơn vị 000.00.00.H99 không có trong danh bạ"),
        "{err}"
    );
    assert!(err.contains("truc units list"), "{err}");
    assert!(err.contains("[unknown_unit]"), "{err}");

    let out = truc(&data, &["--lang", "en", "units", "show", "000.00.00.H99"]);
    assert!(
        stderr(&out).contains("error: Unit 000.00.00.H99 is not in the directory. What to do:")
    );

    let out = truc(
        &data,
        &["--lang", "en", "units", "list", "--under", "000.0.00.H41"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("the second group \"0\" must be 2 digits") && err.contains("[bad_unit_code]"),
        "{err}"
    );

    let out = truc(&data, &["units", "import", "/nonexistent/units.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("không đọc được tệp nhập"),
        "{}",
        stderr(&out)
    );
}
