//! The relay is killed with SIGKILL at random moments while units submit several thousand
//! packages and recipients fetch and acknowledge them over HTTPS; it is restarted each time on the
//! same data. In the end: every package that got a 202 is acknowledged by its recipient exactly
//! once (a fetched but unacknowledged one is offered again; an acknowledged one never is), no
//! package that was refused is ever offered, and the relay starts cleanly after every kill. The
//! load and the checks are `relay_load` (shared with the RabbitMQ fault tests, `amqp_faults.rs`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

mod relay_load;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use relay_load::{Lcg, Load};

#[test]
fn every_accepted_package_is_acknowledged_exactly_once_across_sigkills() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Lcg(seed);
    let counts = relay_load::run(
        Load {
            name: "embedded, SIGKILLs",
            good: 3_000,
            bad: 150,
            extra_toml: String::new(),
        },
        // SIGKILL at random moments while packages flow (at least six, at most twenty), then
        // restart on the same data.
        |load| async move {
            while !load.senders_done() || load.kills() < 6 {
                tokio::time::sleep(Duration::from_millis(200 + rng.next(1300))).await;
                load.kill9_and_restart().await;
                if load.kills() >= 20 {
                    break;
                }
            }
            format!("{} SIGKILLs at random moments", load.kills())
        },
    );
    assert!(counts.kills >= 6, "the relay was killed at least six times");
}
