//! The `instant-acme` client against a gateway running in this process: account creation,
//! contact update, key rollover (the old key stops working), an order on a route whose
//! challenges always pass, and deactivation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use enrollgate::config::Config;
use enrollgate::gateway::{Bound, Gateway};
use instant_acme::{
    Account, AccountCredentials, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use tokio::sync::{oneshot, watch};

/// A gateway serving on loopback ports until dropped. Every listener binds port 0: a listener
/// left out of `[listen]` takes its fixed default port, which another gateway on the machine
/// (a test running in parallel, a developer's `serve`) may hold, and then `serve` fails.
struct InProcess {
    _dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    https: std::net::SocketAddr,
    root: std::path::PathBuf,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start() -> InProcess {
    enrollgate::server::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = format!(
        r#"
data_dir = "{}"
[listen]
https = "127.0.0.1:0"
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
coaps = "127.0.0.1:0"
[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]
[[routes]]
label = "bench"
profile = "device"
auth = ["anonymous"]
[acme]
insecure_benchmark_validation = true

[[acme.routes]]
label = "bench"
validation = "always-pass"
"#,
        dir.path().join("data").display()
    );
    let config = Config::parse(&text, Path::new("instant.toml")).expect("configuration");
    let gateway = Arc::new(Gateway::open(config).await.expect("gateway opens"));
    let (stop, shutdown) = watch::channel(false);
    let (tx, rx) = oneshot::channel::<Bound>();
    let serving = gateway.clone();
    tokio::spawn(async move { serving.serve(shutdown, tx).await });
    let bound = rx.await.expect("listeners bound");
    InProcess {
        root: dir.path().join("data/root.crt"),
        _dir: dir,
        stop,
        https: bound.https.expect("an HTTPS listener"),
    }
}

fn directory(gw: &InProcess, label: &str) -> String {
    format!("https://{}/acme/{label}directory", gw.https)
}

async fn create(gw: &InProcess, label: &str) -> (Account, AccountCredentials) {
    let new = NewAccount {
        contact: &["mailto:first@example.com"],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    Account::builder_with_root(&gw.root)
        .expect("client with our root")
        .create(&new, directory(gw, label), None)
        .await
        .expect("account created")
}

/// Credentials survive a JSON round trip (the only way to copy them).
fn copy(c: &AccountCredentials) -> AccountCredentials {
    serde_json::from_value(serde_json::to_value(c).expect("serialise")).expect("deserialise")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_update_key_change_and_deactivation() {
    let gw = start().await;
    let (mut account, old_creds) = create(&gw, "").await;
    account
        .update_contacts(&["mailto:second@example.com"])
        .await
        .expect("contact update");

    let new_creds = account.update_key().await.expect("key change");
    account
        .update_contacts(&["mailto:third@example.com"])
        .await
        .expect("the new key signs for the account");

    let builder = || Account::builder_with_root(&gw.root).expect("client");
    let old = builder()
        .from_credentials(copy(&old_creds))
        .await
        .expect("old credentials load");
    let refused = old.update_contacts(&["mailto:x@example.com"]).await;
    assert_eq!(
        problem_type(refused),
        "urn:ietf:params:acme:error:malformed",
        "the old key must no longer verify for the account"
    );

    let again = builder()
        .from_credentials(copy(&new_creds))
        .await
        .expect("new credentials load");
    assert_eq!(again.id(), account.id(), "the account URL is unchanged");
    account.deactivate().await.expect("deactivation");
    let order = again
        .new_order(&NewOrder::new(&[Identifier::Dns("x.test".into())]))
        .await;
    assert_eq!(
        problem_type(order),
        "urn:ietf:params:acme:error:unauthorized",
        "a deactivated account cannot order"
    );
}

/// The problem type of a refused request; panics when the request succeeded or failed
/// without a problem document.
fn problem_type<T>(result: Result<T, instant_acme::Error>) -> String {
    match result {
        Ok(_) => panic!("the request was accepted"),
        Err(instant_acme::Error::Api(p)) => p.r#type.unwrap_or_default(),
        Err(e) => panic!("no problem document: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_completes_an_order() {
    let gw = start().await;
    let (account, _) = create(&gw, "bench/").await;
    let ids = [Identifier::Dns("instant.test".into())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .expect("new order");
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.expect("authorization");
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .expect("an http-01 challenge");
        challenge.set_ready().await.expect("challenge response");
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(20));
    let status = order.poll_ready(&retry).await.expect("order ready");
    assert_eq!(status, OrderStatus::Ready);
    let csr = csr_der("instant.test");
    order.finalize_csr(&csr).await.expect("finalize");
    let chain = order.poll_certificate(&retry).await.expect("certificate");
    assert!(chain.matches("BEGIN CERTIFICATE").count() >= 2, "{chain}");
}

/// A P-256 CSR for one DNS name, made with openssl.
fn csr_der(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("k.pem");
    let csr = dir.path().join("r.der");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-outform", "DER", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .status()
        .expect("openssl is installed (scripts/test-deps.sh)");
    assert!(ok.success(), "openssl req failed");
    std::fs::read(csr).expect("reading the CSR")
}
