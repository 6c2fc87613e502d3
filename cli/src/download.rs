//! Download: verify the manifest's signature, open the metadata with the key (a wrong key stops
//! here), then for each chunk fetch any k shards in parallel (data shards from online workers
//! first, the next candidate when one fails), rebuild, open, unsqueeze and write the plaintext in
//! order on a blocking thread (written straight from the decoded chunk: no async file buffers).
//! A few chunks are fetched ahead; memory stays at a few chunks.

use std::io::Write;
use std::sync::Arc;

use disktro_core::api::{FileDownload, NodeStatus};
use disktro_core::keys::PublicKey;
use disktro_core::metadata::FileMetadata;
use disktro_core::{Decoder, FileKey, Manifest, ShardId, SignedManifest};
use disktro_worker::client::WorkerClient;
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt as _};

use crate::ClientError;
use crate::server::unb64;
use crate::upload::connect_all;

/// Chunks fetched ahead of the one being written.
const CHUNKS_AHEAD: usize = 4;

/// What a download verified besides the bytes.
#[derive(Debug)]
pub struct Fetched {
    pub metadata: FileMetadata,
    /// Who signed the manifest (show its fingerprint to share-link recipients).
    pub owner: PublicKey,
}

/// Progress so far, reported after every chunk written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub size: u64,
}

/// Check what the server sent before trusting any of it: the manifest verifies, names the file
/// asked for, was signed by `expected_owner` (when known), and the key opens the metadata.
pub fn verify(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
) -> Result<(SignedManifest, FileMetadata), ClientError> {
    answer
        .verify(key, expected_owner)
        .map_err(|e| ClientError::Integrity(e.to_string()))
}

/// Write the file `answer` describes to `writer` (handed back at the end).
pub async fn download<W: Write + Send + 'static>(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
    writer: W,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Fetched, W), ClientError> {
    let (signed, metadata) = verify(answer, key, expected_owner)?;
    let manifest = signed.manifest().clone();
    let decoder = Decoder::new(key, &manifest).map_err(|e| ClientError::Integrity(e.to_string()))?;
    // The decoder and the writer travel to each chunk's blocking task and back.
    let mut state = (decoder, writer);
    let urls: Vec<String> = answer.nodes.iter().map(|n| n.url.clone()).collect();
    let workers: Vec<Option<Arc<WorkerClient>>> = connect_all(&urls).await.into_iter().map(Result::ok).collect();
    let source = Source {
        answer,
        manifest: &manifest,
        workers: &workers,
    };

    let count = manifest.chunks.len();
    let mut ahead = FuturesOrdered::new();
    let mut next = 0;
    let mut written = 0u64;
    let size = manifest.plain_size();
    while next < count || !ahead.is_empty() {
        while next < count && ahead.len() < CHUNKS_AHEAD {
            ahead.push_back(source.fetch(next));
            next += 1;
        }
        let Some(fetched) = ahead.next().await else { break };
        let (index, shards) = fetched?;
        let (back, wrote) = tokio::task::spawn_blocking(move || {
            let (mut decoder, mut writer) = state;
            let wrote = decoder
                .decode_chunk(index as u64, shards)
                .map_err(|e| ClientError::Integrity(format!("chunk {index} does not open: {e}")))
                .and_then(|plain| {
                    writer
                        .write_all(&plain)
                        .map(|()| plain.len())
                        .map_err(|e| ClientError::Io(format!("cannot write the file: {e}")))
                });
            ((decoder, writer), wrote)
        })
        .await
        .map_err(|_| ClientError::Integrity("the decoder stopped unexpectedly".to_owned()))?;
        state = back;
        let wrote = wrote?;
        written += wrote as u64;
        progress(Progress {
            bytes_done: written,
            size,
        });
    }
    let (decoder, mut writer) = state;
    decoder
        .finish()
        .map_err(|e| ClientError::Integrity(format!("the file is incomplete: {e}")))?;
    tokio::task::block_in_place(|| writer.flush())
        .map_err(|e| ClientError::Io(format!("cannot write the file: {e}")))?;
    let fetched = Fetched {
        metadata,
        owner: *signed.owner(),
    };
    Ok((fetched, writer))
}

struct Source<'a> {
    answer: &'a FileDownload,
    manifest: &'a Manifest,
    workers: &'a [Option<Arc<WorkerClient>>],
}

impl Source<'_> {
    /// The get token of node `n` for chunk `chunk`.
    fn token(&self, n: usize, chunk: usize) -> Option<Vec<u8>> {
        let c = chunk as u64;
        let t = self
            .answer
            .nodes
            .get(n)?
            .tokens
            .iter()
            .find(|t| t.first_chunk <= c && c <= t.last_chunk)?;
        unb64(&t.token, "get token").ok()
    }

    /// Any k shards of chunk `index` (others `None`).
    async fn fetch(&self, index: usize) -> Result<(usize, Vec<Option<Vec<u8>>>), ClientError> {
        let entry = &self.manifest.chunks[index];
        let k = usize::from(self.manifest.redundancy.data);
        let total = entry.shards.len();
        let located = self.answer.locations.get(index).map(Vec::as_slice).unwrap_or_default();
        // Candidates: shards whose worker is connected; online workers first, data shards first.
        let mut candidates: Vec<(usize, usize)> = (0..total.min(located.len()))
            .map(|i| (i, usize::from(located[i])))
            .filter(|&(_, n)| self.workers.get(n).is_some_and(Option::is_some))
            .collect();
        candidates.sort_by_key(|&(i, n)| (self.answer.nodes[n].status != NodeStatus::Online, i));
        let mut candidates = candidates.into_iter();
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; total];
        let mut good = 0;
        let mut running = FuturesUnordered::new();
        let mut last_error = String::from("no worker holding its shards is reachable");
        loop {
            while good + running.len() < k {
                let Some((i, n)) = candidates.next() else { break };
                let Some(token) = self.token(n, index) else { continue };
                let worker = Arc::clone(self.workers[n].as_ref().expect("filtered to connected workers"));
                let id: ShardId = entry.shards[i];
                running.push(async move { (i, worker.get(&token, id).await) });
            }
            let Some((i, result)) = running.next().await else { break };
            match result {
                Ok(bytes) => {
                    slots[i] = Some(bytes);
                    good += 1;
                    if good == k {
                        return Ok((index, slots));
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(ClientError::Workers(format!(
            "chunk {index}: only {good} of the {k} shards needed could be fetched ({last_error})"
        )))
    }
}
