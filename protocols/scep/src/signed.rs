//! CMS SignedData (RFC 5652 section 5) as SCEP uses it: read one signer and check it, or
//! sign content with signed attributes.
//!
//! The signature covers the signed attributes exactly as the signer encoded them, so they
//! are kept as raw bytes ([`RawSet`]) instead of being decoded and re-encoded.

use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::RevocationInfoChoices;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{
    Any, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence,
    SliceReader, Tag, Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};

use crate::ScepError;
use crate::attributes::{self, ScepAttributes, oid};
use crate::crypto::{self, DigestAlg};
use crate::ra::CmsSigner;

/// Most certificates we read from one SignedData.
const MAX_CERTS: usize = 16;
/// Most SignerInfos we look at.
const MAX_SIGNERS: usize = 4;

/// A SET kept as its raw content octets.
#[derive(Clone, Debug)]
pub(crate) struct RawSet(pub Vec<u8>);

impl FixedTag for RawSet {
    const TAG: Tag = Tag::Set;
}

impl<'a> DecodeValue<'a> for RawSet {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_vec(header.length())?))
    }
}

impl EncodeValue for RawSet {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

/// SignedData with the signer infos left raw.
#[derive(Sequence)]
struct SignedDataView {
    version: CmsVersion,
    digest_algorithms: RawSet,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<CertificateSet>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<RevocationInfoChoices>,
    signer_infos: RawSet,
}

/// SignerInfo with the signed attributes left raw.
#[derive(Sequence)]
struct SignerInfoView {
    version: CmsVersion,
    sid: SignerIdentifier,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    signed_attrs: Option<RawSet>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unsigned_attrs: Option<RawSet>,
}

/// A decoded SignedData with one signer, not yet verified.
pub(crate) struct SignedMessage {
    /// The encapsulated content octets; empty when absent.
    pub content: Vec<u8>,
    /// The certificates carried, in wire order.
    pub certificates: Vec<Certificate>,
    /// The signer's attributes.
    pub attrs: ScepAttributes,
    signer: SignerInfoView,
    /// The DER of the signed attributes as a SET: what the signature covers.
    signed_attrs_der: Vec<u8>,
}

impl SignedMessage {
    /// Decodes a ContentInfo holding SignedData.
    pub(crate) fn parse(der: &[u8]) -> Result<Self, ScepError> {
        let ci = ContentInfo::from_der(der).map_err(ScepError::malformed("ContentInfo"))?;
        if ci.content_type != oid::SIGNED_DATA {
            return Err(ScepError::invalid("ContentInfo", "not SignedData"));
        }
        let sd: SignedDataView = ci
            .content
            .decode_as()
            .map_err(ScepError::malformed("SignedData"))?;
        let signer = first_signer(&sd.signer_infos)?;
        let raw_attrs = signer
            .signed_attrs
            .as_ref()
            .ok_or(ScepError::MissingAttribute("signedAttrs"))?;
        let signed_attrs_der = raw_attrs
            .to_der()
            .map_err(ScepError::malformed("signedAttrs"))?;
        let attrs =
            Attributes::from_der(&signed_attrs_der).map_err(ScepError::malformed("signedAttrs"))?;
        Ok(Self {
            content: encap_content(&sd.encap_content_info)?,
            certificates: certificates(sd.certificates)?,
            attrs: ScepAttributes::parse(&attrs)?,
            signer,
            signed_attrs_der,
        })
    }

    /// The index in `certificates` of the signer's certificate.
    pub(crate) fn signer_index(&self) -> Result<usize, ScepError> {
        self.certificates
            .iter()
            .position(|c| signer_matches(&self.signer.sid, c))
            .ok_or(ScepError::SignerNotFound)
    }

    /// The signer's digest algorithm.
    pub(crate) fn digest_alg(&self) -> Result<DigestAlg, ScepError> {
        DigestAlg::from_alg(&self.signer.digest_alg)
    }

    /// Checks the messageDigest attribute against the content, then the signature over the
    /// signed attributes with `signer_cert` (found with [`Self::signer_index`], or a trust
    /// anchor the caller already holds).
    pub(crate) fn verify(
        &self,
        signer_cert: &Certificate,
        allow_sha1: bool,
    ) -> Result<(), ScepError> {
        let digest = self.digest_alg()?;
        if digest == DigestAlg::Sha1 && !allow_sha1 {
            return Err(ScepError::unsupported("digest", &digest.oid()));
        }
        let expected = self
            .attrs
            .message_digest
            .as_ref()
            .ok_or(ScepError::MissingAttribute("messageDigest"))?;
        if digest.digest(&self.content) != *expected {
            return Err(ScepError::DigestMismatch);
        }
        crypto::verify_signer(
            signer_cert.tbs_certificate().subject_public_key_info(),
            digest,
            &self.signer.signature_algorithm,
            &self.signed_attrs_der,
            self.signer.signature.as_bytes(),
            allow_sha1,
        )
    }
}

/// Signs `content` (absent when `None`) as id-data with `attrs` plus contentType and
/// messageDigest, and returns the DER ContentInfo. `certs` go in the certificates field.
pub(crate) fn sign(
    signer: &dyn CmsSigner,
    content: Option<&[u8]>,
    mut attrs: Vec<Attribute>,
    certs: &[Certificate],
) -> Result<Vec<u8>, ScepError> {
    let digest = signer.digest();
    attrs.push(attributes::oid_attr(oid::CONTENT_TYPE, oid::DATA)?);
    attrs.push(attributes::octets_attr(
        oid::MESSAGE_DIGEST,
        &digest.digest(content.unwrap_or_default()),
    )?);
    let signed_attrs = attributes::build_attributes(attrs)?;
    let to_sign = signed_attrs
        .to_der()
        .map_err(ScepError::malformed("signedAttrs"))?;
    let signature = signer.sign(&to_sign)?;

    let cert = signer.certificate();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        digest_alg: digest.identifier(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.signature_algorithm(),
        signature: OctetString::new(signature).map_err(ScepError::malformed("signature"))?,
        unsigned_attrs: None,
    };
    let econtent = content
        .map(|c| OctetString::new(c).and_then(|o| Any::encode_from(&o)))
        .transpose()
        .map_err(ScepError::malformed("content"))?;
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: set_of(vec![digest.identifier()])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent,
        },
        certificates: Some(certificate_set(certs)?),
        crls: None,
        signer_infos: SignerInfos(set_of(vec![signer_info])?),
    };
    content_info(oid::SIGNED_DATA, &sd)
}

/// Wraps `inner` in a ContentInfo of type `content_type` and encodes it.
pub(crate) fn content_info(
    content_type: const_oid::ObjectIdentifier,
    inner: &impl Encode,
) -> Result<Vec<u8>, ScepError> {
    let ci = ContentInfo {
        content_type,
        content: Any::from_der(&inner.to_der().map_err(ScepError::malformed("content"))?)
            .map_err(ScepError::malformed("content"))?,
    };
    ci.to_der().map_err(ScepError::malformed("ContentInfo"))
}

/// A CertificateSet holding `certs`.
pub(crate) fn certificate_set(certs: &[Certificate]) -> Result<CertificateSet, ScepError> {
    let choices = certs
        .iter()
        .cloned()
        .map(cms::cert::CertificateChoices::Certificate)
        .collect();
    Ok(CertificateSet(set_of(choices)?))
}

fn set_of<T: der::DerOrd>(items: Vec<T>) -> Result<SetOfVec<T>, ScepError> {
    SetOfVec::try_from(items).map_err(ScepError::malformed("SET OF"))
}

fn first_signer(raw: &RawSet) -> Result<SignerInfoView, ScepError> {
    let mut reader = SliceReader::new(&raw.0).map_err(ScepError::malformed("SignerInfos"))?;
    let mut first = None;
    for _ in 0..MAX_SIGNERS {
        if reader.is_finished() {
            break;
        }
        let info =
            SignerInfoView::decode(&mut reader).map_err(ScepError::malformed("SignerInfo"))?;
        first.get_or_insert(info);
    }
    if !reader.is_finished() {
        return Err(ScepError::invalid("SignedData", "too many SignerInfos"));
    }
    first.ok_or_else(|| ScepError::invalid("SignedData", "no SignerInfo"))
}

fn encap_content(eci: &EncapsulatedContentInfo) -> Result<Vec<u8>, ScepError> {
    if eci.econtent_type != oid::DATA {
        return Err(ScepError::invalid(
            "SignedData",
            "encapsulated content is not id-data",
        ));
    }
    let Some(any) = &eci.econtent else {
        return Ok(Vec::new());
    };
    let octets: OctetString = any.decode_as().map_err(ScepError::malformed("eContent"))?;
    Ok(octets.into_bytes().into_vec())
}

fn certificates(set: Option<CertificateSet>) -> Result<Vec<Certificate>, ScepError> {
    let Some(set) = set else {
        return Ok(Vec::new());
    };
    if set.0.len() > MAX_CERTS {
        return Err(ScepError::invalid("SignedData", "too many certificates"));
    }
    Ok(set
        .0
        .into_vec()
        .into_iter()
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .collect())
}

fn signer_matches(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            isn.issuer == *tbs.issuer() && isn.serial_number == *tbs.serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| own == *ski),
    }
}
