//! Behaviour of the store as the relay sees it: archive, event log, trees, reopen, group commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::{Deserialize, Serialize};
use store::{Batch, Digest, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Accepted { doc: String, recipients: u32 },
    Delivered { doc: String, unit: String },
}

fn accepted(doc: &str) -> Event {
    Event::Accepted {
        doc: doc.into(),
        recipients: 3,
    }
}

#[test]
fn open_creates_missing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/relay");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.dir(), dir);
    assert!(dir.join("db").is_dir());
    assert!(dir.join("archive").is_dir());
}

#[test]
fn open_on_a_file_names_the_path_in_both_languages() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(file.join("store")).unwrap_err();
    assert_eq!(err.code(), "store.open");
    let shown = file.join("store").display().to_string();
    assert!(err.message_en().contains(&shown), "{}", err.message_en());
    assert!(err.message_vi().contains(&shown), "{}", err.message_vi());
    assert!(err.message_vi().contains("Cần làm"));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_while_the_first_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = Store::open(tmp.path()).unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert_eq!(err.code(), "store.db_open");
    assert!(err.message_en().contains("no other relay process"));
}

#[test]
fn archive_returns_what_was_put_under_its_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let package = b"abc".to_vec();
    let digest = store.archive().put(&package).unwrap();
    // The FIPS 180-2 test vector for SHA-256("abc").
    assert_eq!(
        digest.to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(store.archive().get(&digest).unwrap(), Some(package));
    let hex = digest.to_hex();
    let path = store.archive().path(&digest);
    assert!(path.ends_with(format!("archive/{}/{}/{hex}", &hex[0..2], &hex[2..4])));
    assert!(path.is_file());
}

#[test]
fn archive_file_can_be_checked_with_sha256sum_semantics() {
    // The file on disk is the package byte for byte, so an auditor's own tools apply.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let package: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = store.archive().put(&package).unwrap();
    assert_eq!(
        std::fs::read(store.archive().path(&digest)).unwrap(),
        package
    );
}

#[test]
fn storing_the_same_package_twice_stores_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = store.archive().put(b"same bytes").unwrap();
    let b = store.archive().put(b"same bytes").unwrap();
    let c = store.archive().put(b"other bytes").unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let files = walk_files(&tmp.path().join("archive"));
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn archive_get_of_unknown_digest_is_none_and_a_damaged_file_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.archive().get(&Digest::of(b"never stored")).unwrap(),
        None
    );
    let d = store.archive().put(b"original").unwrap();
    std::fs::write(store.archive().path(&d), b"tampered").unwrap();
    let err = store.archive().get(&d).unwrap_err();
    assert!(matches!(err, StoreError::ArchiveCorrupt { .. }));
    assert_eq!(err.code(), "store.archive_corrupt");
}

#[test]
fn digest_round_trips_through_hex_and_serde() {
    let d = Digest::of(b"x");
    let parsed: Digest = d.to_hex().parse().unwrap();
    assert_eq!(parsed, d);
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"{}\"", d.to_hex()));
    assert!("zz".parse::<Digest>().is_err());
}

#[test]
fn event_log_numbers_records_in_order_and_scans_from_any_point() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let log = store.events::<Event>();
    assert_eq!(log.last_seq(), None);
    let s1 = log.append(&accepted("d1")).unwrap();
    let s2 = log.append(&accepted("d2")).unwrap();
    let more = log
        .append_all(&[
            Event::Delivered {
                doc: "d1".into(),
                unit: "000.00.00.H41".into(),
            },
            accepted("d3"),
        ])
        .unwrap();
    assert_eq!((s1, s2), (1, 2));
    assert_eq!(more, vec![3, 4]);
    assert_eq!(log.last_seq(), Some(4));
    let from3: Vec<_> = log.scan(3).map(Result::unwrap).collect();
    assert_eq!(from3.len(), 2);
    assert_eq!(from3[0].0, 3);
    assert_eq!(from3[1], (4, accepted("d3")));
    assert_eq!(log.scan(0).count(), 4);
    // A second handle shares the numbering.
    let other = store.events::<Event>();
    assert_eq!(other.append(&accepted("d4")).unwrap(), 5);
}

#[test]
fn trees_support_get_insert_remove_prefix_scan_and_atomic_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let t = store.tree("dedup").unwrap();
    assert_eq!(t.insert(b"a/1", b"one").unwrap(), None);
    assert_eq!(t.insert(b"a/1", b"uno").unwrap(), Some(b"one".to_vec()));
    t.insert(b"a/2", b"two").unwrap();
    t.insert(b"b/1", b"other").unwrap();
    assert_eq!(t.get(b"a/1").unwrap(), Some(b"uno".to_vec()));
    let a: Vec<_> = t.scan_prefix(b"a/").map(Result::unwrap).collect();
    assert_eq!(
        a,
        vec![
            (b"a/1".to_vec(), b"uno".to_vec()),
            (b"a/2".to_vec(), b"two".to_vec())
        ]
    );
    let from: Vec<_> = t.scan_from(b"a/2").map(|r| r.unwrap().0).collect();
    assert_eq!(from, vec![b"a/2".to_vec(), b"b/1".to_vec()]);
    assert_eq!(t.remove(b"a/1").unwrap(), Some(b"uno".to_vec()));
    assert!(!t.contains_key(b"a/1").unwrap());

    assert_eq!(t.insert_if_absent(b"k", b"first").unwrap(), None);
    assert_eq!(
        t.insert_if_absent(b"k", b"second").unwrap(),
        Some(b"first".to_vec())
    );
    assert_eq!(t.get(b"k").unwrap(), Some(b"first".to_vec()));

    let mut batch = Batch::default();
    batch.insert(b"c/1", b"x");
    batch.insert(b"c/2", b"y");
    batch.remove(b"b/1");
    assert_eq!(batch.len(), 3);
    t.apply(batch).unwrap();
    assert_eq!(t.scan_prefix(b"c/").count(), 2);
    assert_eq!(t.get(b"b/1").unwrap(), None);

    // Trees are separate namespaces.
    let other = store.tree("tracking").unwrap();
    assert_eq!(other.get(b"k").unwrap(), None);
    assert!(store.tree("__events").is_err());
}

#[tokio::test]
async fn everything_is_still_there_after_drop_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let digest;
    {
        let store = Store::open(tmp.path()).unwrap();
        digest = store.archive().put(b"package body").unwrap();
        store.events::<Event>().append(&accepted("d1")).unwrap();
        store.events::<Event>().append(&accepted("d2")).unwrap();
        store.tree("views").unwrap().insert(b"k", b"v").unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.archive().get(&digest).unwrap(),
        Some(b"package body".to_vec())
    );
    let log = store.events::<Event>();
    assert_eq!(log.last_seq(), Some(2));
    let all: Vec<_> = log.scan(1).map(|r| r.unwrap().1).collect();
    assert_eq!(all, vec![accepted("d1"), accepted("d2")]);
    // Numbering continues after the last record, never reusing one.
    assert_eq!(log.append(&accepted("d3")).unwrap(), 3);
    assert_eq!(
        store.tree("views").unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let before = store.fsync_count();
    let callers = 64;
    let mut tasks = Vec::new();
    for i in 0..callers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .events::<Event>()
                .append(&accepted(&format!("d{i}")))
                .unwrap();
            store.flush().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let fsyncs = store.fsync_count() - before;
    assert!(fsyncs >= 1);
    assert!(
        fsyncs < callers,
        "{callers} concurrent flushes took {fsyncs} fsyncs"
    );
    assert_eq!(store.events::<Event>().last_seq(), Some(callers));
}

#[tokio::test]
async fn flush_after_drop_of_other_handles_still_works_and_store_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tree = store.tree("t").unwrap();
    tree.insert(b"k", b"v").unwrap();
    store.flush().await.unwrap();
    drop(tree);
    drop(store);
    // Every handle dropped: the lock is released and the directory opens again.
    let again = Store::open(tmp.path()).unwrap();
    assert_eq!(
        again.tree("t").unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
