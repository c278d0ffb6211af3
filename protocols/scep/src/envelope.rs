//! CMS EnvelopedData (RFC 5652 section 6) with RSA key transport, both ways: open a
//! request's pkcsPKIEnvelope with the RA key, seal a reply to the requester's certificate.

use aws_lc_rs::rsa::{Pkcs1PublicEncryptingKey, PublicEncryptingKey};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, OriginatorInfo,
    RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use der::asn1::{Null, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::ScepError;
use crate::attributes::oid;
use crate::crypto::{ContentCipher, RSA_ENCRYPTION};
use crate::ra::RecipientKey;
use crate::signed::{RawSet, content_info};

/// Most RecipientInfos we look through.
const MAX_RECIPIENTS: usize = 16;

/// EnvelopedData, read leniently: recipient infos stay raw, so that kinds we do not support
/// (addressed to someone else) do not fail the decode.
#[derive(Sequence)]
struct EnvelopedDataView {
    version: CmsVersion,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    originator_info: Option<OriginatorInfo>,
    recip_infos: RawSet,
    encrypted_content: EncryptedContentView,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unprotected_attrs: Option<RawSet>,
}

/// EncryptedContentInfo whose `[0]` content may be primitive (RFC 5652) or constructed
/// around OCTET STRINGs (BER; what Go's pkcs7 package, hence micromdm, writes).
#[derive(Sequence)]
struct EncryptedContentView {
    content_type: const_oid::ObjectIdentifier,
    content_enc_alg: AlgorithmIdentifierOwned,
    encrypted_content: Option<Any>,
}

/// Decrypts a ContentInfo holding EnvelopedData addressed to `key`; returns the plaintext
/// and the cipher the sender chose.
pub(crate) fn open(der: &[u8], key: &RecipientKey) -> Result<(Vec<u8>, ContentCipher), ScepError> {
    let ci = ContentInfo::from_der(der).map_err(ScepError::malformed("pkcsPKIEnvelope"))?;
    if ci.content_type != oid::ENVELOPED_DATA {
        return Err(ScepError::invalid("pkcsPKIEnvelope", "not EnvelopedData"));
    }
    let ed: EnvelopedDataView = ci
        .content
        .decode_as()
        .map_err(ScepError::malformed("EnvelopedData"))?;
    let ktri = our_recipient(&ed.recip_infos, key)?;
    if ktri.key_enc_alg.oid != RSA_ENCRYPTION {
        return Err(ScepError::unsupported(
            "key transport",
            &ktri.key_enc_alg.oid,
        ));
    }
    let eci = &ed.encrypted_content;
    let (cipher, iv) = ContentCipher::from_alg(&eci.content_enc_alg)?;
    let ciphertext = encrypted_octets(eci.encrypted_content.as_ref())?;
    let cek = key.unwrap_cek(ktri.enc_key.as_bytes(), cipher.key_len());
    let plaintext = cipher.decrypt(&cek, &iv, &ciphertext)?;
    Ok((plaintext, cipher))
}

/// Encrypts `plaintext` (as id-data) to `recipient`'s RSA key with `cipher`; `rng` gives the
/// content-encryption key and IV. Returns the DER ContentInfo.
pub(crate) fn seal(
    plaintext: &[u8],
    recipient: &Certificate,
    cipher: ContentCipher,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    let mut cek = vec![0; cipher.key_len()];
    let mut iv = vec![0; cipher.block_len()];
    rng(&mut cek);
    rng(&mut iv);
    let ciphertext = cipher.encrypt(&cek, &iv, plaintext)?;
    let enc_key = rsa_encrypt(recipient, &cek)?;

    let tbs = recipient.tbs_certificate();
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::from(Null)),
        },
        enc_key: OctetString::new(enc_key).map_err(ScepError::malformed("encryptedKey"))?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(
            SetOfVec::try_from(vec![RecipientInfo::Ktri(ktri)])
                .map_err(ScepError::malformed("RecipientInfos"))?,
        ),
        encrypted_content: EncryptedContentInfo {
            content_type: oid::DATA,
            content_enc_alg: cipher.identifier(&iv)?,
            encrypted_content: Some(
                OctetString::new(ciphertext).map_err(ScepError::malformed("encryptedContent"))?,
            ),
        },
        unprotected_attrs: None,
    };
    content_info(oid::ENVELOPED_DATA, &ed)
}

/// The KeyTransRecipientInfo addressed to `key`, skipping other recipients.
fn our_recipient(raw: &RawSet, key: &RecipientKey) -> Result<KeyTransRecipientInfo, ScepError> {
    let mut reader = SliceReader::new(&raw.0).map_err(ScepError::malformed("RecipientInfos"))?;
    for _ in 0..MAX_RECIPIENTS {
        if reader.is_finished() {
            break;
        }
        let any = Any::decode(&mut reader).map_err(ScepError::malformed("RecipientInfo"))?;
        if any.tag() != Tag::Sequence {
            continue; // kari, kekri, pwri or ori: not for an RSA RA
        }
        let ktri: KeyTransRecipientInfo = any
            .decode_as()
            .map_err(ScepError::malformed("KeyTransRecipientInfo"))?;
        if key.matches(&ktri.rid) {
            return Ok(ktri);
        }
    }
    Err(ScepError::NotForUs)
}

/// The ciphertext from `[0] IMPLICIT OCTET STRING`, primitive or constructed.
fn encrypted_octets(any: Option<&Any>) -> Result<Vec<u8>, ScepError> {
    let any = any.ok_or_else(|| ScepError::invalid("EnvelopedData", "no encryptedContent"))?;
    match any.tag() {
        Tag::ContextSpecific {
            constructed: false,
            number: TagNumber(0),
        } => Ok(any.value().to_vec()),
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        } => concatenated_octets(any.value()),
        _ => Err(ScepError::invalid(
            "EnvelopedData",
            "encryptedContent is not [0]",
        )),
    }
}

/// The concatenation of a run of primitive OCTET STRINGs.
fn concatenated_octets(mut bytes: &[u8]) -> Result<Vec<u8>, ScepError> {
    let mut out = Vec::with_capacity(bytes.len());
    while !bytes.is_empty() {
        let mut reader =
            SliceReader::new(bytes).map_err(ScepError::malformed("encryptedContent"))?;
        let part =
            OctetString::decode(&mut reader).map_err(ScepError::malformed("encryptedContent"))?;
        out.extend_from_slice(part.as_bytes());
        let used =
            usize::try_from(reader.position()).map_err(ScepError::malformed("encryptedContent"))?;
        bytes = bytes.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// RSA PKCS#1 v1.5 encryption of `cek` to the certificate's key.
fn rsa_encrypt(recipient: &Certificate, cek: &[u8]) -> Result<Vec<u8>, ScepError> {
    let spki = recipient.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(ScepError::UnsupportedRecipientKey(
            spki.algorithm.oid.to_string(),
        ));
    }
    let spki_der = spki
        .to_der()
        .map_err(ScepError::malformed("SubjectPublicKeyInfo"))?;
    let public = PublicEncryptingKey::from_der(&spki_der)
        .map_err(|e| ScepError::UnsupportedRecipientKey(e.to_string()))?;
    let key = Pkcs1PublicEncryptingKey::new(public)
        .map_err(|_| ScepError::UnsupportedRecipientKey("RSA key refused".into()))?;
    let mut out = vec![0; key.ciphertext_size()];
    let len = key
        .encrypt(cek, &mut out)
        .map_err(|_| ScepError::Crypto("RSA key transport"))?
        .len();
    out.truncate(len);
    Ok(out)
}
