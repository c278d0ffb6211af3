use super::*;
use crate::account::tests::make_account;
use crate::problem::ProblemType;
use crate::test_support::{TestKey, counter_rng};

const ALL: [ChallengeType; 3] = [
    ChallengeType::Http01,
    ChallengeType::Dns01,
    ChallengeType::TlsAlpn01,
];

fn authz(id: &Identifier, account: &Account) -> Authorization {
    Authorization::new(id, &ALL, ("order1", &account.id), 1000, &mut counter_rng())
}

#[test]
fn challenge_types_fit_the_identifier() {
    let acct = make_account(&TestKey::es256());
    let plain = authz(&Identifier::dns("a.example.org"), &acct);
    assert_eq!(plain.challenges.len(), 3);
    let wild = authz(&Identifier::dns("*.example.org"), &acct);
    assert!(wild.wildcard);
    assert_eq!(wild.identifier.value, "example.org");
    assert_eq!(
        wild.challenges.iter().map(|c| c.kind).collect::<Vec<_>>(),
        vec![ChallengeType::Dns01]
    );
    let ip = authz(&Identifier::ip("192.0.2.1"), &acct);
    assert!(ip.challenges.iter().all(|c| c.kind != ChallengeType::Dns01));
    let tokens: std::collections::HashSet<_> = plain.challenges.iter().map(|c| &c.token).collect();
    assert_eq!(tokens.len(), 3);
}

#[test]
fn respond_then_validated_ok() {
    let acct = make_account(&TestKey::es256());
    let mut a = authz(&Identifier::dns("a.example.org"), &acct);
    let task = a.respond(1, &acct, 10).unwrap().unwrap();
    assert_eq!(task.kind, ChallengeType::Dns01);
    assert_eq!(
        task.key_authorization,
        format!("{}.{}", a.challenges[1].token, acct.thumbprint)
    );
    assert_eq!(a.challenges[1].status, ChallengeStatus::Processing);
    assert_eq!(
        a.respond(1, &acct, 11).unwrap(),
        None,
        "second response is idempotent"
    );
    a.challenge_validated(1, Ok(()), 12).unwrap();
    assert_eq!(
        (a.status, a.challenges[1].status),
        (AuthzStatus::Valid, ChallengeStatus::Valid)
    );
    let j = a.to_json(&Urls::new("https://gw.example/acme"));
    assert_eq!(j["challenges"][1]["validated"], "1970-01-01T00:00:12Z");
    assert_eq!(
        j["challenges"][1]["url"],
        format!("https://gw.example/acme/chall/{}/1", a.id)
    );
    assert!(
        a.challenge_validated(1, Ok(()), 13).is_err(),
        "a verdict without processing is refused"
    );
}

#[test]
fn failed_validation_invalidates() {
    let acct = make_account(&TestKey::es256());
    let mut a = authz(&Identifier::dns("a.example.org"), &acct);
    a.respond(0, &acct, 10).unwrap();
    let err = Problem::new(ProblemType::Connection, "refused");
    a.challenge_validated(0, Err(err), 11).unwrap();
    assert_eq!(a.status, AuthzStatus::Invalid);
    let row = serde_json::to_string(&a).unwrap();
    let back: Authorization = serde_json::from_str(&row).unwrap();
    assert_eq!(
        back.challenges[0].error.as_ref().map(|e| e.kind),
        Some(ProblemType::Connection)
    );
    assert_eq!(
        a.respond(1, &acct, 12).unwrap_err().kind,
        ProblemType::Malformed
    );
}

#[test]
fn expiry_ownership_and_deactivation() {
    let acct = make_account(&TestKey::es256());
    let other = make_account(&TestKey::es256());
    let mut a = authz(&Identifier::dns("a.example.org"), &acct);
    assert_eq!(
        a.respond(0, &other, 1).unwrap_err().kind,
        ProblemType::Unauthorized
    );
    assert!(a.respond(9, &acct, 1).is_err());
    a.update(br#"{"status":"deactivated"}"#, 2).unwrap();
    assert_eq!(a.status, AuthzStatus::Deactivated);
    let mut b = authz(&Identifier::dns("b.example.org"), &acct);
    assert!(b.respond(0, &acct, 5000).is_err());
    assert_eq!(b.status, AuthzStatus::Expired);
    assert!(b.update(b"{bad", 5000).is_err());
}
