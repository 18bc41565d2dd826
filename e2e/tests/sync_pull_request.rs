//! User story: the config repository lives on a forge (the world's Gitea). Every revision the
//! GitSync applies gets a commit status `sluice/<namespace>/<name>`: `pending` while its health is
//! awaited, then `success` or `failure`, so a pull request's checks say whether the change reached
//! the cluster healthy. A crash-looping bump fails: its revert is proposed as a pull request whose
//! body is a diagnosis (the Deployment, the pod, `CrashLoopBackOff`, the bump's `Sluice-Change`
//! trailer), labelled `rollback`; merging it through the API rolls the cluster back. A revert
//! pull request a fixing commit made unneeded is closed, naming the fix.
//!
//! Against the real world: the forge's git server, pull-request and status API; kwok crash-loops
//! the `…13` tags.

mod sync_support;

use deploy_synchronizer::webhook::{self, PROVIDERS};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};
use sluice_e2e::git_support::{blocking, me, remote, write};
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sluice_shared::forge::{PullRequest, PullRequestState, StatusState};
use sluice_shared::git::{self, GitAuth};
use sluice_shared::webhook::Secrets;
use sync_support::*;
use tokio::sync::mpsc;

const FILE: &str = "storefront/deployment.yaml";

/// The story's repository on the forge, and how to change it as a person (or the updater) does.
struct Repo {
    world: &'static World,
    name: String,
}

impl Repo {
    async fn seed(world: &'static World, prefix: &str, image: &str) -> (Repo, String) {
        let name = unique_name(prefix);
        let dir = tree(&[(FILE, &STOREFRONT.replace("{image}", image))]);
        let seed = world.forge_seed(&name, Some(dir.path())).await.unwrap();
        (Repo { world, name }, seed)
    }

    /// Commits `image` to main with `message` and pushes it; returns the commit.
    async fn bump(&self, image: &str, message: &str) -> String {
        self.commit_to("main", image, message).await
    }

    /// As the Config Updater proposes a bump: a commit on branch `sluice/images`, a pull request
    /// into main, merged with a merge commit by a reviewer; returns the merge commit.
    async fn bump_by_pull_request(&self, image: &str, message: &str) -> String {
        let branch = "sluice/images";
        self.commit_to(branch, image, message).await;
        let forge = self.world.forge(&self.name);
        let new = sluice_shared::forge::NewPullRequest {
            head: branch.into(),
            base: "main".into(),
            title: message.lines().next().unwrap_or_default().into(),
            body: String::new(),
            labels: vec![],
        };
        let pr = forge.open_pull_request(&new).await.unwrap();
        self.world.forge_merge(&self.name, pr.number).await;
        self.world
            .forge_tip(&self.name, "main")
            .await
            .unwrap()
            .to_string()
    }

    /// Commits `image` to `branch` (made from main when missing) with `message`; pushes it.
    async fn commit_to(&self, branch: &str, image: &str, message: &str) -> String {
        let (user, token) = self.world.forge_credentials();
        let origin = remote(
            &self.world.forge_url(&self.name),
            GitAuth::basic(user, token),
        );
        let (content, message) = (STOREFRONT.replace("{image}", image), message.to_owned());
        let branch = branch.to_owned();
        blocking(move || {
            let work = tempfile::tempdir().unwrap();
            let repo = git::clone_or_open(&origin, "main", work.path()).unwrap();
            let commit = git::commit(&repo, &branch, &[write(FILE, &content)], &me(), &message)
                .unwrap()
                .expect("a change");
            git::push(&repo, &origin, &branch).unwrap();
            commit.to_string()
        })
        .await
    }

    /// The commit status states of `revision` for the GitSync `storefront`, oldest first.
    async fn states(&self, ns: &TestNamespace, revision: &str) -> Vec<StatusState> {
        let context = format!("sluice/{}/storefront", ns.name());
        let statuses = self
            .world
            .forge(&self.name)
            .commit_statuses(revision)
            .await
            .unwrap();
        statuses
            .into_iter()
            .rev()
            .filter(|s| s.context == context)
            .map(|s| s.state)
            .collect()
    }

    async fn wait_state(
        &self,
        ns: &TestNamespace,
        revision: &str,
        state: StatusState,
    ) -> Vec<StatusState> {
        wait_until(
            &format!("commit status {state:?} on {revision}"),
            DEADLINE,
            || async {
                let states = self.states(ns, revision).await;
                if states.contains(&state) {
                    Ok(states)
                } else {
                    Err(format!("{states:?}"))
                }
            },
        )
        .await
    }

    /// The newest pull request from `branch` into main, once `ok` holds for it.
    async fn pull_request(&self, branch: &str, ok: impl Fn(&PullRequest) -> bool) -> PullRequest {
        let forge = self.world.forge(&self.name);
        wait_until(
            &format!("the pull request of {branch}"),
            DEADLINE,
            || async {
                match forge.latest_pull_request(branch, "main").await {
                    Ok(Some(pr)) if ok(&pr) => Ok(pr),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
    }
}

/// The forge user's token as the GitSync's git Secret (also read for the forge's API).
async fn forge_secret(ns: &TestNamespace, world: &World) {
    let (user, token) = world.forge_credentials();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "forge"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": token}
    }))
    .unwrap();
    ns.api().create(&Default::default(), &secret).await.unwrap();
}

async fn running(ns: &TestNamespace) -> String {
    let live = ns.api::<Deployment>().get("storefront").await.unwrap();
    live.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

/// The GitSync `storefront` over the forge repository, with commit statuses and rollback. With
/// `hooked`, its interval is an hour and the forge's own push webhooks, delivered to the
/// synchronizer's receiver, are what bring each commit in.
async fn storefront(ns: &TestNamespace, world: &World, repo: &Repo, hooked: bool) -> Synchronizer {
    storefront_with(ns, world, repo, hooked, json!({})).await
}

/// [`storefront`] with `forge` (fields of `spec.forge`) set before the synchronizer starts, so
/// its first sync already sees them.
async fn storefront_with(
    ns: &TestNamespace,
    world: &World,
    repo: &Repo,
    hooked: bool,
    forge: Value,
) -> Synchronizer {
    forge_secret(ns, world).await;
    let url = world.forge_url(&repo.name);
    create_git_sync(ns, "storefront", &url, "storefront", "forge").await;
    let mut spec = json!({"healthTimeout": "8s", "rollback": {"enabled": true}, "forge": forge});
    if !hooked {
        patch_spec(ns, "storefront", spec).await;
        return Synchronizer::start(world, ns.name()).await;
    }
    spec["source"] = json!({"interval": "1h"});
    patch_spec(ns, "storefront", spec).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("gitea");
    std::fs::write(&secret_file, HOOK_SECRET).unwrap();
    let flag = format!("gitea={}", secret_file.display());
    let secrets = Secrets::from_flags(&[flag], PROVIDERS).expect("the secret flag");
    let (tx, rx) = mpsc::channel(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, webhook::router(secrets, tx)).await });
    let hook = format!("http://{addr}/webhook/gitea");
    world
        .forge_hook(&repo.name, &hook, HOOK_SECRET, &["push"])
        .await;
    Synchronizer::start_with_pushes(world, ns.name(), Some(rx)).await
}

/// The secret the forge signs its deliveries with.
const HOOK_SECRET: &str = "forge-hook-secret-5a1e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_is_reverted_through_a_pull_request_with_its_diagnosis() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-pr").await;
    world
        .push_image(&["demo/storefront:2.0.1", "demo/storefront:2.0.13"])
        .await;
    let image = |tag: &str| format!("{}/demo/storefront:{tag}", world.registry());
    let (repo, seed) = Repo::seed(world, "sync-pr", &image("2.0.1")).await;
    let synchronizer = storefront(&ns, world, &repo, true).await;

    // The seed: applied, pending, then healthy: success.
    wait_applied(&ns, "storefront", &seed).await;
    let states = repo.wait_state(&ns, &seed, StatusState::Success).await;
    assert_eq!(states, [StatusState::Pending, StatusState::Success]);

    // The updater's bump to a crash-looping tag is merged, with a merge commit (the forge's push
    // webhook brings it in: the interval is an hour). The merge names no change itself: the
    // bump's trailer is in the commit it merged, and the diagnosis finds it there.
    let trailer = format!(
        "Sluice-Change: policy=shop/storefront file={FILE} image={} old=2.0.1 new=2.0.13",
        image("").trim_end_matches(':')
    );
    let bad = repo
        .bump_by_pull_request(&image("2.0.13"), &format!("Update images\n\n{trailer}\n"))
        .await;
    let states = repo.wait_state(&ns, &bad, StatusState::Failure).await;
    assert_eq!(states, [StatusState::Pending, StatusState::Failure]);

    // Its revert, proposed as a pull request a person on call can act on.
    let branch = format!("sluice/rollback/{}", &bad[..7]);
    let pr = repo
        .pull_request(&branch, |pr| pr.state == PullRequestState::Open)
        .await;
    for needle in [
        "Deployment",
        "storefront",
        "CrashLoopBackOff",
        &trailer,
        &bad[..7],
    ] {
        assert!(
            pr.body.contains(needle),
            "the body names {needle:?}:\n{}",
            pr.body
        );
    }
    assert!(
        pr.title
            .starts_with("Revert \"Merge pull request 'Update images'"),
        "{}",
        pr.title
    );
    let status = wait_status(&ns, "storefront", "the pull request in history", |s| {
        s.history.iter().any(|e| {
            e.rollback_pull_request
                .as_ref()
                .is_some_and(|p| p.number == pr.number)
        })
    })
    .await;
    let entry = status.history.iter().find(|e| e.revision == bad).unwrap();
    assert_eq!(entry.rollback_pull_request.as_ref().unwrap().url, pr.url);
    let (_, labels) = world
        .forge_api(
            "GET",
            &format!(
                "/repos/{}/{}/issues/{}/labels",
                world.forge_credentials().0,
                repo.name,
                pr.number
            ),
            None,
        )
        .await;
    assert_eq!(labels[0]["name"], "rollback", "{labels}");

    // Merged through the API (its push webhook brings the merge in): the cluster is back on
    // 2.0.1, healthy, and the merge's commit status says so.
    world.forge_merge(&repo.name, pr.number).await;
    let merged = world
        .forge_tip(&repo.name, "main")
        .await
        .unwrap()
        .to_string();
    wait_applied(&ns, "storefront", &merged).await;
    assert_eq!(running(&ns).await, image("2.0.1"));
    repo.wait_state(&ns, &merged, StatusState::Success).await;
    synchronizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_pull_request_made_unneeded_by_a_fix_is_closed_naming_the_fix() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-pr-fix").await;
    world
        .push_image(&[
            "demo/storefront:2.0.1",
            "demo/storefront:2.0.13",
            "demo/storefront:2.0.14",
        ])
        .await;
    let image = |tag: &str| format!("{}/demo/storefront:{tag}", world.registry());
    let (repo, seed) = Repo::seed(world, "sync-pr-fix", &image("2.0.1")).await;
    let synchronizer = storefront(&ns, world, &repo, false).await;
    wait_applied(&ns, "storefront", &seed).await;

    let bad = repo.bump(&image("2.0.13"), "storefront: 2.0.13").await;
    let branch = format!("sluice/rollback/{}", &bad[..7]);
    let pr = repo
        .pull_request(&branch, |pr| pr.state == PullRequestState::Open)
        .await;

    // Someone fixes forward instead: 2.0.14 becomes healthy, and the revert is closed.
    let fix = repo
        .bump(&image("2.0.14"), "storefront: 2.0.14, the fix")
        .await;
    repo.wait_state(&ns, &fix, StatusState::Success).await;
    let closed = repo
        .pull_request(&branch, |pr| pr.state == PullRequestState::Closed)
        .await;
    assert_eq!(closed.number, pr.number);
    let (user, _) = world.forge_credentials();
    let (_, comments) = world
        .forge_api(
            "GET",
            &format!("/repos/{user}/{}/issues/{}/comments", repo.name, pr.number),
            None,
        )
        .await;
    let said = comments[0]["body"].as_str().unwrap_or_default();
    assert!(
        said.contains(&fix[..7]),
        "the comment names the fix: {said}"
    );
    wait_status(&ns, "storefront", "the revert recorded as closed", |s| {
        s.history.iter().any(|e| {
            e.rollback_pull_request
                .as_ref()
                .is_some_and(|p| p.state == "closed")
        })
    })
    .await;
    synchronizer.stop().await;
}

/// Runs `deploy-synchronizer rollback ARGS… -n NS` as a person would: (exit code, stdout, stderr).
async fn rollback_command(
    world: &World,
    ns: &TestNamespace,
    args: &[&str],
) -> (i32, String, String) {
    let out = tokio::process::Command::new(sluice_e2e::daemon::binary("deploy-synchronizer"))
        .arg("rollback")
        .args(args)
        .args(["-n", ns.name()])
        .env("KUBECONFIG", world.kubeconfig())
        .output()
        .await
        .expect("running deploy-synchronizer rollback");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_proposes_a_rollback_with_the_cli_and_gets_the_pull_requests_url() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-pr-cli").await;
    world
        .push_image(&["demo/storefront:2.0.1", "demo/storefront:2.0.2"])
        .await;
    let image = |tag: &str| format!("{}/demo/storefront:{tag}", world.registry());
    let (repo, seed) = Repo::seed(world, "sync-pr-cli", &image("2.0.1")).await;
    let synchronizer = storefront(&ns, world, &repo, false).await;
    wait_applied(&ns, "storefront", &seed).await;
    let release = repo.bump(&image("2.0.2"), "storefront: 2.0.2").await;
    wait_applied(&ns, "storefront", &release).await;

    // The applied revision's revert, proposed by hand.
    let (code, out, err) = rollback_command(world, &ns, &["storefront"]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let branch = format!("sluice/rollback/{}", &release[..7]);
    let pr = repo
        .pull_request(&branch, |pr| pr.state == PullRequestState::Open)
        .await;
    assert_eq!(out.trim(), pr.url, "the URL on stdout");
    assert_eq!(pr.title, "Revert \"storefront: 2.0.2\"");
    assert!(pr.body.contains("asked for by hand"), "{}", pr.body);
    // Asked again: the same pull request, no second one.
    let (code, again, _) = rollback_command(world, &ns, &["storefront"]).await;
    assert_eq!((code, again.trim()), (0, pr.url.as_str()));

    // Back to the seed, by its abbreviated id: every later commit undone.
    let (code, out, err) = rollback_command(world, &ns, &["storefront", "--to", &seed[..9]]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let branch = format!("sluice/rollback/to-{}", &seed[..7]);
    let back = repo
        .pull_request(&branch, |pr| pr.state == PullRequestState::Open)
        .await;
    assert_eq!(out.trim(), back.url);
    assert_eq!(back.title, format!("Roll main back to {}", &seed[..7]));
    let (user, _) = world.forge_credentials();
    let (_, files) = world
        .forge_api(
            "GET",
            &format!("/repos/{user}/{}/pulls/{}/files", repo.name, back.number),
            None,
        )
        .await;
    assert_eq!(files[0]["filename"], FILE, "{files}");

    // A revision the branch never had: exit 2, saying so.
    let (code, _, err) =
        rollback_command(world, &ns, &["storefront", "--to", "0123456789abcdef"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not in the history of main"), "{err}");
    synchronizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_forge_refuses_is_a_condition_and_the_statuses_follow_once_it_is_fixed() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-pr-auth").await;
    world.push_image(&["demo/storefront:2.0.1"]).await;
    let image = format!("{}/demo/storefront:2.0.1", world.registry());
    let (repo, seed) = Repo::seed(world, "sync-pr-auth", &image).await;
    let wrong: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "forge-token"},
        "stringData": {"token": "not-the-forge-token-7d1f"}
    }))
    .unwrap();
    ns.api().create(&Default::default(), &wrong).await.unwrap();
    let forge = json!({"secretRef": "forge-token"});
    let synchronizer = storefront_with(&ns, world, &repo, false, forge).await;

    // Applied all the same; the forge's refusal is a condition, the token nowhere in it.
    wait_applied(&ns, "storefront", &seed).await;
    let refused = wait_status(&ns, "storefront", "ForgeUpToDate=False ForgeAuth", |s| {
        s.is("ForgeUpToDate=False ForgeAuth")
    })
    .await;
    let (_, _, message) = condition(&refused, "ForgeUpToDate").unwrap();
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("7d1f"), "the token stays out: {message}");
    assert!(repo.states(&ns, &seed).await.is_empty());

    // The right token (the git Secret's): what was missed is sent.
    patch_spec(&ns, "storefront", json!({"forge": {"secretRef": null}})).await;
    repo.wait_state(&ns, &seed, StatusState::Success).await;
    wait_status(&ns, "storefront", "ForgeUpToDate=True", |s| {
        s.is("ForgeUpToDate=True")
    })
    .await;
    synchronizer.stop().await;
}
