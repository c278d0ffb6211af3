//! Unit tests: vectors from the real micromdm client, round trips through [`crate::client`],
//! bad input, and the HTTP mapping. Vectors are described in `tests/vectors/README.md`.

mod bad_input;
mod http;
mod round_trip;
mod vectors;

use crate::client::{ClientIdentity, RequestSpec, build_pki_message};
use crate::{ContentCipher, MessageType, RaIdentity};

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/",
            $name
        ))
        .as_slice()
    };
}
pub(crate) use vector;

/// The test RA.
fn ra() -> RaIdentity {
    RaIdentity::new(vector!("ra_cert.der"), vector!("ra_key.pk8")).expect("test RA")
}

/// A predictable generator: counts up from `seed`.
fn counter_rng(seed: u8) -> impl FnMut(&mut [u8]) {
    let mut next = seed;
    move |buf: &mut [u8]| {
        for b in buf {
            *b = next;
            next = next.wrapping_add(1);
        }
    }
}

fn rsa_client() -> ClientIdentity {
    ClientIdentity::new(
        vector!("client_rsa_selfsigned.der"),
        vector!("client_rsa_key.pk8"),
    )
    .expect("rsa client")
}

fn ec_client() -> ClientIdentity {
    ClientIdentity::new(
        vector!("client_ec_selfsigned.der"),
        vector!("client_ec_key.pk8"),
    )
    .expect("ec client")
}

/// A PKCSReq from `client` with `cipher`, transaction "tx-1", nonce 16 x 0x42.
fn pkcs_req(client: &ClientIdentity, csr: &[u8], cipher: ContentCipher) -> Vec<u8> {
    let spec = RequestSpec {
        message_type: MessageType::PkcsReq,
        transaction_id: "tx-1",
        sender_nonce: &[0x42; 16],
        content: csr,
        cipher,
    };
    build_pki_message(client, vector!("ra_cert.der"), &spec, &mut counter_rng(1)).expect("build")
}
