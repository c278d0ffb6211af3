//! The enrollgate command line: `serve`, `init`, `check`, and operator verbs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use enrollgate::config::{Config, LogFormat};
use enrollgate::gateway::Gateway;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "enrollgate",
    version,
    about = "Certificate enrollment gateway: EST, SCEP, CMP, ACME"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML). Without one, the embedded default is used.
    #[arg(long, short, env = "ENROLLGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration's `data_dir`).
    #[arg(long, env = "ENROLLGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (creates the data directory on first start).
    Serve(Common),
    /// Create the data directory, CA and database, then exit.
    Init(Common),
    /// Validate a configuration file and explain each mistake.
    Check(Common),
    /// Enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Requests held for manual approval.
    #[command(subcommand)]
    Request(RequestCommand),
    /// ACME server administration.
    #[command(subcommand)]
    Acme(AcmeCommand),
    /// Revoke a certificate by serial number (hex).
    Revoke {
        #[command(flatten)]
        common: Common,
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason code.
        #[arg(long, default_value_t = 0)]
        reason: u8,
    },
}

#[derive(Subcommand)]
enum AcmeCommand {
    /// Revoke an ACME account: every later request signed by its key is refused.
    RevokeAccount {
        #[command(flatten)]
        common: Common,
        /// The account id or its URL (the `kid` clients send).
        account: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; prints its id and secret (the secret is shown only once).
    Create {
        #[command(flatten)]
        common: Common,
        /// Route label the token is valid on (default: the default route).
        #[arg(long, default_value = "")]
        route: String,
        /// Profile: picks the first route using this profile.
        #[arg(long)]
        profile: Option<String>,
        /// Number of uses (default 1; 0 for unlimited).
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Lifetime such as 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Subject pattern (`*` wildcard) the CSR must match.
        #[arg(long)]
        subject: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RequestCommand {
    /// List pending requests.
    List(Common),
    /// Approve a pending request.
    Approve {
        #[command(flatten)]
        common: Common,
        /// Request id.
        id: String,
    },
    /// Reject a pending request.
    Reject {
        #[command(flatten)]
        common: Common,
        /// Request id.
        id: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    enrollgate::server::tls::install_default_provider();
    match cli.command {
        Command::Serve(c) => serve(&c).await,
        Command::Init(c) => {
            let gw = open(&c, false).await?;
            println!(
                "data directory ready; root CA SHA-256 fingerprint {}",
                gw.state.ca.root_fingerprint()
            );
            Ok(())
        }
        Command::Check(c) => {
            let path = c.config.context("check needs --config FILE")?;
            let config = Config::load(&path)?;
            println!(
                "{}: ok ({} profiles, {} routes)",
                path.display(),
                config.profiles.len(),
                config.routes.len()
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            common,
            route,
            profile,
            uses,
            ttl,
            subject,
            json,
        }) => {
            let gw = open(&common, false).await?;
            let route = match profile {
                Some(p) => gw
                    .state
                    .config
                    .routes
                    .iter()
                    .find(|r| r.profile == p)
                    .map(|r| r.label.clone())
                    .with_context(|| format!("no route uses profile {p:?}"))?,
                None => route,
            };
            if gw.state.config.route(&route).is_none() {
                bail!("no route with label {route:?}");
            }
            let expires =
                enrollgate::clock::now() + i64::try_from(parse_duration(&ttl)?.as_secs())?;
            let uses = (uses > 0).then_some(uses);
            let t = gw
                .tokens
                .create(gw.store.as_ref(), &route, uses, expires, subject)
                .await?;
            let secret = String::from_utf8_lossy(t.secret.expose()).into_owned();
            if json {
                let v = serde_json::json!({"id": t.record.id, "secret": secret, "route": route, "uses": uses, "expires_at": expires});
                println!("{v}");
            } else {
                println!(
                    "id:     {}\nsecret: {secret}\nroute:  {route:?}\nexpires_at: {expires}",
                    t.record.id
                );
            }
            Ok(())
        }
        Command::Request(cmd) => request(cmd).await,
        Command::Acme(AcmeCommand::RevokeAccount { common, account }) => {
            let gw = open(&common, false).await?;
            if !enrollgate::server::acme::revoke_account(gw.store.as_ref(), &account).await? {
                bail!("no ACME account {account}");
            }
            println!("revoked ACME account {account}");
            Ok(())
        }
        Command::Revoke {
            common,
            serial,
            reason,
        } => {
            let gw = open(&common, false).await?;
            match gw
                .state
                .registrar
                .revoke(&serial.to_lowercase(), reason)
                .await
            {
                Ok(true) => println!("revoked {serial}"),
                Ok(false) => bail!("no unrevoked certificate with serial {serial}"),
                Err(r) => bail!("{}", r.public_text()),
            }
            Ok(())
        }
    }
}

async fn request(cmd: RequestCommand) -> anyhow::Result<()> {
    match cmd {
        RequestCommand::List(c) => {
            let gw = open(&c, false).await?;
            for p in gw.store.pending_with_status("pending").await? {
                println!("{}\t{}\t{:?}\t{}", p.id, p.protocol, p.route, p.subject);
            }
        }
        RequestCommand::Approve { common, id } => {
            let gw = open(&common, false).await?;
            match gw.state.registrar.approve_pending(&id).await {
                Ok(o) => println!("{id}: {}", o.kind()),
                Err(r) => bail!("{}", r.public_text()),
            }
        }
        RequestCommand::Reject { common, id } => {
            let gw = open(&common, false).await?;
            gw.state
                .registrar
                .reject_pending(&id)
                .await
                .map_err(|r| anyhow::anyhow!(r.public_text()))?;
            println!("{id}: rejected");
        }
    }
    Ok(())
}

async fn serve(common: &Common) -> anyhow::Result<()> {
    let gw = open(common, true).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<enrollgate::gateway::Bound>();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let ca = gw.state.ca.clone();
    let data_dir = gw.state.config.data_dir.clone();
    tokio::spawn(async move {
        if let Ok(b) = bound_rx.await {
            if let Some(a) = b.https {
                println!("EST:   https://{a}/.well-known/est/");
            }
            if let Some(a) = b.http {
                println!("HTTP:  http://{a}/  (CRL at /crl)");
            }
            if let Some(a) = b.admin {
                println!("admin: http://{a}/metrics /healthz /readyz");
            }
            if let Some(a) = b.coaps {
                println!("CoAPs: coaps://{a}/.well-known/est /.well-known/cmp");
            }
            println!("data:  {}", data_dir.display());
            println!("root CA: {}", data_dir.join("root.crt").display());
            println!("root CA SHA-256 fingerprint: {}", ca.root_fingerprint());
        }
    });
    gw.serve(stop_rx, bound_tx).await
}

async fn open(common: &Common, log: bool) -> anyhow::Result<Gateway> {
    let mut config = match &common.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &common.data_dir {
        config.data_dir = dir.clone();
    }
    if log {
        init_logging(&config);
    }
    Gateway::open(config).await
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Parses `90s`, `30m`, `24h`, `7d`.
fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("bad duration unit in {s:?} (use s, m, h, d)"),
    };
    Ok(Duration::from_secs(secs))
}
