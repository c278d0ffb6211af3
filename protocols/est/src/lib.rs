//! EST (placeholder until implemented).
