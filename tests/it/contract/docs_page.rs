//! `/docs`: the API reference is the binary's own files, locked to its own origin, and it renders
//! every operation of the admin listener's document.

use std::time::Duration;

use serde_json::Value;

use crate::browser::Browser;

/// The origins a page may load from: `'self'` and nothing else (`'none'` aside).
fn external_sources(csp: &str) -> Vec<String> {
    csp.split(';')
        .flat_map(|directive| directive.split_whitespace().skip(1))
        .filter(|source| !matches!(*source, "'self'" | "'none'" | "data:"))
        .map(str::to_string)
        .collect()
}

/// The values of `attribute` in `html`.
fn attributes<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!("{attribute}=\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[tokio::test]
async fn the_docs_page_loads_only_its_own_files_under_a_strict_policy() {
    let app = crate::support::spawn_app().await;
    let page = app.get_admin("/docs").await;
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(external_sources(&csp), Vec::<String>::new(), "{csp}");
    let html = page.text().await.unwrap();
    let mut assets: Vec<&str> = attributes(&html, "src");
    assets.extend(attributes(&html, "href"));
    assert!(!assets.is_empty());
    assert!(
        !html.contains("<style") && !html.contains("style=\""),
        "inline styles"
    );
    for asset in assets {
        assert!(
            asset.starts_with('/') && !asset.starts_with("//"),
            "{asset} is not on this origin"
        );
        let r = app.get_admin(asset).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{asset}");
        if asset.ends_with(".js") {
            assert_eq!(r.headers()["content-security-policy"], csp.as_str());
            let script = r.text().await.unwrap();
            assert!(!script.contains("http://") && !script.contains("https://"));
        }
    }
    // Every inline script is forbidden by the policy, so there must be none.
    for script in html.split("<script").skip(1) {
        let body = script.split_once('>').unwrap().1;
        assert!(body.trim_start().starts_with("</script>"), "inline script");
    }
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_of_the_admin_document() {
    let app = crate::support::spawn_app().await;
    let doc: Value = app.get_admin("/openapi.json").await.json().await.unwrap();
    let ops = super::operations(&doc);
    let mut b = Browser::start().await;
    b.goto(&app.admin_url("/docs")).await;
    b.wait_for(
        "document.querySelector('#app').getAttribute('aria-busy') === 'false'",
        Duration::from_secs(20),
    )
    .await;
    let rendered = b
        .eval("document.querySelectorAll('article.op').length")
        .await;
    let page = b.eval("document.body.innerText.slice(0, 2000)").await;
    assert_eq!(rendered, ops.len(), "rendered operations of:\n{page}");
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap();
        let shown = b
            .eval(&format!(
                "(() => {{ const a = [...document.querySelectorAll('article.op')].find(a => \
                 a.dataset.method === '{m}' && a.dataset.path === '{path}'); \
                 return a ? {{ text: a.innerText, responses: a.querySelectorAll('tr.response').length }} : null; }})()",
                m = method.to_uppercase()
            ))
            .await;
        assert!(!shown.is_null(), "{method} {path} is not rendered");
        let text = shown["text"].as_str().unwrap();
        assert_eq!(
            shown["responses"],
            op["responses"].as_object().unwrap().len(),
            "{id}: answers"
        );
        assert!(text.contains(path) && text.contains(id), "{id}: {text}");
        if let Some(d) = op["description"].as_str() {
            let words: String = d.replace('`', "").chars().take(30).collect();
            assert!(text.contains(&words), "{id} lacks its description: {text}");
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            assert!(text.contains(p["name"].as_str().unwrap()), "{id}: {p}");
        }
    }
    // Error codes of an answer are listed, and a request body's fields are shown.
    let create = b
        .eval("document.getElementById('create_sale').innerText")
        .await;
    let create = create.as_str().unwrap();
    for word in [
        "starts_at",
        "per_user_limit",
        "invalid_field",
        "unauthorized",
    ] {
        assert!(create.contains(word), "create_sale lacks {word}: {create}");
    }
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&shots).unwrap();
    b.screenshot(&shots.join("docs.png")).await;
    // Nothing was fetched from elsewhere.
    let foreign = b
        .eval(
            "performance.getEntriesByType('resource').map(e => e.name)\
             .filter(n => !n.startsWith(location.origin))",
        )
        .await;
    assert_eq!(foreign, serde_json::json!([]));
}
