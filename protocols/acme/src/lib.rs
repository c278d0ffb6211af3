//! acme (placeholder until implemented).
