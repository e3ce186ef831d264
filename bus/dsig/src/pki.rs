//! A development PKI made with openssl: a root CA, a relay certificate, unit
//! certificates (unit code as subject CN) and a CA-signed CRL. Pure: returns
//! PEM bytes; the CLI writes the files (layout in [`DevPki::files`]). Never
//! for production keys.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{
    CrlNumber, X509, X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509Name,
    X509RevokedBuilder, X509VerifyResult,
};

use crate::error::Error;
use crate::verify::RELAY_EKU_OID;

const DAY: i64 = 86_400;
/// CA validity: ten years.
const CA_DAYS: i64 = 3650;
/// Relay and unit certificate validity: two years.
const LEAF_DAYS: i64 = 730;
/// A new CRL is valid for thirty days (its nextUpdate).
const CRL_DAYS: i64 = 30;
/// Certificates start five minutes in the past to tolerate clock skew.
const SKEW: i64 = 300;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// A whole development PKI.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub ca: Issued,
    pub crl_pem: Vec<u8>,
    pub relay: Issued,
    /// (unit code, material)
    pub units: Vec<(String, Issued)>,
}

impl DevPki {
    /// Files to write, as (path relative to the PKI directory, content):
    /// `ca.pem`, `ca.key.pem`, `ca.crl.pem`, `relay.pem`, `relay.key.pem`,
    /// `units/CODE.pem`, `units/CODE.key.pem`.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![
            ("ca.pem".to_string(), self.ca.cert_pem.clone()),
            ("ca.key.pem".to_string(), self.ca.key_pem.clone()),
            ("ca.crl.pem".to_string(), self.crl_pem.clone()),
            ("relay.pem".to_string(), self.relay.cert_pem.clone()),
            ("relay.key.pem".to_string(), self.relay.key_pem.clone()),
        ];
        for (code, m) in &self.units {
            v.push((format!("units/{code}.pem"), m.cert_pem.clone()));
            v.push((format!("units/{code}.key.pem"), m.key_pem.clone()));
        }
        v
    }
}

fn c(vi: &str, en: &str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    let (vi, en) = (vi.to_string(), en.to_string());
    move |e| Error::crypto(&vi, &en, &e)
}

/// Checks a unit code is safe as a file name and a CN: letters, digits, `.`, `-`, `_`.
pub fn check_unit_code(code: &str) -> Result<(), Error> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && !code.starts_with('.')
        && code
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            "PKI_BAD_UNIT_CODE",
            format!(
                "Mã đơn vị '{code}' không hợp lệ; chỉ dùng chữ, số, '.', '-', '_' (ví dụ 000.00.00.G22)."
            ),
            format!(
                "Unit code '{code}' is invalid; use letters, digits, '.', '-', '_' only (e.g. 000.00.00.G22)."
            ),
        ))
    }
}

fn new_key() -> Result<PKey<Private>, Error> {
    Rsa::generate(2048)
        .and_then(PKey::from_rsa)
        .map_err(c("tạo khóa RSA-2048", "generating an RSA-2048 key"))
}

fn serial() -> Result<Asn1Integer, Error> {
    let mut bn = BigNum::new().map_err(c("tạo số hiệu", "making a serial"))?;
    bn.rand(63, MsbOption::MAYBE_ZERO, false)
        .and_then(|()| bn.to_asn1_integer())
        .map_err(c("tạo số hiệu", "making a serial"))
}

fn name(entries: &[(&str, &str)]) -> Result<X509Name, Error> {
    let mut b = X509Name::builder().map_err(c("tạo tên", "building a name"))?;
    for (k, v) in entries {
        b.append_entry_by_text(k, v)
            .map_err(c("tạo tên", "building a name"))?;
    }
    Ok(b.build())
}

enum Kind {
    Ca,
    Relay,
    Unit,
}

fn build_cert(
    kind: &Kind,
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    now: i64,
) -> Result<X509, Error> {
    let err = c("tạo chứng thư", "building a certificate");
    let mut b = X509Builder::new().map_err(&err)?;
    b.set_version(2).map_err(&err)?;
    let sn = serial()?;
    b.set_serial_number(&sn).map_err(&err)?;
    b.set_subject_name(subject).map_err(&err)?;
    b.set_issuer_name(issuer.map_or(subject.as_ref(), |(i, _)| i.subject_name()))
        .map_err(&err)?;
    b.set_pubkey(key).map_err(&err)?;
    let days = if matches!(kind, Kind::Ca) {
        CA_DAYS
    } else {
        LEAF_DAYS
    };
    let nb = Asn1Time::from_unix(now - SKEW).map_err(&err)?;
    let na = Asn1Time::from_unix(now + days * DAY).map_err(&err)?;
    b.set_not_before(&nb).map_err(&err)?;
    b.set_not_after(&na).map_err(&err)?;
    match kind {
        Kind::Ca => {
            b.append_extension(
                BasicConstraints::new()
                    .critical()
                    .ca()
                    .build()
                    .map_err(&err)?,
            )
            .map_err(&err)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .map_err(&err)?,
            )
            .map_err(&err)?;
        }
        Kind::Relay | Kind::Unit => {
            b.append_extension(BasicConstraints::new().critical().build().map_err(&err)?)
                .map_err(&err)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .non_repudiation()
                    .key_encipherment()
                    .build()
                    .map_err(&err)?,
            )
            .map_err(&err)?;
            let mut eku = ExtendedKeyUsage::new();
            eku.client_auth().email_protection();
            if matches!(kind, Kind::Relay) {
                eku.server_auth().other(RELAY_EKU_OID);
            }
            b.append_extension(eku.build().map_err(&err)?)
                .map_err(&err)?;
        }
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|(i, _)| i.as_ref()), None))
        .map_err(&err)?;
    b.append_extension(ski).map_err(&err)?;
    if let Some((i, _)) = issuer {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&b.x509v3_context(Some(i), None))
            .map_err(&err)?;
        b.append_extension(aki).map_err(&err)?;
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).map_err(&err)?;
    Ok(b.build())
}

fn issued(cert: &X509, key: &PKey<Private>) -> Result<Issued, Error> {
    let err = c("mã hóa PEM", "encoding PEM");
    Ok(Issued {
        cert_pem: cert.to_pem().map_err(&err)?,
        key_pem: key.private_key_to_pem_pkcs8().map_err(&err)?,
    })
}

/// DER of a short ASN.1 element (content shorter than 128 bytes).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, u8::try_from(content.len()).unwrap_or(0)];
    v.extend_from_slice(content);
    v
}

fn crl(
    ca: &X509,
    ca_key: &PKey<Private>,
    revoked: Vec<openssl::x509::X509Revoked>,
    number: u32,
    now: i64,
) -> Result<Vec<u8>, Error> {
    let err = c("tạo CRL", "building the CRL");
    let mut b = X509CrlBuilder::new().map_err(&err)?;
    // authorityKeyIdentifier = SEQUENCE { [0] keyIdentifier } (RFC 5280 §5.2.1).
    let keyid = ca
        .subject_key_id()
        .map(|k| k.as_slice().to_vec())
        .unwrap_or_default();
    let aki = der(0x30, &der(0x80, &keyid));
    // cRLNumber = INTEGER (RFC 5280 §5.2.3), big-endian, with a leading zero if the top bit is set.
    let mut n = number.to_be_bytes().to_vec();
    while n.len() > 1 && n[0] == 0 && n[1] & 0x80 == 0 {
        n.remove(0);
    }
    if n[0] & 0x80 != 0 {
        n.insert(0, 0);
    }
    let crl_number = der(0x02, &n);
    for (nid, content) in [
        (Nid::AUTHORITY_KEY_IDENTIFIER, aki),
        (Nid::CRL_NUMBER, crl_number),
    ] {
        let oid = Asn1Object::from_str(&nid.as_raw().to_string())
            .or_else(|_| Asn1Object::from_str(nid.long_name().unwrap_or("")))
            .map_err(&err)?;
        let octets = Asn1OctetString::new_from_bytes(&content).map_err(&err)?;
        b.append_extension(X509Extension::new_from_der(&oid, false, &octets).map_err(&err)?)
            .map_err(&err)?;
    }
    b.set_issuer_name(ca.subject_name()).map_err(&err)?;
    let last = Asn1Time::from_unix(now).map_err(&err)?;
    let next = Asn1Time::from_unix(now + CRL_DAYS * DAY).map_err(&err)?;
    b.set_last_update(&last).map_err(&err)?;
    b.set_next_update(&next).map_err(&err)?;
    for r in revoked {
        b.add_revoked(r).map_err(&err)?;
    }
    b.sort().map_err(&err)?;
    b.sign(ca_key, MessageDigest::sha256()).map_err(&err)?;
    b.build().and_then(|c| c.to_pem()).map_err(&err)
}

fn unit_subject(code: &str, org: Option<&str>) -> Result<X509Name, Error> {
    let org = org.filter(|o| !o.trim().is_empty()).unwrap_or(code);
    name(&[("CN", code), ("O", org)])
}

/// Makes a new development PKI at time `now` (unix seconds): root CA, relay
/// certificate (`CN=relay, OU=Relay`, EKU includes [`RELAY_EKU_OID`]), one
/// certificate per unit (`CN=<code>, O=<name or code>`), and an empty CRL.
pub fn init(units: &[(&str, Option<&str>)], now: i64) -> Result<DevPki, Error> {
    let ca_key = new_key()?;
    let ca_name = name(&[("CN", "Truc Dev Root CA"), ("O", "Truc (dev only)")])?;
    let ca = build_cert(&Kind::Ca, &ca_name, &ca_key, None, now)?;
    let relay_key = new_key()?;
    let relay_name = name(&[("CN", "relay"), ("OU", "Relay"), ("O", "Truc (dev only)")])?;
    let relay = build_cert(
        &Kind::Relay,
        &relay_name,
        &relay_key,
        Some((&ca, &ca_key)),
        now,
    )?;
    let mut out_units = Vec::new();
    for (code, org) in units {
        check_unit_code(code)?;
        let k = new_key()?;
        let cert = build_cert(
            &Kind::Unit,
            &unit_subject(code, *org)?,
            &k,
            Some((&ca, &ca_key)),
            now,
        )?;
        out_units.push(((*code).to_string(), issued(&cert, &k)?));
    }
    Ok(DevPki {
        ca: issued(&ca, &ca_key)?,
        crl_pem: crl(&ca, &ca_key, Vec::new(), 1, now)?,
        relay: issued(&relay, &relay_key)?,
        units: out_units,
    })
}

fn load_ca(ca_pem: &[u8], ca_key_pem: &[u8]) -> Result<(X509, PKey<Private>), Error> {
    let ca = X509::from_pem(ca_pem).map_err(|e| {
        Error::new(
            "PKI_CA_UNREADABLE",
            format!("Không đọc được ca.pem: {e}."),
            format!("Cannot read ca.pem: {e}."),
        )
    })?;
    let key = PKey::private_key_from_pem(ca_key_pem).map_err(|e| {
        Error::new(
            "PKI_CA_UNREADABLE",
            format!("Không đọc được ca.key.pem: {e}."),
            format!("Cannot read ca.key.pem: {e}."),
        )
    })?;
    Ok((ca, key))
}

/// Issues a certificate for one more unit under an existing CA.
pub fn issue(
    ca_pem: &[u8],
    ca_key_pem: &[u8],
    code: &str,
    org: Option<&str>,
    now: i64,
) -> Result<Issued, Error> {
    check_unit_code(code)?;
    let (ca, ca_key) = load_ca(ca_pem, ca_key_pem)?;
    let k = new_key()?;
    let cert = build_cert(
        &Kind::Unit,
        &unit_subject(code, org)?,
        &k,
        Some((&ca, &ca_key)),
        now,
    )?;
    issued(&cert, &k)
}

/// Returns a new CRL (PEM) that lists everything `crl_pem` listed plus `cert_pem`.
pub fn revoke(
    ca_pem: &[u8],
    ca_key_pem: &[u8],
    crl_pem: &[u8],
    cert_pem: &[u8],
    now: i64,
) -> Result<Vec<u8>, Error> {
    let (ca, ca_key) = load_ca(ca_pem, ca_key_pem)?;
    let cert = X509::from_pem(cert_pem).map_err(|e| {
        Error::new(
            "PKI_CERT_UNREADABLE",
            format!("Không đọc được chứng thư cần thu hồi: {e}."),
            format!("Cannot read the certificate to revoke: {e}."),
        )
    })?;
    if ca.issued(&cert) != X509VerifyResult::OK {
        return Err(Error::new(
            "PKI_NOT_ISSUED_BY_CA",
            "Chứng thư này không do CA đã chỉ định cấp, nên không thể thu hồi bằng CA này.",
            "This certificate was not issued by the given CA, so that CA cannot revoke it.",
        ));
    }
    let old = X509Crl::from_pem(crl_pem).map_err(|e| {
        Error::new(
            "PKI_CRL_UNREADABLE",
            format!("Không đọc được ca.crl.pem: {e}."),
            format!("Cannot read ca.crl.pem: {e}."),
        )
    })?;
    let err = c("thu hồi chứng thư", "revoking the certificate");
    let mut entries = Vec::new();
    let mut already = false;
    if let Some(list) = old.get_revoked() {
        for r in list {
            if r.serial_number().to_bn().ok() == cert.serial_number().to_bn().ok() {
                already = true;
            }
            entries.push(r.to_owned().map_err(&err)?);
        }
    }
    if !already {
        let mut rb = X509RevokedBuilder::new().map_err(&err)?;
        rb.set_serial_number(cert.serial_number()).map_err(&err)?;
        let at = Asn1Time::from_unix(now).map_err(&err)?;
        rb.set_revocation_date(&at).map_err(&err)?;
        entries.push(rb.build());
    }
    let number = old
        .extension::<CrlNumber>()
        .ok()
        .flatten()
        .and_then(|(_, n)| n.to_bn().ok())
        .and_then(|n| u32::try_from(n.to_dec_str().ok()?.parse::<u64>().ok()?).ok())
        .unwrap_or(0);
    crl(&ca, &ca_key, entries, number.saturating_add(1), now)
}

/// Issues a TLS server certificate under the CA `ca` (its `key_pem` must be the CA key) for the
/// relay's HTTPS edge: EKU serverAuth only, a SAN entry per name (an IP address when the name
/// parses as one, a DNS name otherwise), CN = the first name. The relay's signing certificate
/// has no SAN, so HTTPS clients need this one.
pub fn issue_tls_server(ca: &Issued, names: &[&str], now: i64) -> Result<Issued, Error> {
    use openssl::x509::extension::SubjectAlternativeName;
    let Some(first) = names.first() else {
        return Err(Error::new(
            "PKI_NO_SERVER_NAME",
            "Chứng thư máy chủ TLS cần ít nhất một tên (ví dụ localhost hoặc 127.0.0.1).",
            "A TLS server certificate needs at least one name (e.g. localhost or 127.0.0.1).",
        ));
    };
    for n in names {
        let ok = !n.is_empty()
            && n.len() <= 253
            && n.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':' | '*'));
        if !ok {
            return Err(Error::new(
                "PKI_BAD_SERVER_NAME",
                format!(
                    "Tên máy chủ '{n}' không hợp lệ; dùng tên miền (chữ, số, '.', '-') hoặc địa chỉ IP."
                ),
                format!(
                    "Server name '{n}' is invalid; use a DNS name (letters, digits, '.', '-') or an IP address."
                ),
            ));
        }
    }
    let (ca_cert, ca_key) = load_ca(&ca.cert_pem, &ca.key_pem)?;
    let key = new_key()?;
    let subject = name(&[("CN", first), ("O", "Truc (dev only)")])?;
    let err = c(
        "tạo chứng thư máy chủ TLS",
        "building the TLS server certificate",
    );
    let mut b = X509Builder::new().map_err(&err)?;
    b.set_version(2).map_err(&err)?;
    let sn = serial()?;
    b.set_serial_number(&sn).map_err(&err)?;
    b.set_subject_name(&subject).map_err(&err)?;
    b.set_issuer_name(ca_cert.subject_name()).map_err(&err)?;
    b.set_pubkey(&key).map_err(&err)?;
    let nb = Asn1Time::from_unix(now - SKEW).map_err(&err)?;
    let na = Asn1Time::from_unix(now + LEAF_DAYS * DAY).map_err(&err)?;
    b.set_not_before(&nb).map_err(&err)?;
    b.set_not_after(&na).map_err(&err)?;
    b.append_extension(BasicConstraints::new().critical().build().map_err(&err)?)
        .map_err(&err)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .map_err(&err)?,
    )
    .map_err(&err)?;
    b.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .build()
            .map_err(&err)?,
    )
    .map_err(&err)?;
    let mut san = SubjectAlternativeName::new();
    for n in names {
        if n.parse::<std::net::IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .map_err(&err)?;
    b.append_extension(san).map_err(&err)?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .map_err(&err)?;
    b.append_extension(ski).map_err(&err)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .map_err(&err)?;
    b.append_extension(aki).map_err(&err)?;
    b.sign(&ca_key, MessageDigest::sha256()).map_err(&err)?;
    issued(&b.build(), &key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;
    use openssl::x509::store::X509StoreBuilder;

    #[test]
    fn tls_server_certificate_verifies_for_its_names_only() {
        let now = 1_800_000_000;
        let pki = init(&[("000.00.00.G22", None)], now).unwrap();
        let tls = issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], now).unwrap();
        let cert = X509::from_pem(&tls.cert_pem).unwrap();
        let ca = X509::from_pem(&pki.ca.cert_pem).unwrap();
        assert_eq!(ca.issued(&cert), X509VerifyResult::OK, "signed by the CA");
        assert!(
            !crate::is_relay_certificate(&cert),
            "a TLS certificate must not seal packages"
        );
        let sans: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|g| {
                g.dnsname()
                    .map(str::to_owned)
                    .or_else(|| g.ipaddress().map(|ip| format!("{ip:?}")))
                    .unwrap()
            })
            .collect();
        assert_eq!(sans, ["localhost", "[127, 0, 0, 1]"]);

        // openssl's own host and IP checks (what an HTTPS client runs) accept exactly these names.
        let mut ctx = openssl::x509::X509StoreContext::new().unwrap();
        let chain = openssl::stack::Stack::new().unwrap();
        let mut check = |host: Option<&str>, ip: Option<&[u8]>| {
            let mut param = openssl::x509::verify::X509VerifyParam::new().unwrap();
            if let Some(h) = host {
                param.set_host(h).unwrap();
            }
            if let Some(ip) = ip {
                param
                    .set_ip(std::net::IpAddr::from(<[u8; 4]>::try_from(ip).unwrap()))
                    .unwrap();
            }
            param.set_time(now + 60);
            param
                .set_purpose(openssl::x509::X509PurposeId::SSL_SERVER)
                .unwrap();
            let mut store = X509StoreBuilder::new().unwrap();
            store
                .add_cert(X509::from_pem(&pki.ca.cert_pem).unwrap())
                .unwrap();
            store.set_param(&param).unwrap();
            let store = store.build();
            ctx.init(&store, &cert, &chain, |c| c.verify_cert())
                .unwrap()
        };
        assert!(check(Some("localhost"), None));
        assert!(check(None, Some(&[127, 0, 0, 1])));
        assert!(!check(Some("example.org"), None));
        assert!(!check(None, Some(&[10, 0, 0, 1])));

        assert!(issue_tls_server(&pki.ca, &[], now).is_err());
        assert!(issue_tls_server(&pki.ca, &["bad name"], now).is_err());
    }
}
