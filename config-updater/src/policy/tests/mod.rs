//! `choose` end to end: policies as users write them, against realistic tag lists.

mod gates;
mod ordering;
mod versions;

use std::collections::HashSet;

use super::*;

/// A repository as registries list it: releases, pre-releases, CI builds, floating aliases,
/// cosign signatures and attestations.
pub(super) const TAGS: &[&str] = &[
    "latest",
    "stable",
    "1",
    "1.4",
    "v1.2.3",
    "1.2.3",
    "1.2.4",
    "1.3.0-rc.1",
    "1.3.0",
    "1.4.13",
    "1.4.9",
    "1.5.0-rc.1",
    "2.0.0-beta.2",
    "main-7f3a9c1-1700000000",
    "main-0c4e5d2-1700000100",
    "main-1b2b3b4-999999999",
    "feature-x-abc1234-1800000000",
    "sha256-0123456789abcdef.sig",
    "sha256-0123456789abcdef.att",
];

pub(super) fn none() -> HashSet<String> {
    HashSet::new()
}

pub(super) fn blocked(tags: &[&str]) -> HashSet<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

pub(super) fn compile(policy: Policy) -> CompiledPolicy {
    CompiledPolicy::new(&policy).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn semver(range: &str) -> CompiledPolicy {
    compile(Policy::new(Rule::Semver(SemverPolicy {
        range: range.into(),
        prereleases: false,
    })))
}

pub(super) fn semver_pre(range: &str) -> CompiledPolicy {
    compile(Policy::new(Rule::Semver(SemverPolicy {
        range: range.into(),
        prereleases: true,
    })))
}

pub(super) fn filtered(rule: Rule, pattern: &str, extract: Option<&str>) -> CompiledPolicy {
    compile(Policy {
        rule,
        filter_tags: Some(TagFilter {
            pattern: pattern.into(),
            extract: extract.map(Into::into),
        }),
        exclusion_list: None,
    })
}

pub(super) fn numerical(order: SortOrder) -> Rule {
    Rule::Numerical(OrderPolicy { order })
}

pub(super) fn alphabetical(order: SortOrder) -> Rule {
    Rule::Alphabetical(OrderPolicy { order })
}

pub(super) fn chosen(policy: &CompiledPolicy, tags: &[&str]) -> String {
    match policy.choose(tags, &none()) {
        Choice::Chosen { tag, .. } => tag,
        other => panic!("expected a choice, got {other:?}"),
    }
}
