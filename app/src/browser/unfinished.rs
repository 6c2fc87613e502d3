//! Uploads under way, kept in this browser's IndexedDB so that a reload, a closed or crashed tab
//! or a failed upload does not lose what was sent: the browser's half of resumable uploads (the
//! CLI's is `cli/src/resume.rs`).
//!
//! One [`Note`] per upload (store `uploads`, keyed by upload id) written when the server has
//! answered the begin, and one record per chunk whose shards are all stored (store `receipts`,
//! keyed `{upload id}/{chunk}`), written as each chunk finishes; both go when the upload is
//! committed, cancelled or found gone. A tab killed mid-chunk loses only the chunks in flight.
//!
//! The `File` itself is not kept: Chromium would copy the whole plaintext into the profile to
//! store it. The person picks or drops the same file again instead; it is recognised by its size
//! and modification time and by its name, which the note holds sealed under the file's key (as
//! the server holds it), and the chunks re-encoded from it must name the very shards the kept
//! receipts name, or the upload stops. Nothing readable is kept at rest beyond sizes and times:
//! the file key is wrapped under the account's identity key, receipts are the workers' signed
//! statements.
//!
//! The pipeline worker writes notes; the page lists them (the files page offers to continue or
//! discard each). IndexedDB is reached from either scope through the global `indexedDB`.

use std::cell::RefCell;

use disktro_core::FileId;
use disktro_core::api::Base64;
use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransactionMode};

use super::Failure;

const DATABASE: &str = "disktro";
const VERSION: u32 = 1;
const UPLOADS: &str = "uploads";
const RECEIPTS: &str = "receipts";
/// The server lets an open upload expire a day after it began; a note older than that is gone.
pub const KEPT_FOR_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// What continuing an upload needs besides its receipts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub upload_id: String,
    pub account_id: String,
    pub file_id: FileId,
    /// The file key wrapped under the account's identity key, as the server keeps it.
    pub wrapped_key: Base64,
    /// The name, type and size sealed under the file key: what the commit sends.
    pub sealed_metadata: Base64,
    pub size: u64,
    /// The `File`'s `lastModified` (milliseconds since the epoch).
    pub last_modified: f64,
    pub chunk_size: u32,
    pub chunk_count: u64,
    pub shards_per_chunk: u16,
    /// When the upload began (milliseconds since the epoch).
    pub began_ms: f64,
}

impl Note {
    /// Whether `file` could be the file this note is about (its name is checked by whoever can
    /// open the sealed metadata).
    pub fn fits(&self, size: u64, last_modified: f64) -> bool {
        self.size == size && self.last_modified == last_modified
    }

    pub fn expired(&self, now_ms: f64) -> bool {
        now_ms - self.began_ms >= KEPT_FOR_MS
    }
}

/// One chunk's receipts, by shard index.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkReceipts {
    chunk: u64,
    receipts: Vec<(usize, Base64)>,
}

thread_local! {
    /// The database, opened on first use in this scope.
    static OPENED: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

fn storage_failed(what: &str, e: &JsValue) -> Failure {
    Failure::browser(format!(
        "the browser's storage failed ({what}): {}",
        super::js::describe(e)
    ))
}

/// Wait for an IndexedDB request; its result.
async fn settle(request: &IdbRequest, what: &str) -> Result<JsValue, Failure> {
    // Events of a request fire in a later task: handlers set now hear them.
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let settled = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    if settled.is_err() {
        let why = request
            .error()
            .ok()
            .flatten()
            .map_or_else(|| "unknown error".to_owned(), |e| e.message());
        return Err(Failure::browser(format!(
            "the browser's storage failed ({what}): {why}"
        )));
    }
    request.result().map_err(|e| storage_failed(what, &e))
}

async fn database() -> Result<IdbDatabase, Failure> {
    if let Some(db) = OPENED.with(|d| d.borrow().clone()) {
        return Ok(db);
    }
    let factory: web_sys::IdbFactory = super::js::global_property("indexedDB")
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| Failure::browser("this browser keeps no IndexedDB (a private window?)"))?;
    let request = factory
        .open_with_u32(DATABASE, VERSION)
        .map_err(|e| storage_failed("open", &e))?;
    let upgrading = request.clone();
    let upgrade = Closure::once_into_js(move || {
        if let Some(db) = upgrading.result().ok().and_then(|r| r.dyn_into::<IdbDatabase>().ok()) {
            for name in [UPLOADS, RECEIPTS] {
                if !db.object_store_names().contains(name) {
                    let _ = db.create_object_store(name);
                }
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db: IdbDatabase = settle(&request, "open")
        .await?
        .dyn_into()
        .map_err(|_| Failure::browser("the browser's storage opened no database"))?;
    OPENED.with(|d| *d.borrow_mut() = Some(db.clone()));
    Ok(db)
}

async fn store(name: &str, mode: IdbTransactionMode) -> Result<IdbObjectStore, Failure> {
    database()
        .await?
        .transaction_with_str_and_mode(name, mode)
        .and_then(|t| t.object_store(name))
        .map_err(|e| storage_failed(name, &e))
}

/// The keys of `upload_id`'s chunk records: `{id}/` up to (not including) `{id}0`, the next
/// character.
fn chunk_range(upload_id: &str) -> Result<JsValue, Failure> {
    web_sys::IdbKeyRange::bound_with_lower_open_and_upper_open(
        &JsValue::from_str(&format!("{upload_id}/")),
        &JsValue::from_str(&format!("{upload_id}0")),
        false,
        true,
    )
    .map(JsValue::from)
    .map_err(|e| storage_failed("range", &e))
}

fn chunk_key(upload_id: &str, chunk: u64) -> String {
    // Zero-padded: keys sort as chunks do.
    format!("{upload_id}/{chunk:012}")
}

fn json<T: Serialize>(value: &T) -> Result<JsValue, Failure> {
    serde_json::to_string(value)
        .map(|s| JsValue::from_str(&s))
        .map_err(|e| Failure::browser(e.to_string()))
}

fn values<T: serde::de::DeserializeOwned>(all: &JsValue) -> Vec<T> {
    js_sys::Array::from(all)
        .iter()
        .filter_map(|v| v.as_string())
        .filter_map(|s| serde_json::from_str(&s).ok())
        .collect()
}

/// Note a new upload.
pub async fn begin(note: &Note) -> Result<(), Failure> {
    let uploads = store(UPLOADS, IdbTransactionMode::Readwrite).await?;
    let request = uploads
        .put_with_key(&json(note)?, &JsValue::from_str(&note.upload_id))
        .map_err(|e| storage_failed("put", &e))?;
    settle(&request, "put").await.map(|_| ())
}

/// Note the receipts of a chunk whose shards are all stored.
pub async fn chunk_stored(upload_id: &str, chunk: u64, receipts: Vec<(usize, Base64)>) -> Result<(), Failure> {
    let record = ChunkReceipts { chunk, receipts };
    let store = store(RECEIPTS, IdbTransactionMode::Readwrite).await?;
    let request = store
        .put_with_key(&json(&record)?, &JsValue::from_str(&chunk_key(upload_id, chunk)))
        .map_err(|e| storage_failed("put", &e))?;
    settle(&request, "put").await.map(|_| ())
}

/// The unfinished uploads of `account_id`, oldest first; notes past the server's expiry are
/// dropped on the way.
pub async fn of_account(account_id: &str, now_ms: f64) -> Result<Vec<Note>, Failure> {
    let uploads = store(UPLOADS, IdbTransactionMode::Readonly).await?;
    let request = uploads.get_all().map_err(|e| storage_failed("read", &e))?;
    let mut notes: Vec<Note> = values(&settle(&request, "read").await?);
    for old in notes.iter().filter(|n| n.expired(now_ms)) {
        let _ = forget(&old.upload_id).await;
    }
    notes.retain(|n| n.account_id == account_id && !n.expired(now_ms));
    notes.sort_by(|a, b| a.began_ms.total_cmp(&b.began_ms));
    Ok(notes)
}

/// Every receipt noted for `upload_id`: (chunk, shard index, receipt).
pub async fn receipts(upload_id: &str) -> Result<Vec<(u64, usize, Vec<u8>)>, Failure> {
    let store = store(RECEIPTS, IdbTransactionMode::Readonly).await?;
    let request = store
        .get_all_with_key(&chunk_range(upload_id)?)
        .map_err(|e| storage_failed("read", &e))?;
    let chunks: Vec<ChunkReceipts> = values(&settle(&request, "read").await?);
    Ok(chunks
        .into_iter()
        .flat_map(|c| {
            c.receipts
                .into_iter()
                .map(move |(index, r)| (c.chunk, index, r.into_vec()))
        })
        .collect())
}

/// How many chunks of `upload_id` are noted as stored (counted by the database, not read).
pub async fn chunks_stored(upload_id: &str) -> Result<u64, Failure> {
    let store = store(RECEIPTS, IdbTransactionMode::Readonly).await?;
    let request = store
        .count_with_key(&chunk_range(upload_id)?)
        .map_err(|e| storage_failed("count", &e))?;
    Ok(settle(&request, "count")
        .await?
        .as_f64()
        .map_or(0, crate::format::whole))
}

/// Forget `upload_id` (committed, cancelled, or gone at the server).
pub async fn forget(upload_id: &str) -> Result<(), Failure> {
    let receipts = store(RECEIPTS, IdbTransactionMode::Readwrite).await?;
    let request = receipts
        .delete(&chunk_range(upload_id)?)
        .map_err(|e| storage_failed("delete", &e))?;
    settle(&request, "delete").await?;
    let uploads = store(UPLOADS, IdbTransactionMode::Readwrite).await?;
    let request = uploads
        .delete(&JsValue::from_str(upload_id))
        .map_err(|e| storage_failed("delete", &e))?;
    settle(&request, "delete").await.map(|_| ())
}
