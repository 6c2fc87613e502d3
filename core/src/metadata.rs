//! Sealed file metadata: name, MIME type and size, which the server stores but cannot read.
//!
//! ```text
//! sealed:    "DKMD" version:u8 nonce:[12] ciphertext tag:[16]
//! plaintext: size:u64 name_len:u16 name mime_len:u16 mime
//! ```
//!
//! The key is HKDF(file key, "metadata key" ‖ file id); the nonce is random, since metadata may be
//! re-sealed (a rename) under the same key; the associated data is magic, version and file id.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use crate::encoding::{Reader, Writer as _};
use crate::keys::{FileKey, derive_key};
use crate::seal::TAG_LEN;
use crate::{Error, FileId, OpenError};

const MAGIC: &[u8; 4] = b"DKMD";
/// Longest file name kept, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest MIME type kept.
pub const MAX_MIME_LEN: usize = 255;

/// What people see of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetadata {
    pub name: String,
    pub mime: String,
    pub size: u64,
}

fn cipher(file_key: &FileKey, file_id: &FileId) -> Aes256Gcm {
    let key = Zeroizing::new(derive_key(file_key.as_bytes(), "metadata key", file_id.as_bytes()));
    Aes256Gcm::new_from_slice(key.as_ref()).expect("AES-256 takes a 32-byte key")
}

fn associated_data(file_id: &FileId) -> [u8; 21] {
    let mut aad = [0u8; 21];
    aad[..4].copy_from_slice(MAGIC);
    aad[4] = crate::FORMAT_VERSION;
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
        let nonce: [u8; 12] = crate::random_bytes();
        let mut out = Vec::with_capacity(4 + 1 + 12 + 12 + self.name.len() + self.mime.len() + TAG_LEN);
        out.put_header(MAGIC);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.put_u64(self.size);
        out.put_short_bytes(self.name.as_bytes());
        out.put_short_bytes(self.mime.as_bytes());
        let tag = cipher(file_key, file_id)
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &associated_data(file_id),
                (&mut out[start..]).into(),
            )
            .expect("AES-GCM encrypts small messages");
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open sealed metadata. Every failure (wrong key, other file, altered or malformed bytes) is
    /// the one [`OpenError`].
    pub fn open(sealed: &[u8], file_key: &FileKey, file_id: &FileId) -> Result<Self, OpenError> {
        if sealed.len() < 17 + TAG_LEN || &sealed[..4] != MAGIC || sealed[4] != crate::FORMAT_VERSION {
            return Err(OpenError);
        }
        let nonce = Nonce::try_from(&sealed[5..17]).map_err(|_| OpenError)?;
        let (body, tag) = sealed[17..].split_at(sealed.len() - 17 - TAG_LEN);
        let tag = Tag::try_from(tag).map_err(|_| OpenError)?;
        let mut plain = Zeroizing::new(body.to_vec());
        cipher(file_key, file_id)
            .decrypt_inout_detached(&nonce, &associated_data(file_id), plain.as_mut_slice().into(), &tag)
            .map_err(|_| OpenError)?;
        // Authentic bytes that do not parse were written by a broken client; to the reader that is
        // still "cannot open".
        Self::decode_plain(&plain).map_err(|_| OpenError)
    }

    fn decode_plain(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "file metadata");
        let size = r.u64()?;
        let name = r.short_bytes(MAX_NAME_LEN)?;
        let mime = r.short_bytes(MAX_MIME_LEN)?;
        r.finish()?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::NonCanonical("metadata is not UTF-8"));
        Ok(Self {
            name: text(name)?,
            mime: text(mime)?,
            size,
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
        };
        let sealed = meta.seal(&key, &id).unwrap();
        assert_eq!(FileMetadata::open(&sealed, &key, &id).unwrap(), meta);
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
}
