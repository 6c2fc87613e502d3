//! `disktro-app`: the Leptos web app. Rendered on the server (`ssr`) and hydrated in the browser
//! (`hydrate`), where it also runs the `disktro-core` codec as WebAssembly.
//!
//! Pages live in [`pages`]; [`selfcheck`] is the codec sample both sides compute to show they
//! agree byte for byte.

pub mod pages;
pub mod selfcheck;

use leptos::prelude::*;
use leptos_meta::{Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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

/// The application: layout and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/disktro.css" />
        <Title text="Disktro — zero-knowledge, erasure-coded storage" />
        <Meta name="description" content="Files encrypted and erasure-coded in your browser, stored across independent workers." />
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"Disktro"</A>
            </header>
            <main>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("") view=pages::HomePage />
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
