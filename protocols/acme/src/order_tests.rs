use enrollgate_model::{Credential, Issued, KeySource, Operation, Protocol};
use serde_json::json;

use super::*;
use crate::account::tests::make_account;
use crate::ari::CertId;
use crate::finalize::{finalize, order_failed, order_issued};
use crate::jws::{Jws, KeyRule};
use crate::revocation::{RevocationRequest, authorize_revocation};
use crate::test_support::{TestKey, counter_rng, jwk_request, kid_request, vector};

const BASE: &str = "https://gw.example/acme";

fn urls() -> Urls {
    Urls::new(BASE)
}

/// A signed request of `account` to `url`.
fn req(key: &TestKey, acct: &Account, url: &str, payload: Option<&Value>) -> VerifiedJws {
    let body = kid_request(key, &urls().account(&acct.id), url, payload);
    Jws::parse(&body, url, KeyRule::Kid)
        .unwrap()
        .verify(&acct.jwk)
        .unwrap()
}

struct World {
    key: TestKey,
    account: Account,
    meta: DirectoryMeta,
    settings: OrderSettings,
}

impl World {
    fn new() -> Self {
        let key = TestKey::es256();
        let account = make_account(&key);
        let mut meta = DirectoryMeta::default();
        meta.profiles
            .insert("tls-server".into(), "TLS server, 90 days".into());
        Self {
            key,
            account,
            meta,
            settings: OrderSettings::default(),
        }
    }

    fn order_with(
        &self,
        payload: Value,
        policy: &dyn IdentifierPolicy,
        replaced: Option<CertRecord>,
    ) -> Result<NewOrder, Problem> {
        let u = urls();
        let ctx = NewOrderContext {
            urls: &u,
            meta: &self.meta,
            settings: &self.settings,
            policy,
        };
        let jws = req(&self.key, &self.account, &u.new_order(), Some(&payload));
        new_order(
            &jws,
            &self.account,
            &ctx,
            |_| replaced,
            &mut counter_rng(),
            1000,
        )
    }

    fn order(&self, names: &[&str]) -> NewOrder {
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        self.order_with(json!({"identifiers": ids}), &AcceptAll, None)
            .unwrap()
    }

    /// Validates every authorization with its first challenge.
    fn validate_all(&self, authzs: &mut [Authorization]) {
        for a in authzs.iter_mut() {
            let task = a.respond(0, &self.account, 1100).unwrap().unwrap();
            assert_eq!(task.authz_id, a.id);
            a.challenge_validated(0, Ok(()), 1200).unwrap();
        }
    }

    fn finalize(
        &self,
        o: &mut NewOrder,
        csr: &[u8],
    ) -> Result<enrollgate_model::IssuanceRequest, Problem> {
        let u = urls();
        let payload = json!({"csr": crate::b64::encode(csr)});
        let jws = req(
            &self.key,
            &self.account,
            &u.finalize(&o.order.id),
            Some(&payload),
        );
        finalize(
            &mut o.order,
            &self.account,
            &jws,
            &o.authorizations,
            &u,
            "lab",
            1300,
        )
    }
}

fn issued() -> Issued {
    Issued {
        certificate: vector("leaf_a_b.der"),
        chain: vec![vector("ca.der")],
        serial: "87654321".into(),
        private_key: None,
    }
}

#[test]
fn lifecycle_pending_ready_processing_valid() {
    let w = World::new();
    let mut o = w.order(&["b.example.org", "A.example.org"]);
    assert_eq!(o.order.status, OrderStatus::Pending);
    assert_eq!(
        o.order.identifiers,
        vec![
            Identifier::dns("a.example.org"),
            Identifier::dns("b.example.org")
        ]
    );
    assert_eq!(o.authorizations.len(), 2);
    assert_eq!(o.order.expires, 1000 + 7 * 86400);

    let early = w.finalize(&mut o, &vector("csr_a_b.der")).unwrap_err();
    assert_eq!(
        (early.kind, early.status),
        (ProblemType::OrderNotReady, 403)
    );

    w.validate_all(&mut o.authorizations);
    o.order.refresh(&o.authorizations, 1250);
    assert_eq!(o.order.status, OrderStatus::Ready);

    let request = w.finalize(&mut o, &vector("csr_a_b.der")).unwrap();
    assert_eq!(o.order.status, OrderStatus::Processing);
    assert_eq!(request.protocol, Protocol::Acme);
    assert_eq!(request.route, "lab");
    assert_eq!(request.operation, Operation::Enroll);
    assert_eq!(request.transaction_id.as_deref(), Some(o.order.id.as_str()));
    assert!(matches!(
        request.requester.credential,
        Credential::Anonymous
    ));
    assert!(matches!(&request.key, KeySource::Csr(d) if *d == vector("csr_a_b.der")));
    let again = w.finalize(&mut o, &vector("csr_a_b.der")).unwrap_err();
    assert_eq!(again.kind, ProblemType::OrderNotReady);

    let record = order_issued(&mut o.order, &issued(), &mut counter_rng()).unwrap();
    assert_eq!(o.order.status, OrderStatus::Valid);
    assert_eq!(record.serial, "0087654321");
    assert!(record.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
    assert_eq!(record.not_after - record.not_before, 90 * 86400);
    let cert_id = CertId::parse(record.ari_id.as_deref().unwrap()).unwrap();
    assert_eq!(cert_id.serial, vec![0x00, 0x87, 0x65, 0x43, 0x21]);

    let j = o.order.to_json(&urls());
    assert_eq!(j["status"], "valid");
    assert_eq!(j["certificate"], urls().certificate(&record.id));
    assert_eq!(j["finalize"], urls().finalize(&o.order.id));
    assert_eq!(j["authorizations"].as_array().map(Vec::len), Some(2));
    let row = serde_json::to_string(&o.order).unwrap();
    assert_eq!(serde_json::from_str::<Order>(&row).unwrap(), o.order);
}

#[test]
fn finalize_with_mismatching_csr_names_is_bad_csr() {
    let w = World::new();
    let mut o = w.order(&["a.example.org", "b.example.org"]);
    w.validate_all(&mut o.authorizations);
    for csr in [
        "csr_a_b_c_extra.der",
        "csr_a_only_missing_b.der",
        "csr_cn_not_in_order.der",
    ] {
        let p = w.finalize(&mut o, &vector(csr)).unwrap_err();
        assert_eq!(p.kind, ProblemType::BadCsr, "{csr}");
        assert_eq!(
            o.order.status,
            OrderStatus::Ready,
            "{csr} must leave the order ready"
        );
    }
    let mut tampered = vector("csr_a_b.der");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        w.finalize(&mut o, &tampered).unwrap_err().kind,
        ProblemType::BadCsr
    );
    assert_eq!(
        w.finalize(&mut o, b"junk").unwrap_err().kind,
        ProblemType::BadCsr
    );
}

#[test]
fn failed_validation_or_registrar_makes_order_invalid() {
    let w = World::new();
    let mut o = w.order(&["a.example.org"]);
    o.authorizations[0].respond(0, &w.account, 1100).unwrap();
    let err = Problem::new(ProblemType::Dns, "NXDOMAIN");
    o.authorizations[0]
        .challenge_validated(0, Err(err), 1200)
        .unwrap();
    o.order.refresh(&o.authorizations, 1200);
    assert_eq!(o.order.status, OrderStatus::Invalid);

    let mut o = w.order(&["a.example.org", "b.example.org"]);
    w.validate_all(&mut o.authorizations);
    w.finalize(&mut o, &vector("csr_a_b.der")).unwrap();
    order_failed(
        &mut o.order,
        Problem::from_reject(&enrollgate_model::RejectReason::PolicyDenied("key".into())),
    );
    assert_eq!(o.order.status, OrderStatus::Invalid);
    assert_eq!(
        o.order.to_json(&urls())["error"]["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
    assert!(order_issued(&mut o.order, &issued(), &mut counter_rng()).is_err());
}

#[test]
fn orders_expire() {
    let w = World::new();
    let mut o = w.order(&["a.example.org"]);
    o.order.refresh(&o.authorizations, o.order.expires);
    assert_eq!(o.order.status, OrderStatus::Invalid);
}

#[test]
fn identifier_policy_rejection_has_subproblems() {
    let w = World::new();
    let policy = |_: &Account, id: &Identifier| {
        if id.value.ends_with(".internal.example") {
            Err(Problem::new(
                ProblemType::RejectedIdentifier,
                "internal names are not issued",
            ))
        } else {
            Ok(())
        }
    };
    let payload = json!({"identifiers": [
        {"type": "dns", "value": "ok.example.org"},
        {"type": "dns", "value": "db.internal.example"},
        {"type": "dns", "value": "x.internal.example"},
    ]});
    let p = w.order_with(payload, &policy, None).unwrap_err();
    assert_eq!(p.kind, ProblemType::RejectedIdentifier);
    assert_eq!(p.subproblems.len(), 2);
    assert_eq!(p.subproblems[0].identifier.value, "db.internal.example");

    let bad_syntax = json!({"identifiers": [{"type": "dns", "value": "no_underscores.example"}, {"type": "ip", "value": "300.1.1.1"}]});
    let p = w.order_with(bad_syntax, &AcceptAll, None).unwrap_err();
    assert_eq!((p.kind, p.subproblems.len()), (ProblemType::Malformed, 2));
    let unknown_type = json!({"identifiers": [{"type": "email", "value": "a@b.example"}]});
    let p = w.order_with(unknown_type, &AcceptAll, None).unwrap_err();
    assert_eq!(
        (p.kind, p.subproblems.len()),
        (ProblemType::UnsupportedIdentifier, 1)
    );
    assert!(
        w.order_with(json!({"identifiers": [{"type": 1}]}), &AcceptAll, None)
            .is_err()
    );
    assert!(
        w.order_with(json!({"identifiers": []}), &AcceptAll, None)
            .is_err()
    );
}

#[test]
fn profiles_and_validity_requests() {
    let w = World::new();
    let ids = json!([{"type": "dns", "value": "a.example.org"}]);
    let ok = w
        .order_with(
            json!({"identifiers": ids, "profile": "tls-server"}),
            &AcceptAll,
            None,
        )
        .unwrap();
    assert_eq!(ok.order.to_json(&urls())["profile"], "tls-server");
    let p = w
        .order_with(
            json!({"identifiers": ids, "profile": "shortlived"}),
            &AcceptAll,
            None,
        )
        .unwrap_err();
    assert_eq!(p.kind, ProblemType::InvalidProfile);
    let p = w.order_with(
        json!({"identifiers": ids, "notAfter": "2030-01-01T00:00:00Z"}),
        &AcceptAll,
        None,
    );
    assert_eq!(p.unwrap_err().kind, ProblemType::Malformed);
}

#[test]
fn replaces_through_new_order() {
    let w = World::new();
    let mut o = w.order(&["a.example.org", "b.example.org"]);
    w.validate_all(&mut o.authorizations);
    w.finalize(&mut o, &vector("csr_a_b.der")).unwrap();
    let record = order_issued(&mut o.order, &issued(), &mut counter_rng()).unwrap();
    let cert_id = record.ari_id.clone().unwrap();

    let payload =
        json!({"identifiers": [{"type": "dns", "value": "a.example.org"}], "replaces": cert_id});
    let first = w
        .order_with(payload.clone(), &AcceptAll, Some(record))
        .unwrap();
    let marked = first.replaced.clone().unwrap();
    assert_eq!(marked.replaced_by.as_deref(), Some(first.order.id.as_str()));
    assert_eq!(first.order.to_json(&urls())["replaces"], cert_id);

    let second = w.order_with(payload, &AcceptAll, Some(marked)).unwrap_err();
    assert_eq!(second.kind, ProblemType::AlreadyReplaced);

    let mut renewal = first;
    w.validate_all(&mut renewal.authorizations);
    let payload = json!({"csr": crate::b64::encode(&vector("csr_a_only_missing_b.der"))});
    let jws = req(
        &w.key,
        &w.account,
        &urls().finalize(&renewal.order.id),
        Some(&payload),
    );
    let request = finalize(
        &mut renewal.order,
        &w.account,
        &jws,
        &renewal.authorizations,
        &urls(),
        "",
        1300,
    )
    .unwrap();
    assert_eq!(request.operation, Operation::Renew);
}

#[test]
fn eab_account_issues_with_token_proven() {
    let mut w = World::new();
    w.account.eab_kid = Some("tok-9".into());
    let mut o = w.order(&["a.example.org", "b.example.org"]);
    w.validate_all(&mut o.authorizations);
    let request = w.finalize(&mut o, &vector("csr_a_b.der")).unwrap();
    assert!(
        matches!(request.requester.credential, Credential::TokenProven { id } if id == "tok-9")
    );
}

#[test]
fn revocation_by_account_and_by_certificate_key() {
    let w = World::new();
    let mut o = w.order(&["a.example.org", "b.example.org"]);
    w.validate_all(&mut o.authorizations);
    w.finalize(&mut o, &vector("csr_a_b.der")).unwrap();
    let mut record = order_issued(&mut o.order, &issued(), &mut counter_rng()).unwrap();
    let cert = crate::b64::encode(&vector("leaf_a_b.der"));
    let url = urls().revoke_cert();

    let seven = req(
        &w.key,
        &w.account,
        &url,
        Some(&json!({"certificate": cert, "reason": 7})),
    );
    assert_eq!(
        RevocationRequest::parse(&seven).unwrap_err().kind,
        ProblemType::BadRevocationReason
    );
    let big = req(
        &w.key,
        &w.account,
        &url,
        Some(&json!({"certificate": cert, "reason": 11})),
    );
    assert_eq!(
        RevocationRequest::parse(&big).unwrap_err().kind,
        ProblemType::BadRevocationReason
    );

    // Another account may not revoke it.
    let other_key = TestKey::es256();
    let other = make_account(&other_key);
    let jws = req(
        &other_key,
        &other,
        &url,
        Some(&json!({"certificate": cert, "reason": 1})),
    );
    let r = RevocationRequest::parse(&jws).unwrap();
    assert_eq!(r.fingerprint(), record.fingerprint);
    let p = authorize_revocation(&jws, &r, Some(&other), &mut record, 2000).unwrap_err();
    assert_eq!(p.kind, ProblemType::Unauthorized);

    // The certificate's own key may.
    let leaf = TestKey::leaf_key();
    let body = jwk_request(
        &leaf,
        &url,
        Some(&json!({"certificate": cert, "reason": 4})),
    );
    let jws = Jws::parse(&body, &url, KeyRule::Either)
        .unwrap()
        .verify_embedded()
        .unwrap();
    let r = RevocationRequest::parse(&jws).unwrap();
    let mut copy = record.clone();
    let done = authorize_revocation(&jws, &r, None, &mut copy, 2000).unwrap();
    assert_eq!((done.serial.as_str(), done.reason), ("0087654321", 4));

    // A different key carried as jwk may not.
    let stranger = TestKey::es256();
    let body = jwk_request(&stranger, &url, Some(&json!({"certificate": cert})));
    let jws = Jws::parse(&body, &url, KeyRule::Either)
        .unwrap()
        .verify_embedded()
        .unwrap();
    let p = authorize_revocation(&jws, &r, None, &mut record.clone(), 2000).unwrap_err();
    assert_eq!(p.kind, ProblemType::Unauthorized);

    // The owner may, once.
    let jws = req(
        &w.key,
        &w.account,
        &url,
        Some(&json!({"certificate": cert, "reason": 1})),
    );
    let r = RevocationRequest::parse(&jws).unwrap();
    authorize_revocation(&jws, &r, Some(&w.account), &mut record, 2000).unwrap();
    assert_eq!(record.revoked.as_ref().map(|x| x.reason), Some(1));
    let p = authorize_revocation(&jws, &r, Some(&w.account), &mut record, 2001).unwrap_err();
    assert_eq!(p.kind, ProblemType::AlreadyRevoked);
}
