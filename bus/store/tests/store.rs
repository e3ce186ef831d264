//! Behaviour of the store as the relay sees it: archive, event log, trees, reopen, group commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::{Deserialize, Serialize};
use store::{Batch, Digest, Store, StoreError, StoreOptions};

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
    // Readable at once, before any flush.
    assert!(store.archive().contains(&digest));
    assert_eq!(store.archive().get(&digest).unwrap(), Some(package));
    let at = store.archive().locate(&digest).unwrap().unwrap();
    assert!(at.path.ends_with("archive/seg-000001.dat"), "{at:?}");
    assert_eq!((at.offset, at.len), (48, 3));
}

#[test]
fn an_auditor_can_cut_a_package_out_of_its_segment_with_plain_reads() {
    // locate() names file, offset and length, so `dd … | sha256sum` (or any tool) can check it.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.archive().put(b"a package before it").unwrap();
    let package: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = store.archive().put(&package).unwrap();
    let at = store.archive().locate(&digest).unwrap().unwrap();
    let segment = std::fs::read(&at.path).unwrap();
    let cut = &segment[at.offset as usize..(at.offset + at.len) as usize];
    assert_eq!(cut, &package[..]);
    assert_eq!(Digest::of(cut), digest);
    assert_eq!(
        store.archive().locate(&Digest::of(b"absent")).unwrap(),
        None
    );
}

#[test]
fn storing_the_same_package_twice_stores_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = store.archive().put(b"same bytes").unwrap();
    let size_once = archive_bytes(tmp.path());
    let b = store.archive().put(b"same bytes").unwrap();
    assert_eq!(a, b);
    assert_eq!(archive_bytes(tmp.path()), size_once, "stored twice");
    let c = store.archive().put(b"other bytes").unwrap();
    assert_ne!(a, c);
    assert_eq!(
        archive_bytes(tmp.path()),
        size_once + record_len(b"other bytes".len())
    );
    assert_eq!(size_once, record_len(b"same bytes".len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_the_same_and_different_bytes_store_each_once_and_lose_none() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let shared: Vec<Vec<u8>> = (0..40).map(|i| package_of(i, 3000)).collect();
    let threads = 8;
    let per_thread = 30;
    let mut handles = Vec::new();
    for t in 0..threads {
        let store = store.clone();
        let shared = shared.clone();
        handles.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            for i in 0..per_thread {
                // Same bytes as every other thread, in a different order per thread.
                let s = &shared[(i * 7 + t * 3) % shared.len()];
                assert_eq!(store.archive().put(s).unwrap(), Digest::of(s));
                let own = package_of(1000 + t * per_thread + i, 2000 + i * 10);
                assert_eq!(store.archive().put(&own).unwrap(), Digest::of(&own));
                mine.push(own);
            }
            mine
        }));
    }
    let mut all = shared.clone();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    // shared[(i*7 + t*3) % 40] for 8 threads x 30 puts covers every shared package.
    let unique: u64 = all.iter().map(|p| record_len(p.len())).sum();
    assert_eq!(archive_bytes(tmp.path()), unique, "something stored twice");
    store.flush().await.unwrap();
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    for p in &all {
        assert_eq!(
            store.archive().get(&Digest::of(p)).unwrap().as_ref(),
            Some(p)
        );
    }
    let report = store.archive().verify().unwrap();
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.records, all.len() as u64);
}

#[tokio::test]
async fn a_changed_byte_in_a_segment_is_reported_as_archive_corrupt_and_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.archive().get(&Digest::of(b"never stored")).unwrap(),
        None
    );
    let first = store.archive().put(b"first package").unwrap();
    let d = store.archive().put(b"original package").unwrap();
    store.flush().await.unwrap();
    let at = store.archive().locate(&d).unwrap().unwrap();
    flip_byte(&at.path, at.offset + 3);
    let err = store.archive().get(&d).unwrap_err();
    assert_eq!(err.code(), "store.archive_corrupt");
    match &err {
        StoreError::ArchiveCorrupt {
            path,
            offset,
            digest,
        } => {
            assert_eq!(path, &at.path);
            assert_eq!(*offset, at.offset - 48, "offset of the record");
            assert_eq!(digest, &d.to_hex());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.message_vi().contains(&d.to_hex()));
    assert!(err.message_en().contains("restore that segment"));
    // The neighbour is untouched.
    assert_eq!(
        store.archive().get(&first).unwrap(),
        Some(b"first package".to_vec())
    );
    let report = store.archive().verify().unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].offset, at.offset - 48);
    assert!(report.problems[0].what.contains("does not match"));

    // A damaged header is caught too.
    let at_first = store.archive().locate(&first).unwrap().unwrap();
    flip_byte(&at_first.path, at_first.offset - 48);
    let err = store.archive().get(&first).unwrap_err();
    assert_eq!(err.code(), "store.archive_corrupt");
}

#[tokio::test]
async fn segments_roll_over_at_the_configured_size_and_read_back_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        segment_bytes: 4096,
        ..StoreOptions::default()
    };
    let small: Vec<Vec<u8>> = (0..10).map(|i| package_of(i, 1500)).collect();
    let big = package_of(99, 10_000);
    {
        let store = Store::open_with(tmp.path(), options.clone()).unwrap();
        for p in &small[..5] {
            store.archive().put(p).unwrap();
        }
        // Larger than a segment: gets one of its own.
        store.archive().put(&big).unwrap();
        for p in &small[5..] {
            store.archive().put(p).unwrap();
        }
        store.flush().await.unwrap();
    }
    let segments = segment_sizes(tmp.path());
    // 1548-byte records, two per 4096-byte segment: 2+2+1 | big | 2+2+1.
    assert_eq!(
        segments,
        vec![3096, 3096, 1548, 10_048, 3096, 3096, 1548],
        "{segments:?}"
    );
    let store = Store::open_with(tmp.path(), options).unwrap();
    for p in small.iter().chain([&big]) {
        assert_eq!(
            store.archive().get(&Digest::of(p)).unwrap().as_ref(),
            Some(p)
        );
    }
    let report = store.archive().verify().unwrap();
    assert_eq!((report.segments, report.records), (7, 11));
    assert_eq!(report.problems, vec![]);
    // Writing goes on in the last segment where it stopped.
    let more = package_of(100, 1500);
    store.archive().put(&more).unwrap();
    assert_eq!(*segment_sizes(tmp.path()).last().unwrap(), 3096);
}

#[tokio::test]
async fn intact_records_past_the_last_flush_are_kept_and_a_torn_tail_is_cut_at_reopen() {
    // After kill -9 the page cache keeps what was written but not yet flushed, and sled may have
    // kept a tracking record that refers to it: such a record must stay readable. Only a torn or
    // damaged tail is cut (and overwritten by the next put).
    let tmp = tempfile::tempdir().unwrap();
    let kept;
    {
        let store = Store::open(tmp.path()).unwrap();
        kept = store.archive().put(b"flushed package").unwrap();
        store.flush().await.unwrap();
    }
    let segment = tmp.path().join("archive/seg-000001.dat");
    let durable = std::fs::metadata(&segment).unwrap().len();
    let ghost = b"written but never flushed";
    let mut record = Vec::new();
    record.extend_from_slice(b"TRUCARC1");
    record.extend_from_slice(&(ghost.len() as u64).to_be_bytes());
    record.extend_from_slice(Digest::of(ghost).as_bytes());
    record.extend_from_slice(ghost);
    let intact_end = durable + record.len() as u64;
    // A second record whose payload was damaged, then a torn header.
    let mut damaged = record.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let mut tail = record.clone();
    tail.extend_from_slice(&damaged);
    tail.extend_from_slice(b"TRUCARC1\0\0\0");
    append(&segment, &tail);

    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        intact_end,
        "cut at the damaged record"
    );
    assert!(store.archive().contains(&Digest::of(ghost)));
    assert_eq!(
        store.archive().get(&Digest::of(ghost)).unwrap(),
        Some(ghost.to_vec())
    );
    assert_eq!(
        store.archive().get(&kept).unwrap(),
        Some(b"flushed package".to_vec())
    );
    let next = store.archive().put(b"next package").unwrap();
    assert_eq!(
        store.archive().locate(&next).unwrap().unwrap().offset,
        intact_end + 48,
        "the next put overwrites the cut tail (offset of its payload, past its 48-byte header)"
    );
    store.flush().await.unwrap();
    let report = store.archive().verify().unwrap();
    assert_eq!(
        (report.records, report.problems.len()),
        (3, 0),
        "{report:?}"
    );
    drop(store);
    // Still there after another reopen (the recovered record was indexed durably).
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.archive().get(&Digest::of(ghost)).unwrap(),
        Some(ghost.to_vec())
    );
}

#[test]
fn a_large_package_round_trips_in_a_segment_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    // Past the default 8 MiB threshold for a segment of its own.
    let big: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let small = store.archive().put(b"small").unwrap();
    let d = store.archive().put(&big).unwrap();
    let after = store.archive().put(b"small after").unwrap();
    assert_eq!(store.archive().get(&d).unwrap().as_deref(), Some(&big[..]));
    assert_eq!(
        store.archive().get(&small).unwrap(),
        Some(b"small".to_vec())
    );
    let at = store.archive().locate(&d).unwrap().unwrap();
    assert!(at.path.ends_with("seg-000002.dat"), "{at:?}");
    assert_eq!(at.offset, 48);
    // Small puts go on appending where they were.
    let at_after = store.archive().locate(&after).unwrap().unwrap();
    assert!(at_after.path.ends_with("seg-000001.dat"), "{at_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_the_same_large_package_store_it_once_beside_small_puts() {
    let tmp = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        large_package_bytes: 64 * 1024,
        ..StoreOptions::default()
    };
    let large: Vec<Vec<u8>> = (0..3).map(|i| package_of(i, 200_000 + i)).collect();
    let store = Store::open_with(tmp.path(), options.clone()).unwrap();
    let mut handles = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        let large = large.clone();
        handles.push(std::thread::spawn(move || {
            let mut small = Vec::new();
            for (i, p) in large.iter().enumerate() {
                let own = package_of(100 + t * 10 + i, 5000);
                store.archive().put(&own).unwrap();
                assert_eq!(store.archive().put(p).unwrap(), Digest::of(p));
                small.push(own);
            }
            small
        }));
    }
    let mut all = large.clone();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    let unique: u64 = all.iter().map(|p| record_len(p.len())).sum();
    assert_eq!(archive_bytes(tmp.path()), unique, "something stored twice");
    // Three large segments, each exactly one record, and the small puts in one segment.
    let mut sizes = segment_sizes(tmp.path());
    sizes.sort();
    let mut expected: Vec<u64> = large.iter().map(|p| record_len(p.len())).collect();
    expected.push(12 * record_len(5000));
    expected.sort();
    assert_eq!(sizes, expected);
    store.flush().await.unwrap();
    drop(store);
    let store = Store::open_with(tmp.path(), options).unwrap();
    for p in &all {
        assert_eq!(
            store.archive().get(&Digest::of(p)).unwrap().as_ref(),
            Some(p)
        );
    }
    let report = store.archive().verify().unwrap();
    assert_eq!((report.segments, report.records), (4, 15));
    assert_eq!(report.problems, vec![]);
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

fn with_gap(gap: std::time::Duration) -> StoreOptions {
    StoreOptions {
        commit_gap: gap,
        ..StoreOptions::default()
    }
}

/// `callers` tasks, each appending an event and flushing `each` times in turn.
fn flushing_callers(store: &Store, callers: u64, each: u64) -> Vec<tokio::task::JoinHandle<()>> {
    (0..callers)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..each {
                    store
                        .events::<Event>()
                        .append(&accepted(&format!("d{c}-{k}")))
                        .unwrap();
                    store.flush().await.unwrap();
                }
            })
        })
        .collect()
}

/// One caller flushing time after time (a unit sending document after document, each waiting for
/// its answer, with nothing else writing) never waits for the commit gap: each of its rounds
/// served it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_never_waits_for_the_commit_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), with_gap(std::time::Duration::from_secs(1))).unwrap();
    let before = store.fsync_count();
    for task in flushing_callers(&store, 1, 20) {
        task.await.unwrap();
    }
    assert_eq!(store.fsync_count() - before, 20);
    assert_eq!(store.commit_gap_waits(), 0);
}

/// Many callers at once: rounds wait for the gap and serve them together, and every write is
/// durable (read back after reopening).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_wait_out_the_commit_gap_together() {
    let tmp = tempfile::tempdir().unwrap();
    let options = with_gap(std::time::Duration::from_millis(100));
    let store = Store::open_with(tmp.path(), options.clone()).unwrap();
    let before = store.fsync_count();
    let (callers, each) = (64u64, 5u64);
    for task in flushing_callers(&store, callers, each) {
        task.await.unwrap();
    }
    let rounds = store.fsync_count() - before;
    assert!(store.commit_gap_waits() >= 1, "no round waited for the gap");
    assert!(
        rounds < callers * each / 4,
        "{} flushes took {rounds} rounds",
        callers * each
    );
    drop(store);
    let store = Store::open_with(tmp.path(), options).unwrap();
    assert_eq!(store.events::<Event>().last_seq(), Some(callers * each));
}

/// A burst of callers that is all in does not wait out the gap: under a 10 s gap, 8 callers
/// flushing 3 times each are done long before one gap has passed, because a waiting round starts
/// once no new caller has asked for a moment. (Waiting out the gap, it takes over 10 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_that_is_in_does_not_wait_out_the_commit_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), with_gap(std::time::Duration::from_secs(10))).unwrap();
    let tasks = flushing_callers(&store, 8, 3);
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(8), all)
        .await
        .expect("the flushes waited out a 10 s gap");
    assert!(
        store.commit_gap_waits() >= 1,
        "the gap never came into play"
    );
    assert_eq!(store.events::<Event>().last_seq(), Some(24));
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

/// Size of the record holding a package of `len` bytes (48-byte header + package).
fn record_len(len: usize) -> u64 {
    48 + len as u64
}

/// A distinct package of `len` bytes.
fn package_of(n: usize, len: usize) -> Vec<u8> {
    let mut p = format!("<edXML n=\"{n}\">").into_bytes();
    p.resize(len, b'x');
    p
}

fn segment_sizes(store_dir: &std::path::Path) -> Vec<u64> {
    let mut segments: Vec<_> = std::fs::read_dir(store_dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    segments.sort();
    segments
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect()
}

fn archive_bytes(store_dir: &std::path::Path) -> u64 {
    segment_sizes(store_dir).iter().sum()
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn append(path: &std::path::Path, tail: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(tail).unwrap();
}
