//! Object identifiers used by CMP (RFC 9810 appendix F), CRMF (RFC 4211) and the algorithm
//! profile (RFC 9481).

use der::asn1::ObjectIdentifier as Oid;

/// `id-PasswordBasedMac` (RFC 9810 section 5.1.3.1).
pub const PASSWORD_BASED_MAC: Oid = Oid::new_unwrap("1.2.840.113533.7.66.13");
/// `id-PBMAC1` (RFC 8018, profiled by RFC 9481 section 6.1.2).
pub const PBMAC1: Oid = Oid::new_unwrap("1.2.840.113549.1.5.14");
/// `id-PBKDF2` (RFC 8018).
pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");

/// `hmac-sha1` as used by PasswordBasedMac (RFC 9481 section 6.2.1).
pub const HMAC_SHA1: Oid = Oid::new_unwrap("1.3.6.1.5.5.8.1.2");
/// `hmacWithSHA1` (RFC 8018), another name for HMAC-SHA1.
pub const HMAC_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
/// `hmacWithSHA224`.
pub const HMAC_WITH_SHA224: Oid = Oid::new_unwrap("1.2.840.113549.2.8");
/// `hmacWithSHA256`.
pub const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
/// `hmacWithSHA384`.
pub const HMAC_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
/// `hmacWithSHA512`.
pub const HMAC_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");

/// SHA-1.
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// SHA-224.
pub const SHA224: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.4");
/// SHA-256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// SHA-384.
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// SHA-512.
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// `ecdsa-with-SHA256`.
pub const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384`.
pub const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// `ecdsa-with-SHA512`.
pub const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// `sha256WithRSAEncryption`.
pub const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// `sha384WithRSAEncryption`.
pub const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// `sha512WithRSAEncryption`.
pub const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// `id-Ed25519`.
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");

/// `id-ecPublicKey`.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// `rsaEncryption`.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// `secp256r1` (P-256).
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (P-384).
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");

/// `id-it-implicitConfirm` (RFC 9810 section 5.1.1.1).
pub const IT_IMPLICIT_CONFIRM: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.13");
/// `id-it-confirmWaitTime` (RFC 9810 section 5.1.1.2).
pub const IT_CONFIRM_WAIT_TIME: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.14");
/// `id-it-caCerts` (RFC 9810 section 5.3.19.15).
pub const IT_CA_CERTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.17");
/// `id-it-rootCaKeyUpdate` (RFC 9810 section 5.3.19.16).
pub const IT_ROOT_CA_KEY_UPDATE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.18");
/// `id-it-certReqTemplate` (RFC 9810 section 5.3.19.17).
pub const IT_CERT_REQ_TEMPLATE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.19");
/// `id-it-rootCaCert` (RFC 9810 section 5.3.19.16).
pub const IT_ROOT_CA_CERT: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.20");

/// `id-regCtrl-oldCertID` (RFC 4211 section 6.5).
pub const REG_CTRL_OLD_CERT_ID: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.5.1.5");
/// `id-ce-cRLReasons` (RFC 5280 section 5.3.1).
pub const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// `id-ce-subjectKeyIdentifier`.
pub const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
