//! Names: subject strings, subjectAltNames, directory strings and fingerprints.

use std::fmt;
use std::net::IpAddr;

use der::{Tag, Tagged, asn1::Any, asn1::BmpString};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

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
///
/// The output is the same as `x509_cert`'s `Display`, which looks every attribute's OID up by
/// scanning the whole OID database; this runs several times per request, so the short names
/// are looked up once per OID and kept.
pub fn name_to_string(name: &Name) -> String {
    use std::fmt::Write as _;
    let rdns: &RdnSequence = name.as_ref();
    let rdns: &Vec<RelativeDistinguishedName> = rdns.as_ref();
    let mut out = String::with_capacity(64);
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let set: &der::asn1::SetOfVec<AttributeTypeAndValue> = rdn.as_ref();
        for (j, atv) in set.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match (short_name(&atv.oid), directory_text(&atv.value)) {
                (Some(key), Some(text)) => {
                    out.push_str(&key);
                    out.push('=');
                    escape_rfc4514(&mut out, text);
                }
                // Other value types and unnamed OIDs (`OID=#hex`): rare, the library's own.
                _ => {
                    let _ = write!(out, "{atv}");
                }
            }
        }
    }
    out
}

/// The upper-case shortest database name of an attribute OID, looked up once per OID.
fn short_name(oid: &der::oid::ObjectIdentifier) -> Option<std::sync::Arc<str>> {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock, RwLock};
    type Names = RwLock<HashMap<der::oid::ObjectIdentifier, Option<Arc<str>>>>;
    static NAMES: OnceLock<Names> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Some(known) = names.read().ok().and_then(|m| m.get(oid).cloned()) {
        return known;
    }
    let mut best: Option<&str> = None;
    for candidate in const_oid::db::DB.find_names_for_oid(*oid) {
        if best.is_none_or(|b| candidate.len() < b.len()) {
            best = Some(candidate);
        }
    }
    let found: Option<Arc<str>> = best.map(|b| Arc::from(b.to_ascii_uppercase()));
    if let Ok(mut m) = names.write() {
        // Bounded: only OIDs the database knows are kept, a fixed set.
        if found.is_some() || m.len() < 256 {
            m.insert(*oid, found.clone());
        }
    }
    found
}

/// The text of a directory-string value of the kinds printed as text.
fn directory_text(value: &Any) -> Option<&str> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
    match value.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok().map(|s| s.as_str()),
        _ => None,
    }
}

/// RFC 4514 2.4 escaping of an attribute value.
fn escape_rfc4514(out: &mut String, text: &str) {
    use std::fmt::Write as _;
    let last = text.chars().count().saturating_sub(1);
    for (n, c) in text.chars().enumerate() {
        match c {
            '#' if n == 0 => out.push_str("\\#"),
            ' ' if n == 0 || n == last => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\x00'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\{:02x}", c as u8);
            }
            _ => out.push(c),
        }
    }
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
