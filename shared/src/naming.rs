//! Names fixed for the whole project. Everything Sluice writes into a cluster
//! or exposes to monitoring is named from these constants.

/// Product name, as shown to people.
pub const PRODUCT: &str = "Sluice";

/// Kubernetes API group of Sluice's own resources.
pub const API_GROUP: &str = "sluice.dev";

/// Field manager used for every server-side apply.
pub const FIELD_MANAGER: &str = "sluice";

/// Prefix of every label and annotation key Sluice owns.
pub const LABEL_PREFIX: &str = "sluice.dev/";

/// Namespace passed to the Prometheus registry; metric names start with
/// [`METRICS_PREFIX`].
pub const METRICS_NAMESPACE: &str = "sluice";

/// Prefix of every Prometheus metric name Sluice exports.
pub const METRICS_PREFIX: &str = "sluice_";

/// A `sluice.dev/<name>` label or annotation key, usable in `const` items.
///
/// ```
/// const MANAGED: &str = sluice_shared::key!("managed");
/// assert_eq!(MANAGED, "sluice.dev/managed");
/// ```
#[macro_export]
macro_rules! key {
    ($name:literal) => {
        concat!("sluice.dev/", $name)
    };
}

/// The `sluice.dev/<name>` label or annotation key for a name known only at
/// run time.
pub fn key(name: &str) -> String {
    format!("{LABEL_PREFIX}{name}")
}

/// The name part of a Sluice-owned key, or `None` for a key Sluice does not own.
pub fn name_of(key: &str) -> Option<&str> {
    key.strip_prefix(LABEL_PREFIX)
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_macro_matches_prefix() {
        assert_eq!(crate::key!("image-policy"), key("image-policy"));
        assert!(crate::key!("x").starts_with(LABEL_PREFIX));
    }

    #[test]
    fn key_and_name_round_trip() {
        assert_eq!(key("managed"), "sluice.dev/managed");
        assert_eq!(name_of(&key("managed")), Some("managed"));
    }

    #[test]
    fn foreign_and_empty_keys_are_not_ours() {
        assert_eq!(name_of("app.kubernetes.io/name"), None);
        assert_eq!(name_of("sluice.dev.evil/x"), None);
        assert_eq!(name_of("sluice.dev/"), None);
    }

    #[test]
    fn prefixes_agree_with_group() {
        assert_eq!(LABEL_PREFIX, format!("{API_GROUP}/"));
        assert_eq!(METRICS_PREFIX, format!("{METRICS_NAMESPACE}_"));
    }
}
