//! The files page: drop files (or pick them) to upload, watch each upload's progress, and the
//! list of stored files with names decrypted in this tab, redundancy health, download, share and
//! delete. Uploads and downloads run in the pipeline worker; this page only shows them.

use crate::error::Failure;
use disktro_core::api::FileSummary;
use leptos::prelude::*;

use crate::AccountSignal;
use crate::format;
use crate::pages::share_dialog::{ShareDialog, ShareTarget};
use crate::pages::unfinished::{Unfinished, UnfinishedList};

/// A stored file as the list shows it.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub summary: FileSummary,
    pub name: String,
    pub mime: String,
    /// The exact size, from the sealed metadata (the summary's is the padded size class; it
    /// stands in when the metadata does not open).
    pub size: u64,
}

/// A folder of the account's tree, its name opened in this tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRow {
    pub id: disktro_core::FolderId,
    pub parent: Option<disktro_core::FolderId>,
    pub name: String,
}

/// How the list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Newest,
    Name,
    Largest,
}

/// State of one transfer (upload or download) row.
// Built only by the browser build's handlers.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Phase {
    Running,
    Done,
    /// Stopped by the user: not an error.
    Cancelled,
    Failed(String),
}

impl Phase {
    /// How a transfer that ended with `outcome` ended: a cancellation is not a failure.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn ended(outcome: Result<(), &Failure>) -> Self {
        match outcome {
            Ok(()) => Self::Done,
            Err(Failure::Cancelled) => Self::Cancelled,
            Err(f) => Self::Failed(f.to_string()),
        }
    }
}

/// One upload or download in progress (or just finished).
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: u64,
    pub upload: bool,
    pub name: String,
    pub size: u64,
    pub bytes_done: u64,
    pub shards_done: u64,
    pub shards_total: u64,
    pub started_ms: f64,
    pub now_ms: f64,
    pub phase: Phase,
    /// The pipeline job, to cancel it.
    pub job: Option<u32>,
}

impl Transfer {
    fn eta(&self) -> String {
        let elapsed = (self.now_ms - self.started_ms) / 1000.0;
        if self.bytes_done == 0 || elapsed <= 0.0 {
            return "—".to_owned();
        }
        let rate = self.bytes_done as f64 / elapsed;
        format::duration(self.size.saturating_sub(self.bytes_done) as f64 / rate)
    }
}

/// A file or a folder of the list: what is ticked for a bulk action, or dragged onto a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    File(disktro_core::FileId),
    Folder(disktro_core::FolderId),
}

/// The files page's state. The app keeps it (provided at its root), not the page, so that
/// transfers run on and stay listed while the user is on other pages, and the list learns of an
/// upload that finished meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Files {
    rows: RwSignal<Option<Result<Vec<FileRow>, Failure>>>,
    usage: RwSignal<(u64, u64)>,
    transfers: RwSignal<Vec<Transfer>>,
    /// Uploads begun earlier that can be continued.
    pub(super) unfinished: RwSignal<Vec<Unfinished>>,
    share: RwSignal<Option<ShareTarget>>,
    /// The account's folders (names opened here), and the one shown (none: the top).
    folders: RwSignal<Vec<FolderRow>>,
    current: RwSignal<Option<disktro_core::FolderId>>,
    /// Names searched for (in every folder, decrypted here), and the order.
    query: RwSignal<String>,
    sort: RwSignal<Sort>,
    /// Files and folders ticked for a bulk download or delete.
    selected: RwSignal<Vec<Item>>,
    /// A file or folder being dragged (onto a folder, to move it there).
    dragging: RwSignal<Option<Item>>,
}

impl Files {
    /// Create the state (once, at the app's root) and provide it to every page.
    pub fn provide() -> Self {
        let files = Self {
            rows: RwSignal::new(None),
            usage: RwSignal::new((0, 0)),
            transfers: RwSignal::new(Vec::new()),
            unfinished: RwSignal::new(Vec::new()),
            share: RwSignal::new(None),
            folders: RwSignal::new(Vec::new()),
            current: RwSignal::new(None),
            query: RwSignal::new(String::new()),
            sort: RwSignal::new(Sort::default()),
            selected: RwSignal::new(Vec::new()),
            dragging: RwSignal::new(None),
        };
        provide_context(files);
        // Signed out: the names decrypted for that account must not stay on show in this tab.
        let account = expect_context::<AccountSignal>();
        Effect::new(move || {
            if account.get().is_none() {
                files.rows.set(None);
                files.folders.set(Vec::new());
                files.current.set(None);
                files.selected.set(Vec::new());
                files.usage.set((0, 0));
                files.unfinished.set(Vec::new());
                files.transfers.update(|ts| ts.retain(|t| t.phase == Phase::Running));
            }
        });
        #[cfg(feature = "hydrate")]
        actions::warn_before_leaving(files);
        files
    }

    /// An upload is running: leaving the site now would lose it.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn uploading(&self) -> bool {
        self.transfers
            .with_untracked(|ts| ts.iter().any(|t| t.upload && t.phase == Phase::Running))
    }

    /// Name and size of each upload running in this tab.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(super) fn running_uploads(&self) -> Vec<(String, u64)> {
        self.transfers.with_untracked(|ts| {
            ts.iter()
                .filter(|t| t.upload && t.phase == Phase::Running)
                .map(|t| (t.name.clone(), t.size))
                .collect()
        })
    }

    /// `/a/b` of folder `id` (`/` for the top), by the names opened here.
    fn path_of(&self, id: Option<disktro_core::FolderId>) -> Vec<FolderRow> {
        self.folders.with(|all| {
            let mut path = Vec::new();
            let mut at = id;
            while let Some(f) = at.and_then(|id| all.iter().find(|f| f.id == id)) {
                path.push(f.clone());
                at = f.parent;
                if path.len() > all.len() {
                    break;
                }
            }
            path.reverse();
            path
        })
    }

    /// The folder at `path` (`/a/b`, from the top), by the names opened here.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn folder_at(&self, path: &str) -> Option<Option<disktro_core::FolderId>> {
        self.folders.with(|all| {
            let mut at = None;
            for part in path.split('/').filter(|p| !p.is_empty()) {
                at = Some(all.iter().find(|f| f.parent == at && f.name == part)?.id);
            }
            Some(at)
        })
    }

    /// Folder `top` and every folder below it, by the tree opened here.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn subtree(&self, top: disktro_core::FolderId) -> Vec<disktro_core::FolderId> {
        self.folders.with_untracked(|all| {
            let mut found = vec![top];
            let mut at = 0;
            while at < found.len() {
                let parent = found[at];
                found.extend(all.iter().filter(|f| f.parent == Some(parent)).map(|f| f.id));
                at += 1;
            }
            found
        })
    }

    /// Tick or untick `item`.
    fn tick(&self, item: Item, on: bool) {
        self.selected.update(|s| {
            s.retain(|i| *i != item);
            if on {
                s.push(item);
            }
        });
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn update(&self, id: u64, f: impl FnOnce(&mut Transfer)) {
        self.transfers.update(|ts| {
            if let Some(t) = ts.iter_mut().find(|t| t.id == id) {
                f(t);
            }
        });
    }
}

#[cfg(feature = "hydrate")]
pub(super) mod actions {
    //! What the page's buttons do, in the browser.
    use crate::error::Failure;
    use disktro_core::api::{FileDownload, FileList};
    use disktro_core::metadata::FileMetadata;
    use leptos::prelude::*;

    use super::{FileRow, Files, FolderRow, Item, Phase, Transfer};
    use crate::browser::api::Api;
    use crate::browser::js;
    use crate::browser::keyring::Keyring;
    use crate::browser::pipeline::{Event, Pipeline, Request};

    pub fn keys() -> Result<Keyring, Failure> {
        Keyring::load().ok_or(Failure::SignedOut)
    }

    /// A new running transfer row, on top; returns its id.
    fn start(files: Files, upload: bool, name: String, size: u64) -> u64 {
        thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(1) });
        let id = NEXT.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        let now = js::now_ms();
        files.transfers.update(|ts| {
            ts.insert(
                0,
                Transfer {
                    id,
                    upload,
                    name,
                    size,
                    bytes_done: 0,
                    shards_done: 0,
                    shards_total: 0,
                    started_ms: now,
                    now_ms: now,
                    phase: Phase::Running,
                    job: None,
                },
            );
        });
        id
    }

    pub async fn refresh(files: Files) {
        let result = async {
            let me = keys()?;
            let api = Api::new(Some(me.csrf.clone()));
            let failed = |e: crate::error::ApiFailure| {
                if e.status == 401 {
                    Keyring::forget();
                    Failure::Api(e).with_message("Your session ended: log in again.".to_owned())
                } else {
                    Failure::Api(e)
                }
            };
            // Every page, in order: the list is sorted and searched here, where names open.
            let mut list: FileList = api.get("/files?limit=1000").await.map_err(failed)?;
            while let Some(after) = list.next.take() {
                let after = String::from(js_sys::encode_uri_component(&after));
                let page: FileList = api
                    .get(&format!("/files?limit=1000&after={after}"))
                    .await
                    .map_err(failed)?;
                list.files.extend(page.files);
                (list.used_bytes, list.quota_bytes, list.next) = (page.used_bytes, page.quota_bytes, page.next);
            }
            files.usage.set((list.used_bytes, list.quota_bytes));
            let tree: disktro_core::api::FolderList = api.get("/folders").await.map_err(failed)?;
            let mut folders = Vec::with_capacity(tree.folders.len());
            for f in tree.folders {
                let name = disktro_core::folder::open_name(&me.keys, &f.folder_id, &f.metadata, &f.wrapped_key)
                    .map_err(|_| Failure::invalid("a folder's name does not open with this account's keys"))?;
                folders.push(FolderRow {
                    id: f.folder_id,
                    parent: f.parent_id,
                    name,
                });
            }
            files.folders.set(folders);
            // The folder shown may have gone (deleted elsewhere): back to the top.
            if let Some(current) = files.current.get_untracked()
                && files.folders.with_untracked(|all| all.iter().all(|f| f.id != current))
            {
                files.current.set(None);
            }
            crate::pages::unfinished::actions::load(files).await;
            Ok(list
                .files
                .into_iter()
                .map(|summary| {
                    let opened = me.file_key(&summary.file_id, &summary.wrapped_key).and_then(|key| {
                        FileMetadata::open(&summary.metadata, &key, &summary.file_id)
                            .map_err(|_| Failure::invalid("metadata does not open"))
                    });
                    let (name, mime, size) = match opened {
                        Ok(m) => (m.name, m.mime, m.size),
                        Err(_) => ("(name unreadable)".to_owned(), String::new(), summary.size),
                    };
                    FileRow {
                        summary,
                        name,
                        mime,
                        size,
                    }
                })
                .collect::<Vec<_>>())
        }
        .await;
        if let Ok(rows) = &result {
            restripe_below_policy(files, rows.as_slice());
        }
        files.rows.set(Some(result));
    }

    thread_local! {
        /// A restripe is running in this tab (one at a time: it is background work).
        static RESTRIPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// Files this tab has restriped or tried to (failed, cancelled): not started again by
        /// itself until the tab is reloaded, so a failing one does not loop.
        static RESTRIPE_TRIED: std::cell::RefCell<std::collections::HashSet<disktro_core::FileId>> =
            std::cell::RefCell::default();
    }

    /// Bring the first file below the redundancy policy up to it, in the background: written
    /// while the network was small or during an outage, it can be re-encoded only where its
    /// owner's keys are, which is here. It shows as a transfer (cancel stops it; the file stays
    /// as it was); when it is done the list is read again, which starts the next.
    fn restripe_below_policy(files: Files, rows: &[FileRow]) {
        if RESTRIPING.get() {
            return;
        }
        let Some(row) = rows
            .iter()
            .find(|r| r.summary.health.below_policy && RESTRIPE_TRIED.with_borrow(|t| !t.contains(&r.summary.file_id)))
        else {
            return;
        };
        let Ok(me) = keys() else { return };
        RESTRIPING.set(true);
        RESTRIPE_TRIED.with_borrow_mut(|t| t.insert(row.summary.file_id));
        let name = format!("{} — re-encoding at the network's redundancy", row.name);
        let id = start(files, false, name, row.summary.stored_bytes);
        let file = row.summary.clone();
        leptos::task::spawn_local(async move {
            let ended = move |outcome: Result<(), &Failure>| {
                RESTRIPING.set(false);
                files.update(id, |t| {
                    t.now_ms = js::now_ms();
                    t.phase = Phase::ended(outcome);
                });
            };
            let started = async {
                let pipeline = Pipeline::get().await?;
                pipeline.run(
                    &Request::Restripe {
                        keyring: me.to_wire(),
                        file,
                    },
                    None,
                    move |event, _| match event {
                        Event::Progress {
                            bytes_done,
                            size,
                            shards_done,
                            shards_total,
                        } => files.update(id, |t| {
                            (t.bytes_done, t.size) = (bytes_done, size);
                            (t.shards_done, t.shards_total) = (shards_done, shards_total);
                            t.now_ms = js::now_ms();
                        }),
                        Event::Restriped { .. } => {
                            files.update(id, |t| t.bytes_done = t.size);
                            ended(Ok(()));
                            leptos::task::spawn_local(refresh(files));
                        }
                        Event::Failed { failure } => ended(Err(&failure)),
                        _ => {}
                    },
                )
            }
            .await;
            match started {
                Ok(job) => files.update(id, |t| t.job = Some(job)),
                Err(failure) => ended(Err(&failure)),
            }
        });
    }

    pub fn upload(files: Files, file: web_sys::File) {
        upload_into(files, file, files.current.get_untracked());
    }

    /// Upload `file` into `folder` (none: the top of the tree).
    fn upload_into(files: Files, file: web_sys::File, folder: Option<disktro_core::FolderId>) {
        let id = start(files, true, file.name(), crate::format::whole(file.size()));
        leptos::task::spawn_local(async move {
            let started = async {
                let me = keys()?;
                let pipeline = Pipeline::get().await?;
                pipeline.run(
                    &Request::Upload {
                        keyring: me.to_wire(),
                        folder,
                    },
                    Some(("file", file.into())),
                    move |event, _| match event {
                        Event::Progress {
                            bytes_done,
                            shards_done,
                            shards_total,
                            ..
                        } => files.update(id, |t| {
                            t.bytes_done = bytes_done;
                            t.shards_done = shards_done;
                            t.shards_total = shards_total;
                            t.now_ms = js::now_ms();
                        }),
                        Event::Uploaded { .. } => {
                            files.update(id, |t| {
                                t.bytes_done = t.size;
                                t.shards_done = t.shards_total;
                                t.now_ms = js::now_ms();
                                t.phase = Phase::Done;
                            });
                            leptos::task::spawn_local(refresh(files));
                        }
                        Event::Failed { failure } => {
                            files.update(id, |t| t.phase = Phase::ended(Err(&failure)));
                            // A failed upload may be left to continue later.
                            leptos::task::spawn_local(crate::pages::unfinished::actions::load(files));
                        }
                        _ => {}
                    },
                )
            }
            .await;
            match started {
                Ok(job) => files.update(id, |t| t.job = Some(job)),
                Err(m) => files.update(id, |t| t.phase = Phase::Failed(m.to_string())),
            }
        });
    }

    pub fn cancel(job: u32) {
        leptos::task::spawn_local(async move {
            if let Ok(p) = Pipeline::get().await {
                p.cancel(job);
            }
        });
    }

    pub fn download(files: Files, row: FileRow) {
        let id = start(files, false, row.name.clone(), row.size);
        leptos::task::spawn_local(async move {
            let outcome = async {
                let me = keys()?;
                // This download's order key: the tokens name it, and the workers are paid what
                // the download signs for with it.
                let order_key = disktro_core::keys::Keypair::generate();
                let answer: FileDownload = Api::new(Some(me.csrf.clone()))
                    .get(&crate::browser::download::owner_download_path(
                        &row.summary.file_id,
                        &order_key.public(),
                    ))
                    .await?;
                let key = me.file_key(&row.summary.file_id, &row.summary.wrapped_key)?;
                let owner = Some(me.public_key());
                crate::browser::save::download_to_disk(
                    answer,
                    &key,
                    owner,
                    Some(crate::browser::download::Renewal::Owner),
                    &order_key,
                    (&row.name, &row.mime),
                    |job| files.update(id, |t| t.job = Some(job)),
                    move |p| {
                        files.update(id, |t| {
                            t.bytes_done = p.bytes_done;
                            t.now_ms = js::now_ms();
                        });
                    },
                )
                .await
            }
            .await;
            files.update(id, |t| {
                t.now_ms = js::now_ms();
                t.phase = Phase::ended(outcome.as_ref().map(|_| ()));
            });
        });
    }

    pub fn delete(files: Files, file_id: disktro_core::FileId) {
        leptos::task::spawn_local(async move {
            let Ok(me) = keys() else { return };
            if let Err(e) = Api::new(Some(me.csrf.clone()))
                .send("DELETE", &format!("/files/{file_id}"))
                .await
            {
                files.rows.set(Some(Err(Failure::Api(e))));
            }
            refresh(files).await;
        });
    }

    /// `prompt()`'s answer, trimmed; `None` when cancelled or empty.
    fn ask(question: &str, default: &str) -> Option<String> {
        web_sys::window()?
            .prompt_with_message_and_default(question, default)
            .ok()
            .flatten()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
    }

    fn confirm(question: &str) -> bool {
        web_sys::window()
            .and_then(|w| w.confirm_with_message(question).ok())
            .unwrap_or(false)
    }

    /// Run `op` with the account's API, then read the list again; a failure shows where the
    /// list does.
    fn then_refresh<F: Future<Output = Result<(), Failure>> + 'static>(
        files: Files,
        op: impl FnOnce(Keyring, Api) -> F + 'static,
    ) {
        leptos::task::spawn_local(async move {
            let outcome = async {
                let me = keys()?;
                let api = Api::new(Some(me.csrf.clone()));
                op(me, api).await
            }
            .await;
            refresh(files).await;
            if let Err(e) = outcome {
                files.rows.set(Some(Err(e)));
            }
        });
    }

    /// Make a folder in the one shown, named by the user.
    pub fn new_folder(files: Files) {
        let Some(name) = ask("New folder's name:", "") else {
            return;
        };
        let parent = files.current.get_untracked();
        then_refresh(files, move |me, api| async move {
            make_folder(&me, &api, parent, &name).await.map(|_| ())
        });
    }

    /// Make folder `name` in `parent`, its name sealed here.
    async fn make_folder(
        me: &Keyring,
        api: &Api,
        parent: Option<disktro_core::FolderId>,
        name: &str,
    ) -> Result<disktro_core::FolderId, Failure> {
        let id = disktro_core::FolderId::random();
        let sealed = disktro_core::folder::seal_name(&me.keys.identity, &id, name)
            .map_err(|e| Failure::Invalid(format!("folder name {name:?}: {e}")))?;
        let _: disktro_core::api::FolderSummary = api
            .post(
                "/folders",
                &disktro_core::api::NewFolder {
                    folder_id: id,
                    parent_id: parent,
                    metadata: disktro_core::api::Base64::new(sealed.metadata),
                    wrapped_key: disktro_core::api::Base64::new(sealed.wrapped_key),
                },
            )
            .await?;
        Ok(id)
    }

    /// Upload dropped or picked folders into the folder shown: each folder is made where the
    /// tree lacks it (one of the same name there is used), then every file goes into its own.
    pub fn upload_tree(files: Files, picked: Vec<crate::browser::dropped::Picked>) {
        let top = files.current.get_untracked();
        leptos::task::spawn_local(async move {
            let made = async {
                let me = keys()?;
                let api = Api::new(Some(me.csrf.clone()));
                let mut known = files.folders.get_untracked();
                let mut ids = std::collections::HashMap::from([(Vec::<String>::new(), top)]);
                // Every folder path, parents first (a prefix sorts before what extends it).
                let mut paths: Vec<Vec<String>> = picked
                    .iter()
                    .flat_map(|p| (1..=p.folders.len()).map(|n| p.folders[..n].to_vec()))
                    .collect();
                paths.sort();
                paths.dedup();
                for path in paths {
                    let (name, above) = path.split_last().expect("paths are not empty");
                    let parent = ids[above];
                    let id = match known.iter().find(|f| f.parent == parent && f.name == *name) {
                        Some(f) => f.id,
                        None => {
                            let id = make_folder(&me, &api, parent, name).await?;
                            known.push(FolderRow {
                                id,
                                parent,
                                name: name.clone(),
                            });
                            id
                        }
                    };
                    ids.insert(path, Some(id));
                }
                Ok::<_, Failure>(ids)
            }
            .await;
            match made {
                Ok(ids) => {
                    refresh(files).await;
                    for p in picked {
                        upload_into(files, p.file, ids[&p.folders]);
                    }
                }
                Err(e) => files.rows.set(Some(Err(e))),
            }
        });
    }

    /// Download every ticked file, each as its own transfer.
    pub fn download_selected(files: Files) {
        for row in selected_files(files) {
            download(files, row);
        }
    }

    /// The files ticked and the files in the folders ticked (at any depth), as listed now.
    fn selected_files(files: Files) -> Vec<FileRow> {
        let chosen = files.selected.get_untracked();
        let mut folders = Vec::new();
        for item in &chosen {
            if let Item::Folder(id) = item {
                folders.extend(files.subtree(*id));
            }
        }
        files
            .rows
            .with_untracked(|r| r.as_ref().and_then(|r| r.as_ref().ok()).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                chosen.contains(&Item::File(r.summary.file_id))
                    || r.summary.folder_id.is_some_and(|f| folders.contains(&f))
            })
            .collect()
    }

    /// Delete every ticked file and folder (a folder with everything in it), once confirmed.
    pub fn delete_selected(files: Files) {
        // Only what is still listed (a ticked file may have been deleted on its own since), and a
        // file only when no ticked folder takes it anyway.
        let listed_folders: Vec<disktro_core::FolderId> =
            files.folders.with_untracked(|all| all.iter().map(|f| f.id).collect());
        let folders: Vec<disktro_core::FolderId> = files
            .selected
            .get_untracked()
            .into_iter()
            .filter_map(|i| match i {
                Item::Folder(id) if listed_folders.contains(&id) => Some(id),
                _ => None,
            })
            .collect();
        let inside: Vec<disktro_core::FolderId> = folders.iter().flat_map(|f| files.subtree(*f)).collect();
        let chosen: Vec<disktro_core::FileId> = selected_files(files)
            .into_iter()
            .filter(|r| !r.summary.folder_id.is_some_and(|f| inside.contains(&f)))
            .map(|r| r.summary.file_id)
            .collect();
        // A ticked folder inside another ticked one goes with it.
        let folders: Vec<disktro_core::FolderId> = folders
            .iter()
            .copied()
            .filter(|f| !folders.iter().any(|g| g != f && files.subtree(*g).contains(f)))
            .collect();
        if chosen.is_empty() && folders.is_empty() {
            return;
        }
        let question = match (chosen.len(), folders.len()) {
            (n, 0) => format!("Delete {n} file(s)? Their shares stop working."),
            (0, m) => format!("Delete {m} folder(s) and everything in them? Shares of their files stop working."),
            (n, m) => format!(
                "Delete {n} file(s), and {m} folder(s) with everything in them? Shares of their files stop working."
            ),
        };
        if !confirm(&question) {
            return;
        }
        files.selected.set(Vec::new());
        then_refresh(files, move |_, api| async move {
            for id in chosen {
                api.send("DELETE", &format!("/files/{id}")).await?;
            }
            for id in folders {
                api.send("DELETE", &format!("/folders/{id}?recursive=true")).await?;
            }
            Ok(())
        });
    }

    /// Move a file or folder into folder `to` (none: the top), as a drag onto it asks. A folder
    /// onto itself or below itself is left where it is (the server refuses such a move too).
    pub fn move_item(files: Files, item: Item, to: Option<disktro_core::FolderId>) {
        let path = match item {
            Item::File(id) => {
                let here = files.rows.with_untracked(|r| {
                    r.as_ref()
                        .and_then(|r| r.as_ref().ok())
                        .and_then(|rows| rows.iter().find(|r| r.summary.file_id == id))
                        .map(|r| r.summary.folder_id)
                });
                if here == Some(to) {
                    return;
                }
                format!("/files/{id}/move")
            }
            Item::Folder(id) => {
                let parent = files
                    .folders
                    .with_untracked(|all| all.iter().find(|f| f.id == id).map(|f| f.parent));
                if parent == Some(to) || to.is_some_and(|t| files.subtree(id).contains(&t)) {
                    return;
                }
                format!("/folders/{id}/move")
            }
        };
        then_refresh(files, move |_, api| async move {
            let _: serde_json::Value = api.post(&path, &disktro_core::api::MoveTo { parent_id: to }).await?;
            Ok(())
        });
    }

    /// Move a file or folder, now in folder `now_in` (none: the top), into the folder at the
    /// path the user gives.
    pub fn move_by_path(files: Files, item: Item, now_in: Option<disktro_core::FolderId>) {
        let here = super::path_text(&files.path_of(now_in));
        let Some(path) = ask("Move into the folder (its path, / for the top):", &here) else {
            return;
        };
        match files.folder_at(&path) {
            Some(to) => move_item(files, item, to),
            None => files
                .rows
                .set(Some(Err(Failure::Invalid(format!("There is no folder {path}."))))),
        }
    }

    /// Give a folder a new name, sealed here.
    pub fn rename_folder(files: Files, folder: FolderRow) {
        let Some(name) = ask("Rename the folder to:", &folder.name).filter(|n| *n != folder.name) else {
            return;
        };
        then_refresh(files, move |me, api| async move {
            let sealed = disktro_core::folder::seal_name(&me.keys.identity, &folder.id, &name)
                .map_err(|e| Failure::Invalid(format!("folder name: {e}")))?;
            let _: disktro_core::api::FolderSummary = api
                .post(
                    &format!("/folders/{}/rename", folder.id),
                    &disktro_core::api::Rename {
                        metadata: disktro_core::api::Base64::new(sealed.metadata),
                        wrapped_key: Some(disktro_core::api::Base64::new(sealed.wrapped_key)),
                    },
                )
                .await?;
            Ok(())
        });
    }

    /// Delete a folder with everything in it, once the user confirms.
    pub fn delete_folder(files: Files, folder: FolderRow) {
        if !confirm(&format!(
            "Delete the folder {} and everything in it? Shares of its files stop working.",
            folder.name
        )) {
            return;
        }
        then_refresh(files, move |_, api| async move {
            api.send("DELETE", &format!("/folders/{}?recursive=true", folder.id))
                .await?;
            Ok(())
        });
    }

    /// Give a file a new name: its metadata sealed anew under its own key (its shards stay).
    pub fn rename_file(files: Files, row: FileRow) {
        let Some(name) = ask("Rename the file to:", &row.name).filter(|n| *n != row.name) else {
            return;
        };
        then_refresh(files, move |me, api| async move {
            let key = me.file_key(&row.summary.file_id, &row.summary.wrapped_key)?;
            // Opened again rather than rebuilt from the row: what tools keep with the file (its
            // attributes) stays with it.
            let mut metadata =
                FileMetadata::open(&row.summary.metadata, &key, &row.summary.file_id).map_err(|_| Failure::Decrypt)?;
            metadata.name = name;
            let sealed = metadata
                .seal(&key, &row.summary.file_id)
                .map_err(|e| Failure::Invalid(format!("file name: {e}")))?;
            let _: serde_json::Value = api
                .post(
                    &format!("/files/{}/rename", row.summary.file_id),
                    &disktro_core::api::Rename {
                        metadata: disktro_core::api::Base64::new(sealed),
                        wrapped_key: None,
                    },
                )
                .await?;
            Ok(())
        });
    }

    /// Ask before the page is left (closed, reloaded, another site) while an upload runs: its
    /// progress would be lost. Navigating inside the app keeps it running.
    pub fn warn_before_leaving(files: Files) {
        use wasm_bindgen::JsCast as _;
        use wasm_bindgen::closure::Closure;
        let Some(window) = web_sys::window() else { return };
        let on_leave = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
            if files.uploading() {
                event.prevent_default();
                // Older browsers want a return value too; its text is not shown.
                let _ = js_sys::Reflect::set(&event, &"returnValue".into(), &"".into());
            }
        });
        let _ = window.add_event_listener_with_callback("beforeunload", on_leave.as_ref().unchecked_ref());
        // Lives as long as the page.
        on_leave.forget();
    }

    /// The files of a drop or of the picker.
    pub fn each_file(list: Option<web_sys::FileList>, mut f: impl FnMut(web_sys::File)) {
        if let Some(list) = list {
            for i in 0..list.length() {
                if let Some(file) = list.item(i) {
                    f(file);
                }
            }
        }
    }
}

#[component]
pub fn FilesPage() -> impl IntoView {
    let account = expect_context::<AccountSignal>();
    let files = expect_context::<Files>();
    let dragging = RwSignal::new(false);
    Effect::new(move || {
        if account.get().is_some() {
            #[cfg(feature = "hydrate")]
            leptos::task::spawn_local(actions::refresh(files));
        }
    });

    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        // A row of the list dropped here is not a file from the desktop.
        #[cfg(feature = "hydrate")]
        if files.dragging.get_untracked().is_none() {
            let data = ev.data_transfer();
            // Folders come as entries, to be walked; without any, the drop's files are all.
            match data.as_ref().and_then(crate::browser::dropped::folder_entries) {
                Some(entries) => leptos::task::spawn_local(async move {
                    match crate::browser::dropped::walk(entries).await {
                        Ok(picked) => actions::upload_tree(files, picked),
                        Err(e) => files.rows.set(Some(Err(e))),
                    }
                }),
                None => actions::each_file(data.and_then(|d| d.files()), |f| actions::upload(files, f)),
            }
        }
    };
    let on_pick_folder = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                actions::upload_tree(files, crate::browser::dropped::from_folder_picker(input.files()));
                input.set_value("");
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let on_pick = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                actions::each_file(input.files(), |f| actions::upload(files, f));
                input.set_value("");
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };

    view! {
        <Show when=move || account.get().is_some() fallback=|| view! {
            <section class="panel narrow">
                <h1>"Your files"</h1>
                <p>"Log in to upload and see your files. " <a href="/login">"Log in"</a> " or " <a href="/signup">"create an account"</a> "."</p>
            </section>
        }>
            <section
                class=move || if dragging.get() { "dropzone over" } else { "dropzone" }
                data-testid="dropzone"
                on:dragover=move |ev: leptos::ev::DragEvent| {
                    // A row of the list dragged here is not a file from the desktop.
                    if files.dragging.get_untracked().is_none() { ev.prevent_default(); dragging.set(true); }
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <p class="drop-title">"Drop files or folders here to encrypt and store them"</p>
                <p class="muted">"Each file is cut, compressed where that pays, sealed and erasure-coded in this tab before it leaves."</p>
                <label class="button">
                    "Choose files…"
                    <input type="file" multiple class="visually-hidden" data-testid="file-input" on:change=on_pick />
                </label>
                " "
                <label class="button secondary">
                    "Choose a folder…"
                    <input type="file" prop:webkitdirectory=true class="visually-hidden" data-testid="folder-input" on:change=on_pick_folder />
                </label>
            </section>
            {view! { <TransferList files /> }.into_any()}
            {view! { <UnfinishedList files /> }.into_any()}
            {view! { <FileTable files /> }.into_any()}
            {view! { <ShareDialog target=files.share /> }.into_any()}
        </Show>
    }
    .into_any()
}

#[component]
fn TransferList(files: Files) -> impl IntoView {
    view! {
        <Show when=move || !files.transfers.get().is_empty()>
            <section class="panel" aria-label="Transfers">
                <div class="panel-head">
                    <h2>"Transfers"</h2>
                    <Show when=move || files.transfers.with(|ts| ts.iter().any(|t| t.phase != Phase::Running))>
                        <button type="button" class="button small secondary" data-testid="clear-transfers"
                            on:click=move |_| files.transfers.update(|ts| ts.retain(|t| t.phase == Phase::Running))>
                            "Clear finished"
                        </button>
                    </Show>
                </div>
                <ul class="transfers" data-testid="transfers">
                    <For each=move || files.transfers.get() key=|t| (t.id, t.bytes_done, t.phase.clone(), t.job) let:t>
                        <TransferRow t />
                    </For>
                </ul>
            </section>
        </Show>
    }
}

#[component]
fn TransferRow(t: Transfer) -> impl IntoView {
    let pct = if t.size == 0 {
        100.0
    } else {
        t.bytes_done as f64 * 100.0 / t.size as f64
    };
    let rate = format::rate(t.bytes_done, t.now_ms - t.started_ms);
    let (state, class) = match &t.phase {
        Phase::Running => (format!("{pct:.0}%"), "running"),
        Phase::Done => ((if t.upload { "stored" } else { "saved" }).to_owned(), "done"),
        Phase::Cancelled => ("cancelled".to_owned(), "cancelled"),
        Phase::Failed(m) => (format!("failed: {m}"), "failed"),
    };
    let running = t.phase == Phase::Running;
    let job = t.job;
    view! {
        <li class=format!("transfer {class}") data-testid="transfer" data-state=class>
            <div class="transfer-head">
                <span class="transfer-kind">{if t.upload { "↑" } else { "↓" }}</span>
                <span class="transfer-name">{t.name.clone()}</span>
                <span class="transfer-state" role="status">{state}</span>
                {(running && job.is_some()).then(|| view! {
                    <button type="button" class="button small secondary" data-testid="transfer-cancel" on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        if let Some(job) = job { actions::cancel(job); }
                    }>"Cancel"</button>
                })}
            </div>
            <progress max="100" value=pct></progress>
            <div class="transfer-facts muted">
                <span>{format!("{} of {}", format::bytes(t.bytes_done), format::bytes(t.size))}</span>
                <span>{rate}</span>
                {running.then(|| view! { <span>{format!("ETA {}", t.eta())}</span> })}
                {(t.shards_total > 0).then(|| view! { <span>{format!("{} / {} shards acknowledged", t.shards_done, t.shards_total)}</span> })}
            </div>
        </li>
    }
}

#[component]
fn FileTable(files: Files) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="files-title">
            <div class="panel-head">
                <h1 id="files-title">"Your files"</h1>
                // What the user thinks of as used is their files' bytes; the quota counts what the
                // workers hold for them, which the tooltip explains.
                <span class="muted usage" data-testid="usage"
                    title="Stored is what the storage workers hold for you, and what your quota counts: each file is erasure-coded into shards so that it survives losing 40% of them (about 1.67 times its size), and padded so that its size class hides its exact size.">
                    {move || {
                        let (stored, quota) = files.usage.get();
                        let mine: u64 = files.rows.with(|rows| {
                            rows.as_ref()
                                .and_then(|r| r.as_ref().ok())
                                .map_or(0, |rows| rows.iter().map(|f| f.size).sum())
                        });
                        format!(
                            "{} in your files · {} stored of {}",
                            format::bytes(mine),
                            format::bytes(stored),
                            format::bytes(quota)
                        )
                    }}
                </span>
            </div>
            <div class="file-tools">
                <nav class="breadcrumbs" aria-label="Folder" data-testid="breadcrumbs">
                    {
                        let over = RwSignal::new(false);
                        let (dragover, dragleave, drop) = drop_into(files, None, over);
                        view! {
                            <button type="button" class="link" class:drop-target=over data-testid="crumb"
                                on:dragover=dragover on:dragleave=dragleave on:drop=drop
                                on:click=move |_| files.current.set(None)>"All files"</button>
                        }
                    }
                    {move || files.path_of(files.current.get()).into_iter().map(|f| {
                        let id = f.id;
                        let over = RwSignal::new(false);
                        let (dragover, dragleave, drop) = drop_into(files, Some(id), over);
                        view! { " / " <button type="button" class="link" class:drop-target=over data-testid="crumb"
                            on:dragover=dragover on:dragleave=dragleave on:drop=drop
                            on:click=move |_| files.current.set(Some(id))>{f.name}</button> }
                    }).collect_view()}
                </nav>
                <input type="search" placeholder="Search names" aria-label="Search names" data-testid="search"
                    prop:value=files.query on:input=move |ev| files.query.set(event_target_value(&ev)) />
                <select aria-label="Order" data-testid="sort" on:change=move |ev| files.sort.set(match event_target_value(&ev).as_str() {
                    "name" => Sort::Name,
                    "size" => Sort::Largest,
                    _ => Sort::Newest,
                })>
                    <option value="date">"Newest first"</option>
                    <option value="name">"By name"</option>
                    <option value="size">"Largest first"</option>
                </select>
                <button type="button" class="button small secondary" data-testid="new-folder" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::new_folder(files);
                }>"New folder"</button>
            </div>
            <Show when=move || files.selected.with(|s| !s.is_empty())>
                <div class="bulk" data-testid="bulk" role="toolbar" aria-label="Selected files">
                    <span data-testid="bulk-count">{move || format!("{} selected", files.selected.with(Vec::len))}</span>
                    <button type="button" class="button small" data-testid="bulk-download" on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        actions::download_selected(files);
                    }>"Download"</button>
                    <button type="button" class="button small danger" data-testid="bulk-delete" on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        actions::delete_selected(files);
                    }>"Delete"</button>
                    <button type="button" class="button small secondary" data-testid="bulk-clear"
                        on:click=move |_| files.selected.set(Vec::new())>"Clear"</button>
                </div>
            </Show>
            {move || match files.rows.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Some(Ok(rows)) => {
                    // Searching looks in every folder (names are opened here); otherwise the folder
                    // shown, its folders first.
                    let query = files.query.get().to_lowercase();
                    let current = files.current.get();
                    let folders: Vec<FolderRow> = if query.is_empty() {
                        let mut v: Vec<FolderRow> = files.folders.get().into_iter().filter(|f| f.parent == current).collect();
                        v.sort_by_key(|f| f.name.to_lowercase());
                        v
                    } else {
                        Vec::new()
                    };
                    let mut rows: Vec<FileRow> = rows
                        .into_iter()
                        .filter(|r| if query.is_empty() { r.summary.folder_id == current } else { r.name.to_lowercase().contains(&query) })
                        .collect();
                    match files.sort.get() {
                        Sort::Newest => {}
                        Sort::Name => rows.sort_by_key(|r| r.name.to_lowercase()),
                        Sort::Largest => rows.sort_by_key(|r| std::cmp::Reverse(r.size)),
                    }
                    if rows.is_empty() && folders.is_empty() {
                        let empty = if !query.is_empty() { "No file's name has that in it." } else if current.is_some() { "This folder is empty: drop files above to store them here." } else { "No files yet: drop one above." };
                        return view! { <p class="muted" data-testid="empty">{empty}</p> }.into_any();
                    }
                    view! {
                        <div class="table-wrap">
                        <table class="files" data-testid="file-list">
                            <thead><tr><th>"Name"</th><th>"Size"</th><th>"Added"</th><th>"Redundancy"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {folders.into_iter().map(|folder| view! { <FolderLine files folder /> }).collect_view()}
                                {rows.into_iter().map(|row| view! { <FileLine files row /> }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                    }.into_any()
                }
            }}
        </section>
    }
}

/// `/a/b` of a folder's path (`/` for the top).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn path_text(path: &[FolderRow]) -> String {
    format!(
        "/{}",
        path.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join("/")
    )
}

/// A file or folder row picked up: what a folder it is dropped on moves into itself.
fn start_drag(files: Files, item: Item, ev: &leptos::ev::DragEvent) {
    files.dragging.set(Some(item));
    #[cfg(feature = "hydrate")]
    if let Some(data) = ev.data_transfer() {
        data.set_effect_allowed("move");
        // Some browsers start a drag only with data in it; nothing reads it.
        let _ = data.set_data("text/plain", "");
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// The handlers that make an element a place to drop a dragged file or folder into folder `to`
/// (none: the top): dragover (allowing the drop, and lighting `over`), dragleave and drop.
#[allow(clippy::type_complexity)]
fn drop_into(
    files: Files,
    to: Option<disktro_core::FolderId>,
    over: RwSignal<bool>,
) -> (
    impl Fn(leptos::ev::DragEvent) + Clone + 'static,
    impl Fn(leptos::ev::DragEvent) + Clone + 'static,
    impl Fn(leptos::ev::DragEvent) + Clone + 'static,
) {
    // A folder is no place for itself; anything else dragged from the list may drop here.
    let takes = move || {
        files
            .dragging
            .get_untracked()
            .is_some_and(|item| to.is_none_or(|to| item != Item::Folder(to)))
    };
    let dragover = move |ev: leptos::ev::DragEvent| {
        if takes() {
            ev.prevent_default();
            #[cfg(feature = "hydrate")]
            if let Some(data) = ev.data_transfer() {
                data.set_drop_effect("move");
            }
            over.set(true);
        }
    };
    let dragleave = move |_: leptos::ev::DragEvent| over.set(false);
    let drop = move |ev: leptos::ev::DragEvent| {
        over.set(false);
        if !takes() {
            return;
        }
        ev.prevent_default();
        ev.stop_propagation();
        #[cfg(feature = "hydrate")]
        if let Some(item) = files.dragging.get_untracked() {
            actions::move_item(files, item, to);
        }
        files.dragging.set(None);
    };
    (dragover, dragleave, drop)
}

#[component]
fn FolderLine(files: Files, folder: FolderRow) -> impl IntoView {
    let id = folder.id;
    let item = Item::Folder(id);
    let (for_rename, for_delete) = (folder.clone(), folder.clone());
    let parent = folder.parent;
    let over = RwSignal::new(false);
    let (dragover, dragleave, drop) = drop_into(files, Some(id), over);
    view! {
        <tr data-testid="folder-row" data-folder-id=id.to_hex() class:drop-target=over draggable="true"
            on:dragstart=move |ev| start_drag(files, item, &ev) on:dragend=move |_| files.dragging.set(None)
            on:dragover=dragover on:dragleave=dragleave on:drop=drop>
            <td class="name">
                <input type="checkbox" class="select" data-testid="select-folder" aria-label=format!("Select the folder {}", folder.name)
                    prop:checked=move || files.selected.with(|s| s.contains(&item))
                    on:change=move |ev| files.tick(item, event_target_checked(&ev)) />
                <button type="button" class="link file-name" data-testid="open-folder"
                on:click=move |_| { files.query.set(String::new()); files.current.set(Some(id)); }>{format!("{}/", folder.name)}</button>
                <span class="muted mime">"folder"</span></td>
            <td></td>
            <td></td>
            <td></td>
            <td class="actions">
                <button type="button" class="button small secondary" data-testid="rename-folder" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::rename_folder(files, for_rename.clone());
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &for_rename;
                }>"Rename"</button>
                <button type="button" class="button small secondary" data-testid="move-folder" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::move_by_path(files, item, parent);
                    #[cfg(not(feature = "hydrate"))]
                    let _ = parent;
                }>"Move"</button>
                <button type="button" class="button small danger" data-testid="delete-folder" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::delete_folder(files, for_delete.clone());
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &for_delete;
                }>"Delete"</button>
            </td>
        </tr>
    }
}

#[component]
fn FileLine(files: Files, row: FileRow) -> impl IntoView {
    let h = &row.summary.health;
    let healthy = h.weakest_chunk_healthy >= h.shards_per_chunk;
    let at_risk = h.weakest_chunk_healthy < h.needed;
    let health_class = if healthy {
        "health ok"
    } else if at_risk {
        "health bad"
    } else {
        "health warn"
    };
    let health_text = format!("{} / {}", h.weakest_chunk_healthy, h.shards_per_chunk);
    let mut health_title = format!(
        "The weakest chunk has {} of its {} shards on online workers; any {} rebuild it. \
         Survives losing any {} whole zone(s) now. Chance of loss within a year at full health: {:.1e} ({}).",
        h.weakest_chunk_healthy,
        h.shards_per_chunk,
        h.needed,
        h.zones_survivable.unwrap_or(0),
        h.yearly_loss,
        h.model
    );
    if h.below_policy {
        health_title.push_str(
            " Stored with less redundancy than the network gives now: this tab re-encodes it (see Transfers).",
        );
    }
    let below_policy = h.below_policy;
    let (for_download, for_share) = (row.clone(), row.clone());
    let for_rename = row.clone();
    let (file_id, folder_id) = (row.summary.file_id, row.summary.folder_id);
    let name = row.name.clone();
    view! {
        <tr data-testid="file-row" data-file-id=row.summary.file_id.to_hex() draggable="true"
            on:dragstart=move |ev| start_drag(files, Item::File(file_id), &ev) on:dragend=move |_| files.dragging.set(None)>
            <td class="name">
                <input type="checkbox" class="select" data-testid="select" aria-label=format!("Select {}", row.name)
                    prop:checked=move || files.selected.with(|s| s.contains(&Item::File(file_id)))
                    on:change=move |ev| files.tick(Item::File(file_id), event_target_checked(&ev)) />
                <span class="file-name">{row.name.clone()}</span><span class="muted mime">{row.mime.clone()}</span>
            </td>
            <td>{format::bytes(row.size)}</td>
            <td>{format::date(row.summary.created_at)}</td>
            <td>
                <span class=health_class title=health_title data-testid="health">{health_text}</span>
                <Show when=move || below_policy>
                    <span class="muted below-policy" data-testid="below-policy">" below policy"</span>
                </Show>
            </td>
            <td class="actions">
                <button type="button" class="button small" data-testid="download" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::download(files, for_download.clone());
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &for_download;
                }>"Download"</button>
                <button type="button" class="button small secondary" data-testid="share" on:click=move |_| {
                    files.share.set(Some(ShareTarget {
                        file_id: for_share.summary.file_id,
                        name: for_share.name.clone(),
                        wrapped_key: for_share.summary.wrapped_key.clone(),
                    }));
                }>"Share"</button>
                <button type="button" class="button small secondary" data-testid="rename" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::rename_file(files, for_rename.clone());
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &for_rename;
                }>"Rename"</button>
                <button type="button" class="button small secondary" data-testid="move" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::move_by_path(files, Item::File(file_id), folder_id);
                    #[cfg(not(feature = "hydrate"))]
                    let _ = folder_id;
                }>"Move"</button>
                <button type="button" class="button small danger" data-testid="delete" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    {
                        let sure = web_sys::window()
                            .and_then(|w| w.confirm_with_message(&format!("Delete {name}? Its shares stop working.")).ok())
                            .unwrap_or(false);
                        if sure { actions::delete(files, file_id); }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = (&file_id, &name);
                }>"Delete"</button>
            </td>
        </tr>
    }
}
