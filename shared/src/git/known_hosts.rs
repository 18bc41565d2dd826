//! OpenSSH `known_hosts`, enough to enforce it when libgit2 connects over SSH.
//!
//! libgit2 hands the server's host key to `RemoteCallbacks::certificate_check`; [`KnownHosts`]
//! answers whether that key is the one recorded for the host. Understood: plain host patterns
//! (`host`, `[host]:port`, comma-separated lists, `*`/`?` wildcards, `!` negation) and hashed
//! ones (`|1|salt|hmac`, as `ssh-keyscan -H` writes). `@revoked` lines reject the key;
//! `@cert-authority` lines are skipped (host certificates are not used here).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use sha2::Digest;

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub patterns: Vec<String>,
    pub key_type: String,
    /// The key blob, as base64-decoded from the file; what libgit2 calls the raw host key.
    pub key: Vec<u8>,
    pub revoked: bool,
}

/// The host keys Sluice trusts for SSH remotes.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    /// Where the entries came from (a file, a Secret's key), named in refusals.
    pub source: Option<String>,
    pub entries: Vec<Entry>,
}

/// The name a host goes by in known_hosts: `host` on port 22, else `[host]:port`.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:<base64>`, the fingerprint `ssh-keygen -l` prints for a key blob.
pub fn fingerprint(key: &[u8]) -> String {
    fingerprint_of_hash(&sha2::Sha256::digest(key).into())
}

fn fingerprint_of_hash(hash: &[u8; 32]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

impl KnownHosts {
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        let text = std::fs::read_to_string(path)?;
        Ok(KnownHosts {
            source: Some(path.display().to_string()),
            ..KnownHosts::parse(&text)
        })
    }

    pub fn parse(text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace().peekable();
            let mut revoked = false;
            match fields.peek().copied() {
                Some("@revoked") => {
                    revoked = true;
                    fields.next();
                }
                Some(m) if m.starts_with('@') => continue,
                _ => {}
            }
            let (Some(hosts), Some(key_type), Some(key)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(key) = B64.decode(key) else { continue };
            entries.push(Entry {
                patterns: hosts.split(',').map(str::to_string).collect(),
                key_type: key_type.to_string(),
                key,
                revoked,
            });
        }
        KnownHosts {
            source: None,
            entries,
        }
    }

    /// The same entries, named `source` in refusals (e.g. "key known_hosts of Secret ns/name").
    pub fn with_source(mut self, source: impl Into<String>) -> KnownHosts {
        self.source = Some(source.into());
        self
    }

    /// The name of where the entries came from, for messages.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or("known_hosts")
    }

    /// The entries that name `host` on `port`.
    pub fn entries_for(&self, host: &str, port: u16) -> Vec<&Entry> {
        let name = host_pattern(host, port);
        self.entries
            .iter()
            .filter(|e| entry_matches(e, &name))
            .collect()
    }

    /// Whether the host key libgit2 was offered for `host:port` is the one recorded. `Err` tells
    /// why not, in words fit for the error of a failed fetch.
    pub fn verify(
        &self,
        host: &str,
        port: u16,
        cert: &git2::cert::CertHostkey<'_>,
    ) -> Result<(), String> {
        let offered = OfferedKey {
            key_type: cert.hostkey_type().map(|t| t.name()),
            raw: cert.hostkey(),
            sha256: cert.hash_sha256().copied(),
        };
        self.verify_offered(host, port, &offered)
    }

    /// [`KnownHosts::verify`] on the parts of the key the server offered.
    pub fn verify_offered(
        &self,
        host: &str,
        port: u16,
        offered: &OfferedKey<'_>,
    ) -> Result<(), String> {
        let name = host_pattern(host, port);
        let file = self.source_name();
        let offered_type = offered.key_type;
        let offered_fp = match (offered.raw, &offered.sha256) {
            (Some(raw), _) => fingerprint(raw),
            (None, Some(h)) => fingerprint_of_hash(h),
            (None, None) => {
                return Err(format!(
                    "host key verification failed for {name}: the server's host key is unknown to libgit2 (neither raw key nor SHA-256)"
                ));
            }
        };
        let same_key = |e: &Entry| match (offered.raw, &offered.sha256) {
            (Some(raw), _) => raw == e.key.as_slice(),
            (None, Some(h)) => sha2::Sha256::digest(&e.key).as_slice() == h.as_slice(),
            (None, None) => false,
        };
        let entries = self.entries_for(host, port);
        if entries.iter().any(|e| e.revoked && same_key(e)) {
            return Err(format!(
                "host key verification failed: the host key of {name} ({offered_fp}) is marked @revoked in {file}"
            ));
        }
        let known: Vec<_> = entries.iter().filter(|e| !e.revoked).collect();
        if known.is_empty() {
            return Err(format!(
                "host key verification failed: {name} is not in {file} (it offered the host key {} {offered_fp})",
                offered_type.unwrap_or("?")
            ));
        }
        if known
            .iter()
            .any(|e| same_key(e) && offered_type.is_none_or(|t| t == e.key_type))
        {
            return Ok(());
        }
        Err(format!(
            "host key verification failed: the host key of {name} ({} {offered_fp}) does not match {file}, which records {}",
            offered_type.unwrap_or("?"),
            known
                .iter()
                .map(|e| format!("{} {}", e.key_type, fingerprint(&e.key)))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The host key a server offered, as libgit2 describes it: its type, and the raw key or at least
/// its SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct OfferedKey<'a> {
    /// `ssh-ed25519`, `ssh-rsa`, …, when libgit2 knows it.
    pub key_type: Option<&'a str>,
    pub raw: Option<&'a [u8]>,
    pub sha256: Option<[u8; 32]>,
}

fn entry_matches(entry: &Entry, name: &str) -> bool {
    let mut matched = false;
    for p in &entry.patterns {
        let (negated, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p.as_str()),
        };
        let hit = if let Some(hashed) = p.strip_prefix("|1|") {
            hashed_matches(hashed, name)
        } else {
            glob(p.as_bytes(), name.as_bytes())
        };
        if hit && negated {
            return false;
        }
        matched |= hit;
    }
    matched
}

/// `salt|hash`, both base64: HMAC-SHA1 of the name keyed by the salt.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` wildcards, as in ssh's match_pattern.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn finds_hosts_on_other_ports_plain_and_hashed() {
        // The hashed line is `ssh-keyscan -H -p 12222 127.0.0.1` for the same key.
        let salt = B64.encode(b"0123456789abcdefghij");
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"0123456789abcdefghij").unwrap();
        mac.update(b"[127.0.0.1]:12222");
        let hash = B64.encode(mac.finalize().into_bytes());
        let text = format!(
            "# comment\n[127.0.0.1]:12222 ssh-ed25519 {KEY} world\n|1|{salt}|{hash} ssh-ed25519 {KEY}\nother,*.example ssh-rsa {KEY}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.entries.len(), 3);
        assert_eq!(kh.entries_for("127.0.0.1", 12222).len(), 2);
        assert_eq!(kh.entries_for("127.0.0.1", 22).len(), 0);
        assert_eq!(kh.entries_for("git.example", 22).len(), 1);
        assert_eq!(kh.entries_for("other", 22).len(), 1);
        assert_eq!(
            kh.entries_for("127.0.0.1", 12222)[0].key,
            B64.decode(KEY).unwrap()
        );
        assert!(fingerprint(&kh.entries[0].key).starts_with("SHA256:"));
    }

    fn offered(key: &[u8]) -> OfferedKey<'_> {
        OfferedKey {
            key_type: Some("ssh-ed25519"),
            raw: Some(key),
            sha256: None,
        }
    }

    #[test]
    fn verifies_the_recorded_key_and_says_why_others_are_refused() {
        let key = B64.decode(KEY).unwrap();
        let kh = KnownHosts::parse(&format!("[git.example]:2222 ssh-ed25519 {KEY}\n"))
            .with_source("key known_hosts of Secret ns/creds");
        assert_eq!(
            kh.verify_offered("git.example", 2222, &offered(&key)),
            Ok(())
        );
        // Only the SHA-256 of the key, as some libssh2 builds offer.
        let by_hash = OfferedKey {
            key_type: None,
            raw: None,
            sha256: Some(sha2::Sha256::digest(&key).into()),
        };
        assert_eq!(kh.verify_offered("git.example", 2222, &by_hash), Ok(()));

        let unknown = kh
            .verify_offered("git.example", 22, &offered(&key))
            .unwrap_err();
        assert!(
            unknown.contains("git.example is not in key known_hosts of Secret ns/creds"),
            "{unknown}"
        );
        assert!(
            unknown.contains(&format!("ssh-ed25519 {}", fingerprint(&key))),
            "{unknown}"
        );

        let other = [7u8; 51];
        let changed = kh
            .verify_offered("git.example", 2222, &offered(&other))
            .unwrap_err();
        assert!(changed.contains("[git.example]:2222"), "{changed}");
        assert!(
            changed.contains("does not match key known_hosts of Secret ns/creds"),
            "{changed}"
        );
        assert!(changed.contains(&fingerprint(&other)), "{changed}");
        assert!(
            changed.contains(&fingerprint(&key)),
            "names the recorded key: {changed}"
        );
    }

    #[test]
    fn a_revoked_key_is_refused_even_when_also_listed() {
        let key = B64.decode(KEY).unwrap();
        let kh = KnownHosts::parse(&format!(
            "git.example ssh-ed25519 {KEY}\n@revoked git.example ssh-ed25519 {KEY}\n@cert-authority *.example ssh-ed25519 {KEY}\n"
        ));
        assert_eq!(kh.entries.len(), 2, "the @cert-authority line is skipped");
        let why = kh
            .verify_offered("git.example", 22, &offered(&key))
            .unwrap_err();
        assert!(why.contains("@revoked in known_hosts"), "{why}");
    }

    #[test]
    fn negated_patterns_exclude_a_host() {
        let kh = KnownHosts::parse(&format!("*.example,!evil.example ssh-ed25519 {KEY}\n"));
        assert_eq!(kh.entries_for("git.example", 22).len(), 1);
        assert!(kh.entries_for("evil.example", 22).is_empty());
    }
}
