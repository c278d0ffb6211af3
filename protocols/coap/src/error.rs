//! Why a datagram or request was refused before it reached a resource.

use coap_lite::ResponseType;

/// What was wrong with the peer's input. Each variant names what the peer did; [`kind`]
/// gives a stable metrics label and [`response_code`] the CoAP code it is answered with
/// (`None`: the datagram is dropped or answered with a Reset, as RFC 7252 4.2 and 4.3 say).
///
/// [`kind`]: CoapError::kind
/// [`response_code`]: CoapError::response_code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoapError {
    /// Not a CoAP message: too short, wrong version, bad token length, bad option encoding,
    /// or a reserved code class (RFC 7252 3). Dropped, or Reset when it was Confirmable.
    #[error("malformed CoAP message: {0}")]
    Malformed(&'static str),
    /// An unrecognised critical option or an option value of the wrong length (4.02).
    #[error("bad option {0}")]
    BadOption(u16),
    /// A block number that does not continue the transfer, or a later block of a response
    /// that is no longer held (4.08, RFC 7959 2.9.2).
    #[error("block-wise transfer out of sequence")]
    BlockOutOfSequence,
    /// The request body, announced (Size1) or assembled, exceeds the limit (4.13).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit, sent back in Size1 (RFC 7959 4).
        limit: usize,
    },
    /// A request method this server does not know (4.05).
    #[error("unknown method")]
    UnknownMethod,
    /// Too many requests are being processed on this session (5.03 with Max-Age).
    #[error("too many requests in flight")]
    Busy,
}

impl CoapError {
    /// A stable lower-case name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::BadOption(_) => "bad_option",
            Self::BlockOutOfSequence => "block_sequence",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownMethod => "unknown_method",
            Self::Busy => "busy",
        }
    }

    /// The response code, or `None` when the message gets no response.
    pub fn response_code(&self) -> Option<ResponseType> {
        match self {
            Self::Malformed(_) => None,
            Self::BadOption(_) => Some(ResponseType::BadOption),
            Self::BlockOutOfSequence => Some(ResponseType::RequestEntityIncomplete),
            Self::TooLarge { .. } => Some(ResponseType::RequestEntityTooLarge),
            Self::UnknownMethod => Some(ResponseType::MethodNotAllowed),
            Self::Busy => Some(ResponseType::ServiceUnavailable),
        }
    }
}
