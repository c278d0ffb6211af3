//! Checks on what a CA sent back, before the registrar sees it, and PEM/DER helpers.
//!
//! A remote CA's answer is peer data: the certificate must decode, certify the approved key,
//! and be signed by the first certificate of the chain, each chain certificate by the next.
//! A chain that does not verify is refused as an unusable answer, never handed out.

use der::{Decode, Encode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_cert::Certificate;

use super::{BackendCert, BackendError};
use crate::issuance::Approved;

/// Certificates accepted in one chain.
const MAX_CHAIN: usize = 8;

/// Why a CA's certificate is unusable; the `kind` is a metrics label.
#[derive(Debug)]
pub struct Unusable {
    /// Stable label: `garbage`, `key_mismatch`, `bad_chain`.
    pub kind: &'static str,
    /// Explanation for the log.
    pub detail: String,
}

impl From<Unusable> for BackendError {
    fn from(u: Unusable) -> Self {
        Self::Invalid(format!("{}: {}", u.kind, u.detail))
    }
}

/// Checks an issued certificate against the approved request and its own chain.
///
/// `verify_leaf` is false only for a backend that signed in this process: the leaf's
/// signature is then ours by construction (aws-lc checks its own RSA signatures against
/// faults), and checking it again would cost as much as the signature itself.
pub fn check_answer(
    cert: &BackendCert,
    approved: &Approved,
    verify_leaf: bool,
) -> Result<(), Unusable> {
    let leaf = decode(&cert.certificate)?;
    let same_key = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()
        == approved.public_key().to_der().ok();
    if !same_key {
        return Err(Unusable {
            kind: "key_mismatch",
            detail: "the certificate certifies another key than the request's".into(),
        });
    }
    check_chain(&leaf, &cert.chain, verify_leaf)
}

/// Checks that `leaf` is signed by `chain[0]`, and each chain certificate by the next.
/// An empty chain is accepted (the route's configured chain is served instead).
pub fn check_chain(
    leaf: &Certificate,
    chain: &[Vec<u8>],
    verify_leaf: bool,
) -> Result<(), Unusable> {
    if chain.len() > MAX_CHAIN {
        return Err(bad_chain(format!("{} certificates", chain.len())));
    }
    let mut child = leaf.clone();
    let mut child_der: Option<&[u8]> = None;
    for der in chain {
        let parent = decode(der)?;
        if child.tbs_certificate().issuer() != parent.tbs_certificate().subject() {
            return Err(bad_chain("issuer and next subject differ".into()));
        }
        match child_der {
            // The leaf is new with every answer: checked unless we signed it ourselves.
            None if verify_leaf => verify_signed_by(&child, &parent)?,
            None => {}
            // CA links repeat with every answer: checked once, then remembered.
            Some(c) => {
                let link = link_key(c, der);
                if !VERIFIED_LINKS.with(|set| set.contains(&link)) {
                    verify_signed_by(&child, &parent)?;
                    VERIFIED_LINKS.with(|set| set.insert(link));
                }
            }
        }
        child = parent;
        child_der = Some(der);
    }
    Ok(())
}

/// CA-to-CA links whose signature verified, by SHA-256 of (child, parent). Bounded: when
/// full it starts over (a CA set never comes near the bound).
struct Links(std::sync::Mutex<std::collections::HashSet<[u8; 32]>>);

const MAX_LINKS: usize = 256;

static VERIFIED_LINKS: std::sync::LazyLock<Links> =
    std::sync::LazyLock::new(|| Links(std::sync::Mutex::new(Default::default())));

impl Links {
    fn with<T>(&self, f: impl FnOnce(&mut std::collections::HashSet<[u8; 32]>) -> T) -> T {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_LINKS {
            set.clear();
        }
        f(&mut set)
    }
}

fn link_key(child: &[u8], parent: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&(child.len() as u64).to_be_bytes());
    ctx.update(child);
    ctx.update(parent);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Checks `child`'s signature with `parent`'s key.
pub fn verify_signed_by(child: &Certificate, parent: &Certificate) -> Result<(), Unusable> {
    let tbs = child
        .tbs_certificate()
        .to_der()
        .map_err(|e| garbage(e.to_string()))?;
    let signature = child
        .signature()
        .as_bytes()
        .ok_or_else(|| garbage("signature is not whole bytes".into()))?;
    enrollgate_pkix::verify_signature(
        parent.tbs_certificate().subject_public_key_info(),
        child.signature_algorithm(),
        &tbs,
        signature,
    )
    .map_err(|e| bad_chain(format!("signature does not verify: {e}")))
}

/// Decodes one certificate.
pub fn decode(der: &[u8]) -> Result<Certificate, Unusable> {
    Certificate::from_der(der).map_err(|e| garbage(format!("undecodable certificate: {e}")))
}

/// Every certificate in PEM text, DER; fails on text with none.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, Unusable> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .take(MAX_CHAIN + 1)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| garbage(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(garbage("no certificate in the answer".into()));
    }
    Ok(certs)
}

/// PEM text of a PKCS#10 request.
pub fn csr_pem(der: &[u8]) -> String {
    pem_block("CERTIFICATE REQUEST", der)
}

/// One PEM block with 64-column base64 lines.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Splits an answer into leaf and chain, dropping a self-signed root's duplicate of the
/// leaf if a CA repeats it first in its chain.
pub fn split_leaf(mut certs: Vec<Vec<u8>>) -> Option<BackendCert> {
    if certs.is_empty() {
        return None;
    }
    let certificate = certs.remove(0);
    certs.retain(|c| *c != certificate);
    Some(BackendCert {
        certificate,
        chain: certs,
        issued_by: String::new(),
    })
}

/// The serial number of a certificate, lower-case hex as the store keeps it.
pub fn serial_hex(der: &[u8]) -> Option<String> {
    let cert = Certificate::from_der(der).ok()?;
    Some(hex::encode(
        cert.tbs_certificate().serial_number().as_bytes(),
    ))
}

fn garbage(detail: String) -> Unusable {
    Unusable {
        kind: "garbage",
        detail,
    }
}

fn bad_chain(detail: String) -> Unusable {
    Unusable {
        kind: "bad_chain",
        detail,
    }
}
