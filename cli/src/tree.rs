//! The account's folder tree, opened on this machine: the server keeps each folder's parent and
//! sealed name (`GET /folders`); the names open here with the account's keys, and paths
//! (`/photos/2024`, `photos/2024`: always from the top) resolve against them. A file's path is its
//! folder's and its own name, from its sealed metadata.

use std::collections::HashMap;

use disktro_core::FolderId;
use disktro_core::api::{Base64, FileSummary, NewFolder, Rename};
use disktro_core::folder;
use disktro_core::metadata::FileMetadata;

use crate::ClientError;
use crate::account::Identity;
use crate::server::Server;

/// One folder, its name opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: FolderId,
    pub parent: Option<FolderId>,
    pub name: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
}

/// What a path names.
#[derive(Debug, Clone)]
pub enum Item {
    /// The top of the tree, or a folder.
    Folder(Option<FolderId>),
    File(Box<FileSummary>),
}

/// The account's folders with their names opened.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    folders: HashMap<FolderId, Folder>,
}

/// The parts of a path: `/a/b/`, `a/b` and `a//b` are all `["a", "b"]`; the top is `[]`.
pub fn parts(path: &str) -> Vec<&str> {
    path.split('/').filter(|p| !p.is_empty()).collect()
}

impl Tree {
    /// Read the account's folders and open their names. A name that does not open (not this
    /// account's sealing) is an integrity failure: the server changed something.
    pub async fn load(server: &Server, me: &Identity) -> Result<Self, ClientError> {
        let list = server.folders().await?;
        let mut folders = HashMap::with_capacity(list.folders.len());
        for f in list.folders {
            let name = folder::open_name(&me.keys, &f.folder_id, &f.metadata, &f.wrapped_key).map_err(|_| {
                ClientError::Integrity(format!(
                    "the name of folder {} does not open with this account's keys",
                    f.folder_id
                ))
            })?;
            folders.insert(
                f.folder_id,
                Folder {
                    id: f.folder_id,
                    parent: f.parent_id,
                    created_at: f.created_at,
                    name,
                },
            );
        }
        Ok(Self { folders })
    }

    /// The folders directly in `parent`, by name.
    pub fn children(&self, parent: Option<FolderId>) -> Vec<&Folder> {
        let mut out: Vec<&Folder> = self.folders.values().filter(|f| f.parent == parent).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    /// The folder named `name` in `parent`.
    pub fn child(&self, parent: Option<FolderId>, name: &str) -> Option<&Folder> {
        self.children(parent).into_iter().find(|f| f.name == name)
    }

    pub fn get(&self, id: &FolderId) -> Option<&Folder> {
        self.folders.get(id)
    }

    /// The folder at `path` (`None`: the top), if every part of it is a folder.
    pub fn folder_at(&self, path: &str) -> Option<Option<FolderId>> {
        let mut at = None;
        for part in parts(path) {
            at = Some(self.child(at, part)?.id);
        }
        Some(at)
    }

    /// `/a/b` for folder `id` (`/` for the top).
    pub fn path_of(&self, id: Option<FolderId>) -> String {
        let mut names = Vec::new();
        let mut at = id;
        // A cycle cannot come from the server (moves are checked there); bounded all the same.
        while let Some(f) = at.and_then(|id| self.folders.get(&id)) {
            names.push(f.name.as_str());
            at = f.parent;
            if names.len() > self.folders.len() {
                break;
            }
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// Whether `id` is `ancestor` or below it.
    pub fn is_within(&self, id: Option<FolderId>, ancestor: FolderId) -> bool {
        let mut at = id;
        for _ in 0..=self.folders.len() {
            match at {
                Some(f) if f == ancestor => return true,
                Some(f) => at = self.folders.get(&f).and_then(|f| f.parent),
                None => return false,
            }
        }
        false
    }

    /// Make folder `name` in `parent` (sealed here), and note it.
    pub async fn make(
        &mut self,
        server: &Server,
        me: &Identity,
        parent: Option<FolderId>,
        name: &str,
    ) -> Result<FolderId, ClientError> {
        let id = FolderId::random();
        let sealed = folder::seal_name(&me.keys.identity, &id, name)
            .map_err(|e| ClientError::Usage(format!("folder name {name:?}: {e}")))?;
        server
            .create_folder(&NewFolder {
                folder_id: id,
                parent_id: parent,
                metadata: Base64::new(sealed.metadata),
                wrapped_key: Base64::new(sealed.wrapped_key),
            })
            .await?;
        self.folders.insert(
            id,
            Folder {
                id,
                parent,
                name: name.to_owned(),
                created_at: disktro_net::unix_now() as i64,
            },
        );
        Ok(id)
    }

    /// The folder at `path`, made (with every missing folder above it) where it is not there.
    pub async fn make_all(
        &mut self,
        server: &Server,
        me: &Identity,
        path: &str,
    ) -> Result<Option<FolderId>, ClientError> {
        let mut at = None;
        for part in parts(path) {
            at = Some(match self.child(at, part) {
                Some(f) => f.id,
                None => self.make(server, me, at, part).await?,
            });
        }
        Ok(at)
    }

    /// Give folder `id` a new name (sealed anew) and note it.
    pub async fn rename(
        &mut self,
        server: &Server,
        me: &Identity,
        id: FolderId,
        name: &str,
    ) -> Result<(), ClientError> {
        let sealed = folder::seal_name(&me.keys.identity, &id, name)
            .map_err(|e| ClientError::Usage(format!("folder name {name:?}: {e}")))?;
        server
            .rename_folder(
                &id,
                &Rename {
                    metadata: Base64::new(sealed.metadata),
                    wrapped_key: Some(Base64::new(sealed.wrapped_key)),
                },
            )
            .await?;
        if let Some(f) = self.folders.get_mut(&id) {
            f.name = name.to_owned();
        }
        Ok(())
    }

    /// Note that folder `id` is now in `parent`.
    pub fn moved(&mut self, id: FolderId, parent: Option<FolderId>) {
        if let Some(f) = self.folders.get_mut(&id) {
            f.parent = parent;
        }
    }

    /// What `path` names: a folder, or a file (by name in its folder). `None` when nothing is
    /// there; two files of one name in one folder are a usage error naming their ids.
    pub async fn resolve(&self, server: &Server, me: &Identity, path: &str) -> Result<Option<Item>, ClientError> {
        if let Some(folder) = self.folder_at(path) {
            return Ok(Some(Item::Folder(folder)));
        }
        let all = parts(path);
        let Some((name, above)) = all.split_last() else {
            return Ok(Some(Item::Folder(None)));
        };
        let Some(folder) = self.folder_at(&above.join("/")) else {
            return Ok(None);
        };
        let mut found: Vec<FileSummary> = Vec::new();
        for f in server.files_in(folder.as_ref()).await?.files {
            if file_name(me, &f).as_deref() == Some(*name) {
                found.push(f);
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop().map(|f| Item::File(Box::new(f)))),
            _ => Err(ClientError::Usage(format!(
                "{path} names {} files: use an id ({})",
                found.len(),
                found.iter().map(|f| f.file_id.to_hex()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// A listed file's name, from its sealed metadata (`None` when it does not open).
pub fn file_name(me: &Identity, f: &FileSummary) -> Option<String> {
    file_metadata(me, f).map(|m| m.name)
}

/// A listed file's metadata, opened.
pub fn file_metadata(me: &Identity, f: &FileSummary) -> Option<FileMetadata> {
    let key = me.file_key(&f.file_id, Some(&f.wrapped_key)).ok()?;
    FileMetadata::open(&f.metadata, &key, &f.file_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(folders: &[(u8, Option<u8>, &str)]) -> Tree {
        let id = |n: u8| FolderId([n; 16]);
        Tree {
            folders: folders
                .iter()
                .map(|&(n, parent, name)| {
                    (
                        id(n),
                        Folder {
                            id: id(n),
                            parent: parent.map(id),
                            name: name.to_owned(),
                            created_at: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn paths_resolve_from_the_top_whatever_their_slashes() {
        let t = tree(&[
            (1, None, "photos"),
            (2, Some(1), "2024"),
            (3, None, "docs"),
            (4, Some(3), "2024"),
        ]);
        assert_eq!(t.folder_at("/"), Some(None));
        assert_eq!(t.folder_at(""), Some(None));
        assert_eq!(t.folder_at("/photos/2024/"), Some(Some(FolderId([2; 16]))));
        assert_eq!(t.folder_at("docs//2024"), Some(Some(FolderId([4; 16]))));
        assert_eq!(t.folder_at("/photos/2025"), None);
        assert_eq!(t.path_of(Some(FolderId([4; 16]))), "/docs/2024");
        assert_eq!(t.path_of(None), "/");
        assert!(t.is_within(Some(FolderId([2; 16])), FolderId([1; 16])));
        assert!(!t.is_within(Some(FolderId([4; 16])), FolderId([1; 16])));
        assert_eq!(
            t.children(None).iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["docs", "photos"]
        );
    }
}
