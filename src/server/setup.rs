//! Setup mode: registering the GitHub App from the browser (GitHub's manifest flow, as Probot
//! users know it) while no App credentials are configured.
//!
//! Whoever reaches the port first must not be able to register their own App into this
//! server's `.env` (docs/security.md), so:
//! - `serve` logs a one-time setup link, `/?token=…`; only a browser that opened it gets the
//!   setup cookie (HttpOnly, SameSite=Lax, one hour), and every setup route asks for it;
//! - the manifest `state` is an HMAC of that cookie under the token: it completes setup only in
//!   the browser it was issued to, and there is no table of issued states to fill up;
//! - one registration per process: after it the setup routes answer `410 Gone`, and once
//!   credentials are configured they are not routed at all;
//! - the code from a GitHub Enterprise Server is exchanged at that host's API, and only a plain
//!   host name is accepted for it;
//! - `.env` is rewritten atomically (a temporary file, mode 0600, renamed over it), the keys it
//!   sets replacing earlier lines of the same name (dotenvy keeps the first of two), values
//!   single-quoted. The OAuth client secret is not kept: specbot has no use for it.
//!
//! Flow: `GET /?token=…` → cookie, `303 /` → one form (organisation, GHES host, the manifest)
//! → `POST /setup/register` → `307` to GitHub's new-App page, which so receives the same form
//! with the manifest → GitHub → `GET /setup/callback?code=…&state=…` → credentials saved → the
//! next steps (restart, the install link, the label to add).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::app::App;
use crate::config::Settings;

use super::page;

/// The cookie that proves a browser opened the setup link.
const COOKIE: &str = "specbot_setup";

/// How long a setup cookie (and so a `state`) is good for.
const SESSION_TTL: Duration = Duration::from_secs(3600);

/// What setup mode knows: the token of this run's setup link, and whether the one
/// registration has happened.
pub struct Setup {
    token: SecretString,
    /// Held for a whole exchange, so that two callbacks cannot both register.
    registering: tokio::sync::Mutex<()>,
    done: AtomicBool,
}

/// A setup cookie this server issued, still good.
struct Session {
    payload: String,
    /// The GitHub Enterprise Server host chosen in the form (`None`: github.com or
    /// `GITHUB_API_URL`).
    ghes: Option<String>,
}

impl Setup {
    /// Setup for this run: `settings.setup_token`, or a fresh random token; in setup mode the
    /// link is logged (the only way to reach the form).
    pub fn new(settings: &Settings) -> Arc<Setup> {
        let token = settings
            .setup_token
            .clone()
            .unwrap_or_else(|| SecretString::from(uuid::Uuid::new_v4().simple().to_string()));
        if settings.app.is_none() {
            let host = match settings.host.as_str() {
                "0.0.0.0" | "::" | "" => "localhost",
                other => other,
            };
            let path = format!("/?token={}", token.expose_secret());
            tracing::warn!(
                setup_path = %path,
                "no GitHub App is configured yet: open http://{host}:{}{path} to register one (this setup link is the only way in, and changes at every start)",
                settings.port,
            );
        }
        Arc::new(Setup {
            token,
            registering: tokio::sync::Mutex::new(()),
            done: AtomicBool::new(false),
        })
    }

    fn mac(&self, what: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.token.expose_secret().as_bytes())
            .expect("HMAC takes any key");
        mac.update(what.as_bytes());
        mac
    }

    fn sign(&self, what: &str) -> String {
        hex::encode(self.mac(what).finalize().into_bytes())
    }

    /// Is `hex` the signature of `what`? In constant time.
    fn verify(&self, what: &str, hex: &str) -> bool {
        hex::decode(hex).is_ok_and(|sig| self.mac(what).verify_slice(&sig).is_ok())
    }

    fn is_token(&self, given: &str) -> bool {
        super::status::same_secret(self.token.expose_secret(), given)
    }

    /// A fresh cookie value: `issued.nonce.ghes-host.signature`.
    fn new_session(&self, ghes: Option<&str>) -> String {
        let payload = format!(
            "{}.{}.{}",
            crate::jobs::now_ms() / 1000,
            uuid::Uuid::new_v4().simple(),
            ghes.unwrap_or("")
        );
        format!("{payload}.{}", self.sign(&payload))
    }

    /// The session this request's setup cookie holds, if this server issued it within the hour.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let value = cookie(headers, COOKIE)?;
        let (payload, signature) = value.rsplit_once('.')?;
        if !self.verify(payload, signature) {
            return None;
        }
        let mut parts = payload.splitn(3, '.');
        let issued: i64 = parts.next()?.parse().ok()?;
        let _nonce = parts.next()?;
        let ghes = parts.next()?;
        let age = crate::jobs::now_ms() / 1000 - issued;
        if !(0..=SESSION_TTL.as_secs() as i64).contains(&age) {
            return None;
        }
        Some(Session {
            payload: payload.to_string(),
            ghes: (!ghes.is_empty()).then(|| ghes.to_string()),
        })
    }

    fn state(&self, session: &Session) -> String {
        self.sign(&format!("state:{}", session.payload))
    }
}

/// One cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// This server's public base URL, from the request (`X-Forwarded-*` behind a proxy).
fn base_url(headers: &HeaderMap) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .unwrap_or_else(|| "localhost:3000".into());
    let proto = get("x-forwarded-proto").unwrap_or_else(|| {
        if host.starts_with("localhost") || host.starts_with("127.") {
            "http".into()
        } else {
            "https".into()
        }
    });
    format!("{proto}://{host}")
}

/// GitHub's web root for an API root: `https://api.github.com` → `https://github.com`,
/// `https://HOST/api/v3` (GitHub Enterprise Server) → `https://HOST`; anything else (a proxy, a
/// simulator) serves both from one root.
pub fn web_root(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if let Some(rest) = api.strip_prefix("https://api.") {
        return format!("https://{rest}");
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_string()
}

/// The manifest GitHub registers, from `app-manifest.yml` with this server's URLs filled in.
pub fn manifest(base: &str, webhook_path: &str) -> serde_json::Value {
    let mut m: serde_json::Value =
        serde_saphyr::from_str(include_str!("../../app-manifest.yml")).unwrap_or_default();
    m["url"] = serde_json::json!(m.get("url").and_then(|u| u.as_str()).unwrap_or(base));
    m["hook_attributes"] =
        serde_json::json!({"url": format!("{base}{webhook_path}"), "active": true});
    m["redirect_url"] = serde_json::json!(format!("{base}/setup/callback"));
    m["setup_url"] = serde_json::json!(format!("{base}/"));
    m
}

/// An organisation's login: letters, digits, `-`, `.`, `_`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// A GitHub Enterprise Server host as typed in the form: a plain host name, with a port at
/// most (no scheme, user, path or query), lower-cased. It is reached over https only.
pub fn plain_host(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty()
        || s.len() > 253
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':')
    {
        return None;
    }
    let url = url::Url::parse(&format!("https://{s}/")).ok()?;
    let host = url.host_str()?;
    let rebuilt = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    (rebuilt == s && url.path() == "/").then_some(s)
}

/// `GET /` in setup mode: the form for a browser that opened the setup link, else a page that
/// says where the link is.
pub fn home(app: &App, setup: &Setup, headers: &HeaderMap, token: Option<&str>) -> Response {
    if setup.done.load(Ordering::SeqCst) {
        return registered_page();
    }
    if let Some(token) = token {
        if !setup.is_token(token) {
            return locked_page();
        }
        // The token leaves the address bar; the cookie carries the proof from now on.
        let secure = base_url(headers).starts_with("https:");
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (
                    header::SET_COOKIE,
                    set_cookie(&setup.new_session(None), SESSION_TTL.as_secs(), secure),
                ),
            ],
        )
            .into_response();
    }
    if setup.session(headers).is_none() {
        return locked_page();
    }
    let manifest = manifest(&base_url(headers), &app.settings.webhook_path).to_string();
    page::html(
        "Register specbot's GitHub App",
        &page::setup_form(&page::escape(&manifest)),
    )
}

fn locked_page() -> Response {
    page::html(
        "specbot setup",
        "<h1>specbot has no GitHub App yet</h1>\
         <p>To register one, open the <strong>setup link</strong> that <code>specbot serve</code> \
         printed in its log when it started (the line with <code>setup_path</code>, \
         <code>/?token=…</code>). Anyone else who reaches this page sees only this message.</p>\
         <p>The link works in one browser for an hour; restart specbot for a new one.</p>",
    )
}

fn registered_page() -> Response {
    (
        StatusCode::GONE,
        page::html(
            "specbot setup",
            "<h1>The GitHub App is registered</h1>\
             <p>Its credentials are in <code>.env</code>. Restart specbot to use them; setup is \
             closed until then.</p>",
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    ghes: String,
}

/// `POST /setup/register`: check the form and send the browser on to GitHub's new-App page
/// with `307`, so that it posts the same form (and so the manifest) there.
pub async fn register(
    State(app): State<Arc<App>>,
    Extension(setup): Extension<Arc<Setup>>,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    if setup.done.load(Ordering::SeqCst) {
        return registered_page();
    }
    if setup.session(&headers).is_none() {
        return refused(
            StatusCode::FORBIDDEN,
            "open the setup link from the log first",
        );
    }
    let org = match form.org.trim() {
        "" => None,
        org if valid_name(org) => Some(org.to_string()),
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "that is not an organisation's name",
            );
        }
    };
    let ghes = match form.ghes.trim() {
        "" => None,
        host => match plain_host(host) {
            Some(host) => Some(host),
            None => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "the GitHub Enterprise Server host is a plain host name, like github.example.com",
                );
            }
        },
    };
    let cookie = setup.new_session(ghes.as_deref());
    let session = Session {
        payload: cookie.rsplit_once('.').map_or("", |(p, _)| p).to_string(),
        ghes: ghes.clone(),
    };
    let web = match &ghes {
        Some(host) => format!("https://{host}"),
        None => web_root(&app.settings.github_api_url),
    };
    let account = match &org {
        Some(org) => format!("/organizations/{org}"),
        None => String::new(),
    };
    let location = format!(
        "{web}{account}/settings/apps/new?state={}",
        setup.state(&session)
    );
    let secure = base_url(&headers).starts_with("https:");
    (
        StatusCode::TEMPORARY_REDIRECT,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                set_cookie(&cookie, SESSION_TTL.as_secs(), secure),
            ),
        ],
    )
        .into_response()
}

fn refused(status: StatusCode, why: &str) -> Response {
    (
        status,
        page::html(
            "specbot setup",
            &format!("<h1>Not this way</h1><p>{}.</p>", page::escape(why)),
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

/// What GitHub answers for a manifest code. Secrets stay secret types (their `Debug` shows
/// nothing); the OAuth client secret is not even read.
#[derive(Debug, Deserialize)]
struct Conversion {
    id: u64,
    #[serde(default)]
    slug: Option<String>,
    pem: SecretString,
    webhook_secret: Option<SecretString>,
    client_id: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

/// `GET /setup/callback`: GitHub sends the browser back with a code; in the browser the state
/// was issued to, the code is exchanged for the App's credentials, which go to `.env`.
pub async fn callback(
    State(app): State<Arc<App>>,
    Extension(setup): Extension<Arc<Setup>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let _one_at_a_time = setup.registering.lock().await;
    if setup.done.load(Ordering::SeqCst) {
        return registered_page();
    }
    let Some(session) = setup.session(&headers) else {
        return refused(
            StatusCode::FORBIDDEN,
            "this browser did not start the registration: start again from the setup link",
        );
    };
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "GitHub's answer has no code or state",
        );
    };
    if !setup.verify(&format!("state:{}", session.payload), &state) {
        return refused(
            StatusCode::FORBIDDEN,
            "this registration was not started in this browser: start again from the setup link",
        );
    }
    if code.is_empty()
        || code.len() > 100
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return refused(StatusCode::BAD_REQUEST, "malformed code");
    }
    let api = match &session.ghes {
        Some(host) => format!("https://{host}/api/v3"),
        None => app.settings.github_api_url.clone(),
    };
    let conversion = match exchange(&api, &code).await {
        Ok(c) => c,
        Err(why) => return refused(StatusCode::BAD_GATEWAY, why),
    };
    let mut entries = vec![
        ("APP_ID", conversion.id.to_string()),
        (
            "PRIVATE_KEY",
            conversion.pem.expose_secret().trim().replace('\n', "\\n"),
        ),
    ];
    if let Some(secret) = &conversion.webhook_secret {
        entries.push(("WEBHOOK_SECRET", secret.expose_secret().to_string()));
    }
    if let Some(id) = &conversion.client_id {
        entries.push(("GITHUB_CLIENT_ID", id.clone()));
    }
    if session.ghes.is_some() {
        entries.push(("GITHUB_API_URL", api.clone()));
    }
    if let Err(error) = write_env(&app.settings.env_file, &entries) {
        tracing::error!(%error, "could not write .env");
        return refused(StatusCode::INTERNAL_SERVER_ERROR, "could not write .env");
    }
    setup.done.store(true, Ordering::SeqCst);
    tracing::info!(app_id = conversion.id, slug = ?conversion.slug, "GitHub App registered; credentials saved to .env");
    let install = match &conversion.html_url {
        Some(url) => format!("{url}/installations/new"),
        None => format!("{}/settings/apps", web_root(&api)),
    };
    let secure = base_url(&headers).starts_with("https:");
    (
        [(header::SET_COOKIE, set_cookie("", 0, secure))],
        page::html(
            "specbot is registered",
            &page::next_steps(
                &page::escape(conversion.slug.as_deref().unwrap_or("specbot")),
                &page::escape(&install),
            ),
        ),
    )
        .into_response()
}

/// `POST /app-manifests/{code}/conversions` at `api`; errors in words for the page (details
/// go to the log).
async fn exchange(api: &str, code: &str) -> Result<Conversion, &'static str> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .user_agent("specbot")
        .build()
        .unwrap_or_default();
    let answer = http
        .post(format!("{api}/app-manifests/{code}/conversions"))
        .header(header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => r.json().await.map_err(|error| {
            tracing::error!(%error, "manifest conversion: unexpected answer");
            "GitHub's answer could not be read"
        }),
        Ok(r) => {
            tracing::error!(status = r.status().as_u16(), "manifest conversion refused");
            Err("GitHub refused the registration code (it is single-use and expires after an hour)")
        }
        Err(error) => {
            tracing::error!(error = %error.without_url(), %api, "manifest conversion failed");
            Err("GitHub could not be reached")
        }
    }
}

/// Keys a registration replaces besides the ones it writes: an old key file, and the client
/// secret earlier versions stored.
const REPLACED: [&str; 2] = ["PRIVATE_KEY_PATH", "GITHUB_CLIENT_SECRET"];

/// Write `entries` into the `.env` at `path`: lines of an existing file that set other keys are
/// kept, lines that set these (or [`REPLACED`]) are dropped; the new file (mode 0600) is
/// written beside it and renamed over it, so a crash leaves the old file or the new one.
fn write_env(path: &Path, entries: &[(&str, String)]) -> std::io::Result<()> {
    if let Some((key, _)) = entries
        .iter()
        .find(|(_, v)| v.contains('\'') || v.contains('\n'))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{key}: a value with a quote or a newline"),
        ));
    }
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let replaced: Vec<&str> = entries.iter().map(|(k, _)| *k).chain(REPLACED).collect();
    let mut text = kept_lines(&old, &replaced);
    for (key, value) in entries {
        text.push_str(&format!("{key}='{value}'\n"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A named temporary file is created with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The lines of a `.env` that set none of `keys`. A quoted value that does not close on its
/// own line runs on to the line that closes it, and goes or stays with its key.
fn kept_lines(old: &str, keys: &[&str]) -> String {
    let mut out = String::new();
    let mut lines = old.lines();
    while let Some(line) = lines.next() {
        let text = line.trim_start();
        let text = text.strip_prefix("export ").unwrap_or(text);
        let (key, value) = text
            .split_once('=')
            .map_or((text, ""), |(k, v)| (k.trim(), v.trim()));
        let mut block = vec![line];
        if let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'')
            && !(value.len() > 1 && value.ends_with(quote))
        {
            for next in lines.by_ref() {
                block.push(next);
                if next.trim_end().ends_with(quote) {
                    break;
                }
            }
        }
        if !keys.contains(&key) {
            for l in block {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{kept_lines, plain_host, web_root};

    /// Finding 8 of the security audit: the conversion's `Debug` printed the App's private key
    /// and secrets as plain text.
    #[test]
    fn a_conversion_never_shows_its_key_or_secrets_in_debug_output() {
        let conversion: super::Conversion = serde_json::from_value(serde_json::json!({
            "id": 1,
            "pem": "-----BEGIN RSA PRIVATE KEY-----leak",
            "webhook_secret": "whsec-leak",
            "client_id": "Iv1.public",
            "client_secret": "client-secret-leak",
        }))
        .unwrap();
        let shown = format!("{conversion:?} {conversion:#?}");
        for secret in ["BEGIN RSA PRIVATE KEY", "whsec-leak", "client-secret-leak"] {
            assert!(!shown.contains(secret), "{secret} appears in {shown}");
        }
    }

    #[test]
    fn the_web_root_follows_the_api_root() {
        assert_eq!(web_root("https://api.github.com"), "https://github.com");
        assert_eq!(web_root("https://api.github.com/"), "https://github.com");
        assert_eq!(
            web_root("https://ghe.example.com/api/v3"),
            "https://ghe.example.com"
        );
        assert_eq!(web_root("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }

    #[test]
    fn only_a_plain_host_is_a_ghes_host() {
        assert_eq!(
            plain_host("GHE.example.com").as_deref(),
            Some("ghe.example.com")
        );
        assert_eq!(
            plain_host("ghe.example.com:8443").as_deref(),
            Some("ghe.example.com:8443")
        );
        for bad in [
            "",
            "https://x.example",
            "x.example/",
            "a@x.example",
            "x.example?q",
            "x y",
        ] {
            assert_eq!(plain_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn replacing_keys_drops_their_lines_and_multi_line_values() {
        let old = "A=1\nAPP_ID=9\nPRIVATE_KEY=\"-----BEGIN\nx\n-----END\"\nexport WEBHOOK_SECRET=s\nB='2'\n";
        assert_eq!(
            kept_lines(old, &["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"]),
            "A=1\nB='2'\n"
        );
    }
}
