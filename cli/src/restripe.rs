//! Restripe: bring a stored file up to the redundancy the server's policy gives now.
//!
//! A file written while the network was small (or during an outage) keeps its (k, m) until its
//! owner re-encodes it: the manifest is the owner's signature, which the server cannot make. The
//! server says which files are below its policy (`health.below_policy` in the file list) and
//! plans a restripe like an upload (`POST /files/{id}/restripe`). This fetches any k shards of
//! each chunk (the download's [`Source`]: the same ranking, hedging and token renewal), rebuilds
//! the sealed chunk without opening it ([`disktro_core::restripe`]), sends the new shards with
//! the upload's [`Sender`] (a failing worker's shards are placed again), and commits the manifest
//! signed anew; the server then swaps the shards in one transaction and collects the old ones.
//! Memory stays at a few chunks, as a download's does.

use disktro_core::api::{Base64, Commit, FileSummary};
use disktro_core::order::Orders;
use disktro_core::restripe::Restriper;
use disktro_core::{Redundancy, SignedManifest};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use tokio::sync::mpsc;

use crate::ClientError;
use crate::account::Identity;
use crate::download::{Renew, Source};
use crate::server::Server;
use crate::upload::Sender;

/// Chunks fetched ahead of the one being sent.
const CHUNKS_AHEAD: usize = 2;

/// Progress of one restripe: sealed bytes re-encoded and stored, of the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes: u64,
}

/// Re-encode `file` (as the file list gave it: its metadata and wrapped key are kept) at the
/// redundancy the server plans. The restripe is cancelled when it fails; the file stays as it
/// was, readable, until a later try.
pub async fn restripe(
    server: &Server,
    me: &Identity,
    file: &FileSummary,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FileSummary, ClientError> {
    let id = file.file_id.to_hex();
    let orders = Orders::new();
    let order_key = orders.key();
    let answer = server.file_reading(&id, &order_key).await?;
    let signed = SignedManifest::decode(&answer.manifest)
        .map_err(|e| ClientError::Integrity(format!("the stored manifest does not verify: {e}")))?;
    if *signed.owner() != me.keys.identity.public() || signed.manifest().file_id != file.file_id {
        return Err(ClientError::Integrity(
            "the server sent a manifest this account did not sign for this file".to_owned(),
        ));
    }
    let stored = signed.manifest().clone();
    let plan = server.restripe(&id).await?;
    let upload_id = plan.upload_id.clone();
    let to = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| ClientError::Integrity(format!("the server planned an impossible redundancy: {e}")))?;
    let done = async {
        let restriper = Restriper::new(&stored, to).map_err(|e| ClientError::Integrity(e.to_string()))?;
        let (renewing_server, id) = (server.clone(), id.clone());
        let renew = move || {
            let (server, id) = (renewing_server.clone(), id.clone());
            Box::pin(async move { server.file_reading(&id, &order_key).await }) as crate::download::Renewal
        };
        let renew: &Renew = &renew;
        let source = Source::new(&answer, &stored, Some(renew), orders);
        let sender = Sender::new(server, plan, None)?;
        let sent = send_all(&stored, &source, &sender, restriper, progress).await;
        source.finish().await;
        let manifest = sent?
            .sign(&me.keys.identity)
            .map_err(|e| ClientError::Integrity(format!("signing the manifest: {e}")))?;
        let receipts = sender
            .session()
            .take_receipts()
            .map_err(|e| ClientError::Integrity(e.to_string()))?;
        let commit = Commit {
            manifest: Base64::from(manifest.as_bytes()),
            metadata: file.metadata.clone(),
            wrapped_key: file.wrapped_key.clone(),
            receipts,
        };
        server.commit(&upload_id, &commit).await
    };
    let result = done.await;
    if result.is_err() {
        // Best effort: the restripe expires on its own if this fails too.
        let _ = server.cancel_upload(&upload_id).await;
    }
    result
}

/// Fetch, re-encode and send every chunk in order, a few fetched ahead: the new manifest.
async fn send_all(
    stored: &disktro_core::Manifest,
    source: &Source<'_>,
    sender: &Sender<'_>,
    mut restriper: Restriper,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<disktro_core::Manifest, ClientError> {
    let lens: Vec<u64> = stored.chunks.iter().map(|c| u64::from(c.sealed_len)).collect();
    let bytes: u64 = lens.iter().sum();
    let count = lens.len();
    // Shard buffers come back from the sender once framed; a restripe encodes into fresh ones.
    let (recycle, mut spent) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut ahead = FuturesOrdered::new();
    let (mut next, mut bytes_done) = (0, 0);
    while next < count || !ahead.is_empty() {
        while next < count && ahead.len() < CHUNKS_AHEAD {
            ahead.push_back(source.fetch(next));
            next += 1;
        }
        let Some(fetched) = ahead.next().await else { break };
        let (index, shards) = fetched?;
        // Rebuilding and parity are CPU work: on a blocking thread, the restriper going there and
        // back.
        let (back, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = restriper.restripe(index as u64, shards);
            (restriper, chunk)
        })
        .await
        .map_err(|_| ClientError::Integrity("the encoder stopped unexpectedly".to_owned()))?;
        restriper = back;
        let chunk = chunk.map_err(|e| ClientError::Integrity(format!("chunk {index} does not rebuild: {e}")))?;
        sender.send_chunk(chunk, &recycle).await?;
        while spent.try_recv().is_ok() {}
        bytes_done += lens[index];
        progress(Progress { bytes_done, bytes });
    }
    restriper.finish().map_err(|e| ClientError::Integrity(e.to_string()))
}
