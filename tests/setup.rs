//! The register-the-App page and its callback, over HTTP against the GitHub world (the
//! manifest conversion is GitHub's `POST /app-manifests/{code}/conversions`).

#[path = "support/child.rs"]
mod child;
mod support;

use specbot::config::Settings;
use support::db::TestDb;
use support::github_world::GitHubWorld;

/// The status page's and `/metrics`' token in these tests.
const METRICS_TOKEN: &str = "metrics-token-for-the-setup-tests";

struct Setup {
    base: String,
    env_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _db: TestDb,
    _running: specbot::runtime::Running,
}

async fn start(world: &GitHubWorld, with_credentials: bool) -> Setup {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings::base();
    s.webhook_secrets = vec!["x".to_string().into()];
    s.database_url = db.url.clone().into();
    s.github_api_url = world.base_url();
    s.jobs.workers = 0;
    s.env_file = dir.path().join(".env");
    s.metrics_token = Some(METRICS_TOKEN.to_string().into());
    s.setup_token = Some(TOKEN.to_string().into());
    if with_credentials {
        s.app = Some(specbot::config::AppCredentials {
            app_id: world.app_id(),
            private_key: world.private_key_pem().into(),
        });
    }
    let env_file = s.env_file.clone();
    let app = specbot::app::build(s).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = specbot::runtime::start(app, listener).unwrap();
    Setup {
        base: format!("http://{}", running.addr),
        env_file,
        _dir: dir,
        _db: db,
        _running: running,
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn state_of(page: &str) -> String {
    let at = page.find("state=").expect("the form carries a state") + 6;
    page[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[tokio::test]
async fn the_manifest_flow_writes_the_credentials_and_shows_the_next_steps() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    let cookie = operator_cookie(&s).await;
    let page = no_redirects()
        .get(format!("{}/", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One form: where to register, the manifest, one button.
    assert_eq!(page.matches("<form").count(), 1, "{page}");
    assert!(page.contains(r#"action="/setup/register""#), "{page}");
    assert!(page.contains(r#"name="org""#) && page.contains(r#"name="ghes""#));
    assert_eq!(page.matches("<button").count(), 1, "{page}");
    assert!(page.contains("Register GitHub App"), "{page}");
    // The manifest carries this server's webhook URL and exactly the permissions we need.
    assert!(page.contains(&format!("{}/api/github/webhooks", s.base)));
    assert!(
        page.contains("&quot;contents&quot;:&quot;write&quot;"),
        "{page}"
    );
    assert!(
        !page.contains("workflows"),
        "never asks for the workflows permission"
    );

    // GitHub's web root follows GITHUB_API_URL (here the simulator serves both).
    let (location, cookie) = submit_form(&s, &cookie, "", "").await;
    assert!(
        location.starts_with(&format!("{}/settings/apps/new?state=", world.base_url())),
        "{location}"
    );
    let (org, _) = submit_form(&s, &cookie, "acme", "").await;
    assert!(
        org.starts_with(&format!(
            "{}/organizations/acme/settings/apps/new?state=",
            world.base_url()
        )),
        "{org}"
    );

    // GitHub sends the browser back with a code and our state.
    let state = state_of(&location);
    let answer = callback(&s, Some(&cookie), &world.manifest_code(), &state).await;
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let next = answer.text().await.unwrap();
    assert!(
        next.contains("/installations/new"),
        "the install link: {next}"
    );
    assert!(next.contains("needs-spec"), "what to label: {next}");
    assert!(next.contains("Restart specbot"), "{next}");
    let env = std::fs::read_to_string(&s.env_file).unwrap();
    for key in [
        "APP_ID=",
        "PRIVATE_KEY=",
        "WEBHOOK_SECRET=",
        "GITHUB_CLIENT_ID=",
    ] {
        assert!(env.contains(key), "{key} missing");
    }
    // The OAuth client secret is of no use to specbot: it is not kept (finding 8).
    assert!(!env.contains("GITHUB_CLIENT_SECRET"), "{env}");
    assert!(!env.contains("sim-client-secret"), "{env}");
    // The key reads back as the PEM GitHub sent.
    let key = dotenvy::from_path_iter(&s.env_file)
        .unwrap()
        .map(Result::unwrap)
        .find(|(k, _)| k == "PRIVATE_KEY")
        .map(|(_, v)| v.replace("\\n", "\n"))
        .unwrap();
    assert_eq!(key, world.private_key_pem().trim());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Setup is over.
    let again = callback(&s, Some(&cookie), &world.manifest_code(), &state).await;
    assert_eq!(again.status(), reqwest::StatusCode::GONE);
}

#[tokio::test]
async fn with_credentials_the_home_page_is_a_status_page_and_jobs_need_the_metrics_token() {
    let world = GitHubWorld::start().await;
    let s = start(&world, true).await;
    let get = |path: &str| {
        let url = format!("{}{path}", s.base);
        async move { reqwest::get(url).await.unwrap() }
    };
    let page = get("/").await.text().await.unwrap();
    assert!(page.contains("Running"), "{page}");
    assert!(!page.contains("Recent jobs"), "{page}");
    assert!(!page.contains("Register GitHub App"));
    assert!(!page.contains("PRIVATE KEY"));
    let wrong = get("/?token=guessed").await;
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    let page = get(&format!("/?token={METRICS_TOKEN}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Recent jobs"), "{page}");
    // `/metrics` asks for the token as a bearer token, as Prometheus sends it.
    assert_eq!(
        get("/metrics").await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", s.base))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
}

/// The whole registration in a real headless Chromium: the setup link, the one form (the
/// organisation typed in), the "Register GitHub App" button posting the manifest to GitHub (the
/// world's web side), GitHub sending the browser back with a code, the callback saving `.env`
/// and showing the next steps, and the install link leading to the App's install page.
#[tokio::test]
async fn a_real_browser_registers_the_app_through_the_setup_page() {
    let Some(browser) = support::browser::Browser::start().await else {
        return;
    };
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    browser.goto(&format!("{}/?token={TOKEN}", s.base)).await;
    let page = browser.source().await;
    assert!(page.contains("Welcome to specbot"), "{page}");
    assert!(
        !browser.url().await.contains("token="),
        "the token leaves the address bar"
    );
    // One form with the organisation and GHES fields, and a single Register button.
    assert_eq!(page.matches("<form").count(), 1, "{page}");
    assert!(page.contains(r#"name="org""#) && page.contains(r#"name="ghes""#));
    assert_eq!(page.matches("<button").count(), 1, "{page}");

    browser.type_into("input[name=org]", "acme").await;
    browser.click("#register-button").await;
    browser
        .wait_for_page("the next steps", |_, page| page.contains("Next steps"))
        .await;
    let page = browser.source().await;
    assert!(page.contains("/installations/new"), "{page}");
    browser.click("#install").await;
    browser
        .wait_for_page("the install page", |url, page| {
            url.ends_with("/installations/new") && page.contains("Install")
        })
        .await;

    // GitHub got the manifest with this server's URLs and our state, and sent us back.
    let registered = world.registered_manifests();
    assert_eq!(registered.len(), 1);
    let r = &registered[0];
    assert_eq!(r.org.as_deref(), Some("acme"));
    assert!(r.state.as_deref().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        r.manifest["hook_attributes"]["url"],
        format!("{}/api/github/webhooks", s.base)
    );
    assert_eq!(
        r.manifest["redirect_url"],
        format!("{}/setup/callback", s.base)
    );
    assert!(r.manifest["default_permissions"].get("workflows").is_none());
    // CI fix rounds read job logs: read-only access to Actions, nothing more.
    assert_eq!(r.manifest["default_permissions"]["actions"], "read");

    // The callback saved the credentials.
    let env = std::fs::read_to_string(&s.env_file).unwrap();
    assert!(env.contains("WEBHOOK_SECRET='sim-webhook-secret'"), "{env}");
    assert!(env.contains("PRIVATE_KEY="));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    browser.quit().await;
    world.assert_no_violations();
}

/// The one-time setup link `serve` logs in setup mode (the `setup_path` field of its JSON log).
fn setup_path(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(v["fields"]["setup_path"].as_str()?.to_string())
    })
}

/// Finding 5 of the security audit: the README's first command carried
/// `WEBHOOK_SECRET=change-me`; a first run with no App credentials at all starts in setup mode
/// without any secret (registration writes the App's own secret to `.env`).
#[tokio::test]
async fn a_first_run_without_app_credentials_starts_in_setup_mode_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = child::Server::start(dir.path(), &[]).await;
    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("GitHub App"), "{page}");
    // The log holds the setup link; the page it leads to (cookie kept) is the form.
    let path = setup_path(&server.log_text()).expect("the log names the setup link");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(server.url(&path)).send().await.unwrap();
    let cookie = setup_cookie(&answer).expect("a setup cookie");
    let page = browser
        .get(server.url("/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Register GitHub App"), "{page}");
    // Without a secret nothing can be signed: every delivery is refused.
    let answer = server
        .http
        .post(server.url("/api/github/webhooks"))
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", "d-1")
        .header(
            "X-Hub-Signature-256",
            specbot::server::webhook::sign("", b"{}"),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED);
}

/// The operator's one-time setup token, as the tests configure it (a real run logs a random one).
const TOKEN: &str = "operator-setup-token-0123456789abcdef";

/// The `specbot_setup=…` pair of an answer's `Set-Cookie`, if it sets one.
fn setup_cookie(answer: &reqwest::Response) -> Option<String> {
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("specbot_setup=") && !v.starts_with("specbot_setup=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// The setup form posted as a browser posts it, with the setup cookie if there is one.
async fn post_form(s: &Setup, cookie: Option<&str>, org: &str, ghes: &str) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("org", org), ("ghes", ghes), ("manifest", "{}")])
        .finish();
    let mut request = no_redirects()
        .post(format!("{}/setup/register", s.base))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(body).send().await.unwrap()
}

/// The operator opens the setup link from the log: the cookie that browser now holds.
async fn operator_cookie(s: &Setup) -> String {
    let answer = no_redirects()
        .get(format!("{}/?token={TOKEN}", s.base))
        .send()
        .await
        .unwrap();
    setup_cookie(&answer).expect("the setup link gives the browser a setup cookie")
}

/// The setup form sent with `cookie`: GitHub's new-App URL the browser is sent on to (`307`,
/// so the browser posts the manifest there), and the cookie it then holds.
async fn submit_form(s: &Setup, cookie: &str, org: &str, ghes: &str) -> (String, String) {
    let answer = post_form(s, Some(cookie), org, ghes).await;
    assert_eq!(
        answer.status(),
        reqwest::StatusCode::TEMPORARY_REDIRECT,
        "{answer:?}"
    );
    let cookie = setup_cookie(&answer).unwrap_or_else(|| cookie.to_string());
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    (location, cookie)
}

async fn callback(s: &Setup, cookie: Option<&str>, code: &str, state: &str) -> reqwest::Response {
    let mut request = no_redirects().get(format!(
        "{}/setup/callback?code={code}&state={state}",
        s.base
    ));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Finding 3 of the security audit: `GET /` handed a manifest `state` to anyone, and whoever
/// reached the port before the operator could register their own App into the operator's
/// `.env`. Without the setup token from the log there is no form, no state and no callback.
#[tokio::test]
async fn a_stranger_who_reaches_the_port_first_cannot_register_an_app() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    let http = no_redirects();
    for url in [format!("{}/", s.base), format!("{}/?token=guessed", s.base)] {
        let answer = http.get(&url).send().await.unwrap();
        assert!(setup_cookie(&answer).is_none(), "{url}");
        let page = answer.text().await.unwrap();
        assert!(!page.contains("state="), "{url}: {page}");
        assert!(!page.contains("manifest"), "{url}: {page}");
        assert!(
            page.contains("setup link"),
            "says where the link is: {page}"
        );
    }
    let answer = post_form(&s, None, "", "").await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    let forged = "specbot_setup=1.2.3.0000";
    for cookie in [None, Some(forged)] {
        let answer = callback(&s, cookie, &world.manifest_code(), "anything").await;
        assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    }
    assert!(!s.env_file.exists());
}

/// Finding 3: a thousand loads of `/` filled the table of issued states and blocked setup
/// for an hour.
#[tokio::test]
async fn a_thousand_loads_of_the_setup_page_do_not_block_the_operator() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    let http = no_redirects();
    for n in 0..1000 {
        let url = match n % 2 {
            0 => format!("{}/", s.base),
            _ => format!("{}/?token={TOKEN}", s.base),
        };
        let status = http.get(url).send().await.unwrap().status();
        assert!(status.is_success() || status.is_redirection(), "{status}");
    }
    let cookie = operator_cookie(&s).await;
    let (location, cookie) = submit_form(&s, &cookie, "", "").await;
    let state = state_of(&location);
    let answer = callback(&s, Some(&cookie), &world.manifest_code(), &state).await;
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert!(s.env_file.exists());
}

/// Finding 3: the `state` was not bound to the browser that asked for it, so a state seen
/// anywhere (a proxy log, a shared screen) completed someone else's registration.
#[tokio::test]
async fn a_state_only_completes_setup_in_the_browser_it_was_issued_to() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    let cookie = operator_cookie(&s).await;
    let (location, cookie) = submit_form(&s, &cookie, "", "").await;
    let state = state_of(&location);
    // Another browser with the operator's state, the operator's browser with another state.
    let other = callback(&s, None, &world.manifest_code(), &state).await;
    assert_eq!(other.status(), reqwest::StatusCode::FORBIDDEN);
    let made_up = callback(&s, Some(&cookie), &world.manifest_code(), "0123abcd").await;
    assert_eq!(made_up.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(!s.env_file.exists());
    let answer = callback(&s, Some(&cookie), &world.manifest_code(), &state).await;
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
}

/// Finding 3: `.env` was appended to, and dotenvy keeps the first value of a repeated key, so
/// old credentials won; the callback also stayed live after a registration.
#[tokio::test]
async fn registration_replaces_old_keys_in_env_and_happens_once() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    std::fs::write(
        &s.env_file,
        "APP_ID=999\nWEBHOOK_SECRET=old-secret\nLLM_API_KEY=keep-me\nPRIVATE_KEY=\"-----BEGIN OLD KEY-----\nold\n-----END OLD KEY-----\"\n",
    )
    .unwrap();
    let cookie = operator_cookie(&s).await;
    let (location, cookie) = submit_form(&s, &cookie, "", "").await;
    let answer = callback(
        &s,
        Some(&cookie),
        &world.manifest_code(),
        &state_of(&location),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains("/installations/new"),
        "the install link: {page}"
    );
    let env = std::fs::read_to_string(&s.env_file).unwrap();
    assert!(
        !env.contains("old-secret") && !env.contains("OLD KEY"),
        "{env}"
    );
    assert!(env.contains("LLM_API_KEY=keep-me"), "{env}");
    let values: Vec<(String, String)> = dotenvy::from_path_iter(&s.env_file)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let app_ids: Vec<&String> = values
        .iter()
        .filter(|(k, _)| k == "APP_ID")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(app_ids, [&world.app_id().to_string()], "{env}");
    assert!(
        values
            .iter()
            .any(|(k, v)| k == "WEBHOOK_SECRET" && v == "sim-webhook-secret"),
        "{env}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Setup is over: a second registration, even from the operator's browser, is refused.
    let answer = post_form(&s, Some(&cookie), "", "").await;
    assert_eq!(answer.status(), reqwest::StatusCode::GONE);
    let replay = callback(
        &s,
        Some(&cookie),
        &world.manifest_code(),
        &state_of(&location),
    )
    .await;
    assert_eq!(replay.status(), reqwest::StatusCode::GONE);
}

/// Finding 3: `?ghes=` pointed the form at any host, and the code was then exchanged at
/// `GITHUB_API_URL`. Only a plain host name is accepted, and the code goes to that host's API.
#[tokio::test]
async fn a_ghes_code_is_exchanged_at_that_host_and_only_a_plain_host_is_accepted() {
    let world = GitHubWorld::start().await;
    let s = start(&world, false).await;
    let cookie = operator_cookie(&s).await;
    for bad in [
        "evil.example/x?y=1",
        "http://evil.example",
        "user@evil.example",
        "evil example",
    ] {
        let answer = post_form(&s, Some(&cookie), "", bad).await;
        assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST, "{bad}");
    }
    let (location, cookie) = submit_form(&s, &cookie, "acme", "ghe.invalid").await;
    assert!(
        location.starts_with("https://ghe.invalid/organizations/acme/settings/apps/new?state="),
        "{location}"
    );
    // The world (GITHUB_API_URL) would accept this code; it must not be asked.
    let answer = callback(
        &s,
        Some(&cookie),
        &world.manifest_code(),
        &state_of(&location),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_GATEWAY);
    assert!(!s.env_file.exists());
}
