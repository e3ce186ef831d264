//! Checking signatures: returns a report of what was found and every check's
//! outcome, never just yes/no. Only a fixed profile is accepted (see
//! [`verify`]); anything else is reported as an unsupported profile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::asn1::{Asn1Object, Asn1Time};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::sign::Verifier;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Crl, X509StoreContext, X509VerifyResult};

use crate::c14n::{self, Method, Options};
use crate::error::Error;
use crate::sign::{
    DS, EDXML, ENVELOPED, FILTER2, RSA_SHA1, RSA_SHA256, Role, SHA1, SHA256, find_header,
};
use crate::xml::{Doc, NodeId};

/// Extended-key-usage OID that marks a relay certificate (a UUID-based OID
/// under `2.25`, which needs no registration).
pub const RELAY_EKU_OID: &str = "2.25.130380669821440632961895494211023594650";

/// A finding: stable code plus Vietnamese and English text.
pub type Finding = Error;

/// Trusted roots and CRLs, built once and shared read-only by all verifications.
pub struct TrustStore {
    roots: Vec<X509>,
    /// Each CRL with the outcome of checking its signature against a trusted
    /// root at load time (`None`: issued by an intermediate, checked per use).
    crls: Vec<(X509Crl, Option<bool>)>,
    allow_legacy_sha1: bool,
    /// Signer certificates already decoded, by SHA-256 of their DER. Decoding
    /// costs 0.1–0.3 ms with OpenSSL 3 (its public-key decoder) and a relay
    /// sees the same units' certificates over and over. Bounded; a cache only.
    certs: Mutex<HashMap<[u8; 32], X509>>,
    /// Signer certificates (by SHA-256 of DER) whose chain to a root verified,
    /// with the chain's common validity window (unix seconds). Bounded.
    chains: Mutex<HashMap<[u8; 32], (i64, i64)>>,
}

/// Most certificates the decode cache keeps before it starts over.
const CERT_CACHE_MAX: usize = 50_000;

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .field("allow_legacy_sha1", &self.allow_legacy_sha1)
            .finish_non_exhaustive()
    }
}

impl TrustStore {
    /// Roots from PEM (one or more certificates) and CRLs from PEM (zero or more).
    pub fn new(roots_pem: &[u8], crls_pem: &[u8]) -> Result<Self, Error> {
        let roots = X509::stack_from_pem(roots_pem).map_err(|e| {
            Error::new(
                "DSIG_TRUST_UNREADABLE",
                format!("Không đọc được chứng thư gốc tin cậy (PEM): {e}."),
                format!("Cannot read the trusted root certificates (PEM): {e}."),
            )
        })?;
        if roots.is_empty() {
            return Err(Error::new(
                "DSIG_TRUST_EMPTY",
                "Kho tin cậy không có chứng thư gốc nào. Chỉ định tệp ca.pem.",
                "The trust store has no root certificate. Give the ca.pem file.",
            ));
        }
        let mut crls = Vec::new();
        let text = String::from_utf8_lossy(crls_pem);
        let marker = "-----BEGIN X509 CRL-----";
        for (i, _) in text.match_indices(marker) {
            let crl = X509Crl::from_pem(&text.as_bytes()[i..]).map_err(|e| {
                Error::new(
                    "DSIG_CRL_UNREADABLE",
                    format!("Không đọc được danh sách thu hồi (CRL PEM): {e}."),
                    format!("Cannot read the certificate revocation list (CRL PEM): {e}."),
                )
            })?;
            let by_root = roots
                .iter()
                .find(|r| {
                    r.subject_name()
                        .try_cmp(crl.issuer_name())
                        .is_ok_and(|o| o.is_eq())
                })
                .map(|r| r.public_key().and_then(|k| crl.verify(&k)).unwrap_or(false));
            crls.push((crl, by_root));
        }
        Ok(Self {
            roots,
            crls,
            allow_legacy_sha1: false,
            certs: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
        })
    }

    /// Decodes a DER certificate, through the cache.
    fn certificate(&self, der: &[u8]) -> Result<X509, openssl::error::ErrorStack> {
        let key = openssl::sha::sha256(der);
        if let Some(c) = self.certs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let cert = X509::from_der(der)?;
        if let Ok(mut m) = self.certs.lock() {
            if m.len() >= CERT_CACHE_MAX {
                m.clear();
            }
            m.insert(key, cert.clone());
        }
        Ok(cert)
    }

    /// Accept the legacy RSA-SHA1 / SHA-1 profile (reading old archives only).
    pub fn allow_legacy_sha1(mut self, allow: bool) -> Self {
        self.allow_legacy_sha1 = allow;
        self
    }
}

/// What one `ds:Signature` is and how each check came out.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    /// Sender or relay (from `Id`, else from the profile and position).
    pub role: Role,
    /// The `Id` attribute, if any.
    pub id: Option<String>,
    /// Signer subject, e.g. `CN=000.00.00.G22, O=Văn phòng Chính phủ`.
    pub signer_subject: Option<String>,
    /// Signer's unit code (subject CN).
    pub signer_unit: Option<String>,
    /// SignatureMethod algorithm URI.
    pub signature_algorithm: String,
    /// DigestMethod algorithm URI.
    pub digest_algorithm: String,
    /// The reference digest matches the package.
    pub digest_ok: bool,
    /// The signature value verifies with the certificate's key.
    pub signature_ok: bool,
    /// The certificate chains to a trusted root (ignoring time).
    pub chain_ok: bool,
    /// Certificate validity window (OpenSSL text form).
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// `now` lies inside the validity window.
    pub valid_at_time: bool,
    /// `Some(true)` revoked, `Some(false)` checked and not revoked, `None` no CRL for the issuer.
    pub revoked: Option<bool>,
    /// Sender only: the signer's unit equals `From/OrganId`.
    pub signer_is_from_unit: Option<bool>,
    /// Relay only: the certificate is a relay certificate.
    pub relay_certificate: Option<bool>,
    /// Each failed check; empty means this signature checks out.
    pub failures: Vec<Finding>,
    /// Things worth knowing that do not fail the signature.
    pub warnings: Vec<Finding>,
}

impl SignatureReport {
    /// Every check passed.
    pub fn is_valid(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The result of verifying one package.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One entry per `ds:Signature`, in document order.
    pub signatures: Vec<SignatureReport>,
    /// Package-level failures (unreadable XML, no signature at all).
    pub failures: Vec<Finding>,
    /// Package-level warnings (e.g. a placeholder edXML `Signature`).
    pub warnings: Vec<Finding>,
    /// `From/OrganId` of the package, if found.
    pub from_unit: Option<String>,
}

impl VerifyReport {
    /// The first signature in `role`, if any (a recipient requires both roles).
    pub fn signature(&self, role: Role) -> Option<&SignatureReport> {
        self.signatures.iter().find(|s| s.role == role)
    }

    /// True only if there is at least one signature and every signature checks out.
    pub fn is_valid(&self) -> bool {
        self.failures.is_empty()
            && !self.signatures.is_empty()
            && self.signatures.iter().all(|s| s.is_valid())
    }
}

fn f(code: &'static str, vi: impl Into<String>, en: impl Into<String>) -> Finding {
    Error::new(code, vi, en)
}

/// Verifies every XML-DSig signature in `xml` against `trust` at time `now`.
///
/// Accepted profile: one `Reference URI=""` whose transforms are either
/// XPath Filter 2.0 `subtract` (a union of `//p:Name` and `//p:Name/p:Child`
/// paths, prefixes bound on the XPath element) then exclusive C14N, or the
/// enveloped-signature transform optionally followed by exclusive or inclusive
/// C14N; SignedInfo canonicalized by exclusive or inclusive C14N 1.0;
/// RSA-SHA256 with SHA-256 digests (RSA-SHA1/SHA-1 only when the trust store
/// allows legacy). Never panics, whatever the input.
pub fn verify(xml: &[u8], trust: &TrustStore, now: SystemTime) -> VerifyReport {
    match Doc::parse(xml) {
        Ok(doc) => verify_doc(&doc, trust, now),
        Err(e) => VerifyReport {
            failures: vec![e],
            ..VerifyReport::default()
        },
    }
}

/// [`verify`] on a document already parsed.
pub(crate) fn verify_doc(doc: &Doc<'_>, trust: &TrustStore, now: SystemTime) -> VerifyReport {
    let mut report = VerifyReport::default();
    let now_unix = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let header = find_header(doc);
    report.from_unit = header.and_then(|h| from_unit(doc, h));
    for (_, e) in doc.elements() {
        if e.local == "Signature" && e.ns == EDXML {
            report.warnings.push(f(
                "DSIG_PLACEHOLDER_SIGNATURE",
                "Có phần tử Signature trong không gian tên edXML (chữ ký giữ chỗ, không kiểm tra được); phần tử này được coi là chưa ký.",
                "There is a Signature element in the edXML namespace (a placeholder that cannot be checked); it counts as unsigned.",
            ));
        }
    }
    let sigs: Vec<NodeId> = doc
        .elements()
        .filter(|(_, e)| e.is(DS, "Signature"))
        .map(|(i, _)| i)
        .collect();
    if sigs.is_empty() {
        report.failures.push(f(
            "DSIG_UNSIGNED",
            "Gói tin không có chữ ký XML-DSig nào. Đơn vị gửi cần ký gói tin (truc sign).",
            "The package has no XML-DSig signature. The sender must sign it (truc sign).",
        ));
        return report;
    }
    for (pos, &s) in sigs.iter().enumerate() {
        let r = check_signature(doc, s, pos, trust, now_unix, report.from_unit.as_deref());
        report.signatures.push(r);
    }
    report
}

/// `edXMLHeader/(MessageHeader|Status)/From/OrganId` — only there, so a
/// `From` smuggled into an unsigned trace entry is never taken for the sender.
fn from_unit(doc: &Doc<'_>, header: NodeId) -> Option<String> {
    let block = doc
        .first_child(header, EDXML, "MessageHeader")
        .or_else(|| doc.first_child(header, EDXML, "Status"))?;
    let from = doc.first_child(block, EDXML, "From")?;
    let organ = doc.first_child(from, EDXML, "OrganId")?;
    Some(doc.text(organ).trim().to_string())
}

/// The parsed, profile-checked content of one signature.
struct Parsed {
    c14n: (Method, bool),
    c14n_prefixes: Vec<String>,
    sig_md: MessageDigest,
    sig_alg: String,
    digest_md: MessageDigest,
    digest_alg: String,
    excluded: Vec<NodeId>,
    ref_c14n: Options<'static>,
    ref_prefixes: Vec<String>,
    digest_value: Vec<u8>,
    signature_value: Vec<u8>,
    certs: Vec<X509>,
    is_filter2: bool,
    signed_info: NodeId,
}

fn unsupported(what_vi: &str, what_en: &str) -> Finding {
    f(
        "DSIG_UNSUPPORTED_PROFILE",
        format!(
            "Chữ ký dùng cấu hình không được hỗ trợ: {what_vi}. Chỉ chấp nhận hồ sơ chữ ký của Trục (xem certs/README.md)."
        ),
        format!(
            "The signature uses an unsupported profile: {what_en}. Only Trục's signature profile is accepted (see certs/README.md)."
        ),
    )
}

fn prefix_list(doc: &Doc<'_>, method_el: NodeId) -> Vec<String> {
    doc.first_child(method_el, c14n::EXC_C14N, "InclusiveNamespaces")
        .and_then(|i| doc.element(i))
        .and_then(|e| e.attr("PrefixList"))
        .map(|l| l.split_ascii_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn b64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(clean).ok()
}

fn parse_signature(doc: &Doc<'_>, sig: NodeId, trust: &TrustStore) -> Result<Parsed, Finding> {
    let legacy = trust.allow_legacy_sha1;
    let alg = |id: NodeId| {
        doc.element(id)
            .and_then(|e| e.attr("Algorithm"))
            .unwrap_or("")
            .to_string()
    };
    let si = doc
        .first_child(sig, DS, "SignedInfo")
        .ok_or_else(|| unsupported("thiếu SignedInfo", "SignedInfo is missing"))?;
    let cm = doc
        .first_child(si, DS, "CanonicalizationMethod")
        .ok_or_else(|| {
            unsupported(
                "thiếu CanonicalizationMethod",
                "CanonicalizationMethod is missing",
            )
        })?;
    let c14n = Method::from_uri(&alg(cm)).ok_or_else(|| {
        unsupported(
            &format!("CanonicalizationMethod {}", alg(cm)),
            &format!("CanonicalizationMethod {}", alg(cm)),
        )
    })?;
    let sm = doc
        .first_child(si, DS, "SignatureMethod")
        .ok_or_else(|| unsupported("thiếu SignatureMethod", "SignatureMethod is missing"))?;
    let sig_alg = alg(sm);
    let legacy_refused = |a: &str| {
        f(
            "DSIG_LEGACY_SHA1",
            format!(
                "Chữ ký dùng thuật toán cũ {a} (SHA-1); chỉ chấp nhận khi bật cờ cho phép (--allow-sha1) để đọc lưu trữ cũ."
            ),
            format!(
                "The signature uses the legacy algorithm {a} (SHA-1); it is accepted only with the legacy flag (--allow-sha1), for old archives."
            ),
        )
    };
    let sig_md = match sig_alg.as_str() {
        RSA_SHA256 => MessageDigest::sha256(),
        RSA_SHA1 if legacy => MessageDigest::sha1(),
        RSA_SHA1 => return Err(legacy_refused(RSA_SHA1)),
        other => {
            return Err(unsupported(
                &format!("SignatureMethod {other}"),
                &format!("SignatureMethod {other}"),
            ));
        }
    };
    let refs: Vec<NodeId> = doc
        .child_elements(si)
        .filter(|(_, e)| e.is(DS, "Reference"))
        .map(|(i, _)| i)
        .collect();
    let [reference] = refs.as_slice() else {
        return Err(unsupported(
            "cần đúng một Reference",
            "exactly one Reference is required",
        ));
    };
    let reference = *reference;
    if doc.element(reference).and_then(|e| e.attr("URI")) != Some("") {
        return Err(unsupported(
            "Reference phải có URI=\"\" (toàn bộ gói tin)",
            "Reference must have URI=\"\" (the whole package)",
        ));
    }
    let transforms: Vec<NodeId> = doc
        .first_child(reference, DS, "Transforms")
        .map(|t| {
            doc.child_elements(t)
                .filter(|(_, e)| e.is(DS, "Transform"))
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    let algs: Vec<String> = transforms.iter().map(|&t| alg(t)).collect();
    let algs_ref: Vec<&str> = algs.iter().map(String::as_str).collect();
    let (excluded, ref_method, ref_prefixes, is_filter2) = match algs_ref.as_slice() {
        [FILTER2, c14n::EXC_C14N] => {
            let excluded = filter2_subtract(doc, transforms[0])?;
            (
                excluded,
                Method::Exclusive,
                prefix_list(doc, transforms[1]),
                true,
            )
        }
        [ENVELOPED] => (vec![sig], Method::Inclusive, Vec::new(), false),
        [ENVELOPED, c14n::EXC_C14N] => (
            vec![sig],
            Method::Exclusive,
            prefix_list(doc, transforms[1]),
            false,
        ),
        [ENVELOPED, c14n::C14N] => (vec![sig], Method::Inclusive, Vec::new(), false),
        other => {
            let list = other.join(", ");
            return Err(unsupported(
                &format!("chuỗi biến đổi [{list}]"),
                &format!("transform chain [{list}]"),
            ));
        }
    };
    let dm = doc
        .first_child(reference, DS, "DigestMethod")
        .ok_or_else(|| unsupported("thiếu DigestMethod", "DigestMethod is missing"))?;
    let digest_alg = alg(dm);
    let digest_md = match digest_alg.as_str() {
        SHA256 => MessageDigest::sha256(),
        SHA1 if legacy => MessageDigest::sha1(),
        SHA1 => return Err(legacy_refused(SHA1)),
        other => {
            return Err(unsupported(
                &format!("DigestMethod {other}"),
                &format!("DigestMethod {other}"),
            ));
        }
    };
    let bad_b64 = |what: &str| {
        f(
            "DSIG_BAD_BASE64",
            format!("{what} không phải base64 hợp lệ; chữ ký bị hỏng."),
            format!("{what} is not valid base64; the signature is damaged."),
        )
    };
    let digest_value = doc
        .first_child(reference, DS, "DigestValue")
        .and_then(|d| b64(&doc.text(d)))
        .ok_or_else(|| bad_b64("DigestValue"))?;
    let signature_value = doc
        .first_child(sig, DS, "SignatureValue")
        .and_then(|d| b64(&doc.text(d)))
        .ok_or_else(|| bad_b64("SignatureValue"))?;
    let mut certs = Vec::new();
    if let Some(x509data) = doc
        .first_child(sig, DS, "KeyInfo")
        .and_then(|k| doc.first_child(k, DS, "X509Data"))
    {
        for (c, e) in doc.child_elements(x509data) {
            if e.is(DS, "X509Certificate") {
                let der = b64(&doc.text(c)).ok_or_else(|| bad_b64("X509Certificate"))?;
                let cert = trust.certificate(&der).map_err(|e| {
                    f(
                        "DSIG_CERT_UNREADABLE",
                        format!("Không đọc được chứng thư trong KeyInfo: {e}."),
                        format!("Cannot read the certificate in KeyInfo: {e}."),
                    )
                })?;
                certs.push(cert);
            }
        }
    }
    if certs.is_empty() {
        return Err(f(
            "DSIG_NO_CERTIFICATE",
            "Chữ ký không kèm chứng thư của người ký (KeyInfo/X509Data/X509Certificate). Ký lại bằng truc sign.",
            "The signature carries no signer certificate (KeyInfo/X509Data/X509Certificate). Sign again with truc sign.",
        ));
    }
    let c14n_prefixes = prefix_list(doc, cm);
    Ok(Parsed {
        c14n,
        c14n_prefixes,
        sig_md,
        sig_alg,
        digest_md,
        digest_alg,
        excluded,
        ref_c14n: Options {
            method: ref_method,
            with_comments: false,
            inclusive_prefixes: &[],
        },
        ref_prefixes,
        digest_value,
        signature_value,
        certs,
        is_filter2,
        signed_info: si,
    })
}

/// Evaluates the XPath Filter 2.0 `subtract` transform (restricted grammar)
/// and returns the roots of the subtracted subtrees.
fn filter2_subtract(doc: &Doc<'_>, transform: NodeId) -> Result<Vec<NodeId>, Finding> {
    let xpaths: Vec<NodeId> = doc
        .child_elements(transform)
        .filter(|(_, e)| e.is(FILTER2, "XPath"))
        .map(|(i, _)| i)
        .collect();
    let [xp] = xpaths.as_slice() else {
        return Err(unsupported(
            "cần đúng một phần tử XPath trong Filter 2.0",
            "exactly one XPath element is required in Filter 2.0",
        ));
    };
    if doc.element(*xp).and_then(|e| e.attr("Filter")) != Some("subtract") {
        return Err(unsupported(
            "Filter 2.0 chỉ hỗ trợ Filter=\"subtract\"",
            "only Filter=\"subtract\" is supported in Filter 2.0",
        ));
    }
    let expr = doc.text(*xp);
    let bad = || {
        unsupported(
            &format!("biểu thức XPath '{}'", expr.trim()),
            &format!("XPath expression '{}'", expr.trim()),
        )
    };
    // Each alternative: //A or //A/B (qualified names, prefixes bound on the XPath element).
    let mut paths: Vec<Vec<(String, String)>> = Vec::new();
    for alt in expr.split('|') {
        let alt = alt.trim();
        let rest = alt.strip_prefix("//").ok_or_else(bad)?;
        let mut steps = Vec::new();
        for step in rest.split('/') {
            let (p, l) = step.split_once(':').unwrap_or(("", step));
            let valid = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            if !valid(l) || (!p.is_empty() && !valid(p)) {
                return Err(bad());
            }
            let ns = if p.is_empty() {
                ""
            } else {
                doc.lookup_ns(*xp, p).ok_or_else(bad)?
            };
            steps.push((ns.to_string(), l.to_string()));
        }
        if steps.is_empty() || steps.len() > 2 {
            return Err(bad());
        }
        paths.push(steps);
    }
    let mut out = Vec::new();
    for (id, e) in doc.elements() {
        let hit = paths.iter().any(|steps| match steps.as_slice() {
            [(ns, l)] => e.is(ns, l),
            [(pns, pl), (ns, l)] => {
                e.is(ns, l)
                    && e.parent
                        .and_then(|p| doc.element(p))
                        .is_some_and(|p| p.is(pns, pl))
            }
            _ => false,
        });
        if hit {
            out.push(id);
        }
    }
    Ok(out)
}

/// The scope a sender signature must have: everything except trace entries
/// (or, in the DESIGN §3 variant, the whole TraceHeaderList) and signatures.
fn sender_scope_ok(doc: &Doc<'_>, excluded: &[NodeId]) -> bool {
    excluded.iter().all(|&id| {
        doc.element(id).is_some_and(|e| {
            e.is(DS, "Signature") || e.is(EDXML, "TraceHeader") || e.is(EDXML, "TraceHeaderList")
        })
    })
}

pub(crate) fn subject_text(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_default();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn subject_entry(cert: &X509, nid: Nid) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

/// A relay certificate: subject `OU=Relay` and the relay EKU OID.
pub fn is_relay_certificate(cert: &X509) -> bool {
    let ou = subject_entry(cert, Nid::ORGANIZATIONALUNITNAME);
    let has_oid = match (Asn1Object::from_str(RELAY_EKU_OID), cert.to_der()) {
        (Ok(oid), Ok(der)) => {
            let body = oid.as_slice();
            let mut needle = vec![0x06, u8::try_from(body.len()).unwrap_or(0)];
            needle.extend_from_slice(body);
            der.windows(needle.len()).any(|w| w == needle.as_slice())
        }
        _ => false,
    };
    ou.as_deref() == Some("Relay") && has_oid
}

fn check_signature(
    doc: &Doc<'_>,
    sig: NodeId,
    position: usize,
    trust: &TrustStore,
    now: i64,
    from: Option<&str>,
) -> SignatureReport {
    let id = doc
        .element(sig)
        .and_then(|e| e.attr("Id"))
        .map(str::to_string);
    let mut r = SignatureReport {
        role: if position == 0 {
            Role::Sender
        } else {
            Role::Relay
        },
        id: id.clone(),
        signer_subject: None,
        signer_unit: None,
        signature_algorithm: String::new(),
        digest_algorithm: String::new(),
        digest_ok: false,
        signature_ok: false,
        chain_ok: false,
        not_before: None,
        not_after: None,
        valid_at_time: false,
        revoked: None,
        signer_is_from_unit: None,
        relay_certificate: None,
        failures: Vec::new(),
        warnings: Vec::new(),
    };
    let p = match parse_signature(doc, sig, trust) {
        Ok(p) => p,
        Err(e) => {
            r.failures.push(e);
            return r;
        }
    };
    r.role = match id.as_deref() {
        Some("sender") => Role::Sender,
        Some("relay") => Role::Relay,
        _ if p.is_filter2 => Role::Sender,
        _ => r.role,
    };
    r.signature_algorithm = p.sig_alg.clone();
    r.digest_algorithm = p.digest_alg.clone();
    if p.sig_md.type_().as_raw() == MessageDigest::sha1().type_().as_raw() {
        r.warnings.push(f(
            "DSIG_LEGACY_ACCEPTED",
            "Chữ ký dùng hồ sơ SHA-1 cũ, chỉ được chấp nhận vì đã bật cờ đọc lưu trữ cũ.",
            "The signature uses the legacy SHA-1 profile, accepted only because the legacy flag is on.",
        ));
    }
    let where_vi = format!("chữ ký {}", id.as_deref().unwrap_or(r.role.id()));
    let where_en = format!("signature {}", id.as_deref().unwrap_or(r.role.id()));

    // 1. Scope: a sender signature must cover everything but trace entries and signatures.
    if r.role == Role::Sender && p.is_filter2 && !sender_scope_ok(doc, &p.excluded) {
        r.failures.push(f(
            "DSIG_SCOPE",
            format!("{where_vi}: bộ lọc XPath loại trừ cả nội dung ngoài TraceHeader và chữ ký, nên chữ ký không bảo vệ toàn bộ gói tin."),
            format!("{where_en}: the XPath filter subtracts content other than TraceHeader entries and signatures, so the signature does not protect the whole package."),
        ));
    }
    // 2. Digest.
    let opts = Options {
        inclusive_prefixes: &p.ref_prefixes,
        ..p.ref_c14n
    };
    match crate::sign::digest_of(doc, &p.excluded, opts, p.digest_md) {
        Ok(d) if d == p.digest_value => r.digest_ok = true,
        Ok(_) => r.failures.push(f(
            "DSIG_DIGEST_MISMATCH",
            format!("{where_vi}: giá trị băm không khớp: nội dung gói tin đã bị thay đổi sau khi ký (ngoài phần TraceHeader). Không tin cậy gói tin này."),
            format!("{where_en}: digest mismatch: the package content changed after signing (outside the TraceHeader entries). Do not trust this package."),
        )),
        Err(e) => r.failures.push(e),
    }
    // 3. Signature value over SignedInfo.
    let signer = &p.certs[0];
    r.signer_subject = Some(subject_text(signer));
    r.signer_unit = subject_entry(signer, Nid::COMMONNAME);
    let mut si = Vec::new();
    let si_opts = Options {
        method: p.c14n.0,
        with_comments: p.c14n.1,
        inclusive_prefixes: &p.c14n_prefixes,
    };
    let _ = c14n::write_node_set(doc, Some(p.signed_info), &[], si_opts, &mut si);
    let sig_ok = signer
        .public_key()
        .and_then(|k| {
            let mut v = Verifier::new(p.sig_md, &k)?;
            v.update(&si)?;
            v.verify(&p.signature_value)
        })
        .unwrap_or(false);
    r.signature_ok = sig_ok;
    if !sig_ok {
        r.failures.push(f(
            "DSIG_SIGNATURE_INVALID",
            format!("{where_vi}: giá trị chữ ký không khớp với khóa công khai trong chứng thư ({}); SignedInfo đã bị sửa hoặc ký bằng khóa khác.", r.signer_subject.as_deref().unwrap_or("")),
            format!("{where_en}: the signature value does not verify with the certificate's public key ({}); SignedInfo was altered or signed with another key.", r.signer_subject.as_deref().unwrap_or("")),
        ));
    }
    // 4. Certificate: validity window, chain, revocation.
    r.not_before = Some(signer.not_before().to_string());
    r.not_after = Some(signer.not_after().to_string());
    if let Ok(t) = Asn1Time::from_unix(now) {
        let after_start = signer.not_before().compare(&t).is_ok_and(|o| o.is_le());
        let before_end = signer.not_after().compare(&t).is_ok_and(|o| o.is_ge());
        r.valid_at_time = after_start && before_end;
    }
    if !r.valid_at_time {
        r.failures.push(f(
            "DSIG_CERT_EXPIRED",
            format!("{where_vi}: chứng thư của người ký không có hiệu lực tại thời điểm kiểm tra (hiệu lực từ {} đến {}). Đơn vị cần chứng thư mới.", signer.not_before(), signer.not_after()),
            format!("{where_en}: the signer's certificate is not valid at the checking time (valid from {} to {}). The unit needs a new certificate.", signer.not_before(), signer.not_after()),
        ));
    }
    // One time-aware check on the good path; on failure, a time-free check
    // tells a broken chain from a certificate that is merely out of date.
    if chain_check(trust, signer, &p.certs[1..], Some(now)).is_ok() {
        r.chain_ok = true;
    } else {
        match chain_check(trust, signer, &p.certs[1..], None) {
            Ok(()) => {
                r.chain_ok = true;
                // The leaf's own window is reported above; this catches an expired CA.
                if r.valid_at_time {
                    r.failures.push(f(
                        "DSIG_CHAIN_NOT_VALID_AT_TIME",
                        format!("{where_vi}: một chứng thư trong chuỗi (CA) không có hiệu lực tại thời điểm kiểm tra. Cập nhật kho tin cậy."),
                        format!("{where_en}: a certificate in the chain (a CA) is not valid at the checking time. Update the trust store."),
                    ));
                }
            }
            Err(msg) => r.failures.push(f(
                "DSIG_CHAIN_UNTRUSTED",
                format!("{where_vi}: chứng thư người ký không dẫn tới chứng thư gốc tin cậy ({msg}). Kiểm tra --trust hoặc chứng thư của đơn vị."),
                format!("{where_en}: the signer's certificate does not chain to a trusted root ({msg}). Check --trust or the unit's certificate."),
            )),
        }
    }
    match revocation(trust, signer, &p.certs[1..], now) {
        Revocation::NotRevoked => r.revoked = Some(false),
        Revocation::Revoked(date) => {
            r.revoked = Some(true);
            r.failures.push(f(
                "DSIG_CERT_REVOKED",
                format!("{where_vi}: chứng thư người ký đã bị thu hồi (ngày {date}). Không tin cậy chữ ký này."),
                format!("{where_en}: the signer's certificate was revoked (on {date}). Do not trust this signature."),
            ));
        }
        Revocation::NoCrl => r.warnings.push(f(
            "DSIG_CRL_MISSING",
            format!("{where_vi}: không có danh sách thu hồi (CRL) của bên cấp; chưa kiểm tra thu hồi. Dùng --crl."),
            format!("{where_en}: no CRL from the issuer; revocation was not checked. Use --crl."),
        )),
        Revocation::CrlInvalid(why_vi, why_en) => r.failures.push(f(
            "DSIG_CRL_INVALID",
            format!("{where_vi}: CRL không dùng được: {why_vi}. Lấy CRL mới từ CA."),
            format!("{where_en}: the CRL is unusable: {why_en}. Fetch a fresh CRL from the CA."),
        )),
    }
    // 5. Role-specific identity checks.
    match r.role {
        Role::Sender => {
            let same = match (r.signer_unit.as_deref(), from) {
                (Some(u), Some(fu)) => u == fu,
                _ => false,
            };
            r.signer_is_from_unit = Some(same);
            if !same {
                r.failures.push(f(
                    "DSIG_SIGNER_NOT_SENDER",
                    format!("{where_vi}: người ký ({}) không phải đơn vị gửi From/OrganId ({}); có thể là giả mạo.", r.signer_unit.as_deref().unwrap_or("?"), from.unwrap_or("?")),
                    format!("{where_en}: the signer ({}) is not the From/OrganId unit ({}); possible spoofing.", r.signer_unit.as_deref().unwrap_or("?"), from.unwrap_or("?")),
                ));
            }
        }
        Role::Relay => {
            let relay = is_relay_certificate(signer);
            r.relay_certificate = Some(relay);
            if !relay {
                r.failures.push(f(
                    "DSIG_NOT_RELAY_CERT",
                    format!("{where_vi}: chữ ký niêm phong không dùng chứng thư của trục (cần OU=Relay và EKU {RELAY_EKU_OID})."),
                    format!("{where_en}: the seal is not made with a relay certificate (needs OU=Relay and EKU {RELAY_EKU_OID})."),
                ));
            }
        }
    }
    r
}

/// Chain verification. With `at = None` time is ignored (the chain's shape and
/// signatures only); with `Some(t)` every certificate must be valid at `t`.
fn chain_check(
    trust: &TrustStore,
    cert: &X509,
    untrusted: &[X509],
    at: Option<i64>,
) -> Result<(), String> {
    let build = || -> Result<(X509StoreContext, openssl::x509::store::X509Store, Stack<X509>), openssl::error::ErrorStack> {
        let mut b = X509StoreBuilder::new()?;
        for r in &trust.roots {
            b.add_cert(r.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        match at {
            // OpenSSL checks USE_CHECK_TIME before NO_CHECK_TIME, so set only one.
            Some(t) => param.set_time(t),
            None => param.set_flags(X509VerifyFlags::NO_CHECK_TIME)?,
        }
        b.set_param(&param)?;
        let mut chain = Stack::new()?;
        for c in untrusted {
            chain.push(c.clone())?;
        }
        Ok((X509StoreContext::new()?, b.build(), chain))
    };
    // A chain once verified stays verified for the same roots; only its
    // validity window depends on the time, so cache the window (saves ~20 µs).
    let cache_key = match (at, untrusted.is_empty()) {
        (Some(_), true) => cert.to_der().ok().map(|d| openssl::sha::sha256(&d)),
        _ => None,
    };
    if let (Some(k), Some(t)) = (cache_key, at)
        && let Some((nb, na)) = trust.chains.lock().ok().and_then(|m| m.get(&k).copied())
        && nb <= t
        && t <= na
    {
        return Ok(());
    }
    let (mut ctx, store, chain) = build().map_err(|e| e.to_string())?;
    let result = ctx
        .init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            let window = c.chain().map(|ch| {
                ch.iter().fold((i64::MIN, i64::MAX), |(nb, na), x| {
                    (
                        nb.max(unix_of(x.not_before()).unwrap_or(i64::MAX)),
                        na.min(unix_of(x.not_after()).unwrap_or(i64::MIN)),
                    )
                })
            });
            Ok((ok, c.error(), window))
        })
        .map_err(|e| e.to_string())?;
    match result {
        (true, _, window) => {
            if let (Some(k), Some(w)) = (cache_key, window)
                && let Ok(mut m) = trust.chains.lock()
            {
                if m.len() >= CERT_CACHE_MAX {
                    m.clear();
                }
                m.insert(k, w);
            }
            Ok(())
        }
        (false, err, _) if err == X509VerifyResult::OK => Err("unknown".into()),
        (false, err, _) => Err(err.error_string().to_string()),
    }
}

fn unix_of(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let d = Asn1Time::from_unix(0).ok()?.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

enum Revocation {
    NotRevoked,
    Revoked(String),
    NoCrl,
    CrlInvalid(String, String),
}

fn revocation(trust: &TrustStore, cert: &X509, untrusted: &[X509], now: i64) -> Revocation {
    let issuer_name = cert.issuer_name();
    let Some((crl, checked_at_load)) = trust.crls.iter().find(|(c, _)| {
        c.issuer_name()
            .try_cmp(issuer_name)
            .is_ok_and(|o| o.is_eq())
    }) else {
        return Revocation::NoCrl;
    };
    // The CRL must be signed by the certificate's issuer (a trusted root or a given intermediate).
    let issuer = trust.roots.iter().chain(untrusted.iter()).find(|c| {
        c.subject_name()
            .try_cmp(issuer_name)
            .is_ok_and(|o| o.is_eq())
    });
    let signed = match checked_at_load {
        Some(ok) => *ok,
        None => issuer
            .and_then(|i| i.public_key().ok())
            .is_some_and(|k| crl.verify(&k).unwrap_or(false)),
    };
    if !signed {
        return Revocation::CrlInvalid(
            "chữ ký trên CRL không khớp với bên cấp".into(),
            "the CRL's signature does not match the issuer".into(),
        );
    }
    if let Ok(t) = Asn1Time::from_unix(now) {
        let stale = crl
            .next_update()
            .is_some_and(|n| n.compare(&t).is_ok_and(|o| o.is_lt()));
        let early = crl.last_update().compare(&t).is_ok_and(|o| o.is_gt());
        if stale || early {
            return Revocation::CrlInvalid(
                "CRL đã hết hạn (quá nextUpdate) hoặc chưa có hiệu lực".into(),
                "the CRL is past its nextUpdate or not yet valid".into(),
            );
        }
    }
    match crl.get_by_cert(cert) {
        openssl::x509::CrlStatus::Revoked(rev) => {
            Revocation::Revoked(rev.revocation_date().to_string())
        }
        openssl::x509::CrlStatus::RemoveFromCrl(_) | openssl::x509::CrlStatus::NotRevoked => {
            Revocation::NotRevoked
        }
    }
}
