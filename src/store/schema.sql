CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    route TEXT NOT NULL,
    uses_left BIGINT,
    expires_at BIGINT NOT NULL,
    subject_pattern TEXT
);

CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    profile TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    der BLOB NOT NULL,
    revoked_at BIGINT,
    revocation_reason BIGINT
);

CREATE TABLE IF NOT EXISTS transactions (
    protocol TEXT NOT NULL,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (protocol, id)
);

CREATE TABLE IF NOT EXISTS blobs (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    route TEXT NOT NULL,
    subject TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    serial TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    protocol TEXT NOT NULL,
    route TEXT NOT NULL,
    profile TEXT NOT NULL,
    requester TEXT NOT NULL,
    subject TEXT NOT NULL,
    serial TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
