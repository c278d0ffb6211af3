//! Block-wise transfer state (RFC 7959): request bodies being assembled from Block1 and
//! response bodies being served through Block2, bounded in number, size and age.

use coap_lite::ResponseType;

use crate::CoapError;
use crate::option::Block;

/// Transfers kept at once per session, in each direction.
const MAX_TRANSFERS: usize = 2;

/// The result of adding one Block1 block.
#[derive(Debug)]
pub(crate) enum Assembled {
    /// More blocks follow: acknowledge this one with 2.31 Continue and this Block1 value.
    Continue(Block),
    /// The last block arrived: the whole body.
    Complete(Vec<u8>),
}

#[derive(Debug)]
struct Partial {
    key: String,
    body: Vec<u8>,
    expires: u64,
}

/// A response body being served block by block.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub code: ResponseType,
    pub content_format: Option<u16>,
    body: Vec<u8>,
}

impl Served {
    pub fn new(code: ResponseType, content_format: Option<u16>, body: Vec<u8>) -> Self {
        Self {
            code,
            content_format,
            body,
        }
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Block `want` of the body: its option value (with the more flag) and its bytes. A
    /// block past the end is returned empty, flagged last.
    pub fn block(&self, want: Block) -> (Block, Vec<u8>) {
        let start = want.offset().min(self.body.len());
        let end = start.saturating_add(want.size()).min(self.body.len());
        let chunk = self
            .body
            .get(start..end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let block = Block {
            more: end < self.body.len(),
            ..want
        };
        (block, chunk)
    }
}

#[derive(Debug)]
struct Kept {
    key: String,
    served: Served,
    expires: u64,
}

/// The block-wise transfers of one session.
#[derive(Debug)]
pub(crate) struct Assemblies {
    max_body: usize,
    lifetime: u64,
    partial: Vec<Partial>,
    kept: Vec<Kept>,
}

impl Assemblies {
    pub fn new(max_body: usize, lifetime: u64) -> Self {
        Self {
            max_body,
            lifetime,
            partial: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Adds a Block1 block of the request to `key`. Block 0 starts (or restarts) a body;
    /// any other block must start where the body ends (RFC 7959 2.5), and blocks that
    /// announce more must be full.
    pub fn add(
        &mut self,
        now: u64,
        key: &str,
        block: Block,
        size1: Option<u32>,
        payload: &[u8],
    ) -> Result<Assembled, CoapError> {
        let too_large = CoapError::TooLarge {
            limit: self.max_body,
        };
        if size1.is_some_and(|s| s as usize > self.max_body) {
            self.partial.retain(|p| p.key != key);
            return Err(too_large);
        }
        if payload.len() > block.size() || (block.more && payload.len() != block.size()) {
            self.partial.retain(|p| p.key != key);
            return Err(CoapError::BlockOutOfSequence);
        }
        if block.num == 0 {
            self.start(now, key);
        }
        let Some(at) = self.partial.iter().position(|p| p.key == key) else {
            return Err(CoapError::BlockOutOfSequence);
        };
        let partial = self
            .partial
            .get_mut(at)
            .ok_or(CoapError::BlockOutOfSequence)?;
        if block.offset() != partial.body.len() {
            self.partial.swap_remove(at);
            return Err(CoapError::BlockOutOfSequence);
        }
        if partial.body.len() + payload.len() > self.max_body {
            self.partial.swap_remove(at);
            return Err(too_large);
        }
        partial.body.extend_from_slice(payload);
        partial.expires = now + self.lifetime;
        if block.more {
            return Ok(Assembled::Continue(block));
        }
        Ok(Assembled::Complete(self.partial.swap_remove(at).body))
    }

    /// The kept response for `key`, if a later block of it is asked for.
    pub fn served(&mut self, now: u64, key: &str, want: Block) -> Option<Served> {
        let kept = self.kept.iter_mut().find(|k| k.key == key)?;
        kept.expires = now + self.lifetime;
        let served = kept.served.clone();
        if !served.block(want).0.more {
            // The last block: the transfer is over.
            self.kept.retain(|k| k.key != key);
        }
        Some(served)
    }

    /// Keeps a response whose first block went out, for the later blocks.
    pub fn keep_served(&mut self, now: u64, key: String, served: Served) {
        self.kept.retain(|k| k.key != key);
        if self.kept.len() >= MAX_TRANSFERS {
            self.kept.remove(0);
        }
        self.kept.push(Kept {
            key,
            served,
            expires: now + self.lifetime,
        });
    }

    /// Drops transfers that went quiet.
    pub fn expire(&mut self, now: u64) {
        self.partial.retain(|p| p.expires > now);
        self.kept.retain(|k| k.expires > now);
    }

    fn start(&mut self, now: u64, key: &str) {
        self.partial.retain(|p| p.key != key);
        if self.partial.len() >= MAX_TRANSFERS {
            self.partial.remove(0);
        }
        self.partial.push(Partial {
            key: key.to_owned(),
            body: Vec::new(),
            expires: now + self.lifetime,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(num: u32, more: bool) -> Block {
        Block { num, more, szx: 0 }
    }

    #[test]
    fn blocks_assemble_in_order() {
        let mut a = Assemblies::new(64, 1000);
        assert!(matches!(
            a.add(0, "k", b(0, true), None, &[1; 16]),
            Ok(Assembled::Continue(_))
        ));
        assert!(matches!(
            a.add(0, "k", b(1, true), None, &[2; 16]),
            Ok(Assembled::Continue(_))
        ));
        match a.add(0, "k", b(2, false), None, &[3; 5]) {
            Ok(Assembled::Complete(body)) => assert_eq!(body.len(), 37),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gaps_short_blocks_and_oversize_are_refused() {
        let mut a = Assemblies::new(40, 1000);
        a.add(0, "k", b(0, true), None, &[1; 16]).unwrap();
        assert_eq!(
            a.add(0, "k", b(2, true), None, &[1; 16]).unwrap_err(),
            CoapError::BlockOutOfSequence
        );
        // The gap dropped the transfer: block 1 no longer continues anything.
        assert_eq!(
            a.add(0, "k", b(1, true), None, &[1; 16]).unwrap_err(),
            CoapError::BlockOutOfSequence
        );
        assert_eq!(
            a.add(0, "k", b(0, true), None, &[1; 10]).unwrap_err(),
            CoapError::BlockOutOfSequence
        );
        assert_eq!(
            a.add(0, "k", b(0, true), Some(41), &[1; 16]).unwrap_err(),
            CoapError::TooLarge { limit: 40 }
        );
        a.add(0, "k", b(0, true), None, &[1; 16]).unwrap();
        a.add(0, "k", b(1, true), None, &[1; 16]).unwrap();
        assert_eq!(
            a.add(0, "k", b(2, true), None, &[1; 16]).unwrap_err(),
            CoapError::TooLarge { limit: 40 }
        );
    }

    #[test]
    fn quiet_transfers_expire() {
        let mut a = Assemblies::new(64, 10);
        a.add(0, "k", b(0, true), None, &[1; 16]).unwrap();
        a.expire(11);
        assert_eq!(
            a.add(12, "k", b(1, false), None, &[1; 3]).unwrap_err(),
            CoapError::BlockOutOfSequence
        );
    }

    #[test]
    fn served_bodies_slice_and_end() {
        let s = Served::new(ResponseType::Content, Some(281), (0..40u8).collect());
        let (blk, chunk) = s.block(b(2, false));
        assert_eq!((blk.more, chunk.len()), (false, 8));
        let (blk, chunk) = s.block(b(1, false));
        assert_eq!((blk.more, chunk.first()), (true, Some(&16)));
    }
}
