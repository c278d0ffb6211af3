//! Enrollment tokens: the one credential model shared by every protocol.
//!
//! A token is an id and a secret. EST takes them as HTTP Basic user and password; SCEP takes
//! the secret as challenge password; CMP takes the id as senderKID and the secret as MAC key;
//! ACME takes them as EAB kid and HMAC key.
//!
//! The secret is HMAC-SHA256(token key, id), where the token key is a 32-byte file in the data
//! directory. The store keeps only SHA-256 of the secret, which is enough to check a presented
//! secret; protocols that need the secret itself as a MAC key (CMP, ACME EAB) re-derive it
//! from the id. Several nodes share the token key file as they share the database.

use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enrollgate_model::Secret;
use subtle::ConstantTimeEq;

use crate::crypto::{random_bytes, sha256_hex};
use crate::store::{Store, StoreResult, TokenRecord};

/// Derives and checks token secrets.
pub struct Tokens {
    key: hmac::Key,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

/// A freshly created token, shown to the operator once.
#[derive(Debug)]
pub struct NewToken {
    /// The stored record.
    pub record: TokenRecord,
    /// The secret, printed once and never stored.
    pub secret: Secret,
}

impl Tokens {
    /// Loads the token key from `path`, creating it (mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{}: expected 32 bytes",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>().to_vec();
                write_secret_file(path, &bytes)?;
                bytes
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        })
    }

    /// The secret of token `id`, as the user types it (base64url, 43 characters).
    pub fn secret_for(&self, id: &str) -> Secret {
        let tag = hmac::sign(&self.key, id.as_bytes());
        Secret::new(URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Makes a new token and stores its record.
    pub async fn create(
        &self,
        store: &dyn Store,
        route: &str,
        uses: Option<i64>,
        expires_at: i64,
        subject_pattern: Option<String>,
    ) -> StoreResult<NewToken> {
        let id = format!("tok{}", hex::encode(random_bytes::<8>()));
        let secret = self.secret_for(&id);
        let record = TokenRecord {
            id,
            secret_hash: sha256_hex(secret.expose()),
            route: route.to_owned(),
            uses_left: uses,
            expires_at,
            subject_pattern,
        };
        store.insert_token(&record).await?;
        Ok(NewToken { record, secret })
    }

    /// Finds the token a presented secret belongs to and checks it in constant time.
    /// `id` may be empty when the protocol carries only the secret (SCEP).
    pub async fn check(
        &self,
        store: &dyn Store,
        id: &str,
        presented: &Secret,
    ) -> StoreResult<Option<TokenRecord>> {
        let hash = sha256_hex(presented.expose());
        let record = if id.is_empty() {
            store.token_by_secret_hash(&hash).await?
        } else {
            store.token(id).await?
        };
        Ok(record.filter(|r| bool::from(r.secret_hash.as_bytes().ct_eq(hash.as_bytes()))))
    }
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn secrets_check_by_id_and_by_secret_alone() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(&dir.path().join("token.key")).unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let t = tokens
            .create(&store, "", Some(1), i64::MAX, None)
            .await
            .unwrap();
        let id = t.record.id.clone();
        assert!(
            tokens
                .check(&store, &id, &t.secret)
                .await
                .unwrap()
                .is_some()
        );
        assert!(tokens.check(&store, "", &t.secret).await.unwrap().is_some());
        assert!(
            tokens
                .check(&store, &id, &Secret::new("wrong"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(tokens.secret_for(&id), t.secret);
        let again = Tokens::load_or_create(&dir.path().join("token.key")).unwrap();
        assert_eq!(again.secret_for(&id), t.secret, "key is reused");
    }
}
