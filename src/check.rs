//! `specbot check-config`: validate the environment (and optionally a `.github/specbot.yml`)
//! and say, one line per finding, what works and what does not.

use std::time::Duration;

use crate::config::repo::RepoConfig;
use crate::config::{EnvArgs, Settings};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub line: String,
}

fn ok(line: impl Into<String>) -> Finding {
    Finding {
        ok: true,
        line: line.into(),
    }
}

fn problem(line: impl Into<String>) -> Finding {
    Finding {
        ok: false,
        line: line.into(),
    }
}

/// Check everything; `online` also asks GitHub and the model endpoint.
pub async fn check(args: EnvArgs, repo_config: Option<&str>, online: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(text) = repo_config {
        let (_, problems) = RepoConfig::parse(text);
        if problems.is_empty() {
            out.push(ok("repository config: valid"));
        }
        for p in problems {
            out.push(problem(format!("repository config: {p}")));
        }
    }
    let settings = match Settings::from_env(args, false) {
        Ok(s) => s,
        Err(e) => {
            out.push(problem(e.to_string()));
            return out;
        }
    };
    if settings.webhook_secrets.is_empty() {
        out.push(problem(
            "WEBHOOK_SECRET is not set: `specbot serve` will refuse to start",
        ));
    } else {
        out.push(ok(format!(
            "WEBHOOK_SECRET: {} secret(s) configured",
            settings.webhook_secrets.len()
        )));
    }
    let github = match &settings.app {
        None => {
            out.push(problem(
                "APP_ID and PRIVATE_KEY/PRIVATE_KEY_PATH are not set: the server will show the setup page",
            ));
            None
        }
        Some(creds) => match crate::github::GitHubApp::new(
            creds,
            &settings.github_api_url,
            settings.github.clone(),
        ) {
            Ok(app) => {
                out.push(ok(format!(
                    "private key: parses as an RSA key for App {}",
                    creds.app_id
                )));
                Some(app)
            }
            Err(e) => {
                out.push(problem(e.to_string()));
                None
            }
        },
    };
    match crate::jobs::open(&settings.database_url).await {
        Ok(store) => match store.ping().await {
            Ok(()) => out.push(ok(format!(
                "database: {} answers",
                scheme(&settings.database_url)
            ))),
            Err(e) => out.push(problem(format!("database: {e}"))),
        },
        Err(e) => out.push(problem(format!("database: {e}"))),
    }
    let llm = match crate::app::llm_settings(&settings.llm, None) {
        Ok(Some(s)) => {
            out.push(ok(format!(
                "model: {} `{}` at {}",
                s.provider, s.model, s.base_url
            )));
            Some(s)
        }
        Ok(None) => {
            out.push(problem(
                "LLM_API_KEY is not set: spec and implement jobs cannot call the model",
            ));
            None
        }
        Err(e) => {
            out.push(problem(e));
            None
        }
    };
    if let Some(json) = &settings.llm.prices
        && let Err(e) = crate::llm::PriceTable::from_json(json)
    {
        out.push(problem(format!("LLM_PRICES: {e}")));
    }
    if !online {
        return out;
    }
    if let Some(app) = github {
        match tokio::time::timeout(Duration::from_secs(15), app.app_info()).await {
            Ok(Ok(info)) => out.push(ok(format!(
                "GitHub accepted the App's JWT: App {} ({})",
                info.id,
                info.slug.unwrap_or_default()
            ))),
            Ok(Err(e)) => out.push(problem(format!("GitHub rejected the App's JWT: {e}"))),
            Err(_) => out.push(problem(format!(
                "GitHub did not answer at {}",
                settings.github_api_url
            ))),
        }
    }
    if let Some(s) = llm {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        match http.get(&s.base_url).send().await {
            Ok(_) => out.push(ok(format!("model endpoint {} is reachable", s.base_url))),
            Err(e) => out.push(problem(format!(
                "model endpoint {} is not reachable: {}",
                s.base_url,
                e.without_url()
            ))),
        }
    }
    out
}

fn scheme(url: &str) -> &str {
    url.split(':').next().unwrap_or("")
}
