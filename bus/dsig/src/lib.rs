//! `dsig` owns trust for edXML packages: canonicalization (inclusive C14N 1.0
//! and exclusive C14N), XML-DSig signing and verification for Trục's fixed
//! profile, certificate checks (chain, validity at a given time, CRL), the
//! relay's byte-level `TraceHeader` splice, and a development PKI.
//!
//! Two signatures, both `ds:Signature` appended as the last children of
//! `edXMLHeader`: the sender's (`Id="sender"`: XPath Filter 2.0 subtract of
//! [`SENDER_FILTER`], then exclusive C14N, RSA-SHA256, signer certificate in
//! `KeyInfo`) survives the relay appending its `TraceHeader`; the relay's seal
//! (`Id="relay"`: enveloped signature, then exclusive C14N) covers everything.
//! `xmlsec1` is the judge in the tests.
//!
//! It must not know: the edXML model (it works on XML bytes with quick-xml and
//! looks only at `edXMLHeader`, `TraceHeaderList`, `From/OrganId`), files,
//! the network or the clock (verification time is an argument; the PKI
//! returns PEM bytes for the CLI to write).

mod c14n;
mod error;
pub mod pki;
mod sign;
mod verify;
mod xml;

pub use c14n::{Method, canonicalize};
pub use error::Error;
pub use sign::{Parsed, Role, SENDER_FILTER, SigningKey, append_trace_header, sign, template};
pub use verify::{
    Finding, RELAY_EKU_OID, SignatureReport, TrustStore, VerifyReport, is_relay_certificate, verify,
};
