//! The world's forge (Gitea, `e2e/world/forge.sh`) as the pull-request stories use it: a
//! repository seeded on it, the daemons' client for its API, webhooks it delivers for real, and
//! the tip of a branch as it holds it.

use std::path::Path;
use std::time::Duration;

use git2::Oid;
use serde_json::{Value, json};
use sluice_shared::forge::{Forge, ForgeSpec, Token};

use crate::{World, unique_name};

impl World {
    /// The forge's base URL (`http://127.0.0.1:13000`).
    pub fn forge_base(&self) -> &str {
        self.require("SLUICE_FORGE_URL")
    }

    /// The forge user that owns the stories' repositories, and its API token (also its git
    /// password over HTTP).
    pub fn forge_credentials(&self) -> (&str, &str) {
        (
            self.require("SLUICE_FORGE_USER"),
            self.require("SLUICE_FORGE_TOKEN"),
        )
    }

    /// The clone URL of `repo` on the forge.
    pub fn forge_url(&self, repo: &str) -> String {
        let (user, _) = self.forge_credentials();
        format!("{}/{user}/{repo}.git", self.forge_base())
    }

    /// The daemons' own forge client for `repo`, with the world's token.
    pub fn forge(&self, repo: &str) -> Forge {
        let (_, token) = self.forge_credentials();
        Forge::new(
            &self.forge_url(repo),
            &ForgeSpec::default(),
            Some(Token::new(token)),
            Duration::from_secs(10),
        )
        .expect("a forge client for the world's forge")
    }

    /// Merges pull request `number` of `repo` as a reviewer would (a merge commit), once the
    /// forge has checked it can: right after a push to its branch Gitea answers "try again later"
    /// (405) while it tests the merge; that is waited out, any other refusal panics.
    pub async fn forge_merge(&self, repo: &str, number: u64) {
        let forge = self.forge(repo);
        crate::wait_until(
            &format!("the forge to merge pull request #{number} of {repo}"),
            Duration::from_secs(30),
            || async {
                match forge.merge_pull_request(number).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.to_string().contains("try again later") => Err(e.to_string()),
                    Err(e) => panic!("merging pull request #{number} of {repo}: {e}"),
                }
            },
        )
        .await;
    }

    /// Creates `name` on the forge, seeded with `dir` when given; returns the seed commit.
    pub async fn forge_seed(&self, name: &str, dir: Option<&Path>) -> Option<String> {
        let out = match dir {
            Some(d) => {
                self.run("forge-seed", &[name, &d.display().to_string()])
                    .await
            }
            None => self.run("forge-seed", &[name]).await,
        };
        out.split_whitespace().last().map(str::to_string)
    }

    /// One call to the forge's API as the world's user: `(status, JSON body)`.
    pub async fn forge_api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.forge_call(method, path, body).await;
        let status = response.status().as_u16();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    async fn forge_call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let (_, token) = self.forge_credentials();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let url = format!("{}/api/v1{path}", self.forge_base());
        let mut call = reqwest::Client::new()
            .request(method.clone(), &url)
            .header("Authorization", format!("token {token}"));
        if let Some(body) = body {
            call = call.json(&body);
        }
        call.send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on the forge: {e}"))
    }

    /// Has the forge deliver `events` (`push`, `pull_request`) of `repo` to `url`, signed with
    /// `secret` (Gitea's own webhook, HMAC-SHA256 in `X-Gitea-Signature`).
    pub async fn forge_hook(&self, repo: &str, url: &str, secret: &str, events: &[&str]) {
        let (user, _) = self.forge_credentials();
        let hook = json!({
            "type": "gitea",
            "active": true,
            "events": events,
            "config": {"url": url, "content_type": "json", "secret": secret},
        });
        let (status, body) = self
            .forge_api("POST", &format!("/repos/{user}/{repo}/hooks"), Some(hook))
            .await;
        assert_eq!(status, 201, "creating the webhook of {repo}: {body}");
    }

    /// The tip of `branch` of `repo` on the forge, if the branch exists.
    pub async fn forge_tip(&self, repo: &str, branch: &str) -> Option<Oid> {
        let (user, _) = self.forge_credentials();
        let (status, body) = self
            .forge_api(
                "GET",
                &format!("/repos/{user}/{repo}/branches/{branch}"),
                None,
            )
            .await;
        (status == 200)
            .then(|| {
                body["commit"]["id"]
                    .as_str()
                    .and_then(|id| Oid::from_str(id).ok())
            })
            .flatten()
    }

    /// `path` at `branch` of `repo` on the forge.
    pub async fn forge_file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let (user, _) = self.forge_credentials();
        let raw = format!("/repos/{user}/{repo}/raw/{path}?ref={branch}");
        let response = self.forge_call("GET", &raw, None).await;
        if response.status() != 200 {
            return None;
        }
        response.text().await.ok()
    }
}

/// Seeds a repository `<prefix>-…` on the forge with `files`; returns its name and the seed
/// commit.
pub async fn seed<T: AsRef<[u8]>>(
    world: &World,
    prefix: &str,
    files: &[(&str, T)],
) -> (String, Oid) {
    let name = unique_name(prefix);
    let dir = crate::files_dir(files);
    let commit = world
        .forge_seed(&name, Some(dir.path()))
        .await
        .expect("forge-seed prints the seed commit");
    (name, Oid::from_str(&commit).unwrap())
}
