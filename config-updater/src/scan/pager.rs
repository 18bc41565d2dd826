//! The paging loop, over any [`PageSource`]: the registry in production, a fake in tests.
//!
//! Pages are followed by `last=` (the last tag of the previous page, as the distribution spec
//! defines it). Whether another page follows is the `Link: <…>; rel="next"` header's word when the
//! source can see headers (`Page::more`); otherwise a page ends the list when it is shorter than
//! asked (the end) or longer (the registry ignored `n` and sent everything, as distribution 2.8
//! does), and a full page means "ask again after its last tag". An empty page always ends it.

use std::collections::HashSet;
use std::future::Future;

use super::ScanError;
use super::tags::raw_fingerprint;

/// Tags asked for per page: GHCR's and Quay's cap.
pub const PAGE_SIZE: usize = 1000;

/// No repository is listed in more pages than this (a million tags at 1000 a page).
pub const MAX_PAGES: usize = 1000;

/// One tag-list response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub tags: Vec<String>,
    /// Entries that were not even strings (numbers, nulls): counted, ignored.
    pub malformed: usize,
    /// Whether the registry announced a next page (`Link`), when the source can tell.
    pub more: Option<bool>,
}

impl Page {
    /// A page from a source that cannot see headers.
    pub fn of(tags: Vec<String>) -> Self {
        Page {
            tags,
            malformed: 0,
            more: None,
        }
    }
}

/// One tag-list request: `n` tags after `last` (from the start when `None`).
pub trait PageSource {
    fn page(
        &mut self,
        n: usize,
        last: Option<&str>,
    ) -> impl Future<Output = Result<Page, ScanError>> + Send;
}

/// What paging found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// The first page was the whole list, and it is the one cached: nothing to redo.
    Unchanged,
    /// Every tag listed, in the registry's order, deduplicated, malformed ones included; entries
    /// that were not strings are only counted (`malformed`).
    Complete {
        raw: Vec<String>,
        pages: usize,
        malformed: usize,
    },
}

/// Whether a page of `len` tags, after asking for `n`, is the last one, when the registry did not
/// say.
pub fn is_last_page(len: usize, n: usize) -> bool {
    len != n
}

fn ends_the_list(page: &Page, n: usize) -> bool {
    page.tags.is_empty()
        || page
            .more
            .map_or_else(|| is_last_page(page.tags.len(), n), |more| !more)
}

/// Follows the pages to the end.
///
/// `cached_single_page`: the raw fingerprint of the cached listing when that listing was one final
/// page; if the first page is final and has that fingerprint, the answer is
/// [`Listing::Unchanged`] after one request.
///
/// Fails with [`ScanError::PagingStuck`] when a full page brings no tag not seen before (the
/// registry ignores `last`), and [`ScanError::TooManyPages`] past [`MAX_PAGES`].
pub async fn list_pages<S: PageSource>(
    source: &mut S,
    page_size: usize,
    cached_single_page: Option<&str>,
    registry: &str,
    repository: &str,
) -> Result<Listing, ScanError> {
    let n = page_size.max(1);
    let mut raw: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut last: Option<String> = None;
    let mut pages = 0;
    let mut malformed = 0;
    loop {
        if pages >= MAX_PAGES {
            return Err(ScanError::TooManyPages {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                pages: MAX_PAGES,
            });
        }
        let page = source.page(n, last.as_deref()).await?;
        pages += 1;
        let final_page = ends_the_list(&page, n);
        if pages == 1
            && final_page
            && page.malformed == 0
            && cached_single_page.is_some_and(|fp| fp == raw_fingerprint(&page.tags))
        {
            return Ok(Listing::Unchanged);
        }
        malformed += page.malformed;
        let before = seen.len();
        let cursor = page.tags.last().cloned();
        for tag in page.tags {
            if seen.insert(tag.clone()) {
                raw.push(tag);
            }
        }
        if final_page {
            return Ok(Listing::Complete {
                raw,
                pages,
                malformed,
            });
        }
        if seen.len() == before {
            return Err(ScanError::PagingStuck {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                last: last.unwrap_or_default(),
            });
        }
        last = cursor;
    }
}
