//! What a scan keeps: valid, not excluded tags, sorted and deduplicated; their fingerprint; and the
//! per-repository cache that lets an unchanged repository cost one request.

use std::collections::HashMap;
use std::time::SystemTime;

use regex::RegexSet;

/// The OCI tag grammar, one definition for scanning and choosing.
pub use crate::policy::is_valid_tag;

/// The tags a listing produced, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TagList {
    /// Valid, not excluded, sorted and deduplicated.
    pub tags: Vec<String>,
    /// Entries the registry listed that are not tags by the grammar; ignored.
    pub malformed: usize,
    /// Valid tags that matched an exclusion; not stored.
    pub excluded: usize,
    /// sha256 of `tags` (see the function `fingerprint`).
    pub fingerprint: String,
    /// sha256 of everything the registry listed, sorted: what the cache compares pages with.
    pub raw_fingerprint: String,
    /// Pages fetched (tag-list responses used).
    pub pages: usize,
    /// Tag-list requests sent, retries included.
    pub requests: u32,
}

/// Keeps what is stored of a raw listing: valid tags not matching `exclusions`.
pub fn sift(raw: &[String], exclusions: Option<&RegexSet>) -> TagList {
    let mut malformed = 0;
    let mut excluded = 0;
    let mut tags = Vec::with_capacity(raw.len());
    for tag in raw {
        if !is_valid_tag(tag) {
            malformed += 1;
        } else if exclusions.is_some_and(|set| set.is_match(tag)) {
            excluded += 1;
        } else {
            tags.push(tag.clone());
        }
    }
    tags.sort_unstable();
    tags.dedup();
    TagList {
        fingerprint: fingerprint(&tags),
        raw_fingerprint: raw_fingerprint(raw),
        tags,
        malformed,
        excluded,
        pages: 0,
        requests: 0,
    }
}

/// sha256 (hex) of sorted tags, one per line.
pub fn fingerprint(sorted: &[String]) -> String {
    sluice_shared::digest::sha256_hex(
        sorted
            .iter()
            .flat_map(|tag| [tag.as_bytes(), b"\n".as_slice()]),
    )
}

/// The fingerprint of a raw listing in any order.
pub fn raw_fingerprint(raw: &[String]) -> String {
    let mut sorted: Vec<&String> = raw.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let owned: Vec<String> = sorted.into_iter().cloned().collect();
    fingerprint(&owned)
}

/// The last complete listing of one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedTags {
    pub list: TagList,
    pub fetched_at: SystemTime,
    /// The exclusions `list` was sifted with; other exclusions need a fresh listing.
    pub exclusions: Vec<String>,
}

impl CachedTags {
    /// Whether the one-request check applies: the listing was a single final page, sifted with
    /// these exclusions.
    pub fn single_page_with(&self, exclusions: &[String]) -> bool {
        self.list.pages == 1 && self.exclusions == exclusions
    }
}

/// Per repository (`registry/repository`), the last complete listing.
#[derive(Debug, Default)]
pub struct TagCache {
    entries: HashMap<String, CachedTags>,
}

impl TagCache {
    pub fn get(&self, repository: &str) -> Option<&CachedTags> {
        self.entries.get(repository)
    }

    pub fn put(&mut self, repository: String, entry: CachedTags) {
        self.entries.insert(repository, entry);
    }

    pub fn remove(&mut self, repository: &str) {
        self.entries.remove(repository);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
