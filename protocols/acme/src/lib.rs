//! A sans-I/O ACME server core (RFC 8555), with external account binding, ARI (RFC 9773),
//! IP identifiers (RFC 8738), tls-alpn-01 (RFC 8737) and certificate profiles
//! (draft-aaron-acme-profiles).
//!
//! # Design
//!
//! The crate owns the protocol; the gateway owns I/O, time, randomness and storage. Every
//! piece of state lives in serde records that the gateway stores as JSON rows —
//! [`account::Account`], [`order::Order`], [`challenge::Authorization`] (challenges inside),
//! [`cert::CertRecord`] — plus the nonces it issues. Nodes keep nothing, so any node can answer
//! any step. Transitions are functions over those records that take the current time as unix
//! seconds and randomness as an [`ids::Rng`] closure; each returns what to store and what to
//! answer, or a [`problem::Problem`], which is the crate's one error type and is already the
//! wire reply (status, `application/problem+json` body).
//!
//! A request is checked in two typed steps: [`jws::Jws::parse`] applies the rules that need no
//! key; [`jws::Jws::verify`] alone makes a [`jws::VerifiedJws`], and every transition that
//! acts for a client takes one. [`finalize::finalize`] is the only way to a
//! [`enrollgate_model::IssuanceRequest`], so nothing reaches the registrar without a ready
//! order whose CSR names equal its validated identifiers.
//!
//! # Driving it (the gateway's side)
//!
//! 1. Strip the route's base from the path, [`router::route`] it; 404 on `None`. GET is
//!    answered only where [`router::Resource::allows_get`]: the directory
//!    ([`resources::directory_json`]), newNonce (store [`ids::new_nonce`]; 200 for HEAD/GET,
//!    204 is also fine) and renewalInfo ([`ari::CertId::parse`], look up the record by
//!    `CertId::to_string()`, answer [`ari::renewal_info`] with `Retry-After`).
//! 2. For a POST: `Jws::parse(body, absolute_request_url, resource.key_rule())`; then take the
//!    nonce ([`jws::Jws::nonce`]) out of the store atomically, `badNonce` if it was not there.
//!    For a `kid`, map it with [`resources::Urls::account_id_from_kid`], load the account
//!    (`accountDoesNotExist` if missing), [`account::Account::check_valid`], and
//!    `verify(&account.jwk)`; for a `jwk`, `verify_embedded()`.
//! 3. Every response (errors too) carries a fresh `Replay-Nonce`, and
//!    `Link: <directory>;rel="index"`.
//! 4. Per resource: newAccount → [`account::new_account`] (look the key's thumbprint up
//!    first; store a `Created` account with a unique thumbprint index; EAB keys looked up by
//!    kid). Account URL → [`account::Account::update`]. keyChange →
//!    [`account::Account::key_change`], 409 if another account has the new thumbprint, else
//!    [`account::Account::apply_key_change`]. newOrder → [`order::new_order`] with the route's
//!    [`order::IdentifierPolicy`]; store the order, its authorizations and the replaced
//!    certificate record in one transaction. authz → [`challenge::Authorization::update`].
//!    Challenge POST `{}` → [`challenge::Authorization::respond`]; run the returned
//!    [`challenge::ValidationTask`] in the background with [`validation`]'s checks, then
//!    [`challenge::Authorization::challenge_validated`] and [`order::Order::refresh`] the
//!    order, storing both. finalize → [`finalize::finalize`]; store the `processing` order,
//!    hand the request to the registrar, then [`finalize::order_issued`] (store the
//!    [`cert::CertRecord`] with fingerprint and CertID indexes) or [`finalize::order_failed`]
//!    with [`problem::Problem::from_reject`]. cert → serve `chain_pem` as
//!    [`cert::PEM_CHAIN_CONTENT_TYPE`] after [`cert::CertRecord::check_owner`]. revokeCert →
//!    [`revocation::RevocationRequest::parse`], find the record by fingerprint,
//!    [`revocation::authorize_revocation`], revoke at the backend, store.
//! 5. Order and authorization reads: call the `refresh` methods first and store any change;
//!    concurrent writers must use compare-and-set or row locks (a challenge verdict and a
//!    finalize can race).
//!
//! # Not supported
//!
//! - Authorization reuse across orders and pre-authorization (newAuthz).
//! - Revocation by an account that holds authorizations for all names of a certificate it did
//!   not order (only the ordering account or the certificate's key may revoke).
//! - Orders list pagination; `onlyReturnExisting` is honoured but account `orders` is a flat list.
//! - Requested `notBefore`/`notAfter` are refused unless [`order::OrderSettings`] allows them.
//! - JWS `crit`/`b64` extensions, the general JWS serialisation, unprotected headers, ES512.
//! - Network validation itself (HTTP fetch, DNS, TLS handshake) and HTTP routing: the gateway's.

#![forbid(unsafe_code)]

pub mod account;
pub mod ari;
mod b64;
pub mod cert;
pub mod challenge;
pub mod eab;
pub mod finalize;
pub mod ids;
pub mod jwk;
pub mod jws;
pub mod order;
pub mod problem;
pub mod resources;
pub mod revocation;
pub mod router;
pub mod validation;

pub use problem::{PROBLEM_CONTENT_TYPE, Problem, ProblemType};

#[cfg(test)]
mod test_support;
