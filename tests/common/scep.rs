//! SCEP helpers on top of the shared harness: the gateway's RA certificate, pkiMessages POSTed
//! with curl and their CertReps opened with `enrollgate_scep::client`, and the real micromdm
//! `scepclient`.

#![allow(
    dead_code,
    reason = "the SCEP test crates each use a different part of these helpers"
)]

#[path = "scep_pki.rs"]
pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use enrollgate_scep::client::{CertRep, ClientIdentity, open_cert_rep};
use enrollgate_scep::{FailInfo, PkiStatus};

use crate::common::{Gateway, Reply, decode_base64, describe, require_tool, run_unchecked, unique};

/// The content type of a pkiMessage, both ways (RFC 8894 section 4.3).
pub const PKI_MESSAGE: &str = "application/x-pki-message";

/// The DER of the first certificate in a PEM file.
pub fn pem_cert_der(path: &Path) -> Vec<u8> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    decode_base64(body.as_bytes())
}

/// Writes DER certificates as one PEM file.
pub fn write_pem(path: &Path, ders: &[Vec<u8>]) {
    use base64::Engine;
    let mut text = String::new();
    for der in ders {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        text.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            text.push('\n');
        }
        text.push_str("-----END CERTIFICATE-----\n");
    }
    std::fs::write(path, text).expect("writing PEM");
}

/// The gateway's SCEP side: its RA and issuing CA certificates and its two listeners.
pub struct Scep<'a> {
    /// The gateway.
    pub gw: &'a Gateway,
    /// The RA certificate (DER): requests are encrypted to it, CertReps signed by it.
    pub ra: Vec<u8>,
    /// The issuing CA certificate (DER).
    pub issuing: Vec<u8>,
}

impl<'a> Scep<'a> {
    /// Reads the RA and issuing CA certificates from the data directory.
    pub fn new(gw: &'a Gateway) -> Self {
        Self {
            gw,
            ra: pem_cert_der(&gw.data_dir.join("ra.crt")),
            issuing: pem_cert_der(&gw.issuing_pem()),
        }
    }

    /// `http://127.0.0.1:PORT/scep`.
    pub fn http(&self) -> String {
        format!("{}/scep", self.gw.http_url)
    }

    /// `https://127.0.0.1:PORT/scep`.
    pub fn https(&self) -> String {
        format!("{}/scep", self.gw.https_url)
    }

    /// POSTs a pkiMessage to `endpoint` (a SCEP URL without query).
    pub fn post(&self, endpoint: &str, der: &[u8]) -> Reply {
        let file = self.gw.path(&unique("scep-request"));
        std::fs::write(&file, der).expect("writing the pkiMessage");
        let url = format!("{endpoint}?operation=PKIOperation");
        self.gw.request(&url).body(&file, PKI_MESSAGE).send()
    }

    /// POSTs a pkiMessage and opens the CertRep it must get, checking that the reply echoes
    /// the transactionID.
    pub fn exchange(&self, endpoint: &str, client: &ClientIdentity, der: &[u8]) -> CertRep {
        let reply = self.post(endpoint, der);
        reply.expect(200, "PKIOperation");
        assert_eq!(reply.header("content-type"), Some(PKI_MESSAGE));
        open_cert_rep(client, &self.ra, &reply.body)
            .unwrap_or_else(|e| panic!("the CertRep does not open: {e}"))
    }

    /// A GET operation (`GetCACaps`, `GetCACert`) on `endpoint`.
    pub fn get(&self, endpoint: &str, operation: &str) -> Reply {
        self.gw
            .request(&format!("{endpoint}?operation={operation}"))
            .send()
    }
}

/// Asserts a SUCCESS and returns the issued certificate (the first of the reply), DER.
pub fn issued(rep: &CertRep) -> Vec<u8> {
    assert_eq!(
        rep.status,
        PkiStatus::Success,
        "expected SUCCESS, got {:?} {:?} {:?}",
        rep.status,
        rep.fail_info,
        rep.fail_info_text
    );
    rep.certificates
        .first()
        .cloned()
        .expect("a SUCCESS carries the issued certificate")
}

/// Asserts a FAILURE with `fail_info`.
pub fn assert_failure(rep: &CertRep, fail_info: FailInfo) {
    assert_eq!(
        (rep.status, rep.fail_info),
        (PkiStatus::Failure, Some(fail_info)),
        "failInfoText {:?}",
        rep.fail_info_text
    );
}

/// The SHA-256 fingerprint of a DER certificate, lower-case hex, as scepclient's
/// `-ca-fingerprint` wants it.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// One run of the micromdm `scepclient` in its own directory (it writes `csr.pem` there).
pub struct ScepClient {
    /// Working directory; also holds `client.key` and `client.pem`.
    pub dir: PathBuf,
    /// `-server-url`.
    pub url: String,
    /// `-ca-fingerprint`: the RA certificate's, so that it encrypts to the RA only.
    pub ra_fingerprint: String,
    /// `-cn`.
    pub cn: String,
    /// A PEM bundle for Go's TLS (`SSL_CERT_FILE`), for https URLs.
    pub ca_file: Option<PathBuf>,
}

impl ScepClient {
    /// A client working in a fresh directory under the gateway's scratch directory.
    pub fn new(scep: &Scep<'_>, url: &str, cn: &str) -> Self {
        let dir = scep.gw.path(&unique("scepclient"));
        std::fs::create_dir_all(&dir).expect("scepclient directory");
        Self {
            dir,
            url: url.to_owned(),
            ra_fingerprint: sha256_hex(&scep.ra),
            cn: cn.to_owned(),
            ca_file: None,
        }
    }

    /// The key scepclient made (PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// The certificate scepclient wrote (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// Runs scepclient to completion; `extra` adds e.g. `-challenge SECRET`.
    pub fn run(&self, extra: &[&str]) -> Output {
        run_unchecked(&mut self.command(extra))
    }

    /// Starts scepclient in the background (for held requests: it sleeps and retries).
    pub fn spawn(&self, extra: &[&str]) -> Child {
        let mut cmd = self.command(extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(&cmd)))
    }

    fn command(&self, extra: &[&str]) -> Command {
        require_tool("scepclient");
        let mut cmd = Command::new("scepclient");
        cmd.current_dir(&self.dir)
            .args(["-server-url", &self.url, "-cn", &self.cn])
            .args(["-ca-fingerprint", &self.ra_fingerprint])
            .arg("-private-key")
            .arg(self.key())
            .arg("-certificate")
            .arg(self.cert())
            .args(extra);
        if let Some(ca) = &self.ca_file {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd
    }
}

/// scepclient's stdout and stderr together, for assertions and messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
