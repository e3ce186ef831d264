//! `portal` owns the pages people use: the clerk portal (a unit's sent and received documents,
//! each with its header, attachments and every recipient's timeline) and the operator page
//! (mailboxes worst first, dead letters and re-drive, rates, signature failures, broker
//! connectivity), server-rendered HTML (minijinja templates compiled into the crate, one CSS
//! file, no JavaScript: live refresh is a `<meta refresh>`), Vietnamese first with an English
//! switch (`?lang=en`, remembered in a cookie), usable on a phone. It also owns portal
//! accounts ([`accounts`]: clerk of one unit, or operator; Argon2id hashes in a file the
//! `truc accounts` command edits while the relay runs) and sessions ([`session`]).
//!
//! It is the only crate that knows HTML. It must not know TLS, edXML signatures, the store's
//! layout or the broker: it reads through [`relay::Relay`] (`tracking`, `packages_page`,
//! `archived_body`, `overview`, `redrive`) and parses the archived package with `edxml` only
//! to show its header fields and attachments. `bus/server` mounts [`router`] under `/portal`.
//!
//! Who sees what: a clerk sees only packages its unit sent or received (the relay's
//! `tracking(unit, id)` decides; anything else is 404, the same answer as a package that does
//! not exist), and a clerk asking for another unit's list gets 403. Operators see everything.
//! Every POST carries the session's CSRF token; cookies are `HttpOnly; Secure;
//! SameSite=Strict`.
//!
//! # `GET /portal/ops/queues?top=N` (JSON for operators)
//!
//! Authentication: the portal session cookie of an operator account, or HTTP Basic
//! (`Authorization: Basic base64(name:password)`) with an operator account (the same throttling
//! as the sign-in form applies). A clerk gets `403`, no or bad credentials `401` (with
//! `WWW-Authenticate: Basic realm="truc-ops"`), a locked name `429`.
//!
//! `top` (default 20, `0` = every mailbox) cuts the mailbox rows. The answer is `200` with
//! `Content-Type: application/json` and the body is exactly the serialisation of
//! `relay::Overview` (see `bus/relay/src/ops.rs` for every field): `backend`, `broker_up`,
//! `broker_error`, `mailboxes` (worst first), `mailboxes_shown`, `mailboxes_total`, `totals`,
//! `dead_letters`, `dead_letters_total`, `rates`, `signature_failures`, `generated_at`, `live`.
//! Errors are `{"code": "...", "message": "..."}` (Vietnamese, English with `?lang=en`).
//!
//! `POST /portal/ops/redrive` (form fields `mailbox`, `csrf`; operator session only) moves the
//! mailbox's dead letters back and redirects to `/portal/ops` with how many moved.

pub mod accounts;
mod ops_page;
mod pages;
pub mod session;
pub mod text;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use accounts::{Account, AccountBook, AccountError, AccountFile, AccountRole};

/// What the portal needs besides the relay.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The accounts file (`[portal] accounts`, resolved against the data directory).
    pub accounts: PathBuf,
    /// How long a session lasts after sign-in (`[portal] session_minutes`).
    pub session: Duration,
}

/// Rows per list page.
pub const PAGE_ROWS: usize = 50;
/// Most packages one list page looks at; a search or filter that matches rarely stops there
/// and offers "search older" (keyset: `after` = the last package looked at), so no page costs
/// more than this many reads however large the unit's history is.
pub const PAGE_BUDGET: usize = 5_000;

/// Shared by every handler; cloned per request (all handles).
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    pub relay: relay::Relay,
    pub accounts: Arc<AccountBook>,
    pub sessions: Arc<session::Sessions>,
    pub templates: Arc<minijinja::Environment<'static>>,
}

/// The portal's routes, to be nested under `/portal` (every link and cookie path assumes it).
pub fn router(relay: relay::Relay, settings: Settings) -> Router {
    let state = Portal {
        relay,
        accounts: Arc::new(AccountBook::new(settings.accounts)),
        sessions: Arc::new(session::Sessions::new(settings.session)),
        templates: Arc::new(web::templates()),
    };
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_form).post(pages::signin))
        .route("/signout", post(pages::signout))
        .route("/documents", get(pages::documents))
        .route("/documents/{id}", get(pages::document))
        .route("/documents/{id}/attachments/{n}", get(pages::attachment))
        .route("/ops", get(ops_page::page))
        .route("/ops/queues", get(ops_page::queues))
        .route("/ops/redrive", post(ops_page::redrive))
        .route("/static/style.css", get(web::style))
        .fallback(web::not_found)
        .with_state(state)
}
