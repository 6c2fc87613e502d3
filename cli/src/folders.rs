//! The `disktro` command's folder commands: `mkdir`, `mv`, `rm` and downloading a folder. Paths
//! resolve on the account's tree as this machine opens it ([`disktro_client::tree`]); the server
//! only ever sees ids.

use std::path::{Path, PathBuf};

use disktro_client::ClientError;
use disktro_client::tree::{self, Item, Tree};
use disktro_core::FileId;
use disktro_core::api::{Base64, ErrorCode, Rename};
use serde_json::json;

use super::{Cli, download_own, logged_in, safe_name, say};

/// "Nothing there" for a path, with the not-found exit code.
pub fn not_found(path: &str) -> ClientError {
    ClientError::Api {
        status: 404,
        code: ErrorCode::FolderNotFound,
        message: format!("nothing at {path}"),
    }
}

/// `disktro mkdir [-p] PATH`.
pub async fn mkdir(cli: &Cli, path: &str, parents: bool) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let mut tree = Tree::load(&server, &me).await?;
    let parts = tree::parts(path);
    let Some((name, above)) = parts.split_last() else {
        return Err(ClientError::Usage("the top of the tree is always there".to_owned()));
    };
    let id = if parents {
        tree.make_all(&server, &me, path).await?
    } else {
        let parent = tree
            .folder_at(&above.join("/"))
            .ok_or_else(|| not_found(&format!("/{}", above.join("/"))))?;
        if tree.child(parent, name).is_some() {
            return Err(ClientError::Usage(format!("{path} exists (-p accepts that)")));
        }
        Some(tree.make(&server, &me, parent, name).await?)
    };
    let id = id.expect("a path with a name is a folder");
    say(
        cli,
        &format!("made {}", tree.path_of(Some(id))),
        json!({"folder_id": id, "path": tree.path_of(Some(id))}),
    );
    Ok(())
}

/// `disktro mv SOURCE DEST`: into DEST when it is a folder, else to the path DEST (its folder
/// must exist; the last part is the new name).
pub async fn mv(cli: &Cli, source: &str, dest: &str) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let mut tree = Tree::load(&server, &me).await?;
    let item = match source.parse::<FileId>() {
        Ok(id) => Item::File(Box::new(
            server
                .files()
                .await?
                .files
                .into_iter()
                .find(|f| f.file_id == id)
                .ok_or_else(|| not_found(source))?,
        )),
        Err(_) => tree
            .resolve(&server, &me, source)
            .await?
            .ok_or_else(|| not_found(source))?,
    };
    // Into a folder that exists, keeping the name; else to a new name in DEST's folder.
    let (into, new_name) = match tree.folder_at(dest) {
        Some(folder) => (folder, None),
        None => {
            let parts = tree::parts(dest);
            let (name, above) = parts.split_last().expect("the top is a folder");
            let folder = tree
                .folder_at(&above.join("/"))
                .ok_or_else(|| not_found(&format!("/{}", above.join("/"))))?;
            (folder, Some((*name).to_owned()))
        }
    };
    match item {
        Item::Folder(None) => return Err(ClientError::Usage("the top of the tree cannot move".to_owned())),
        Item::Folder(Some(id)) => {
            if tree.is_within(into, id) {
                return Err(ClientError::Usage(format!(
                    "{source} cannot move into itself or a folder below it"
                )));
            }
            let name = new_name.unwrap_or_else(|| tree.get(&id).map(|f| f.name.clone()).unwrap_or_default());
            if tree.child(into, &name).is_some_and(|f| f.id != id) {
                return Err(ClientError::Usage(format!(
                    "{} already holds a folder named {name}",
                    tree.path_of(into)
                )));
            }
            if tree.get(&id).map(|f| f.parent) != Some(into) {
                server.move_folder(&id, into).await?;
                tree.moved(id, into);
            }
            if tree.get(&id).is_some_and(|f| f.name != name) {
                tree.rename(&server, &me, id, &name).await?;
            }
            say(
                cli,
                &format!("moved {source} to {}", tree.path_of(Some(id))),
                json!({"folder_id": id, "path": tree.path_of(Some(id))}),
            );
        }
        Item::File(file) => {
            if file.folder_id != into {
                server.move_file(&file.file_id, into).await?;
            }
            let mut metadata = tree::file_metadata(&me, &file).ok_or_else(|| {
                ClientError::Integrity("the file's name does not open with this account's keys".to_owned())
            })?;
            if let Some(name) = new_name.filter(|n| *n != metadata.name) {
                disktro_core::folder::check_name(&name).map_err(|e| ClientError::Usage(format!("{name:?}: {e}")))?;
                metadata.name = name;
                let key = me.file_key(&file.file_id, Some(&file.wrapped_key))?;
                let sealed = metadata
                    .seal(&key, &file.file_id)
                    .map_err(|e| ClientError::Usage(format!("file name: {e}")))?;
                server
                    .rename_file(
                        &file.file_id,
                        &Rename {
                            metadata: Base64::new(sealed),
                            wrapped_key: None,
                        },
                    )
                    .await?;
            }
            let path = format!("{}/{}", tree.path_of(into).trim_end_matches('/'), metadata.name);
            say(
                cli,
                &format!("moved {source} to {path}"),
                json!({"file_id": file.file_id, "path": path}),
            );
        }
    }
    Ok(())
}

/// `disktro rm [-r] ID|PATH`.
pub async fn rm(cli: &Cli, target: &str, recursive: bool) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    if target.parse::<FileId>().is_ok() {
        server.delete_file(target).await?;
        say(cli, &format!("deleted {target}"), json!({"deleted": target}));
        return Ok(());
    }
    let tree = Tree::load(&server, &me).await?;
    match tree
        .resolve(&server, &me, target)
        .await?
        .ok_or_else(|| not_found(target))?
    {
        Item::Folder(None) => Err(ClientError::Usage("the top of the tree cannot be deleted".to_owned())),
        Item::Folder(Some(id)) => {
            let removed = server.delete_folder(&id, recursive).await.map_err(|e| match e {
                ClientError::Api {
                    code: ErrorCode::FolderNotEmpty,
                    ..
                } => ClientError::Usage(format!(
                    "{target} is not empty: `rm -r` deletes it with everything in it"
                )),
                other => other,
            })?;
            say(
                cli,
                &format!(
                    "deleted {target} ({} folder(s), {} file(s))",
                    removed.folders, removed.files
                ),
                json!({"deleted": target, "folders": removed.folders, "files": removed.files}),
            );
            Ok(())
        }
        Item::File(file) => {
            server.delete_file(&file.file_id.to_hex()).await?;
            say(cli, &format!("deleted {target}"), json!({"deleted": file.file_id}));
            Ok(())
        }
    }
}

/// `disktro download PATH`: a file to `output` (or its name), or a folder as a tree of files
/// under `output` (or the folder's name).
pub async fn download_path(cli: &Cli, path: &str, output: Option<&Path>) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let tree = Tree::load(&server, &me).await?;
    let top = match tree.resolve(&server, &me, path).await?.ok_or_else(|| not_found(path))? {
        Item::File(file) => return download_own(cli, &server, &me, &file.file_id, output).await,
        Item::Folder(folder) => folder,
    };
    if output.is_some_and(|o| o.as_os_str() == "-") {
        return Err(ClientError::Usage("a folder cannot be written to stdout".to_owned()));
    }
    let root = output.map_or_else(
        || {
            PathBuf::from(safe_name(
                top.and_then(|id| tree.get(&id)).map_or("disktro", |f| f.name.as_str()),
            ))
        },
        Path::to_path_buf,
    );
    let mut pending = vec![(top, root)];
    while let Some((folder, dir)) = pending.pop() {
        std::fs::create_dir_all(&dir).map_err(|e| ClientError::Io(format!("cannot make {}: {e}", dir.display())))?;
        for f in server.files_in(folder.as_ref()).await?.files {
            let name = tree::file_name(&me, &f)
                .ok_or_else(|| ClientError::Integrity(format!("the name of file {} does not open", f.file_id)))?;
            download_own(cli, &server, &me, &f.file_id, Some(&dir.join(safe_name(&name)))).await?;
        }
        for sub in tree.children(folder) {
            pending.push((Some(sub.id), dir.join(safe_name(&sub.name))));
        }
    }
    Ok(())
}
