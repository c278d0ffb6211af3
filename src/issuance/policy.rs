//! Profile policy: what a certificate may say, checked before any signature is asked for.
//!
//! [`check`] is the only way to make an [`Approved`] request, and backends accept nothing
//! else: a request that did not pass policy cannot reach a signature.

use std::time::{Duration, SystemTime};

use der::asn1::{Ia5String, OctetString};
use der::flagset::FlagSet;
use enrollgate_model::RejectReason;
use enrollgate_pkix::{KeyKind, San};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::config::Profile;

/// A request that passed policy, with everything the certificate will say.
#[derive(Clone, Debug)]
pub struct Approved {
    route: String,
    profile: String,
    serial: Vec<u8>,
    subject: Name,
    public_key: SubjectPublicKeyInfoOwned,
    sans: Vec<GeneralName>,
    not_before: SystemTime,
    not_after: SystemTime,
    key_usage: FlagSet<KeyUsages>,
    extended_key_usage: Vec<const_oid::ObjectIdentifier>,
    csr: Option<Vec<u8>>,
}

impl Approved {
    /// The route label the request arrived on (selects the backends).
    pub fn route(&self) -> &str {
        &self.route
    }
    /// The profile name.
    pub fn profile(&self) -> &str {
        &self.profile
    }
    /// The serial number the gateway chose (backends that pick their own may ignore it).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// The subject.
    pub fn subject(&self) -> &Name {
        &self.subject
    }
    /// The key to certify.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.public_key
    }
    /// Subject alternative names, as policy allowed them.
    pub fn subject_alt_names(&self) -> &[GeneralName] {
        &self.sans
    }
    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }
    /// End of validity, clamped to the issuing CA's.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
    /// Key usage bits from the profile.
    pub fn key_usage(&self) -> FlagSet<KeyUsages> {
        self.key_usage
    }
    /// Extended key usages from the profile.
    pub fn extended_key_usage(&self) -> &[const_oid::ObjectIdentifier] {
        &self.extended_key_usage
    }
    /// The requester's CSR, for backends that forward a PKCS#10 (absent for generated keys).
    pub fn csr(&self) -> Option<&[u8]> {
        self.csr.as_deref()
    }
}

/// What is asked for, from whatever the protocol carried.
pub struct Candidate<'a> {
    /// Requested subject.
    pub subject: &'a Name,
    /// The key.
    pub public_key: &'a SubjectPublicKeyInfoOwned,
    /// Requested alternative names.
    pub sans: &'a [San],
    /// The PKCS#10 it came in, when there is one signed by this key.
    pub csr: Option<&'a [u8]>,
}

/// Checks a candidate against a profile (and a token's own subject pattern).
pub fn check(
    route: &str,
    profile_name: &str,
    profile: &Profile,
    candidate: &Candidate<'_>,
    token_subject_pattern: Option<&str>,
    ca_not_after: SystemTime,
) -> Result<Approved, RejectReason> {
    check_key(profile, candidate.public_key)?;

    let subject = enrollgate_pkix::name_to_string(candidate.subject);
    if !glob(&profile.subject_pattern, &subject) {
        return Err(RejectReason::PolicyDenied(format!(
            "subject {subject} not allowed"
        )));
    }
    if let Some(pattern) = token_subject_pattern
        && !glob(pattern, &subject)
    {
        return Err(RejectReason::PolicyDenied(format!(
            "subject {subject} not allowed for this token"
        )));
    }
    if candidate.subject.is_empty() && candidate.sans.is_empty() {
        return Err(RejectReason::PolicyDenied(
            "empty subject and no alternative name".into(),
        ));
    }
    let sans = candidate
        .sans
        .iter()
        .map(|s| allowed_san(profile, s))
        .collect::<Result<Vec<_>, _>>()?;

    let now = SystemTime::now();
    let wanted = now + Duration::from_secs(u64::from(profile.validity_days) * 86_400);
    Ok(Approved {
        route: route.to_owned(),
        profile: profile_name.to_owned(),
        serial: crate::ca::random_serial(),
        subject: candidate.subject.clone(),
        public_key: candidate.public_key.clone(),
        sans,
        // Tolerate clients whose clocks run a little behind.
        not_before: now - Duration::from_secs(300),
        not_after: wanted.min(ca_not_after),
        key_usage: profile
            .key_usage
            .iter()
            .filter_map(|k| crate::ca::key_usage_bit(k))
            .fold(FlagSet::default(), |set, bit| set | bit),
        extended_key_usage: profile
            .extended_key_usage
            .iter()
            .filter_map(|e| crate::ca::eku_oid(e))
            .collect(),
        csr: candidate.csr.map(<[u8]>::to_vec),
    })
}

fn check_key(profile: &Profile, key: &SubjectPublicKeyInfoOwned) -> Result<(), RejectReason> {
    let kind = KeyKind::of(key).map_err(|e| RejectReason::BadAlgorithm(e.to_string()))?;
    let name = match kind {
        KeyKind::Rsa { bits } => {
            if bits < profile.min_rsa_bits {
                return Err(RejectReason::BadAlgorithm(format!(
                    "RSA key of {bits} bits is below the minimum of {}",
                    profile.min_rsa_bits
                )));
            }
            "rsa"
        }
        KeyKind::EcP256 => "p256",
        KeyKind::EcP384 => "p384",
        KeyKind::EcP521 => "p521",
        KeyKind::Ed25519 => "ed25519",
    };
    if !profile.key_types.iter().any(|k| k == name) {
        return Err(RejectReason::BadAlgorithm(format!(
            "{kind} keys are not accepted"
        )));
    }
    Ok(())
}

fn allowed_san(profile: &Profile, san: &San) -> Result<GeneralName, RejectReason> {
    let denied = || RejectReason::PolicyDenied(format!("alternative name {san} not allowed"));
    let ia5 = |s: &str| Ia5String::new(s).map_err(|_| denied());
    let any_glob = |patterns: &[String], value: &str| patterns.iter().any(|p| glob(p, value));
    match san {
        San::Dns(n) if any_glob(&profile.san_dns, &n.to_ascii_lowercase()) => {
            Ok(GeneralName::DnsName(ia5(n)?))
        }
        San::Email(e) if any_glob(&profile.san_email, e) => Ok(GeneralName::Rfc822Name(ia5(e)?)),
        San::Uri(u) if any_glob(&profile.san_uri, u) => {
            Ok(GeneralName::UniformResourceIdentifier(ia5(u)?))
        }
        San::Ip(ip) if profile.san_ip => {
            let octets = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            Ok(GeneralName::IpAddress(
                OctetString::new(octets).map_err(|_| denied())?,
            ))
        }
        _ => Err(denied()),
    }
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob("*", ""));
        assert!(glob("CN=*,O=Acme", "CN=dev1,O=Acme"));
        assert!(!glob("CN=*,O=Acme", "CN=dev1,O=Evil"));
        assert!(glob("*.example.com", "a.b.example.com"));
        assert!(!glob("*.example.com", "example.org"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }
}
