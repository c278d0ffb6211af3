//! The tls-alpn-01 validator's TLS client: it offers only `acme-tls/1` and accepts whatever
//! certificate the target presents, because that self-signed certificate is what is being
//! checked (RFC 8737 section 3), not a path to a trust anchor. Handshake signatures are still
//! verified, so the peer must hold the certificate's key.

use std::sync::Arc;

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use der::Decode;
use enrollgate_acme::validation::ACME_TLS_ALPN_PROTOCOL;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, PeerMisbehaved, SignatureScheme,
};
use x509_cert::Certificate;

/// Accepts any certificate whose key signs the handshake.
#[derive(Debug)]
struct ValidationCertificate;

impl ServerCertVerifier for ValidationCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The certificate's content is judged by check_tls_alpn01_certificate.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_with_certificate_key(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_with_certificate_key(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.iter().map(|(s, _)| *s).collect()
    }
}

/// The handshake signature schemes accepted, with their aws-lc-rs verification algorithms.
const SCHEMES: &[(SignatureScheme, &'static dyn VerificationAlgorithm)] = &[
    (
        SignatureScheme::ECDSA_NISTP256_SHA256,
        &signature::ECDSA_P256_SHA256_ASN1,
    ),
    (
        SignatureScheme::ECDSA_NISTP384_SHA384,
        &signature::ECDSA_P384_SHA384_ASN1,
    ),
    (SignatureScheme::ED25519, &signature::ED25519),
    (
        SignatureScheme::RSA_PSS_SHA256,
        &signature::RSA_PSS_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PSS_SHA384,
        &signature::RSA_PSS_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PSS_SHA512,
        &signature::RSA_PSS_2048_8192_SHA512,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA256,
        &signature::RSA_PKCS1_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA384,
        &signature::RSA_PKCS1_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA512,
        &signature::RSA_PKCS1_2048_8192_SHA512,
    ),
];

/// Verifies a handshake signature with the certificate's public key. The certificate is
/// decoded with x509-cert, not webpki: webpki refuses the critical acmeIdentifier extension
/// that every tls-alpn-01 certificate carries.
fn verify_with_certificate_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    let decoded =
        Certificate::from_der(cert.as_ref()).map_err(|_| bad(CertificateError::BadEncoding))?;
    let key = decoded
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    let (_, algorithm) =
        SCHEMES
            .iter()
            .find(|(s, _)| *s == dss.scheme)
            .ok_or(rustls::Error::PeerMisbehaved(
                PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
    signature::UnparsedPublicKey::new(*algorithm, key)
        .verify(message, dss.signature())
        .map_err(|_| bad(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

/// The client configuration: aws-lc-rs, TLS 1.2 and 1.3, ALPN `acme-tls/1` only.
pub(super) fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(ValidationCertificate);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
    Ok(Arc::new(config))
}
