//! Decoding a datagram into a checked request, and the response type resources return.

use coap_lite::{MessageClass, MessageType, Packet, RequestType, ResponseType};

use crate::CoapError;
use crate::option::{Block, decode_uint, is_critical, is_understood_critical, number};

/// The longest Uri-Path or Uri-Query segment and the most segments accepted.
const MAX_SEGMENT_LEN: usize = 255;
const MAX_SEGMENTS: usize = 16;

/// An opaque handle that ties a response to the request it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) u64);

/// A complete request: block-wise bodies are already reassembled.
#[derive(Clone)]
pub struct Request {
    /// Pass it back to [`Endpoint::respond`](crate::Endpoint::respond).
    pub id: RequestId,
    /// The method.
    pub method: RequestType,
    /// Uri-Path segments.
    pub path: Vec<String>,
    /// Uri-Query segments.
    pub query: Vec<String>,
    /// Content-Format of the payload.
    pub content_format: Option<u16>,
    /// The Accept option.
    pub accept: Option<u16>,
    /// The whole body.
    pub payload: Vec<u8>,
    /// Whether the request came Confirmable.
    pub confirmable: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("content_format", &self.content_format)
            .field("accept", &self.accept)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Request {
    /// The path as a string, `/a/b`.
    pub fn path_string(&self) -> String {
        format!("/{}", self.path.join("/"))
    }
}

/// What a resource answers. Bodies larger than one block are sent block-wise by the
/// endpoint (RFC 7959 Block2), so resources never slice.
#[derive(Clone, PartialEq)]
pub struct Response {
    /// The response code.
    pub code: ResponseType,
    /// Content-Format of the payload, if it has one (diagnostic text has none).
    pub content_format: Option<u16>,
    /// Max-Age in seconds, e.g. when to retry a pending request (RFC 9148 5.7).
    pub max_age: Option<u32>,
    /// The whole body.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A server-generated key may be in the payload: length only.
        f.debug_struct("Response")
            .field("code", &self.code)
            .field("content_format", &self.content_format)
            .field("max_age", &self.max_age)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Response {
    /// A response with a typed payload.
    pub fn with(code: ResponseType, content_format: u16, payload: Vec<u8>) -> Self {
        Self {
            code,
            content_format: Some(content_format),
            max_age: None,
            payload,
        }
    }

    /// A response with a diagnostic payload (RFC 7252 5.5.2): short UTF-8 text, no format.
    pub fn diagnostic(code: ResponseType, text: &str) -> Self {
        Self {
            code,
            content_format: None,
            max_age: None,
            payload: text.as_bytes().to_vec(),
        }
    }

    /// Sets Max-Age.
    pub fn max_age(mut self, seconds: u32) -> Self {
        self.max_age = Some(seconds);
        self
    }
}

/// The parts of a request packet the endpoint works with, checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub packet: Packet,
    pub method: RequestType,
    pub path: Vec<String>,
    pub query: Vec<String>,
    pub content_format: Option<u16>,
    pub accept: Option<u16>,
    pub block1: Option<Block>,
    pub block2: Option<Block>,
    pub size1: Option<u32>,
}

/// What kind of message a datagram holds, once the header decoded.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A request, with its options still to check.
    Request(Box<Packet>),
    /// An empty message (ping, or an ACK or Reset of ours).
    Empty(Packet),
    /// A response: a server gets none, so it is refused.
    Response(Packet),
}

/// Decodes the header and options; `Err` carries the message id when it could be read and
/// whether the message is to be answered with a Reset: a Confirmable message with a format
/// error is rejected (RFC 7252 4.2), but one of an unknown version is silently ignored
/// (RFC 7252 3), whatever its type bits say.
pub(crate) fn decode(datagram: &[u8]) -> Result<Incoming, (CoapError, Option<(u16, bool)>)> {
    let head = match datagram {
        [first, _, hi, lo, ..] => {
            let resettable = first >> 6 == 1 && (first >> 4) & 0x3 == 0;
            Some((u16::from_be_bytes([*hi, *lo]), resettable))
        }
        _ => None,
    };
    let fail = |why| Err((CoapError::Malformed(why), head));
    if datagram.len() < 4 {
        return fail("shorter than the fixed header");
    }
    if datagram.first().is_some_and(|b| b >> 6 != 1) {
        return fail("version is not 1");
    }
    let Ok(packet) = Packet::from_bytes(datagram) else {
        return fail("bad token length or option encoding");
    };
    match packet.header.code {
        MessageClass::Empty => {
            if !packet.get_token().is_empty() || packet.options().len() > 0 {
                return fail("empty message with token or options");
            }
            Ok(Incoming::Empty(packet))
        }
        MessageClass::Request(_) => Ok(Incoming::Request(Box::new(packet))),
        MessageClass::Response(_) => Ok(Incoming::Response(packet)),
        MessageClass::Reserved(code) if code >> 5 == 0 => {
            // Class 0 with an unassigned detail: a method we do not know (RFC 7252 5.8).
            Ok(Incoming::Request(Box::new(packet)))
        }
        MessageClass::Reserved(_) => fail("reserved code class"),
    }
}

/// Checks a request's options: unknown critical options, value lengths, block values.
pub(crate) fn check_request(packet: Packet) -> Result<Parsed, (CoapError, Packet)> {
    match read_options(&packet) {
        Ok(mut parsed) => {
            parsed.packet = packet;
            Ok(parsed)
        }
        Err(e) => Err((e, packet)),
    }
}

fn read_options(packet: &Packet) -> Result<Parsed, CoapError> {
    let method = match packet.header.code {
        MessageClass::Request(RequestType::UnKnown) | MessageClass::Reserved(_) => {
            return Err(CoapError::UnknownMethod);
        }
        MessageClass::Request(m) => m,
        _ => return Err(CoapError::Malformed("not a request")),
    };
    let mut parsed = Parsed {
        packet: Packet::new(),
        method,
        path: Vec::new(),
        query: Vec::new(),
        content_format: None,
        accept: None,
        block1: None,
        block2: None,
        size1: None,
    };
    for (&num, values) in packet.options() {
        if is_critical(num) && !is_understood_critical(num) {
            return Err(CoapError::BadOption(num));
        }
        for value in values {
            read_option(&mut parsed, num, value)?;
        }
    }
    Ok(parsed)
}

fn read_option(parsed: &mut Parsed, num: u16, value: &[u8]) -> Result<(), CoapError> {
    match num {
        number::URI_PATH => parsed.path.push(segment(num, value, parsed.path.len())?),
        number::URI_QUERY => parsed.query.push(segment(num, value, parsed.query.len())?),
        number::CONTENT_FORMAT => parsed.content_format = Some(format(num, value)?),
        number::ACCEPT => parsed.accept = Some(format(num, value)?),
        number::BLOCK1 => parsed.block1 = Some(Block::decode(num, value)?),
        number::BLOCK2 => parsed.block2 = Some(Block::decode(num, value)?),
        number::SIZE1 => parsed.size1 = Some(decode_uint(num, value, 4)?),
        // Uri-Host and Uri-Port name this server; elective options are ignored.
        _ => {}
    }
    Ok(())
}

fn segment(num: u16, value: &[u8], count: usize) -> Result<String, CoapError> {
    if value.len() > MAX_SEGMENT_LEN || count >= MAX_SEGMENTS {
        return Err(CoapError::BadOption(num));
    }
    String::from_utf8(value.to_vec()).map_err(|_| CoapError::BadOption(num))
}

fn format(num: u16, value: &[u8]) -> Result<u16, CoapError> {
    let v = decode_uint(num, value, 2)?;
    u16::try_from(v).map_err(|_| CoapError::BadOption(num))
}

/// An empty ACK or Reset for message `mid` (RFC 7252 4.2, 4.3).
pub(crate) fn empty(kind: MessageType, mid: u16) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_type(kind);
    p.header.message_id = mid;
    p.header.code = MessageClass::Empty;
    p.to_bytes_unlimited().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: &[(u16, &[u8])]) -> Packet {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(RequestType::Post);
        for (n, v) in options {
            p.add_option(coap_lite::CoapOption::from(*n), v.to_vec());
        }
        p
    }

    #[test]
    fn short_and_wrong_version_are_malformed() {
        assert!(matches!(
            decode(&[0x40, 0x01]),
            Err((CoapError::Malformed(_), None))
        ));
        let e = decode(&[0x80, 0x01, 0x12, 0x34]).unwrap_err();
        assert_eq!(e.1, Some((0x1234, false)));
        // Token length 9 is reserved.
        let e = decode(&[0x49, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap_err();
        assert_eq!(e.1, Some((1, true)));
    }

    #[test]
    fn unknown_critical_option_is_refused() {
        let p = request(&[(11, b"est"), (9, b"x")]);
        assert_eq!(check_request(p).unwrap_err().0, CoapError::BadOption(9));
        let p = request(&[(11, b"est"), (12, &[1, 30]), (27, &[0x0e])]);
        let parsed = check_request(p).unwrap();
        assert_eq!(parsed.content_format, Some(286));
        assert_eq!(parsed.block1.map(|b| b.more), Some(true));
    }
}
