//! The typed model of both package kinds. Plain data: the reader fills it, the writer prints it.
//! Optional wire fields are `Option`; repeated ones are `Vec` (an empty list is not written).

use serde::Serialize;

use crate::codes::{BusinessDocType, Priority, StatusCode, SteeringType};

/// A calendar date (`yyyy/MM/dd` on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A local date and time (`yyyy/MM/dd HH:mm:ss` on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Timestamp {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// A field value the reader either understood or kept as sent. `Raw` text is written back unchanged,
/// so a value the reader could not parse is never lost (it was reported as a warning).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Lenient<T> {
    Known(T),
    Raw(String),
}

impl<T: Default> Default for Lenient<T> {
    fn default() -> Self {
        Lenient::Known(T::default())
    }
}

impl<T> Lenient<T> {
    /// The understood value, if any.
    pub fn known(&self) -> Option<&T> {
        match self {
            Lenient::Known(v) => Some(v),
            Lenient::Raw(_) => None,
        }
    }
}

/// A date field (`PromulgationDate`, `DueDate`, …).
pub type DateField = Lenient<Date>;
/// A timestamp field (`TraceHeader/Timestamp`, status `Timestamp`).
pub type TimestampField = Lenient<Timestamp>;
/// An integer field (`Type`, `TypeDetail`, `PageAmount`, …); odd values like `-1` or `18` are `Known`, text such as
/// `N/A` is `Raw`.
pub type Number = Lenient<i64>;

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let dim = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (year.is_multiple_of(4) && !year.is_multiple_of(100))
                || year.is_multiple_of(400) =>
            {
                29
            }
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= dim).then_some(Date { year, month, day })
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Lenient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lenient::Known(v) => v.fmt(f),
            Lenient::Raw(s) => f.write_str(s),
        }
    }
}

/// One edXML package: a document or a status report.
// Not boxed: packages are few and short-lived, and callers match on the plain variants.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Package {
    Document(Document),
    Status(Status),
}

impl Default for Package {
    fn default() -> Self {
        Package::Document(Document::default())
    }
}

impl Package {
    /// The sending (or reporting) unit.
    pub fn from(&self) -> &Organization {
        match self {
            Package::Document(d) => &d.from,
            Package::Status(s) => &s.from,
        }
    }

    /// The hop trail and business block.
    pub fn trace(&self) -> &TraceHeaderList {
        match self {
            Package::Document(d) => &d.trace,
            Package::Status(s) => &s.trace,
        }
    }
}

/// `From` / `To` organisation block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// Unit code; kept as sent even when it is not of the national shape (see [`crate::UnitCode`]).
    pub organ_id: String,
    pub organization_in_charge: Option<String>,
    pub organ_name: Option<String>,
    pub organ_add: Option<String>,
    pub email: Option<String>,
    pub telephone: Option<String>,
    pub fax: Option<String>,
    pub website: Option<String>,
}

/// `Code`: number and notation of a document (số, ký hiệu).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Code {
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PromulgationInfo {
    pub place: Option<String>,
    pub promulgation_date: Option<DateField>,
}

/// `DocumentType`. No authoritative code table exists, so `Type`/`TypeDetail` are open integers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DocumentType {
    /// `Type`
    pub type_code: Option<Number>,
    pub type_detail: Option<Number>,
    pub type_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignerInfo {
    pub competence: Option<String>,
    pub position: Option<String>,
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtherInfo {
    pub priority: Option<Priority>,
    pub sphere_of_promulgation: Option<String>,
    pub typer_notation: Option<String>,
    pub promulgation_amount: Option<Number>,
    pub page_amount: Option<Number>,
    /// `Direction` (seen as `true`/`false`); kept as text.
    pub direction: Option<String>,
    /// `Appendixes/Appendix*`
    pub appendixes: Vec<String>,
}

/// `ResponseFor`: the document a package answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResponseFor {
    pub organ_id: Option<String>,
    pub code: Option<String>,
    pub promulgation_date: Option<DateField>,
    pub document_id: Option<String>,
}

/// `StaffInfo`: the clerk responsible.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaffInfo {
    pub department: Option<String>,
    pub staff: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

/// One hop of the route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraceHeader {
    pub organ_id: String,
    pub timestamp: Option<TimestampField>,
}

/// `TraceHeaderList`: hops (appended by relays) and the business block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraceHeaderList {
    pub trace_headers: Vec<TraceHeader>,
    pub business: Option<Business>,
}

/// The `Bussiness` block (double s on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Business {
    pub doc_type: Option<BusinessDocType>,
    pub doc_reason: Option<String>,
    /// The earlier document that a revoke/update/replace acts on.
    pub document_id: Option<String>,
    pub paper: Option<Number>,
    pub staff_info: Option<StaffInfo>,
    pub document_info: Option<BusinessDocumentInfo>,
    /// `ReplacementInfoList/ReplacementInfo*`
    pub replacements: Vec<ReplacementInfo>,
}

/// `BussinessDocumentInfo` (update packages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BusinessDocumentInfo {
    pub document_info: Option<String>,
    pub document_receiver: Option<String>,
    /// `ReceiverList/Receiver*`
    pub receivers: Vec<Receiver>,
}

/// `Receiver`: `ReceiverType` 0 = removed from the recipients, 1 = added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Receiver {
    pub receiver_type: Option<Number>,
    pub organ_id: Option<String>,
}

/// `ReplacementInfo` (replace packages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplacementInfo {
    pub document_id: Option<String>,
    /// `OrganIdList/OrganId*`
    pub organ_ids: Vec<String>,
}

/// A manifest `Reference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// Without the `cid:` prefix.
    pub content_id: String,
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub attachment_name: Option<String>,
}

/// An attachment with its decoded bytes.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// Without the `cid:` prefix.
    pub content_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub content_type: Option<String>,
    /// Decoded bytes (not serialised; see [`Attachment::size`]).
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl Attachment {
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Decoded size in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("content_id", &self.content_id)
            .field("name", &self.name)
            .field("description", &self.description)
            .field("content_type", &self.content_type)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// A document package ("gói tin văn bản").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Document {
    pub from: Organization,
    /// Recipients; routing is by `To/OrganId`. At least one on a usable package.
    pub to: Vec<Organization>,
    pub document_id: Option<String>,
    pub code: Option<Code>,
    pub promulgation_info: Option<PromulgationInfo>,
    pub document_type: Option<DocumentType>,
    pub subject: Option<String>,
    pub content: Option<String>,
    pub signer_info: Option<SignerInfo>,
    pub due_date: Option<DateField>,
    /// `ToPlaces/Place*`: recipient names for the record, not routed.
    pub to_places: Vec<String>,
    pub other_info: Option<OtherInfo>,
    pub response_for: Vec<ResponseFor>,
    pub steering_type: Option<SteeringType>,
    pub trace: TraceHeaderList,
    /// Manifest `Reference*`.
    pub references: Vec<Reference>,
    /// `AttachmentEncoded/Attachment*`, decoded.
    pub attachments: Vec<Attachment>,
}

impl Document {
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The attachment with this content id (with or without `cid:`).
    pub fn attachment(&self, content_id: &str) -> Option<&Attachment> {
        let id = content_id.strip_prefix("cid:").unwrap_or(content_id);
        self.attachments.iter().find(|a| a.content_id == id)
    }
}

/// A status package ("gói tin trạng thái").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    pub from: Organization,
    pub response_for: ResponseFor,
    pub staff_info: Option<StaffInfo>,
    pub status_code: StatusCode,
    pub description: Option<String>,
    pub timestamp: Option<TimestampField>,
    pub trace: TraceHeaderList,
}
