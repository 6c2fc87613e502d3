//! The account's command-line tokens on the account page: each machine logged in with the CLI
//! (its name, when it was made, when it stops working), and a button that revokes it. A revoked
//! machine must log in again.

use disktro_core::api::TokenInfo;
use leptos::prelude::*;

/// The list, loaded when the page runs in the browser.
#[component]
pub fn ApiTokens() -> impl IntoView {
    let tokens = RwSignal::new(None::<Result<Vec<TokenInfo>, String>>);
    let reload = move || {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let answer = crate::browser::api::Api::default()
                .get::<Vec<TokenInfo>>("/auth/tokens")
                .await
                .map_err(|e| e.message);
            tokens.set(Some(answer));
        });
    };
    Effect::new(move |_| reload());
    let revoke = move |id: String| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let Some(me) = crate::browser::keyring::Keyring::load() else {
                return;
            };
            match crate::browser::api::Api::new(Some(me.csrf.clone()))
                .send("DELETE", &format!("/auth/tokens/{id}"))
                .await
            {
                Ok(()) => reload(),
                Err(e) => tokens.set(Some(Err(e.message))),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    };
    view! {
        <section class="panel narrow" data-testid="api-tokens">
            <h2>"Command-line log-ins"</h2>
            <p class="muted">"Each machine where the " <code>"disktro"</code> " command is logged in to this account. Revoke one you no longer use or trust: it has to log in again."</p>
            {move || match tokens.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(m)) => view! { <p class="error" role="alert">{m}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="muted" data-testid="no-tokens">"None."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <table class="tokens">
                        <thead><tr><th>"Name"</th><th>"Made"</th><th>"Stops working"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|t| {
                                let id = t.id.clone();
                                view! {
                                    <tr data-testid="token-row">
                                        <td>{t.name}</td>
                                        <td>{crate::format::date(t.created_at)}</td>
                                        <td>{crate::format::date(t.expires_at)}</td>
                                        <td><button type="button" class="button small secondary" data-testid="revoke-token"
                                            on:click=move |_| revoke(id.clone())>"Revoke"</button></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}
