//! The HTML of the server's few pages (setup, next steps, status): one look for all of them,
//! text escaped where it comes from outside.

use axum::response::{Html, IntoResponse, Response};

const STYLE: &str = "
body{font:16px/1.55 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:36rem;margin:3rem auto;padding:2rem 2.25rem;background:#fff;border:1px solid #d0d7de;border-radius:12px}
h1{font-size:1.6rem;margin:0 0 .75rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
p,li{color:#424a53}
code{background:#eff1f3;padding:.1rem .3rem;border-radius:4px;font-size:.9em}
label{display:block;font-weight:600;margin:1.1rem 0 .3rem}
label small{font-weight:400;color:#656d76}
input{box-sizing:border-box;width:100%;font:inherit;padding:.5rem .65rem;border:1px solid #d0d7de;border-radius:6px}
button,.button{display:inline-block;margin-top:1.5rem;font:inherit;font-weight:600;color:#fff;background:#1f883d;border:0;border-radius:6px;padding:.65rem 1.3rem;cursor:pointer;text-decoration:none}
ol li{margin:.6rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de}
.fine{font-size:.85rem;color:#656d76;margin-top:1.5rem}
";

/// A whole page around `body` (already HTML).
pub fn html(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>{STYLE}</style></head>\n<body><main>\n{body}\n</main></body></html>\n",
        title = escape(title),
    ))
    .into_response()
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The one setup form: where to register, and the button. `manifest` is escaped already.
pub fn setup_form(manifest: &str) -> String {
    format!(
        r#"<h1>Welcome to specbot</h1>
<p>specbot turns labelled issues into specs and specs into pull requests. To act in your
repositories it needs a GitHub App: register one from this server's manifest, and GitHub brings
you back here with its credentials, which specbot saves to <code>.env</code>.</p>
<form id="register" method="post" action="/setup/register">
<input type="hidden" name="manifest" value="{manifest}">
<label for="org">Organisation <small>— leave empty to register it under your own account</small></label>
<input id="org" name="org" placeholder="acme" autocomplete="off">
<label for="ghes">GitHub Enterprise Server host <small>— leave empty for github.com</small></label>
<input id="ghes" name="ghes" placeholder="github.example.com" autocomplete="off">
<button id="register-button" type="submit">Register GitHub App</button>
</form>
<p class="fine">The App asks for write access to contents, pull requests, issues and checks,
and read access to metadata and Actions logs. It never asks to edit GitHub Actions files, so it
cannot change your CI.</p>"#
    )
}

/// What to do after registering. `slug` and `install` are escaped already.
pub fn next_steps(slug: &str, install: &str) -> String {
    format!(
        r#"<h1>{slug} is registered</h1>
<p>GitHub created the App and specbot saved its id, key and webhook secret to <code>.env</code>.</p>
<h2>Next steps</h2>
<ol>
<li><strong>Restart specbot</strong> (<code>cargo run --release -- serve</code>, or restart the
service) so that it loads the new credentials. Setup is closed from now on.</li>
<li><strong>Install the App</strong> on the repositories it should work in:
<a id="install" class="button" href="{install}">Install {slug}</a></li>
<li><strong>Try it</strong>: open an issue that describes a feature and add the label
<code>needs-spec</code> (or comment <code>/spec</code>). specbot drafts the spec as a pull
request; once it is approved, comment <code>/implement</code>.</li>
</ol>"#
    )
}
