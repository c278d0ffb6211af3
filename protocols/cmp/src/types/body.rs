//! `PKIBody` (RFC 9810 section 5.1.2): a CHOICE of explicitly tagged contents.
//!
//! Decoding and encoding are written by hand so that bodies we do not support (the
//! announcements, key recovery, cross-certification, `nested`) still decode, as
//! [`PkiBody::Other`], and can be refused with a proper CMP error instead of a parse failure.

use der::asn1::{Any, Null};
use der::{Decode, Encode, Length, Reader, Tag, TagNumber, Tagged, Writer};

use super::content::{
    CertConfirmContent, CertRepMessage, ErrorMsgContent, RevDetails, RevRepContent,
};
use super::content::{PollRepEntry, PollReqEntry};
use super::crmf::CertReqMessages;
use super::header::InfoTypeAndValue;

/// `PKIBody` (RFC 9810 section 5.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PkiBody {
    /// `ir [0]`: initialization request.
    Ir(CertReqMessages),
    /// `ip [1]`: initialization response.
    Ip(CertRepMessage),
    /// `cr [2]`: certification request.
    Cr(CertReqMessages),
    /// `cp [3]`: certification response.
    Cp(CertRepMessage),
    /// `p10cr [4]`: a PKCS#10 request, kept as its DER.
    P10cr(Any),
    /// `kur [7]`: key update request.
    Kur(CertReqMessages),
    /// `kup [8]`: key update response.
    Kup(CertRepMessage),
    /// `rr [11]`: revocation request.
    Rr(Vec<RevDetails>),
    /// `rp [12]`: revocation response.
    Rp(RevRepContent),
    /// `pkiconf [19]`: confirmation.
    PkiConf,
    /// `genm [21]`: general message.
    Genm(Vec<InfoTypeAndValue>),
    /// `genp [22]`: general response.
    Genp(Vec<InfoTypeAndValue>),
    /// `error [23]`.
    Error(ErrorMsgContent),
    /// `certConf [24]`: certificate confirmation.
    CertConf(CertConfirmContent),
    /// `pollReq [25]`.
    PollReq(Vec<PollReqEntry>),
    /// `pollRep [26]`.
    PollRep(Vec<PollRepEntry>),
    /// Any other body (including `nested [20]`), kept raw: tag number and content.
    Other {
        /// The context-specific tag number.
        tag: u32,
        /// The explicitly tagged content.
        value: Any,
    },
}

/// The kind of a [`PkiBody`], for dispatch, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// ir
    Ir,
    /// ip
    Ip,
    /// cr
    Cr,
    /// cp
    Cp,
    /// p10cr
    P10cr,
    /// kur
    Kur,
    /// kup
    Kup,
    /// rr
    Rr,
    /// rp
    Rp,
    /// pkiconf
    PkiConf,
    /// genm
    Genm,
    /// genp
    Genp,
    /// error
    Error,
    /// certConf
    CertConf,
    /// pollReq
    PollReq,
    /// pollRep
    PollRep,
    /// An unsupported body, by tag number.
    Other(u32),
}

impl BodyKind {
    /// The RFC's name of the body type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ir => "ir",
            Self::Ip => "ip",
            Self::Cr => "cr",
            Self::Cp => "cp",
            Self::P10cr => "p10cr",
            Self::Kur => "kur",
            Self::Kup => "kup",
            Self::Rr => "rr",
            Self::Rp => "rp",
            Self::PkiConf => "pkiconf",
            Self::Genm => "genm",
            Self::Genp => "genp",
            Self::Error => "error",
            Self::CertConf => "certConf",
            Self::PollReq => "pollReq",
            Self::PollRep => "pollRep",
            Self::Other(_) => "unsupported",
        }
    }
}

impl PkiBody {
    /// The body's kind.
    pub fn kind(&self) -> BodyKind {
        match self {
            Self::Ir(_) => BodyKind::Ir,
            Self::Ip(_) => BodyKind::Ip,
            Self::Cr(_) => BodyKind::Cr,
            Self::Cp(_) => BodyKind::Cp,
            Self::P10cr(_) => BodyKind::P10cr,
            Self::Kur(_) => BodyKind::Kur,
            Self::Kup(_) => BodyKind::Kup,
            Self::Rr(_) => BodyKind::Rr,
            Self::Rp(_) => BodyKind::Rp,
            Self::PkiConf => BodyKind::PkiConf,
            Self::Genm(_) => BodyKind::Genm,
            Self::Genp(_) => BodyKind::Genp,
            Self::Error(_) => BodyKind::Error,
            Self::CertConf(_) => BodyKind::CertConf,
            Self::PollReq(_) => BodyKind::PollReq,
            Self::PollRep(_) => BodyKind::PollRep,
            Self::Other { tag, .. } => BodyKind::Other(*tag),
        }
    }

    /// The tag number and the DER of the content inside the explicit tag.
    fn tagged_content(&self) -> der::Result<(u32, Vec<u8>)> {
        Ok(match self {
            Self::Ir(c) => (0, c.to_der()?),
            Self::Ip(c) => (1, c.to_der()?),
            Self::Cr(c) => (2, c.to_der()?),
            Self::Cp(c) => (3, c.to_der()?),
            Self::P10cr(c) => (4, c.to_der()?),
            Self::Kur(c) => (7, c.to_der()?),
            Self::Kup(c) => (8, c.to_der()?),
            Self::Rr(c) => (11, c.to_der()?),
            Self::Rp(c) => (12, c.to_der()?),
            Self::PkiConf => (19, Null.to_der()?),
            Self::Genm(c) => (21, c.to_der()?),
            Self::Genp(c) => (22, c.to_der()?),
            Self::Error(c) => (23, c.to_der()?),
            Self::CertConf(c) => (24, c.to_der()?),
            Self::PollReq(c) => (25, c.to_der()?),
            Self::PollRep(c) => (26, c.to_der()?),
            Self::Other { tag, value } => (*tag, value.to_der()?),
        })
    }

    fn to_any(&self) -> der::Result<Any> {
        let (number, content) = self.tagged_content()?;
        let tag = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(number),
        };
        Any::new(tag, content)
    }

    fn from_any(any: &Any) -> der::Result<Self> {
        let number = match any.tag() {
            Tag::ContextSpecific {
                constructed: true,
                number,
            } => number.0,
            other => return Err(other.unexpected_error(None).into()),
        };
        let inner = any.value();
        Ok(match number {
            0 => Self::Ir(Decode::from_der(inner)?),
            1 => Self::Ip(Decode::from_der(inner)?),
            2 => Self::Cr(Decode::from_der(inner)?),
            3 => Self::Cp(Decode::from_der(inner)?),
            4 => Self::P10cr(Decode::from_der(inner)?),
            7 => Self::Kur(Decode::from_der(inner)?),
            8 => Self::Kup(Decode::from_der(inner)?),
            11 => Self::Rr(Decode::from_der(inner)?),
            12 => Self::Rp(Decode::from_der(inner)?),
            19 => {
                Null::from_der(inner)?;
                Self::PkiConf
            }
            21 => Self::Genm(Decode::from_der(inner)?),
            22 => Self::Genp(Decode::from_der(inner)?),
            23 => Self::Error(Decode::from_der(inner)?),
            24 => Self::CertConf(Decode::from_der(inner)?),
            25 => Self::PollReq(Decode::from_der(inner)?),
            26 => Self::PollRep(Decode::from_der(inner)?),
            tag => Self::Other {
                tag,
                value: Decode::from_der(inner)?,
            },
        })
    }
}

impl<'a> Decode<'a> for PkiBody {
    type Error = der::Error;

    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        let any = Any::decode(reader)?;
        Self::from_any(&any)
    }
}

impl Encode for PkiBody {
    fn encoded_len(&self) -> der::Result<Length> {
        self.to_any()?.encoded_len()
    }

    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.to_any()?.encode(writer)
    }
}
