//! The account's keys in this tab: the identity key (signs manifests) and the master key (wraps
//! file keys), with the session's CSRF token. They are derived from the password at log-in and
//! never leave the browser; they live in `sessionStorage`, so they survive a reload but not the
//! tab, and a new tab asks for the password again. The session cookie itself is `HttpOnly`.

use crate::browser::Failure;
use disktro_core::keys::{HeldKeys, Keypair, MasterKey, PublicKey};
use disktro_core::{FileId, FileKey};
use serde::{Deserialize, Serialize};

use disktro_core::api::Base64;

const STORAGE_KEY: &str = "disktro.keyring";

/// Everything a logged-in tab holds.
pub struct Keyring {
    pub account_id: String,
    pub email: String,
    pub csrf: String,
    pub keys: HeldKeys,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The keyring as text: for `sessionStorage` and for handing to the pipeline worker.
#[derive(Serialize, Deserialize)]
pub struct KeyringWire {
    pub account_id: String,
    pub email: String,
    pub csrf: String,
    pub identity: Base64,
    pub master: Base64,
}

impl std::fmt::Debug for KeyringWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringWire")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    pub fn to_wire(&self) -> KeyringWire {
        KeyringWire {
            account_id: self.account_id.clone(),
            email: self.email.clone(),
            csrf: self.csrf.clone(),
            identity: Base64::from(self.keys.identity.secret_bytes().as_ref()),
            master: Base64::from(*self.keys.master_key.as_bytes()),
        }
    }

    pub fn from_wire(wire: &KeyringWire) -> Result<Self, Failure> {
        let identity: [u8; 32] = wire
            .identity
            .as_bytes()
            .try_into()
            .map_err(|_| Failure::invalid("the identity key is not 32 bytes"))?;
        let master: [u8; 32] = wire
            .master
            .as_bytes()
            .try_into()
            .map_err(|_| Failure::invalid("the master key is not 32 bytes"))?;
        Ok(Self {
            account_id: wire.account_id.clone(),
            email: wire.email.clone(),
            csrf: wire.csrf.clone(),
            keys: HeldKeys {
                identity: Keypair::from_secret_bytes(&identity),
                master_key: MasterKey::from_bytes(master),
            },
        })
    }

    /// The key of one of this account's files, from its id and wrapped key as the server lists them.
    pub fn file_key(&self, id: &FileId, wrapped: &[u8]) -> Result<FileKey, Failure> {
        self.keys
            .file_key(id, wrapped)
            .map_err(|_| Failure::invalid("the file key does not open with this account's keys"))
    }

    /// Keep for this tab's life.
    pub fn store(&self) {
        if let (Some(storage), Ok(text)) = (session_storage(), serde_json::to_string(&self.to_wire())) {
            let _ = storage.set_item(STORAGE_KEY, &text);
        }
    }

    /// The tab's keyring, if it logged in before.
    pub fn load() -> Option<Self> {
        let text = session_storage()?.get_item(STORAGE_KEY).ok()??;
        let wire: KeyringWire = serde_json::from_str(&text).ok()?;
        Self::from_wire(&wire).ok()
    }

    /// Forget (log-out, or the server no longer knows the session).
    pub fn forget() {
        if let Some(storage) = session_storage() {
            let _ = storage.remove_item(STORAGE_KEY);
        }
    }
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}
