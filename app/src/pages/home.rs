//! Home: what Disktro does and where to start (sign up, or your files), then, folded away, a live
//! check that this browser runs the same codec as the server.

use crate::error::Failure;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::selfcheck;

/// The server's native digest of the codec sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeDigest {
    pub digest: String,
    pub chunks: usize,
    pub shards: usize,
}

/// Computes the codec sample natively on the server (at a fixed path, which the server's body
/// limit for server functions is tested against).
#[server(endpoint = "codec_digest")]
pub async fn native_codec_digest() -> Result<NativeDigest, ServerFnError> {
    // Encoding 9 MiB is CPU work: keep it off the async runtime's threads.
    let d = tokio::task::spawn_blocking(|| selfcheck::digest(&selfcheck::sample()))
        .await
        .map_err(|_| ServerFnError::new("the codec check could not run"))?;
    Ok(NativeDigest {
        digest: d.digest,
        chunks: d.chunks,
        shards: d.shards,
    })
}

#[component]
pub fn HomePage() -> impl IntoView {
    let account = expect_context::<crate::AccountSignal>();
    view! {
        <section class="hero">
            <h1>"Storage that cannot read your files."</h1>
            <p class="lede">
                "Drop a file and this tab cuts it into 4 MiB chunks, compresses each only when that pays, "
                "seals it with AES-256-GCM and spreads it as Reed-Solomon shards over independent "
                "storage workers: any 40% of them can be lost, and the server only ever sees sealed bytes."
            </p>
            <p class="cta">
                {move || if account.get().is_some() {
                    view! { <a class="button" href="/files" data-testid="cta-files">"Go to your files"</a> }.into_any()
                } else {
                    view! {
                        <a class="button" href="/signup" data-testid="cta-signup">"Create an account"</a>
                        " "
                        <a class="button secondary" href="/login" data-testid="cta-login">"Log in"</a>
                    }.into_any()
                }}
            </p>
        </section>
        <section class="steps" aria-label="How a file is stored">
            <Step n="1" title="Chunk" text="4 MiB pieces, read slice by slice: never the whole file in memory." />
            <Step n="2" title="Squeeze" text="zstd, only where the data is not already compressed." />
            <Step n="3" title="Seal" text="AES-256-GCM with a per-file key; chunks cannot be reordered, dropped or spliced." />
            <Step n="4" title="Shard" text="Reed-Solomon (6 + 4, or 9 + 6 on a larger network), each shard named by its BLAKE3 hash and verified on every read." />
        </section>
        <crate::pages::NetworkGlance />
        // For the curious: the same codec here and on the server, byte for byte.
        <details class="panel codec-details" data-testid="codec-details">
            <summary>"Check that this browser encodes exactly as the server does"</summary>
            <CodecCheck />
        </details>
    }
}

#[component]
fn Step(n: &'static str, title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <article class="step">
            <span class="step-n" aria-hidden="true">{n}</span>
            <h2>{title}</h2>
            <p>{text}</p>
        </article>
    }
}

/// What the browser measured, per implementation of the seal step.
#[derive(Debug, Clone, PartialEq)]
struct BrowserRun {
    /// The one-call encoder (the `aes-gcm` crate in WebAssembly).
    whole: String,
    /// The pipeline worker's path: staged, sealed by WebCrypto.
    webcrypto: Result<String, Failure>,
    /// Staged, sealed by the `aes-gcm` crate (the fallback for insecure contexts).
    fallback: Result<String, Failure>,
    millis: f64,
}

#[component]
fn CodecCheck() -> impl IntoView {
    let native = Resource::new(|| (), |_| native_codec_digest());
    let browser = RwSignal::new(None::<BrowserRun>);
    let running = RwSignal::new(false);
    let hydrated = super::hydrated();

    let run = move |_| {
        running.set(true);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            use crate::browser::seal::Engine;
            let data = selfcheck::sample();
            let start = crate::browser::js::now_ms();
            let webcrypto = selfcheck::digest_staged(&data, Engine::WebCrypto)
                .await
                .map(|d| d.digest);
            let millis = crate::browser::js::now_ms() - start;
            let fallback = selfcheck::digest_staged(&data, Engine::Wasm).await.map(|d| d.digest);
            let whole = selfcheck::digest(&data).digest;
            browser.set(Some(BrowserRun {
                whole,
                webcrypto,
                fallback,
                millis,
            }));
            running.set(false);
        });
    };

    view! {
        <section aria-labelledby="codec-check-title">
            <h2 id="codec-check-title">"Codec check"</h2>
            <p>
                "The same Rust codec runs natively on the server and as WebAssembly here. Encode a 9 MiB "
                "sample in this browser (sealed through WebCrypto, as uploads are, and through the "
                "WebAssembly fallback) and compare every byte that would be uploaded."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Asking the server…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <p class="error" role="alert">"The server could not run its check: "
                        {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join(", ")}
                    </p>
                }>
                    {move || native.get().map(|r| r.map(|n| view! {
                        <dl class="facts">
                            <dt>"Server (native)"</dt>
                            <dd><code data-testid="native-digest">{n.digest.clone()}</code></dd>
                            <dt>"Layout"</dt>
                            <dd>{format!("{} chunks, {} shards", n.chunks, n.shards)}</dd>
                        </dl>
                    }))}
                </ErrorBoundary>
            </Transition>
            <button type="button" class="button" data-testid="run-codec" on:click=run disabled=move || running.get() || !hydrated.get()>
                "Run in this browser"
            </button>
            {move || browser.get().map(|b| {
                let mbps = selfcheck::SAMPLE_LEN as f64 / 1e6 / (b.millis.max(1.0) / 1000.0);
                let shown = |r: &Result<String, Failure>| r.clone().unwrap_or_else(|e| format!("unavailable: {e}"));
                let same = native.get().and_then(Result::ok).map(|n| {
                    n.digest == b.whole
                        && b.webcrypto.as_ref().is_ok_and(|d| *d == n.digest)
                        && b.fallback.as_ref().is_ok_and(|d| *d == n.digest)
                });
                view! {
                    <dl class="facts">
                        <dt>"This browser, WebCrypto seal"</dt>
                        <dd><code data-testid="browser-digest">{shown(&b.webcrypto)}</code></dd>
                        <dt>"This browser, WebAssembly seal"</dt>
                        <dd><code data-testid="browser-digest-fallback">{shown(&b.fallback)}</code></dd>
                        <dt>"This browser, one-call encoder"</dt>
                        <dd><code data-testid="browser-digest-whole">{b.whole.clone()}</code></dd>
                        <dt>"Speed (WebCrypto path)"</dt>
                        <dd data-testid="browser-speed">{format!("{mbps:.0} MB/s ({:.0} ms)", b.millis)}</dd>
                    </dl>
                    <p data-testid="verdict" class=if same == Some(true) { "ok" } else { "error" } role="status">
                        {match same {
                            Some(true) => "Identical: every path in this browser produces exactly the server's bytes.",
                            Some(false) => "Different bytes: this browser's codec does not match the server's.",
                            None => "The server's digest is not available to compare.",
                        }}
                    </p>
                }
            })}
        </section>
    }
}
