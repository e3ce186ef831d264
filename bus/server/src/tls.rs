//! TLS with openssl: the acceptor (TLS 1.2+, client certificates requested and verified against
//! the unit CA and CRL, but not required, so `/healthz` and `/metrics` answer without one) and
//! the per-connection task: handshake (bounded), then HTTP/1.1 with the peer certificate attached
//! to every request as a [`PeerCert`] extension.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{CrlStatus, X509, X509Crl, X509Ref, X509VerifyResult};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_openssl::SslStream;
use tower::ServiceExt;

use crate::{HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT, ServerError, Stop};

/// What the HTTPS edge presents and whom it trusts. All PEM.
#[derive(Clone)]
pub struct TlsSettings {
    /// The server certificate, optionally followed by intermediates (see
    /// `dsig::pki::issue_tls_server`).
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// CA certificate(s) unit client certificates must chain to.
    pub client_roots_pem: Vec<u8>,
    /// When given, client certificates are also checked against this CRL (revoked → handshake
    /// refused).
    pub crl_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("crl", &self.crl_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The verified client certificate of a connection (absent when the client sent none).
#[derive(Debug, Clone)]
pub(crate) struct PeerCert {
    /// Subject CN (the unit code); empty when the certificate has none.
    pub cn: String,
    pub der: Arc<Vec<u8>>,
}

impl PeerCert {
    fn of(cert: &X509Ref) -> PeerCert {
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| std::str::from_utf8(e.data().as_slice()).ok())
            .map(str::to_owned)
            .unwrap_or_default();
        PeerCert {
            cn,
            der: Arc::new(cert.to_der().unwrap_or_default()),
        }
    }
}

fn tls_err(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> ServerError {
    move |e| ServerError::Tls {
        what,
        detail: e.to_string(),
    }
}

pub(crate) fn acceptor(tls: &TlsSettings) -> Result<SslAcceptor, ServerError> {
    // Mozilla "intermediate": TLS 1.2 and 1.3 only, modern ciphers.
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(tls_err("TLS context"))?;
    let mut chain = X509::stack_from_pem(&tls.cert_pem)
        .map_err(tls_err("server certificate"))?
        .into_iter();
    let leaf = chain.next().ok_or_else(|| ServerError::Tls {
        what: "server certificate",
        detail: "no certificate in the PEM".into(),
    })?;
    b.set_certificate(&leaf)
        .map_err(tls_err("server certificate"))?;
    for extra in chain {
        b.add_extra_chain_cert(extra)
            .map_err(tls_err("server certificate"))?;
    }
    let key = PKey::private_key_from_pem(&tls.key_pem).map_err(tls_err("server key"))?;
    b.set_private_key(&key).map_err(tls_err("server key"))?;
    b.check_private_key().map_err(tls_err("server key"))?;

    let roots = X509::stack_from_pem(&tls.client_roots_pem).map_err(tls_err("client roots"))?;
    if roots.is_empty() {
        return Err(ServerError::Tls {
            what: "client roots",
            detail: "no certificate in the PEM".into(),
        });
    }
    let mut store = X509StoreBuilder::new().map_err(tls_err("client roots"))?;
    for root in &roots {
        store
            .add_cert(root.clone())
            .map_err(tls_err("client roots"))?;
        b.add_client_ca(root).map_err(tls_err("client roots"))?;
    }
    b.set_verify_cert_store(store.build())
        .map_err(tls_err("client roots"))?;
    let crls = match &tls.crl_pem {
        Some(pem) => crls(pem, &roots)?,
        None => Vec::new(),
    };
    // Requested and, when sent, verified; not required: /healthz and /metrics need none, and
    // /v1 answers 401 with a readable JSON error instead of a bare handshake failure. The
    // openssl crate cannot add a CRL to a store from memory, so revocation of the client
    // certificate is checked here, after the chain has verified.
    b.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
        if !ok || ctx.error_depth() != 0 {
            return ok;
        }
        let Some(cert) = ctx.current_cert() else {
            return ok;
        };
        let revoked = crls.iter().any(|crl| {
            crl.issuer_name()
                .try_cmp(cert.issuer_name())
                .is_ok_and(|o| o.is_eq())
                && matches!(crl.get_by_cert(&cert.to_owned()), CrlStatus::Revoked(_))
        });
        if revoked {
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
            return false;
        }
        true
    });
    // Read whole TLS records (and whatever else has arrived) in one read: without it OpenSSL
    // reads a record's 5-byte header and its body separately, two syscalls per record.
    b.set_read_ahead(true);
    // Needed for session resumption when client certificates are requested.
    b.set_session_id_context(b"truc-relay")
        .map_err(tls_err("TLS context"))?;
    Ok(b.build())
}

/// Every CRL in `pem`, each checked to be signed by one of `roots`.
fn crls(pem: &[u8], roots: &[X509]) -> Result<Vec<X509Crl>, ServerError> {
    let text = String::from_utf8_lossy(pem);
    let marker = "-----BEGIN X509 CRL-----";
    let mut out = Vec::new();
    for (i, _) in text.match_indices(marker) {
        let crl = X509Crl::from_pem(&text.as_bytes()[i..]).map_err(tls_err("crl"))?;
        let signed = roots.iter().any(|r| {
            r.subject_name()
                .try_cmp(crl.issuer_name())
                .is_ok_and(|o| o.is_eq())
                && r.public_key().and_then(|k| crl.verify(&k)).unwrap_or(false)
        });
        if !signed {
            return Err(ServerError::Tls {
                what: "crl",
                detail: "the CRL is not signed by any of the client roots".into(),
            });
        }
        out.push(crl);
    }
    if out.is_empty() {
        return Err(ServerError::Tls {
            what: "crl",
            detail: "no CRL in the PEM".into(),
        });
    }
    Ok(out)
}

/// One accepted socket: handshake, then HTTP/1.1 until the client leaves or shutdown.
pub(crate) async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    acceptor: Arc<SslAcceptor>,
    app: axum::Router,
    mut stop: watch::Receiver<Stop>,
) {
    let _ = socket.set_nodelay(true);
    let stream = Ssl::new(acceptor.context()).and_then(|ssl| SslStream::new(ssl, socket));
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "TLS setup failed");
            return;
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    }
    let peer_cert = stream.ssl().peer_certificate().map(|c| PeerCert::of(&c));
    let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        if let Some(p) = &peer_cert {
            req.extensions_mut().insert(p.clone());
        }
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s >= Stop::Graceful) => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.wait_for(|s| *s >= Stop::Now) => {}
    }
}
