//! Pinning the digest of a mutable tag: which digest to write, and whether it is safe to.
//!
//! For a multi-platform tag we pin the *index* (manifest list) digest, never one platform's
//! manifest: each node must pull its own architecture from the same pinned reference. Before
//! pinning we check that every platform the policy requires is in the index, because a mutable
//! tag can be re-pushed single-arch by a careless build, and pinning that would break the nodes of
//! the missing architecture at the next rollout.
//!
//! The caller fetches the manifest and computes its digest (sha256 of the exact bytes served);
//! this module only reads the JSON.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// OCI image index and Docker manifest list media types.
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Single-image manifest media types. (Docker schema 1 is refused: it is signed, deprecated,
/// and its digest is not the digest of the bytes served.)
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A platform, `os/architecture[/variant]`, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// The digest to pin, and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPin {
    pub digest: String,
    /// For an index: the platforms it lists (attestation entries left out). Empty for a single
    /// manifest, whose platform lives in its config blob.
    pub platforms: Vec<Platform>,
    pub is_index: bool,
}

/// Why a digest cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("{text:?} is not a platform: expected os/architecture[/variant], e.g. linux/arm64")]
    InvalidPlatform { text: String },
    #[error("{digest:?} is not a digest: expected sha256:<64 hex> or sha512:<128 hex>")]
    InvalidDigest { digest: String },
    #[error("the manifest is not valid JSON: {reason}")]
    InvalidJson { reason: String },
    #[error("media type {media_type:?} is neither an image index nor an image manifest")]
    UnsupportedMediaType { media_type: String },
    #[error("the registry says {header:?} but the manifest says {body:?}")]
    MediaTypeMismatch { header: String, body: String },
    #[error("the index lists no platforms")]
    EmptyIndex,
    #[error(
        "required platforms missing from the index: {} (it has: {})",
        list(missing),
        list(available)
    )]
    MissingPlatforms {
        missing: Vec<Platform>,
        available: Vec<Platform>,
    },
    #[error(
        "platforms {} are required, but the tag is a single-platform manifest, not an index",
        list(required)
    )]
    NotAnIndex { required: Vec<Platform> },
}

fn list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_owned();
    }
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PlatformError::InvalidPlatform {
            text: text.to_owned(),
        };
        let parts: Vec<&str> = text.trim().split('/').collect();
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl Platform {
    /// The architecture under its canonical name (`aarch64` → `arm64`, `x86_64` → `amd64`).
    fn canonical_architecture(&self) -> &str {
        match self.architecture.as_str() {
            "aarch64" => "arm64",
            "x86_64" | "x86-64" => "amd64",
            "armhf" => "arm",
            other => other,
        }
    }

    /// The variant, or the architecture's default when unset (as containerd normalizes them).
    fn effective_variant(&self) -> Option<&str> {
        self.variant
            .as_deref()
            .or(match self.canonical_architecture() {
                "arm64" => Some("v8"),
                "arm" => Some("v7"),
                "amd64" => Some("v1"),
                _ => None,
            })
    }

    /// Whether an index entry for `offered` serves a node that requires `self`. A required
    /// platform without a variant accepts any variant; one with a variant needs that variant,
    /// counting an unset variant as the architecture's default (`linux/arm64` is `v8`).
    pub fn is_served_by(&self, offered: &Platform) -> bool {
        self.os.eq_ignore_ascii_case(&offered.os)
            && self.canonical_architecture() == offered.canonical_architecture()
            && (self.variant.is_none() || self.effective_variant() == offered.effective_variant())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    media_type: Option<String>,
    manifests: Option<Vec<Entry>>,
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Entry {
    platform: Option<EntryPlatform>,
}

#[derive(Deserialize)]
struct EntryPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// Decides the digest to pin for a mutable tag, from its manifest as served.
///
/// * `manifest`: the raw bytes the registry served for the tag.
/// * `media_type`: the `Content-Type` it served them with (parameters are ignored; when it is
///   missing or generic, the document's own `mediaType` decides, then its shape).
/// * `digest`: the sha256 of `manifest`, computed by the caller.
/// * `required`: platforms that must be present.
///
/// An index pins its own digest once every required platform is listed. A single manifest pins
/// its digest only when nothing is required: its platform is in the config blob, and a single
/// platform cannot satisfy a requirement written for a multi-arch fleet.
pub fn pick_index_digest(
    manifest: &[u8],
    media_type: &str,
    digest: &str,
    required: &[Platform],
) -> Result<DigestPin, PlatformError> {
    if !is_digest(digest) {
        return Err(PlatformError::InvalidDigest {
            digest: digest.to_owned(),
        });
    }
    let doc: Document =
        serde_json::from_slice(manifest).map_err(|e| PlatformError::InvalidJson {
            reason: e.to_string(),
        })?;
    if !is_index(media_type, &doc)? {
        if !required.is_empty() {
            return Err(PlatformError::NotAnIndex {
                required: required.to_vec(),
            });
        }
        return Ok(DigestPin {
            digest: digest.to_owned(),
            platforms: Vec::new(),
            is_index: false,
        });
    }
    let available: Vec<Platform> = doc
        .manifests
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.platform)
        // buildx lists attestation manifests as `unknown/unknown`; they run nowhere.
        .filter(|p| p.os != "unknown" && p.architecture != "unknown")
        .map(|p| Platform {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant.filter(|v| !v.is_empty()),
        })
        .collect();
    if available.is_empty() {
        return Err(PlatformError::EmptyIndex);
    }
    let missing: Vec<Platform> = required
        .iter()
        .filter(|r| !available.iter().any(|a| r.is_served_by(a)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PlatformError::MissingPlatforms { missing, available });
    }
    Ok(DigestPin {
        digest: digest.to_owned(),
        platforms: available,
        is_index: true,
    })
}

/// Whether the document is an index (true) or a single manifest (false).
fn is_index(header: &str, doc: &Document) -> Result<bool, PlatformError> {
    let kind = |mt: &str| -> Result<Option<bool>, PlatformError> {
        let mt = mt
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mt.as_str() {
            "" | "application/json" | "application/octet-stream" => Ok(None),
            t if INDEX_TYPES.contains(&t) => Ok(Some(true)),
            t if MANIFEST_TYPES.contains(&t) => Ok(Some(false)),
            _ => Err(PlatformError::UnsupportedMediaType { media_type: mt }),
        }
    };
    let from_header = kind(header)?;
    let from_body = doc.media_type.as_deref().map(kind).transpose()?.flatten();
    match (from_header, from_body) {
        (Some(h), Some(b)) if h != b => Err(PlatformError::MediaTypeMismatch {
            header: header.to_owned(),
            body: doc.media_type.clone().unwrap_or_default(),
        }),
        (Some(k), _) | (None, Some(k)) => Ok(k),
        (None, None) if doc.manifests.is_some() => Ok(true),
        (None, None) if doc.config.is_some() => Ok(false),
        (None, None) => Err(PlatformError::UnsupportedMediaType {
            media_type: header.to_owned(),
        }),
    }
}

/// `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
fn is_digest(digest: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match digest.split_once(':') {
        Some(("sha256", h)) => hex(h, 64),
        Some(("sha512", h)) => hex(h, 128),
        _ => false,
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
