//! A relay behind the real HTTPS edge on 127.0.0.1:0, with a throw-away dev PKI, a TLS server
//! certificate for localhost, and a small directory: a ministry (A), two provinces (B, C), a
//! suspended unit (S). `U` has a certificate from the same CA but is not in the directory.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::{AnyBroker, Clock, EmbeddedBroker, EmbeddedConfig, SystemClock};
use directory::{Directory, Unit, UnitState};
use dsig::pki::{DevPki, Issued};
use edxml::{Attachment, Document, Organization, Package};
use relay::{Relay, RelayConfig};
use server::TlsSettings;
use store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use truc_client::{Client, Identity};

pub const A: &str = "000.00.00.G22"; // ministry (sender)
pub const B: &str = "000.00.00.H41"; // province
pub const C: &str = "000.00.00.H42"; // province
pub const S: &str = "000.00.00.H43"; // suspended
pub const U: &str = "000.00.00.H77"; // certificate, but not in the directory

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One dev PKI per test binary: RSA key generation is the slowest part of setting up a bed, and
/// every bed only reads the PKI.
pub fn shared_pki() -> &'static DevPki {
    static PKI: OnceLock<DevPki> = OnceLock::new();
    PKI.get_or_init(|| {
        dsig::pki::init(
            &[
                (A, Some("Bộ Nội vụ")),
                (B, None),
                (C, None),
                (S, None),
                (U, None),
            ],
            unix(SystemTime::now()),
        )
        .unwrap()
    })
}

pub struct Options {
    /// Package size limit of the relay (the edge allows it plus 64 KiB).
    pub max_bytes: usize,
    /// Serve with the PKI's CRL, after revoking these units' certificates.
    pub revoke: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_bytes: edxml::Limits::default().max_bytes,
            revoke: Vec::new(),
        }
    }
}

pub struct Bed {
    pub dir: tempfile::TempDir,
    pub pki: DevPki,
    pub relay: Relay,
    /// `https://localhost:PORT`
    pub base: String,
    pub addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<Result<(), server::ServerError>>>,
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

impl Bed {
    pub async fn new() -> Bed {
        Bed::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let now = unix(SystemTime::now());
        let pki = shared_pki().clone();
        let store = Store::open(dir.path()).unwrap();
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
        let mut s = unit(S, "Đơn vị tạm dừng");
        s.state = UnitState::Suspended;
        directory.upsert(s).unwrap();
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
                limits: edxml::Limits {
                    max_bytes: opts.max_bytes,
                    ..edxml::Limits::default()
                },
                clock,
            },
        )
        .unwrap();

        let mut crl = None;
        for code in &opts.revoke {
            let cert = &pki
                .units
                .iter()
                .find(|(c, _)| c == code)
                .unwrap()
                .1
                .cert_pem;
            let current = crl.clone().unwrap_or_else(|| pki.crl_pem.clone());
            crl = Some(
                dsig::pki::revoke(&pki.ca.cert_pem, &pki.ca.key_pem, &current, cert, now).unwrap(),
            );
        }
        let tls_cert =
            dsig::pki::issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], now).unwrap();
        let tls = TlsSettings {
            cert_pem: tls_cert.cert_pem,
            key_pem: tls_cert.key_pem,
            client_roots_pem: pki.ca.cert_pem.clone(),
            crl_pem: crl,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, tls, relay.clone(), async move {
            let _ = rx.await;
        }));
        Bed {
            dir,
            pki,
            relay,
            base: format!("https://localhost:{}", addr.port()),
            addr,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn issued(&self, code: &str) -> &Issued {
        &self.pki.units.iter().find(|(c, _)| c == code).unwrap().1
    }

    pub fn identity(&self, code: &str) -> Identity {
        let i = self.issued(code);
        Identity {
            cert_pem: i.cert_pem.clone(),
            key_pem: i.key_pem.clone(),
        }
    }

    /// A truc-client for `code`.
    pub fn client(&self, code: &str) -> Client {
        Client::new(&self.base, &self.identity(code), &self.pki.ca.cert_pem).unwrap()
    }

    /// A raw reqwest client presenting `code`'s certificate (or none).
    pub fn raw(&self, code: Option<&str>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_backend_native()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.pki.ca.cert_pem).unwrap()]);
        if let Some(code) = code {
            let i = self.issued(code);
            b = b.identity(reqwest::Identity::from_pkcs8_pem(&i.cert_pem, &i.key_pem).unwrap());
        }
        b.build().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn sign(&self, signer: &str, xml: &[u8]) -> Vec<u8> {
        let i = self.issued(signer);
        let key = dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap();
        dsig::sign(xml, &key, dsig::Role::Sender).unwrap()
    }

    /// A signed document package from `from` to `to`.
    pub fn package(&self, from: &str, to: &[&str], document_id: &str, subject: &str) -> Vec<u8> {
        self.sign(from, &document(from, to, document_id, subject))
    }

    /// Asks the server to stop and waits for `serve` to return.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }
}

pub fn org(code: &str) -> Organization {
    Organization {
        organ_id: code.into(),
        organ_name: Some(format!("Đơn vị {code}")),
        ..Organization::default()
    }
}

/// An unsigned document package from `from` to `to` with one attachment.
pub fn document(from: &str, to: &[&str], document_id: &str, subject: &str) -> Vec<u8> {
    document_with(
        from,
        to,
        document_id,
        subject,
        b"%PDF-1.4 noi dung".to_vec(),
    )
}

/// Like [`document`], with `attachment` as the attachment's bytes.
pub fn document_with(
    from: &str,
    to: &[&str],
    document_id: &str,
    subject: &str,
    attachment: Vec<u8>,
) -> Vec<u8> {
    let doc = Document {
        from: org(from),
        to: to.iter().map(|t| org(t)).collect(),
        document_id: Some(document_id.into()),
        subject: Some(subject.into()),
        code: Some(edxml::Code {
            code_number: Some("12".into()),
            code_notation: Some("BNV-VP".into()),
        }),
        attachments: vec![Attachment {
            content_id: "att1".into(),
            name: Some("vanban.pdf".into()),
            description: None,
            content_type: Some("application/pdf".into()),
            data: attachment,
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}
