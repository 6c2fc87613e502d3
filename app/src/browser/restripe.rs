//! Restripe in the tab: a file stored below the server's redundancy policy (its list entry says
//! `below_policy`), re-encoded at the redundancy the policy gives now, as the CLI's `disktro
//! restripe` does. The download's [`Source`] fetches any k shards of each chunk (checked against
//! the stored manifest's ids), `disktro_core::restripe` rebuilds the sealed chunk and encodes it
//! anew without opening it, the upload's [`Sender`] puts the new shards (a failing worker's are
//! placed again), and the manifest, signed with this tab's identity key, is committed: the server
//! then swaps the shards and collects the old ones. The file's metadata, key and share links stay.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use disktro_core::api::{Base64, Commit, FileDownload, FileSummary, UploadPlan};
use disktro_core::order::Orders;
use disktro_core::restripe::Restriper;
use disktro_core::{Redundancy, SignedManifest};
use futures_channel::{mpsc, oneshot};

use super::api::Api;
use super::download::{CHUNKS_AHEAD, RememberSpeeds, Renewal, Source, owner_download_path};
use super::keyring::Keyring;
use super::upload::{Progress, Sender, send_chunk};
use crate::browser::Failure;

/// Re-encode `file` at the redundancy the server plans; `progress` hears after every chunk
/// (sealed bytes and shards stored), `cancelled` is checked between chunks. A restripe that fails
/// or is cancelled is cancelled at the server: the file stays as it was.
pub async fn restripe(
    api: &Api,
    me: &Keyring,
    file: &FileSummary,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let orders = Orders::new();
    let answer: FileDownload = api.get(&owner_download_path(&file.file_id, &orders.key())).await?;
    let signed = SignedManifest::decode(&answer.manifest)
        .map_err(|e| Failure::Invalid(format!("the stored manifest does not verify: {e}")))?;
    if *signed.owner() != me.public_key() || signed.manifest().file_id != file.file_id {
        return Err(Failure::invalid(
            "the server sent a manifest this account did not sign for this file",
        ));
    }
    let stored = signed.manifest().clone();
    let plan: UploadPlan = api
        .post(&format!("/files/{}/restripe", file.file_id), &serde_json::json!({}))
        .await?;
    let outcome = send_and_commit(api, me, file, &stored, answer, orders, &plan, progress, cancelled).await;
    if outcome.is_err() {
        // Best effort: a restripe left behind expires on its own.
        let _ = api.send("DELETE", &format!("/uploads/{}", plan.upload_id)).await;
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn send_and_commit(
    api: &Api,
    me: &Keyring,
    file: &FileSummary,
    stored: &disktro_core::Manifest,
    answer: FileDownload,
    orders: Orders,
    plan: &UploadPlan,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let to = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| Failure::Invalid(format!("the server planned an impossible redundancy: {e}")))?;
    let mut restriper = Restriper::new(stored, to)?;
    let source = Source::new(answer, Some(Renewal::Owner), orders);
    let _remember = RememberSpeeds(Rc::clone(&source));
    let sender = Sender::new(api, plan, false)?;
    sender.open_links();
    let state = Rc::new(RefCell::new(Progress {
        size: stored.chunks.iter().map(|c| u64::from(c.sealed_len)).sum(),
        shards_total: stored.chunks.len() as u64 * to.total() as u64,
        ..Progress::default()
    }));
    // A restripe encodes into fresh buffers: the ones handed back are dropped.
    let (recycle, _spent) = mpsc::unbounded::<Vec<u8>>();
    let k = usize::from(stored.redundancy.data);
    let total = stored.chunks.len() as u64;
    let mut ahead: VecDeque<oneshot::Receiver<_>> = VecDeque::new();
    let mut next_fetch = 0u64;
    let sent = async {
        for index in 0..total {
            while next_fetch < total && ahead.len() < CHUNKS_AHEAD {
                let entry =
                    stored.chunks[usize::try_from(next_fetch).map_err(|_| Failure::browser("chunk index"))?].clone();
                let (tx, rx) = oneshot::channel();
                let job = Rc::clone(&source).fetch_chunk(next_fetch, entry, k);
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = tx.send(job.await);
                });
                ahead.push_back(rx);
                next_fetch += 1;
            }
            if cancelled.get() {
                return Err(Failure::Cancelled);
            }
            let shards = ahead
                .pop_front()
                .ok_or_else(|| Failure::browser("the fetch queue ran dry"))?
                .await
                .map_err(|_| Failure::browser("a fetch stopped"))??;
            let chunk = restriper.restripe(index, shards)?;
            send_chunk(Rc::clone(&sender), chunk, Rc::clone(&state), recycle.clone()).await?;
            progress(*state.borrow());
        }
        Ok(())
    }
    .await;
    source.settle_orders().await;
    sent?;
    let manifest = restriper.finish()?.sign(&me.keys.identity)?;
    let commit = Commit {
        manifest: Base64::from(manifest.as_bytes()),
        metadata: file.metadata.clone(),
        wrapped_key: file.wrapped_key.clone(),
        receipts: sender.take_receipts()?,
    };
    Ok(api
        .post(&format!("/uploads/{}/commit", plan.upload_id), &commit)
        .await?)
}
