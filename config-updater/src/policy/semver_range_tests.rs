use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Asserts which of `versions` the range admits (by precedence alone).
fn check(range: &str, admitted: &[&str], refused: &[&str]) {
    let r = SemverRange::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
    for a in admitted {
        assert!(r.admits(&v(a)), "{range} should admit {a}");
    }
    for x in refused {
        assert!(!r.admits(&v(x)), "{range} should refuse {x}");
    }
}

#[test]
fn space_and_comma_separated_conjunctions() {
    for range in [
        ">=1.2.0 <2.0.0",
        ">=1.2.0, <2.0.0",
        ">=1.2.0,<2.0.0",
        ">= 1.2.0 < 2.0.0",
        "=>1.2.0 <2.0.0",
    ] {
        check(
            range,
            &["1.2.0", "1.9.99"],
            &["1.1.9", "2.0.0", "2.0.0-rc.1", "0.9.0"],
        );
    }
}

#[test]
fn bare_version_is_exact_not_caret() {
    check("1.2.3", &["1.2.3"], &["1.2.4", "1.3.0", "1.2.3-rc.1"]);
    check("=1.2.3", &["1.2.3"], &["1.2.4"]);
    check("v1.2.3", &["1.2.3"], &["1.2.4"]);
    check("!=1.2.3", &["1.2.4", "1.2.2"], &["1.2.3"]);
}

#[test]
fn caret() {
    check(
        "^1.2.3",
        &["1.2.3", "1.9.0"],
        &["1.2.2", "2.0.0", "2.0.0-rc.1"],
    );
    check("^1.2", &["1.2.0", "1.9.9"], &["1.1.9", "2.0.0"]);
    check("^1", &["1.0.0", "1.9.9"], &["0.9.9", "2.0.0"]);
    check("^0.2.3", &["0.2.3", "0.2.9"], &["0.3.0", "0.2.2"]);
    check("^0.0.3", &["0.0.3"], &["0.0.4", "0.0.2"]);
    check("^0.0", &["0.0.0", "0.0.9"], &["0.1.0"]);
    check("^0", &["0.0.0", "0.9.9"], &["1.0.0"]);
    check("^*", &["0.0.0", "99.0.0"], &[]);
}

#[test]
fn tilde() {
    check("~1.2.3", &["1.2.3", "1.2.99"], &["1.2.2", "1.3.0"]);
    check("~>1.2.3", &["1.2.3", "1.2.99"], &["1.3.0"]);
    check("~1.2", &["1.2.0", "1.2.5"], &["1.3.0", "1.1.0"]);
    check("~1", &["1.0.0", "1.5.0"], &["2.0.0", "0.9.0"]);
}

#[test]
fn wildcards_and_partials() {
    for range in ["1.2.x", "1.2.X", "1.2.*", "1.2", "=1.2"] {
        check(range, &["1.2.0", "1.2.17"], &["1.3.0", "1.1.9"]);
    }
    for range in ["1.x", "1.x.x", "1", "1.*"] {
        check(range, &["1.0.0", "1.99.0"], &["2.0.0", "0.1.0"]);
    }
    for range in ["*", "x", "X", "*.*.*", ">=0.0.0", ">=*"] {
        check(range, &["0.0.0", "1.2.3", "999.0.0"], &[]);
    }
}

#[test]
fn partial_operands_cover_whole_release_lines() {
    check(">1.2", &["1.3.0"], &["1.2.9", "1.2.0"]);
    check(">1", &["2.0.0"], &["1.99.0"]);
    check(">=1.2", &["1.2.0"], &["1.1.9"]);
    check("<1.2", &["1.1.99"], &["1.2.0"]);
    check("<=1.2", &["1.2.99"], &["1.3.0"]);
    check(">= 1.2.x", &["1.2.0", "5.0.0"], &["1.1.0"]);
    check("<= 2.x", &["2.99.0"], &["3.0.0"]);
    check("!=1.2.x", &["1.1.9", "1.3.0"], &["1.2.0", "1.2.5"]);
}

#[test]
fn alternatives() {
    check("^1.2 || ^3.0", &["1.5.0", "3.1.0"], &["2.0.0", "4.0.0"]);
    check(
        "<1.0.0 || >=2.0.0",
        &["0.9.0", "2.0.0"],
        &["1.0.0", "1.5.0"],
    );
    check("1.2.3||1.2.5", &["1.2.3", "1.2.5"], &["1.2.4"]);
}

#[test]
fn hyphen_ranges() {
    check("1.2.3 - 2.3.4", &["1.2.3", "2.3.4"], &["1.2.2", "2.3.5"]);
    check("1.2 - 1.4.5", &["1.2.0", "1.4.5"], &["1.1.9", "1.4.6"]);
    check("2.3.4 - 4.5", &["2.3.4", "4.5.9"], &["4.6.0", "2.3.3"]);
    check(
        "1.0.0 - 1.0.0 || 3.0.0 - 4.0.0",
        &["1.0.0", "3.5.0"],
        &["2.0.0"],
    );
}

#[test]
fn build_metadata_is_ignored() {
    check("1.2.3+build.1", &["1.2.3", "1.2.3+other"], &["1.2.4"]);
    check(">1.2.3", &["1.2.4+x"], &["1.2.3+zzz"]);
}

#[test]
fn prerelease_bounds_follow_our_rule() {
    // An exclusive upper bound written without a pre-release shuts out its pre-releases too.
    check(
        ">=1.0.0 <2.0.0",
        &["1.5.0-rc.1", "1.0.1-alpha"],
        &["2.0.0-rc.1", "2.0.0-0"],
    );
    check("^1.2.3", &["1.3.0-beta"], &["2.0.0-alpha"]);
    check("~1.2.3", &["1.2.4-rc.1"], &["1.3.0-rc.1"]);
    // Full-version lower bounds are literal; `-0` opts into the release's own pre-releases.
    check(">=1.2.0", &["1.2.1-rc.1"], &["1.2.0-rc.1"]);
    check(">=1.2.0-0", &["1.2.0-rc.1", "1.2.0-0"], &["1.1.9"]);
    // Wildcards and partials cover the whole line, pre-releases included.
    check("1.2.x", &["1.2.0-rc.1"], &["1.3.0-rc.1", "1.1.9-rc.1"]);
    check("*", &["0.0.0-0", "1.0.0-alpha"], &[]);
    // A bound that names a pre-release is compared by plain precedence.
    check(
        ">=1.2.3-rc.2",
        &["1.2.3-rc.10", "1.2.3"],
        &["1.2.3-rc.1", "1.2.3-beta"],
    );
    check("<2.0.0-rc.1", &["2.0.0-beta"], &["2.0.0-rc.1", "2.0.0"]);
    check("<=1.2.3", &["1.2.3-rc.1"], &["1.2.4-rc.1"]);
    check(">1.2.3", &["1.2.4-rc.1"], &["1.2.3-rc.1"]);
    check("=1.2.3", &[], &["1.2.3-rc.1"]);
}

#[test]
fn names_prerelease() {
    assert!(SemverRange::parse(">=1.0.0-0").unwrap().names_prerelease());
    assert!(
        SemverRange::parse("^1.0 || 2.0.0-rc.1 - 2.0.0")
            .unwrap()
            .names_prerelease()
    );
    assert!(
        !SemverRange::parse(">=1.0.0 <2.0.0")
            .unwrap()
            .names_prerelease()
    );
    assert!(
        !SemverRange::parse("1.2.3+build")
            .unwrap()
            .names_prerelease()
    );
}

#[test]
fn huge_components_do_not_overflow() {
    let max = u64::MAX;
    check(&format!("^{max}.0.0"), &[&format!("{max}.5.0")], &["1.0.0"]);
    check(&format!("~1.{max}.0"), &[&format!("1.{max}.7")], &[]);
    check(&format!("{max}.x"), &[&format!("{max}.1.0")], &[]);
    check(&format!(">{max}"), &[], &[&format!("{max}.{max}.{max}")]);
    assert!(matches!(
        SemverRange::parse("1.18446744073709551616.0"),
        Err(RangeError::BadVersion { .. })
    ));
}

#[test]
fn never_ranges() {
    check(">*", &[], &["0.0.0", "1.0.0"]);
    check("<*", &[], &["0.0.0"]);
    check("!=*", &[], &["1.0.0"]);
}

#[test]
fn parse_errors() {
    assert_eq!(SemverRange::parse(""), Err(RangeError::Empty));
    assert_eq!(SemverRange::parse("   "), Err(RangeError::Empty));
    assert!(matches!(
        SemverRange::parse("^1.0 ||"),
        Err(RangeError::EmptyAlternative { .. })
    ));
    assert!(matches!(
        SemverRange::parse("|| 1.0"),
        Err(RangeError::EmptyAlternative { .. })
    ));
    assert!(matches!(
        SemverRange::parse(">= "),
        Err(RangeError::DanglingOperator { .. })
    ));
    assert!(matches!(
        SemverRange::parse("1.0.0 >="),
        Err(RangeError::DanglingOperator { .. })
    ));
    assert!(matches!(
        SemverRange::parse("1.0 - "),
        Err(RangeError::BadHyphen { .. })
    ));
    assert!(matches!(
        SemverRange::parse(">=1.0 - 2.0"),
        Err(RangeError::BadHyphen { .. })
    ));
    for bad in [
        "latest",
        "1.2.3.4",
        "1.x.3",
        "1.2-rc.1",
        "a.b.c",
        ">>1.0",
        "1..2",
        "1.2.3-",
        "1.2.3-rc..1",
        "1.2.3+",
    ] {
        assert!(
            matches!(SemverRange::parse(bad), Err(RangeError::BadVersion { .. })),
            "{bad}"
        );
    }
}

#[test]
fn display_keeps_the_users_text() {
    assert_eq!(
        SemverRange::parse(">=1.0.0, <2.0.0").unwrap().to_string(),
        ">=1.0.0, <2.0.0"
    );
}
