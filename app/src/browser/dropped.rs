//! What a drop or the folder picker hands over, as files with the folders they go in: a dropped
//! folder is walked through the browser's entries API (`webkitGetAsEntry`, then each directory's
//! reader until it returns nothing), and a picked folder (`<input webkitdirectory>`) names each
//! file's place in its `webkitRelativePath`. The folders are made and the files uploaded by the
//! files page.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File, FileList, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

use crate::error::Failure;

/// A file to upload, and the folders below the one shown that it goes in (outermost first).
#[derive(Debug)]
pub struct Picked {
    pub folders: Vec<String>,
    pub file: File,
}

/// The entries of a drop, taken while its event runs (the browser empties the list after), or
/// `None` when no folder was dropped (the drop's files are then all there is).
pub fn folder_entries(data: &DataTransfer) -> Option<Vec<FileSystemEntry>> {
    let items = data.items();
    let entries: Vec<FileSystemEntry> = (0..items.length())
        .filter_map(|i| items.get(i))
        .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
        .collect();
    entries.iter().any(FileSystemEntry::is_directory).then_some(entries)
}

/// Every file under the dropped `entries`, with its folders.
pub async fn walk(entries: Vec<FileSystemEntry>) -> Result<Vec<Picked>, Failure> {
    let mut out = Vec::new();
    let mut pending: Vec<(FileSystemEntry, Vec<String>)> = entries.into_iter().map(|e| (e, Vec::new())).collect();
    while let Some((entry, folders)) = pending.pop() {
        if entry.is_directory() {
            let mut inside = folders;
            inside.push(entry.name());
            let reader = entry.unchecked_into::<FileSystemDirectoryEntry>().create_reader();
            // A reader hands out its entries in batches, then an empty one.
            loop {
                let batch = callback_promise(|ok, err| reader.read_entries_with_callback_and_callback(ok, err)).await?;
                let batch = Array::from(&batch);
                if batch.length() == 0 {
                    break;
                }
                for e in batch.iter() {
                    pending.push((e.unchecked_into(), inside.clone()));
                }
            }
        } else if entry.is_file() {
            let file_entry = entry.unchecked_into::<FileSystemFileEntry>();
            let file = callback_promise(|ok, err| {
                file_entry.file_with_callback_and_callback(ok, err);
                Ok(())
            })
            .await?;
            out.push(Picked {
                folders,
                file: file.unchecked_into(),
            });
        }
    }
    Ok(out)
}

/// The files of a picked folder, each with its folders from `webkitRelativePath` (`album/2024/a.jpg`:
/// folders `album`, `2024`).
pub fn from_folder_picker(list: Option<FileList>) -> Vec<Picked> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .map(|file| {
            let path = js_sys::Reflect::get(&file, &JsValue::from_str("webkitRelativePath"))
                .ok()
                .and_then(|p| p.as_string())
                .unwrap_or_default();
            let mut folders: Vec<String> = path.split('/').filter(|p| !p.is_empty()).map(str::to_owned).collect();
            folders.pop(); // the file's own name
            Picked { folders, file }
        })
        .collect()
}

/// A callback-style browser call as a future: `call(ok, err)` hands the two callbacks over.
async fn callback_promise(call: impl FnOnce(&Function, &Function) -> Result<(), JsValue>) -> Result<JsValue, Failure> {
    let mut call = Some(call);
    let mut started = Ok(());
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(call) = call.take() {
            started = call(&resolve, &reject);
        }
    });
    started.map_err(|e| Failure::js(&e))?;
    JsFuture::from(promise).await.map_err(|e| {
        Failure::browser(format!(
            "a dropped folder could not be read: {}",
            crate::browser::js::describe(&e)
        ))
    })
}
