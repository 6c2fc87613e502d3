//! Sealed file metadata: name, MIME type and size, which the server stores but cannot read.
//!
//! ```text
//! sealed:    "DKMD" version:u8 nonce:[12] ciphertext tag:[16]
//! plaintext: size:u64 name_len:u16 name mime_len:u16 mime [count:u8 (key_len:u8 key value_len:u16 value)*] zeros
//! ```
//!
//! The key is HKDF(file key, "metadata key" ‖ file id); the nonce is random, since metadata may be
//! re-sealed (a rename) under the same key; the associated data is magic, version and file id.
//! Version 2 (written) pads the plaintext with zeros to a multiple of
//! [`crate::padding::METADATA_BLOCK`] bytes, so the sealed length says almost nothing about the
//! name; version 1 (files stored before) has no zeros and is still read.
//!
//! Attributes are what tools outside the app keep with a file (the S3 gateway's ETag and the
//! user metadata of `x-amz-meta-*`): at most [`MAX_ATTRIBUTES_LEN`] bytes of name–value pairs,
//! sealed with the name. A file without them seals exactly as before (their count is a padding
//! zero), so every file stored earlier opens with none.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use crate::encoding::{Reader, Writer as _};
use crate::keys::{FileKey, derive_key};
use crate::padding;
use crate::seal::TAG_LEN;
use crate::{Error, FileId, OpenError};

const MAGIC: &[u8; 4] = b"DKMD";
/// The version written: padded.
const VERSION_PADDED: u8 = 2;
/// Files stored before padding.
const VERSION_UNPADDED: u8 = 1;
/// Longest file name kept, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest MIME type kept.
pub const MAX_MIME_LEN: usize = 255;
/// Most bytes of attributes (their names and values with their lengths and count), as S3 allows
/// user metadata of 2 KiB.
pub const MAX_ATTRIBUTES_LEN: usize = 2048 + 64;
/// Longest sealed metadata: header, nonce, the longest name, type and attributes with their
/// lengths padded, the tag.
pub const MAX_SEALED_LEN: usize = 4
    + 1
    + 12
    + (8 + 2 + MAX_NAME_LEN + 2 + MAX_MIME_LEN + MAX_ATTRIBUTES_LEN).div_ceil(padding::METADATA_BLOCK)
        * padding::METADATA_BLOCK
    + TAG_LEN;

/// Whether `sealed` has the shape of padded (version 2) sealed metadata: magic, version and a
/// padded length. What the server checks before storing it, so no client leaks a name's length.
pub fn is_padded_shape(sealed: &[u8]) -> bool {
    let body = sealed.len().saturating_sub(4 + 1 + 12 + TAG_LEN);
    sealed.len() <= MAX_SEALED_LEN
        && sealed.starts_with(MAGIC)
        && sealed.get(4) == Some(&VERSION_PADDED)
        && body > 0
        && body.is_multiple_of(padding::METADATA_BLOCK)
}

/// What people see of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// Name–value pairs kept for tools (see the module's header); empty for most files.
    pub attributes: Vec<(String, String)>,
}

/// The bytes `attributes` take sealed: count, then each name and value with their lengths.
fn attributes_len(attributes: &[(String, String)]) -> usize {
    1 + attributes.iter().map(|(k, v)| 1 + k.len() + 2 + v.len()).sum::<usize>()
}

fn cipher(file_key: &FileKey, file_id: &FileId) -> Aes256Gcm {
    let key = Zeroizing::new(derive_key(file_key.as_bytes(), "metadata key", file_id.as_bytes()));
    Aes256Gcm::new_from_slice(key.as_ref()).expect("AES-256 takes a 32-byte key")
}

fn associated_data(file_id: &FileId, version: u8) -> [u8; 21] {
    let mut aad = [0u8; 21];
    aad[..4].copy_from_slice(MAGIC);
    aad[4] = version;
    aad[5..].copy_from_slice(file_id.as_bytes());
    aad
}

impl FileMetadata {
    /// Seal under the file's metadata key. Names and types over their limits are refused.
    pub fn seal(&self, file_key: &FileKey, file_id: &FileId) -> Result<Vec<u8>, Error> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(Error::too_large("file name", self.name.len(), MAX_NAME_LEN));
        }
        if self.mime.len() > MAX_MIME_LEN {
            return Err(Error::too_large("MIME type", self.mime.len(), MAX_MIME_LEN));
        }
        let len = attributes_len(&self.attributes);
        let count = u8::try_from(self.attributes.len())
            .ok()
            .filter(|_| len <= MAX_ATTRIBUTES_LEN)
            .ok_or_else(|| Error::too_large("file attributes", len, MAX_ATTRIBUTES_LEN))?;
        let mut name_lens = Vec::with_capacity(self.attributes.len());
        for (name, _) in &self.attributes {
            name_lens.push(
                u8::try_from(name.len())
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| Error::too_large("attribute name", name.len(), 255))?,
            );
        }
        let nonce: [u8; 12] = crate::random_bytes();
        let mut plain = Vec::with_capacity(padding::METADATA_BLOCK);
        plain.put_u64(self.size);
        plain.put_short_bytes(self.name.as_bytes());
        plain.put_short_bytes(self.mime.as_bytes());
        if count > 0 {
            plain.push(count);
            for ((name, value), name_len) in self.attributes.iter().zip(name_lens) {
                plain.push(name_len);
                plain.extend_from_slice(name.as_bytes());
                plain.put_short_bytes(value.as_bytes());
            }
        }
        padding::pad_metadata(&mut plain);
        let mut out = Vec::with_capacity(4 + 1 + 12 + plain.len() + TAG_LEN);
        out.put_versioned_header(MAGIC, VERSION_PADDED);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(&plain);
        let tag = cipher(file_key, file_id)
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &associated_data(file_id, VERSION_PADDED),
                (&mut out[start..]).into(),
            )
            .expect("AES-GCM encrypts small messages");
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open sealed metadata. Every failure (wrong key, other file, altered or malformed bytes) is
    /// the one [`OpenError`].
    pub fn open(sealed: &[u8], file_key: &FileKey, file_id: &FileId) -> Result<Self, OpenError> {
        let version = *sealed.get(4).ok_or(OpenError)?;
        if sealed.len() < 17 + TAG_LEN
            || &sealed[..4] != MAGIC
            || ![VERSION_UNPADDED, VERSION_PADDED].contains(&version)
        {
            return Err(OpenError);
        }
        let nonce = Nonce::try_from(&sealed[5..17]).map_err(|_| OpenError)?;
        let (body, tag) = sealed[17..].split_at(sealed.len() - 17 - TAG_LEN);
        let tag = Tag::try_from(tag).map_err(|_| OpenError)?;
        let mut plain = Zeroizing::new(body.to_vec());
        cipher(file_key, file_id)
            .decrypt_inout_detached(
                &nonce,
                &associated_data(file_id, version),
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| OpenError)?;
        // Authentic bytes that do not parse were written by a broken client; to the reader that is
        // still "cannot open".
        Self::decode_plain(&plain, version == VERSION_PADDED).map_err(|_| OpenError)
    }

    fn decode_plain(bytes: &[u8], padded: bool) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "file metadata");
        let size = r.u64()?;
        let name = r.short_bytes(MAX_NAME_LEN)?;
        let mime = r.short_bytes(MAX_MIME_LEN)?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::NonCanonical("metadata is not UTF-8"));
        let mut attributes = Vec::new();
        if padded && r.remaining() > 0 {
            for _ in 0..r.u8()? {
                let name_len = r.u8()?;
                let name = text(r.bytes(usize::from(name_len))?)?;
                let value = text(r.short_bytes(MAX_ATTRIBUTES_LEN)?)?;
                if name.is_empty() {
                    return Err(Error::NonCanonical("empty attribute name"));
                }
                attributes.push((name, value));
            }
        }
        if padded {
            let zeros = r.bytes(r.remaining())?;
            if zeros.iter().any(|&b| b != 0) || !bytes.len().is_multiple_of(padding::METADATA_BLOCK) {
                return Err(Error::NonCanonical("metadata padding"));
            }
        }
        r.finish()?;
        Ok(Self {
            name: text(name)?,
            mime: text(mime)?,
            size,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip_and_tamper() {
        let key = FileKey::from_bytes([1; 32]);
        let id = FileId([2; 16]);
        let meta = FileMetadata {
            name: "holiday 🏖.jpg".into(),
            mime: "image/jpeg".into(),
            size: 12345,
            attributes: Vec::new(),
        };
        let sealed = meta.seal(&key, &id).unwrap();
        assert_eq!(FileMetadata::open(&sealed, &key, &id).unwrap(), meta);
        // Padded: a name of 1 byte and one of 200 seal to the same length.
        let short = FileMetadata {
            name: "a".into(),
            ..meta.clone()
        };
        let longer = FileMetadata {
            name: "b".repeat(200),
            ..meta.clone()
        };
        assert_eq!(short.seal(&key, &id).unwrap().len(), sealed.len());
        assert_eq!(longer.seal(&key, &id).unwrap().len(), sealed.len());
        assert_eq!(sealed.len(), 4 + 1 + 12 + padding::METADATA_BLOCK + TAG_LEN);
        assert!(is_padded_shape(&sealed));
        let longest = FileMetadata {
            name: "n".repeat(MAX_NAME_LEN),
            mime: "m".repeat(MAX_MIME_LEN),
            size: 1,
            attributes: vec![("a".repeat(255), "v".repeat(MAX_ATTRIBUTES_LEN - 1 - 1 - 255 - 2))],
        };
        let sealed_longest = longest.seal(&key, &id).unwrap();
        assert_eq!(sealed_longest.len(), MAX_SEALED_LEN);
        assert!(is_padded_shape(&sealed_longest));
        assert!(!is_padded_shape(&sealed[..sealed.len() - 1]));
        assert_eq!(FileMetadata::open(&sealed, &key, &FileId([3; 16])), Err(OpenError));
        assert_eq!(
            FileMetadata::open(&sealed, &FileKey::from_bytes([9; 32]), &id),
            Err(OpenError)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert_eq!(FileMetadata::open(&bad, &key, &id), Err(OpenError), "byte {i}");
        }
        assert_eq!(FileMetadata::open(&sealed[..20], &key, &id), Err(OpenError));
        let long = FileMetadata {
            name: "x".repeat(MAX_NAME_LEN + 1),
            ..meta
        };
        assert!(matches!(long.seal(&key, &id), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn attributes_are_sealed_with_the_name_and_files_without_them_seal_as_before() {
        let key = FileKey::from_bytes([1; 32]);
        let id = FileId([2; 16]);
        let plain = FileMetadata {
            name: "report.pdf".into(),
            mime: "application/pdf".into(),
            size: 7,
            attributes: Vec::new(),
        };
        let with = FileMetadata {
            attributes: vec![
                ("s3-etag".into(), "0cc175b9c0f1b6a831c399e269772661".into()),
                ("s3-meta-colour".into(), "blåbær".into()),
            ],
            ..plain.clone()
        };
        let sealed = with.seal(&key, &id).unwrap();
        assert!(is_padded_shape(&sealed));
        assert_eq!(FileMetadata::open(&sealed, &key, &id).unwrap(), with);
        // Without attributes the plaintext is the earlier format: its count is a padding zero.
        let sealed_plain = plain.seal(&key, &id).unwrap();
        assert_eq!(FileMetadata::open(&sealed_plain, &key, &id).unwrap(), plain);
        // Over the limit: refused when sealing, not cut.
        let too_many = FileMetadata {
            attributes: vec![("k".into(), "v".repeat(MAX_ATTRIBUTES_LEN))],
            ..plain.clone()
        };
        assert!(matches!(too_many.seal(&key, &id), Err(Error::TooLarge { .. })));
        let unnamed = FileMetadata {
            attributes: vec![(String::new(), "v".into())],
            ..plain
        };
        assert!(unnamed.seal(&key, &id).is_err());
    }
}
