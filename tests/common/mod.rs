//! The harness shared by the integration tests: it runs the real `enrollgate` binary and drives
//! it with the real `curl` and `openssl` command-line tools, as an operator and a device would.
//!
//! [`Gateway::start`] writes a configuration whose listeners bind port 0 (so that tests run in
//! parallel), adds the test's own TOML, spawns `enrollgate serve` on a fresh temporary data
//! directory, and reads the addresses it prints. Dropping the [`Gateway`] kills the process;
//! when the test is failing, the tail of the gateway's log is printed first.
//!
//! A tool that is missing makes the test fail with a clear message ([`require_tool`]): these
//! tests never skip silently. Every command that is expected to succeed is run through [`run`],
//! whose panic message carries the command line and its stderr.
//!
//! Note on the extra TOML: a table the test defines replaces the default one whole. Defining
//! `[profiles.x]` removes the default `device` profile, and defining `[[routes]]` removes the
//! default route, so a test that adds a route must also list the default one (`label = ""`).
//! The `[listen]` table is written by the harness and must not appear in the extra text.

#![allow(
    dead_code,
    reason = "each integration test crate uses a different part of the harness"
)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tempfile::TempDir;

/// The gateway binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_enrollgate");

/// How long `serve` may take to print its addresses (a debug build creating its CA, with
/// other tests running beside it on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds curl may spend on one request before the test fails.
const CURL_MAX_TIME: &str = "30";

/// A running `enrollgate serve` with its own temporary directory.
pub struct Gateway {
    dir: TempDir,
    child: Option<Child>,
    log_path: PathBuf,
    /// The configuration file the gateway was started with.
    pub config_path: PathBuf,
    /// The data directory (CA keys, database, token key).
    pub data_dir: PathBuf,
    /// A scratch directory for the test's own files (keys, CSRs, replies).
    pub work_dir: PathBuf,
    /// `https://127.0.0.1:PORT`, the HTTPS listener (EST).
    pub https_url: String,
    /// `http://127.0.0.1:PORT`, the plain HTTP listener (CRL, SCEP, CMP).
    pub http_url: String,
    /// `http://127.0.0.1:PORT`, the admin listener (metrics, health).
    pub admin_url: String,
    /// `127.0.0.1:PORT`, the CoAPs (UDP, DTLS) listener, empty if it did not start.
    pub coaps_addr: String,
    /// The root CA fingerprint line as `serve` printed it (colon-separated hex).
    pub fingerprint: String,
}

impl Gateway {
    /// Starts a gateway with port-0 listeners and `config_toml_extra` appended to the
    /// configuration (profiles, routes, limits, ...).
    pub fn start(config_toml_extra: &str) -> Self {
        require_tool("curl");
        require_tool("openssl");
        let dir = tempfile::Builder::new()
            .prefix("enrollgate-itest-")
            .tempdir()
            .expect("creating a temporary directory");
        let config_path = dir.path().join("enrollgate.toml");
        let config = format!(
            "[listen]\nhttps = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
             coaps = \"127.0.0.1:0\"\n\n\
             {config_toml_extra}\n"
        );
        std::fs::write(&config_path, config).expect("writing the configuration");
        let work_dir = dir.path().join("work");
        std::fs::create_dir(&work_dir).expect("creating the work directory");
        let mut gw = Self {
            data_dir: dir.path().join("data"),
            log_path: dir.path().join("serve.log"),
            config_path,
            work_dir,
            dir,
            child: None,
            https_url: String::new(),
            http_url: String::new(),
            admin_url: String::new(),
            coaps_addr: String::new(),
            fingerprint: String::new(),
        };
        gw.spawn();
        gw
    }

    /// Stops the gateway and starts it again on the same configuration and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The root CA certificate (PEM) of the built-in CA.
    pub fn root_pem(&self) -> PathBuf {
        self.data_dir.join("root.crt")
    }

    /// The issuing CA certificate (PEM) of the built-in CA.
    pub fn issuing_pem(&self) -> PathBuf {
        self.data_dir.join("issuing.crt")
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work_dir.join(name)
    }

    /// The URL of an EST operation: `op` is `simpleenroll` or `label/simpleenroll`.
    pub fn est_url(&self, op: &str) -> String {
        format!("{}/.well-known/est/{op}", self.https_url)
    }

    /// Runs `enrollgate ARGS --config .. --data-dir ..` and asserts that it succeeds;
    /// returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = run(&mut self.command(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`Gateway::run`] but returns the output whatever the exit status.
    pub fn run_unchecked(&self, args: &[&str]) -> Output {
        run_unchecked(&mut self.command(args))
    }

    /// `enrollgate token create --json ARGS`; returns the token's (id, secret).
    pub fn token(&self, args: &[&str]) -> (String, String) {
        let mut full = vec!["token", "create", "--json"];
        full.extend_from_slice(args);
        let stdout = self.run(&full);
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("token create printed no JSON ({e}): {stdout}"));
        let field = |name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("token JSON without {name}: {stdout}"))
                .to_owned()
        };
        (field("id"), field("secret"))
    }

    /// An EST request to `op` (`simpleenroll`, `iot/cacerts`, ...), sent by curl over HTTPS
    /// with the root CA as trust anchor.
    pub fn est(&self, op: &str) -> Curl<'_> {
        Curl::new(self, self.est_url(op))
    }

    /// A request to any URL, with the root CA as trust anchor for HTTPS.
    pub fn request(&self, url: &str) -> Curl<'_> {
        Curl::new(self, url.to_owned())
    }

    /// The admin listener's `/metrics`, parsed.
    pub fn metrics(&self) -> Metrics {
        let reply = self.request(&format!("{}/metrics", self.admin_url)).send();
        assert_eq!(reply.status, 200, "GET /metrics: {}", reply.text());
        Metrics::parse(&reply.text())
    }

    /// The gateway's log so far (stderr of `serve`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("ENROLLGATE_CONFIG")
            .env_remove("ENROLLGATE_DATA_DIR");
        cmd
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("opening the gateway log");
        let mut child = self
            .command(&["serve"])
            .env("RUST_LOG", "info,enrollgate=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);

        // Read stdout on a thread (and keep draining it) so that the wait can time out.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.read_addresses(&rx);
    }

    fn read_addresses(&mut self, rx: &mpsc::Receiver<String>) {
        for field in [
            &mut self.https_url,
            &mut self.http_url,
            &mut self.admin_url,
            &mut self.coaps_addr,
            &mut self.fingerprint,
        ] {
            field.clear();
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut printed = Vec::new();
        while self.fingerprint.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "enrollgate serve did not print its addresses ({e:?}); stdout so far:\n{}\n\
                     log:\n{}",
                    printed.join("\n"),
                    self.log()
                ),
            };
            let url = || first_word_after(&line, ':');
            if line.starts_with("EST:") {
                self.https_url = origin_of(&url());
            } else if line.starts_with("HTTP:") {
                self.http_url = origin_of(&url());
            } else if line.starts_with("CoAPs:") {
                self.coaps_addr = url().trim_start_matches("coaps://").to_owned();
                if let Some(slash) = self.coaps_addr.find('/') {
                    self.coaps_addr.truncate(slash);
                }
            } else if line.starts_with("admin:") {
                self.admin_url = origin_of(&url());
            } else if let Some(fp) = line.strip_prefix("root CA SHA-256 fingerprint:") {
                self.fingerprint = fp.trim().to_owned();
            }
            printed.push(line);
        }
        let all = [&self.https_url, &self.http_url, &self.admin_url];
        assert!(
            all.iter().all(|u| !u.is_empty()),
            "serve did not print every listener:\n{}",
            printed.join("\n")
        );
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "---- last lines of the gateway log ({}) ----\n{}",
                self.dir.path().display(),
                tail.join("\n")
            );
        }
    }
}

/// `EST:   https://127.0.0.1:1/.well-known/est/` -> `https://127.0.0.1:1/.well-known/est/`.
fn first_word_after(line: &str, sep: char) -> String {
    let rest = line.split_once(sep).map_or("", |(_, r)| r);
    rest.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `https://127.0.0.1:1/.well-known/est/` -> `https://127.0.0.1:1`.
fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_owned()
}

// ---------------------------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------------------------

/// Panics with a clear message when `name` is not an executable on `PATH`.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(name);
            p.is_file()
                && std::fs::metadata(&p).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
        })
    });
    assert!(
        found,
        "required tool `{name}` is not installed (on Debian: apt-get install {name}; \
         scripts/test-deps.sh installs every tool the tests need). These tests do not skip."
    );
}

/// The command line of `cmd`, for messages.
pub fn describe(cmd: &Command) -> String {
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.join(" ")
}

/// Runs `cmd` to completion whatever its exit status.
pub fn run_unchecked(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs `cmd` and panics, with its stderr, unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = run_unchecked(cmd);
    assert!(
        out.status.success(),
        "`{}` failed ({}):\nstderr:\n{}\nstdout:\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        truncate(&String::from_utf8_lossy(&out.stdout), 2000)
    );
    out
}

/// `openssl ARGS`, asserted to succeed; returns stdout as text.
pub fn openssl<S: AsRef<OsStr>>(args: &[S]) -> String {
    require_tool("openssl");
    let out = run(Command::new("openssl").args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl ARGS` whatever its exit status.
pub fn openssl_unchecked<S: AsRef<OsStr>>(args: &[S]) -> Output {
    require_tool("openssl");
    run_unchecked(Command::new("openssl").args(args))
}

/// A path as `&str` (the harness only makes UTF-8 paths).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// An HTTP reply as curl received it.
#[derive(Debug)]
pub struct Reply {
    /// The status code of the final response.
    pub status: u16,
    /// Header names (lower case) and values of the final response.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{what}: expected HTTP {status}, got {} with body {:?}",
            self.status,
            truncate(&self.text(), 500)
        );
        self
    }
}

/// A curl invocation being assembled.
pub struct Curl<'a> {
    gw: &'a Gateway,
    url: String,
    args: Vec<String>,
}

impl Curl<'_> {
    fn new(gw: &Gateway, url: String) -> Curl<'_> {
        Curl {
            gw,
            url,
            args: Vec::new(),
        }
    }

    /// HTTP Basic credentials (an enrollment token).
    pub fn token(self, token: &(String, String)) -> Self {
        self.arg("-u").arg(&format!("{}:{}", token.0, token.1))
    }

    /// A TLS client certificate and its key (PEM files).
    pub fn client_cert(self, cert: &Path, key: &Path) -> Self {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        self.arg("--cert").arg(&cert).arg("--key").arg(&key)
    }

    /// POSTs a base64 CSR file as `application/pkcs10`.
    pub fn csr(self, b64_file: &Path) -> Self {
        self.body(b64_file, "application/pkcs10")
    }

    /// POSTs a file with this content type.
    pub fn body(self, file: &Path, content_type: &str) -> Self {
        let data = format!("@{}", file.display());
        self.arg("-H")
            .arg(&format!("Content-Type: {content_type}"))
            .arg("--data-binary")
            .arg(&data)
    }

    /// Any other curl argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    /// Runs curl; panics if curl itself fails (no connection, TLS failure, timeout).
    pub fn send(self) -> Reply {
        let what = format!("curl {}", self.url);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Runs curl; `Err` carries curl's exit status and stderr when curl itself fails.
    pub fn try_send(self) -> Result<Reply, String> {
        require_tool("curl");
        let tmp = tempfile::tempdir_in(&self.gw.work_dir).expect("curl scratch directory");
        let (head, body) = (tmp.path().join("head"), tmp.path().join("body"));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", CURL_MAX_TIME, "--cacert"])
            .arg(self.gw.root_pem())
            .arg("-D")
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"])
            .args(&self.args)
            .arg(&self.url);
        let out = run_unchecked(&mut cmd);
        if !out.status.success() {
            return Err(format!(
                "`{}` exited {}: {}",
                describe(&cmd),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let code = String::from_utf8_lossy(&out.stdout);
        let status = code
            .trim()
            .parse()
            .map_err(|_| format!("curl printed no status code: {code:?}"))?;
        let head = std::fs::read_to_string(&head).unwrap_or_default();
        Ok(Reply {
            status,
            headers: last_header_block(&head),
            body: std::fs::read(&body).unwrap_or_default(),
        })
    }
}

/// The headers of the last response in a `curl -D` dump (there may be interim 100 responses).
fn last_header_block(dump: &str) -> Vec<(String, String)> {
    let block = dump
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or_default();
    block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// A Prometheus text exposition: series (`name{labels}`) to value.
#[derive(Debug, Default)]
pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    /// Parses the text format, ignoring comments.
    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(s, v)| Some((s.to_owned(), v.parse().ok()?)))
            .collect();
        Self(series)
    }

    /// The sum of every series of metric `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Every EST refusal: the registrar's and the protocol decoder's.
    pub fn est_refusals(&self) -> f64 {
        let est = [("protocol", "est")];
        self.sum("enrollgate_rejections_total", &est) + self.sum("enrollgate_bad_input_total", &est)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, CSRs, certificates
// ---------------------------------------------------------------------------------------------

/// The key of a CSR made by [`new_csr`].
#[derive(Clone, Copy, Debug)]
pub enum KeyType {
    /// ECDSA on P-256.
    P256,
    /// RSA with this many bits.
    Rsa(u32),
    /// Ed25519.
    Ed25519,
}

/// The files of one CSR.
#[derive(Clone, Debug)]
pub struct CsrFiles {
    /// The private key, PEM.
    pub key: PathBuf,
    /// The CSR, DER.
    pub der: PathBuf,
    /// The CSR, base64 as EST sends it.
    pub b64: PathBuf,
}

/// Makes a key and a CSR with openssl. `subject` is in openssl form (`/CN=dev1/O=Acme`);
/// `sans` are openssl SAN entries such as `DNS:dev1.example.com` or `IP:192.0.2.1`.
pub fn new_csr(dir: &Path, name: &str, key: KeyType, subject: &str, sans: &[&str]) -> CsrFiles {
    let key_path = dir.join(format!("{name}.key"));
    let key_str = key_path.display().to_string();
    let mut args = vec!["genpkey".to_owned()];
    args.extend(match key {
        KeyType::P256 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
            .map(String::from)
            .to_vec(),
        KeyType::Rsa(bits) => vec![
            "-algorithm".into(),
            "RSA".into(),
            "-pkeyopt".into(),
            format!("rsa_keygen_bits:{bits}"),
        ],
        KeyType::Ed25519 => vec!["-algorithm".into(), "ED25519".into()],
    });
    args.extend(["-out".to_owned(), key_str]);
    openssl(&args);
    csr_with_key(dir, name, &key_path, subject, sans)
}

/// Makes a CSR for an existing key (PEM).
pub fn csr_with_key(dir: &Path, name: &str, key: &Path, subject: &str, sans: &[&str]) -> CsrFiles {
    let der = dir.join(format!("{name}.csr.der"));
    let mut args: Vec<String> = ["req", "-new", "-key"].map(String::from).to_vec();
    args.push(key.display().to_string());
    args.extend(["-subj".into(), subject.into()]);
    if !sans.is_empty() {
        args.extend([
            "-addext".into(),
            format!("subjectAltName={}", sans.join(",")),
        ]);
    }
    args.extend(["-outform".into(), "DER".into(), "-out".into()]);
    args.push(der.display().to_string());
    openssl(&args);
    let b64 = dir.join(format!("{name}.csr.b64"));
    write_base64(&b64, &std::fs::read(&der).expect("reading the CSR"));
    CsrFiles {
        key: key.to_owned(),
        der,
        b64,
    }
}

/// Writes the base64 of `der` in lines of 64 characters.
pub fn write_base64(path: &Path, der: &[u8]) {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("writing base64");
}

/// Decodes base64 text, ignoring whitespace.
pub fn decode_base64(text: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(compact)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {:?}", String::from_utf8_lossy(text)))
}

/// Decodes a base64 certs-only PKCS#7 body and writes its certificates as PEM with
/// `openssl pkcs7 -print_certs`; returns the PEM file.
pub fn pkcs7_to_pem(dir: &Path, name: &str, b64_body: &[u8]) -> PathBuf {
    let der = dir.join(format!("{name}.p7b"));
    std::fs::write(&der, decode_base64(b64_body)).expect("writing the PKCS#7");
    let pem = dir.join(format!("{name}.pem"));
    openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-print_certs",
        "-out",
        path_str(&pem),
    ]);
    pem
}

/// `openssl verify -CAfile root -untrusted issuing CERT`, asserted to print OK.
pub fn verify_cert(gw: &Gateway, cert_pem: &Path) {
    let (root, issuing) = (gw.root_pem(), gw.issuing_pem());
    let out = openssl(&[
        "verify",
        "-CAfile",
        path_str(&root),
        "-untrusted",
        path_str(&issuing),
        path_str(cert_pem),
    ]);
    assert!(out.trim_end().ends_with(": OK"), "openssl verify: {out}");
}

/// `openssl x509 -noout -text` of a PEM certificate.
pub fn x509_text(cert_pem: &Path) -> String {
    x509(cert_pem, &["-text"])
}

/// The serial number as openssl prints it (upper-case hex).
pub fn cert_serial(cert_pem: &Path) -> String {
    let out = x509(cert_pem, &["-serial"]);
    out.trim().trim_start_matches("serial=").to_owned()
}

/// The subject in openssl's RFC 2253 form, e.g. `CN=dev1`.
pub fn cert_subject(cert_pem: &Path) -> String {
    let out = x509(cert_pem, &["-subject", "-nameopt", "RFC2253"]);
    out.trim().trim_start_matches("subject=").to_owned()
}

/// The certificate's public key, PEM.
pub fn cert_pubkey(cert_pem: &Path) -> String {
    x509(cert_pem, &["-pubkey"])
}

/// `openssl x509 -noout ARGS -in CERT`.
pub fn x509(cert_pem: &Path, args: &[&str]) -> String {
    let mut all = vec!["x509", "-noout"];
    all.extend_from_slice(args);
    all.extend(["-in", path_str(cert_pem)]);
    openssl(&all)
}

/// SHA-256 fingerprint of a PEM certificate as openssl prints it (`AB:CD:...`).
pub fn cert_fingerprint(cert_pem: &Path) -> String {
    let out = x509(cert_pem, &["-fingerprint", "-sha256"]);
    out.trim()
        .rsplit_once('=')
        .map(|(_, f)| f.to_owned())
        .unwrap_or(out)
}

// ---------------------------------------------------------------------------------------------
// multipart/mixed (serverkeygen replies), parsed independently of the gateway's own code
// ---------------------------------------------------------------------------------------------

/// The parts of a multipart body: each part's Content-Type and its content, base64-decoded
/// when its Content-Transfer-Encoding says base64.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .next()
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"));
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    // Skip the preamble; stop at the closing delimiter.
    for chunk in text.split(&delimiter).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let (head, content) = chunk
            .trim_start_matches('\n')
            .split_once("\n\n")
            .unwrap_or_else(|| panic!("part without header end: {chunk:?}"));
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let content = if header("content-transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("base64"))
        {
            decode_base64(content.as_bytes())
        } else {
            content.as_bytes().to_vec()
        };
        parts.push((header("content-type").unwrap_or_default(), content));
    }
    parts
}

/// An extension in `openssl x509 -text` output: whether it is critical, and its first value
/// line. Panics when the certificate lacks it.
pub fn extension(x509_text: &str, name: &str) -> (bool, String) {
    let mut lines = x509_text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix(name) else {
            continue;
        };
        if let Some(flags) = rest.strip_prefix(':') {
            let value = lines.next().unwrap_or_default().trim().to_owned();
            return (flags.contains("critical"), value);
        }
    }
    panic!("no {name} extension in:\n{x509_text}")
}

/// The PEM certificates in a bundle, each as its own PEM text.
pub fn split_pem(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter_map(|c| c.find("-----BEGIN CERTIFICATE-----").map(|i| &c[i..]))
        .map(|c| format!("{c}\n"))
        .collect()
}

/// Enrolls `csr` at `op` with `token` and returns the issued certificate (PEM file),
/// asserting a 200 certs-only reply.
pub fn enroll(gw: &Gateway, op: &str, token: &(String, String), csr: &CsrFiles) -> PathBuf {
    let reply = gw.est(op).token(token).csr(&csr.b64).send();
    reply.expect(200, op);
    let ct = reply.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/pkcs7-mime") && ct.contains("certs-only"),
        "content type {ct:?}"
    );
    let name = csr
        .der
        .file_stem()
        .and_then(OsStr::to_str)
        .unwrap_or("cert");
    let pem = pkcs7_to_pem(
        &gw.work_dir,
        &unique(&format!("{name}.issued")),
        &reply.body,
    );
    verify_cert(gw, &pem);
    pem
}

/// `prefix` with a number no other call in this process got, for file names.
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{n}")
}

/// `text` without terminal colour codes (CSI sequences, which end with a letter).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
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
