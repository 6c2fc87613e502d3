//! The CLI's saved log-in: `session.json` in the user's config directory
//! (`$DISKTRO_CONFIG_DIR`, else `$XDG_CONFIG_HOME/disktro`, else `~/.config/disktro`), mode 0600.
//!
//! It holds the server URL, the API token and the account's identity and master keys, so commands
//! run without asking for the password again, as an SSH key or a Storj access grant does. Anyone
//! who can read the file can read the account's files: `disktro logout` revokes the token and
//! deletes it.

use std::path::PathBuf;

use disktro_core::keys::{HeldKeys, Keypair, MasterKey};
use disktro_net::durable;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ClientError;
use crate::account::Identity;
use crate::server::Server;
use disktro_core::api::Base64;

#[derive(Serialize, Deserialize)]
struct Saved {
    server: String,
    email: String,
    account_id: String,
    token: String,
    /// The identity key's 32-byte seed (base64url).
    identity: Base64,
    /// The 32-byte master key (base64url).
    master_key: Base64,
}

/// Where the session file lives.
pub fn dir() -> Result<PathBuf, ClientError> {
    if let Some(dir) = std::env::var_os("DISKTRO_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("disktro"));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".config").join("disktro"))
        .ok_or_else(|| ClientError::Usage("no config directory: set HOME or DISKTRO_CONFIG_DIR".to_owned()))
}

fn file() -> Result<PathBuf, ClientError> {
    Ok(dir()?.join("session.json"))
}

fn io(what: &str, e: std::io::Error) -> ClientError {
    ClientError::Io(format!("{what}: {e}"))
}

/// Save a log-in (replacing any other), readable by the user only.
pub fn save(server: &Server, me: &Identity) -> Result<(), ClientError> {
    let dir = dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
    let saved = Saved {
        server: server.url().to_owned(),
        email: me.email.clone(),
        account_id: me.account_id.clone(),
        token: me.token.clone(),
        identity: Base64::from(me.keys.identity.secret_bytes().as_ref()),
        master_key: Base64::from(*me.keys.master_key.as_bytes()),
    };
    let text = Zeroizing::new(serde_json::to_vec_pretty(&saved).expect("plain strings serialise"));
    let target = file()?;
    durable::replace_as(&target, &text, durable::Access::OwnerOnly)
        .map_err(|e| io(&format!("cannot write {}", target.display()), e))
}

/// The saved log-in, or `None` when there is none.
pub fn load() -> Result<Option<(Server, Identity)>, ClientError> {
    let path = file()?;
    let text = match std::fs::read(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&format!("cannot read {}", path.display()), e)),
    };
    let damaged = || ClientError::Usage(format!("{} is damaged: log in again", path.display()));
    let saved: Saved = serde_json::from_slice(&text).map_err(|_| damaged())?;
    let key32 = |key: &Base64| -> Result<Zeroizing<[u8; 32]>, ClientError> {
        let bytes: [u8; 32] = key.as_bytes().try_into().map_err(|_| damaged())?;
        Ok(Zeroizing::new(bytes))
    };
    let identity = Keypair::from_secret_bytes(&*key32(&saved.identity)?);
    let master_key = MasterKey::from_bytes(*key32(&saved.master_key)?);
    let server = Server::new(&saved.server)?.with_token(&saved.token);
    Ok(Some((
        server,
        Identity {
            account_id: saved.account_id,
            email: saved.email,
            token: saved.token,
            keys: HeldKeys { identity, master_key },
            recovery_key: None,
        },
    )))
}

/// Forget the saved log-in.
pub fn remove() -> Result<(), ClientError> {
    match std::fs::remove_file(file()?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot delete the session file", e)),
    }
}
