//! The plain-YAML walker: the thin I/O shell around [`parse_documents`]. It reads the target
//! directory in a fixed order so the same commit always renders the same list, and it never reads
//! anything outside the repository.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::{
    KUSTOMIZATION_FILES, Manifest, RenderError, RenderErrors, check_duplicates, parse_documents,
};

/// The directory to render, resolved inside the checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderTarget {
    /// The checkout, canonical.
    pub root: PathBuf,
    /// The directory to render, canonical, inside `root`.
    pub dir: PathBuf,
    /// The sub-path as the user wrote it, normalized to `/` separators (`.` for the root); file
    /// labels start with it.
    pub label: String,
}

impl RenderTarget {
    /// Resolves `sub_path` under `root`. `..` is refused outright, even when it would come back
    /// inside: a sub-path is a plain path into the repository, and a symlink leading out of it is
    /// refused after resolution.
    pub fn resolve(root: &Path, sub_path: &Path) -> Result<Self, RenderError> {
        let shown = sub_path.to_string_lossy().into_owned();
        let leaves = sub_path
            .components()
            .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir));
        if leaves {
            return Err(RenderError::SubPathEscapes { sub_path: shown });
        }
        let root = fs::canonicalize(root).map_err(|error| RenderError::Io {
            path: root.display().to_string(),
            error,
        })?;
        let dir = match fs::canonicalize(root.join(sub_path)) {
            Ok(dir) => dir,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(RenderError::SubPathNotFound { sub_path: shown });
            }
            Err(error) => return Err(RenderError::Io { path: shown, error }),
        };
        if !dir.starts_with(&root) {
            return Err(RenderError::SubPathEscapes { sub_path: shown });
        }
        if !dir.is_dir() {
            return Err(RenderError::SubPathNotDirectory { sub_path: shown });
        }
        let label = label_of(sub_path);
        Ok(Self { root, dir, label })
    }

    /// The kustomization file of the target directory, if it has one.
    /// Whether the target directory is a Helm chart (it holds `Chart.yaml`).
    pub fn is_chart(&self) -> bool {
        self.dir.join("Chart.yaml").is_file()
    }

    pub fn kustomization_file(&self) -> Option<&'static str> {
        KUSTOMIZATION_FILES
            .into_iter()
            .find(|name| self.dir.join(name).is_file())
    }
}

/// Renders every `*.yaml`, `*.yml` and `*.json` file under the target, recursively, in sorted
/// order. Hidden entries (`.git`, `.github`, …) and kustomization files (build instructions, not
/// objects) are skipped. Symlinks are followed when they stay inside the repository; every real
/// file and directory is read at most once, which also ends symlink cycles.
pub fn render_plain(
    target: &RenderTarget,
    max_file_size: u64,
) -> Result<Vec<Manifest>, RenderErrors> {
    let mut walker = Walker {
        root: &target.root,
        max_file_size,
        visited: HashSet::from([target.dir.clone()]),
        manifests: Vec::new(),
        errors: Vec::new(),
    };
    let start = if target.label == "." {
        PathBuf::new()
    } else {
        PathBuf::from(&target.label)
    };
    walker.walk(&target.dir, &start);
    let Walker {
        manifests,
        mut errors,
        ..
    } = walker;
    errors.extend(check_duplicates(&manifests));
    RenderErrors::check(errors)?;
    Ok(manifests)
}

struct Walker<'a> {
    root: &'a Path,
    max_file_size: u64,
    /// Canonical paths already read.
    visited: HashSet<PathBuf>,
    manifests: Vec<Manifest>,
    errors: Vec<RenderError>,
}

impl Walker<'_> {
    /// `real_dir` is canonical; `relative` is the path the user sees, for labels.
    fn walk(&mut self, real_dir: &Path, relative: &Path) {
        let entries = match sorted_entries(real_dir) {
            Ok(entries) => entries,
            Err(error) => return self.errors.push(io_error(relative, error)),
        };
        for entry in entries {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let relative = relative.join(&name);
            let Some((real, metadata)) = self.resolve(&entry, real_dir, &relative) else {
                continue;
            };
            if metadata.is_dir() {
                if self.visited.insert(real.clone()) {
                    self.walk(&real, &relative);
                }
            } else if metadata.is_file()
                && is_manifest_file(&relative)
                && self.visited.insert(real.clone())
            {
                self.read(&real, &relative, metadata.len());
            }
        }
    }

    /// The canonical path of an entry and what it is, following a symlink only when it stays in
    /// the repository; `None` (with the error recorded) otherwise.
    fn resolve(
        &mut self,
        entry: &fs::DirEntry,
        real_dir: &Path,
        relative: &Path,
    ) -> Option<(PathBuf, fs::Metadata)> {
        let followed = match entry.file_type() {
            Ok(kind) if kind.is_symlink() => match fs::canonicalize(entry.path()) {
                Ok(real) if !real.starts_with(self.root) => {
                    let link = label_of(relative);
                    self.errors
                        .push(RenderError::SymlinkEscapes { link, target: real });
                    return None;
                }
                Ok(real) => fs::metadata(&real).map(|metadata| (real, metadata)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    self.errors.push(RenderError::BrokenSymlink {
                        link: label_of(relative),
                    });
                    return None;
                }
                Err(error) => Err(error),
            },
            Ok(_) => entry
                .metadata()
                .map(|metadata| (real_dir.join(entry.file_name()), metadata)),
            Err(error) => Err(error),
        };
        followed
            .map_err(|error| self.errors.push(io_error(relative, error)))
            .ok()
    }

    fn read(&mut self, real: &Path, relative: &Path, size: u64) {
        let file = label_of(relative);
        let limit = self.max_file_size;
        if size > limit {
            self.errors
                .push(RenderError::FileTooLarge { file, size, limit });
            return;
        }
        // Read at most one byte past the limit: the file may have grown since it was listed.
        let mut bytes = Vec::new();
        let read = fs::File::open(real)
            .and_then(|opened| opened.take(limit.saturating_add(1)).read_to_end(&mut bytes));
        if let Err(error) = read {
            return self.errors.push(io_error(relative, error));
        }
        if bytes.len() as u64 > limit {
            let size = bytes.len() as u64;
            return self
                .errors
                .push(RenderError::FileTooLarge { file, size, limit });
        }
        match parse_documents(&file, &bytes) {
            Ok(manifests) => self.manifests.extend(manifests),
            Err(errors) => self.errors.extend(errors.into_vec()),
        }
    }
}

/// Directory entries by name (byte order), so the render order never depends on the filesystem.
fn sorted_entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    Ok(entries)
}

fn is_manifest_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    if KUSTOMIZATION_FILES.contains(&name) {
        return false;
    }
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| {
            ["yaml", "yml", "json"]
                .iter()
                .any(|known| extension.eq_ignore_ascii_case(known))
        })
}

/// A repository-relative path as shown to users: `/`-separated, `.` for the root.
fn label_of(path: &Path) -> String {
    let parts: Vec<_> = path
        .components()
        .filter_map(|part| match part {
            Component::Normal(name) => Some(name.to_string_lossy()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

fn io_error(relative: &Path, error: io::Error) -> RenderError {
    RenderError::Io {
        path: label_of(relative),
        error,
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
