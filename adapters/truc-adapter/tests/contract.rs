//! The published contract of local HTTP mode: `schemas/adapter-openapi.yaml` lists exactly the
//! routes the adapter serves (`truc_adapter::http::ROUTES`).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;

use yaml_rust2::YamlLoader;

#[test]
fn adapter_openapi_lists_exactly_the_routes_http_mode_serves() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/adapter-openapi.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().expect("paths") {
        for (method, _) in item.as_hash().expect("path item") {
            let method = method.as_str().unwrap();
            if ["get", "post", "put", "delete", "patch"].contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = truc_adapter::http::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(served.len(), truc_adapter::http::ROUTES.len());
    assert_eq!(
        documented, served,
        "adapter-openapi.yaml paths == http::ROUTES"
    );
}
