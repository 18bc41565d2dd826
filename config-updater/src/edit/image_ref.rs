//! Image references: `[registry[:port]/]path[:tag][@algorithm:digest]`, split and rebuilt so a
//! marker that holds a whole reference can get a new tag or digest and keep everything else.
//!
//! The one trap: `127.0.0.1:15000/demo/app:1.4.2` has two colons, and the first is a port. A tag
//! can only follow the last `/`, so we look for it there, as Docker's reference grammar does.

use std::fmt;
use std::str::FromStr;

use super::ImagePart;

/// A parsed image reference. `name` includes the registry and port as written (no `docker.io/`
/// or `library/` is added: we rewrite what the user wrote, not a normalised form).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("{reference:?} is not an image reference: {reason}")]
    Invalid { reference: String, reason: String },
}

impl ImageRef {
    /// Parse and validate a reference.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        let invalid = |reason: String| ImageRefError::Invalid {
            reference: reference.to_string(),
            reason,
        };
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => (
                &rest[..last_slash + colon],
                Some(&rest[last_slash + colon + 1..]),
            ),
            None => (rest, None),
        };
        validate_name(name).map_err(invalid)?;
        if let Some(tag) = tag {
            validate_tag(tag).map_err(invalid)?;
        }
        if let Some(digest) = digest {
            validate_digest(digest).map_err(invalid)?;
        }
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Build a reference from parts, validating each.
    pub fn new(name: &str, tag: Option<&str>, digest: Option<&str>) -> Result<Self, ImageRefError> {
        let mut s = name.to_string();
        if let Some(tag) = tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = digest {
            s.push('@');
            s.push_str(digest);
        }
        let parsed = ImageRef::parse(&s)?;
        if parsed.name != name || parsed.tag.as_deref() != tag {
            return Err(ImageRefError::Invalid {
                reference: s,
                reason: "the name and tag do not split back as given".to_string(),
            });
        }
        Ok(parsed)
    }

    /// The repository with its registry, as written: `127.0.0.1:15000/demo/app`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// `sha256:…`
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The registry host (and port), when the first path component is one: it contains `.` or
    /// `:`, or is `localhost`.
    pub fn registry(&self) -> Option<&str> {
        let (first, _) = self.name.split_once('/')?;
        (first.contains(['.', ':']) || first == "localhost").then_some(first)
    }

    /// The same repository at another tag. Any digest is dropped: it pinned the old tag's image.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageRefError> {
        ImageRef::new(&self.name, Some(tag), None)
    }

    /// The same repository and tag, pinned to `digest` (`sha256:…`).
    pub fn with_digest(&self, digest: &str) -> Result<Self, ImageRefError> {
        ImageRef::new(&self.name, self.tag.as_deref(), Some(digest))
    }

    /// Another repository, same tag and digest (a `:name` marker's job).
    pub fn with_name(&self, name: &str) -> Result<Self, ImageRefError> {
        ImageRef::new(name, self.tag.as_deref(), self.digest.as_deref())
    }

    /// The text a value holding `part` of this reference should have: the whole reference, the
    /// name, the tag or the digest. `None` when this reference has no such part.
    pub fn part(&self, part: ImagePart) -> Option<String> {
        match part {
            ImagePart::Whole => Some(self.to_string()),
            ImagePart::Name => Some(self.name.clone()),
            ImagePart::Tag => self.tag.clone(),
            ImagePart::Digest => self.digest.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".to_string());
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" {
            validate_registry(first)?;
            components.remove(0);
        }
    }
    for component in components {
        if !is_path_component(component) {
            return Err(format!(
                "the repository path component {component:?} must be lowercase letters and digits \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

/// `host[:port]`, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an unclosed '[' in the registry")?;
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("{registry:?} is not a valid registry address"));
        }
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').unwrap_or("")),
        };
        (None, port)
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(format!("{registry:?} is not a valid registry host"));
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("{registry:?} has an invalid port"));
    }
    Ok(())
}

fn is_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any number of '-', between alphanumerics.
    let mut run = 0usize;
    let mut run_kind = 0u8;
    for &b in bytes {
        if alnum(b) {
            run = 0;
            continue;
        }
        if run > 0 && b != run_kind {
            return false;
        }
        run_kind = b;
        run += 1;
        let ok = match b {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A tag: up to 128 word characters, dots and dashes, not starting with a dot or dash.
fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.len() <= 128
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

/// `algorithm:encoded`; sha256 and sha512 digests must have their exact lowercase hex length.
fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(format!(
            "the digest {digest:?} must look like sha256:<64 hex digits>"
        ));
    };
    let hex = |n: usize| {
        encoded.len() == n
            && encoded
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    let ok = match algorithm {
        "sha256" => hex(64),
        "sha512" => hex(128),
        _ => {
            !algorithm.is_empty()
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
                && encoded.len() >= 32
                && encoded
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the digest {digest:?} must look like sha256:<64 lowercase hex digits>"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const D2: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn parts(s: &str) -> (String, Option<String>, Option<String>) {
        let r = ImageRef::parse(s).unwrap_or_else(|e| panic!("{e}"));
        (
            r.name().into(),
            r.tag().map(Into::into),
            r.digest().map(Into::into),
        )
    }

    #[test]
    fn a_port_is_not_a_tag() {
        assert_eq!(
            parts("127.0.0.1:15000/demo/app:1.4.2"),
            (
                "127.0.0.1:15000/demo/app".into(),
                Some("1.4.2".into()),
                None
            )
        );
        assert_eq!(
            parts("127.0.0.1:15000/demo/app"),
            ("127.0.0.1:15000/demo/app".into(), None, None)
        );
        assert_eq!(
            parts("localhost:5000/app"),
            ("localhost:5000/app".into(), None, None)
        );
        assert_eq!(
            ImageRef::parse("127.0.0.1:15000/demo/app:1.4.2")
                .unwrap()
                .registry(),
            Some("127.0.0.1:15000")
        );
        assert_eq!(
            ImageRef::parse("[::1]:5000/app:1").unwrap().registry(),
            Some("[::1]:5000")
        );
    }

    #[test]
    fn tags_and_digests() {
        assert_eq!(parts("nginx"), ("nginx".into(), None, None));
        assert_eq!(
            parts("ghcr.io/org/app:v1.2.3-rc.1"),
            ("ghcr.io/org/app".into(), Some("v1.2.3-rc.1".into()), None)
        );
        assert_eq!(
            parts(&format!("ghcr.io/org/app:1.0@{D1}")),
            (
                "ghcr.io/org/app".into(),
                Some("1.0".into()),
                Some(D1.into())
            )
        );
        assert_eq!(
            parts(&format!("ghcr.io/org/app@{D1}")),
            ("ghcr.io/org/app".into(), None, Some(D1.into()))
        );
        assert_eq!(ImageRef::parse("nginx").unwrap().registry(), None);
        assert_eq!(ImageRef::parse("library/nginx:1").unwrap().registry(), None);
    }

    #[test]
    fn rebuild_with_new_tag_or_digest() {
        let r = ImageRef::parse(&format!("127.0.0.1:15000/demo/app:1.4.2@{D1}")).unwrap();
        // A new tag drops the digest of the old tag's image.
        assert_eq!(
            r.with_tag("1.4.3").unwrap().to_string(),
            "127.0.0.1:15000/demo/app:1.4.3"
        );
        assert_eq!(
            r.with_digest(D2).unwrap().to_string(),
            format!("127.0.0.1:15000/demo/app:1.4.2@{D2}")
        );
        let pinned = r.with_tag("1.4.3").and_then(|r| r.with_digest(D2)).unwrap();
        assert_eq!(
            pinned.to_string(),
            format!("127.0.0.1:15000/demo/app:1.4.3@{D2}")
        );
        assert_eq!(
            r.with_name("ghcr.io/org/app").unwrap().to_string(),
            format!("ghcr.io/org/app:1.4.2@{D1}")
        );
        assert_eq!(pinned.part(ImagePart::Tag).as_deref(), Some("1.4.3"));
        assert_eq!(
            pinned.part(ImagePart::Name).as_deref(),
            Some("127.0.0.1:15000/demo/app")
        );
        assert_eq!(pinned.part(ImagePart::Digest).as_deref(), Some(D2));
        assert_eq!(ImageRef::parse("app").unwrap().part(ImagePart::Tag), None);
    }

    #[test]
    fn invalid_references_are_refused() {
        for bad in [
            "",
            "App:1",
            "app:",
            "app:.hidden",
            "app:1 2",
            "app@sha256:123",
            "app@md5",
            "bad host:1/app",
            "127.0.0.1:port/app",
            "a..b",
            "app:1@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(ImageRef::parse("app").unwrap().with_tag("a:b").is_err());
        assert!(ImageRef::parse("app").unwrap().with_tag("").is_err());
    }
}
