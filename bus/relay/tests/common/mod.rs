//! A relay on a temp dir with a throw-away dev PKI and a small directory: a ministry (A), two
//! provinces (B, C, group `tinh`), a commune under B, and a suspended unit.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::{AnyBroker, Broker, Clock, EmbeddedBroker, EmbeddedConfig, ManualClock};
use directory::{Directory, Unit, UnitState};
use dsig::pki::{DevPki, Issued};
use edxml::{
    Attachment, Document, Lenient, Organization, Package, ResponseFor, Status, StatusCode,
};
use relay::{Relay, RelayConfig};
use store::Store;

pub const A: &str = "000.00.00.G22"; // ministry (sender)
pub const B: &str = "000.00.00.H41"; // province
pub const C: &str = "000.00.00.H42"; // province
pub const B1: &str = "000.00.01.H41"; // commune under B
pub const S: &str = "000.00.00.H43"; // suspended
pub const OLD_B: &str = "000.00.00.H99"; // B's old code

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub struct Bed {
    pub dir: tempfile::TempDir,
    pub pki: DevPki,
    pub clock: Arc<ManualClock>,
    pub relay: Relay,
}

pub fn unit(code: &str, name: &str, groups: &[&str]) -> Unit {
    Unit {
        code: code.into(),
        name: name.into(),
        parent: None,
        aliases: vec![],
        state: UnitState::Active,
        fingerprints: vec![],
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// The relay's settings for tests: relay id `000.00.00.A00`, sealing with the dev PKI's relay
/// key, trusting its CA with its CRL (or `crl`), default limits.
pub fn relay_config(pki: &DevPki, crl: Option<&[u8]>, clock: Arc<dyn Clock>) -> RelayConfig {
    RelayConfig {
        relay_id: "000.00.00.A00".into(),
        seal: Arc::new(
            dsig::SigningKey::from_pem(&pki.relay.key_pem, &pki.relay.cert_pem).unwrap(),
        ),
        trust: Arc::new(
            dsig::TrustStore::new(&pki.ca.cert_pem, crl.unwrap_or(&pki.crl_pem)).unwrap(),
        ),
        limits: edxml::Limits::default(),
        clock,
    }
}

/// The signing key of unit `code` in the dev PKI.
pub fn unit_key(pki: &DevPki, code: &str) -> dsig::SigningKey {
    let i = &pki.units.iter().find(|(c, _)| c == code).unwrap().1;
    dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap()
}

impl Bed {
    pub fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let pki = dsig::pki::init(
            &[
                (A, Some("Bộ Nội vụ")),
                (B, None),
                (C, None),
                (B1, None),
                (S, None),
            ],
            unix(now),
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let relay = Bed::open_relay(dir.path(), &pki, clock.clone(), None);
        let d = relay.directory();
        if d.resolve(A).unwrap().is_none() {
            d.upsert(unit(A, "Bộ Nội vụ", &[])).unwrap();
            let mut b = unit(B, "UBND tỉnh Hà Nam", &["tinh"]);
            b.aliases = vec![OLD_B.into()];
            d.upsert(b).unwrap();
            d.upsert(unit(C, "UBND tỉnh Nam Định", &["tinh"])).unwrap();
            let mut b1 = unit(B1, "UBND xã Một", &[]);
            b1.parent = Some(B.into());
            d.upsert(b1).unwrap();
            let mut s = unit(S, "Đơn vị tạm dừng", &[]);
            s.state = UnitState::Suspended;
            d.upsert(s).unwrap();
        }
        Bed {
            dir,
            pki,
            clock,
            relay,
        }
    }

    pub fn open_relay(
        path: &std::path::Path,
        pki: &DevPki,
        clock: Arc<ManualClock>,
        crl: Option<&[u8]>,
    ) -> Relay {
        let store = Store::open(path).unwrap();
        let broker = EmbeddedBroker::open(
            store.clone(),
            EmbeddedConfig {
                lease: Duration::from_secs(300),
                clock: clock.clone(),
            },
        )
        .unwrap();
        let directory = Directory::open(&store).unwrap();
        Relay::open(
            store,
            AnyBroker::Embedded(broker),
            directory,
            relay_config(pki, crl, clock),
        )
        .unwrap()
    }

    /// Drops the relay and opens it again on the same data (as after a restart).
    pub fn reopen(&mut self, crl: Option<&[u8]>) {
        let path = self.dir.path().to_path_buf();
        // Replace with a throw-away first so the old handle is dropped before the store reopens.
        let clock = self.clock.clone();
        let placeholder_dir = tempfile::tempdir().unwrap();
        let old = std::mem::replace(
            &mut self.relay,
            Bed::open_relay(placeholder_dir.path(), &self.pki, clock.clone(), crl),
        );
        drop(old);
        self.relay = Bed::open_relay(&path, &self.pki, clock, crl);
    }

    pub fn issued(&self, code: &str) -> &Issued {
        &self.pki.units.iter().find(|(c, _)| c == code).unwrap().1
    }

    pub fn key(&self, code: &str) -> dsig::SigningKey {
        let i = self.issued(code);
        dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap()
    }

    pub fn sign(&self, signer: &str, xml: &[u8]) -> Vec<u8> {
        dsig::sign(xml, &self.key(signer), dsig::Role::Sender).unwrap()
    }

    /// Total messages waiting or leased in every mailbox.
    pub async fn queued_total(&self) -> u64 {
        self.relay
            .broker()
            .stats()
            .await
            .unwrap()
            .iter()
            .map(|s| s.ready + s.in_flight)
            .sum()
    }
}

pub fn org(code: &str) -> Organization {
    Organization {
        organ_id: code.into(),
        organ_name: Some(format!("Đơn vị {code}")),
        ..Organization::default()
    }
}

/// An unsigned document package from `from` to `to` with one attachment.
pub fn document(from: &str, to: &[&str], document_id: &str, subject: &str) -> Vec<u8> {
    document_with(
        from,
        to,
        document_id,
        subject,
        b"%PDF-1.4 noi dung".to_vec(),
    )
}

/// Like [`document`], with the attachment's bytes given.
pub fn document_with(
    from: &str,
    to: &[&str],
    document_id: &str,
    subject: &str,
    attachment: Vec<u8>,
) -> Vec<u8> {
    let doc = Document {
        from: org(from),
        to: to.iter().map(|t| org(t)).collect(),
        document_id: Some(document_id.into()),
        subject: Some(subject.into()),
        code: Some(edxml::Code {
            code_number: Some("12".into()),
            code_notation: Some("BNV-VP".into()),
        }),
        attachments: vec![Attachment {
            content_id: "att1".into(),
            name: Some("vanban.pdf".into()),
            description: None,
            content_type: Some("application/pdf".into()),
            data: attachment,
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}

/// An unsigned status package from `from` about `document_id` sent by `sender`.
pub fn status(
    from: &str,
    sender: &str,
    document_id: &str,
    code: &str,
    description: Option<&str>,
) -> Vec<u8> {
    let st = Status {
        from: org(from),
        response_for: ResponseFor {
            organ_id: Some(sender.into()),
            code: None,
            promulgation_date: None,
            document_id: Some(document_id.into()),
        },
        staff_info: None,
        status_code: StatusCode::parse(code),
        description: description.map(str::to_owned),
        timestamp: Some(Lenient::Known(edxml::Timestamp {
            date: edxml::Date::new(2026, 11, 23).unwrap(),
            hour: 9,
            minute: 30,
            second: 0,
        })),
        trace: Default::default(),
    };
    edxml::to_bytes(&Package::Status(st))
}
