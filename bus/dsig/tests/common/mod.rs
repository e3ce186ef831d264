//! Test support shared by the integration tests: a throw-away dev PKI in a
//! temp dir (made by our own pki module; no key is ever committed) and the
//! fixture packages.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::new_without_default
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct TestPki {
    pub dir: tempfile::TempDir,
}

pub const UNITS: [&str; 3] = ["000.00.00.G22", "000.00.00.H41", "000.00.00.H42"];

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let specs: Vec<(&str, Option<&str>)> = UNITS.iter().map(|u| (*u, None)).collect();
        let pki = dsig::pki::init(&specs, unix(SystemTime::now())).expect("pki init");
        for (rel, content) in pki.files() {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        }
        Self { dir }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read pki file")
    }
    pub fn unit_key(&self, code: &str) -> dsig::SigningKey {
        dsig::SigningKey::from_pem(
            &self.read(&format!("units/{code}.key.pem")),
            &self.read(&format!("units/{code}.pem")),
        )
        .expect("unit key")
    }
    pub fn relay_key(&self) -> dsig::SigningKey {
        dsig::SigningKey::from_pem(&self.read("relay.key.pem"), &self.read("relay.pem"))
            .expect("relay key")
    }
    pub fn trust(&self) -> dsig::TrustStore {
        dsig::TrustStore::new(&self.read("ca.pem"), &self.read("ca.crl.pem")).expect("trust")
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

/// (fixture, signing unit = its From/OrganId)
pub const FIXTURES: [(&str, &str); 5] = [
    ("doc_0_attachments.edxml", "000.00.00.H41"),
    ("doc_1_attachment.edxml", "000.00.00.G22"),
    ("doc_2_attachments_prefixed.edxml", "000.00.00.G22"),
    ("doc_foreign_attributes.edxml", "000.00.00.G22"),
    ("status_03.edxml", "000.00.00.H41"),
];

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn years_from_now(y: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(y * 366 * 86_400)
}

/// Replaces the first occurrence of `from` (which must exist) with `to`.
pub fn replace_once(xml: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(xml.to_vec()).expect("utf8");
    assert!(s.contains(from), "{from:?} not in package");
    s.replacen(from, to, 1).into_bytes()
}

pub fn codes(fs: &[dsig::Finding]) -> Vec<&'static str> {
    fs.iter().map(|f| f.code).collect()
}
