//! CMP bad input against a running gateway: every refusal RFC 9483 section 3.5 names gets a
//! protected `error` message with the right `PKIFailureInfo` (or HTTP 400 where the bytes are
//! no `PKIMessage`), a `enrollgate_bad_input_total{protocol="cmp"}` count under the bit's
//! name, and leaves nothing stored: the refused transactionID still opens a transaction.
//!
//! The messages are made with the test kit in `common/cmp.rs` (the `openssl cmp` client
//! cannot be made to send them); replies are decoded and their protection checked by the kit,
//! independently of the gateway: the MAC with the token's secret when the request's MAC
//! verified, else the signature of the gateway's CMP signer (`cmp.crt`).

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/cmp.rs"]
mod kit;

use std::net::SocketAddr;

use common::Gateway;
use der::{Decode, Encode};
use enrollgate_cmp::FailInfo;
use enrollgate_cmp::types::PkiBody;
use kit::{ClientKey, Head, HttpReply, Mac};

const PATH: &str = "/.well-known/cmp";

/// A gateway, one token as MAC credential, and the CMP signer that signs refusals.
struct Cmp {
    gw: Gateway,
    mac: Mac,
    signer: Vec<u8>,
}

impl Cmp {
    fn start() -> Self {
        let gw = Gateway::start("");
        let (id, secret) = gw.token(&["--uses", "0"]);
        let pem = std::fs::read(gw.data_dir.join("cmp.crt")).unwrap();
        let signer = der::pem::decode_vec(&pem).unwrap().1;
        Self {
            gw,
            mac: Mac::new(&id, &secret),
            signer,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gw
            .http_url
            .trim_start_matches("http://")
            .parse()
            .unwrap()
    }

    /// POSTs `body` as `application/pkixcmp` on a fresh connection.
    fn post(&self, body: &[u8]) -> HttpReply {
        kit::HttpConn::connect(self.addr())
            .unwrap()
            .cmp(PATH, body)
            .unwrap()
    }

    /// POSTs a message and decodes the CMP reply (HTTP 200, RFC 9811 section 3.4).
    fn exchange(&self, der: &[u8]) -> enrollgate_cmp::types::PkiMessage {
        let reply = self.post(der);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type.as_deref(), Some("application/pkixcmp"));
        kit::decode(&reply.body)
    }

    /// An ir for a fresh key under `head`, MAC-protected with `mac`.
    fn ir(&self, head: &Head, mac: &Mac, cn: &str) -> Vec<u8> {
        kit::protect_mac(head, kit::ir_body(&ClientKey::generate(), cn), mac)
    }

    /// Sends a good ir under `head` and returns the ip, which must carry a certificate.
    fn enrols(&self, head: &Head, cn: &str) -> (enrollgate_cmp::types::PkiMessage, Vec<u8>) {
        let ip = self.exchange(&self.ir(head, &self.mac, cn));
        let cert = kit::issued_cert(&ip).unwrap_or_else(|| panic!("{cn}: no cert in {ip:?}"));
        (ip, cert)
    }

    /// `enrollgate_bad_input_total{protocol="cmp", kind}`.
    fn bad_input(&self, kind: &str) -> f64 {
        let labels = [("protocol", "cmp"), ("kind", kind)];
        self.gw.metrics().sum("enrollgate_bad_input_total", &labels)
    }

    /// Asserts a refusal with `fail`, signed by the gateway's CMP signer.
    fn refused_signed(
        &self,
        reply: &enrollgate_cmp::types::PkiMessage,
        fail: FailInfo,
        what: &str,
    ) {
        kit::assert_failure(reply, "error", fail, what);
        kit::assert_signed_by(reply, &self.signer, what);
    }

    /// Asserts a refusal with `fail`, MAC-protected with the token's secret.
    fn refused_maced(&self, reply: &enrollgate_cmp::types::PkiMessage, fail: FailInfo, what: &str) {
        kit::assert_failure(reply, "error", fail, what);
        kit::assert_mac_by(reply, &self.mac, what);
    }
}

#[test]
fn garbage_truncated_and_oversized_bodies_get_http_errors() {
    let c = Cmp::start();
    let good = c.ir(&Head::new(), &c.mac, "CN=truncated");
    let not_a_message = der::asn1::OctetString::new(vec![1u8; 40])
        .unwrap()
        .to_der()
        .unwrap();
    let bodies: [(&str, Vec<u8>); 4] = [
        ("garbage", b"\x00\x01not DER at all".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("another type", not_a_message),
    ];
    let before = c.bad_input("decode");
    for (what, body) in &bodies {
        let reply = c.post(body);
        assert_eq!(reply.status, 400, "{what}");
        assert!(
            !reply.body.starts_with(&[0x30]),
            "{what}: no CMP message can be formed"
        );
    }
    assert_eq!(c.bad_input("decode") - before, 4.0);

    // Over the 64 KiB body limit: 413 before any decoding.
    let before = c.bad_input("body");
    let reply = c.post(&vec![0x30; 70 << 10]);
    assert_eq!(reply.status, 413);
    assert_eq!(c.bad_input("body") - before, 1.0);

    // The wrong media type: 415.
    let reply = kit::HttpConn::connect(c.addr())
        .unwrap()
        .post(PATH, "application/octet-stream", &good)
        .unwrap();
    assert_eq!(reply.status, 415);

    // Nothing of it stuck: the good message still enrols, under its own transactionID.
    let ip = c.exchange(&good);
    assert!(kit::issued_cert(&ip).is_some(), "{ip:?}");
    assert!(c.gw.log().contains("CMP message refused"));
}

#[test]
fn a_wrong_mac_and_an_unknown_sender_kid_are_bad_message_check() {
    let c = Cmp::start();
    let head = Head::new();
    let wrong_secret = Mac::new(&c.mac.kid, "not-the-token-secret");
    let unknown_kid = Mac::new(
        "tok0000000000000000",
        &String::from_utf8_lossy(&c.mac.secret),
    );
    let before = c.bad_input("badMessageCheck");
    for (what, mac) in [
        ("wrong MAC", &wrong_secret),
        ("unknown senderKID", &unknown_kid),
    ] {
        let reply = c.exchange(&c.ir(&head, mac, "CN=wrong-mac"));
        c.refused_signed(&reply, FailInfo::BadMessageCheck, what);
    }
    // A MAC whose bits were flipped after the fact.
    let mut msg = kit::mac_message(&head, kit::ir_body(&ClientKey::generate(), "CN=x"), &c.mac);
    let mut tag = msg.protection.as_ref().unwrap().raw_bytes().to_vec();
    tag[0] ^= 1;
    msg.protection = Some(der::asn1::BitString::from_bytes(&tag).unwrap());
    let reply = c.exchange(&msg.to_der().unwrap());
    c.refused_signed(&reply, FailInfo::BadMessageCheck, "flipped MAC");
    assert_eq!(c.bad_input("badMessageCheck") - before, 3.0);

    // The refusals stored nothing: the same transactionID, rightly protected, enrols.
    c.enrols(&head, "CN=right-mac");
    let log = c.gw.log();
    assert!(!log.contains("not-the-token-secret"));
    assert!(!log.contains(&*String::from_utf8_lossy(&c.mac.secret)));
}

#[test]
fn a_signature_by_an_untrusted_or_revoked_certificate_is_signer_not_trusted() {
    let c = Cmp::start();
    let before = c.bad_input("signerNotTrusted");

    // A self-signed signer: ir and genm are both refused.
    let (stranger, cert) = ClientKey::self_signed("stranger");
    let ir = kit::protect_sig(
        &Head::new(),
        kit::ir_body(&stranger, "CN=s"),
        &stranger,
        std::slice::from_ref(&cert),
    );
    c.refused_signed(
        &c.exchange(&ir),
        FailInfo::SignerNotTrusted,
        "self-signed ir",
    );
    let genm = kit::protect_sig(&Head::new(), kit::genm_ca_certs_body(), &stranger, &[cert]);
    c.refused_signed(
        &c.exchange(&genm),
        FailInfo::SignerNotTrusted,
        "self-signed genm",
    );

    // A certificate we issued signs a cr; once revoked it signs nothing.
    let key = ClientKey::generate();
    let head = Head::new();
    let ip = c.exchange(&kit::protect_mac(
        &head,
        kit::ir_body(&key, "CN=soon-revoked"),
        &c.mac,
    ));
    let issued = kit::issued_cert(&ip).unwrap();
    let conf = kit::cert_conf_body(&issued, 0, true);
    let pkiconf = c.exchange(&kit::protect_mac(&head.answering(&ip), conf, &c.mac));
    assert_eq!(pkiconf.body.kind().name(), "pkiconf");
    let cr = |cn: &str| {
        let body = PkiBody::Cr(vec![kit::cert_req(&ClientKey::generate(), cn)]);
        kit::protect_sig(&Head::new(), body, &key, std::slice::from_ref(&issued))
    };
    let cp = c.exchange(&cr("CN=signed-while-valid"));
    assert!(kit::issued_cert(&cp).is_some(), "{cp:?}");
    let parsed = x509_cert::Certificate::from_der(&issued).unwrap();
    let serial = hex::encode(parsed.tbs_certificate().serial_number().as_bytes());
    c.gw.run(&["revoke", &serial]);
    let reply = c.exchange(&cr("CN=signed-when-revoked"));
    c.refused_signed(&reply, FailInfo::SignerNotTrusted, "revoked signer");
    assert_eq!(c.bad_input("signerNotTrusted") - before, 3.0);

    // A signature that does not verify with the certificate in extraCerts.
    let other = ClientKey::generate();
    let body = PkiBody::Cr(vec![kit::cert_req(&other, "CN=forged")]);
    let forged = kit::protect_sig(&Head::new(), body, &other, std::slice::from_ref(&issued));
    c.refused_signed(
        &c.exchange(&forged),
        FailInfo::BadMessageCheck,
        "forged signature",
    );
}

#[test]
fn an_iteration_count_over_the_cap_is_bad_alg() {
    let c = Cmp::start();
    let head = Head::new();
    let greedy = Mac {
        iterations: 10_001,
        ..c.mac.clone()
    };
    let before = c.bad_input("badAlg");
    let reply = c.exchange(&c.ir(&head, &greedy, "CN=greedy"));
    c.refused_signed(&reply, FailInfo::BadAlg, "10 001 iterations");
    assert_eq!(c.bad_input("badAlg") - before, 1.0);

    // The cap itself is allowed, under the refused transactionID.
    let at_cap = Mac {
        iterations: 10_000,
        ..c.mac.clone()
    };
    let ip = c.exchange(&c.ir(&head, &at_cap, "CN=at-cap"));
    assert!(kit::issued_cert(&ip).is_some(), "{ip:?}");
}

#[test]
fn a_wrong_pvno_is_unsupported_version() {
    let c = Cmp::start();
    let before = c.bad_input("unsupportedVersion");
    let head = Head::new();
    for pvno in [1, 4] {
        let reply = c.exchange(&c.ir(
            &Head {
                pvno,
                ..head.clone()
            },
            &c.mac,
            "CN=pvno",
        ));
        c.refused_maced(
            &reply,
            FailInfo::UnsupportedVersion,
            &format!("pvno {pvno}"),
        );
    }
    assert_eq!(c.bad_input("unsupportedVersion") - before, 2.0);

    // pvno 3 (RFC 9810) is served, under the transactionID the refusals left free.
    c.enrols(&Head { pvno: 3, ..head }, "CN=pvno-3");
}

#[test]
fn stale_or_reused_nonces_and_transaction_ids_are_refused() {
    let c = Cmp::start();

    // A senderNonce shorter than 128 bits.
    let short = Head {
        sender_nonce: vec![7; 8],
        ..Head::new()
    };
    let reply = c.exchange(&c.ir(&short, &c.mac, "CN=short-nonce"));
    c.refused_maced(&reply, FailInfo::BadSenderNonce, "8-byte senderNonce");

    // certConf whose recipNonce is not the ip's senderNonce: refused, the transaction waits.
    let head = Head::new();
    let (ip, cert) = c.enrols(&head, "CN=nonces");
    let before = c.bad_input("badRecipientNonce");
    let stale = Head {
        recip_nonce: Some(kit::random(16)),
        ..head.answering(&ip)
    };
    let conf = |h: &Head| kit::protect_mac(h, kit::cert_conf_body(&cert, 0, true), &c.mac);
    c.refused_maced(
        &c.exchange(&conf(&stale)),
        FailInfo::BadRecipientNonce,
        "stale",
    );
    assert_eq!(c.bad_input("badRecipientNonce") - before, 1.0);
    let right = conf(&head.answering(&ip));
    assert_eq!(c.exchange(&right).body.kind().name(), "pkiconf");

    // The same certConf again (a replay after the transaction ended): out of sequence.
    c.refused_maced(
        &c.exchange(&right),
        FailInfo::BadRequest,
        "replayed certConf",
    );

    // A new request under a used transactionID (the ir replayed): transactionIdInUse.
    let before = c.bad_input("transactionIdInUse");
    let reply = c.exchange(&c.ir(&head, &c.mac, "CN=reused-id"));
    c.refused_maced(&reply, FailInfo::TransactionIdInUse, "reused transactionID");
    assert_eq!(c.bad_input("transactionIdInUse") - before, 1.0);
    let issued = [("protocol", "cmp"), ("outcome", "issued")];
    assert_eq!(
        c.gw.metrics().sum("enrollgate_requests_total", &issued),
        1.0
    );
}

#[test]
fn bodies_out_of_sequence_are_bad_request() {
    let c = Cmp::start();
    let before = c.bad_input("badRequest");

    // Continuations of a transaction that does not exist.
    let fresh = Head::new();
    for (what, body) in [
        ("pollReq", kit::poll_req_body(0)),
        ("certConf", kit::cert_conf_body(b"no certificate", 0, true)),
    ] {
        let reply = c.exchange(&kit::protect_mac(&fresh, body, &c.mac));
        c.refused_maced(&reply, FailInfo::BadRequest, what);
    }
    // A body only a server sends.
    let reply = c.exchange(&kit::protect_mac(&fresh, PkiBody::PkiConf, &c.mac));
    c.refused_maced(&reply, FailInfo::BadRequest, "pkiConf from a client");

    // pollReq while a certificate awaits confirmation; the certConf after it still works.
    let head = Head::new();
    let (ip, cert) = c.enrols(&head, "CN=sequence");
    let poll = kit::protect_mac(&head.answering(&ip), kit::poll_req_body(0), &c.mac);
    c.refused_maced(
        &c.exchange(&poll),
        FailInfo::BadRequest,
        "pollReq, nothing pending",
    );
    let conf = kit::cert_conf_body(&cert, 0, true);
    let reply = c.exchange(&kit::protect_mac(&head.answering(&ip), conf, &c.mac));
    assert_eq!(reply.body.kind().name(), "pkiconf", "{reply:?}");
    assert_eq!(c.bad_input("badRequest") - before, 4.0);
}

#[test]
fn cert_conf_for_an_unknown_certificate_or_by_another_requester_is_refused() {
    let c = Cmp::start();
    let head = Head::new();
    let (ip, cert) = c.enrols(&head, "CN=confirmed");
    let (_, other_cert) = c.enrols(&Head::new(), "CN=someone-else");
    let next = || head.answering(&ip);
    let before = c.bad_input("badCertId");

    // Another certificate's hash, and the right hash under another certReqId.
    let wrong_hash = kit::protect_mac(&next(), kit::cert_conf_body(&other_cert, 0, true), &c.mac);
    c.refused_maced(
        &c.exchange(&wrong_hash),
        FailInfo::BadCertId,
        "other certificate",
    );
    let wrong_id = kit::protect_mac(&next(), kit::cert_conf_body(&cert, 7, true), &c.mac);
    c.refused_maced(
        &c.exchange(&wrong_id),
        FailInfo::BadCertId,
        "other certReqId",
    );
    assert_eq!(c.bad_input("badCertId") - before, 2.0);

    // The right certConf from another token: the transaction is not theirs.
    let (id, secret) = c.gw.token(&["--uses", "0"]);
    let intruder = Mac::new(&id, &secret);
    let theirs = kit::protect_mac(&next(), kit::cert_conf_body(&cert, 0, true), &intruder);
    let reply = c.exchange(&theirs);
    kit::assert_failure(
        &reply,
        "error",
        FailInfo::NotAuthorized,
        "another requester",
    );
    kit::assert_mac_by(&reply, &intruder, "another requester");

    // The requester's own certConf is still accepted: pkiConf, and the certificate stays valid.
    let conf = kit::protect_mac(&next(), kit::cert_conf_body(&cert, 0, true), &c.mac);
    let reply = c.exchange(&conf);
    assert_eq!(reply.body.kind().name(), "pkiconf", "{reply:?}");
    kit::assert_mac_by(&reply, &c.mac, "pkiConf");
    let pem = c.gw.path("confirmed.pem");
    let text = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert).unwrap();
    std::fs::write(&pem, text).unwrap();
    common::verify_cert(&c.gw, &pem);
    assert!(c.gw.log().contains("CMP certificate confirmed"));
}

#[test]
fn a_mac_from_an_expired_token_is_not_authorized_even_for_genm() {
    let c = Cmp::start();
    // Expiry has one-second granularity: 2 s leaves at least one second of life.
    let (id, secret) = c.gw.token(&["--ttl", "2s"]);
    let late = Mac::new(&id, &secret);
    // While the token lives, its MAC opens a genm.
    let genm = |mac: &Mac| kit::protect_mac(&Head::new(), kit::genm_ca_certs_body(), mac);
    let first = c.exchange(&genm(&late));
    assert_eq!(
        first.body.kind().name(),
        "genp",
        "{:?}",
        kit::status(&first)
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let before = c.bad_input("notAuthorized");
    let reply = c.exchange(&genm(&late));
    kit::assert_failure(&reply, "error", FailInfo::NotAuthorized, "expired token");
    assert_eq!(c.bad_input("notAuthorized") - before, 1.0);
    // A live token is unaffected.
    assert_eq!(c.exchange(&genm(&c.mac)).body.kind().name(), "genp");
}
