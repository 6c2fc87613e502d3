//! The API's binary values in JSON, decoded once where JSON is read.
//!
//! - [`Base64`]: bytes as base64url without padding (sealed metadata, manifests, wrapped keys,
//!   tokens, receipts, key set-ups, proofs). It zeroizes its bytes when dropped, since some of
//!   them are keys.
//! - Fixed-size ids ([`crate::FileId`], [`crate::NodeId`], [`crate::ShardId`], [`crate::Serial`])
//!   and [`crate::keys::PublicKey`] serialize themselves as lowercase hex of their exact length.
//!
//! A value that does not decode fails deserialization with a message that starts with
//! [`REFUSED`]; the server answers it as `invalid_field` (a malformed body stays
//! `malformed_json`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// How every decoding refusal of a field starts.
pub const REFUSED: &str = "field not decodable: ";

/// Bytes that travel as base64url without padding.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Base64(Vec<u8>);

impl Base64 {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, taken out (the copy left behind is empty).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// The text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// From the text form.
    pub fn decode(text: &str) -> Result<Self, crate::Error> {
        URL_SAFE_NO_PAD
            .decode(text)
            .map(Self)
            .map_err(|_| crate::Error::NonCanonical("base64url without padding"))
    }
}

impl Drop for Base64 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Only the length: some of these bytes are keys.
impl fmt::Debug for Base64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64({} bytes)", self.0.len())
    }
}

impl std::ops::Deref for Base64 {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Base64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Base64 {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Base64 {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes.to_vec())
    }
}

impl Serialize for Base64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Base64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("base64url without padding")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Base64, E> {
                Base64::decode(text).map_err(|_| E::custom(format!("{REFUSED}expected base64url without padding")))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// Serde for a fixed-size value whose text form is lowercase hex (`from_hex` parses it strictly).
pub(crate) fn serialize_hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::ids::to_hex(bytes))
}

pub(crate) fn deserialize_hex<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
    struct Hex<const N: usize>;
    impl<const N: usize> Visitor<'_> for Hex<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} lowercase hex digits", N * 2)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<[u8; N], E> {
            crate::ids::from_hex::<N>(text)
                .map_err(|_| E::custom(format!("{REFUSED}expected {} lowercase hex digits", N * 2)))
        }
    }
    deserializer.deserialize_str(Hex::<N>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileId, NodeId};

    /// Tried: values that are not base64url or not hex of the right length. Must hold: each is
    /// refused with the marked message; good values round-trip to the same text.
    #[test]
    fn values_decode_once_or_are_refused_with_the_mark() {
        let b: Base64 = serde_json::from_str("\"AAEC\"").unwrap();
        assert_eq!(b.as_bytes(), &[0, 1, 2]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"AAEC\"");
        for bad in ["\"%%%\"", "\"AAE=\""] {
            let e = serde_json::from_str::<Base64>(bad).unwrap_err();
            assert!(e.to_string().starts_with(REFUSED), "{bad}: {e}");
        }
        let id = FileId([0xab; 16]);
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<FileId>(&text).unwrap(), id);
        for bad in ["\"ab\"", &format!("\"{}\"", "AB".repeat(32))] {
            let e = serde_json::from_str::<NodeId>(bad).unwrap_err();
            assert!(e.to_string().starts_with(REFUSED), "{bad}: {e}");
        }
        // A wrong JSON type is not a field encoding: it stays a malformed body.
        let e = serde_json::from_str::<Base64>("5").unwrap_err();
        assert!(!e.to_string().starts_with(REFUSED), "{e}");
        assert_eq!(format!("{b:?}"), "Base64(3 bytes)");
    }
}
