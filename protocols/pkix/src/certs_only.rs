//! Degenerate "certs-only" CMS SignedData (RFC 5652 5.1; RFC 7030 4.1.3; RFC 8894 3.4).
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
//! SignedData ::= SEQUENCE {
//!     version CMSVersion,                                  -- 1
//!     digestAlgorithms SET OF DigestAlgorithmIdentifier,   -- empty
//!     encapContentInfo EncapsulatedContentInfo,            -- id-data, no eContent
//!     certificates [0] IMPLICIT CertificateSet OPTIONAL,
//!     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//!     signerInfos SET OF SignerInfo }                      -- empty
//! ```
//!
//! Certificates are written in the order given, as OpenSSL does, rather than sorted as DER
//! would sort a SET OF: clients that take the first certificate as the issuer then work, and
//! decoders (OpenSSL, the `der` crate) accept either order. The certificates' bytes are
//! copied, never re-encoded.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::AnyRef;
use der::{Decode, Encode, Sequence, Tag, Tagged};

use crate::PkixError;

/// The largest certs-only message [`parse_certs_only`] reads.
pub const MAX_CERTS_ONLY_LEN: usize = 1024 * 1024;

const WHAT: &str = "certs-only SignedData";

/// RFC 5652 3.
#[derive(Sequence)]
struct ContentInfo<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: AnyRef<'a>,
}

/// RFC 5652 5.2, with the content left opaque.
#[derive(Sequence)]
struct EncapsulatedContentInfo<'a> {
    econtent_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    econtent: Option<AnyRef<'a>>,
}

/// RFC 5652 5.1, with the parts a certs-only reader does not need left opaque.
#[derive(Sequence)]
struct SignedData<'a> {
    version: u8,
    digest_algorithms: AnyRef<'a>,
    encap_content_info: EncapsulatedContentInfo<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<AnyRef<'a>>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<Vec<AnyRef<'a>>>,
    signer_infos: AnyRef<'a>,
}

/// Wraps DER certificates (each one complete SEQUENCE) in a certs-only ContentInfo, DER.
pub fn certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>, PkixError> {
    let certificates = certs
        .iter()
        .map(|c| certificate_tlv(c))
        .collect::<Result<Vec<_>, _>>()?;
    let empty_set = AnyRef::new(Tag::Set, &[]).map_err(PkixError::malformed(WHAT))?;
    let signed = SignedData {
        version: 1,
        digest_algorithms: empty_set,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(certificates),
        crls: None,
        signer_infos: empty_set,
    };
    let signed_der = signed.to_der().map_err(PkixError::malformed(WHAT))?;
    let content = AnyRef::from_der(&signed_der).map_err(PkixError::malformed(WHAT))?;
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content,
    }
    .to_der()
    .map_err(PkixError::malformed(WHAT))
}

/// The certificates of a ContentInfo holding SignedData, in the order encoded, DER.
/// Signer infos, if any, are neither read nor checked; other certificate choices
/// (attribute certificates) and CRLs are skipped.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<Vec<u8>>, PkixError> {
    if der.len() > MAX_CERTS_ONLY_LEN {
        return Err(PkixError::TooLarge {
            what: WHAT,
            limit: MAX_CERTS_ONLY_LEN,
        });
    }
    let info = ContentInfo::from_der(der).map_err(PkixError::malformed(WHAT))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(PkixError::invalid(
            WHAT,
            format!("content type {}", info.content_type),
        ));
    }
    let signed: SignedData<'_> = info
        .content
        .decode_as()
        .map_err(PkixError::malformed(WHAT))?;
    if signed.digest_algorithms.tag() != Tag::Set || signed.signer_infos.tag() != Tag::Set {
        return Err(PkixError::invalid(
            WHAT,
            "digestAlgorithms or signerInfos is not a SET",
        ));
    }
    signed
        .certificates
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.tag() == Tag::Sequence)
        .map(|c| c.to_der().map_err(PkixError::malformed(WHAT)))
        .collect()
}

/// One certificate as a single SEQUENCE TLV with nothing after it.
fn certificate_tlv(cert: &[u8]) -> Result<AnyRef<'_>, PkixError> {
    let any = AnyRef::from_der(cert).map_err(PkixError::malformed("certificate"))?;
    if any.tag() != Tag::Sequence {
        return Err(PkixError::invalid("certificate", "not a SEQUENCE"));
    }
    Ok(any)
}
