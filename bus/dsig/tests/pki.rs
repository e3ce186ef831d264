//! The development PKI: what scripts, xmlsec1 and the verifier rely on.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use openssl::x509::{X509, X509Crl};

#[test]
fn layout_subjects_and_relay_rule() {
    let pki = TestPki::new();
    for f in [
        "ca.pem",
        "ca.key.pem",
        "ca.crl.pem",
        "relay.pem",
        "relay.key.pem",
    ] {
        assert!(pki.path(f).is_file(), "{f}");
    }
    for u in UNITS {
        let cert = X509::from_pem(&pki.read(&format!("units/{u}.pem"))).expect("unit cert");
        let cn = cert
            .subject_name()
            .entries()
            .next()
            .expect("CN")
            .data()
            .to_string()
            .expect("utf8");
        assert_eq!(cn, u, "unit code is the subject CN");
        assert!(
            !dsig::is_relay_certificate(&cert),
            "{u} must not pass as a relay"
        );
        assert!(pki.path(&format!("units/{u}.key.pem")).is_file());
    }
    let relay = X509::from_pem(&pki.read("relay.pem")).expect("relay");
    assert!(dsig::is_relay_certificate(&relay));
    let ca = X509::from_pem(&pki.read("ca.pem")).expect("ca");
    assert!(!dsig::is_relay_certificate(&ca));
    let key = openssl::pkey::PKey::private_key_from_pem(&pki.read("relay.key.pem")).expect("key");
    assert_eq!(key.bits(), 2048);
    let crl = X509Crl::from_pem(&pki.read("ca.crl.pem")).expect("crl");
    assert!(crl.get_revoked().is_none(), "starts empty");
    assert!(crl.next_update().is_some(), "has a next update");
    assert!(
        crl.verify(&ca.public_key().expect("pk")).expect("verify"),
        "signed by the CA"
    );
}

#[test]
fn issue_adds_a_unit_that_verifies_and_bad_codes_are_refused() {
    let pki = TestPki::new();
    let issued = dsig::pki::issue(
        &pki.read("ca.pem"),
        &pki.read("ca.key.pem"),
        "000.00.00.H99",
        Some("UBND tỉnh Thử"),
        unix(now()),
    )
    .expect("issue");
    let cert = X509::from_pem(&issued.cert_pem).expect("cert");
    let subject: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|e| e.data().to_string().expect("utf8"))
        .collect();
    assert_eq!(
        subject,
        vec!["000.00.00.H99".to_string(), "UBND tỉnh Thử".to_string()]
    );
    let key = dsig::SigningKey::from_pem(&issued.key_pem, &issued.cert_pem).expect("key");
    let doc = replace_once(
        &fixture("status_03.edxml"),
        "<OrganId>000.00.00.H41</OrganId>",
        "<OrganId>000.00.00.H99</OrganId>",
    );
    let signed = dsig::sign(&doc, &key, dsig::Role::Sender).expect("sign");
    assert!(dsig::verify(&signed, &pki.trust(), now()).is_valid());
    for bad in ["", "../x", "a/b", ".hidden", "mã"] {
        let e = dsig::pki::issue(
            &pki.read("ca.pem"),
            &pki.read("ca.key.pem"),
            bad,
            None,
            unix(now()),
        )
        .expect_err(bad);
        assert_eq!(e.code, "PKI_BAD_UNIT_CODE");
    }
}
