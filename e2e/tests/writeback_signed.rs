//! Signed bump commits (`spec.git.commit.signingKeyRef`): the Config Updater pushes to the
//! world's git server a commit whose SSH signature the real `git verify-commit` accepts, with
//! the key as a Secret holds it (an unencrypted ed25519 key from `ssh-keygen -N ''`, an RSA key
//! with its passphrase in `password`, an ECDSA P-256 key); without a key the commit is unsigned
//! as before, and a signature by a key the allowed-signers file does not list is refused.

mod writeback_support;

use std::collections::BTreeMap;

use sluice_e2e::World;
use sluice_e2e::updater::signing::{clone_from_server, git, keygen, verify};
use sluice_shared::git::CommitSigner;
use writeback_support::{pushed, round, seed, signed_round};

const EMAIL: &str = "bot@sluice.dev";

/// The key as `kubectl create secret generic --from-file=identity=…` stores it.
fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[tokio::test]
async fn signed_bumps_verify_with_git_and_unsigned_ones_stay_unsigned() {
    let world = World::get();
    let (name, _) = seed(world, "wb-signed", &[]).await;
    let keys = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (ed_key, ed_pub) = keygen(keys.path(), "ed", &["-t", "ed25519"], "");
    let (rsa_key, rsa_pub) = keygen(
        keys.path(),
        "rsa",
        &["-t", "rsa", "-b", "3072"],
        "e2e passphrase",
    );
    let (ec_key, ec_pub) = keygen(keys.path(), "ec", &["-t", "ecdsa", "-b", "256"], "");
    let (_, stranger_pub) = keygen(keys.path(), "stranger", &["-t", "ed25519"], "");
    let sign = |tag: &'static str, signer: CommitSigner| {
        signed_round(world, &name, None, tag, work.path().into(), Some(signer))
    };

    // An unencrypted ed25519 key in `identity`.
    let signer = CommitSigner::from_secret_data(&secret(&[("identity", &ed_key)])).unwrap();
    assert_eq!(
        signer.public_key().split(' ').take(2).collect::<Vec<_>>(),
        ed_pub.split(' ').take(2).collect::<Vec<_>>()
    );
    let shown = format!("{signer:?}");
    assert!(!shown.contains("OPENSSH"), "{shown}");
    let first = pushed(
        sign("1.4.3", signer)
            .await
            .unwrap_or_else(|e| panic!("push_update_signed: {e}")),
    );

    // An RSA key with its passphrase, as a kubernetes.io/ssh-auth Secret plus `password`.
    let signer = CommitSigner::from_secret_data(&secret(&[
        ("ssh-privatekey", &rsa_key),
        ("password", "e2e passphrase\n"),
    ]))
    .unwrap();
    let second = pushed(sign("1.4.4", signer).await.unwrap());

    // An ECDSA P-256 key.
    let signer = CommitSigner::from_secret_data(&secret(&[("identity", &ec_key)])).unwrap();
    let ecdsa = pushed(sign("1.4.5", signer).await.unwrap());

    // No signing key: unsigned, as before.
    let third = pushed(
        round(world, &name, None, "1.4.6", work.path().into())
            .await
            .unwrap(),
    );

    // A clone of the server's repository with the real git CLI.
    let clones = tempfile::tempdir().unwrap();
    let clone = clone_from_server(world, &name, clones.path());
    let head = String::from_utf8(git(&clone, &["rev-parse", "HEAD"]).stdout).unwrap();
    assert_eq!(head.trim(), third);
    let cat = String::from_utf8(git(&clone, &["cat-file", "commit", &first]).stdout).unwrap();
    assert!(
        cat.contains("\ngpgsig -----BEGIN SSH SIGNATURE-----\n"),
        "{cat}"
    );

    let allowed = format!("{EMAIL} {ed_pub}{EMAIL} {rsa_pub}{EMAIL} {ec_pub}");
    let (ok, said) = verify(&clone, &allowed, &first);
    assert!(ok, "the ed25519-signed commit verifies: {said}");
    assert!(
        said.contains(&format!("Good \"git\" signature for {EMAIL}")),
        "{said}"
    );
    let (ok, said) = verify(&clone, &allowed, &second);
    assert!(ok, "the RSA-signed commit verifies: {said}");
    assert!(said.contains("RSA key"), "{said}");
    let (ok, said) = verify(&clone, &allowed, &ecdsa);
    assert!(ok, "the ECDSA-signed commit verifies: {said}");
    assert!(said.contains("ECDSA key"), "{said}");

    let (ok, said) = verify(&clone, &allowed, &third);
    assert!(!ok, "an unsigned commit does not verify: {said}");
    let cat = String::from_utf8(git(&clone, &["cat-file", "commit", &third]).stdout).unwrap();
    assert!(!cat.contains("gpgsig"), "{cat}");

    let (ok, said) = verify(&clone, &format!("{EMAIL} {stranger_pub}"), &first);
    assert!(
        !ok,
        "a key the allowed signers do not list is refused: {said}"
    );
}

#[tokio::test]
async fn an_encrypted_key_without_its_passphrase_is_refused_before_any_push() {
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = keygen(keys.path(), "locked", &["-t", "ed25519"], "s3cret");
    let e = CommitSigner::from_secret_data(&secret(&[("identity", &key)])).unwrap_err();
    assert_eq!(e.key, "identity");
    assert!(e.reason.contains("encrypted"), "{e}");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!e.to_string().contains(line), "{e}");
    }
}
