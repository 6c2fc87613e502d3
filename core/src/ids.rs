//! Fixed-size identifiers and their one text form: lowercase hex of the exact length.
//!
//! Parsing is strict (no uppercase, no prefix, no separators), which is also what keeps a shard id
//! safe to use as a file name on a worker: nothing but `[0-9a-f]{64}` ever parses.

use std::fmt;
use std::str::FromStr;

use crate::Error;

macro_rules! fixed_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex, the only accepted text form.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                from_hex::<$len>(s).map(Self)
            }
        }

        /// As its hex text (see [`crate::api::encoding`]).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                crate::api::encoding::serialize_hex(&self.0, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                crate::api::encoding::deserialize_hex::<D, $len>(deserializer).map(Self)
            }
        }
    };
}

fixed_id!(
    /// Random identifier of a stored file, chosen by the uploading client.
    FileId, 16
);
fixed_id!(
    /// Random identifier of a folder in an account's tree, chosen by the client that makes it.
    FolderId, 16
);
fixed_id!(
    /// BLAKE3 hash of a shard's bytes: the shard's name everywhere.
    ShardId, 32
);
fixed_id!(
    /// Identity of a storage worker, derived from its Ed25519 public key
    /// ([`NodeId::from_public_key`]); placement ranks workers by XOR distance to it.
    NodeId, 32
);
fixed_id!(
    /// Unique serial of a capability token; workers refuse a serial they have already seen.
    Serial, 16
);

impl FileId {
    /// A fresh random file id.
    pub fn random() -> Self {
        Self(crate::random_bytes())
    }
}

impl FolderId {
    /// A fresh random folder id.
    pub fn random() -> Self {
        Self(crate::random_bytes())
    }
}

impl Serial {
    /// A fresh random serial.
    pub fn random() -> Self {
        Self(crate::random_bytes())
    }

    /// A serial whose first 8 bytes are `tag` and the rest random. The server tags the get
    /// tokens of one share download alike, so the bytes workers claim under them add up to what
    /// that download fetched.
    pub fn tagged(tag: [u8; 8]) -> Self {
        let mut bytes: [u8; 16] = crate::random_bytes();
        bytes[..8].copy_from_slice(&tag);
        Self(bytes)
    }
}

impl ShardId {
    /// The id of a shard: BLAKE3 of its bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Whether `bytes` are the shard this id names (constant-time comparison).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        blake3::hash(bytes) == blake3::Hash::from_bytes(self.0)
    }

    /// `bytes` as the shard this id names, or `None` when they are not it.
    pub fn verify(self, bytes: Vec<u8>) -> Option<VerifiedShard> {
        self.matches(&bytes).then_some(VerifiedShard { id: self, bytes })
    }
}

/// Shard bytes that were checked against their id ([`ShardId::verify`]), so that a download that
/// verified each shard as it arrived (to ask another worker at once if one lied) does not hash it
/// a second time in the decoder.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedShard {
    id: ShardId,
    bytes: Vec<u8>,
}

impl VerifiedShard {
    pub fn id(&self) -> ShardId {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for VerifiedShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedShard({}, {} bytes)", self.id, self.bytes.len())
    }
}

impl NodeId {
    /// Node ids are a BLAKE3 key derivation over the public key, so they are uniformly spread
    /// for XOR-distance placement whatever the structure of Ed25519 points.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        Self(blake3::derive_key("disktro v1 node id", public_key))
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parse exactly `2 * N` lowercase hex digits.
pub fn from_hex<const N: usize>(s: &str) -> Result<[u8; N], Error> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return Err(Error::NonCanonical("hex identifier of the wrong length"));
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            _ => return Err(Error::NonCanonical("identifier is not lowercase hex")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let id = ShardId::of(b"hello");
        assert_eq!(id.to_hex().parse::<ShardId>().unwrap(), id);
        // Uppercase, short, long, and path-like inputs must not parse: ids become file names.
        assert!(id.to_hex().to_uppercase().parse::<ShardId>().is_err());
        assert!(id.to_hex()[1..].parse::<ShardId>().is_err());
        assert!(format!("{id}0").parse::<ShardId>().is_err());
        assert!("../../../../etc/passwd".parse::<ShardId>().is_err());
        assert!(format!("../{}", &id.to_hex()[3..]).parse::<ShardId>().is_err());
    }

    #[test]
    fn shard_id_is_blake3() {
        assert_eq!(ShardId::of(b"").to_hex(), blake3::hash(b"").to_hex().as_str());
        assert!(ShardId::of(b"abc").matches(b"abc"));
        assert!(!ShardId::of(b"abc").matches(b"abd"));
    }
}
