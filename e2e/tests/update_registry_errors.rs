//! User story: a registry the updater cannot read says so on its ImageRepository, in words an
//! operator can act on (and without the credentials), commits nothing, and recovers by itself
//! once the cause is fixed.
//!
//! Against the real world: the TLS registry with basic auth (wrong, then right password), a
//! repository that was never pushed (then pushed), and a registry address where nothing
//! listens (then a TCP relay to the real registry starts there: the registry is back).

mod update_support;

use std::time::Duration;

use base64::Engine;
use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::git_support::closed_port;
use sluice_e2e::relay::Relay;
use sluice_e2e::{unique_name, wait_until};
use update_support::{
    DEADLINE, Updater, deployment, file, image_update, repository, seed, semver_policy, stays,
    trailers,
};

fn dockerconfig(registry: &str, user: &str, password: &str) -> serde_json::Value {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    json!({".dockerconfigjson": json!({"auths": {registry: {"auth": auth}}}).to_string()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_errors_show_on_the_repository_commit_nothing_and_recover() {
    let u = Updater::start("update-regerr").await;
    let world = u.world;
    let ns = u.ns().to_owned();
    let base = unique_name("regerr");

    // A config repository whose three images each come from one of the failing repositories.
    let tls_path = format!("{base}/secure");
    let missing_path = format!("{base}/missing");
    let down_path = format!("{base}/down");
    world
        .push_image_tls(&[&format!("{tls_path}:1.0.0"), &format!("{tls_path}:1.0.1")])
        .await;
    world
        .push_image(&[&format!("{down_path}:1.0.0"), &format!("{down_path}:1.0.1")])
        .await;
    let down_port = closed_port();
    let tls_image = format!("{}/{tls_path}", world.registry_tls());
    let missing_image = format!("{}/{missing_path}", world.registry());
    let down_image = format!("127.0.0.1:{down_port}/{down_path}");
    let files = [
        (
            "apps/secure.yaml",
            deployment("secure", &tls_image, "1.0.0", &ns, "secure"),
        ),
        (
            "apps/missing.yaml",
            deployment("missing", &missing_image, "1.0.0", &ns, "missing"),
        ),
        (
            "apps/down.yaml",
            deployment("down", &down_image, "1.0.0", &ns, "down"),
        ),
    ];
    let (repo, seeded) = seed(world, "regerr-config", &files).await;
    u.world_git_secret("git").await;
    let url = world.git_http_url(&repo);
    u.create::<ImageUpdate>(image_update("config", &url, Some("1h")))
        .await;

    let (user, password) = world.registry_credentials();
    let wrong = "not-the-password-e2e";
    u.secret(
        "regcred",
        "kubernetes.io/dockerconfigjson",
        dockerconfig(world.registry_tls(), user, wrong),
    )
    .await;
    let ca = String::from_utf8(world.ca_pem()).unwrap();
    u.secret("registry-ca", "Opaque", json!({"ca.crt": ca}))
        .await;
    u.create::<ImageRepository>(json!({
        "metadata": {"name": "secure"},
        "spec": {"image": tls_image, "secretRef": {"name": "regcred"},
                 "certSecretRef": {"name": "registry-ca"}, "interval": "1h"}
    }))
    .await;
    u.create::<ImageRepository>(repository("missing", &missing_image, "1h"))
        .await;
    u.create::<ImageRepository>(repository("down", &down_image, "1h"))
        .await;
    for name in ["secure", "missing", "down"] {
        u.create::<ImagePolicy>(semver_policy(name, name)).await;
    }

    // 401: the credentials are refused; the message says which Secret to check, not what's in it.
    let c = u
        .wait_ready::<ImageRepository>("secure", "False", "Unauthorized")
        .await;
    assert!(c.message.contains("refused the credentials"), "{c:?}");
    assert!(c.message.contains("dockerconfigjson Secret"), "{c:?}");
    assert!(
        !c.message.contains(wrong) && !c.message.contains(password),
        "{c:?}"
    );
    let note = u.wait_event("secure", "Unauthorized").await;
    assert!(!note.contains(wrong), "{note}");

    // 404: the repository was never pushed.
    let c = u
        .wait_ready::<ImageRepository>("missing", "False", "NotFound")
        .await;
    assert!(c.message.contains(&missing_path), "{c:?}");
    assert!(c.message.contains("check the image name"), "{c:?}");
    u.wait_event("missing", "NotFound").await;

    // Down: nothing listens at the registry's address.
    let c = u
        .wait_ready::<ImageRepository>("down", "False", "Unreachable")
        .await;
    assert!(
        c.message.contains(&format!("127.0.0.1:{down_port}")),
        "{c:?}"
    );
    assert!(
        c.message.contains("check the address and that it is up"),
        "{c:?}"
    );
    u.wait_event("down", "Unreachable").await;

    // No policy could choose (each says why, quoting its repository), so nothing is committed.
    for (name, why) in [
        ("secure", "Unauthorized"),
        ("missing", "NotFound"),
        ("down", "Unreachable"),
    ] {
        let c = u
            .wait_ready::<ImagePolicy>(name, "False", "RepositoryNotReady")
            .await;
        assert!(
            c.message.starts_with(&format!(
                "the ImageRepository {name} cannot be scanned ({why}): "
            )),
            "{c:?}"
        );
    }
    stays(world, &repo, seeded, Duration::from_secs(2)).await;

    // All three fixed: each recovers by itself (its retries back off, none is forgotten).
    u.secret(
        "regcred",
        "kubernetes.io/dockerconfigjson",
        dockerconfig(world.registry_tls(), user, password),
    )
    .await;
    // The newer tag first: the retrying scan of `missing` may come between the two pushes, and
    // must see the tag to bump to whichever it is.
    world
        .push_image(&[
            &format!("{missing_path}:1.0.1"),
            &format!("{missing_path}:1.0.0"),
        ])
        .await;
    let _relay = Relay::start(down_port, world.registry()).await;
    for name in ["secure", "missing", "down"] {
        let c = u
            .wait_ready::<ImageRepository>(name, "True", "Scanned")
            .await;
        let seen_all = c.message.starts_with("2 tags");
        let between_pushes = name == "missing" && c.message.starts_with("1 tags");
        assert!(seen_all || between_pushes, "{name}: {c:?}");
    }
    wait_until("the three bumps on main", DEADLINE, || async {
        let bumped = files
            .iter()
            .filter(|(path, before)| {
                file(world, &repo, path) == before.replace(":1.0.0 #", ":1.0.1 #")
            })
            .count();
        if bumped == 3 {
            Ok(())
        } else {
            Err(format!("{bumped} of 3 bumped"))
        }
    })
    .await;
    // Every commit since the seed is a bump with its trailers.
    let mut at = update_support::tip(world, &repo);
    let mut changes = 0;
    while at != seeded {
        let text = update_support::message(world, &repo, at);
        assert!(!trailers(&text).is_empty(), "{text}");
        changes += trailers(&text).len();
        at = update_support::parent(world, &repo, at);
    }
    assert_eq!(changes, 3);
    u.wait_event("config", "Pushed").await;

    u.stop().await;
}

/// Real nginx fronts started by `e2e/world/registry-faults.sh` (a part of `e2e/env up`): one
/// rate-limits with `limit_req` (one request per 30 s, answered 429 beyond), one proxies to a
/// backend that is down (502). Only this test uses them (the rate limit is shared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_and_a_bad_gateway_show_on_the_repository_and_pass() {
    let u = Updater::start("update-regfront").await;
    let world = u.world;
    let limited = world.require("SLUICE_REGISTRY_RATE_LIMITED").to_owned();
    let gateway = world.require("SLUICE_REGISTRY_BAD_GATEWAY").to_owned();
    let upstream = world
        .require("SLUICE_REGISTRY_BAD_GATEWAY_UPSTREAM")
        .to_owned();
    let base = unique_name("regfront");
    let (limited_path, gateway_path) = (format!("{base}/limited"), format!("{base}/gateway"));
    world
        .push_image(&[
            &format!("{limited_path}:1.0.0"),
            &format!("{limited_path}:1.0.1"),
            &format!("{gateway_path}:1.0.0"),
        ])
        .await;

    // Someone else used the registry's quota a moment ago.
    let addr = limited.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
    })
    .await
    .unwrap();
    u.create::<ImageRepository>(repository(
        "limited",
        &format!("{limited}/{limited_path}"),
        "1h",
    ))
    .await;
    u.create::<ImageRepository>(repository(
        "gateway",
        &format!("{gateway}/{gateway_path}"),
        "1h",
    ))
    .await;

    // 429: said so, with the attempts it made; it passes by itself once the limit allows.
    let c = u
        .wait_ready::<ImageRepository>("limited", "False", "RateLimited")
        .await;
    assert!(
        c.message
            .contains(&format!("registry {limited} is rate limiting (429)")),
        "{c:?}"
    );
    u.wait_event("limited", "RateLimited").await;
    // 502: the proxy's answer, summed up (its HTML title, not the page).
    let c = u
        .wait_ready::<ImageRepository>("gateway", "False", "ServerError")
        .await;
    assert!(
        c.message
            .contains(&format!("registry {gateway} failed with HTTP 502")),
        "{c:?}"
    );
    assert!(c.message.ends_with(": 502 Bad Gateway"), "{c:?}");
    u.wait_event("gateway", "ServerError").await;

    // The backend comes back: a relay to the real registry where the proxy looks for it.
    let port: u16 = upstream.rsplit(':').next().unwrap().parse().unwrap();
    let _relay = Relay::start(port, world.registry()).await;
    let c = u
        .wait_ready::<ImageRepository>("gateway", "True", "Scanned")
        .await;
    assert!(c.message.starts_with("1 tags"), "{c:?}");
    let c = u
        .wait_ready::<ImageRepository>("limited", "True", "Scanned")
        .await;
    assert!(c.message.starts_with("2 tags"), "{c:?}");

    u.stop().await;
}
