//! The endpoint as a whole: deduplication, separate responses and their retransmission,
//! Block1 and Block2 transfers, Non-confirmable exchanges.

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};

use crate::option::{Block, decode_uint, encode_uint};
use crate::{Endpoint, Limits, Response};

fn limits() -> Limits {
    Limits {
        max_body: 4096,
        szx: 2,
        ..Limits::default()
    }
}

fn request(kind: MessageType, mid: u16, path: &[&str]) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(kind);
    p.header.message_id = mid;
    p.header.code = MessageClass::Request(RequestType::Post);
    p.set_token(vec![0xab, mid as u8]);
    for seg in path {
        p.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
    }
    p
}

fn bytes(p: &Packet) -> Vec<u8> {
    p.to_bytes_unlimited().unwrap()
}

fn parse(d: &[u8]) -> Packet {
    Packet::from_bytes(d).unwrap()
}

fn option(p: &Packet, o: CoapOption) -> Option<Vec<u8>> {
    p.get_option(o).and_then(|v| v.front().cloned())
}

fn created(body: &[u8]) -> Response {
    Response::with(ResponseType::Created, 281, body.to_vec())
}

#[test]
fn piggybacked_answer_and_duplicates_get_the_same_bytes() {
    let mut ep = Endpoint::new(limits(), 100);
    let req = bytes(&request(MessageType::Confirmable, 7, &["x"]));
    let out = ep.receive(0, &req);
    let r = out.request.unwrap();
    assert!(out.send.is_empty());

    // Retransmitted while being worked on: silence, flagged duplicate.
    let again = ep.receive(10, &req);
    assert!(again.duplicate && again.send.is_empty() && again.request.is_none());

    let sent = ep.respond(20, r.id, created(b"cert"));
    let reply = parse(&sent[0]);
    assert_eq!(reply.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(reply.header.message_id, 7);
    assert_eq!(reply.get_token(), &[0xab, 7]);
    assert_eq!(reply.payload, b"cert");

    // Retransmitted after the answer: the same answer again, no second request.
    let again = ep.receive(30, &req);
    assert_eq!(again.send, sent);
    assert!(again.request.is_none());
}

#[test]
fn slow_answers_become_separate_confirmable_responses_until_acknowledged() {
    let lim = limits();
    let mut ep = Endpoint::new(lim.clone(), 500);
    let out = ep.receive(0, &bytes(&request(MessageType::Confirmable, 9, &["sen"])));
    let id = out.request.unwrap().id;

    // The empty ACK goes out at separate_after.
    assert_eq!(ep.next_timeout(), Some(lim.separate_after_ms));
    let acks = ep.on_timeout(lim.separate_after_ms);
    let ack = parse(&acks[0]);
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(ack.header.message_id, 9);
    assert_eq!(ack.header.code, MessageClass::Empty);

    // The response comes as a new Confirmable message with the request's token.
    let t = lim.separate_after_ms + 100;
    let sent = ep.respond(t, id, created(b"late"));
    let resp = parse(&sent[0]);
    assert_eq!(resp.header.get_type(), MessageType::Confirmable);
    assert_ne!(resp.header.message_id, 9);
    assert_eq!(resp.get_token(), &[0xab, 9]);

    // Retransmitted at ACK_TIMEOUT, doubling, until the client's ACK arrives.
    let first = ep.next_timeout().unwrap();
    assert_eq!(first, t + lim.ack_timeout_ms);
    assert_eq!(ep.on_timeout(first), sent);
    assert_eq!(ep.next_timeout(), Some(first + 2 * lim.ack_timeout_ms));
    let mut ack = Packet::new();
    ack.header.code = MessageClass::Empty;
    ack.header.set_type(MessageType::Acknowledgement);
    ack.header.message_id = resp.header.message_id;
    assert!(ep.receive(first + 1, &bytes(&ack)).send.is_empty());
    assert_eq!(ep.next_timeout(), None);
}

#[test]
fn unacknowledged_separate_responses_are_given_up() {
    let lim = limits();
    let mut ep = Endpoint::new(lim.clone(), 1);
    let id = ep
        .receive(0, &bytes(&request(MessageType::Confirmable, 3, &["sen"])))
        .request
        .unwrap()
        .id;
    ep.on_timeout(lim.separate_after_ms);
    ep.respond(lim.separate_after_ms, id, created(b"x"));
    let mut sends = 0;
    while let Some(at) = ep.next_timeout() {
        sends += ep.on_timeout(at).len();
        assert!(
            sends <= lim.max_retransmit as usize,
            "bounded retransmission"
        );
    }
    assert_eq!(sends, lim.max_retransmit as usize);
}

#[test]
fn block1_reassembles_and_block2_slices_with_size2() {
    let mut ep = Endpoint::new(limits(), 1);
    let body: Vec<u8> = (0..100u8).collect();
    let mut request_out = None;
    for (num, chunk) in body.chunks(64).enumerate() {
        let more = (num + 1) * 64 < body.len();
        let mut p = request(MessageType::Confirmable, 20 + num as u16, &["sen"]);
        let b1 = Block {
            num: num as u32,
            more,
            szx: 2,
        };
        p.add_option(CoapOption::Block1, b1.encode());
        p.payload = chunk.to_vec();
        let out = ep.receive(0, &bytes(&p));
        if more {
            let cont = parse(&out.send[0]);
            assert_eq!(
                cont.header.code,
                MessageClass::Response(ResponseType::Continue)
            );
            assert_eq!(option(&cont, CoapOption::Block1), Some(b1.encode()));
        } else {
            request_out = out.request;
        }
    }
    let req = request_out.unwrap();
    assert_eq!(req.payload, body);

    // A 200-byte answer in 64-byte blocks (the endpoint's szx 2): block 0 with Size2.
    let answer: Vec<u8> = (0..200u8).collect();
    let first = parse(&ep.respond(0, req.id, created(&answer))[0]);
    let b2 = Block::decode(23, &option(&first, CoapOption::Block2).unwrap()).unwrap();
    assert_eq!((b2.num, b2.more, b2.szx), (0, true, 2));
    let size2 = option(&first, CoapOption::Size2).unwrap();
    assert_eq!(decode_uint(28, &size2, 4), Ok(200));
    assert_eq!(
        option(&first, CoapOption::Block1),
        Some(
            Block {
                num: 1,
                more: false,
                szx: 2
            }
            .encode()
        )
    );

    // The later blocks come from the kept response.
    let mut got = first.payload.clone();
    for num in 1..4u32 {
        let mut p = request(MessageType::Confirmable, 40 + num as u16, &["sen"]);
        p.add_option(
            CoapOption::Block2,
            Block {
                num,
                more: false,
                szx: 2,
            }
            .encode(),
        );
        let out = ep.receive(0, &bytes(&p));
        assert!(out.request.is_none(), "served without the resource");
        let blk = parse(&out.send[0]);
        got.extend_from_slice(&blk.payload);
        let b = Block::decode(23, &option(&blk, CoapOption::Block2).unwrap()).unwrap();
        assert_eq!(b.more, num < 3);
    }
    assert_eq!(got, answer);
}

#[test]
fn non_confirmable_requests_get_non_confirmable_answers_and_pings_a_reset() {
    let mut ep = Endpoint::new(limits(), 1000);
    let out = ep.receive(
        0,
        &bytes(&request(MessageType::NonConfirmable, 5, &["crts"])),
    );
    let id = out.request.unwrap().id;
    assert_eq!(ep.next_timeout(), None, "no empty ACK for NON");
    let reply = parse(&ep.respond(1, id, created(b"ok"))[0]);
    assert_eq!(reply.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(reply.get_token(), &[0xab, 5]);

    let mut ping = Packet::new();
    ping.header.code = MessageClass::Empty;
    ping.header.set_type(MessageType::Confirmable);
    ping.header.message_id = 77;
    let rst = parse(&ep.receive(2, &bytes(&ping)).send[0]);
    assert_eq!(rst.header.get_type(), MessageType::Reset);
    assert_eq!(rst.header.message_id, 77);
}

#[test]
fn too_many_requests_in_flight_get_5_03_with_max_age() {
    let lim = limits();
    let mut ep = Endpoint::new(lim.clone(), 1);
    for mid in 0..lim.max_in_flight as u16 {
        let out = ep.receive(0, &bytes(&request(MessageType::Confirmable, mid, &["sen"])));
        assert!(out.request.is_some());
    }
    let out = ep.receive(0, &bytes(&request(MessageType::Confirmable, 99, &["sen"])));
    let busy = parse(&out.send[0]);
    assert_eq!(
        busy.header.code,
        MessageClass::Response(ResponseType::ServiceUnavailable)
    );
    assert_eq!(option(&busy, CoapOption::MaxAge), Some(encode_uint(2)));
    assert_eq!(out.refused.map(|e| e.kind()), Some("busy"));
}

/// A small deterministic generator (xorshift64*), so that the mutation test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_datagrams_never_panic_and_state_stays_bounded() {
    let lim = limits();
    let mut ep = Endpoint::new(lim.clone(), 1);
    let mut seeds = Vec::new();
    for (i, path) in [&["sen"][..], &[".well-known", "core"], &["x"; 20]]
        .iter()
        .enumerate()
    {
        let mut p = request(MessageType::Confirmable, i as u16, path);
        p.add_option(CoapOption::Block1, encode_uint(0x1e));
        p.add_option(CoapOption::Size1, encode_uint(60_000));
        p.payload = vec![0x30; 64];
        seeds.push(bytes(&p));
    }
    seeds.push(include_bytes!("../tests/vectors/client_hello_no_cookie.bin").to_vec());
    let keys = crate::hello::CookieKeys::new(&[1; 32]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000u64 {
        let mut d = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 if !d.is_empty() => {
                    let at = rng.below(d.len());
                    d[at] = rng.next() as u8;
                }
                1 if !d.is_empty() => d.truncate(rng.below(d.len())),
                _ => d.push(rng.next() as u8),
            }
        }
        let _ = crate::hello::inspect(&d, &[127, 0, 0, 1, 0, 1], &keys);
        let out = ep.receive(round, &d);
        if let Some(r) = out.request {
            // Answer half, leave the rest in flight: the cap must hold either way.
            if rng.below(2) == 0 {
                ep.respond(round, r.id, created(&[0; 300]));
            }
        }
        assert!(ep.in_flight() <= lim.max_in_flight);
        if let Some(at) = ep.next_timeout().filter(|at| *at <= round) {
            ep.on_timeout(at);
        }
    }
}
