//! Seal: AES-256-GCM over each (squeezed) chunk, STREAM-style.
//!
//! * **Key**: a per-file chunk key, HKDF-SHA256 from the random file key and the file id
//!   ([`ChunkKey::derive`]).
//! * **Nonce**: the chunk counter (big-endian, 11 bytes) followed by a last-chunk flag byte, as in
//!   age's STREAM construction ([`nonce`]). A nonce is never reused under one key because the key
//!   is unique to the file and the counter to the chunk.
//! * **Associated data**: magic, the body's layout version, file id, chunk index, last flag and
//!   (version 1 only) codec ([`associated_data`]). Opening a chunk at the wrong position, as the
//!   wrong end of the stream, under another file or as the other layout fails. Version 2 bodies
//!   are padded and carry their codec inside the ciphertext ([`crate::padding::BodyHeader`]).
//!
//! Each step is a plain function of bytes so the browser can import [`ChunkKey::as_bytes`] into
//! WebCrypto, pass [`nonce`] and [`associated_data`], and get exactly the bytes [`Sealer::seal`]
//! produces: ciphertext followed by the 16-byte tag.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::ZeroizeOnDrop;

use crate::keys::{FileKey, derive_key};
use crate::squeeze::Codec;
use crate::{FileId, OpenError};

/// AES-GCM tag length: every sealed chunk is its plaintext plus this many bytes.
pub const TAG_LEN: usize = 16;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// Length of [`associated_data`].
pub const AAD_LEN: usize = 4 + 1 + FileId::LEN + 8 + 1 + 1;

/// The AES-256 key that seals one file's chunks.
#[derive(Clone, ZeroizeOnDrop)]
pub struct ChunkKey([u8; 32]);

impl std::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkKey(..)")
    }
}

impl ChunkKey {
    /// HKDF-SHA256(file key, "chunk key" ‖ file id).
    pub fn derive(file_key: &FileKey, file_id: &FileId) -> Self {
        Self(derive_key(file_key.as_bytes(), "chunk key", file_id.as_bytes()))
    }

    /// Raw key bytes, for `crypto.subtle.importKey("raw", …)` in the browser.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// STREAM nonce: 11-byte big-endian chunk counter, then 1 for the last chunk or 0 otherwise.
pub fn nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// How a sealed chunk's body is laid out; the associated data binds it, so a body cannot be read
/// as the other layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLayout {
    /// Version 1 (files written before padding): the body is the (squeezed) plaintext, its codec
    /// stated in the manifest.
    Unpadded(Codec),
    /// Version 2: header, payload, zeros ([`crate::padding::BodyHeader`]); the codec is inside.
    Padded,
}

impl BodyLayout {
    /// The version byte of the associated data (and of the manifest that lists such chunks).
    pub fn version(self) -> u8 {
        match self {
            Self::Unpadded(_) => 1,
            Self::Padded => 2,
        }
    }
}

/// The codec byte a version-2 body's associated data holds in place of a codec.
const PADDED_MARKER: u8 = 0xff;

/// Associated data binding a sealed chunk to its layout, file, position, end-of-stream flag and
/// (version 1) codec.
pub fn associated_data(file_id: &FileId, index: u64, last: bool, layout: BodyLayout) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..4].copy_from_slice(b"DKCH");
    aad[4] = layout.version();
    aad[5..21].copy_from_slice(file_id.as_bytes());
    aad[21..29].copy_from_slice(&index.to_be_bytes());
    aad[29] = u8::from(last);
    aad[30] = match layout {
        BodyLayout::Unpadded(codec) => codec.to_byte(),
        BodyLayout::Padded => PADDED_MARKER,
    };
    aad
}

/// Seals and opens the chunks of one file.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    file_id: FileId,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("file_id", &self.file_id)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn new(key: &ChunkKey, file_id: FileId) -> Self {
        let cipher = Aes256Gcm::new_from_slice(&key.0).expect("AES-256 takes a 32-byte key");
        Self { cipher, file_id }
    }

    /// Encrypt `buf` in place and return the tag to append after it.
    pub fn seal_in_place(&self, index: u64, last: bool, layout: BodyLayout, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let aad = associated_data(&self.file_id, index, last, layout);
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce(index, last)), &aad, buf.into())
            .expect("AES-GCM accepts chunks far below its 64 GiB message limit");
        tag.into()
    }

    /// Ciphertext ‖ tag of `plain`: the bytes WebCrypto's AES-GCM encrypt returns.
    pub fn seal(&self, index: u64, last: bool, layout: BodyLayout, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + TAG_LEN);
        out.extend_from_slice(plain);
        let tag = self.seal_in_place(index, last, layout, &mut out);
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypt ciphertext ‖ tag in place; on success the plaintext is the returned prefix.
    pub fn open_in_place<'b>(
        &self,
        index: u64,
        last: bool,
        layout: BodyLayout,
        sealed: &'b mut [u8],
    ) -> Result<&'b mut [u8], OpenError> {
        let body_len = sealed.len().checked_sub(TAG_LEN).ok_or(OpenError)?;
        let (body, tag) = sealed.split_at_mut(body_len);
        let tag = Tag::try_from(&*tag).map_err(|_| OpenError)?;
        let aad = associated_data(&self.file_id, index, last, layout);
        self.cipher
            .decrypt_inout_detached(&Nonce::from(nonce(index, last)), &aad, body.into(), &tag)
            .map_err(|_| OpenError)?;
        Ok(body)
    }

    /// Decrypt a copy of `sealed`.
    pub fn open(&self, index: u64, last: bool, layout: BodyLayout, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = sealed.to_vec();
        let len = self.open_in_place(index, last, layout, &mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(file: u8) -> Sealer {
        let key = FileKey::from_bytes([7; 32]);
        let id = FileId([file; 16]);
        Sealer::new(&ChunkKey::derive(&key, &id), id)
    }

    #[test]
    fn nonce_layout_is_stream() {
        assert_eq!(nonce(0, false), [0; 12]);
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(nonce(u64::MAX, false)[3..11], [0xff; 8]);
    }

    #[test]
    fn every_bound_field_is_checked_on_open() {
        let s = sealer(1);
        let raw = BodyLayout::Unpadded(Codec::Raw);
        let sealed = s.seal(3, false, raw, b"chunk three");
        assert_eq!(s.open(3, false, raw, &sealed).unwrap(), b"chunk three");
        // Tried: wrong position, wrong end-of-stream flag, wrong codec, the other layout, another
        // file, short input. Must hold: the one OpenError every time.
        assert_eq!(s.open(4, false, raw, &sealed), Err(OpenError));
        assert_eq!(s.open(3, true, raw, &sealed), Err(OpenError));
        assert_eq!(
            s.open(3, false, BodyLayout::Unpadded(Codec::Zstd), &sealed),
            Err(OpenError)
        );
        assert_eq!(s.open(3, false, BodyLayout::Padded, &sealed), Err(OpenError));
        assert_eq!(sealer(2).open(3, false, raw, &sealed), Err(OpenError));
        assert_eq!(s.open(3, false, raw, &sealed[..15]), Err(OpenError));
        assert_eq!(s.open(3, false, raw, &sealed[..sealed.len() - 1]), Err(OpenError));
        let padded = s.seal(3, false, BodyLayout::Padded, b"chunk three");
        assert_eq!(s.open(3, false, raw, &padded), Err(OpenError));
    }
}
