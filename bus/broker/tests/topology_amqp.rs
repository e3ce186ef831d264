//! `ops/rabbitmq/definitions.json` ships what the RabbitMQ backend declares: the same names,
//! types and arguments, and policies aimed at the queues the backend makes. Checked twice: by
//! reading the file against [`broker::Topology`], and by importing it (under a unique prefix)
//! into the running server and opening the backend on top, which RabbitMQ refuses
//! (PRECONDITION_FAILED) if any declaration differs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use broker::{
    AmqpBroker, AmqpConfig, Broker, Digest, Message, MessageKind, Publish, SharedLog,
    SharedLogConfig, Topology,
};
use serde_json::Value;

fn definitions() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/rabbitmq/definitions.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn named<'a>(defs: &'a Value, section: &str, name: &str) -> &'a Value {
    defs[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{section} has no {name:?} in definitions.json"))
}

fn args(pairs: Vec<(&str, String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect(),
    )
}

/// A regex-escaped literal (what a policy pattern needs for a name prefix).
fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

#[test]
fn shipped_definitions_name_and_shape_what_the_backend_declares() {
    let defs = definitions();
    let t = Topology {
        prefix: "truc.".to_owned(),
        queue_type: broker::QueueType::Classic,
    };
    let ex = named(&defs, "exchanges", &t.exchange());
    assert_eq!(
        (ex["type"].as_str(), ex["durable"].as_bool()),
        (Some("direct"), Some(true))
    );
    let dx = named(&defs, "exchanges", &t.dead_exchange());
    assert_eq!(
        (dx["type"].as_str(), dx["durable"].as_bool()),
        (Some("fanout"), Some(true))
    );
    let dq = named(&defs, "queues", &t.dead_queue());
    assert_eq!(dq["durable"], true);
    assert_eq!(dq["arguments"], args(t.dead_queue_arguments()));
    let bindings = defs["bindings"].as_array().unwrap();
    assert!(
        bindings
            .iter()
            .any(|b| b["source"] == t.dead_exchange().as_str()
                && b["destination"] == t.dead_queue().as_str()
                && b["destination_type"] == "queue"),
        "the dead-letter queue must be bound to the dead-letter exchange"
    );

    // The mailbox policy targets exactly the backend's mailbox queues and agrees with the
    // arguments the backend declares them with.
    let policy = named(&defs, "policies", "truc-mailboxes");
    assert_eq!(
        policy["pattern"].as_str().unwrap(),
        format!("^{}", escape(&t.mailbox_queue("")))
    );
    assert_eq!(policy["apply-to"], "queues");
    let def = &policy["definition"];
    let declared = args(t.mailbox_arguments());
    assert_eq!(
        def["dead-letter-exchange"],
        declared["x-dead-letter-exchange"]
    );
    assert_eq!(def["overflow"], "reject-publish");
    assert!(def["max-length"].as_u64().unwrap() >= 10_000);
    // The shared log of several relay nodes: a stream queue, as SharedLog declares it.
    let events = named(
        &defs,
        "queues",
        &SharedLogConfig::new("amqp://unused", "truc.").stream(),
    );
    assert_eq!(events["durable"], true);
    assert_eq!(events["arguments"]["x-queue-type"], "stream");
    let dead_policy = named(&defs, "policies", "truc-dead");
    assert_eq!(
        dead_policy["pattern"].as_str().unwrap(),
        format!("^{}$", escape(&t.dead_queue()))
    );
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

/// Removes the imported policies even when the test fails.
struct Policies(Vec<String>);

impl Drop for Policies {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("rabbitmqctl")
                .args(["clear_policy", name])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_definitions_import_and_the_backend_opens_on_them_unchanged() {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("test.defs.{}.{nanos}.", std::process::id());
    // The shipped file with `truc.` swapped for the unique prefix (names and patterns).
    let text = String::from_utf8(
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/rabbitmq/definitions.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let escaped_json = escape(&prefix).replace('\\', "\\\\");
    let text = text
        .replace("^truc\\\\.", &format!("^{escaped_json}"))
        .replace("truc\\\\.", &escaped_json)
        .replace("\"truc.", &format!("\"{prefix}"))
        .replace("\"truc-", &format!("\"{prefix}"));
    assert!(!text.contains("truc"), "every name was renamed: {text}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("definitions.json");
    std::fs::write(&file, &text).unwrap();
    let _policies = Policies(vec![format!("{prefix}mailboxes"), format!("{prefix}dead")]);
    rabbitmqctl(&["import_definitions", file.to_str().unwrap()]);

    let store = store::Store::open(dir.path().join("store")).unwrap();
    let config = AmqpConfig {
        prefix: prefix.clone(),
        ..AmqpConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")
    };
    let b = AmqpBroker::open(store, config)
        .await
        .expect("the backend must open on the shipped topology (same types and arguments)");
    let unit = "000.00.00.G22";
    let result = async {
        b.publish(vec![Publish {
            mailbox: unit.to_owned(),
            message: Message {
                id: "d1".to_owned(),
                kind: MessageKind::Package,
                from: "000.00.00.H41".to_owned(),
                document_id: "000.00.00.H41,2026/11/23,1/QD".to_owned(),
                subject: "x".to_owned(),
                size: 1,
                digest: Digest::of(b"d1"),
                queued_at: SystemTime::now(),
            },
        }])
        .await?;
        // The mailbox the backend declared is governed by the shipped policy.
        let mut listed = String::new();
        for _ in 0..50 {
            listed = rabbitmqctl(&["list_queues", "name", "policy", "--no-table-headers", "-q"]);
            if listed.contains(&format!("{prefix}mailbox.{unit}\t{prefix}mailboxes")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<String, broker::BrokerError>(listed)
    }
    .await;
    b.delete(&[]).await.unwrap();
    b.close().await;
    // The shared log opens on the imported stream unchanged too; then it is deleted.
    let log = SharedLog::open(SharedLogConfig::new(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        prefix.clone(),
    ))
    .await;
    match &log {
        Ok(log) => {
            log.delete().await.unwrap();
            log.close().await;
        }
        Err(_) => {
            rabbitmqctl(&["delete_queue", &format!("{prefix}events")]);
        }
    }
    log.expect("the shared log must open on the shipped stream (same type and arguments)");
    let listed = result.unwrap();
    assert!(
        listed.contains(&format!("{prefix}mailbox.{unit}\t{prefix}mailboxes")),
        "policy not applied to the mailbox: {listed}"
    );
    assert!(
        listed.contains(&format!("{prefix}dead\t{prefix}dead")),
        "policy not applied to the dead-letter queue: {listed}"
    );
}
