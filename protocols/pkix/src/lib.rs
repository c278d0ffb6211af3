//! PKIX helpers (placeholder until implemented).
