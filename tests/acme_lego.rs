//! lego (the Debian package) against the gateway's ACME server, once per challenge type:
//! http-01 and tls-alpn-01 with lego's own challenge servers on loopback ports, and dns-01 with
//! pebble-challtestsrv (Debian package pebble) as the DNS server the gateway resolves through;
//! lego's `exec` DNS provider sets the TXT record over challtestsrv's management API.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acme_client::{free_port, logged};
use common::{Gateway, require_tool, run, verify_cert, x509_text};

/// Ports of one test: lego's http-01 and tls-alpn-01 servers, challtestsrv's DNS and
/// management listeners.
struct Ports {
    http: u16,
    tls: u16,
    dns: u16,
    management: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            http: free_port(),
            tls: free_port(),
            dns: free_port(),
            management: free_port(),
        }
    }
}

fn gateway(p: &Ports) -> Gateway {
    Gateway::start(&format!(
        r#"
[acme]
resolver = "127.0.0.1:{dns}"
validation_retry_secs = 1

[[acme.routes]]
label = ""
http01_port = {http}
tls_alpn01_port = {tls}
resolve_to = "127.0.0.1"

[[routes]]
label = ""
profile = "device"
auth = ["anonymous", "token"]
"#,
        dns = p.dns,
        http = p.http,
        tls = p.tls
    ))
}

/// `lego --server .. --accept-tos --email .. --domains NAME --path .. ARGS run`.
fn lego(gw: &Gateway, name: &str, args: &[&str]) -> Command {
    require_tool("lego");
    let mut cmd = Command::new("lego");
    cmd.arg("--server")
        .arg(format!("{}/acme/directory", gw.https_url))
        .args([
            "--accept-tos",
            "--email",
            "lego@example.com",
            "--domains",
            name,
        ])
        .arg("--path")
        .arg(gw.path("lego"))
        .args(args)
        .arg("run")
        .env("LEGO_CA_CERTIFICATES", gw.root_pem());
    cmd
}

/// The certificate lego wrote verifies and names `name`, and the gateway itself validated
/// `name` with a challenge of `kind` (its log line, `Debug` of the challenge type).
fn check_issued(gw: &Gateway, name: &str, kind: &str) {
    let validated = logged(gw, "acme challenge valid", &[&format!("kind={kind}"), name]);
    assert!(validated, "no {kind} validation of {name}:\n{}", gw.log());
    let cert = gw.path("lego").join(format!("certificates/{name}.crt"));
    // lego writes the leaf and the issuing CA into one file; verify the leaf.
    let text = std::fs::read_to_string(&cert).expect("lego wrote the certificate");
    let leaf = common::split_pem(&text).into_iter().next().expect("a leaf");
    let leaf_path = gw.path(&format!("{name}.leaf.pem"));
    std::fs::write(&leaf_path, leaf).expect("writing the leaf");
    verify_cert(gw, &leaf_path);
    assert!(x509_text(&leaf_path).contains(&format!("DNS:{name}")));
}

#[test]
fn lego_obtains_with_http01() {
    let ports = Ports::new();
    let gw = gateway(&ports);
    let listen = format!("127.0.0.1:{}", ports.http);
    run(&mut lego(
        &gw,
        "web.test",
        &["--http", "--http.port", &listen],
    ));
    check_issued(&gw, "web.test", "Http01");
}

#[test]
fn lego_obtains_with_tls_alpn01() {
    let ports = Ports::new();
    let gw = gateway(&ports);
    let listen = format!("127.0.0.1:{}", ports.tls);
    run(&mut lego(
        &gw,
        "alpn.test",
        &["--tls", "--tls.port", &listen],
    ));
    check_issued(&gw, "alpn.test", "TlsAlpn01");
}

#[test]
fn lego_obtains_with_dns01_through_challtestsrv() {
    let ports = Ports::new();
    let _dns = ChallTestSrv::start(&ports);
    let gw = gateway(&ports);
    let script = gw.path("set-txt.sh");
    std::fs::write(&script, exec_script(ports.management)).expect("writing the exec script");
    make_executable(&script);
    let resolver = format!("127.0.0.1:{}", ports.dns);
    let mut cmd = lego(
        &gw,
        "dns.test",
        &[
            "--dns",
            "exec",
            "--dns.resolvers",
            &resolver,
            "--dns.disable-cp",
        ],
    );
    cmd.env("EXEC_PATH", &script);
    run(&mut cmd);
    check_issued(&gw, "dns.test", "Dns01");
}

/// lego's exec provider calls `SCRIPT present|cleanup FQDN VALUE`.
fn exec_script(management: u16) -> String {
    format!(
        "#!/bin/sh\nset -e\nurl=http://127.0.0.1:{management}\ncase \"$1\" in\n  \
         present) curl -sS -X POST -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" $url/set-txt ;;\n  \
         cleanup) curl -sS -X POST -d \"{{\\\"host\\\":\\\"$2\\\"}}\" $url/clear-txt ;;\nesac\n"
    )
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)
        .expect("script metadata")
        .permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// pebble-challtestsrv serving DNS and its management API on loopback; killed on drop.
struct ChallTestSrv(Child);

impl ChallTestSrv {
    fn start(p: &Ports) -> Self {
        require_tool("pebble-challtestsrv");
        let child = Command::new("pebble-challtestsrv")
            .arg("-dns01")
            .arg(format!("127.0.0.1:{}", p.dns))
            .arg("-management")
            .arg(format!("127.0.0.1:{}", p.management))
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pebble-challtestsrv");
        let guard = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", p.management)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble-challtestsrv did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        guard
    }
}

impl Drop for ChallTestSrv {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
