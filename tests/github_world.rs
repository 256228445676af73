//! Tests of the GitHub simulator itself, through HTTP with reqwest: App auth and tokens, the git
//! data round trip (blob → tree → commit → ref → contents and tarball), GitHub's 422s, sub-issues,
//! the OpenAPI checker catching wrong requests, fault injection, and response-shape conformance.

#[path = "support/github_world/mod.rs"]
mod github_world;

use std::io::Read;
use std::time::Duration;

use base64::Engine;
use github_world::{Annotation, Fault, FaultRule, GitHubWorld};
use serde_json::{Value, json};

const REPO: &str = "acme/widgets";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn jwt_with(pem: &str, iss: Value, iat: i64, exp: i64) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({ "iss": iss, "iat": iat, "exp": exp }),
        &key,
    )
    .expect("sign")
}

fn app_jwt(world: &GitHubWorld) -> String {
    let t = now();
    jwt_with(
        &world.private_key_pem(),
        json!(world.app_id()),
        t - 60,
        t + 540,
    )
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(world: &GitHubWorld) -> Api {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!(
                "{}/app/installations/{}/access_tokens",
                world.base_url(),
                world.installation_id()
            ))
            .bearer_auth(app_jwt(world))
            .send()
            .await
            .expect("mint");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        Api {
            http,
            base: world.base_url(),
            token: body["token"].as_str().expect("token").to_string(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .header("authorization", format!("token {}", self.token))
            .header("accept", "application/vnd.github+json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PATCH", path, Some(body)).await
    }
}

#[tokio::test]
async fn token_mint_needs_a_valid_app_jwt() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let http = reqwest::Client::new();
    let url = format!(
        "{}/app/installations/{}/access_tokens",
        world.base_url(),
        world.installation_id()
    );

    let resp = http
        .post(&url)
        .bearer_auth(app_jwt(&world))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_"), "{token}");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["repository_selection"], "all");
    assert_eq!(body["permissions"]["issues"], "write");
    assert_eq!(world.token_mints(world.installation_id()), 1);

    let t = now();
    let pem = world.private_key_pem();
    let rejected = [
        (
            "expired",
            jwt_with(&pem, json!(world.app_id()), t - 700, t - 100),
        ),
        (
            "too long",
            jwt_with(&pem, json!(world.app_id()), t - 10, t + 900),
        ),
        (
            "iat in the future",
            jwt_with(&pem, json!(world.app_id()), t + 120, t + 300),
        ),
        ("wrong issuer", jwt_with(&pem, json!(1), t - 60, t + 500)),
        ("not a jwt", "garbage".to_string()),
    ];
    for (why, jwt) in rejected {
        let resp = http.post(&url).bearer_auth(jwt).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{why}");
    }
    let other_key =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAwrong\n-----END RSA PRIVATE KEY-----\n";
    assert!(jsonwebtoken::EncodingKey::from_rsa_pem(other_key.as_bytes()).is_err());
    assert_eq!(world.token_mints(world.installation_id()), 1);

    // GET /app takes the JWT, not a token.
    let resp = http
        .get(format!("{}/app", world.base_url()))
        .bearer_auth(app_jwt(&world))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let app: Value = resp.json().await.unwrap();
    assert_eq!(app["id"], world.app_id());
    let resp = http
        .get(format!("{}/app", world.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Repo routes take a live token.
    let repo_url = format!("{}/repos/{REPO}", world.base_url());
    let resp = http.get(&repo_url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(&repo_url)
        .bearer_auth("ghs_notatoken")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    let resp = http
        .get(&repo_url)
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let repo: Value = resp.json().await.unwrap();
    assert_eq!(repo["full_name"], REPO);
    assert_eq!(repo["default_branch"], "main");

    world.expire_tokens();
    let resp = http
        .get(&repo_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let api = Api::new(&world).await;
    assert_eq!(api.get(&format!("/repos/{REPO}")).await.0, 200);
    assert_eq!(world.token_mints(world.installation_id()), 2);

    let (status, inst) = {
        let resp = http
            .get(format!("{}/repos/{REPO}/installation", world.base_url()))
            .bearer_auth(app_jwt(&world))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(inst["id"], world.installation_id());

    let code = world.manifest_code();
    let resp = http
        .post(format!(
            "{}/app-manifests/{code}/conversions",
            world.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let conv: Value = resp.json().await.unwrap();
    assert!(conv["pem"].as_str().unwrap().contains("PRIVATE KEY"));
    assert!(conv["webhook_secret"].is_string());

    world.assert_no_violations();
    world.assert_responses_conform();
}

#[tokio::test]
async fn git_data_round_trip_then_contents_and_tarball() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.put_file(REPO, "main", "docs/old.md", "old\n");
    let api = Api::new(&world).await;
    let main = world.ref_sha(REPO, "main").unwrap();

    let (s, r) = api.get(&format!("/repos/{REPO}/git/ref/heads/main")).await;
    assert_eq!(s, 200);
    assert_eq!(r["object"]["sha"], main);
    assert_eq!(r["ref"], "refs/heads/main");
    let (s, base) = api.get(&format!("/repos/{REPO}/git/commits/{main}")).await;
    assert_eq!(s, 200);
    let base_tree = base["tree"]["sha"].as_str().unwrap().to_string();

    let (s, blob) = api
        .post(
            &format!("/repos/{REPO}/git/blobs"),
            json!({ "content": "aGVsbG8K", "encoding": "base64" }),
        )
        .await;
    assert_eq!(s, 201);
    // git hash-object of "hello\n".
    assert_eq!(blob["sha"], "ce013625030ba8dba906f756967f9e9ca394464a");

    let (s, tree) = api
        .post(
            &format!("/repos/{REPO}/git/trees"),
            json!({
                "base_tree": base_tree,
                "tree": [
                    { "path": "specs/IMPLEMENT-1.md", "mode": "100644", "type": "blob", "content": "# Spec\n" },
                    { "path": "bin/run.sh", "mode": "100755", "type": "blob", "sha": blob["sha"] },
                    { "path": "docs/old.md", "mode": "100644", "type": "blob", "sha": null }
                ]
            }),
        )
        .await;
    assert_eq!(s, 201, "{tree}");
    let (s, commit) = api
        .post(
            &format!("/repos/{REPO}/git/commits"),
            json!({ "message": "Add spec", "tree": tree["sha"], "parents": [main] }),
        )
        .await;
    assert_eq!(s, 201, "{commit}");
    let sha = commit["sha"].as_str().unwrap().to_string();
    assert_eq!(commit["parents"][0]["sha"], main);

    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/git/refs"),
            json!({ "ref": "refs/heads/specbot/spec-1", "sha": sha }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, dup) = api
        .post(
            &format!("/repos/{REPO}/git/refs"),
            json!({ "ref": "refs/heads/specbot/spec-1", "sha": sha }),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(dup["message"], "Reference already exists");
    assert_eq!(
        world.ref_sha(REPO, "specbot/spec-1").as_deref(),
        Some(sha.as_str())
    );

    // Not a fast-forward without force; fine with it.
    let (s, nff) = api
        .patch(
            &format!("/repos/{REPO}/git/refs/heads/main"),
            json!({ "sha": sha }),
        )
        .await;
    assert_eq!(s, 200, "{nff}");
    let (s, nff) = api
        .patch(
            &format!("/repos/{REPO}/git/refs/heads/specbot/spec-1"),
            json!({ "sha": main }),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(nff["message"], "Update is not a fast forward");
    let (s, _) = api
        .patch(
            &format!("/repos/{REPO}/git/refs/heads/specbot/spec-1"),
            json!({ "sha": main, "force": true }),
        )
        .await;
    assert_eq!(s, 200);

    // Contents at the new commit.
    let (s, file) = api
        .get(&format!(
            "/repos/{REPO}/contents/specs/IMPLEMENT-1.md?ref={sha}"
        ))
        .await;
    assert_eq!(s, 200, "{file}");
    assert_eq!(file["encoding"], "base64");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(file["content"].as_str().unwrap().replace('\n', ""))
        .unwrap();
    assert_eq!(raw, b"# Spec\n");
    let (s, dir) = api
        .get(&format!("/repos/{REPO}/contents/specs?ref={sha}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(dir[0]["name"], "IMPLEMENT-1.md");
    assert_eq!(
        api.get(&format!("/repos/{REPO}/contents/docs/old.md?ref={sha}"))
            .await
            .0,
        404
    );
    assert_eq!(
        world.file(REPO, &sha, "bin/run.sh").as_deref(),
        Some("hello\n")
    );
    assert_eq!(
        world.tree_paths(REPO, &sha),
        vec!["README.md", "bin/run.sh", "specs/IMPLEMENT-1.md"]
    );
    let (s, rec) = api
        .get(&format!("/repos/{REPO}/git/trees/{sha}?recursive=1"))
        .await;
    assert_eq!(s, 200);
    let paths: Vec<&str> = rec["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "README.md",
            "bin",
            "bin/run.sh",
            "specs",
            "specs/IMPLEMENT-1.md"
        ]
    );

    // Tarball: 302 to the codeload-like URL, then a .tar.gz with the owner-repo-sha/ folder.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .get(format!("{}/repos/{REPO}/tarball/main", world.base_url()))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&world.base_url()), "{location}");
    let resp = api
        .http
        .get(format!("{}/repos/{REPO}/tarball/main", world.base_url()))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let top = format!("acme-widgets-{}/", &sha[..7]);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert!(path.starts_with(&top), "{path}");
        if path.ends_with("specs/IMPLEMENT-1.md") {
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
            assert_eq!(s, "# Spec\n");
        }
        found.push(path);
    }
    assert!(found.contains(&format!("{top}bin/run.sh")), "{found:?}");

    let (s, _) = api
        .call(
            "DELETE",
            &format!("/repos/{REPO}/git/refs/heads/specbot/spec-1"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(world.branches(REPO), vec!["main"]);
    assert_eq!(world.commits_on(REPO, "main")[0].message, "Add spec");

    world.assert_no_violations();
    world.assert_responses_conform();
}

#[tokio::test]
async fn pulls_refuse_a_second_pr_for_the_same_head() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.put_file(REPO, "feature", "a.txt", "a\n");
    let api = Api::new(&world).await;
    let new_pr =
        json!({ "title": "Spec for #1", "head": "feature", "base": "main", "body": "Refs #1" });
    let (s, pr) = api
        .post(&format!("/repos/{REPO}/pulls"), new_pr.clone())
        .await;
    assert_eq!(s, 201, "{pr}");
    assert_eq!(pr["head"]["ref"], "feature");
    assert_eq!(pr["number"], 1);
    let (s, dup) = api.post(&format!("/repos/{REPO}/pulls"), new_pr).await;
    assert_eq!(s, 422);
    assert_eq!(
        dup["errors"][0]["message"],
        "A pull request already exists for acme:feature."
    );
    let (s, list) = api
        .get(&format!("/repos/{REPO}/pulls?head=acme:feature&state=all"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, none) = api
        .get(&format!("/repos/{REPO}/pulls?head=acme:other&state=open"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(none, json!([]));

    // Issues and pulls share numbers; merging closes only keyword-linked issues.
    let issue = world.add_issue(REPO, "Feature", "please", "alice");
    assert_eq!(issue, 2);
    let (s, _) = api
        .patch(
            &format!("/repos/{REPO}/pulls/1"),
            json!({ "body": "Refs #2" }),
        )
        .await;
    assert_eq!(s, 200);
    world.merge_pull(REPO, 1);
    assert_eq!(world.issue(REPO, 2).unwrap().state, "open");
    assert!(world.pull(REPO, 1).unwrap().merged);
    assert_eq!(world.file(REPO, "main", "a.txt").as_deref(), Some("a\n"));

    world.put_file(REPO, "fix", "b.txt", "b\n");
    let pr2 = world.add_pull(REPO, "fix", "main", "Fix", "Closes #2", "alice");
    world.merge_pull(REPO, pr2);
    assert_eq!(world.issue(REPO, 2).unwrap().state, "closed");

    world.assert_no_violations();
    world.assert_responses_conform();
}

#[tokio::test]
async fn sub_issues_link_by_id_and_refuse_a_second_parent() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let parent = world.add_issue(REPO, "Feature", "body", "alice");
    let other = world.add_issue(REPO, "Other", "body", "alice");
    let (s, child) = api
        .post(
            &format!("/repos/{REPO}/issues"),
            json!({ "title": "Component A", "body": "part", "labels": ["spec"] }),
        )
        .await;
    assert_eq!(s, 201);
    let child_n = child["number"].as_u64().unwrap();
    let child_id = child["id"].as_u64().unwrap();
    assert_ne!(child_n, child_id);
    assert_eq!(child["user"]["type"], "Bot");

    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{parent}/sub_issues"),
            json!({ "sub_issue_id": child_id }),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(world.sub_issues(REPO, parent), vec![child_n]);
    let (s, list) = api
        .get(&format!("/repos/{REPO}/issues/{parent}/sub_issues"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["number"], child_n);
    let (s, p) = api.get(&format!("/repos/{REPO}/issues/{parent}")).await;
    assert_eq!(s, 200);
    assert_eq!(p["sub_issues_summary"]["total"], 1);

    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{other}/sub_issues"),
            json!({ "sub_issue_id": child_id }),
        )
        .await;
    assert_eq!(s, 422);
    // The number is not the id.
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{other}/sub_issues"),
            json!({ "sub_issue_id": child_n }),
        )
        .await;
    assert_eq!(s, 404);

    let other_id = world.issue(REPO, other).unwrap().id;
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{child_n}/dependencies/blocked_by"),
            json!({ "issue_id": other_id }),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(world.blocked_by(REPO, child_n), vec![other]);

    world.assert_no_violations();
    world.assert_responses_conform();
}

#[tokio::test]
async fn checker_records_requests_that_break_the_description() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let n = world.add_issue(REPO, "Feature", "body", "alice");

    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues"),
            json!({ "body": "no title" }),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{n}/sub_issues"),
            json!({ "sub_issue_id": "12" }),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = api.get(&format!("/repos/{REPO}/nonsense")).await;
    assert_eq!(s, 404);
    let (s, _) = api.get(&format!("/repos/{REPO}/pulls?state=merged")).await;
    assert_eq!(s, 422);
    // octocrab's update_comment uses POST where the description has PATCH.
    let c = world.add_comment(REPO, n, "alice", "hi");
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/comments/{c}"),
            json!({ "body": "edited" }),
        )
        .await;
    assert_eq!(s, 404);

    let v = world.violations();
    assert_eq!(v.len(), 5, "{v:#?}");
    assert!(v[0].reason.contains("title"), "{}", v[0]);
    assert!(v[1].reason.contains("sub_issue_id"), "{}", v[1]);
    assert!(v[2].path.ends_with("/nonsense"));
    assert!(v[3].reason.contains("state"), "{}", v[3]);
    assert_eq!(v[4].method, "POST");
    assert!(world.issues(REPO).len() == 1, "nothing was created");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        world.assert_no_violations()
    }));
    assert!(caught.is_err());
}

#[tokio::test]
async fn faults_answer_502_rate_limit_and_hang() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let path = format!("/repos/{REPO}/issues/1");
    world.add_issue(REPO, "x", "y", "alice");

    world.inject(FaultRule::new(
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}",
        1,
        Fault::Status(502),
    ));
    assert_eq!(api.get(&path).await.0, 502);
    assert_eq!(api.get(&path).await.0, 200);

    world.inject(FaultRule::new(
        "*",
        "/repos/*/issues*",
        1,
        Fault::SecondaryRateLimit {
            retry_after: Some(7),
            reset: Some(1_900_000_000),
        },
    ));
    let resp = api
        .http
        .get(format!("{}{path}", world.base_url()))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(resp.headers()["x-ratelimit-reset"], "1900000000");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );

    let resp = api
        .http
        .get(format!("{}{path}", world.base_url()))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    ] {
        assert!(resp.headers().contains_key(h), "{h}");
    }

    world.inject(FaultRule::new(
        "GET",
        "/repos/{owner}/{repo}",
        1,
        Fault::Hang,
    ));
    let err = api
        .http
        .get(format!("{}/repos/{REPO}", world.base_url()))
        .bearer_auth(&api.token)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("hangs");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(api.get(&format!("/repos/{REPO}")).await.0, 200);

    let log = world.requests();
    let statuses: Vec<u16> = log
        .iter()
        .filter(|r| {
            r.route.as_deref() != Some("/app/installations/{installation_id}/access_tokens")
        })
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![502, 200, 403, 200, 0, 200]);
    assert_eq!(
        world.request_count("GET", "/repos/{owner}/{repo}/issues/{issue_number}"),
        4
    );
    assert_eq!(world.request_counts()["GET /repos/{owner}/{repo}"], 2);
    world.assert_no_violations();
}

#[tokio::test]
async fn issue_comment_review_and_check_shapes_conform() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.set_permission(REPO, "bob", "write");
    world.set_permission(REPO, "carol", "triage");
    let api = Api::new(&world).await;
    let n = world.add_issue(REPO, "Feature", "Please add it", "alice");
    world.add_label(REPO, n, "needs-spec");
    let c = world.add_comment(REPO, n, "bob", "/spec");

    let (s, list) = api
        .get(&format!(
            "/repos/{REPO}/issues?state=open&labels=needs-spec&per_page=50"
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{n}/reactions"),
            json!({ "content": "eyes" }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/{n}/reactions"),
            json!({ "content": "eyes" }),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/issues/comments/{c}/reactions"),
            json!({ "content": "+1" }),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        world.reactions(REPO, n),
        vec![(world.bot_login(), "eyes".to_string())]
    );
    assert_eq!(world.comment_reactions(REPO, c).len(), 1);

    let (s, mine) = api
        .post(
            &format!("/repos/{REPO}/issues/{n}/comments"),
            json!({ "body": "Working on it" }),
        )
        .await;
    assert_eq!(s, 201);
    let mine_id = mine["id"].as_u64().unwrap();
    let (s, _) = api
        .patch(
            &format!("/repos/{REPO}/issues/comments/{mine_id}"),
            json!({ "body": "Done" }),
        )
        .await;
    assert_eq!(s, 200);
    let (s, got) = api
        .get(&format!("/repos/{REPO}/issues/comments/{mine_id}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["body"], "Done");
    let (s, all) = api.get(&format!("/repos/{REPO}/issues/{n}/comments")).await;
    assert_eq!(s, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(world.comments(REPO, n)[1].user, world.bot_login());

    let (s, _) = api
        .post(
            &format!("/repos/{REPO}/labels"),
            json!({ "name": "spec", "color": "0e8a16" }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = api
        .post(&format!("/repos/{REPO}/labels"), json!({ "name": "spec" }))
        .await;
    assert_eq!(s, 422);
    let (s, _) = api.get(&format!("/repos/{REPO}/labels/needs-spec")).await;
    assert_eq!(s, 200);
    let (s, labels) = api
        .post(
            &format!("/repos/{REPO}/issues/{n}/labels"),
            json!({ "labels": ["spec"] }),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(labels.as_array().unwrap().len(), 2);
    assert_eq!(world.labels_of(REPO, n), vec!["needs-spec", "spec"]);
    let (s, _) = api
        .patch(
            &format!("/repos/{REPO}/issues/{n}"),
            json!({ "state": "closed", "state_reason": "completed" }),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(world.issue(REPO, n).unwrap().state, "closed");

    for (login, perm, role) in [
        ("acme", "admin", "admin"),
        ("bob", "write", "write"),
        ("carol", "read", "triage"),
        ("mallory", "none", "none"),
    ] {
        let (s, p) = api
            .get(&format!("/repos/{REPO}/collaborators/{login}/permission"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(p["permission"], perm, "{login}");
        assert_eq!(p["role_name"], role, "{login}");
    }

    // A spec PR, reviewed by a human, with an inline comment the bot replies to.
    let head = world.put_file(REPO, "specbot/spec-1", "specs/IMPLEMENT-1.md", "# Spec\n");
    let pr = world.add_pull(
        REPO,
        "specbot/spec-1",
        "main",
        "Spec",
        "Refs #1",
        "specbot[bot]",
    );
    let review = world.add_review(
        REPO,
        pr,
        "bob",
        "CHANGES_REQUESTED",
        "More detail",
        &[("specs/IMPLEMENT-1.md", 1, "Why?")],
    );
    let (s, r) = api
        .get(&format!("/repos/{REPO}/pulls/{pr}/reviews/{review}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["state"], "CHANGES_REQUESTED");
    let (s, rc) = api
        .get(&format!(
            "/repos/{REPO}/pulls/{pr}/reviews/{review}/comments"
        ))
        .await;
    assert_eq!(s, 200);
    let rc_id = rc[0]["id"].as_u64().unwrap();
    let (s, reply) = api
        .post(
            &format!("/repos/{REPO}/pulls/{pr}/comments/{rc_id}/replies"),
            json!({ "body": "Because." }),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(reply["in_reply_to_id"], rc_id);
    let (s, all) = api.get(&format!("/repos/{REPO}/pulls/{pr}/comments")).await;
    assert_eq!(s, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (s, p) = api.get(&format!("/repos/{REPO}/pulls/{pr}")).await;
    assert_eq!(s, 200);
    assert_eq!(p["head"]["sha"], head);

    // Checks with annotations.
    let run = world.add_check_run(
        REPO,
        &head,
        "test",
        Some("failure"),
        "1 test failed",
        vec![Annotation {
            path: "src/lib.rs".into(),
            start_line: 3,
            end_line: 3,
            level: "failure".into(),
            title: Some("assertion failed".into()),
            message: "left != right".into(),
        }],
    );
    let (s, runs) = api
        .get(&format!("/repos/{REPO}/commits/{head}/check-runs"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(runs["total_count"], 1);
    assert_eq!(runs["check_runs"][0]["conclusion"], "failure");
    assert_eq!(runs["check_runs"][0]["pull_requests"][0]["number"], pr);
    let suite = world.check_suite_of(REPO, run);
    let (s, by_suite) = api
        .get(&format!("/repos/{REPO}/check-suites/{suite}/check-runs"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(by_suite["check_runs"][0]["id"], run);
    let (s, one) = api.get(&format!("/repos/{REPO}/check-runs/{run}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["output"]["text"], "1 test failed");
    let (s, ann) = api
        .get(&format!("/repos/{REPO}/check-runs/{run}/annotations"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(ann[0]["message"], "left != right");

    // Webhook builders give the same shapes.
    assert_eq!(world.issue_json(REPO, n)["number"], n);
    assert_eq!(world.pull_json(REPO, pr)["head"]["ref"], "specbot/spec-1");
    assert_eq!(world.comment_json(REPO, c)["body"], "/spec");
    assert_eq!(
        world.review_json(REPO, review)["state"],
        "CHANGES_REQUESTED"
    );
    assert_eq!(world.user_json("bob")["type"], "User");
    assert_eq!(world.user_json("specbot[bot]")["type"], "Bot");
    assert_eq!(world.installation_json()["id"], world.installation_id());
    assert_eq!(world.repo_json(REPO)["full_name"], REPO);

    world.assert_no_violations();
    world.assert_responses_conform();
}

#[test]
fn the_trimmed_description_holds_every_operation_listed() {
    let listed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-openapi/operations.txt"
    ))
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(GitHubWorld::start());
    let known = world.operations();
    for line in listed
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
    {
        let (m, p) = line.split_once(' ').unwrap();
        assert!(known.contains(&format!("{m} {}", p.trim())), "{line}");
    }
    let webhooks = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-webhooks"
    ))
    .unwrap()
    .count();
    assert_eq!(webhooks, 329);
    drop(world);
}

/// octocrab (the client the bot uses) against the simulator: App auth, token caching, issues,
/// sub-issues, comments, reactions, contents, pulls — all within the OpenAPI description.
#[tokio::test]
async fn octocrab_talks_to_the_simulator() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let feature = world.add_issue(REPO, "Feature", "Please", "alice");
    let key = octocrab::EncodingKey::from_rsa_pem(world.private_key_pem().as_bytes()).unwrap();
    let app = octocrab::Octocrab::builder()
        .base_uri(world.base_url())
        .unwrap()
        .app(octocrab::models::AppId(world.app_id()), key)
        .build()
        .unwrap();
    let gh = app
        .installation(octocrab::models::InstallationId(world.installation_id()))
        .unwrap();

    let issues = gh.issues("acme", "widgets");
    let child = issues
        .create("Component A")
        .body("part")
        .send()
        .await
        .unwrap();
    issues.add_sub_issue(feature, child.id, None).await.unwrap();
    issues
        .create_comment(feature, "Working on it")
        .await
        .unwrap();
    issues
        .create_reaction(feature, octocrab::models::reactions::ReactionContent::Eyes)
        .await
        .unwrap();
    let got = issues.get(feature).await.unwrap();
    assert_eq!(got.title, "Feature");
    let content = gh
        .repos("acme", "widgets")
        .get_content()
        .path("README.md")
        .r#ref("main")
        .send()
        .await
        .unwrap();
    assert_eq!(
        content.items[0].decoded_content().as_deref(),
        Some("# widgets\n")
    );
    let pulls = gh
        .pulls("acme", "widgets")
        .list()
        .state(octocrab::params::State::All)
        .head("acme:specbot/spec-1")
        .send()
        .await
        .unwrap();
    assert!(pulls.items.is_empty());

    assert_eq!(world.sub_issues(REPO, feature), vec![child.number]);
    assert_eq!(world.comments(REPO, feature)[0].body, "Working on it");
    assert_eq!(world.token_mints(world.installation_id()), 1);
    world.assert_no_violations();
    world.assert_responses_conform();
}

#[tokio::test]
async fn the_world_refuses_and_truncates_like_github() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.add_empty_repo("acme/empty");
    world.put_file(REPO, "main", "src/a.rs", "a\n");
    let api = Api::new(&world).await;
    let (s, main) = api.get(&format!("/repos/{REPO}/git/ref/heads/main")).await;
    assert_eq!(s, 200);
    let (_, commit) = api
        .get(&format!(
            "/repos/{REPO}/git/commits/{}",
            main["object"]["sha"].as_str().unwrap()
        ))
        .await;
    let base_tree = commit["tree"]["sha"].clone();
    // Deleting a path that is not in the base tree: 422.
    let (s, body) = api
        .post(
            &format!("/repos/{REPO}/git/trees"),
            json!({"base_tree": base_tree, "tree": [
                {"path": "gone.txt", "mode": "100644", "type": "blob", "sha": null}
            ]}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    // An empty repository: 409 on git/ref.
    let (s, body) = api.get("/repos/acme/empty/git/ref/heads/main").await;
    assert_eq!(
        (s, body["message"].as_str()),
        (409, Some("Git Repository is empty."))
    );
    // A recursive tree over the limit: truncated.
    world.truncate_trees_over(1);
    let (s, tree) = api
        .get(&format!(
            "/repos/{REPO}/git/trees/{}?recursive=1",
            base_tree.as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(tree["truncated"], true);
    assert_eq!(tree["tree"].as_array().unwrap().len(), 1);
    world.assert_no_violations();
}

#[tokio::test]
async fn a_closed_pr_whose_branch_was_recreated_cannot_be_reopened() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.put_file(REPO, "feature", "a.txt", "a\n");
    let api = Api::new(&world).await;
    let (s, pr) = api
        .post(
            &format!("/repos/{REPO}/pulls"),
            json!({"title": "T", "head": "feature", "base": "main"}),
        )
        .await;
    assert_eq!(s, 201, "{pr}");
    let path = format!("/repos/{REPO}/pulls/{}", pr["number"]);
    let (s, _) = api.patch(&path, json!({"state": "closed"})).await;
    assert_eq!(s, 200);
    // A fast-forward push while closed still allows reopening.
    world.put_file(REPO, "feature", "b.txt", "b\n");
    let (s, _) = api.patch(&path, json!({"state": "open"})).await;
    assert_eq!(s, 200);
    let (s, _) = api.patch(&path, json!({"state": "closed"})).await;
    assert_eq!(s, 200);
    world.delete_branch(REPO, "feature");
    world.put_file(REPO, "feature", "c.txt", "c\n");
    let (s, body) = api.patch(&path, json!({"state": "open"})).await;
    assert_eq!(s, 422, "recreated since it was closed: {body}");
    world.assert_no_violations();
}

#[tokio::test]
async fn the_primary_rate_limit_is_enforced_until_the_reset() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    world.set_rate_limit(2, 3600);
    for _ in 0..2 {
        let (s, _) = api.get(&format!("/repos/{REPO}")).await;
        assert_eq!(s, 200);
    }
    let (s, body) = api.get(&format!("/repos/{REPO}")).await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("rate limit exceeded")
    );
    world.set_rate_limit(2, 3600);
    let (s, _) = api.get(&format!("/repos/{REPO}")).await;
    assert_eq!(s, 200, "a new window");
    world.assert_no_violations();
}

#[tokio::test]
async fn an_installation_token_cannot_change_workflows() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let (_, main) = api.get(&format!("/repos/{REPO}/git/ref/heads/main")).await;
    let parent = main["object"]["sha"].as_str().unwrap().to_string();
    let (_, commit) = api
        .get(&format!("/repos/{REPO}/git/commits/{parent}"))
        .await;
    let (s, tree) = api
        .post(
            &format!("/repos/{REPO}/git/trees"),
            json!({"base_tree": commit["tree"]["sha"], "tree": [
                {"path": ".github/workflows/ci.yml", "mode": "100644", "type": "blob", "content": "on: push\n"}
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{tree}");
    let (s, made) = api
        .post(
            &format!("/repos/{REPO}/git/commits"),
            json!({"message": "CI", "tree": tree["sha"], "parents": [parent]}),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let (s, body) = api
        .post(
            &format!("/repos/{REPO}/git/refs"),
            json!({"ref": "refs/heads/ci", "sha": made["sha"]}),
        )
        .await;
    assert_eq!(s, 403, "the manifest grants no `workflows`: {body}");
    let (s, _) = api
        .patch(
            &format!("/repos/{REPO}/git/refs/heads/main"),
            json!({"sha": made["sha"]}),
        )
        .await;
    assert_eq!(s, 403);
    world.assert_no_violations();
}

#[tokio::test]
async fn an_actions_job_log_is_a_redirect_to_a_signed_url_that_takes_no_token() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let sha = world.ref_sha(REPO, "main").unwrap();
    let run = world.add_check_run(REPO, &sha, "test", Some("failure"), "boom", vec![]);
    world.set_job_log(REPO, run, Some("##[group]Run cargo test\nerror[E0308]: mismatched types\n##[error]Process completed with exit code 101.\n"));
    // Actions check runs point at their job; the job shares the check run's id.
    let (_, r) = api.get(&format!("/repos/{REPO}/check-runs/{run}")).await;
    let details = r["details_url"].as_str().unwrap();
    assert!(
        details.ends_with(&format!("/job/{run}")) && details.contains("/actions/runs/"),
        "{details}"
    );

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let logs = format!("{}/repos/{REPO}/actions/jobs/{run}/logs", world.base_url());
    let resp = no_redirect
        .get(&logs)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&world.base_url()) && location.contains("urlSignature="),
        "{location}"
    );

    // The signed URL refuses a token, and a forged signature.
    let with_token = no_redirect
        .get(&location)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 400);
    let forged = location.replace("urlSignature=", "urlSignature=0");
    assert_eq!(no_redirect.get(&forged).send().await.unwrap().status(), 403);
    let resp = no_redirect.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "a BOM, as GitHub sends");
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .ends_with("Z error[E0308]: mismatched types"),
        "{text}"
    );

    // An expired log, an unknown job, and an installation without `actions: read`.
    world.set_job_log(REPO, run, None);
    assert_eq!(
        no_redirect
            .get(&logs)
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    let unknown = format!("{}/repos/{REPO}/actions/jobs/1/logs", world.base_url());
    assert_eq!(
        no_redirect
            .get(&unknown)
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    world.revoke_app_permission("actions");
    let resp = no_redirect
        .get(&logs)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Resource not accessible by integration");
    world.assert_no_violations();
}

#[tokio::test]
async fn check_runs_are_the_apps_own_and_need_checks_write() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let api = Api::new(&world).await;
    let head = world.put_file(REPO, "main", "spec.md", "# Spec\n");
    let runs = format!("/repos/{REPO}/check-runs");
    let done = json!({"name": "spec coverage", "head_sha": head, "conclusion": "failure",
        "output": {"title": "1 of 2 criteria not covered", "summary": "AC-1.2"}});

    // Created completed, as the App's own run, in the App's own suite.
    let (status, run) = api.post(&runs, done.clone()).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["conclusion"], "failure");
    assert_eq!(run["app"]["id"], json!(world.app_id()));
    assert!(run["completed_at"].is_string());
    let id = run["id"].as_u64().unwrap();

    // Listed by name and App; `filter=latest` keeps the newest run of each name.
    let ci = world.add_check_run(REPO, &head, "spec coverage", Some("success"), "", vec![]);
    let list = format!(
        "/repos/{REPO}/commits/{head}/check-runs?check_name=spec%20coverage&app_id={}",
        world.app_id()
    );
    let (_, listed) = api.get(&list).await;
    assert_eq!(listed["total_count"], 1);
    assert_eq!(listed["check_runs"][0]["id"], json!(id));
    let (_, all) = api
        .get(&format!(
            "/repos/{REPO}/commits/{head}/check-runs?filter=all"
        ))
        .await;
    assert_eq!(all["total_count"], 2);
    let (status, again) = api.post(&runs, done.clone()).await;
    assert_eq!(
        status, 201,
        "GitHub makes a second run if asked twice: callers look first"
    );
    let (_, latest) = api.get(&list).await;
    assert_eq!(latest["total_count"], 1);
    assert_eq!(latest["check_runs"][0]["id"], again["id"]);

    // Updated in place by its App; another App's run cannot be touched.
    let one = format!("/repos/{REPO}/check-runs/{id}");
    let (status, updated) = api
        .patch(
            &one,
            json!({"conclusion": "success", "output": {"title": "All covered", "summary": "ok"}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["conclusion"], "success");
    assert_eq!(updated["output"]["title"], "All covered");
    let (status, body) = api
        .patch(
            &format!("/repos/{REPO}/check-runs/{ci}"),
            json!({"conclusion": "failure"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // GitHub's refusals: a head that is not a commit, `completed` without a conclusion, an
    // output over 65,535 characters.
    let (status, _) = api
        .post(&runs, json!({"name": "x", "head_sha": "main"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = api
        .post(
            &runs,
            json!({"name": "x", "head_sha": head, "status": "completed"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = api
        .patch(
            &one,
            json!({"output": {"title": "t", "summary": "s".repeat(65_536)}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        world.violations().len(),
        1,
        "the checker refused the long summary"
    );

    // Without `checks: write` (an installation that kept `checks: read`): reads only.
    world.set_app_permission("checks", "read");
    let (status, body) = api.post(&runs, done).await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], "Resource not accessible by integration");
    let (status, _) = api.patch(&one, json!({"conclusion": "failure"})).await;
    assert_eq!(status, 403);
    assert_eq!(api.get(&list).await.0, 200);
    world.assert_responses_conform();
}

#[tokio::test]
async fn a_title_over_256_or_a_body_over_65536_characters_is_refused_like_github_does() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let issue = world.add_issue(REPO, "Big", "b", "alice");
    let api = Api::new(&world).await;
    let longest = "é".repeat(65_536);
    let comments = format!("/repos/{REPO}/issues/{issue}/comments");
    let (status, made) = api.post(&comments, json!({ "body": longest })).await;
    assert_eq!(status, 201, "65,536 characters (not bytes) are taken");
    let (status, refused) = api
        .post(&comments, json!({ "body": format!("{longest}x") }))
        .await;
    assert_eq!(status, 422);
    assert_eq!(refused["message"], "Validation Failed");
    assert_eq!(refused["errors"][0]["resource"], "IssueComment");
    assert_eq!(refused["errors"][0]["field"], "body");
    assert_eq!(
        refused["errors"][0]["message"],
        "body is too long (maximum is 65536 characters)"
    );
    let too_long = json!({ "body": "x".repeat(65_537) });
    let one = format!("/repos/{REPO}/issues/comments/{}", made["id"]);
    for (path, resource) in [
        (one.as_str(), "IssueComment"),
        (&format!("/repos/{REPO}/issues/{issue}"), "Issue"),
    ] {
        let (status, refused) = api.patch(path, too_long.clone()).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(refused["errors"][0]["resource"], resource);
    }
    let (status, refused) = api
        .post(
            &format!("/repos/{REPO}/issues"),
            json!({"title": "t", "body": "x".repeat(65_537)}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"][0]["resource"], "Issue");
    assert_eq!(
        world.comments(REPO, issue).len(),
        1,
        "nothing refused was kept"
    );

    // Titles: 256 characters through the API, an issue's and a pull request's alike.
    let (status, _) = api
        .patch(
            &format!("/repos/{REPO}/issues/{issue}"),
            json!({"title": "t".repeat(256)}),
        )
        .await;
    assert_eq!(status, 200);
    for (path, payload) in [
        (
            format!("/repos/{REPO}/issues"),
            json!({"title": "t".repeat(257)}),
        ),
        (
            format!("/repos/{REPO}/pulls"),
            json!({"title": "t".repeat(257), "head": "main", "base": "main"}),
        ),
    ] {
        let (status, refused) = api.post(&path, payload).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(refused["errors"][0]["resource"], "Issue");
        assert_eq!(refused["errors"][0]["field"], "title");
        assert_eq!(
            refused["errors"][0]["message"],
            "title is too long (maximum is 256 characters)"
        );
    }
    world.assert_no_violations();
}
