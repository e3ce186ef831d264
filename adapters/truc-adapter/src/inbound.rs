//! Folder mode, receiving: long-poll the relay inbox; each package lands in `inbox/` (documents)
//! or `receipts/` (status packages) whole and exactly once; the relay hears the ack only after
//! the file is durable; each arrived document is answered with a signed 01.
//!
//! Never twice, even across a kill -9 at any point: (1) the package is written to a hidden temp
//! file and fsynced; (2) `in/<id>` = `writing` (with the signed 01, if any) is flushed; (3) the
//! temp file is renamed into place and the folder fsynced; (4) `in/<id>` = `written` and the 01
//! enters the local outbox, in one batch, flushed; (5) ack. When the relay offers the package
//! again: no record → start over (at most a temp file was written); `writing` → the rename
//! happened iff the temp file is gone, so it is redone or not, never duplicated; `written` → ack.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use store::Batch;
use truc_client::InboxItem;

use crate::disk;
use crate::state::{Received, State, arrived_key, in_key};
use crate::{Adapter, AdapterError, now_unix, receipt};

pub async fn receive_loop(adapter: Adapter) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let mut backoff = Duration::from_millis(500);
    loop {
        match inner.client.inbox(inner.config.wait, 32).await {
            Ok(items) => {
                backoff = Duration::from_millis(500);
                // The items of one poll are distinct ids: received side by side, so their
                // fsyncs share group-commit rounds. The next poll waits for all of them.
                let mut tasks = tokio::task::JoinSet::new();
                for item in items {
                    let a = adapter.clone();
                    tasks.spawn(async move {
                        let r = receive(&a, &item).await;
                        (item, r)
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    match done {
                        Ok((_, Ok(()))) => {}
                        Ok((_, Err(e @ AdapterError::Store(_)))) => return Err(e),
                        Ok((item, Err(e))) => {
                            // Left unacked: the relay offers it again after the lease.
                            tracing::warn!(id = %item.id, error = %e, "receiving failed; will retry");
                        }
                        Err(e) => tracing::warn!(error = %e, "receiving task failed"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(code = e.code(), error = %e, "inbox poll failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.config.max_backoff);
            }
        }
    }
}

async fn receive(adapter: &Adapter, item: &InboxItem) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let state = &inner.state;
    match state.received(&item.id)? {
        Some(r) if r.state == "written" => {}
        Some(r) => {
            land(adapter, &item.id, &r).await?;
        }
        None => {
            let bytes = inner.client.fetch(&item.id).await?;
            let Some((dir, arrived)) = check(adapter, item, &bytes)? else {
                // Refused locally (bad signature): reported in failed/, acked so it stops coming.
                inner.client.ack(&item.id).await?;
                return Ok(());
            };
            let file = dir.join(format!("{}.edxml", disk::safe_segment(&item.id)));
            let temp = disk::temp_beside(&file);
            let t = temp.clone();
            blocking(move || {
                disk::write_durable(&t, &bytes).map_err(AdapterError::io("writing", &t))
            })
            .await?;
            let r = Received {
                state: "writing".into(),
                file: file.display().to_string(),
                temp: temp.display().to_string(),
            };
            let mut b = Batch::default();
            b.insert(in_key(&item.id), State::received_value(&r)?);
            if let Some(a) = &arrived {
                b.insert(arrived_key(&item.id), a);
            }
            state.tree.apply(b)?;
            state.store.flush().await?;
            land(adapter, &item.id, &r).await?;
        }
    }
    inner.client.ack(&item.id).await?;
    tracing::info!(id = %item.id, kind = %item.kind, from = %item.from, doc_id = %item.document_id, "received");
    Ok(())
}

/// Steps 3 and 4: the rename (unless it already happened), then `written` + the 01, flushed.
async fn land(adapter: &Adapter, id: &str, r: &Received) -> Result<(), AdapterError> {
    let inner = &adapter.inner;
    let state = &inner.state;
    let temp = PathBuf::from(&r.temp);
    let file = PathBuf::from(&r.file);
    blocking(move || {
        if temp.exists() {
            std::fs::rename(&temp, &file).map_err(AdapterError::io("moving", &temp))?;
            if let Some(dir) = file.parent() {
                disk::sync_dir(dir).map_err(AdapterError::io("syncing", dir))?;
            }
        }
        Ok(())
    })
    .await?;
    let written = Received {
        state: "written".into(),
        ..r.clone()
    };
    let mut b = Batch::default();
    b.insert(in_key(id), State::received_value(&written)?);
    let mut queued = false;
    if let Some(signed) = state.tree.get(arrived_key(id))? {
        b.remove(arrived_key(id));
        let seq = state.store.generate_id()?;
        let out = crate::state::Outgoing {
            seq,
            source: "arrived".into(),
            name: format!("01-{}", disk::safe_segment(id)),
            document_id: String::new(),
            taken_at: now_unix(),
        };
        state.enqueue(b, &out, &signed)?;
        queued = true;
    } else {
        state.tree.apply(b)?;
    }
    state.store.flush().await?;
    if queued {
        inner.wake.notify_one();
    }
    Ok(())
}

/// Where a delivered package goes, and the signed 01 that answers it (documents only).
type Landing = (PathBuf, Option<Vec<u8>>);

/// Verifies what the relay delivered and picks its folder; for a document, also makes and signs
/// its 01 (when `send_arrived`). `None`: refused, reported in `failed/`.
fn check(
    adapter: &Adapter,
    item: &InboxItem,
    bytes: &[u8],
) -> Result<Option<Landing>, AdapterError> {
    let inner = &adapter.inner;
    let folders = &inner.config.folder;
    let report = dsig::verify(bytes, &inner.trust, SystemTime::now());
    if !report.is_valid() {
        let mut reasons: Vec<String> = report
            .failures
            .iter()
            .chain(report.signatures.iter().flat_map(|s| s.failures.iter()))
            .map(|f| format!("[{}] {} / {}", f.code, f.text(true), f.text(false)))
            .collect();
        if reasons.is_empty() {
            reasons.push("no signature / không có chữ ký".into());
        }
        let text = format!(
            "Gói tin {} nhận từ trục (đơn vị gửi {}, DocumentId {}) có chữ ký không hợp lệ nên KHÔNG được đưa vào inbox/.\nThe package {} received from the relay (sender {}, DocumentId {}) has an invalid signature and was NOT put into inbox/.\n{}\n",
            item.id,
            item.from,
            item.document_id,
            item.id,
            item.from,
            item.document_id,
            reasons.join("\n")
        );
        let dest = folders
            .failed
            .join(format!("received-{}.edxml", disk::safe_segment(&item.id)));
        let mut txt = dest.as_os_str().to_owned();
        txt.push(".error.txt");
        let txt = PathBuf::from(txt);
        disk::write_atomic(&txt, text.as_bytes()).map_err(AdapterError::io("writing", &txt))?;
        disk::write_atomic(&dest, bytes).map_err(AdapterError::io("writing", &dest))?;
        tracing::warn!(id = %item.id, "delivered package failed signature verification");
        return Ok(None);
    }
    match edxml::read(bytes, &edxml::Limits::default()) {
        Ok(parsed) => match parsed.package {
            edxml::Package::Document(doc) => {
                let arrived = if inner.config.send_arrived {
                    let unsigned = receipt::arrived(&inner.config.unit, &doc, now_unix() as i64);
                    Some(
                        dsig::sign(&unsigned, &inner.key, dsig::Role::Sender)
                            .map_err(|e| AdapterError::Identity(e.to_string()))?,
                    )
                } else {
                    None
                };
                Ok(Some((folders.inbox.clone(), arrived)))
            }
            edxml::Package::Status(_) => Ok(Some((folders.receipts.clone(), None))),
        },
        // Sealed by the relay yet unreadable here: hand it to the DMS anyway, without a 01.
        Err(_) => Ok(Some((folder_for_kind(folders, &item.kind), None))),
    }
}

fn folder_for_kind(folders: &crate::Folders, kind: &str) -> PathBuf {
    let dir: &Path = if kind == "status" {
        &folders.receipts
    } else {
        &folders.inbox
    };
    dir.to_path_buf()
}

/// Runs file I/O (fsyncs) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdapterError> + Send + 'static,
) -> Result<T, AdapterError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(AdapterError::Io {
            what: "an I/O task",
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}
