//! CSR attributes (RFC 7030 4.5.2).
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! ```

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::Attribute;

use crate::EstError;

/// The largest csrattrs body [`parse_csr_attrs`] reads.
pub const MAX_CSR_ATTRS_LEN: usize = 64 * 1024;

/// One entry of the csrattrs reply: what the server would like to see in a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CsrAttr {
    /// A bare OID: an attribute to include (e.g. challengePassword, which asks for channel
    /// binding) or the signature algorithm to use (e.g. ecdsa-with-SHA256).
    Oid(ObjectIdentifier),
    /// An id-ecPublicKey attribute whose value is the curve the key should be on.
    EcCurve(ObjectIdentifier),
    /// Any other attribute whose values are OIDs, such as an extensionRequest listing the
    /// extensions wanted (the RFC 7030 example's macAddress).
    Attribute {
        /// The attribute type.
        oid: ObjectIdentifier,
        /// Its values; at least one.
        values: Vec<ObjectIdentifier>,
    },
}

/// The DER CsrAttrs of `attrs`; an empty list gives an empty SEQUENCE.
pub fn encode_csr_attrs(attrs: &[CsrAttr]) -> Result<Vec<u8>, EstError> {
    let items = attrs
        .iter()
        .map(encode_one)
        .collect::<Result<Vec<Any>, der::Error>>()
        .map_err(|e| EstError::Internal(format!("csrattrs: {e}")))?;
    items
        .to_der()
        .map_err(|e| EstError::Internal(format!("csrattrs: {e}")))
}

/// Reads a DER CsrAttrs (for clients and tests). Attribute values that are not OIDs are
/// refused, since [`CsrAttr`] cannot hold them.
pub fn parse_csr_attrs(der: &[u8]) -> Result<Vec<CsrAttr>, EstError> {
    if der.len() > MAX_CSR_ATTRS_LEN {
        return Err(EstError::BadRequest("csrattrs too large".into()));
    }
    let bad = |e: der::Error| EstError::BadRequest(format!("malformed csrattrs: {e}"));
    let items = Vec::<Any>::from_der(der).map_err(bad)?;
    items
        .iter()
        .map(|item| parse_one(item).map_err(bad))
        .collect()
}

fn encode_one(attr: &CsrAttr) -> der::Result<Any> {
    let (oid, values) = match attr {
        CsrAttr::Oid(oid) => return Any::encode_from(oid),
        CsrAttr::EcCurve(curve) => (ID_EC_PUBLIC_KEY, std::slice::from_ref(curve)),
        CsrAttr::Attribute { oid, values } => (*oid, values.as_slice()),
    };
    let values = values
        .iter()
        .map(Any::encode_from)
        .collect::<der::Result<Vec<Any>>>()?;
    let attribute = Attribute {
        oid,
        values: SetOfVec::try_from(values)?,
    };
    Any::encode_from(&attribute)
}

fn parse_one(item: &Any) -> der::Result<CsrAttr> {
    if item.tag() == Tag::ObjectIdentifier {
        return item.decode_as().map(CsrAttr::Oid);
    }
    let attribute = Attribute::from_der(&item.to_der()?)?;
    let values = attribute
        .values
        .iter()
        .map(|v| v.decode_as::<ObjectIdentifier>())
        .collect::<der::Result<Vec<_>>>()?;
    match values.as_slice() {
        [curve] if attribute.oid == ID_EC_PUBLIC_KEY => Ok(CsrAttr::EcCurve(*curve)),
        _ => Ok(CsrAttr::Attribute {
            oid: attribute.oid,
            values,
        }),
    }
}
