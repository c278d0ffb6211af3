//! Assembly: the data directory, CA, store, tokens and registrar, and the listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backends::Router;
use crate::ca::BuiltinCa;
use crate::config::Config;
use crate::issuance::{Authenticator, Registrar};
use crate::metrics::Metrics;
use crate::server::listener::{self, ListenerSpec};
use crate::server::{self, AppState};
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::tokens::Tokens;

/// Everything a running gateway holds.
pub struct Gateway {
    /// Shared handler state.
    pub state: Arc<AppState>,
    /// Token secrets.
    pub tokens: Arc<Tokens>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The CA backends; their chains are read when serving starts, not by admin verbs.
    router: Arc<Router>,
}

/// The addresses the listeners actually bound (port 0 resolves here).
#[derive(Clone, Debug, Default)]
pub struct Bound {
    /// HTTPS.
    pub https: Option<SocketAddr>,
    /// Plain HTTP.
    pub http: Option<SocketAddr>,
    /// Admin.
    pub admin: Option<SocketAddr>,
    /// CoAPs (UDP, DTLS).
    pub coaps: Option<SocketAddr>,
}

impl Gateway {
    /// Creates or reuses the data directory and everything in it.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let dir = &config.data_dir.clone();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let ca = Arc::new(
            BuiltinCa::load_or_create(dir, &config.ca).context("loading the built-in CA")?,
        );
        let store: Arc<dyn Store> = if config.store.is_postgres() {
            Arc::new(
                PostgresStore::connect(&config.store)
                    .await
                    .context("connecting to the PostgreSQL store")?,
            )
        } else {
            Arc::new(
                SqliteStore::open(&dir.join("enrollgate.db"))
                    .await
                    .context("opening the database")?,
            )
        };
        let tokens = Arc::new(
            Tokens::load_or_create(&dir.join("token.key")).context("loading the token key")?,
        );
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        // The router picks each route's backends. Opening contacts no CA: an admin verb must
        // not wait on (or count failures against) a backend; `serve` reads the chains.
        let router = Arc::new(
            Router::from_config(&config, ca.clone(), metrics.clone())
                .map_err(anyhow::Error::msg)
                .context("preparing the CA backends")?,
        );
        let backend: Arc<dyn crate::backends::CaBackend> = router.clone();
        let authn = Authenticator::new(&config, tokens.clone(), store.clone(), ca.chain())
            .map_err(anyhow::Error::msg)
            .context("preparing route authentication")?;
        let registrar = Arc::new(Registrar::new(
            config.clone(),
            store.clone(),
            backend,
            authn,
            metrics.clone(),
            ca.issuing_not_after,
        ));
        let ra_key = crate::ca::read_pem(&dir.join("ra.key"))?;
        let scep_ra = enrollgate_scep::RaIdentity::new(&ca.ra.cert, &ra_key)
            .context("loading the SCEP RA identity")?;
        let cmp_key = crate::ca::read_pem(&dir.join("cmp.key"))?;
        let cmp = server::cmp::CmpServers::new(&config, &ca, &cmp_key)?;
        let acme = server::acme::AcmeService::new(&config).context("preparing ACME")?;
        let state = Arc::new(AppState {
            config,
            registrar,
            metrics,
            ca,
            scep_ra: Some(Arc::new(scep_ra)),
            cmp,
            tokens: tokens.clone(),
            acme,
        });
        Ok(Self {
            state,
            tokens,
            store,
            router,
        })
    }

    /// Binds every configured listener and serves until `shutdown` turns true.
    /// Returns the bound addresses through `bound` as soon as they are known.
    pub async fn serve(
        &self,
        shutdown: watch::Receiver<bool>,
        bound: tokio::sync::oneshot::Sender<Bound>,
    ) -> anyhow::Result<()> {
        let cfg = &self.state.config;
        let limits = &cfg.limits;
        let spec = |name, tls| ListenerSpec {
            name,
            tls,
            max_connections: limits.max_connections,
            header_timeout: Duration::from_secs(limits.header_timeout_secs),
            shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
        };
        let mut addrs = Bound::default();
        let mut tasks = Vec::new();

        // Chains the configuration did not give are read now (five seconds at most), then on
        // first use and in the background while unknown.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.router.fetch_chains()).await;
        let refresh = self.router.spawn_chain_refresh(Duration::from_secs(30));

        if let Some(addr) = cfg.listen.https {
            let key = crate::ca::read_pem(&cfg.data_dir.join("tls.key"))?;
            let chain = vec![
                self.state.ca.tls.cert.clone(),
                self.state.ca.issuing.cert.clone(),
            ];
            let acceptor = tokio_rustls::TlsAcceptor::from(server::tls::server_config(chain, key)?);
            let l = bind(addr).await?;
            addrs.https = Some(l.local_addr()?);
            let state = self.state.clone();
            let h = move |c, r| server::handle(state.clone(), c, r);
            tasks.push(tokio::spawn(listener::serve(
                l,
                spec("https", Some(acceptor)),
                self.state.metrics.clone(),
                h,
                shutdown.clone(),
            )));
        }
        if let Some(addr) = cfg.listen.http {
            let l = bind(addr).await?;
            addrs.http = Some(l.local_addr()?);
            let state = self.state.clone();
            let h = move |c, r| server::handle(state.clone(), c, r);
            tasks.push(tokio::spawn(listener::serve(
                l,
                spec("http", None),
                self.state.metrics.clone(),
                h,
                shutdown.clone(),
            )));
        }
        if let Some(addr) = cfg.listen.admin {
            let l = bind(addr).await?;
            addrs.admin = Some(l.local_addr()?);
            let state = self.state.clone();
            let h = move |c, r| server::admin::handle(state.clone(), c, r);
            tasks.push(tokio::spawn(listener::serve(
                l,
                spec("admin", None),
                self.state.metrics.clone(),
                h,
                shutdown.clone(),
            )));
        }
        if let Some(addr) = cfg.listen.coaps {
            // A CoAPs listener that cannot start leaves the HTTP listeners serving.
            match server::coaps::Listener::bind(addr, self.state.clone()).await {
                Ok(l) => {
                    addrs.coaps = Some(l.local_addr()?);
                    tasks.push(tokio::spawn(l.serve(shutdown.clone())));
                }
                Err(e) => tracing::error!(%addr, error = %e, "CoAPs listener not started"),
            }
        }
        let _ = bound.send(addrs);
        // Unconfirmed CMP certificates are looked for at least every 10 s, and more often
        // when the confirmation window is shorter.
        let sweep_every = Duration::from_secs(cfg.cmp.confirm_wait_secs.clamp(1, 10));
        let sweeper = tokio::spawn(server::cmp::sweep_unconfirmed(
            self.state.clone(),
            sweep_every,
        ));
        for t in tasks {
            let _ = t.await;
        }
        sweeper.abort();
        refresh.abort();
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}
