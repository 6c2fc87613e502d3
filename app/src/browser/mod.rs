//! What only runs in the browser (the `hydrate` build): the in-tab data path and its plumbing.
//!
//! The main thread renders and talks to the server's API; everything heavy runs in one Web Worker
//! ([`pipeline`]) so the page never stalls: Argon2id for log-ins, and the upload and download
//! pipelines. Module by module:
//!
//! - [`js`]: the global scope (window or worker), timers, `fetch`;
//! - [`api`]: the server's JSON API with the session's CSRF token;
//! - [`keyring`]: the account's keys, kept for the tab's life in `sessionStorage`;
//! - [`seal`]: AES-256-GCM through WebCrypto, or the `aes-gcm` crate where WebCrypto is missing;
//! - [`link`]: one multiplexed WebSocket to a storage worker, with backpressure;
//! - [`upload`] / [`download`]: the pipelines, mirroring the CLI's; [`file_read`]: a file's
//!   chunks read ahead from its stream into reused buffers, for the upload;
//! - [`restripe`]: a file stored below the redundancy policy, re-encoded by its owner's tab;
//! - [`unfinished`]: uploads under way, kept in IndexedDB so that they can be continued;
//! - [`pipeline`]: the Web Worker's entry point and the main thread's handle on it;
//! - [`save`]: streaming a download to disk (File System Access, a service worker stream, or a
//!   Blob for small files);
//! - [`dropped`]: dropped and picked folders, walked into files with their folder paths.

pub mod api;
pub mod download;
pub mod dropped;
pub mod file_read;
pub mod js;
pub mod keyring;
pub mod link;
pub mod pipeline;
pub mod restripe;
pub mod save;
pub mod seal;
pub mod unfinished;
pub mod upload;

pub use crate::error::Failure;
