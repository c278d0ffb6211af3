//! The PostgreSQL store: the `Store` contract on a throwaway PostgreSQL cluster, several
//! store instances (nodes) racing on the same rows, the password kept out of the
//! configuration and the logs, and two `enrollgate serve` processes sharing one database
//! (EST manual approval, one-use tokens, the CRL, SCEP CertPoll across nodes).

mod common;
#[path = "common/postgres.rs"]
mod pg;
#[path = "common/scep.rs"]
mod scep;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Gateway, KeyType, cert_pubkey, cert_serial, new_csr, openssl, path_str};
use enrollgate::config::StoreConfig;
use enrollgate::store::{
    AuditRecord, CertificateRecord, PendingRecord, PostgresStore, Store, TokenRecord,
    TransactionState,
};
use enrollgate_scep::{MessageType, PkiStatus};
use pg::Cluster;
use scep::Scep;
use scep::pki::{self, Requester};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn store_config(url: String) -> StoreConfig {
    StoreConfig {
        url: Some(url),
        pool_size: 8,
        ..StoreConfig::default()
    }
}

async fn node(cluster: &Cluster, db: &str) -> PostgresStore {
    PostgresStore::connect(&store_config(cluster.url(db)))
        .await
        .expect("connecting to the test cluster")
}

fn token(id: &str, uses: Option<i64>, expires_at: i64) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        secret_hash: format!("hash-of-{id}"),
        route: "iot".into(),
        uses_left: uses,
        expires_at,
        subject_pattern: Some("CN=dev-*".into()),
    }
}

#[test]
fn every_store_call_round_trips_on_postgres() {
    let cluster = Cluster::start();
    cluster.create_database("contract");
    runtime().block_on(async {
        let s = node(&cluster, "contract").await;
        s.ping().await.unwrap();

        // Tokens: lookups, uses running out, expiry, the use given back, unlimited tokens.
        let t = token("t1", Some(1), 100);
        s.insert_token(&t).await.unwrap();
        assert!(s.insert_token(&t).await.is_err(), "duplicate id refused");
        assert_eq!(s.token("t1").await.unwrap(), Some(t.clone()));
        assert_eq!(s.token_by_secret_hash("hash-of-t1").await.unwrap(), Some(t));
        assert_eq!(s.token("nope").await.unwrap(), None);
        assert!(
            !s.take_token_use("t1", 100).await.unwrap(),
            "expired at 100"
        );
        assert!(s.take_token_use("t1", 99).await.unwrap());
        assert!(!s.take_token_use("t1", 99).await.unwrap(), "spent");
        s.return_token_use("t1").await.unwrap();
        assert_eq!(s.token("t1").await.unwrap().unwrap().uses_left, Some(1));
        s.insert_token(&token("free", None, 100)).await.unwrap();
        for _ in 0..3 {
            assert!(s.take_token_use("free", 1).await.unwrap());
        }
        s.return_token_use("free").await.unwrap();
        assert_eq!(s.token("free").await.unwrap().unwrap().uses_left, None);

        // Certificates: DER bytes intact, revocation once, the revoked list without expired.
        let cert = |serial: &str, not_after| CertificateRecord {
            serial: serial.into(),
            route: "iot".into(),
            profile: "device".into(),
            subject: "CN=dev-1".into(),
            not_after,
            der: (0..=255u8).chain([0, 0, 255]).collect(),
            revoked: None,
        };
        s.insert_certificate(&cert("0a", 1000)).await.unwrap();
        s.insert_certificate(&cert("0b", 10)).await.unwrap();
        assert_eq!(s.certificate("0a").await.unwrap(), Some(cert("0a", 1000)));
        assert!(s.revoke("0a", 5, 1).await.unwrap());
        assert!(!s.revoke("0a", 6, 4).await.unwrap(), "already revoked");
        assert!(!s.revoke("ff", 6, 4).await.unwrap(), "unknown");
        assert!(s.revoke("0b", 5, 0).await.unwrap());
        let revoked = s.revoked_certificates(50).await.unwrap();
        assert_eq!(revoked.len(), 1, "0b expired at 10: {revoked:?}");
        assert_eq!(revoked[0].revoked, Some((5, 1)));

        // Transactions: claimed once, moved on, released only while in progress.
        assert_eq!(s.claim_transaction("scep", "x", "f1").await.unwrap(), None);
        let again = s
            .claim_transaction("scep", "x", "f2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.fingerprint.as_str(), &again.state),
            ("f1", &TransactionState::InProgress)
        );
        assert_eq!(
            s.transaction("cmp", "x").await.unwrap(),
            None,
            "per protocol"
        );
        for state in [
            TransactionState::Pending("p1".into()),
            TransactionState::Rejected("policy".into()),
            TransactionState::Issued("0a".into()),
        ] {
            s.set_transaction_state("scep", "x", &state).await.unwrap();
            assert_eq!(
                s.transaction("scep", "x").await.unwrap().unwrap().state,
                state
            );
        }
        s.release_transaction("scep", "x").await.unwrap();
        assert!(
            s.transaction("scep", "x").await.unwrap().is_some(),
            "issued stays"
        );
        assert_eq!(s.claim_transaction("est", "y", "f").await.unwrap(), None);
        s.release_transaction("est", "y").await.unwrap();
        assert_eq!(s.claim_transaction("est", "y", "g").await.unwrap(), None);

        // Blobs: overwrite, expiry, listing, single use.
        s.put_blob("nonce", "n1", b"one", 50).await.unwrap();
        s.put_blob("nonce", "n1", b"\x00two\xff", 60).await.unwrap();
        s.put_blob("nonce", "n2", b"", 20).await.unwrap();
        s.put_blob("order", "n1", b"other kind", 60).await.unwrap();
        assert_eq!(
            s.blob("nonce", "n1", 55).await.unwrap(),
            Some(b"\x00two\xff".to_vec())
        );
        assert_eq!(s.blob("nonce", "n1", 60).await.unwrap(), None, "expired");
        let listed = s.blobs_of_kind("nonce", 10).await.unwrap();
        let keys: BTreeSet<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, BTreeSet::from(["n1", "n2"]));
        assert!(!s.take_blob("nonce", "n2", 20).await.unwrap(), "expired");
        assert!(s.take_blob("nonce", "n1", 10).await.unwrap());
        assert!(!s.take_blob("nonce", "n1", 10).await.unwrap(), "single use");
        assert!(s.blob("order", "n1", 10).await.unwrap().is_some());

        // Pending requests: listed by status oldest first, moved only from the stated status.
        for (id, created_at) in [("p2", 20), ("p1", 10)] {
            s.insert_pending(&PendingRecord {
                id: id.into(),
                protocol: "est".into(),
                route: String::new(),
                subject: format!("CN={id}"),
                request: "{\"json\":true}".into(),
                status: "pending".into(),
                serial: None,
                created_at,
            })
            .await
            .unwrap();
        }
        let ids = |v: Vec<PendingRecord>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.pending_with_status("pending").await.unwrap()),
            ["p1", "p2"]
        );
        assert!(
            s.update_pending("p1", "pending", "approved", None)
                .await
                .unwrap()
        );
        assert!(
            !s.update_pending("p1", "pending", "rejected", None)
                .await
                .unwrap()
        );
        assert!(
            s.update_pending("p1", "approved", "issued", Some("0a"))
                .await
                .unwrap()
        );
        let p1 = s.pending("p1").await.unwrap().unwrap();
        assert_eq!(
            (p1.status.as_str(), p1.serial.as_deref()),
            ("issued", Some("0a"))
        );
        assert_eq!(ids(s.pending_with_status("pending").await.unwrap()), ["p2"]);
        assert_eq!(s.pending("p9").await.unwrap(), None);

        // Audit: newest first, limited.
        for event in ["requested", "issued", "revoked"] {
            s.audit(&AuditRecord {
                event: event.into(),
                protocol: "est".into(),
                serial: "0a".into(),
                ..AuditRecord::default()
            })
            .await
            .unwrap();
        }
        let recent = s.recent_audit(2).await.unwrap();
        let events: Vec<&str> = recent.iter().map(|a| a.event.as_str()).collect();
        assert_eq!(events, ["revoked", "issued"]);

        // Counters.
        assert_eq!(s.next_counter("crl").await.unwrap(), 1);
        assert_eq!(s.next_counter("crl").await.unwrap(), 2);
        assert_eq!(s.next_counter("other").await.unwrap(), 1);

        // A second start on the same database keeps everything (the schema is idempotent).
        let again = node(&cluster, "contract").await;
        assert_eq!(again.next_counter("crl").await.unwrap(), 3);
        assert!(again.certificate("0a").await.unwrap().is_some());
    });
}

/// Two nodes (two stores, each with its own pool) race on the same rows: every use, claim,
/// blob, decision and counter value goes to exactly one caller.
#[test]
fn racing_nodes_get_each_use_claim_and_blob_once() {
    let cluster = Cluster::start();
    cluster.create_database("race");
    runtime().block_on(async {
        // Nodes starting together apply the schema once between them.
        let (a, b) = tokio::join!(node(&cluster, "race"), node(&cluster, "race"));
        let nodes: [Arc<dyn Store>; 2] = [Arc::new(a), Arc::new(b)];
        const CALLERS: usize = 40;

        async fn race<F, Fut>(nodes: &[Arc<dyn Store>; 2], f: F) -> Vec<Fut::Output>
        where
            F: Fn(Arc<dyn Store>, usize) -> Fut,
            Fut: std::future::Future + Send + 'static,
            Fut::Output: Send + 'static,
        {
            let tasks: Vec<_> = (0..CALLERS)
                .map(|i| tokio::spawn(f(nodes[i % 2].clone(), i)))
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        }

        nodes[0]
            .insert_token(&token("five", Some(5), i64::MAX))
            .await
            .unwrap();
        let taken = race(&nodes, |s, _| async move {
            s.take_token_use("five", 1).await.unwrap()
        })
        .await;
        assert_eq!(
            taken.iter().filter(|t| **t).count(),
            5,
            "five uses, five winners"
        );
        assert_eq!(
            nodes[1].token("five").await.unwrap().unwrap().uses_left,
            Some(0)
        );

        let claims = race(&nodes, |s, i| async move {
            s.claim_transaction("cmp", "tx", &format!("fp{i}"))
                .await
                .unwrap()
        })
        .await;
        let winners: Vec<usize> = (0..CALLERS).filter(|i| claims[*i].is_none()).collect();
        assert_eq!(winners.len(), 1, "one claim: {claims:?}");
        let fp = format!("fp{}", winners[0]);
        assert!(
            claims.iter().flatten().all(|r| r.fingerprint == fp),
            "every loser sees the winner's claim"
        );

        nodes[0]
            .put_blob("nonce", "n", b"x", i64::MAX)
            .await
            .unwrap();
        let takes = race(&nodes, |s, _| async move {
            s.take_blob("nonce", "n", 1).await.unwrap()
        })
        .await;
        assert_eq!(
            takes.iter().filter(|t| **t).count(),
            1,
            "a nonce is used once"
        );

        nodes[1]
            .insert_pending(&PendingRecord {
                id: "held".into(),
                protocol: "scep".into(),
                route: String::new(),
                subject: "CN=held".into(),
                request: "{}".into(),
                status: "pending".into(),
                serial: None,
                created_at: 1,
            })
            .await
            .unwrap();
        let decisions = race(&nodes, |s, i| async move {
            let to = if i % 3 == 0 { "rejected" } else { "approved" };
            s.update_pending("held", "pending", to, None).await.unwrap()
        })
        .await;
        assert_eq!(decisions.iter().filter(|d| **d).count(), 1, "decided once");

        let values = race(&nodes, |s, _| async move {
            s.next_counter("crl").await.unwrap()
        })
        .await;
        let distinct: BTreeSet<i64> = values.into_iter().collect();
        assert_eq!(distinct, (1..=CALLERS as i64).collect(), "no number twice");
    });
}

/// A statement stuck behind another session's lock fails after the query timeout (the
/// server's statement_timeout) instead of holding the caller, and the pool serves the next
/// call normally.
#[test]
fn a_stuck_statement_fails_after_the_query_timeout() {
    let cluster = Cluster::start();
    cluster.create_database("stuck");
    runtime().block_on(async {
        let pg: tokio_postgres::Config = cluster.url("stuck").parse().expect("test URL");
        let s = PostgresStore::open(pg, None, 2, Duration::from_secs(5), Duration::from_secs(1))
            .await
            .expect("connecting");
        s.insert_token(&token("locked", Some(3), i64::MAX))
            .await
            .unwrap();

        // Another session holds the row lock far longer than the query timeout.
        let mut holder = cluster
            .psql_command(
                "stuck",
                "BEGIN; UPDATE tokens SET uses_left = uses_left WHERE id = 'locked'; \
                 SELECT pg_sleep(60); COMMIT;",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting psql");
        let sleeping = "SELECT count(*) FROM pg_stat_activity \
                        WHERE state = 'active' AND query LIKE '%pg_sleep(60)%' \
                        AND pid <> pg_backend_pid()";
        for _ in 0..600 {
            if cluster.psql("stuck", sleeping).trim() == "1" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            cluster.psql("stuck", sleeping).trim(),
            "1",
            "the lock holder runs"
        );

        let e = s
            .take_token_use("locked", 1)
            .await
            .expect_err("a statement waiting on the lock is cancelled");
        let text = e.to_string();
        assert!(text.contains("57014"), "query_canceled: {text}");

        // The holder's session ends and its lock goes with it; the same pool carries on.
        cluster.psql(
            "stuck",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
        );
        let _ = holder.wait();
        let mut taken = false;
        for _ in 0..100 {
            match s.take_token_use("locked", 1).await {
                Ok(t) => {
                    taken = t;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(taken, "the next call succeeds once the lock is gone");
        assert_eq!(s.token("locked").await.unwrap().unwrap().uses_left, Some(2));
    });
}

/// The password reaches the server from the environment variable named by `url_env` and
/// appears in no output, neither on success nor when authentication fails; an unreachable
/// server makes the start fail within the connect timeout instead of hanging.
#[test]
fn the_password_comes_from_the_environment_and_is_never_printed() {
    let cluster = Cluster::start();
    let password = "pw-4d1f9c2e7b";
    cluster.psql(
        "postgres",
        &format!("CREATE ROLE node LOGIN PASSWORD '{password}'"),
    );
    cluster.psql("postgres", "CREATE DATABASE shared OWNER node");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("enrollgate.toml");
    std::fs::write(
        &config,
        "[listen]\nhttps = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         coaps = \"127.0.0.1:0\"\n\n\
         [store]\nurl_env = \"EG_TEST_DATABASE_URL\"\nconnect_timeout_secs = 3\n",
    )
    .unwrap();
    assert!(
        Command::new(common::BIN)
            .args(["check", "--config", path_str(&config)])
            .output()
            .unwrap()
            .status
            .success(),
        "check accepts url_env"
    );
    // `serve` with every log line on: stopped once it has printed its addresses (or ended).
    let serve = |url: &str| serve_until_ready(&config, &dir.path().join("data"), url);
    let url = |pw: &str| format!("postgres://node:{pw}@127.0.0.1:{}/shared", cluster.port);

    let (ready, text) = serve(&url(password));
    assert!(ready, "serve with the password:\n{text}");
    assert!(
        text.contains("store: PostgreSQL") && text.contains("127.0.0.1"),
        "the log names the database:\n{text}"
    );
    assert!(!text.contains(password), "{text}");
    let tables = cluster.psql(
        "shared",
        "SELECT count(*) FROM pg_tables WHERE tableowner = 'node'",
    );
    assert_eq!(tables.trim(), "7", "the schema was made by the node's role");

    let wrong = "wrong-pw-93ab";
    let (ready, text) = serve(&url(wrong));
    assert!(!ready);
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains(wrong), "{text}");

    // Nothing listens on this port: the start fails, within the connect timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (ready, text) = serve(&format!(
        "postgres://node:{password}@127.0.0.1:{port}/shared"
    ));
    assert!(!ready);
    assert!(!text.contains(password), "{text}");

    let missing = Command::new(common::BIN)
        .args(["init", "--config", path_str(&config), "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("EG_TEST_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(text.contains("EG_TEST_DATABASE_URL"), "{text}");
}

/// Runs `enrollgate serve` with `RUST_LOG=trace` and the database URL in the environment
/// until it prints its root CA fingerprint (then stops it) or exits; returns whether it got
/// that far and everything it wrote.
fn serve_until_ready(config: &Path, data: &Path, url: &str) -> (bool, String) {
    let log = data.with_extension("serve.log");
    let mut child = Command::new(common::BIN)
        .args(["serve", "--config", path_str(config), "--data-dir"])
        .arg(data)
        .env("EG_TEST_DATABASE_URL", url)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("creating the serve log"))
        .spawn()
        .expect("starting enrollgate serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut printed = String::new();
    let mut ready = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("root CA SHA-256 fingerprint") {
            ready = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    (ready, common::strip_ansi(&format!("{printed}{logged}")))
}

/// The ASCII public key of a key file, for comparison with a certificate's.
fn public_key_of(key: &std::path::Path) -> String {
    openssl(&["pkey", "-in", path_str(key), "-pubout"])
}

/// `GET /crl` from a node, as `openssl crl -text`.
fn crl_of(gw: &Gateway, name: &str) -> String {
    let reply = gw.request(&format!("{}/crl", gw.http_url)).send();
    reply.expect(200, "GET /crl");
    let der = gw.path(&format!("{name}.der"));
    std::fs::write(&der, &reply.body).expect("writing the CRL");
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-noout",
        "-text",
    ])
}

fn crl_number(text: &str) -> u64 {
    let (_, value) = common::extension(text, "X509v3 CRL Number");
    value
        .parse()
        .unwrap_or_else(|_| panic!("CRL number {value:?}"))
}

fn pending_ids(gw: &Gateway) -> Vec<String> {
    gw.run(&["request", "list"])
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

/// A default route and a `held` route with manual approval, on PostgreSQL.
fn two_node_config(cluster: &Cluster) -> String {
    format!(
        "[store]\nurl = \"{}\"\n\n[profiles.device]\n\n[[routes]]\nlabel = \"\"\n\
         profile = \"device\"\n\n[[routes]]\nlabel = \"held\"\nprofile = \"device\"\n\
         manual_approval = true\n",
        cluster.url("nodes")
    )
}

/// Two `enrollgate serve` processes on database `nodes`; node B runs on node A's key files
/// (the CA, RA and TLS identities and the token key), as nodes behind a load balancer do.
fn two_nodes(cluster: &Cluster) -> (Gateway, Gateway) {
    cluster.create_database("nodes");
    let config = two_node_config(cluster);
    let a = Gateway::start(&config);
    let mut b = Gateway::start(&config);
    for entry in std::fs::read_dir(&a.data_dir).expect("node A's data directory") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_name().map(ToOwned::to_owned) else {
            continue;
        };
        if path.is_file() && !name.to_string_lossy().starts_with("enrollgate.db") {
            std::fs::copy(&path, b.data_dir.join(&name)).expect("copying a key file");
        }
    }
    b.restart();
    assert_eq!(a.fingerprint, b.fingerprint, "one CA behind both nodes");
    (a, b)
}

/// Two `enrollgate serve` processes on one database (sharing the CA and token key files,
/// as nodes behind a load balancer do): a request held through node A, approved with the
/// CLI, is answered by node B; a token spent on A is refused by B.
#[test]
fn two_gateways_share_one_database() {
    let cluster = Cluster::start();
    let (a, b) = two_nodes(&cluster);

    // Held through A, approved with the CLI, handed out by B.
    let token = a.token(&["--route", "held"]);
    let csr = new_csr(&a.work_dir, "held", KeyType::P256, "/CN=shared-1", &[]);
    std::fs::copy(&csr.b64, b.path("held.csr.b64")).unwrap();
    a.est("held/simpleenroll")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(202, "held via node A");
    let held = pending_ids(&b);
    assert_eq!(
        held.len(),
        1,
        "node B lists the request held by A: {held:?}"
    );
    b.est("held/simpleenroll")
        .token(&token)
        .csr(&b.path("held.csr.b64"))
        .send()
        .expect(202, "resend to node B while held");
    let approved = b.run(&["request", "approve", &held[0]]);
    assert_eq!(approved.trim(), format!("{}: issued", held[0]));
    let reply = b
        .est("held/simpleenroll")
        .token(&token)
        .csr(&b.path("held.csr.b64"))
        .send();
    reply.expect(200, "resend to node B after approval");
    let cert = common::pkcs7_to_pem(&b.work_dir, "from-b", &reply.body);
    common::verify_cert(&b, &cert);
    assert_eq!(cert_pubkey(&cert), public_key_of(&csr.key));
    let again = a
        .est("held/simpleenroll")
        .token(&token)
        .csr(&csr.b64)
        .send();
    again.expect(200, "resend to node A after approval");
    let cert_a = common::pkcs7_to_pem(&a.work_dir, "from-a", &again.body);
    assert_eq!(cert_serial(&cert_a), cert_serial(&cert), "one certificate");

    // Revoked through node A's CLI, listed by node B's CRL; one CRL number sequence.
    let serial = cert_serial(&cert);
    let first = crl_of(&b, "crl-b1");
    assert!(!first.contains(&serial), "{first}");
    a.run(&["revoke", &serial, "--reason", "1"]);
    let on_b = crl_of(&b, "crl-b2");
    assert!(
        on_b.contains(&serial),
        "node B's CRL lacks {serial}:\n{on_b}"
    );
    let on_a = crl_of(&a, "crl-a");
    assert!(on_a.contains(&serial), "{on_a}");
    assert!(crl_number(&first) < crl_number(&on_b) && crl_number(&on_b) < crl_number(&on_a));

    // A one-use token spent on A is refused on B.
    let once = b.token(&[]);
    let first = new_csr(&a.work_dir, "once", KeyType::P256, "/CN=shared-2", &[]);
    common::enroll(&a, "simpleenroll", &once, &first);
    let second = new_csr(&b.work_dir, "twice", KeyType::P256, "/CN=shared-3", &[]);
    b.est("simpleenroll")
        .token(&once)
        .csr(&second.b64)
        .send()
        .expect(401, "token spent on node A, presented to node B");
}

/// SCEP on two nodes: a PKCSReq held through node A is polled through node B, approved
/// with node B's CLI, and both nodes answer the CertPoll with the one certificate.
#[test]
fn a_scep_request_held_on_one_node_is_polled_on_the_other() {
    let cluster = Cluster::start();
    let (a, b) = two_nodes(&cluster);
    let (sa, sb) = (Scep::new(&a), Scep::new(&b));
    let (url_a, url_b) = (
        format!("{}/scep/held", a.http_url),
        format!("{}/scep/held", b.http_url),
    );
    let cn = "scep-shared";
    let device = Requester::new(cn);
    let id = device.identity();
    let (_, secret) = a.token(&["--route", "held"]);
    let tid = pki::transaction_id(cn);
    let csr = device.csr(cn, Some(&secret));
    let req = pki::message(&id, &sa.ra, MessageType::PkcsReq, &tid, &csr);
    assert_eq!(sa.exchange(&url_a, &id, &req).status, PkiStatus::Pending);

    let content = pki::cert_poll_content(&sb.issuing, cn);
    let poll = || pki::message(&id, &sb.ra, MessageType::CertPoll, &tid, &content);
    assert_eq!(
        sb.exchange(&url_b, &id, &poll()).status,
        PkiStatus::Pending,
        "node B sees the request held by node A"
    );
    let held = pending_ids(&b);
    assert_eq!(held.len(), 1, "{held:?}");
    b.run(&["request", "approve", &held[0]]);
    let from_b = scep::issued(&sb.exchange(&url_b, &id, &poll()));
    let from_a = scep::issued(&sa.exchange(&url_a, &id, &poll()));
    assert_eq!(from_a, from_b, "one certificate, whichever node answers");
}

/// A node whose database goes away reports itself unready (`/readyz` 503) and refuses to
/// enroll instead of hanging; once the database is back, the same process is ready and
/// enrolls again, its pool having replaced the dead connections.
#[test]
fn a_node_is_unready_while_its_database_is_down_and_recovers() {
    let cluster = Cluster::start();
    cluster.create_database("nodes");
    let a = Gateway::start(&two_node_config(&cluster));
    let ready = || a.request(&format!("{}/readyz", a.admin_url)).send().status;
    assert_eq!(ready(), 200);
    let token = a.token(&[]);

    cluster.stop();
    assert_eq!(ready(), 503, "store down");
    let csr = new_csr(&a.work_dir, "down", KeyType::P256, "/CN=while-down", &[]);
    let refused = a.est("simpleenroll").token(&token).csr(&csr.b64).send();
    assert!(
        refused.status >= 500,
        "no enrollment without the store: {}",
        refused.status
    );

    cluster.start_again();
    let mut status = 0;
    for _ in 0..50 {
        status = ready();
        if status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(status, 200, "ready again once the database is back");
    common::enroll(&a, "simpleenroll", &token, &csr);
}

/// With `tls_ca_file` every connection is TLS to a server whose certificate chains to that
/// CA: a role the server admits only over TLS gets in, the same role without the option is
/// refused, and a server certificate from another CA is refused by the store.
#[test]
fn tls_ca_file_makes_every_connection_tls_to_a_certified_server() {
    let cluster = Cluster::start();
    let ca = cluster.enable_tls("tlsnode");
    cluster.psql("postgres", "CREATE ROLE tlsnode LOGIN");
    cluster.psql("postgres", "CREATE DATABASE tlsdb OWNER tlsnode");
    let url = format!("postgres://tlsnode@127.0.0.1:{}/tlsdb", cluster.port);
    let config = |ca_file: Option<std::path::PathBuf>| StoreConfig {
        url: Some(url.clone()),
        tls_ca_file: ca_file,
        pool_size: 2,
        ..StoreConfig::default()
    };
    runtime().block_on(async {
        let s = PostgresStore::connect(&config(Some(ca.clone())))
            .await
            .expect("TLS connection");
        assert_eq!(s.next_counter("tls").await.unwrap(), 1);

        let clear = PostgresStore::connect(&config(None))
            .await
            .expect_err("refused in clear");
        assert!(clear.to_string().contains("pg_hba.conf rejects"), "{clear}");

        // Another CA: the server's certificate does not verify.
        let other = tempfile::tempdir().unwrap();
        let other_ca = pg::new_ca(other.path(), "other", "other CA");
        let e = PostgresStore::connect(&config(Some(other_ca)))
            .await
            .expect_err("untrusted server certificate");
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    });
}
