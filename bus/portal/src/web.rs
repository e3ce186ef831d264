//! The HTML plumbing shared by every page: templates, the request's language and cookies, the
//! signed-in user, response headers, error pages.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::Portal;
use crate::accounts::Account;
use crate::session::Session;
use crate::text::Lang;

pub(crate) const SESSION_COOKIE: &str = "truc_session";
pub(crate) const SIGNIN_COOKIE: &str = "truc_signin";
pub(crate) const LANG_COOKIE: &str = "truc_lang";

/// Every template, compiled into the binary; `.html` names are auto-escaped.
pub(crate) fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("signin.html", include_str!("../templates/signin.html")),
        ("error.html", include_str!("../templates/error.html")),
        (
            "documents.html",
            include_str!("../templates/documents.html"),
        ),
        ("document.html", include_str!("../templates/document.html")),
        ("ops.html", include_str!("../templates/ops.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // A broken template is a build mistake the page tests catch; log it, the page then
            // answers 500.
            tracing::error!(template = name, error = %e, "portal template does not compile");
        }
    }
    env
}

pub(crate) async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../templates/style.css"),
    )
        .into_response()
}

/// The parts of a request every page needs: language, cookies, where it was.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub lang: Lang,
    /// `?lang=` was given: remember it in a cookie.
    pub set_lang: bool,
    pub cookies: HashMap<String, String>,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Req {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// This page in the other language.
    pub fn other_lang_url(&self) -> String {
        let other = match self.lang {
            Lang::Vi => "en",
            Lang::En => "vi",
        };
        with_param(&self.uri, "lang", Some(other))
    }

    /// `?lang=xx` to append to links when the language came from the query only.
    pub fn lang_q(&self) -> String {
        match self.lang {
            Lang::En => "?lang=en".into(),
            Lang::Vi => String::new(),
        }
    }
}

fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                out.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    out
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| v.to_owned())
    })
}

/// `uri`'s path and query with `name` set to `value` (or removed).
pub(crate) fn with_param(uri: &Uri, name: &str, value: Option<&str>) -> String {
    let mut parts: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={}", encode(v)));
    }
    if parts.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Req, Self::Rejection> {
        let cookies = parse_cookies(&parts.headers);
        let from_query = query_param(&parts.uri, "lang").and_then(|l| Lang::parse(&l));
        let lang = from_query
            .or_else(|| cookies.get(LANG_COOKIE).and_then(|l| Lang::parse(l)))
            .unwrap_or_default();
        Ok(Req {
            lang,
            set_lang: from_query.is_some(),
            cookies,
            // Nested under /portal, the router sees the path without it; links need it whole.
            uri: parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.clone(), |o| o.0.clone()),
            headers: parts.headers.clone(),
        })
    }
}

/// The signed-in user of a page.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub account: Account,
    pub session: Session,
    pub token: String,
}

impl Who {
    /// What templates see as `who`.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.account.name,
            "operator": self.account.is_operator(),
            "unit": self.account.unit(),
            "csrf": self.session.csrf,
        })
    }
}

/// The live session of the request, if its account still exists and is not disabled.
pub(crate) fn who(portal: &Portal, req: &Req) -> Option<Who> {
    let token = req.cookie(SESSION_COOKIE)?;
    let session = portal.sessions.get(token)?;
    match portal.accounts.get(&session.account) {
        Some(account) if !account.disabled => Some(Who {
            account,
            session,
            token: token.to_owned(),
        }),
        _ => {
            // Disabled or removed since sign-in: the session ends now.
            portal.sessions.end(token);
            None
        }
    }
}

/// A signed-in page: [`Signed`] or a redirect to the sign-in form (which comes back here).
#[derive(Debug)]
pub(crate) struct Signed(pub Who, pub Req);

impl FromRequestParts<Portal> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Signed, Response> {
        let Ok(req) = Req::from_request_parts(parts, portal).await;
        match who(portal, &req) {
            Some(w) => Ok(Signed(w, req)),
            None => {
                let next = req
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                let mut res =
                    Redirect::to(&format!("/portal/signin?next={}", encode(&next))).into_response();
                if req.cookie(SESSION_COOKIE).is_some() {
                    clear_cookie(&mut res, SESSION_COOKIE);
                }
                Err(res)
            }
        }
    }
}

pub(crate) fn cookie(res: &mut Response, name: &str, value: &str, max_age_s: u64) {
    let v = format!(
        "{name}={value}; Path=/portal; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Strict"
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn clear_cookie(res: &mut Response, name: &str) {
    cookie(res, name, "", 0);
}

/// Headers every HTML answer carries: no caching of personal pages, no framing, no sniffing,
/// no scripts but none at all (the pages have none).
pub(crate) fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Renders `template` with `ctx` plus what every page has (`t`, `lang`, `who`, the language
/// link), with status `status`.
pub(crate) fn render(
    portal: &Portal,
    req: &Req,
    who: Option<&Who>,
    status: StatusCode,
    template: &str,
    ctx: serde_json::Value,
) -> Response {
    let mut ctx = match ctx {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in [
        ("t", serde_json::json!(req.lang.table())),
        ("lang", serde_json::json!(req.lang.code())),
        ("other_lang_url", serde_json::json!(req.other_lang_url())),
        ("lang_q", serde_json::json!(req.lang_q())),
        ("who", serde_json::json!(who.map(Who::view))),
    ] {
        ctx.entry(k).or_insert(v);
    }
    let html = portal
        .templates
        .get_template(template)
        .and_then(|t| t.render(minijinja::value::Serde(&ctx)));
    let mut res = match html {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "portal page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                req.lang.pick(
                    "Lỗi nội bộ khi hiển thị trang. Hãy thử lại; nếu lặp lại, báo quản trị trục.",
                    "Internal error while rendering the page. Try again; if it repeats, tell the relay operator.",
                )
                .to_owned(),
            )
                .into_response()
        }
    };
    secure_headers(&mut res);
    if req.set_lang {
        cookie(&mut res, LANG_COOKIE, req.lang.code(), 365 * 24 * 3600);
    }
    res
}

/// An error page: heading and message in the page language.
pub(crate) fn error_page(
    portal: &Portal,
    req: &Req,
    who: Option<&Who>,
    status: StatusCode,
    (heading_vi, heading_en): (&str, &str),
    (vi, en): (&str, &str),
) -> Response {
    render(
        portal,
        req,
        who,
        status,
        "error.html",
        serde_json::json!({
            "heading": req.lang.pick(heading_vi, heading_en),
            "message": req.lang.pick(vi, en),
        }),
    )
}

pub(crate) fn not_found_page(portal: &Portal, req: &Req, who: Option<&Who>) -> Response {
    error_page(
        portal,
        req,
        who,
        StatusCode::NOT_FOUND,
        ("Không tìm thấy", "Not found"),
        (
            "Không có trang hoặc văn bản này, hoặc tài khoản của bạn không được xem. Hãy quay lại danh sách.",
            "There is no such page or document, or your account may not see it. Go back to the list.",
        ),
    )
}

pub(crate) fn forbidden_page(portal: &Portal, req: &Req, who: Option<&Who>) -> Response {
    error_page(
        portal,
        req,
        who,
        StatusCode::FORBIDDEN,
        ("Không được phép", "Forbidden"),
        (
            "Tài khoản của bạn không được xem trang này (văn thư chỉ xem văn bản của đơn vị mình; trang vận hành dành cho quản trị trục).",
            "Your account may not see this page (a clerk sees only their own unit's documents; the operations page is for operators).",
        ),
    )
}

pub(crate) fn csrf_page(portal: &Portal, req: &Req, who: Option<&Who>) -> Response {
    error_page(
        portal,
        req,
        who,
        StatusCode::FORBIDDEN,
        ("Yêu cầu không hợp lệ", "Invalid request"),
        (
            "Biểu mẫu đã hết hạn hoặc không gửi từ trang này (thiếu mã chống giả mạo CSRF). Hãy tải lại trang rồi làm lại.",
            "The form expired or did not come from this site (missing CSRF token). Reload the page and try again.",
        ),
    )
}

/// Why a relay call behind a page failed.
#[derive(Debug)]
pub(crate) enum Fail {
    Relay(relay::RelayError),
    /// The blocking task died (a bug); the detail is logged, not shown.
    Internal(String),
}

impl From<relay::RelayError> for Fail {
    fn from(e: relay::RelayError) -> Fail {
        Fail::Relay(e)
    }
}

pub(crate) fn fail_page(portal: &Portal, req: &Req, who: Option<&Who>, e: &Fail) -> Response {
    match e {
        Fail::Relay(e) if e.status == 404 => not_found_page(portal, req, who),
        Fail::Relay(e) => {
            tracing::warn!(code = %e.code, error = %e.en, "portal: relay call failed");
            error_page(
                portal,
                req,
                who,
                status_of(e),
                ("Lỗi", "Error"),
                (&e.vi, &e.en),
            )
        }
        Fail::Internal(detail) => {
            tracing::error!(%detail, "portal: internal error");
            error_page(
                portal,
                req,
                who,
                StatusCode::INTERNAL_SERVER_ERROR,
                ("Lỗi nội bộ", "Internal error"),
                (
                    "Trục gặp lỗi nội bộ khi xử lý trang này. Hãy thử lại; nếu lặp lại, báo quản trị trục.",
                    "The relay hit an internal error on this page. Try again; if it repeats, tell the relay operator.",
                ),
            )
        }
    }
}

pub(crate) async fn not_found(State(portal): State<Portal>, req: Req) -> Response {
    let w = who(&portal, &req);
    not_found_page(&portal, &req, w.as_ref())
}

/// Runs a blocking relay call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Fail::Internal(e.to_string())),
    }
}

/// RFC 3339 UTC → `dd/mm/yyyy HH:MM` Vietnam time (UTC+7, no daylight saving).
pub(crate) fn local_time(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(rfc3339, &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::macros::offset!(+7));
            format!(
                "{:02}/{:02}/{:04} {:02}:{:02}",
                t.day(),
                u8::from(t.month()),
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// Where to go after signing in: only a portal path (never another site).
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    (next.starts_with("/portal/") && !next.starts_with("//") && !next.contains('\\'))
        .then_some(next)
}

pub(crate) fn status_of(e: &relay::RelayError) -> StatusCode {
    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn next_must_stay_in_the_portal() {
        assert_eq!(
            safe_next("/portal/documents?q=1"),
            Some("/portal/documents?q=1")
        );
        assert_eq!(safe_next("https://evil.example/"), None);
        assert_eq!(safe_next("//evil.example/portal/"), None);
        assert_eq!(safe_next("/v1/packages"), None);
    }

    #[test]
    fn params_are_replaced_and_encoded() {
        let uri: Uri = "/portal/documents?q=a&lang=vi&after=x".parse().unwrap();
        assert_eq!(
            with_param(&uri, "lang", Some("en")),
            "/portal/documents?q=a&after=x&lang=en"
        );
        assert_eq!(
            with_param(&uri, "after", None),
            "/portal/documents?q=a&lang=vi"
        );
        assert_eq!(encode("Số 12/BNV"), "S%E1%BB%91%2012%2FBNV");
        assert_eq!(local_time("2026-11-23T18:30:00.000Z"), "24/11/2026 01:30");
    }
}
