//! Ed25519 keys kept in a data directory, created on first start with owner-only permissions: a
//! worker's node identity (`node.key`; the node id is derived from its public key, so it is stable
//! across restarts and moves with the data) and the server's token-signing key.
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

use crate::durable;

const MAGIC: &[u8; 4] = b"DKNK";
/// The worker's node key.
pub const NODE_KEY_FILE: &str = "node.key";
const FILE_LEN: usize = 4 + 1 + 32;

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("key file {0} is damaged; refusing to replace it with a new key")]
    Damaged(PathBuf),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Load the worker's node key from `data_dir`, or create it if there is none. Returns the key and whether
/// it was created now.
pub fn load_or_create(data_dir: &Path) -> Result<(Keypair, bool), KeyFileError> {
    load_or_create_file(data_dir, NODE_KEY_FILE)
}

/// The same for a key kept under another file name (the server's token key is one).
pub fn load_or_create_file(data_dir: &Path, file_name: &str) -> Result<(Keypair, bool), KeyFileError> {
    let path = data_dir.join(file_name);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| KeyFileError::Io { op, path, source }
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() != FILE_LEN || &bytes[..4] != MAGIC || bytes[4] != disktro_core::FORMAT_VERSION {
                return Err(KeyFileError::Damaged(path));
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
            durable::replace_as(&path, &bytes, durable::Access::OwnerOnly).map_err(io("write", &path))?;
            Ok((key, true))
        }
        Err(e) => Err(io("read", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format_is_the_one_format_md_states() {
        // FORMAT.md's magics table names this file's magic; its layout line gives the length.
        let spec = include_str!("../../FORMAT.md");
        let magic = std::str::from_utf8(MAGIC).unwrap();
        assert!(
            spec.contains(&format!("| node key file | {magic} |")),
            "FORMAT.md magics table"
        );
        assert!(
            spec.contains(&format!("\"{magic}\" 0x01 seed[32]")),
            "FORMAT.md node key file layout"
        );
        assert_eq!(FILE_LEN, 4 + 1 + 32);
    }

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
            let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
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
        let path = dir.path().join(NODE_KEY_FILE);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(KeyFileError::Damaged(_))));
        assert_eq!(std::fs::read(&path).unwrap().len(), 20);
        let mut other = good.clone();
        other[0] = b'X';
        std::fs::write(&path, &other).unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(KeyFileError::Damaged(_))));
    }
}
