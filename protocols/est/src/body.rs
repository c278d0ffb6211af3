//! Body codecs: base64 transfer encoding and multipart/mixed (RFC 7030 4.4.2, RFC 2046 5.1).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::EstError;

/// Standard alphabet, padding optional: clients differ.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The most parts [`parse_multipart`] reads; serverkeygen replies have two.
const MAX_PARTS: usize = 8;

/// Decodes a base64 body, ignoring whitespace and line breaks; padding is optional.
pub fn decode_base64_body(body: &[u8]) -> Result<Vec<u8>, EstError> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT
        .decode(compact)
        .map_err(|_| EstError::BadRequest("body is not valid base64".into()))
}

/// Splits a `multipart/*` body into (content type, decoded content) pairs, decoding parts
/// whose `Content-Transfer-Encoding` is base64. For clients and tests of serverkeygen.
pub fn parse_multipart(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, EstError> {
    let boundary = boundary_of(content_type)?;
    let delimiter = format!("--{boundary}");
    let bad = |why: &str| EstError::BadRequest(format!("multipart: {why}"));

    let start = find(body, delimiter.as_bytes()).ok_or_else(|| bad("no boundary"))?;
    let mut rest = body.get(start + delimiter.len()..).unwrap_or_default();
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        if parts.len() == MAX_PARTS {
            return Err(bad("too many parts"));
        }
        rest = skip_line_end(rest);
        let next = [b"\n".as_slice(), delimiter.as_bytes()].concat();
        let end = find(rest, &next).ok_or_else(|| bad("unterminated part"))?;
        let (part, after) = rest.split_at(end);
        parts.push(parse_part(part.strip_suffix(b"\r").unwrap_or(part))?);
        rest = after.get(next.len()..).unwrap_or_default();
    }
    Ok(parts)
}

/// The `boundary` parameter of a multipart content type, quoted or not.
fn boundary_of(content_type: &str) -> Result<&str, EstError> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return Err(EstError::UnsupportedMediaType);
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| EstError::BadRequest("multipart without boundary".into()))
}

/// One part: headers, an empty line, content.
fn parse_part(part: &[u8]) -> Result<(String, Vec<u8>), EstError> {
    let (split, gap) = find(part, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find(part, b"\n\n").map(|i| (i, 2)))
        .ok_or_else(|| EstError::BadRequest("multipart part without headers".into()))?;
    let (head, content) = part.split_at(split);
    let content = content.get(gap..).unwrap_or_default();
    let head = std::str::from_utf8(head)
        .map_err(|_| EstError::BadRequest("multipart headers are not text".into()))?;

    let mut content_type = String::from("text/plain");
    let mut base64 = false;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-type") {
            content_type = value.to_owned();
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            base64 = value.eq_ignore_ascii_case("base64");
        }
    }
    let content = if base64 {
        decode_base64_body(content)?
    } else {
        content.to_vec()
    };
    Ok((content_type, content))
}

fn skip_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\r").unwrap_or(bytes);
    bytes.strip_prefix(b"\n").unwrap_or(bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
