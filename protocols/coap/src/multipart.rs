//! application/multipart-core (RFC 8710): a CBOR array of content format and byte string
//! pairs, as EST-coaps server-side key generation returns (RFC 9148 4.8).

/// Encodes `parts` (content format, bytes) as a multipart-core CBOR array.
pub fn multipart_core(parts: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 4, (parts.len() * 2) as u64);
    for (format, bytes) in parts {
        cbor_head(&mut out, 0, u64::from(*format));
        cbor_head(&mut out, 2, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

/// Decodes a multipart-core array of (content format, byte string) pairs; `None` when it is
/// anything else. For tests and clients.
pub fn parse_multipart_core(mut input: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let (major, count) = read_head(&mut input)?;
    if major != 4 || count % 2 != 0 || count > 16 {
        return None;
    }
    let mut parts = Vec::new();
    for _ in 0..count / 2 {
        let (m, format) = read_head(&mut input)?;
        let (b, len) = read_head(&mut input)?;
        if m != 0 || b != 2 {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        let bytes = input.get(..len)?.to_vec();
        input = input.get(len..)?;
        parts.push((u16::try_from(format).ok()?, bytes));
    }
    input.is_empty().then_some(parts)
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    match value {
        0..=23 => out.push(m | value as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, value as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn read_head(input: &mut &[u8]) -> Option<(u8, u64)> {
    let (&first, rest) = input.split_first()?;
    let extra = match first & 0x1f {
        n @ 0..=23 => {
            *input = rest;
            return Some((first >> 5, u64::from(n)));
        }
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = rest.get(..extra)?;
    *input = rest.get(extra..)?;
    Some((
        first >> 5,
        bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trips() {
        let key = vec![7u8; 300];
        let body = multipart_core(&[(284, &key), (287, b"cert")]);
        assert_eq!(body.first(), Some(&0x84));
        let parts = parse_multipart_core(&body).unwrap();
        assert_eq!(parts, vec![(284, key), (287, b"cert".to_vec())]);
        assert!(parse_multipart_core(&body[..body.len() - 1]).is_none());
    }
}
