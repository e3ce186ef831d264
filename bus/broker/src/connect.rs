//! Opening a RabbitMQ connection, for the mailboxes and for the shared log alike.

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

/// The heartbeat (seconds) asked of RabbitMQ when the URL names none (`?heartbeat=N` wins).
/// lapin closes a connection it has read nothing from for twice this long, and only then do our
/// reconnect loops see it lost. RabbitMQ's own default (60 s) would leave a silently dead
/// connection (a peer that stopped answering, a firewall dropping packets without a reset) in
/// place for two minutes, during which a shared-log reader falls behind and every sync of that
/// node fails with `cluster_lagging` (20 s); with 10 s it is noticed within 20 s.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// Connects to `url`, with [`DEFAULT_HEARTBEAT_SECS`] unless the URL sets a heartbeat. A URL
/// that does not parse goes to lapin as it is, so its error is lapin's usual one.
pub(crate) async fn open(url: &str) -> Result<Connection, lapin::Error> {
    match with_heartbeat(url) {
        Some(uri) => Connection::connect_uri(uri, ConnectionProperties::default()).await,
        None => Connection::connect(url, ConnectionProperties::default()).await,
    }
}

/// `url` parsed, its heartbeat defaulted; `None` when it does not parse.
/// How long closing a connection may take. On a connection that is already dead (RabbitMQ
/// stopped, the socket reset) lapin's close may never complete; a caller waiting on it forever
/// never reconnects.
pub(crate) const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Closes `connection`, bounded by [`CLOSE_TIMEOUT`]; the outcome does not matter to callers.
pub(crate) async fn close(connection: &Connection, code: u16, why: &str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(code, why.into())).await;
}

fn with_heartbeat(url: &str) -> Option<AMQPUri> {
    let mut uri: AMQPUri = url.parse().ok()?;
    uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
    Some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_heartbeat_applies_only_where_the_url_sets_none() {
        let with = |url: &str| with_heartbeat(url).and_then(|u| u.query.heartbeat);
        assert_eq!(
            with("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(DEFAULT_HEARTBEAT_SECS)
        );
        assert_eq!(
            with("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=3"),
            Some(3)
        );
        // Everything else of the URL is kept.
        let uri = with_heartbeat("amqp://u:p@rabbit.example:5673/bus?frame_max=8192").unwrap();
        assert_eq!(uri.authority.host, "rabbit.example");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.authority.userinfo.username, "u");
        assert_eq!(uri.vhost, "bus");
        assert_eq!(uri.query.frame_max, Some(8192));
        assert!(with_heartbeat("not a url").is_none());
    }
}
