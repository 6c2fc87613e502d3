//! AES-256-GCM for chunks in the browser. WebCrypto (`crypto.subtle`) is hardware-accelerated
//! and about 40 times faster than the `aes-gcm` crate compiled to WebAssembly, but it exists only
//! in secure contexts; elsewhere the crate is the fallback. Both take the key, nonce and
//! associated data `disktro-core` gives ([`StagedChunk`], [`RebuiltChunk`]) and produce the exact
//! bytes the native codec does (ciphertext followed by the 16-byte tag); the home page's codec
//! check and the browser tests compare them.

use crate::browser::Failure;
use aes_gcm::aead::{AeadInOut, KeyInit};
use disktro_core::seal::ChunkKey;
use disktro_core::{FileId, FileKey, RebuiltChunk, StagedChunk};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::js;

/// Which implementation seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    WebCrypto,
    Wasm,
}

/// A file's chunk key, ready for either engine.
#[derive(Debug)]
pub enum ChunkCipher {
    WebCrypto(web_sys::SubtleCrypto, web_sys::CryptoKey),
    Wasm(Box<aes_gcm::Aes256Gcm>),
}

impl ChunkCipher {
    /// The chunk key of `file_id` under `file_key`, on WebCrypto when `prefer` says so and this
    /// context has it.
    pub async fn new(file_key: &FileKey, file_id: &FileId, prefer: Engine) -> Result<Self, Failure> {
        let key = ChunkKey::derive(file_key, file_id);
        if let (Engine::WebCrypto, Some(subtle)) = (prefer, js::subtle()) {
            let usages = Array::of2(&JsValue::from_str("encrypt"), &JsValue::from_str("decrypt"));
            let raw = js::to_array(key.as_bytes());
            let promise = subtle
                .import_key_with_str("raw", &raw, "AES-GCM", false, &usages)
                .map_err(|e| Failure::js(&e))?;
            let imported = JsFuture::from(promise).await.map_err(|e| Failure::js(&e))?;
            return Ok(Self::WebCrypto(subtle, imported.unchecked_into()));
        }
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes())
            .map_err(|_| Failure::browser("the AES key is not 32 bytes"))?;
        Ok(Self::Wasm(Box::new(cipher)))
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::WebCrypto(..) => Engine::WebCrypto,
            Self::Wasm(_) => Engine::Wasm,
        }
    }

    /// Seal a staged chunk, into its body's own allocation (taken out of `staged`; the encoder
    /// made it large enough for the tag and the parity shards, so sharding never reallocates):
    /// ciphertext followed by the tag.
    pub async fn seal(&self, staged: &mut StagedChunk) -> Result<Vec<u8>, Failure> {
        self.start_seal(staged)?.finish().await
    }

    /// Start sealing a staged chunk and return at once: WebCrypto seals on the browser's own
    /// threads while the caller goes on (an upload shards the chunk before this one meanwhile).
    /// [`Sealing::finish`] gives what [`Self::seal`] does.
    pub fn start_seal(&self, staged: &mut StagedChunk) -> Result<Sealing, Failure> {
        let mut body = std::mem::take(&mut staged.body);
        match self {
            Self::WebCrypto(subtle, key) => {
                let params = gcm_params(&staged.nonce(), &staged.aad);
                // WebCrypto copies its input when called, so a view into WebAssembly memory is
                // safe, and the body can take the output.
                let promise = subtle
                    .encrypt_with_object_and_u8_array(&params, key, &body)
                    .map_err(|e| Failure::js(&e))?;
                Ok(Sealing {
                    body,
                    pending: Some(JsFuture::from(promise)),
                })
            }
            Self::Wasm(cipher) => {
                cipher
                    .encrypt_in_place(&staged.nonce().into(), &staged.aad, &mut body)
                    .map_err(|_| Failure::browser("sealing failed"))?;
                Ok(Sealing { body, pending: None })
            }
        }
    }

    /// Start opening a rebuilt chunk and return at once: WebCrypto opens on the browser's own
    /// threads while the caller goes on (a download rebuilds the next chunk meanwhile). Its
    /// sealed bytes are taken out of `rebuilt` (WebCrypto copies them when called); any failure
    /// is [`Failure::Decrypt`].
    pub fn start_open(&self, rebuilt: &mut RebuiltChunk) -> Result<Opening, Failure> {
        let mut sealed = std::mem::take(&mut rebuilt.sealed);
        match self {
            Self::WebCrypto(subtle, key) => {
                let params = gcm_params(&rebuilt.nonce(), &rebuilt.aad);
                let promise = subtle
                    .decrypt_with_object_and_u8_array(&params, key, &sealed)
                    .map_err(|_| Failure::Decrypt)?;
                Ok(Opening {
                    sealed,
                    pending: Some(JsFuture::from(promise)),
                })
            }
            Self::Wasm(cipher) => {
                cipher
                    .decrypt_in_place(&rebuilt.nonce().into(), &rebuilt.aad, &mut sealed)
                    .map_err(|_| Failure::Decrypt)?;
                Ok(Opening { sealed, pending: None })
            }
        }
    }
}

/// A chunk being opened ([`ChunkCipher::start_open`]); any failure is [`Failure::Decrypt`].
pub struct Opening {
    /// The sealed bytes' allocation: the opened bytes once done here.
    sealed: Vec<u8>,
    /// WebCrypto's answer, still to come; `None` when opened here.
    pending: Option<JsFuture>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("done", &self.pending.is_none())
            .finish_non_exhaustive()
    }
}

/// An opened chunk, wherever its bytes are.
#[derive(Debug)]
pub enum Opened {
    /// In WebAssembly memory.
    Here(Vec<u8>),
    /// WebCrypto's output, left where it is; `spare` is the sealed bytes' allocation, free to
    /// reuse.
    Outside { bytes: js_sys::ArrayBuffer, spare: Vec<u8> },
}

impl Opening {
    /// The opened bytes. WebCrypto's output stays a JavaScript `ArrayBuffer`: the caller reads
    /// the body's header out of it and, for a chunk stored raw, hands the payload to the file as
    /// it is, which saves copying it into WebAssembly memory and out again into a fresh buffer
    /// (two 4 MiB copies and 4 MiB of fresh pages per chunk).
    pub async fn finish(self) -> Result<Opened, Failure> {
        let Self { sealed, pending } = self;
        let Some(pending) = pending else {
            return Ok(Opened::Here(sealed));
        };
        let opened = pending.await.map_err(|_| Failure::Decrypt)?;
        let bytes = opened.dyn_into().map_err(|_| Failure::Decrypt)?;
        Ok(Opened::Outside { bytes, spare: sealed })
    }
}

/// A chunk being sealed ([`ChunkCipher::start_seal`]).
pub struct Sealing {
    /// The staged body's allocation: the sealed bytes once done.
    body: Vec<u8>,
    /// WebCrypto's answer, still to come; `None` when sealed already.
    pending: Option<JsFuture>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("done", &self.pending.is_none())
            .finish_non_exhaustive()
    }
}

impl Sealing {
    /// The ciphertext followed by the tag, in the staged body's allocation.
    pub async fn finish(self) -> Result<Vec<u8>, Failure> {
        let Self { mut body, pending } = self;
        if let Some(pending) = pending {
            let sealed = pending.await.map_err(|e| Failure::js(&e))?;
            js::copy_into(&sealed, &mut body);
        }
        Ok(body)
    }
}

fn gcm_params(nonce: &[u8], aad: &[u8]) -> Object {
    let params = web_sys::AesGcmParams::new("AES-GCM", &js::to_array(nonce));
    params.set_additional_data(&js::to_array(aad));
    params.set_tag_length(128);
    params.into()
}
