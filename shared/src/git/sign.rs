//! SSH signatures of commits, as `git -c gpg.format=ssh commit -S` makes them: the commit
//! object carries a `gpgsig` header holding an armored sshsig signature (namespace `git`,
//! hash SHA-512) of the commit without that header. `git verify-commit` checks it against an
//! allowed-signers file (`<email> <public key>` a line); GitHub, GitLab and Gitea show such
//! commits as verified once the public key is registered as a signing key.
//!
//! The key comes from a Kubernetes Secret ([`CommitSigner::from_secret_data`]), with the same
//! key names as the git credentials' Secret (Flux's):
//!
//! | key | meaning |
//! | --- | --- |
//! | `identity` | the OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`): ed25519, RSA, ECDSA P-256/P-384 |
//! | `ssh-privatekey` | the same, as in a `kubernetes.io/ssh-auth` Secret (when there is no `identity`) |
//! | `password` | the key's passphrase, when it is encrypted |
//!
//! The key is held in memory only; `Debug` and every error show its fingerprint at most.

use std::collections::BTreeMap;
use std::fmt;

use ssh_key::private::RsaKeypair;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, Signature, SshSig};

use super::auth::SecretError;

/// The namespace git signs commits and tags in (`gpg.ssh` signatures are made with
/// `ssh-keygen -Y sign -n git`).
pub const GIT_NAMESPACE: &str = "git";

/// The header of a commit object that holds its signature.
pub const SIGNATURE_HEADER: &str = "gpgsig";

/// A private key that signs commits. `Debug` prints the key's algorithm and fingerprint only.
#[derive(Clone)]
pub struct CommitSigner {
    key: PrivateKey,
}

impl fmt::Debug for CommitSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitSigner")
            .field("algorithm", &self.key.algorithm().as_str())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl CommitSigner {
    /// From an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), decrypted with
    /// `passphrase` when it is encrypted. The error is a reason for the operator; it never
    /// holds key material.
    pub fn from_openssh(text: &str, passphrase: Option<&str>) -> Result<CommitSigner, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the private key is empty".into());
        }
        if !text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let kind = if text.starts_with("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
                "a PEM private key"
            } else if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
                "a public key"
            } else {
                "not a private key"
            };
            return Err(format!(
                "{kind}, not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----); \
                 convert a PEM key with `ssh-keygen -p -f <file>`"
            ));
        }
        let key = PrivateKey::from_openssh(text)
            .map_err(|e| format!("the OpenSSH private key cannot be read ({e})"))?;
        let key = match (key.is_encrypted(), passphrase.filter(|p| !p.is_empty())) {
            (false, _) => key,
            (true, None) => {
                return Err(
                    "the private key is encrypted; put its passphrase in `password`, \
                     or remove it with `ssh-keygen -p -N '' -f <file>`"
                        .into(),
                );
            }
            (true, Some(p)) => key
                .decrypt(p)
                .map_err(|_| "the passphrase in `password` does not decrypt the private key")?,
        };
        let signer = CommitSigner { key };
        // A key of an algorithm this build cannot sign with fails now, not at the first commit.
        signer
            .sign(b"sluice: probe")
            .map_err(|e| format!("the private key cannot sign: {e}"))?;
        Ok(signer)
    }

    /// From the `data` of a Kubernetes Secret; see the module docs for the keys.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<CommitSigner, SecretError> {
        let (key_name, bytes) = ["identity", "ssh-privatekey"]
            .iter()
            .find_map(|k| data.get(*k).map(|v| (*k, v)))
            .ok_or_else(|| SecretError {
                key: "identity".into(),
                reason: "missing: the Secret must hold the OpenSSH private key to sign with".into(),
            })?;
        let text = std::str::from_utf8(bytes).map_err(|_| SecretError {
            key: key_name.into(),
            reason: "not UTF-8 text".into(),
        })?;
        let passphrase = match data.get("password") {
            Some(p) => Some(std::str::from_utf8(p).map_err(|_| SecretError {
                key: "password".into(),
                reason: "not UTF-8 text".into(),
            })?),
            None => None,
        }
        .map(|p| p.trim_end_matches(['\n', '\r']));
        CommitSigner::from_openssh(text, passphrase).map_err(|reason| SecretError {
            key: key_name.into(),
            reason,
        })
    }

    /// The public key, OpenSSH one-line form (`ssh-ed25519 AAAA… comment`): what goes into an
    /// allowed-signers file or a forge's signing keys.
    pub fn public_key(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .unwrap_or_else(|_| self.fingerprint())
    }

    /// `SHA256:…`, as `ssh-keygen -l` shows it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The armored signature (`-----BEGIN SSH SIGNATURE-----…`) of `buffer` (a commit object
    /// without its signature header), as git puts it into `gpgsig`.
    pub fn sign(&self, buffer: &[u8]) -> Result<String, String> {
        let sig = match self.key.key_data().rsa() {
            Some(rsa) => sign_rsa(self.key.public_key().key_data(), rsa, buffer),
            None => self.key.sign(GIT_NAMESPACE, HashAlg::Sha512, buffer),
        }
        .map_err(|e| format!("signing failed ({e})"))?;
        sig.to_pem(LineEnding::LF)
            .map_err(|e| format!("the signature cannot be encoded ({e})"))
    }
}

/// An sshsig of `msg` by an RSA key (`rsa-sha2-512`). ssh-key 0.6.7's own RSA signing cannot be
/// used: it builds the private key from the primes `p, p` instead of `p, q`, which the `rsa`
/// crate refuses ("cryptographic error").
fn sign_rsa(public: &KeyData, pair: &RsaKeypair, msg: &[u8]) -> Result<SshSig, ssh_key::Error> {
    use rsa::signature::{SignatureEncoding, Signer};
    let int = |m: &ssh_key::Mpint| rsa::BigUint::try_from(m);
    let key = rsa::RsaPrivateKey::from_components(
        int(&pair.public.n)?,
        int(&pair.public.e)?,
        int(&pair.private.d)?,
        vec![int(&pair.private.p)?, int(&pair.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let signed = SshSig::signed_data(GIT_NAMESPACE, HashAlg::Sha512, msg)?;
    let signature = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(key)
        .try_sign(&signed)
        .map_err(|_| ssh_key::Error::Crypto)?;
    let signature = Signature::new(
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        signature.to_vec(),
    )?;
    SshSig::new(public.clone(), GIT_NAMESPACE, HashAlg::Sha512, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::PublicKey;
    use ssh_key::private::Ed25519Keypair;

    /// A throwaway key made from a fixed seed: no randomness in unit tests.
    fn ed25519(seed: u8) -> String {
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
        key.to_openssh(LineEnding::LF).unwrap().to_string()
    }

    /// Made with `ssh-keygen -t ed25519 -N 'correct horse' -C sluice-test`; a test key only.
    const ENCRYPTED: &str = include_str!("testdata/signing-encrypted.key");
    const ENCRYPTED_PUB: &str = include_str!("testdata/signing-encrypted.key.pub");

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    const BUFFER: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
        author Sluice <sluice@sluice.dev> 1700000000 +0000\n\
        committer Sluice <sluice@sluice.dev> 1700000000 +0000\n\nweb: 1.4.3\n";

    #[test]
    fn a_signature_verifies_against_the_public_key_in_the_git_namespace() {
        let signer = CommitSigner::from_openssh(&ed25519(7), None).unwrap();
        let armored = signer.sign(BUFFER).unwrap();
        assert!(
            armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"),
            "{armored}"
        );
        assert!(armored.trim_end().ends_with("-----END SSH SIGNATURE-----"));

        let public = PublicKey::from_openssh(&signer.public_key()).unwrap();
        let sig = SshSig::from_pem(&armored).unwrap();
        assert_eq!(sig.namespace(), GIT_NAMESPACE);
        assert_eq!(sig.hash_alg(), HashAlg::Sha512);
        public.verify(GIT_NAMESPACE, BUFFER, &sig).unwrap();
        assert!(
            public
                .verify(GIT_NAMESPACE, b"another commit", &sig)
                .is_err()
        );
        assert!(public.verify("file", BUFFER, &sig).is_err());
        let other = CommitSigner::from_openssh(&ed25519(8), None).unwrap();
        let other = PublicKey::from_openssh(&other.public_key()).unwrap();
        assert!(other.verify(GIT_NAMESPACE, BUFFER, &sig).is_err());
    }

    /// Made with `ssh-keygen -t rsa -b 2048 -N '' -C sluice-test`; a test key only.
    const RSA: &str = include_str!("testdata/signing-rsa.key");
    const RSA_PUB: &str = include_str!("testdata/signing-rsa.key.pub");

    #[test]
    fn an_rsa_key_signs_with_sha512() {
        let signer = CommitSigner::from_openssh(RSA, None).unwrap();
        let sig = SshSig::from_pem(signer.sign(BUFFER).unwrap()).unwrap();
        assert_eq!(
            sig.algorithm(),
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512)
            }
        );
        let public = PublicKey::from_openssh(RSA_PUB.trim()).unwrap();
        public.verify(GIT_NAMESPACE, BUFFER, &sig).unwrap();
        assert!(public.verify(GIT_NAMESPACE, b"tampered", &sig).is_err());
    }

    #[test]
    fn reads_the_key_from_a_secret_with_a_passphrase_when_encrypted() {
        let key = ed25519(9);
        let a = CommitSigner::from_secret_data(&data(&[("identity", &key)])).unwrap();
        let b = CommitSigner::from_secret_data(&data(&[("ssh-privatekey", &key)])).unwrap();
        assert_eq!(a.public_key(), b.public_key());

        let signer = CommitSigner::from_secret_data(&data(&[
            ("identity", ENCRYPTED),
            ("password", "correct horse\n"),
        ]))
        .unwrap();
        let wanted = PublicKey::from_openssh(ENCRYPTED_PUB.trim()).unwrap();
        let sig = SshSig::from_pem(signer.sign(BUFFER).unwrap()).unwrap();
        wanted.verify(GIT_NAMESPACE, BUFFER, &sig).unwrap();
    }

    #[test]
    fn unusable_keys_are_refused_with_a_reason_that_holds_no_key_material() {
        let cases = [
            (data(&[]), "identity", "missing"),
            (data(&[("identity", "")]), "identity", "empty"),
            (data(&[("identity", ENCRYPTED)]), "identity", "encrypted"),
            (
                data(&[("identity", ENCRYPTED), ("password", "wrong")]),
                "identity",
                "does not decrypt",
            ),
            (
                data(&[(
                    "identity",
                    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n",
                )]),
                "identity",
                "PEM private key",
            ),
            (
                data(&[("ssh-privatekey", ENCRYPTED_PUB)]),
                "ssh-privatekey",
                "a public key",
            ),
            (
                data(&[(
                    "identity",
                    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                )]),
                "identity",
                "cannot be read",
            ),
        ];
        for (secret, key, wanted) in cases {
            let e = CommitSigner::from_secret_data(&secret).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains(wanted), "{e}");
            assert!(!e.to_string().contains("b3BlbnNzaC1"), "{e}");
            assert!(!e.to_string().contains("correct horse"), "{e}");
        }
        let mut bad = BTreeMap::new();
        bad.insert("identity".to_string(), vec![0xff, 0xfe]);
        assert_eq!(
            CommitSigner::from_secret_data(&bad).unwrap_err().reason,
            "not UTF-8 text"
        );
    }

    #[test]
    fn debug_shows_the_fingerprint_never_the_key() {
        let key = ed25519(10);
        let signer = CommitSigner::from_openssh(&key, None).unwrap();
        let shown = format!("{signer:?} {signer:#?}");
        assert!(
            shown.contains("SHA256:") && shown.contains("ssh-ed25519"),
            "{shown}"
        );
        let body: String = key.lines().nth(1).unwrap().chars().take(40).collect();
        assert!(!shown.contains(&body), "{shown}");
    }
}
