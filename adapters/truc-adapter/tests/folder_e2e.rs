//! Folder mode end to end: a relay (`truc serve`) and two adapters (`truc-adapter`), each its own
//! process, on loopback with a dev PKI. A fake DMS drops documents into A's `outbox/` (written
//! then renamed, as a DMS should) and takes every file that appears in B's `inbox/` and A's
//! `receipts/` away at once, counting them by DocumentId, so a package written twice would be
//! seen twice. The relay is stopped for a while, adapters are SIGKILLed mid-transfer; in every
//! case each document reaches B exactly once and each 01 comes back to A exactly once.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn documents_arrive_once_receipts_come_back_and_refusals_are_explained() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(300);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let expected = drop_documents(&bus, 0..20);
    // A file the DMS writes slowly in place (no rename): never taken half-written.
    let slow = bus.a.folder("outbox").join("slow.edxml");
    let slow_id = doc_id_of(999);
    let slow_bytes = document(B, &slow_id);
    let (first, rest) = slow_bytes.split_at(slow_bytes.len() / 2);
    std::fs::write(&slow, first).unwrap();
    for chunk in rest.chunks(rest.len() / 5 + 1) {
        std::thread::sleep(Duration::from_millis(150));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&slow)
            .unwrap();
        std::io::Write::write_all(&mut f, chunk).unwrap();
    }
    // Refused by the relay (unknown recipient) and unreadable locally.
    drop_in(
        &bus.a.folder("outbox"),
        "unknown.edxml",
        &document("000.00.00.Z99", &doc_id_of(5000)),
    );
    drop_in(
        &bus.a.folder("outbox"),
        "broken.edxml",
        b"<edXML><khong-dong",
    );

    let mut all = expected.clone();
    all.push(slow_id.clone());
    let (inbox, receipts) = settle(&mut bus, &all, 21, |bus, _| {
        bus.relay.assert_running();
        bus.a.proc.assert_running();
        bus.b.proc.assert_running();
    });
    assert_eq!(inbox.files, 21);
    assert_eq!(receipts.files, 21);

    let failed = bus.a.folder("failed");
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_files(&failed, ".error.txt") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let unknown = std::fs::read_to_string(failed.join("unknown.edxml.error.txt")).unwrap();
    assert!(unknown.contains("unknown_recipient"), "{unknown}");
    assert!(unknown.contains("KHÔNG được gửi"), "{unknown}");
    assert!(unknown.contains("000.00.00.Z99"), "{unknown}");
    let vi_at = unknown
        .find("không có trong danh bạ")
        .expect("the relay's Vietnamese message");
    let en_at = unknown
        .find("is not in the relay's directory")
        .expect("the relay's English message");
    assert!(vi_at < en_at, "Vietnamese first:\n{unknown}");
    let broken = std::fs::read_to_string(failed.join("broken.edxml.error.txt")).unwrap();
    assert!(broken.contains("package_unreadable"), "{broken}");
    assert_eq!(
        std::fs::read(failed.join("broken.edxml")).unwrap(),
        b"<edXML><khong-dong",
        "the clerk gets the file back as dropped"
    );
    let result: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bus.a.folder("sent").join("doc-00000.edxml.result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["document_id"], doc_id_of(0));
    assert_eq!(result["recipients"][0]["unit"], B);
    assert!(!result["id"].as_str().unwrap().is_empty());
    assert_eq!(count_files(&bus.a.folder("sent"), ".edxml"), 21);

    // A clean stop exits 0 and leaves nothing in flight.
    assert!(bus.a.proc.stop().success());
    assert!(bus.b.proc.stop().success());
}

#[test]
fn a_relay_outage_delays_but_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    // The relay is down when the DMS drops its files.
    bus.a.proc.start();
    bus.b.proc.start();
    let first = drop_documents(&bus, 0..30);
    std::thread::sleep(Duration::from_secs(3));
    // The files left outbox/ while the relay was down: they are in the durable local outbox.
    assert_eq!(count_files(&bus.a.folder("outbox"), ".edxml"), 0);
    assert_eq!(count_files(&bus.b.folder("inbox"), ".edxml"), 0);
    bus.relay.start();
    let (inbox, receipts) = settle(&mut bus, &first, 30, |_, _| {});
    // Down again in the middle of a transfer, for a while.
    let second = drop_documents(&bus, 30..90);
    let mut outage = false;
    let (inbox2, receipts2) = settle(&mut bus, &second, 90, |bus, elapsed| {
        if !outage && elapsed > Duration::from_millis(300) {
            // A stop (SIGTERM), not a SIGKILL: after a SIGKILL of `truc serve` the relay
            // sometimes refuses a recipient's 01 with `status_unknown_document` for a document
            // it did deliver (its `trk_got` index entry is lost; reported to the relay's owner).
            // Swap in `kill9()` here to reproduce it (about 1 run in 5).
            assert!(bus.relay.stop().success(), "the relay stops cleanly");
            std::thread::sleep(Duration::from_secs(2));
            bus.relay.start();
            outage = true;
        }
    });
    assert!(outage);
    assert_eq!(inbox.files + inbox2.files, 90);
    assert_eq!(receipts.files + receipts2.files, 90);
    check_sent(&bus, 90);
}

#[test]
fn adapters_killed_with_sigkill_mid_transfer_lose_and_duplicate_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let n = 300;
    let expected = drop_documents(&bus, 0..n);
    let mut kills = 0;
    let mut next_kill = Duration::from_millis(700);
    let (inbox, receipts) = settle(&mut bus, &expected, n, |bus, elapsed| {
        if kills < 8 && elapsed > next_kill {
            // Alternate: the sender's adapter, then the recipient's.
            let unit = if kills % 2 == 0 {
                &mut bus.a
            } else {
                &mut bus.b
            };
            unit.proc.kill9();
            std::thread::sleep(Duration::from_millis(200));
            unit.proc.start();
            kills += 1;
            next_kill = elapsed + Duration::from_millis(600);
        }
    });
    println!("adapter SIGKILLs: {kills}");
    assert!(
        kills >= 4,
        "the transfer ended before enough kills ({kills})"
    );
    assert_eq!(inbox.files, n as u64);
    assert_eq!(receipts.files, n as u64);
    check_sent(&bus, n);
}

/// Issue 5, point 7.
#[test]
fn a_thousand_packages_dropped_in_one_outbox_arrive_once_with_every_receipt() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let n = 1_000;
    let started = Instant::now();
    let expected = drop_documents(&bus, 0..n);
    let (inbox, receipts) = settle(&mut bus, &expected, n, |bus, _| {
        bus.relay.assert_running();
        bus.a.proc.assert_running();
        bus.b.proc.assert_running();
    });
    let took = started.elapsed();
    println!(
        "{n} documents delivered and receipted end to end in {:.1} s ({:.0} documents/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(inbox.files, n as u64);
    assert_eq!(receipts.files, n as u64);
    check_sent(&bus, n);
}
