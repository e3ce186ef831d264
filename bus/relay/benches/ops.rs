//! How long the operator overview takes as mailboxes grow (embedded broker): N units in the
//! directory, one waiting message in each (plus a dead letter in every hundredth), then
//! `Relay::overview(20)` (what the operator page asks for) and `overview(0)` timed, best of 3.
//! `cargo bench -p relay --bench ops [-- N...]` (default 1000 10000 30000). Printed, not asserted.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use broker::{Broker, Clock, Publish, contract::message};
use common::*;

fn main() {
    let sizes: Vec<usize> = {
        let v: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![1000, 10_000, 30_000]
        } else {
            v
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        let bed = Bed::new();
        let now = bed.clock.now();
        let codes: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "{:03}.{:02}.{:02}.H{:02}",
                    i / 10_000,
                    i / 100 % 100,
                    i % 100,
                    50
                )
            })
            .collect();
        for c in &codes {
            bed.relay
                .directory()
                .upsert(unit(c, &format!("Ủy ban nhân dân xã số {c}"), &[]))
                .unwrap();
        }
        rt.block_on(async {
            for chunk in codes.chunks(1000) {
                let batch: Vec<Publish> = chunk
                    .iter()
                    .map(|c| Publish {
                        mailbox: c.clone(),
                        message: message(&format!("m-{c}"), now),
                    })
                    .collect();
                bed.relay.broker().publish(batch).await.unwrap();
            }
            for c in codes.iter().step_by(100) {
                bed.relay
                    .broker()
                    .dead_letter(c, &format!("m-{c}"), "bench")
                    .await
                    .unwrap();
            }
        });
        bed.clock.advance(Duration::from_secs(90));
        for top in [20, 0] {
            let mut best = Duration::MAX;
            let mut rows = 0;
            for _ in 0..3 {
                let t = Instant::now();
                let o = rt.block_on(bed.relay.overview(top)).unwrap();
                best = best.min(t.elapsed());
                rows = o.mailboxes.len();
                assert_eq!(o.mailboxes_total, n);
            }
            println!(
                "{n} mailboxes: overview(top={top}) {:.1} ms ({rows} rows, {} dead letters)",
                best.as_secs_f64() * 1000.0,
                n.div_ceil(100)
            );
        }
    }
}
