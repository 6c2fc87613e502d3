//! The worker's node identity: an Ed25519 key created on first start and kept in the data
//! directory (`node.key`, owner-only permissions). The node id is derived from its public key
//! (`NodeId::from_public_key`), so it is stable across restarts and moves with the data.
//!
//! A damaged key file is an error, never a reason to make a new key: a new identity would orphan
//! every shard the server has placed on this node.
//!
//! File format: `"DKNK" version:u8 seed:[32]`.

use std::io;
use std::path::{Path, PathBuf};

use disktro_core::keys::Keypair;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::durable::{self, TempGuard};

const MAGIC: &[u8; 4] = b"DKNK";
const FILE_NAME: &str = "node.key";
const FILE_LEN: usize = 4 + 1 + 32;

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("node key file {0} is damaged; refusing to replace it with a new identity")]
    Damaged(PathBuf),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Load the node key from `data_dir`, or create it if there is none. Returns the key and whether
/// it was created now.
pub fn load_or_create(data_dir: &Path) -> Result<(Keypair, bool), IdentityError> {
    load_or_create_file(data_dir, FILE_NAME)
}

/// The same for a key kept under another file name (the server's token key is one).
pub fn load_or_create_file(data_dir: &Path, file_name: &str) -> Result<(Keypair, bool), IdentityError> {
    let path = data_dir.join(file_name);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| IdentityError::Io { op, path, source }
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() != FILE_LEN || &bytes[..4] != MAGIC || bytes[4] != disktro_core::FORMAT_VERSION {
                return Err(IdentityError::Damaged(path));
            }
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(&bytes[5..]);
            Ok((Keypair::from_secret_bytes(&seed), false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io("create directory", data_dir))?;
            let key = Keypair::generate();
            let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LEN));
            bytes.extend_from_slice(MAGIC);
            bytes.push(disktro_core::FORMAT_VERSION);
            bytes.extend_from_slice(key.secret_bytes().as_ref());
            let temp = data_dir.join(format!("{file_name}.tmp"));
            let _ = std::fs::remove_file(&temp);
            let mut guard = TempGuard::new(&temp);
            durable::write_synced(&temp, &bytes).map_err(io("write", &temp))?;
            restrict_to_owner(&temp).map_err(io("set permissions on", &temp))?;
            durable::publish(&temp, &path).map_err(io("rename into place", &path))?;
            guard.disarm();
            Ok((key, true))
        }
        Err(e) => Err(io("read", &path)(e)),
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        let (again, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(first.public(), again.public());
        assert_eq!(first.public().node_id(), again.public().node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join("node.key.tmp").exists());
    }

    #[test]
    fn damaged_key_file_is_refused_not_replaced() {
        // Tried: a truncated key file, and one with another magic. Must hold: Damaged, and the
        // file is left as it was.
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(IdentityError::Damaged(_))));
        assert_eq!(std::fs::read(&path).unwrap().len(), 20);
        let mut other = good.clone();
        other[0] = b'X';
        std::fs::write(&path, &other).unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(IdentityError::Damaged(_))));
    }
}
