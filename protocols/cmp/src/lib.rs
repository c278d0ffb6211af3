//! cmp (placeholder until implemented).
