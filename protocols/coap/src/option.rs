//! Option values: unsigned integers (RFC 7252 3.2) and block options (RFC 7959 2.2).

use crate::CoapError;

/// Option numbers this crate reads or writes (RFC 7252 5.10, RFC 7959 2.1 and 4).
pub mod number {
    /// Uri-Host.
    pub const URI_HOST: u16 = 3;
    /// ETag.
    pub const ETAG: u16 = 4;
    /// Uri-Port.
    pub const URI_PORT: u16 = 7;
    /// Uri-Path.
    pub const URI_PATH: u16 = 11;
    /// Content-Format.
    pub const CONTENT_FORMAT: u16 = 12;
    /// Max-Age.
    pub const MAX_AGE: u16 = 14;
    /// Uri-Query.
    pub const URI_QUERY: u16 = 15;
    /// Accept.
    pub const ACCEPT: u16 = 17;
    /// Block2: the response body, block by block.
    pub const BLOCK2: u16 = 23;
    /// Block1: the request body, block by block.
    pub const BLOCK1: u16 = 27;
    /// Size2: the whole response body's size.
    pub const SIZE2: u16 = 28;
    /// Size1: the whole request body's size, or the largest we accept.
    pub const SIZE1: u16 = 60;
    /// No-Response (RFC 7967), elective: read and ignored.
    pub const NO_RESPONSE: u16 = 258;
    /// Request-Tag (RFC 9175), elective here: read and ignored.
    pub const REQUEST_TAG: u16 = 292;
}

/// Whether an option number is critical (odd, RFC 7252 5.4.1).
pub fn is_critical(number: u16) -> bool {
    number & 1 == 1
}

/// The critical options this server understands; any other critical option in a request is
/// refused with 4.02 (RFC 7252 5.4.1).
pub fn is_understood_critical(number: u16) -> bool {
    use number::*;
    matches!(
        number,
        URI_HOST | URI_PORT | URI_PATH | URI_QUERY | ACCEPT | BLOCK2 | BLOCK1
    )
}

/// Decodes an unsigned integer option of at most `max_len` bytes.
pub fn decode_uint(number: u16, bytes: &[u8], max_len: usize) -> Result<u32, CoapError> {
    if bytes.len() > max_len.min(4) {
        return Err(CoapError::BadOption(number));
    }
    Ok(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// Encodes an unsigned integer in the fewest bytes (zero is empty).
pub fn encode_uint(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(skip..).map(<[u8]>::to_vec).unwrap_or_default()
}

/// A Block1 or Block2 value: block number, more flag and size exponent (RFC 7959 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block number (20 bits at most).
    pub num: u32,
    /// Whether more blocks follow.
    pub more: bool,
    /// The size exponent: the block holds `16 << szx` bytes.
    pub szx: u8,
}

impl Block {
    /// The largest block number a three-byte option can carry.
    pub const MAX_NUM: u32 = (1 << 20) - 1;
    /// The largest size exponent outside BERT (1024-byte blocks).
    pub const MAX_SZX: u8 = 6;

    /// Decodes an option value; BERT (szx 7, RFC 8323) is refused since it is for TCP only.
    pub fn decode(number: u16, bytes: &[u8]) -> Result<Self, CoapError> {
        let raw = decode_uint(number, bytes, 3)?;
        let szx = u8::try_from(raw & 0x7).map_err(|_| CoapError::BadOption(number))?;
        if szx > Self::MAX_SZX {
            return Err(CoapError::BadOption(number));
        }
        Ok(Self {
            num: raw >> 4,
            more: raw & 0x8 != 0,
            szx,
        })
    }

    /// Encodes the value in the fewest bytes.
    pub fn encode(self) -> Vec<u8> {
        let raw = (self.num.min(Self::MAX_NUM) << 4) | (u32::from(self.more) << 3);
        encode_uint(raw | u32::from(self.szx.min(Self::MAX_SZX)))
    }

    /// The block size in bytes.
    pub fn size(self) -> usize {
        16usize << self.szx.min(Self::MAX_SZX)
    }

    /// The byte offset of this block in the whole body.
    pub fn offset(self) -> usize {
        (self.num as usize).saturating_mul(self.size())
    }
}

/// The largest size exponent whose blocks fit in `bytes`.
pub fn szx_for(bytes: usize) -> u8 {
    (0..=Block::MAX_SZX)
        .rev()
        .find(|szx| (16usize << szx) <= bytes)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_values_round_trip() {
        for (num, more, szx) in [(0, false, 0), (1, true, 6), (Block::MAX_NUM, false, 2)] {
            let b = Block { num, more, szx };
            assert_eq!(Block::decode(27, &b.encode()), Ok(b));
        }
        assert_eq!(
            Block {
                num: 0,
                more: false,
                szx: 0
            }
            .encode(),
            Vec::<u8>::new()
        );
        assert_eq!(
            Block::decode(27, &[0x0e]),
            Ok(Block {
                num: 0,
                more: true,
                szx: 6
            })
        );
    }

    #[test]
    fn bert_and_long_values_are_refused() {
        assert_eq!(Block::decode(23, &[0x07]), Err(CoapError::BadOption(23)));
        assert_eq!(
            Block::decode(27, &[1, 2, 3, 4]),
            Err(CoapError::BadOption(27))
        );
        assert_eq!(
            decode_uint(12, &[1, 2, 3], 2),
            Err(CoapError::BadOption(12))
        );
    }

    #[test]
    fn uints_are_minimal() {
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(286), vec![1, 30]);
        assert_eq!(decode_uint(12, &[1, 30], 2), Ok(286));
        assert_eq!(szx_for(1100), 6);
        assert_eq!(szx_for(600), 5);
    }
}
