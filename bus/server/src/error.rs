//! The one error shape of the API: `{"code","message","problems"?}` with a stable snake_case
//! code, the message in the caller's language.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` only sets the status and parks
//! the error in the response's extensions. The [`render`] middleware, which knows the request's
//! language, writes the JSON body. Anything else that leaves the router as an error without a
//! JSON body (an axum rejection nobody mapped) is turned into the same shape by status, so no
//! plain-text error or internal detail ever reaches a client.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The language of messages: Vietnamese unless the caller asks for English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    /// `?lang=en|vi` wins; otherwise `Accept-Language` starting with `en` means English.
    pub fn of(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(q) = query {
            for pair in q.split('&') {
                match pair {
                    "lang=en" => return Lang::En,
                    "lang=vi" => return Lang::Vi,
                    _ => {}
                }
            }
        }
        match accept_language {
            Some(a)
                if a.trim_start()
                    .get(..2)
                    .is_some_and(|p| p.eq_ignore_ascii_case("en")) =>
            {
                Lang::En
            }
            _ => Lang::Vi,
        }
    }

    pub fn pick<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// One problem behind a refused package, both languages (rendered in one).
#[derive(Debug, Clone)]
pub struct ProblemText {
    pub code: String,
    pub severity: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub path: Option<String>,
    pub vi: String,
    pub en: String,
}

/// A refused request: HTTP status, stable code, message in both languages.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub vi: String,
    pub en: String,
    pub problems: Vec<ProblemText>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        vi: impl Into<String>,
        en: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            vi: vi.into(),
            en: en.into(),
            problems: Vec::new(),
        }
    }

    pub fn client_certificate_required() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "Các địa chỉ /v1 cần chứng thư số của đơn vị: hãy kết nối bằng TLS hai chiều với chứng thư và khóa của đơn vị do CA của trục cấp.",
            "The /v1 API needs your unit's certificate: connect with mutual TLS using the unit certificate and key issued under the relay's CA.",
        )
    }

    pub fn bad_query(detail: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!(
                "Tham số truy vấn không hợp lệ ({detail}). Hãy xem các tham số được phép trong schemas/openapi.yaml."
            ),
            format!(
                "Invalid query parameters ({detail}). See the allowed parameters in schemas/openapi.yaml."
            ),
        )
    }

    pub fn bad_path(detail: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("Đường dẫn không hợp lệ ({detail}). Hãy kiểm tra mã trong đường dẫn."),
            format!("Invalid path ({detail}). Check the id in the path."),
        )
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "Gói tin vượt quá giới hạn {limit} byte của trục. Hãy giảm kích thước tệp đính kèm (ví dụ nén PDF) rồi gửi lại."
            ),
            format!(
                "The package is larger than the relay's limit of {limit} bytes. Make the attachments smaller (e.g. compress the PDF) and send it again."
            ),
        )
    }

    pub fn bad_body(detail: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("Không đọc được nội dung yêu cầu ({detail}). Hãy gửi lại."),
            format!("Could not read the request body ({detail}). Send it again."),
        )
    }

    pub fn route_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "Không có địa chỉ API này. Danh sách địa chỉ nằm trong schemas/openapi.yaml.",
            "There is no such API path. The list of paths is in schemas/openapi.yaml.",
        )
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Địa chỉ này không nhận phương thức HTTP đã dùng. Xem schemas/openapi.yaml.",
            "This path does not accept that HTTP method. See schemas/openapi.yaml.",
        )
    }

    pub fn not_found(what_vi: &str, what_en: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Không tìm thấy {what_vi} \"{id}\". Hãy kiểm tra lại mã."),
            format!("No {what_en} \"{id}\" was found. Check the code."),
        )
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Máy chủ trục gặp lỗi nội bộ. Hãy thử lại; nếu vẫn lỗi, báo quản trị trục kèm thời điểm.",
            "The relay hit an internal error. Try again; if it persists, tell the relay operator the time it happened.",
        )
    }

    /// For an error response that left the router without a JSON body (a rejection nobody
    /// mapped): the same shape, chosen by status.
    fn for_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::NOT_FOUND => ApiError::route_not_found(),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                status,
                "too_large",
                "Nội dung yêu cầu vượt quá giới hạn của trục.",
                "The request body is larger than the relay accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                status,
                "unsupported_media_type",
                "Kiểu nội dung không được hỗ trợ. Xem schemas/openapi.yaml.",
                "Unsupported content type. See schemas/openapi.yaml.",
            ),
            s if s.is_server_error() => {
                let mut e = ApiError::internal();
                e.status = s;
                e
            }
            s => ApiError::new(
                s,
                "bad_request",
                "Yêu cầu không hợp lệ. Xem schemas/openapi.yaml.",
                "The request is invalid. See schemas/openapi.yaml.",
            ),
        }
    }

    fn body(&self, lang: Lang) -> Vec<u8> {
        #[derive(Serialize)]
        struct ProblemJson<'a> {
            code: &'a str,
            severity: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            column: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            path: Option<&'a str>,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct ErrorJson<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            problems: Vec<ProblemJson<'a>>,
        }
        let json = ErrorJson {
            code: self.code,
            message: lang.pick(&self.vi, &self.en),
            problems: self
                .problems
                .iter()
                .map(|p| ProblemJson {
                    code: &p.code,
                    severity: &p.severity,
                    line: p.line,
                    column: p.column,
                    path: p.path.as_deref(),
                    message: lang.pick(&p.vi, &p.en),
                })
                .collect(),
        };
        serde_json::to_vec(&json).unwrap_or_else(|_| b"{\"code\":\"internal\"}".to_vec())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.en)
    }
}

impl std::error::Error for ApiError {}

impl From<relay::RelayError> for ApiError {
    fn from(e: relay::RelayError) -> ApiError {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = e.code, error = %e, "relay failed a request");
        }
        ApiError {
            status,
            code: e.code,
            problems: e
                .problems
                .into_iter()
                .map(|p| ProblemText {
                    code: p.code,
                    severity: p.severity.to_owned(),
                    line: p.line,
                    column: p.column,
                    path: p.path,
                    vi: p.vi,
                    en: p.en,
                })
                .collect(),
            vi: e.vi,
            en: e.en,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Middleware: writes every error as JSON in the request's language.
pub(crate) async fn render(req: Request, next: Next) -> Response {
    let lang = Lang::of(
        req.uri().query(),
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let err = match res.extensions_mut().remove::<ApiError>() {
        Some(e) => e,
        None => {
            let is_json = res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if is_json {
                return res;
            }
            ApiError::for_status(status)
        }
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.pick("vi", "en")),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    Response::from_parts(parts, axum::body::Body::from(err.body(lang)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_comes_from_query_then_accept_language() {
        assert_eq!(Lang::of(None, None), Lang::Vi);
        assert_eq!(Lang::of(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::of(None, Some("EN")), Lang::En);
        assert_eq!(Lang::of(None, Some("vi-VN, en;q=0.5")), Lang::Vi);
        assert_eq!(Lang::of(Some("wait=1&lang=en"), Some("vi")), Lang::En);
        assert_eq!(Lang::of(Some("lang=vi"), Some("en")), Lang::Vi);
    }
}
