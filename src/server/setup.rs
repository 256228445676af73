//! `GET /`: the register-the-App page while no App credentials are configured (GitHub's
//! manifest flow, as Probot users know it); the status page once they are is in [`super::status`].
//!
//! Flow: the page POSTs the manifest built from `app-manifest.yml` (this server's URL filled in)
//! to GitHub, for a personal account or an organisation, on github.com or a GitHub Enterprise
//! Server host. GitHub sends the browser back to `/setup/callback?code=…&state=…`; the `state`
//! must be one this server issued (single use, 1 hour); the `code` is exchanged at
//! `POST /app-manifests/{code}/conversions` and the credentials are written to `.env` (mode
//! 0600). The browser then goes on to install the App.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::app::App;

const STATE_TTL: Duration = Duration::from_secs(3600);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
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

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    /// Organisation to register the App under (empty: the signed-in user's account).
    #[serde(default)]
    org: Option<String>,
    /// GitHub Enterprise Server host (empty: github.com).
    #[serde(default)]
    ghes: Option<String>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// `GET /` while no App credentials are configured.
pub fn home(app: &App, headers: &HeaderMap, q: HomeQuery) -> Response {
    let base = base_url(headers);
    let state = app.new_setup_state();
    let org = q.org.filter(|o| valid_name(o));
    let ghes = q.ghes.filter(|h| valid_name(h));
    let web = match &ghes {
        Some(host) => format!("https://{host}"),
        None => web_root(&app.settings.github_api_url),
    };
    let action = match &org {
        Some(org) => format!("{web}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{web}/settings/apps/new?state={state}"),
    };
    let manifest = manifest(&base, &app.settings.webhook_path).to_string();
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>specbot setup</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}label{{display:block;margin:.5rem 0}}code{{background:#f3f3f3;padding:0 .2rem}}</style></head>
<body>
<h1>Welcome to specbot</h1>
<p>specbot has no GitHub App yet. Register one with the button below: GitHub creates the App from
this server's manifest, then sends you back here, and specbot saves its credentials to <code>.env</code>.</p>
<form id="target" method="get" action="/">
<label>Organisation (leave empty for your personal account) <input name="org" value="{org}"></label>
<label>GitHub Enterprise Server host (leave empty for github.com) <input name="ghes" value="{ghes}"></label>
<button type="submit">Use these</button>
</form>
<form id="register" method="post" action="{action}">
<input type="hidden" name="manifest" value="{manifest}">
<p>Registering on <strong>{where_}</strong>.</p>
<button id="register-button" type="submit">Register GitHub App</button>
</form>
</body></html>"#,
        org = escape(org.as_deref().unwrap_or("")),
        ghes = escape(ghes.as_deref().unwrap_or("")),
        action = escape(&action),
        manifest = escape(&manifest),
        where_ = escape(&match (&org, &ghes) {
            (Some(o), Some(h)) => format!("{h}, organisation {o}"),
            (Some(o), None) => format!("github.com, organisation {o}"),
            (None, Some(h)) => format!("{h}, your account"),
            (None, None) => "github.com, your account".into(),
        }),
    );
    Html(html).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

/// What GitHub answers for a manifest code. Secrets stay secret types (their `Debug` shows
/// nothing); the OAuth client secret is not even read: specbot has no use for it.
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

pub async fn callback(State(app): State<Arc<App>>, Query(q): Query<Callback>) -> Response {
    if app.settings.app.is_some() {
        return (
            StatusCode::CONFLICT,
            "specbot already has App credentials\n",
        )
            .into_response();
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return (StatusCode::BAD_REQUEST, "missing code or state\n").into_response();
    };
    if !app.take_setup_state(&state) {
        return (
            StatusCode::FORBIDDEN,
            "unknown or expired state: start again from the setup page\n",
        )
            .into_response();
    }
    if code.is_empty()
        || code.len() > 100
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return (StatusCode::BAD_REQUEST, "malformed code\n").into_response();
    }
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        app.settings.github_api_url
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .user_agent("specbot")
        .build()
        .unwrap_or_default();
    let answer = http
        .post(&url)
        .header(header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await;
    let conversion: Conversion = match answer {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "manifest conversion: unexpected answer");
                return (
                    StatusCode::BAD_GATEWAY,
                    "GitHub's answer could not be read\n",
                )
                    .into_response();
            }
        },
        Ok(r) => {
            tracing::error!(status = r.status().as_u16(), "manifest conversion refused");
            return (
                StatusCode::BAD_GATEWAY,
                "GitHub refused the registration code (it is single-use and expires after an hour)\n",
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e.without_url(), "manifest conversion failed");
            return (StatusCode::BAD_GATEWAY, "GitHub could not be reached\n").into_response();
        }
    };
    let env = format!(
        "APP_ID={}\nPRIVATE_KEY=\"{}\"\nWEBHOOK_SECRET={}\nGITHUB_CLIENT_ID={}\n",
        conversion.id,
        conversion.pem.expose_secret().trim().replace('\n', "\\n"),
        conversion
            .webhook_secret
            .as_ref()
            .map(|s| s.expose_secret())
            .unwrap_or_default(),
        conversion.client_id.unwrap_or_default(),
    );
    if let Err(e) = write_env(&app.settings.env_file, &env) {
        tracing::error!(error = %e, "could not write .env");
        return (StatusCode::INTERNAL_SERVER_ERROR, "could not write .env\n").into_response();
    }
    tracing::info!(app_id = conversion.id, slug = ?conversion.slug, "GitHub App registered; credentials saved to .env");
    let install = match conversion.html_url {
        Some(url) => format!("{url}/installations/new"),
        None => "https://github.com/settings/apps".into(),
    };
    Redirect::to(&install).into_response()
}

/// Append the credentials to `.env` (kept private: mode 0600).
fn write_env(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

impl App {
    /// A fresh single-use `state` token for the manifest flow.
    pub fn new_setup_state(&self) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(mut states) = self.setup_states.lock() {
            states.retain(|_, at| at.elapsed() < STATE_TTL);
            if states.len() < 1000 {
                states.insert(token.clone(), Instant::now());
            }
        }
        token
    }

    fn take_setup_state(&self, token: &str) -> bool {
        self.setup_states
            .lock()
            .ok()
            .and_then(|mut s| s.remove(token))
            .is_some_and(|at| at.elapsed() < STATE_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::web_root;

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
}
