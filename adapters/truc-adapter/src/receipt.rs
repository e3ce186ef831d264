//! The status package the adapter sends on the unit's behalf: 01 (arrived) when a document has
//! landed in the DMS's `inbox/`.

use edxml::{
    Date, Document, Lenient, Organization, Package, ResponseFor, StaffInfo, Status, StatusCode,
    Timestamp,
};

/// Vietnamese time (UTC+7), the zone edXML timestamps are written in.
fn vn_now(unix: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC));
    Timestamp {
        date: Date {
            year: u16::try_from(t.year()).unwrap_or(1970),
            month: u8::from(t.month()),
            day: t.day(),
        },
        hour: t.hour(),
        minute: t.minute(),
        second: t.second(),
    }
}

/// The unsigned 01 for `doc`, from `unit`, at `unix` seconds.
pub fn arrived(unit: &str, doc: &Document, unix: i64) -> Vec<u8> {
    let code = doc.code.as_ref().map(|c| {
        format!(
            "{}/{}",
            c.code_number.as_deref().unwrap_or(""),
            c.code_notation.as_deref().unwrap_or("")
        )
    });
    let status = Status {
        from: Organization {
            organ_id: unit.to_owned(),
            ..Organization::default()
        },
        response_for: ResponseFor {
            organ_id: Some(doc.from.organ_id.clone()),
            code,
            promulgation_date: doc
                .promulgation_info
                .as_ref()
                .and_then(|p| p.promulgation_date.clone()),
            document_id: doc.document_id.clone(),
        },
        staff_info: None,
        status_code: StatusCode::Arrived,
        description: Some(
            "Văn bản đã đến hệ thống quản lý văn bản của đơn vị (document arrived in the unit's DMS)"
                .to_owned(),
        ),
        timestamp: Some(Lenient::Known(vn_now(unix))),
        trace: Default::default(),
    };
    edxml::to_bytes(&Package::Status(status))
}

/// A status the DMS reports through the adapter (local HTTP mode).
#[derive(Debug, Clone)]
pub struct StatusSpec {
    /// The unit that sent the document.
    pub to: String,
    pub document_id: String,
    pub code: StatusCode,
    pub description: Option<String>,
    pub staff: Option<String>,
    pub department: Option<String>,
}

/// The unsigned status package for `spec`, from `unit`, at `unix` seconds.
pub fn status(unit: &str, spec: StatusSpec, unix: i64) -> Vec<u8> {
    let staff_info = (spec.staff.is_some() || spec.department.is_some()).then(|| StaffInfo {
        department: spec.department,
        staff: spec.staff,
        ..StaffInfo::default()
    });
    let status = Status {
        from: Organization {
            organ_id: unit.to_owned(),
            ..Organization::default()
        },
        response_for: ResponseFor {
            organ_id: Some(spec.to),
            document_id: Some(spec.document_id),
            ..ResponseFor::default()
        },
        staff_info,
        status_code: spec.code,
        description: spec.description,
        timestamp: Some(Lenient::Known(vn_now(unix))),
        trace: Default::default(),
    };
    edxml::to_bytes(&Package::Status(status))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn arrived_answers_the_document_and_reads_back_as_status_01() {
        let doc = Document {
            from: Organization {
                organ_id: "000.00.00.G22".into(),
                ..Organization::default()
            },
            document_id: Some("000.00.00.G22,2026/11/23,12/QĐ-TTg".into()),
            ..Document::default()
        };
        let bytes = arrived("000.00.00.H41", &doc, 1_795_478_400);
        let parsed = edxml::read(&bytes, &edxml::Limits::default()).unwrap();
        let Package::Status(s) = parsed.package else {
            panic!("not a status")
        };
        assert_eq!(s.status_code, StatusCode::Arrived);
        assert_eq!(s.from.organ_id, "000.00.00.H41");
        assert_eq!(s.response_for.organ_id.as_deref(), Some("000.00.00.G22"));
        assert_eq!(s.response_for.document_id, doc.document_id);
        // 2026-11-24 00:00:00 UTC is 07:00 in Vietnam.
        let Some(Lenient::Known(t)) = s.timestamp else {
            panic!("timestamp")
        };
        assert_eq!((t.date.day, t.hour), (24, 7));
    }
}
