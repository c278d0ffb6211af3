//! Names: subject strings, subjectAltNames, directory strings and fingerprints.

use std::fmt;
use std::net::IpAddr;

use der::{Tag, Tagged, asn1::Any, asn1::BmpString};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::PkixError;

/// One subjectAltName entry of a kind the gateway's policy understands (RFC 5280 4.2.1.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum San {
    /// dNSName, as written (not lower-cased, not checked for syntax).
    Dns(String),
    /// iPAddress, IPv4 or IPv6.
    Ip(IpAddr),
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier.
    Uri(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
            Self::Email(addr) => write!(f, "email:{addr}"),
            Self::Uri(uri) => write!(f, "URI:{uri}"),
        }
    }
}

impl San {
    /// Converts one GeneralName; kinds other than the four above are refused with
    /// [`PkixError::UnsupportedName`].
    pub fn from_general_name(name: &GeneralName) -> Result<Self, PkixError> {
        match name {
            GeneralName::DnsName(s) => Ok(Self::Dns(s.to_string())),
            GeneralName::Rfc822Name(s) => Ok(Self::Email(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Ok(Self::Uri(s.to_string())),
            GeneralName::IpAddress(octets) => ip_from_octets(octets.as_bytes()).map(Self::Ip),
            GeneralName::OtherName(_) => Err(PkixError::UnsupportedName("otherName")),
            GeneralName::DirectoryName(_) => Err(PkixError::UnsupportedName("directoryName")),
            GeneralName::EdiPartyName(_) => Err(PkixError::UnsupportedName("ediPartyName")),
            GeneralName::RegisteredId(_) => Err(PkixError::UnsupportedName("registeredID")),
        }
    }
}

/// An iPAddress SAN holds 4 or 16 octets; anything else (such as a name constraint's
/// address-and-mask form) is invalid in a subjectAltName.
fn ip_from_octets(octets: &[u8]) -> Result<IpAddr, PkixError> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Ok(IpAddr::from(v4));
    }
    if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        return Ok(IpAddr::from(v6));
    }
    Err(PkixError::invalid(
        "subjectAltName",
        format!("iPAddress of {} octets", octets.len()),
    ))
}

/// The RFC 4514 string of a name: most specific RDN first, short attribute names where known
/// (`CN=dev1,O=Acme`), `OID=#hex` for attributes without one.
pub fn name_to_string(name: &Name) -> String {
    name.to_string()
}

/// The lower-case hex SHA-256 of `der` (a certificate's fingerprint when `der` is one).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            out.push_str(&format!("{byte:02x}"));
            out
        })
}

/// The text of a DirectoryString-like value (PrintableString, UTF8String, IA5String,
/// TeletexString read as UTF-8, BMPString); `None` for other types or invalid text.
pub(crate) fn directory_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(value.value()).ok().map(str::to_owned)
        }
        Tag::BmpString => BmpString::from_ucs2(value.value())
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}
