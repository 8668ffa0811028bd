//! HTTPS for stand-ins that a real client reaches only over TLS: the `koji`
//! client logs in over HTTPS whatever the hub URL says (`ClientSession.
//! gssapi_login` turns `http:` into `https:`), and keeps talking HTTPS in
//! the session it opened.
//!
//! [`TestCa`] makes a certificate authority of its own and a server
//! certificate for `localhost` and `127.0.0.1` with Debian's `openssl`; the
//! service and its programs trust it as a deployment with a private CA does,
//! through `SSL_CERT_FILE` (the service's HTTP client and `curl`) and
//! `REQUESTS_CA_BUNDLE` (`koji`, Python `requests`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use tokio::sync::oneshot;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and one server certificate it signed; removed when dropped.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> std::io::Result<TestCa> {
        let dir = tempfile::Builder::new().prefix("fci-ca-").tempdir()?;
        let root = dir.path();
        std::fs::write(
            root.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            root,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "7",
                    "-subj",
                    "/CN=fedora-ci-worker test CA",
                ],
            ]
            .concat(),
        )?;
        openssl(
            root,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        )?;
        openssl(
            root,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "7",
                "-extfile",
                "server.ext",
            ],
        )?;
        openssl(
            root,
            &[
                "x509",
                "-in",
                "server.pem",
                "-outform",
                "DER",
                "-out",
                "server.der",
            ],
        )?;
        openssl(
            root,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "server.key",
                "-outform",
                "DER",
                "-out",
                "server.key.der",
            ],
        )?;
        Ok(TestCa { dir })
    }

    /// The CA's certificate (PEM): what `SSL_CERT_FILE` and
    /// `REQUESTS_CA_BUNDLE` name.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server configuration with the certificate the CA signed.
    pub(crate) fn server_config(&self) -> std::io::Result<Arc<ServerConfig>> {
        let cert = CertificateDer::from(std::fs::read(self.dir.path().join("server.der"))?);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(
            self.dir.path().join("server.key.der"),
        )?));
        let config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(std::io::Error::other)?;
        Ok(Arc::new(config))
    }
}

fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// Serves `app` over TLS on `listener` until `stop` fires.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<ServerConfig>,
    mut stop: oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that does not trust the CA ends here.
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    }
}
