//! The inventory: every object a sync applied, by identity, with the API version it was applied
//! with. Prune works only from it — what is not in the inventory is never deleted — and it lives
//! in the sync resource's `status.inventory`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;
use crate::resource::InventoryEntry;

/// What a sync applied. Serializes as `status.inventory`: a list of
/// `{group, version, kind, namespace, name}` sorted by identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<InventoryEntry>", into = "Vec<InventoryEntry>")]
pub struct Inventory {
    /// Identity -> API version (`v1`, not `apps/v1`: the group is in the identity).
    entries: BTreeMap<ObjectRef, String>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an object applied with `api_version` (`apps/v1` or just `v1`).
    pub fn insert(&mut self, id: ObjectRef, api_version: &str) {
        let version = api_version
            .rsplit_once('/')
            .map_or(api_version, |(_, version)| version);
        self.entries.insert(id, version.to_owned());
    }

    pub fn contains(&self, id: &ObjectRef) -> bool {
        self.entries.contains_key(id)
    }

    /// The full apiVersion an object was applied with (`apps/v1`, `v1`): what a delete needs.
    pub fn api_version(&self, id: &ObjectRef) -> Option<String> {
        self.entries
            .get(id)
            .map(|version| join_api_version(&id.group, version))
    }

    pub fn ids(&self) -> impl Iterator<Item = &ObjectRef> {
        self.entries.keys()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `status.inventory` list.
    pub fn to_entries(&self) -> Vec<InventoryEntry> {
        self.entries
            .iter()
            .map(|(id, version)| InventoryEntry {
                group: id.group.clone(),
                version: version.clone(),
                kind: id.kind.clone(),
                namespace: id.namespace.clone(),
                name: id.name.clone(),
            })
            .collect()
    }
}

/// `apps` + `v1` -> `apps/v1`; the core group has no prefix.
pub(super) fn join_api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

impl From<Vec<InventoryEntry>> for Inventory {
    fn from(entries: Vec<InventoryEntry>) -> Self {
        entries.into_iter().collect()
    }
}

impl From<Inventory> for Vec<InventoryEntry> {
    fn from(inventory: Inventory) -> Self {
        inventory.to_entries()
    }
}

impl FromIterator<InventoryEntry> for Inventory {
    fn from_iter<I: IntoIterator<Item = InventoryEntry>>(entries: I) -> Self {
        let entries = entries
            .into_iter()
            .map(|entry| {
                let id = ObjectRef {
                    group: entry.group,
                    kind: entry.kind,
                    namespace: entry.namespace,
                    name: entry.name,
                };
                (id, entry.version)
            })
            .collect();
        Self { entries }
    }
}
