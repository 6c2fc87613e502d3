//! The gateway's access keys: what S3 clients sign with (`disktro gateway keys create|ls|rm`).
//!
//! They live in `gateway-keys.json` beside the saved log-in (mode 0600), keyed by the account they
//! belong to, because a SigV4 check needs the secret itself and the gateway runs on this machine
//! with the account's keys anyway. The gateway reads the file on every request, so `rm` takes
//! effect at once without a restart. An access key opens only the account of the log-in it was
//! made under: after logging in as another account, its keys are not listed and do not verify.

use std::path::PathBuf;

use disktro_net::durable;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ClientError;

/// One access key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Whose account it opens.
    pub account_id: String,
    /// When it was made (Unix seconds).
    pub created: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    keys: Vec<AccessKey>,
}

fn file() -> Result<PathBuf, ClientError> {
    Ok(crate::session::dir()?.join("gateway-keys.json"))
}

fn read() -> Result<Stored, ClientError> {
    let path = file()?;
    match std::fs::read(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            serde_json::from_slice(&text).map_err(|e| {
                ClientError::Usage(format!(
                    "{} is damaged ({e}): remove it and make new keys",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(e) => Err(ClientError::Io(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write(stored: &Stored) -> Result<(), ClientError> {
    let path = file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    let text = Zeroizing::new(serde_json::to_vec_pretty(stored).expect("plain strings serialise"));
    durable::replace_as(&path, &text, durable::Access::OwnerOnly)
        .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", path.display())))
}

/// Make a new access key for `account_id`.
pub fn create(account_id: &str) -> Result<AccessKey, ClientError> {
    const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id_bytes: [u8; 18] = disktro_core::random_bytes();
    let access_key_id = format!(
        "DK{}",
        id_bytes
            .iter()
            .map(|b| char::from(ID_ALPHABET[usize::from(b % 32)]))
            .collect::<String>()
    );
    let secret: [u8; 30] = disktro_core::random_bytes();
    let key = AccessKey {
        access_key_id,
        secret_access_key: disktro_core::api::Base64::from(secret.as_slice()).encode(),
        account_id: account_id.to_owned(),
        created: disktro_net::unix_now(),
    };
    let mut stored = read()?;
    stored.keys.push(key.clone());
    write(&stored)?;
    Ok(key)
}

/// The access keys of `account_id`.
pub fn list(account_id: &str) -> Result<Vec<AccessKey>, ClientError> {
    Ok(read()?
        .keys
        .into_iter()
        .filter(|k| k.account_id == account_id)
        .collect())
}

/// Revoke an access key of `account_id`; `false` when it has none of that id.
pub fn remove(account_id: &str, access_key_id: &str) -> Result<bool, ClientError> {
    let mut stored = read()?;
    let before = stored.keys.len();
    stored
        .keys
        .retain(|k| !(k.account_id == account_id && k.access_key_id == access_key_id));
    if stored.keys.len() == before {
        return Ok(false);
    }
    write(&stored)?;
    Ok(true)
}

/// The secret of `access_key_id` when it belongs to `account_id`.
pub fn secret(account_id: &str, access_key_id: &str) -> Option<String> {
    read()
        .ok()?
        .keys
        .into_iter()
        .find(|k| k.account_id == account_id && k.access_key_id == access_key_id)
        .map(|k| k.secret_access_key)
}
