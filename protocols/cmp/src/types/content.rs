//! Body contents other than requests (RFC 9810 section 5.3).

use der::asn1::{Any, Int, OctetString};
use der::{Choice, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;

use super::crmf::{CertId, CertTemplate};
use super::header::{PkiFreeText, PkiStatusInfo};

/// `CertRepMessage` (RFC 9810 section 5.3.4): the content of ip, cp and kup.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertRepMessage {
    /// `caPubs [1]`: certificates, raw.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub ca_pubs: Option<Vec<Any>>,
    /// `response`.
    pub response: Vec<CertResponse>,
}

/// `CertResponse` (RFC 9810 section 5.3.4).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertResponse {
    /// `certReqId`.
    pub cert_req_id: i64,
    /// `status`.
    pub status: PkiStatusInfo,
    /// `certifiedKeyPair`.
    #[asn1(optional = "true")]
    pub certified_key_pair: Option<CertifiedKeyPair>,
    /// `rspInfo`.
    #[asn1(optional = "true")]
    pub rsp_info: Option<OctetString>,
}

/// `CertifiedKeyPair` (RFC 9810 section 5.3.4).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertifiedKeyPair {
    /// `certOrEncCert`.
    pub cert_or_enc_cert: CertOrEncCert,
    /// `privateKey [0]`: central key generation (not supported), raw.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub private_key: Option<Any>,
    /// `publicationInfo [1]`, raw.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub publication_info: Option<Any>,
}

/// `CertOrEncCert` (RFC 9810 section 5.3.4).
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum CertOrEncCert {
    /// `certificate [0] CMPCertificate`: the certificate DER, raw.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", constructed = "true")]
    Certificate(Any),
    /// `encryptedCert [1] EncryptedKey` (not supported), raw.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    EncryptedCert(Any),
}

/// `RevDetails` (RFC 9810 section 5.3.9); `RevReqContent` is a sequence of them.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RevDetails {
    /// `certDetails`: issuer and serial number of the certificate to revoke.
    pub cert_details: CertTemplate,
    /// `crlEntryDetails`: the reason code, among others.
    #[asn1(optional = "true")]
    pub crl_entry_details: Option<Extensions>,
}

/// `RevRepContent` (RFC 9810 section 5.3.10).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RevRepContent {
    /// `status`, one per request.
    pub status: Vec<PkiStatusInfo>,
    /// `revCerts [0]`.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub rev_certs: Option<Vec<CertId>>,
    /// `crls [1]`, raw.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub crls: Option<Vec<Any>>,
}

/// `CertConfirmContent ::= SEQUENCE OF CertStatus` (RFC 9810 section 5.3.18).
pub type CertConfirmContent = Vec<CertStatus>;

/// `CertStatus` (RFC 9810 section 5.3.18).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertStatus {
    /// `certHash`.
    pub cert_hash: OctetString,
    /// `certReqId`.
    pub cert_req_id: i64,
    /// `statusInfo`: absent means accepted.
    #[asn1(optional = "true")]
    pub status_info: Option<PkiStatusInfo>,
    /// `hashAlg [0]` (pvno 3 only).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_alg: Option<AlgorithmIdentifierOwned>,
}

/// One entry of `PollReqContent` (RFC 9810 section 5.3.22).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PollReqEntry {
    /// `certReqId`.
    pub cert_req_id: i64,
}

/// One entry of `PollRepContent` (RFC 9810 section 5.3.22).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PollRepEntry {
    /// `certReqId`.
    pub cert_req_id: i64,
    /// `checkAfter`, in seconds.
    pub check_after: i64,
    /// `reason`.
    #[asn1(optional = "true")]
    pub reason: Option<PkiFreeText>,
}

/// `ErrorMsgContent` (RFC 9810 section 5.3.21).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ErrorMsgContent {
    /// `pKIStatusInfo`.
    pub pki_status_info: PkiStatusInfo,
    /// `errorCode`.
    #[asn1(optional = "true")]
    pub error_code: Option<Int>,
    /// `errorDetails`.
    #[asn1(optional = "true")]
    pub error_details: Option<PkiFreeText>,
}
