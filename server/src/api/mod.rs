//! The JSON API under `/api/v1`, used by the CLI, the app and the workers. Its OpenAPI document is
//! generated from these handlers' annotations and served at `/api/v1/openapi.json` (and kept in
//! `server/openapi.json`, checked by a test).
//!
//! | routes | who |
//! | --- | --- |
//! | `GET /health`, `GET /openapi.json` | anyone |
//! | `POST /nodes/register`, `POST /nodes/heartbeat`, `POST /nodes/drain` | workers and their operators (join token; node-key signatures) |
//! | `GET /nodes` | anyone: node ids, URLs, zones and health are not secret |
//! | `GET /durability`, `GET /jobs`, `GET /ledger/verify`, `GET /nodes/{id}/earnings` | anyone: aggregates, no file named |
//! | `POST /auth/prelogin`, `/auth/signup`, `/auth/login` | anyone (log-in throttled) |
//! | `POST /auth/logout`, `/auth/password`, `/auth/tokens`, `DELETE /auth/tokens/{id}` | a session with its CSRF token, or an API token |
//! | `GET /auth/tokens` | a session or an API token: the account's own tokens, never their secrets |
//! | `GET /account`, `GET /files`, `GET /files/{id}`, `GET /uploads/{id}`, `GET /shares`, `GET /folders` | a session or an API token, own objects only |
//! | `POST /uploads`, `/uploads/{id}/renew`, `/uploads/{id}/replan`, `/uploads/{id}/resize`, `/uploads/{id}/commit`, `DELETE /uploads/{id}`, `DELETE /files/{id}`, `POST /files/{id}/restripe`, `/files/{id}/move`, `/files/{id}/rename`, `POST /files/{id}/shares`, `DELETE /shares/{id}`, `POST /folders`, `/folders/{id}/rename`, `/folders/{id}/move`, `DELETE /folders/{id}` | a session with its CSRF token, or an API token; own objects only |
//! | `POST /public/shares/{id}`, `/public/shares/{id}/download` | anyone with the link (policy and password enforced) |
//! | `POST /public/shares/{id}/downloads/{download_id}/complete` | the holder of that download's id |
//!
//! Another account's object is always "not found", never "forbidden": existence is not revealed.

pub mod auth;
pub mod durability;
pub mod error;
pub mod files;
pub mod folders;
pub mod nodes;
pub mod retry;
pub mod shares;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use disktro_core::api::ServerHealth;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::Context;

/// API requests are small JSON documents; a heartbeat with many corrupt-shard reports is the
/// largest (10,000 ids ≈ 700 kB).
const BODY_LIMIT: usize = 1 << 20;

#[utoipa::path(get, path = "/health", tag = "server", responses((status = 200, body = ServerHealth)))]
async fn health() -> Json<ServerHealth> {
    Json(ServerHealth {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        format_version: disktro_core::FORMAT_VERSION,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Disktro API", description = "The JSON API of a Disktro server: accounts, files, shares and storage nodes. \
        The server never receives plaintext, file names or keys: manifests are owner-signed, metadata is sealed, \
        file keys are wrapped, and share links carry their key in the URL fragment, which is never sent."),
    servers((url = "/api/v1")),
    modifiers(&Security),
    tags((name = "accounts"), (name = "files"), (name = "folders"), (name = "shares"), (name = "nodes"), (name = "server"))
)]
struct ApiDoc;

/// The two ways to authenticate: a session cookie (with the CSRF header on state-changing
/// requests) or a bearer API token.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "disktro_session",
                "session cookie from /auth/login or /auth/signup (`__Host-disktro_session` under https); state-changing requests also send \
                 the session's CSRF token in the x-csrf-token header",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API token from /auth/tokens (the CLI)"))
                    .build(),
            ),
        );
    }
}

/// The API's routes and its OpenAPI document, from one list.
fn routes() -> (Router<Arc<Context>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::samples))
        .routes(routes!(nodes::register))
        .routes(routes!(nodes::heartbeat))
        .routes(routes!(nodes::drain))
        .routes(routes!(durability::status))
        .routes(routes!(durability::jobs))
        .routes(routes!(durability::verify_ledger))
        .routes(routes!(durability::earnings))
        .routes(routes!(auth::prelogin))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::recover_start))
        .routes(routes!(auth::recover))
        .routes(routes!(auth::set_recovery))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::account))
        .routes(routes!(files::begin))
        .routes(routes!(files::renew))
        .routes(routes!(files::replan))
        .routes(routes!(files::resize))
        .routes(routes!(files::plan, files::cancel))
        .routes(commit_route())
        .routes(routes!(files::list))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::restripe))
        .routes(routes!(folders::create, folders::list))
        .routes(routes!(folders::rename))
        .routes(routes!(folders::move_folder))
        .routes(routes!(folders::delete))
        .routes(routes!(folders::move_file))
        .routes(routes!(folders::rename_file))
        .routes(routes!(shares::create))
        .routes(routes!(shares::list))
        .routes(routes!(shares::revoke))
        .routes(routes!(shares::open))
        .routes(routes!(shares::complete))
        .routes(routes!(shares::download))
        .split_for_parts()
}

/// The commit carries a receipt per shard: its own, larger body limit (`uploads::MAX_COMMIT_BODY`).
/// Set on the route itself, it overrides the router-wide limit.
fn commit_route() -> utoipa_axum::router::UtoipaMethodRouter<Arc<Context>> {
    let (schemas, paths, method) = routes!(files::commit);
    (
        schemas,
        paths,
        method.layer(DefaultBodyLimit::max(crate::uploads::MAX_COMMIT_BODY)),
    )
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// Every API answer is `Cache-Control: no-store`: answers carry wrapped keys, worker tokens and
/// the CSRF token, which no browser or proxy cache may keep.
async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

pub fn router<S: Clone + Send + Sync + 'static>(ctx: Arc<Context>) -> Router<S> {
    let (api, doc) = routes();
    let doc = Arc::new(doc);
    api.layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route("/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .fallback(error::no_such_route)
        .layer(axum::middleware::from_fn(retry::serialization_failures))
        .layer(axum::middleware::map_response(no_store))
        .with_state(ctx)
}
