//! The lenient reader, area by area: each variant real producers send gives the model plus the exact warning
//! (code, line, column); each unusable package gives its error code, position and both messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edxml::*;

const NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

/// A small canonical document; tests derive variants from it by text replacement.
fn canonical_doc() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{NS}">
  <edXMLEnvelope>
    <edXMLHeader>
      <MessageHeader>
        <From>
          <OrganId>000.00.00.G22</OrganId>
          <OrganName>Văn phòng Chính phủ</OrganName>
        </From>
        <To>
          <OrganId>000.00.00.H41</OrganId>
          <OrganName>UBND tỉnh Nghệ An</OrganName>
        </To>
        <To>
          <OrganId>000.00.00.H14</OrganId>
        </To>
        <DocumentId>000.00.00.G22,2026/11/20,7816/VPCP-TTĐT</DocumentId>
        <Code>
          <CodeNumber>7816</CodeNumber>
          <CodeNotation>VPCP-TTĐT</CodeNotation>
        </Code>
        <PromulgationInfo>
          <Place>Hà Nội</Place>
          <PromulgationDate>2026/11/20</PromulgationDate>
        </PromulgationInfo>
        <DocumentType>
          <Type>18</Type>
          <TypeDetail>-1</TypeDetail>
          <TypeName>Công văn</TypeName>
        </DocumentType>
        <Subject>V/v &lt;thử&gt; &amp; kiểm tra</Subject>
        <DueDate>2026/12/31</DueDate>
        <OtherInfo>
          <Priority>3</Priority>
          <PageAmount>2</PageAmount>
        </OtherInfo>
        <SteeringType>2</SteeringType>
      </MessageHeader>
      <TraceHeaderList>
        <TraceHeader>
          <OrganId>000.00.00.G22</OrganId>
          <Timestamp>2026/11/20 08:30:00</Timestamp>
        </TraceHeader>
        <Bussiness>
          <BussinessDocType>0</BussinessDocType>
          <BussinessDocReason>Văn bản điện tử mới</BussinessDocReason>
        </Bussiness>
      </TraceHeaderList>
    </edXMLHeader>
    <edXMLBody>
      <edXMLManifest version="1.0">
        <Reference>
          <ContentId>cid:1</ContentId>
          <ContentType>application/pdf</ContentType>
          <AttachmentName>a.pdf</AttachmentName>
        </Reference>
      </edXMLManifest>
    </edXMLBody>
  </edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment>
      <ContentId>cid:1</ContentId>
      <AttachmentName>a.pdf</AttachmentName>
      <ContentType>application/pdf</ContentType>
      <ContentTransferEncoded>JVBERi0xLjQK</ContentTransferEncoded>
    </Attachment>
  </AttachmentEncoded>
</edXML>
"#
    )
}

fn canonical_status() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{NS}">
  <edXMLEnvelope>
    <edXMLHeader>
      <Status>
        <From>
          <OrganId>000.00.00.H41</OrganId>
        </From>
        <ResponseFor>
          <OrganId>000.00.00.G22</OrganId>
          <Code>7816/VPCP-TTĐT</Code>
          <PromulgationDate>2026/11/20</PromulgationDate>
          <DocumentId>000.00.00.G22,2026/11/20,7816/VPCP-TTĐT</DocumentId>
        </ResponseFor>
        <StatusCode>02</StatusCode>
        <Description>Gửi nhầm đơn vị</Description>
        <Timestamp>2026/11/20 09:15:00</Timestamp>
      </Status>
      <TraceHeaderList/>
    </edXMLHeader>
  </edXMLEnvelope>
</edXML>
"#
    )
}

/// 1-based (line, column in characters) of the `n`th (0-based) occurrence of `needle` in `input`: computed from
/// the input itself, so expectations follow the fixture.
fn pos(input: &str, needle: &str, n: usize) -> (u32, u32) {
    let (offset, _) = input
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("fixture has no occurrence {n} of {needle:?}"));
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line as u32, col as u32)
}

/// Reads `input`; expects it usable with exactly the `expect` warnings (code, line, column) in order.
fn check(input: &str, expect: &[(&str, (u32, u32))]) -> Package {
    let parsed = read(input.as_bytes(), &Limits::default())
        .unwrap_or_else(|r| panic!("rejected: {:#?}", r.findings));
    let got: Vec<(&str, (u32, u32))> = parsed
        .findings
        .iter()
        .map(|f| (f.code, (f.line, f.column)))
        .collect();
    assert_eq!(got, expect, "findings: {:#?}", parsed.findings);
    for f in &parsed.findings {
        assert_eq!(f.severity, Severity::Warning);
        assert_messages(f);
    }
    parsed.package
}

/// Reads `input`; expects a rejection whose first error has `code` at `at`.
fn check_rejected(input: &[u8], limits: &Limits, code: &str, at: (u32, u32)) -> Rejected {
    let rejected = match read(input, limits) {
        Ok(p) => panic!("accepted, expected {code}: {:#?}", p.findings),
        Err(r) => r,
    };
    let first = rejected.errors().next().expect("a rejection has an error");
    assert_eq!(first.code, code, "{:#?}", rejected.findings);
    assert_eq!((first.line, first.column), at, "{:#?}", first);
    assert_eq!(
        rejected.findings[0].severity,
        Severity::Error,
        "errors come first"
    );
    assert_messages(first);
    assert!(rejected.to_string().contains(code));
    rejected
}

fn assert_messages(f: &Finding) {
    assert!(!f.message.vi.is_empty() && !f.message.en.is_empty());
    assert_ne!(f.message.vi, f.message.en);
    let at_en = format!("line {}, column {}", f.line, f.column);
    let at_vi = format!("dòng {}, cột {}", f.line, f.column);
    assert!(f.message.en.contains(&at_en), "{}", f.message.en);
    assert!(f.message.vi.contains(&at_vi), "{}", f.message.vi);
    if !f.path.is_empty() {
        assert!(f.message.en.contains(&f.path), "{}", f.message.en);
    }
}

fn document(p: Package) -> Document {
    match p {
        Package::Document(d) => d,
        Package::Status(s) => panic!("expected a document, got {s:?}"),
    }
}

fn status(p: Package) -> Status {
    match p {
        Package::Status(s) => s,
        Package::Document(d) => panic!("expected a status, got {d:?}"),
    }
}

// ------------------------------------------------------------------------------------------ canonical input

#[test]
fn canonical_document_reads_into_the_model_without_findings() {
    let d = document(check(&canonical_doc(), &[]));
    assert_eq!(d.from.organ_id, "000.00.00.G22");
    assert_eq!(d.from.organ_name.as_deref(), Some("Văn phòng Chính phủ"));
    let to: Vec<&str> = d.to.iter().map(|o| o.organ_id.as_str()).collect();
    assert_eq!(to, ["000.00.00.H41", "000.00.00.H14"]);
    assert_eq!(d.subject.as_deref(), Some("V/v <thử> & kiểm tra"));
    assert_eq!(
        d.promulgation_info.as_ref().unwrap().promulgation_date,
        Some(Lenient::Known(Date {
            year: 2026,
            month: 11,
            day: 20
        }))
    );
    let dt = d.document_type.clone().unwrap();
    assert_eq!(dt.type_code, Some(Lenient::Known(18)));
    assert_eq!(dt.type_detail, Some(Lenient::Known(-1)));
    assert_eq!(
        d.other_info.as_ref().unwrap().priority,
        Some(Priority::Express)
    );
    assert_eq!(d.steering_type, Some(SteeringType::Directive));
    assert_eq!(d.trace.trace_headers[0].organ_id, "000.00.00.G22");
    assert_eq!(
        d.trace.trace_headers[0].timestamp,
        Some(Lenient::Known(Timestamp {
            date: Date {
                year: 2026,
                month: 11,
                day: 20
            },
            hour: 8,
            minute: 30,
            second: 0
        }))
    );
    assert_eq!(
        d.trace.business.as_ref().unwrap().doc_type,
        Some(BusinessDocType::New)
    );
    assert_eq!(d.references[0].content_id, "1");
    assert_eq!(d.attachment("cid:1").unwrap().data(), b"%PDF-1.4\n");
}

#[test]
fn canonical_status_reads_into_the_model_without_findings() {
    let s = status(check(&canonical_status(), &[]));
    assert_eq!(s.from.organ_id, "000.00.00.H41");
    assert_eq!(s.status_code, StatusCode::Rejected);
    assert_eq!(s.status_code.label_vi(), "Từ chối tiếp nhận");
    assert_eq!(s.response_for.organ_id.as_deref(), Some("000.00.00.G22"));
    assert_eq!(s.description.as_deref(), Some("Gửi nhầm đơn vị"));
}

#[test]
fn unknown_codes_and_odd_numbers_are_kept_not_dropped() {
    let input = canonical_status().replace("<StatusCode>02<", "<StatusCode>07<");
    let s = status(check(&input, &[]));
    assert_eq!(s.status_code, StatusCode::Other("07".into()));
    assert_eq!(
        to_string(&Package::Status(s))
            .matches("<StatusCode>07</StatusCode>")
            .count(),
        1
    );

    let input = canonical_doc()
        .replace("<PageAmount>2<", "<PageAmount>N/A<")
        .replace("<SteeringType>2<", "<SteeringType>0<")
        .replace("<BussinessDocType>0<", "<BussinessDocType>9<");
    let at = pos(&input, "<PageAmount>", 0);
    let d = document(check(&input, &[("bad_number", at)]));
    assert_eq!(
        d.other_info.as_ref().unwrap().page_amount,
        Some(Lenient::Raw("N/A".into()))
    );
    assert_eq!(d.steering_type, Some(SteeringType::Other("0".into())));
    let out = to_string(&Package::Document(d));
    assert!(out.contains("<PageAmount>N/A</PageAmount>"));
    assert!(out.contains("<SteeringType>0</SteeringType>"));
    assert!(out.contains("<BussinessDocType>9</BussinessDocType>"));
}

fn to_string(p: &Package) -> String {
    String::from_utf8(to_bytes(p)).unwrap()
}

// ------------------------------------------------------------------------------------------ lenient variants

#[test]
fn any_prefix_bound_to_the_edxml_namespace_is_the_same_package() {
    let plain = check(&canonical_doc(), &[]);
    // Every element gets the prefix `edXML:`, declared on the root instead of the default namespace.
    let prefixed = canonical_doc()
        .replace("</", "\u{1}")
        .replace('<', "<edXML:")
        .replace('\u{1}', "</edXML:")
        .replace("<edXML:?xml", "<?xml")
        .replace(&format!("xmlns=\"{NS}\""), &format!("xmlns:edXML=\"{NS}\""));
    assert_eq!(check(&prefixed, &[]), plain);
    // A different prefix, declared half-way down, for the envelope only.
    let mixed = canonical_doc()
        .replace(
            "<edXMLEnvelope>",
            &format!("<q:edXMLEnvelope xmlns:q=\"{NS}\">"),
        )
        .replace("</edXMLEnvelope>", "</q:edXMLEnvelope>");
    assert_eq!(check(&mixed, &[]), plain);
}

#[test]
fn missing_namespace_is_read_by_name_with_one_warning() {
    let plain = check(&canonical_doc(), &[]);
    let input = canonical_doc().replace(&format!(" xmlns=\"{NS}\""), "");
    let got = check(&input, &[("no_namespace", pos(&input, "<edXML>", 0))]);
    assert_eq!(got, plain);
}

#[test]
fn other_root_namespace_is_read_by_name_with_a_warning() {
    let plain = check(&canonical_doc(), &[]);
    let input = canonical_doc().replace(NS, "http://www.e-doc.vn/Schema/");
    let got = check(&input, &[("unknown_namespace", pos(&input, "<edXML", 0))]);
    assert_eq!(got, plain);
}

#[test]
fn business_spelling_is_accepted_with_a_warning_per_element() {
    let plain = check(&canonical_doc(), &[]);
    let input = canonical_doc().replace("Bussiness", "Business");
    let got = check(
        &input,
        &[
            ("business_spelling", pos(&input, "<Business>", 0)),
            ("business_spelling", pos(&input, "<BusinessDocType>", 0)),
            ("business_spelling", pos(&input, "<BusinessDocReason>", 0)),
        ],
    );
    assert_eq!(got, plain);
}

#[test]
fn element_order_does_not_matter() {
    let plain = check(&canonical_doc(), &[]);
    // Reverse the order of the MessageHeader's children line blocks by moving From/To to the end, the body before
    // the header, and AttachmentEncoded before the envelope.
    let doc = canonical_doc();
    let cut = |s: &str, a: &str, b: &str| -> (String, String) {
        let i = s.find(a).unwrap();
        let j = s.find(b).unwrap() + b.len();
        (format!("{}{}", &s[..i], &s[j..]), s[i..j].to_owned())
    };
    let (rest, from) = cut(&doc, "<From>", "</From>");
    let (rest, to1) = cut(&rest, "<To>", "</To>");
    let rest = rest.replace("</MessageHeader>", &format!("{from}{to1}</MessageHeader>"));
    let (rest, body) = cut(&rest, "<edXMLBody>", "</edXMLBody>");
    let rest = rest.replace("<edXMLHeader>", &format!("{body}<edXMLHeader>"));
    let (rest, atts) = cut(&rest, "<AttachmentEncoded>", "</AttachmentEncoded>");
    let rest = rest.replace("<edXMLEnvelope>", &format!("{atts}<edXMLEnvelope>"));
    let (rest, bus) = cut(&rest, "<Bussiness>", "</Bussiness>");
    let shuffled = rest.replace("<TraceHeader>", &format!("{bus}<TraceHeader>"));
    assert_ne!(shuffled, doc);
    let got = document(check(&shuffled, &[]));
    // The second recipient now comes first; everything else is equal.
    let mut want = document(plain);
    want.to.swap(0, 1);
    assert_eq!(got, want);
}

#[test]
fn content_id_with_missing_or_differing_cid_prefix_is_normalised_with_a_warning() {
    for variant in ["1", "CID:1", "<cid:1>"] {
        let input = canonical_doc().replacen(
            "<ContentId>cid:1</ContentId>\n      <AttachmentName>",
            &format!(
                "<ContentId>{}</ContentId>\n      <AttachmentName>",
                variant.replace('<', "&lt;").replace('>', "&gt;")
            ),
            1,
        );
        let at = pos(&input, "<ContentId>", 1);
        let d = document(check(&input, &[("cid_prefix", at)]));
        assert_eq!(d.attachments[0].content_id, "1", "{variant}");
        assert_eq!(d.attachment("1").unwrap().data(), b"%PDF-1.4\n");
    }
}

#[test]
fn date_variants_are_understood_with_a_warning_and_bad_dates_are_kept() {
    let cases = [
        (
            "20/11/2026",
            Lenient::Known(Date {
                year: 2026,
                month: 11,
                day: 20,
            }),
            "date_format",
        ),
        (
            "2026-11-20",
            Lenient::Known(Date {
                year: 2026,
                month: 11,
                day: 20,
            }),
            "date_format",
        ),
        (
            "2026/11/20 14:05:00",
            Lenient::Known(Date {
                year: 2026,
                month: 11,
                day: 20,
            }),
            "date_format",
        ),
        (
            "2026/1/5",
            Lenient::Known(Date {
                year: 2026,
                month: 1,
                day: 5,
            }),
            "date_format",
        ),
        ("31/02/2026", Lenient::Raw("31/02/2026".into()), "bad_date"),
        ("N/A", Lenient::Raw("N/A".into()), "bad_date"),
    ];
    for (text, want, code) in cases {
        let input = canonical_doc().replace(
            "<PromulgationDate>2026/11/20<",
            &format!("<PromulgationDate>{text}<"),
        );
        let d = document(check(
            &input,
            &[(code, pos(&input, "<PromulgationDate>", 0))],
        ));
        let got = d
            .promulgation_info
            .as_ref()
            .unwrap()
            .promulgation_date
            .clone();
        assert_eq!(got, Some(want.clone()), "{text}");
        if let Lenient::Raw(raw) = want {
            // Kept as sent, written back as-is.
            assert!(
                to_string(&Package::Document(d)).contains(&format!("<PromulgationDate>{raw}<"))
            );
        }
    }
    let input = canonical_doc().replace("2026/11/20 08:30:00", "20/11/2026 08:30");
    let d = document(check(
        &input,
        &[("date_format", pos(&input, "<Timestamp>", 0))],
    ));
    assert_eq!(
        d.trace.trace_headers[0]
            .timestamp
            .as_ref()
            .unwrap()
            .to_string(),
        "2026/11/20 08:30:00"
    );
}

#[test]
fn status_fields_under_message_header_make_a_status_package() {
    let input = canonical_status().replace("Status>", "MessageHeader>");
    let s = status(check(
        &input,
        &[("status_container", pos(&input, "<MessageHeader>", 0))],
    ));
    assert_eq!(s, status(check(&canonical_status(), &[])));
}

#[test]
fn signatures_xmldsig_skipped_silently_placeholders_warned() {
    let plain = check(&canonical_doc(), &[]);
    let dsig = canonical_doc().replace(
        "</edXMLHeader>",
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo/></ds:Signature></edXMLHeader>",
    );
    assert_eq!(check(&dsig, &[]), plain);
    let placeholder = canonical_doc().replace(
        "</edXMLHeader>",
        "<Signature><SignedInfo/></Signature><DigitalSignature/></edXMLHeader>",
    );
    let got = check(
        &placeholder,
        &[
            ("placeholder_signature", pos(&placeholder, "<Signature>", 0)),
            (
                "placeholder_signature",
                pos(&placeholder, "<DigitalSignature/>", 0),
            ),
        ],
    );
    assert_eq!(got, plain);
}

#[test]
fn odd_unit_codes_duplicates_unknown_elements_and_gaps_are_warned() {
    let input = canonical_doc()
        .replace("<OrganId>000.00.00.H14<", "<OrganId>28.22.H17<")
        .replace(
            "<Subject>V/v &lt;thử&gt; &amp; kiểm tra</Subject>",
            "<ResponseForTask>x</ResponseForTask>",
        )
        .replace(
            "<DueDate>2026/12/31</DueDate>",
            "<DueDate>2026/12/31</DueDate><DueDate>2027/01/01</DueDate>",
        );
    let d = document(check(
        &input,
        &[
            ("bad_unit_code", pos(&input, "<OrganId>28.22.H17", 0)),
            ("unknown_element", pos(&input, "<ResponseForTask>", 0)),
            ("duplicate_element", pos(&input, "<DueDate>", 1)),
            ("missing_field", pos(&input, "<MessageHeader>", 0)),
        ],
    ));
    assert_eq!(d.to[1].organ_id, "28.22.H17");
    assert_eq!(
        d.due_date,
        Some(Lenient::Known(Date {
            year: 2026,
            month: 12,
            day: 31
        }))
    );
    assert_eq!(d.subject, None);
}

#[test]
fn unreferenced_attachment_is_kept_with_a_warning() {
    let input = canonical_doc().replace(
        "  </AttachmentEncoded>",
        "  <Attachment><ContentId>cid:2</ContentId><ContentTransferEncoded>aGk=</ContentTransferEncoded></Attachment>\n  </AttachmentEncoded>",
    );
    let d = document(check(
        &input,
        &[("unreferenced_attachment", pos(&input, "<Attachment>", 1))],
    ));
    assert_eq!(d.attachment("2").unwrap().data(), b"hi");
}

#[test]
fn base64_wrapped_at_76_columns_with_crlf_decodes() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let input = canonical_doc().replace(
        "JVBERi0xLjQK",
        &format!("\r\n{}\r\n    ", wrapped.join("\r\n")),
    );
    let d = document(check(&input, &[]));
    assert_eq!(d.attachments[0].data, data);
}

// ------------------------------------------------------------------------------------------ rejections

#[test]
fn rejections_name_the_problem_and_where_it_is() {
    let lim = Limits::default();
    let doc = canonical_doc();

    let truncated = &doc[..doc.find("</Subject>").unwrap() + 4];
    check_rejected(
        truncated.as_bytes(),
        &lim,
        "not_xml",
        pos(&doc, "</Subject>", 0),
    );

    let mismatched = doc.replace("</Subject>", "</Subjekt>");
    check_rejected(
        mismatched.as_bytes(),
        &lim,
        "not_xml",
        pos(&mismatched, "</Subjekt>", 0),
    );

    let dtd = doc.replacen(
        "<edXML ",
        "<!DOCTYPE edXML [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>\n<edXML ",
        1,
    );
    check_rejected(dtd.as_bytes(), &lim, "doctype", pos(&dtd, "<!DOCTYPE", 0));

    let ent = doc.replace("kiểm tra", "kiểm&nbsp;tra");
    check_rejected(ent.as_bytes(), &lim, "entity", pos(&ent, "&nbsp;", 0));

    let small = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    check_rejected(doc.as_bytes(), &small, "too_large", (1, 1));

    let shallow = Limits {
        max_depth: 3,
        ..Limits::default()
    }; // edXML, envelope, header
    check_rejected(
        doc.as_bytes(),
        &shallow,
        "too_deep",
        pos(&doc, "<MessageHeader>", 0),
    );

    let flat = "<?xml version=\"1.0\"?>\n<EdXMLEnvelope xmlns=\"http://www.go.vn/eDoc\"><MessageHeader/></EdXMLEnvelope>".to_string();
    check_rejected(flat.as_bytes(), &lim, "not_edxml", (2, 1));

    let no_header = format!("<edXML xmlns=\"{NS}\">\n  <edXMLEnvelope/>\n</edXML>");
    check_rejected(no_header.as_bytes(), &lim, "not_edxml", (2, 3));

    let (i, j) = (
        doc.find("<From>").unwrap(),
        doc.find("</From>").unwrap() + 7,
    );
    let no_from = format!("{}{}", &doc[..i], &doc[j..]);
    check_rejected(
        no_from.as_bytes(),
        &lim,
        "no_from",
        pos(&no_from, "<MessageHeader>", 0),
    );

    let empty_from = doc.replace(
        "<OrganId>000.00.00.G22</OrganId>\n          <OrganName>",
        "<OrganName>",
    );
    check_rejected(
        empty_from.as_bytes(),
        &lim,
        "no_from",
        pos(&empty_from, "<From>", 0),
    );

    let mut no_to = doc.clone();
    while let (Some(i), Some(j)) = (no_to.find("<To>"), no_to.find("</To>")) {
        no_to = format!("{}{}", &no_to[..i], &no_to[j + 5..]);
    }
    check_rejected(
        no_to.as_bytes(),
        &lim,
        "no_to",
        pos(&no_to, "<MessageHeader>", 0),
    );

    let bad64 = doc.replace("JVBERi0xLjQK", "JVBER*0xLjQK");
    check_rejected(
        bad64.as_bytes(),
        &lim,
        "bad_attachment",
        pos(&bad64, "*", 0),
    );

    let short64 = doc.replace("JVBERi0xLjQK", "JVBERi0xL");
    check_rejected(
        short64.as_bytes(),
        &lim,
        "bad_attachment",
        pos(&short64, "<ContentTransferEncoded>", 0),
    );

    let missing = doc.replace(
        "<ContentId>cid:1</ContentId>\n          <ContentType>",
        "<ContentId>cid:9</ContentId>\n          <ContentType>",
    );
    let r = check_rejected(
        missing.as_bytes(),
        &lim,
        "missing_attachment",
        pos(&missing, "<Reference>", 0),
    );
    assert!(r.errors().next().unwrap().message.en.contains("cid:9"));

    let st = canonical_status();
    let no_code = st.replace("<StatusCode>02</StatusCode>", "");
    check_rejected(
        no_code.as_bytes(),
        &lim,
        "no_status_code",
        pos(&no_code, "<Status>", 0),
    );
    let (i, j) = (
        st.find("<ResponseFor>").unwrap(),
        st.find("</ResponseFor>").unwrap() + 14,
    );
    let no_rf = format!("{}{}", &st[..i], &st[j..]);
    check_rejected(
        no_rf.as_bytes(),
        &lim,
        "no_response_for",
        pos(&no_rf, "<Status>", 0),
    );
}

#[test]
fn rejection_keeps_the_warnings_seen_and_reports_every_error() {
    let input = canonical_doc()
        .replace("Bussiness", "Business")
        .replace(
            "<OrganId>000.00.00.G22</OrganId>\n          <OrganName>",
            "<OrganName>",
        )
        .replace("<OrganId>000.00.00.H41</OrganId>", "");
    let r = read(input.as_bytes(), &Limits::default()).unwrap_err();
    let errors: Vec<&str> = r.errors().map(|f| f.code).collect();
    assert_eq!(errors, ["no_from", "no_to"]);
    assert!(r.warnings().any(|f| f.code == "business_spelling"));
    assert_eq!(
        r.findings
            .iter()
            .position(|f| f.severity == Severity::Warning),
        Some(2)
    );
}

// ------------------------------------------------------------------------------------------ hostile input

#[test]
fn hostile_inputs_are_rejected_never_panic() {
    let lim = Limits::default();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "not_xml"),
        (b"   \n  ".to_vec(), "not_xml"),
        ((0u8..=255).cycle().take(5000).collect(), "not_xml"),
        (b"<edXML>\xff\xfe</edXML>".to_vec(), "not_xml"),
        (
            format!("<edXML a=\"{}\"/>", "x".repeat(2_000_000)).into_bytes(),
            "not_edxml",
        ),
        (
            format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000)).into_bytes(),
            "too_deep",
        ),
        (b"<edXML></edXML><edXML/>".to_vec(), "not_xml"),
        (b"<edXML>&#0;&#xD800;</edXML>".to_vec(), "entity"),
        (b"<edXML><!-- a -- b --></edXML>".to_vec(), "not_xml"),
    ];
    for (input, code) in cases {
        let r = read(&input, &lim).expect_err("hostile input must be rejected");
        assert_eq!(r.errors().next().unwrap().code, code, "{:#?}", r.findings);
    }
}

#[test]
fn every_truncation_of_a_package_is_handled_without_panic() {
    let doc = canonical_doc();
    let bytes = doc.as_bytes();
    for end in 0..bytes.len() {
        // Must return (accept or reject), never panic; a cut inside the markup must be rejected.
        let result = read(&bytes[..end], &Limits::default());
        if end < doc.rfind("</edXML>").unwrap() {
            assert!(result.is_err(), "truncated at {end} was accepted");
        }
    }
}

#[test]
fn floods_are_bounded_in_findings_and_elements() {
    // 200,000 unknown elements: the package is still usable, with 1,000 warnings and one saying the rest were
    // dropped.
    let flood = canonical_doc().replace(
        "<SteeringType>",
        &format!("{}<SteeringType>", "<Foo/>".repeat(200_000)),
    );
    let parsed = read(flood.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed.findings.len(), 1001);
    assert!(
        parsed.findings[..1000]
            .iter()
            .all(|f| f.code == "unknown_element")
    );
    assert_eq!(parsed.findings[1000].code, "too_many_findings");
    assert_eq!(
        parsed.findings[999].path,
        "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Foo[1000]"
    );

    // More than a million tiny elements is refused before the tree grows without bound.
    let elements = format!("<edXML>{}</edXML>", "<x/>".repeat(1_000_001));
    let r = read(elements.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(r.errors().next().unwrap().code, "too_large");
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    /// Findings about content that the canonical form keeps (values kept as sent, fields the sender left out).
    const PERSISTENT: &[&str] = &[
        "bad_date",
        "bad_number",
        "bad_unit_code",
        "missing_field",
        "unreferenced_attachment",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random edits of a valid package (delete, insert, overwrite a byte run) are accepted or rejected, never
        /// a panic, and a rejection always carries an error.
        #[test]
        fn edited_packages_never_panic(
            edits in proptest::collection::vec((0usize..4000, 0u8..3, proptest::collection::vec(any::<u8>(), 0..6)), 1..4)
        ) {
            let mut bytes = canonical_doc().into_bytes();
            for (at, kind, data) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 => { let end = (at + data.len()).min(bytes.len()); bytes.drain(at..end); }
                    1 => { bytes.splice(at..at, data); }
                    _ => { for (k, b) in data.into_iter().enumerate() { if let Some(x) = bytes.get_mut(at + k) { *x = b; } } }
                }
            }
            match read(&bytes, &Limits::default()) {
                Ok(p) => {
                    prop_assert!(p.findings.iter().all(|f| f.severity == Severity::Warning));
                    // Whatever was accepted, the canonical form reads back to the same model and bytes; only
                    // content problems the writer keeps on purpose are reported again.
                    let canonical = to_bytes(&p.package);
                    let again = read(&canonical, &Limits::default())
                        .map_err(|r| TestCaseError::fail(format!("canonical form rejected: {r}")))?;
                    prop_assert_eq!(&again.package, &p.package);
                    prop_assert!(
                        again.findings.iter().all(|f| PERSISTENT.contains(&f.code)),
                        "{:?}",
                        again.findings
                    );
                    prop_assert_eq!(to_bytes(&again.package), canonical);
                }
                Err(r) => prop_assert!(r.errors().next().is_some()),
            }
        }
    }
}

#[test]
fn control_characters_xml_cannot_carry_are_rejected() {
    for bad in ["&#1;", "\u{1}", "&#xFFFE;"] {
        let input = canonical_doc().replace("kiểm tra", &format!("kiểm{bad}tra"));
        check_rejected(
            input.as_bytes(),
            &Limits::default(),
            "not_xml",
            pos(&input, "<Subject>", 0),
        );
    }
    // Tabs, line breaks and CDATA are fine; a CR written as &#13; survives.
    let input = canonical_doc().replace("kiểm tra", "kiểm\ttra&#13;<![CDATA[<b>]]>");
    let d = document(check(&input, &[]));
    assert_eq!(d.subject.as_deref(), Some("V/v <thử> & kiểm\ttra\r<b>"));
}

#[test]
fn a_deep_path_is_shortened_in_the_message_but_kept_whole_in_the_finding() {
    let mut xml =
        String::from("<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"><edXMLEnvelope>");
    xml.push_str(&"<A>".repeat(100));
    xml.push_str(&"</A>".repeat(100));
    xml.push_str("</edXMLEnvelope></edXML>");
    let rejected = edxml::read(xml.as_bytes(), &edxml::Limits::default()).expect_err("too deep");
    let f = rejected.errors().next().expect("an error");
    assert_eq!(f.code, "too_deep");
    assert!(
        f.path.matches('/').count() > 60,
        "the path field keeps every step: {}",
        f.path
    );
    for message in [&f.message.vi, &f.message.en] {
        assert!(message.len() < 400, "message stays readable: {message}");
        assert!(
            message.contains("/edXML/edXMLEnvelope/A/A/A/…("),
            "{message}"
        );
    }
}
