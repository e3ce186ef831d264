//! The operator page (`/portal/ops`), its JSON twin (`/portal/ops/queues`, contract in the
//! crate documentation) and the re-drive action. Operators only; a clerk gets 403.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::Portal;
use crate::pages::{Check, check_password};
use crate::session::same;
use crate::text::Lang;
use crate::web::{self, Req, Signed, forbidden_page, local_time, render, with_param};

/// Mailbox rows the page and the JSON show unless `top` says otherwise.
pub const DEFAULT_TOP: usize = 20;

#[derive(Debug, Deserialize)]
pub(crate) struct OpsQuery {
    top: Option<usize>,
    live: Option<String>,
    done: Option<u64>,
    unit: Option<String>,
}

/// Seconds as "3 h 05 min" / "42 s".
fn age(s: Option<u64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s < 60 => format!("{s} s"),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) if s < 86_400 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        Some(s) => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn age_class(s: Option<u64>) -> &'static str {
    match s {
        None => "",
        Some(s) if s < 300 => "good",
        Some(s) if s < 3600 => "wait",
        Some(_) => "bad",
    }
}

pub(crate) async fn page(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Query(q): Query<OpsQuery>,
) -> Response {
    if !who.account.is_operator() {
        return forbidden_page(&portal, &req, Some(&who));
    }
    let o = match portal.relay.overview(q.top.unwrap_or(DEFAULT_TOP)).await {
        Ok(o) => o,
        Err(e) => return web::fail_page(&portal, &req, Some(&who), &e.into()),
    };
    let lang = req.lang;
    let mailboxes: Vec<serde_json::Value> = o
        .mailboxes
        .iter()
        .map(|m| {
            serde_json::json!({
                "unit": m.unit, "name": m.name, "ready": m.ready, "in_flight": m.in_flight,
                "dead_lettered": m.dead_lettered, "age": age(m.oldest_ready_age_s),
                "age_class": age_class(m.oldest_ready_age_s),
            })
        })
        .collect();
    let dead_letters: Vec<serde_json::Value> = o
        .dead_letters
        .iter()
        .map(|d| {
            serde_json::json!({
                "unit": d.unit, "id": d.id, "from": d.from, "document_id": d.document_id,
                "subject": d.subject, "reason": d.reason, "at": local_time(&d.at),
            })
        })
        .collect();
    let peak = o
        .rates
        .minutes
        .iter()
        .map(|m| m.accepted)
        .max()
        .unwrap_or(0)
        .max(1);
    let bars: Vec<u64> = o
        .rates
        .minutes
        .iter()
        .map(|m| m.accepted * 100 / peak)
        .collect();
    let notice = q.done.map(|n| match lang {
        Lang::Vi => format!(
            "Đã chuyển lại {n} gói tin của hộp thư {}.",
            q.unit.clone().unwrap_or_default()
        ),
        Lang::En => format!(
            "Re-drove {n} package(s) of mailbox {}.",
            q.unit.clone().unwrap_or_default()
        ),
    });
    let live = q.live.as_deref() == Some("1");
    let broker_error = o
        .broker_error
        .as_ref()
        .map(|e| lang.pick(&e.vi, &e.en).to_owned())
        .unwrap_or_default();
    // Figures not read for this page: say when they were, and why no newer ones.
    let stats_note = (!o.stats_fresh).then(|| {
        let why = o
            .stats_error
            .as_ref()
            .map(|e| format!(" — {} [{}]", lang.pick(&e.vi, &e.en), e.code))
            .unwrap_or_default();
        match (&o.stats_at, lang) {
            (Some(at), Lang::Vi) => format!(
                "Số liệu hộp thư đọc lúc {} ({} trước){why}",
                local_time(at),
                age(o.stats_age_s)
            ),
            (Some(at), Lang::En) => format!(
                "Mailbox figures read at {} ({} ago){why}",
                local_time(at),
                age(o.stats_age_s)
            ),
            (None, Lang::Vi) => format!("Chưa có số liệu hộp thư{why}"),
            (None, Lang::En) => format!("No mailbox figures yet{why}"),
        }
    });
    render(
        &portal,
        &req,
        Some(&who),
        StatusCode::OK,
        "ops.html",
        serde_json::json!({
            "o": &o,
            "mailboxes": mailboxes,
            "dead_letters": dead_letters,
            "bars": bars,
            "oldest_total": age(o.totals.oldest_ready_age_s),
            "generated_at": local_time(&o.generated_at),
            "broker_error": broker_error,
            "stats_note": stats_note,
            "notice": notice,
            "notice_class": "",
            "live": live,
            "live_url": with_param(&req.uri, "live", (!live).then_some("1")),
        }),
    )
}

fn json_error(status: StatusCode, lang: Lang, code: &str, vi: &str, en: &str) -> Response {
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::json!({ "code": code, "message": lang.pick(vi, en) }).to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"truc-ops\", charset=\"UTF-8\""),
        );
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `name:password` from `Authorization: Basic …`.
fn basic(req: &Req) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = req.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (n, p) = text.split_once(':')?;
    Some((n.to_owned(), p.to_owned()))
}

pub(crate) async fn queues(
    State(portal): State<Portal>,
    req: Req,
    Query(q): Query<OpsQuery>,
) -> Response {
    let lang = req.lang;
    let account = match web::who(&portal, &req) {
        Some(w) => w.account,
        None => match basic(&req) {
            None => {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    lang,
                    "sign_in_required",
                    "Cần đăng nhập bằng tài khoản quản trị trục (phiên cổng hoặc HTTP Basic).",
                    "Sign in with an operator account (portal session or HTTP Basic).",
                );
            }
            Some((name, password)) => match check_password(&portal, &name, &password).await {
                Check::Ok(a) => a,
                Check::Locked => {
                    return json_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        lang,
                        "too_many_attempts",
                        "Sai mật khẩu quá nhiều lần: tạm khóa 15 phút.",
                        "Too many wrong passwords: paused for 15 minutes.",
                    );
                }
                Check::Wrong | Check::Disabled => {
                    return json_error(
                        StatusCode::UNAUTHORIZED,
                        lang,
                        "bad_credentials",
                        "Sai tên tài khoản hoặc mật khẩu, hoặc tài khoản đã bị khóa.",
                        "Wrong account name or password, or the account is disabled.",
                    );
                }
            },
        },
    };
    if !account.is_operator() {
        return json_error(
            StatusCode::FORBIDDEN,
            lang,
            "operator_only",
            "Chỉ tài khoản quản trị trục xem được hàng đợi.",
            "Only operator accounts may see the queues.",
        );
    }
    match portal.relay.overview(q.top.unwrap_or(DEFAULT_TOP)).await {
        Ok(o) => {
            let mut res = axum::Json(o).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => json_error(web::status_of(&e), lang, e.code, &e.vi, &e.en),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RedriveForm {
    csrf: String,
    mailbox: String,
}

pub(crate) async fn redrive(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Form(form): Form<RedriveForm>,
) -> Response {
    if !same(&who.session.csrf, &form.csrf) {
        return web::csrf_page(&portal, &req, Some(&who));
    }
    if !who.account.is_operator() {
        return forbidden_page(&portal, &req, Some(&who));
    }
    match portal.relay.redrive(&form.mailbox).await {
        Ok(n) => {
            tracing::info!(account = %who.account.name, unit = %form.mailbox, count = n, "portal re-drive");
            Redirect::to(&format!(
                "/portal/ops?done={n}&unit={}",
                web::encode(&form.mailbox)
            ))
            .into_response()
        }
        Err(e) => web::fail_page(&portal, &req, Some(&who), &e.into()),
    }
}
