//! The packages our own writer emits, signed end to end: every usable example of `schemas/examples/`, in its
//! canonical form (`edxml::to_bytes`), is signed by its `From` unit, gets a relay trace entry and the relay's
//! seal; `xmlsec1` and our verifier must both accept both signatures, and both must reject the package once one
//! byte of an attachment's base64 (inside `ContentTransferEncoded`) or of the subject changes.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use dsig::{Role, SigningKey, TrustStore};

fn examples() -> Vec<(PathBuf, edxml::Package)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/examples/valid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("example");
        let parsed = edxml::read(&bytes, &edxml::Limits::default()).expect("usable example");
        out.push((path, parsed.package));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn xmlsec_verifies(dir: &Path, xml: &[u8], xpath: &str) -> bool {
    let f = dir.join("pkg.xml");
    std::fs::write(&f, xml).expect("write");
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(dir.join("ca.pem"))
        .arg("--node-xpath")
        .arg(xpath)
        .arg(&f)
        .output()
        .expect("xmlsec1 must be installed (Debian package xmlsec1)");
    out.status.success()
}

fn flip_one_byte_after(xml: &[u8], marker: &str) -> Vec<u8> {
    let text = std::str::from_utf8(xml).expect("utf-8");
    let at = text.find(marker).expect("marker") + marker.len() + 3;
    let mut bad = xml.to_vec();
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    bad
}

#[test]
fn canonical_examples_signed_sealed_and_checked_by_both_tools() {
    let examples = examples();
    assert!(examples.len() >= 20, "the usable examples are the test set");
    let mut units: Vec<String> = examples
        .iter()
        .map(|(_, p)| p.from().organ_id.clone())
        .collect();
    units.sort();
    units.dedup();
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let specs: Vec<(&str, Option<&str>)> = units.iter().map(|u| (u.as_str(), None)).collect();
    let pki = dsig::pki::init(&specs, unix).expect("pki");
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, content) in pki.files() {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    let read = |rel: &str| std::fs::read(dir.path().join(rel)).expect(rel);
    let trust = TrustStore::new(&read("ca.pem"), &read("ca.crl.pem")).expect("trust");
    let relay =
        SigningKey::from_pem(&read("relay.key.pem"), &read("relay.pem")).expect("relay key");

    let mut attachments_checked = 0;
    for (path, package) in &examples {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let unit = &package.from().organ_id;
        let key = SigningKey::from_pem(
            &read(&format!("units/{unit}.key.pem")),
            &read(&format!("units/{unit}.pem")),
        )
        .expect("unit key");
        let canonical = edxml::to_bytes(package);
        let signed = dsig::sign(&canonical, &key, Role::Sender).expect("sign");
        let traced = dsig::append_trace_header(&signed, "000.00.00.G22", "2026/11/23 08:00:00")
            .expect("trace");
        let sealed = dsig::sign(&traced, &relay, Role::Relay).expect("seal");

        let report = dsig::verify(&sealed, &trust, now);
        assert!(report.is_valid(), "{name}: {report:#?}");
        assert!(
            xmlsec_verifies(dir.path(), &sealed, "//*[@Id='sender']"),
            "{name}: xmlsec1 rejects the sender signature"
        );
        assert!(
            xmlsec_verifies(dir.path(), &sealed, "//*[@Id='relay']"),
            "{name}: xmlsec1 rejects the relay seal"
        );
        // what we signed is still a package our reader takes: the same one plus the relay's hop
        let back = edxml::read(&sealed, &edxml::Limits::default()).expect("signed package reads");
        let mut expected = package.clone();
        let hop = edxml::TraceHeader {
            organ_id: "000.00.00.G22".into(),
            timestamp: Some(edxml::Lenient::Known(edxml::Timestamp {
                date: edxml::Date {
                    year: 2026,
                    month: 11,
                    day: 23,
                },
                hour: 8,
                minute: 0,
                second: 0,
            })),
        };
        match &mut expected {
            edxml::Package::Document(d) => d.trace.trace_headers.push(hop),
            edxml::Package::Status(s) => s.trace.trace_headers.push(hop),
        }
        assert_eq!(
            back.package, expected,
            "{name}: signing changed the package beyond the relay hop"
        );

        let mut tampered = Vec::new();
        if sealed
            .windows(b"<Subject>".len())
            .any(|w| w == b"<Subject>")
        {
            tampered.push(("subject", flip_one_byte_after(&sealed, "<Subject>")));
        }
        if sealed
            .windows(b"<ContentTransferEncoded>".len())
            .any(|w| w == b"<ContentTransferEncoded>")
        {
            tampered.push((
                "attachment",
                flip_one_byte_after(&sealed, "<ContentTransferEncoded>"),
            ));
            attachments_checked += 1;
        }
        for (what, bad) in tampered {
            assert!(
                !dsig::verify(&bad, &trust, now).is_valid(),
                "{name}: we accepted a changed {what}"
            );
            assert!(
                !xmlsec_verifies(dir.path(), &bad, "//*[@Id='sender']"),
                "{name}: xmlsec1 accepted a changed {what}"
            );
            assert!(
                !xmlsec_verifies(dir.path(), &bad, "//*[@Id='relay']"),
                "{name}: xmlsec1 sealed a changed {what}"
            );
        }
    }
    assert!(
        attachments_checked >= 5,
        "examples with attachments were tampered with: {attachments_checked}"
    );
}
