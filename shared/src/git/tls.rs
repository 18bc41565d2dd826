//! Extra certificate authorities for https remotes.
//!
//! libgit2 (with OpenSSL) checks a server's certificate against the system's CAs and one
//! process-wide store. Sluice needs a CA per source (the `ca.crt` of its Secret), so the check
//! is done again in the certificate callback: when the source has [`CaCerts`], the server's
//! certificate is verified against them (chain, validity period, server-auth usage, host name or
//! IP) with webpki, and accepted when it passes. When it does not, libgit2's own verdict against
//! the system CAs stands. Only the server's own certificate reaches the callback, so a private
//! CA's intermediates must be in the same `ca.crt` bundle.
//!
//! [`trust_ca_file_process_wide`] is the other way: it adds a CA file to libgit2's process-wide
//! store, for every remote of the process.

use std::path::Path;
use std::sync::Mutex;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::GitError;

/// CA certificates (PEM bundle) trusted for the https remotes of one source, besides the
/// system's.
#[derive(Clone)]
pub struct CaCerts {
    certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for CaCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaCerts({} certificates)", self.certs.len())
    }
}

impl CaCerts {
    /// Every `CERTIFICATE` block of `pem`; at least one is needed.
    pub fn from_pem(pem: &[u8]) -> Result<CaCerts, String> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        if certs.is_empty() {
            return Err("no PEM CERTIFICATE block in it".into());
        }
        for (i, c) in certs.iter().enumerate() {
            webpki::anchor_from_trusted_cert(c)
                .map_err(|e| format!("certificate #{} is not usable as a CA: {e}", i + 1))?;
        }
        Ok(CaCerts { certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Whether `server_cert` (DER, as libgit2 hands it over) is valid for `host` now, signed by
    /// these CAs (directly or through intermediates among them). `Err` says why not.
    pub fn verify_server(&self, server_cert: &[u8], host: &str) -> Result<(), String> {
        let anchors = self
            .certs
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .collect::<Vec<_>>();
        let der = CertificateDer::from(server_cert);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("the server's certificate does not parse: {e}"))?;
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &self.certs,
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| format!("the server's certificate is not signed by the source's CA ({e})"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|e| format!("{host:?} is no valid TLS server name: {e}"))?;
        cert.verify_is_valid_for_subject_name(&name)
            .map_err(|e| format!("the server's certificate is not valid for {host} ({e})"))
    }
}

/// Adds the CA certificates in `path` (PEM) to what libgit2 trusts for every https remote of
/// this process, next to the system's CAs (OpenSSL's default paths, which also honour
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`). Additive: calling it again adds more.
///
/// Process-wide: call it at start-up, before the first transfer. Prefer a per-source
/// [`CaCerts`], which touches nothing global.
pub fn trust_ca_file_process_wide(path: &Path) -> Result<(), GitError> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _serial = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !path.is_file() {
        return Err(GitError::Invalid {
            what: path.display().to_string(),
            reason: "no such CA file".into(),
        });
    }
    // SAFETY: libgit2 loads the file into its shared OpenSSL context; calls are serialized by
    // LOCK, and OpenSSL locks its certificate store against concurrent handshakes.
    unsafe { git2::opts::set_ssl_cert_file(path) }.map_err(|e| GitError::Invalid {
        what: path.display().to_string(),
        reason: format!("libgit2 refused the CA file: {}", e.message()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // testdata/: P-256 certificates valid for 100 years, made with openssl: a CA, another CA,
    // and a server certificate of the CA for DNS:git.example and IP:127.0.0.1.
    const CA: &[u8] = include_bytes!("testdata/ca.crt");
    const OTHER_CA: &[u8] = include_bytes!("testdata/other-ca.crt");
    const SERVER: &[u8] = include_bytes!("testdata/server.crt");

    fn server_der() -> Vec<u8> {
        CertificateDer::from_pem_slice(SERVER).unwrap().to_vec()
    }

    #[test]
    fn vouches_for_servers_of_the_source_ca_only() {
        let ca = CaCerts::from_pem(CA).unwrap();
        assert_eq!(ca.len(), 1);
        assert_eq!(ca.verify_server(&server_der(), "git.example"), Ok(()));
        assert_eq!(ca.verify_server(&server_der(), "127.0.0.1"), Ok(()));
        let wrong_host = ca
            .verify_server(&server_der(), "other.example")
            .unwrap_err();
        assert!(
            wrong_host.contains("not valid for other.example"),
            "{wrong_host}"
        );

        let other = CaCerts::from_pem(OTHER_CA).unwrap();
        let why = other
            .verify_server(&server_der(), "git.example")
            .unwrap_err();
        assert!(why.contains("not signed by the source's CA"), "{why}");

        // A bundle: any of its CAs will do.
        let bundle = CaCerts::from_pem(&[OTHER_CA, CA].concat()).unwrap();
        assert_eq!(bundle.len(), 2);
        assert_eq!(bundle.verify_server(&server_der(), "git.example"), Ok(()));
        assert_eq!(format!("{bundle:?}"), "CaCerts(2 certificates)");
    }

    #[test]
    fn refuses_what_is_no_ca_bundle() {
        assert!(
            CaCerts::from_pem(b"")
                .unwrap_err()
                .contains("no PEM CERTIFICATE")
        );
        assert!(
            CaCerts::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        let missing = trust_ca_file_process_wide(Path::new("/nonexistent/ca.crt")).unwrap_err();
        assert!(missing.to_string().contains("no such CA file"), "{missing}");
    }
}
