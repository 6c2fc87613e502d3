//! Zero-knowledge accounts. The client turns the password into an auth key and a master key
//! (`core::keys::derive_account_keys`, Argon2id in the browser or CLI); the server receives only
//! the auth key, which it hashes again with its own Argon2id and salt, and the client's KDF set-up
//! and wrapped identity key, which it hands back at log-in. It never sees a password or a key that
//! opens anything.
//!
//! Unknown e-mail addresses get a **decoy** KDF set-up (a salt derived from the server key and the
//! address), so the pre-login step does not tell who has an account; a failed log-in answers the
//! same for a wrong password and an unknown address.

use disktro_core::api::{Base64, RecoverySetup, SignUp};
use disktro_core::keys::{KdfParams, KdfSetup, Keypair};
use zeroize::Zeroizing;

use crate::db::Db;
use crate::error::ServerError;
use crate::store::{self, StoreError};
use disktro_core::api::ErrorCode;

/// Server-side Argon2id over the (already high-entropy) auth key: OWASP's minimum is plenty, the
/// input is not guessable; it only keeps a leaked table from being a list of log-in keys.
const AUTH_HASH_PARAMS: KdfParams = KdfParams::MINIMUM;
/// Longest wrapped identity accepted (the "DKWK" format is 65 bytes; room for a future version).
const MAX_WRAPPED: usize = 512;

pub use crate::store::accounts::Account;

/// Trimmed, lower-cased, plausibly an address.
pub fn normalize_email(email: &str) -> Result<String, ServerError> {
    let e = email.trim().to_lowercase();
    let valid = (3..=254).contains(&e.len())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(ServerError::refused(
            ErrorCode::InvalidEmail,
            "that does not look like an e-mail address",
        ))
    }
}

/// The 32-byte auth key (or another 32-byte secret, named `field`).
pub fn auth_key(value: &Base64, field: &str) -> Result<Zeroizing<[u8; 32]>, ServerError> {
    let key: [u8; 32] = value
        .as_bytes()
        .try_into()
        .map_err(|_| ServerError::refused(ErrorCode::InvalidField, format!("{field} must be 32 bytes")))?;
    Ok(Zeroizing::new(key))
}

/// Argon2 runs at once, server-wide. Each holds its memory (19 MiB for auth keys) for its whole
/// run, so a burst of sign-ups, log-ins or share passwords waits here for a turn instead of
/// growing the server by 19 MiB per request (20 concurrent sign-ups once took +324 MiB).
/// Their working memory is reused ([`ARGON2_MEMORY`]).
static ARGON2_RUNS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    tokio::sync::Semaphore::new(cores.max(2))
});

/// Run `work` (which runs Argon2) on the blocking pool, at most one per core at a time.
pub async fn with_argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ServerError> {
    let _turn = ARGON2_RUNS
        .acquire()
        .await
        .map_err(|_| ServerError::internal("the Argon2 queue closed"))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ServerError::internal("a password check failed to run"))
}

/// Argon2's working memory, kept between runs: one buffer per run at a time, so the server holds
/// at most [`ARGON2_RUNS`] of them. (Freshly allocated, each run's 19 MiB was kept by the
/// allocator in the arena of whichever blocking thread ran it, and a burst grew the server by
/// its whole size even with two runs at a time.)
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// Argon2id of `secret` with `salt` under `params` into `out`, in reused working memory.
fn argon2id(params: KdfParams, secret: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(out.len()),
    )?;
    let blocks = p.block_count();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let pool = || ARGON2_MEMORY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut memory = pool().pop().unwrap_or_default();
    memory.resize(blocks, argon2::Block::default());
    let result = argon.hash_password_into_with_memory(secret, salt, out, &mut memory[..blocks]);
    pool().push(memory);
    result
}

/// `argon2id$m$t$p$salt$hash` (hex).
pub fn hash_auth_key(key: &[u8; 32]) -> String {
    let salt: [u8; 16] = disktro_core::random_bytes();
    let p = AUTH_HASH_PARAMS;
    let mut out = [0u8; 32];
    argon2id(p, key, &salt, &mut out).expect("the auth-hash parameters are valid");
    format!(
        "argon2id${}${}${}${}${}",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        disktro_core::ids::to_hex(&salt),
        disktro_core::ids::to_hex(&out)
    )
}

/// Whether `key` matches a stored hash (compared in equal time).
pub fn verify_auth_key(stored: &str, key: &[u8; 32]) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, m, t, p, salt, hash] = parts[..] else {
        return false;
    };
    let (Ok(m), Ok(t), Ok(p)) = (m.parse(), t.parse(), p.parse()) else {
        return false;
    };
    let Ok(salt) = disktro_core::ids::from_hex::<16>(salt) else {
        return false;
    };
    let params = KdfParams {
        memory_kib: m,
        iterations: t,
        parallelism: p,
    };
    let mut out = [0u8; 32];
    if argon2id(params, key, &salt, &mut out).is_err() {
        return false;
    }
    crate::same_secret(disktro_core::ids::to_hex(&out).as_bytes(), hash.as_bytes())
}

/// A stable, plausible KDF set-up for an address with no account.
pub fn decoy_setup(server_key: &Keypair, email: &str) -> KdfSetup {
    let secret = server_key.secret_bytes();
    let mut hasher = blake3::Hasher::new_derive_key("disktro decoy kdf salt v1");
    hasher.update(secret.as_ref());
    hasher.update(email.as_bytes());
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    KdfSetup {
        params: KdfParams::DEFAULT,
        salt,
        form: disktro_core::keys::PasswordForm::Nfkc,
    }
}

/// Validate a sign-up; returns the normalized address and the server-side auth hash.
pub fn check_sign_up(s: &SignUp) -> Result<(String, String), ServerError> {
    let email = normalize_email(&s.email)?;
    let setup = KdfSetup::decode(&s.kdf_setup).map_err(|e| {
        ServerError::refused(
            ErrorCode::WeakKdf,
            format!("the key-derivation set-up is not acceptable: {e}"),
        )
    })?;
    // New set-ups normalize passwords (the decoys of unknown addresses do too, so a version-1
    // set-up only ever belongs to an account made before normalization).
    if setup.form != disktro_core::keys::PasswordForm::Nfkc {
        return Err(ServerError::refused(
            ErrorCode::WeakKdf,
            "new key-derivation set-ups must normalize passwords (version 2); reload the page or update the CLI",
        ));
    }
    let wrapped = &s.wrapped_identity;
    if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "wrapped_identity has an impossible length",
        ));
    }
    let key = auth_key(&s.auth_key, "auth_key")?;
    Ok((email, hash_auth_key(&key)))
}

/// Insert; `None` when the address is taken.
/// Check a recovery key's part: returns the hash of its auth key, the form the server keeps.
pub fn check_recovery(r: &RecoverySetup) -> Result<String, ServerError> {
    if r.wrapped_identity.is_empty() || r.wrapped_identity.len() > MAX_WRAPPED {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "recovery.wrapped_identity has an impossible length",
        ));
    }
    Ok(recovery_hash(&*auth_key(&r.auth_key, "recovery.auth_key")?))
}

/// What the server keeps of a recovery auth key: its BLAKE3 hash. The key is 256 bits from a
/// random recovery key, so no slow hash is needed against guessing.
pub fn recovery_hash(key: &[u8; 32]) -> String {
    blake3::hash(key).to_hex().to_string()
}

/// Whether `key` is the recovery auth key whose hash is `hash`, compared in constant time.
pub fn verify_recovery(hash: &str, key: &[u8; 32]) -> bool {
    let expected = blake3::hash(key);
    disktro_core::ids::from_hex::<32>(hash).is_ok_and(|h| expected == blake3::Hash::from_bytes(h))
}

pub async fn create(
    db: &Db,
    s: &SignUp,
    email: &str,
    auth_hash: &str,
    recovery_hash: Option<&str>,
    quota: i64,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let id = disktro_core::ids::to_hex(&disktro_core::random_bytes::<16>());
    let created = store::accounts::create(
        db,
        &store::accounts::NewAccount {
            id: &id,
            email,
            kdf_setup: &s.kdf_setup,
            auth_hash,
            wrapped_identity: &s.wrapped_identity,
            public_key: &s.public_key,
            quota_bytes: quota,
            created_at: now,
            recovery: recovery_hash.zip(s.recovery.as_ref().map(|r| &r.wrapped_identity)),
        },
    )
    .await?;
    Ok(created.then_some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_hashes_verify_only_the_right_key() {
        let key = [7u8; 32];
        let stored = hash_auth_key(&key);
        assert!(verify_auth_key(&stored, &key));
        assert!(!verify_auth_key(&stored, &[8u8; 32]));
        assert!(!verify_auth_key("argon2id$1$1$1$zz$zz", &key));
        assert_ne!(stored, hash_auth_key(&key), "salted");
    }

    #[test]
    fn emails_are_normalized_or_refused() {
        assert_eq!(normalize_email("  Ada@Example.ORG ").unwrap(), "ada@example.org");
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "ada@org",
            "a da@example.org",
            "ada@.example.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decoys_are_stable_per_address() {
        let k = Keypair::generate();
        assert_eq!(decoy_setup(&k, "a@b.c"), decoy_setup(&k, "a@b.c"));
        assert_ne!(decoy_setup(&k, "a@b.c").salt, decoy_setup(&k, "b@b.c").salt);
    }
}
