//! `server` owns the relay's HTTPS edge: mutual TLS (openssl) in front of an axum router that
//! turns the `/v1` API (submit, inbox long-poll, fetch, ack, tracking, package lists, the unit
//! directory) into [`relay::Relay`] calls, every refusal into one JSON error shape
//! (`{"code","message","problems"?}`, Vietnamese by default, English on `Accept-Language: en` or
//! `?lang=en`), plus `/healthz` and Prometheus `/metrics`. [`ROUTES`] is the one list of
//! routes; `schemas/openapi.yaml` documents exactly that list (a test holds them together).
//!
//! It must not know edXML, signatures, the store's layout or the broker backend: it calls the
//! relay and reads the broker only through `Broker::stats` for gauges. The caller's identity is
//! the subject CN of the TLS client certificate, checked by [`relay::Relay::authenticate`];
//! nothing else (no header, no query parameter) can name a unit.

mod error;
mod metrics;
mod routes;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::{ApiError, Lang};
pub use routes::{ROUTES, router};
pub use tls::TlsSettings;

/// How long a client gets to finish the TLS handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client gets to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections at most; past that, new clients wait in the listen backlog until one ends.
pub const MAX_CONNECTIONS: usize = 10_000;
/// After shutdown is asked, how long in-flight requests get to finish before connections are
/// dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the accept loop tells connections and long-polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    Running,
    /// Finish in-flight requests, take no new ones, end long-polls now.
    Graceful,
    /// The grace period is over: drop the connection.
    Now,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The TLS material (certificate, key, client roots, CRL) is unusable.
    #[error("TLS configuration: {what}: {detail}")]
    Tls { what: &'static str, detail: String },
}

impl ServerError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::Tls { .. } => "tls_config",
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            ServerError::Tls { what, detail } => format!(
                "Cấu hình TLS của máy chủ không dùng được ({}: {detail}). Hãy kiểm tra các tệp chứng thư, khóa, CA và CRL trong cấu hình.",
                what_vi(what)
            ),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            ServerError::Tls { what, detail } => format!(
                "The server's TLS settings are unusable ({what}: {detail}). Check the certificate, key, CA and CRL files in the configuration."
            ),
        }
    }
}

fn what_vi(what: &str) -> &'static str {
    match what {
        "server certificate" => "chứng thư máy chủ",
        "server key" => "khóa riêng của máy chủ",
        "client roots" => "CA cho chứng thư đơn vị",
        "crl" => "danh sách thu hồi (CRL)",
        _ => "thiết lập TLS",
    }
}

/// Serves the API over TLS on `listener` until `shutdown` resolves; then stops accepting, ends
/// waiting long-polls (they answer an empty list), lets in-flight requests finish (at most
/// [`SHUTDOWN_GRACE`]) and returns. Each connection's handshake runs in its own task, bounded by
/// [`HANDSHAKE_TIMEOUT`], so a slow or hostile client never holds up the accept loop.
pub async fn serve(
    listener: TcpListener,
    tls: TlsSettings,
    relay: relay::Relay,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(listener, tls, relay, None, shutdown).await
}

/// [`serve`], plus the clerk portal and operator pages under `/portal` (and `/` redirecting
/// there) when `portal` is given. The portal router is merged after the API's layers, so its
/// HTML answers are not turned into the API's JSON errors.
pub async fn serve_with(
    listener: TcpListener,
    tls: TlsSettings,
    relay: relay::Relay,
    portal: Option<portal::Settings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let acceptor = Arc::new(tls::acceptor(&tls)?);
    // Every connection task (and the router, through its state) holds a receiver; the sender's
    // `closed()` resolves when the last one is gone, i.e. when every connection has ended.
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let app = routes::router_with(relay.clone(), stop_rx.clone());
    let app = match portal {
        // A nested router's "/" answers "/portal" only; "/portal/" and "/" are sent there.
        Some(settings) => app
            .nest("/portal", portal::router(relay, settings))
            .route(
                "/portal/",
                axum::routing::get(|| async { axum::response::Redirect::to("/portal") }),
            )
            .route(
                "/",
                axum::routing::get(|| async { axum::response::Redirect::to("/portal") }),
            ),
        None => app,
    };
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "relay HTTPS edge listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            s = slots.clone().acquire_owned() => s,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((socket, peer)) => {
                let acceptor = acceptor.clone();
                let app = app.clone();
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    tls::connection(socket, peer, acceptor, app, stop).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    drop(app);
    drop(stop_rx);
    let _ = stop_tx.send(Stop::Graceful);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; dropping them");
        let _ = stop_tx.send(Stop::Now);
        let _ = tokio::time::timeout(Duration::from_secs(1), stop_tx.closed()).await;
    }
    tracing::info!(?addr, "relay HTTPS edge stopped");
    Ok(())
}
