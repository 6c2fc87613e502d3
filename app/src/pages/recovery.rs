//! Recovery keys in the web app: the panel that shows a new key once (after sign-up, or when the
//! account page makes a new one), and `/recover`, which sets a new password with a key. The
//! flows (what is derived and sent) are in `auth.rs`.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::auth::{Busy, BusyLine, input_value};
use crate::AccountSignal;

/// A recovery key shown once: the text to write down, a file to keep, and a confirmation before
/// `on_done` (a key never seen again must not be clicked past by accident).
#[component]
pub fn RecoveryKeyPanel(key: String, on_done: Callback<()>) -> impl IntoView {
    let saved = RwSignal::new(false);
    // A data: URL is built and saved in this tab; nothing about it reaches a server.
    let href = format!("data:text/plain;charset=utf-8,{key}%0A");
    view! {
        <section class="panel narrow" data-testid="recovery-panel">
            <h2>"Your recovery key"</h2>
            <p>"If you ever forget your password, this key sets a new one. Without the password and this key, nobody (not even us) can open your files."</p>
            <p class="recovery-key"><code data-testid="recovery-key">{key.clone()}</code></p>
            <p>
                <a class="button secondary" href=href download="disktro-recovery-key.txt" data-testid="recovery-download">"Download it"</a>
            </p>
            <p class="muted">"It is shown only now. Keep it somewhere safe, away from this computer: printed, or in a password manager."</p>
            <label class="check">
                <input type="checkbox" data-testid="recovery-saved" on:change=move |ev| saved.set(event_target_checked(&ev)) />
                " I have saved my recovery key"
            </label>
            <button type="button" class="button" data-testid="recovery-done"
                disabled=move || !saved.get() on:click=move |_| on_done.run(())>
                "Continue"
            </button>
        </section>
    }
}

/// `/recover`: e-mail, recovery key, new password.
#[component]
pub fn RecoverPage() -> impl IntoView {
    let account = expect_context::<AccountSignal>();
    let email = NodeRef::<leptos::html::Input>::new();
    let key = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let confirm = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(Busy::Idle);
    let navigate = use_navigate();
    let hydrated = super::hydrated();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (e, k, p) = (
            input_value(email).trim().to_owned(),
            input_value(key),
            input_value(password),
        );
        if !e.contains('@') {
            busy.set(Busy::Failed("Enter your e-mail address.".to_owned()));
            return;
        }
        if p.chars().count() < 10 {
            busy.set(Busy::Failed(
                "Use at least 10 characters: the password is the key to your files.".to_owned(),
            ));
            return;
        }
        if p != input_value(confirm) {
            busy.set(Busy::Failed("The two passwords differ.".to_owned()));
            return;
        }
        busy.set(Busy::Sending);
        let _navigate = navigate.clone();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let deriving = move || busy.set(Busy::Deriving(crate::browser::js::now_ms()));
            match super::auth::flows::recover(&e, &k, &p, deriving).await {
                Ok(keys) => {
                    super::auth::flows::signed_in(account, &keys);
                    busy.set(Busy::Idle);
                    _navigate("/files", Default::default());
                }
                Err(m) => busy.set(Busy::Failed(m.to_string())),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (e, k, p, account);
    };

    view! {
        <section class="panel narrow">
            <h1>"Set a new password"</h1>
            <p class="muted">"With the recovery key you were given at sign-up. Your files stay as they are; other devices will have to log in again."</p>
            <form on:submit=submit class="form">
                <label>"E-mail"
                    <input type="email" name="email" autocomplete="username" required node_ref=email />
                </label>
                <label>"Recovery key"
                    <input type="text" name="recovery-key" autocomplete="off" spellcheck="false" required
                        placeholder="DKRK-…" node_ref=key data-testid="recovery-key-input" />
                </label>
                <label>"New password"
                    <input type="password" name="password" autocomplete="new-password" required node_ref=password />
                </label>
                <label>"New password again"
                    <input type="password" name="confirm" autocomplete="new-password" required node_ref=confirm />
                </label>
                <button type="submit" class="button" data-testid="recover-submit"
                    disabled=move || !hydrated.get() || matches!(busy.get(), Busy::Deriving(_) | Busy::Sending)>
                    "Set new password"
                </button>
            </form>
            <BusyLine busy />
            <p class="muted">"Remembered it? " <a href="/login">"Log in"</a></p>
        </section>
    }
}
