//! The portal's pages through its router, in process: who sees what, sign-in and sessions,
//! the document list and page, attachments, the operator page and its JSON.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_never_sees_another_units_documents() {
    let bed = Bed::new();
    let id = bed
        .send(
            A,
            &[B],
            "000.00.00.G22,2026/11/24,12/BNV-VP",
            "Về việc họp giao ban",
        )
        .await;
    let other = bed
        .send(
            B,
            &[A],
            "000.00.00.H41,2026/11/24,3/UBND",
            "Báo cáo tháng 11",
        )
        .await;
    let c = bed.sign_in("vanthu_c").await;
    let b = bed.sign_in("vanthu_b").await;
    let a = bed.sign_in("vanthu_a").await;

    // C is neither sender nor recipient: nothing, anywhere.
    for role in ["sent", "received"] {
        let r = bed.get(&format!("/portal/documents?role={role}"), &c).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !r.text().contains(&id) && !r.text().contains("họp giao ban"),
            "{role}"
        );
    }
    for path in [
        format!("/portal/documents/{id}"),
        format!("/portal/documents/{id}/attachments/0"),
        format!("/portal/documents/{other}"),
        format!("/portal/documents/{other}/attachments/0"),
    ] {
        let r = bed.get(&path, &c).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !r.text().contains("họp giao ban") && !r.text().contains("%PDF"),
            "{path}"
        );
    }
    // Asking for another unit's list by name is refused, as are the operator pages and actions.
    for path in [
        format!("/portal/documents?unit={A}"),
        format!("/portal/documents?role=received&unit={B}"),
        "/portal/ops".to_owned(),
        "/portal/ops/queues".to_owned(),
    ] {
        let r = bed.get(&path, &c).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    let page = bed.get("/portal/documents", &c).await;
    let csrf = page.hidden("csrf").unwrap();
    let r = bed
        .post(
            "/portal/ops/redrive",
            &c,
            &[("csrf", &csrf), ("mailbox", B)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // B, the recipient, sees it among received documents and only its own row.
    let r = bed.get("/portal/documents?role=received", &b).await;
    assert!(r.text().contains(&id), "{}", r.text());
    let r = bed.get(&format!("/portal/documents/{id}"), &b).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains(&format!("data-unit=\"{B}\"")));
    // B's own sent document is not A's business in B's received list, and vice versa.
    let r = bed.get("/portal/documents?role=received", &b).await;
    assert!(!r.text().contains(&other));

    // A, the sender, sees it among sent documents; A cannot open B's sent-to-A document's
    // attachment unless it is a recipient (it is: B sent to A).
    let r = bed.get("/portal/documents", &a).await;
    assert!(r.text().contains(&id));
    let r = bed
        .get(&format!("/portal/documents/{other}/attachments/0"), &a)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_needs_the_form_token_and_the_right_password_and_is_throttled() {
    let bed = Bed::new();
    // Not signed in: every page sends you to the form, and comes back after.
    let r = bed.get("/portal/documents?role=received", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location().unwrap(),
        "/portal/signin?next=%2Fportal%2Fdocuments%3Frole%3Dreceived"
    );

    let form = bed.get("/portal/signin", "").await;
    let pre = format!("truc_signin={}", form.cookie("truc_signin").unwrap());
    let csrf = form.hidden("csrf").unwrap();
    // No or wrong form token: refused before the password is looked at.
    let r = bed
        .post(
            "/portal/signin",
            "",
            &[
                ("name", "vanthu_a"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = bed
        .post(
            "/portal/signin",
            &pre,
            &[("name", "vanthu_a"), ("password", PASSWORD), ("csrf", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The right token and password: a session cookie with every protection, and `next` honoured.
    let r = bed
        .post(
            "/portal/signin",
            &pre,
            &[
                ("name", "vanthu_a"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", "/portal/documents?role=received"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location().unwrap(), "/portal/documents?role=received");
    let line = r.set_cookie_line("truc_session").unwrap();
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/portal",
        "Max-Age=3600",
    ] {
        assert!(line.contains(flag), "{line}");
    }
    // `next` pointing elsewhere is ignored.
    let form = bed.get("/portal/signin", "").await;
    let pre2 = format!("truc_signin={}", form.cookie("truc_signin").unwrap());
    let r = bed
        .post(
            "/portal/signin",
            &pre2,
            &[
                ("name", "vanthu_a"),
                ("password", PASSWORD),
                ("csrf", &form.hidden("csrf").unwrap()),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location().unwrap(), "/portal/documents");

    // Wrong passwords: 401 five times, then 429 even with the right one; other names unaffected.
    for _ in 0..5 {
        let r = bed
            .post(
                "/portal/signin",
                &pre,
                &[
                    ("name", "vanthu_b"),
                    ("password", "sai-mat-khau"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.text().contains("Sai tên tài khoản hoặc mật khẩu"));
    }
    let r = bed
        .post(
            "/portal/signin",
            &pre,
            &[
                ("name", "vanthu_b"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.cookie("truc_session").is_none());
    bed.sign_in("vanthu_c").await;
    // An unknown name gets the same answer as a wrong password.
    let r = bed
        .post(
            "/portal/signin",
            &pre,
            &[("name", "ai-do"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_needs_csrf_and_a_disabled_account_loses_its_live_session_at_once() {
    let bed = Bed::new();
    let s = bed.sign_in("vanthu_a").await;
    let page = bed.get("/portal/documents", &s).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.hidden("csrf").unwrap();
    let r = bed.post("/portal/signout", &s, &[("csrf", "nope")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bed.get("/portal/documents", &s).await.status,
        StatusCode::OK
    );
    let r = bed.post("/portal/signout", &s, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.cookie("truc_session").as_deref(), Some(""));
    assert_eq!(
        bed.get("/portal/documents", &s).await.status,
        StatusCode::SEE_OTHER
    );

    let s = bed.sign_in("vanthu_b").await;
    assert_eq!(
        bed.get("/portal/documents", &s).await.status,
        StatusCode::OK
    );
    portal::AccountFile::new(&bed.accounts)
        .disable("vanthu_b")
        .unwrap();
    let r = bed.get("/portal/documents", &s).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "a disabled account's session ends"
    );
    let form = bed.get("/portal/signin", "").await;
    let pre = format!("truc_signin={}", form.cookie("truc_signin").unwrap());
    let r = bed
        .post(
            "/portal/signin",
            &pre,
            &[
                ("name", "vanthu_b"),
                ("password", PASSWORD),
                ("csrf", &form.hidden("csrf").unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("đã bị khóa"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_page_shows_header_attachments_every_recipients_timeline_and_counts() {
    let bed = Bed::new();
    let doc_id = "000.00.00.G22,2026/11/24,12/BNV-VP";
    let id = bed
        .send(A, &[B, C], doc_id, "Về việc triển khai trục liên thông")
        .await;
    bed.deliver_all(B).await;
    bed.status(B, A, doc_id, "01", None).await;
    bed.status(B, A, doc_id, "03", None).await;
    bed.deliver_all(C).await;
    bed.status(C, A, doc_id, "02", Some("Sai thẩm quyền ban hành"))
        .await;
    let a = bed.sign_in("vanthu_a").await;

    let r = bed.get(&format!("/portal/documents/{id}"), &a).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    for want in [
        "Về việc triển khai trục liên thông",
        "12/BNV-VP",
        "Khẩn",
        "công văn số 12.pdf",
        "2/2 đơn vị đã nhận",
        "1/2 đơn vị đã vào sổ",
        "1/2 đơn vị từ chối",
        "Sai thẩm quyền ban hành",
        &format!("data-unit=\"{B}\" data-state=\"registered\""),
        &format!("data-unit=\"{C}\" data-state=\"rejected\""),
        "UBND tỉnh Hà Nam",
        "<code>01</code> Đã đến",
    ] {
        assert!(html.contains(want), "missing {want:?} in\n{html}");
    }
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    // English on request, remembered in a cookie.
    let r = bed
        .get(&format!("/portal/documents/{id}?lang=en"), &a)
        .await;
    assert!(r.text().contains("Registered (03)") && r.text().contains("units have received it"));
    let lang = r.cookie("truc_lang").unwrap();
    assert_eq!(lang, "en");
    let r = bed
        .get("/portal/documents", &format!("{a}; truc_lang=en"))
        .await;
    assert!(
        r.text().contains("Next page") || r.text().contains("Sent"),
        "{}",
        r.text()
    );

    // The attachment: decoded bytes, its type, its (Vietnamese) name, always a download.
    let r = bed
        .get(&format!("/portal/documents/{id}/attachments/0"), &a)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"%PDF-1.4 noi dung van ban");
    assert_eq!(r.headers["content-type"], "application/pdf");
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert!(
        cd.contains("filename*=UTF-8''c%C3%B4ng%20v%C4%83n%20s%E1%BB%91%2012.pdf"),
        "{cd}"
    );
    assert_eq!(
        bed.get(&format!("/portal/documents/{id}/attachments/1"), &a)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The list shows the same counts.
    let r = bed.get("/portal/documents", &a).await;
    assert!(r.text().contains("2/2 đơn vị đã nhận") && r.text().contains("1/2 đơn vị đã vào sổ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_searches_filters_and_pages_by_key() {
    let bed = Bed::new();
    let mut ids = Vec::new();
    for i in 0..120 {
        let to: &[&str] = if i % 2 == 0 { &[B] } else { &[C] };
        let subject = if i == 7 {
            "Kế hoạch phòng chống bão số 7".to_owned()
        } else {
            format!("Công văn thường lệ {i}")
        };
        ids.push(
            bed.send(
                A,
                to,
                &format!("000.00.00.G22,2026/11/24,{i}/BNV"),
                &subject,
            )
            .await,
        );
    }
    bed.deliver_all(B).await;
    let doc_id = "000.00.00.G22,2026/11/24,8/BNV";
    bed.status(B, A, doc_id, "02", Some("Trùng văn bản")).await;
    let a = bed.sign_in("vanthu_a").await;

    // Keyset pages: 50, 50, 20, newest first, no overlap, every document once.
    let mut seen = Vec::new();
    let mut path = "/portal/documents".to_owned();
    for want in [50, 50, 20] {
        let r = bed.get(&path, &a).await;
        assert_eq!(r.status, StatusCode::OK);
        let html = r.text();
        let rows: Vec<String> = html
            .split("<tr data-id=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].to_owned())
            .collect();
        assert_eq!(rows.len(), want);
        seen.extend(rows);
        match html
            .split("id=\"next-page\"")
            .next()
            .and_then(|h| h.rsplit("href=\"").next())
        {
            Some(href) if html.contains("id=\"next-page\"") => {
                path = href[..href.find('"').unwrap()].to_owned()
            }
            _ => {
                assert_eq!(want, 20, "only the last page has no next link");
                break;
            }
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // Search by subject words, by number/notation; by recipient; by date range.
    let r = bed
        .get(
            &format!("/portal/documents?q={}", enc("phòng chống bão")),
            &a,
        )
        .await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 1);
    assert!(r.text().contains(&ids[7]));
    let r = bed
        .get(&format!("/portal/documents?q={}", enc("11/BNV")), &a)
        .await;
    assert!(r.text().contains(&ids[11]));
    let r = bed
        .get(&format!("/portal/documents?recipient={C}"), &a)
        .await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 50);
    assert!(r.text().contains(&ids[119]) && !r.text().contains(&ids[118]));
    let r = bed.get("/portal/documents?from=2099-01-01", &a).await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 0);
    let r = bed.get("/portal/documents?to=2000-01-01", &a).await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 0);
    let r = bed.get("/portal/documents?from=khong-phai-ngay", &a).await;
    assert!(r.text().contains("Ngày bắt đầu không hợp lệ"));

    // Filters: C has fetched nothing, B rejected one.
    let r = bed.get("/portal/documents?state=not_delivered", &a).await;
    let html = r.text();
    assert_eq!(html.matches("<tr data-id=").count(), 50);
    assert!(html.contains(&ids[119]) && !html.contains(&format!("\"{}\"", ids[118])));
    let r = bed.get("/portal/documents?state=rejected", &a).await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 1);
    assert!(r.text().contains(&ids[8]));
    let r = bed.get("/portal/documents?state=not_registered", &a).await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 50);

    // B's received list: its own state per document.
    let b = bed.sign_in("vanthu_b").await;
    let r = bed
        .get("/portal/documents?role=received&state=rejected", &b)
        .await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 1);
    assert!(r.text().contains("Từ chối / trả lại (02)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_mailboxes_worst_first_as_html_and_json_and_redrive_needs_csrf() {
    let bed = Bed::new();
    bed.send(A, &[B], "000.00.00.G22,2026/11/24,1/BNV", "Chờ tỉnh B lấy")
        .await;
    bed.send(A, &[B, C], "000.00.00.G22,2026/11/24,2/BNV", "Chờ hai tỉnh")
        .await;
    let op = bed.sign_in("quantri").await;
    let r = bed.get("/portal/ops", &op).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("id=\"mailboxes\""), "{html}");
    let b_row = html.find(&format!("<tr data-unit=\"{B}\"")).unwrap();
    let c_row = html.find(&format!("<tr data-unit=\"{C}\"")).unwrap();
    assert!(b_row < c_row, "B has more waiting: listed first");
    assert!(html.contains("embedded"));

    // The JSON twin: operator session or HTTP Basic; clerks and strangers refused.
    let r = bed.get("/portal/ops/queues?top=1", &op).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["mailboxes"].as_array().unwrap().len(), 1);
    assert_eq!(v["mailboxes"][0]["unit"], B);
    assert_eq!(v["mailboxes"][0]["ready"], 2);
    assert_eq!(v["mailboxes_total"], 2);
    use base64::Engine as _;
    let basic = |name: &str, pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{pw}"))
        )
    };
    let req = |auth: String| {
        axum::http::Request::get("/portal/ops/queues")
            .header("authorization", auth)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = bed.call(req(basic("quantri", PASSWORD))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["backend"],
        "embedded"
    );
    let r = bed.call(req(basic("quantri", "sai"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = bed.call(req(basic("vanthu_a", PASSWORD))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bed.get("/portal/ops/queues", "").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Re-drive: a POST with the session's CSRF token only.
    let csrf = bed.get("/portal/ops", &op).await.hidden("csrf").unwrap();
    let r = bed
        .post("/portal/ops/redrive", &op, &[("csrf", "x"), ("mailbox", B)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = bed
        .post(
            "/portal/ops/redrive",
            &op,
            &[("csrf", &csrf), ("mailbox", B)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(r.location().unwrap().starts_with("/portal/ops?done=0"));

    // Operators can read any unit's list by code.
    let r = bed.get(&format!("/portal/documents?unit={A}"), &op).await;
    assert_eq!(r.text().matches("<tr data-id=").count(), 2);
}
