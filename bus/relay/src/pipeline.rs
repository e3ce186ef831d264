//! The admit pipeline: parse → check the sender → verify → deduplicate → route → seal → archive →
//! record → flush → enqueue (durable before it returns). Everything before "record" only reads; a refusal at any step leaves
//! nothing behind (no archive entry matters: it is content-addressed and unreferenced).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use broker::{AnyBroker, Broker, Message, MessageKind, Publish};
use directory::UnitState;
use dsig::Role as SigRole;
use edxml::{Package, Severity};
use store::Digest;

use crate::error::{Fault, Problem, RelayError};
use crate::tracking::{Event, Header, ms};
use crate::{Accepted, RecipientState, Relay};

/// Longest subject kept in envelopes and tracking (the package itself keeps the whole text): a
/// hostile megabyte subject must not be copied into every recipient's mailbox entry.
const SUBJECT_CHARS: usize = 500;

fn short(subject: &str) -> String {
    match subject.char_indices().nth(SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &subject[..cut]),
        None => subject.to_owned(),
    }
}

/// What the checks decided, before anything is written.
struct Admitted {
    kind: MessageKind,
    doc_key: String,
    document_id: String,
    code: Option<String>,
    subject: String,
    recipients: Vec<String>,
    about: Option<String>,
    status_code: Option<String>,
    description: Option<String>,
    /// SHA-256 of the bytes as submitted.
    submitted: Digest,
}

enum Decision {
    New(Admitted),
    /// The same bytes were accepted before: answer as then, and make sure nothing is missing
    /// from the mailboxes (a crash may have come between the record and the enqueue).
    Duplicate(Header),
}

impl Relay {
    /// Admits a package submitted by `unit` (the authenticated caller). On success the sealed
    /// package is archived, tracked and queued for every recipient, durably.
    pub async fn submit(&self, unit: &str, body: &[u8]) -> Result<Accepted, RelayError> {
        let result = self.admit(unit, body).await;
        self.note_submit(&result);
        let c = &self.inner.counters;
        match &result {
            Ok(a) if a.duplicate => c.duplicates.fetch_add(1, Ordering::Relaxed),
            Ok(_) => c.accepted.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                if crate::ops::is_signature_failure(e) {
                    c.signature_failures.fetch_add(1, Ordering::Relaxed);
                }
                if matches!(e.fault, Fault::Sender | Fault::Recipient) {
                    c.rejected.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                }
            }
        };
        if let Err(e) = &result {
            tracing::info!(unit, code = e.code, error = %e, "package refused");
        }
        result
    }

    async fn admit(&self, unit: &str, body: &[u8]) -> Result<Accepted, RelayError> {
        // With other relay nodes: see everything they accepted before this call (dedup, and what
        // a status may be about). Nothing to wait for alone.
        self.sync().await?;
        // CPU work (parse, verify, seal, hash) off the async threads, a core's worth at a time.
        // (Never closed, so never an error.)
        let turn = self.inner.checks.acquire().await.ok();
        let this = self.clone();
        let unit_owned = unit.to_owned();
        let body_owned = body.to_vec();
        let checked = tokio::task::spawn_blocking(move || {
            let (decision, parsed) = this.check(&unit_owned, &body_owned)?;
            match (decision, parsed) {
                (Decision::Duplicate(h), _) => {
                    Ok::<_, RelayError>((Decision::Duplicate(h), None))
                }
                (Decision::New(_), None) => Err(RelayError::new(
                    "internal",
                    Fault::Relay,
                    500,
                    "Lỗi nội bộ của trục: gói tin đã kiểm tra mà không còn bản đã phân tích. Hãy gửi lại.",
                    "Internal relay error: a checked package without its parsed form. Send it again.",
                )),
                (Decision::New(a), Some(parsed)) => {
                    let id = if this.inner.cluster.is_some() {
                        // The same at every node (see cluster.rs).
                        crate::cluster::package_id(&unit_owned, &a.doc_key, &a.submitted)
                    } else {
                        uuid::Uuid::new_v4().to_string()
                    };
                    let sealed = this.seal(parsed)?;
                    let digest = this.inner.store.archive().put(&sealed)?;
                    let now = this.now();
                    let event = Event::Accepted {
                        id: id.clone(),
                        at_ms: ms(now),
                        kind: a.kind,
                        from: unit_owned.clone(),
                        doc_key: a.doc_key.clone(),
                        document_id: a.document_id.clone(),
                        code: a.code.clone(),
                        subject: a.subject.clone(),
                        digest,
                        size: sealed.len() as u64,
                        submitted: a.submitted,
                        recipients: a.recipients.clone(),
                        about: a.about.clone(),
                        status_code: a.status_code.clone(),
                        description: a.description.clone(),
                    };
                    if this.inner.cluster.is_some() {
                        this.inner.tracking.record(&event)?;
                    } else {
                        this.inner.tracking.record_new(&event)?;
                    }
                    // With other nodes the same package may have been folded from another
                    // node's event first: its header is the one that counts. Alone, the header is
                    // the one just recorded.
                    let header = if this.inner.cluster.is_some() {
                        this.inner.tracking.header(&id)?
                    } else {
                        Header::of(&event)
                    };
                    let header = header.ok_or_else(|| {
                        RelayError::from(store::StoreError::Record {
                            what: format!("package {id}"),
                            detail: "header missing right after it was recorded".into(),
                        })
                    })?;
                    Ok((Decision::New(a), Some(header)))
                }
            }
        })
        .await
        .map_err(|e| {
            RelayError::new(
                "internal",
                Fault::Relay,
                500,
                format!("Lỗi nội bộ của trục khi kiểm tra gói tin ({e}). Hãy gửi lại."),
                format!("Internal relay error while checking the package ({e}). Send it again."),
            )
        })??;
        // Waiting for the flush takes no core: the next submission's checks go ahead.
        drop(turn);
        match checked {
            (Decision::Duplicate(header), _) => {
                // Requeue only the recipients not yet delivered; the broker ignores ids it holds.
                let pending: Vec<String> = self
                    .inner
                    .tracking
                    .rows(&header.id)?
                    .into_iter()
                    .filter(|r| !r.delivered)
                    .map(|r| r.unit)
                    .collect();
                // The first time may have crashed before the shared log or a mailbox had it.
                self.durably_enqueue(&header, &pending).await?;
                Ok(self.inner.tracking.answer(&header))
            }
            (Decision::New(a), Some(header)) => {
                self.durably_enqueue(&header, &a.recipients).await?;
                Ok(Accepted {
                    id: header.id.clone(),
                    document_id: header.document_id.clone(),
                    recipients: a
                        .recipients
                        .iter()
                        .map(|u| RecipientState {
                            unit: u.clone(),
                            state: "queued".into(),
                        })
                        .collect(),
                    duplicate: false,
                })
            }
            (Decision::New(_), None) => Err(RelayError::new(
                "internal",
                Fault::Relay,
                500,
                "Lỗi nội bộ của trục. Hãy gửi lại.",
                "Internal relay error. Send it again.",
            )),
        }
    }

    /// Makes the recorded package durable, then queues it for `units`. Durable first, visible
    /// second: a recipient must never fetch (and answer with a status) a package the relay could
    /// forget in a crash. The embedded broker's publish flushes the relay's own store before it
    /// offers anything, so there that one flush does both; otherwise the store is flushed first
    /// and the broker's publish is durable on its side before it returns.
    async fn durably_enqueue(&self, header: &Header, units: &[String]) -> Result<(), RelayError> {
        let publish_flushes = !units.is_empty()
            && matches!(&self.inner.broker, AnyBroker::Embedded(b) if b.flushes(&self.inner.store));
        if !publish_flushes {
            self.inner.store.flush().await?;
        }
        // Other nodes must have the package before any mailbox does (no-op alone).
        self.share_accepted(header).await?;
        self.enqueue(header, units).await
    }

    async fn enqueue(&self, header: &Header, units: &[String]) -> Result<(), RelayError> {
        if units.is_empty() {
            return Ok(());
        }
        let message = Message {
            id: header.id.clone(),
            kind: header.kind,
            from: header.from.clone(),
            document_id: header.document_id.clone(),
            subject: header.subject.clone(),
            size: header.size,
            digest: header.digest,
            queued_at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(header.at_ms),
        };
        let batch = units
            .iter()
            .map(|u| Publish {
                mailbox: u.clone(),
                message: message.clone(),
            })
            .collect();
        self.inner.broker.publish(batch).await?;
        Ok(())
    }

    /// Every read-only check, in order; the first failure is the answer. A new package comes
    /// with its parsed form, for the seal.
    fn check<'a>(
        &self,
        unit: &str,
        body: &'a [u8],
    ) -> Result<(Decision, Option<dsig::Parsed<'a>>), RelayError> {
        let config = &self.inner.config;
        let parsed = edxml::read(body, &config.limits).map_err(|rejected| {
            let first = rejected
                .findings
                .iter()
                .find(|f| f.severity == Severity::Error)
                .or(rejected.findings.first());
            let (code, vi, en) = match first {
                Some(f) => (f.code, f.message.vi.clone(), f.message.en.clone()),
                None => (
                    "invalid_package",
                    "Gói tin không dùng được.".into(),
                    "The package is not usable.".into(),
                ),
            };
            let status = if code == "too_large" { 413 } else { 400 };
            RelayError::sender(
                code,
                status,
                format!("Gói tin bị từ chối: {vi}"),
                format!("Package refused: {en}"),
            )
            .with_problems(
                rejected
                    .findings
                    .iter()
                    .map(|f| Problem {
                        code: f.code.to_owned(),
                        severity: match f.severity {
                            Severity::Error => "error",
                            Severity::Warning => "warning",
                        },
                        line: Some(u64::from(f.line)),
                        column: Some(u64::from(f.column)),
                        path: Some(f.path.clone()),
                        vi: f.message.vi.clone(),
                        en: f.message.en.clone(),
                    })
                    .collect(),
            )
        })?;
        let package = parsed.package;
        let from = package.from().organ_id.clone();
        if from != unit {
            return Err(RelayError::sender(
                "sender_mismatch",
                403,
                format!(
                    "Gói tin ghi đơn vị gửi (From/OrganId) là \"{from}\", nhưng chứng thư kết nối là của đơn vị {unit}. Mỗi đơn vị chỉ gửi gói tin của chính mình."
                ),
                format!(
                    "The package names \"{from}\" as sender (From/OrganId) but you connected as unit {unit}. A unit may only submit its own packages."
                ),
            ));
        }
        let parsed = dsig::Parsed::parse(body);
        self.check_signature(unit, &parsed)?;
        let parsed = parsed.ok();
        let digest = Digest::of(body);
        match package {
            Package::Document(doc) => {
                let document_id = doc.document_id.clone().unwrap_or_default();
                if document_id.trim().is_empty() {
                    return Err(RelayError::sender(
                        "no_document_id",
                        400,
                        "Gói tin thiếu DocumentId (mã định danh văn bản) nên không chống gửi trùng được. Hãy để hệ thống QLVB sinh DocumentId rồi gửi lại.",
                        "The package has no DocumentId, so resubmissions could not be recognised. Let the DMS assign a DocumentId and submit again.",
                    ));
                }
                if let Some(first) = self.inner.tracking.by_doc_key(unit, &document_id)? {
                    if first.submitted == digest {
                        return Ok((Decision::Duplicate(first), None));
                    }
                    return Err(RelayError::sender(
                        "document_id_conflict",
                        409,
                        format!(
                            "DocumentId \"{document_id}\" đã được dùng cho một gói tin khác (mã trục {}) với nội dung khác. Mỗi văn bản cần một DocumentId riêng; để sửa văn bản đã gửi, hãy gửi văn bản cập nhật/thay thế với DocumentId mới.",
                            first.id
                        ),
                        format!(
                            "DocumentId \"{document_id}\" was already used for a different package (relay id {}). Each document needs its own DocumentId; to correct a sent document, send an update/replacement under a new DocumentId.",
                            first.id
                        ),
                    ));
                }
                let recipients = self.route(
                    &doc.to
                        .iter()
                        .map(|t| t.organ_id.clone())
                        .collect::<Vec<_>>(),
                )?;
                let code = doc.code.as_ref().map(|c| {
                    format!(
                        "{}/{}",
                        c.code_number.as_deref().unwrap_or(""),
                        c.code_notation.as_deref().unwrap_or("")
                    )
                });
                Ok((
                    Decision::New(Admitted {
                        kind: MessageKind::Package,
                        doc_key: document_id.clone(),
                        document_id,
                        code,
                        subject: short(doc.subject.as_deref().unwrap_or_default()),
                        recipients,
                        about: None,
                        status_code: None,
                        description: None,
                        submitted: digest,
                    }),
                    parsed,
                ))
            }
            Package::Status(status) => {
                let code = status.status_code.code().to_owned();
                let document_id = status.response_for.document_id.clone().unwrap_or_default();
                let doc_key = format!("status:{document_id}:{code}:{}", digest.to_hex());
                if let Some(first) = self.inner.tracking.by_doc_key(unit, &doc_key)? {
                    return Ok((Decision::Duplicate(first), None));
                }
                let unknown = || {
                    RelayError::new(
                        "status_unknown_document",
                        Fault::Sender,
                        422,
                        format!(
                            "Đơn vị {unit} chưa từng nhận văn bản có DocumentId \"{document_id}\" qua trục nên không báo trạng thái cho văn bản đó được. Hãy kiểm tra ResponseFor (OrganId, DocumentId)."
                        ),
                        format!(
                            "Unit {unit} never received a document with DocumentId \"{document_id}\" through the relay, so it cannot report a status for it. Check ResponseFor (OrganId, DocumentId)."
                        ),
                    )
                };
                let (about, recipients) = if code == "13" {
                    // Withdrawal: only the original sender asks, about its own document.
                    let original = self
                        .inner
                        .tracking
                        .by_doc_key(unit, &document_id)?
                        .filter(|h| h.kind == MessageKind::Package)
                        .ok_or_else(|| {
                            RelayError::new(
                                "status_unknown_document",
                                Fault::Sender,
                                422,
                                format!(
                                    "Chỉ đơn vị gửi mới đề nghị thu hồi (13) được, và đơn vị {unit} chưa gửi văn bản nào có DocumentId \"{document_id}\". Hãy kiểm tra ResponseFor/DocumentId."
                                ),
                                format!(
                                    "Only the sender may ask to withdraw (13), and unit {unit} never sent a document with DocumentId \"{document_id}\". Check ResponseFor/DocumentId."
                                ),
                            )
                        })?;
                    (original.id, original.recipients)
                } else {
                    let sender_code = status.response_for.organ_id.clone().unwrap_or_default();
                    // The original sender may have changed code since; follow the alias.
                    let sender = match self.inner.directory.resolve(&sender_code)? {
                        Some(u) => u.code,
                        None => sender_code,
                    };
                    let original = self
                        .inner
                        .tracking
                        .received(unit, &sender, &document_id)?
                        .ok_or_else(unknown)?;
                    (original.id, vec![original.from])
                };
                let subject = self
                    .inner
                    .tracking
                    .header(&about)?
                    .map(|h| h.subject)
                    .unwrap_or_default();
                Ok((
                    Decision::New(Admitted {
                        kind: MessageKind::Status,
                        doc_key,
                        document_id,
                        code: None,
                        subject,
                        recipients,
                        about: Some(about),
                        status_code: Some(code),
                        description: status.description.clone(),
                        submitted: digest,
                    }),
                    parsed,
                ))
            }
        }
    }

    /// Recipient addresses (codes, old codes, `group:NAME`, `children:CODE`) → current, active
    /// unit codes, each once, in address order.
    fn route(&self, addresses: &[String]) -> Result<Vec<String>, RelayError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for address in addresses {
            let units = self.inner.directory.expand(address).map_err(|e| {
                if let directory::DirectoryError::Store(_) = e {
                    return RelayError::from(e);
                }
                RelayError::new(
                    "unknown_recipient",
                    Fault::Recipient,
                    422,
                    format!(
                        "Nơi nhận \"{address}\" không có trong danh bạ của trục ({}). Không gói tin nào được gửi đi; hãy sửa danh sách nơi nhận rồi gửi lại.",
                        e.message_vi()
                    ),
                    format!(
                        "Recipient \"{address}\" is not in the relay's directory ({}). Nothing was sent; fix the recipient list and submit again.",
                        e.message_en()
                    ),
                )
            })?;
            if units.is_empty() {
                return Err(RelayError::new(
                    "unknown_recipient",
                    Fault::Recipient,
                    422,
                    format!(
                        "Địa chỉ nơi nhận \"{address}\" không gồm đơn vị nào. Không gói tin nào được gửi đi; hãy sửa danh sách nơi nhận."
                    ),
                    format!(
                        "Recipient address \"{address}\" names no unit. Nothing was sent; fix the recipient list."
                    ),
                ));
            }
            for u in units {
                if u.state == UnitState::Suspended {
                    return Err(RelayError::new(
                        "recipient_suspended",
                        Fault::Recipient,
                        422,
                        format!(
                            "Nơi nhận {} ({}) đang bị tạm dừng trên trục. Không gói tin nào được gửi đi; hãy bỏ đơn vị này khỏi danh sách nơi nhận hoặc liên hệ quản trị trục.",
                            u.code, u.name
                        ),
                        format!(
                            "Recipient {} ({}) is suspended on the relay. Nothing was sent; remove it from the recipients or contact the relay operator.",
                            u.code, u.name
                        ),
                    ));
                }
                if seen.insert(u.code.clone()) {
                    out.push(u.code);
                }
            }
        }
        Ok(out)
    }

    fn check_signature(
        &self,
        unit: &str,
        parsed: &Result<dsig::Parsed<'_>, dsig::Error>,
    ) -> Result<(), RelayError> {
        let config = &self.inner.config;
        let report = match parsed {
            Ok(p) => p.verify(&config.trust, self.now()),
            // What `dsig::verify` reports for bytes it cannot parse.
            Err(e) => dsig::VerifyReport {
                failures: vec![e.clone()],
                ..dsig::VerifyReport::default()
            },
        };
        if report.signature(SigRole::Relay).is_some() {
            return Err(RelayError::sender(
                "already_sealed",
                400,
                "Gói tin đã mang chữ ký của trục. Hãy gửi gói tin gốc do đơn vị ký, không gửi lại gói tin đã nhận.",
                "The package already carries a relay seal. Submit the package as signed by your unit, not one you received.",
            ));
        }
        let problems = |findings: &[dsig::Error]| -> Vec<Problem> {
            findings
                .iter()
                .map(|f| Problem {
                    code: f.code.to_owned(),
                    severity: "error",
                    line: None,
                    column: None,
                    path: None,
                    vi: f.vi.clone(),
                    en: f.en.clone(),
                })
                .collect()
        };
        let Some(sig) = report.signature(SigRole::Sender) else {
            let mut all = report.failures.clone();
            all.extend(report.warnings.iter().cloned());
            return Err(RelayError::sender(
                "signature_missing",
                400,
                format!(
                    "Gói tin chưa được đơn vị {unit} ký số. Hãy ký bằng chứng thư của đơn vị (truc sign, hoặc để bộ kết nối ký) rồi gửi lại."
                ),
                format!(
                    "The package is not signed by unit {unit}. Sign it with the unit's certificate (truc sign, or let the adapter sign) and submit again."
                ),
            )
            .with_problems(problems(&all)));
        };
        let mut failures = report.failures.clone();
        failures.extend(sig.failures.iter().cloned());
        if failures.is_empty() {
            return Ok(());
        }
        let has = |code: &str| failures.iter().any(|f| f.code == code);
        let err = if has("DSIG_SIGNER_NOT_SENDER") {
            RelayError::sender(
                "signer_not_sender",
                403,
                format!(
                    "Gói tin được ký bởi {} chứ không phải đơn vị gửi {unit}. Chỉ chấp nhận chữ ký của chính đơn vị gửi.",
                    sig.signer_unit.as_deref().unwrap_or("?")
                ),
                format!(
                    "The package is signed by {}, not by the sending unit {unit}. Only the sender's own signature is accepted.",
                    sig.signer_unit.as_deref().unwrap_or("?")
                ),
            )
        } else if has("DSIG_CERT_REVOKED") {
            RelayError::sender(
                "certificate_revoked",
                403,
                "Chứng thư số dùng để ký đã bị thu hồi. Hãy xin cấp chứng thư mới và ký lại.",
                "The signing certificate has been revoked. Get a new certificate and sign again.",
            )
        } else if has("DSIG_CERT_EXPIRED") || has("DSIG_CHAIN_NOT_VALID_AT_TIME") {
            RelayError::sender(
                "certificate_expired",
                403,
                "Chứng thư số dùng để ký đã hết hạn (hoặc chưa có hiệu lực). Hãy gia hạn chứng thư và ký lại.",
                "The signing certificate has expired (or is not yet valid). Renew it and sign again.",
            )
        } else if has("DSIG_CHAIN_UNTRUSTED") {
            RelayError::sender(
                "certificate_untrusted",
                403,
                "Chứng thư số dùng để ký không do tổ chức cấp chứng thư mà trục tin cậy cấp. Hãy dùng chứng thư do CA của trục cấp.",
                "The signing certificate is not issued by a CA the relay trusts. Use a certificate from the relay's CA.",
            )
        } else {
            RelayError::sender(
                "signature_invalid",
                400,
                "Chữ ký số của gói tin không hợp lệ (nội dung đã bị thay đổi sau khi ký, hoặc chữ ký sai dạng). Hãy ký lại gói tin gốc rồi gửi.",
                "The package's signature does not verify (the content changed after signing, or the signature is malformed). Sign the original package again and submit.",
            )
        };
        Err(err.with_problems(problems(&failures)))
    }

    /// Appends the relay's `TraceHeader` (Vietnam time) and the relay signature.
    fn seal(&self, parsed: dsig::Parsed<'_>) -> Result<Vec<u8>, RelayError> {
        let config = &self.inner.config;
        let now = time::OffsetDateTime::from(self.now()).to_offset(time::macros::offset!(+7));
        let fmt =
            time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
        let stamp = now.format(&fmt).unwrap_or_default();
        let internal = |e: dsig::Error| {
            RelayError::new(
                "seal_failed",
                Fault::Relay,
                500,
                format!("Trục không đóng dấu được gói tin: {}", e.vi),
                format!("The relay could not seal the package: {}", e.en),
            )
        };
        parsed
            .seal(&config.relay_id, &stamp, &config.seal)
            .map_err(internal)
    }
}
