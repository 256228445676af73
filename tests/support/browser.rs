//! A real headless browser for page tests: Debian's `chromium`, driven through `chromedriver`
//! over the W3C WebDriver protocol (plain HTTP + JSON, so no extra crate).
//!
//! [`Browser::start`] returns `None` when chromium or chromedriver is missing, so a developer's
//! `cargo test` still runs without them; CI installs both and sets `SPECBOT_REQUIRE_BROWSER=1`,
//! which turns a missing browser into a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

fn find(name: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(p) = std::env::var(name) {
        return Some(p);
    }
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        let required = std::env::var("SPECBOT_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let chromium = find(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let driver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                !required,
                "SPECBOT_REQUIRE_BROWSER=1 but chromium/chromedriver are missing"
            );
            eprintln!("skipping: chromium and chromedriver are not installed");
            return None;
        };
        // A free port, then wait for chromedriver's own "started" line (no polling, no sleep).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("piped");
        let ready = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let found = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("started successfully"));
            // Keep draining so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            found
        })
        .await
        .unwrap();
        assert!(ready, "chromedriver did not start");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            }
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Some(Browser {
            driver: child,
            http,
            session,
            base,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer: Value = req
            .send()
            .await
            .expect("webdriver answers")
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until the current page's source satisfies `ready` (after a click that navigates:
    /// WebDriver does not always wait for a form's navigation). Each check is a WebDriver round
    /// trip; there is no sleep. Panics with the last source after 2,000 checks.
    pub async fn wait_for_page(&self, what: &str, ready: impl Fn(&str, &str) -> bool) {
        let mut last = String::new();
        for _ in 0..2_000 {
            let url = self.url().await;
            last = self.source().await;
            if ready(&url, &last) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the browser never reached {what}; last page:\n{last}");
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Click the element matching `css` (a submit button navigates; WebDriver waits for it).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Type `text` into the input matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
