//! App routes of the GitHub simulator: App JWT verification (RS256 against the test key), `GET
//! /app`, installations, installation-token minting (counted per installation), the repo's
//! installation, and the manifest-code conversion.

use serde_json::{Value, json};

use super::git::{iso, now};
use super::server::{Cx, HR, Resp};
use super::state::{State, Token};

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/app") => Resp::ok(cx.view().app()),
        ("GET", "/app/installations/{installation_id}") => installation(cx),
        ("POST", "/app/installations/{installation_id}/access_tokens") => mint(cx),
        ("GET", "/repos/{owner}/{repo}/installation") => cx
            .repo_key()
            .and_then(|_| Resp::ok(cx.view().installation())),
        ("POST", "/app-manifests/{code}/conversions") => conversion(cx),
        _ => return None,
    })
}

/// Verifies an App JWT the way GitHub does: RS256 with the App's key, `iss` = app id (or client
/// id), `iat` in the past, `exp` in the future and at most 10 minutes after `iat`.
pub fn verify_jwt(st: &State, public_key: &str, token: &str) -> Result<(), Resp> {
    let undecodable = || Resp::message(401, "A JSON web token could not be decoded");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes())
        .map_err(|_| undecodable())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|_| undecodable())?;
    let claims = data.claims;
    let iss_ok = match &claims["iss"] {
        Value::Number(n) => n.as_u64() == Some(st.app_id),
        Value::String(s) => *s == st.app_id.to_string() || *s == format!("Iv23li{}", st.app_id),
        _ => false,
    };
    if !iss_ok {
        return Err(Resp::message(
            401,
            "'Issuer' claim ('iss') must be an Integer",
        ));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(Resp::message(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        ));
    };
    let t = now();
    if iat > t {
        return Err(Resp::message(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        ));
    }
    if exp <= t {
        return Err(Resp::message(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        ));
    }
    if exp - iat > 600 {
        return Err(Resp::message(
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ));
    }
    Ok(())
}

fn installation(cx: &mut Cx) -> HR {
    if cx.req.num("installation_id")? != cx.st.installation_id {
        return Err(Resp::not_found());
    }
    Resp::ok(cx.view().installation())
}

fn mint(cx: &mut Cx) -> HR {
    let id = cx.req.num("installation_id")?;
    if id != cx.st.installation_id {
        return Err(Resp::not_found());
    }
    let n = cx.st.mints.entry(id).or_insert(0);
    *n += 1;
    let seq = cx.st.tokens.len() + 1;
    let token = format!(
        "ghs_{}",
        &hex::encode(<sha1::Sha1 as sha1::Digest>::digest(
            format!("token-{seq}").as_bytes()
        ))[..36]
    );
    let expires_at = now() + 3600;
    cx.st.tokens.insert(
        token.clone(),
        Token {
            installation_id: id,
            expires_at,
        },
    );
    let permissions = match cx.req.body.get("permissions") {
        Some(p) if p.is_object() => p.clone(),
        _ => cx.view().permissions(),
    };
    Resp::created(json!({
        "token": token,
        "expires_at": iso(expires_at),
        "permissions": permissions,
        "repository_selection": "all"
    }))
}

fn conversion(cx: &mut Cx) -> HR {
    let code = cx.req.p("code").to_string();
    if !cx.st.manifest_codes.remove(&code) {
        return Err(Resp::not_found());
    }
    let mut app = cx.view().app();
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .expect("test key");
    // The App's page on this world's web side, so a browser can follow the flow to its end.
    let slug = app["slug"].as_str().unwrap_or("specbot").to_string();
    app["html_url"] = json!(format!("{}/apps/{slug}", cx.base));
    app["client_secret"] = json!("sim-client-secret");
    app["webhook_secret"] = json!("sim-webhook-secret");
    app["pem"] = json!(pem);
    Resp::created(app)
}
