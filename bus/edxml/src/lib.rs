//! edXML (QCVN 102:2016) packages: the typed model of document and status packages, a lenient reader that
//! reports every deviation as a finding with line, column and path, a canonical writer, and national unit codes.
//!
//! This crate owns the format and nothing else. It must not know about signatures (it skips `ds:Signature`
//! elements and never writes any; `dsig` owns them), transport, storage, routing or the clock (dates and times
//! are data here). It does no I/O beyond the `Write` it is given, holds no global state and never panics on input.
//!
//! Memory: [`read`] borrows the input and decodes attachment base64 straight from it; [`write()`] streams and
//! encodes attachments in chunks, so a read + rewrite costs about the input plus the decoded attachments.

// Tests may unwrap: a panic there is a failed test, not a crash on the message path.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod codes;
mod finding;
mod model;
mod reader;
mod writer;

pub use codes::{BusinessDocType, Priority, StatusCode, SteeringType, UnitCode, UnitCodeError};
pub use finding::{Finding, Limits, Message, Rejected, Severity};
pub use model::*;
pub use reader::{Parsed, read};
pub use writer::{to_bytes, write};

/// The edXML namespace (QCVN 102:2016).
pub const EDXML_NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
/// The XML-DSig namespace; elements in it are the `dsig` crate's business.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
