//! How to reach one image repository: the address, credentials, trust, interval and exclusions.
//! Pure types (they become the `ImageRepository` custom resource's spec) and their validation.

use std::time::Duration;

use regex::RegexSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ScanError;

/// Tags matching these are not stored: cosign signature tags. The same default as the policy
/// module's (`policy::DEFAULT_EXCLUSIONS`), kept as its own constant so scanning does not depend on
/// the policy code; a unit test pins the value.
pub const DEFAULT_EXCLUSIONS: &[&str] = &[r"^.*\.sig$"];

/// The scan interval when none is given.
pub const DEFAULT_INTERVAL: &str = "5m";

/// Docker Hub as people write it, and the host its registry API actually answers on.
pub use sluice_shared::registry_auth::DOCKER_HUB;
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Where and how to scan one image repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryAccess {
    /// `registry/path/repo` without tag or digest; Docker Hub short names (`nginx`,
    /// `bitnami/redis`) are accepted and mean `docker.io/library/nginx`, `docker.io/bitnami/redis`.
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret in the same namespace; its `.dockerconfigjson`
    /// `auths` entry for this registry is used. Anonymous when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// A Secret holding the PEM CA bundle (key `ca.crt` unless `key` says otherwise) to trust on
    /// top of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeyRef>,
    /// Plain HTTP. Only for loopback or in-cluster registries without TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// How often to scan when no webhook arrives (`30s`, `5m`, `1h30m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Regexes of tags not to store; replaces the default `["^.*\\.sig$"]` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
}

fn default_interval() -> String {
    DEFAULT_INTERVAL.to_owned()
}

/// A Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    /// Default `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretKeyRef {
    pub fn key_or_default(&self) -> &str {
        self.key.as_deref().unwrap_or("ca.crt")
    }
}

impl RegistryAccess {
    /// Access to `image` with every default: anonymous, system roots, HTTPS, 5m, `^.*\.sig$`.
    pub fn new(image: impl Into<String>) -> Self {
        RegistryAccess {
            image: image.into(),
            secret_ref: None,
            cert_secret_ref: None,
            insecure: false,
            interval: default_interval(),
            exclusion_list: None,
        }
    }

    /// The exclusion regexes in force (the default unless the list is given).
    pub fn exclusions(&self) -> Vec<String> {
        match &self.exclusion_list {
            Some(list) => list.clone(),
            None => DEFAULT_EXCLUSIONS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<ValidAccess, ScanError> {
        let image = ImageName::parse(&self.image)?;
        let interval = parse_interval(&self.interval)?;
        let exclusion_patterns = self.exclusions();
        let exclusions = compile_exclusions(&exclusion_patterns)?;
        Ok(ValidAccess {
            image,
            interval,
            exclusions,
            exclusion_patterns,
            insecure: self.insecure,
        })
    }
}

/// A [`RegistryAccess`] that passed [`RegistryAccess::validate`].
#[derive(Clone, Debug)]
pub struct ValidAccess {
    pub image: ImageName,
    pub interval: Duration,
    pub exclusions: Option<RegexSet>,
    /// The patterns `exclusions` was compiled from.
    pub exclusion_patterns: Vec<String>,
    pub insecure: bool,
}

/// A normalized repository name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// As written in image references after normalization: `docker.io`, `ghcr.io`,
    /// `127.0.0.1:5000`. Credentials are looked up under this name.
    pub registry: String,
    /// `library/nginx`, `org/team/app`.
    pub repository: String,
}

impl ImageName {
    /// Parses `registry/path/repo`, normalizing Docker Hub short names. A tag or digest is refused:
    /// the repository is what is scanned.
    pub fn parse(text: &str) -> Result<Self, ScanError> {
        let invalid = |reason: &str| ScanError::InvalidImage {
            image: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.contains("://") {
            return Err(invalid(
                "write the registry host without a scheme (use `insecure: true` for plain HTTP)",
            ));
        }
        if trimmed.contains('@') {
            return Err(invalid(
                "a digest is not a repository; drop the `@sha256:…` part",
            ));
        }
        let (first, rest) = match trimmed.split_once('/') {
            // Like docker: the first part is a host when it has a dot or a port, or is localhost.
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), trimmed.to_owned()),
        };
        let registry = match first.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
            _ => first,
        };
        if rest
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            return Err(invalid("a tag is not a repository; drop the `:tag` part"));
        }
        let repository = if registry == DOCKER_HUB && !rest.contains('/') {
            format!("library/{rest}")
        } else {
            rest
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(invalid(
                "path components are lowercase letters, digits and separators `.`, `_`, `-`",
            ));
        }
        Ok(ImageName {
            registry,
            repository,
        })
    }

    /// The host the registry API answers on: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// An oci-client reference to `tag` of this repository, addressed to the API host.
    pub fn reference(&self, tag: &str) -> oci_client::Reference {
        oci_client::Reference::with_tag(
            self.api_host().to_owned(),
            self.repository.clone(),
            tag.to_owned(),
        )
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// Compiles the exclusions into one set; `None` when there are none.
pub fn compile_exclusions(patterns: &[String]) -> Result<Option<RegexSet>, ScanError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for pattern in patterns {
        regex::Regex::new(pattern).map_err(|e| ScanError::InvalidExclusion {
            pattern: pattern.clone(),
            reason: e.to_string(),
        })?;
    }
    RegexSet::new(patterns)
        .map(Some)
        .map_err(|e| ScanError::InvalidExclusion {
            pattern: patterns.join(" | "),
            reason: e.to_string(),
        })
}

/// `30s`, `5m`, `1h30m`, `500ms`; at least one second.
pub fn parse_interval(text: &str) -> Result<Duration, ScanError> {
    match sluice_shared::duration::parse(text) {
        Ok(interval) if interval >= Duration::from_secs(1) => Ok(interval),
        _ => Err(ScanError::InvalidInterval {
            interval: text.to_owned(),
        }),
    }
}
