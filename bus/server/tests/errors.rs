//! Every refusal is JSON `{"code","message","problems"?}` with a stable code, Vietnamese by
//! default and English on request, including axum's own rejections (bad query, unknown route,
//! wrong method, body too large).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// Sends and returns (status, content-type, content-language, parsed JSON body).
async fn call(
    client: &reqwest::Client,
    method: &str,
    url: String,
    lang: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, String, String, Value) {
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(l) = lang {
        req = req.header("accept-language", l);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let header = |h: &str| {
        res.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let ct = header("content-type");
    let cl = header("content-language");
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, ct, cl, json)
}

fn assert_shape(v: &Value) {
    let obj = v.as_object().unwrap();
    assert!(obj["code"].as_str().is_some_and(|c| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit())
    }));
    assert!(obj["message"].as_str().is_some_and(|m| m.len() > 10));
    for k in obj.keys() {
        assert!(
            ["code", "message", "problems"].contains(&k.as_str()),
            "unexpected field {k}"
        );
    }
}

#[tokio::test]
async fn a_bad_package_is_refused_with_problems_in_the_callers_language() {
    let bed = Bed::new().await;
    let a = bed.raw(Some(A));
    let broken = b"<edXML><khong-dong".to_vec();
    let (status, ct, cl, vi) = call(
        &a,
        "POST",
        bed.url("/v1/packages"),
        None,
        Some(broken.clone()),
    )
    .await;
    assert!((400..500).contains(&status), "{status}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(cl, "vi");
    assert_shape(&vi);
    let problems = vi["problems"]
        .as_array()
        .expect("the parse findings are listed");
    assert!(!problems.is_empty());
    assert!(problems[0]["line"].as_u64().is_some(), "{problems:?}");

    let (status_en, _, cl_en, en) = call(
        &a,
        "POST",
        bed.url("/v1/packages"),
        Some("en-GB,en;q=0.8"),
        Some(broken.clone()),
    )
    .await;
    assert_eq!(status_en, status);
    assert_eq!(cl_en, "en");
    assert_eq!(
        en["code"], vi["code"],
        "the code does not depend on the language"
    );
    assert_ne!(en["message"], vi["message"]);
    assert!(
        en["message"].as_str().unwrap().is_ascii(),
        "{}",
        en["message"]
    );
    assert!(
        !vi["message"].as_str().unwrap().is_ascii(),
        "Vietnamese has diacritics"
    );
    assert_ne!(en["problems"][0]["message"], vi["problems"][0]["message"]);

    // ?lang=en works too (for browsers and curl one-liners).
    let (_, _, _, q) = call(
        &a,
        "POST",
        bed.url("/v1/packages?lang=en"),
        None,
        Some(broken),
    )
    .await;
    assert_eq!(q["message"], en["message"]);
}

#[tokio::test]
async fn a_package_claiming_another_sender_is_sender_mismatch() {
    let bed = Bed::new().await;
    // B signs a package that claims to come from A, and B submits it.
    let forged = bed.sign(B, &document(A, &[C], "doc-forged", "Giả mạo"));
    let (status, _, _, v) = call(
        &bed.raw(Some(B)),
        "POST",
        bed.url("/v1/packages"),
        None,
        Some(forged),
    )
    .await;
    assert!((400..500).contains(&status));
    assert_shape(&v);
    assert_eq!(v["code"], "sender_mismatch", "{v}");
}

#[tokio::test]
async fn axum_rejections_are_json_too() {
    let bed = Bed::new().await;
    let a = bed.raw(Some(A));
    for (method, path, status, code) in [
        ("GET", "/v1/inbox?limit=nhieu", 400, "bad_query"),
        ("GET", "/v1/inbox?wait=-1", 400, "bad_query"),
        ("GET", "/v1/packages?role=boss", 400, "bad_query"),
        ("GET", "/v1/khong-co", 404, "route_not_found"),
        ("GET", "/", 404, "route_not_found"),
        ("DELETE", "/v1/inbox", 405, "method_not_allowed"),
        ("PUT", "/v1/packages", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
    ] {
        for lang in [None, Some("en")] {
            let (got, ct, _, v) = call(&a, method, bed.url(path), lang, None).await;
            assert_eq!(
                (got, v["code"].as_str().unwrap()),
                (status, code),
                "{method} {path}: {v}"
            );
            assert!(ct.starts_with("application/json"));
            assert_shape(&v);
            let ascii = v["message"].as_str().unwrap().is_ascii();
            assert_eq!(ascii, lang.is_some(), "{method} {path} {lang:?}: {v}");
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_too_large() {
    let bed = Bed::with(Options {
        max_bytes: 32 * 1024,
        ..Options::default()
    })
    .await;
    let a = bed.raw(Some(A));
    // Over the relay limit plus the edge's slack.
    let big = vec![b'x'; 200 * 1024];
    let (status, _, _, v) = call(&a, "POST", bed.url("/v1/packages"), Some("en"), Some(big)).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["code"], "too_large");
    assert!(
        v["message"].as_str().unwrap().contains("32768"),
        "names the limit: {v}"
    );
    // Between the limit and the slack: the relay's own refusal, same code.
    let over = vec![b' '; 40 * 1024];
    let (status, _, _, v) = call(&a, "POST", bed.url("/v1/packages"), None, Some(over)).await;
    assert_eq!(
        (status, v["code"].as_str().unwrap()),
        (413, "too_large"),
        "{v}"
    );
    // The server still answers after refusing.
    assert!(bed.client(A).health().await.is_ok());
}
