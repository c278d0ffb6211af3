//! ACME state in the store: each record is a JSON blob of its own kind, keyed by its id, plus
//! index blobs that map a key thumbprint, a certificate fingerprint or a CertID to an id.
//! Nonces are empty blobs taken exactly once.

use enrollgate_acme::Problem;
use enrollgate_acme::account::Account;
use enrollgate_acme::cert::CertRecord;
use enrollgate_acme::challenge::Authorization;
use enrollgate_acme::ids::new_nonce;
use enrollgate_acme::order::Order;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Store, StoreError};

/// Blob kinds.
const NONCE: &str = "acme-nonce";
const ACCOUNT: &str = "acme-account";
const ACCOUNT_BY_THUMBPRINT: &str = "acme-account-by-thumbprint";
const ORDERS_OF_ACCOUNT: &str = "acme-orders-of-account";
const ORDER: &str = "acme-order";
const AUTHZ: &str = "acme-authz";
const CERT: &str = "acme-cert";
const CERT_BY_FINGERPRINT: &str = "acme-cert-by-fingerprint";
const CERT_BY_ARI: &str = "acme-cert-by-ari";
const RATE: &str = "acme-rate";

/// How long accounts and certificate records are kept: they have no expiry of their own.
const KEEP_SECS: i64 = 20 * 365 * 86_400;
/// How long finished orders and authorizations are kept after their expiry (for polling).
const GRACE_SECS: i64 = 30 * 86_400;
/// The most order ids remembered per account for the orders list.
const MAX_LISTED_ORDERS: usize = 1000;

/// The store, seen as ACME records at one instant.
pub(crate) struct Records<'a> {
    store: &'a dyn Store,
    now: i64,
}

impl<'a> Records<'a> {
    /// Wraps the store; `now` is the request's time.
    pub(crate) fn new(store: &'a dyn Store, now: i64) -> Self {
        Self { store, now }
    }

    /// Issues a nonce valid for `lifetime` seconds; `None` (logged) when the store fails.
    pub(crate) async fn mint_nonce(&self, lifetime: i64) -> Option<String> {
        let nonce = new_nonce(&mut super::fill_random);
        let stored = self
            .store
            .put_blob(NONCE, &nonce, b"", self.now + lifetime)
            .await;
        stored.map_err(internal).ok().map(|()| nonce)
    }

    /// Spends a nonce: true exactly once for a nonce we issued and that has not expired.
    pub(crate) async fn take_nonce(&self, nonce: &str) -> Result<bool, Problem> {
        self.store
            .take_blob(NONCE, nonce, self.now)
            .await
            .map_err(internal)
    }

    /// An account by id.
    pub(crate) async fn account(&self, id: &str) -> Result<Option<Account>, Problem> {
        self.get(ACCOUNT, id).await
    }

    /// The account holding the key with this thumbprint.
    pub(crate) async fn account_by_thumbprint(&self, tp: &str) -> Result<Option<Account>, Problem> {
        match self.index(ACCOUNT_BY_THUMBPRINT, tp).await? {
            Some(id) => self.account(&id).await,
            None => Ok(None),
        }
    }

    /// Stores an account and indexes its key's thumbprint.
    pub(crate) async fn put_account(&self, a: &Account) -> Result<(), Problem> {
        self.put(ACCOUNT, &a.id, a, self.now + KEEP_SECS).await?;
        self.put_index(
            ACCOUNT_BY_THUMBPRINT,
            &a.thumbprint,
            &a.id,
            self.now + KEEP_SECS,
        )
        .await
    }

    /// Drops a thumbprint index (after a key change).
    pub(crate) async fn drop_thumbprint(&self, tp: &str) -> Result<(), Problem> {
        let taken = self
            .store
            .take_blob(ACCOUNT_BY_THUMBPRINT, tp, self.now)
            .await;
        taken.map(|_| ()).map_err(internal)
    }

    /// The order ids of an account, oldest first.
    pub(crate) async fn orders_of(&self, account_id: &str) -> Result<Vec<String>, Problem> {
        Ok(self
            .get(ORDERS_OF_ACCOUNT, account_id)
            .await?
            .unwrap_or_default())
    }

    /// Remembers an order in its account's list.
    pub(crate) async fn list_order(&self, account_id: &str, order_id: &str) -> Result<(), Problem> {
        let mut ids = self.orders_of(account_id).await?;
        ids.push(order_id.to_owned());
        let excess = ids.len().saturating_sub(MAX_LISTED_ORDERS);
        ids.drain(..excess);
        self.put(ORDERS_OF_ACCOUNT, account_id, &ids, self.now + KEEP_SECS)
            .await
    }

    /// An order by id.
    pub(crate) async fn order(&self, id: &str) -> Result<Option<Order>, Problem> {
        self.get(ORDER, id).await
    }

    /// Stores an order.
    pub(crate) async fn put_order(&self, o: &Order) -> Result<(), Problem> {
        self.put(ORDER, &o.id, o, o.expires.max(self.now) + GRACE_SECS)
            .await
    }

    /// An authorization by id.
    pub(crate) async fn authz(&self, id: &str) -> Result<Option<Authorization>, Problem> {
        self.get(AUTHZ, id).await
    }

    /// The authorizations of an order (missing ones are left out; the order then fails).
    pub(crate) async fn authzs_of(&self, order: &Order) -> Result<Vec<Authorization>, Problem> {
        let mut out = Vec::with_capacity(order.authorizations.len());
        for id in &order.authorizations {
            out.extend(self.authz(id).await?);
        }
        Ok(out)
    }

    /// Stores an authorization.
    pub(crate) async fn put_authz(&self, a: &Authorization) -> Result<(), Problem> {
        self.put(AUTHZ, &a.id, a, a.expires.max(self.now) + GRACE_SECS)
            .await
    }

    /// A certificate record by id.
    pub(crate) async fn cert(&self, id: &str) -> Result<Option<CertRecord>, Problem> {
        self.get(CERT, id).await
    }

    /// The certificate record with this leaf fingerprint.
    pub(crate) async fn cert_by_fingerprint(
        &self,
        fp: &str,
    ) -> Result<Option<CertRecord>, Problem> {
        match self.index(CERT_BY_FINGERPRINT, fp).await? {
            Some(id) => self.cert(&id).await,
            None => Ok(None),
        }
    }

    /// The certificate record with this CertID (RFC 9773), in its canonical text.
    pub(crate) async fn cert_by_ari(&self, cert_id: &str) -> Result<Option<CertRecord>, Problem> {
        match self.index(CERT_BY_ARI, cert_id).await? {
            Some(id) => self.cert(&id).await,
            None => Ok(None),
        }
    }

    /// Stores a certificate record with its fingerprint and CertID indexes.
    pub(crate) async fn put_cert(&self, c: &CertRecord) -> Result<(), Problem> {
        let until = c.not_after.max(self.now) + KEEP_SECS;
        self.put(CERT, &c.id, c, until).await?;
        self.put_index(CERT_BY_FINGERPRINT, &c.fingerprint, &c.id, until)
            .await?;
        if let Some(ari) = &c.ari_id {
            self.put_index(CERT_BY_ARI, ari, &c.id, until).await?;
        }
        Ok(())
    }

    /// Reads a fixed-window counter (rate limits): its value and the window's end.
    pub(crate) async fn counter(&self, key: &str, window: i64) -> Result<(u32, i64), Problem> {
        let start = self.now - self.now.rem_euclid(window);
        let count = self.get(RATE, &format!("{key}@{start}")).await?;
        Ok((count.unwrap_or(0), start + window))
    }

    /// Adds one to a fixed-window counter.
    pub(crate) async fn bump(&self, key: &str, window: i64) -> Result<(), Problem> {
        let (count, end) = self.counter(key, window).await?;
        let start = end - window;
        self.put(RATE, &format!("{key}@{start}"), &(count + 1), end)
            .await
    }

    async fn get<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Result<Option<T>, Problem> {
        let Some(bytes) = self
            .store
            .blob(kind, key, self.now)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| internal(StoreError::Corrupt(format!("{kind} {key}: {e}"))))
    }

    async fn put<T: Serialize + ?Sized>(
        &self,
        kind: &str,
        key: &str,
        value: &T,
        expires_at: i64,
    ) -> Result<(), Problem> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| internal(StoreError::Corrupt(format!("{kind} {key}: {e}"))))?;
        self.store
            .put_blob(kind, key, &bytes, expires_at)
            .await
            .map_err(internal)
    }

    async fn index(&self, kind: &str, key: &str) -> Result<Option<String>, Problem> {
        let bytes = self
            .store
            .blob(kind, key, self.now)
            .await
            .map_err(internal)?;
        Ok(bytes.and_then(|b| String::from_utf8(b).ok()))
    }

    async fn put_index(&self, kind: &str, key: &str, id: &str, until: i64) -> Result<(), Problem> {
        self.store
            .put_blob(kind, key, id.as_bytes(), until)
            .await
            .map_err(internal)
    }
}

/// Logs a store failure and gives the client a generic `serverInternal`.
pub(crate) fn internal(e: StoreError) -> Problem {
    tracing::error!(error = %e, "acme: store failed");
    Problem::internal()
}
