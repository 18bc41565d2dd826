use serde_json::{Value, json};

use super::body::BODY_LIMIT;
use super::*;
use crate::health::HealthStatus;

const FAILED: &str = "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e";
const TRAILER: &str = "Sluice-Change: policy=demo/web file=apps/web/deployment.yaml \
                       image=127.0.0.1:5000/demo/web old=1.0.0 new=1.1.0-crash";

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn crashing_pod() -> Value {
    fixture(include_str!("testdata/pod-crashloop.json"))
}

fn pulling_pod() -> Value {
    fixture(include_str!("testdata/pod-imagepull.json"))
}

fn events() -> Vec<EventFacts> {
    fixture(include_str!("testdata/events.json"))["items"]
        .as_array()
        .expect("an EventList")
        .iter()
        .map(EventFacts::from_event)
        .collect()
}

fn bump_message() -> String {
    format!(
        "demo: bump web to 1.1.0-crash\n\nweb 1.0.0 → 1.1.0-crash\n\n{TRAILER}\r\n\
         Signed-off-by: Jane Doe <jane@example.com>\n"
    )
}

/// The diagnosis of the demo's crash-looping rollout.
fn diagnosis() -> Diagnosis {
    let web = ObjectRef {
        group: "apps".into(),
        kind: "Deployment".into(),
        namespace: "demo".into(),
        name: "web".into(),
    };
    let health = Health::degraded(
        "rollout stuck: 0 of 2 updated replicas available; progress deadline exceeded",
    );
    Diagnosis {
        revision: FAILED.into(),
        base: "main".into(),
        reason: "not healthy within 30s: Deployment demo/web: Degraded: pod \
                 web-6d8f7c9b54-q7x2m: container web: CrashLoopBackOff (restarts: 4)"
            .into(),
        commit: Some(CommitFacts::from_message(
            FAILED,
            "Jane Doe",
            &bump_message(),
        )),
        objects: vec![ObjectFacts::of(&web, &health)],
        pods: vec![
            PodFacts::from_pod(&crashing_pod(), "Deployment/web"),
            PodFacts::from_pod(&pulling_pod(), "Deployment/api"),
        ],
        events: events(),
        notes: vec![],
        undo: crate::rollback::Undo::Failed,
    }
}

#[test]
fn a_rollback_asked_for_by_hand_says_so_instead_of_a_failure() {
    let revert = Diagnosis {
        undo: crate::rollback::Undo::Revert,
        ..diagnosis()
    };
    let text = body(&revert);
    assert!(
        text.starts_with("## Rollback of `4f1c2d9`, asked for by hand"),
        "{text}"
    );
    assert!(!text.contains("did not become healthy"), "{text}");
    assert!(text.contains("at a person's request"), "{text}");
    let back = Diagnosis {
        undo: crate::rollback::Undo::BackTo,
        ..diagnosis()
    };
    assert!(body(&back).starts_with("## Roll `main` back to `4f1c2d9`"));
}

#[test]
fn a_commit_is_named_by_subject_author_and_its_change_trailers() {
    let commit = CommitFacts::from_message(FAILED, "Jane Doe", &bump_message());
    assert_eq!(commit.subject, "demo: bump web to 1.1.0-crash");
    assert_eq!(commit.author, "Jane Doe");
    assert_eq!(commit.trailers, vec![TRAILER.to_owned()]);
    assert_eq!(
        commit.versions(),
        vec!["127.0.0.1:5000/demo/web:1.1.0-crash".to_owned()]
    );

    let digest = CommitFacts::from_message(
        FAILED,
        "x",
        "\n  a long\nsubject  \n\nSluice-Change: policy=a/b file=f image=r/app old=sha256:1 \
         new=sha256:2\nSluice-Change: policy=a/b file=g image=r/app old=sha256:1 new=sha256:2\n",
    );
    assert_eq!(digest.subject, "a long subject");
    assert_eq!(digest.trailers.len(), 2);
    assert_eq!(digest.versions(), vec!["r/app@sha256:2".to_owned()]);
}

#[test]
fn a_crash_looping_container_says_why_and_how_it_last_exited() {
    let pod = PodFacts::from_pod(&crashing_pod(), "Deployment/web");
    assert_eq!(
        (
            pod.namespace.as_str(),
            pod.name.as_str(),
            pod.phase.as_str()
        ),
        ("demo", "web-6d8f7c9b54-q7x2m", "Running")
    );
    assert_eq!(pod.owner, "Deployment/web");
    assert_eq!(
        pod.containers,
        vec![ContainerFacts {
            name: "web".into(),
            image: "127.0.0.1:5000/demo/web:1.1.0-crash".into(),
            state: "waiting".into(),
            reason: Some("CrashLoopBackOff".into()),
            last_termination: Some("Error, exit code 1".into()),
            restarts: 4,
        }]
    );
}

#[test]
fn an_image_pull_back_off_and_containers_not_reported_yet() {
    let pod = PodFacts::from_pod(&pulling_pod(), "Deployment/api");
    assert_eq!(pod.phase, "Pending");
    let states: Vec<(&str, &str, Option<&str>)> = pod
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.state.as_str(), c.reason.as_deref()))
        .collect();
    assert_eq!(
        states,
        vec![
            (
                "migrate (init)",
                "terminated",
                Some("Completed, exit code 0")
            ),
            ("api", "waiting", Some("ImagePullBackOff")),
            ("proxy", "not started", None),
        ]
    );
    assert_eq!(pod.containers[2].image, "127.0.0.1:5000/demo/proxy:1.0.0");
}

#[test]
fn events_name_their_object_count_and_last_sighting() {
    let events = events();
    assert_eq!(
        events[0],
        EventFacts {
            object: "Pod/web-6d8f7c9b54-q7x2m".into(),
            reason: "BackOff".into(),
            message: "Back-off restarting failed container web in pod \
                      web-6d8f7c9b54-q7x2m_demo(5d0c1a8e-2b7f-4e9d-8a3c-6f1e0b9d4c72)"
                .into(),
            count: 12,
            last_seen: Some("2026-11-22T08:04:41Z".into()),
        }
    );
    // A series-style event: its count and last sighting come from the series.
    assert_eq!(events[2].object, "Deployment/web");
    assert_eq!(events[2].count, 3);
    assert_eq!(
        events[2].last_seen.as_deref(),
        Some("2026-11-22T08:05:30.000001Z")
    );

    let long = EventFacts::from_event(&json!({"reason": "Failed", "message": "x".repeat(5000),
        "involvedObject": {"kind": "Pod", "name": "p"}}));
    assert_eq!(long.message.chars().count(), EVENT_MESSAGE_CHARS);
    assert!(long.message.ends_with('…'));
    assert_eq!((long.count, long.last_seen), (1, None));
}

#[test]
fn the_body_says_what_failed_why_and_what_merging_does() {
    let body = body(&diagnosis());
    for expected in [
        "## Revision `4f1c2d9` did not become healthy",
        "- **Deployment demo/web**: Degraded — rollout stuck: 0 of 2 updated replicas \
         available; progress deadline exceeded",
        "#### Pod demo/web-6d8f7c9b54-q7x2m — Running, of Deployment/web",
        "| `web` | `127.0.0.1:5000/demo/web:1.1.0-crash` | waiting: CrashLoopBackOff | \
         Error, exit code 1 | 4 |",
        "| `api` | `127.0.0.1:5000/demo/api:2.0.0-typo` | waiting: ImagePullBackOff | — | 0 |",
        "**BackOff** ×12: Back-off restarting failed container web",
        "**Failed** ×5: Failed to pull image",
        "- Commit: `4f1c2d9` (`4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e`)",
        "- Subject: demo: bump web to 1.1.0-crash",
        "- Author: Jane Doe",
        TRAILER,
        "**Merging this pull request reverts `4f1c2d9` on `main`**; Sluice applies the revert \
         like any commit, and the Config Updater will not propose \
         `127.0.0.1:5000/demo/web:1.1.0-crash` again.",
    ] {
        assert!(body.contains(expected), "{expected:?} missing from\n{body}");
    }
    // Newest object first: the Deployment's event, then the crash loop, then the pull.
    let at = |text: &str| body.find(text).unwrap();
    assert!(at("#### Deployment/web") < at("#### Pod/web-6d8f7c9b54-q7x2m"));
    assert!(at("#### Pod/web-6d8f7c9b54-q7x2m") < at("#### Pod/api-5f9c8d7b6a-h4k2p"));
    assert!(!body.contains("Signed-off-by"));
}

#[test]
fn secrets_never_reach_the_body() {
    let body = body(&diagnosis());
    for secret in [
        "hunter2",
        "s3cr3t",
        "tok_live",
        "api-token",
        "correct-horse",
        "DATABASE_URL",
        "web-secrets",
        "jane@example.com",
        "panic:",
    ] {
        assert!(!body.contains(secret), "{secret:?} leaked into\n{body}");
    }
}

#[test]
fn without_the_commit_or_its_trailers_merging_blocks_nothing_by_name() {
    let unread = Diagnosis {
        commit: None,
        ..diagnosis()
    };
    let text = body(&unread);
    assert!(text.contains("like any commit. Closing it"), "{text}");
    assert!(text.contains("(its message could not be read)"));

    let by_hand = Diagnosis {
        commit: Some(CommitFacts::from_message(FAILED, "Jo", "Raise limits\n")),
        ..diagnosis()
    };
    assert!(body(&by_hand).contains("the Config Updater has nothing to block"));
}

#[test]
fn markup_in_the_facts_stays_text() {
    let mut d = diagnosis();
    d.objects[0].message = "a | b *c* <script>\n# heading".into();
    d.pods[0].containers[0].image = "x|y`z".into();
    let text = body(&d);
    assert!(
        text.contains(r"a \| b \*c\* \<script\> \# heading"),
        "{text}"
    );
    assert!(text.contains(r"| `` x\|y`z `` |"), "{text}");
}

#[test]
fn long_lists_are_cut_to_fit_a_pull_request() {
    let mut d = diagnosis();
    let pod = d.pods[0].clone();
    d.pods = (0..400)
        .map(|i| PodFacts {
            name: format!("web-6d8f7c9b54-{i:05}"),
            ..pod.clone()
        })
        .collect();
    d.events = (0..3000)
        .map(|i| EventFacts {
            object: format!("Pod/web-6d8f7c9b54-{:05}", i % 300),
            reason: "BackOff".into(),
            message: "m".repeat(400),
            count: i,
            last_seen: Some(format!("2026-11-22T08:{:02}:{:02}Z", i / 60 % 60, i % 60)),
        })
        .collect();
    let text = body(&d);
    assert!(text.len() <= BODY_LIMIT, "{}", text.len());
    assert!(text.contains("more failing pods"), "pods were not cut");
    assert!(text.contains("more Warning events of Pod/web-6d8f7c9b54-"));
    // What matters most survives the cut.
    assert!(text.contains("Merging this pull request reverts `4f1c2d9`"));
    assert!(text.contains(TRAILER));
}

#[test]
fn a_body_never_exceeds_the_limit_whatever_it_holds() {
    let mut d = diagnosis();
    d.objects = vec![
        ObjectFacts {
            kind: "K".repeat(20_000),
            health: HealthStatus::Degraded.to_string(),
            ..ObjectFacts::default()
        };
        10
    ];
    let text = body(&d);
    assert!(text.len() <= BODY_LIMIT, "{}", text.len());
    assert!(text.ends_with("(cut: the diagnosis is too long for a pull request)\n"));
}

#[test]
fn a_title_is_a_revert_of_the_subject_within_bounds() {
    assert_eq!(
        title("demo: bump web to 1.1.0-crash"),
        "Revert \"demo: bump web to 1.1.0-crash\""
    );
    let long = title(&"é".repeat(500));
    assert_eq!(long.chars().count(), 200);
    assert!(long.ends_with("…\""));
    assert_eq!(title("one\ntwo"), "Revert \"one\"");
}

/// Prints the demo's body: `cargo test -p deploy-synchronizer --lib sample_body -- --nocapture`.
#[test]
fn sample_body() {
    println!("{}", body(&diagnosis()));
}
