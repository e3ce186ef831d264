//! Canonicalization golden tests: the W3C Canonical XML 1.0 section 3
//! examples (3.1–3.4, 3.6; 3.5 needs a DTD and we refuse DTDs; 3.7 is a
//! document subset, so it is tested inside the crate with the subset given as
//! a node predicate, `c14n::tests::w3c_3_7_document_subset`), and libxml2
//! (`xmllint --c14n` / `--exc-c14n`) as an independent judge on our packages.
//!
//! Inputs 3.1, 3.3 and 3.4 are the spec's, with their DOCTYPE removed: 3.3's
//! defaulted `attr="default"` is written out, and 3.4's `normNames`/`normId`
//! lines (whose output depends on DTD attribute types) are left out.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dsig::{Method, canonicalize};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(sub)
}

fn check(name: &str, method: Method, comments: bool, golden_ext: &str) {
    let input = std::fs::read(dir("c14n").join(format!("{name}.xml"))).expect("input");
    let golden = std::fs::read(dir("c14n").join(format!("{name}.{golden_ext}"))).expect("golden");
    let got = canonicalize(&input, method, comments).expect("canonicalize");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&golden),
        "{name} ({golden_ext})"
    );
}

#[test]
fn w3c_3_1_pis_comments_and_outside_of_document_element() {
    check("w3c-3.1-pis-comments", Method::Inclusive, false, "c14n");
    check(
        "w3c-3.1-pis-comments",
        Method::Inclusive,
        true,
        "c14n-with-comments",
    );
}

#[test]
fn w3c_3_2_whitespace_in_document_content() {
    check("w3c-3.2-whitespace", Method::Inclusive, false, "c14n");
}

#[test]
fn w3c_3_3_start_and_end_tags() {
    check("w3c-3.3-tags", Method::Inclusive, false, "c14n");
}

#[test]
fn w3c_3_3_start_and_end_tags_exclusive_drops_unused_namespaces() {
    check("w3c-3.3-tags", Method::Exclusive, false, "exc-c14n");
}

#[test]
fn w3c_3_4_character_modifications_and_references() {
    check("w3c-3.4-characters", Method::Inclusive, false, "c14n");
}

#[test]
fn w3c_3_6_utf8_encoding() {
    check("w3c-3.6-utf8", Method::Inclusive, false, "c14n");
}

#[test]
fn w3c_3_5_entity_references_are_refused_because_they_need_a_dtd() {
    let input = b"<!DOCTYPE doc [<!ENTITY ent1 \"Hello\">]><doc>&ent1;</doc>";
    let err = canonicalize(input, Method::Inclusive, false).expect_err("DTD must be refused");
    assert_eq!(err.code, "DSIG_XML_DOCTYPE");
    let undeclared =
        canonicalize(b"<doc>&ent1;</doc>", Method::Inclusive, false).expect_err("unknown entity");
    assert_eq!(undeclared.code, "DSIG_XML_MALFORMED");
}

fn xmllint(flag: &str, file: &Path) -> Vec<u8> {
    let out = Command::new("xmllint")
        .arg(flag)
        .arg(file)
        .output()
        .expect("xmllint must be installed (Debian package libxml2-utils)");
    assert!(
        out.status.success(),
        "xmllint {flag} {} failed",
        file.display()
    );
    out.stdout
}

/// Every fixture package and every W3C input: our output equals libxml2's.
#[test]
fn libxml2_agrees_on_every_fixture_and_w3c_input() {
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["fixtures", "c14n"] {
        for e in std::fs::read_dir(dir(sub)).expect("dir") {
            let p = e.expect("entry").path();
            if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("edxml" | "xml")
            ) {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    for f in files {
        let input = std::fs::read(&f).expect("read");
        // xmllint's --c14n/--exc-c14n keep comments.
        for (flag, method) in [
            ("--c14n", Method::Inclusive),
            ("--exc-c14n", Method::Exclusive),
        ] {
            let ours = canonicalize(&input, method, true).expect("canonicalize");
            let theirs = xmllint(flag, &f);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{} {flag}",
                f.display()
            );
        }
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    for bad in [
        &b"<a><b></a>"[..],
        b"<a",
        b"",
        b"<a x='1' x='2'/>",
        b"<p:a/>",
        b"<a/><b/>",
        b"\xff\xfe<a/>",
        b"<a xmlns:p=''/>",
    ] {
        let e = canonicalize(bad, Method::Exclusive, false).expect_err("must fail");
        assert!(e.code.starts_with("DSIG_XML"), "{e}");
        assert!(!e.vi.is_empty() && !e.en.is_empty());
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut s = String::new();
    for _ in 0..300 {
        s.push_str("<a>");
    }
    for _ in 0..300 {
        s.push_str("</a>");
    }
    let e = canonicalize(s.as_bytes(), Method::Exclusive, false).expect_err("too deep");
    assert_eq!(e.code, "DSIG_XML_MALFORMED");
}

#[test]
fn utf8_byte_order_mark_and_explicit_xml_namespace_are_accepted() {
    let input = b"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a xmlns:xml=\"http://www.w3.org/XML/1998/namespace\" xml:lang=\"vi\">x</a>";
    for method in [Method::Inclusive, Method::Exclusive] {
        let out = canonicalize(input, method, false).expect("BOM is fine");
        assert_eq!(String::from_utf8_lossy(&out), "<a xml:lang=\"vi\">x</a>");
    }
}
