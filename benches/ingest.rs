//! Webhook ingest benchmark: signed ~14 KB deliveries through the real router into the durable
//! store, from N concurrent keep-alive connections on loopback.
//!
//! ```sh
//! cargo bench --bench ingest                       # defaults: 10 s at 16 and 64 connections
//! INGEST_SECONDS=30 INGEST_CONNECTIONS=16,64 cargo bench --bench ingest
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo bench --bench ingest
//! ```
//!
//! Prints throughput, p50/p99/max latency and error counts per concurrency level, and checks
//! that every acknowledged delivery was stored exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use specbot::config::Settings;
use specbot::server::webhook::sign;

const SECRET: &str = "bench-secret";

fn payload() -> Vec<u8> {
    // A realistic issue_comment delivery padded to ~14 KB (GitHub's median is ~7-15 KB).
    let filler = "x".repeat(11_500);
    serde_json::to_vec(&serde_json::json!({
        "action": "created",
        "issue": {"id": 1, "number": 7, "title": "Add dark mode", "body": filler, "user": {"login": "alice", "id": 1, "type": "User"}, "labels": [], "state": "open"},
        "comment": {"id": 99, "body": "Looks good to me, thanks!", "user": {"login": "alice", "id": 1, "type": "User"}},
        "repository": {"id": 42, "name": "widgets", "full_name": "acme/widgets", "owner": {"login": "acme", "id": 9, "type": "Organization"}, "default_branch": "main", "private": false},
        "sender": {"login": "alice", "id": 1, "type": "User"},
        "installation": {"id": 77}
    }))
    .expect("json")
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let seconds: u64 = std::env::var("INGEST_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let levels: Vec<usize> = std::env::var("INGEST_CONNECTIONS")
        .unwrap_or_else(|_| "16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::base();
    settings.webhook_secrets = vec![SECRET.to_string().into()];
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    settings.database_url = database_url.clone().into();
    settings.jobs.workers = 0;
    let app = specbot::app::build(settings).await.expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = specbot::runtime::start(app.clone(), listener).expect("start");
    let url = format!("http://{}/api/github/webhooks", running.addr);
    let body = bytes::Bytes::from(payload());
    let signature = sign(SECRET, &body);
    println!(
        "ingest: {} byte signed deliveries, {} s per level, store {}",
        body.len(),
        seconds,
        if database_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite (WAL)"
        }
    );
    println!("| connections | deliveries/s | p50 ms | p99 ms | max ms | non-2xx | errors |");
    println!("|---|---|---|---|---|---|---|");
    let counter = Arc::new(AtomicU64::new(0));
    let mut acknowledged = 0u64;
    for conns in levels {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..conns {
            let url = url.clone();
            let body = body.clone();
            let signature = signature.clone();
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut lat = Vec::with_capacity(100_000);
                let (mut bad, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let id = counter.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let r = client
                        .post(&url)
                        .header("X-GitHub-Event", "issue_comment")
                        .header("X-GitHub-Delivery", format!("bench-{id}"))
                        .header("X-Hub-Signature-256", &signature)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            lat.push(t0.elapsed().as_micros() as u64)
                        }
                        Ok(_) => bad += 1,
                        Err(_) => errors += 1,
                    }
                }
                (lat, bad, errors)
            }));
        }
        let mut all = Vec::new();
        let (mut bad, mut errors) = (0, 0);
        for t in tasks {
            let (lat, b, e) = t.await.expect("task");
            all.extend(lat);
            bad += b;
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_unstable();
        acknowledged += all.len() as u64;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
            conns,
            all.len() as f64 / elapsed,
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.last().copied().unwrap_or(0) as f64 / 1000.0,
            bad,
            errors
        );
    }
    let stored = app.store.delivery_count().await.expect("count");
    println!(
        "acknowledged {acknowledged}, stored {stored}: {}",
        if stored as u64 == acknowledged {
            "every acknowledged delivery stored exactly once"
        } else {
            "MISMATCH"
        }
    );
    running.shutdown().await;
}
