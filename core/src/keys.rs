//! Keys: from a password to everything a client holds, and how each is wrapped.
//!
//! ```text
//! password ──Argon2id(salt, KdfParams)──► root ──HKDF──┬─► auth key    (sent to the server, which
//!                                                      │                stores only its own hash)
//!                                                      └─► master key  (never leaves the client)
//! master key ──wrap(owner, purpose, id)──► wrapped identity key, wrapped file keys
//! file key ──HKDF(file id)──► chunk key (seal), metadata key
//! ```
//!
//! Rules kept here: Argon2 parameters are fixed in code and minimums are enforced when a stored
//! set is read back (a server cannot talk a client into weak hashing); every wrapped key is
//! AES-256-GCM with its context (owner, purpose, id, version) as associated data; every failed
//! unwrap is the one [`OpenError`]; share links carry the file key as canonical base64url.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization as _;
use zeroize::{Zeroize as _, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{Reader, Writer as _};
use crate::{Error, OpenError};

/// HKDF-SHA256 with a domain-separated info string: "disktro v1 " ‖ label ‖ 0 ‖ context.
pub(crate) fn derive_key(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(None, ikm);
    let mut out = [0u8; 32];
    hk.expand_multi_info(&[b"disktro v1 ", label.as_bytes(), &[0], context], &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_key!(
    /// The random 256-bit key of one file; everything about the file is derived from it.
    FileKey
);
secret_key!(
    /// Sent to the server at sign-up and log-in; the server stores only an Argon2id hash of it.
    AuthKey
);
secret_key!(
    /// Never leaves the client: wraps the identity key and every file key.
    MasterKey
);

impl FileKey {
    /// A fresh random file key.
    pub fn generate() -> Self {
        Self(crate::random_bytes())
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// What new accounts use: 64 MiB, 3 passes, 1 lane (about a second in a browser).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The floor enforced when parameters are read back (OWASP's Argon2id minimum).
    pub const MINIMUM: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// The ceiling: a hostile server must not make a client allocate without bound.
    pub const MAXIMUM: Self = Self {
        memory_kib: 1024 * 1024,
        iterations: 16,
        parallelism: 8,
    };

    fn check(&self) -> Result<(), Error> {
        let (min, max) = (Self::MINIMUM, Self::MAXIMUM);
        if self.memory_kib < min.memory_kib {
            return Err(Error::WeakKdfParams("memory"));
        }
        if self.iterations < min.iterations {
            return Err(Error::WeakKdfParams("iterations"));
        }
        if self.parallelism < min.parallelism {
            return Err(Error::WeakKdfParams("parallelism"));
        }
        if self.memory_kib > max.memory_kib || self.iterations > max.iterations || self.parallelism > max.parallelism {
            return Err(Error::InvalidParams(
                "key derivation parameters above the allowed maximum",
            ));
        }
        Ok(())
    }
}

/// How a password becomes the bytes the KDF takes: the set-up's version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PasswordForm {
    /// Version 1: the UTF-8 bytes as typed (accounts made before passwords were normalized; they
    /// keep opening with exactly what they were made with).
    AsTyped = 1,
    /// Version 2: the Unicode NFKC form, so the same password typed on another system or filled
    /// by a manager (composed or decomposed accents, full-width or compatibility characters)
    /// opens the account.
    Nfkc = 2,
}

/// An account's key-derivation set-up: parameters plus salt, stored by the server in this encoding
/// and handed back at log-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfSetup {
    pub params: KdfParams,
    pub salt: [u8; 16],
    pub form: PasswordForm,
}

impl KdfSetup {
    const MAGIC: &'static [u8; 4] = b"DKKP";

    /// Default parameters with a fresh random salt, passwords normalized.
    pub fn generate() -> Self {
        Self {
            params: KdfParams::DEFAULT,
            salt: crate::random_bytes(),
            form: PasswordForm::Nfkc,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.extend_from_slice(Self::MAGIC);
        out.push(self.form as u8);
        out.put_u32(self.params.memory_kib);
        out.put_u32(self.params.iterations);
        out.put_u32(self.params.parallelism);
        out.extend_from_slice(&self.salt);
        out
    }

    /// Decode and enforce the minimum (and maximum) parameters.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "key derivation set-up");
        if r.bytes(4)? != Self::MAGIC {
            return Err(Error::BadMagic("key derivation set-up"));
        }
        let form = match r.u8()? {
            1 => PasswordForm::AsTyped,
            2 => PasswordForm::Nfkc,
            found => {
                return Err(Error::UnsupportedVersion {
                    what: "key derivation set-up",
                    found,
                });
            }
        };
        let params = KdfParams {
            memory_kib: r.u32()?,
            iterations: r.u32()?,
            parallelism: r.u32()?,
        };
        let salt = r.array()?;
        r.finish()?;
        params.check()?;
        Ok(Self { params, salt, form })
    }
}

/// The two keys a password yields.
#[derive(Debug)]
pub struct AccountKeys {
    pub auth_key: AuthKey,
    pub master_key: MasterKey,
}

/// Password → Argon2id → HKDF → auth key and master key. Refuses parameters below the minimum.
pub fn derive_account_keys(password: &str, setup: &KdfSetup) -> Result<AccountKeys, Error> {
    setup.params.check()?;
    let password: Zeroizing<Vec<u8>> = Zeroizing::new(match setup.form {
        PasswordForm::AsTyped => password.as_bytes().to_vec(),
        PasswordForm::Nfkc => password.nfkc().collect::<String>().into_bytes(),
    });
    let p = setup.params;
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|_| Error::InvalidParams("argon2 rejected the parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut root = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(&password, &setup.salt, root.as_mut())
        .map_err(|_| Error::InvalidParams("argon2 rejected the password or salt"))?;
    Ok(AccountKeys {
        auth_key: AuthKey(derive_key(root.as_ref(), "auth key", &[])),
        master_key: MasterKey(derive_key(root.as_ref(), "master key", &[])),
    })
}

/// What a wrapped key is for; part of the associated data, so a key wrapped for one purpose
/// cannot be unwrapped as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyPurpose {
    /// The account's Ed25519 identity (signing) key.
    Identity = 1,
    /// A file's key.
    File = 2,
    /// A folder's key (it seals the folder's name, [`crate::folder`]).
    Folder = 3,
}

/// The context a wrapped key is bound to.
#[derive(Debug, Clone, Copy)]
pub struct WrapContext<'a> {
    /// Who owns the key (the account's identity public key, or another stable account handle).
    pub owner: &'a [u8],
    pub purpose: KeyPurpose,
    /// Which key: a file id for file keys, empty for the identity key.
    pub id: &'a [u8],
}

impl WrapContext<'_> {
    const MAX_FIELD: usize = 256;

    fn associated_data(&self) -> Result<Vec<u8>, OpenError> {
        if self.owner.len() > Self::MAX_FIELD || self.id.len() > Self::MAX_FIELD {
            return Err(OpenError);
        }
        let mut aad = Vec::with_capacity(12 + self.owner.len() + self.id.len());
        aad.put_header(WRAP_MAGIC);
        aad.push(self.purpose as u8);
        aad.put_short_bytes(self.owner);
        aad.put_short_bytes(self.id);
        Ok(aad)
    }
}

const WRAP_MAGIC: &[u8; 4] = b"DKWK";
/// Length of a wrapped 32-byte key: magic, version, nonce, ciphertext, tag.
pub const WRAPPED_KEY_LEN: usize = 4 + 1 + 12 + 32 + 16;

impl MasterKey {
    fn wrapping_cipher(&self) -> Aes256Gcm {
        let key = Zeroizing::new(derive_key(&self.0, "wrapping key", &[]));
        Aes256Gcm::new_from_slice(key.as_ref()).expect("AES-256 takes a 32-byte key")
    }

    /// Wrap a 32-byte secret under this master key, bound to `context`.
    pub fn wrap(&self, context: &WrapContext<'_>, secret: &[u8; 32]) -> Result<Vec<u8>, Error> {
        let aad = context
            .associated_data()
            .map_err(|_| Error::InvalidParams("wrap context field too long"))?;
        let nonce: [u8; 12] = crate::random_bytes();
        let mut out = Vec::with_capacity(WRAPPED_KEY_LEN);
        out.put_header(WRAP_MAGIC);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(secret);
        let tag = self
            .wrapping_cipher()
            .encrypt_inout_detached(&Nonce::from(nonce), &aad, (&mut out[start..]).into())
            .expect("AES-GCM encrypts 32 bytes");
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Unwrap what [`MasterKey::wrap`] produced. Any failure, including a malformed input or a
    /// different context, is the same [`OpenError`].
    pub fn unwrap(&self, context: &WrapContext<'_>, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, OpenError> {
        let aad = context.associated_data()?;
        if wrapped.len() != WRAPPED_KEY_LEN || &wrapped[..4] != WRAP_MAGIC || wrapped[4] != crate::FORMAT_VERSION {
            return Err(OpenError);
        }
        let nonce = Nonce::try_from(&wrapped[5..17]).map_err(|_| OpenError)?;
        let tag = Tag::try_from(&wrapped[49..]).map_err(|_| OpenError)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&wrapped[17..49]);
        self.wrapping_cipher()
            .decrypt_inout_detached(&nonce, &aad, secret.as_mut_slice().into(), &tag)
            .map_err(|_| OpenError)?;
        Ok(secret)
    }

    /// Wrap a file key; its context is (owner, file, file id).
    pub fn wrap_file_key(&self, owner: &PublicKey, file_id: &crate::FileId, key: &FileKey) -> Vec<u8> {
        self.wrap_item_key(owner, KeyPurpose::File, file_id.as_bytes(), key)
    }

    pub fn unwrap_file_key(
        &self,
        owner: &PublicKey,
        file_id: &crate::FileId,
        wrapped: &[u8],
    ) -> Result<FileKey, OpenError> {
        self.unwrap_item_key(owner, KeyPurpose::File, file_id.as_bytes(), wrapped)
    }

    /// Wrap a folder's key; its context is (owner, folder, folder id): it never unwraps as a
    /// file's key, even for a file of the same id.
    pub fn wrap_folder_key(&self, owner: &PublicKey, folder_id: &crate::FolderId, key: &FileKey) -> Vec<u8> {
        self.wrap_item_key(owner, KeyPurpose::Folder, folder_id.as_bytes(), key)
    }

    pub fn unwrap_folder_key(
        &self,
        owner: &PublicKey,
        folder_id: &crate::FolderId,
        wrapped: &[u8],
    ) -> Result<FileKey, OpenError> {
        self.unwrap_item_key(owner, KeyPurpose::Folder, folder_id.as_bytes(), wrapped)
    }

    /// The key of one of the owner's files or folders (`purpose`), bound to its id.
    fn wrap_item_key(&self, owner: &PublicKey, purpose: KeyPurpose, id: &[u8; 16], key: &FileKey) -> Vec<u8> {
        let ctx = WrapContext {
            owner: owner.as_bytes(),
            purpose,
            id,
        };
        self.wrap(&ctx, key.as_bytes()).expect("fixed-size context fields")
    }

    fn unwrap_item_key(
        &self,
        owner: &PublicKey,
        purpose: KeyPurpose,
        id: &[u8; 16],
        wrapped: &[u8],
    ) -> Result<FileKey, OpenError> {
        let ctx = WrapContext {
            owner: owner.as_bytes(),
            purpose,
            id,
        };
        Ok(FileKey(*self.unwrap(&ctx, wrapped)?))
    }

    /// Wrap the account's identity key; its context is (account handle, identity).
    pub fn wrap_identity(&self, account: &[u8], identity: &Keypair) -> Result<Vec<u8>, Error> {
        let ctx = WrapContext {
            owner: account,
            purpose: KeyPurpose::Identity,
            id: &[],
        };
        self.wrap(&ctx, &identity.secret_bytes())
    }

    pub fn unwrap_identity(&self, account: &[u8], wrapped: &[u8]) -> Result<Keypair, OpenError> {
        let ctx = WrapContext {
            owner: account,
            purpose: KeyPurpose::Identity,
            id: &[],
        };
        Ok(Keypair::from_secret_bytes(&*self.unwrap(&ctx, wrapped)?))
    }
}

/// An Ed25519 key pair: a user's identity, the server's token key, or a worker's node key.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public().fingerprint())
    }
}

impl Keypair {
    pub fn generate() -> Self {
        Self::from_secret_bytes(&Zeroizing::new(crate::random_bytes()))
    }

    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    /// The 32-byte secret seed (for wrapping or a key file).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The key this identity wraps its file keys under (HKDF of the identity seed). Derived from
    /// the identity rather than the password, so a password change (which re-wraps only the
    /// identity key) leaves every file readable.
    fn file_wrapping_key(&self) -> MasterKey {
        MasterKey(derive_key(self.secret_bytes().as_ref(), "file wrapping key", &[]))
    }

    /// Wrap the key of one of this identity's files, bound to this identity and the file id.
    pub fn wrap_file_key(&self, file_id: &crate::FileId, key: &FileKey) -> Vec<u8> {
        self.file_wrapping_key().wrap_file_key(&self.public(), file_id, key)
    }

    /// Open what [`Self::wrap_file_key`] produced; any failure is the one [`OpenError`].
    pub fn unwrap_file_key(&self, file_id: &crate::FileId, wrapped: &[u8]) -> Result<FileKey, OpenError> {
        self.file_wrapping_key()
            .unwrap_file_key(&self.public(), file_id, wrapped)
    }

    /// Wrap the key of one of this identity's folders, bound to this identity and the folder id
    /// (under the same wrapping key as files' keys, for another purpose).
    pub fn wrap_folder_key(&self, folder_id: &crate::FolderId, key: &FileKey) -> Vec<u8> {
        self.file_wrapping_key().wrap_folder_key(&self.public(), folder_id, key)
    }

    /// Open what [`Self::wrap_folder_key`] produced; any failure is the one [`OpenError`].
    pub fn unwrap_folder_key(&self, folder_id: &crate::FolderId, wrapped: &[u8]) -> Result<FileKey, OpenError> {
        self.file_wrapping_key()
            .unwrap_folder_key(&self.public(), folder_id, wrapped)
    }

    /// Sign `message` under a domain: signatures for one purpose never verify for another.
    pub fn sign(&self, domain: &str, message: &[u8]) -> [u8; 64] {
        self.0.sign(&signed_bytes(domain, message)).to_bytes()
    }
}

fn signed_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + domain.len() + message.len());
    m.extend_from_slice(b"disktro v1 ");
    m.extend_from_slice(domain.as_bytes());
    m.push(0);
    m.extend_from_slice(message);
    m
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// As hex text (see [`crate::api::encoding`]).
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::api::encoding::serialize_hex(&self.0, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::api::encoding::deserialize_hex::<D, 32>(deserializer).map(Self)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", crate::ids::to_hex(&self.0))
    }
}

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Strict verification (no malleable or small-order keys) of a domain-separated signature.
    pub fn verify(&self, domain: &str, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| Error::BadSignature)?;
        key.verify_strict(&signed_bytes(domain, message), &Signature::from_bytes(signature))
            .map_err(|_| Error::BadSignature)
    }

    /// What people compare: 20 hex digits of BLAKE3 over the key, in groups of four.
    pub fn fingerprint(&self) -> String {
        let hash = blake3::derive_key("disktro v1 fingerprint", &self.0);
        let hex = crate::ids::to_hex(&hash[..10]);
        hex.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("hex is ascii"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The storage-worker node id for this key.
    pub fn node_id(&self) -> crate::NodeId {
        crate::NodeId::from_public_key(&self.0)
    }
}

/// The keys a logged-in client holds and never sends: the identity key (signs manifests, wraps
/// file keys) and the master key (wraps the identity key). The browser tab and the CLI both hold
/// exactly this, beside their own session details.
#[derive(Clone)]
pub struct HeldKeys {
    pub identity: Keypair,
    pub master_key: MasterKey,
}

impl std::fmt::Debug for HeldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldKeys({})", self.identity.public().fingerprint())
    }
}

impl HeldKeys {
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// The key of one of this account's files, from the wrapped key the server keeps.
    pub fn file_key(&self, file_id: &crate::FileId, wrapped: &[u8]) -> Result<FileKey, OpenError> {
        self.identity.unwrap_file_key(file_id, wrapped)
    }

    /// The key of one of this account's folders, from the wrapped key the server keeps.
    pub fn folder_key(&self, folder_id: &crate::FolderId, wrapped: &[u8]) -> Result<FileKey, OpenError> {
        self.identity.unwrap_folder_key(folder_id, wrapped)
    }

    /// The identity key wrapped for the server to keep, bound to its own public key (FORMAT.md).
    pub fn wrapped_identity(&self) -> Vec<u8> {
        self.master_key
            .wrap_identity(self.public_key().as_bytes(), &self.identity)
            .expect("a 32-byte owner is within the wrap context's bound")
    }
}

/// What a share-link holder sends to prove a share's password: HKDF of the password bound to the
/// file key. The server stores only its own Argon2id hash of this proof; since the proof depends on
/// the key in the link's fragment, the server cannot guess passwords offline from what it keeps,
/// and a guess from someone without the link cannot even be formed.
pub fn share_password_proof(key: &FileKey, password: &str) -> [u8; 32] {
    let mut context = Vec::with_capacity(32 + password.len());
    context.extend_from_slice(key.as_bytes());
    context.extend_from_slice(password.as_bytes());
    let proof = derive_key(&context, "share password", &[]);
    context.zeroize();
    proof
}

/// The `#fragment` of a share link: the file key as unpadded base64url (43 characters).
pub fn encode_link_key(key: &FileKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Strict inverse of [`encode_link_key`]: exactly 43 base64url characters whose unused low bits
/// are zero, so each key has one text form.
pub fn decode_link_key(text: &str) -> Result<FileKey, Error> {
    if text.len() != 43 {
        return Err(Error::BadLinkKey);
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::BadLinkKey)?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| Error::BadLinkKey)?;
    let key = FileKey(key);
    // Belt and braces: the engine already rejects non-zero trailing bits.
    if encode_link_key(&key) != text {
        return Err(Error::BadLinkKey);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keys_wrap_the_identity_bound_to_its_own_public_key() {
        let held = HeldKeys {
            identity: Keypair::generate(),
            master_key: MasterKey::from_bytes([9; 32]),
        };
        let wrapped = held.wrapped_identity();
        let public = held.public_key();
        let opened = held.master_key.unwrap_identity(public.as_bytes(), &wrapped).unwrap();
        assert_eq!(opened.public(), public);
        // Tried: the same bytes opened as bound to another owner. Must hold: the one OpenError.
        assert_eq!(
            held.master_key.unwrap_identity(b"someone@example.org", &wrapped).err(),
            Some(OpenError)
        );
        let file = FileId([1; 16]);
        let key = FileKey::from_bytes([2; 32]);
        let wrapped = held.identity.wrap_file_key(&file, &key);
        assert_eq!(held.file_key(&file, &wrapped).unwrap().as_bytes(), key.as_bytes());
    }

    #[test]
    fn file_keys_survive_a_password_change() {
        // A password change re-derives the master key and re-wraps only the identity key. Tried:
        // wrapping a file key before the change, opening it after with the identity unwrapped
        // under the new master key. It must open; under the old scheme (master key) it would not.
        let identity = Keypair::generate();
        let (file, key) = (FileId([3; 16]), FileKey::generate());
        let wrapped = identity.wrap_file_key(&file, &key);
        let new_master = MasterKey([42; 32]);
        let rewrapped = new_master.wrap_identity(b"account", &identity).unwrap();
        let reopened = new_master.unwrap_identity(b"account", &rewrapped).unwrap();
        assert_eq!(reopened.unwrap_file_key(&file, &wrapped).unwrap(), key);
        // Another identity does not open it, nor does the same one for another file.
        assert_eq!(Keypair::generate().unwrap_file_key(&file, &wrapped), Err(OpenError));
        assert_eq!(reopened.unwrap_file_key(&FileId([4; 16]), &wrapped), Err(OpenError));
    }
    use crate::FileId;

    fn fast_setup() -> KdfSetup {
        KdfSetup {
            params: KdfParams::MINIMUM,
            salt: [9; 16],
            form: PasswordForm::Nfkc,
        }
    }

    #[test]
    fn password_yields_distinct_stable_keys() {
        let a = derive_account_keys("correct horse", &fast_setup()).unwrap();
        let b = derive_account_keys("correct horse", &fast_setup()).unwrap();
        let c = derive_account_keys("correct horsf", &fast_setup()).unwrap();
        assert_eq!(a.auth_key, b.auth_key);
        assert_eq!(a.master_key, b.master_key);
        assert_ne!(a.auth_key.as_bytes(), a.master_key.as_bytes());
        assert_ne!(a.master_key, c.master_key);
    }

    #[test]
    fn a_password_in_another_unicode_form_opens_a_normalized_account_only() {
        // "Amélie Ｐ": é composed (U+00E9) and a full-width P, against é decomposed (e + U+0301)
        // and an ASCII P, as another keyboard or a password manager may type them.
        let composed = "Am\u{e9}lie \u{ff30}";
        let decomposed = "Ame\u{301}lie P";
        let nfkc = fast_setup();
        assert_eq!(
            derive_account_keys(composed, &nfkc).unwrap().auth_key,
            derive_account_keys(decomposed, &nfkc).unwrap().auth_key
        );
        // Accounts made before normalization (version 1) keep their exact bytes: what they were
        // made with still opens them, the other form does not.
        let as_typed = KdfSetup {
            form: PasswordForm::AsTyped,
            ..fast_setup()
        };
        let v1 = KdfSetup::decode(&as_typed.encode()).unwrap();
        assert_eq!((as_typed.encode()[4], v1.form), (1, PasswordForm::AsTyped));
        assert_ne!(
            derive_account_keys(composed, &v1).unwrap().auth_key,
            derive_account_keys(decomposed, &v1).unwrap().auth_key
        );
        assert_eq!(fast_setup().encode()[4], 2);
        // Tried: an unknown version. Must hold: refused, never guessed at.
        let mut v3 = fast_setup().encode();
        v3[4] = 3;
        assert!(matches!(
            KdfSetup::decode(&v3),
            Err(Error::UnsupportedVersion { found: 3, .. })
        ));
    }

    #[test]
    fn weak_or_huge_kdf_params_are_refused_when_read_back() {
        let mut setup = fast_setup();
        assert_eq!(KdfSetup::decode(&setup.encode()).unwrap(), setup);
        setup.params.memory_kib -= 1;
        assert_eq!(KdfSetup::decode(&setup.encode()), Err(Error::WeakKdfParams("memory")));
        assert!(derive_account_keys("pw", &setup).is_err());
        let mut setup = fast_setup();
        setup.params.iterations = 1;
        assert_eq!(
            KdfSetup::decode(&setup.encode()),
            Err(Error::WeakKdfParams("iterations"))
        );
        let mut setup = fast_setup();
        setup.params.memory_kib = u32::MAX;
        assert!(matches!(
            KdfSetup::decode(&setup.encode()),
            Err(Error::InvalidParams(_))
        ));
        let mut bytes = fast_setup().encode();
        bytes.push(0);
        assert_eq!(
            KdfSetup::decode(&bytes),
            Err(Error::TrailingBytes("key derivation set-up"))
        );
    }

    #[test]
    fn wrapped_keys_are_bound_to_their_context() {
        let master = MasterKey([1; 32]);
        let owner = Keypair::from_secret_bytes(&[2; 32]).public();
        let file = FileId([3; 16]);
        let key = FileKey([4; 32]);
        let wrapped = master.wrap_file_key(&owner, &file, &key);
        assert_eq!(wrapped.len(), WRAPPED_KEY_LEN);
        assert_eq!(master.unwrap_file_key(&owner, &file, &wrapped).unwrap(), key);
        // Tried: another file id, another owner, another master key, another purpose, each byte
        // flipped, truncation. Must hold: the same OpenError every time.
        assert_eq!(
            master.unwrap_file_key(&owner, &FileId([5; 16]), &wrapped),
            Err(OpenError)
        );
        assert_eq!(
            master.unwrap_file_key(&PublicKey([0; 32]), &file, &wrapped),
            Err(OpenError)
        );
        assert_eq!(
            MasterKey([9; 32]).unwrap_file_key(&owner, &file, &wrapped),
            Err(OpenError)
        );
        assert!(master.unwrap_identity(owner.as_bytes(), &wrapped).is_err());
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert_eq!(master.unwrap_file_key(&owner, &file, &bad), Err(OpenError), "byte {i}");
        }
        assert_eq!(master.unwrap_file_key(&owner, &file, &wrapped[..64]), Err(OpenError));
    }

    #[test]
    fn identity_round_trip_and_domain_separated_signatures() {
        let master = MasterKey([1; 32]);
        let id = Keypair::generate();
        let wrapped = master.wrap_identity(b"alice@example.com", &id).unwrap();
        let back = master.unwrap_identity(b"alice@example.com", &wrapped).unwrap();
        assert_eq!(back.public(), id.public());
        assert!(master.unwrap_identity(b"mallory@example.com", &wrapped).is_err());
        let sig = id.sign("manifest", b"m");
        assert!(id.public().verify("manifest", b"m", &sig).is_ok());
        assert_eq!(id.public().verify("token", b"m", &sig), Err(Error::BadSignature));
        assert_eq!(id.public().verify("manifest", b"n", &sig), Err(Error::BadSignature));
        assert_eq!(id.public().fingerprint().len(), 24);
    }

    #[test]
    fn link_keys_are_canonical() {
        let key = FileKey([0xAB; 32]);
        let text = encode_link_key(&key);
        assert_eq!(text.len(), 43);
        assert_eq!(decode_link_key(&text).unwrap(), key);
        // Tried: padding, standard-alphabet characters, a changed final character that only
        // alters unused bits, wrong length, whitespace. Must hold: BadLinkKey.
        assert_eq!(decode_link_key(&format!("{text}=")), Err(Error::BadLinkKey));
        assert_eq!(decode_link_key(&text.replace('q', "+")), Err(Error::BadLinkKey));
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut alt = text.clone().into_bytes();
        let last = alt.pop().unwrap();
        let index = ALPHABET.iter().position(|&c| c == last).unwrap();
        assert_eq!(index & 0b11, 0, "the last character's two low bits are unused");
        alt.push(ALPHABET[index + 1]);
        let alt = String::from_utf8(alt).unwrap();
        assert_eq!(decode_link_key(&alt), Err(Error::BadLinkKey));
        assert_eq!(decode_link_key(&text[..42]), Err(Error::BadLinkKey));
        assert_eq!(decode_link_key(&format!(" {}", &text[1..])), Err(Error::BadLinkKey));
    }

    #[test]
    fn share_password_proofs_depend_on_key_and_password() {
        let key = FileKey::generate();
        let other = FileKey::generate();
        let proof = share_password_proof(&key, "correct horse");
        assert_eq!(proof, share_password_proof(&key, "correct horse"));
        // Tried: another password, another key, a password that is a prefix. Must hold: all differ.
        assert_ne!(proof, share_password_proof(&key, "correct hors"));
        assert_ne!(proof, share_password_proof(&other, "correct horse"));
        assert_ne!(share_password_proof(&key, ""), share_password_proof(&other, ""));
    }
}
