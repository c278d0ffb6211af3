use super::*;

const HELLO: &[u8] = include_bytes!("../../tests/vectors/client_hello_no_cookie.bin");
const PEER: &[u8] = &[127, 0, 0, 1, 0x30, 0x39];

/// The client's second ClientHello: the first one with `cookie`, record and message
/// sequence 1 (RFC 6347 4.2.1).
fn with_cookie(first: &[u8], cookie: &[u8]) -> Vec<u8> {
    let h = ClientHello::parse(first).unwrap();
    let mut out = first[..h.cookie_at].to_vec();
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    out.extend_from_slice(&first[h.cookie_at + 1..]);
    let record_len = out.len() - RECORD_HEADER;
    out[10] = 1;
    out[11..13].copy_from_slice(&(record_len as u16).to_be_bytes());
    let msg_len = u24_bytes(record_len - HANDSHAKE_HEADER);
    out[14..17].copy_from_slice(&msg_len);
    out[17..19].copy_from_slice(&[0, 1]);
    out[22..25].copy_from_slice(&msg_len);
    out
}

#[test]
fn hello_without_cookie_gets_a_hello_verify_request() {
    let keys = CookieKeys::new(&[7; 32]);
    let Hello::NeedsCookie {
        bad_cookie,
        hello_verify,
    } = inspect(HELLO, PEER, &keys)
    else {
        panic!("expected a HelloVerifyRequest");
    };
    assert!(!bad_cookie);
    assert!(is_hello_verify_request(&hello_verify));
    // Same record sequence as the ClientHello; the cookie at the end.
    assert_eq!(&hello_verify[5..11], &HELLO[5..11]);
    let random = &HELLO[27..59];
    assert!(hello_verify.ends_with(&keys.cookie(PEER, random)));
}

#[test]
fn valid_cookie_verifies_and_replays_the_first_hello() {
    let keys = CookieKeys::new(&[7; 32]);
    let cookie = keys.cookie(PEER, &HELLO[27..59]);
    let second = with_cookie(HELLO, &cookie);
    let Hello::Verified(v) = inspect(&second, PEER, &keys) else {
        panic!("cookie should verify");
    };
    assert_eq!(v.cookie, cookie);
    assert_eq!(v.replay, HELLO, "the replay is the cookie-less first hello");
}

#[test]
fn cookies_bind_the_address_and_survive_one_rotation() {
    let mut keys = CookieKeys::new(&[7; 32]);
    let cookie = keys.cookie(PEER, &HELLO[27..59]);
    let second = with_cookie(HELLO, &cookie);
    let other_peer = &[127, 0, 0, 2, 0x30, 0x39];
    assert!(matches!(
        inspect(&second, other_peer, &keys),
        Hello::NeedsCookie {
            bad_cookie: true,
            ..
        }
    ));
    keys.rotate(&[8; 32]);
    assert!(matches!(inspect(&second, PEER, &keys), Hello::Verified(_)));
    keys.rotate(&[9; 32]);
    assert!(matches!(
        inspect(&second, PEER, &keys),
        Hello::NeedsCookie {
            bad_cookie: true,
            ..
        }
    ));
}

#[test]
fn truncated_and_foreign_datagrams_are_not_hellos() {
    let keys = CookieKeys::new(&[7; 32]);
    for cut in [0, 5, 13, 30, 60, HELLO.len() - 1] {
        assert!(
            matches!(
                inspect(&HELLO[..cut], PEER, &keys),
                Hello::NotClientHello(_)
            ),
            "{cut}"
        );
    }
    let mut app_data = HELLO.to_vec();
    app_data[0] = 23;
    assert!(matches!(
        inspect(&app_data, PEER, &keys),
        Hello::NotClientHello(_)
    ));
    let mut epoch1 = HELLO.to_vec();
    epoch1[4] = 1;
    assert!(matches!(
        inspect(&epoch1, PEER, &keys),
        Hello::NotClientHello(_)
    ));
    let mut fragment = HELLO.to_vec();
    fragment[24] = fragment[24].wrapping_sub(1);
    assert!(matches!(
        inspect(&fragment, PEER, &keys),
        Hello::NotClientHello(_)
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let keys = CookieKeys::new(&[7; 32]);
    let mut data = HELLO.to_vec();
    for i in 0..data.len() {
        for v in [0u8, 0xff, 0x80] {
            let old = data[i];
            data[i] = v;
            let _ = inspect(&data, PEER, &keys);
            data[i] = old;
        }
    }
}
