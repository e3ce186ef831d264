//! Folder mode, sending: `outbox/*.edxml` → signed → local outbox (durable) → relay → `sent/` or
//! `failed/`.
//!
//! Order of durability, which the kill -9 test holds us to: a file is taken only when complete
//! (its modification time is at least `settle` old, so a file still being written, or written
//! and renamed in a moment ago, waits); its signed bytes are flushed into the local outbox; only
//! then is the file moved out of `outbox/` (to `data_dir/pending/`). After the relay answers, the
//! result file is written, the file moved to `sent/` or `failed/`, and only then does the package
//! leave the local outbox. A crash anywhere repeats a step, never skips one; a repeated
//! submission carries the same bytes and the relay answers it as a duplicate.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use store::{Batch, Digest};
use tokio::task::JoinSet;
use truc_client::ClientError;

use crate::disk;
use crate::state::{Outcome, Outgoing, State, Taken, taken_key};
use crate::{Adapter, AdapterError, now_unix};

/// How often `outbox/` is listed.
fn scan_interval(settle: Duration) -> Duration {
    (settle / 4).clamp(Duration::from_millis(50), Duration::from_millis(500))
}

pub async fn scan_loop(adapter: Adapter) -> Result<(), AdapterError> {
    let interval = scan_interval(adapter.inner.config.settle);
    loop {
        if let Err(e) = scan_once(&adapter).await {
            // A store failure means nothing can be made durable: stop rather than lose files.
            if let AdapterError::Store(_) = e {
                return Err(e);
            }
            tracing::warn!(error = %e, "outbox scan failed; will retry");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Takes every complete `*.edxml` file of `outbox/`, in name order.
pub async fn scan_once(adapter: &Adapter) -> Result<usize, AdapterError> {
    let cfg = &adapter.inner.config;
    let dir = &cfg.folder.outbox;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(AdapterError::io("the outbox folder", dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".edxml") && !n.starts_with('.'))
        .collect();
    names.sort();
    // Every complete file goes into the local outbox, then one flush makes them all durable,
    // then they leave outbox/.
    let mut moves = Vec::new();
    for name in names {
        if let Some(seq) = take(adapter, &dir.join(&name), &name)? {
            moves.push((dir.join(&name), seq));
        }
    }
    if moves.is_empty() {
        return Ok(0);
    }
    adapter.inner.state.store.flush().await?;
    for (path, seq) in &moves {
        move_to_pending(adapter, path, *seq)?;
    }
    adapter.inner.wake.notify_one();
    Ok(moves.len())
}

fn stamp(meta: &std::fs::Metadata) -> (u64, Option<SystemTime>) {
    (meta.len(), meta.modified().ok())
}

/// Takes one file if it is complete: puts it in the local outbox (durable at the caller's next
/// flush) and returns its seq, for the caller to move it out of `outbox/` after that flush. A file
/// that cannot be sent goes to `failed/` here.
fn take(adapter: &Adapter, path: &Path, name: &str) -> Result<Option<u64>, AdapterError> {
    let inner = &adapter.inner;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age < inner.config.settle {
        return Ok(None);
    }
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    match std::fs::metadata(path) {
        Ok(again) if stamp(&again) == stamp(&meta) && again.len() == bytes.len() as u64 => {}
        _ => return Ok(None), // changed while read: not complete yet
    }
    let digest = Digest::of(&bytes).to_hex();
    let state = &inner.state;
    if let Some(t) = state.taken(name)?
        && t.digest == digest
    {
        // Already in the local outbox (a crash came between the flush and the move).
        return Ok(Some(t.seq));
    }
    // Read, check the sender, sign. A file that cannot be sent goes to failed/ at once.
    let (document_id, signed) = match admit(adapter, &bytes) {
        Ok(v) => v,
        Err(report) => {
            fail_file(adapter, path, name, &bytes, &report)?;
            return Ok(None);
        }
    };
    let seq = state.store.generate_id()?;
    let mut batch = Batch::default();
    batch.insert(taken_key(name), State::taken_value(&Taken { digest, seq })?);
    let out = Outgoing {
        seq,
        source: "file".into(),
        name: name.to_owned(),
        document_id: document_id.clone(),
        taken_at: now_unix(),
    };
    state.enqueue(batch, &out, &signed)?;
    tracing::info!(file = %name, doc_id = %document_id, seq = out.seq, "taken into the local outbox");
    Ok(Some(out.seq))
}

/// Reads a package the DMS handed over, checks that it is the unit's own, and signs it with the
/// unit key (a package the DMS signed itself is kept as it is). Returns its DocumentId (for a
/// status, the DocumentId it answers) and the bytes to submit, or why it cannot be sent.
pub(crate) fn admit(adapter: &Adapter, bytes: &[u8]) -> Result<(String, Vec<u8>), Report> {
    let inner = &adapter.inner;
    let parsed = match edxml::read(bytes, &edxml::Limits::default()) {
        Ok(p) => p,
        Err(rejected) => {
            let mut details = Vec::new();
            for f in &rejected.findings {
                details.push(format!(
                    "{}:{} {} [{}] {} / {}",
                    f.line, f.column, f.path, f.code, f.message.vi, f.message.en
                ));
            }
            let report = Report {
                code: "package_unreadable".into(),
                vi: "Gói tin không đọc được (không phải edXML dùng được).".into(),
                en: "The package cannot be read (not a usable edXML package).".into(),
                details,
            };
            return Err(report);
        }
    };
    let unit = &inner.config.unit;
    let from = &parsed.package.from().organ_id;
    if from != unit {
        let report = Report {
            code: "sender_mismatch".into(),
            vi: format!(
                "Gói tin ghi đơn vị gửi (From/OrganId) là \"{from}\", nhưng bộ chuyển đổi này là của đơn vị {unit}. Hãy sửa From/OrganId."
            ),
            en: format!(
                "The package names \"{from}\" as sender (From/OrganId) but this adapter is unit {unit}'s. Fix From/OrganId."
            ),
            details: Vec::new(),
        };
        return Err(report);
    }
    let document_id = match &parsed.package {
        edxml::Package::Document(d) => d.document_id.clone().unwrap_or_default(),
        edxml::Package::Status(s) => s.response_for.document_id.clone().unwrap_or_default(),
    };
    let signed = match dsig::sign(bytes, &inner.key, dsig::Role::Sender) {
        Ok(s) => s,
        // Signed by the DMS itself: sent as it is; the relay checks that signature.
        Err(e) if e.code == "DSIG_ALREADY_SIGNED" => bytes.to_vec(),
        Err(e) => {
            let report = Report {
                code: e.code.to_lowercase(),
                vi: format!("Không ký được gói tin: {}", e.text(true)),
                en: format!("The package cannot be signed: {}", e.text(false)),
                details: Vec::new(),
            };
            return Err(report);
        }
    };
    Ok((document_id, signed))
}

fn pending_path(adapter: &Adapter, seq: u64) -> PathBuf {
    adapter
        .inner
        .config
        .data_dir
        .join("pending")
        .join(format!("{seq}.edxml"))
}

fn move_to_pending(adapter: &Adapter, path: &Path, seq: u64) -> Result<(), AdapterError> {
    let to = pending_path(adapter, seq);
    std::fs::rename(path, &to).map_err(AdapterError::io("moving the file", path))
}

/// Why a package was not sent, for `failed/<name>.error.txt`.
#[derive(Debug, Clone)]
pub struct Report {
    pub code: String,
    pub vi: String,
    pub en: String,
    /// One line per problem (line:column path [code] message).
    pub details: Vec<String>,
}

impl Report {
    fn text(&self, name: &str) -> String {
        let mut s = format!(
            "Gói tin \"{name}\" KHÔNG được gửi đi.\nLý do (mã {}): {}\n",
            self.code, self.vi
        );
        if !self.details.is_empty() {
            s.push_str("Chi tiết:\n");
            for d in &self.details {
                s.push_str(&format!("  {d}\n"));
            }
        }
        s.push_str(
            "Việc cần làm: sửa gói tin theo lý do trên rồi thả lại vào thư mục outbox/ (gói tin giữ nguyên DocumentId nếu chưa từng được trục nhận).\n\n",
        );
        s.push_str(&format!(
            "The package \"{name}\" was NOT sent.\nReason (code {}): {}\n",
            self.code, self.en
        ));
        if !self.details.is_empty() {
            s.push_str("Details:\n");
            for d in &self.details {
                s.push_str(&format!("  {d}\n"));
            }
        }
        s.push_str(
            "What to do: fix the package as the reason says and drop it into outbox/ again.\n",
        );
        s
    }
}

/// A file that never entered the local outbox: straight to `failed/` with its report.
fn fail_file(
    adapter: &Adapter,
    path: &Path,
    name: &str,
    bytes: &[u8],
    report: &Report,
) -> Result<(), AdapterError> {
    let failed = &adapter.inner.config.folder.failed;
    let seq = adapter.inner.state.store.generate_id()?;
    let dest = disk::free_name(failed, name, seq);
    write_report(&dest, report, name)?;
    disk::write_atomic(&dest, bytes).map_err(AdapterError::io("writing", &dest))?;
    std::fs::remove_file(path).map_err(AdapterError::io("removing", path))?;
    tracing::warn!(file = %name, code = %report.code, "package refused before sending");
    Ok(())
}

fn write_report(dest: &Path, report: &Report, name: &str) -> Result<(), AdapterError> {
    let txt = with_suffix(dest, ".error.txt");
    disk::write_atomic(&txt, report.text(name).as_bytes())
        .map_err(AdapterError::io("writing", &txt))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Starts one delivery task per package of the local outbox, at most `parallel` at a time.
pub async fn send_loop(adapter: Adapter) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(inner.config.parallel));
    let mut tasks: JoinSet<Result<(), AdapterError>> = JoinSet::new();
    loop {
        let woken = inner.wake.notified();
        for seq in inner.state.pending()? {
            let fresh = inner
                .in_flight
                .lock()
                .map(|mut s| s.insert(seq))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    reap(done)?;
                    permits.clone().acquire_owned().await
                }
            };
            let Ok(permit) = permit else {
                return Ok(());
            };
            let a = adapter.clone();
            tasks.spawn(async move {
                let r = deliver(&a, seq).await;
                if let Ok(mut s) = a.inner.in_flight.lock() {
                    s.remove(&seq);
                }
                drop(permit);
                r
            });
        }
        tokio::select! {
            () = woken => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => reap(done)?,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

fn reap(
    done: Result<Result<(), AdapterError>, tokio::task::JoinError>,
) -> Result<(), AdapterError> {
    match done {
        Ok(Err(e @ AdapterError::Store(_))) => Err(e),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "delivery step failed; will retry");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Submits one package until the relay accepts or refuses it, then records the outcome.
async fn deliver(adapter: &Adapter, seq: u64) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let Some((out, body)) = inner.state.outgoing(seq)? else {
        return Ok(());
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        match inner.client.submit(body.clone()).await {
            Ok(accepted) => return finish_sent(adapter, &out, &accepted).await,
            Err(e)
                if e.retryable() && now_unix() < out.taken_at + inner.config.give_up.as_secs() =>
            {
                tracing::warn!(doc_id = %out.document_id, seq, code = e.code(), error = %e, "submit failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.config.max_backoff);
            }
            Err(e) => {
                // The English half of the report: a refused submission changes nothing at the
                // relay, so asking again in English is safe.
                let en = match &e {
                    ClientError::Api { .. } => match inner.client_en.submit(body.clone()).await {
                        Err(en @ ClientError::Api { .. }) => en,
                        _ => e_clone_en(&e),
                    },
                    _ => e_clone_en(&e),
                };
                let details = match &e {
                    ClientError::Api { problems, .. } => problems
                        .iter()
                        .map(|p| {
                            format!(
                                "{}:{} {} [{}] {}",
                                p.line.unwrap_or(0),
                                p.column.unwrap_or(0),
                                p.path.as_deref().unwrap_or(""),
                                p.code,
                                p.message
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let report = Report {
                    code: e.code().to_owned(),
                    vi: api_message(&e, false),
                    en: api_message(&en, true),
                    details,
                };
                return finish_failed(adapter, &out, &body, &report).await;
            }
        }
    }
}

fn e_clone_en(e: &ClientError) -> ClientError {
    ClientError::Network {
        detail: e.message_en(),
        timeout: false,
    }
}

fn api_message(e: &ClientError, english: bool) -> String {
    match e {
        ClientError::Api { message, .. } => message.clone(),
        ClientError::Network { detail, .. } if english => detail.clone(),
        other if english => other.message_en(),
        other => other.message_vi(),
    }
}

/// Accepted: `sent/<name>.result.json`, then the file into `sent/`, then out of the outbox.
async fn finish_sent(
    adapter: &Adapter,
    out: &Outgoing,
    accepted: &truc_client::Accepted,
) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let result = serde_json::json!({
        "id": accepted.id,
        "document_id": accepted.document_id,
        "recipients": accepted.recipients.iter().map(|r| serde_json::json!({"unit": r.unit, "state": r.state})).collect::<Vec<_>>(),
        "duplicate": accepted.duplicate,
        "sent_at": now_unix(),
    });
    if out.source == "file" {
        let pending = pending_path(adapter, out.seq);
        let sent = inner.config.folder.sent.clone();
        let (name, seq) = (out.name.clone(), out.seq);
        let text = serde_json::to_vec_pretty(&result).unwrap_or_default();
        crate::inbound::blocking(move || {
            if pending.exists() {
                let dest = disk::free_name(&sent, &name, seq);
                let json = with_suffix(&dest, ".result.json");
                disk::write_atomic(&json, &text).map_err(AdapterError::io("writing", &json))?;
                std::fs::rename(&pending, &dest).map_err(AdapterError::io("moving", &pending))?;
                disk::sync_dir(&sent).map_err(AdapterError::io("syncing", &sent))?;
            }
            Ok(())
        })
        .await?;
    }
    let outcome = (out.source == "http").then(|| Outcome {
        state: "sent".into(),
        document_id: accepted.document_id.clone(),
        id: Some(accepted.id.clone()),
        recipients: accepted
            .recipients
            .iter()
            .map(|r| (r.unit.clone(), r.state.clone()))
            .collect(),
        duplicate: accepted.duplicate,
        code: None,
        message_vi: None,
        message_en: None,
        details: Vec::new(),
    });
    inner.state.done(out, outcome.as_ref())?;
    inner.state.store.flush().await?;
    tracing::info!(doc_id = %out.document_id, id = %accepted.id, duplicate = accepted.duplicate, source = %out.source, "accepted by the relay");
    Ok(())
}

/// Refused (or given up): the file and its report into `failed/`, then out of the outbox.
async fn finish_failed(
    adapter: &Adapter,
    out: &Outgoing,
    body: &[u8],
    report: &Report,
) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let failed = &inner.config.folder.failed;
    let pending = pending_path(adapter, out.seq);
    if out.source == "file" {
        if pending.exists() {
            let dest = disk::free_name(failed, &out.name, out.seq);
            write_report(&dest, report, &out.name)?;
            std::fs::rename(&pending, &dest).map_err(AdapterError::io("moving", &pending))?;
            disk::sync_dir(failed).map_err(AdapterError::io("syncing", failed))?;
        }
    } else if out.source == "http" {
        // Kept for the DMS to ask (GET /v1/packages/{local_id}).
    } else {
        // An automatic receipt: keep the signed status for the record.
        let dest = failed.join(format!("{}-{}.edxml", out.source, out.seq));
        write_report(&dest, report, &out.name)?;
        disk::write_atomic(&dest, body).map_err(AdapterError::io("writing", &dest))?;
    }
    let outcome = (out.source == "http").then(|| Outcome {
        state: "failed".into(),
        document_id: out.document_id.clone(),
        id: None,
        recipients: Vec::new(),
        duplicate: false,
        code: Some(report.code.clone()),
        message_vi: Some(report.vi.clone()),
        message_en: Some(report.en.clone()),
        details: report.details.clone(),
    });
    inner.state.done(out, outcome.as_ref())?;
    inner.state.store.flush().await?;
    tracing::warn!(doc_id = %out.document_id, code = %report.code, source = %out.source, "refused by the relay");
    Ok(())
}
