//! Sign + verify throughput on one thread, beside `openssl speed rsa2048` from
//! the same run. Run: `cargo bench -p dsig --bench sign_verify`.
//!
//! Prints, per package size: sign+verify pairs per second, a breakdown
//! (canonicalize+hash, RSA sign, whole verify), and the ratio of the 10 KB
//! pair rate to openssl's RSA-2048 sign rate (target: >= 0.60); and the relay's
//! verify + trace + seal, parsed three times (two-step) or once (`dsig::Parsed`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use dsig::{Method, Role, SigningKey, TrustStore};

const FIXTURE: &str = include_str!("../tests/fixtures/doc_1_attachment.edxml");
const VALUE_OPEN: &str = "<Value>";

/// The fixture with its attachment grown so the package is about `size` bytes.
fn package(size: usize) -> Vec<u8> {
    let at = FIXTURE.find(VALUE_OPEN).expect("Value") + VALUE_OPEN.len();
    let need = size.saturating_sub(FIXTURE.len());
    let raw: Vec<u8> = (0..need * 3 / 4)
        .map(|i| ((i * 2_654_435_761usize) >> 13) as u8)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut s = String::with_capacity(size + 16);
    s.push_str(&FIXTURE[..at]);
    s.push_str(&b64);
    s.push_str(&FIXTURE[at..]);
    s.into_bytes()
}

/// Runs `f` repeatedly for at least `min` and returns operations per second.
fn rate(min: Duration, mut f: impl FnMut()) -> f64 {
    // Warm-up.
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Alternates short rounds of `a` and `b` so machine load hits both alike;
/// returns (rate of a, rate of b) in operations per second.
fn interleaved(
    rounds: u32,
    round: Duration,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (f64, f64) {
    let (mut ta, mut na, mut tb, mut nb) = (Duration::ZERO, 0u64, Duration::ZERO, 0u64);
    for _ in 0..rounds {
        let s = Instant::now();
        while s.elapsed() < round {
            a();
            na += 1;
        }
        ta += s.elapsed();
        let s = Instant::now();
        while s.elapsed() < round {
            b();
            nb += 1;
        }
        tb += s.elapsed();
    }
    (na as f64 / ta.as_secs_f64(), nb as f64 / tb.as_secs_f64())
}

fn openssl_rsa2048_sign_rate() -> f64 {
    let out = Command::new("taskset")
        .args(["-c", "0", "openssl", "speed", "-seconds", "3", "rsa2048"])
        .output()
        .or_else(|_| {
            Command::new("openssl")
                .args(["speed", "-seconds", "3", "rsa2048"])
                .output()
        })
        .expect("openssl must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("rsa 2048 bits"))
        .unwrap_or_else(|| panic!("unexpected openssl speed output:\n{text}"));
    // rsa 2048 bits <sign s> <verify s> <sign/s> <verify/s>
    let cols: Vec<&str> = line.split_whitespace().collect();
    cols[5].parse().expect("sign/s")
}

fn main() {
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let pki = dsig::pki::init(&[("000.00.00.G22", None)], unix).expect("pki");
    let key = SigningKey::from_pem(&pki.units[0].1.key_pem, &pki.units[0].1.cert_pem).expect("key");
    let trust = TrustStore::new(&pki.ca.cert_pem, &pki.crl_pem).expect("trust");

    let openssl_sign = openssl_rsa2048_sign_rate();
    println!("openssl speed -seconds 3 rsa2048: {openssl_sign:.1} sign/s");

    let (mut ratio_10k, mut ratio_10k_interleaved) = (0.0, 0.0);
    for (label, size, min) in [
        ("10 KB", 10 * 1024, Duration::from_secs(3)),
        ("1 MB", 1024 * 1024, Duration::from_secs(4)),
    ] {
        let pkg = package(size);
        let signed = dsig::sign(&pkg, &key, Role::Sender).expect("sign");
        assert!(
            dsig::verify(&signed, &trust, now).is_valid(),
            "benchmark package must verify"
        );

        let pair = rate(min, || {
            let s = dsig::sign(black_box(&pkg), &key, Role::Sender).expect("sign");
            let r = dsig::verify(black_box(&s), &trust, now);
            assert!(r.is_valid());
        });
        let sign_only = rate(min / 2, || {
            black_box(dsig::sign(black_box(&pkg), &key, Role::Sender).expect("sign"));
        });
        let verify_only = rate(min / 2, || {
            black_box(dsig::verify(black_box(&signed), &trust, now));
        });
        let c14n = rate(min / 2, || {
            black_box(
                dsig::canonicalize(black_box(&signed), Method::Exclusive, false).expect("c14n"),
            );
        });
        println!(
            "{label} ({} bytes): sign+verify {pair:.1}/s ({:.3} ms) | sign {sign_only:.1}/s ({:.3} ms) | verify {verify_only:.1}/s ({:.3} ms) | parse+exc-c14n {c14n:.1}/s ({:.3} ms)",
            pkg.len(),
            1e3 / pair,
            1e3 / sign_only,
            1e3 / verify_only,
            1e3 / c14n,
        );
        let ratio = pair / openssl_sign;
        println!("{label}: sign+verify rate / openssl RSA-2048 sign rate = {ratio:.2}");
        // The same comparison, robust to other load on the machine: our pair
        // and a bare RSA-2048 PKCS#1 SHA-256 sign (same key, openssl crate),
        // measured in alternating 100 ms rounds.
        let pkey = openssl::pkey::PKey::private_key_from_pem(&pki.units[0].1.key_pem).expect("key");
        let (pair_i, raw_i) = interleaved(
            20,
            Duration::from_millis(100),
            || {
                let s = dsig::sign(black_box(&pkg), &key, Role::Sender).expect("sign");
                black_box(dsig::verify(black_box(&s), &trust, now));
            },
            || {
                let mut signer =
                    openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)
                        .expect("signer");
                signer.update(b"x").expect("update");
                black_box(signer.sign_to_vec().expect("sign"));
            },
        );
        println!(
            "{label}: interleaved: sign+verify {pair_i:.1}/s vs bare RSA-2048 sign {raw_i:.1}/s = {:.2}",
            pair_i / raw_i
        );
        // The relay's work on a submitted package: verify, append its TraceHeader, seal. Three
        // parses the two-step way, one with `Parsed`; same bytes out (tests/interop.rs).
        let relay = SigningKey::from_pem(&pki.relay.key_pem, &pki.relay.cert_pem).expect("relay");
        let stamp = "2026/11/24 08:00:00";
        let (two_step, one_parse) = interleaved(
            20,
            Duration::from_millis(100),
            || {
                let s = black_box(&signed);
                assert!(dsig::verify(s, &trust, now).is_valid());
                let traced = dsig::append_trace_header(s, "000.00.00.RELAY", stamp).expect("trace");
                black_box(dsig::sign(&traced, &relay, Role::Relay).expect("seal"));
            },
            || {
                let p = dsig::Parsed::parse(black_box(&signed)).expect("parse");
                assert!(p.verify(&trust, now).is_valid());
                black_box(p.seal("000.00.00.RELAY", stamp, &relay).expect("seal"));
            },
        );
        println!(
            "{label}: relay verify+trace+seal: two-step {two_step:.1}/s ({:.3} ms) | one parse {one_parse:.1}/s ({:.3} ms)",
            1e3 / two_step,
            1e3 / one_parse
        );
        if size == 10 * 1024 {
            ratio_10k = ratio;
            ratio_10k_interleaved = pair_i / raw_i;
        }
    }
    let verdict = |r: f64| if r >= 0.60 { "MET" } else { "NOT MET" };
    println!(
        "target (10 KB sign+verify >= 60% of RSA-2048 sign/s): vs openssl speed {ratio_10k:.2} {}; interleaved {ratio_10k_interleaved:.2} {}",
        verdict(ratio_10k),
        verdict(ratio_10k_interleaved)
    );
}
