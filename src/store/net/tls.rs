//! TLS to a shared backend (`rediss://`, SQL with TLS): rustls with ring, the server's
//! certificate checked against the configured CA file (`redis_tls_ca_file`,
//! `sql_tls_ca_file`; else the system's CA bundle) and the URL's host, TLS 1.2 and 1.3 only,
//! and a client certificate for servers that ask for one (`tls-auth-clients yes`, Redis's
//! default when TLS is on). The handshake is done at connect, under the same socket
//! timeouts as every command, so a certificate problem is reported there, naming the file
//! or the host, never the key.

use super::{refused, Failure};
use crate::store::secure::{self, Owners};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

/// The system's CA bundle on Debian (`ca-certificates`).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest certificate file read (the system bundle is about 200 KiB).
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// A TLS connection over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// The files of a TLS client: the CA bundle (none: the system's) and an optional client
/// certificate with its key; `prefix` starts the names of their settings (`redis_`, `sql_`).
#[derive(Clone, Copy, Debug)]
pub struct TlsFiles<'a> {
    /// `<prefix>tls_ca_file`.
    pub ca_file: Option<&'a Path>,
    /// `<prefix>tls_cert_file`.
    pub cert_file: Option<&'a Path>,
    /// `<prefix>tls_key_file`.
    pub key_file: Option<&'a Path>,
    /// `redis_` or `sql_`.
    pub prefix: &'a str,
    /// The timeout's setting, named when the handshake runs out of time.
    pub timeout_name: &'a str,
}

/// Wraps `tcp` in TLS to `host` and completes the handshake.
pub fn connect(
    mut tcp: TcpStream,
    host: &str,
    files: &TlsFiles<'_>,
    owners: Owners,
) -> Result<TlsStream, Failure> {
    let config = client_config(files, owners)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("`{host}` is not a name a certificate can carry"))?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| {
            format!(
                "TLS handshake with {host}: {}",
                super::describe(e, files.timeout_name)
            )
        })?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

fn client_config(files: &TlsFiles<'_>, owners: Owners) -> Result<ClientConfig, Failure> {
    let ca_file = files.ca_file.unwrap_or(Path::new(SYSTEM_CA_FILE));
    let mut roots = RootCertStore::empty();
    let pem = read_public(ca_file, owners)?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: holds no CA certificate", ca_file.display()));
    }
    // rustls deprecates ring's provider for its lack of post-quantum key exchange; aws-lc-rs,
    // which has it, would build a large C library into every auth process
    // (docs/dependencies.md). The connection runs inside the operator's own network.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (files.cert_file, files.key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert_file), Some(key_file)) => {
            let pem = read_public(cert_file, owners)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert_file.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: holds no certificate", cert_file.display()));
            }
            let key_pem = secure::read_secret(key_file, owners)
                .map_err(|refusal| refused(key_file, refusal))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|_| format!("{}: holds no private key in PEM", key_file.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert_file.display()))
        }
        _ => Err(format!(
            "`{0}tls_cert_file` and `{0}tls_key_file` go together",
            files.prefix
        )),
    }
}

/// A certificate file (PEM), checked like every file the module trusts.
fn read_public(path: &Path, owners: Owners) -> Result<Vec<u8>, Failure> {
    secure::read_public(path, owners, MAX_PEM_BYTES).map_err(|r| refused(path, r))
}
