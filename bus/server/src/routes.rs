//! The routes: one list ([`ROUTES`]), one handler each. Every `/v1` handler takes a [`Caller`]
//! first, so an unauthenticated request is refused before its query or body is looked at.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::Stop;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::tls::PeerCert;

/// Every route the edge serves, as `(method, path template)` exactly as in `schemas/openapi.yaml`.
/// The router is built from this list; a test checks the OpenAPI file names the same set.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/packages"),
    ("GET", "/v1/packages"),
    ("GET", "/v1/packages/{id}"),
    ("GET", "/v1/inbox"),
    ("GET", "/v1/inbox/{id}"),
    ("POST", "/v1/inbox/{id}/ack"),
    ("GET", "/v1/units"),
    ("GET", "/v1/units/{code}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
];

/// Bytes allowed above the relay's package limit before the edge itself answers 413, so that a
/// package just over the limit gets the relay's own, more precise, refusal.
const BODY_SLACK: usize = 64 * 1024;
/// Longest long-poll.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
const DEFAULT_INBOX_LIMIT: usize = 100;
const MAX_INBOX_LIMIT: usize = 1000;
const DEFAULT_LIST_LIMIT: usize = 50;
const MAX_LIST_LIMIT: usize = 500;
const DEFAULT_UNITS_LIMIT: usize = 20;
const MAX_UNITS_LIMIT: usize = 200;
/// Bound on the `/healthz` store probe.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared by every handler; cloned per request (all fields are handles).
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    relay: relay::Relay,
    metrics: Arc<Metrics>,
    /// Flips when the server shuts down: long-polls answer at once.
    stop: watch::Receiver<Stop>,
    body_limit: usize,
}

/// The API as an axum router, for in-process use (the portal). Without TLS in front no request
/// carries a client certificate, so `/v1` answers 401; `/healthz` and `/metrics` work.
pub fn router(relay: relay::Relay) -> Router {
    // A sender that is dropped at once: `wait_for` then fails immediately, which the inbox
    // treats as "not stopping" (see `inbox`).
    let (_tx, rx) = watch::channel(Stop::Running);
    router_with(relay, rx)
}

pub(crate) fn router_with(relay: relay::Relay, stop: watch::Receiver<Stop>) -> Router {
    let body_limit = relay.config().limits.max_bytes.saturating_add(BODY_SLACK);
    let metrics = Arc::new(Metrics::new(relay.clone()));
    let state = AppState {
        relay,
        metrics: metrics.clone(),
        stop,
        body_limit,
    };
    let mut router: Router<AppState> = Router::new();
    let mut paths: Vec<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    paths.dedup();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let mut methods: Option<MethodRouter<AppState>> = None;
        for (method, _) in ROUTES.iter().filter(|(_, p)| *p == path) {
            if let Some(h) = handler(method, path) {
                methods = Some(match methods {
                    Some(m) => m.merge(h),
                    None => h,
                });
            }
        }
        if let Some(m) = methods {
            router = router.route(path, m);
        }
    }
    router
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(crate::error::render))
        .layer(middleware::from_fn_with_state(
            metrics,
            crate::metrics::observe,
        ))
        .with_state(state)
}

fn handler(method: &str, path: &str) -> Option<MethodRouter<AppState>> {
    let get = MethodFilter::GET;
    let post = MethodFilter::POST;
    Some(match (method, path) {
        ("POST", "/v1/packages") => on(post, submit),
        ("GET", "/v1/packages") => on(get, packages),
        ("GET", "/v1/packages/{id}") => on(get, tracking),
        ("GET", "/v1/inbox") => on(get, inbox),
        ("GET", "/v1/inbox/{id}") => on(get, fetch),
        ("POST", "/v1/inbox/{id}/ack") => on(post, ack),
        ("GET", "/v1/units") => on(get, units),
        ("GET", "/v1/units/{code}") => on(get, unit),
        ("GET", "/healthz") => on(get, healthz),
        ("GET", "/metrics") => on(get, metrics),
        _ => return None,
    })
}

/// The authenticated unit: the TLS client certificate's subject CN, accepted by the relay.
#[derive(Debug)]
pub(crate) struct Caller(directory::Unit);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let peer = parts
            .extensions
            .get::<PeerCert>()
            .ok_or_else(ApiError::client_certificate_required)?;
        let unit = state.relay.authenticate(&peer.cn, &peer.der)?;
        Ok(Caller(unit))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_query(&e.body_text()))
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::bad_path(&e.body_text()))
}

/// Runs a blocking relay call (store reads, archive file reads) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, relay::RelayError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "blocking relay call failed");
            Err(ApiError::internal())
        }
    }
}

async fn submit(
    State(s): State<AppState>,
    Caller(unit): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(s.body_limit.saturating_sub(BODY_SLACK))
        } else {
            ApiError::bad_body(&e.body_text())
        }
    })?;
    let accepted = s.relay.submit(&unit.code, &body).await?;
    let location = HeaderValue::from_str(&format!("/v1/packages/{}", accepted.id)).ok();
    let duplicate = accepted.duplicate;
    let mut res = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if let Some(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    if duplicate {
        res.headers_mut()
            .insert("truc-duplicate", HeaderValue::from_static("true"));
    }
    Ok(res)
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    /// Seconds to wait for the first item (0 = answer at once; at most 60).
    wait: Option<u64>,
    limit: Option<usize>,
}

async fn inbox(
    State(s): State<AppState>,
    Caller(unit): Caller,
    q: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let limit = q
        .limit
        .unwrap_or(DEFAULT_INBOX_LIMIT)
        .clamp(1, MAX_INBOX_LIMIT);
    let mut stop = s.stop.clone();
    let items = if wait.is_zero() || *stop.borrow() != Stop::Running {
        s.relay.inbox(&unit.code, limit, Duration::ZERO).await?
    } else {
        tokio::select! {
            r = s.relay.inbox(&unit.code, limit, wait) => r?,
            // Shutting down: answer an empty page now (a leased item would only wait out its
            // lease); a closed channel (no server around the router) means "never".
            Ok(_) = stop.wait_for(|v| *v != Stop::Running) => Vec::new(),
        }
    };
    Ok(Json(json!({ "items": items })).into_response())
}

async fn fetch(
    State(s): State<AppState>,
    Caller(unit): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let body = s.relay.fetch_body(&unit.code, &id).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        )],
        body,
    )
        .into_response())
}

async fn ack(
    State(s): State<AppState>,
    Caller(unit): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    s.relay.ack(&unit.code, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn tracking(
    State(s): State<AppState>,
    Caller(unit): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let relay = s.relay.clone();
    let t = blocking(move || relay.tracking(&unit.code, &id)).await?;
    Ok(Json(t).into_response())
}

#[derive(Debug, Deserialize)]
struct PackagesQuery {
    role: Option<relay::Role>,
    state: Option<String>,
    q: Option<String>,
    /// RFC 3339 time or a `YYYY-MM-DD` date (UTC midnight).
    since: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

fn parse_since(s: &str) -> Result<SystemTime, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(s, &Rfc3339).or_else(|_| {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, &fmt).map(|d| d.midnight().assume_utc())
    });
    match parsed {
        Ok(t) => Ok(SystemTime::from(t)),
        Err(_) => Err(ApiError::bad_query(&format!(
            "since={s}: expected RFC 3339 (2026-11-23T09:30:00Z) or YYYY-MM-DD"
        ))),
    }
}

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

async fn packages(
    State(s): State<AppState>,
    Caller(unit): Caller,
    q: Result<Query<PackagesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let since = match blank_to_none(q.since) {
        Some(v) => Some(parse_since(&v)?),
        None => None,
    };
    let limit = q
        .limit
        .unwrap_or(DEFAULT_LIST_LIMIT)
        .clamp(1, MAX_LIST_LIMIT);
    let pq = relay::PackageQuery {
        role: q.role.unwrap_or_default(),
        state: blank_to_none(q.state),
        q: blank_to_none(q.q),
        since,
        limit,
        after: blank_to_none(q.after),
    };
    let relay = s.relay.clone();
    let items = blocking(move || relay.packages(&unit.code, &pq)).await?;
    // A full page may have more behind it: pass `after=next` for the next one.
    let next = (items.len() == limit)
        .then(|| items.last().map(|i| i.id.clone()))
        .flatten();
    Ok(Json(json!({ "items": items, "next": next })).into_response())
}

#[derive(Debug, Deserialize)]
struct UnitsQuery {
    q: Option<String>,
    limit: Option<usize>,
}

async fn units(
    State(s): State<AppState>,
    Caller(_): Caller,
    q: Result<Query<UnitsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let limit = q
        .limit
        .unwrap_or(DEFAULT_UNITS_LIMIT)
        .clamp(1, MAX_UNITS_LIMIT);
    let text = q.q.unwrap_or_default();
    let relay = s.relay.clone();
    let items = blocking(move || Ok(relay.directory().search(&text, limit)?)).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

async fn unit(
    State(s): State<AppState>,
    Caller(_): Caller,
    code: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let code = path(code)?;
    let relay = s.relay.clone();
    let lookup = code.clone();
    let found = blocking(move || Ok(relay.directory().resolve(&lookup)?)).await?;
    match found {
        Some(u) => Ok(Json(u).into_response()),
        None => Err(ApiError::not_found("đơn vị", "unit", &code)),
    }
}

async fn healthz(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.relay.store().clone();
    let probe = tokio::task::spawn_blocking(move || {
        store.tree("server_health").and_then(|t| t.get(b"probe"))
    });
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(Ok(_))) => Ok(Json(json!({ "status": "ok" })).into_response()),
        outcome => {
            let detail = match outcome {
                Ok(Ok(Err(e))) => e.message_en(),
                Err(_) => "the store did not answer in time".to_owned(),
                _ => "the store probe failed".to_owned(),
            };
            tracing::warn!(%detail, "health check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "Kho dữ liệu của trục không trả lời. Hãy báo quản trị trục.",
                "The relay's store does not answer. Tell the relay operator.",
            ))
        }
    }
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = crate::metrics::wants_openmetrics(accept);
    let text = s
        .metrics
        .render(&s.relay, openmetrics)
        .await
        .map_err(|_| ApiError::internal())?;
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        text,
    )
        .into_response())
}
