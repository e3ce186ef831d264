//! `AmqpBroker::declare_mailboxes`, the relay's declare of every unit's mailbox at start, against
//! the real RabbitMQ on 127.0.0.1:5672: every queue exists, durable, with the mailbox arguments
//! and bound to the exchange by its unit code (a publish reaches it); a second call declares
//! nothing; a refusal (an existing queue with other arguments) is an error, not a silent half.
//! Everything is declared under a unique prefix and deleted at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, SystemTime};

use broker::{AmqpBroker, AmqpConfig, Broker, Publish, contract::message};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test.declare.{tag}.{}.{nanos}.", std::process::id())
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl must be installed with RabbitMQ (bash ops/test.sh installs it)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mailbox_is_declared_durable_and_bound_by_its_unit_code() {
    let prefix = prefix("all");
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let b = AmqpBroker::open(
        store,
        AmqpConfig {
            prefix: prefix.clone(),
            ..AmqpConfig::new(URL)
        },
    )
    .await
    .unwrap();
    let units: Vec<String> = (0..2_000).map(|i| format!("000.{i:05}.00.D00")).collect();
    let result = async {
        let first = b.declare_mailboxes(&units).await?;
        let again = b.declare_mailboxes(&units).await?;
        // A publish to the last unit reaches its queue (the binding exists) and is fetched.
        let last = units.last().unwrap().clone();
        b.publish(vec![Publish {
            mailbox: last.clone(),
            message: message("m1", SystemTime::now()),
        }])
        .await?;
        let got = b.fetch(&last, 10, Duration::from_secs(5)).await?;
        Ok::<_, broker::BrokerError>((first, again, got))
    }
    .await;
    let queues = rabbitmqctl(&[
        "list_queues",
        "name",
        "durable",
        "arguments",
        "--no-table-headers",
        "-q",
    ]);
    let bindings = rabbitmqctl(&[
        "list_bindings",
        "source_name",
        "destination_name",
        "routing_key",
        "--no-table-headers",
        "-q",
    ]);
    let declared = b.declared_mailboxes();
    b.delete(&units).await.unwrap();
    b.close().await;

    let (first, again, got) = result.unwrap();
    assert_eq!(
        first,
        units.len(),
        "every mailbox declared by the first call"
    );
    assert_eq!(again, 0, "nothing declared twice on one connection");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.id, "m1");
    assert_eq!(declared.len(), units.len());
    let ours: Vec<&str> = queues
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}mailbox.")))
        .collect();
    assert_eq!(ours.len(), units.len(), "one queue per unit");
    for line in &ours {
        assert!(line.contains("\ttrue\t"), "not durable: {line}");
        assert!(
            line.contains(&format!("{{\"x-dead-letter-exchange\",\"{prefix}dead\"}}")),
            "without the dead-letter exchange: {line}"
        );
    }
    let bound: HashSet<(String, String)> = bindings
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 3 && f[0] == format!("{prefix}mailbox"))
                .then(|| (f[1].to_owned(), f[2].to_owned()))
        })
        .collect();
    for u in &units {
        assert!(
            bound.contains(&(format!("{prefix}mailbox.{u}"), u.clone())),
            "{u} is not bound by its code"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_declare_is_an_error_that_names_it() {
    let prefix = prefix("refused");
    // A queue under the mailbox name but without the mailbox arguments: RabbitMQ refuses to
    // declare it again with other arguments (PRECONDITION_FAILED).
    let conn = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let odd = "000.00.77.D00".to_owned();
    ch.queue_declare(
        format!("{prefix}mailbox.{odd}").into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let b = AmqpBroker::open(
        store,
        AmqpConfig {
            prefix: prefix.clone(),
            ..AmqpConfig::new(URL)
        },
    )
    .await
    .unwrap();
    let mut units: Vec<String> = (0..300).map(|i| format!("000.{i:05}.00.D00")).collect();
    units.insert(150, odd.clone());
    let r = b.declare_mailboxes(&units).await;
    b.delete(&units).await.unwrap();
    b.close().await;
    let _ = conn.close(200, "done".into()).await;
    let e = r.expect_err("an existing queue with other arguments must fail the declare");
    assert!(
        e.to_string().contains("PRECONDITION_FAILED") || format!("{e:?}").contains("PRECONDITION"),
        "the error says why: {e:?}"
    );
    assert!(
        !b.declared_mailboxes().contains(&odd),
        "a refused mailbox is not reported as declared"
    );
}
