//! The page a share link opens (`/s/<id>#<key>`), for people with no account. The key is read
//! from the fragment in the browser and never sent; the page shows the file's name and size
//! (opened with the key), who signed its manifest, when the link expires, and downloads the file
//! the same way the owner would. Revoked, expired and used-up links say so. A finished download
//! is reported so it counts; a failed one can be tried again as the same download, so it does
//! not use up a limited link. Its `download_id` is kept in the origin's `localStorage` until it
//! is saved, so a closed tab or a reload continues it too.

use crate::error::Failure;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::format;

/// What the page shows about the file.
#[derive(Debug, Clone, PartialEq)]
struct Shared {
    name: String,
    mime: String,
    size: u64,
    signer: String,
    expires_at: i64,
    downloads_left: Option<u64>,
    downloads_under_way: u64,
}

/// Where the page is.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum View {
    Loading,
    NeedsPassword(Option<String>),
    Ready(Shared),
    Gone(String),
}

#[cfg(feature = "hydrate")]
mod actions {
    use crate::error::Failure;
    use disktro_core::api::{FileDownload, ShareAccess, ShareInfo};
    use disktro_core::metadata::FileMetadata;
    use disktro_core::{FileId, FileKey, SignedManifest};

    use super::Shared;
    use disktro_core::api::ErrorCode;

    use crate::browser::api::Api;
    use disktro_core::api::Base64;

    /// The key in the fragment.
    pub fn key() -> Result<FileKey, Failure> {
        let hash = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .unwrap_or_default();
        disktro_core::keys::decode_link_key(hash.trim_start_matches('#'))
            .map_err(|_| Failure::invalid("This link is incomplete: the part after # (the key) is missing or damaged."))
    }

    pub fn access(key: &FileKey, password: Option<&str>, download_id: Option<String>) -> ShareAccess {
        ShareAccess {
            password_proof: password.map(|p| Base64::from(disktro_core::keys::share_password_proof(key, p))),
            download_id,
            order_key: None,
        }
    }

    /// Why a link cannot be used, in plain words (`None`: a password is needed or wrong).
    pub fn explain(e: &Failure) -> Option<String> {
        Some(match e.code() {
            Some(ErrorCode::ShareRevoked) => "This link was revoked by the person who shared it.".to_owned(),
            Some(ErrorCode::ShareExpired) => "This link has expired.".to_owned(),
            Some(ErrorCode::ShareExhausted) => "This link has been used as many times as it allows.".to_owned(),
            Some(ErrorCode::ShareNotFound) => "There is no such link.".to_owned(),
            Some(ErrorCode::SharePasswordRequired | ErrorCode::SharePasswordWrong) => return None,
            _ => e.to_string(),
        })
    }

    pub async fn open(id: &str, key: &FileKey, password: Option<&str>) -> Result<Shared, Failure> {
        let info: ShareInfo = Api::default()
            .post(&format!("/public/shares/{id}"), &access(key, password, None))
            .await?;
        let file_id: FileId = info.file_id;
        let manifest = SignedManifest::decode(&info.manifest)
            .map_err(|e| Failure::Invalid(format!("the file's manifest does not verify: {e}")))?;
        let metadata = FileMetadata::open(&info.metadata, key, &file_id)
            .map_err(|_| Failure::invalid("The key in this link does not open the file: the link is damaged."))?;
        Ok(Shared {
            name: metadata.name,
            mime: metadata.mime,
            size: metadata.size,
            signer: manifest.owner().fingerprint(),
            expires_at: info.expires_at,
            downloads_left: info.downloads_left,
            downloads_under_way: info.downloads_under_way,
        })
    }

    /// Start a download, or continue `download_id` after a failure; the tokens name
    /// `order_key`, which the download signs its orders with.
    pub async fn fetch(
        id: &str,
        key: &FileKey,
        password: Option<&str>,
        download_id: Option<String>,
        order_key: &disktro_core::keys::PublicKey,
    ) -> Result<FileDownload, Failure> {
        let access = ShareAccess {
            order_key: Some(*order_key),
            ..access(key, password, download_id)
        };
        Ok(Api::default()
            .post(&format!("/public/shares/{id}/download"), &access)
            .await?)
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn storage_key(share: &str) -> String {
        format!("disktro.share-download.{share}")
    }

    /// The download of this link this browser started and did not finish, if any.
    pub fn remembered(share: &str) -> Option<String> {
        storage()?.get_item(&storage_key(share)).ok()?
    }

    /// Keep the download under way across a closed tab or a reload (best effort).
    pub fn remember(share: &str, download_id: &str) {
        if let Some(s) = storage() {
            let _ = s.set_item(&storage_key(share), download_id);
        }
    }

    pub fn forget(share: &str) {
        if let Some(s) = storage() {
            let _ = s.remove_item(&storage_key(share));
        }
    }

    /// The download is saved: it counts now.
    pub async fn complete(id: &str, download_id: &str) -> Result<(), Failure> {
        Ok(Api::default()
            .send("POST", &format!("/public/shares/{id}/downloads/{download_id}/complete"))
            .await?)
    }
}

#[component]
pub fn SharePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let view_state = RwSignal::new(View::Loading);
    let password = RwSignal::new(String::new());
    let progress = RwSignal::new(None::<(u64, u64, f64, f64)>);
    let status = RwSignal::new(None::<Result<String, Failure>>);
    // The download under way or failed, continued by "Try again" instead of starting another.
    let download_id = RwSignal::new(None::<String>);

    let load = move |pw: Option<String>| {
        let _share = id();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let key = match actions::key() {
                Ok(k) => k,
                Err(m) => return view_state.set(View::Gone(m.to_string())),
            };
            match actions::open(&_share, &key, pw.as_deref()).await {
                Ok(shared) => view_state.set(View::Ready(shared)),
                Err(e) => match actions::explain(&e) {
                    Some(m) => view_state.set(View::Gone(m)),
                    None => view_state.set(View::NeedsPassword(
                        // The proof is derived from the key in the link too: a damaged link
                        // with the right password looks exactly like a wrong password.
                        (e.code() == Some(disktro_core::api::ErrorCode::SharePasswordWrong)).then(|| {
                            "That password does not open this link. Check it, and check that the link was \
                             copied whole: a damaged link (its part after #) fails the same way."
                                .to_owned()
                        }),
                    )),
                },
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = pw;
    };
    Effect::new(move || load(None));

    let download = move |_| {
        let View::Ready(shared) = view_state.get_untracked() else {
            return;
        };
        let _share = id();
        let _pw = Some(password.get_untracked()).filter(|p| !p.is_empty());
        status.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            use crate::browser::js::now_ms;
            let outcome = async {
                let key = actions::key()?;
                let unfinished = download_id.get_untracked().or_else(|| actions::remembered(&_share));
                let order_key = disktro_core::keys::Keypair::generate();
                let answer = actions::fetch(&_share, &key, _pw.as_deref(), unfinished, &order_key.public())
                    .await
                    .map_err(|e| {
                        let message =
                            actions::explain(&e).unwrap_or_else(|| "The password is needed again.".to_owned());
                        e.with_message(message)
                    })?;
                download_id.set(answer.download_id.clone());
                if let Some(id) = &answer.download_id {
                    actions::remember(&_share, id);
                }
                let start = now_ms();
                progress.set(Some((0, shared.size, start, start)));
                let renewal = crate::browser::download::Renewal::Share {
                    share: _share.clone(),
                    access: actions::access(&key, _pw.as_deref(), answer.download_id.clone()),
                };
                crate::browser::save::download_to_disk(
                    answer,
                    &key,
                    None,
                    Some(renewal),
                    &order_key,
                    (&shared.name, &shared.mime),
                    |_| {},
                    move |p| progress.set(Some((p.bytes_done, p.size, start, now_ms()))),
                )
                .await?;
                // Saved. Were this report lost, the workers' accounts of what they served count
                // the download once its tokens expire.
                if let Some(done) = download_id.get_untracked() {
                    let _ = actions::complete(&_share, &done).await;
                    actions::forget(&_share);
                    download_id.set(None);
                }
                Ok(())
            }
            .await;
            status.set(Some(outcome.map(|()| "Downloaded: check your downloads.".to_owned())));
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = shared;
    };

    view! {
        <section class="panel narrow share-page" data-testid="share-page">
            {move || match view_state.get() {
                View::Loading => view! { <p class="muted">"Opening the link…"</p> }.into_any(),
                View::Gone(m) => view! {
                    <h1>"This link cannot be used"</h1>
                    <p class="error" role="alert" data-testid="share-gone">{m}</p>
                }.into_any(),
                View::NeedsPassword(wrong) => view! {
                    <h1>"This link needs a password"</h1>
                    <form class="form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); load(Some(password.get_untracked())); }>
                        <label>"Password"
                            <input type="password" data-testid="share-page-password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                        </label>
                        <button type="submit" class="button">"Open"</button>
                    </form>
                    {wrong.map(|m| view! { <p class="error" role="alert">{m}</p> })}
                }.into_any(),
                View::Ready(s) => view! {
                    <h1 data-testid="shared-name">{s.name.clone()}</h1>
                    <dl class="facts">
                        <dt>"Size"</dt><dd data-testid="shared-size">{format::bytes(s.size)}</dd>
                        <dt>"Type"</dt><dd>{s.mime.clone()}</dd>
                        <dt>"Signed by"</dt><dd><code data-testid="shared-signer">{s.signer.clone()}</code></dd>
                        <dt>"Link expires"</dt><dd>{format::date(s.expires_at)}</dd>
                        {s.downloads_left.map(|n| {
                            let under_way = match s.downloads_under_way {
                                0 => String::new(),
                                k => format!(" ({k} more under way: given back if it fails)"),
                            };
                            view! { <dt>"Downloads left"</dt><dd data-testid="shared-downloads-left">{format!("{n}{under_way}")}</dd> }
                        })}
                    </dl>
                    <button type="button" class="button" data-testid="shared-download" on:click=download>
                        {move || if download_id.get().is_some() && matches!(status.get(), Some(Err(_))) { "Try again" } else { "Download" }}
                    </button>
                    {move || progress.get().map(|(done, size, start, now)| {
                        let pct = if size == 0 { 100.0 } else { done as f64 * 100.0 / size as f64 };
                        view! {
                            <progress max="100" value=pct></progress>
                            <p class="muted">{format!("{} of {} · {}", format::bytes(done), format::bytes(size), format::rate(done, now - start))}</p>
                        }
                    })}
                    {move || status.get().map(|s| match s {
                        Ok(m) => view! { <p class="ok" role="status" data-testid="shared-done">{m}</p> }.into_any(),
                        Err(m) => view! { <p class="error" role="alert">{m.to_string()}</p> }.into_any(),
                    })}
                    <p class="muted">"Decrypted in this tab with the key in the link; the server never sees it."</p>
                }.into_any(),
            }}
        </section>
    }
}
