//! A small ACME client for the ACME integration tests, written from RFC 8555 independently of
//! the gateway's code so that it can also send what a correct client never would (bad
//! signatures, reused nonces, wrong URLs). JWS are ES256 with aws-lc-rs; HTTP goes through the
//! harness's curl.

#![allow(
    dead_code,
    reason = "each ACME test crate uses a different part of this client"
)]

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::common::{Gateway, KeyType, Reply, new_csr, strip_ansi, unique};

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// An ES256 account (or certificate) key.
pub struct AcmeKey {
    pair: EcdsaKeyPair,
    /// The public key as a JWK.
    pub jwk: Value,
}

impl AcmeKey {
    /// A fresh P-256 key.
    pub fn generate() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("P-256 key generation");
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Self {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).expect("P-256 PKCS#8");
        let point = pair.public_key().as_ref().to_vec();
        let jwk =
            json!({"crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        Self { pair, jwk }
    }

    /// A key from a PEM file (`openssl genpkey` output, PKCS#8).
    pub fn from_pem_file(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).expect("reading the key");
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM base64");
        Self::from_pkcs8(&der)
    }

    /// The RFC 7638 thumbprint.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap_or_default(),
            self.jwk["y"].as_str().unwrap_or_default()
        );
        b64(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// A flattened JWS over `protected` and the already-encoded `payload`.
    pub fn sign(&self, protected: &Value, payload_b64: &str) -> Value {
        let protected = b64(protected.to_string().as_bytes());
        let input = format!("{protected}.{payload_b64}");
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signing");
        json!({"protected": protected, "payload": payload_b64, "signature": b64(sig.as_ref())})
    }
}

/// The payload part of a JWS: empty for POST-as-GET.
pub fn payload_b64(payload: Option<&Value>) -> String {
    payload.map_or_else(String::new, |p| b64(p.to_string().as_bytes()))
}

/// A client bound to one directory and one account key.
pub struct Client<'a> {
    gw: &'a Gateway,
    /// The directory object.
    pub dir: Value,
    /// The account key.
    pub key: AcmeKey,
    /// The account URL once registered.
    pub kid: Option<String>,
}

impl<'a> Client<'a> {
    /// Fetches the directory at `/acme[/label]/directory`.
    pub fn new(gw: &'a Gateway, label: &str) -> Self {
        let url = directory_url(gw, label);
        let reply = gw.request(&url).send();
        reply.expect(200, "GET directory");
        let dir: Value = serde_json::from_slice(&reply.body).expect("directory JSON");
        Self {
            gw,
            dir,
            key: AcmeKey::generate(),
            kid: None,
        }
    }

    /// A URL from the directory.
    pub fn url(&self, name: &str) -> String {
        self.dir[name]
            .as_str()
            .unwrap_or_else(|| panic!("directory has no {name}: {}", self.dir))
            .to_owned()
    }

    /// A fresh nonce from newNonce (HEAD).
    pub fn nonce(&self) -> String {
        let reply = self.gw.request(&self.url("newNonce")).arg("-I").send();
        reply.expect(200, "HEAD newNonce");
        reply
            .header("replay-nonce")
            .expect("newNonce without Replay-Nonce")
            .to_owned()
    }

    /// The protected header for `url` with a nonce, by `kid` when registered, else by `jwk`.
    pub fn protected(&self, url: &str, nonce: &str) -> Value {
        let mut h = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match &self.kid {
            Some(kid) => h["kid"] = kid.clone().into(),
            None => h["jwk"] = self.key.jwk.clone(),
        }
        h
    }

    /// Sends a raw body as `application/jose+json`.
    pub fn post_raw(&self, url: &str, body: &[u8]) -> Reply {
        let file = self.gw.path(&unique("acme-body"));
        std::fs::write(&file, body).expect("writing the body");
        self.gw
            .request(url)
            .body(&file, "application/jose+json")
            .send()
    }

    /// Signs `payload` (None: POST-as-GET) for `url` with a fresh nonce and posts it.
    pub fn post(&self, url: &str, payload: Option<&Value>) -> Reply {
        let jws = self
            .key
            .sign(&self.protected(url, &self.nonce()), &payload_b64(payload));
        self.post_raw(url, jws.to_string().as_bytes())
    }

    /// newAccount (agreeing to the terms); remembers the account URL on success.
    pub fn new_account(&mut self, extra: Value) -> Reply {
        let mut payload = json!({"termsOfServiceAgreed": true});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let reply = self.post(&self.url("newAccount"), Some(&payload));
        if matches!(reply.status, 200 | 201) {
            self.kid = reply.header("location").map(str::to_owned);
        }
        reply
    }

    /// newAccount with `onlyReturnExisting`, signed by `jwk` even once registered: the
    /// account object the gateway holds for this key, whatever its status.
    pub fn account_by_key(&mut self) -> Reply {
        let kid = self.kid.take();
        let payload = json!({"onlyReturnExisting": true});
        let reply = self.post(&self.url("newAccount"), Some(&payload));
        self.kid = kid;
        reply
    }

    /// How many orders the account's orders list holds (POST-as-GET on the account, then on
    /// its orders URL).
    pub fn order_count(&self) -> usize {
        let kid = self.kid.as_deref().expect("a registered account");
        let account = json_of(self.post(kid, None).expect(200, "account"));
        let orders_url = account["orders"].as_str().expect("orders URL");
        let orders = json_of(self.post(orders_url, None).expect(200, "orders list"));
        orders["orders"].as_array().map_or(0, Vec::len)
    }

    /// An EAB object for this client's key (RFC 8555 section 7.3.4), MACed with `hmac_key`.
    pub fn eab(&self, kid: &str, hmac_key: &[u8]) -> Value {
        let protected = json!({"alg": "HS256", "kid": kid, "url": self.url("newAccount")});
        let protected = b64(protected.to_string().as_bytes());
        let payload = b64(self.key.jwk.to_string().as_bytes());
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hmac_key);
        let tag = aws_lc_rs::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
    }

    /// newOrder for DNS names; returns the order URL and object.
    pub fn new_order(&self, names: &[&str]) -> (String, Value) {
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        let reply = self.post(&self.url("newOrder"), Some(&json!({"identifiers": ids})));
        reply.expect(201, "newOrder");
        (
            reply.header("location").expect("order Location").to_owned(),
            json_of(&reply),
        )
    }

    /// Answers every authorization's http-01 challenge (on a route that always passes) and
    /// waits until the order is ready.
    pub fn make_ready(&self, order_url: &str, order: &Value) -> Value {
        for authz in order["authorizations"].as_array().expect("authorizations") {
            let a = json_of(&self.post(authz.as_str().expect("authz URL"), None));
            let chall = a["challenges"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
                .expect("an http-01 challenge");
            let r = self.post(
                chall["url"].as_str().expect("challenge URL"),
                Some(&json!({})),
            );
            r.expect(200, "challenge response");
        }
        self.poll(order_url, "ready")
    }

    /// Polls an order until it has `status` (or fails after ~10 s).
    pub fn poll(&self, order_url: &str, status: &str) -> Value {
        for _ in 0..50 {
            let o = json_of(&self.post(order_url, None));
            if o["status"] == status {
                return o;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("order {order_url} never became {status}");
    }

    /// Finalizes with a CSR (DER); returns the reply.
    pub fn finalize(&self, order: &Value, csr_der: &[u8]) -> Reply {
        let url = order["finalize"].as_str().expect("finalize URL");
        self.post(url, Some(&json!({"csr": b64(csr_der)})))
    }

    /// A complete order for `names` on an always-pass route: returns the certificate chain
    /// (PEM file) and the CSR key (PEM file).
    pub fn issue(&self, names: &[&str]) -> (PathBuf, PathBuf) {
        let (order_url, order) = self.new_order(names);
        self.complete(&order_url, &order, names)
    }

    /// Completes a new order for `names` on an always-pass route: answers its challenges,
    /// finalizes with a fresh P-256 CSR and downloads the chain. Returns the chain (PEM file)
    /// and the CSR key (PEM file).
    pub fn complete(&self, order_url: &str, order: &Value, names: &[&str]) -> (PathBuf, PathBuf) {
        let order = self.make_ready(order_url, order);
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let csr = new_csr(
            &self.gw.work_dir,
            &unique("acme"),
            KeyType::P256,
            &format!("/CN={}", names[0]),
            &sans,
        );
        let der = std::fs::read(&csr.der).expect("reading the CSR");
        self.finalize(&order, &der).expect(200, "finalize");
        let done = self.poll(order_url, "valid");
        let cert = self.post(done["certificate"].as_str().expect("certificate URL"), None);
        cert.expect(200, "certificate download");
        let pem = self.gw.path(&unique("acme-chain.pem"));
        std::fs::write(&pem, &cert.body).expect("writing the chain");
        (pem, csr.key)
    }
}

/// The directory URL of a route.
pub fn directory_url(gw: &Gateway, label: &str) -> String {
    match label {
        "" => format!("{}/acme/directory", gw.https_url),
        l => format!("{}/acme/{l}/directory", gw.https_url),
    }
}

/// The JSON body of a reply.
pub fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", reply.text()))
}

/// Asserts a problem document of `kind` with `status`, a Replay-Nonce, and returns it.
pub fn expect_problem(reply: &Reply, status: u16, kind: &str) -> Value {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "content type of {}",
        reply.text()
    );
    let p = json_of(reply);
    assert_eq!(
        (reply.status, p["type"].as_str().unwrap_or_default()),
        (
            status,
            format!("urn:ietf:params:acme:error:{kind}").as_str()
        ),
        "problem: {p}"
    );
    assert_eq!(p["status"], status, "problem status field: {p}");
    assert!(
        reply.header("replay-nonce").is_some(),
        "a refusal must carry a fresh Replay-Nonce"
    );
    p
}

/// Whether the gateway logged a refusal of `kind` (the debug line every refusal gets).
pub fn refusal_logged(gw: &Gateway, kind: &str) -> bool {
    logged(gw, "acme request refused", &[kind])
}

/// Whether one line of the gateway's log holds `message` and every one of `words` (ANSI
/// colour codes removed).
pub fn logged(gw: &Gateway, message: &str, words: &[&str]) -> bool {
    strip_ansi(&gw.log())
        .lines()
        .any(|l| l.contains(message) && words.iter().all(|w| l.contains(w)))
}

/// A port nothing listens on now (for a client's challenge server).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    l.local_addr().expect("local address").port()
}
