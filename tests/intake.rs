//! Webhook intake through the real router: every bad input in INTERFACE.md's HTTP table, all
//! 329 real payloads, duplicates (also concurrent ones), and durability across a restart.

#[path = "support/db.rs"]
mod db;

use std::sync::Arc;

use db::TestDb;
use reqwest::StatusCode;
use serde_json::json;
use specbot::config::Settings;
use specbot::event::Event;
use specbot::server::webhook::sign;

const SECRET: &str = "intake-test-secret";

struct Intake {
    running: Option<specbot::runtime::Running>,
    app: Arc<specbot::app::App>,
    url: String,
    http: reqwest::Client,
    _db: TestDb,
}

async fn start_with(db: TestDb, workers: usize) -> Intake {
    let mut settings = Settings::base();
    settings.webhook_secrets = vec![
        "previous-secret".to_string().into(),
        SECRET.to_string().into(),
    ];
    settings.database_url = db.url.clone().into();
    // No workers: queued jobs stay queued so the test can count them.
    settings.jobs.workers = workers;
    let app = specbot::app::build(settings).await.expect("app builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = specbot::runtime::start(app.clone(), listener).unwrap();
    let url = format!("http://{}/api/github/webhooks", running.addr);
    Intake {
        running: Some(running),
        app,
        url,
        http: reqwest::Client::new(),
        _db: db,
    }
}

async fn start() -> Intake {
    start_with(TestDb::new().await, 0).await
}

impl Intake {
    async fn post(
        &self,
        event: Option<&str>,
        delivery: Option<&str>,
        sig: Option<String>,
        body: Vec<u8>,
    ) -> StatusCode {
        let mut req = self.http.post(&self.url).body(body);
        if let Some(e) = event {
            req = req.header("X-GitHub-Event", e);
        }
        if let Some(d) = delivery {
            req = req.header("X-GitHub-Delivery", d);
        }
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.expect("request").status()
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> StatusCode {
        self.post(
            Some(event),
            Some(delivery),
            Some(sign(SECRET, body)),
            body.to_vec(),
        )
        .await
    }

    async fn deliveries(&self) -> i64 {
        self.app.store.delivery_count().await.unwrap()
    }
}

fn labeled_payload(issue: u64, sender_type: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": "labeled",
        "issue": {"id": 1000 + issue, "number": issue, "title": "Add dark mode", "body": "Please", "user": {"login": "alice", "id": 1, "type": "User"}, "labels": [{"name": "needs-spec"}], "state": "open"},
        "label": {"name": "needs-spec"},
        "repository": {"id": 42, "name": "widgets", "full_name": "acme/widgets", "owner": {"login": "acme", "id": 9, "type": "Organization"}, "default_branch": "main", "private": false},
        "sender": {"login": if sender_type == "Bot" { "specbot[bot]" } else { "alice" }, "id": 1, "type": sender_type},
        "installation": {"id": 77}
    }))
    .unwrap()
}

#[tokio::test]
async fn bad_inputs_get_the_documented_status() {
    let t = start().await;
    let body = labeled_payload(7, "User");
    // 401: no signature, a wrong one, one made with an unknown secret, a malformed header.
    assert_eq!(
        t.post(Some("issues"), Some("d1"), None, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.post(
            Some("issues"),
            Some("d1"),
            Some(sign("wrong", &body)),
            body.clone()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.post(
            Some("issues"),
            Some("d1"),
            Some("sha256=nothex".into()),
            body.clone()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // A signature over other bytes.
    assert_eq!(
        t.post(
            Some("issues"),
            Some("d1"),
            Some(sign(SECRET, b"{}")),
            body.clone()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // 400: missing headers, or a body that is not JSON.
    assert_eq!(
        t.post(None, Some("d1"), Some(sign(SECRET, &body)), body.clone())
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.post(
            Some("issues"),
            None,
            Some(sign(SECRET, &body)),
            body.clone()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    let not_json = b"action=labeled".to_vec();
    assert_eq!(
        t.post(
            Some("issues"),
            Some("d1"),
            Some(sign(SECRET, &not_json)),
            not_json
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    // Nothing of that was stored.
    assert_eq!(t.deliveries().await, 0);
    // The rotated-out secret still verifies while it is listed.
    assert_eq!(
        t.post(
            Some("issues"),
            Some("d2"),
            Some(sign("previous-secret", &body)),
            body.clone()
        )
        .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(t.deliveries().await, 1);
}

#[tokio::test]
async fn oversized_bodies_are_refused_early_and_while_streaming() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = start().await;
    let addr = t.running.as_ref().unwrap().addr;
    // Announced too large: refused from Content-Length alone, before any body is sent.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: big\r\nX-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        25 * 1024 * 1024 + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = stream.read(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    // Chunked, no length: cut off once it passes 25 MiB.
    let big = vec![b' '; 25 * 1024 * 1024 + 10];
    let status = t
        .http
        .post(&t.url)
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", "big2")
        .header("X-Hub-Signature-256", sign(SECRET, &big))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            big.chunks(1 << 20)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        )))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(t.deliveries().await, 0);
}

#[tokio::test]
async fn every_real_payload_is_accepted_and_decodes() {
    let t = start().await;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-webhooks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures are in the repository")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        329,
        "all of @octokit/webhooks-examples is here"
    );
    let acted_on = [
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "check_suite",
        "check_run",
        "installation",
        "installation_repositories",
        "ping",
    ];
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let event = name.split('.').next().unwrap().to_string();
        let body = std::fs::read(path).unwrap();
        let id = format!("fixture-{i}");
        let status = t.deliver(&event, &id, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}");
        // Stored packed, read back byte for byte as GitHub sent it.
        let stored = t.app.store.delivery(&id).await.unwrap().expect("stored");
        assert_eq!(stored.delivery.body, body, "{name}");
        assert_eq!(stored.delivery.event, event);
        let parsed = Event::parse(&event, &body);
        if acted_on.contains(&event.as_str()) {
            assert!(
                !matches!(parsed, Event::Malformed { .. } | Event::Ignored { .. }),
                "{name} should decode into a typed event: {parsed:?}"
            );
            assert_eq!(parsed.name(), event);
        } else {
            assert!(matches!(parsed, Event::Ignored { .. }), "{name}");
        }
    }
    assert_eq!(t.deliveries().await, 329);
    // Every job they queued decodes into a job input.
    for job in t.app.store.recent_jobs(1000).await.unwrap() {
        specbot::workflow::check_input(&job)
            .unwrap_or_else(|e| panic!("job {} does not decode: {e}", job.id));
    }
}

#[tokio::test]
async fn a_repeated_delivery_is_acknowledged_and_not_processed_again() {
    let t = start().await;
    let body = labeled_payload(7, "User");
    assert_eq!(
        t.deliver("issues", "same-id", &body).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(t.deliver("issues", "same-id", &body).await, StatusCode::OK);
    assert_eq!(t.deliveries().await, 1);
    assert_eq!(t.app.store.recent_jobs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_store_it_once() {
    let t = Arc::new(start().await);
    let body = labeled_payload(8, "User");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let t = t.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            t.deliver("issues", "racing-id", &body).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(t.deliveries().await, 1);
    assert_eq!(t.app.store.recent_jobs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_deliveries_meaning_the_same_thing_collapse_into_one_job() {
    let t = start().await;
    let body = labeled_payload(9, "User");
    assert_eq!(t.deliver("issues", "a", &body).await, StatusCode::ACCEPTED);
    assert_eq!(t.deliver("issues", "b", &body).await, StatusCode::ACCEPTED);
    assert_eq!(t.deliveries().await, 2);
    assert_eq!(t.app.store.recent_jobs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bots_trigger_nothing() {
    let t = start().await;
    let body = labeled_payload(10, "Bot");
    assert_eq!(
        t.deliver("issues", "bot", &body).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(t.deliveries().await, 1);
    assert!(t.app.store.recent_jobs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn stored_deliveries_and_jobs_survive_a_restart() {
    let mut t = start().await;
    let body = labeled_payload(11, "User");
    assert_eq!(
        t.deliver("issues", "before-restart", &body).await,
        StatusCode::ACCEPTED
    );
    t.running.take().unwrap().shutdown().await;
    let db = t._db;
    let t2 = start_with(db, 0).await;
    assert_eq!(t2.deliveries().await, 1);
    let jobs = t2.app.store.recent_jobs(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, "spec");
    // And the same id is still known as a duplicate.
    assert_eq!(
        t2.deliver("issues", "before-restart", &body).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let t = start().await;
    let base = t.url.trim_end_matches("/api/github/webhooks").to_string();
    let r = t.http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = labeled_payload(12, "User");
    t.deliver("issues", "m1", &body).await;
    let text = t
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("specbot_deliveries_total"), "{text}");
    assert!(text.contains("specbot_jobs{"), "{text}");
}

#[tokio::test]
async fn deliveries_past_their_retention_are_deleted_by_housekeeping() {
    let intake = start().await;
    let body = labeled_payload(7, "User");
    assert_eq!(
        intake.deliver("issues", "d-old", &body).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        specbot::runtime::housekeep(&intake.app)
            .await
            .unwrap()
            .deliveries,
        0
    );
    assert_eq!(
        intake.deliveries().await,
        1,
        "kept within DELIVERY_RETENTION_DAYS"
    );

    intake
        .app
        .clock
        .advance(std::time::Duration::from_secs(15 * 86_400));
    let pruned = specbot::runtime::housekeep(&intake.app).await.unwrap();
    assert_eq!(pruned.deliveries, 1);
    assert_eq!(intake.deliveries().await, 0);
    // Its job is kept (without the link), so nothing it started is lost.
    assert_eq!(intake.app.store.recent_jobs(10).await.unwrap().len(), 1);
}
