//! Helpers for the backend tests: a gateway child process, real third-party servers, PKI
//! material made with `openssl`, and the EST (curl) and CMP (`openssl cmp`) clients.
//! Every tool is required: a missing one panics with its Debian package name.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Panics unless `cmd` runs; names the Debian package that provides it.
pub fn require(cmd: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{cmd} is missing: install the Debian package {package} (scripts/test-deps.sh)"
    );
}

/// A child process killed on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free a moment ago (for servers that cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on port {port}");
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Where the last EST enrollment's response headers are written, in the gateway's directory.
const EST_HEADERS: &str = "est-headers.txt";

/// A gateway child process on loopback port-0 listeners.
pub struct Gateway {
    /// Working directory (config, data, logs).
    pub dir: PathBuf,
    /// HTTPS port.
    pub https: u16,
    /// HTTP port.
    pub http: u16,
    /// Admin port.
    pub admin: u16,
    env: Vec<(String, String)>,
    child: ChildGuard,
}

impl Gateway {
    /// Starts `enrollgate serve` with the listeners block plus `extra` TOML, in `dir`.
    pub fn start(dir: &Path, extra: &str, env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir");
        let config = dir.join("gateway.toml");
        let text = format!(
            "[listen]\nhttps = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\ncoaps = \"127.0.0.1:0\"\n\n{extra}"
        );
        std::fs::write(&config, text).expect("write config");
        let log = std::fs::File::create(dir.join("gateway.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_enrollgate"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start enrollgate");
        let stdout = child.stdout.take().expect("stdout");
        let mut child = ChildGuard(child);
        let (mut https, mut http, mut admin) = (0, 0, 0);
        let mut lines = BufReader::new(stdout).lines();
        let port = |l: &str| -> u16 {
            let after = l.split("127.0.0.1:").nth(1).unwrap_or_default();
            after
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .unwrap_or(0)
        };
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.0.wait();
                let log = std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
                panic!("gateway exited before it was ready:\n{log}");
            };
            if line.starts_with("EST:") {
                https = port(&line);
            } else if line.starts_with("HTTP:") {
                http = port(&line);
            } else if line.starts_with("admin:") {
                admin = port(&line);
            } else if line.starts_with("root CA SHA-256") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Self {
            dir: dir.to_owned(),
            https,
            http,
            admin,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child,
        }
    }

    /// The root CA certificate file of the built-in CA (trust for our TLS listener).
    pub fn root(&self) -> PathBuf {
        self.dir.join("data/root.crt")
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("gateway.toml")
    }

    /// Runs an admin verb of the binary against this gateway's config and data.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_enrollgate"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run(&mut cmd)
    }

    /// Creates an unlimited token for `route`; returns (id, secret).
    pub fn token(&self, route: &str) -> (String, String) {
        let out = self.cli(&["token", "create", "--json", "--uses", "0", "--route", route]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("token JSON");
        (
            v["id"].as_str().expect("id").to_owned(),
            v["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// The gateway's log so far, without terminal colour codes.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// GETs an admin path; returns (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.admin);
        let out = run(Command::new("curl").args(["-s", "-w", "\n%{http_code}", &url]));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// The value of one metric sample (0 when absent).
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics");
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// EST simpleenroll with curl and Basic credentials. Returns (HTTP status, body).
    pub fn est_enroll(
        &self,
        label: &str,
        csr_der: &Path,
        user: &str,
        pass: &str,
    ) -> (u16, Vec<u8>) {
        self.est_enroll_within(label, csr_der, user, pass, 30)
    }

    /// EST simpleenroll that must succeed (HTTP 200; the body and the gateway's log are shown
    /// otherwise); returns the issued certificate written to `dir/name.leaf.crt`.
    pub fn est_issued(
        &self,
        dir: &Path,
        name: &str,
        label: &str,
        csr_der: &Path,
        user: &str,
        pass: &str,
    ) -> PathBuf {
        let (status, body) = self.est_enroll(label, csr_der, user, pass);
        assert_eq!(
            status,
            200,
            "{}\n{}",
            String::from_utf8_lossy(&body),
            self.log()
        );
        est_leaf(dir, name, &body)
    }

    /// As [`Self::est_enroll`], with curl giving up after `max_secs`: a gateway that has not
    /// answered by then yields status 0, so the status shows whether the client got an answer.
    pub fn est_enroll_within(
        &self,
        label: &str,
        csr_der: &Path,
        user: &str,
        pass: &str,
        max_secs: u32,
    ) -> (u16, Vec<u8>) {
        let b64 = self.dir.join(format!(
            "{}.b64",
            csr_der.file_name().unwrap_or_default().to_string_lossy()
        ));
        let der = std::fs::read(csr_der).expect("csr");
        use base64::Engine;
        std::fs::write(&b64, base64::engine::general_purpose::STANDARD.encode(der)).expect("write");
        let path = if label.is_empty() {
            String::new()
        } else {
            format!("/{label}")
        };
        let url = format!(
            "https://127.0.0.1:{}/.well-known/est{path}/simpleenroll",
            self.https
        );
        // Not `run`: a client that gave up (status 0) is an outcome for the caller to judge.
        let out = Command::new("curl")
            .args([
                "-s",
                "-S",
                "--max-time",
                &max_secs.to_string(),
                "-w",
                "\n%{http_code}",
                "-D",
            ])
            .arg(self.dir.join(EST_HEADERS))
            .arg("--cacert")
            .arg(self.root())
            .args([
                "-u",
                &format!("{user}:{pass}"),
                "-H",
                "Content-Type: application/pkcs10",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", b64.display()))
            .arg(&url)
            .output()
            .expect("run curl");
        let text = out.stdout;
        let split = text.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&text[split..])
            .trim()
            .parse()
            .unwrap_or(0);
        (code, text[..split].to_vec())
    }

    /// The value of a response header of the last EST enrollment, if present.
    pub fn est_last_header(&self, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(EST_HEADERS)).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// `openssl cmp -cmd p10cr` with MAC protection by token; returns the command output and
    /// the certificate file it writes on success.
    pub fn cmp_p10cr(
        &self,
        label: &str,
        csr_pem: &Path,
        id: &str,
        secret: &str,
        extra: &[&str],
    ) -> (Output, PathBuf) {
        let out_path = self.dir.join(format!(
            "cmp-{}.pem",
            csr_pem.file_name().unwrap_or_default().to_string_lossy()
        ));
        let path = if label.is_empty() {
            ".well-known/cmp".to_owned()
        } else {
            format!(".well-known/cmp/p/{label}")
        };
        let out = Command::new("openssl")
            .args([
                "cmp",
                "-server",
                &format!("127.0.0.1:{}", self.http),
                "-path",
                &path,
            ])
            .args(["-cmd", "p10cr", "-csr"])
            .arg(csr_pem)
            .args(["-ref", id, "-secret", &format!("pass:{secret}")])
            .args(["-certout"])
            .arg(&out_path)
            .args(["-msg_timeout", "20", "-total_timeout", "60"])
            .args(extra)
            .output()
            .expect("openssl cmp");
        (out, out_path)
    }
}

/// Makes a P-256 key and CSR in `dir`: returns (key.pem, csr.pem, csr.der).
pub fn key_and_csr(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let der = dir.join(format!("{name}.csr.der"));
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", &format!("/CN={cn}")]));
    run(Command::new("openssl")
        .args(["req", "-in"])
        .arg(&csr)
        .args(["-outform", "DER", "-out"])
        .arg(&der));
    (key, csr, der)
}

/// The certificates in a base64 certs-only PKCS#7 (an EST answer), as PEM text.
pub fn pkcs7_b64_to_pem(dir: &Path, body: &[u8]) -> String {
    let p7 = dir.join("answer.p7.b64");
    std::fs::write(&p7, body).expect("write");
    let der = dir.join("answer.p7");
    use base64::Engine;
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .expect("base64 PKCS#7");
    std::fs::write(&der, bytes).expect("write");
    let out = run(Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
        .arg(&der));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl verify -CAfile ca leaf` succeeds.
pub fn verifies(ca: &Path, leaf_pem: &Path) -> bool {
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(leaf_pem)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The public key of a certificate or key file, as openssl prints it (to compare keys).
pub fn pubkey_of_cert(cert_pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert_pem));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The public key of a private key file.
pub fn pubkey_of_key(key_pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(key_pem));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The issuer line of a certificate.
pub fn issuer_of(cert_pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(cert_pem));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What a fake CA answers to one request: status, content type, body.
pub type Answer = (u16, &'static str, Vec<u8>);

/// The requests a fake CA saw: (method, path, body).
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A scripted HTTP/1.1 server on loopback (one thread, `Connection: close`), standing in for
/// a CA API. `None` from the handler means: read the request, then never answer.
pub struct FakeServer {
    /// Its port.
    pub port: u16,
    /// Requests seen: (method, path, body).
    pub seen: Seen,
}

impl FakeServer {
    /// Starts the server; `handler` gets (method, path, headers, body).
    pub fn start<F>(handler: F) -> Self
    where
        F: Fn(&str, &str, &str, &[u8]) -> Option<Answer> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = std::sync::Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let log = log.clone();
                std::thread::spawn(move || serve_one(stream, &*handler, &log));
            }
        });
        Self { port, seen }
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

fn serve_one<F>(
    mut stream: std::net::TcpStream,
    handler: &F,
    log: &std::sync::Mutex<Vec<(String, String, Vec<u8>)>>,
) where
    F: Fn(&str, &str, &str, &[u8]) -> Option<Answer>,
{
    use std::io::{Read, Write};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[header_end..].to_vec();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    if let Ok(mut l) = log.lock() {
        l.push((method.clone(), path.clone(), body.clone()));
    }
    let Some((status, content_type, answer)) = handler(&method, &path, &head, &body) else {
        std::thread::sleep(Duration::from_secs(60));
        return;
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&answer);
}

/// Signs `csr` with `ca`/`ca_key` (openssl x509 -req); returns the certificate path.
pub fn sign_csr(dir: &Path, csr: &Path, ca: &Path, ca_key: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.crt"));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(ca_key)
        .args([
            "-set_serial",
            &format!("{}", 1000 + name.len() * 7 + name.as_bytes()[0] as usize),
            "-out",
        ])
        .arg(&out));
    out
}

/// A self-signed P-256 CA made with openssl; returns (cert, key).
pub fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// A fixture file under `tests/fixtures/{vendor}`.
pub fn fixture(vendor: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(vendor)
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON answer of a fake CA.
pub fn json_answer(status: u16, body: String) -> Option<Answer> {
    Some((status, "application/json", body.into_bytes()))
}

/// Signs a PEM CSR (text) with `ca`/`ca_key` and serial `serial`; returns the certificate PEM.
/// Files are written in `dir` under names made from `serial`.
pub fn sign_csr_text(dir: &Path, csr_pem: &str, ca: &Path, ca_key: &Path, serial: u64) -> String {
    let csr = dir.join(format!("signed-{serial}.csr"));
    let out = dir.join(format!("signed-{serial}.crt"));
    std::fs::write(&csr, csr_pem).expect("write CSR");
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(ca_key)
        .args(["-set_serial", &serial.to_string(), "-out"])
        .arg(&out));
    std::fs::read_to_string(out).expect("read certificate")
}

/// The base64 of a PEM certificate's DER.
pub fn der_b64(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Writes the first certificate of an EST answer to `dir/name.leaf.crt`.
pub fn est_leaf(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let pem = pkcs7_b64_to_pem(dir, body);
    let first = pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap_or_default();
    let leaf = dir.join(format!("{name}.leaf.crt"));
    std::fs::write(&leaf, first).expect("write leaf");
    leaf
}

/// A certificate's serial number as openssl prints it (upper-case hex).
pub fn serial_of(cert_pem: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert_pem));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}
