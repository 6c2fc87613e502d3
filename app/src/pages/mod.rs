//! The app's pages, one module each.

mod auth;
mod files;
mod home;
mod nodes;
mod share;
mod share_dialog;

pub use auth::{AccountPage, LoginPage, SignupPage};
pub use files::FilesPage;
pub use home::HomePage;
pub use nodes::{NetworkGlance, NodePage, NodesPage};
pub use share::SharePage;

use leptos::prelude::*;

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
