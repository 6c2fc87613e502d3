//! `disktro-worker drain`: leave the network without costing any file a shard. The request is
//! signed by the node key, so only whoever holds the node's data directory can make it; the
//! server then places no new shards here and moves every shard held here to other nodes under
//! the placement rules, and the node is `exited` once none is left. The worker must keep running
//! meanwhile (its shards are still read) and can be stopped after.

use std::path::Path;
use std::time::Duration;

use disktro_core::api::node::{self as api, DrainRequest, DrainStatus};
use disktro_net::keyfile;

/// Time between two progress checks while following a drain.
const POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("no node key in {0}: give the worker's own --data-dir")]
    NoNodeKey(String),
    #[error(transparent)]
    NodeKey(#[from] keyfile::KeyFileError),
    #[error("the worker has no --server to ask")]
    NoServer,
    #[error("cannot reach the server: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the server refused: {status} {body}")]
    Refused { status: u16, body: String },
}

/// Ask `server` that the node whose key is in `data_dir` drain (`drain`) or stay (`!drain`), then,
/// with `follow`, report progress through `progress` until the node has exited.
pub async fn run(
    server: Option<&str>,
    data_dir: &Path,
    drain: bool,
    follow: bool,
    progress: &dyn Fn(&DrainStatus),
) -> Result<DrainStatus, DrainError> {
    let server = server.ok_or(DrainError::NoServer)?;
    if !data_dir.join(keyfile::NODE_KEY_FILE).exists() {
        return Err(DrainError::NoNodeKey(data_dir.display().to_string()));
    }
    let (key, _) = keyfile::load_or_create(data_dir)?;
    disktro_net::tls::install_default_provider();
    let http = crate::control::http_client()?;
    let ask = |drain: bool| {
        let body = serde_json::to_vec(&DrainRequest {
            node_id: key.public().node_id(),
            sent_at: disktro_net::unix_now(),
            drain,
        })
        .expect("plain structs serialize");
        let signature = key.sign(api::DRAIN_DOMAIN, &body);
        http.post(format!("{}{}", server.trim_end_matches('/'), api::DRAIN_PATH))
            .header("content-type", "application/json")
            .header(api::SIGNATURE_HEADER, disktro_core::ids::to_hex(&signature))
            .body(body)
            .send()
    };
    loop {
        let response = ask(drain).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(DrainError::Refused {
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        let answer: DrainStatus = response.json().await?;
        progress(&answer);
        if !drain || !follow || answer.state != "draining" {
            return Ok(answer);
        }
        tokio::time::sleep(POLL).await;
    }
}
