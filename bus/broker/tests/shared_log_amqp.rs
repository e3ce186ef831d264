//! The shared log against the real RabbitMQ on 127.0.0.1:5672 (`TRUC_TEST_AMQP_URL` overrides):
//! two handles (two "relay nodes") append, every reader sees every confirmed record once, in one
//! order, from the start or from any offset, and after RabbitMQ closed its connection. The stream
//! is declared under a unique prefix and deleted at the end, pass or fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use broker::{LogRecord, SharedLog, SharedLogConfig};
use tokio::sync::mpsc::Receiver;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test.log.{}.{nanos}.", std::process::id())
}

/// Deletes the stream when dropped (pass or fail).
struct Cleanup(SharedLog);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let log = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(log.delete())
        })
        .join();
    }
}

async fn take(rx: &mut Receiver<LogRecord>, n: usize) -> Vec<LogRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("records come within 20 s")
            .expect("reader alive");
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_one_order_every_reader_sees_every_confirmed_record_once() {
    let prefix = unique_prefix();
    let a = SharedLog::open(SharedLogConfig::new(url(), prefix.clone()))
        .await
        .unwrap();
    let _cleanup = Cleanup(a.clone());
    let b = SharedLog::open(SharedLogConfig::new(url(), prefix.clone()))
        .await
        .unwrap();
    let mut live = a.read_from(None);

    let (wa, wb) = (a.clone(), b.clone());
    let ta = tokio::spawn(async move {
        for i in 0..300 {
            wa.append(format!("a{i}").as_bytes()).await.unwrap();
        }
    });
    let tb = tokio::spawn(async move {
        for i in 0..300 {
            wb.append(format!("b{i}").as_bytes()).await.unwrap();
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();

    let seen = take(&mut live, 600).await;
    let offsets: Vec<u64> = seen.iter().map(|r| r.offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets strictly increase"
    );
    // Each writer's records keep their order, and nothing is missing or doubled.
    for w in ["a", "b"] {
        let mine: Vec<String> = seen
            .iter()
            .map(|r| String::from_utf8(r.data.clone()).unwrap())
            .filter(|s| s.starts_with(w))
            .collect();
        let expected: Vec<String> = (0..300).map(|i| format!("{w}{i}")).collect();
        assert_eq!(mine, expected, "writer {w}: every record once, in order");
    }

    // A second reader from the start sees the same order; one from an offset, the rest of it.
    let mut again = b.read_from(None);
    assert_eq!(take(&mut again, 600).await, seen);
    let mut middle = b.read_from(Some(seen[400].offset));
    assert_eq!(take(&mut middle, 200).await, seen[400..].to_vec());

    // A record appended after a reader was caught up reaches it (a live tail).
    a.append(b"tail").await.unwrap();
    let tail = take(&mut live, 1).await;
    assert_eq!(tail[0].data, b"tail");
    assert!(tail[0].offset > seen[599].offset);
    println!(
        "600 records from two writers, offsets {}..={}",
        seen[0].offset, tail[0].offset
    );
}
