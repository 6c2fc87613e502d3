//! Uploads: begin, renew, cancel and commit. The server stores what it cannot read (the
//! owner-signed manifest, sealed metadata, the wrapped file key) and where each shard lives.
//!
//! **Begin** takes the client's file id and size (and a (k, m) if it asks for one), chooses the
//! redundancy by policy from the durability target and the network ([`policy`]), places every shard under the
//! failure-domain rules ([`placement::Placer`]) and hands out one put grant per worker used,
//! budgeted for exactly the shards placed there at their largest. The sum of those budgets (the file stored raw:
//! compression may make it smaller, but the server cannot know that yet) is **reserved** from the
//! account's quota while the upload is open, so open uploads can never be granted more storage
//! than the account has; an account has at most [`MAX_OPEN_UPLOADS`] open.
//!
//! **Replan**: when a worker refuses, times out or disconnects mid-upload, the client names it
//! and the chunks still waiting on it; the server places those shards again under the same rules
//! (the chunk's other workers count towards the domain caps), issues put tokens for the workers
//! chosen as new slots of the plan, and keeps the amended plan. The reservation does not change
//! (the file's shards are as many as before); an upload may replan [`MAX_REPLANS`] times.
//!
//! **Cancel** (and expiry, [`crate::leases`]) gives the reservation back and **revokes** the
//! upload's put tokens: each worker learns of it in its next heartbeat answer, refuses further
//! puts under them and deletes the shards they stored (see `worker/src/admission.rs`).
//!
//! **Commit** is checked in full ([`check_commit`], pure) before one transaction records it: the
//! manifest's signature is the account's identity key, its file id, redundancy, chunk size and
//! plaintext size are what began; every shard of every chunk has a receipt signed by a registered
//! worker under a put token issued for this upload to that worker, of the right size, no worker
//! twice in a chunk; the sealed metadata and wrapped key have their formats; the stored bytes fit
//! the quota. Nothing is recorded for a shard without a receipt.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use disktro_core::api::{Base64, BeginUpload, Commit, ErrorCode, FileSummary, PutGrant, Replan, Resize, UploadPlan};
use disktro_core::keys::{PublicKey, WRAPPED_KEY_LEN};
use disktro_core::padding;
use disktro_core::seal::TAG_LEN;
use disktro_core::squeeze::Codec;
use disktro_core::token::Receipt;
use disktro_core::upload;
use disktro_core::{FileId, NodeId, Redundancy, Serial, ShardId, SignedManifest};

use crate::context::Context;
use crate::durability::policy;
use crate::error::ServerError;
use crate::grants;
use crate::nodes;
use crate::placement::{self, Candidate};
use crate::store::files::ShardRow;
use crate::store::uploads::{self, UploadRow};
use crate::store::{self, to_i64};

/// How long an upload may take from begin to commit.
pub const UPLOAD_TTL: i64 = 24 * 60 * 60;
/// Largest file accepted: 64 GiB (16,384 chunks of 4 MiB; its commit is about 45 MB of JSON).
pub const MAX_FILE_SIZE: u64 = 64 << 30;
/// Body limit of a commit (manifest and receipts of the largest file, base64url in JSON).
pub const MAX_COMMIT_BODY: usize = 64 << 20;
/// Uploads one account may have open at once (each holds put budgets on workers).
pub const MAX_OPEN_UPLOADS: u32 = 32;
/// Replans one upload may make. Each moves every waiting shard of the workers named, so a few
/// cover any real run of failures, and a client cannot gather put budgets without end.
pub const MAX_REPLANS: i64 = 16;

fn parse_hex<T: std::str::FromStr>(value: &str, code: ErrorCode, what: &str) -> Result<T, ServerError> {
    value
        .parse()
        .map_err(|_| ServerError::refused(code, format!("{what} must be lowercase hex of the right length")))
}

fn upload_not_found() -> ServerError {
    ServerError::refused(
        ErrorCode::UploadNotFound,
        "no such upload in progress (it may have expired)",
    )
}

fn quota_exceeded(needed: u64, left: i64) -> ServerError {
    ServerError::refused(
        ErrorCode::QuotaExceeded,
        format!(
            "this needs {needed} bytes of storage and the account has {} left",
            left.max(0)
        ),
    )
}

/// The largest a shard of chunk `c` of a file in size class `class` can be: the chunk stored
/// raw, padded and sealed.
fn largest_shard(class: u64, chunk_size: u32, r: Redundancy, c: u64) -> u64 {
    let capacity = padding::raw_capacity(class, chunk_size, c);
    let body = padding::body_len(Codec::Raw, 0, capacity);
    r.shard_len(body + TAG_LEN) as u64
}

/// Begin an upload.
pub async fn begin(
    ctx: &Arc<Context>,
    account_id: &str,
    req: BeginUpload,
    now: i64,
) -> Result<UploadPlan, ServerError> {
    let file_id: FileId = parse_hex(&req.file_id, ErrorCode::InvalidFileId, "file_id")?;
    if req.size > MAX_FILE_SIZE {
        return Err(ServerError::refused(
            ErrorCode::FileTooLarge,
            format!("files are limited to {MAX_FILE_SIZE} bytes"),
        ));
    }
    let chunk_size = req.chunk_size.unwrap_or(disktro_core::DEFAULT_CHUNK_SIZE);
    if !(disktro_core::MIN_CHUNK_SIZE..=disktro_core::MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(ServerError::refused(
            ErrorCode::InvalidChunkSize,
            format!(
                "chunk_size must be {} to {} bytes",
                disktro_core::MIN_CHUNK_SIZE,
                disktro_core::MAX_CHUNK_SIZE
            ),
        ));
    }
    // The server is told a size class, never a size: a client that sends the exact size would
    // leak it, so it is refused rather than rounded here.
    if !padding::is_size_class(req.size, chunk_size) {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            format!(
                "size must be the file's size class (FORMAT.md, Padding), e.g. {} for a file of {} bytes",
                padding::size_class(req.size, chunk_size),
                req.size
            ),
        ));
    }
    // Asked for, or else the policy's (chosen below, once the workers are known).
    let requested = match (req.data_shards, req.parity_shards) {
        (None, None) => None,
        (data, parity) => Some(
            Redundancy::new(
                data.unwrap_or(Redundancy::DEFAULT.data),
                parity.unwrap_or(Redundancy::DEFAULT.parity),
            )
            .map_err(|e| ServerError::refused(ErrorCode::InvalidRedundancy, e.to_string()))?,
        ),
    };
    open(
        ctx,
        account_id,
        Shape {
            file_id,
            size: req.size,
            chunk_size,
            requested,
            restripe: None,
            folder_id: req.folder_id,
        },
        now,
    )
    .await
}

/// Begin re-encoding the account's stored file `file_hex` at the redundancy the policy gives now
/// (a restripe, [`policy`]): a plan like an upload's, for the file's own chunks at their sealed
/// lengths. Only a file [`policy::below`] the policy is restriped. A restripe of the file left
/// open (its client stopped) is cancelled first, so a client that starts again is not locked out
/// until it expires; a client still sending under it then fails at its commit, and the file
/// stays as it was.
pub async fn begin_restripe(
    ctx: &Arc<Context>,
    account_id: &str,
    file_hex: &str,
    now: i64,
) -> Result<UploadPlan, ServerError> {
    let file_id: FileId = parse_hex(file_hex, ErrorCode::InvalidFileId, "file id")?;
    let not_found = || ServerError::refused(ErrorCode::FileNotFound, "no such file");
    let file = store::files::read(&ctx.db, file_hex)
        .await?
        .filter(|f| f.account_id == account_id)
        .ok_or_else(not_found)?;
    let signed = SignedManifest::decode(&file.manifest)
        .map_err(|e| ServerError::internal(format!("a stored manifest does not decode: {e}")))?;
    let stored = signed.manifest();
    // A restripe keeps the sealed chunks as they are, and format 1 (unpadded) is no longer
    // committed (see `check_commit`): said before the client does any of the work.
    if stored.version() != 2 {
        return Err(ServerError::refused(
            ErrorCode::AtPolicy,
            "the file was stored before padding (format 1), which is read but cannot be re-encoded in place: download it and upload it again to bring it to the policy",
        ));
    }
    let target = ctx.durability.durability_target;
    let (_, choice) = policy::now(ctx, now).await?;
    let Some(choice) = choice.filter(|c| policy::below(stored.redundancy, c, target)) else {
        return Err(ServerError::refused(
            ErrorCode::AtPolicy,
            format!(
                "the file is stored at {}+{}, which the redundancy policy keeps as it is on this network",
                stored.redundancy.data, stored.redundancy.parity
            ),
        ));
    };
    if let Some(open) = uploads::open_restripe(&ctx.db, account_id, file_hex).await? {
        match cancel(ctx, account_id, &open, now).await {
            // Ended meanwhile by the client that opened it: either way it is gone.
            Ok(())
            | Err(ServerError::Refused {
                code: ErrorCode::UploadNotFound,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    open(
        ctx,
        account_id,
        Shape {
            file_id,
            size: file.size,
            chunk_size: stored.chunk_size,
            requested: Some(choice.redundancy),
            restripe: Some(Restriped {
                sealed_lens: stored.chunks.iter().map(|c| c.sealed_len).collect(),
                stored_bytes: file.stored_bytes,
            }),
            folder_id: None,
        },
        now,
    )
    .await
}

/// What an upload (or a restripe) is of.
struct Shape {
    file_id: FileId,
    /// The size class (a file stored before padding: its size).
    size: u64,
    chunk_size: u32,
    /// The (k, m) asked for; `None`: the policy's.
    requested: Option<Redundancy>,
    restripe: Option<Restriped>,
    /// Where the file goes at commit (a new upload's; none: the top of the tree).
    folder_id: Option<disktro_core::FolderId>,
}

/// The stored file a restripe re-encodes.
struct Restriped {
    /// Its chunks' sealed lengths, which the new shards are cut from.
    sealed_lens: Vec<u32>,
    /// What its shards take now.
    stored_bytes: u64,
}

/// Choose the redundancy, place every shard, grant each worker used its budget and reserve the
/// storage: the plan of a new upload (or restripe) of `shape`.
async fn open(ctx: &Arc<Context>, account_id: &str, shape: Shape, now: i64) -> Result<UploadPlan, ServerError> {
    let Shape {
        file_id,
        size,
        chunk_size,
        requested,
        restripe,
        folder_id,
    } = shape;
    if let Some(folder) = &folder_id
        && store::folders::get(&ctx.db, account_id, folder).await?.is_none()
    {
        return Err(ServerError::refused(ErrorCode::FolderNotFound, "no such folder"));
    }
    let count = padding::chunk_count(size, chunk_size);
    // Workers with room for the largest shard any stripe on offer makes (the narrowest's).
    let narrowest = requested.unwrap_or(Redundancy::DEFAULT);
    let max_shard = largest_shard(u64::from(chunk_size), chunk_size, narrowest, 0);
    let workers = nodes::writable_now(ctx, now, to_i64(max_shard)).await?;
    let zone_sizes = policy::zone_sizes(workers.iter().map(|w| w.zone.as_str()));
    let redundancy = policy::for_upload(requested, &zone_sizes, ctx.durability.durability_target)
        .map_err(|e| ServerError::refused(ErrorCode::NotEnoughWorkers, format!("cannot store the file now: {e}")))?;
    // Each chunk's shards at their largest: the file stored raw, or a restripe's exact lengths.
    let shard_sizes: Vec<u64> = match &restripe {
        Some(r) => r
            .sealed_lens
            .iter()
            .map(|&l| redundancy.shard_len(l as usize) as u64)
            .collect(),
        None => (0..count)
            .map(|c| largest_shard(size, chunk_size, redundancy, c))
            .collect(),
    };
    let needed = shard_sizes.iter().sum::<u64>() * redundancy.total() as u64;
    // A restripe's new shards replace the file's: it reserves only what they add.
    let needed = needed.saturating_sub(restripe.as_ref().map_or(0, |r| r.stored_bytes));
    // Refuse early what cannot fit; the reservation below decides atomically.
    let (quota, used) = store::accounts::quota(&ctx.db, account_id).await?;
    if to_i64(needed) > quota - used {
        return Err(quota_exceeded(needed, quota - used));
    }

    // Placement is CPU work proportional to chunks × workers: off the async threads.
    let candidates: Vec<Candidate> = workers.iter().map(Candidate::from).collect();
    let total = redundancy.total();
    let placement = tokio::task::spawn_blocking(move || {
        let placer = placement::Placer::new(&candidates, &[], total)?;
        let all: Vec<usize> = (0..total).collect();
        (0..count)
            .map(|c| placer.place(&file_id, c, &all))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| ServerError::internal("placement task"))?
    .map_err(|e| ServerError::refused(ErrorCode::NotEnoughWorkers, e.to_string()))?;

    // One grant per worker used, budgeted for its shards at their largest.
    let mut per_worker: Vec<u64> = vec![0; workers.len()];
    for (chunk, &largest) in placement.iter().zip(&shard_sizes) {
        for &w in chunk {
            per_worker[w] += largest;
        }
    }
    let upload_id: [u8; 16] = disktro_core::random_bytes();
    let upload_hex = disktro_core::ids::to_hex(&upload_id);
    let mut grants = Vec::new();
    let mut grant_of_worker = vec![u16::MAX; workers.len()];
    for (w, &budget) in per_worker.iter().enumerate().filter(|(_, b)| **b > 0) {
        grant_of_worker[w] = u16::try_from(grants.len()).expect("fewer than 65,536 workers per upload");
        grants.push(grants::put(
            &ctx.key,
            workers[w].node_id,
            &workers[w].url,
            upload_id,
            Serial::random(),
            budget,
            now,
        )?);
    }

    let mut tx = ctx.db.begin_write().await?;
    match uploads::reserve(&mut tx, account_id, needed, MAX_OPEN_UPLOADS).await? {
        uploads::Reserved::Yes => {}
        uploads::Reserved::OverQuota { left } => return Err(quota_exceeded(needed, left)),
        uploads::Reserved::TooManyOpen => {
            return Err(ServerError::refused(
                ErrorCode::TooManyUploads,
                format!("an account may have {MAX_OPEN_UPLOADS} uploads open at once; finish or cancel one first"),
            ));
        }
    }
    let row = UploadRow {
        file_id,
        size,
        redundancy,
        chunk_size,
        restripe: restripe.is_some(),
        folder_id,
    };
    let placement: Vec<Vec<u16>> = placement
        .into_iter()
        .map(|chunk| chunk.into_iter().map(|w| grant_of_worker[w]).collect())
        .collect();
    let stored_placement = uploads::encode_placement(&placement);
    if !uploads::create(
        &mut tx,
        &upload_hex,
        account_id,
        &row,
        &stored_placement,
        needed,
        now,
        now + UPLOAD_TTL,
    )
    .await?
    {
        return Err(ServerError::refused(
            ErrorCode::FileExists,
            if row.restripe {
                "the file is being restriped by another client"
            } else {
                "a file or upload with this id exists; pick another random id"
            },
        ));
    }
    uploads::record_grants(&mut tx, &upload_hex, 0, &grants).await?;
    tx.commit().await?;

    Ok(UploadPlan {
        upload_id: upload_hex,
        file_id,
        data_shards: redundancy.data,
        parity_shards: redundancy.parity,
        chunk_size,
        chunk_count: count,
        expires_at: now + UPLOAD_TTL,
        nodes: grants,
        placement,
    })
}

/// The account's upload `id`, unexpired.
async fn upload(ctx: &Context, account_id: &str, id: &str, now: i64) -> Result<UploadRow, ServerError> {
    uploads::open(&ctx.db, account_id, id, now)
        .await?
        .ok_or_else(upload_not_found)
}

/// Fresh put tokens for every slot of an upload in progress, in slot order: same workers, same
/// serials (so the workers count what was spent already against the same budgets), later expiry.
pub async fn renew(ctx: &Arc<Context>, account_id: &str, id: &str, now: i64) -> Result<Vec<PutGrant>, ServerError> {
    upload(ctx, account_id, id, now).await?;
    renew_all(ctx, id, now).await
}

/// Re-sign and record the tokens of every slot of upload `id` (its owner checked by the caller).
async fn renew_all(ctx: &Context, id: &str, now: i64) -> Result<Vec<PutGrant>, ServerError> {
    let grants = fresh_grants(ctx, id, &uploads::grant_targets(&ctx.db, id).await?, now)?;
    let mut tx = ctx.db.begin_write().await?;
    uploads::record_grants(&mut tx, id, 0, &grants).await?;
    tx.commit().await?;
    Ok(grants)
}

/// The stored plan of the account's open upload `id`; uploads begun before plans were kept have
/// none and can be neither replanned nor continued.
async fn kept_plan(ctx: &Context, account_id: &str, id: &str, up: &UploadRow) -> Result<uploads::Plan, ServerError> {
    uploads::plan(&ctx.db, account_id, id, up.redundancy.total())
        .await?
        .ok_or_else(|| {
            ServerError::refused(
                ErrorCode::InvalidField,
                "this upload began before plans were kept: it can neither be continued nor replanned; cancel it and upload again",
            )
        })
}

/// The answer for upload `id`: its shape from `up`, these slots and this placement.
fn plan_answer(
    id: &str,
    up: &UploadRow,
    expires_at: i64,
    nodes: Vec<PutGrant>,
    placement: Vec<Vec<u16>>,
) -> UploadPlan {
    UploadPlan {
        upload_id: id.to_owned(),
        file_id: up.file_id,
        data_shards: up.redundancy.data,
        parity_shards: up.redundancy.parity,
        chunk_size: up.chunk_size,
        chunk_count: placement.len() as u64,
        expires_at,
        nodes,
        placement,
    }
}

/// The plan of an upload in progress, as the last replan left it, with fresh tokens for every
/// slot: how a client that lost its own copy (a killed CLI, a reloaded tab) continues.
pub async fn plan(ctx: &Arc<Context>, account_id: &str, id: &str, now: i64) -> Result<UploadPlan, ServerError> {
    let up = upload(ctx, account_id, id, now).await?;
    let plan = kept_plan(ctx, account_id, id, &up).await?;
    let nodes = renew_all(ctx, id, now).await?;
    Ok(plan_answer(id, &up, plan.expires_at, nodes, plan.placement))
}

/// New tokens for the put grants `targets` hold, expiring an hour from `now`.
fn fresh_grants(
    ctx: &Context,
    upload_hex: &str,
    targets: &[uploads::GrantTarget],
    now: i64,
) -> Result<Vec<PutGrant>, ServerError> {
    let upload_id: [u8; 16] = disktro_core::ids::from_hex(upload_hex).map_err(|_| upload_not_found())?;
    targets
        .iter()
        .map(|t| grants::put(&ctx.key, t.node_id, &t.url, upload_id, t.serial, t.budget, now))
        .collect()
}

/// New slots of a plan (a replan's or a growth's) after its `first` slots: one per worker
/// chosen, budgeted for the shards it takes at their largest.
struct NewSlots {
    first: usize,
    of_worker: HashMap<usize, u16>,
    /// Per new slot, in order: the worker (an index into the writable workers) and its budget.
    budgets: Vec<(usize, u64)>,
}

impl NewSlots {
    fn after(first: usize) -> Self {
        Self {
            first,
            of_worker: HashMap::new(),
            budgets: Vec::new(),
        }
    }

    /// The slot of worker `w` (a new one on its first shard), its budget grown by `largest`.
    fn take(&mut self, w: usize, largest: u64) -> Result<u16, ServerError> {
        let slot = match self.of_worker.get(&w) {
            Some(&slot) => slot,
            None => {
                let slot = u16::try_from(self.first + self.budgets.len())
                    .map_err(|_| ServerError::internal("more than 65,536 slots in a plan"))?;
                self.budgets.push((w, 0));
                self.of_worker.insert(w, slot);
                slot
            }
        };
        self.budgets[usize::from(slot) - self.first].1 += largest;
        Ok(slot)
    }
}

/// Put tokens for new slots of upload `id`: one per `(worker, budget)` of `budgets`, each with a
/// serial of its own.
fn added_grants(
    ctx: &Context,
    id: &str,
    workers: &[nodes::Writable],
    budgets: &[(usize, u64)],
    now: i64,
) -> Result<Vec<PutGrant>, ServerError> {
    let upload_id: [u8; 16] = disktro_core::ids::from_hex(id).map_err(|_| upload_not_found())?;
    budgets
        .iter()
        .map(|&(w, budget)| {
            let worker = &workers[w];
            grants::put(
                &ctx.key,
                worker.node_id,
                &worker.url,
                upload_id,
                Serial::random(),
                budget,
                now,
            )
        })
        .collect()
}

/// A chunk and, per shard index that moves, the worker it goes to (`None`: left unplaced).
type ChunkMoves = (u64, Vec<(usize, Option<usize>)>);

/// Where the failed workers' waiting shards go: per chunk of `chunks` (sorted, in the plan),
/// each shard index that moves and the writable worker (an index into `workers`) it goes to, or
/// `None` when no worker may take it (it is left unplaced, for repair). The chunk's other slots
/// count towards the domain caps and are never chosen again; a chunk would keep fewer than
/// [`upload::min_stored`] shards is refused.
fn replace_failed(
    up: &UploadRow,
    placement: &[Vec<u16>],
    slots: &[Candidate],
    failed: &HashSet<NodeId>,
    workers: &[Candidate],
    chunks: &[u64],
) -> Result<Vec<ChunkMoves>, ServerError> {
    let total = up.redundancy.total();
    let may_leave = total - upload::min_stored(up.redundancy);
    let mut moves = Vec::new();
    for &c in chunks {
        let row = &placement[usize::try_from(c).map_err(|_| ServerError::internal("chunk index"))?];
        let mut held = Vec::with_capacity(total);
        let mut lost = Vec::new();
        let mut unplaced = 0;
        for (index, &s) in row.iter().enumerate() {
            if s & upload::UNPLACED != 0 {
                unplaced += 1;
                continue;
            }
            let node = slots
                .get(usize::from(s))
                .ok_or_else(|| ServerError::internal("a plan slot without a token"))?;
            if failed.contains(&node.node_id) {
                lost.push(index);
            } else {
                held.push(node.clone());
            }
        }
        if lost.is_empty() {
            continue;
        }
        let candidates: Vec<Candidate> = workers
            .iter()
            .filter(|w| !held.iter().any(|h| h.node_id == w.node_id))
            .cloned()
            .collect();
        // As many as the rules let go somewhere; the rest stay unplaced, within the allowance.
        let mut placed = lost.len();
        let chosen = loop {
            let attempt = placement::Placer::partial(&candidates, &held, total)
                .and_then(|p| p.place(&up.file_id, c, &lost[..placed]));
            match attempt {
                Ok(chosen) => break chosen,
                Err(_) if placed > 0 => placed -= 1,
                Err(e) => {
                    return Err(ServerError::refused(
                        ErrorCode::NotEnoughWorkers,
                        format!("cannot place chunk {c} again: {e}"),
                    ));
                }
            }
        };
        if unplaced + lost.len() - placed > may_leave {
            return Err(ServerError::refused(
                ErrorCode::NotEnoughWorkers,
                format!(
                    "too few workers are left to store chunk {c}: it needs {} of its {total} shards stored",
                    upload::min_stored(up.redundancy)
                ),
            ));
        }
        let mut chunk_moves: Vec<(usize, Option<usize>)> = lost[..placed]
            .iter()
            .zip(chosen)
            .map(|(&index, i)| {
                let w = workers
                    .iter()
                    .position(|w| w.node_id == candidates[i].node_id)
                    .expect("a candidate is a worker");
                (index, Some(w))
            })
            .collect();
        chunk_moves.extend(lost[placed..].iter().map(|&index| (index, None)));
        moves.push((c, chunk_moves));
    }
    Ok(moves)
}

/// Place again the shards that `req.failed` workers were to store for `req.chunks`: see the
/// module's **Replan**. Answers the whole amended plan with fresh tokens for every slot.
pub async fn replan(
    ctx: &Arc<Context>,
    account_id: &str,
    id: &str,
    req: Replan,
    now: i64,
) -> Result<UploadPlan, ServerError> {
    let up = upload(ctx, account_id, id, now).await?;
    let plan = kept_plan(ctx, account_id, id, &up).await?;
    if plan.replans >= MAX_REPLANS {
        return Err(ServerError::refused(
            ErrorCode::TooManyReplans,
            format!("an upload may replace failed workers {MAX_REPLANS} times; cancel it and upload again"),
        ));
    }
    let targets = uploads::grant_targets(&ctx.db, id).await?;
    if req.failed.is_empty() || req.failed.len() > targets.len() {
        return Err(bad(
            ErrorCode::InvalidField,
            "failed must name from one to all of the upload's workers",
        ));
    }
    let failed: HashSet<NodeId> = req.failed.iter().copied().collect();
    if let Some(stranger) = failed.iter().find(|f| !targets.iter().any(|t| t.node_id == **f)) {
        return Err(bad(
            ErrorCode::InvalidField,
            format!("worker {} is not a worker of this upload", stranger.to_hex()),
        ));
    }
    let mut chunks = req.chunks;
    chunks.sort_unstable();
    chunks.dedup();
    if chunks.last().is_some_and(|&c| c >= plan.placement.len() as u64) {
        return Err(bad(
            ErrorCode::InvalidField,
            "chunks names a chunk the upload does not have",
        ));
    }

    let max_shard = largest_shard(u64::from(up.chunk_size), up.chunk_size, up.redundancy, 0);
    let workers: Vec<nodes::Writable> = nodes::writable_now(ctx, now, to_i64(max_shard))
        .await?
        .into_iter()
        .filter(|w| !failed.contains(&w.node_id))
        .collect();
    let slots: Vec<Candidate> = targets
        .iter()
        .map(|t| Candidate {
            node_id: t.node_id,
            zone: t.zone.clone(),
            operator: t.operator.clone(),
        })
        .collect();
    let candidates: Vec<Candidate> = workers.iter().map(Candidate::from).collect();
    let (mut placement, moved) = {
        let (row, failed, placement) = (up.clone(), failed.clone(), plan.placement);
        tokio::task::spawn_blocking(move || {
            replace_failed(&row, &placement, &slots, &failed, &candidates, &chunks).map(|m| (placement, m))
        })
        .await
        .map_err(|_| ServerError::internal("placement task"))??
    };

    // One new slot per worker chosen, budgeted for the shards it now takes at their largest.
    let mut slots = NewSlots::after(targets.len());
    for (c, shards) in &moved {
        let at = usize::try_from(*c).map_err(|_| ServerError::internal("chunk index"))?;
        let largest = largest_shard(up.size, up.chunk_size, up.redundancy, *c);
        for &(index, w) in shards {
            placement[at][index] = match w {
                Some(w) => slots.take(w, largest)?,
                None => placement[at][index] | upload::UNPLACED,
            };
        }
    }
    let added = added_grants(ctx, id, &workers, &slots.budgets, now)?;
    let renewed = fresh_grants(ctx, id, &targets, now)?;

    let mut tx = ctx.db.begin_write().await?;
    if !uploads::amend_plan(&mut tx, id, &placement, plan.replans, up.size).await? {
        return Err(bad(
            ErrorCode::ChangedMeanwhile,
            "another replan of this upload came first; ask again",
        ));
    }
    uploads::record_grants(&mut tx, id, 0, &renewed).await?;
    uploads::record_grants(&mut tx, id, targets.len(), &added).await?;
    tx.commit().await?;
    tracing::info!(
        upload = id,
        failed = failed.len(),
        chunks = moved.len(),
        workers = added.len(),
        "upload replanned"
    );

    let mut nodes = renewed;
    nodes.extend(added);
    Ok(plan_answer(id, &up, plan.expires_at, nodes, placement))
}

/// The bytes an upload of `size` reserves: every shard of every chunk at its largest.
fn reservation(size: u64, chunk_size: u32, r: Redundancy) -> u64 {
    (0..padding::chunk_count(size, chunk_size))
        .map(|c| largest_shard(size, chunk_size, r, c))
        .sum::<u64>()
        * r.total() as u64
}

/// Give an upload another size class (a client streaming a file whose size it learns only at
/// its end): see [`Resize`]. Growing places the added chunks as begin places every chunk and
/// grants each worker they use a new slot (old slots keep their budgets, so an upload grows
/// only from a whole number of chunks); shrinking drops the chunks past the new end, whose
/// slots' budgets then go unspent. Answers the whole amended plan, every token fresh.
pub async fn resize(
    ctx: &Arc<Context>,
    account_id: &str,
    id: &str,
    req: Resize,
    now: i64,
) -> Result<UploadPlan, ServerError> {
    let up = upload(ctx, account_id, id, now).await?;
    if up.restripe {
        return Err(bad(ErrorCode::InvalidField, "a restripe keeps its file's size"));
    }
    if req.size > MAX_FILE_SIZE {
        return Err(ServerError::refused(
            ErrorCode::FileTooLarge,
            format!("files are limited to {MAX_FILE_SIZE} bytes"),
        ));
    }
    if !padding::is_size_class(req.size, up.chunk_size) {
        return Err(bad(
            ErrorCode::InvalidField,
            format!(
                "size must be a size class (FORMAT.md, Padding), e.g. {}",
                padding::size_class(req.size, up.chunk_size)
            ),
        ));
    }
    let plan = kept_plan(ctx, account_id, id, &up).await?;
    let (from, to) = (
        plan.placement.len() as u64,
        padding::chunk_count(req.size, up.chunk_size),
    );
    if to > from && !up.size.is_multiple_of(u64::from(up.chunk_size)) {
        return Err(bad(
            ErrorCode::InvalidField,
            "an upload grows only from a whole number of chunks (its last chunk's budgets are for a part of one)",
        ));
    }
    let targets = uploads::grant_targets(&ctx.db, id).await?;
    let mut placement = plan.placement;
    let mut added = Vec::new();
    if to > from {
        let max_shard = largest_shard(u64::from(up.chunk_size), up.chunk_size, up.redundancy, 0);
        let workers = nodes::writable_now(ctx, now, to_i64(max_shard)).await?;
        let candidates: Vec<Candidate> = workers.iter().map(Candidate::from).collect();
        let (total, file_id) = (up.redundancy.total(), up.file_id);
        let fresh = tokio::task::spawn_blocking(move || {
            let placer = placement::Placer::new(&candidates, &[], total)?;
            let all: Vec<usize> = (0..total).collect();
            (from..to)
                .map(|c| placer.place(&file_id, c, &all))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| ServerError::internal("placement task"))?
        .map_err(|e| ServerError::refused(ErrorCode::NotEnoughWorkers, format!("cannot grow the upload now: {e}")))?;
        // One new slot per worker the added chunks use, budgeted for their shards at their largest.
        let mut slots = NewSlots::after(targets.len());
        for (c, chunk) in (from..to).zip(fresh) {
            let largest = largest_shard(req.size, up.chunk_size, up.redundancy, c);
            placement.push(
                chunk
                    .into_iter()
                    .map(|w| slots.take(w, largest))
                    .collect::<Result<_, _>>()?,
            );
        }
        added = added_grants(ctx, id, &workers, &slots.budgets, now)?;
    } else {
        placement.truncate(usize::try_from(to).map_err(|_| ServerError::internal("chunk count"))?);
    }
    let renewed = fresh_grants(ctx, id, &targets, now)?;
    let reserved = reservation(req.size, up.chunk_size, up.redundancy);

    let mut tx = ctx.db.begin_write().await?;
    match uploads::resize(
        &mut tx,
        account_id,
        id,
        up.size,
        req.size,
        &placement,
        plan.replans,
        reserved,
    )
    .await?
    {
        uploads::Resized::Yes => {}
        uploads::Resized::OverQuota { left } => {
            return Err(quota_exceeded(
                reserved.saturating_sub(reservation(up.size, up.chunk_size, up.redundancy)),
                left,
            ));
        }
        uploads::Resized::ChangedMeanwhile => {
            return Err(bad(
                ErrorCode::ChangedMeanwhile,
                "a replan or resize of this upload came first; ask again",
            ));
        }
    }
    uploads::record_grants(&mut tx, id, 0, &renewed).await?;
    uploads::record_grants(&mut tx, id, targets.len(), &added).await?;
    tx.commit().await?;
    tracing::info!(upload = id, from, to, workers = added.len(), "upload resized");

    let up = UploadRow { size: req.size, ..up };
    let mut nodes = renewed;
    nodes.extend(added);
    Ok(plan_answer(id, &up, plan.expires_at, nodes, placement))
}

/// Abandon an upload: its reservation is given back and its put tokens revoked (the workers
/// delete what was stored under them when they next hear from the server).
pub async fn cancel(ctx: &Context, account_id: &str, id: &str, now: i64) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    if !uploads::end(&mut tx, account_id, id, uploads::Ending::Cancelled, now).await? {
        return Err(upload_not_found());
    }
    tx.commit().await?;
    Ok(())
}

fn bad(code: ErrorCode, message: impl Into<String>) -> ServerError {
    ServerError::refused(code, message)
}

/// What a commit records: the manifest, a row per shard, and the rows of shards left unplaced by
/// a replan (recorded lost on the worker that failed, for repair to restore).
#[derive(Debug)]
pub struct Checked {
    pub signed: SignedManifest,
    pub rows: Vec<ShardRow>,
    pub unplaced: Vec<ShardRow>,
}

/// Every check of a commit that needs no database: signature, owner, shape, receipts. Pure, so
/// each rule is unit-tested below; [`commit`] gathers its inputs and records what it returns.
/// `unplaced` names the shards (chunk, index) a replan left without a worker, and the worker that
/// had failed them: those need no receipt.
pub fn check_commit(
    up: &UploadRow,
    owner: &PublicKey,
    manifest: &[u8],
    receipts: &[Vec<u8>],
    node_keys: &HashMap<NodeId, PublicKey>,
    serials: &HashMap<Serial, NodeId>,
    unplaced: &HashMap<(u64, usize), NodeId>,
) -> Result<Checked, ServerError> {
    let signed = SignedManifest::decode(manifest)
        .map_err(|e| bad(ErrorCode::BadManifest, format!("the manifest is not valid: {e}")))?;
    if signed.owner() != owner {
        return Err(bad(
            ErrorCode::WrongOwner,
            "the manifest is not signed by this account's identity key",
        ));
    }
    let m = signed.manifest();
    let mismatch = |what: &str| {
        bad(
            ErrorCode::ManifestMismatch,
            format!("the manifest's {what} is not what the upload began with"),
        )
    };
    if m.file_id != up.file_id {
        return Err(mismatch("file id"));
    }
    if m.redundancy != up.redundancy {
        return Err(mismatch("redundancy"));
    }
    if m.chunk_size != up.chunk_size {
        return Err(mismatch("chunk size"));
    }
    if m.version() != 2 {
        return Err(bad(
            ErrorCode::BadManifest,
            "the manifest is in format version 1 (unpadded), which is read but no longer stored: update the client",
        ));
    }
    if !m.admits_size(up.size) {
        return Err(mismatch("size"));
    }
    let total = m.redundancy.total();
    if receipts.len() > m.chunks.len() * total * 2 {
        return Err(bad(
            ErrorCode::TooManyReceipts,
            "more receipts than twice the shards of the file",
        ));
    }

    // Every receipt: from a registered worker, its signature valid, under a token of this upload
    // issued to that worker. Indexed by shard id.
    let mut held: HashMap<ShardId, Vec<(NodeId, u32)>> = HashMap::with_capacity(receipts.len());
    for (i, bytes) in receipts.iter().enumerate() {
        let worker =
            Receipt::claimed_worker(bytes).map_err(|e| bad(ErrorCode::BadReceipt, format!("receipt {i}: {e}")))?;
        let key = node_keys.get(&worker).ok_or_else(|| {
            bad(
                ErrorCode::UnknownWorker,
                format!("receipt {i} names a worker that is not registered"),
            )
        })?;
        let receipt = Receipt::verify(bytes, key)
            .map_err(|_| bad(ErrorCode::BadReceipt, format!("receipt {i} does not verify")))?;
        if serials.get(&receipt.serial) != Some(&receipt.worker) {
            return Err(bad(
                ErrorCode::ReceiptNotForUpload,
                format!("receipt {i} answers no put token this upload gave that worker"),
            ));
        }
        held.entry(receipt.shard)
            .or_default()
            .push((receipt.worker, receipt.size));
    }

    let mut rows = Vec::with_capacity(m.chunks.len() * total);
    let mut left = Vec::new();
    for (c, chunk) in m.chunks.iter().enumerate() {
        let expected = m.redundancy.shard_len(chunk.sealed_len as usize);
        let mut used: HashSet<NodeId> = HashSet::with_capacity(total);
        let mut stored = 0;
        for (index, shard) in chunk.shards.iter().enumerate() {
            let holder = held
                .get(shard)
                .into_iter()
                .flatten()
                .find(|(node, size)| *size as usize == expected && !used.contains(node));
            if holder.is_none()
                && let Some(&node) = unplaced.get(&(c as u64, index))
            {
                left.push(ShardRow {
                    chunk: c as u64,
                    index,
                    shard: *shard,
                    node,
                    size: u32::try_from(expected).map_err(|_| bad(ErrorCode::BadManifest, "a shard over 4 GiB"))?,
                });
                continue;
            }
            let Some(&(node, size)) = holder else {
                return Err(bad(
                    ErrorCode::MissingReceipt,
                    format!(
                        "chunk {c} shard {index} has no receipt of the right size from a worker not already holding this chunk"
                    ),
                ));
            };
            used.insert(node);
            stored += 1;
            rows.push(ShardRow {
                chunk: c as u64,
                index,
                shard: *shard,
                node,
                size,
            });
        }
        if stored < upload::min_stored(m.redundancy) {
            return Err(bad(
                ErrorCode::MissingReceipt,
                format!(
                    "chunk {c} has {stored} shards stored; it needs {}",
                    upload::min_stored(m.redundancy)
                ),
            ));
        }
    }
    rows.extend(left.iter().cloned());
    Ok(Checked {
        signed,
        rows,
        unplaced: left,
    })
}

/// The shards of upload `id` a replan left unplaced, with the worker that had failed each.
async fn unplaced_shards(
    ctx: &Context,
    account_id: &str,
    id: &str,
    total: usize,
) -> Result<HashMap<(u64, usize), NodeId>, ServerError> {
    let Some(plan) = uploads::plan(&ctx.db, account_id, id, total).await? else {
        return Ok(HashMap::new());
    };
    if !plan.placement.iter().flatten().any(|s| s & upload::UNPLACED != 0) {
        return Ok(HashMap::new());
    }
    let slots = uploads::grant_targets(&ctx.db, id).await?;
    let mut out = HashMap::new();
    for (c, row) in plan.placement.iter().enumerate() {
        for (index, &s) in row.iter().enumerate().filter(|(_, s)| **s & upload::UNPLACED != 0) {
            let node = slots
                .get(usize::from(s & !upload::UNPLACED))
                .ok_or_else(|| ServerError::internal("an unplaced shard's slot has no token"))?;
            out.insert((c as u64, index), node.node_id);
        }
    }
    Ok(out)
}

/// Commit an upload: check everything, then record the file in one transaction.
pub async fn commit(
    ctx: &Arc<Context>,
    account_id: &str,
    id: &str,
    req: Commit,
    now: i64,
) -> Result<FileSummary, ServerError> {
    let up = upload(ctx, account_id, id, now).await?;
    let Commit {
        manifest,
        metadata,
        wrapped_key: wrapped,
        receipts,
    } = req;
    // A restripe keeps the file's metadata and key (perhaps from before padding): they must be
    // the stored ones; a new file's must have today's shapes.
    let replaced = if up.restripe {
        let file = store::files::read(&ctx.db, &up.file_id.to_hex())
            .await?
            .filter(|f| f.account_id == account_id)
            .ok_or_else(|| ServerError::refused(ErrorCode::FileNotFound, "the file being restriped was deleted"))?;
        if file.metadata != metadata || file.wrapped_key != wrapped {
            return Err(bad(
                ErrorCode::InvalidField,
                "a restripe keeps the file's metadata and wrapped key: send them as the file list gives them",
            ));
        }
        Some(file)
    } else {
        None
    };
    if replaced.is_none() && !disktro_core::metadata::is_padded_shape(&metadata) {
        return Err(bad(
            ErrorCode::BadMetadata,
            "metadata must be padded sealed metadata (\"DKMD\" version 2) of at most the largest name and type",
        ));
    }
    if replaced.is_none() && (wrapped.len() != WRAPPED_KEY_LEN || !wrapped.starts_with(b"DKWK")) {
        return Err(bad(
            ErrorCode::BadWrappedKey,
            "wrapped_key must be a wrapped key (\"DKWK\")",
        ));
    }
    let receipts: Vec<Vec<u8>> = receipts.into_iter().map(Base64::into_vec).collect();

    let owner = store::accounts::owner_key(&ctx.db, account_id).await?;
    // The keys of the workers the receipts name, not of every node: reading them all made each
    // commit cost the size of the network (`make bench-scale`).
    let claimed: Vec<NodeId> = receipts
        .iter()
        .filter_map(|r| Receipt::claimed_worker(r).ok())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let node_keys = store::nodes::keys_of(&ctx.db, &claimed).await?;
    let serials = uploads::serials(&ctx.db, id).await?;
    let unplaced = unplaced_shards(ctx, account_id, id, up.redundancy.total()).await?;
    // The class the upload began with is the file's size as the server knows it.
    let (up_size, up_folder) = (up.size, up.folder_id);
    // Signature checks are CPU work (one per shard): off the async threads.
    let Checked { signed, rows, unplaced } = tokio::task::spawn_blocking(move || {
        check_commit(&up, &owner, &manifest, &receipts, &node_keys, &serials, &unplaced)
    })
    .await
    .map_err(|_| ServerError::internal("commit check task"))??;
    let m = signed.manifest();
    let stored = m.stored_size();
    let file_hex = m.file_id.to_hex();
    if let Some(file) = replaced {
        return commit_restripe(ctx, account_id, id, &file, &signed, &rows, &unplaced, now).await;
    }

    let mut tx = ctx.db.begin_write().await?;
    if !uploads::end(&mut tx, account_id, id, uploads::Ending::Committed, now).await? {
        // Another request committed or cancelled it in the meantime.
        return Err(upload_not_found());
    }
    if !store::accounts::charge(&mut tx, account_id, stored).await? {
        drop(tx);
        let (quota, used) = store::accounts::quota(&ctx.db, account_id).await?;
        return Err(quota_exceeded(stored, quota - used));
    }
    store::files::insert(
        &mut tx,
        &store::files::NewFile {
            file_hex: &file_hex,
            account_id,
            manifest: &Base64::from(signed.as_bytes()),
            metadata: &metadata,
            wrapped_key: &wrapped,
            size: up_size,
            stored_bytes: stored,
            data_shards: m.redundancy.data,
            parity_shards: m.redundancy.parity,
            chunk_count: m.chunks.len() as u64,
            created_at: now,
            folder_id: up_folder,
        },
    )
    .await?;
    store::files::insert_shards(&mut tx, &file_hex, &rows, now).await?;
    for row in &unplaced {
        store::health::mark_lost(&mut tx, &row.node.to_hex(), &row.shard.to_hex(), "unplaced", now).await?;
    }
    tx.commit().await?;
    tracing::info!(file = %file_hex, chunks = m.chunks.len(), stored, unplaced = unplaced.len(), "file committed");

    let total = m.redundancy.total() as u64;
    Ok(FileSummary {
        file_id: m.file_id,
        metadata,
        wrapped_key: wrapped,
        size: up_size,
        stored_bytes: stored,
        data_shards: m.redundancy.data,
        parity_shards: m.redundancy.parity,
        chunk_count: m.chunks.len() as u64,
        created_at: now,
        health: crate::files::file_health(
            (u64::from(m.redundancy.data), u64::from(m.redundancy.parity)),
            m.chunks.len() as u64,
            total,
            None,
            // Chosen by the policy at begin (the file list says if the network has moved on).
            false,
        ),
        folder_id: up_folder,
    })
}

/// Whether manifest `new` stores the chunks of `old` as they are sealed (the same chunk size,
/// count, sealed lengths and layout): what a restripe may change is the redundancy and the shards.
pub fn keeps_every_chunk(old: &disktro_core::Manifest, new: &disktro_core::Manifest) -> bool {
    old.file_id == new.file_id
        && old.chunk_size == new.chunk_size
        && old.chunks.len() == new.chunks.len()
        && old
            .chunks
            .iter()
            .zip(&new.chunks)
            .all(|(a, b)| a.sealed_len == b.sealed_len && a.clear == b.clear)
}

/// Record a checked restripe of `file`: the new manifest and shards in place of the old, which
/// go to garbage collection (after its grace, so a reader holding the old manifest finishes), in
/// one transaction. The new manifest must keep every chunk's sealed length: a restripe changes
/// how the file is stored, never what.
#[allow(clippy::too_many_arguments)]
async fn commit_restripe(
    ctx: &Context,
    account_id: &str,
    id: &str,
    file: &store::files::StoredFile,
    signed: &SignedManifest,
    rows: &[ShardRow],
    unplaced: &[ShardRow],
    now: i64,
) -> Result<FileSummary, ServerError> {
    let m = signed.manifest();
    let old = SignedManifest::decode(&file.manifest)
        .map_err(|e| ServerError::internal(format!("a stored manifest does not decode: {e}")))?;
    if !keeps_every_chunk(old.manifest(), m) {
        return Err(bad(
            ErrorCode::ManifestMismatch,
            "a restripe keeps every chunk as sealed: the same chunk size, count and sealed lengths",
        ));
    }
    let file_hex = m.file_id.to_hex();
    let stored = m.stored_size();
    let mut tx = ctx.db.begin_write().await?;
    if !uploads::end(&mut tx, account_id, id, uploads::Ending::Committed, now).await? {
        return Err(upload_not_found());
    }
    let replaced = store::files::restripe(
        &mut tx,
        &store::files::Restripe {
            file_hex: &file_hex,
            account_id,
            manifest: &Base64::from(signed.as_bytes()),
            stored_bytes: stored,
            data_shards: m.redundancy.data,
            parity_shards: m.redundancy.parity,
        },
        now,
    )
    .await?;
    match replaced {
        store::files::Restriped::Yes => {}
        store::files::Restriped::NoFile => {
            return Err(ServerError::refused(
                ErrorCode::FileNotFound,
                "the file being restriped was deleted",
            ));
        }
        store::files::Restriped::OverQuota => {
            drop(tx);
            let (quota, used) = store::accounts::quota(&ctx.db, account_id).await?;
            return Err(quota_exceeded(stored.saturating_sub(file.stored_bytes), quota - used));
        }
    }
    store::files::insert_shards(&mut tx, &file_hex, rows, now).await?;
    for row in unplaced {
        store::health::mark_lost(&mut tx, &row.node.to_hex(), &row.shard.to_hex(), "unplaced", now).await?;
    }
    tx.commit().await?;
    tracing::info!(
        file = %file_hex,
        data = m.redundancy.data,
        parity = m.redundancy.parity,
        stored,
        "file restriped"
    );
    let total = m.redundancy.total() as u64;
    Ok(FileSummary {
        file_id: m.file_id,
        metadata: file.metadata.clone(),
        wrapped_key: file.wrapped_key.clone(),
        size: file.size,
        stored_bytes: stored,
        data_shards: m.redundancy.data,
        parity_shards: m.redundancy.parity,
        chunk_count: m.chunks.len() as u64,
        created_at: file.created_at,
        health: crate::files::file_health(
            (u64::from(m.redundancy.data), u64::from(m.redundancy.parity)),
            m.chunks.len() as u64,
            total,
            None,
            false,
        ),
        folder_id: file.folder_id,
    })
}

#[cfg(test)]
mod tests {
    //! The commit rules one by one, on a real signed manifest and real receipts: a valid commit
    //! passes, and each thing a client or worker could get wrong is refused with its own code.

    use disktro_core::keys::Keypair;
    use disktro_core::shard::Sharder;
    use disktro_core::squeeze::Codec;
    use disktro_core::{ChunkEntry, Manifest};

    use super::*;

    /// A whole raw 1 KiB chunk: body header, 1,024 bytes, tag.
    const SEALED_LEN: usize = 1049;

    struct Case {
        owner: Keypair,
        workers: Vec<Keypair>,
        up: UploadRow,
        manifest: Vec<u8>,
        /// One receipt per shard, by worker `i` for shard `i`, under serial `i`.
        receipts: Vec<Vec<u8>>,
        node_keys: HashMap<NodeId, PublicKey>,
        serials: HashMap<Serial, NodeId>,
        unplaced: HashMap<(u64, usize), NodeId>,
    }

    fn serial(i: usize) -> Serial {
        Serial([u8::try_from(i).unwrap(); 16])
    }

    fn receipt(worker: &Keypair, shard: ShardId, size: usize, serial: Serial) -> Vec<u8> {
        Receipt {
            worker: worker.public().node_id(),
            shard,
            size: u32::try_from(size).unwrap(),
            serial,
        }
        .sign(worker)
        .unwrap()
    }

    /// A one-chunk 6 + 4 upload of 1,024 bytes stored raw, every shard on its own worker.
    fn case() -> Case {
        let owner = Keypair::generate();
        let r = Redundancy::DEFAULT;
        let shards = Sharder::new(r).encode(&[7u8; SEALED_LEN]);
        let up = UploadRow {
            file_id: FileId([0x22; 16]),
            size: 1024,
            redundancy: r,
            chunk_size: 1024,
            restripe: false,
            folder_id: None,
        };
        let manifest = Manifest {
            file_id: up.file_id,
            redundancy: r,
            chunk_size: 1024,
            chunks: vec![ChunkEntry {
                sealed_len: u32::try_from(SEALED_LEN).unwrap(),
                shards: shards.ids().to_vec(),
                clear: None,
            }],
        }
        .sign(&owner)
        .unwrap()
        .as_bytes()
        .to_vec();
        let workers: Vec<Keypair> = (0..r.total()).map(|_| Keypair::generate()).collect();
        let len = r.shard_len(SEALED_LEN);
        let receipts = shards
            .ids()
            .iter()
            .enumerate()
            .map(|(i, id)| receipt(&workers[i], *id, len, serial(i)))
            .collect();
        let node_keys = workers.iter().map(|w| (w.public().node_id(), w.public())).collect();
        let serials = workers
            .iter()
            .enumerate()
            .map(|(i, w)| (serial(i), w.public().node_id()))
            .collect();
        Case {
            owner,
            workers,
            up,
            manifest,
            receipts,
            node_keys,
            serials,
            unplaced: HashMap::new(),
        }
    }

    fn check(c: &Case) -> Result<Vec<ShardRow>, ErrorCode> {
        check_commit(
            &c.up,
            &c.owner.public(),
            &c.manifest,
            &c.receipts,
            &c.node_keys,
            &c.serials,
            &c.unplaced,
        )
        .map(|checked| checked.rows)
        .map_err(|e| e.code())
    }

    #[test]
    fn a_complete_commit_records_every_shard_where_its_receipt_says() {
        let c = case();
        let rows = check(&c).unwrap();
        assert_eq!(rows.len(), 10);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!((row.chunk, row.index), (0, i));
            assert_eq!(row.node, c.workers[i].public().node_id());
        }
    }

    /// Tried: the last two shards without receipts, a replan having left them unplaced (their
    /// worker failed, none could take them); then three such shards.
    /// Must hold: two are recorded on the failed worker as unplaced (repair restores them), the
    /// rest where their receipts say; three would leave the chunk below min_stored (8 of 10) and
    /// are refused as missing_receipt.
    #[test]
    fn shards_a_replan_left_unplaced_need_no_receipt_within_the_allowance() {
        let mut c = case();
        let gone = Keypair::generate().public().node_id();
        c.receipts.truncate(8);
        c.unplaced = HashMap::from([((0, 8), gone), ((0, 9), gone)]);
        let checked = check_commit(
            &c.up,
            &c.owner.public(),
            &c.manifest,
            &c.receipts,
            &c.node_keys,
            &c.serials,
            &c.unplaced,
        )
        .unwrap();
        assert_eq!(checked.rows.len(), 10);
        assert_eq!(
            checked.unplaced.iter().map(|r| (r.index, r.node)).collect::<Vec<_>>(),
            vec![(8, gone), (9, gone)]
        );
        assert!(
            checked.rows[..8]
                .iter()
                .enumerate()
                .all(|(i, r)| r.node == c.workers[i].public().node_id())
        );

        c.receipts.truncate(7);
        c.unplaced.insert((0, 7), gone);
        assert_eq!(check(&c), Err(ErrorCode::MissingReceipt));
    }

    #[test]
    fn each_broken_rule_is_refused_with_its_code() {
        // Tried: a manifest signed by another key. Must hold: wrong_owner.
        let mut c = case();
        c.owner = Keypair::generate();
        assert_eq!(check(&c), Err(ErrorCode::WrongOwner));

        // Tried: a manifest whose size class differs from what began (a whole 1 KiB chunk where
        // 512 bytes began; two chunks' worth began). Must hold: manifest_mismatch.
        let mut c = case();
        c.up.size = 512;
        assert_eq!(check(&c), Err(ErrorCode::ManifestMismatch));
        c.up.size = 2048;
        assert_eq!(check(&c), Err(ErrorCode::ManifestMismatch));

        // Tried: a valid version-1 (unpadded) manifest, which states exact lengths. Must hold:
        // bad_manifest (read for old files, never stored anew).
        let mut c = case();
        let shards = Sharder::new(Redundancy::DEFAULT).encode(&[7u8; 1040]);
        c.manifest = Manifest {
            file_id: c.up.file_id,
            redundancy: Redundancy::DEFAULT,
            chunk_size: 1024,
            chunks: vec![ChunkEntry {
                sealed_len: 1040,
                shards: shards.ids().to_vec(),
                clear: Some(disktro_core::ClearLayout {
                    plain_len: 1024,
                    codec: Codec::Raw,
                }),
            }],
        }
        .sign(&c.owner)
        .unwrap()
        .as_bytes()
        .to_vec();
        assert_eq!(check(&c), Err(ErrorCode::BadManifest));

        // Tried: a manifest that does not decode. Must hold: bad_manifest.
        let mut c = case();
        c.manifest.truncate(10);
        assert_eq!(check(&c), Err(ErrorCode::BadManifest));

        // Tried: one shard without a receipt. Must hold: missing_receipt, nothing recorded.
        let mut c = case();
        c.receipts.pop();
        assert_eq!(check(&c), Err(ErrorCode::MissingReceipt));

        // Tried: a receipt from a worker the server does not know. Must hold: unknown_worker.
        let mut c = case();
        let stranger = Keypair::generate();
        c.receipts[0] = receipt(&stranger, ShardId::of(b"x"), 1, serial(0));
        assert_eq!(check(&c), Err(ErrorCode::UnknownWorker));

        // Tried: a receipt whose signature was altered. Must hold: bad_receipt.
        let mut c = case();
        let last = c.receipts[0].len() - 1;
        c.receipts[0][last] ^= 1;
        assert_eq!(check(&c), Err(ErrorCode::BadReceipt));

        // Tried: a receipt under a put token this upload gave another worker. Must hold:
        // receipt_not_for_upload.
        let mut c = case();
        c.serials.insert(serial(0), c.workers[1].public().node_id());
        assert_eq!(check(&c), Err(ErrorCode::ReceiptNotForUpload));

        // Tried: one worker holding two shards of the chunk (its receipt for shard 1 replaces
        // worker 1's). Must hold: missing_receipt, since a chunk needs distinct workers.
        let mut c = case();
        let ids = SignedManifest::decode(&c.manifest).unwrap().manifest().chunks[0]
            .shards
            .clone();
        let len = Redundancy::DEFAULT.shard_len(SEALED_LEN);
        c.receipts[1] = receipt(&c.workers[0], ids[1], len, serial(0));
        assert_eq!(check(&c), Err(ErrorCode::MissingReceipt));

        // Tried: a receipt of the wrong size for its shard. Must hold: missing_receipt.
        let mut c = case();
        c.receipts[2] = receipt(&c.workers[2], ids[2], len - 1, serial(2));
        assert_eq!(check(&c), Err(ErrorCode::MissingReceipt));

        // Tried: far more receipts than the file has shards. Must hold: too_many_receipts.
        let mut c = case();
        let extra = c.receipts[0].clone();
        c.receipts.extend(std::iter::repeat_n(extra, 20));
        assert_eq!(check(&c), Err(ErrorCode::TooManyReceipts));
    }

    #[test]
    fn a_restripe_may_change_the_shards_but_not_the_chunks() {
        use disktro_core::chunk::encode_all;
        use disktro_core::restripe::Restriper;
        let key = disktro_core::FileKey::generate();
        let data = vec![5u8; 150_000];
        let r43 = Redundancy::new(4, 3).unwrap();
        let (chunks, old) = encode_all(&key, FileId([9; 16]), r43, 64 * 1024, &data).unwrap();
        let mut restriper = Restriper::new(&old, Redundancy::DEFAULT).unwrap();
        for c in &chunks {
            let shards = c.shards.iter().map(|(id, b)| id.verify(b.to_vec())).collect();
            restriper.restripe(c.index, shards).unwrap();
        }
        let new = restriper.finish().unwrap();
        assert!(keeps_every_chunk(&old, &new));
        // Tried: a chunk's sealed length changed (other bytes under the same file). Must hold:
        // refused.
        let mut longer = new.clone();
        longer.chunks[1].sealed_len += 16;
        assert!(!keeps_every_chunk(&old, &longer));
        // Tried: the last chunk dropped; another file id; another chunk size. Must hold: refused.
        let mut shorter = new.clone();
        shorter.chunks.pop();
        assert!(!keeps_every_chunk(&old, &shorter));
        let mut other = new.clone();
        other.file_id = FileId([8; 16]);
        assert!(!keeps_every_chunk(&old, &other));
        let mut resized = new;
        resized.chunk_size *= 2;
        assert!(!keeps_every_chunk(&old, &resized));
    }
}
