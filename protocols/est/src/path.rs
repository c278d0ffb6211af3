//! EST request paths (RFC 7030 3.2.2).

use crate::EstError;

/// The EST operations of RFC 7030 section 3.2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EstOperation {
    /// `/cacerts`: distribution of the CA certificates (4.1).
    CaCerts,
    /// `/simpleenroll`: enrollment of a client (4.2.1).
    SimpleEnroll,
    /// `/simplereenroll`: re-enrollment with the current client certificate (4.2.2).
    SimpleReenroll,
    /// `/csrattrs`: the attributes the server wants in requests (4.5).
    CsrAttrs,
    /// `/serverkeygen`: the server generates the key pair (4.4).
    ServerKeygen,
}

impl EstOperation {
    /// The operation's path segment, e.g. `simpleenroll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaCerts => "cacerts",
            Self::SimpleEnroll => "simpleenroll",
            Self::SimpleReenroll => "simplereenroll",
            Self::CsrAttrs => "csrattrs",
            Self::ServerKeygen => "serverkeygen",
        }
    }

    /// The one HTTP method the operation takes: GET for cacerts and csrattrs, else POST.
    pub fn method(self) -> &'static str {
        match self {
            Self::CaCerts | Self::CsrAttrs => "GET",
            Self::SimpleEnroll | Self::SimpleReenroll | Self::ServerKeygen => "POST",
        }
    }

    fn from_segment(segment: &str) -> Option<Self> {
        [
            Self::CaCerts,
            Self::SimpleEnroll,
            Self::SimpleReenroll,
            Self::CsrAttrs,
            Self::ServerKeygen,
        ]
        .into_iter()
        .find(|op| op.as_str() == segment)
    }
}

/// A parsed EST path: the route label and the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstPath {
    /// The label of RFC 7030 3.2.2 that selects a route; "" for the default route.
    pub label: String,
    /// The operation.
    pub operation: EstOperation,
}

/// The EST prefix of every path.
const PREFIX: &str = "/.well-known/est";

/// The longest label accepted; labels name configured routes, so this is generous.
const MAX_LABEL_LEN: usize = 64;

/// Parses `/.well-known/est[/label]/operation` (a query string is ignored).
///
/// `None` if the path is not under `/.well-known/est`; `Some(Err(NotFound))` for an unknown
/// operation, a malformed label or extra segments.
pub fn parse_path(path: &str) -> Option<Result<EstPath, EstError>> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(parse_rest(rest))
}

fn parse_rest(rest: &str) -> Result<EstPath, EstError> {
    let mut segments = rest.split('/').skip(1);
    let (label, op) = match (segments.next(), segments.next(), segments.next()) {
        (Some(op), None, None) => ("", op),
        (Some(label), Some(op), None) if valid_label(label) => (label, op),
        _ => return Err(EstError::NotFound),
    };
    let operation = EstOperation::from_segment(op).ok_or(EstError::NotFound)?;
    Ok(EstPath {
        label: label.to_owned(),
        operation,
    })
}

/// Labels are route names: letters, digits, `-`, `_` and `.`, not starting with a dot.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('.')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
