//! Exclusions, blocked and malformed tags, digest policies, compile errors, serde, speed.

use std::collections::HashSet;

use super::*;

#[test]
fn default_exclusion_skips_signatures_and_user_list_replaces_it() {
    let tags = ["sha256-abc.sig", "sha256-abc.att", "zzz-debug", "1.0"];
    let policy = compile(Policy::new(alphabetical(SortOrder::Asc)));
    let choice = policy.choose(&tags, &none());
    assert_eq!(
        (choice.tag(), choice.tally().excluded),
        (Some("zzz-debug"), 1)
    );

    // A user list replaces the default: `.sig` is no longer excluded.
    let custom = compile(Policy {
        exclusion_list: Some(vec![r"-debug$".into(), r"\.att$".into()]),
        ..Policy::new(alphabetical(SortOrder::Asc))
    });
    let choice = custom.choose(&tags, &none());
    assert_eq!(
        (choice.tag(), choice.tally().excluded),
        (Some("sha256-abc.sig"), 2)
    );

    // An empty list turns exclusions off.
    let off = compile(Policy {
        exclusion_list: Some(vec![]),
        ..Policy::new(alphabetical(SortOrder::Asc))
    });
    assert_eq!(off.choose(&tags, &none()).tally().excluded, 0);
}

#[test]
fn blocked_tags_are_skipped_and_reported() {
    let policy = semver("^1");
    let choice = policy.choose(TAGS, &blocked(&["1.4.13", "1.4.9", "1.2.3"]));
    let Choice::Chosen {
        tag,
        blocked_skipped,
        tally,
        ..
    } = choice
    else {
        panic!()
    };
    assert_eq!(tag, "1.3.0");
    // Only the blocked tags that outranked the choice, best first; 1.2.3 ranked below.
    assert_eq!(blocked_skipped, ["1.4.13", "1.4.9"]);
    assert_eq!(tally.blocked, 3);
}

#[test]
fn blocking_everything_says_so() {
    let policy = semver("1.4.x");
    let choice = policy.choose(TAGS, &blocked(&["1.4.13", "1.4.9"]));
    assert_eq!(
        choice,
        Choice::NoMatch {
            tally: Tally {
                considered: TAGS.len(),
                excluded: 1,
                rejected: 16,
                blocked: 2,
                ..Tally::default()
            },
            reason: NoMatchReason::AllBlocked {
                blocked_skipped: vec!["1.4.13".into(), "1.4.9".into()]
            },
        }
    );
    // A blocked tag that would not be chosen anyway changes nothing.
    assert_eq!(
        policy.choose(TAGS, &blocked(&["1.2.3", "latest"])).tag(),
        Some("1.4.13")
    );
}

#[test]
fn malformed_tags_are_ignored_and_counted() {
    let long = "a".repeat(129);
    let max = "a".repeat(128);
    let tags = [
        "",
        ".hidden",
        "-dash",
        "has space",
        "ümlaut",
        "a:b",
        "a/b",
        long.as_str(),
        max.as_str(),
        "_ok",
    ];
    let choice = compile(Policy::new(alphabetical(SortOrder::Desc))).choose(&tags, &none());
    assert_eq!(choice.tag(), Some("_ok"));
    assert_eq!(choice.tally().malformed, 8);
    assert!(is_valid_tag(&max) && !is_valid_tag(&long));
}

#[test]
fn empty_and_hopeless_lists() {
    let empty: [&str; 0] = [];
    assert_eq!(
        semver("*").choose(&empty, &none()),
        Choice::NoMatch {
            tally: Tally::default(),
            reason: NoMatchReason::NoTags
        }
    );
    let choice = semver(">=5.0.0").choose(TAGS, &none());
    assert!(matches!(
        choice,
        Choice::NoMatch {
            reason: NoMatchReason::NoneEligible,
            ..
        }
    ));
    assert_eq!(choice.tally().considered, TAGS.len());
}

#[test]
fn choose_accepts_owned_strings() {
    let tags: Vec<String> = TAGS.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(semver("^1").choose(&tags, &none()).tag(), Some("1.4.13"));
}

#[test]
fn digest_policy_follows_one_tag() {
    let policy = compile(Policy::new(Rule::Digest(DigestPolicy {
        tag: "stable".into(),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
    })));
    let Choice::Chosen {
        tag,
        resolve_digest,
        tally,
        ..
    } = policy.choose(TAGS, &none())
    else {
        panic!()
    };
    assert_eq!((tag.as_str(), resolve_digest), ("stable", true));
    assert_eq!(
        tally.unmatched,
        TAGS.len() - 2,
        "every other tag, bar the excluded .sig"
    );
    assert_eq!(policy.platforms().len(), 2);
    assert_eq!(
        policy.choose(&["latest"], &none()),
        Choice::NoMatch {
            tally: Tally {
                considered: 1,
                unmatched: 1,
                ..Tally::default()
            },
            reason: NoMatchReason::TagMissing {
                tag: "stable".into()
            },
        }
    );
    assert!(matches!(
        policy.choose(TAGS, &blocked(&["stable"])),
        Choice::NoMatch {
            reason: NoMatchReason::AllBlocked { .. },
            ..
        }
    ));
}

#[test]
fn compile_errors_are_specific() {
    let err = |policy: Policy| CompiledPolicy::new(&policy).unwrap_err();
    let with_filter = |pattern: &str, extract: Option<&str>| Policy {
        filter_tags: Some(TagFilter {
            pattern: pattern.into(),
            extract: extract.map(Into::into),
        }),
        ..Policy::new(numerical(SortOrder::Asc))
    };
    assert!(matches!(
        err(with_filter("^main-(", None)),
        PolicyError::InvalidPattern { .. }
    ));
    assert!(matches!(
        err(with_filter("^main-(?P<ts>\\d+)$", Some("$build"))),
        PolicyError::UnknownExtractGroup { .. }
    ));
    assert!(matches!(
        err(with_filter("^main-(\\d+)$", Some("$2"))),
        PolicyError::UnknownExtractGroup { .. }
    ));
    assert!(matches!(
        err(with_filter("^main-\\d+$", Some("ts"))),
        PolicyError::ExtractWithoutGroups
    ));
    assert!(matches!(
        err(with_filter("^(?P<a>.)(?P<b>.)$", Some("$a$b"))),
        PolicyError::InvalidExtract { .. }
    ));
    assert!(matches!(
        err(with_filter("^(?P<a>.)$", Some("$"))),
        PolicyError::InvalidExtract { .. }
    ));
    assert!(matches!(
        err(Policy { exclusion_list: Some(vec!["ok".into(), "[".into()]), ..Policy::new(numerical(SortOrder::Asc)) }),
        PolicyError::InvalidExclusion { pattern, .. } if pattern == "["
    ));
    let range = |r: &str| {
        Policy::new(Rule::Semver(SemverPolicy {
            range: r.into(),
            prereleases: false,
        }))
    };
    assert!(matches!(
        err(range(">=1.0.0 <")),
        PolicyError::InvalidRange(RangeError::DanglingOperator { .. })
    ));
    assert!(matches!(
        err(range("")),
        PolicyError::InvalidRange(RangeError::Empty)
    ));
    let digest = |tag: &str, platform: &str| {
        Policy::new(Rule::Digest(DigestPolicy {
            tag: tag.into(),
            platforms: vec![platform.into()],
        }))
    };
    assert!(matches!(
        err(digest("has space", "linux/amd64")),
        PolicyError::InvalidDigestTag { .. }
    ));
    assert!(matches!(
        err(digest("latest", "amd64")),
        PolicyError::InvalidPlatform(_)
    ));
    // Messages name the field at fault.
    assert!(
        err(range("nope"))
            .to_string()
            .starts_with("policy.semver.range")
    );
}

#[test]
fn policy_serde_has_the_flux_shape() {
    let yaml_as_json = serde_json::json!({
        "policy": {"semver": {"range": ">=1.0.0"}},
        "filterTags": {"pattern": "^v(?P<v>.*)$", "extract": "$v"},
        "exclusionList": ["^.*\\.sig$", "-debug$"]
    });
    let policy: Policy = serde_json::from_value(yaml_as_json.clone()).unwrap();
    assert_eq!(
        policy.rule,
        Rule::Semver(SemverPolicy {
            range: ">=1.0.0".into(),
            prereleases: false
        })
    );
    assert_eq!(policy.exclusions().len(), 2);
    let back = serde_json::to_value(&policy).unwrap();
    assert_eq!(back["policy"]["semver"]["range"], ">=1.0.0");
    assert_eq!(back["filterTags"]["extract"], "$v");

    let numerical: Policy =
        serde_json::from_value(serde_json::json!({"policy": {"numerical": {}}})).unwrap();
    assert_eq!(
        numerical.rule,
        Rule::Numerical(OrderPolicy {
            order: SortOrder::Asc
        })
    );
    assert_eq!(numerical.exclusions(), [r"^.*\.sig$"]);
    let alpha: Policy =
        serde_json::from_value(serde_json::json!({"policy": {"alphabetical": {"order": "desc"}}}))
            .unwrap();
    assert_eq!(
        alpha.rule,
        Rule::Alphabetical(OrderPolicy {
            order: SortOrder::Desc
        })
    );
    let digest: Policy = serde_json::from_value(
        serde_json::json!({"policy": {"digest": {"tag": "latest", "platforms": ["linux/amd64"]}}}),
    )
    .unwrap();
    assert!(matches!(digest.rule, Rule::Digest(DigestPolicy { ref tag, .. }) if tag == "latest"));

    let schema = serde_json::to_value(schemars::schema_for!(Policy)).unwrap();
    assert!(schema["properties"]["filterTags"].is_object(), "{schema}");
    assert!(
        schema["properties"]["exclusionList"].is_object(),
        "{schema}"
    );
}

/// 10 000 tags in the shapes real repositories have. Prints the time per choice; run with
/// `cargo test --release -p config-updater --lib ten_thousand -- --nocapture`.
#[test]
fn ten_thousand_tags() {
    let mut tags = Vec::with_capacity(10_000);
    for i in 0..2_500u32 {
        tags.push(format!("{}.{}.{}", i / 500, (i / 20) % 25, i % 20));
        tags.push(format!(
            "v{}.{}.{}-rc.{}",
            i / 500,
            (i / 20) % 25,
            i % 20,
            i % 7
        ));
        tags.push(format!(
            "main-{:07x}-{}",
            i.wrapping_mul(2_654_435_761),
            1_700_000_000 + i
        ));
        tags.push(format!("sha256-{:064x}.sig", i));
    }
    let policies = [
        ("semver", semver(">=1.0.0 <4.0.0")),
        ("semver+pre", semver_pre("^2")),
        (
            "numerical+extract",
            filtered(
                numerical(SortOrder::Asc),
                r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
                Some("$ts"),
            ),
        ),
        (
            "alphabetical",
            compile(Policy::new(alphabetical(SortOrder::Asc))),
        ),
    ];
    let block: HashSet<String> = tags.iter().step_by(97).cloned().collect();
    for (name, policy) in &policies {
        let rounds = 20;
        let start = std::time::Instant::now();
        let mut choice = None;
        for _ in 0..rounds {
            choice = Some(policy.choose(&tags, &block));
        }
        let per = start.elapsed() / rounds;
        let choice = choice.unwrap();
        assert!(choice.tag().is_some(), "{name}: {choice:?}");
        println!(
            "choose among {} tags, {name}: {per:?} -> {:?}",
            tags.len(),
            choice.tag()
        );
    }
}
