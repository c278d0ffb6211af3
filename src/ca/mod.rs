//! The built-in CA: a root and an issuing CA, the SCEP RA identity and the TLS server
//! identity, created in the data directory on first start and reused afterwards.

pub mod x509;

use std::path::Path;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use der::flagset::FlagSet;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::config;
use crate::crypto::{KeyAlgorithm, SigningKey, random_bytes};
use x509::{CertTemplate, Issuer};

/// A key with its certificate.
pub struct Identity {
    /// The private key.
    pub key: SigningKey,
    /// The certificate, DER.
    pub cert: Vec<u8>,
    /// The certificate's subject.
    pub name: Name,
    /// The certificate's subject key identifier.
    pub key_id: Vec<u8>,
}

/// Every key and certificate the embedded default needs.
pub struct BuiltinCa {
    /// The self-signed root.
    pub root: Identity,
    /// The CA that signs end-entity certificates.
    pub issuing: Identity,
    /// The SCEP RA (RSA, clients encrypt to it).
    pub ra: Identity,
    /// The HTTPS and DTLS server identity.
    pub tls: Identity,
    /// The key and certificate that sign CMP replies (ECDSA P-256).
    pub cmp: Identity,
    /// Unix time of the issuing CA's notAfter, the clamp for end-entity validity.
    pub issuing_not_after: SystemTime,
}

/// Failure to create or load the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stored key or certificate is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// Building a certificate failed.
    #[error("building certificate: {0}")]
    Build(#[from] x509::BuildError),
}

impl BuiltinCa {
    /// Loads the CA from `dir`, creating whatever is missing.
    pub fn load_or_create(dir: &Path, cfg: &config::Ca) -> Result<Self, CaError> {
        let now = SystemTime::now();
        let days = |d: u32| Duration::from_secs(u64::from(d) * 86_400);
        let alg = cfg.key_algorithm;

        let root = identity(dir, "root", alg, |key, spki| {
            let name = parse_name(&format!("CN={} Root CA", cfg.name))?;
            let t = ca_template(
                name.clone(),
                spki,
                now,
                now + days(cfg.root_validity_days),
                None,
            );
            let issuer = Issuer {
                key,
                name: &name,
                key_id: None,
            };
            Ok(x509::sign_certificate(&t, &issuer)?)
        })?;
        let issuing = identity(dir, "issuing", alg, |_, spki| {
            let name = parse_name(&format!("CN={} Issuing CA", cfg.name))?;
            let t = ca_template(
                name,
                spki,
                now,
                now + days(cfg.issuing_validity_days),
                Some(0),
            );
            Ok(x509::sign_certificate(&t, &root.issuer())?)
        })?;
        let ra = identity(dir, "ra", KeyAlgorithm::Rsa2048, |_, spki| {
            let usage = KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment;
            let t = leaf(
                parse_name(&format!("CN={} SCEP RA", cfg.name))?,
                spki,
                now,
                days(1825),
                usage,
            );
            Ok(x509::sign_certificate(&t, &issuing.issuer())?)
        })?;
        let tls = identity(dir, "tls", KeyAlgorithm::EcdsaP256, |_, spki| {
            let mut t = leaf(
                parse_name("CN=localhost")?,
                spki,
                now,
                days(825),
                KeyUsages::DigitalSignature.into(),
            );
            t.extended_key_usage = vec![rfc5280::ID_KP_SERVER_AUTH];
            t.subject_alt_names = vec![
                GeneralName::DnsName(der::asn1::Ia5String::new("localhost").map_err(der_err)?),
                GeneralName::IpAddress(
                    der::asn1::OctetString::new([127, 0, 0, 1]).map_err(der_err)?,
                ),
                GeneralName::IpAddress(
                    der::asn1::OctetString::new(std::net::Ipv6Addr::LOCALHOST.octets())
                        .map_err(der_err)?,
                ),
            ];
            Ok(x509::sign_certificate(&t, &issuing.issuer())?)
        })?;
        let cmp = identity(dir, "cmp", KeyAlgorithm::EcdsaP256, |_, spki| {
            let name = parse_name(&format!("CN={} CMP RA", cfg.name))?;
            let mut t = leaf(
                name,
                spki,
                now,
                days(1825),
                KeyUsages::DigitalSignature.into(),
            );
            // id-kp-cmcRA (RFC 6402): the key signs protocol messages on behalf of the CA.
            t.extended_key_usage = vec![ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28")];
            Ok(x509::sign_certificate(&t, &issuing.issuer())?)
        })?;
        let issuing_not_after = not_after(&issuing.cert)?;
        Ok(Self {
            root,
            issuing,
            ra,
            tls,
            cmp,
            issuing_not_after,
        })
    }

    /// The chain above end-entity certificates: issuing CA, then root.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.issuing.cert.clone(), self.root.cert.clone()]
    }

    /// SHA-256 fingerprint of the root, upper-case hex with colons (as `openssl x509 -fingerprint`).
    pub fn root_fingerprint(&self) -> String {
        let hex = crate::crypto::sha256_hex(&self.root.cert).to_uppercase();
        hex.as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Signs an end-entity certificate with the issuing CA.
    pub fn sign(&self, template: &CertTemplate) -> Result<Vec<u8>, x509::BuildError> {
        x509::sign_certificate(template, &self.issuing.issuer())
    }
}

impl Identity {
    /// This identity as the issuer of a signature.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            key: &self.key,
            name: &self.name,
            key_id: Some(&self.key_id),
        }
    }
}

/// The RFC 5280 key usage bit for a configuration name.
pub fn key_usage_bit(name: &str) -> Option<KeyUsages> {
    Some(match name {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        _ => return None,
    })
}

/// The OID for an extended key usage name or dotted OID.
pub fn eku_oid(name: &str) -> Option<ObjectIdentifier> {
    Some(match name {
        "serverAuth" => rfc5280::ID_KP_SERVER_AUTH,
        "clientAuth" => rfc5280::ID_KP_CLIENT_AUTH,
        "codeSigning" => rfc5280::ID_KP_CODE_SIGNING,
        "emailProtection" => rfc5280::ID_KP_EMAIL_PROTECTION,
        other => return ObjectIdentifier::new(other).ok(),
    })
}

/// notAfter of a certificate.
pub fn not_after(cert_der: &[u8]) -> Result<SystemTime, CaError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| CaError::Corrupt(e.to_string()))?;
    Ok(cert.tbs_certificate().validity().not_after.to_system_time())
}

/// A fresh 128-bit positive serial number (RFC 5280 4.1.2.2 allows up to 20 octets).
pub fn random_serial() -> Vec<u8> {
    let mut serial = random_bytes::<16>().to_vec();
    serial[0] &= 0x7f;
    serial[0] |= 0x01; // never a leading zero octet, so the DER length is fixed
    serial
}

fn parse_name(s: &str) -> Result<Name, CaError> {
    s.parse()
        .map_err(|e: der::Error| CaError::Corrupt(format!("name {s}: {e}")))
}

fn der_err(e: der::Error) -> CaError {
    CaError::Corrupt(e.to_string())
}

fn ca_template(
    name: Name,
    spki: spki::SubjectPublicKeyInfoOwned,
    from: SystemTime,
    to: SystemTime,
    path_len: Option<u8>,
) -> CertTemplate {
    CertTemplate {
        serial: random_serial(),
        subject: name,
        public_key: spki,
        not_before: from - Duration::from_secs(3600),
        not_after: to,
        ca: Some(path_len),
        key_usage: KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature,
        extended_key_usage: Vec::new(),
        subject_alt_names: Vec::new(),
    }
}

fn leaf(
    name: Name,
    spki: spki::SubjectPublicKeyInfoOwned,
    now: SystemTime,
    life: Duration,
    usage: FlagSet<KeyUsages>,
) -> CertTemplate {
    CertTemplate {
        serial: random_serial(),
        subject: name,
        public_key: spki,
        not_before: now - Duration::from_secs(3600),
        not_after: now + life,
        ca: None,
        key_usage: usage,
        extended_key_usage: Vec::new(),
        subject_alt_names: Vec::new(),
    }
}

/// Loads `<name>.key`/`<name>.crt` from `dir`, or makes them with `make`.
fn identity(
    dir: &Path,
    name: &str,
    alg: KeyAlgorithm,
    make: impl FnOnce(&SigningKey, spki::SubjectPublicKeyInfoOwned) -> Result<Vec<u8>, CaError>,
) -> Result<Identity, CaError> {
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.crt"));
    let (key, cert) = if key_path.exists() && cert_path.exists() {
        let key_der = read_pem(&key_path)?;
        let cert = read_pem(&cert_path)?;
        let alg = algorithm_of(&cert)?;
        let key = SigningKey::from_pkcs8(alg, &key_der)
            .map_err(|e| CaError::Corrupt(format!("{name}.key: {e}")))?;
        (key, cert)
    } else {
        let (key, pkcs8) =
            SigningKey::generate(alg).map_err(|e| CaError::Corrupt(e.to_string()))?;
        let spki = key
            .public_key_info()
            .map_err(|e| CaError::Corrupt(e.to_string()))?;
        let cert = make(&key, spki)?;
        write_pem(&key_path, "PRIVATE KEY", &pkcs8, true)?;
        write_pem(&cert_path, "CERTIFICATE", &cert, false)?;
        (key, cert)
    };
    let parsed =
        Certificate::from_der(&cert).map_err(|e| CaError::Corrupt(format!("{name}.crt: {e}")))?;
    let tbs = parsed.tbs_certificate();
    Ok(Identity {
        key,
        name: tbs.subject().clone(),
        key_id: x509::key_identifier(tbs.subject_public_key_info()),
        cert,
    })
}

/// The key algorithm of a certificate's public key.
fn algorithm_of(cert_der: &[u8]) -> Result<KeyAlgorithm, CaError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| CaError::Corrupt(e.to_string()))?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let oid = spki.algorithm.oid;
    Ok(if oid == const_oid::db::rfc5912::RSA_ENCRYPTION {
        if spki.subject_public_key.raw_bytes().len() > 300 {
            KeyAlgorithm::Rsa3072
        } else {
            KeyAlgorithm::Rsa2048
        }
    } else if oid == const_oid::db::rfc8410::ID_ED_25519 {
        KeyAlgorithm::Ed25519
    } else if spki.subject_public_key.raw_bytes().len() > 65 {
        KeyAlgorithm::EcdsaP384
    } else {
        KeyAlgorithm::EcdsaP256
    })
}

/// Reads a PEM file, returning the DER of its first block.
pub fn read_pem(path: &Path) -> Result<Vec<u8>, CaError> {
    let text = std::fs::read(path).map_err(|source| CaError::Io {
        path: path.display().to_string(),
        source,
    })?;
    der::pem::decode_vec(&text)
        .map(|(_, der)| der)
        .map_err(|e| CaError::Corrupt(format!("{}: {e}", path.display())))
}

/// Reads every certificate from a PEM file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let text = std::fs::read(path).map_err(|source| CaError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let certs = Certificate::load_pem_chain(&text)
        .map_err(|e| CaError::Corrupt(format!("{}: {e}", path.display())))?;
    certs
        .iter()
        .map(|c| c.to_der().map_err(|e| CaError::Corrupt(e.to_string())))
        .collect()
}

/// PEM-encodes DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

fn write_pem(path: &Path, label: &str, der: &[u8], secret: bool) -> Result<(), CaError> {
    use std::io::Write;
    let io = |source| CaError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(pem(label, der).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = BuiltinCa::load_or_create(dir.path(), &config::Ca::default()).unwrap();
        let b = BuiltinCa::load_or_create(dir.path(), &config::Ca::default()).unwrap();
        assert_eq!(a.root.cert, b.root.cert);
        assert_eq!(a.issuing.key_id, b.issuing.key_id);
        assert_eq!(a.root_fingerprint().len(), 95);
    }
}
