//! XML signatures for edXML packages.

mod c14n;
mod error;
pub mod pki;
mod sign;
mod verify;
mod xml;

pub use c14n::{Method, canonicalize};
pub use error::Error;
pub use sign::{Role, SENDER_FILTER, SigningKey, append_trace_header, sign, template};
pub use verify::{
    Finding, RELAY_EKU_OID, SignatureReport, TrustStore, VerifyReport, is_relay_certificate, verify,
};
