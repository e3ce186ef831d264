//! Broker outages on purpose, for the fault tests of every crate (`bus/broker/tests/faults_amqp.rs`,
//! `bus/cli/tests/amqp_faults.rs`): `rabbitmqctl stop_app` / `start_app` /
//! `close_all_connections` on the local RabbitMQ node, which other tests and other people share.
//!
//! [`OutageGuard::acquire`] takes an exclusive lock on [`LOCK_FILE`] (one file for every test
//! binary and process on the machine, so two fault tests never disturb the server at once) and,
//! when dropped, whatever happened (a failed assertion unwinds through it), runs `start_app` and
//! waits until the server answers on its AMQP port before it lets the next fault test in. The relay
//! never uses this module.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// The lock every fault test takes before disturbing the shared RabbitMQ node.
pub const LOCK_FILE: &str = "/tmp/truc-rabbitmq-faults.lock";

/// Held while a test may stop the broker; dropping it starts the broker again.
#[derive(Debug)]
pub struct OutageGuard {
    /// The locked file; the lock goes with it, after `Drop` has started the broker.
    lock: File,
    /// Where the broker's AMQP listener answers once it is up again.
    amqp: SocketAddr,
}

impl OutageGuard {
    /// Waits for the machine-wide fault lock (blocking: call it from `spawn_blocking` or before
    /// the runtime starts), for the broker at `amqp` (e.g. `127.0.0.1:5672`).
    pub fn acquire(amqp: SocketAddr) -> Result<OutageGuard, String> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .map_err(|e| format!("cannot open the fault-test lock {LOCK_FILE}: {e}"))?;
        lock.lock()
            .map_err(|e| format!("cannot lock {LOCK_FILE}: {e}"))?;
        Ok(OutageGuard { lock, amqp })
    }

    /// `rabbitmqctl stop_app`: the node stays up, the broker stops (every connection drops).
    pub fn stop_app(&self) -> Result<(), String> {
        rabbitmqctl(&["stop_app"])
    }

    /// `rabbitmqctl start_app`, then waits (up to 60 s) until the AMQP port answers.
    pub fn start_app(&self) -> Result<(), String> {
        rabbitmqctl(&["start_app"])?;
        if self.wait_answering(Duration::from_secs(60)) {
            Ok(())
        } else {
            Err(format!(
                "RabbitMQ does not answer on {} 60 s after start_app",
                self.amqp
            ))
        }
    }

    /// `rabbitmqctl close_all_connections`: every client connection is closed by the server.
    pub fn close_all_connections(&self) -> Result<(), String> {
        rabbitmqctl(&["close_all_connections", "truc fault test"])
    }

    fn wait_answering(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if TcpStream::connect_timeout(&self.amqp, Duration::from_millis(500)).is_ok() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for OutageGuard {
    fn drop(&mut self) {
        // start_app on a running broker is a no-op; on a stopped one it is what we owe.
        let _ = rabbitmqctl(&["start_app"]);
        self.wait_answering(Duration::from_secs(60));
        let _ = self.lock.unlock();
    }
}

fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| {
            format!("rabbitmqctl {args:?}: {e} (install RabbitMQ: bash ops/test.sh does it)")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rabbitmqctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
