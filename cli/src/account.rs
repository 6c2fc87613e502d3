//! Accounts from the client side: the password becomes keys here (Argon2id, then HKDF into an auth
//! key for the server and a master key that never leaves), and the identity key is unwrapped here.
//!
//! The identity key is wrapped under the master key bound to the account's identity public key
//! (stable for the account's life, unlike an e-mail address), and a second time under the
//! recovery key's master key ([`disktro_core::recovery`]), made at sign-up.

use disktro_core::api::{Base64, LogIn, Recover, RecoverStart, RecoverySetup, SetRecovery, SignUp};
use disktro_core::keys::{HeldKeys, KdfParams, KdfSetup, Keypair, MasterKey, PublicKey, derive_account_keys};
use disktro_core::recovery::RecoveryKey;
use disktro_core::{FileId, FileKey};

use crate::ClientError;
use crate::server::{Opened, Server};

/// What an authenticated client holds: the API token and the keys that never leave this machine.
pub struct Identity {
    pub account_id: String,
    pub email: String,
    pub token: String,
    pub keys: HeldKeys,
    /// The recovery key made at sign-up: shown to the user once, never saved.
    pub recovery_key: Option<RecoveryKey>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("public_key", &self.keys.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The key of one of this account's files, from its id and wrapped key as the server lists
    /// them; `None` for the wrapped key (an answer that left it out) is refused like a bad one.
    pub fn file_key(&self, id: &FileId, wrapped: Option<&[u8]>) -> Result<FileKey, ClientError> {
        self.keys
            .file_key(id, wrapped.unwrap_or_default())
            .map_err(|_| ClientError::Integrity("the file key does not open with this account's keys".to_owned()))
    }
}

async fn derive(password: String, setup: KdfSetup) -> Result<disktro_core::keys::AccountKeys, ClientError> {
    tokio::task::spawn_blocking(move || derive_account_keys(&password, &setup))
        .await
        .map_err(|_| ClientError::Integrity("key derivation failed".to_owned()))?
        .map_err(|e| ClientError::Integrity(format!("key derivation: {e}")))
}

/// Create an account; `params` are the Argon2id costs (the default for people, the minimum in
/// tests). Returns the identity with an API token named `token_name`.
pub async fn signup(
    server: &Server,
    email: &str,
    password: &str,
    params: KdfParams,
    token_name: &str,
) -> Result<Identity, ClientError> {
    let setup = KdfSetup {
        params,
        salt: disktro_core::random_bytes(),
        form: disktro_core::keys::PasswordForm::Nfkc,
    };
    let keys = derive(password.to_owned(), setup).await?;
    let keypair = Keypair::generate();
    let public = keypair.public();
    let wrapped = keys
        .master_key
        .wrap_identity(public.as_bytes(), &keypair)
        .map_err(|e| ClientError::Integrity(format!("wrapping the identity key: {e}")))?;
    let recovery_key = RecoveryKey::generate();
    let body = SignUp {
        email: email.to_owned(),
        kdf_setup: Base64::new(setup.encode()),
        auth_key: Base64::from(*keys.auth_key.as_bytes()),
        wrapped_identity: Base64::new(wrapped),
        public_key: public,
        recovery: Some(recovery_setup(&recovery_key, &keypair)?),
    };
    let opened = server.signup(&body).await?;
    let mut me = finish(server, opened, keypair, keys.master_key, token_name).await?;
    me.recovery_key = Some(recovery_key);
    Ok(me)
}

/// What the server keeps of `key` for the account whose identity is `identity`.
fn recovery_setup(key: &RecoveryKey, identity: &Keypair) -> Result<RecoverySetup, ClientError> {
    let wrapped = key
        .master_key()
        .wrap_identity(identity.public().as_bytes(), identity)
        .map_err(|e| ClientError::Integrity(format!("wrapping the identity key: {e}")))?;
    Ok(RecoverySetup {
        auth_key: Base64::from(*key.auth_key().as_bytes()),
        wrapped_identity: Base64::new(wrapped),
    })
}

/// Set a new password with the recovery key (the old one forgotten): the identity key comes back
/// from its recovery wrapping and is wrapped under the new password. Every other session and API
/// token of the account ends. Returns the identity with a new API token named `token_name`.
pub async fn recover(
    server: &Server,
    email: &str,
    key: &RecoveryKey,
    new_password: &str,
    params: KdfParams,
    token_name: &str,
) -> Result<Identity, ClientError> {
    let recovery_auth_key = Base64::from(*key.auth_key().as_bytes());
    let answer = server
        .recover_start(&RecoverStart {
            email: email.to_owned(),
            recovery_auth_key: recovery_auth_key.clone(),
        })
        .await?;
    let keypair = key
        .master_key()
        .unwrap_identity(answer.public_key.as_bytes(), &answer.wrapped_identity)
        .map_err(|_| ClientError::Integrity("the identity key does not open with this recovery key".to_owned()))?;
    if keypair.public() != answer.public_key {
        return Err(ClientError::Integrity(
            "the identity key does not match the account's public key".to_owned(),
        ));
    }
    let setup = KdfSetup {
        params,
        salt: disktro_core::random_bytes(),
        form: disktro_core::keys::PasswordForm::Nfkc,
    };
    let keys = derive(new_password.to_owned(), setup).await?;
    let wrapped = keys
        .master_key
        .wrap_identity(answer.public_key.as_bytes(), &keypair)
        .map_err(|e| ClientError::Integrity(format!("wrapping the identity key: {e}")))?;
    let opened = server
        .recover(&Recover {
            email: email.to_owned(),
            recovery_auth_key,
            new_kdf_setup: Base64::new(setup.encode()),
            new_auth_key: Base64::from(*keys.auth_key.as_bytes()),
            new_wrapped_identity: Base64::new(wrapped),
        })
        .await?;
    finish(server, opened, keypair, keys.master_key, token_name).await
}

/// Make a new recovery key for the logged-in account (`server` carries its token), replacing any
/// earlier one; `password` proves the owner. Returns the key to show the user.
pub async fn new_recovery_key(server: &Server, me: &Identity, password: &str) -> Result<RecoveryKey, ClientError> {
    let setup = server.prelogin(&me.email).await?;
    let setup = KdfSetup::decode(&setup.kdf_setup)
        .map_err(|e| ClientError::Integrity(format!("the server's key set-up is not acceptable: {e}")))?;
    let keys = derive(password.to_owned(), setup).await?;
    let key = RecoveryKey::generate();
    server
        .set_recovery(&SetRecovery {
            auth_key: Base64::from(*keys.auth_key.as_bytes()),
            recovery: recovery_setup(&key, &me.keys.identity)?,
        })
        .await?;
    Ok(key)
}

/// Log in: fetch the KDF set-up, derive, prove the auth key, unwrap the identity key.
pub async fn login(server: &Server, email: &str, password: &str, token_name: &str) -> Result<Identity, ClientError> {
    let setup = server.prelogin(email).await?;
    let setup = KdfSetup::decode(&setup.kdf_setup)
        .map_err(|e| ClientError::Integrity(format!("the server's key set-up is not acceptable: {e}")))?;
    let keys = derive(password.to_owned(), setup).await?;
    let opened = server
        .login(&LogIn {
            email: email.to_owned(),
            auth_key: Base64::from(*keys.auth_key.as_bytes()),
        })
        .await?;
    let public = opened.session.public_key;
    let wrapped = &opened.session.wrapped_identity;
    let keypair = keys
        .master_key
        .unwrap_identity(public.as_bytes(), wrapped)
        .map_err(|_| ClientError::Integrity("the identity key does not open with this password".to_owned()))?;
    if keypair.public() != public {
        return Err(ClientError::Integrity(
            "the identity key does not match the account's public key".to_owned(),
        ));
    }
    finish(server, opened, keypair, keys.master_key, token_name).await
}

async fn finish(
    server: &Server,
    opened: Opened,
    keypair: Keypair,
    master_key: MasterKey,
    token_name: &str,
) -> Result<Identity, ClientError> {
    let token = server.mint_token(&opened, token_name).await?;
    Ok(Identity {
        account_id: opened.session.account_id.clone(),
        email: opened.session.email.clone(),
        token,
        keys: HeldKeys {
            identity: keypair,
            master_key,
        },
        recovery_key: None,
    })
}
