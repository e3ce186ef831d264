//! What `verify` reports and what `sign`/`append_trace_header` refuse: the
//! behaviour a relay, a recipient or an auditor relies on.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use dsig::Role;

fn signed(pki: &TestPki, name: &str, unit: &str) -> Vec<u8> {
    dsig::sign(&fixture(name), &pki.unit_key(unit), Role::Sender).expect("sign")
}

#[test]
fn report_names_signer_algorithms_window_and_from_unit() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let r = dsig::verify(&pkg, &pki.trust(), now());
    assert!(r.is_valid(), "{r:#?}");
    assert_eq!(r.from_unit.as_deref(), Some("000.00.00.G22"));
    let s = &r.signatures[0];
    assert_eq!(s.role, Role::Sender);
    assert_eq!(s.id.as_deref(), Some("sender"));
    assert_eq!(s.signer_unit.as_deref(), Some("000.00.00.G22"));
    assert!(
        s.signer_subject
            .as_deref()
            .unwrap_or("")
            .contains("CN=000.00.00.G22")
    );
    assert_eq!(
        s.signature_algorithm,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    );
    assert_eq!(
        s.digest_algorithm,
        "http://www.w3.org/2001/04/xmlenc#sha256"
    );
    assert!(s.digest_ok && s.signature_ok && s.chain_ok && s.valid_at_time);
    assert_eq!(s.revoked, Some(false));
    assert_eq!(s.signer_is_from_unit, Some(true));
    assert!(s.not_before.is_some() && s.not_after.is_some());
}

#[test]
fn a_unit_signing_for_another_unit_is_reported_as_spoofing() {
    let pki = TestPki::new();
    // From/OrganId is G22, but H41 signs.
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.H41");
    let r = dsig::verify(&pkg, &pki.trust(), now());
    assert!(!r.is_valid());
    let s = &r.signatures[0];
    assert!(
        s.digest_ok && s.signature_ok && s.chain_ok,
        "crypto is fine, identity is not"
    );
    assert_eq!(s.signer_is_from_unit, Some(false));
    assert_eq!(codes(&s.failures), vec!["DSIG_SIGNER_NOT_SENDER"]);
    assert!(
        s.failures[0].en.contains("000.00.00.H41") && s.failures[0].en.contains("000.00.00.G22")
    );
}

#[test]
fn revoked_certificate_fails_and_missing_crl_is_only_a_warning() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let crl = dsig::pki::revoke(
        &pki.read("ca.pem"),
        &pki.read("ca.key.pem"),
        &pki.read("ca.crl.pem"),
        &pki.read("units/000.00.00.G22.pem"),
        unix(now()),
    )
    .expect("revoke");
    let trust = dsig::TrustStore::new(&pki.read("ca.pem"), &crl).expect("trust");
    let r = dsig::verify(&pkg, &trust, now());
    assert!(!r.is_valid());
    assert_eq!(r.signatures[0].revoked, Some(true));
    assert_eq!(codes(&r.signatures[0].failures), vec!["DSIG_CERT_REVOKED"]);

    // Another unit's package is unaffected by that revocation.
    let other = signed(&pki, "status_03.edxml", "000.00.00.H41");
    assert!(dsig::verify(&other, &trust, now()).is_valid());

    let no_crl = dsig::TrustStore::new(&pki.read("ca.pem"), b"").expect("trust");
    let r = dsig::verify(&pkg, &no_crl, now());
    assert!(r.is_valid());
    assert_eq!(r.signatures[0].revoked, None);
    assert_eq!(codes(&r.signatures[0].warnings), vec!["DSIG_CRL_MISSING"]);
}

#[test]
fn revoking_twice_keeps_one_entry_and_a_foreign_certificate_is_refused() {
    let pki = TestPki::new();
    let args = |crl: &[u8]| {
        dsig::pki::revoke(
            &pki.read("ca.pem"),
            &pki.read("ca.key.pem"),
            crl,
            &pki.read("units/000.00.00.H42.pem"),
            unix(now()),
        )
        .expect("revoke")
    };
    let once = args(&pki.read("ca.crl.pem"));
    let twice = args(&once);
    let crl = openssl::x509::X509Crl::from_pem(&twice).expect("crl");
    assert_eq!(crl.get_revoked().map(|r| r.len()), Some(1));
    let other = TestPki::new();
    let e = dsig::pki::revoke(
        &pki.read("ca.pem"),
        &pki.read("ca.key.pem"),
        &pki.read("ca.crl.pem"),
        &other.read("units/000.00.00.H42.pem"),
        unix(now()),
    )
    .expect_err("not ours");
    assert_eq!(e.code, "PKI_NOT_ISSUED_BY_CA");
}

#[test]
fn outside_the_validity_window_fails_with_the_window_in_the_report() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let r = dsig::verify(&pkg, &pki.trust(), years_from_now(3));
    let s = &r.signatures[0];
    assert!(!s.valid_at_time);
    assert!(
        s.chain_ok,
        "the chain itself is still fine: {:?}",
        s.failures
    );
    let c = codes(&s.failures);
    assert!(c.contains(&"DSIG_CERT_EXPIRED"), "{c:?}");
    // The CRL is thirty days old by then, too.
    assert!(c.contains(&"DSIG_CRL_INVALID"), "{c:?}");
}

#[test]
fn relay_seal_made_with_a_unit_certificate_is_not_a_relay_signature() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let sealed = dsig::sign(&pkg, &pki.unit_key("000.00.00.H41"), Role::Relay).expect("seal");
    let r = dsig::verify(&sealed, &pki.trust(), now());
    assert!(!r.is_valid());
    assert!(r.signatures[0].is_valid());
    assert_eq!(r.signatures[1].relay_certificate, Some(false));
    assert_eq!(
        codes(&r.signatures[1].failures),
        vec!["DSIG_NOT_RELAY_CERT"]
    );
}

#[test]
fn placeholder_signature_in_edxml_namespace_counts_as_unsigned_with_a_warning() {
    let pki = TestPki::new();
    let raw = fixture("doc_foreign_attributes.edxml");
    let r = dsig::verify(&raw, &pki.trust(), now());
    assert!(!r.is_valid());
    assert_eq!(codes(&r.failures), vec!["DSIG_UNSIGNED"]);
    assert_eq!(codes(&r.warnings), vec!["DSIG_PLACEHOLDER_SIGNATURE"]);
    // Signed properly, the placeholder stays a warning only.
    let pkg = signed(&pki, "doc_foreign_attributes.edxml", "000.00.00.G22");
    let r = dsig::verify(&pkg, &pki.trust(), now());
    assert!(r.is_valid(), "{r:#?}");
    assert_eq!(codes(&r.warnings), vec!["DSIG_PLACEHOLDER_SIGNATURE"]);
}

#[test]
fn anything_outside_the_profile_is_unsupported_not_accepted() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    let cases = [
        (
            "http://www.w3.org/2002/06/xmldsig-filter2\"><",
            "http://www.w3.org/TR/1999/REC-xpath-19991116\"><",
        ),
        ("Filter=\"subtract\"", "Filter=\"intersect\""),
        (
            "//edXML:TraceHeaderList/edXML:TraceHeader | //ds:Signature",
            "//edXML:TraceHeaderList/edXML:TraceHeader | //ds:Signature | //*",
        ),
        ("<ds:Reference URI=\"\">", "<ds:Reference URI=\"#x\">"),
        ("xmldsig-more#rsa-sha256", "xmldsig-more#rsa-sha512"),
    ];
    for (from, to) in cases {
        let bad = replace_once(&pkg, from, to);
        let r = dsig::verify(&bad, &pki.trust(), now());
        assert!(!r.is_valid(), "{to}");
        assert_eq!(
            codes(&r.signatures[0].failures),
            vec!["DSIG_UNSUPPORTED_PROFILE"],
            "{to}"
        );
    }
    // A filter that is well-formed but subtracts real content is a scope failure.
    let wide = replace_once(
        &pkg,
        "//edXML:TraceHeaderList/edXML:TraceHeader | //ds:Signature",
        "//edXML:TraceHeaderList | //ds:Signature | //edXML:Subject",
    );
    let r = dsig::verify(&wide, &pki.trust(), now());
    assert!(codes(&r.signatures[0].failures).contains(&"DSIG_SCOPE"));
}

#[test]
fn signing_preconditions_are_enforced() {
    let pki = TestPki::new();
    let g22 = pki.unit_key("000.00.00.G22");
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22");
    assert_eq!(
        dsig::sign(&pkg, &g22, Role::Sender)
            .expect_err("twice")
            .code,
        "DSIG_ALREADY_SIGNED"
    );
    let raw = fixture("doc_1_attachment.edxml");
    assert_eq!(
        dsig::sign(&raw, &pki.relay_key(), Role::Relay)
            .expect_err("unsigned")
            .code,
        "DSIG_RELAY_NEEDS_SENDER"
    );
    let sealed = dsig::sign(&pkg, &pki.relay_key(), Role::Relay).expect("seal");
    assert_eq!(
        dsig::sign(&sealed, &pki.relay_key(), Role::Relay)
            .expect_err("twice")
            .code,
        "DSIG_ALREADY_SEALED"
    );
    let mismatch = dsig::SigningKey::from_pem(
        &pki.read("units/000.00.00.G22.key.pem"),
        &pki.read("units/000.00.00.H41.pem"),
    );
    assert_eq!(
        mismatch.expect_err("mismatch").code,
        "DSIG_KEY_CERT_MISMATCH"
    );
    assert_eq!(
        dsig::sign(b"<a/>", &g22, Role::Sender)
            .expect_err("no header")
            .code,
        "DSIG_NO_HEADER"
    );
    assert_eq!(
        dsig::sign(b"<!DOCTYPE a><a/>", &g22, Role::Sender)
            .expect_err("doctype")
            .code,
        "DSIG_XML_DOCTYPE"
    );
}

#[test]
fn sender_signing_inserts_an_empty_trace_list_and_touches_nothing_else() {
    let pki = TestPki::new();
    let raw = fixture("doc_0_attachments.edxml");
    let pkg = signed(&pki, "doc_0_attachments.edxml", "000.00.00.H41");
    let text = String::from_utf8(pkg.clone()).expect("utf8");
    let list = "<TraceHeaderList></TraceHeaderList>";
    let at = text.find(list).expect("trace list inserted");
    let sig_at = text.find("<ds:Signature").expect("signature");
    assert!(at < sig_at && text[at + list.len()..].starts_with("<ds:Signature"));
    let sig_end = text.find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
    let mut rebuilt = text[..at].to_string();
    rebuilt.push_str(&text[sig_end..]);
    assert_eq!(
        rebuilt.as_bytes(),
        raw.as_slice(),
        "only the list and the signature were added"
    );
    let traced =
        dsig::append_trace_header(&pkg, "000.00.00.RELAY", "2026/11/23 08:00:00").expect("trace");
    assert!(
        String::from_utf8_lossy(&traced)
            .contains("<TraceHeaderList><TraceHeader><OrganId>000.00.00.RELAY</OrganId>")
    );
    assert!(dsig::verify(&traced, &pki.trust(), now()).is_valid());
}

#[test]
fn append_trace_header_only_inserts_the_entry() {
    for (name, prefix, after) in [
        ("doc_1_attachment.edxml", "", "</TraceHeader>"),
        (
            "doc_2_attachments_prefixed.edxml",
            "edXML:",
            "<edXML:TraceHeaderList>",
        ),
    ] {
        let raw = fixture(name);
        let out = dsig::append_trace_header(&raw, "000.00.00.X&Y", "2026/11/23 08:00:00")
            .expect("append");
        let entry = format!(
            "<{prefix}TraceHeader><{prefix}OrganId>000.00.00.X&amp;Y</{prefix}OrganId><{prefix}Timestamp>2026/11/23 08:00:00</{prefix}Timestamp></{prefix}TraceHeader>"
        );
        let text = String::from_utf8(out).expect("utf8");
        let at = text.find(&entry).expect("entry present");
        assert!(
            text[..at].ends_with(after),
            "{name}: inserted after {after}"
        );
        let mut rebuilt = text[..at].to_string();
        rebuilt.push_str(&text[at + entry.len()..]);
        assert_eq!(rebuilt.as_bytes(), raw.as_slice(), "{name}");
    }
    // A self-closing list is reopened.
    let out = dsig::append_trace_header(
        &fixture("doc_foreign_attributes.edxml"),
        "A",
        "2026/11/23 08:00:00",
    )
    .expect("append");
    assert!(
        String::from_utf8_lossy(&out)
            .contains("<TraceHeaderList><TraceHeader><OrganId>A</OrganId>")
    );
    let bad =
        dsig::append_trace_header(&fixture("doc_1_attachment.edxml"), "A", "23/11/2026 08:00");
    assert_eq!(bad.expect_err("timestamp").code, "DSIG_TRACE_TIMESTAMP");
    let none = dsig::append_trace_header(
        &fixture("doc_0_attachments.edxml"),
        "A",
        "2026/11/23 08:00:00",
    );
    assert_eq!(none.expect_err("no list").code, "DSIG_NO_TRACE_LIST");
}

#[test]
fn verify_never_panics_on_truncated_or_garbled_packages() {
    let pki = TestPki::new();
    let pkg = dsig::sign(
        &dsig::append_trace_header(
            &signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22"),
            "R",
            "2026/11/23 08:00:00",
        )
        .expect("trace"),
        &pki.relay_key(),
        Role::Relay,
    )
    .expect("seal");
    let trust = pki.trust();
    for cut in (0..pkg.len()).step_by(53) {
        let r = dsig::verify(&pkg[..cut], &trust, now());
        assert!(
            !r.is_valid(),
            "a truncated package must not verify (cut {cut})"
        );
    }
    for i in (0..pkg.len()).step_by(211) {
        let mut g = pkg.clone();
        g[i] ^= 0x5a;
        let _ = dsig::verify(&g, &trust, now());
    }
}

#[test]
fn messages_exist_in_both_languages() {
    let pki = TestPki::new();
    let pkg = signed(&pki, "doc_1_attachment.edxml", "000.00.00.H41");
    let r = dsig::verify(&pkg, &pki.trust(), years_from_now(3));
    for f in r
        .signatures
        .iter()
        .flat_map(|s| s.failures.iter().chain(s.warnings.iter()))
    {
        assert!(f.code.starts_with("DSIG_"));
        assert!(
            !f.vi.is_empty() && !f.en.is_empty() && f.vi != f.en,
            "{f:?}"
        );
        assert_eq!(f.text(true), f.vi);
        assert_eq!(f.text(false), f.en);
    }
}

#[test]
fn keys_and_trust_store_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<dsig::TrustStore>();
    shared::<dsig::SigningKey>();
    shared::<dsig::VerifyReport>();
    let pki = TestPki::new();
    let trust = std::sync::Arc::new(pki.trust());
    let pkg = std::sync::Arc::new(signed(&pki, "doc_1_attachment.edxml", "000.00.00.G22"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (trust, pkg) = (trust.clone(), pkg.clone());
            std::thread::spawn(move || {
                (0..10).all(|_| dsig::verify(&pkg, &trust, now()).is_valid())
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().expect("thread"));
    }
}
