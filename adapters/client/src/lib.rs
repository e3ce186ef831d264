//! `truc-client` is a small client for the relay's HTTPS API (`schemas/openapi.yaml`): mutual TLS
//! with a unit's certificate and key, the `/v1` calls (submit, inbox long-poll, fetch, ack,
//! tracking, package lists, the unit directory) and `/healthz`. It is shared by the adapter,
//! `truc bench` and the server's tests.
//!
//! It owns its response types (serde mirrors of the JSON) and must not know the relay or server
//! crates, edXML or signatures: a package is bytes in and bytes out. Errors carry the server's
//! `{code, message}` and HTTP status, and say whether the same call may succeed later
//! ([`ClientError::retryable`]).

use std::time::Duration;

use reqwest::header::{ACCEPT_LANGUAGE, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Time allowed to open a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one call, on top of a long-poll's own wait.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A unit's certificate and private key (PEM; the key PKCS#8, as `truc certs` writes it).
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// A refused or failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL, certificate, key or trust root given to [`Client::new`] is unusable.
    #[error("client configuration: {what}: {detail}")]
    Config { what: &'static str, detail: String },
    /// The relay could not be reached or the connection broke (DNS, TCP, TLS, timeout).
    #[error("network: {detail}")]
    Network { detail: String, timeout: bool },
    /// The relay answered with an error.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        status: u16,
        /// The server's stable machine code (see `schemas/openapi.yaml`).
        code: String,
        /// The server's message, in the language asked for.
        message: String,
        problems: Vec<Problem>,
    },
    /// The relay answered something this client cannot read.
    #[error("unexpected answer (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
}

impl ClientError {
    /// Stable machine code: the server's code for [`ClientError::Api`], else `client_config`,
    /// `network`, `timeout` or `bad_response`.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Config { .. } => "client_config",
            ClientError::Network { timeout: true, .. } => "timeout",
            ClientError::Network { .. } => "network",
            ClientError::Api { code, .. } => code,
            ClientError::Decode { .. } => "bad_response",
        }
    }

    /// The HTTP status, when the relay answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same call may succeed later unchanged: network failures, timeouts, 5xx
    /// (503 store or broker unavailable), 408 and 429. A 4xx is the caller's to fix.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Config { .. } => false,
            ClientError::Network { .. } => true,
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            ClientError::Config { what, detail } => format!(
                "Cấu hình máy khách không dùng được ({}: {detail}). Hãy kiểm tra địa chỉ trục và các tệp chứng thư, khóa, CA.",
                what_vi(what)
            ),
            ClientError::Network { detail, timeout } => {
                if *timeout {
                    format!("Trục không trả lời kịp ({detail}). Sẽ thử lại sau.")
                } else {
                    format!(
                        "Không kết nối được tới trục ({detail}). Hãy kiểm tra mạng, địa chỉ trục, chứng thư của đơn vị và CA; sẽ thử lại sau."
                    )
                }
            }
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => format!("Trục từ chối (HTTP {status}, {code}): {message}"),
            ClientError::Decode { status, detail } => format!(
                "Trục trả lời không đúng định dạng (HTTP {status}): {detail}. Hãy kiểm tra phiên bản trục và máy khách."
            ),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            ClientError::Config { what, detail } => format!(
                "The client configuration is unusable ({what}: {detail}). Check the relay URL and the certificate, key and CA files."
            ),
            ClientError::Network { detail, timeout } => {
                if *timeout {
                    format!("The relay did not answer in time ({detail}). Will retry.")
                } else {
                    format!(
                        "Could not reach the relay ({detail}). Check the network, the relay URL, the unit certificate and the CA; will retry."
                    )
                }
            }
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => format!("The relay refused (HTTP {status}, {code}): {message}"),
            ClientError::Decode { status, detail } => format!(
                "The relay's answer is not in the expected shape (HTTP {status}): {detail}. Check the relay and client versions."
            ),
        }
    }
}

fn what_vi(what: &str) -> &'static str {
    match what {
        "base url" => "địa chỉ trục",
        "identity" => "chứng thư và khóa của đơn vị",
        "trust root" => "CA của trục",
        _ => "thiết lập",
    }
}

fn network(e: reqwest::Error) -> ClientError {
    // The whole source chain: reqwest's own text is only "error sending request".
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    ClientError::Network {
        detail,
        timeout: e.is_timeout(),
    }
}

/// One problem behind a refused package (parse findings, failed signature checks).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    pub code: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<u64>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    problems: Vec<Problem>,
}

/// `202` answer to `POST /v1/packages`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub document_id: String,
    pub recipients: Vec<RecipientState>,
    /// The relay had this exact package already and replayed its first answer.
    #[serde(skip)]
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecipientState {
    pub unit: String,
    pub state: String,
}

/// One waiting item of the unit's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InboxItem {
    pub id: String,
    /// `package` or `status`.
    pub kind: String,
    pub from: String,
    pub document_id: String,
    pub subject: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub queued_at: String,
}

#[derive(Debug, Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// `GET /v1/packages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tracking {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    pub document_id: String,
    #[serde(default)]
    pub code: Option<String>,
    pub from: String,
    pub subject: String,
    #[serde(default)]
    pub accepted_at: String,
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub about: Option<String>,
    pub recipients: Vec<RecipientTrack>,
}

/// Where one recipient stands with one package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecipientTrack {
    pub unit: String,
    pub state: String,
    pub events: Vec<TrackEvent>,
    #[serde(default)]
    pub delivered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrackEvent {
    pub at: String,
    pub state: String,
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Which of the unit's packages to list (`GET /v1/packages`). Empty fields are left out.
#[derive(Debug, Clone, Default)]
pub struct PackageQuery {
    /// `sent` (default) or `received`.
    pub role: Option<String>,
    /// `queued`, `delivered`, `not_registered`, `rejected` or any state name.
    pub state: Option<String>,
    /// Text in the subject, DocumentId, number/notation or unit codes.
    pub q: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD`.
    pub since: Option<String>,
    pub limit: Option<usize>,
    /// The previous page's `next`.
    pub after: Option<String>,
}

/// A page of packages; `next` is set when more may follow (pass it as `after`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PackagePage {
    pub items: Vec<PackageSummary>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PackageSummary {
    pub id: String,
    pub kind: String,
    pub document_id: String,
    #[serde(default)]
    pub code: Option<String>,
    pub from: String,
    pub subject: String,
    pub accepted_at: String,
    pub recipients: u64,
    pub delivered: u64,
    pub registered: u64,
    /// For `role=received`: the caller's own state.
    #[serde(default)]
    pub state: Option<String>,
}

/// A unit of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `active` or `suspended`.
    pub state: String,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub status: String,
}

/// A connection pool to one relay, as one unit. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// `Accept-Language` sent with every call (`vi` unless changed).
    lang: HeaderValue,
}

impl Client {
    /// A client for the relay at `base_url` (`https://host:port`), presenting `identity` and
    /// trusting only `trust_root_pem` (one or more CA certificates) for the relay's certificate.
    pub fn new(
        base_url: &str,
        identity: &Identity,
        trust_root_pem: &[u8],
    ) -> Result<Client, ClientError> {
        let id = reqwest::Identity::from_pkcs8_pem(&identity.cert_pem, &identity.key_pem).map_err(
            |e| ClientError::Config {
                what: "identity",
                detail: e.to_string(),
            },
        )?;
        Client::build(base_url, Some(id), trust_root_pem)
    }

    /// A client without a unit certificate: only `/healthz` (and `/metrics`) answer it.
    pub fn anonymous(base_url: &str, trust_root_pem: &[u8]) -> Result<Client, ClientError> {
        Client::build(base_url, None, trust_root_pem)
    }

    fn build(
        base_url: &str,
        identity: Option<reqwest::Identity>,
        trust_root_pem: &[u8],
    ) -> Result<Client, ClientError> {
        let base = Url::parse(base_url).map_err(|e| ClientError::Config {
            what: "base url",
            detail: format!("{base_url}: {e}"),
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "https" | "http") {
            return Err(ClientError::Config {
                what: "base url",
                detail: format!("{base_url}: expected https://host:port"),
            });
        }
        let roots = reqwest::Certificate::from_pem_bundle(trust_root_pem).map_err(|e| {
            ClientError::Config {
                what: "trust root",
                detail: e.to_string(),
            }
        })?;
        if roots.is_empty() {
            return Err(ClientError::Config {
                what: "trust root",
                detail: "no certificate in the PEM".into(),
            });
        }
        let mut b = reqwest::Client::builder()
            .tls_backend_native()
            .tls_certs_only(roots)
            .tls_version_min(reqwest::tls::Version::TLS_1_2)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(id) = identity {
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| ClientError::Config {
            what: "tls",
            detail: e.to_string(),
        })?;
        Ok(Client {
            http,
            base,
            lang: HeaderValue::from_static("vi"),
        })
    }

    /// Asks for error messages in English (`true`) or Vietnamese (`false`, the default).
    pub fn english(mut self, english: bool) -> Client {
        self.lang = HeaderValue::from_static(if english { "en" } else { "vi" });
        self
    }

    /// `base` + path segments (each percent-encoded, so an id can never change the path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty();
            p.extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(ACCEPT_LANGUAGE, self.lang.clone())
    }

    /// Sends, and turns any non-success answer into [`ClientError::Api`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let res = req.send().await.map_err(network)?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let bytes = res.bytes().await.map_err(network)?;
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => ClientError::Api {
                status: status.as_u16(),
                code: e.code,
                message: e.message,
                problems: e.problems,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                problems: Vec::new(),
            },
        })
    }

    async fn json<T: DeserializeOwned>(&self, res: reqwest::Response) -> Result<T, ClientError> {
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(network)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            status,
            detail: e.to_string(),
        })
    }

    /// `POST /v1/packages`: submits a signed document or status package. A resubmission of the
    /// same bytes gets the first answer back with `duplicate` set.
    pub async fn submit(&self, body: impl Into<Vec<u8>>) -> Result<Accepted, ClientError> {
        let req = self
            .request(Method::POST, self.url(&["v1", "packages"]))
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(body.into());
        let res = self.send(req).await?;
        let duplicate = res
            .headers()
            .get("truc-duplicate")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let mut accepted: Accepted = self.json(res).await?;
        accepted.duplicate = duplicate;
        Ok(accepted)
    }

    /// `GET /v1/inbox`: up to `limit` waiting items, waiting up to `wait` (at most 60 s, whole
    /// seconds) for the first. Each returned item is leased until acked or the lease runs out.
    pub async fn inbox(&self, wait: Duration, limit: usize) -> Result<Vec<InboxItem>, ClientError> {
        let mut url = self.url(&["v1", "inbox"]);
        url.query_pairs_mut()
            .append_pair("wait", &wait.as_secs().to_string())
            .append_pair("limit", &limit.to_string());
        let req = self
            .request(Method::GET, url)
            .timeout(REQUEST_TIMEOUT + wait);
        let res = self.send(req).await?;
        Ok(self.json::<Items<InboxItem>>(res).await?.items)
    }

    /// `GET /v1/inbox/{id}`: the sealed package.
    pub async fn fetch(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let res = self
            .send(self.request(Method::GET, self.url(&["v1", "inbox", id])))
            .await?;
        Ok(res.bytes().await.map_err(network)?.to_vec())
    }

    /// `POST /v1/inbox/{id}/ack`: the package is safely stored; it leaves the inbox.
    /// Idempotent.
    pub async fn ack(&self, id: &str) -> Result<(), ClientError> {
        self.send(self.request(Method::POST, self.url(&["v1", "inbox", id, "ack"])))
            .await?;
        Ok(())
    }

    /// `GET /v1/packages/{id}`: per-recipient timelines of a package the unit sent or received.
    pub async fn tracking(&self, id: &str) -> Result<Tracking, ClientError> {
        let res = self
            .send(self.request(Method::GET, self.url(&["v1", "packages", id])))
            .await?;
        self.json(res).await
    }

    /// `GET /v1/packages`: a page of the unit's own packages.
    pub async fn packages(&self, query: &PackageQuery) -> Result<PackagePage, ClientError> {
        let mut url = self.url(&["v1", "packages"]);
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in [
                ("role", &query.role),
                ("state", &query.state),
                ("q", &query.q),
                ("since", &query.since),
                ("after", &query.after),
            ] {
                if let Some(v) = v {
                    pairs.append_pair(k, v);
                }
            }
            if let Some(l) = query.limit {
                pairs.append_pair("limit", &l.to_string());
            }
        }
        let res = self.send(self.request(Method::GET, url)).await?;
        self.json(res).await
    }

    /// `GET /v1/units?q=`: directory search (code, old code, name; diacritics-insensitive).
    pub async fn units(&self, q: &str) -> Result<Vec<Unit>, ClientError> {
        let mut url = self.url(&["v1", "units"]);
        url.query_pairs_mut().append_pair("q", q);
        let res = self.send(self.request(Method::GET, url)).await?;
        Ok(self.json::<Items<Unit>>(res).await?.items)
    }

    /// `GET /v1/units/{code}`: one unit by code or old code.
    pub async fn unit(&self, code: &str) -> Result<Unit, ClientError> {
        let res = self
            .send(self.request(Method::GET, self.url(&["v1", "units", code])))
            .await?;
        self.json(res).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let res = self
            .send(self.request(Method::GET, self.url(&["healthz"])))
            .await?;
        self.json(res).await
    }

    /// `GET /portal/ops/queues?top=N` as the operator account `user` (HTTP Basic): the
    /// operator overview (mailboxes worst first, dead letters, rates, broker connectivity). The
    /// caller picks the type to read it into (the relay's `relay::Overview`; this crate does not
    /// know it). A clerk account is `403`, a wrong password `401`.
    pub async fn ops_queues<T: DeserializeOwned>(
        &self,
        top: usize,
        user: &str,
        password: &str,
    ) -> Result<T, ClientError> {
        let mut url = self.url(&["portal", "ops", "queues"]);
        url.query_pairs_mut().append_pair("top", &top.to_string());
        let req = self
            .request(Method::GET, url)
            .basic_auth(user, Some(password));
        let res = self.send(req).await?;
        self.json(res).await
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let res = self
            .send(self.request(Method::GET, self.url(&["metrics"])))
            .await?;
        res.text().await.map_err(network)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn pki() -> dsig::pki::DevPki {
        dsig::pki::init(&[("000.00.00.G22", None)], 1_800_000_000).unwrap()
    }

    fn identity(pki: &dsig::pki::DevPki) -> Identity {
        Identity {
            cert_pem: pki.units[0].1.cert_pem.clone(),
            key_pem: pki.units[0].1.key_pem.clone(),
        }
    }

    #[test]
    fn unusable_settings_are_config_errors_that_do_not_retry() {
        let pki = pki();
        let id = identity(&pki);
        for (url, trust, what) in [
            ("not a url", pki.ca.cert_pem.as_slice(), "base url"),
            ("ftp://relay:21", pki.ca.cert_pem.as_slice(), "base url"),
            (
                "https://relay:8443",
                b"khong phai PEM".as_slice(),
                "trust root",
            ),
        ] {
            let err = Client::new(url, &id, trust).unwrap_err();
            assert!(
                matches!(&err, ClientError::Config { what: w, .. } if *w == what),
                "{url}: {err:?}"
            );
            assert_eq!(err.code(), "client_config");
            assert!(!err.retryable());
            assert!(!err.message_vi().is_empty() && !err.message_en().is_empty());
        }
        let bad_key = Identity {
            cert_pem: id.cert_pem.clone(),
            key_pem: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
        };
        assert!(matches!(
            Client::new("https://relay:8443", &bad_key, &pki.ca.cert_pem),
            Err(ClientError::Config {
                what: "identity",
                ..
            })
        ));
    }

    #[test]
    fn ids_cannot_change_the_path() {
        let pki = pki();
        let c = Client::new(
            "https://relay:8443/base/",
            &identity(&pki),
            &pki.ca.cert_pem,
        )
        .unwrap();
        let url = c.url(&["v1", "inbox", "../../metrics?x=1#y", "ack"]);
        assert_eq!(
            url.as_str(),
            "https://relay:8443/base/v1/inbox/..%2F..%2Fmetrics%3Fx=1%23y/ack"
        );
    }

    #[test]
    fn retryable_means_the_same_call_may_succeed_later() {
        let api = |status: u16| ClientError::Api {
            status,
            code: "x".into(),
            message: String::new(),
            problems: Vec::new(),
        };
        for s in [500, 502, 503, 408, 429] {
            assert!(api(s).retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422] {
            assert!(!api(s).retryable(), "{s}");
        }
        let net = ClientError::Network {
            detail: "connection refused".into(),
            timeout: false,
        };
        assert!(net.retryable());
        assert_eq!(net.code(), "network");
        assert_eq!(api(403).code(), "x");
        assert_eq!(api(403).status(), Some(403));
    }
}
