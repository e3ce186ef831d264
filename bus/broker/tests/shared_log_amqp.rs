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

/// Process id, a counter and the time: the tests of this file start together, and two of them
/// once read the same nanosecond, shared one stream and read each other's records (CI, 3288b01).
fn unique_prefix() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test.log.{}.{n}.{nanos}.", std::process::id())
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

/// A TCP relay to RabbitMQ that can go silent: [`Proxy::freeze`] stops every connection made
/// so far from carrying anything more, either way, while keeping it open (no FIN, no reset), as a
/// dead peer or a firewall dropping packets would; connections made afterwards work.
struct Proxy {
    addr: std::net::SocketAddr,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let gen_ = generation.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = gen_.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, born, gen_.clone()));
                tokio::spawn(pump(sr, cw, born, gen_.clone()));
            }
        });
        Proxy { addr, generation }
    }

    fn freeze(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if generation.load(std::sync::atomic::Ordering::SeqCst) > born {
            // Silent from now on: hold both sockets open and carry nothing.
            let _keep = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A connection that goes silent without closing (the case a reader blocked on its consumer
/// cannot see by itself): the append gives up on its confirm and publishes again on a new
/// connection; the reader gives its connection up once a bounded check after 5 s without a
/// delivery gets no answer (or the 10-s default heartbeat finds RabbitMQ silent), closes it
/// without waiting on the dead peer for more than a moment, and reads on from the record after
/// the last one it handed over: no gap, no repeat. With RabbitMQ's own 60-s heartbeat and no
/// check, or with a close that waits on the dead peer, the reader sits there and the bound below
/// fails the test (both seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_dropped_and_both_appender_and_reader_go_on() {
    let prefix = unique_prefix();
    let direct = SharedLog::open(SharedLogConfig::new(url(), prefix.clone()))
        .await
        .unwrap();
    let _cleanup = Cleanup(direct.clone());
    let upstream: std::net::SocketAddr = {
        let u: lapin::uri::AMQPUri = url().parse().unwrap();
        tokio::net::lookup_host((u.authority.host.as_str(), u.authority.port))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = Proxy::start(upstream).await;
    let proxied_url = {
        let u: lapin::uri::AMQPUri = url().parse().unwrap();
        format!(
            "amqp://{}:{}@{}/{}",
            u.authority.userinfo.username,
            u.authority.userinfo.password,
            proxy.addr,
            urlencode_vhost(&u.vhost)
        )
    };
    let via = SharedLog::open(SharedLogConfig::new(proxied_url, prefix.clone()))
        .await
        .unwrap();
    let mut reader = via.read_from(None);
    for i in 0..3 {
        via.append(format!("before{i}").as_bytes()).await.unwrap();
    }
    let before = take(&mut reader, 3).await;

    proxy.freeze();
    let t0 = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(30), via.append(b"after0"))
        .await
        .expect("the append gives up on the silent connection and publishes on a new one")
        .unwrap();
    let append_s = t0.elapsed().as_secs_f64();
    direct.append(b"after1").await.unwrap();
    let mut after = Vec::new();
    while after.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .expect("the reader notices its silent connection and reads on within 60 s")
            .expect("reader alive");
        after.push(r);
    }
    let read_s = t0.elapsed().as_secs_f64();
    let data: Vec<&[u8]> = after.iter().map(|r| r.data.as_slice()).collect();
    assert_eq!(
        data,
        vec![&b"after0"[..], &b"after1"[..]],
        "no gap, no repeat"
    );
    assert!(after[0].offset > before[2].offset && after[1].offset > after[0].offset);
    println!("silent connection: append went on after {append_s:.1} s, reader after {read_s:.1} s");
}

fn urlencode_vhost(vhost: &str) -> String {
    vhost.replace('%', "%25").replace('/', "%2f")
}

/// Appends made while a message is out go together in the next one: 400 concurrent appends from
/// one handle all come back, each once, in far fewer stream messages than records; a reader
/// resuming in the middle of a grouped message gets exactly the rest; and a message as written
/// before grouping (no `truc-batch` header) still reads as one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_messages_and_a_reader_resumes_inside_one() {
    use broker::RECORDS_PER_MESSAGE;
    let prefix = unique_prefix();
    let log = SharedLog::open(SharedLogConfig::new(url(), prefix.clone()))
        .await
        .unwrap();
    let _cleanup = Cleanup(log.clone());

    // A record as an older relay wrote it: one plain message.
    {
        let conn = lapin::Connection::connect(&url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.basic_publish(
            "".into(),
            log.stream().as_str().into(),
            lapin::options::BasicPublishOptions::default(),
            b"plain",
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        conn.close(200, "done".into()).await.unwrap();
    }

    let mut tasks = Vec::new();
    for i in 0..400 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(format!("r{i}").as_bytes()).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut reader = log.read_from(None);
    let seen = take(&mut reader, 401).await;
    assert_eq!(seen[0].data, b"plain");
    assert_eq!(seen[0].offset % RECORDS_PER_MESSAGE, 0);
    let offsets: Vec<u64> = seen.iter().map(|r| r.offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets strictly increase"
    );
    let mut got: Vec<String> = seen[1..]
        .iter()
        .map(|r| String::from_utf8(r.data.clone()).unwrap())
        .collect();
    got.sort();
    let mut expected: Vec<String> = (0..400).map(|i| format!("r{i}")).collect();
    expected.sort();
    assert_eq!(got, expected, "every record once");
    let messages = {
        let mut m: Vec<u64> = offsets.iter().map(|o| o / RECORDS_PER_MESSAGE).collect();
        m.dedup();
        m.len()
    };
    assert!(
        messages < 200,
        "400 concurrent appends went out in {messages} messages: not grouped"
    );

    // Resume inside a message that holds several records.
    let inside = seen
        .windows(2)
        .position(|w| w[0].offset / RECORDS_PER_MESSAGE == w[1].offset / RECORDS_PER_MESSAGE)
        .map(|i| i + 1)
        .expect("some message holds two records");
    let mut resumed = log.read_from(Some(seen[inside].offset));
    assert_eq!(
        take(&mut resumed, seen.len() - inside).await,
        seen[inside..].to_vec()
    );
    println!(
        "401 records in {messages} stream messages; resumed at record {inside} (offset {})",
        seen[inside].offset
    );
}

/// A log under `prefix` whose messages start at most once per `gap` under load.
async fn with_gap(prefix: &str, gap: Duration) -> SharedLog {
    SharedLog::open(SharedLogConfig {
        append_gap: gap,
        ..SharedLogConfig::new(url(), prefix)
    })
    .await
    .unwrap()
}

/// `n` appenders at once, each appending `each` records `<tag><appender>.<i>` one after another.
async fn appenders(log: &SharedLog, n: usize, each: usize, tag: &str) {
    let tasks: Vec<_> = (0..n)
        .map(|t| {
            let (log, tag) = (log.clone(), tag.to_owned());
            tokio::spawn(async move {
                for i in 0..each {
                    log.append(format!("{tag}{t}.{i}").as_bytes())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_appender_never_waits_for_the_append_gap() {
    let prefix = unique_prefix();
    // A gap no test could sit out unnoticed: 20 waits would take 20 s.
    let log = with_gap(&prefix, Duration::from_secs(1)).await;
    let _cleanup = Cleanup(log.clone());
    let mut reader = log.read_from(None);
    let started = std::time::Instant::now();
    for i in 0..20 {
        log.append(format!("lone{i}").as_bytes()).await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(log.gap_waits(), 0, "an appender alone waited for the gap");
    assert_eq!(log.messages(), 20, "one message per append, each alone");
    let seen = take(&mut reader, 20).await;
    let data: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8(r.data.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("lone{i}")).collect();
    assert_eq!(data, expected);
    println!("20 lone appends in {took:?}, none waited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_wait_out_the_append_gap_together() {
    let prefix = unique_prefix();
    let log = with_gap(&prefix, Duration::from_millis(100)).await;
    let _cleanup = Cleanup(log.clone());
    let mut reader = log.read_from(None);
    appenders(&log, 32, 5, "t").await;
    let (messages, waits) = (log.messages(), log.gap_waits());
    assert!(waits >= 1, "32 appenders at once never waited for the gap");
    // Each wait gathers what came in meanwhile: 160 appends in far fewer messages.
    assert!(
        messages <= 40,
        "160 appends went out in {messages} messages under a 100 ms gap"
    );
    let seen = take(&mut reader, 160).await;
    for t in 0..32 {
        let mine: Vec<String> = seen
            .iter()
            .map(|r| String::from_utf8(r.data.clone()).unwrap())
            .filter(|s| s.starts_with(&format!("t{t}.")))
            .collect();
        let expected: Vec<String> = (0..5).map(|i| format!("t{t}.{i}")).collect();
        assert_eq!(mine, expected, "appender {t}: every record once, in order");
    }
    println!("160 appends from 32 appenders: {messages} messages, {waits} waited for the gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_that_is_in_does_not_wait_out_the_append_gap() {
    let prefix = unique_prefix();
    // Waiting out this gap even once per round of appends would take 20 s.
    let log = with_gap(&prefix, Duration::from_secs(10)).await;
    let _cleanup = Cleanup(log.clone());
    let started = std::time::Instant::now();
    appenders(&log, 8, 3, "b").await;
    let took = started.elapsed();
    let waits = log.gap_waits();
    assert!(waits >= 1, "8 appenders at once never waited for the gap");
    assert!(
        took < Duration::from_secs(8),
        "24 appends took {took:?}: a message waited out the 10 s gap after the burst was in"
    );
    println!(
        "24 appends from 8 appenders in {took:?}: {} messages, {waits} waited",
        log.messages()
    );
}
