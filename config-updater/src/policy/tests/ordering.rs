//! Numerical and alphabetical policies, and `filterTags` extraction.

use super::*;

#[test]
fn numerical_on_extracted_timestamp() {
    let policy = filtered(
        numerical(SortOrder::Asc),
        r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
        Some("$ts"),
    );
    let choice = policy.choose(TAGS, &none());
    assert_eq!(choice.tag(), Some("main-0c4e5d2-1700000100"));
    let Choice::Chosen { key, tally, .. } = choice else {
        panic!()
    };
    assert_eq!(key, SortKey::Number("1700000100".into()));
    // 1700000000 > 999999999 numerically even though "9…" > "1…" as text.
    assert_eq!(tally.unmatched, TAGS.len() - 3 - tally.excluded);
    let desc = filtered(
        numerical(SortOrder::Desc),
        r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
        Some("ts"),
    );
    assert_eq!(chosen(&desc, TAGS), "main-1b2b3b4-999999999");
}

#[test]
fn extract_forms_are_equivalent() {
    for extract in ["$ts", "${ts}", "ts", " $ts ", "$1"] {
        let policy = filtered(
            numerical(SortOrder::Asc),
            r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
            Some(extract),
        );
        assert_eq!(
            chosen(&policy, TAGS),
            "main-0c4e5d2-1700000100",
            "{extract}"
        );
    }
}

#[test]
fn numerical_skips_non_numbers_and_handles_overflow() {
    let policy = compile(Policy::new(numerical(SortOrder::Asc)));
    let tags = [
        "12",
        "9",
        "latest",
        "99999999999999999999999",
        "1e30",
        "0012",
        "3.5",
        "-4",
    ];
    let Choice::Chosen {
        tag, key, tally, ..
    } = policy.choose(&tags, &none())
    else {
        panic!()
    };
    assert_eq!(
        (tag.as_str(), key),
        (
            "99999999999999999999999",
            SortKey::Number("99999999999999999999999".into())
        )
    );
    assert_eq!(
        (tally.rejected, tally.malformed),
        (2, 1),
        "latest and 1e30; `-4` is no tag"
    );
    let desc = compile(Policy::new(numerical(SortOrder::Desc)));
    assert_eq!(chosen(&desc, &tags), "3.5");
    // Equal numbers: the tag whose text sorts first.
    assert_eq!(chosen(&policy, &["12", "012", "12.0"]), "012");
}

#[test]
fn alphabetical_orders_by_bytes() {
    let asc = compile(Policy::new(alphabetical(SortOrder::Asc)));
    let tags = [
        "2021-01-28.133158",
        "2021-01-28.093000",
        "2020-12-31.235959",
    ];
    assert_eq!(chosen(&asc, &tags), "2021-01-28.133158");
    let desc = compile(Policy::new(alphabetical(SortOrder::Desc)));
    assert_eq!(chosen(&desc, &tags), "2020-12-31.235959");
    // Byte order: uppercase sorts before lowercase, digits before letters.
    assert_eq!(chosen(&asc, &["Zeta", "alpha", "9"]), "alpha");
}

#[test]
fn alphabetical_on_extracted_key_with_ties() {
    let policy = filtered(
        alphabetical(SortOrder::Asc),
        r"^(?:main|release)-(?P<date>\d{8})",
        Some("date"),
    );
    let tags = [
        "release-20240102-b",
        "main-20240102-a",
        "main-20231231-z",
        "dev-20991231",
    ];
    // Same extracted date: the tag whose text sorts first wins.
    assert_eq!(chosen(&policy, &tags), "main-20240102-a");
}

#[test]
fn filter_without_extract_keys_on_whole_tag() {
    let policy = filtered(alphabetical(SortOrder::Asc), r"^main-", None);
    assert_eq!(chosen(&policy, TAGS), "main-7f3a9c1-1700000000");
}

#[test]
fn optional_or_empty_group_does_not_match() {
    let policy = filtered(
        numerical(SortOrder::Asc),
        r"^build(?:-(?P<n>\d*))?$",
        Some("n"),
    );
    let choice = policy.choose(&["build", "build-", "build-7"], &none());
    assert_eq!(choice.tag(), Some("build-7"));
    assert_eq!(choice.tally().unmatched, 2);
}
