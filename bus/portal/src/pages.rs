//! The clerk pages: sign-in and sign-out, the document list, a document, an attachment.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use relay::{PackageQuery, PageOptions, Role, Tracking};
use serde::{Deserialize, Serialize};

use crate::Portal;
use crate::accounts::{Account, hash_password};
use crate::session::same;
use crate::text::{state_class, state_label, status_label};
use crate::web::{
    self, Fail, Req, SESSION_COOKIE, SIGNIN_COOKIE, Signed, Who, blocking, clear_cookie, cookie,
    encode, fail_page, forbidden_page, local_time, not_found_page, render, safe_next, with_param,
};

pub(crate) async fn home(State(portal): State<Portal>, req: Req) -> Response {
    match web::who(&portal, &req) {
        Some(w) if w.account.is_operator() => Redirect::to("/portal/ops").into_response(),
        Some(_) => Redirect::to("/portal/documents").into_response(),
        None => Redirect::to("/portal/signin").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

fn signin_page(
    portal: &Portal,
    req: &Req,
    status: StatusCode,
    name: &str,
    next: &str,
    notice: Option<&str>,
) -> Response {
    let csrf = crate::session::token();
    let mut res = render(
        portal,
        req,
        None,
        status,
        "signin.html",
        serde_json::json!({
            "csrf": csrf,
            "next": next,
            "name": name,
            "notice": notice,
            "notice_class": "bad",
        }),
    );
    cookie(&mut res, SIGNIN_COOKIE, &csrf, 3600);
    res
}

pub(crate) async fn signin_form(
    State(portal): State<Portal>,
    req: Req,
    Query(q): Query<NextQuery>,
) -> Response {
    if web::who(&portal, &req).is_some() {
        return Redirect::to("/portal").into_response();
    }
    let next = q.next.as_deref().and_then(safe_next).unwrap_or("");
    signin_page(&portal, &req, StatusCode::OK, "", next, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SigninForm {
    name: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// A hash to check unknown names against, so they take as long as known ones.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("truc-portal-dummy-password").unwrap_or_default())
}

/// The outcome of checking a name and password (shared with HTTP Basic on the ops JSON).
#[derive(Debug)]
pub(crate) enum Check {
    Ok(Account),
    Locked,
    Wrong,
    Disabled,
}

/// Checks `name`/`password`, counting failures for throttling.
pub(crate) async fn check_password(portal: &Portal, name: &str, password: &str) -> Check {
    if portal.sessions.locked(name) {
        return Check::Locked;
    }
    let account = portal.accounts.get(name);
    let password = password.to_owned();
    let verify = account.clone();
    let ok = tokio::task::spawn_blocking(move || match &verify {
        Some(a) => a.verify(&password),
        None => {
            // Same work for an unknown name; the answer is "wrong" either way.
            let fake = Account {
                name: String::new(),
                role: crate::AccountRole::Operator,
                hash: dummy_hash().to_owned(),
                disabled: true,
                created: String::new(),
            };
            let _ = fake.verify(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    match account {
        Some(a) if ok && a.disabled => Check::Disabled,
        Some(a) if ok => {
            portal.sessions.succeeded(name);
            Check::Ok(a)
        }
        _ => {
            portal.sessions.failed(name);
            Check::Wrong
        }
    }
}

pub(crate) async fn signin(
    State(portal): State<Portal>,
    req: Req,
    Form(form): Form<SigninForm>,
) -> Response {
    let next = safe_next(&form.next).unwrap_or("").to_owned();
    let expected = req.cookie(SIGNIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same(expected, &form.csrf) {
        return web::csrf_page(&portal, &req, None);
    }
    let lang = req.lang;
    let refuse = |status, vi: &str, en: &str| {
        signin_page(
            &portal,
            &req,
            status,
            &form.name,
            &next,
            Some(lang.pick(vi, en)),
        )
    };
    match check_password(&portal, &form.name, &form.password).await {
        Check::Locked => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Đã nhập sai mật khẩu quá nhiều lần: tài khoản này tạm khóa đăng nhập 15 phút. Hãy đợi rồi thử lại, hoặc nhờ quản trị trục.",
            "Too many wrong passwords: sign-in for this account is paused for 15 minutes. Wait and try again, or ask the relay operator.",
        ),
        Check::Wrong => refuse(
            StatusCode::UNAUTHORIZED,
            "Sai tên tài khoản hoặc mật khẩu. Hãy kiểm tra rồi nhập lại.",
            "Wrong account name or password. Check them and try again.",
        ),
        Check::Disabled => refuse(
            StatusCode::FORBIDDEN,
            "Tài khoản này đã bị khóa. Hãy liên hệ quản trị trục.",
            "This account is disabled. Contact the relay operator.",
        ),
        Check::Ok(account) => {
            let (token, _) = portal.sessions.start(&account.name);
            let to = if next.is_empty() {
                if account.is_operator() {
                    "/portal/ops".to_owned()
                } else {
                    "/portal/documents".to_owned()
                }
            } else {
                next
            };
            let mut res = Redirect::to(&to).into_response();
            cookie(
                &mut res,
                SESSION_COOKIE,
                &token,
                portal.sessions.ttl().as_secs(),
            );
            clear_cookie(&mut res, SIGNIN_COOKIE);
            res
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn signout(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same(&who.session.csrf, &form.csrf) {
        return web::csrf_page(&portal, &req, Some(&who));
    }
    portal.sessions.end(&who.token);
    let mut res = Redirect::to("/portal/signin").into_response();
    clear_cookie(&mut res, SESSION_COOKIE);
    res
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    unit: Option<String>,
}

fn blank(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `YYYY-MM-DD` (a date in Vietnam) → the start of that day.
fn day_start(s: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).ok()?;
    Some(SystemTime::from(
        d.midnight().assume_offset(time::macros::offset!(+7)),
    ))
}

/// The unit a list or document is seen as: a clerk's own unit; for an operator, the `unit`
/// asked for (or none yet). A clerk asking for another unit is refused.
fn unit_of(who: &Who, asked: Option<&str>) -> Result<Option<String>, ()> {
    match (who.account.unit(), asked) {
        (Some(own), Some(asked)) if asked != own => Err(()),
        (Some(own), _) => Ok(Some(own.to_owned())),
        (None, asked) => Ok(asked.map(str::to_owned)),
    }
}

#[derive(Debug, Serialize)]
struct Row {
    id: String,
    number: Option<String>,
    document_id: String,
    subject: String,
    from: String,
    accepted_at: String,
    recipients: u64,
    delivered: u64,
    registered: u64,
    progress_class: &'static str,
    state: String,
    state_class: &'static str,
}

pub(crate) async fn documents(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Query(q): Query<ListQuery>,
) -> Response {
    let Ok(unit) = unit_of(&who, blank(q.unit.clone()).as_deref()) else {
        return forbidden_page(&portal, &req, Some(&who));
    };
    let role = match q.role.as_deref() {
        Some("received") => Role::Received,
        _ => Role::Sent,
    };
    let role_name = match role {
        Role::Sent => "sent",
        Role::Received => "received",
    };
    let text = blank(q.q);
    let recipient = blank(q.recipient).filter(|_| role == Role::Sent);
    let from = blank(q.from);
    let to = blank(q.to);
    let state = blank(q.state)
        .filter(|s| matches!(s.as_str(), "not_delivered" | "not_registered" | "rejected"));
    let after = blank(q.after);
    let mut notices = Vec::new();
    let since = from.as_deref().and_then(|f| {
        let t = day_start(f);
        if t.is_none() {
            notices.push(req.lang.pick(
                "Ngày bắt đầu không hợp lệ (cần năm-tháng-ngày); bỏ qua.",
                "The start date is not valid (year-month-day expected); ignored.",
            ));
        }
        t
    });
    let until = to.as_deref().and_then(|f| {
        let t = day_start(f).map(|t| t + Duration::from_secs(24 * 3600));
        if t.is_none() {
            notices.push(req.lang.pick(
                "Ngày kết thúc không hợp lệ (cần năm-tháng-ngày); bỏ qua.",
                "The end date is not valid (year-month-day expected); ignored.",
            ));
        }
        t
    });
    let lang = req.lang;
    let page = match &unit {
        Some(unit) => {
            let query = PackageQuery {
                role,
                state: state.clone(),
                q: text.clone(),
                since,
                limit: crate::PAGE_ROWS,
                after: after.clone(),
            };
            let options = PageOptions {
                until,
                recipient: recipient.clone(),
                budget: Some(crate::PAGE_BUDGET),
            };
            let relay = portal.relay.clone();
            let unit = unit.clone();
            match blocking(move || Ok(relay.packages_page(&unit, &query, &options)?)).await {
                Ok(p) => Some(p),
                Err(e) => return fail_page(&portal, &req, Some(&who), &e),
            }
        }
        None => None,
    };
    let unit_name = match &unit {
        Some(u) => portal
            .relay
            .directory()
            .resolve(u)
            .ok()
            .flatten()
            .map(|x| x.name),
        None => None,
    };
    let items: Vec<Row> = page
        .as_ref()
        .map(|p| {
            p.items
                .iter()
                .map(|s| Row {
                    id: s.id.clone(),
                    number: s.code.clone(),
                    document_id: s.document_id.clone(),
                    subject: s.subject.clone(),
                    from: s.from.clone(),
                    accepted_at: local_time(&s.accepted_at),
                    recipients: s.recipients,
                    delivered: s.delivered,
                    registered: s.registered,
                    progress_class: if s.delivered >= s.recipients {
                        "good"
                    } else {
                        "wait"
                    },
                    state: s
                        .state
                        .as_deref()
                        .map(|st| state_label(st, lang))
                        .unwrap_or_default(),
                    state_class: s.state.as_deref().map(state_class).unwrap_or(""),
                })
                .collect()
        })
        .unwrap_or_default();
    let next = page.as_ref().and_then(|p| p.next.clone());
    let budget_stop = page
        .as_ref()
        .is_some_and(|p| p.next.is_some() && p.items.len() < crate::PAGE_ROWS);
    let searched_to = match (&next, budget_stop) {
        (Some(id), true) => {
            let relay = portal.relay.clone();
            let id = id.clone();
            let u = unit.clone().unwrap_or_default();
            blocking(move || Ok(relay.tracking_any(&id).map(|t| t.accepted_at)?))
                .await
                .ok()
                .map(|at| local_time(&at))
                .filter(|_| !u.is_empty())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    let next_url = next.map(|n| with_param(&req.uri, "after", Some(&n)));
    let first_url = with_param(&req.uri, "after", None);
    let tab = |r: &str| {
        let mut u = format!("/portal/documents?role={r}");
        if who.account.is_operator()
            && let Some(x) = &unit
        {
            u.push_str(&format!("&unit={}", encode(x)));
        }
        u
    };
    let filters: Vec<serde_json::Value> = [
        ("not_delivered", "Chưa chuyển đến hết", "Not yet delivered"),
        ("not_registered", "Chưa vào sổ hết", "Not yet registered"),
        ("rejected", "Bị từ chối", "Rejected"),
    ]
    .iter()
    .map(|(v, vi, en)| serde_json::json!({"value": v, "label": lang.pick(vi, en)}))
    .collect();
    render(
        &portal,
        &req,
        Some(&who),
        StatusCode::OK,
        "documents.html",
        serde_json::json!({
            "role": role_name,
            "unit": unit.clone().unwrap_or_default(),
            "unit_name": unit_name,
            "q": text.unwrap_or_default(),
            "recipient": recipient.unwrap_or_default(),
            "from": from.unwrap_or_default(),
            "to": to.unwrap_or_default(),
            "state": state.unwrap_or_default(),
            "filters": filters,
            "items": items,
            "after": after.is_some(),
            "next_url": next_url,
            "first_url": first_url,
            "budget_stop": budget_stop,
            "searched_to": searched_to,
            "sent_url": tab("sent"),
            "received_url": tab("received"),
            "notice": (!notices.is_empty()).then(|| notices.join(" ")),
            "notice_class": "bad",
        }),
    )
}

/// The document `id` as `who` may see it, with its archived package parsed (when it parses).
async fn visible(
    portal: &Portal,
    who: &Who,
    id: &str,
) -> Result<(Tracking, Option<edxml::Document>), Fail> {
    let relay = portal.relay.clone();
    let unit = who.account.unit().map(str::to_owned);
    let id = id.to_owned();
    blocking(move || {
        let tracking = match &unit {
            Some(unit) => relay.tracking(unit, &id)?,
            None => relay.tracking_any(&id)?,
        };
        let body = relay.archived_body(&id)?;
        let doc = match edxml::read(&body, &relay.config().limits) {
            Ok(parsed) => match parsed.package {
                edxml::Package::Document(d) => Some(d),
                edxml::Package::Status(_) => None,
            },
            Err(e) => {
                tracing::warn!(id = %id, error = ?e, "archived package does not parse for the portal");
                None
            }
        };
        Ok((tracking, doc))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DocQuery {
    #[serde(default)]
    live: Option<String>,
}

fn org_text(o: &edxml::Organization) -> String {
    match &o.organ_name {
        Some(n) => format!("{n} ({})", o.organ_id),
        None => o.organ_id.clone(),
    }
}

/// Whether a recipient has the document: fetched and acknowledged, or it reported any status.
fn has_received(r: &relay::RecipientTrack) -> bool {
    r.delivered || r.events.iter().any(|e| e.status_code.is_some())
}

fn has_registered(r: &relay::RecipientTrack) -> bool {
    r.events
        .iter()
        .any(|e| matches!(e.status_code.as_deref(), Some("03" | "04" | "05" | "06")))
}

fn has_rejected(r: &relay::RecipientTrack) -> bool {
    r.events
        .iter()
        .any(|e| e.status_code.as_deref() == Some("02"))
}

pub(crate) async fn document(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Path(id): Path<String>,
    Query(q): Query<DocQuery>,
) -> Response {
    let (tracking, doc) = match visible(&portal, &who, &id).await {
        Ok(v) => v,
        Err(e) => return fail_page(&portal, &req, Some(&who), &e),
    };
    let lang = req.lang;
    let number = tracking.code.clone().or_else(|| {
        doc.as_ref().and_then(|d| d.code.as_ref()).map(|c| {
            format!(
                "{}/{}",
                c.code_number.as_deref().unwrap_or(""),
                c.code_notation.as_deref().unwrap_or("")
            )
        })
    });
    let fields = serde_json::json!({
        "id": tracking.id,
        "number": number,
        "document_id": tracking.document_id,
        "subject": tracking.subject,
        "sender": doc.as_ref().map(|d| org_text(&d.from)).unwrap_or_else(|| tracking.from.clone()),
        "accepted_at": local_time(&tracking.accepted_at),
        "promulgation": doc.as_ref().and_then(|d| d.promulgation_info.as_ref()).map(|p| {
            [p.place.clone(), p.promulgation_date.as_ref().map(|d| d.to_string())]
                .into_iter().flatten().collect::<Vec<_>>().join(", ")
        }).filter(|s| !s.is_empty()),
        "doc_type": doc.as_ref().and_then(|d| d.document_type.as_ref()).and_then(|t| t.type_name.clone()),
        "priority": doc.as_ref().and_then(|d| d.other_info.as_ref()).and_then(|o| o.priority.as_ref())
            .map(|p| lang.pick(p.label_vi(), p.label_en()).to_owned()),
        "signer": doc.as_ref().and_then(|d| d.signer_info.as_ref()).map(|s| {
            [s.position.clone(), s.full_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ")
        }).filter(|s| !s.is_empty()),
        "due_date": doc.as_ref().and_then(|d| d.due_date.as_ref()).map(|d| d.to_string()),
    });
    let lang_q = req.lang_q();
    let attachments: Vec<serde_json::Value> = doc
        .as_ref()
        .map(|d| {
            d.attachments
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    serde_json::json!({
                        "name": a.name.clone().unwrap_or_else(|| a.content_id.clone()),
                        "content_type": a.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
                        "size": a.size(),
                        "url": format!("/portal/documents/{}/attachments/{i}{lang_q}", encode(&tracking.id)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let directory = portal.relay.directory().clone();
    let recipients: Vec<serde_json::Value> = tracking
        .recipients
        .iter()
        .map(|r| {
            let events: Vec<serde_json::Value> = r
                .events
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "at": local_time(&e.at),
                        "label": state_label(&e.state, lang),
                        "code": e.status_code,
                        "code_label": e.status_code.as_deref().map(|c| status_label(c, lang)),
                        "description": e.description,
                    })
                })
                .collect();
            serde_json::json!({
                "unit": r.unit,
                "name": directory.resolve(&r.unit).ok().flatten().map(|u| u.name),
                "state": r.state,
                "label": state_label(&r.state, lang),
                "class": state_class(&r.state),
                "events": events,
            })
        })
        .collect();
    let summary = serde_json::json!({
        "total": tracking.recipients.len(),
        "received": tracking.recipients.iter().filter(|r| has_received(r)).count(),
        "registered": tracking.recipients.iter().filter(|r| has_registered(r)).count(),
        "rejected": tracking.recipients.iter().filter(|r| has_rejected(r)).count(),
    });
    let live = q.live.as_deref() == Some("1");
    let back_url = if who.account.is_operator() {
        format!("/portal/documents?unit={}", encode(&tracking.from))
    } else if who.account.unit() == Some(tracking.from.as_str()) {
        "/portal/documents".to_owned()
    } else {
        "/portal/documents?role=received".to_owned()
    };
    render(
        &portal,
        &req,
        Some(&who),
        StatusCode::OK,
        "document.html",
        serde_json::json!({
            "doc": fields,
            "attachments": attachments,
            "recipients": recipients,
            "summary": summary,
            "live": live,
            "live_url": with_param(&req.uri, "live", (!live).then_some("1")),
            "back_url": back_url,
        }),
    )
}

pub(crate) async fn attachment(
    State(portal): State<Portal>,
    Signed(who, req): Signed,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    let (_, doc) = match visible(&portal, &who, &id).await {
        Ok(v) => v,
        Err(e) => return fail_page(&portal, &req, Some(&who), &e),
    };
    let Some(a) = doc.and_then(|d| d.attachments.into_iter().nth(n)) else {
        return not_found_page(&portal, &req, Some(&who));
    };
    let name = a.name.clone().unwrap_or_else(|| a.content_id.clone());
    let content_type = a
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    // Always a download, never rendered in the portal's origin: the sender chose the type.
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode(&name)
    );
    let mut res = (StatusCode::OK, a.data).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
