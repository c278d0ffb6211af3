use enrollgate_model::Secret;
use serde_json::json;

use super::*;
use crate::eab::tests::eab_object;
use crate::test_support::{TestKey, counter_rng, jwk_request, kid_request, sign_value};

const BASE: &str = "https://gw.example/acme";

fn urls() -> Urls {
    Urls::new(BASE)
}

fn verified_new_account(key: &TestKey, payload: Value) -> VerifiedJws {
    let url = urls().new_account();
    let body = jwk_request(key, &url, Some(&payload));
    Jws::parse(&body, &url, KeyRule::Jwk)
        .unwrap()
        .verify_embedded()
        .unwrap()
}

fn create(
    key: &TestKey,
    meta: &DirectoryMeta,
    payload: Value,
) -> Result<NewAccountOutcome, Problem> {
    let jws = verified_new_account(key, payload);
    new_account(&jws, None, meta, &urls(), |_| None, &mut counter_rng(), 100)
}

pub(crate) fn make_account(key: &TestKey) -> Account {
    let p = json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]});
    match create(key, &DirectoryMeta::default(), p).unwrap() {
        NewAccountOutcome::Created(a) => a,
        NewAccountOutcome::Existing(_) => unreachable!(),
    }
}

fn kid_jws(key: &TestKey, acct: &Account, url: &str, payload: Option<&Value>) -> VerifiedJws {
    let body = kid_request(key, &urls().account(&acct.id), url, payload);
    Jws::parse(&body, url, KeyRule::Kid)
        .unwrap()
        .verify(&acct.jwk)
        .unwrap()
}

#[test]
fn creates_account_with_thumbprint() {
    let key = TestKey::es256();
    let a = make_account(&key);
    assert_eq!(a.thumbprint, key.jwk().thumbprint());
    assert_eq!(a.status, AccountStatus::Valid);
    assert_eq!(
        a.to_json(&urls())["orders"],
        format!("{BASE}/orders/{}", a.id)
    );
    let row = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<Account>(&row).unwrap(), a);
}

#[test]
fn existing_and_only_return_existing() {
    let key = TestKey::es256();
    let a = make_account(&key);
    let jws = verified_new_account(&key, json!({"onlyReturnExisting": true}));
    let meta = DirectoryMeta::default();
    let got = new_account(
        &jws,
        Some(a.clone()),
        &meta,
        &urls(),
        |_| None,
        &mut counter_rng(),
        1,
    );
    assert_eq!(got.unwrap(), NewAccountOutcome::Existing(a));
    let none = new_account(&jws, None, &meta, &urls(), |_| None, &mut counter_rng(), 1);
    assert_eq!(none.unwrap_err().kind, ProblemType::AccountDoesNotExist);
}

#[test]
fn terms_and_contacts_are_checked() {
    let key = TestKey::es256();
    let meta = DirectoryMeta {
        terms_of_service: Some("https://gw.example/tos".into()),
        ..Default::default()
    };
    assert_eq!(
        create(&key, &meta, json!({})).unwrap_err().kind,
        ProblemType::Malformed
    );
    let open = DirectoryMeta::default();
    let tel = json!({"contact": ["tel:+1555"]});
    assert_eq!(
        create(&key, &open, tel).unwrap_err().kind,
        ProblemType::UnsupportedContact
    );
    for bad in [
        "mailto:nobody",
        "mailto:a@b.example?subject=x",
        "mailto:a@b.example,c@d.example",
    ] {
        let p = create(&key, &open, json!({"contact": [bad]})).unwrap_err();
        assert_eq!(p.kind, ProblemType::InvalidContact, "{bad}");
    }
    assert!(create(&key, &open, json!({"contact": 7})).is_err());
}

#[test]
fn eab_required_and_bound() {
    let key = TestKey::es256();
    let meta = DirectoryMeta {
        external_account_required: true,
        ..Default::default()
    };
    assert_eq!(
        create(&key, &meta, json!({})).unwrap_err().kind,
        ProblemType::ExternalAccountRequired
    );

    let eab = eab_object(&key.jwk(), "tok-7", b"mac key", &urls().new_account());
    let jws = verified_new_account(&key, json!({"externalAccountBinding": eab}));
    let lookup = |kid: &str| (kid == "tok-7").then(|| Secret::new(b"mac key".to_vec()));
    let got = new_account(&jws, None, &meta, &urls(), lookup, &mut counter_rng(), 1).unwrap();
    let NewAccountOutcome::Created(a) = got else {
        panic!("not created")
    };
    assert_eq!(a.eab_kid.as_deref(), Some("tok-7"));

    let wrong = |_: &str| Some(Secret::new(b"other".to_vec()));
    let p = new_account(&jws, None, &meta, &urls(), wrong, &mut counter_rng(), 1).unwrap_err();
    assert_eq!(p.kind, ProblemType::Unauthorized);
}

#[test]
fn update_and_deactivate() {
    let key = TestKey::es256();
    let mut a = make_account(&key);
    let url = urls().account(&a.id);
    a.update(&kid_jws(&key, &a, &url, None), &urls()).unwrap();
    let upd = json!({"contact": ["mailto:new@example.com"]});
    a.update(&kid_jws(&key, &a, &url, Some(&upd)), &urls())
        .unwrap();
    assert_eq!(a.contact, vec!["mailto:new@example.com".to_string()]);
    let bad = json!({"status": "valid"});
    assert!(
        a.update(&kid_jws(&key, &a, &url, Some(&bad)), &urls())
            .is_err()
    );
    let deact = json!({"status": "deactivated"});
    a.update(&kid_jws(&key, &a, &url, Some(&deact)), &urls())
        .unwrap();
    assert_eq!(a.status, AccountStatus::Deactivated);
    assert_eq!(a.check_valid().unwrap_err().kind, ProblemType::Unauthorized);
}

#[test]
fn a_revoked_account_can_neither_act_nor_update() {
    let key = TestKey::es256();
    let mut a = make_account(&key);
    assert!(a.revoke(), "the first revocation changes the status");
    assert!(!a.revoke(), "a second one does not");
    assert_eq!(a.status, AccountStatus::Revoked);
    assert_eq!(a.check_valid().unwrap_err().kind, ProblemType::Unauthorized);

    let url = urls().account(&a.id);
    let upd = json!({"contact": ["mailto:after@example.com"]});
    let before = a.clone();
    let refused = a.update(&kid_jws(&key, &a, &url, Some(&upd)), &urls());
    assert_eq!(refused.unwrap_err().kind, ProblemType::Unauthorized);
    assert_eq!(a, before, "a refused update changes nothing");
}

#[test]
fn another_account_cannot_update() {
    let (k1, k2) = (TestKey::es256(), TestKey::es256());
    let (mut a1, a2) = (make_account(&k1), make_account(&k2));
    let url = urls().account(&a1.id);
    let jws = kid_jws(&k2, &a2, &url, Some(&json!({"status": "deactivated"})));
    assert_eq!(
        a1.update(&jws, &urls()).unwrap_err().kind,
        ProblemType::Unauthorized
    );
}

/// The outer keyChange request: `inner_header` and `inner_payload` are signed by `new`.
fn key_change_jws(
    old: &TestKey,
    acct: &Account,
    new: &TestKey,
    inner_header: Value,
    inner_payload: Value,
) -> VerifiedJws {
    let inner = sign_value(new, inner_header, Some(&inner_payload));
    kid_jws(old, acct, &urls().key_change(), Some(&inner))
}

#[test]
fn key_change_happy_path() {
    let (old, new) = (
        TestKey::es256(),
        TestKey::generate(crate::jwk::Algorithm::EdDsa),
    );
    let mut a = make_account(&old);
    let url = urls().key_change();
    let header = json!({"jwk": new.jwk(), "url": url});
    let payload = json!({"account": urls().account(&a.id), "oldKey": old.jwk()});
    let nk = a
        .key_change(&key_change_jws(&old, &a, &new, header, payload), &urls())
        .unwrap();
    assert_eq!(nk.thumbprint, new.jwk().thumbprint());
    a.apply_key_change(nk);
    assert_eq!(a.jwk, new.jwk());
}

#[test]
fn key_change_mismatches() {
    let (old, new, other) = (TestKey::es256(), TestKey::es256(), TestKey::es256());
    let a = make_account(&old);
    let url = urls().key_change();
    let acct_url = urls().account(&a.id);
    let good_header = json!({"jwk": new.jwk(), "url": url});
    let cases = [
        // inner url differs from the outer url
        (
            json!({"jwk": new.jwk(), "url": urls().new_order()}),
            json!({"account": acct_url, "oldKey": old.jwk()}),
            ProblemType::Unauthorized,
        ),
        // inner uses kid instead of jwk
        (
            json!({"kid": acct_url, "url": url}),
            json!({"account": acct_url, "oldKey": old.jwk()}),
            ProblemType::Malformed,
        ),
        // wrong account
        (
            good_header.clone(),
            json!({"account": urls().account("someone"), "oldKey": old.jwk()}),
            ProblemType::Unauthorized,
        ),
        // wrong old key
        (
            good_header.clone(),
            json!({"account": acct_url, "oldKey": other.jwk()}),
            ProblemType::Unauthorized,
        ),
        // payload missing oldKey
        (
            good_header,
            json!({"account": acct_url}),
            ProblemType::Malformed,
        ),
    ];
    for (i, (h, p, kind)) in cases.into_iter().enumerate() {
        let got = a.key_change(&key_change_jws(&old, &a, &new, h, p), &urls());
        assert_eq!(got.unwrap_err().kind, kind, "case {i}");
    }

    // inner signed by a key other than the one it carries
    let forged = sign_value(
        &other,
        json!({"jwk": new.jwk(), "url": url}),
        Some(&json!({"account": acct_url, "oldKey": old.jwk()})),
    );
    let outer = kid_jws(&old, &a, &url, Some(&forged));
    assert!(a.key_change(&outer, &urls()).is_err());
}
