//! One DTLS session's CoAP state: deduplication, block-wise transfer, piggybacked and
//! separate responses, retransmission of our Confirmable responses.

use std::collections::VecDeque;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

use crate::CoapError;
use crate::block::{Assembled, Assemblies, Served};
use crate::message::{
    Incoming, Parsed, Request, RequestId, Response, check_request, decode, empty,
};
use crate::option::{Block, encode_uint};

/// Limits and timers of one endpoint. Times are in milliseconds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body assembled from Block1, and largest response served.
    pub max_body: usize,
    /// Our block size exponent for responses and 2.31 replies (6: 1024 bytes).
    pub szx: u8,
    /// Send an empty ACK when a Confirmable request is not answered by then, and answer
    /// later in a separate response (RFC 7252 5.2.2). Below ACK_TIMEOUT (2 s).
    pub separate_after_ms: u64,
    /// RFC 7252 ACK_TIMEOUT, for our separate Confirmable responses.
    pub ack_timeout_ms: u64,
    /// RFC 7252 MAX_RETRANSMIT.
    pub max_retransmit: u32,
    /// How long an answered message id is remembered (RFC 7252 EXCHANGE_LIFETIME).
    pub exchange_lifetime_ms: u64,
    /// Most message ids remembered.
    pub max_remembered: usize,
    /// Most requests being processed at once.
    pub max_in_flight: usize,
    /// How long a partial Block1 body or a served Block2 body is kept.
    pub block_lifetime_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 16 * 1024,
            szx: 6,
            separate_after_ms: 1_000,
            ack_timeout_ms: 2_000,
            max_retransmit: 4,
            exchange_lifetime_ms: 247_000,
            max_remembered: 32,
            max_in_flight: 4,
            block_lifetime_ms: 60_000,
        }
    }
}

/// What the endpoint made of a datagram.
#[derive(Debug, Default)]
pub struct Output {
    /// Datagrams to send now, in order.
    pub send: Vec<Vec<u8>>,
    /// A complete request for a resource; answer it with [`Endpoint::respond`].
    pub request: Option<Request>,
    /// Why the datagram was refused, when it was.
    pub refused: Option<CoapError>,
    /// Whether the datagram repeated one already seen (RFC 7252 4.5).
    pub duplicate: bool,
}

/// A request that a resource is working on.
#[derive(Debug)]
struct Pending {
    id: RequestId,
    mid: u16,
    token: Vec<u8>,
    confirmable: bool,
    /// When to send the empty ACK; `None` once sent, or for Non-confirmable requests.
    ack_due: Option<u64>,
    /// Whether the empty ACK went out: the response is then a separate Confirmable one.
    separate: bool,
    block1: Option<Block>,
    block2: Option<Block>,
    key: String,
}

#[derive(Debug)]
enum Seen {
    Working(RequestId),
    Answered(Vec<u8>),
}

#[derive(Debug)]
struct Remembered {
    mid: u16,
    seen: Seen,
    expires: u64,
}

/// A separate Confirmable response awaiting its ACK.
#[derive(Debug)]
struct Retransmit {
    mid: u16,
    datagram: Vec<u8>,
    next_at: u64,
    interval: u64,
    left: u32,
}

/// The CoAP server side of one session. Feed it datagrams with [`receive`](Self::receive),
/// answers with [`respond`](Self::respond), and call [`on_timeout`](Self::on_timeout) at
/// [`next_timeout`](Self::next_timeout).
#[derive(Debug)]
pub struct Endpoint {
    limits: Limits,
    next_mid: u16,
    next_id: u64,
    remembered: VecDeque<Remembered>,
    pending: Vec<Pending>,
    retransmits: Vec<Retransmit>,
    blocks: Assemblies,
}

impl Endpoint {
    /// A fresh endpoint; `first_mid` should be random (RFC 7252 4.4).
    pub fn new(limits: Limits, first_mid: u16) -> Self {
        let blocks = Assemblies::new(limits.max_body, limits.block_lifetime_ms);
        Self {
            limits,
            next_mid: first_mid,
            next_id: 0,
            remembered: VecDeque::new(),
            pending: Vec::new(),
            retransmits: Vec::new(),
            blocks,
        }
    }

    /// Handles one datagram received at `now`.
    pub fn receive(&mut self, now: u64, datagram: &[u8]) -> Output {
        self.forget_expired(now);
        match decode(datagram) {
            Ok(Incoming::Request(packet)) => self.request(now, *packet),
            Ok(Incoming::Empty(packet)) => self.empty_message(&packet),
            Ok(Incoming::Response(packet)) => refuse_unexpected(&packet),
            Err((error, head)) => {
                let send = match head {
                    Some((mid, true)) => vec![empty(MessageType::Reset, mid)],
                    _ => Vec::new(),
                };
                Output {
                    send,
                    refused: Some(error),
                    ..Output::default()
                }
            }
        }
    }

    /// Answers request `id`; returns the datagrams to send. An unknown id (already answered)
    /// sends nothing.
    pub fn respond(&mut self, now: u64, id: RequestId, response: Response) -> Vec<Vec<u8>> {
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            return Vec::new();
        };
        let pending = self.pending.swap_remove(at);
        let packet = self.response_packet(now, &pending, response);
        let bytes = packet.to_bytes_unlimited().unwrap_or_default();
        if pending.separate {
            self.remember(
                now,
                pending.mid,
                Seen::Answered(empty(MessageType::Acknowledgement, pending.mid)),
            );
            self.retransmits.push(Retransmit {
                mid: packet.header.message_id,
                datagram: bytes.clone(),
                next_at: now + self.limits.ack_timeout_ms,
                interval: self.limits.ack_timeout_ms,
                left: self.limits.max_retransmit,
            });
        } else {
            self.remember(now, pending.mid, Seen::Answered(bytes.clone()));
        }
        vec![bytes]
    }

    /// When [`on_timeout`](Self::on_timeout) must next be called, if ever.
    pub fn next_timeout(&self) -> Option<u64> {
        let acks = self.pending.iter().filter_map(|p| p.ack_due);
        let resends = self.retransmits.iter().map(|r| r.next_at);
        acks.chain(resends).min()
    }

    /// Sends due empty ACKs and retransmissions; gives up on responses never acknowledged.
    pub fn on_timeout(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut send = Vec::new();
        for p in &mut self.pending {
            if p.ack_due.is_some_and(|due| due <= now) {
                p.ack_due = None;
                p.separate = true;
                send.push(empty(MessageType::Acknowledgement, p.mid));
            }
        }
        for r in &mut self.retransmits {
            if r.next_at <= now && r.left > 0 {
                r.left -= 1;
                r.interval = r.interval.saturating_mul(2);
                r.next_at = now + r.interval;
                send.push(r.datagram.clone());
            }
        }
        self.retransmits.retain(|r| r.left > 0 || r.next_at > now);
        send
    }

    /// Requests being processed.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn request(&mut self, now: u64, packet: Packet) -> Output {
        let mid = packet.header.message_id;
        let confirmable = packet.header.get_type() == MessageType::Confirmable;
        if let Some(out) = self.duplicate(mid) {
            return out;
        }
        let parsed = match check_request(packet) {
            Ok(p) => p,
            Err((e, packet)) => return self.refuse(now, &packet, e),
        };
        if self.pending.len() >= self.limits.max_in_flight {
            let packet = parsed.packet;
            return self.refuse(now, &packet, CoapError::Busy);
        }
        let key = block_key(&parsed);
        let body = match parsed.block1 {
            None => parsed.packet.payload.clone(),
            Some(block) => {
                match self
                    .blocks
                    .add(now, &key, block, parsed.size1, &parsed.packet.payload)
                {
                    Ok(Assembled::Continue(ack)) => return self.continue_block1(now, &parsed, ack),
                    Ok(Assembled::Complete(body)) => body,
                    Err(e) => return self.refuse(now, &parsed.packet, e),
                }
            }
        };
        if let Some(b2) = parsed.block2.filter(|b| b.num > 0) {
            match self.blocks.served(now, &key, b2) {
                Some(served) => return self.serve_block(now, &parsed, served, b2),
                None if parsed.method != coap_lite::RequestType::Get => {
                    return self.refuse(now, &parsed.packet, CoapError::BlockOutOfSequence);
                }
                None => {}
            }
        }
        self.start(now, parsed, key, body, confirmable)
    }

    fn start(
        &mut self,
        now: u64,
        parsed: Parsed,
        key: String,
        body: Vec<u8>,
        confirmable: bool,
    ) -> Output {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let mid = parsed.packet.header.message_id;
        self.remember(now, mid, Seen::Working(id));
        self.pending.push(Pending {
            id,
            mid,
            token: parsed.packet.get_token().to_vec(),
            confirmable,
            ack_due: confirmable.then_some(now + self.limits.separate_after_ms),
            separate: false,
            block1: parsed.block1,
            block2: parsed.block2,
            key,
        });
        let request = Request {
            id,
            method: parsed.method,
            path: parsed.path,
            query: parsed.query,
            content_format: parsed.content_format,
            accept: parsed.accept,
            payload: body,
            confirmable,
        };
        Output {
            request: Some(request),
            ..Output::default()
        }
    }

    fn duplicate(&mut self, mid: u16) -> Option<Output> {
        let seen = self.remembered.iter().find(|r| r.mid == mid)?;
        let send = match &seen.seen {
            Seen::Answered(bytes) => vec![bytes.clone()],
            Seen::Working(id) => {
                // Still working: repeat the empty ACK if it went out, else stay silent.
                let separate = self.pending.iter().any(|p| p.id == *id && p.separate);
                if separate {
                    vec![empty(MessageType::Acknowledgement, mid)]
                } else {
                    Vec::new()
                }
            }
        };
        Some(Output {
            send,
            duplicate: true,
            ..Output::default()
        })
    }

    fn empty_message(&mut self, packet: &Packet) -> Output {
        let mid = packet.header.message_id;
        match packet.header.get_type() {
            // A ping (RFC 7252 4.3): answered with a Reset.
            MessageType::Confirmable => Output {
                send: vec![empty(MessageType::Reset, mid)],
                ..Output::default()
            },
            MessageType::Acknowledgement | MessageType::Reset => {
                self.retransmits.retain(|r| r.mid != mid);
                Output::default()
            }
            MessageType::NonConfirmable => Output::default(),
        }
    }

    fn continue_block1(&mut self, now: u64, parsed: &Parsed, ack: Block) -> Output {
        let mut reply = reply_to(&parsed.packet, ResponseType::Continue, self.mid());
        reply.add_option(CoapOption::Block1, ack.encode());
        let bytes = reply.to_bytes_unlimited().unwrap_or_default();
        self.remember(
            now,
            parsed.packet.header.message_id,
            Seen::Answered(bytes.clone()),
        );
        Output {
            send: vec![bytes],
            ..Output::default()
        }
    }

    fn serve_block(&mut self, now: u64, parsed: &Parsed, served: Served, want: Block) -> Output {
        let mut reply = reply_to(&parsed.packet, served.code, self.mid());
        if let Some(cf) = served.content_format {
            reply.add_option(CoapOption::ContentFormat, encode_uint(u32::from(cf)));
        }
        let (block, chunk) = served.block(want);
        reply.add_option(CoapOption::Block2, block.encode());
        reply.payload = chunk;
        let bytes = reply.to_bytes_unlimited().unwrap_or_default();
        self.remember(
            now,
            parsed.packet.header.message_id,
            Seen::Answered(bytes.clone()),
        );
        Output {
            send: vec![bytes],
            ..Output::default()
        }
    }

    fn refuse(&mut self, now: u64, packet: &Packet, error: CoapError) -> Output {
        let Some(code) = error.response_code() else {
            return Output {
                refused: Some(error),
                ..Output::default()
            };
        };
        let mut reply = reply_to(packet, code, self.mid());
        match &error {
            CoapError::TooLarge { limit } => {
                let limit = u32::try_from(*limit).unwrap_or(u32::MAX);
                reply.add_option(CoapOption::Size1, encode_uint(limit));
            }
            CoapError::Busy => reply.add_option(CoapOption::MaxAge, encode_uint(2)),
            _ => {}
        }
        reply.payload = error.to_string().into_bytes();
        let bytes = reply.to_bytes_unlimited().unwrap_or_default();
        self.remember(now, packet.header.message_id, Seen::Answered(bytes.clone()));
        Output {
            send: vec![bytes],
            refused: Some(error),
            ..Output::default()
        }
    }

    fn response_packet(&mut self, now: u64, pending: &Pending, response: Response) -> Packet {
        let mut packet = Packet::new();
        if pending.separate || !pending.confirmable {
            let kind = if pending.confirmable {
                MessageType::Confirmable
            } else {
                MessageType::NonConfirmable
            };
            packet.header.set_type(kind);
            packet.header.message_id = self.mid();
        } else {
            packet.header.set_type(MessageType::Acknowledgement);
            packet.header.message_id = pending.mid;
        }
        packet.header.code = MessageClass::Response(response.code);
        packet.set_token(pending.token.clone());
        if let Some(cf) = response.content_format {
            packet.add_option(CoapOption::ContentFormat, encode_uint(u32::from(cf)));
        }
        if let Some(age) = response.max_age {
            packet.add_option(CoapOption::MaxAge, encode_uint(age));
        }
        if let Some(b1) = pending.block1 {
            packet.add_option(CoapOption::Block1, Block { more: false, ..b1 }.encode());
        }
        let szx = pending
            .block2
            .map_or(self.limits.szx, |b| b.szx.min(self.limits.szx));
        let want = Block {
            num: pending.block2.map_or(0, |b| b.num),
            more: false,
            szx,
        };
        if response.payload.len() <= want.size() && want.num == 0 {
            packet.payload = response.payload;
            return packet;
        }
        let served = Served::new(response.code, response.content_format, response.payload);
        let total = served.len();
        let (block, chunk) = served.block(want);
        packet.add_option(CoapOption::Block2, block.encode());
        if block.num == 0 {
            packet.add_option(
                CoapOption::Size2,
                encode_uint(u32::try_from(total).unwrap_or(u32::MAX)),
            );
        }
        packet.payload = chunk;
        if block.more {
            self.blocks.keep_served(now, pending.key.clone(), served);
        }
        packet
    }

    fn remember(&mut self, now: u64, mid: u16, seen: Seen) {
        let expires = now + self.limits.exchange_lifetime_ms;
        if let Some(r) = self.remembered.iter_mut().find(|r| r.mid == mid) {
            r.seen = seen;
            r.expires = expires;
            return;
        }
        if self.remembered.len() >= self.limits.max_remembered {
            // Forget the oldest answered id; ids being worked on stay (bounded by in-flight).
            if let Some(at) = self
                .remembered
                .iter()
                .position(|r| matches!(r.seen, Seen::Answered(_)))
            {
                self.remembered.remove(at);
            }
        }
        self.remembered.push_back(Remembered { mid, seen, expires });
    }

    fn forget_expired(&mut self, now: u64) {
        self.remembered.retain(|r| r.expires > now);
        self.blocks.expire(now);
    }

    fn mid(&mut self) -> u16 {
        let mid = self.next_mid;
        self.next_mid = self.next_mid.wrapping_add(1);
        mid
    }
}

/// Identifies a block-wise transfer: path and query (RFC 7959 2.4: the request URI).
fn block_key(parsed: &Parsed) -> String {
    format!("/{}?{}", parsed.path.join("/"), parsed.query.join("&"))
}

/// A piggybacked reply (ACK, same id) to a Confirmable request; a new Non-confirmable
/// message to a Non-confirmable one.
fn reply_to(request: &Packet, code: ResponseType, fresh_mid: u16) -> Packet {
    let mut reply = Packet::new();
    if request.header.get_type() == MessageType::Confirmable {
        reply.header.set_type(MessageType::Acknowledgement);
        reply.header.message_id = request.header.message_id;
    } else {
        reply.header.set_type(MessageType::NonConfirmable);
        reply.header.message_id = fresh_mid;
    }
    reply.header.code = MessageClass::Response(code);
    reply.set_token(request.get_token().to_vec());
    reply
}

fn refuse_unexpected(packet: &Packet) -> Output {
    let send = match packet.header.get_type() {
        MessageType::Confirmable => vec![empty(MessageType::Reset, packet.header.message_id)],
        _ => Vec::new(),
    };
    Output {
        send,
        refused: Some(CoapError::Malformed("a response sent to a server")),
        ..Output::default()
    }
}
