//! Folders: an account's tree, with every name sealed so the server learns only its shape.
//!
//! A folder is a random [`FolderId`], its parent's id (none at the top) and its name, sealed the
//! way a file's name is: each folder has a key of its own, wrapped under the owner's identity for
//! the **folder** purpose and bound to the folder's id ([`crate::keys::KeyPurpose::Folder`]), and
//! the name is sealed under it in the padded metadata format ([`FileMetadata`] with the type
//! [`FOLDER_MIME`] and size 0), so every sealed name has the same length class as a file's. A
//! folder's wrapped key never opens as a file's (other purpose), so a server cannot pass a folder
//! off as a file or the other way round.
//!
//! The server keeps the tree (which folder is in which, which file in which folder) and lists a
//! folder's children by its id: it learns the tree's shape and how many files and folders each
//! holds, never a name. Renaming seals a new name (under a new key); moving changes a parent id.
//! Neither touches a file's shards.

use crate::keys::{FileKey, HeldKeys, Keypair};
use crate::metadata::{FileMetadata, MAX_NAME_LEN};
use crate::{Error, FileId, FolderId, OpenError};

/// The type a folder's sealed name states.
pub const FOLDER_MIME: &str = "inode/directory";

/// A folder's name as the server keeps it: sealed, with the key that opens it wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedName {
    /// Padded sealed metadata ("DKMD" version 2).
    pub metadata: Vec<u8>,
    /// The folder's key wrapped under the owner's identity ("DKWK", purpose folder).
    pub wrapped_key: Vec<u8>,
}

/// Whether `name` can name a file or folder in a path: not empty, not `.` or `..`, no `/` (the
/// separator) or NUL, at most [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Error::InvalidParams(
            "a name is not empty, not . or .., and has no / or NUL",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::too_large("folder name", name.len(), MAX_NAME_LEN));
    }
    Ok(())
}

/// Seal `name` for folder `id` of the owner `identity`, under a fresh folder key.
pub fn seal_name(identity: &Keypair, id: &FolderId, name: &str) -> Result<SealedName, Error> {
    check_name(name)?;
    let key = FileKey::generate();
    let metadata = FileMetadata {
        name: name.to_owned(),
        mime: FOLDER_MIME.to_owned(),
        size: 0,
        attributes: Vec::new(),
    }
    .seal(&key, &as_file_id(id))?;
    Ok(SealedName {
        metadata,
        wrapped_key: identity.wrap_folder_key(id, &key),
    })
}

/// Open the sealed name of the account's folder `id`. Every failure (another account's folder, a
/// file's metadata, altered bytes) is the one [`OpenError`].
pub fn open_name(keys: &HeldKeys, id: &FolderId, metadata: &[u8], wrapped_key: &[u8]) -> Result<String, OpenError> {
    let key = keys.folder_key(id, wrapped_key)?;
    let opened = FileMetadata::open(metadata, &key, &as_file_id(id))?;
    if opened.mime != FOLDER_MIME || check_name(&opened.name).is_err() {
        return Err(OpenError);
    }
    Ok(opened.name)
}

/// The id the metadata format binds a sealed name to (the folder key is the folder's alone).
fn as_file_id(id: &FolderId) -> FileId {
    FileId(id.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> HeldKeys {
        HeldKeys {
            identity: Keypair::generate(),
            master_key: crate::keys::MasterKey::from_bytes(crate::random_bytes()),
        }
    }

    #[test]
    fn a_sealed_name_opens_for_its_folder_and_owner_only() {
        let (me, other) = (keys(), keys());
        let id = FolderId::random();
        let sealed = seal_name(&me.identity, &id, "Photos 2024").unwrap();
        assert!(crate::metadata::is_padded_shape(&sealed.metadata));
        assert_eq!(
            open_name(&me, &id, &sealed.metadata, &sealed.wrapped_key).unwrap(),
            "Photos 2024"
        );
        // Tried: another account, another folder's id, a flipped byte. Must hold: one error.
        assert!(open_name(&other, &id, &sealed.metadata, &sealed.wrapped_key).is_err());
        assert!(open_name(&me, &FolderId::random(), &sealed.metadata, &sealed.wrapped_key).is_err());
        let mut bent = sealed.metadata.clone();
        bent[30] ^= 1;
        assert!(open_name(&me, &id, &bent, &sealed.wrapped_key).is_err());
        // Tried: the folder's key taken for a file of the same id. Must hold: it does not unwrap.
        assert!(me.file_key(&FileId(id.0), &sealed.wrapped_key).is_err());
        // Tried: a file's metadata and key offered as a folder's. Must hold: refused.
        let file_key = FileKey::generate();
        let file = FileMetadata {
            name: "x".into(),
            mime: "text/plain".into(),
            size: 1,
            attributes: Vec::new(),
        }
        .seal(&file_key, &FileId(id.0))
        .unwrap();
        let wrapped = me.identity.wrap_file_key(&FileId(id.0), &file_key);
        assert!(open_name(&me, &id, &file, &wrapped).is_err());
    }

    #[test]
    fn names_that_cannot_be_in_a_path_are_refused() {
        for bad in ["", ".", "..", "a/b", "nul\0", &"n".repeat(MAX_NAME_LEN + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
            assert!(seal_name(&Keypair::generate(), &FolderId::random(), bad).is_err());
        }
        for good in ["a", "...", "名前", "with space", &"n".repeat(MAX_NAME_LEN)] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }
}
