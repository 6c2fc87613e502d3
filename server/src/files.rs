//! Committed files: the account's list (with each file's redundancy health), what a reader gets
//! (manifest, metadata, where the shards are, and get tokens for them), and delete, which hands
//! the shards to garbage collection, revokes the file's shares and returns its bytes to the quota
//! in one transaction. Uploads (begin to commit) are [`crate::uploads`].

use std::collections::HashMap;

use disktro_core::NodeId;
use disktro_core::Redundancy;
use disktro_core::api::{ErrorCode, FileDownload, FileList, FileSummary, NodeStatus, ReadNode, RedundancyHealth};
use disktro_core::keys::PublicKey;
use disktro_core::{FileId, FolderId};

use crate::context::Context;
use crate::durability::policy;
use crate::error::ServerError;
use crate::grants::{self, Placed};
use crate::nodes;
use crate::store;

/// Files listed per page at most.
pub const MAX_PAGE: i64 = 1000;

/// What a file survives: its weakest chunk, the whole zones it can lose now, and the model's
/// yearly loss at full health under [`crate::durability::model::STATED`]; `below_policy` as
/// [`crate::durability::policy::below`] says.
pub(crate) fn file_health(
    (data, parity): (u64, u64),
    chunks: u64,
    weakest: u64,
    most_in_one_zone: Option<u64>,
    below_policy: bool,
) -> RedundancyHealth {
    use crate::durability::model;
    let spare = weakest.saturating_sub(data);
    let policy = model::Policy {
        data: u32::try_from(data).unwrap_or(u32::MAX),
        parity: u32::try_from(parity).unwrap_or(u32::MAX),
        ..model::STATED
    };
    RedundancyHealth {
        weakest_chunk_healthy: weakest,
        shards_per_chunk: data + parity,
        needed: data,
        zones_survivable: most_in_one_zone.map(|most| spare.checked_div(most).unwrap_or(0)),
        yearly_loss: model::annual_file_loss(&policy, chunks.max(1)),
        model: model::STATED_IN_WORDS.to_owned(),
        below_policy,
    }
}

fn file_not_found() -> ServerError {
    ServerError::refused(ErrorCode::FileNotFound, "no such file")
}

/// The account's files, newest first: all of them (`folder` none), or those in one folder
/// (`Some(None)`: at the top of the tree). `total` counts all the account's files.
pub async fn list(
    ctx: &Context,
    account_id: &str,
    limit: i64,
    after: Option<&str>,
    folder: Option<Option<FolderId>>,
    now: i64,
) -> Result<FileList, ServerError> {
    let limit = usize::try_from(limit.clamp(1, MAX_PAGE)).unwrap_or(1);
    let after = after.map(page_start).transpose()?;
    if let Some(Some(f)) = &folder
        && store::folders::get(&ctx.db, account_id, f).await?.is_none()
    {
        return Err(ServerError::refused(ErrorCode::FolderNotFound, "no such folder"));
    }
    // One more than the page, to know whether another follows.
    let mut rows = store::files::list(&ctx.db, account_id, limit + 1, after.as_ref(), folder).await?;
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|f| format!("{}.{}", f.created_at, f.file_id))
    });
    // Health for this page's files only: the account's other files are not read.
    let page: Vec<String> = rows.iter().map(|f| f.file_id.to_string()).collect();
    let online_since = nodes::online_since(now, ctx.heartbeat_interval);
    let health = store::files::page_health(&ctx.db, &page, online_since).await?;
    let target = ctx.durability.durability_target;
    let (_, policy_now) = policy::now(ctx, now).await?;
    let below = |data: u64, parity: u64| {
        let stored = u8::try_from(data)
            .ok()
            .zip(u8::try_from(parity).ok())
            .and_then(|(d, p)| Redundancy::new(d, p).ok());
        policy_now
            .as_ref()
            .zip(stored)
            .is_some_and(|(now, stored)| policy::below(stored, now, target))
    };
    let files = rows
        .into_iter()
        .map(|f| FileSummary {
            health: file_health(
                (f.data_shards, f.parity_shards),
                f.chunk_count,
                health.get(&f.file_id).map_or(0, |h| h.weakest_chunk),
                Some(health.get(&f.file_id).map_or(0, |h| h.most_in_one_zone)),
                below(f.data_shards, f.parity_shards),
            ),
            metadata: f.metadata,
            wrapped_key: f.wrapped_key,
            size: f.size,
            stored_bytes: f.stored_bytes,
            data_shards: u8::try_from(f.data_shards).unwrap_or(0),
            parity_shards: u8::try_from(f.parity_shards).unwrap_or(0),
            chunk_count: f.chunk_count,
            created_at: f.created_at,
            file_id: f.file_id,
            folder_id: f.folder_id,
        })
        .collect();
    let total = store::files::count(&ctx.db, account_id).await?;
    let (quota, used) = store::accounts::quota(&ctx.db, account_id).await?;
    Ok(FileList {
        files,
        total,
        used_bytes: store::to_u64(used),
        quota_bytes: store::to_u64(quota),
        next: next.flatten(),
    })
}

/// A page's `after` (`created_at.file_id`, as the page before's `next` gave it).
fn page_start(after: &str) -> Result<store::files::PageStart, ServerError> {
    let bad = || ServerError::refused(ErrorCode::InvalidField, "`after` is not a page's `next`");
    let (created_at, file_id) = after.split_once('.').ok_or_else(bad)?;
    Ok(store::files::PageStart {
        created_at: created_at.parse().map_err(|_| bad())?,
        file_id: file_id.parse().map_err(|_| bad())?,
    })
}

/// What a reader gets for file `file_hex`; `owner` limits it to that account's files and adds
/// the wrapped key. Shares pass `None` (their own checks come first). The get tokens name the
/// reader's `order_key` ([`grants::ReadGrant`]).
pub async fn download(
    ctx: &Context,
    file_hex: &str,
    owner: Option<&str>,
    serial_tag: Option<[u8; 8]>,
    order_key: Option<PublicKey>,
    now: i64,
) -> Result<FileDownload, ServerError> {
    let file_id: FileId = file_hex.parse().map_err(|_| file_not_found())?;
    let file = store::files::read(&ctx.db, file_hex)
        .await?
        .ok_or_else(file_not_found)?;
    // Another account's file is "no such file": its existence is not revealed.
    if owner.is_some_and(|o| o != file.account_id) {
        return Err(file_not_found());
    }
    let (shards, extra) = store::files::reading(&ctx.db, file_hex).await?;
    // Counted in memory, for the hot-files job: granting a read writes nothing.
    ctx.reads.record(file_id, now);

    let mut node_index: HashMap<NodeId, usize> = HashMap::new();
    let mut node_info: Vec<(NodeId, String, i64, Vec<Placed>)> = Vec::new();
    // The node's index in the answer, its get tokens to cover `s`; and the chunk's index.
    let mut place = |s: &store::files::ShardLocation| -> Result<(u16, usize), ServerError> {
        let n = *node_index.entry(s.node).or_insert_with(|| {
            node_info.push((s.node, s.url.clone(), s.last_seen, Vec::new()));
            node_info.len() - 1
        });
        node_info[n].3.push(Placed {
            chunk: s.chunk,
            shard: s.shard,
            size: s.size,
        });
        let c = usize::try_from(s.chunk).map_err(|_| ServerError::internal("chunk index"))?;
        Ok((
            u16::try_from(n).map_err(|_| ServerError::internal("too many workers"))?,
            c,
        ))
    };
    let mut locations: Vec<Vec<u16>> = Vec::new();
    for s in &shards {
        let (n, c) = place(s)?;
        if locations.len() <= c {
            locations.resize_with(c + 1, Vec::new);
        }
        locations[c].push(n);
    }
    // Copies of a hot file's shards: more candidates for the same shards, under the same tokens.
    let mut copies: Vec<Vec<[u16; 2]>> = Vec::new();
    for copy in &extra {
        let (n, c) = place(&copy.location)?;
        if copies.len() <= c {
            copies.resize_with(c + 1, Vec::new);
        }
        copies[c].push([
            u16::try_from(copy.idx).map_err(|_| ServerError::internal("shard index"))?,
            n,
        ]);
    }
    let holders: Vec<(NodeId, Vec<Placed>)> = node_info
        .iter_mut()
        .map(|(id, _, _, placed)| (*id, std::mem::take(placed)))
        .collect();
    let tokens = grants::read(
        &ctx.key,
        file_id,
        &holders,
        now,
        grants::ReadGrant {
            ttl: ctx.get_token_ttl,
            serial_tag,
            order_key,
        },
    )?;
    let nodes_out: Vec<ReadNode> = node_info
        .into_iter()
        .zip(tokens)
        .map(|((id, url, last_seen, _), tokens)| ReadNode {
            node_id: id,
            url,
            status: NodeStatus::of(last_seen, now, ctx.heartbeat_interval),
            tokens,
        })
        .collect();
    Ok(FileDownload {
        file_id,
        manifest: file.manifest,
        metadata: file.metadata,
        wrapped_key: owner.is_some().then_some(file.wrapped_key),
        size: file.size,
        created_at: file.created_at,
        nodes: nodes_out,
        locations,
        copies,
        download_id: None,
    })
}

/// Delete a file: shards to garbage collection, shares revoked, quota returned.
pub async fn delete(ctx: &Context, account_id: &str, file_hex: &str, now: i64) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    if !store::files::delete(&mut tx, account_id, file_hex, now).await? {
        return Err(file_not_found());
    }
    tx.commit().await?;
    tracing::info!(file = %file_hex, "file deleted; shards handed to garbage collection");
    Ok(())
}
