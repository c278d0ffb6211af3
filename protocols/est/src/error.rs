//! The EST error type and its HTTP rendering.

use crate::response::{EstResponse, www_authenticate};

/// Why an EST request is answered with an error before (or instead of) reaching the registrar.
///
/// [`EstError::response`] renders each as its HTTP status with a short plain-text reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EstError {
    /// An EST path with an unknown operation, or a malformed label (404).
    #[error("not found")]
    NotFound,
    /// The operation exists but not with this HTTP method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body's media type is not the one the operation takes (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body could not be decoded or checked; the text says why and is safe to show (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The credential is missing, malformed or of the wrong kind (401, with a Basic challenge).
    #[error("unauthorized")]
    Unauthorized,
    /// Our own fault, such as a route whose CA chain does not encode. The text is for the
    /// server log; the peer sees only "internal error" (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl EstError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType => 415,
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Internal(_) => 500,
        }
    }

    /// A stable lower-case name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Internal(_) => "internal",
        }
    }

    /// The reply: the status, a short `text/plain` reason, and for 401 the
    /// `WWW-Authenticate: Basic realm="enrollgate"` challenge.
    pub fn response(&self) -> EstResponse {
        let text = match self {
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut response = EstResponse::text(self.status(), &text);
        if matches!(self, Self::Unauthorized) {
            response.headers.push(www_authenticate());
        }
        response
    }
}
