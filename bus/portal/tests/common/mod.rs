//! A relay on a temp dir with a throw-away dev PKI and a small directory (a ministry A sending,
//! provinces B and C receiving), the portal router in front of it (in process, or behind the
//! real HTTPS edge for the browser test), and portal accounts: `vanthu_a` (clerk of A),
//! `vanthu_b` (clerk of B), `vanthu_c` (clerk of C) and `quantri` (operator).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use broker::{AnyBroker, Clock, EmbeddedBroker, EmbeddedConfig, SystemClock};
use directory::{Directory, Unit, UnitState};
use dsig::pki::{DevPki, Issued};
use edxml::{
    Attachment, Document, Lenient, Organization, Package, ResponseFor, Status, StatusCode as Sc,
};
use http_body_util::BodyExt as _;
use portal::{AccountFile, AccountRole};
use relay::{Relay, RelayConfig};
use store::Store;
use tower::ServiceExt as _;

pub const A: &str = "000.00.00.G22"; // ministry (sender)
pub const B: &str = "000.00.00.H41"; // province
pub const C: &str = "000.00.00.H42"; // province
pub const PASSWORD: &str = "mat-khau-thu-nghiem";

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn shared_pki() -> &'static DevPki {
    static PKI: OnceLock<DevPki> = OnceLock::new();
    PKI.get_or_init(|| {
        dsig::pki::init(
            &[(A, Some("Bộ Nội vụ")), (B, None), (C, None)],
            unix(SystemTime::now()),
        )
        .unwrap()
    })
}

fn unit(code: &str, name: &str) -> Unit {
    Unit {
        code: code.into(),
        name: name.into(),
        parent: None,
        aliases: vec![],
        state: UnitState::Active,
        fingerprints: vec![],
        groups: vec![],
    }
}

pub struct Bed {
    pub dir: tempfile::TempDir,
    pub pki: DevPki,
    pub relay: Relay,
    pub accounts: std::path::PathBuf,
    pub app: Router,
}

impl Bed {
    pub fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let pki = shared_pki().clone();
        let store = Store::open(dir.path().join("data")).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let broker = EmbeddedBroker::open(
            store.clone(),
            EmbeddedConfig {
                lease: Duration::from_secs(300),
                clock: clock.clone(),
            },
        )
        .unwrap();
        let directory = Directory::open(&store).unwrap();
        directory.upsert(unit(A, "Bộ Nội vụ")).unwrap();
        directory.upsert(unit(B, "UBND tỉnh Hà Nam")).unwrap();
        directory.upsert(unit(C, "UBND tỉnh Nam Định")).unwrap();
        let trust = dsig::TrustStore::new(&pki.ca.cert_pem, &pki.crl_pem).unwrap();
        let seal = dsig::SigningKey::from_pem(&pki.relay.key_pem, &pki.relay.cert_pem).unwrap();
        let relay = Relay::open(
            store,
            AnyBroker::Embedded(broker),
            directory,
            RelayConfig {
                relay_id: "000.00.00.A00".into(),
                seal: Arc::new(seal),
                trust: Arc::new(trust),
                limits: edxml::Limits::default(),
                clock,
            },
        )
        .unwrap();
        let accounts = dir.path().join("accounts.json");
        let file = AccountFile::new(&accounts);
        for (name, role) in [
            ("vanthu_a", AccountRole::Clerk { unit: A.into() }),
            ("vanthu_b", AccountRole::Clerk { unit: B.into() }),
            ("vanthu_c", AccountRole::Clerk { unit: C.into() }),
            ("quantri", AccountRole::Operator),
        ] {
            file.add(name, role, PASSWORD, "2026-11-24T00:00:00Z")
                .unwrap();
        }
        let app = Router::new().nest(
            "/portal",
            portal::router(
                relay.clone(),
                portal::Settings {
                    accounts: accounts.clone(),
                    session: Duration::from_secs(3600),
                },
            ),
        );
        Bed {
            dir,
            pki,
            relay,
            accounts,
            app,
        }
    }

    /// Serves the relay with the portal behind the real HTTPS edge on 127.0.0.1:0; returns
    /// `https://localhost:PORT` and the sender that stops it.
    pub async fn serve_tls(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let now = unix(SystemTime::now());
        let tls_cert =
            dsig::pki::issue_tls_server(&self.pki.ca, &["localhost", "127.0.0.1"], now).unwrap();
        let tls = server::TlsSettings {
            cert_pem: tls_cert.cert_pem,
            key_pem: tls_cert.key_pem,
            client_roots_pem: self.pki.ca.cert_pem.clone(),
            crl_pem: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let settings = portal::Settings {
            accounts: self.accounts.clone(),
            session: Duration::from_secs(3600),
        };
        tokio::spawn(server::serve_with(
            listener,
            tls,
            self.relay.clone(),
            Some(settings),
            async move {
                let _ = rx.await;
            },
        ));
        (format!("https://localhost:{port}"), tx)
    }

    pub fn issued(&self, code: &str) -> &Issued {
        &self.pki.units.iter().find(|(c, _)| c == code).unwrap().1
    }

    pub fn sign(&self, signer: &str, xml: &[u8]) -> Vec<u8> {
        let i = self.issued(signer);
        let key = dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap();
        dsig::sign(xml, &key, dsig::Role::Sender).unwrap()
    }

    /// Sends a signed document from `from` to `to`; returns the relay id.
    pub async fn send(&self, from: &str, to: &[&str], document_id: &str, subject: &str) -> String {
        let body = self.sign(from, &document(from, to, document_id, subject));
        self.relay.submit(from, &body).await.unwrap().id
    }

    /// `unit` fetches and acknowledges everything waiting.
    pub async fn deliver_all(&self, unit: &str) -> Vec<String> {
        let items = self.relay.inbox(unit, 1000, Duration::ZERO).await.unwrap();
        let mut ids = Vec::new();
        for i in items {
            self.relay.ack(unit, &i.id).await.unwrap();
            ids.push(i.id);
        }
        ids
    }

    /// `from` reports `code` about `document_id` that `sender` sent.
    pub async fn status(
        &self,
        from: &str,
        sender: &str,
        document_id: &str,
        code: &str,
        why: Option<&str>,
    ) {
        let body = self.sign(from, &status(from, sender, document_id, code, why));
        self.relay.submit(from, &body).await.unwrap();
    }

    /// One request through the router; returns status, headers and body text.
    pub async fn call(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, cookies: &str) -> Reply {
        let mut r = Request::get(path);
        if !cookies.is_empty() {
            r = r.header(header::COOKIE, cookies);
        }
        self.call(r.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut r =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            r = r.header(header::COOKIE, cookies);
        }
        self.call(r.body(Body::from(body)).unwrap()).await
    }

    /// Signs in as `name`; returns the session cookie (`truc_session=…`).
    pub async fn sign_in(&self, name: &str) -> String {
        let form = self.get("/portal/signin", "").await;
        let pre = form.cookie("truc_signin").unwrap();
        let csrf = form.hidden("csrf").unwrap();
        let r = self
            .post(
                "/portal/signin",
                &format!("truc_signin={pre}"),
                &[("name", name), ("password", PASSWORD), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        format!("truc_session={}", r.cookie("truc_session").unwrap())
    }
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text, with the HTML escapes the templates use for `/` and `&` undone.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    }

    /// The value a `Set-Cookie` gives `name` (`None` when it is not set, `Some("")` cleared).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let first = v.split(';').next()?;
                let (k, val) = first.split_once('=')?;
                (k == name).then(|| val.to_owned())
            })
    }

    pub fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let text = self.text();
        let marker = format!("name=\"{name}\" value=\"");
        let i = text.find(&marker)? + marker.len();
        let j = text[i..].find('"')? + i;
        Some(text[i..j].to_owned())
    }

    pub fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

pub fn org(code: &str) -> Organization {
    Organization {
        organ_id: code.into(),
        organ_name: Some(format!("Đơn vị {code}")),
        ..Organization::default()
    }
}

pub fn document(from: &str, to: &[&str], document_id: &str, subject: &str) -> Vec<u8> {
    let doc = Document {
        from: org(from),
        to: to.iter().map(|t| org(t)).collect(),
        document_id: Some(document_id.into()),
        subject: Some(subject.into()),
        code: Some(edxml::Code {
            code_number: Some("12".into()),
            code_notation: Some("BNV-VP".into()),
        }),
        other_info: Some(edxml::OtherInfo {
            priority: Some(edxml::Priority::parse("1")),
            ..edxml::OtherInfo::default()
        }),
        attachments: vec![Attachment {
            content_id: "att1".into(),
            name: Some("công văn số 12.pdf".into()),
            description: None,
            content_type: Some("application/pdf".into()),
            data: b"%PDF-1.4 noi dung van ban".to_vec(),
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}

pub fn status(
    from: &str,
    sender: &str,
    document_id: &str,
    code: &str,
    why: Option<&str>,
) -> Vec<u8> {
    let st = Status {
        from: org(from),
        response_for: ResponseFor {
            organ_id: Some(sender.into()),
            code: None,
            promulgation_date: None,
            document_id: Some(document_id.into()),
        },
        staff_info: None,
        status_code: Sc::parse(code),
        description: why.map(str::to_owned),
        timestamp: Some(Lenient::Known(edxml::Timestamp {
            date: edxml::Date::new(2026, 11, 23).unwrap(),
            hour: 9,
            minute: 30,
            second: 0,
        })),
        trace: Default::default(),
    };
    edxml::to_bytes(&Package::Status(st))
}
