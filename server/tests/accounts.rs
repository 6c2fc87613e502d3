//! Zero-knowledge accounts, sessions, CSRF, API tokens and log-in throttling, through `oneshot` on
//! SQLite and PostgreSQL. Keys are derived as a client would (`core::keys`), with the minimum
//! Argon2 parameters to keep the tests quick.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use disktro_core::keys::{KdfParams, KdfSetup, Keypair, derive_account_keys};
use serde_json::{Value, json};
use support::databases;
use tower::ServiceExt as _;

/// What a client holds after deriving keys from a password.
struct Client {
    email: String,
    setup: KdfSetup,
    auth_key: String,
    wrapped_identity: String,
    public_key: String,
}

fn client(email: &str, password: &str) -> Client {
    let setup = KdfSetup {
        params: KdfParams::MINIMUM,
        salt: disktro_core::random_bytes(),
        form: disktro_core::keys::PasswordForm::Nfkc,
    };
    derive(email, password, setup, &Keypair::generate())
}

fn derive(email: &str, password: &str, setup: KdfSetup, identity: &Keypair) -> Client {
    let keys = derive_account_keys(password, &setup).unwrap();
    Client {
        email: email.to_owned(),
        setup,
        auth_key: B64.encode(keys.auth_key.as_bytes()),
        wrapped_identity: B64.encode(keys.master_key.wrap_identity(email.as_bytes(), identity).unwrap()),
        public_key: disktro_core::ids::to_hex(identity.public().as_bytes()),
    }
}

impl Client {
    fn signup_body(&self) -> Value {
        json!({
            "email": self.email,
            "kdf_setup": B64.encode(self.setup.encode()),
            "auth_key": self.auth_key,
            "wrapped_identity": self.wrapped_identity,
            "public_key": self.public_key,
        })
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    cookie: Option<String>,
    /// A device secret handed out (`x-disktro-device`).
    device: Option<String>,
}

async fn call(app: &axum::Router, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder().method(method).uri(format!("/api/v1{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let body = match body {
        Some(v) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&v).unwrap())
        }
        None => Body::empty(),
    };
    let res = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let device = res
        .headers()
        .get("x-disktro-device")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        cookie,
        device,
    }
}

/// `name=value` from a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn app_for(db: &support::TestDb) -> axum::Router {
    let ctx = disktro_server::Context::open(db.dir.path(), &db.url, Some("j".to_owned()), Duration::from_secs(10))
        .await
        .unwrap();
    disktro_server::app(
        disktro_server::site_options("target/site", "127.0.0.1:0".parse().unwrap()),
        Arc::new(ctx),
    )
}

async fn login(app: &axum::Router, email: &str, auth_key: &str) -> Answer {
    call(
        app,
        "POST",
        "/auth/login",
        Some(json!({"email": email, "auth_key": auth_key})),
        &[],
    )
    .await
}

/// Make an API token asking for `days`; returns how many seconds from now it expires.
/// `POST /auth/tokens` with `body` under a session and its CSRF token.
async fn new_token(app: &axum::Router, session: &str, csrf: &str, body: Value) -> Answer {
    call(
        app,
        "POST",
        "/auth/tokens",
        Some(body),
        &[("cookie", session), ("x-csrf-token", csrf)],
    )
    .await
}

async fn token_lifetime(app: &axum::Router, session: &str, csrf: &str, days: Option<u32>) -> u64 {
    let mut body = json!({"name": "lifetime"});
    if let Some(d) = days {
        body["expires_in_days"] = json!(d);
    }
    let a = new_token(app, session, csrf, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    a.body["expires_at"].as_u64().unwrap().saturating_sub(now)
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_log_in_sessions_csrf_tokens_and_password_change() {
    for db in databases().await {
        let app = app_for(&db).await;
        let ada = client("Ada@Example.org", "correct horse battery staple");

        let a = call(&app, "POST", "/auth/signup", Some(ada.signup_body()), &[]).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}: {}", db.backend, a.body);
        let set_cookie = a.cookie.unwrap();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        assert_eq!(a.body["email"], "ada@example.org");
        let session = cookie_pair(&set_cookie);
        let csrf = a.body["csrf_token"].as_str().unwrap().to_owned();

        // Tried: the same address again (any case). Must hold: 409 email_taken.
        let again = client("ADA@example.org", "another");
        let a = call(&app, "POST", "/auth/signup", Some(again.signup_body()), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::CONFLICT, "email_taken"));
        // Tried: weak KDF parameters, a bad address, a short auth key. Must hold: clear 400s.
        let mut weak = client("weak@example.org", "pw").signup_body();
        weak["kdf_setup"] = json!(
            B64.encode(
                KdfSetup {
                    params: KdfParams {
                        memory_kib: 1024,
                        iterations: 1,
                        parallelism: 1
                    },
                    salt: [0; 16],
                    form: disktro_core::keys::PasswordForm::Nfkc,
                }
                .encode()
            )
        );
        let a = call(&app, "POST", "/auth/signup", Some(weak), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::BAD_REQUEST, "weak_kdf"));
        // Tried: a new account with a version-1 set-up (passwords as typed). Must hold: refused,
        // so only accounts made before normalization have one.
        let mut unnormalized = client("raw@example.org", "pw").signup_body();
        let setup = KdfSetup {
            params: KdfParams::MINIMUM,
            salt: [1; 16],
            form: disktro_core::keys::PasswordForm::AsTyped,
        };
        unnormalized["kdf_setup"] = json!(B64.encode(setup.encode()));
        let a = call(&app, "POST", "/auth/signup", Some(unnormalized), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::BAD_REQUEST, "weak_kdf"));
        let mut bad = client("nobody", "pw").signup_body();
        let a = call(&app, "POST", "/auth/signup", Some(bad.clone()), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::BAD_REQUEST, "invalid_email"));
        bad["email"] = json!("short@example.org");
        bad["auth_key"] = json!("AAAA");
        let a = call(&app, "POST", "/auth/signup", Some(bad), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::BAD_REQUEST, "invalid_field"));
        // Tried: malformed JSON and an unknown field. Must hold: 400 malformed_json.
        let a = call(&app, "POST", "/auth/login", Some(json!({"email": 1})), &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::BAD_REQUEST, "malformed_json"));

        // Pre-login: the real set-up for Ada, a stable decoy of the same shape for strangers.
        let a = call(
            &app,
            "POST",
            "/auth/prelogin",
            Some(json!({"email": "ada@example.org"})),
            &[],
        )
        .await;
        assert_eq!(a.body["kdf_setup"], B64.encode(ada.setup.encode()));
        let d1 = call(
            &app,
            "POST",
            "/auth/prelogin",
            Some(json!({"email": "eve@example.org"})),
            &[],
        )
        .await;
        let d2 = call(
            &app,
            "POST",
            "/auth/prelogin",
            Some(json!({"email": "eve@example.org"})),
            &[],
        )
        .await;
        assert_eq!(d1.body, d2.body);
        assert!(KdfSetup::decode(&B64.decode(d1.body["kdf_setup"].as_str().unwrap()).unwrap()).is_ok());

        // The session reads the account; the password never left the client.
        let a = call(&app, "GET", "/account", None, &[("cookie", &session)]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body["public_key"], ada.public_key);
        assert_eq!(a.body["csrf_token"], csrf.as_str());

        // Log-in: a wrong password and an unknown address answer the same.
        let wrong = derive("ada@example.org", "wrong", ada.setup, &Keypair::generate());
        let a = login(&app, "ada@example.org", &wrong.auth_key).await;
        let b = login(&app, "eve@example.org", &wrong.auth_key).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "wrong_credentials"));
        assert_eq!((b.status, &b.body), (a.status, &a.body));
        let a = login(&app, "ada@example.org", &ada.auth_key).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["wrapped_identity"], ada.wrapped_identity);
        let second = cookie_pair(&a.cookie.unwrap());
        let second_csrf = a.body["csrf_token"].as_str().unwrap().to_owned();

        // Tried: a state-changing request without the CSRF token, and with another session's.
        // Must hold: 403 csrf_required, nothing changed.
        let a = call(
            &app,
            "POST",
            "/auth/tokens",
            Some(json!({"name": "cli"})),
            &[("cookie", &session)],
        )
        .await;
        assert_eq!((a.status, code(&a)), (StatusCode::FORBIDDEN, "csrf_required"));
        let a = call(
            &app,
            "POST",
            "/auth/tokens",
            Some(json!({"name": "cli"})),
            &[("cookie", &session), ("x-csrf-token", &second_csrf)],
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = call(
            &app,
            "POST",
            "/auth/tokens",
            Some(json!({"name": "cli"})),
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let token = format!("Bearer {}", a.body["token"].as_str().unwrap());
        // An API token works without CSRF; a forged one does not.
        let a = call(&app, "GET", "/account", None, &[("authorization", &token)]).await;
        assert_eq!((a.status, a.body["csrf_token"].clone()), (StatusCode::OK, Value::Null));
        let a = call(&app, "GET", "/account", None, &[("authorization", "Bearer dkt_forged")]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "bad_token"));
        let a = call(&app, "GET", "/account", None, &[("cookie", "disktro_session=forged")]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        let a = call(&app, "GET", "/account", None, &[]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "not_logged_in"));

        // API tokens have a lifetime (90 days by default, 1 to 365 asked), are listed without
        // their secrets, and are revoked by id; another account cannot see or revoke them.
        assert!(token_lifetime(&app, &session, &csrf, None).await.abs_diff(90 * 86_400) < 120);
        assert!(
            token_lifetime(&app, &session, &csrf, Some(30))
                .await
                .abs_diff(30 * 86_400)
                < 120
        );
        let short = new_token(&app, &session, &csrf, json!({"name": "ci", "expires_in_days": 1})).await;
        assert_eq!(short.status, StatusCode::CREATED);
        for days in [0, 366] {
            let a = new_token(&app, &session, &csrf, json!({"name": "x", "expires_in_days": days})).await;
            assert_eq!(
                (a.status, code(&a)),
                (StatusCode::BAD_REQUEST, "invalid_field"),
                "{days}"
            );
        }
        let listed = call(&app, "GET", "/auth/tokens", None, &[("authorization", &token)]).await;
        assert_eq!(listed.status, StatusCode::OK);
        let listed = listed.body.as_array().unwrap().clone();
        assert!(
            !listed.iter().any(|t| t.to_string().contains("dkt_")),
            "no secret listed"
        );
        let current: Vec<&Value> = listed.iter().filter(|t| t["current"] == true).collect();
        assert_eq!(current.len(), 1, "the token asking is marked");
        let short_id = short.body["id"].as_str().unwrap().to_owned();
        assert!(listed.iter().any(|t| t["id"] == short_id.as_str()));
        // Tried: an expired token. Must hold: 401 bad_token, and it is no longer listed.
        let pool = {
            sqlx::any::install_default_drivers();
            sqlx::AnyPool::connect(&db.url).await.unwrap()
        };
        sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE substr(id_hash, 1, 16) = $1")
            .bind(&short_id)
            .execute(&pool)
            .await
            .unwrap();
        let short_bearer = format!("Bearer {}", short.body["token"].as_str().unwrap());
        let a = call(&app, "GET", "/account", None, &[("authorization", &short_bearer)]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "bad_token"));
        let listed = call(&app, "GET", "/auth/tokens", None, &[("authorization", &token)]).await;
        assert!(!listed.body.to_string().contains(&short_id));
        // Tried: revoking another account's token, and a malformed id. Must hold: 404, and the
        // token still works.
        let eve = client("eve@example.org", "eve's own password");
        let signed = call(&app, "POST", "/auth/signup", Some(eve.signup_body()), &[]).await;
        let eve_cookie = cookie_pair(signed.cookie.as_ref().unwrap());
        let eve_csrf = signed.body["csrf_token"].as_str().unwrap().to_owned();
        let mine = current[0]["id"].as_str().unwrap().to_owned();
        for id in [mine.as_str(), "zz", "%"] {
            let a = call(
                &app,
                "DELETE",
                &format!("/auth/tokens/{id}"),
                None,
                &[("cookie", &eve_cookie), ("x-csrf-token", &eve_csrf)],
            )
            .await;
            assert_eq!((a.status, code(&a)), (StatusCode::NOT_FOUND, "token_not_found"), "{id}");
        }
        let a = call(&app, "GET", "/account", None, &[("authorization", &token)]).await;
        assert_eq!(a.status, StatusCode::OK);
        // The owner revokes it: it stops working at once.
        let a = call(
            &app,
            "DELETE",
            &format!("/auth/tokens/{mine}"),
            None,
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        let a = call(&app, "GET", "/account", None, &[("authorization", &token)]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "bad_token"));
        let a = new_token(&app, &session, &csrf, json!({"name": "cli"})).await;
        let token = format!("Bearer {}", a.body["token"].as_str().unwrap());

        // Password change: the client re-derives and re-wraps; the server swaps atomically and
        // ends every other session and token.
        let identity = Keypair::generate();
        let renewed = derive(
            "ada@example.org",
            "a new password",
            KdfSetup {
                params: KdfParams::MINIMUM,
                salt: disktro_core::random_bytes(),
                form: disktro_core::keys::PasswordForm::Nfkc,
            },
            &identity,
        );
        let change = json!({
            "auth_key": wrong.auth_key,
            "new_kdf_setup": B64.encode(renewed.setup.encode()),
            "new_auth_key": renewed.auth_key,
            "new_wrapped_identity": renewed.wrapped_identity,
        });
        let a = call(
            &app,
            "POST",
            "/auth/password",
            Some(change.clone()),
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::UNAUTHORIZED, "wrong_credentials"),
            "a wrong current password changes nothing"
        );
        let mut change = change;
        change["auth_key"] = json!(ada.auth_key);
        let a = call(
            &app,
            "POST",
            "/auth/password",
            Some(change),
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
        let a = call(&app, "GET", "/account", None, &[("cookie", &second)]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "other sessions ended");
        let a = call(&app, "GET", "/account", None, &[("authorization", &token)]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "API tokens ended");
        let a = login(&app, "ada@example.org", &ada.auth_key).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "the old password no longer works");
        let a = login(&app, "ada@example.org", &renewed.auth_key).await;
        assert_eq!(a.status, StatusCode::OK);

        // Log-out needs CSRF, then ends the session.
        let a = call(&app, "POST", "/auth/logout", None, &[("cookie", &session)]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = call(
            &app,
            "POST",
            "/auth/logout",
            None,
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert!(a.cookie.unwrap().contains("Max-Age=0"));
        let a = call(&app, "GET", "/account", None, &[("cookie", &session)]).await;
        assert_eq!((a.status, code(&a)), (StatusCode::UNAUTHORIZED, "session_expired"));
    }
}

/// Run in `log_in_brute_force_is_slowed_then_refused`, after its timings: 60 Argon2 checks at
/// once would slow any test beside them.
async fn concurrent_guesses_are_all_counted(app: &axum::Router, db: &support::TestDb) {
    let dan = client("dan@example.org", "a long and good password");
    assert_eq!(
        call(app, "POST", "/auth/signup", Some(dan.signup_body()), &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let guess = derive("dan@example.org", "guess", dan.setup, &Keypair::generate());
    // Tried: 60 wrong guesses at once. Must hold: at most the limit (10) are checked (401),
    // every other is refused unchecked (429), and then even the right password is refused.
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (app, key) = (app.clone(), guess.auth_key.clone());
        guesses.spawn(async move { login(&app, "dan@example.org", &key).await.status });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(status) = guesses.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(checked <= 10, "{checked} guesses checked ({})", db.backend);
    assert_eq!(checked + refused, 60);
    let a = login(app, "dan@example.org", &dan.auth_key).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", db.backend);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_in_brute_force_is_slowed_then_refused() {
    for db in databases().await {
        let app = app_for(&db).await;
        let bob = client("bob@example.org", "hunter2 but longer");
        let signed_up = call(&app, "POST", "/auth/signup", Some(bob.signup_body()), &[]).await;
        assert_eq!(signed_up.status, StatusCode::CREATED);
        // Bob's browser: the device secret came with the sign-up.
        let bobs_device = signed_up.device.expect("a device secret at sign-up");
        let guess = derive("bob@example.org", "guess", bob.setup, &Keypair::generate());
        let attempt = |key: String| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let a = login(&app, "bob@example.org", &key).await;
                (a, started.elapsed())
            }
        };
        // Tried: 4 wrong guesses. Must hold: answered at once.
        for _ in 0..4 {
            let (a, took) = attempt(guess.auth_key.clone()).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            assert!(
                took < Duration::from_millis(150) + Duration::from_millis(400),
                "{took:?}"
            );
        }
        // From the 5th failure on, each attempt waits longer before it is checked.
        let mut delays = vec![];
        for _ in 0..6 {
            let (a, took) = attempt(guess.auth_key.clone()).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            delays.push(took);
        }
        assert!(delays[5] >= Duration::from_millis(1000), "{delays:?}");
        assert!(delays[5] > delays[0], "{delays:?}");
        // Tried: the right password after 10 failures. Must hold: 429 too_many_attempts.
        let (a, _) = attempt(bob.auth_key.clone()).await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            "{}",
            db.backend
        );
        // Another account is not affected.
        let carol = client("carol@example.org", "pw pw pw");
        let carols = call(&app, "POST", "/auth/signup", Some(carol.signup_body()), &[]).await;
        assert_eq!(carols.status, StatusCode::CREATED);
        let a = login(&app, "carol@example.org", &carol.auth_key).await;
        assert_eq!(a.status, StatusCode::OK);

        // Tried: Bob logs in from his known device, as a cookie (browser) and as the header
        // (CLI), after the attacker's 10 failures. Must hold: he gets in; the same password
        // from a new device, or with a device known only to another account (Carol's), is
        // still refused, and so is a made-up device secret.
        let log_in_with = |header: (&'static str, String), key: String| {
            let app = app.clone();
            async move {
                call(
                    &app,
                    "POST",
                    "/auth/login",
                    Some(json!({"email": "bob@example.org", "auth_key": key})),
                    &[(header.0, &header.1)],
                )
                .await
            }
        };
        let as_cookie = log_in_with(
            ("cookie", format!("disktro_device={bobs_device}")),
            bob.auth_key.clone(),
        )
        .await;
        assert_eq!(as_cookie.status, StatusCode::OK, "{}: {}", db.backend, as_cookie.body);
        assert_eq!(as_cookie.device, None, "a known device gets no new secret");
        let as_header = log_in_with(("x-disktro-device", bobs_device.clone()), bob.auth_key.clone()).await;
        assert_eq!(as_header.status, StatusCode::OK, "{}", db.backend);
        let carols_device = carols.device.unwrap();
        for stranger in [carols_device, "ab".repeat(32)] {
            let a = log_in_with(("x-disktro-device", stranger), bob.auth_key.clone()).await;
            assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", db.backend);
        }
        // Tried: wrong guesses from Bob's own device. Must hold: it has its own limit.
        for _ in 0..10 {
            let a = log_in_with(("x-disktro-device", bobs_device.clone()), guess.auth_key.clone()).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        }
        let a = log_in_with(("x-disktro-device", bobs_device.clone()), bob.auth_key.clone()).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", db.backend);
        concurrent_guesses_are_all_counted(&app, &db).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_keys_are_proven_with_one_answer_and_replaced_only_with_the_password() {
    use disktro_core::recovery::RecoveryKey;
    for db in databases().await {
        let app = app_for(&db).await;
        let eve = client("eve@example.org", "eve's long password");
        let key = RecoveryKey::generate();
        let mut body = eve.signup_body();
        body["recovery"] = json!({
            "auth_key": B64.encode(key.auth_key().as_bytes()),
            "wrapped_identity": B64.encode([9u8; 65]),
        });
        let signed = call(&app, "POST", "/auth/signup", Some(body), &[]).await;
        assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.body);
        let session = cookie_pair(signed.cookie.as_deref().unwrap());
        let csrf = signed.body["csrf_token"].as_str().unwrap().to_owned();
        let ned = client("ned@example.org", "ned's long password");
        assert_eq!(
            call(&app, "POST", "/auth/signup", Some(ned.signup_body()), &[])
                .await
                .status,
            StatusCode::CREATED
        );
        let start = |email: &'static str, key: &RecoveryKey| {
            let (app, auth) = (app.clone(), B64.encode(key.auth_key().as_bytes()));
            async move {
                call(
                    &app,
                    "POST",
                    "/auth/recover/start",
                    Some(json!({"email": email, "recovery_auth_key": auth})),
                    &[],
                )
                .await
            }
        };
        // The right key: the identity wrapped under it comes back.
        let a = start("eve@example.org", &key).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["wrapped_identity"], B64.encode([9u8; 65]));
        // Tried: a wrong key, an unknown address, an account without a key. Must hold: one
        // answer for all three, so none tells whether an account or a key exists.
        let stranger = RecoveryKey::generate();
        let refusals = [
            start("eve@example.org", &stranger).await,
            start("nobody@example.org", &key).await,
            start("ned@example.org", &key).await,
        ];
        for r in &refusals {
            assert_eq!((r.status, code(r)), (StatusCode::UNAUTHORIZED, "wrong_credentials"));
            assert_eq!(r.body, refusals[0].body);
        }

        // Tried: replacing the key with a wrong password, then without the CSRF token. Must
        // hold: refused; with the password, the new key works and the old one no longer does.
        let new_key = RecoveryKey::generate();
        let replace = |auth_key: String, headers: Vec<(&'static str, String)>| {
            let app = app.clone();
            let body = json!({
                "auth_key": auth_key,
                "recovery": {
                    "auth_key": B64.encode(new_key.auth_key().as_bytes()),
                    "wrapped_identity": B64.encode([8u8; 65]),
                },
            });
            async move {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                call(&app, "POST", "/auth/recovery", Some(body), &headers).await
            }
        };
        let with_session = vec![("cookie", session.clone()), ("x-csrf-token", csrf.clone())];
        let wrong = derive("eve@example.org", "not it", eve.setup, &Keypair::generate()).auth_key;
        assert_eq!(
            replace(wrong, with_session.clone()).await.status,
            StatusCode::UNAUTHORIZED
        );
        let no_csrf = vec![("cookie", session.clone())];
        assert_eq!(
            replace(eve.auth_key.clone(), no_csrf).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            replace(eve.auth_key.clone(), with_session).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(start("eve@example.org", &key).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(start("eve@example.org", &new_key).await.status, StatusCode::OK);

        // Tried: guessing keys. Must hold: after 10 wrong ones even the right key waits (429).
        for _ in 0..10 {
            start("eve@example.org", &RecoveryKey::generate()).await;
        }
        let a = start("eve@example.org", &new_key).await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
        );
    }
}
