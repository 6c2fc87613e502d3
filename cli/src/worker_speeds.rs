//! What earlier downloads measured of each worker: `worker-speeds.json` in the config directory
//! ([`crate::session::dir`]), node id → throughput and when it was measured. A download starts
//! from these figures ([`disktro_core::fetch::Reads::remembering`]) so a worker known slow is not
//! handed its first chunks, and saves what it measured at its end (and forgets the figure of a
//! worker that straggled without answering once). Figures older than [`FORGET_AFTER`] are
//! dropped (links change); the file is a cache: one that cannot be read or
//! written costs a download its head start, never the download.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use disktro_core::NodeId;
use disktro_net::durable;
use serde::{Deserialize, Serialize};

/// How long a measured figure is trusted.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Serialize, Deserialize, Clone, Copy)]
struct Measured {
    bytes_per_second: f64,
    /// Seconds since the Unix epoch.
    at: u64,
}

/// The figures remembered, fresh ones only.
#[derive(Debug, Default)]
pub struct WorkerSpeeds {
    known: HashMap<NodeId, Measured>,
    /// Nodes whose remembered figure a download disproved, removed from the file on saving.
    forgotten: HashSet<NodeId>,
}

fn file() -> Option<std::path::PathBuf> {
    Some(crate::session::dir().ok()?.join("worker-speeds.json"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl WorkerSpeeds {
    /// The figures saved by earlier downloads, younger than [`FORGET_AFTER`]; none when the
    /// file is missing or damaged.
    pub fn load() -> Self {
        file().map(|f| Self::load_from(&f)).unwrap_or_default()
    }

    fn load_from(path: &Path) -> Self {
        let known: HashMap<NodeId, Measured> = std::fs::read(path)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        let oldest = now().saturating_sub(FORGET_AFTER.as_secs());
        Self {
            known: known
                .into_iter()
                .filter(|(_, m)| m.at >= oldest && m.bytes_per_second.is_finite() && m.bytes_per_second > 0.0)
                .collect(),
            forgotten: HashSet::new(),
        }
    }

    /// The throughput last measured of `node`, in bytes per second.
    pub fn get(&self, node: &NodeId) -> Option<f64> {
        self.known.get(node).map(|m| m.bytes_per_second)
    }

    /// Take what a download measured, as of now.
    pub fn learn(&mut self, measured: impl IntoIterator<Item = (NodeId, f64)>) {
        let at = now();
        for (node, bytes_per_second) in measured {
            self.known.insert(node, Measured { bytes_per_second, at });
        }
    }

    /// Forget what was remembered of `nodes` (a download found it no longer true).
    pub fn forget(&mut self, nodes: impl IntoIterator<Item = NodeId>) {
        for node in nodes {
            self.known.remove(&node);
            self.forgotten.insert(node);
        }
    }

    /// Write the figures back, merged with what another download saved meanwhile (the newer
    /// figure of a node wins). Best effort: a cache that cannot be written is skipped.
    pub fn save(self) {
        if let Some(path) = file() {
            self.save_to(&path);
        }
    }

    fn save_to(mut self, path: &Path) {
        let theirs = Self::load_from(path);
        for (node, m) in theirs.known {
            if self.forgotten.contains(&node) {
                continue;
            }
            let ours = self.known.entry(node).or_insert(m);
            if m.at > ours.at {
                *ours = m;
            }
        }
        let Ok(text) = serde_json::to_vec(&self.known) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = durable::replace(path, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_back_until_they_are_a_day_old() {
        // Tried: save a fresh figure for one node and a 25-hour-old one for another, then a
        // damaged file.
        // Must hold: the fresh figure loads, the old one is dropped; a damaged file loads as
        // nothing known, and saving over it works.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker-speeds.json");
        let fresh = NodeId([1; 32]);
        let old = NodeId([2; 32]);
        let mut speeds = WorkerSpeeds::default();
        speeds.learn([(fresh, 5e6)]);
        speeds.known.insert(
            old,
            Measured {
                bytes_per_second: 1e6,
                at: now() - 25 * 3600,
            },
        );
        speeds.save_to(&path);
        let loaded = WorkerSpeeds::load_from(&path);
        assert_eq!(loaded.get(&fresh), Some(5e6));
        assert_eq!(loaded.get(&old), None);

        std::fs::write(&path, b"{not json").unwrap();
        assert!(WorkerSpeeds::load_from(&path).known.is_empty());
        let mut again = WorkerSpeeds::load_from(&path);
        again.learn([(old, 2e6)]);
        again.save_to(&path);
        assert_eq!(WorkerSpeeds::load_from(&path).get(&old), Some(2e6));

        // Tried: a later download forgets a node's figure. Must hold: it is gone from the file.
        let mut later = WorkerSpeeds::default();
        later.forget([old]);
        later.save_to(&path);
        assert_eq!(WorkerSpeeds::load_from(&path).get(&old), None);
    }
}
