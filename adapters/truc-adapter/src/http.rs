//! Local HTTP mode (`schemas/adapter-openapi.yaml`): for a DMS that calls an API instead of
//! writing files. Plain HTTP on a loopback address only; the DMS needs no certificate and no
//! crypto. It is a second door onto the same machinery as folder mode:
//!
//! - `POST /v1/packages` puts the package in the durable local outbox (checked, signed, flushed)
//!   and answers `202 {"local_id","document_id"}`; `GET /v1/packages/{local_id}` says `queued`,
//!   `sent` (relay id, recipients) or `failed` (code and reason).
//! - `POST /v1/status` makes, signs and queues a status package (03 registered, 02 rejected, …).
//! - `GET /v1/inbox`, `GET /v1/inbox/{id}`, `POST /v1/inbox/{id}/ack` read the packages the
//!   adapter received (the files of `inbox/` and `receipts/`, written exactly once); an ack
//!   removes the file.
//! - `GET /v1/tracking/{relay_id}` asks the relay for a package's per-recipient timeline.
//!
//! Errors are JSON `{"code","message"}`, Vietnamese unless `Accept-Language: en` or `?lang=en`.

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use store::Batch;

use crate::outbound::{Report, admit};
use crate::state::Outgoing;
use crate::{Adapter, AdapterError, now_unix};

/// Every route, for the OpenAPI test.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/packages"),
    ("GET", "/v1/packages/{local_id}"),
    ("POST", "/v1/status"),
    ("GET", "/v1/inbox"),
    ("GET", "/v1/inbox/{id}"),
    ("POST", "/v1/inbox/{id}/ack"),
    ("GET", "/v1/tracking/{relay_id}"),
];

pub fn router(adapter: Adapter) -> axum::Router {
    axum::Router::new()
        .route("/v1/packages", post(submit))
        .route("/v1/packages/{local_id}", get(outcome))
        .route("/v1/status", post(status))
        .route("/v1/inbox", get(inbox))
        .route("/v1/inbox/{id}", get(fetch))
        .route("/v1/inbox/{id}/ack", post(ack))
        .route("/v1/tracking/{relay_id}", get(tracking))
        .layer(axum::extract::DefaultBodyLimit::max(100 * 1024 * 1024))
        .with_state(adapter)
}

#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

fn english(headers: &HeaderMap, q: &LangQuery) -> bool {
    if let Some(l) = &q.lang {
        return l.starts_with("en");
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("en"))
}

struct ApiError {
    status: StatusCode,
    code: String,
    vi: String,
    en: String,
    details: Vec<String>,
    english: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.english { self.en } else { self.vi };
        let mut body = json!({"code": self.code, "message": message});
        if !self.details.is_empty() {
            body["details"] = json!(self.details);
        }
        (self.status, Json(body)).into_response()
    }
}

fn refused(report: Report, english: bool) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: report.code,
        vi: report.vi,
        en: report.en,
        details: report.details,
        english,
    }
}

fn internal(e: AdapterError, english: bool) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: e.code().to_owned(),
        vi: e.message_vi(),
        en: e.message_en(),
        details: Vec::new(),
        english,
    }
}

fn not_found(what_vi: &str, what_en: &str, english: bool) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        vi: format!("Không có {what_vi}."),
        en: format!("No such {what_en}."),
        details: Vec::new(),
        english,
    }
}

/// Checked, signed and durable in the local outbox before the answer.
async fn queue(
    adapter: &Adapter,
    bytes: &[u8],
    name: &str,
    english: bool,
) -> Result<Response, ApiError> {
    let (document_id, signed) = admit(adapter, bytes).map_err(|r| refused(r, english))?;
    let state = &adapter.inner.state;
    let seq = state
        .store
        .generate_id()
        .map_err(|e| internal(e.into(), english))?;
    let out = Outgoing {
        seq,
        source: "http".into(),
        name: name.to_owned(),
        document_id: document_id.clone(),
        taken_at: now_unix(),
    };
    state
        .enqueue(Batch::default(), &out, &signed)
        .map_err(|e| internal(e.into(), english))?;
    state
        .store
        .flush()
        .await
        .map_err(|e| internal(e.into(), english))?;
    adapter.inner.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"local_id": seq.to_string(), "document_id": document_id, "state": "queued"})),
    )
        .into_response())
}

async fn submit(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    queue(&adapter, &body, "http", english(&headers, &q)).await
}

async fn outcome(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Path(local_id): Path<String>,
) -> Result<Response, ApiError> {
    let en = english(&headers, &q);
    let missing = || not_found("gói tin này ở bộ chuyển đổi", "package at this adapter", en);
    let seq: u64 = local_id.parse().map_err(|_| missing())?;
    let state = &adapter.inner.state;
    if state.is_queued(seq).map_err(|e| internal(e.into(), en))? {
        return Ok(Json(json!({"local_id": local_id, "state": "queued"})).into_response());
    }
    let Some(o) = state.outcome(seq).map_err(|e| internal(e.into(), en))? else {
        return Err(missing());
    };
    let mut body = json!({
        "local_id": local_id,
        "state": o.state,
        "document_id": o.document_id,
    });
    if let Some(id) = o.id {
        body["id"] = json!(id);
        body["duplicate"] = json!(o.duplicate);
        body["recipients"] = json!(
            o.recipients
                .iter()
                .map(|(u, s)| json!({"unit": u, "state": s}))
                .collect::<Vec<_>>()
        );
    }
    if let Some(code) = o.code {
        body["code"] = json!(code);
        body["message"] = json!(if en { o.message_en } else { o.message_vi });
        body["details"] = json!(o.details);
    }
    Ok(Json(body).into_response())
}

/// `POST /v1/status` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    /// The unit that sent the document.
    to: String,
    /// The document's DocumentId.
    document_id: String,
    /// `02`, `03`, `04`, `05`, `06`, `13`, `15`, `16` (`01` is sent by the adapter itself).
    status_code: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    staff: Option<String>,
    #[serde(default)]
    department: Option<String>,
}

async fn status(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let en = english(&headers, &q);
    let req: StatusRequest = serde_json::from_slice(&body).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "bad_request".into(),
        vi: format!(
            "Thân yêu cầu không đúng dạng JSON cần có ({e}). Cần: to, document_id, status_code; tùy chọn: description, staff, department."
        ),
        en: format!(
            "The body is not the expected JSON ({e}). Needed: to, document_id, status_code; optional: description, staff, department."
        ),
        details: Vec::new(),
        english: en,
    })?;
    let code = edxml::StatusCode::parse(&req.status_code);
    if matches!(code, edxml::StatusCode::Other(_)) {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_status_code".into(),
            vi: format!(
                "Mã trạng thái \"{}\" không có trong danh mục (01–06, 13, 15, 16).",
                req.status_code
            ),
            en: format!(
                "Status code \"{}\" is not in the list (01–06, 13, 15, 16).",
                req.status_code
            ),
            details: Vec::new(),
            english: en,
        });
    }
    let unsigned = crate::receipt::status(
        &adapter.inner.config.unit,
        crate::receipt::StatusSpec {
            to: req.to,
            document_id: req.document_id,
            code,
            description: req.description,
            staff: req.staff,
            department: req.department,
        },
        now_unix() as i64,
    );
    queue(&adapter, &unsigned, "status", en).await
}

/// A received package, as a file of `inbox/` or `receipts/`.
fn received_files(adapter: &Adapter) -> Vec<(String, &'static str, PathBuf)> {
    let folders = &adapter.inner.config.folder;
    let mut out = Vec::new();
    for (dir, kind) in [(&folders.inbox, "package"), (&folders.receipts, "status")] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(id) = name.strip_suffix(".edxml") {
                out.push((id.to_owned(), kind, e.path()));
            }
        }
    }
    out
}

async fn inbox(State(adapter): State<Adapter>) -> Response {
    let mut items: Vec<(std::time::SystemTime, serde_json::Value)> = received_files(&adapter)
        .into_iter()
        .filter_map(|(id, kind, path)| {
            let meta = std::fs::metadata(&path).ok()?;
            let at = meta.modified().ok()?;
            Some((at, json!({"id": id, "kind": kind, "size": meta.len()})))
        })
        .collect();
    items.sort_by_key(|(at, _)| *at);
    Json(json!({"items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>()})).into_response()
}

fn find(adapter: &Adapter, id: &str) -> Option<PathBuf> {
    received_files(adapter)
        .into_iter()
        .find(|(i, _, _)| i == id)
        .map(|(_, _, p)| p)
}

async fn fetch(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let en = english(&headers, &q);
    let path = find(&adapter, &id)
        .ok_or_else(|| not_found("gói tin này trong hộp thư", "package in the inbox", en))?;
    let bytes = std::fs::read(&path)
        .map_err(|_| not_found("gói tin này trong hộp thư", "package in the inbox", en))?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], bytes).into_response())
}

/// Idempotent: acking a package already acked is a 204 too.
async fn ack(State(adapter): State<Adapter>, Path(id): Path<String>) -> Response {
    if let Some(path) = find(&adapter, &id) {
        let _ = std::fs::remove_file(&path);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn tracking(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Path(relay_id): Path<String>,
) -> Result<Response, ApiError> {
    let en = english(&headers, &q);
    let client = if en {
        &adapter.inner.client_en
    } else {
        &adapter.inner.client
    };
    match client.tracking(&relay_id).await {
        Ok(t) => Ok(Json(json!({
            "id": t.id,
            "kind": t.kind,
            "document_id": t.document_id,
            "from": t.from,
            "subject": t.subject,
            "accepted_at": t.accepted_at,
            "recipients": t.recipients.iter().map(|r| json!({
                "unit": r.unit,
                "state": r.state,
                "delivered": r.delivered,
                "events": r.events.iter().map(|e| json!({
                    "at": e.at,
                    "state": e.state,
                    "status_code": e.status_code,
                    "description": e.description,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }))
        .into_response()),
        Err(e) => Err(ApiError {
            status: StatusCode::from_u16(e.status().unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            code: e.code().to_owned(),
            vi: e.message_vi(),
            en: e.message_en(),
            details: Vec::new(),
            english: en,
        }),
    }
}

/// Serves local HTTP mode on `listener` until `shutdown`.
pub async fn serve(
    adapter: Adapter,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AdapterError> {
    let addr = listener.local_addr().ok();
    axum::serve(listener, router(adapter))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| AdapterError::Io {
            what: "the local HTTP listener",
            path: PathBuf::from(addr.map(|a| a.to_string()).unwrap_or_default()),
            source,
        })
}
