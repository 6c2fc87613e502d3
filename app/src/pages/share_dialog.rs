//! The share dialog of the files page (a modal: focus moves in, Escape closes it, focus returns
//! to the Share button): make a link with an expiry, a download limit and an optional password;
//! copy it; see the file's links, copy any of them again (this tab holds the key) and revoke them. The link is
//! `/s/<id>#<key>`: the key stays in the fragment, which browsers never send to a server.

use disktro_core::api::ShareView;
use leptos::prelude::*;

use crate::format;

/// The file a dialog is open for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareTarget {
    pub file_id: disktro_core::FileId,
    pub name: String,
    pub wrapped_key: disktro_core::api::Base64,
}

/// Expiry choices, in seconds.
const EXPIRIES: [(u64, &str); 4] = [
    (3600, "1 hour"),
    (86_400, "1 day"),
    (604_800, "7 days"),
    (2_592_000, "30 days"),
];

#[cfg(feature = "hydrate")]
mod actions {
    use crate::error::Failure;
    use disktro_core::api::{NewShare, ShareView};

    use super::ShareTarget;
    use crate::browser::api::Api;
    use crate::browser::keyring::Keyring;
    use disktro_core::api::Base64;

    fn api() -> Result<(Keyring, Api), Failure> {
        let me = Keyring::load().ok_or(Failure::SignedOut)?;
        let api = Api::new(Some(me.csrf.clone()));
        Ok((me, api))
    }

    pub async fn list(file_id: &disktro_core::FileId) -> Result<Vec<ShareView>, Failure> {
        let (_, api) = api()?;
        Ok(api.get(&format!("/shares?file_id={file_id}")).await?)
    }

    /// The full URL of share `share_id` of `target`, the key in the fragment: the key is the
    /// file's, which this tab opens, so a link can be copied again at any time.
    pub fn link(target: &ShareTarget, share_id: &str) -> Result<String, Failure> {
        let (me, _) = api()?;
        let key = me.file_key(&target.file_id, &target.wrapped_key)?;
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        Ok(format!(
            "{origin}/s/{share_id}#{}",
            disktro_core::keys::encode_link_key(&key)
        ))
    }

    /// Create a link; returns the full URL with the key in the fragment.
    pub async fn create(
        target: &ShareTarget,
        expires_in: u64,
        max_downloads: Option<u32>,
        password: &str,
    ) -> Result<String, Failure> {
        let (me, api) = api()?;
        let key = me.file_key(&target.file_id, &target.wrapped_key)?;
        let proof =
            (!password.is_empty()).then(|| Base64::from(disktro_core::keys::share_password_proof(&key, password)));
        let share: ShareView = api
            .post(
                &format!("/files/{}/shares", target.file_id),
                &NewShare {
                    expires_in: Some(expires_in),
                    max_downloads,
                    password_proof: proof,
                },
            )
            .await?;
        link(target, &share.share_id)
    }

    /// The element that has the focus now (to give it back when the dialog closes).
    pub fn focused() -> Option<web_sys::HtmlElement> {
        use wasm_bindgen::JsCast as _;
        web_sys::window()?
            .document()?
            .active_element()?
            .dyn_into::<web_sys::HtmlElement>()
            .ok()
    }

    pub async fn revoke(share_id: &str) -> Result<(), Failure> {
        let (_, api) = api()?;
        Ok(api.send("DELETE", &format!("/shares/{share_id}")).await?)
    }

    pub fn copy(text: &str) {
        if let Some(w) = web_sys::window() {
            let _ = w.navigator().clipboard().write_text(text);
        }
    }
}

#[component]
pub fn ShareDialog(target: RwSignal<Option<ShareTarget>>) -> impl IntoView {
    let expiry = RwSignal::new(604_800u64);
    let limit = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let link = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let shares = RwSignal::new(Vec::<ShareView>::new());
    let copied = RwSignal::new(false);
    // The link of the list last copied again (its button says so).
    let copied_share = RwSignal::new(None::<String>);

    let reload = move || {
        #[cfg(feature = "hydrate")]
        if let Some(t) = target.get_untracked() {
            leptos::task::spawn_local(async move {
                match actions::list(&t.file_id).await {
                    Ok(list) => shares.set(list),
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        }
    };
    let dialog = NodeRef::<leptos::html::Section>::new();
    Effect::new(move || {
        if target.get().is_some() {
            link.set(None);
            error.set(None);
            copied.set(false);
            copied_share.set(None);
            reload();
        }
    });
    // The dialog takes focus when it opens (keyboard users land in it), Escape closes it
    // wherever the focus is, and the focus goes back to what opened it (the file's Share button).
    Effect::new(move || {
        if let Some(section) = dialog.get() {
            let _ = section.focus();
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let opener = StoredValue::new_local(None::<web_sys::HtmlElement>);
        Effect::new(move |was_open: Option<bool>| {
            let open = target.get().is_some();
            if open && was_open != Some(true) {
                opener.set_value(actions::focused());
            } else if !open
                && was_open == Some(true)
                && let Some(el) = opener.get_value()
            {
                let _ = el.focus();
            }
            open
        });
    }

    #[cfg(feature = "hydrate")]
    {
        let escape = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && target.get_untracked().is_some() {
                target.set(None);
            }
        });
        on_cleanup(move || escape.remove());
    }

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let limit_text = limit.get_untracked();
        let max = if limit_text.trim().is_empty() {
            None
        } else {
            match limit_text.trim().parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    error.set(Some(
                        "The download limit is a whole number above zero (or empty for none).".to_owned(),
                    ));
                    return;
                }
            }
        };
        error.set(None);
        #[cfg(feature = "hydrate")]
        if let Some(t) = target.get_untracked() {
            let (secs, pw) = (expiry.get_untracked(), password.get_untracked());
            leptos::task::spawn_local(async move {
                match actions::create(&t, secs, max, &pw).await {
                    Ok(url) => {
                        link.set(Some(url));
                        reload();
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = max;
    };

    view! {
        <Show when=move || target.get().is_some()>
            <div class="dialog-backdrop" on:click=move |_| target.set(None)></div>
            <section class="dialog panel" role="dialog" aria-modal="true" aria-labelledby="share-title" data-testid="share-dialog"
                tabindex="-1" node_ref=dialog>
                <div class="panel-head">
                    <h2 id="share-title">{move || format!("Share {}", target.get().map(|t| t.name).unwrap_or_default())}</h2>
                    <button type="button" class="button small secondary" aria-label="Close" on:click=move |_| target.set(None)>"✕"</button>
                </div>
                <form class="form" on:submit=create>
                    <label>"Link works for"
                        <select on:change=move |ev| expiry.set(event_target_value(&ev).parse().unwrap_or(604_800)) prop:value=move || expiry.get().to_string()>
                            {EXPIRIES.iter().map(|(secs, label)| view! { <option value=secs.to_string()>{*label}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Download limit (empty: none)"
                        <input type="number" min="1" inputmode="numeric" data-testid="share-limit" prop:value=limit on:input=move |ev| limit.set(event_target_value(&ev)) />
                    </label>
                    <label>"Password (optional)"
                        <input type="password" autocomplete="new-password" data-testid="share-password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                    </label>
                    <button type="submit" class="button" data-testid="share-create">"Create link"</button>
                </form>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {move || link.get().map(|url| {
                    let for_copy = url.clone();
                    view! {
                        <div class="link-box">
                            <input type="text" readonly data-testid="share-link" prop:value=url.clone() on:focus=move |ev| {
                                #[cfg(feature = "hydrate")]
                                {
                                    use wasm_bindgen::JsCast as _;
                                    if let Some(i) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) { i.select(); }
                                }
                                #[cfg(not(feature = "hydrate"))]
                                let _ = ev;
                            } />
                            <button type="button" class="button small" on:click=move |_| {
                                #[cfg(feature = "hydrate")]
                                actions::copy(&for_copy);
                                #[cfg(not(feature = "hydrate"))]
                                let _ = &for_copy;
                                copied.set(true);
                            }>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
                        </div>
                        <p class="muted">"The key is in the part after #: anyone with the whole link can open the file; the server cannot."</p>
                    }
                })}
                <h3>"Links to this file"</h3>
                {move || {
                    let list = shares.get();
                    if list.is_empty() {
                        return view! { <p class="muted">"None yet."</p> }.into_any();
                    }
                    view! {
                        <ul class="shares">
                            {list.into_iter().map(|s| {
                                let id = s.share_id.clone();
                                let state = if s.revoked { "revoked".to_owned() } else { format!("until {}", format::date(s.expires_at)) };
                                let downloads = match s.max_downloads { Some(m) => format!("{} of {m} downloads", s.downloads), None => format!("{} downloads", s.downloads) };
                                view! {
                                    <li data-testid="share-row">
                                        <code>{s.share_id.clone()}</code>
                                        <span class="muted">{state}</span>
                                        <span class="muted">{downloads}</span>
                                        {s.password.then(|| view! { <span class="tag">"password"</span> })}
                                        {(!s.revoked).then(|| {
                                            let id = s.share_id.clone();
                                            let shown = s.share_id.clone();
                                            view! {
                                                <button type="button" class="button small secondary" data-testid="share-copy" on:click=move |_| {
                                                    #[cfg(feature = "hydrate")]
                                                    if let Some(t) = target.get_untracked() {
                                                        match actions::link(&t, &id) {
                                                            Ok(url) => {
                                                                actions::copy(&url);
                                                                link.set(Some(url));
                                                                copied_share.set(Some(id.clone()));
                                                            }
                                                            Err(e) => error.set(Some(e.to_string())),
                                                        }
                                                    }
                                                    #[cfg(not(feature = "hydrate"))]
                                                    let _ = &id;
                                                }>{move || if copied_share.get().as_deref() == Some(shown.as_str()) { "Copied" } else { "Copy link" }}</button>
                                            }
                                        })}
                                        {(!s.revoked).then(|| view! {
                                            <button type="button" class="button small danger" data-testid="share-revoke" on:click=move |_| {
                                                #[cfg(feature = "hydrate")]
                                                {
                                                    let id = id.clone();
                                                    leptos::task::spawn_local(async move {
                                                        match actions::revoke(&id).await {
                                                            Ok(()) => reload(),
                                                            Err(e) => error.set(Some(e.to_string())),
                                                        }
                                                    });
                                                }
                                                #[cfg(not(feature = "hydrate"))]
                                                let _ = &id;
                                            }>"Revoke"</button>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        </Show>
    }
}
