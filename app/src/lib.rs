//! `disktro-app`: the Leptos web app. Rendered on the server (`ssr`) and hydrated in the browser
//! (`hydrate`), where it also runs the `disktro-core` codec as WebAssembly.
//!
//! - [`pages`]: one module per page (home, sign-up and log-in, files, share links, nodes);
//! - [`browser`] (browser only): the in-tab data path, its Web Worker and its plumbing;
//! - [`error`]: [`error::Failure`], why something failed, by cause (the server's code, a
//!   worker, the browser, a value that does not verify, a failed decryption);
//! - [`format`]: sizes, rates and times for people;
//! - [`selfcheck`]: the codec sample both sides compute to show they agree byte for byte.
//!
//! Pages render a shell on the server; everything behind a log-in is fetched by the browser with
//! the session cookie, so no secret ever passes through server rendering.

// The pages are deeply nested view types; release builds need more than the default query depth.
#![recursion_limit = "256"]

#[cfg(feature = "hydrate")]
pub mod browser;
pub mod error;
pub mod format;
pub mod pages;
pub mod selfcheck;

use leptos::prelude::*;
use leptos_meta::{Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

/// The HTML document around the app, rendered by the server. It also sets the page's
/// Content-Security-Policy, with the nonce of this response's one inline (hydration) script.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_security_headers();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Whether the pages are served over HTTPS (the server's public URL is `https://`), provided by
/// the server to every render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServedOverHttps(pub bool);

/// The policy: scripts only from this origin or with this response's nonce, WebAssembly allowed
/// to compile, connections to this origin and to storage workers (any host: workers are the
/// operators' machines; only `wss:` when the page is served over HTTPS, where a browser would
/// refuse plain `ws:` anyway), no plugins, no framing.
#[cfg(feature = "ssr")]
fn set_security_headers() {
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = use_nonce().map(|n| n.to_string()).unwrap_or_default();
    let sockets = if use_context::<ServedOverHttps>().unwrap_or_default().0 {
        "wss:"
    } else {
        "ws: wss:"
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data: blob:; connect-src 'self' {sockets}; \
         worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Who is logged in, as the pages show it (the keys themselves stay in the browser's keyring).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    /// The identity key's fingerprint.
    pub fingerprint: String,
}

/// The logged-in account, shared by every page; `None` until the browser knows.
pub type AccountSignal = RwSignal<Option<Account>>;

/// The application: layout and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let account: AccountSignal = RwSignal::new(None);
    provide_context(account);
    // The files page's transfers outlive the page: kept here, for every page.
    pages::Files::provide();
    // In the browser: pick up this tab's keys and start the download helper.
    Effect::new(move || {
        #[cfg(feature = "hydrate")]
        {
            if let Some(keys) = browser::keyring::Keyring::load() {
                account.set(Some(Account {
                    email: keys.email.clone(),
                    fingerprint: keys.public_key().fingerprint(),
                }));
            }
            browser::save::register_service_worker();
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/disktro.css" />
        <Title text="Disktro — zero-knowledge, erasure-coded storage" />
        <Meta name="description" content="Files encrypted and erasure-coded in your browser, stored across independent workers." />
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"Disktro"</A>
                <nav class="nav" aria-label="Main">
                    <A href="/files">"Files"</A>
                    <A href="/nodes">"Nodes"</A>
                    {move || match account.get() {
                        Some(a) => view! { <A href="/account" attr:class="who" attr:title=a.fingerprint.clone()>{a.email.clone()}</A> }.into_any(),
                        None => view! { <A href="/login">"Log in"</A> <A href="/signup" attr:class="button small">"Sign up"</A> }.into_any(),
                    }}
                </nav>
            </header>
            <main>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("") view=pages::HomePage />
                    <Route path=path!("/signup") view=pages::SignupPage />
                    <Route path=path!("/login") view=pages::LoginPage />
                    <Route path=path!("/recover") view=pages::RecoverPage />
                    <Route path=path!("/account") view=pages::AccountPage />
                    <Route path=path!("/files") view=pages::FilesPage />
                    <Route path=path!("/s/:id") view=pages::SharePage />
                    <Route path=path!("/nodes") view=pages::NodesPage />
                    <Route path=path!("/nodes/:id") view=pages::NodePage />
                </Routes>
            </main>
            <footer class="footer">
                <p>"Your files are encrypted before they leave this tab. The server never sees names, contents or keys."</p>
            </footer>
        </Router>
    }
}

/// Browser entry point: hydrate the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    hydrate_body(App);
}
