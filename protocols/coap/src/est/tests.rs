use super::*;
use crate::message::RequestId;
use enrollgate_model::{Issued, Secret};

const CSR: &[u8] = include_bytes!("../../tests/vectors/csr_p256.der");

fn path(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn request(method: RequestType, p: &str, cf: Option<u16>, payload: &[u8]) -> Request {
    Request {
        id: RequestId(0),
        method,
        path: path(p),
        query: Vec::new(),
        content_format: cf,
        accept: None,
        payload: payload.to_vec(),
        confirmable: true,
    }
}

fn decide(op: &str, req: &Request, credential: Credential) -> EstCoapsDecision {
    let parsed = parse_est_path(&path(op)).unwrap().unwrap();
    let chain = vec![b"issuing".to_vec(), b"root".to_vec()];
    let route = EstRoute {
        ca_chain: &chain,
        csr_attrs: &[],
    };
    est_request(&parsed, req, &route, credential, None)
}

fn code(d: EstCoapsDecision) -> ResponseType {
    match d {
        EstCoapsDecision::Respond(r) => r.code,
        EstCoapsDecision::Issue(_) => panic!("expected a response"),
    }
}

#[test]
fn short_paths_and_labels_parse() {
    let p = parse_est_path(&path("/.well-known/est/sen"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.label.as_str(), p.operation),
        ("", EstCoapsOperation::Sen)
    );
    let p = parse_est_path(&path("/.well-known/est/iot/sren"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.label.as_str(), p.operation),
        ("iot", EstCoapsOperation::Sren)
    );
    assert!(
        parse_est_path(&path("/.well-known/est/simpleenroll"))
            .unwrap()
            .is_err()
    );
    assert!(
        parse_est_path(&path("/.well-known/est/a/b/sen"))
            .unwrap()
            .is_err()
    );
    assert!(parse_est_path(&path("/.well-known/cmp")).is_none());
}

#[test]
fn sen_with_a_csr_becomes_an_est_coaps_request() {
    let req = request(
        RequestType::Post,
        "/.well-known/est/sen",
        Some(format::PKCS10),
        CSR,
    );
    let EstCoapsDecision::Issue(issue) = decide(
        "/.well-known/est/sen",
        &req,
        Credential::TokenProven { id: "t".into() },
    ) else {
        panic!("expected an issuance request");
    };
    assert_eq!(issue.protocol, Protocol::EstCoaps);
    assert_eq!(issue.operation, Operation::Enroll);
    assert!(matches!(issue.key, KeySource::Csr(ref der) if der == CSR));
}

#[test]
fn bad_requests_get_the_right_codes() {
    let sen = "/.well-known/est/sen";
    let garbage = request(RequestType::Post, sen, Some(format::PKCS10), b"\x30\x03abc");
    assert_eq!(
        code(decide(sen, &garbage, Credential::Anonymous)),
        ResponseType::BadRequest
    );
    let wrong_cf = request(RequestType::Post, sen, Some(50), CSR);
    assert_eq!(
        code(decide(sen, &wrong_cf, Credential::Anonymous)),
        ResponseType::UnsupportedContentFormat
    );
    let get = request(RequestType::Get, sen, None, &[]);
    assert_eq!(
        code(decide(sen, &get, Credential::Anonymous)),
        ResponseType::MethodNotAllowed
    );
    let sren = "/.well-known/est/sren";
    let no_cert = request(RequestType::Post, sren, Some(format::PKCS10), CSR);
    assert_eq!(
        code(decide(
            sren,
            &no_cert,
            Credential::TokenProven { id: "t".into() }
        )),
        ResponseType::Unauthorized
    );
    let mut not_acceptable = request(RequestType::Get, "/.well-known/est/crts", None, &[]);
    not_acceptable.accept = Some(format::PKCS8);
    assert_eq!(
        code(decide(
            "/.well-known/est/crts",
            &not_acceptable,
            Credential::Anonymous
        )),
        ResponseType::NotAcceptable
    );
}

#[test]
fn outcomes_map_to_codes_and_formats() {
    let issued = Outcome::Issued(Issued {
        certificate: b"cert".to_vec(),
        chain: Vec::new(),
        serial: "01".into(),
        private_key: Some(Secret::new(b"key".to_vec())),
    });
    let r = est_outcome(EstCoapsOperation::Sen, Some(format::PKIX_CERT), &issued);
    assert_eq!(
        (r.code, r.content_format, r.payload.as_slice()),
        (ResponseType::Created, Some(287), &b"cert"[..])
    );
    let r = est_outcome(EstCoapsOperation::Skc, None, &issued);
    assert_eq!(r.content_format, Some(format::MULTIPART_CORE));
    let parts = crate::parse_multipart_core(&r.payload).unwrap();
    assert_eq!(parts, vec![(284, b"key".to_vec()), (287, b"cert".to_vec())]);
    let pending = est_outcome(
        EstCoapsOperation::Sen,
        None,
        &Outcome::Pending {
            id: "p".into(),
            retry_after: 7,
        },
    );
    assert_eq!(
        (pending.code, pending.max_age),
        (ResponseType::ServiceUnavailable, Some(7))
    );
    let denied = est_outcome(
        EstCoapsOperation::Sen,
        None,
        &Outcome::Rejected(RejectReason::Unauthenticated),
    );
    assert_eq!(denied.code, ResponseType::Unauthorized);
    let busy = est_outcome(
        EstCoapsOperation::Sen,
        None,
        &Outcome::Rejected(RejectReason::BackendUnavailable),
    );
    assert_eq!(
        (busy.code, busy.max_age.is_some()),
        (ResponseType::ServiceUnavailable, true)
    );
}
