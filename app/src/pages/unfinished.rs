//! The files page's "Unfinished uploads": uploads this browser began and did not finish (the
//! page was reloaded or closed, the tab crashed, or a try failed), as noted in IndexedDB
//! (`browser::unfinished`). Each offers to continue (pick the same file: it is checked by name,
//! size and modification time here, and by its shards in the pipeline) or to discard (the upload
//! is cancelled at the server and its reserved space given back).

use leptos::prelude::*;

use super::files::Files;
use crate::format;

/// One unfinished upload as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub upload_id: String,
    pub name: String,
    pub size: u64,
    /// The `File`'s `lastModified`, which the file picked to continue must have.
    pub last_modified: f64,
    pub shards_stored: u64,
    pub shards_total: u64,
    /// Unix seconds.
    pub began: i64,
    /// Why the last file picked for it was refused.
    pub problem: Option<String>,
}

#[cfg(feature = "hydrate")]
pub(super) mod actions {
    //! Listing, continuing and discarding, in the browser.
    use disktro_core::metadata::FileMetadata;
    use leptos::prelude::*;

    use super::Unfinished;
    use crate::browser::api::Api;
    use crate::browser::unfinished;
    use crate::pages::files::{Files, actions as files};

    /// List this account's unfinished uploads, less those running in this tab.
    pub async fn load(state: Files) {
        let Ok(me) = files::keys() else { return };
        let Ok(notes) = unfinished::of_account(&me.account_id, js_sys::Date::now()).await else {
            return;
        };
        let running = state.running_uploads();
        let mut rows = Vec::with_capacity(notes.len());
        for note in notes {
            let Ok(key) = me.file_key(&note.file_id, note.wrapped_key.as_bytes()) else {
                continue;
            };
            let Ok(metadata) = FileMetadata::open(note.sealed_metadata.as_bytes(), &key, &note.file_id) else {
                continue;
            };
            if running.contains(&(metadata.name.clone(), note.size)) {
                continue;
            }
            // Whole chunks are noted: their shards all stored.
            let chunks = unfinished::chunks_stored(&note.upload_id).await.unwrap_or(0);
            rows.push(Unfinished {
                upload_id: note.upload_id,
                name: metadata.name,
                size: note.size,
                last_modified: note.last_modified,
                shards_stored: chunks * u64::from(note.shards_per_chunk),
                shards_total: note.chunk_count * u64::from(note.shards_per_chunk),
                began: i64::try_from(crate::format::whole(note.began_ms / 1000.0)).unwrap_or(0),
                problem: None,
            });
        }
        state.unfinished.set(rows);
    }

    /// Continue `row`'s upload with `file`, when it is the same file.
    pub fn pick(state: Files, row: &Unfinished, file: web_sys::File) {
        let size = crate::format::whole(file.size());
        let problem = if file.name() != row.name || size != row.size {
            Some(format!(
                "That is {} ({}), not {} ({}): pick the file whose upload stopped.",
                file.name(),
                crate::format::bytes(size),
                row.name,
                crate::format::bytes(row.size)
            ))
        } else if file.last_modified() != row.last_modified {
            Some(format!(
                "{} has changed since its upload began: discard this upload and drop the file again.",
                row.name
            ))
        } else {
            None
        };
        let id = row.upload_id.clone();
        match problem {
            Some(problem) => state.unfinished.update(|rows| {
                if let Some(r) = rows.iter_mut().find(|r| r.upload_id == id) {
                    r.problem = Some(problem);
                }
            }),
            None => {
                state.unfinished.update(|rows| rows.retain(|r| r.upload_id != id));
                // The pipeline finds the note by the same file and continues it.
                files::upload(state, file);
            }
        }
    }

    /// Cancel `upload_id` at the server and forget it here.
    pub fn discard(state: Files, upload_id: String) {
        state
            .unfinished
            .update(|rows| rows.retain(|r| r.upload_id != upload_id));
        leptos::task::spawn_local(async move {
            if let Ok(me) = files::keys() {
                // Gone already (expired) is as good.
                let _ = Api::new(Some(me.csrf.clone()))
                    .send("DELETE", &format!("/uploads/{upload_id}"))
                    .await;
            }
            // Best effort: a note left behind is dropped when its day is over.
            let _ = unfinished::forget(&upload_id).await;
        });
    }
}

#[component]
pub fn UnfinishedList(files: Files) -> impl IntoView {
    view! {
        <Show when=move || files.unfinished.with(|u| !u.is_empty())>
            <section class="panel" aria-labelledby="unfinished-title" data-testid="unfinished-list">
                <div class="panel-head">
                    <h2 id="unfinished-title">"Unfinished uploads"</h2>
                </div>
                <p class="muted">
                    "These uploads stopped before they were done: the page was closed or reloaded, or a try failed. "
                    "Pick (or drop) the same file to continue where it stopped; what was sent is not sent again. "
                    "They are kept for 24 hours."
                </p>
                <ul class="transfers">
                    <For each=move || files.unfinished.get() key=|u| (u.upload_id.clone(), u.problem.clone()) let:u>
                        <UnfinishedRow files u />
                    </For>
                </ul>
            </section>
        </Show>
    }
}

#[component]
fn UnfinishedRow(files: Files, u: Unfinished) -> impl IntoView {
    let pct = if u.shards_total == 0 {
        0.0
    } else {
        u.shards_stored as f64 * 100.0 / u.shards_total as f64
    };
    let (for_pick, upload_id) = (u.clone(), u.upload_id.clone());
    let on_pick = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                if let Some(file) = input.files().and_then(|l| l.item(0)) {
                    actions::pick(files, &for_pick, file);
                }
                input.set_value("");
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &for_pick, files);
    };
    view! {
        <li class="transfer unfinished" data-testid="unfinished" data-upload-id=u.upload_id.clone()>
            <div class="transfer-head">
                <span class="transfer-kind">"↑"</span>
                <span class="transfer-name">{u.name.clone()}</span>
                <span class="transfer-state">{format!("{pct:.0}% sent")}</span>
                <label class="button small">
                    "Continue…"
                    <input type="file" class="visually-hidden" data-testid="unfinished-pick"
                        aria-label=format!("Pick {} to continue its upload", u.name) on:change=on_pick />
                </label>
                <button type="button" class="button small secondary" data-testid="unfinished-discard" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    actions::discard(files, upload_id.clone());
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &upload_id;
                }>"Discard"</button>
            </div>
            <progress max="100" value=pct></progress>
            <div class="transfer-facts muted">
                <span>{format::bytes(u.size)}</span>
                <span>{format!("began {}", format::date(u.began))}</span>
            </div>
            {u.problem.clone().map(|p| view! { <p class="error" role="alert" data-testid="unfinished-problem">{p}</p> })}
        </li>
    }
}
