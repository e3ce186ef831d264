//! Interop with the reference implementation: the real `xmlsec1` (Debian
//! package `xmlsec1`) must agree with us in both directions. These tests fail,
//! never skip, when xmlsec1 is missing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use dsig::Role;

const SENDER: &str = "//*[@Id='sender']";
const RELAY: &str = "//*[@Id='relay']";

fn xmlsec1(args: &[&str]) -> std::process::Output {
    Command::new("xmlsec1")
        .args(args)
        .output()
        .expect("xmlsec1 must be installed (Debian package xmlsec1); CI installs it in .ci/run")
}

/// `xmlsec1 --verify` of the signature selected by `xpath`, trusting only ca.pem.
fn xmlsec_verifies(pki: &TestPki, xml: &[u8], xpath: &str) -> bool {
    let f = pki.path("pkg.xml");
    std::fs::write(&f, xml).expect("write");
    let ca = pki.path("ca.pem");
    let out = xmlsec1(&[
        "--verify",
        "--trusted-pem",
        ca.to_str().expect("path"),
        "--node-xpath",
        xpath,
        f.to_str().expect("path"),
    ]);
    out.status.success()
}

/// `xmlsec1 --sign` of the template selected by `xpath` with a unit's or the relay's key.
fn xmlsec_sign(pki: &TestPki, template: &[u8], key: &str, cert: &str, xpath: &str) -> Vec<u8> {
    let f = pki.path("tmpl.xml");
    let out_f = pki.path("signed.xml");
    std::fs::write(&f, template).expect("write");
    let keyarg = format!("{},{}", pki.path(key).display(), pki.path(cert).display());
    let out = xmlsec1(&[
        "--sign",
        "--privkey-pem",
        &keyarg,
        "--node-xpath",
        xpath,
        "--output",
        out_f.to_str().expect("path"),
        f.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "xmlsec1 --sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(out_f).expect("signed")
}

fn sealed(pki: &TestPki, fixture_name: &str, unit: &str) -> Vec<u8> {
    let signed =
        dsig::sign(&fixture(fixture_name), &pki.unit_key(unit), Role::Sender).expect("sign");
    let traced = dsig::append_trace_header(&signed, "000.00.00.RELAY", "2026/11/23 08:00:00")
        .expect("trace");
    dsig::sign(&traced, &pki.relay_key(), Role::Relay).expect("seal")
}

#[test]
fn xmlsec1_accepts_our_sender_signature_on_every_fixture() {
    let pki = TestPki::new();
    for (name, unit) in FIXTURES {
        let signed = dsig::sign(&fixture(name), &pki.unit_key(unit), Role::Sender).expect("sign");
        assert!(
            xmlsec_verifies(&pki, &signed, SENDER),
            "xmlsec1 rejected our sender signature on {name}"
        );
        let r = dsig::verify(&signed, &pki.trust(), now());
        assert!(r.is_valid(), "{name}: {r:#?}");
    }
}

#[test]
fn after_relay_appends_trace_both_tools_accept_sender_and_relay_signatures() {
    let pki = TestPki::new();
    for (name, unit) in FIXTURES {
        let pkg = sealed(&pki, name, unit);
        assert!(
            xmlsec_verifies(&pki, &pkg, SENDER),
            "{name}: sender signature after trace append"
        );
        assert!(
            xmlsec_verifies(&pki, &pkg, RELAY),
            "{name}: relay signature"
        );
        let r = dsig::verify(&pkg, &pki.trust(), now());
        assert!(r.is_valid(), "{name}: {r:#?}");
        let roles: Vec<Role> = r.signatures.iter().map(|s| s.role).collect();
        assert_eq!(roles, vec![Role::Sender, Role::Relay]);
        assert!(r.signature(Role::Relay).is_some_and(|s| s.is_valid()));
        assert_eq!(r.signatures[1].relay_certificate, Some(true));
        assert_eq!(r.signatures[0].signer_is_from_unit, Some(true));
    }
}

/// The relay's one-parse path (`Parsed`: verify, then trace and seal on the same tree) gives
/// exactly the bytes of verify, `append_trace_header`, `sign`, which xmlsec1 accepts; and it
/// refuses what they refuse, with the same code. Covers no trace entry yet, entries already
/// there, a prefixed namespace, a self-closing list (what edXML writers, ours included, give an
/// empty list) and text needing escapes.
#[test]
fn the_one_parse_seal_is_the_two_step_seal_byte_for_byte() {
    let pki = TestPki::new();
    let trust = pki.trust();
    let relay = pki.relay_key();
    let stamp = "2026/11/23 08:00:02";
    let two_step = |pkg: &[u8], organ: &str| {
        dsig::append_trace_header(pkg, organ, stamp)
            .and_then(|traced| dsig::sign(&traced, &relay, Role::Relay))
    };
    for (name, unit) in FIXTURES {
        let signed = dsig::sign(&fixture(name), &pki.unit_key(unit), Role::Sender).expect("sign");
        for organ in ["000.00.00.RELAY", "R&<>\"'é", "R\u{7}bell"] {
            let parsed = dsig::Parsed::parse(&signed).expect("parse");
            let report = parsed.verify(&trust, now());
            assert!(report.is_valid(), "{name}: {report:#?}");
            assert_eq!(
                format!("{report:?}"),
                format!("{:?}", dsig::verify(&signed, &trust, now())),
                "{name}: the same report"
            );
            let one = parsed.seal(organ, stamp, &relay).expect("seal");
            let two = two_step(&signed, organ).expect("two-step seal");
            assert_eq!(
                String::from_utf8_lossy(&one),
                String::from_utf8_lossy(&two),
                "{name}, organ {organ:?}"
            );
            if organ == "000.00.00.RELAY" {
                assert!(xmlsec_verifies(&pki, &one, RELAY), "{name}: xmlsec1, seal");
                assert!(
                    xmlsec_verifies(&pki, &one, SENDER),
                    "{name}: xmlsec1, sender"
                );
            }
        }
    }
    // Refusals, in the two-step order: trace arguments, then structure, then the seal's own.
    let signed = dsig::sign(
        &fixture("doc_1_attachment.edxml"),
        &pki.unit_key("000.00.00.G22"),
        Role::Sender,
    )
    .expect("sign");
    let sealed = two_step(&signed, "R").expect("seal");
    let unsigned = fixture("doc_1_attachment.edxml");
    let no_list = fixture("doc_0_attachments.edxml");
    for (pkg, organ, ts, code) in [
        (&signed, "R", "23/11/2026 08:00", "DSIG_TRACE_TIMESTAMP"),
        (&signed, " ", stamp, "DSIG_TRACE_ORGAN"),
        (&no_list, "R", stamp, "DSIG_NO_TRACE_LIST"),
        (&unsigned, "R", stamp, "DSIG_RELAY_NEEDS_SENDER"),
        (&sealed, "R", stamp, "DSIG_ALREADY_SEALED"),
    ] {
        let one = dsig::Parsed::parse(pkg)
            .expect("parse")
            .seal(organ, ts, &relay)
            .expect_err(code);
        let two = dsig::append_trace_header(pkg, organ, ts)
            .and_then(|t| dsig::sign(&t, &relay, Role::Relay))
            .expect_err(code);
        assert_eq!((one.code, two.code), (code, code));
    }
    let garbled = dsig::Parsed::parse(b"<a><b></a>").expect_err("malformed");
    assert_eq!(garbled.code, "DSIG_XML_MALFORMED");
}

#[test]
fn we_verify_what_xmlsec1_signed_from_our_templates() {
    let pki = TestPki::new();
    for (name, unit) in FIXTURES {
        let tmpl = dsig::template(&fixture(name), Role::Sender).expect("template");
        let (k, c) = (format!("units/{unit}.key.pem"), format!("units/{unit}.pem"));
        let signed = xmlsec_sign(&pki, &tmpl, &k, &c, SENDER);
        let r = dsig::verify(&signed, &pki.trust(), now());
        assert!(r.is_valid(), "{name} signed by xmlsec1: {r:#?}");

        let traced = dsig::append_trace_header(&signed, "000.00.00.RELAY", "2026/11/23 08:00:01")
            .expect("trace");
        let relay_tmpl = dsig::template(&traced, Role::Relay).expect("relay template");
        let sealed = xmlsec_sign(&pki, &relay_tmpl, "relay.key.pem", "relay.pem", RELAY);
        let r = dsig::verify(&sealed, &pki.trust(), now());
        assert!(r.is_valid(), "{name} sealed by xmlsec1: {r:#?}");
        assert_eq!(r.signatures.len(), 2);
    }
}

/// One changed byte in the subject, the From unit or an attachment: both tools
/// reject both signatures. A change inside the trace entry breaks only the seal.
#[test]
fn one_changed_byte_fails_both_tools() {
    let pki = TestPki::new();
    let pkg = sealed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let cases = [
        ("subject", "<Subject>V/v", "<Subject>W/v"),
        (
            "From unit",
            "<OrganId>000.00.00.G22</OrganId>\n          <OrganName>",
            "<OrganId>000.00.00.G23</OrganId>\n          <OrganName>",
        ),
        (
            "attachment",
            "<Value>JVBERi0xLjQKJcfsj6IK",
            "<Value>JVBERi0xLjQKJcfsj6IL",
        ),
        (
            "business type (new -> revoke)",
            "<BussinessDocType>0<",
            "<BussinessDocType>1<",
        ),
    ];
    for (what, from, to) in cases {
        let bad = replace_once(&pkg, from, to);
        assert_eq!(bad.len(), pkg.len(), "{what}: one byte only");
        assert!(
            !xmlsec_verifies(&pki, &bad, SENDER),
            "xmlsec1 accepted sender signature after changing {what}"
        );
        assert!(
            !xmlsec_verifies(&pki, &bad, RELAY),
            "xmlsec1 accepted relay signature after changing {what}"
        );
        let r = dsig::verify(&bad, &pki.trust(), now());
        assert!(!r.is_valid(), "{what}");
        for s in &r.signatures {
            assert!(!s.digest_ok, "{what}: {:?} digest should fail", s.role);
            assert!(
                codes(&s.failures).contains(&"DSIG_DIGEST_MISMATCH"),
                "{what}"
            );
        }
    }
    // The relay's own trace entry is outside the sender's signature but inside the seal.
    let bad = replace_once(
        &pkg,
        "<OrganId>000.00.00.RELAY<",
        "<OrganId>000.00.00.RELAX<",
    );
    assert!(xmlsec_verifies(&pki, &bad, SENDER));
    assert!(!xmlsec_verifies(&pki, &bad, RELAY));
    let r = dsig::verify(&bad, &pki.trust(), now());
    assert!(r.signatures[0].is_valid());
    assert!(!r.signatures[1].digest_ok);
}

#[test]
fn legacy_rsa_sha1_profile_verifies_only_with_the_flag() {
    let pki = TestPki::new();
    let tmpl = dsig::template(&fixture("doc_1_attachment.edxml"), Role::Sender).expect("template");
    let tmpl = replace_once(
        &tmpl,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    );
    let tmpl = replace_once(
        &tmpl,
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    );
    let signed = xmlsec_sign(
        &pki,
        &tmpl,
        "units/000.00.00.G22.key.pem",
        "units/000.00.00.G22.pem",
        SENDER,
    );
    let strict = dsig::verify(&signed, &pki.trust(), now());
    assert!(!strict.is_valid());
    assert_eq!(
        codes(&strict.signatures[0].failures),
        vec!["DSIG_LEGACY_SHA1"]
    );
    let lenient = dsig::verify(&signed, &pki.trust().allow_legacy_sha1(true), now());
    assert!(lenient.is_valid(), "{lenient:#?}");
    assert!(codes(&lenient.signatures[0].warnings).contains(&"DSIG_LEGACY_ACCEPTED"));
}

#[test]
fn xmlsec1_is_present() {
    // Loud, explicit failure if CI forgot to install it.
    let out = xmlsec1(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("xmlsec1"));
}

/// The chain matters to both tools: a signer under another root is refused.
#[test]
fn both_tools_refuse_a_signer_from_another_root() {
    let ours = TestPki::new();
    let other = TestPki::new();
    let signed = dsig::sign(
        &fixture("doc_1_attachment.edxml"),
        &other.unit_key("000.00.00.G22"),
        Role::Sender,
    )
    .expect("sign");
    assert!(!xmlsec_verifies(&ours, &signed, SENDER));
    assert!(xmlsec_verifies(&other, &signed, SENDER));
    let r = dsig::verify(&signed, &ours.trust(), now());
    let s = &r.signatures[0];
    assert!(s.digest_ok && s.signature_ok && !s.chain_ok);
    assert!(codes(&s.failures).contains(&"DSIG_CHAIN_UNTRUSTED"));
}

/// Windows producers often start files with a UTF-8 byte-order mark.
#[test]
fn package_with_byte_order_mark_signs_and_verifies_in_both_tools() {
    let pki = TestPki::new();
    let mut pkg = b"\xef\xbb\xbf".to_vec();
    pkg.extend_from_slice(&fixture("doc_1_attachment.edxml"));
    let signed = dsig::sign(&pkg, &pki.unit_key("000.00.00.G22"), Role::Sender).expect("sign");
    assert!(signed.starts_with(b"\xef\xbb\xbf<?xml"), "the BOM is kept");
    let traced = dsig::append_trace_header(&signed, "R", "2026/11/23 08:00:00").expect("trace");
    let sealed = dsig::sign(&traced, &pki.relay_key(), Role::Relay).expect("seal");
    assert!(xmlsec_verifies(&pki, &sealed, SENDER));
    assert!(xmlsec_verifies(&pki, &sealed, RELAY));
    assert!(dsig::verify(&sealed, &pki.trust(), now()).is_valid());
}

/// CRLF line ends (normalized by XML parsing) must not confuse either tool.
#[test]
fn package_with_crlf_line_ends_signs_and_verifies_in_both_tools() {
    let pki = TestPki::new();
    let crlf = String::from_utf8(fixture("doc_2_attachments_prefixed.edxml"))
        .expect("utf8")
        .replace('\n', "\r\n")
        .into_bytes();
    let signed = dsig::sign(&crlf, &pki.unit_key("000.00.00.G22"), Role::Sender).expect("sign");
    let traced = dsig::append_trace_header(&signed, "R", "2026/11/23 08:00:00").expect("trace");
    let sealed = dsig::sign(&traced, &pki.relay_key(), Role::Relay).expect("seal");
    assert!(xmlsec_verifies(&pki, &sealed, SENDER));
    assert!(xmlsec_verifies(&pki, &sealed, RELAY));
    assert!(dsig::verify(&sealed, &pki.trust(), now()).is_valid());
}
