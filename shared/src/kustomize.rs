//! What kustomize fixes and both daemons must agree on: the names of a kustomization file.
//! The synchronizer renders a directory with one of them through kustomize; the updater reads
//! them to bump their `images:` entries.

/// File names that make a directory a Kustomization, as kustomize itself looks for them (in
/// this order).
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Whether the last component of the `/`-separated `path` is one of [`KUSTOMIZATION_FILES`]
/// (exactly: kustomize does not accept `KUSTOMIZATION.YAML` or `kustomization`).
pub fn is_kustomization_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    KUSTOMIZATION_FILES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomize_names_are_recognised_in_any_directory_and_nothing_else() {
        for path in [
            "kustomization.yaml",
            "overlays/prod/kustomization.yml",
            "apps/web/Kustomization",
        ] {
            assert!(is_kustomization_file(path), "{path}");
        }
        for path in [
            "kustomization",
            "apps/KUSTOMIZATION.YAML",
            "apps/Kustomization.yaml",
            "apps/Kustomization/deployment.yaml",
            "apps/my-kustomization.yaml",
        ] {
            assert!(!is_kustomization_file(path), "{path}");
        }
    }
}
