//! The CSR pool: distinct P-256 certification requests made before anything is timed.
//!
//! Each request names `CN=bench-device-NN,O=enrollgate bench` and asks for one DNS SAN, so
//! that the gateway's policy has a subject and a SAN to check, as it would for a device.

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::asn1::{BitString, Ia5String, OctetString, SetOfVec};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

/// One request, ready to send.
pub struct PooledCsr {
    /// The CSR, DER.
    pub der: Vec<u8>,
    /// The body EST sends: the DER in base64.
    pub body: bytes::Bytes,
    /// The requested key as SubjectPublicKeyInfo DER, to check the issued certificate by.
    pub spki_der: Vec<u8>,
}

/// Makes `count` CSRs, each with its own fresh key.
/// Each is checked with the gateway's own CSR decoder before it is used.
pub fn pool(count: usize) -> anyhow::Result<Vec<PooledCsr>> {
    let rng = SystemRandom::new();
    let pool = (0..count)
        .map(|i| one(&rng, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for csr in &pool {
        let parsed = enrollgate_pkix::Csr::from_der(&csr.der).context("pooled CSR decodes")?;
        parsed.verify_signature().context("pooled CSR verifies")?;
    }
    Ok(pool)
}

fn one(rng: &SystemRandom, index: usize) -> anyhow::Result<PooledCsr> {
    use base64::Engine;

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("P-256 key rejected: {e}"))?;
    let spki_der = key
        .public_key()
        .as_der()
        .map_err(|_| anyhow::anyhow!("public key encoding failed"))?
        .as_ref()
        .to_vec();

    let subject: Name = format!("CN=bench-device-{index:02},O=enrollgate bench")
        .parse()
        .context("subject name")?;
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned::from_der(&spki_der)?,
        attributes: san_request(&format!("bench-device-{index:02}.example"))?,
    };
    let tbs = info.to_der()?;
    let signature = key
        .sign(rng, &tbs)
        .map_err(|_| anyhow::anyhow!("CSR signature failed"))?;
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        },
        signature: BitString::from_bytes(signature.as_ref())?,
    };
    let der = request.to_der()?;
    let body = base64::engine::general_purpose::STANDARD
        .encode(&der)
        .into();
    Ok(PooledCsr {
        der,
        body,
        spki_der,
    })
}

/// The extensionRequest attribute asking for one DNS subject alternative name.
fn san_request(dns: &str) -> anyhow::Result<SetOfVec<Attribute>> {
    let san = SubjectAltName(vec![GeneralName::DnsName(Ia5String::new(dns)?)]);
    let extension = Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(san.to_der()?)?,
    };
    let attribute = Attribute::try_from(ExtensionReq(vec![extension]))?;
    Ok(SetOfVec::try_from(vec![attribute])?)
}
