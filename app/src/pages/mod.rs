//! The app's pages, one module each.

mod auth;
mod files;
mod home;
mod nodes;
mod recovery;
mod share;
mod share_dialog;
mod tokens;
mod unfinished;

pub use auth::{AccountPage, LoginPage, SignupPage};
pub use files::{Files, FilesPage};
pub use home::HomePage;
pub use nodes::{NetworkGlance, NodePage, NodesPage};
pub use recovery::RecoverPage;
pub use share::SharePage;

use leptos::prelude::*;

/// `true` once the app runs in this page. Effects run only in the browser, after hydration: a
/// control that needs the app is rendered disabled until then, so a click cannot fall through to
/// the plain HTML form or be lost.
pub(crate) fn hydrated() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move || set_hydrated.set(true));
    hydrated
}

/// Shown for any unknown path.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="panel">
            <h1>"Not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Back to the start"</a></p>
        </section>
    }
}
