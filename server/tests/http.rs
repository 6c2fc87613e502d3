//! The server's HTTP surface: handler tests through `oneshot`, and the real binary on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

/// The app on a fresh SQLite database (kept alive by the returned dir).
async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = disktro_server::db::sqlite_url(dir.path());
    let ctx = disktro_server::Context::open(dir.path(), &url, Some("t".to_owned()), Duration::from_secs(10))
        .await
        .unwrap();
    let options = disktro_server::site_options("target/site", "127.0.0.1:0".parse().unwrap());
    (disktro_server::app(options, std::sync::Arc::new(ctx)), dir)
}

async fn get(path: &str) -> (StatusCode, String) {
    let (app, _dir) = app().await;
    let res = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn health_is_json_with_the_format_version() {
    let (status, body) = get("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["format_version"], 1);
}

#[tokio::test]
async fn home_page_renders_on_the_server() {
    let (status, body) = get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Storage that cannot read your files."), "{body}");
    assert!(body.contains("/pkg/disktro.js"), "the page loads the hydration bundle");
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let (status, body) = get("/definitely/not/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Not found"));
}

/// The real binary: binds port 0, logs its address, answers, and exits cleanly on SIGTERM.
#[test]
fn binary_serves_and_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_disktro-server"))
        .args(["--listen", "127.0.0.1:0", "--site-root", "target/site", "--data-dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().expect("an address follows").to_owned();
        }
    };
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff")
    );

    assert_sigterm_stops_cleanly(&mut child, lines);
    // Without --join-token the server makes one, keeps it in the database and prints it once.
    let mut printed = String::new();
    stderr.read_to_string(&mut printed).unwrap();
    assert!(printed.contains("join token for workers: dkj_"), "{printed}");
    assert!(dir.path().join("disktro.db").exists() && dir.path().join("server.key").exists());
}

/// Tried: SIGTERM the moment the server announces its address, while its local workers are still
/// starting (a service manager stopping a server it has just started). Must hold: a clean shutdown
/// (exit 0, "stopped" logged), not the signal's default action killing it mid-start.
#[test]
fn sigterm_right_after_the_address_is_announced_is_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_disktro-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--site-root",
            "target/site",
            "--local-workers",
            "3",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if line.contains("listening on http://") {
            break;
        }
    }
    assert_sigterm_stops_cleanly(&mut child, lines);
}

/// SIGTERM `child`: it must exit 0 having logged "stopped" (its remaining stdout is `lines`).
fn assert_sigterm_stops_cleanly(child: &mut std::process::Child, lines: impl Iterator<Item = std::io::Result<String>>) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM must be a clean shutdown (exit 0), got {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

/// The OpenAPI document is served, lists every route with its methods, and matches the copy kept
/// in the repository (`server/openapi.json`). After changing the API, regenerate the copy with
/// `UPDATE_OPENAPI=1 cargo test -p disktro-server --test http openapi`.
#[tokio::test]
async fn the_openapi_document_is_served_complete_and_current() {
    let (status, body) = get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let routes = [
        ("/health", "get"),
        ("/nodes", "get"),
        ("/nodes/register", "post"),
        ("/nodes/heartbeat", "post"),
        ("/auth/prelogin", "post"),
        ("/auth/signup", "post"),
        ("/auth/login", "post"),
        ("/auth/logout", "post"),
        ("/auth/password", "post"),
        ("/auth/tokens", "post"),
        ("/account", "get"),
        ("/uploads", "post"),
        ("/uploads/{id}", "delete"),
        ("/uploads/{id}/renew", "post"),
        ("/uploads/{id}/commit", "post"),
        ("/files", "get"),
        ("/files/{id}", "get"),
        ("/files/{id}", "delete"),
        ("/files/{id}/shares", "post"),
        ("/shares", "get"),
        ("/shares/{id}", "delete"),
        ("/public/shares/{id}", "post"),
        ("/public/shares/{id}/download", "post"),
        ("/nodes/{node_id}/samples", "get"),
        ("/nodes/{node_id}/earnings", "get"),
        ("/durability", "get"),
        ("/jobs", "get"),
        ("/ledger/verify", "get"),
    ];
    for (path, method) in routes {
        assert!(
            served["paths"][path][method].is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
    }
    let documented: usize = served["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "a route is documented that this test does not know"
    );
    for schema in [
        "ErrorBody",
        "UploadPlan",
        "Commit",
        "FileDownload",
        "ShareView",
        "NodeView",
        "NodeSample",
        "DurabilityStatus",
        "JobStatus",
        "LedgerCheck",
        "DailyEarnings",
    ] {
        assert!(
            served["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = disktro_server::api::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == generated,
        "server/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p disktro-server --test http openapi"
    );
}
