use std::future::Future;

use crate::scan::ScanError;
use crate::scan::pager::{Listing, MAX_PAGES, Page, PageSource, is_last_page, list_pages};
use crate::scan::tags::{fingerprint, is_valid_tag, raw_fingerprint, sift};

/// A registry's tag list, served the way a given registry pages it.
struct FakeRegistry {
    tags: Vec<String>,
    honours_n: bool,
    honours_last: bool,
    /// Asked `(n, last)`, in order.
    asked: Vec<(usize, Option<String>)>,
    fail_on: Option<(usize, ScanError)>,
}

impl FakeRegistry {
    fn new(tags: Vec<String>) -> Self {
        FakeRegistry {
            tags,
            honours_n: true,
            honours_last: true,
            asked: Vec::new(),
            fail_on: None,
        }
    }
}

impl PageSource for FakeRegistry {
    fn page(
        &mut self,
        n: usize,
        last: Option<&str>,
    ) -> impl Future<Output = Result<Page, ScanError>> + Send {
        self.asked.push((n, last.map(str::to_owned)));
        let result = match &self.fail_on {
            Some((at, error)) if *at == self.asked.len() => Err(error.clone()),
            _ => {
                let start = match last {
                    Some(l) if self.honours_last => self
                        .tags
                        .iter()
                        .position(|t| t.as_str() > l)
                        .unwrap_or(self.tags.len()),
                    _ => 0,
                };
                let end = if self.honours_n {
                    (start + n).min(self.tags.len())
                } else {
                    self.tags.len()
                };
                Ok(Page::of(self.tags[start..end].to_vec()))
            }
        };
        std::future::ready(result)
    }
}

fn builds(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("build-{i:04}")).collect()
}

fn run<S: PageSource>(
    source: &mut S,
    n: usize,
    cached: Option<&str>,
) -> Result<Listing, ScanError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(list_pages(source, n, cached, "reg", "repo"))
}

fn complete(listing: Listing) -> (Vec<String>, usize) {
    match listing {
        Listing::Complete { raw, pages, .. } => (raw, pages),
        Listing::Unchanged => panic!("expected a complete listing"),
    }
}

#[test]
fn eleven_hundred_tags_take_two_pages_following_last() {
    let mut registry = FakeRegistry::new(builds(1100));
    let (raw, pages) = complete(run(&mut registry, 1000, None).unwrap());
    assert_eq!(raw, builds(1100));
    assert_eq!(pages, 2);
    assert_eq!(
        registry.asked,
        [(1000, None), (1000, Some("build-1000".to_owned()))]
    );
}

#[test]
fn a_list_of_exactly_one_page_needs_an_empty_page_to_end() {
    let mut registry = FakeRegistry::new(builds(1000));
    let (raw, pages) = complete(run(&mut registry, 1000, None).unwrap());
    assert_eq!(raw.len(), 1000);
    assert_eq!(pages, 2);
    assert_eq!(registry.asked.len(), 2);
}

#[test]
fn a_registry_ignoring_n_sends_everything_at_once() {
    // distribution 2.8: `n` ignored, all 1100 in the first response.
    let mut registry = FakeRegistry {
        honours_n: false,
        honours_last: false,
        ..FakeRegistry::new(builds(1100))
    };
    let (raw, pages) = complete(run(&mut registry, 1000, None).unwrap());
    assert_eq!((raw.len(), pages, registry.asked.len()), (1100, 1, 1));
}

#[test]
fn small_and_empty_repositories_take_one_request() {
    let mut registry = FakeRegistry::new(builds(3));
    assert_eq!(
        complete(run(&mut registry, 1000, None).unwrap()),
        (builds(3), 1)
    );
    let mut empty = FakeRegistry::new(vec![]);
    assert_eq!(complete(run(&mut empty, 1000, None).unwrap()), (vec![], 1));
    assert_eq!(empty.asked.len(), 1);
}

#[test]
fn small_pages_are_followed_to_the_end() {
    let mut registry = FakeRegistry::new(builds(25));
    let (raw, pages) = complete(run(&mut registry, 10, None).unwrap());
    assert_eq!((raw, pages), (builds(25), 3));
}

#[test]
fn a_registry_repeating_a_page_is_an_error_not_a_loop() {
    let mut registry = FakeRegistry {
        honours_last: false,
        ..FakeRegistry::new(builds(1100))
    };
    let err = run(&mut registry, 1000, None).expect_err("no progress");
    assert_eq!(
        err,
        ScanError::PagingStuck {
            registry: "reg".into(),
            repository: "repo".into(),
            last: "build-1000".into()
        }
    );
    assert_eq!(registry.asked.len(), 2);
    assert!(err.to_string().contains("last=build-1000"), "{err}");
}

/// Always a full page of new tags.
struct Endless(usize);

impl PageSource for Endless {
    fn page(
        &mut self,
        n: usize,
        _last: Option<&str>,
    ) -> impl Future<Output = Result<Page, ScanError>> + Send {
        let page = (0..n).map(|i| format!("t{}-{i}", self.0)).collect();
        self.0 += 1;
        std::future::ready(Ok(Page::of(page)))
    }
}

#[test]
fn paging_gives_up_after_max_pages() {
    let mut endless = Endless(0);
    let err = run(&mut endless, 1, None).expect_err("endless");
    assert!(
        matches!(
            err,
            ScanError::TooManyPages {
                pages: MAX_PAGES,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(endless.0, MAX_PAGES);
}

#[test]
fn a_failing_page_fails_the_listing() {
    let down = ScanError::Unreachable {
        registry: "reg".into(),
        attempts: 4,
        reason: "connection refused".into(),
    };
    let mut registry = FakeRegistry {
        fail_on: Some((2, down.clone())),
        ..FakeRegistry::new(builds(1100))
    };
    assert_eq!(run(&mut registry, 1000, None), Err(down));
}

#[test]
fn an_unchanged_single_page_costs_one_request() {
    let tags = builds(5);
    let cached = raw_fingerprint(&tags);
    let mut registry = FakeRegistry::new(tags.clone());
    assert_eq!(
        run(&mut registry, 1000, Some(&cached)).unwrap(),
        Listing::Unchanged
    );
    assert_eq!(registry.asked.len(), 1);

    // A new tag: the first page differs, and it is the whole list.
    let mut more = tags.clone();
    more.push("build-0006".into());
    let mut registry = FakeRegistry::new(more.clone());
    assert_eq!(
        complete(run(&mut registry, 1000, Some(&cached)).unwrap()),
        (more, 1)
    );

    // Order does not matter to the fingerprint.
    let mut reversed = tags;
    reversed.reverse();
    let mut registry = FakeRegistry {
        honours_n: false,
        ..FakeRegistry::new(reversed)
    };
    assert_eq!(
        run(&mut registry, 1000, Some(&cached)).unwrap(),
        Listing::Unchanged
    );
}

#[test]
fn a_full_first_page_is_never_taken_as_unchanged() {
    let tags = builds(1000);
    let cached = raw_fingerprint(&tags);
    let mut registry = FakeRegistry::new(builds(1001));
    let (raw, pages) = complete(run(&mut registry, 1000, Some(&cached)).unwrap());
    assert_eq!((raw.len(), pages), (1001, 2));
}

#[test]
fn last_page_rule() {
    assert!(is_last_page(0, 1000));
    assert!(is_last_page(999, 1000));
    assert!(!is_last_page(1000, 1000));
    assert!(
        is_last_page(1100, 1000),
        "more than asked: the registry ignored n"
    );
}

#[test]
fn the_tag_grammar() {
    for ok in ["1.2.3", "v1", "_x", "latest", "A-b_c.9", &"a".repeat(128)] {
        assert!(is_valid_tag(ok), "{ok}");
    }
    for bad in ["", ".x", "-x", "a/b", "a:b", "a b", "ü", &"a".repeat(129)] {
        assert!(!is_valid_tag(bad), "{bad}");
    }
}

#[test]
fn malformed_entries_are_counted_and_exclusions_applied() {
    let raw: Vec<String> = [
        "1.0.0",
        "bad tag",
        "sha256-abc.sig",
        "0.9.0",
        "",
        "1.0.0",
        "-x",
        "2.0.0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let exclusions = regex::RegexSet::new([r"^.*\.sig$"]).unwrap();
    let list = sift(&raw, Some(&exclusions));
    assert_eq!(list.tags, ["0.9.0", "1.0.0", "2.0.0"]);
    assert_eq!((list.malformed, list.excluded), (3, 1));
    assert_eq!(list.fingerprint, fingerprint(&list.tags));
    let unfiltered = sift(&raw, None);
    assert_eq!(unfiltered.excluded, 0);
    assert!(unfiltered.tags.contains(&"sha256-abc.sig".to_owned()));
    assert_ne!(unfiltered.fingerprint, list.fingerprint);
}

#[test]
fn fingerprints_are_sha256_of_sorted_lines() {
    // sha256("a\nb\n")
    assert_eq!(
        fingerprint(&["a".into(), "b".into()]),
        "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2"
    );
    assert_eq!(
        raw_fingerprint(&["b".into(), "a".into(), "a".into()]),
        fingerprint(&["a".into(), "b".into()])
    );
    assert_eq!(fingerprint(&[]).len(), 64);
}
