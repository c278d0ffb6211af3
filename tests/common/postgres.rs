//! A throwaway PostgreSQL cluster for the store tests: `initdb` into a temporary directory,
//! `pg_ctl start` listening on 127.0.0.1 on a free port (unix sockets inside the temporary
//! directory), stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root; when the tests run as root the server programs run as
//! the `postgres` user through `runuser`, and the directory is handed to that user. The
//! programs are looked up on `PATH`, then in Debian's `/usr/lib/postgresql/*/bin`; when they
//! are missing the test fails and says how to install them (it never skips).

#![allow(
    dead_code,
    reason = "each integration test crate uses a different part of the harness"
)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The user that owns the cluster when the tests run as root.
const PG_USER: &str = "postgres";

/// The superuser the cluster is created with.
pub const SUPERUSER: &str = "enrollgate";

/// A running PostgreSQL server with its own data directory.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    data: PathBuf,
    as_root: bool,
    /// The server options `pg_ctl start` was given.
    options: String,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
}

/// The directory holding `pg_ctl` and `initdb`; panics loudly when there is none.
pub fn require_postgres() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // The newest version first.
    debian.sort();
    debian.reverse();
    on_path
        .into_iter()
        .chain(debian)
        .find(|dir| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file())
        .unwrap_or_else(|| {
            panic!(
                "required tools `initdb` and `pg_ctl` (PostgreSQL server) are not installed \
                 (on Debian: apt-get install postgresql; scripts/test-deps.sh installs every \
                 tool the tests need). These tests do not skip."
            )
        })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstderr:\n{}\nstdout:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

impl Cluster {
    /// Creates and starts a cluster; trust authentication on loopback and the socket for
    /// [`SUPERUSER`], password (SCRAM) authentication for every other role.
    pub fn start() -> Self {
        let bin = require_postgres();
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if as_root {
            assert!(
                Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists(),
                "required tool `runuser` (util-linux) is missing: PostgreSQL will not run as root"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("enrollgate-pg-")
            .tempdir()
            .expect("creating a temporary directory");
        let data = dir.path().join("data");
        let mut cluster = Self {
            dir,
            bin,
            data,
            as_root,
            options: String::new(),
            port: 0,
        };
        if as_root {
            run(Command::new("chown")
                .arg(format!("{PG_USER}:"))
                .arg(cluster.dir.path()));
        }
        let data = cluster.data.display().to_string();
        let pwfile = cluster.dir.path().join("unused-superuser-password");
        std::fs::write(&pwfile, "unused\n").expect("writing the password file");
        if as_root {
            run(Command::new("chown")
                .arg(format!("{PG_USER}:"))
                .arg(&pwfile));
        }
        run(&mut cluster.command(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile.display().to_string(),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ));
        // Loopback TCP for the superuser without a password; other roles must give theirs.
        let hba = cluster.data.join("pg_hba.conf");
        let rules = format!(
            "local all all trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(&hba, rules).expect("writing pg_hba.conf");
        if as_root {
            run(Command::new("chown").arg(format!("{PG_USER}:")).arg(&hba));
        }
        // A free port may be taken between the probe and the start: try a few.
        for attempt in 0.. {
            cluster.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
                 -c max_connections=200",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log").display().to_string();
            let out = cluster
                .command(
                    "pg_ctl",
                    &[
                        "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &options,
                    ],
                )
                .stdin(Stdio::null())
                .output()
                .expect("running pg_ctl start");
            if out.status.success() {
                cluster.options = options;
                break;
            }
            assert!(
                attempt < 3,
                "pg_ctl start failed ({}): {}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        cluster
    }

    /// Stops the server (fast shutdown: sessions are ended), keeping its data.
    pub fn stop(&self) {
        let data = self.data.display().to_string();
        run(&mut self.command("pg_ctl", &["stop", "-m", "fast", "-w", "-D", &data]));
    }

    /// Starts the server again after [`Cluster::stop`], on the same port.
    pub fn start_again(&self) {
        let data = self.data.display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        run(&mut self.command(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                &data,
                "-l",
                &log,
                "-o",
                &self.options,
            ],
        ));
    }

    /// Turns TLS on with a server certificate for 127.0.0.1 from a new CA, and makes role
    /// `tls_role` connect over TLS only (trusted there, refused in clear); returns the CA file.
    pub fn enable_tls(&self, tls_role: &str) -> PathBuf {
        let dir = self.dir.path();
        let p = |name: &str| dir.join(name).display().to_string();
        let openssl = |args: &[&str]| run(Command::new("openssl").args(args));
        new_ca(dir, "ca", "enrollgate test db CA");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writing the extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("server.crt"),
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
        ]);
        if self.as_root {
            for f in ["server.key", "server.crt"] {
                run(Command::new("chown")
                    .arg(format!("{PG_USER}:"))
                    .arg(dir.join(f)));
            }
        }
        run(Command::new("chmod").arg("600").arg(dir.join("server.key")));
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("reading postgresql.conf");
        text.push_str(&format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            p("server.crt"),
            p("server.key")
        ));
        std::fs::write(&conf, text).expect("writing postgresql.conf");
        let hba = self.data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("reading pg_hba.conf");
        let rules = format!(
            "hostssl all {tls_role} 127.0.0.1/32 trust\n\
             hostnossl all {tls_role} 127.0.0.1/32 reject\n{rules}"
        );
        std::fs::write(&hba, rules).expect("writing pg_hba.conf");
        let data = self.data.display().to_string();
        run(&mut self.command("pg_ctl", &["reload", "-D", &data]));
        dir.join("ca.pem")
    }

    /// A `postgres://` URL for `database` as the superuser, without a password.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL through `psql` as the superuser over the unix socket.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = run(&mut self.psql_command(database, sql));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `psql` command of [`Cluster::psql`], to run in the background.
    pub fn psql_command(&self, database: &str, sql: &str) -> Command {
        let psql = self.bin.join("psql");
        let psql = if psql.is_file() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let mut cmd = Command::new(psql);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ]);
        cmd
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.args(args);
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", &data])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a probe port")
}

/// Makes a self-signed P-256 CA `NAME.pem` (key `NAME.key`) in `dir`; returns the PEM path.
pub fn new_ca(dir: &Path, name: &str, cn: &str) -> PathBuf {
    let pem = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .arg("-nodes")
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&pem)
        .args(["-subj", &format!("/CN={cn}"), "-days", "2"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign"]));
    pem
}
