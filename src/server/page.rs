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
