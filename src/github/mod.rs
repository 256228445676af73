//! GitHub over REST: App authentication, one cached client per installation, the request
//! policy GitHub's limits require, and intent-level methods (`commit_files`, `open_pr`,
//! `file_issue_once`, `link_sub_issue`, `react`, …) that workflows call.
//!
//! Authentication is octocrab's: an RS256 JWT (`iat` 60 s in the past, `exp` 9 min ahead,
//! `iss` = App id) mints installation tokens, which octocrab caches and refreshes before expiry
//! (and again after a `401`). Each `Octocrab::installation()` call starts a new cache, so
//! [`GitHubApp`] keeps exactly one client per installation. Octocrab's `retry` feature is not
//! compiled in (it re-sends POSTs): [`request`] decides what may be retried.

pub mod actions;
pub mod model;
pub mod repo;
pub mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use secrecy::ExposeSecret;

use crate::config::{AppCredentials, GitHubPolicy};
pub use repo::{ReactOn, Repo};
pub use request::{GitHubError, Installation};

/// The App: its JWT-authenticated client and the per-installation clients.
#[derive(Clone)]
pub struct GitHubApp {
    app: Octocrab,
    policy: GitHubPolicy,
    identity: Arc<Identity>,
    installations: Arc<Mutex<HashMap<u64, Installation>>>,
}

/// Who the App is, to recognise what it wrote itself: its id, and its bot login
/// (`<slug>[bot]`), asked of `GET /app` once.
pub struct Identity {
    app_id: u64,
    app: Installation,
    login: tokio::sync::OnceCell<String>,
}

impl Identity {
    /// Whether the App itself wrote something authored by `user` (and, where GitHub says so,
    /// `performed_via_github_app`).
    pub async fn wrote(
        &self,
        user: &model::User,
        via: Option<&model::App>,
    ) -> Result<bool, GitHubError> {
        if via.is_some_and(|app| app.id == self.app_id) {
            return Ok(true);
        }
        let login = self
            .login
            .get_or_try_init(|| async {
                let me: model::App = self.app.get_json("GET /app", "/app").await?;
                let slug = me.slug.ok_or_else(|| GitHubError::Decode {
                    route: "GET /app",
                    reason: "the App has no `slug`".into(),
                })?;
                Ok::<_, GitHubError>(format!("{slug}[bot]"))
            })
            .await?;
        Ok(user.login.eq_ignore_ascii_case(login))
    }
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp").finish_non_exhaustive()
    }
}

impl GitHubApp {
    pub fn new(
        creds: &AppCredentials,
        api_url: &str,
        policy: GitHubPolicy,
    ) -> Result<Self, GitHubError> {
        let key = octocrab::EncodingKey::from_rsa_pem(creds.private_key.expose_secret().as_bytes())
            .map_err(|e| {
                GitHubError::Config(format!("the private key is not a PEM RSA key: {e}"))
            })?;
        let app = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| GitHubError::Config(format!("GITHUB_API_URL: {e}")))?
            .app(AppId(creds.app_id), key)
            .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
            .set_read_timeout(Some(policy.request_timeout))
            .build()
            .map_err(|e| GitHubError::Config(format!("GitHub client: {e}")))?;
        let identity = Arc::new(Identity {
            app_id: creds.app_id,
            app: Installation::new(0, app.clone(), policy.clone(), None),
            login: tokio::sync::OnceCell::new(),
        });
        Ok(GitHubApp {
            app,
            policy,
            identity,
            installations: Arc::default(),
        })
    }

    /// The client for one installation (created once, then shared).
    pub fn installation(&self, id: u64) -> Result<Installation, GitHubError> {
        let mut map = self
            .installations
            .lock()
            .map_err(|_| GitHubError::Config("installation cache poisoned".into()))?;
        if let Some(found) = map.get(&id) {
            return Ok(found.clone());
        }
        let crab = self
            .app
            .installation(InstallationId(id))
            .map_err(|e| GitHubError::Config(format!("installation {id}: {e}")))?;
        let inst = Installation::new(id, crab, self.policy.clone(), Some(self.identity.clone()));
        map.insert(id, inst.clone());
        Ok(inst)
    }

    /// `GET /app` with the App's JWT: who we are (used for the bot's login and by
    /// `check-config`).
    pub async fn app_info(&self) -> Result<model::App, GitHubError> {
        self.identity.app.get_json("GET /app", "/app").await
    }

    pub fn client(&self) -> &Octocrab {
        &self.app
    }
}
