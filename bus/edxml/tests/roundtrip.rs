//! The canonical writer: reading what it wrote gives back the same model with no findings, writing again gives
//! the same bytes, and `xmllint --schema schemas/edxml.xsd` accepts everything it writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use edxml::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

// ------------------------------------------------------------------------------------------ strategies

const XML_SPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// Free text: any printable Unicode plus markup characters, tabs and line breaks inside; the reader trims
/// surrounding XML whitespace, so generated text has none.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "\\PC{0,16}",
        "[ <>&\"'a\r\n\tĐđỹ]{0,10}",
        Just("V/v <thử> & \"kiểm\" 'tra'".to_owned()),
    ]
    .prop_map(|s| s.trim_matches(XML_SPACE).to_owned())
    .boxed()
}

fn opt_text() -> BoxedStrategy<Option<String>> {
    of(text()).boxed()
}

/// Text that no date, number or code parser understands (kept raw by the reader).
fn raw() -> BoxedStrategy<String> {
    "[A-Za-z][A-Za-z/]{0,8}".boxed()
}

fn unit_code() -> BoxedStrategy<String> {
    "[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}".boxed()
}

fn date() -> BoxedStrategy<Date> {
    (1u16..=9999, 1u8..=12, 1u8..=31)
        .prop_map(|(y, m, d)| {
            Date::new(y, m, d).unwrap_or(Date {
                year: y,
                month: m,
                day: 28,
            })
        })
        .boxed()
}

fn date_field() -> BoxedStrategy<DateField> {
    prop_oneof![4 => date().prop_map(Lenient::Known), 1 => raw().prop_map(Lenient::Raw)].boxed()
}

fn timestamp_field() -> BoxedStrategy<TimestampField> {
    prop_oneof![
        4 => (date(), 0u8..24, 0u8..60, 0u8..60).prop_map(|(date, hour, minute, second)| {
            Lenient::Known(Timestamp { date, hour, minute, second })
        }),
        1 => raw().prop_map(Lenient::Raw),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Number> {
    prop_oneof![4 => any::<i64>().prop_map(Lenient::Known), 1 => raw().prop_map(Lenient::Raw)]
        .boxed()
}

/// A code list value: a known one, or anything else (kept as `Other`).
fn code<T: Clone + std::fmt::Debug + 'static>(
    known: &'static [T],
    parse: fn(&str) -> T,
) -> BoxedStrategy<T> {
    prop_oneof![
        3 => proptest::sample::select(known),
        1 => "[0-9A-Za-z/]{1,4}".prop_map(move |s| parse(&s)),
    ]
    .boxed()
}

fn organization() -> BoxedStrategy<Organization> {
    (
        unit_code(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
    )
        .prop_map(
            |(organ_id, oic, name, add, email, tel, fax, web)| Organization {
                organ_id,
                organization_in_charge: oic,
                organ_name: name,
                organ_add: add,
                email,
                telephone: tel,
                fax,
                website: web,
            },
        )
        .boxed()
}

fn response_for() -> BoxedStrategy<ResponseFor> {
    (opt_text(), opt_text(), of(date_field()), opt_text())
        .prop_map(
            |(organ_id, code, promulgation_date, document_id)| ResponseFor {
                organ_id,
                code,
                promulgation_date,
                document_id,
            },
        )
        .boxed()
}

fn staff_info() -> BoxedStrategy<StaffInfo> {
    (opt_text(), opt_text(), opt_text(), opt_text())
        .prop_map(|(department, staff, email, mobile)| StaffInfo {
            department,
            staff,
            email,
            mobile,
        })
        .boxed()
}

fn business() -> BoxedStrategy<Business> {
    let info = (
        opt_text(),
        opt_text(),
        vec((of(number()), opt_text()), 0..3),
    )
        .prop_map(
            |(document_info, document_receiver, rs)| BusinessDocumentInfo {
                document_info,
                document_receiver,
                receivers: rs
                    .into_iter()
                    .map(|(receiver_type, organ_id)| Receiver {
                        receiver_type,
                        organ_id,
                    })
                    .collect(),
            },
        );
    let replacement =
        (opt_text(), vec(text(), 0..3)).prop_map(|(document_id, organ_ids)| ReplacementInfo {
            document_id,
            organ_ids,
        });
    (
        of(code(BusinessDocType::KNOWN, BusinessDocType::parse)),
        opt_text(),
        opt_text(),
        of(number()),
        of(staff_info()),
        of(info),
        vec(replacement, 0..3),
    )
        .prop_map(
            |(
                doc_type,
                doc_reason,
                document_id,
                paper,
                staff_info,
                document_info,
                replacements,
            )| Business {
                doc_type,
                doc_reason,
                document_id,
                paper,
                staff_info,
                document_info,
                replacements,
            },
        )
        .boxed()
}

fn trace() -> BoxedStrategy<TraceHeaderList> {
    (
        vec(
            (unit_code(), of(timestamp_field())).prop_map(|(organ_id, timestamp)| TraceHeader {
                organ_id,
                timestamp,
            }),
            0..3,
        ),
        of(business()),
    )
        .prop_map(|(trace_headers, business)| TraceHeaderList {
            trace_headers,
            business,
        })
        .boxed()
}

/// 0–3 attachments with random bytes, each listed in the manifest (with its own metadata).
fn files() -> BoxedStrategy<(Vec<Reference>, Vec<Attachment>)> {
    vec(
        (
            "[A-Za-z0-9._@-]{0,12}",
            opt_text(),
            opt_text(),
            opt_text(),
            vec(any::<u8>(), 0..2048),
            (opt_text(), opt_text(), opt_text()),
        ),
        0..=3,
    )
    .prop_map(|items| {
        let mut refs = Vec::new();
        let mut atts = Vec::new();
        for (i, (id, name, description, content_type, data, (r_type, r_desc, r_name))) in
            items.into_iter().enumerate()
        {
            let content_id = format!("{i}{id}");
            refs.push(Reference {
                content_id: content_id.clone(),
                content_type: r_type,
                description: r_desc,
                attachment_name: r_name,
            });
            atts.push(Attachment {
                content_id,
                name,
                description,
                content_type,
                data,
            });
        }
        (refs, atts)
    })
    .boxed()
}

fn document() -> BoxedStrategy<Document> {
    let header =
        (
            organization(),
            vec(organization(), 1..4),
            text(),
            of(
                (opt_text(), opt_text()).prop_map(|(code_number, code_notation)| Code {
                    code_number,
                    code_notation,
                }),
            ),
            of(
                (opt_text(), of(date_field())).prop_map(|(place, promulgation_date)| {
                    PromulgationInfo {
                        place,
                        promulgation_date,
                    }
                }),
            ),
            of((of(number()), of(number()), opt_text()).prop_map(
                |(type_code, type_detail, type_name)| DocumentType {
                    type_code,
                    type_detail,
                    type_name,
                },
            )),
            text(),
            opt_text(),
            of((opt_text(), opt_text(), opt_text()).prop_map(
                |(competence, position, full_name)| SignerInfo {
                    competence,
                    position,
                    full_name,
                },
            )),
            of(date_field()),
            vec(text(), 0..3),
        );
    let other = of((
        of(code(Priority::KNOWN, Priority::parse)),
        opt_text(),
        opt_text(),
        of(number()),
        of(number()),
        opt_text(),
        vec(text(), 0..3),
    )
        .prop_map(
            |(priority, sphere, typer, amount, pages, direction, appendixes)| OtherInfo {
                priority,
                sphere_of_promulgation: sphere,
                typer_notation: typer,
                promulgation_amount: amount,
                page_amount: pages,
                direction,
                appendixes,
            },
        ));
    (
        header,
        other,
        vec(response_for(), 0..3),
        of(code(SteeringType::KNOWN, SteeringType::parse)),
        trace(),
        files(),
    )
        .prop_map(
            |(
                (
                    from,
                    to,
                    document_id,
                    code,
                    promulgation_info,
                    document_type,
                    subject,
                    content,
                    signer_info,
                    due_date,
                    to_places,
                ),
                other_info,
                response_for,
                steering_type,
                trace,
                (references, attachments),
            )| Document {
                from,
                to,
                document_id: Some(document_id),
                code,
                promulgation_info,
                document_type,
                subject: Some(subject),
                content,
                signer_info,
                due_date,
                to_places,
                other_info,
                response_for,
                steering_type,
                trace,
                references,
                attachments,
            },
        )
        .boxed()
}

fn status() -> BoxedStrategy<Status> {
    (
        organization(),
        response_for(),
        of(staff_info()),
        code(StatusCode::KNOWN, StatusCode::parse),
        opt_text(),
        of(timestamp_field()),
        trace(),
    )
        .prop_map(
            |(from, response_for, staff_info, status_code, description, timestamp, trace)| Status {
                from,
                response_for,
                staff_info,
                status_code,
                description,
                timestamp,
                trace,
            },
        )
        .boxed()
}

fn package() -> BoxedStrategy<Package> {
    prop_oneof![
        3 => document().prop_map(Package::Document),
        2 => status().prop_map(Package::Status),
    ]
    .boxed()
}

// ------------------------------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reading_what_the_writer_wrote_gives_the_same_model_and_bytes(p in package()) {
        let bytes = to_bytes(&p);
        let parsed = read(&bytes, &Limits::default())
            .map_err(|r| TestCaseError::fail(format!("rejected: {:#?}\n{}", r.findings, String::from_utf8_lossy(&bytes))))?;
        // A value kept raw (a date or number nobody could parse) is reported again each time it is read, and
        // nothing else is: a model without raw values reads back with no findings at all.
        let raw_values = serde_json::to_string(&p).unwrap().matches("{\"Raw\":").count();
        prop_assert_eq!(parsed.findings.len(), raw_values, "findings: {:#?}", parsed.findings);
        prop_assert!(
            parsed.findings.iter().all(|f| f.code == "bad_date" || f.code == "bad_number"),
            "findings: {:#?}",
            parsed.findings
        );
        prop_assert_eq!(&parsed.package, &p);
        let again = to_bytes(&parsed.package);
        prop_assert_eq!(again, bytes);
    }
}

#[test]
fn canonical_bytes_have_the_promised_shape() {
    let mut runner = TestRunner::deterministic();
    for _ in 0..50 {
        let p = package().new_tree(&mut runner).unwrap().current();
        let bytes = to_bytes(&p);
        let s = std::str::from_utf8(&bytes).unwrap();
        assert!(s.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n  <edXMLEnvelope>\n"
        ));
        assert!(s.ends_with("</edXML>\n"));
        assert!(!s.contains("\r\n"), "LF only");
        assert!(
            s.contains("<TraceHeaderList"),
            "TraceHeaderList is always written"
        );
        assert!(!s.contains(":OrganId"), "no prefixes");
        if let Package::Document(d) = &p {
            for a in &d.attachments {
                assert!(s.contains(&format!("<ContentId>cid:{}</ContentId>", a.content_id)));
            }
            assert_eq!(s.contains("<AttachmentEncoded>"), !d.attachments.is_empty());
        } else {
            assert!(!s.contains("edXMLBody"));
        }
    }
}

// ------------------------------------------------------------------------------------------ schema

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A document with every field of the model set, for the schema check.
fn full_document() -> Package {
    let d = Date {
        year: 2026,
        month: 11,
        day: 20,
    };
    let org = |id: &str| Organization {
        organ_id: id.into(),
        organization_in_charge: Some("Chính phủ".into()),
        organ_name: Some("Văn phòng Chính phủ".into()),
        organ_add: Some("Số 1 Hoàng Hoa Thám".into()),
        email: Some("vanthu@chinhphu.vn".into()),
        telephone: Some("024 3825 8261".into()),
        fax: Some("024 3825 8262".into()),
        website: Some("chinhphu.vn".into()),
    };
    Package::Document(Document {
        from: org("000.00.00.G22"),
        to: vec![org("000.00.00.H41"), org("28.22.H17")],
        document_id: Some("000.00.00.G22,2026/11/20,7816/VPCP-TTĐT".into()),
        code: Some(Code {
            code_number: Some("7816".into()),
            code_notation: Some("VPCP-TTĐT".into()),
        }),
        promulgation_info: Some(PromulgationInfo {
            place: Some("Hà Nội".into()),
            promulgation_date: Some(Lenient::Known(d)),
        }),
        document_type: Some(DocumentType {
            type_code: Some(Lenient::Known(18)),
            type_detail: Some(Lenient::Known(-1)),
            type_name: Some("Công văn".into()),
        }),
        subject: Some("V/v <thử> & kiểm tra".into()),
        content: Some("N/A".into()),
        signer_info: Some(SignerInfo {
            competence: Some("KT. BỘ TRƯỞNG".into()),
            position: Some("Thứ trưởng".into()),
            full_name: Some("Nguyễn Văn An".into()),
        }),
        due_date: Some(Lenient::Raw("N/A".into())),
        to_places: vec!["Như trên".into(), "Lưu: VT".into()],
        other_info: Some(OtherInfo {
            priority: Some(Priority::ExpressScheduled),
            sphere_of_promulgation: Some("Liên thông".into()),
            typer_notation: Some("VT".into()),
            promulgation_amount: Some(Lenient::Known(1)),
            page_amount: Some(Lenient::Raw("N/A".into())),
            direction: Some("false".into()),
            appendixes: vec!["Phụ lục I".into()],
        }),
        response_for: vec![ResponseFor {
            organ_id: Some("000.00.00.H41".into()),
            code: Some("12/UBND".into()),
            promulgation_date: Some(Lenient::Known(d)),
            document_id: Some("000.00.00.H41,2026/11/01,12/UBND".into()),
        }],
        steering_type: Some(SteeringType::Other("0".into())),
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: "000.00.00.G22".into(),
                timestamp: Some(Lenient::Known(Timestamp {
                    date: d,
                    hour: 8,
                    minute: 30,
                    second: 5,
                })),
            }],
            business: Some(Business {
                doc_type: Some(BusinessDocType::Replace),
                doc_reason: Some("Thay thế".into()),
                document_id: Some("000.00.00.G22,2026/11/01,7000/VPCP".into()),
                paper: Some(Lenient::Known(0)),
                staff_info: Some(StaffInfo {
                    department: Some("Văn thư".into()),
                    staff: Some("Trần Thị Bình".into()),
                    email: Some("b@chinhphu.vn".into()),
                    mobile: Some("0912345678".into()),
                }),
                document_info: Some(BusinessDocumentInfo {
                    document_info: Some("1".into()),
                    document_receiver: Some("1".into()),
                    receivers: vec![Receiver {
                        receiver_type: Some(Lenient::Known(1)),
                        organ_id: Some("000.00.00.H14".into()),
                    }],
                }),
                replacements: vec![ReplacementInfo {
                    document_id: Some("000.00.00.G22,2026/11/01,7000/VPCP".into()),
                    organ_ids: vec!["000.00.00.H41".into()],
                }],
            }),
        },
        references: vec![Reference {
            content_id: "1".into(),
            content_type: Some("application/pdf".into()),
            description: Some("Văn bản chính".into()),
            attachment_name: Some("a.pdf".into()),
        }],
        attachments: vec![Attachment {
            content_id: "1".into(),
            name: Some("a.pdf".into()),
            description: Some("Văn bản chính".into()),
            content_type: Some("application/pdf".into()),
            data: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
        }],
    })
}

#[test]
fn xmllint_accepts_every_package_the_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut save = |name: String, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    };
    save("full-document.edxml".into(), to_bytes(&full_document()));
    save(
        "empty-status.edxml".into(),
        to_bytes(&Package::Status(Status::default())),
    );
    // What the property test writes: the same strategy, a fixed seed.
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    for i in 0..300 {
        let p = package().new_tree(&mut runner).unwrap().current();
        save(format!("generated-{i:03}.edxml"), to_bytes(&p));
    }
    // The canonical form of every usable example in the corpus.
    let examples = repo_root().join("schemas/examples/valid");
    if let Ok(entries) = std::fs::read_dir(&examples) {
        for e in entries {
            let path = e.unwrap().path();
            let parsed = read(&std::fs::read(&path).unwrap(), &Limits::default())
                .unwrap_or_else(|r| panic!("{}: {r}", path.display()));
            save(
                format!("example-{}", path.file_name().unwrap().to_string_lossy()),
                to_bytes(&parsed.package),
            );
        }
    }

    let xsd = repo_root().join("schemas/edxml.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--huge")
        .arg("--schema")
        .arg(&xsd)
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is required for this test (Debian/Ubuntu: apt-get install libxml2-utils): {e}")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "xmllint rejected packages the writer wrote:\n{}",
        stderr
            .lines()
            .filter(|l| !l.ends_with(" validates"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        stderr.lines().filter(|l| l.ends_with(" validates")).count(),
        files.len()
    );
}

#[test]
fn xmllint_rejects_a_non_canonical_package() {
    // Guards the schema test against a schema that accepts anything.
    let bytes = String::from_utf8(to_bytes(&full_document()))
        .unwrap()
        .replace("<ContentId>cid:1</ContentId>", "<ContentId>1</ContentId>");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.edxml");
    std::fs::write(&path, bytes).unwrap();
    let status = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo_root().join("schemas/edxml.xsd"))
        .arg(&path)
        .output()
        .expect("xmllint is required (apt-get install libxml2-utils)")
        .status;
    assert!(!status.success());
}

#[test]
fn full_document_round_trips() {
    let p = full_document();
    let bytes = to_bytes(&p);
    let parsed = read(&bytes, &Limits::default()).unwrap();
    let codes: Vec<&str> = parsed.findings.iter().map(|f| f.code).collect();
    // The model holds a kept-raw date, a kept-raw number and an odd unit code; reading them back reports them.
    assert_eq!(codes, ["bad_unit_code", "bad_date", "bad_number"]);
    assert_eq!(parsed.package, p);
    assert_eq!(to_bytes(&parsed.package), bytes);
}
