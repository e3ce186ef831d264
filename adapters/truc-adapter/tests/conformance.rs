//! The conformance suite every adapter mode passes (issue 5, point 5): it delivers once (and
//! the 01 comes back once), a repeated package is recognised as a duplicate and not delivered
//! again, a refused package is reported with the relay's code and reason, and the adapter shuts
//! down cleanly on SIGTERM and carries on after a restart. One driver per mode: folder (files in
//! `outbox/`, `sent/`, `failed/`, `inbox/`, `receipts/`) and local HTTP (the `/v1` API on
//! loopback).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use edxml::Package;

/// What became of a package handed to A: accepted (relay id, duplicate) or refused (code, text).
type Outcome = Result<(String, bool), (String, String)>;

trait Mode {
    fn name(&self) -> &'static str;
    /// Hands `bytes` to A's adapter; returns a handle for [`Mode::outcome`].
    fn send(&mut self, bus: &Bus, name: &str, bytes: &[u8]) -> String;
    fn outcome(&mut self, bus: &Bus, handle: &str) -> Option<Outcome>;
    /// Takes (and acknowledges) every package the unit's adapter has received.
    fn take_received(&mut self, unit: &Unit) -> Vec<Vec<u8>>;
}

struct Folder;

impl Mode for Folder {
    fn name(&self) -> &'static str {
        "folder"
    }

    fn send(&mut self, bus: &Bus, name: &str, bytes: &[u8]) -> String {
        let name = format!("{name}.edxml");
        drop_in(&bus.a.folder("outbox"), &name, bytes);
        name
    }

    fn outcome(&mut self, bus: &Bus, handle: &str) -> Option<Outcome> {
        let result = bus.a.folder("sent").join(format!("{handle}.result.json"));
        if let Ok(bytes) = std::fs::read(&result) {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            return Some(Ok((
                v["id"].as_str().unwrap().to_owned(),
                v["duplicate"].as_bool().unwrap(),
            )));
        }
        let error = bus.a.folder("failed").join(format!("{handle}.error.txt"));
        let text = std::fs::read_to_string(error).ok()?;
        let code = text
            .split("(mã ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_default()
            .to_owned();
        Some(Err((code, text)))
    }

    fn take_received(&mut self, unit: &Unit) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for dir in [unit.folder("inbox"), unit.folder("receipts")] {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".edxml") && !name.starts_with('.') {
                    out.push(std::fs::read(e.path()).unwrap());
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
        }
        out
    }
}

struct Http;

/// A minimal HTTP/1.1 call (Connection: close), enough for a loopback API.
fn call(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        body = out;
    }
    (status, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

impl Mode for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn send(&mut self, bus: &Bus, _name: &str, bytes: &[u8]) -> String {
        let (status, body) = call(bus.a.http.unwrap(), "POST", "/v1/packages", bytes);
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
        let v = json(&body);
        assert_eq!(v["state"], "queued");
        v["local_id"].as_str().unwrap().to_owned()
    }

    fn outcome(&mut self, bus: &Bus, handle: &str) -> Option<Outcome> {
        let (status, body) = call(
            bus.a.http.unwrap(),
            "GET",
            &format!("/v1/packages/{handle}?lang=en"),
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v = json(&body);
        match v["state"].as_str().unwrap() {
            "queued" => None,
            "sent" => Some(Ok((
                v["id"].as_str().unwrap().to_owned(),
                v["duplicate"].as_bool().unwrap(),
            ))),
            "failed" => Some(Err((
                v["code"].as_str().unwrap().to_owned(),
                v["message"].as_str().unwrap().to_owned(),
            ))),
            other => panic!("state {other}"),
        }
    }

    fn take_received(&mut self, unit: &Unit) -> Vec<Vec<u8>> {
        let port = unit.http.unwrap();
        let (status, body) = call(port, "GET", "/v1/inbox", b"");
        assert_eq!(status, 200);
        let mut out = Vec::new();
        for item in json(&body)["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap();
            let (status, bytes) = call(port, "GET", &format!("/v1/inbox/{id}"), b"");
            assert_eq!(status, 200);
            out.push(bytes);
            let (status, _) = call(port, "POST", &format!("/v1/inbox/{id}/ack"), b"");
            assert_eq!(status, 204);
            // Acking again is harmless.
            assert_eq!(
                call(port, "POST", &format!("/v1/inbox/{id}/ack"), b"").0,
                204
            );
        }
        out
    }
}

/// Documents by DocumentId at B, and 01s by the DocumentId they answer at A.
#[derive(Default)]
struct Seen {
    documents: HashMap<String, u32>,
    arrived: HashMap<String, u32>,
}

impl Seen {
    fn take(&mut self, mode: &mut dyn Mode, bus: &Bus) {
        for bytes in mode.take_received(&bus.b) {
            match edxml::read(&bytes, &edxml::Limits::default())
                .unwrap()
                .package
            {
                Package::Document(d) => {
                    *self.documents.entry(d.document_id.unwrap()).or_default() += 1;
                }
                other => panic!("B got {other:?}"),
            }
        }
        for bytes in mode.take_received(&bus.a) {
            match edxml::read(&bytes, &edxml::Limits::default())
                .unwrap()
                .package
            {
                Package::Status(s) => {
                    assert_eq!(s.status_code.code(), "01");
                    *self
                        .arrived
                        .entry(s.response_for.document_id.unwrap())
                        .or_default() += 1;
                }
                other => panic!("A got {other:?}"),
            }
        }
        for (what, map) in [("document", &self.documents), ("01", &self.arrived)] {
            let twice: Vec<_> = map.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "{what} received twice: {twice:?}");
        }
    }
}

fn wait_for<T>(what: &str, bus: &Bus, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; logs in {}",
            bus.root.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Both adapters have made their folders and answer on their HTTP port.
fn wait_ready(bus: &Bus) {
    for unit in [&bus.a, &bus.b] {
        wait_for("the adapter to start", bus, || {
            std::net::TcpStream::connect(("127.0.0.1", unit.http.unwrap()))
                .ok()
                .filter(|_| unit.folder("outbox").is_dir())
        });
    }
}

fn conformance(mode: &mut dyn Mode) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup_with(100, true);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let name = mode.name();
    let mut seen = Seen::default();
    wait_ready(&bus);

    // 1. Delivers once, and the 01 comes back once.
    let ids: Vec<String> = (0..5).map(doc_id_of).collect();
    let handles: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| mode.send(&bus, &format!("c-{i}"), &document(B, id)))
        .collect();
    let mut relay_ids = Vec::new();
    for h in &handles {
        let o = wait_for("an outcome", &bus, || mode.outcome(&bus, h));
        let (relay_id, duplicate) = o.unwrap_or_else(|e| panic!("{name}: refused {e:?}"));
        assert!(!duplicate);
        relay_ids.push(relay_id);
    }
    wait_for("delivery and receipts", &bus, || {
        seen.take(mode, &bus);
        ids.iter()
            .all(|d| seen.documents.contains_key(d) && seen.arrived.contains_key(d))
            .then_some(())
    });

    // 2. The same package again: the relay's first answer, marked duplicate; nothing delivered.
    let again = mode.send(&bus, "c-0-again", &document(B, &ids[0]));
    let (relay_id, duplicate) =
        wait_for("the repeat's outcome", &bus, || mode.outcome(&bus, &again))
            .unwrap_or_else(|e| panic!("{name}: repeat refused {e:?}"));
    assert!(duplicate, "{name}: the repeat is a duplicate");
    assert_eq!(relay_id, relay_ids[0], "{name}: the first answer");

    // 3. A refusal, with the relay's code and reason.
    let bad = mode.send(&bus, "c-bad", &document("000.00.00.Z99", &doc_id_of(77)));
    let (code, text) = wait_for("the refusal", &bus, || mode.outcome(&bus, &bad))
        .expect_err("an unknown recipient is refused");
    assert_eq!(code, "unknown_recipient", "{name}: {text}");
    assert!(text.contains("000.00.00.Z99"), "{name}: {text}");

    // Quiet for a while: nothing arrives twice.
    std::thread::sleep(Duration::from_secs(3));
    seen.take(mode, &bus);
    assert_eq!(seen.documents.len(), 5, "{name}");
    assert_eq!(seen.arrived.len(), 5, "{name}");

    // 4. A clean stop exits 0; after a restart the adapter carries on.
    assert!(bus.a.proc.stop().success(), "{name}: A's exit");
    assert!(bus.b.proc.stop().success(), "{name}: B's exit");
    bus.a.proc.start();
    bus.b.proc.start();
    wait_ready(&bus);
    let last = doc_id_of(5);
    let h = mode.send(&bus, "c-5", &document(B, &last));
    wait_for("delivery after the restart", &bus, || {
        seen.take(mode, &bus);
        (mode.outcome(&bus, &h).is_some()
            && seen.documents.contains_key(&last)
            && seen.arrived.contains_key(&last))
        .then_some(())
    });
    assert_eq!(seen.documents.len(), 6, "{name}");
}

#[test]
fn folder_mode_passes_the_conformance_suite() {
    conformance(&mut Folder);
}

#[test]
fn http_mode_passes_the_conformance_suite() {
    conformance(&mut Http);
}

#[test]
fn http_mode_reports_bad_requests_and_sends_a_status_the_dms_asks_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup_with(100, true);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let (a, b) = (bus.a.http.unwrap(), bus.b.http.unwrap());
    wait_ready(&bus);

    // Unreadable, and not this unit's package: 422 at once, Vietnamese by default.
    let (status, body) = call(a, "POST", "/v1/packages", b"<edXML><khong");
    assert_eq!(status, 422);
    let v = json(&body);
    assert_eq!(v["code"], "package_unreadable");
    assert!(v["message"].as_str().unwrap().contains("không đọc được"));
    let (status, body) = call(b, "POST", "/v1/packages?lang=en", &document(B, "x"));
    assert_eq!(status, 422);
    let v = json(&body);
    assert_eq!(v["code"], "sender_mismatch");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("this adapter is unit")
    );
    assert_eq!(call(a, "GET", "/v1/packages/424242", b"").0, 404);

    // A document to B, then B's DMS reports 03 (registered) through its adapter.
    let id = doc_id_of(1);
    let (status, body) = call(a, "POST", "/v1/packages", &document(B, &id));
    assert_eq!(status, 202);
    let local = json(&body)["local_id"].as_str().unwrap().to_owned();
    let relay_id = wait_for("acceptance", &bus, || {
        let v = json(&call(a, "GET", &format!("/v1/packages/{local}"), b"").1);
        (v["state"] == "sent").then(|| v["id"].as_str().unwrap().to_owned())
    });
    wait_for("delivery to B", &bus, || {
        let v = json(&call(b, "GET", "/v1/inbox", b"").1);
        (!v["items"].as_array().unwrap().is_empty()).then_some(())
    });
    let (status, body) = call(
        b,
        "POST",
        "/v1/status",
        br#"{"to":"000.00.00.G01","document_id":"000.00.00.G01,2026/11/23,1/TEST","status_code":"99"}"#,
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let body = format!(
        r#"{{"to":"{A}","document_id":"{id}","status_code":"03","description":"Đã vào sổ","staff":"Nguyễn Văn A"}}"#
    );
    let (status, resp) = call(b, "POST", "/v1/status", body.as_bytes());
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&resp));
    // A's tracking (through A's adapter) shows B registered it.
    wait_for("the 03 in the tracking", &bus, || {
        let (status, body) = call(a, "GET", &format!("/v1/tracking/{relay_id}"), b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v = json(&body);
        (v["recipients"][0]["state"] == "registered").then_some(())
    });
}
