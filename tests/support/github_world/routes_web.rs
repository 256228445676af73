//! The few github.com *web* pages the setup flow passes through: the App-manifest form target
//! (`POST /settings/apps/new`, `/organizations/{org}/settings/apps/new`), which checks the
//! manifest and sends the browser back to its `redirect_url` with a one-time code, and the
//! "install your App" page it ends on. Not part of the REST API, so not checked against it.

use serde_json::Value;

use super::server::{Payload, Resp};
use super::state::State;

/// A manifest as GitHub received it from a browser.
#[derive(Clone, Debug)]
pub struct RegisteredManifest {
    /// `None` for a personal account.
    pub org: Option<String>,
    pub state: Option<String>,
    pub manifest: Value,
}

pub fn route(
    st: &mut State,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Option<Resp> {
    let org = match (method, path.split('/').collect::<Vec<_>>().as_slice()) {
        ("POST", ["", "settings", "apps", "new"]) => None,
        ("POST", ["", "organizations", org, "settings", "apps", "new"]) => Some(org.to_string()),
        // Browsers ask every host for one.
        ("GET", ["", "favicon.ico"]) => return Some(page(404, "Not Found")),
        ("GET", ["", "apps", slug, "installations", "new"]) => {
            let html = format!(
                "<!doctype html><title>Install {slug}</title><h1>Install {slug}</h1><p>Choose the repositories.</p>"
            );
            return Some(Resp {
                status: 200,
                payload: Payload::Bytes(html.into_bytes(), "text/html; charset=utf-8"),
                headers: Vec::new(),
            });
        }
        _ => return None,
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let manifest = form
        .iter()
        .find(|(k, _)| k == "manifest")
        .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok());
    let state = query
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone());
    let Some(manifest) = manifest else {
        return Some(page(422, "Invalid GitHub App configuration: no manifest"));
    };
    // What GitHub requires of a manifest.
    let redirect = manifest["redirect_url"].as_str().map(str::to_string);
    let ok = manifest["url"].is_string()
        && manifest["hook_attributes"]["url"].is_string()
        && manifest["default_permissions"].is_object();
    let Some(redirect) = redirect.filter(|_| ok) else {
        return Some(page(
            422,
            "Invalid GitHub App configuration: url, hook_attributes.url, redirect_url and default_permissions are required",
        ));
    };
    let code = format!("manifest-code-{}", st.manifest_codes.len() + 1);
    st.manifest_codes.insert(code.clone());
    st.registered_manifests.push(RegisteredManifest {
        org,
        state: state.clone(),
        manifest,
    });
    let mut location = format!("{redirect}?code={code}");
    if let Some(state) = state {
        location.push_str("&state=");
        location
            .push_str(&url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>());
    }
    Some(Resp {
        status: 302,
        payload: Payload::Empty,
        headers: vec![("location".into(), location)],
    })
}

fn page(status: u16, text: &str) -> Resp {
    Resp {
        status,
        payload: Payload::Bytes(
            format!("<!doctype html><p>{text}</p>").into_bytes(),
            "text/html; charset=utf-8",
        ),
        headers: Vec::new(),
    }
}
