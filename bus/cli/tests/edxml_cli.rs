//! `truc edxml …` as a user runs it: the real binary, real files, exit codes and output checked.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edxml::{Limits, Package, StatusCode};

fn truc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_truc"))
        .args(args)
        .env_remove("TRUC_LANG")
        .output()
        .expect("run truc")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/examples")
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

#[test]
fn validate_accepts_usable_packages_with_exit_0() {
    let a = example("valid/document-one-attachment.edxml");
    let b = example("valid/wild-business-spelling.edxml");
    let out = truc(&["edxml", "validate", &a, &b]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("{a}: hợp lệ")), "{text}");
    // the lenient variant is usable but its deviation is reported as file:line:col: warning: … [code]
    let warning = text
        .lines()
        .find(|l| l.contains("[business_spelling]"))
        .expect("business_spelling warning");
    let rest = warning
        .strip_prefix(&format!("{b}:"))
        .expect("line starts with the file");
    let mut parts = rest.splitn(3, ':');
    assert!(
        parts
            .next()
            .and_then(|l| l.parse::<u32>().ok())
            .is_some_and(|l| l > 0),
        "{warning}"
    );
    assert!(
        parts
            .next()
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| c > 0),
        "{warning}"
    );
    assert!(
        parts.next().is_some_and(|m| m.starts_with(" warning: ")),
        "{warning}"
    );
}

#[test]
fn validate_reports_rejections_with_position_and_exit_1() {
    let good = example("valid/document-no-attachment.edxml");
    let bad = example("invalid/no-to.edxml");
    let out = truc(&["edxml", "validate", &good, &bad]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with(&bad))
        .expect("a line for the bad file");
    assert!(
        line.contains(": error: ") && line.ends_with("[no_to]"),
        "{line}"
    );
}

#[test]
fn validate_json_and_english_messages() {
    let bad = example("invalid/no-from.edxml");
    let out = truc(&["edxml", "validate", "--json", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let obj: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("one JSON object per file");
    assert_eq!(obj["usable"], false);
    assert_eq!(obj["file"], bad.as_str());
    let first = &obj["findings"][0];
    assert_eq!(first["code"], "no_from");
    assert_eq!(first["severity"], "error");
    assert!(first["line"].as_u64().is_some_and(|l| l > 0));
    let en = first["message_en"]
        .as_str()
        .expect("english message")
        .to_owned();
    let vi = first["message_vi"]
        .as_str()
        .expect("vietnamese message")
        .to_owned();
    assert_ne!(en, vi);

    let vi_out = stdout(&truc(&["edxml", "validate", &bad]));
    assert!(vi_out.contains(&vi), "Vietnamese is the default: {vi_out}");
    let en_out = stdout(&truc(&["--lang", "en", "edxml", "validate", &bad]));
    assert!(en_out.contains(&en), "--lang en prints English: {en_out}");
}

#[test]
fn fmt_prints_the_canonical_form() {
    let wild = example("valid/wild-shuffled-order-dates.edxml");
    let out = truc(&["edxml", "fmt", &wild]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[date_format]"),
        "normalisations are reported on stderr"
    );
    let canonical = edxml::read(&out.stdout, &Limits::default()).expect("canonical output reads");
    assert!(
        canonical.findings.is_empty(),
        "canonical output has no findings"
    );
    let original = edxml::read(&std::fs::read(&wild).expect("example"), &Limits::default())
        .expect("example reads");
    assert_eq!(canonical.package, original.package);
    assert_eq!(out.stdout, edxml::to_bytes(&original.package));

    let bad = example("invalid/bad-attachment.edxml");
    let out = truc(&["edxml", "fmt", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing is printed for an unusable package"
    );
    assert!(stderr(&out).contains("[bad_attachment]"));
}

#[test]
fn show_summarises_a_document() {
    let file = example("valid/document-several-attachments.edxml");
    let out = truc(&["--lang", "en", "edxml", "show", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let parsed =
        edxml::read(&std::fs::read(&file).expect("example"), &Limits::default()).expect("reads");
    let Package::Document(doc) = parsed.package else {
        panic!("a document")
    };
    assert!(text.contains("Kind: document"), "{text}");
    assert!(
        text.contains(doc.document_id.as_deref().expect("id")),
        "{text}"
    );
    assert!(
        text.contains(doc.subject.as_deref().expect("subject")),
        "{text}"
    );
    assert!(text.contains("000.00.00.H41"), "{text}");
    assert!(text.contains("Attachments (3):"), "{text}");
    for a in &doc.attachments {
        assert!(
            text.contains(&format!("({} bytes)", a.size())),
            "size of {} missing: {text}",
            a.content_id
        );
    }
    assert!(text.contains("Trace (1):"), "{text}");
}

#[test]
fn show_summarises_a_status() {
    let out = truc(&["edxml", "show", &example("valid/status-02-rejected.edxml")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("02 Từ chối tiếp nhận"), "{text}");
    assert!(
        text.contains("000.00.00.G22,2026/11/20,7816/VPCP-TTĐT"),
        "{text}"
    );
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

#[test]
fn new_makes_a_document_that_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = temp_file(
        dir.path(),
        "cong-van.pdf",
        b"%PDF-1.4 \x00\x01\x02\xff binary",
    );
    let out = truc(&[
        "edxml",
        "new",
        "--from",
        "000.00.00.G22",
        "--to",
        "000.00.00.H41,000.00.00.H14",
        "--subject",
        "V/v thử nghiệm <trục> & \"liên thông\"",
        "--attach",
        pdf.to_str().expect("utf-8 path"),
        "--code",
        "7816/VPCP-TTĐT",
        "--date",
        "2026/11/20",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parsed = edxml::read(&out.stdout, &Limits::default()).expect("new package reads");
    assert!(parsed.findings.is_empty(), "{:?}", parsed.findings);
    let Package::Document(doc) = parsed.package else {
        panic!("a document")
    };
    assert_eq!(doc.from.organ_id, "000.00.00.G22");
    let to: Vec<&str> = doc.to.iter().map(|o| o.organ_id.as_str()).collect();
    assert_eq!(to, ["000.00.00.H41", "000.00.00.H14"]);
    assert_eq!(
        doc.document_id.as_deref(),
        Some("000.00.00.G22,2026/11/20,7816/VPCP-TTĐT")
    );
    assert_eq!(
        doc.subject.as_deref(),
        Some("V/v thử nghiệm <trục> & \"liên thông\"")
    );
    assert_eq!(doc.attachments.len(), 1);
    assert_eq!(doc.attachments[0].data, std::fs::read(&pdf).expect("pdf"));
    assert_eq!(
        doc.attachments[0].content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(doc.references.len(), 1);

    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/edxml.xsd");
    let written = temp_file(dir.path(), "new.edxml", &out.stdout);
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&written)
        .output()
        .expect("xmllint installed (libxml2-utils)");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
}

#[test]
fn new_refuses_a_malformed_unit_code_and_says_which() {
    let out = truc(&[
        "--lang",
        "en",
        "edxml",
        "new",
        "--from",
        "000.00.00.G22",
        "--to",
        "28.22.H17",
        "--subject",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("28.22.H17") && err.contains("recipient code"),
        "{err}"
    );
}

#[test]
fn status_answers_a_document_and_checks_who_may_send_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc_path = example("valid/document-several-recipients.edxml");
    let out = truc(&[
        "edxml",
        "status",
        "--from",
        "000.00.00.H14",
        "--for",
        &doc_path,
        "--code",
        "02",
        "--description",
        "Gửi nhầm đơn vị",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parsed = edxml::read(&out.stdout, &Limits::default()).expect("status reads");
    assert!(parsed.findings.is_empty(), "{:?}", parsed.findings);
    let Package::Status(status) = parsed.package else {
        panic!("a status package")
    };
    assert_eq!(status.status_code, StatusCode::Rejected);
    assert_eq!(status.from.organ_id, "000.00.00.H14");
    assert_eq!(
        status.response_for.organ_id.as_deref(),
        Some("000.00.00.G22")
    );
    assert_eq!(
        status.response_for.document_id.as_deref(),
        Some("000.00.00.G22,2026/11/18,512/TTg-KSTT")
    );
    assert_eq!(status.response_for.code.as_deref(), Some("512/TTg-KSTT"));
    assert_eq!(status.description.as_deref(), Some("Gửi nhầm đơn vị"));
    temp_file(dir.path(), "status.edxml", &out.stdout);

    // a unit that is not a recipient cannot report on the document
    let out = truc(&[
        "--lang",
        "en",
        "edxml",
        "status",
        "--from",
        "000.00.00.G09",
        "--for",
        &doc_path,
        "--code",
        "01",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not among the document's recipients"),
        "{}",
        stderr(&out)
    );
    // only the sender asks to withdraw
    let out = truc(&[
        "edxml",
        "status",
        "--from",
        "000.00.00.G22",
        "--for",
        &doc_path,
        "--code",
        "13",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = truc(&[
        "--lang",
        "en",
        "edxml",
        "status",
        "--from",
        "000.00.00.H41",
        "--for",
        &doc_path,
        "--code",
        "13",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // unknown codes are refused with the list of known ones
    let out = truc(&[
        "--lang",
        "en",
        "edxml",
        "status",
        "--from",
        "000.00.00.H41",
        "--for",
        &doc_path,
        "--code",
        "99",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("01, 02, 03"), "{}", stderr(&out));
}
