//! Producing signatures: the sender's (filter-2 subtract of the trace entries
//! and all signatures, then exclusive C14N) and the relay's seal (enveloped,
//! then exclusive C14N). Also the byte-level splice a relay uses to append its
//! `TraceHeader` without disturbing the sender's signature.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::x509::X509;

use crate::c14n::{self, Method, Options};
use crate::error::Error;
use crate::xml::{Doc, NodeId};

pub(crate) const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const EDXML: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
pub(crate) const FILTER2: &str = "http://www.w3.org/2002/06/xmldsig-filter2";
pub(crate) const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub(crate) const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub(crate) const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub(crate) const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub(crate) const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// The sender's subtract expression: only the hop entries and the signatures,
/// so the `Bussiness` block in `TraceHeaderList` stays covered.
pub const SENDER_FILTER: &str = "//edXML:TraceHeaderList/edXML:TraceHeader | //ds:Signature";

/// Who signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The sending unit (or the unit reporting a status); signature `Id="sender"`.
    Sender,
    /// A relay node sealing the package; signature `Id="relay"`.
    Relay,
}

impl Role {
    /// The `Id` attribute value.
    pub fn id(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Relay => "relay",
        }
    }
}

/// A private key with its certificate. Created once per process (the adapter's
/// unit key, the relay key) and shared read-only.
pub struct SigningKey {
    key: PKey<Private>,
    cert: X509,
    cert_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("subject", &crate::verify::subject_text(&self.cert))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PEM private key and its PEM certificate; refuses a pair that does not match.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| {
            Error::new(
                "DSIG_KEY_UNREADABLE",
                format!("Không đọc được khóa bí mật PEM: {e}. Kiểm tra tệp khóa."),
                format!("Cannot read the PEM private key: {e}. Check the key file."),
            )
        })?;
        let cert = X509::from_pem(cert_pem).map_err(|e| {
            Error::new(
                "DSIG_CERT_UNREADABLE",
                format!("Không đọc được chứng thư PEM: {e}. Kiểm tra tệp chứng thư."),
                format!("Cannot read the PEM certificate: {e}. Check the certificate file."),
            )
        })?;
        let matches = cert
            .public_key()
            .map(|p| p.public_eq(&key))
            .map_err(|e| Error::crypto("đọc khóa công khai", "reading the public key", &e))?;
        if !matches {
            return Err(Error::new(
                "DSIG_KEY_CERT_MISMATCH",
                "Khóa bí mật không khớp với chứng thư. Dùng đúng cặp khóa/chứng thư của đơn vị.",
                "The private key does not match the certificate. Use the unit's matching key and certificate.",
            ));
        }
        let der = cert
            .to_der()
            .map_err(|e| Error::crypto("mã hóa chứng thư", "encoding the certificate", &e))?;
        Ok(Self {
            key,
            cert_b64: B64.encode(der),
            cert,
        })
    }

    /// The signer's certificate.
    pub fn certificate(&self) -> &X509 {
        &self.cert
    }
}

fn no_header() -> Error {
    Error::new(
        "DSIG_NO_HEADER",
        "Gói tin không có phần tử edXMLHeader (không gian tên QCVN 102:2016). Kiểm tra cấu trúc gói tin.",
        "The package has no edXMLHeader element (QCVN 102:2016 namespace). Check the package structure.",
    )
}

pub(crate) fn find_header(doc: &Doc<'_>) -> Option<NodeId> {
    doc.elements()
        .find(|(_, e)| e.is(EDXML, "edXMLHeader"))
        .map(|(i, _)| i)
}

pub(crate) fn ds_signatures(doc: &Doc<'_>) -> Vec<NodeId> {
    doc.elements()
        .filter(|(_, e)| e.is(DS, "Signature"))
        .map(|(i, _)| i)
        .collect()
}

/// Elements the sender's filter subtracts: every edXML `TraceHeader` inside a
/// `TraceHeaderList`, and every `ds:Signature`.
pub(crate) fn sender_excluded(doc: &Doc<'_>) -> Vec<NodeId> {
    doc.elements()
        .filter(|(_, e)| {
            e.is(DS, "Signature")
                || (e.is(EDXML, "TraceHeader")
                    && e.parent
                        .and_then(|p| doc.element(p))
                        .is_some_and(|p| p.is(EDXML, "TraceHeaderList")))
        })
        .map(|(i, _)| i)
        .collect()
}

pub(crate) fn digest_of(
    doc: &Doc<'_>,
    excluded: &[NodeId],
    opts: Options<'_>,
    md: MessageDigest,
) -> Result<Vec<u8>, Error> {
    let hasher =
        Hasher::new(md).map_err(|e| Error::crypto("tạo hàm băm", "creating the hasher", &e))?;
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, hasher);
    c14n::write_node_set(doc, None, excluded, opts, &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| {
            Error::new(
                "DSIG_CRYPTO",
                format!("Lỗi khi băm dữ liệu: {e}."),
                format!("Error while hashing: {e}."),
            )
        })?;
    let mut hasher = w.into_inner().map_err(|e| {
        Error::new(
            "DSIG_CRYPTO",
            format!("Lỗi khi băm dữ liệu: {e}."),
            format!("Error while hashing: {e}."),
        )
    })?;
    hasher
        .finish()
        .map(|d| d.to_vec())
        .map_err(|e| Error::crypto("băm dữ liệu", "hashing", &e))
}

const EXC_OPTS: Options<'static> = Options {
    method: Method::Exclusive,
    with_comments: false,
    inclusive_prefixes: &[],
};

fn signed_info(role: Role, digest_b64: &str) -> String {
    let transforms = match role {
        Role::Sender => format!(
            "<ds:Transform Algorithm=\"{FILTER2}\"><dsig-xpath:XPath xmlns:dsig-xpath=\"{FILTER2}\" xmlns:edXML=\"{EDXML}\" Filter=\"subtract\">{SENDER_FILTER}</dsig-xpath:XPath></ds:Transform><ds:Transform Algorithm=\"{}\"/>",
            c14n::EXC_C14N
        ),
        Role::Relay => format!(
            "<ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{}\"/>",
            c14n::EXC_C14N
        ),
    };
    format!(
        "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{}\"/><ds:SignatureMethod Algorithm=\"{RSA_SHA256}\"/><ds:Reference URI=\"\"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
        c14n::EXC_C14N
    )
}

/// Checks the role's preconditions (sender: no signature yet; relay: a
/// signature exists and no seal yet). Returns new bytes when the sender's
/// empty `TraceHeaderList` had to be inserted, `None` when `xml` is ready.
fn prepare(doc: &Doc<'_>, xml: &[u8], role: Role) -> Result<Option<Vec<u8>>, Error> {
    let header = find_header(doc).ok_or_else(no_header)?;
    let sigs = ds_signatures(doc);
    match role {
        Role::Sender => {
            if !sigs.is_empty() {
                return Err(Error::new(
                    "DSIG_ALREADY_SIGNED",
                    "Gói tin đã có chữ ký XML-DSig; đơn vị gửi chỉ ký gói tin chưa ký. Ký lại từ gói tin gốc.",
                    "The package already carries an XML-DSig signature; the sender signs only unsigned packages. Sign the original package.",
                ));
            }
            if doc.first_child(header, EDXML, "TraceHeaderList").is_some() {
                return Ok(None);
            }
            // Insert an empty TraceHeaderList as the last child before any signature
            // (an edXML-namespace placeholder counts), so a relay never creates it.
            let h = doc.element(header).ok_or_else(no_header)?;
            let at = doc
                .child_elements(header)
                .find(|(_, e)| e.local == "Signature")
                .map(|(_, e)| e.start)
                .or(h.end_tag_start)
                .ok_or_else(|| {
                    Error::new(
                        "DSIG_EMPTY_HEADER",
                        "Phần tử edXMLHeader rỗng. Gói tin phải có MessageHeader hoặc Status.",
                        "edXMLHeader is empty. The package needs a MessageHeader or Status.",
                    )
                })?;
            let q = qualified(h.prefix, "TraceHeaderList");
            let mut out = Vec::with_capacity(xml.len() + 40);
            out.extend_from_slice(&xml[..at]);
            out.extend_from_slice(format!("<{q}></{q}>").as_bytes());
            out.extend_from_slice(&xml[at..]);
            Ok(Some(out))
        }
        Role::Relay => {
            if sigs.is_empty() {
                return Err(Error::new(
                    "DSIG_RELAY_NEEDS_SENDER",
                    "Gói tin chưa có chữ ký của đơn vị gửi; trục chỉ niêm phong gói tin đã được ký và kiểm tra. Trả lại cho đơn vị gửi.",
                    "The package has no sender signature; the relay seals only signed, verified packages. Return it to the sender.",
                ));
            }
            let sealed = sigs
                .iter()
                .any(|&s| doc.element(s).and_then(|e| e.attr("Id")) == Some("relay"));
            if sealed {
                return Err(Error::new(
                    "DSIG_ALREADY_SEALED",
                    "Gói tin đã có chữ ký của trục (Id=\"relay\"). Không niêm phong hai lần.",
                    "The package already carries a relay signature (Id=\"relay\"). Do not seal twice.",
                ));
            }
            Ok(None)
        }
    }
}

fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}:{local}")
    }
}

/// Where the signature goes: just before `</edXMLHeader>`.
fn insertion_point(doc: &Doc<'_>) -> Result<usize, Error> {
    let header = find_header(doc).ok_or_else(no_header)?;
    doc.element(header)
        .and_then(|h| h.end_tag_start)
        .ok_or_else(|| {
            Error::new(
                "DSIG_EMPTY_HEADER",
                "Phần tử edXMLHeader rỗng. Gói tin phải có MessageHeader hoặc Status.",
                "edXMLHeader is empty. The package needs a MessageHeader or Status.",
            )
        })
}

fn digest_for(doc: &Doc<'_>, role: Role) -> Result<Vec<u8>, Error> {
    let excluded = match role {
        Role::Sender => sender_excluded(doc),
        // Enveloped: the new signature is not in the document yet, and it is
        // inserted with no surrounding text, so the node-set is the same.
        Role::Relay => Vec::new(),
    };
    digest_of(doc, &excluded, EXC_OPTS, MessageDigest::sha256())
}

/// Signs `xml` as `role` and returns the signed package: a `ds:Signature`
/// (RSA-SHA256, signer certificate in `KeyInfo`) appended as the last child of
/// `edXMLHeader`. Every other byte is kept, except that signing as sender
/// first inserts an empty `TraceHeaderList` when the package has none.
///
/// Relay signing requires an existing signature (the relay seals only what it
/// verified) and refuses a second relay signature.
pub fn sign(xml: &[u8], key: &SigningKey, role: Role) -> Result<Vec<u8>, Error> {
    let doc = Doc::parse(xml)?;
    match prepare(&doc, xml, role)? {
        None => sign_prepared(&doc, xml, key, role),
        Some(bytes) => sign_prepared(&Doc::parse(&bytes)?, &bytes, key, role),
    }
}

fn sign_prepared(
    doc: &Doc<'_>,
    xml: &[u8],
    key: &SigningKey,
    role: Role,
) -> Result<Vec<u8>, Error> {
    let sig = signature(doc, key, role)?;
    let at = insertion_point(doc)?;
    Ok(splice(xml, at, sig.as_bytes()))
}

/// The `ds:Signature` element for `doc` as it stands.
fn signature(doc: &Doc<'_>, key: &SigningKey, role: Role) -> Result<String, Error> {
    let digest = digest_for(doc, role)?;
    let si = signed_info(role, &B64.encode(digest));
    let si_c14n = canonical_signed_info(&si)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key.key)
        .map_err(|e| Error::crypto("tạo bộ ký", "creating the signer", &e))?;
    let value = signer
        .update(&si_c14n)
        .and_then(|()| signer.sign_to_vec())
        .map_err(|e| Error::crypto("ký", "signing", &e))?;
    Ok(format!(
        "<ds:Signature xmlns:ds=\"{DS}\" Id=\"{}\">{si}<ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
        role.id(),
        B64.encode(value),
        key.cert_b64
    ))
}

/// The package with an unsigned signature template for `role` (empty
/// `DigestValue`/`SignatureValue`, empty `X509Data`), for tools such as
/// `xmlsec1 --sign` to fill in. Same preconditions as [`sign`].
pub fn template(xml: &[u8], role: Role) -> Result<Vec<u8>, Error> {
    let doc = Doc::parse(xml)?;
    let inserted = prepare(&doc, xml, role)?;
    let (doc, xml) = match &inserted {
        None => (doc, xml),
        Some(bytes) => (Doc::parse(bytes)?, bytes.as_slice()),
    };
    let sig = format!(
        "<ds:Signature xmlns:ds=\"{DS}\" Id=\"{}\">{}<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>",
        role.id(),
        signed_info(role, "")
    );
    let at = insertion_point(&doc)?;
    Ok(splice(xml, at, sig.as_bytes()))
}

/// Exclusive C14N of a SignedInfo we generated; exc-c14n makes it independent
/// of where the signature is placed.
fn canonical_signed_info(si: &str) -> Result<Vec<u8>, Error> {
    let wrapped = format!("<ds:Signature xmlns:ds=\"{DS}\">{si}</ds:Signature>");
    let doc = Doc::parse_str(&wrapped)?;
    let si_id = doc.first_child(doc.root, DS, "SignedInfo").ok_or_else(|| {
        Error::new(
            "DSIG_INTERNAL",
            "Lỗi nội bộ khi dựng SignedInfo. Báo cho đội vận hành.",
            "Internal error while building SignedInfo. Tell the operators.",
        )
    })?;
    let mut out = Vec::with_capacity(si.len() + 64);
    let _ = c14n::write_node_set(&doc, Some(si_id), &[], EXC_OPTS, &mut out);
    Ok(out)
}

fn splice(xml: &[u8], at: usize, insert: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + insert.len());
    out.extend_from_slice(&xml[..at]);
    out.extend_from_slice(insert);
    out.extend_from_slice(&xml[at..]);
    out
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn is_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Refuses a malformed trace timestamp or an empty organ id.
fn check_trace(organ_id: &str, timestamp: &str) -> Result<(), Error> {
    if !is_timestamp(timestamp) {
        return Err(Error::new(
            "DSIG_TRACE_TIMESTAMP",
            format!("Thời điểm '{timestamp}' sai định dạng; cần yyyy/MM/dd HH:mm:ss."),
            format!("Timestamp '{timestamp}' is malformed; expected yyyy/MM/dd HH:mm:ss."),
        ));
    }
    if organ_id.trim().is_empty() {
        return Err(Error::new(
            "DSIG_TRACE_ORGAN",
            "Thiếu mã đơn vị (OrganId) cho TraceHeader.",
            "The OrganId for the TraceHeader is empty.",
        ));
    }
    Ok(())
}

/// Where a new trace entry goes: the header's `TraceHeaderList`, its last `TraceHeader` (id
/// and end offset), and the entry's text.
struct TracePoint {
    list: NodeId,
    last: Option<(NodeId, usize)>,
    entry: String,
}

fn trace_point(doc: &Doc<'_>, organ_id: &str, timestamp: &str) -> Result<TracePoint, Error> {
    let header = find_header(doc).ok_or_else(no_header)?;
    let list = doc.first_child(header, EDXML, "TraceHeaderList").ok_or_else(|| {
        Error::new(
            "DSIG_NO_TRACE_LIST",
            "Gói tin không có TraceHeaderList trong edXMLHeader; gói tin do đơn vị gửi ký luôn có danh sách này. Trả lại cho đơn vị gửi.",
            "The package has no TraceHeaderList in edXMLHeader; sender-signed packages always have one. Return it to the sender.",
        )
    })?;
    let p = doc.element(list).ok_or_else(no_header)?.prefix;
    let th = qualified(p, "TraceHeader");
    let oi = qualified(p, "OrganId");
    let ts = qualified(p, "Timestamp");
    let entry = format!(
        "<{th}><{oi}>{}</{oi}><{ts}>{}</{ts}></{th}>",
        escape_text(organ_id),
        escape_text(timestamp)
    );
    let last = doc
        .child_elements(list)
        .filter(|(_, e)| e.is(EDXML, "TraceHeader"))
        .last()
        .map(|(id, e)| (id, e.end));
    Ok(TracePoint { list, last, entry })
}

/// Appends `<TraceHeader><OrganId>…</OrganId><Timestamp>…</Timestamp></TraceHeader>`
/// (same prefix as the enclosing `TraceHeaderList`, no whitespace) after the last
/// existing `TraceHeader`, or as the first child of the list. No other byte
/// changes, except that a self-closing `<TraceHeaderList/>` is opened up.
/// `timestamp` must be `yyyy/MM/dd HH:mm:ss`.
pub fn append_trace_header(xml: &[u8], organ_id: &str, timestamp: &str) -> Result<Vec<u8>, Error> {
    check_trace(organ_id, timestamp)?;
    let doc = Doc::parse(xml)?;
    let point = trace_point(&doc, organ_id, timestamp)?;
    let (from, to, insert) = trace_splice(&doc, xml, &point)?;
    let mut out = Vec::with_capacity(xml.len() + insert.len());
    out.extend_from_slice(&xml[..from]);
    out.extend_from_slice(&insert);
    out.extend_from_slice(&xml[to..]);
    Ok(out)
}

/// The bytes `xml[from..to]` become to add the entry at `point`: nothing is cut and the entry
/// goes after the last `TraceHeader` or first in an open list; a self-closing
/// `<TraceHeaderList .../>` is reopened with the same attributes around the entry.
fn trace_splice(
    doc: &Doc<'_>,
    xml: &[u8],
    point: &TracePoint,
) -> Result<(usize, usize, Vec<u8>), Error> {
    let list = doc.element(point.list).ok_or_else(no_header)?;
    let entry = point.entry.as_bytes();
    Ok(match (point.last, list.end_tag_start) {
        (Some((_, end)), _) => (end, end, entry.to_vec()),
        (None, Some(_)) => (list.start_tag_end, list.start_tag_end, entry.to_vec()),
        (None, None) => {
            let tag = &xml[list.start..list.end];
            let open_end = tag.len().saturating_sub(2);
            let mut out = Vec::with_capacity(tag.len() + entry.len() + 40);
            out.extend_from_slice(tag[..open_end].trim_ascii_end());
            out.push(b'>');
            out.extend_from_slice(entry);
            out.extend_from_slice(
                format!("</{}>", qualified(list.prefix, "TraceHeaderList")).as_bytes(),
            );
            (list.start, list.end, out)
        }
    })
}

/// A package parsed once for the relay's work on it: check the signatures, then append the
/// relay's `TraceHeader` and seal, with one parse of the bytes instead of three.
pub struct Parsed<'a> {
    xml: &'a [u8],
    doc: Doc<'a>,
}

impl std::fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("bytes", &self.xml.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Parsed<'a> {
    /// Parses `xml` (the failures [`verify`](crate::verify) reports for unreadable XML).
    pub fn parse(xml: &'a [u8]) -> Result<Self, Error> {
        Ok(Parsed {
            xml,
            doc: Doc::parse(xml)?,
        })
    }

    /// Same as [`verify`](crate::verify) on the bytes.
    pub fn verify(
        &self,
        trust: &crate::TrustStore,
        now: std::time::SystemTime,
    ) -> crate::VerifyReport {
        crate::verify::verify_doc(&self.doc, trust, now)
    }

    /// The same bytes as `sign(&append_trace_header(xml, organ_id, timestamp)?, key,
    /// Role::Relay)`, same errors in the same order, without parsing the traced package again:
    /// the entry is added to the parsed tree, which is canonicalized for the digest, and both
    /// the entry and the seal are spliced into the bytes in one copy. (An organ id with a
    /// control character, never the relay's, takes the two-parse way.)
    pub fn seal(
        mut self,
        organ_id: &str,
        timestamp: &str,
        key: &SigningKey,
    ) -> Result<Vec<u8>, Error> {
        check_trace(organ_id, timestamp)?;
        let point = trace_point(&self.doc, organ_id, timestamp)?;
        if organ_id.chars().any(char::is_control) {
            return sign(
                &append_trace_header(self.xml, organ_id, timestamp)?,
                key,
                Role::Relay,
            );
        }
        let (from, to, insert) = trace_splice(&self.doc, self.xml, &point)?;
        prepare(&self.doc, self.xml, Role::Relay)?;
        // The seal goes before `</edXMLHeader>`, which comes after the list.
        let header_end = insertion_point(&self.doc)?;
        // In the tree a reopened `<TraceHeaderList/>` is the same element, now with a child.
        self.doc
            .insert_trace_entry(
                point.list,
                point.last.map(|(id, _)| id),
                from,
                organ_id,
                timestamp,
            )
            .ok_or_else(no_header)?;
        let sig = signature(&self.doc, key, Role::Relay)?;
        let xml = self.xml;
        let mut out = Vec::with_capacity(xml.len() + insert.len() + sig.len());
        out.extend_from_slice(&xml[..from]);
        out.extend_from_slice(&insert);
        out.extend_from_slice(&xml[to..header_end]);
        out.extend_from_slice(sig.as_bytes());
        out.extend_from_slice(&xml[header_end..]);
        Ok(out)
    }
}
