//! scep (placeholder until implemented).
