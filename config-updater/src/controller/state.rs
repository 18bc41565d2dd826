//! The in-memory state the three controllers share: what each repository's last scan found,
//! its registry client (for digest pinning), the tag cache, per-registry request budgets,
//! webhook-forced scans, the bumps pending per `ImageUpdate`, and failure counts for backoff.
//!
//! One `std::sync::Mutex`, never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::edit::PolicyId;
use crate::scan::tags::CachedTags;
use crate::scan::{RegistryClient, RequestBudget};
use crate::schedule::Pending;
use crate::webhook::{RegistryEvent, matches};
use crate::writeback::{Change, Chosen};

/// What one `ImageUpdate` keeps between reconciles.
#[derive(Debug, Default)]
pub struct UpdateState {
    /// Bumps waiting for the batch delay or the window.
    pub pending: Pending<PolicyId, Chosen>,
    /// What the branch held (or was made to hold) after the last round, per policy.
    pub written: BTreeMap<PolicyId, Chosen>,
    /// When the branch was last read by a round (for the `interval` check).
    pub checked_at: Option<DateTime<Utc>>,
    /// The last preview of the waiting changes: made for this generation and these chosen
    /// images, so a reconcile that changes neither does not fetch again.
    pub preview: Option<Preview>,
}

/// A plan of the waiting changes: `(generation, chosen images, changes)`.
pub type Preview = (Option<i64>, BTreeMap<PolicyId, Chosen>, Vec<Change>);

/// The last scan of one `ImageRepository`.
#[derive(Clone)]
pub struct Scanned {
    /// The image as the user wrote it in the spec.
    pub image: String,
    /// Sorted, deduplicated, exclusions applied.
    pub tags: Arc<Vec<String>>,
    pub client: Option<Arc<RegistryClient>>,
}

#[derive(Default)]
struct Inner {
    /// `ns/name` → the image the repository watches (for webhook matching).
    images: HashMap<String, String>,
    scanned: HashMap<String, Scanned>,
    cache: HashMap<String, CachedTags>,
    budgets: HashMap<String, Arc<RequestBudget>>,
    forced: HashSet<String>,
    updates: HashMap<String, UpdateState>,
    failures: HashMap<String, u32>,
}

/// Shared by every reconcile (see the module doc).
#[derive(Default)]
pub struct State(Mutex<Inner>);

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn watch_image(&self, key: &str, image: &str) {
        self.lock().images.insert(key.to_owned(), image.to_owned());
    }

    pub fn forget_repository(&self, key: &str) {
        let mut inner = self.lock();
        inner.images.remove(key);
        inner.scanned.remove(key);
    }

    /// The watched repositories a webhook event names, as `(namespace, name)`; each is marked
    /// to be scanned at its next reconcile, whatever its interval says.
    pub fn repositories_matching(&self, event: &RegistryEvent) -> Vec<(String, String)> {
        let mut inner = self.lock();
        let hits: Vec<String> = inner
            .images
            .iter()
            .filter(|(_, image)| matches(image, event))
            .map(|(key, _)| key.clone())
            .collect();
        hits.into_iter()
            .filter_map(|key| {
                inner.forced.insert(key.clone());
                key.split_once('/')
                    .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
            })
            .collect()
    }

    /// Whether a webhook asked for a scan of `key`; clears the request.
    pub fn take_forced(&self, key: &str) -> bool {
        self.lock().forced.remove(key)
    }

    pub fn scanned(&self, key: &str) -> Option<Scanned> {
        self.lock().scanned.get(key).cloned()
    }

    pub fn set_scanned(&self, key: &str, scanned: Scanned) {
        self.lock().scanned.insert(key.to_owned(), scanned);
    }

    pub fn cached(&self, image: &str) -> Option<CachedTags> {
        self.lock().cache.get(image).cloned()
    }

    pub fn set_cached(&self, image: &str, entry: Option<CachedTags>) {
        let mut inner = self.lock();
        match entry {
            Some(entry) => inner.cache.insert(image.to_owned(), entry),
            None => inner.cache.remove(image),
        };
    }

    /// The request budget every client of `registry` shares.
    pub fn budget(&self, registry: &str) -> Arc<RequestBudget> {
        self.lock()
            .budgets
            .entry(registry.to_owned())
            .or_insert_with(|| Arc::new(RequestBudget::new(Default::default())))
            .clone()
    }

    /// Runs `f` on the state of the `ImageUpdate` `key`.
    pub fn with_update<T>(&self, key: &str, f: impl FnOnce(&mut UpdateState) -> T) -> T {
        f(self.lock().updates.entry(key.to_owned()).or_default())
    }

    pub fn forget_update(&self, key: &str) {
        self.lock().updates.remove(key);
    }

    pub fn succeeded(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// Counts a failure of `key`; returns how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut inner = self.lock();
        let n = inner.failures.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}
