//! Semver policies: ranges, pre-releases, `v` prefixes, build metadata.

use super::*;

#[test]
fn semver_picks_highest_release_in_range() {
    assert_eq!(chosen(&semver(">=1.0.0 <2.0.0"), TAGS), "1.4.13");
    assert_eq!(chosen(&semver("~1.2.3"), TAGS), "1.2.4");
    assert_eq!(chosen(&semver("1.3.x"), TAGS), "1.3.0");
    assert_eq!(
        chosen(&semver("*"), TAGS),
        "1.4.13",
        "pre-releases stay out by default"
    );
    // Numeric, not text, order of components: 1.4.13 > 1.4.9.
    assert_eq!(
        chosen(&semver("1.4.x"), &["1.4.9", "1.4.13", "1.4.10"]),
        "1.4.13"
    );
}

#[test]
fn semver_choice_reports_key_and_tally() {
    let Choice::Chosen {
        tag,
        key,
        resolve_digest,
        tally,
        blocked_skipped,
    } = semver("^1").choose(TAGS, &none())
    else {
        panic!("no choice")
    };
    assert_eq!(tag, "1.4.13");
    assert_eq!(key, SortKey::Version(semver::Version::new(1, 4, 13)));
    assert!(!resolve_digest);
    assert!(blocked_skipped.is_empty());
    assert_eq!(
        tally,
        Tally {
            considered: TAGS.len(),
            malformed: 0,
            excluded: 1,
            unmatched: 0,
            rejected: 12,
            blocked: 0
        }
    );
}

#[test]
fn semver_partial_tags_are_floating_aliases_not_versions() {
    // `1.4` must not tie with, or beat, real releases; `1` must not read as 1.0.0.
    assert_eq!(chosen(&semver(">=1.0.0"), &["1", "1.4", "1.0.0"]), "1.0.0");
    assert!(matches!(
        semver("*").choose(&["1", "1.4", "latest"], &none()),
        Choice::NoMatch {
            reason: NoMatchReason::NoneEligible,
            ..
        }
    ));
}

#[test]
fn semver_prereleases_only_when_asked() {
    assert_eq!(chosen(&semver_pre(">=1.0.0 <2.0.0"), TAGS), "1.5.0-rc.1");
    // The next major's pre-releases stay outside `<2.0.0`.
    assert_eq!(
        chosen(&semver_pre("^1.0"), &["1.9.0", "2.0.0-rc.1"]),
        "1.9.0"
    );
    assert_eq!(chosen(&semver_pre("*"), TAGS), "2.0.0-beta.2");
    // A range that spells a pre-release opts in, as with Flux's `>=1.0.0-0`.
    assert_eq!(chosen(&semver(">=1.0.0-0"), TAGS), "2.0.0-beta.2");
    // A release outranks its own pre-releases.
    assert_eq!(chosen(&semver_pre("1.3.x"), TAGS), "1.3.0");
    // Pre-release identifiers order numerically where numeric.
    assert_eq!(
        chosen(
            &semver_pre("*"),
            &["3.0.0-rc.9", "3.0.0-rc.10", "3.0.0-beta.11"]
        ),
        "3.0.0-rc.10"
    );
}

#[test]
fn semver_v_prefix_ties_go_to_the_plain_tag() {
    assert_eq!(chosen(&semver("=1.2.3"), &["v1.2.3", "1.2.3"]), "1.2.3");
    assert_eq!(
        chosen(&semver("=1.2.3"), &["1.2.3", "v1.2.3"]),
        "1.2.3",
        "order-independent"
    );
    assert_eq!(chosen(&semver("^2"), &["v2.0.0", "v2.1.0"]), "v2.1.0");
    // Only a lowercase `v`, and only one.
    assert!(matches!(
        semver("*").choose(&["V1.0.0", "vv1.0.0"], &none()),
        Choice::NoMatch { .. }
    ));
}

#[test]
fn semver_build_metadata_never_ranks() {
    // OCI tags cannot hold `+`; `_` is read as build metadata (Helm's convention).
    let tags = ["1.2.3_build.10", "1.2.3_build.9", "1.2.2_build.99"];
    let Choice::Chosen { tag, key, .. } = semver("*").choose(&tags, &none()) else {
        panic!()
    };
    assert_eq!(
        tag, "1.2.3_build.10",
        "equal precedence: the tag whose text sorts first"
    );
    assert_eq!(key, SortKey::Version("1.2.3+build.10".parse().unwrap()));
    assert_eq!(chosen(&semver("*"), &["1.2.3_b", "1.2.3"]), "1.2.3");
    // A tag with `+` is malformed, not a version.
    assert_eq!(
        semver("*").choose(&["1.2.3+b"], &none()).tally().malformed,
        1
    );
}

#[test]
fn semver_huge_components() {
    let big = format!("{}.0.0", u64::MAX);
    assert_eq!(
        chosen(&semver("*"), &[&big, "1.0.0", "18446744073709551616.0.0"]),
        big
    );
}

#[test]
fn semver_on_extracted_version() {
    let policy = filtered(
        Rule::Semver(SemverPolicy {
            range: "^1".into(),
            prereleases: false,
        }),
        r"^app-(?P<version>.+)$",
        Some("$version"),
    );
    let tags = [
        "app-1.2.0",
        "app-1.10.0",
        "app-2.0.0",
        "lib-1.99.0",
        "1.50.0",
    ];
    assert_eq!(chosen(&policy, &tags), "app-1.10.0");
}
