//! tokio-postgres's TLS over rustls with the ring provider. What is checked follows libpq:
//! `prefer`/`require` encrypt without checking the certificate (the handshake's signatures
//! still are, so SCRAM's channel binding holds), `verify-ca` checks the chain and not the
//! name, `verify-full` both; a `sslrootcert` file makes `prefer`/`require` check the chain.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::{Error, RootCert, SslMode};

/// What the handshake checks of the server's certificate.
enum Check {
    Nothing,
    Chain(Arc<RootCertStore>),
    ChainAndName(Arc<RootCertStore>),
}

pub(crate) fn connector(
    mode: SslMode,
    root_cert: Option<&RootCert>,
) -> Result<MakeRustlsConnect, Error> {
    let roots = || match root_cert {
        Some(RootCert::File(path)) => file_roots(path),
        Some(RootCert::System) | None => system_roots(),
    };
    let check = match (mode, root_cert) {
        (SslMode::Disable, _) => Check::Nothing,
        (SslMode::Prefer | SslMode::Require, Some(RootCert::File(path))) => {
            Check::Chain(file_roots(path)?)
        }
        (SslMode::Prefer | SslMode::Require, _) => Check::Nothing,
        (SslMode::VerifyCa, _) => Check::Chain(roots()?),
        (SslMode::VerifyFull, _) => Check::ChainAndName(roots()?),
    };
    let roots_label = match root_cert {
        Some(RootCert::File(path)) => format!("sslrootcert={}", path.display()),
        _ => "the system's roots".to_owned(),
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(format!("TLS setup: {e}")))?;
    let check_names = matches!(check, Check::ChainAndName(_));
    let verifies = !matches!(check, Check::Nothing);
    let mut config = match check {
        Check::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth(),
        Check::Chain(roots) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Error::new(format!("TLS setup: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                .with_no_client_auth()
        }
        Check::ChainAndName(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    // What libpq 17 sends; older servers ignore it, and it lets sslnegotiation=direct work.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect {
        config: Arc::new(config),
        check_names,
        context: Arc::new(if verifies {
            format!("sslmode={}, trusting {roots_label}", mode.as_str())
        } else {
            format!("sslmode={}", mode.as_str())
        }),
    })
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Loaded once per process: the store does not change under a running server.
fn system_roots() -> Result<Arc<RootCertStore>, Error> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, Error>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::new(
                    "no trusted root certificates found on this system (install ca-certificates, \
                     or name the server's CA with sslrootcert=<file>)",
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

fn file_roots(path: &std::path::Path) -> Result<Arc<RootCertStore>, Error> {
    let unusable = |why: String| {
        Error::new(format!(
            "sslrootcert={}: {why} (it must be a readable file of PEM certificates)",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unusable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(e.to_string()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(unusable("no certificate in it".into()));
    }
    Ok(Arc::new(store))
}

/// Encryption without authentication (`prefer`, `require`): any certificate, but the
/// handshake must be signed by the key of the certificate presented.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full check, except that a certificate for another name passes. The
/// chain is checked before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's `MakeTlsConnect` for one connection string's TLS settings.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
    check_names: bool,
    /// `sslmode=... trusting ...`, for errors.
    context: Arc<String>,
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        let name = match ServerName::try_from(host.to_owned()) {
            Ok(name) => name,
            Err(_) if self.check_names => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "`{host}` is not a host name a certificate can be checked against ({})",
                        self.context
                    ),
                ))
            }
            // Nothing checks the name: send no SNI rather than fail.
            Err(_) => ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()),
        };
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
            context: self.context.clone(),
        })
    }
}

/// One handshake to come.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    context: Arc<String>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| explain(e, &self.context))
        })
    }
}

/// A refused certificate, said in words: which check failed under which settings.
fn explain(error: io::Error, context: &str) -> io::Error {
    let refused = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(problem) => Some(problem.clone()),
            _ => None,
        });
    match refused {
        Some(CertificateError::UnknownIssuer) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the server's certificate is not signed by a trusted root (UnknownIssuer; {context})"),
        ),
        Some(problem) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the server's certificate was refused: {problem} ({context})"),
        ),
        None => error,
    }
}

/// A TLS connection to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// `tls-server-end-point` (RFC 5929): the server certificate's hash, so SCRAM can bind
    /// the login to this TLS session (a man in the middle cannot relay it).
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| end_point_hash(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// The certificate hashed with its signature's hash (SHA-256 for MD5 and SHA-1), or `None`
/// for algorithms RFC 5929 leaves undefined (Ed25519, RSA-PSS).
fn end_point_hash(cert: &[u8]) -> Option<Vec<u8>> {
    const SHA256: [&[u8]; 5] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04], // md5WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], // sha1WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], // sha256WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],             // ecdsa-with-SHA1
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],       // ecdsa-with-SHA256
    ];
    const SHA384: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
    ];
    const SHA512: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
    ];
    let oid = signature_algorithm(cert)?;
    if SHA256.contains(&oid) {
        Some(Sha256::digest(cert).to_vec())
    } else if SHA384.contains(&oid) {
        Some(Sha384::digest(cert).to_vec())
    } else if SHA512.contains(&oid) {
        Some(Sha512::digest(cert).to_vec())
    } else {
        None
    }
}

/// The OID of `Certificate.signatureAlgorithm` (RFC 5280: SEQUENCE { tbsCertificate,
/// signatureAlgorithm SEQUENCE { OID, ... }, signature }), read from DER.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der(cert, 0x30)?;
    let (_tbs, rest) = der(certificate, 0x30)?;
    let (algorithm, _) = der(rest, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    Some(oid)
}

/// One DER element of type `tag` at the start of `input`: its contents and what follows.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, tail) = rest.split_at(count);
        rest = tail;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's outer shape around `oid`: SEQUENCE { SEQUENCE {}, SEQUENCE { OID }, BIT STRING }.
    fn shaped(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        let mut body = vec![0x30, 0x00, 0x30, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn the_end_point_hash_follows_the_signature_algorithm() {
        let rsa_sha256 = shaped(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]);
        assert_eq!(
            end_point_hash(&rsa_sha256),
            Some(Sha256::digest(&rsa_sha256).to_vec())
        );
        let sha1 = shaped(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
        assert_eq!(end_point_hash(&sha1), Some(Sha256::digest(&sha1).to_vec()));
        let ecdsa_sha384 = shaped(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        assert_eq!(
            end_point_hash(&ecdsa_sha384),
            Some(Sha384::digest(&ecdsa_sha384).to_vec())
        );
        let ed25519 = shaped(&[0x2b, 0x65, 0x70]);
        assert_eq!(end_point_hash(&ed25519), None);
        assert_eq!(end_point_hash(&[0x30, 0x82, 0xff]), None, "truncated");
        assert_eq!(end_point_hash(b""), None);
    }

    #[test]
    fn long_form_lengths_are_read() {
        let mut input = vec![0x04, 0x81, 0x80];
        input.extend_from_slice(&[7; 0x80]);
        input.push(1);
        let (contents, rest) = der(&input, 0x04).unwrap();
        assert_eq!(contents.len(), 0x80);
        assert_eq!(rest, [1]);
        assert!(der(&input, 0x30).is_none(), "another tag");
    }

    #[test]
    fn an_unusable_root_file_is_an_error_in_every_mode_that_uses_tls() {
        let missing = RootCert::File("/nonexistent/ca.pem".into());
        for mode in [
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let error = connector(mode, Some(&missing)).err().expect("refused");
            assert!(
                error
                    .to_string()
                    .contains("sslrootcert=/nonexistent/ca.pem"),
                "{error}"
            );
        }
        assert!(connector(SslMode::Disable, Some(&missing)).is_ok());
        let not_pem = std::env::temp_dir().join(format!("not-a-cert-{}.pem", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let error = connector(SslMode::VerifyFull, Some(&RootCert::File(not_pem.clone())))
            .err()
            .expect("refused");
        std::fs::remove_file(&not_pem).unwrap();
        assert!(error.to_string().contains("no certificate"), "{error}");
    }
}
