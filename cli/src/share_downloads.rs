//! Share downloads under way: the `download_id` the server gave a `disktro get`, kept in
//! `share-downloads/` of the config directory ([`crate::session::dir`]) until the file is saved.
//!
//! A `get` that fails or is killed leaves its download open on the server, holding one of a
//! limited link's downloads until its tokens run out; run again, it continues that download
//! with fresh tokens instead of asking for another, so an interrupted download does not use up
//! the link. A download id is no secret worth guarding beyond the link itself (it only lets its
//! holder continue or complete that one download), so losing or leaving the file is harmless.

use std::path::PathBuf;

use crate::session;

/// The file for `share_id` on the server at `server_url`: the name hashes both, since share ids
/// are unique per server only.
fn file(server_url: &str, share_id: &str) -> Option<PathBuf> {
    let name = blake3::Hasher::new_derive_key("disktro cli share download v1")
        .update(server_url.trim_end_matches('/').as_bytes())
        .update(&[0])
        .update(share_id.as_bytes())
        .finalize()
        .to_hex();
    Some(session::dir().ok()?.join("share-downloads").join(&name[..32]))
}

/// The download this machine started of the link and has not finished, if any.
pub fn remembered(server_url: &str, share_id: &str) -> Option<String> {
    let text = std::fs::read_to_string(file(server_url, share_id)?).ok()?;
    let id = text.trim();
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| id.to_owned())
}

/// Keep `download_id` until the download is saved. Best effort: without it, a retry is a new
/// download, as before.
pub fn remember(server_url: &str, share_id: &str, download_id: &str) {
    if let Some(path) = file(server_url, share_id) {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| disktro_net::durable::replace(&path, download_id.as_bytes()));
        if let Err(e) = written {
            eprintln!("disktro: cannot note the download in {}: {e}", path.display());
        }
    }
}

/// The download is saved (or no longer the server's to continue).
pub fn forget(server_url: &str, share_id: &str) {
    if let Some(path) = file(server_url, share_id) {
        let _ = std::fs::remove_file(path);
    }
}
