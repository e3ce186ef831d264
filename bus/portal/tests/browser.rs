//! The portal in the real headless Chromium (through chromedriver and WebDriver): a relay behind
//! the real HTTPS edge, a document sent from the ministry to two provinces, one province
//! registering it and the other rejecting it; then a clerk signs in, finds the document by
//! search, opens it and reads each recipient's state from the page, and an operator sees the
//! mailbox table. Screenshots of the key pages go to `ops/screenshots/` (linked from the README).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian `chromium`,
//! `chromium-driver`; `ops/test.sh` installs them). Without them the test fails and says so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use fantoccini::{ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/screenshots")
}

/// chromedriver on a free port; killed when dropped.
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn chromedriver() -> Driver {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: the browser test needs Debian's chromium and chromium-driver \
             (apt-get install -y --no-install-recommends chromium chromium-driver; ops/test.sh does it)"
        );
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver { _child: child, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {url} within 10 s");
}

/// The element, once the page shows it; fails with the page's source after 30 s.
async fn wait_for(c: &fantoccini::Client, what: Locator<'_>) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(what)
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "{what:?} did not appear ({e}); the browser is at {:?} showing:\n{}",
            c.current_url().await.map(|u| u.to_string()),
            c.source().await.unwrap_or_default()
        ),
    }
}

/// Clicks what navigates to another page and waits until that page replaced the current one
/// (the old document's root element goes stale), so nothing is read off the page left behind.
async fn click_to_load(c: &fantoccini::Client, what: Locator<'_>) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(what).await.unwrap().click().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match old.tag_name().await {
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                return;
            }
            _ if std::time::Instant::now() > deadline => {
                panic!("clicking {what:?} did not load a new page in 30 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Fills the sign-in form on the current page and submits it.
async fn sign_in(c: &fantoccini::Client, name: &str) {
    for (field, text) in [("name", name), ("password", PASSWORD)] {
        c.find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    click_to_load(c, Locator::Id("sign-in")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_follows_a_document_and_an_operator_sees_the_mailboxes_in_chromium() {
    let bed = Bed::new();
    let doc_id = "000.00.00.G22,2026/11/24,45/BNV-VP";
    let id = bed
        .send(
            A,
            &[B, C],
            doc_id,
            "Về việc tổng kết công tác văn thư năm 2026",
        )
        .await;
    bed.send(
        A,
        &[B],
        "000.00.00.G22,2026/11/24,46/BNV-VP",
        "Lịch họp tuần 48",
    )
    .await;
    bed.send(
        A,
        &[C],
        "000.00.00.G22,2026/11/24,47/BNV-VP",
        "Giấy mời dự hội nghị",
    )
    .await;
    // B takes the first document and registers it; C takes it and rejects it. The two later
    // documents stay waiting, so the operator has mailboxes to look at.
    let b_items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    let c_items = bed.relay.inbox(C, 10, Duration::ZERO).await.unwrap();
    for (unit, items) in [(B, &b_items), (C, &c_items)] {
        let item = items.iter().find(|i| i.id == id).unwrap();
        bed.relay.ack(unit, &item.id).await.unwrap();
    }
    bed.status(B, A, doc_id, "01", None).await;
    bed.status(B, A, doc_id, "03", None).await;
    bed.status(C, A, doc_id, "02", Some("Văn bản gửi nhầm nơi nhận"))
        .await;

    let (base, stop) = bed.serve_tls().await;
    let driver = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    }))
    .unwrap();
    let c = ClientBuilder::native()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver");
    std::fs::create_dir_all(screenshots()).unwrap();
    let shot = |name: &'static str| {
        let c = c.clone();
        async move {
            let png = c.screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
            std::fs::write(screenshots().join(name), png).unwrap();
        }
    };

    // The clerk of the ministry signs in.
    c.goto(&format!("{base}/portal")).await.unwrap();
    wait_for(&c, Locator::Id("signin-form")).await;
    shot("signin.png").await;
    sign_in(&c, "vanthu_a").await;
    wait_for(&c, Locator::Id("search-form")).await;
    assert!(
        c.find(Locator::Id("who"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("vanthu_a")
    );
    shot("documents.png").await;

    // Finds the document by a word of its subject and opens it.
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("tổng kết")
        .await
        .unwrap();
    click_to_load(&c, Locator::Id("search")).await;
    let table = wait_for(&c, Locator::Id("documents")).await;
    let rows = table.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "the search finds exactly that document");
    assert_eq!(
        rows[0].attr("data-id").await.unwrap().as_deref(),
        Some(id.as_str())
    );
    rows[0]
        .find(Locator::Css("a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, Locator::Id("recipients")).await;

    // Each recipient's state, as the page shows it.
    let state = |unit: &'static str| {
        let c = c.clone();
        async move {
            let row = c
                .find(Locator::Css(&format!(
                    "#recipients tr[data-unit=\"{unit}\"]"
                )))
                .await
                .unwrap();
            (
                row.attr("data-state").await.unwrap().unwrap(),
                row.text().await.unwrap(),
            )
        }
    };
    let (b_state, b_text) = state(B).await;
    assert_eq!(b_state, "registered");
    assert!(b_text.contains("Đã vào sổ (03)"), "{b_text}");
    let (c_state, c_text) = state(C).await;
    assert_eq!(c_state, "rejected");
    assert!(c_text.contains("Văn bản gửi nhầm nơi nhận"), "{c_text}");
    let summary = c
        .find(Locator::Id("summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(summary.contains("2/2 đơn vị đã nhận"), "{summary}");
    assert!(summary.contains("1/2 đơn vị đã vào sổ"), "{summary}");
    shot("document.png").await;
    // The same page on a phone-sized window, then in English.
    c.set_window_size(390, 1400).await.unwrap();
    shot("document-phone.png").await;
    c.set_window_size(1280, 900).await.unwrap();
    click_to_load(&c, Locator::Id("lang-switch")).await;
    let (_, b_text) = state(B).await;
    assert!(b_text.contains("Registered (03)"), "{b_text}");
    click_to_load(&c, Locator::Id("lang-switch")).await;

    // Sign out; the operator signs in and sees the mailbox table, worst first.
    click_to_load(&c, Locator::Id("sign-out")).await;
    wait_for(&c, Locator::Id("signin-form")).await;
    sign_in(&c, "quantri").await;
    let table = wait_for(&c, Locator::Id("mailboxes")).await;
    let rows = table.find_all(Locator::Css("tbody tr")).await.unwrap();
    let units: Vec<String> = {
        let mut v = Vec::new();
        for r in &rows {
            v.push(r.attr("data-unit").await.unwrap().unwrap());
        }
        v
    };
    assert!(
        units.contains(&B.to_owned()) && units.contains(&C.to_owned()),
        "{units:?}"
    );
    let broker = c
        .find(Locator::Id("broker-state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(broker.contains("embedded"), "{broker}");
    shot("ops.png").await;

    c.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
}
