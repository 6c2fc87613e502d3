//! Sign-up, log-in and the account page (change password, log out). The password becomes keys in
//! the pipeline worker (Argon2id off the main thread, with a visible timer); the server only ever
//! receives the auth key derived from it. Recovery keys (shown after sign-up, made anew on the
//! account page, used on `/recover`) have their views in `recovery.rs` and their flows here.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::recovery::RecoveryKeyPanel;
use crate::AccountSignal;

/// What a form is doing.
// Built only by the browser build's handlers.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
pub enum Busy {
    Idle,
    /// Argon2id is running; started at this `performance.now()`.
    Deriving(f64),
    Sending,
    Failed(String),
    Done(String),
}

/// The status line under a form: a progress bar and timer while keys are derived, errors in an
/// alert region.
#[component]
pub fn BusyLine(busy: RwSignal<Busy>) -> impl IntoView {
    let elapsed = RwSignal::new(0.0f64);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                if let Busy::Deriving(start) = busy.get_untracked() {
                    elapsed.set((crate::browser::js::now_ms() - start) / 1000.0);
                }
            },
            std::time::Duration::from_millis(100),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    view! {
        {move || match busy.get() {
            Busy::Idle => ().into_any(),
            Busy::Deriving(_) => view! {
                <div class="busy" role="status" data-testid="deriving">
                    <progress aria-label="Deriving keys"></progress>
                    <span>{move || format!("Deriving your keys from the password (Argon2id, in a background thread)… {:.1} s", elapsed.get())}</span>
                </div>
            }.into_any(),
            Busy::Sending => view! { <div class="busy" role="status"><progress></progress><span>"Talking to the server…"</span></div> }.into_any(),
            Busy::Failed(m) => view! { <p class="error" role="alert" data-testid="form-error">{m}</p> }.into_any(),
            Busy::Done(m) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
        }}
    }
}

#[cfg(feature = "hydrate")]
pub(super) mod flows {
    //! The browser side of the forms.
    use disktro_core::api::{
        ChangePassword, ErrorCode, KdfAnswer, LogIn, PreLogin, Recover, RecoverAnswer, RecoverStart, RecoverySetup,
        Session, SetRecovery, SignUp,
    };
    use disktro_core::keys::{HeldKeys, KdfSetup, Keypair};
    use disktro_core::recovery::RecoveryKey;

    use crate::browser::Failure;
    use crate::browser::api::{Api, ApiFailure};
    use crate::browser::keyring::Keyring;
    use crate::browser::pipeline::Pipeline;
    use disktro_core::api::Base64;

    /// The server's refusal in plain words (its code kept).
    fn explain(e: ApiFailure) -> Failure {
        let message = match e.code {
            Some(ErrorCode::WrongCredentials) if e.message.contains("recovery key") => {
                "Wrong e-mail or recovery key.".to_owned()
            }
            Some(ErrorCode::WrongCredentials) => "Wrong e-mail or password.".to_owned(),
            Some(ErrorCode::EmailTaken) => "This e-mail already has an account: log in instead.".to_owned(),
            Some(ErrorCode::TooManyAttempts) => format!("Too many attempts: {}", e.message),
            _ => return Failure::Api(e),
        };
        Failure::Api(e).with_message(message)
    }

    async fn setup_of(email: &str) -> Result<KdfSetup, Failure> {
        let kdf: KdfAnswer = Api::default()
            .post(
                "/auth/prelogin",
                &PreLogin {
                    email: email.to_owned(),
                },
            )
            .await
            .map_err(explain)?;
        KdfSetup::decode(&kdf.kdf_setup)
            .map_err(|e| Failure::Invalid(format!("the server's key set-up is not acceptable: {e}")))
    }

    fn keyring(session: Session, keypair: Keypair, master_key: disktro_core::keys::MasterKey) -> Keyring {
        Keyring {
            account_id: session.account_id,
            email: session.email,
            csrf: session.csrf_token,
            keys: HeldKeys {
                identity: keypair,
                master_key,
            },
        }
    }

    /// What the server keeps of a new recovery key for `identity`.
    fn recovery_setup(key: &RecoveryKey, identity: &Keypair) -> Result<RecoverySetup, Failure> {
        Ok(RecoverySetup {
            auth_key: Base64::from(*key.auth_key().as_bytes()),
            wrapped_identity: Base64::new(key.master_key().wrap_identity(identity.public().as_bytes(), identity)?),
        })
    }

    /// Create an account with a recovery key; `deriving` is called when Argon2id starts. Returns
    /// the keys and the recovery key's text, to show once.
    pub async fn signup(email: &str, password: &str, deriving: impl Fn()) -> Result<(Keyring, String), Failure> {
        let pipeline = Pipeline::get().await?;
        let setup = KdfSetup::generate();
        deriving();
        let keys = pipeline.derive(password, &setup).await?;
        let keypair = Keypair::generate();
        let public = keypair.public();
        let wrapped = keys.master_key.wrap_identity(public.as_bytes(), &keypair)?;
        let recovery = RecoveryKey::generate();
        let session: Session = Api::default()
            .post(
                "/auth/signup",
                &SignUp {
                    email: email.to_owned(),
                    kdf_setup: Base64::new(setup.encode()),
                    auth_key: Base64::from(*keys.auth_key.as_bytes()),
                    wrapped_identity: Base64::new(wrapped),
                    public_key: public,
                    recovery: Some(recovery_setup(&recovery, &keypair)?),
                },
            )
            .await
            .map_err(explain)?;
        Ok((keyring(session, keypair, keys.master_key), recovery.to_text()))
    }

    /// Set a new password with the recovery key: the identity key comes back from its recovery
    /// wrapping and is wrapped under the new password.
    pub async fn recover(email: &str, key_text: &str, password: &str, deriving: impl Fn()) -> Result<Keyring, Failure> {
        let key = RecoveryKey::from_text(key_text).map_err(|e| match e {
            disktro_core::Error::BadRecoveryKey(why) => Failure::invalid(format!("Check the recovery key: {why}.")),
            other => Failure::from(other),
        })?;
        let recovery_auth_key = Base64::from(*key.auth_key().as_bytes());
        let answer: RecoverAnswer = Api::default()
            .post(
                "/auth/recover/start",
                &RecoverStart {
                    email: email.to_owned(),
                    recovery_auth_key: recovery_auth_key.clone(),
                },
            )
            .await
            .map_err(explain)?;
        let public = answer.public_key;
        let keypair = key
            .master_key()
            .unwrap_identity(public.as_bytes(), &answer.wrapped_identity)
            .map_err(|_| Failure::invalid("Your identity key does not open with this recovery key."))?;
        if keypair.public() != public {
            return Err(Failure::invalid(
                "the identity key does not match the account's public key",
            ));
        }
        let pipeline = Pipeline::get().await?;
        let setup = KdfSetup::generate();
        deriving();
        let keys = pipeline.derive(password, &setup).await?;
        let wrapped = keys.master_key.wrap_identity(public.as_bytes(), &keypair)?;
        let session: Session = Api::default()
            .post(
                "/auth/recover",
                &Recover {
                    email: email.to_owned(),
                    recovery_auth_key,
                    new_kdf_setup: Base64::new(setup.encode()),
                    new_auth_key: Base64::from(*keys.auth_key.as_bytes()),
                    new_wrapped_identity: Base64::new(wrapped),
                },
            )
            .await
            .map_err(explain)?;
        Ok(keyring(session, keypair, keys.master_key))
    }

    /// Make a new recovery key for the logged-in account, proven by its password; the old key
    /// stops working. Returns the new key's text.
    pub async fn new_recovery_key(me: &Keyring, password: &str, deriving: impl Fn()) -> Result<String, Failure> {
        let pipeline = Pipeline::get().await?;
        let setup = setup_of(&me.email).await?;
        deriving();
        let keys = pipeline.derive(password, &setup).await?;
        let recovery = RecoveryKey::generate();
        Api::new(Some(me.csrf.clone()))
            .post::<_, serde_json::Value>(
                "/auth/recovery",
                &SetRecovery {
                    auth_key: Base64::from(*keys.auth_key.as_bytes()),
                    recovery: recovery_setup(&recovery, &me.keys.identity)?,
                },
            )
            .await
            .map_err(|e| {
                if e.status == 401 {
                    Failure::Api(e).with_message("The password is not right.".to_owned())
                } else {
                    explain(e)
                }
            })?;
        Ok(recovery.to_text())
    }

    /// Log in and unwrap the identity key.
    pub async fn login(email: &str, password: &str, deriving: impl Fn()) -> Result<Keyring, Failure> {
        let pipeline = Pipeline::get().await?;
        let setup = setup_of(email).await?;
        deriving();
        let keys = pipeline.derive(password, &setup).await?;
        let session: Session = Api::default()
            .post(
                "/auth/login",
                &LogIn {
                    email: email.to_owned(),
                    auth_key: Base64::from(*keys.auth_key.as_bytes()),
                },
            )
            .await
            .map_err(explain)?;
        let public = session.public_key;
        let keypair = keys
            .master_key
            .unwrap_identity(public.as_bytes(), &session.wrapped_identity)
            .map_err(|_| Failure::invalid("Your identity key does not open with this password."))?;
        if keypair.public() != public {
            return Err(Failure::invalid(
                "the identity key does not match the account's public key",
            ));
        }
        Ok(keyring(session, keypair, keys.master_key))
    }

    /// Change the password: prove the old one, re-wrap the identity key under the new one.
    pub async fn change_password(me: &mut Keyring, old: &str, new: &str, deriving: impl Fn()) -> Result<(), Failure> {
        let pipeline = Pipeline::get().await?;
        let setup = setup_of(&me.email).await?;
        deriving();
        let old_keys = pipeline.derive(old, &setup).await?;
        let new_setup = KdfSetup::generate();
        let new_keys = pipeline.derive(new, &new_setup).await?;
        let wrapped = new_keys
            .master_key
            .wrap_identity(me.public_key().as_bytes(), &me.keys.identity)?;
        Api::new(Some(me.csrf.clone()))
            .post::<_, serde_json::Value>(
                "/auth/password",
                &ChangePassword {
                    auth_key: Base64::from(*old_keys.auth_key.as_bytes()),
                    new_kdf_setup: Base64::new(new_setup.encode()),
                    new_auth_key: Base64::from(*new_keys.auth_key.as_bytes()),
                    new_wrapped_identity: Base64::new(wrapped),
                },
            )
            .await
            .map_err(|e| {
                if e.status == 401 || e.status == 409 {
                    Failure::Api(e).with_message("The current password is not right.".to_owned())
                } else {
                    explain(e)
                }
            })?;
        me.keys.master_key = new_keys.master_key;
        me.store();
        Ok(())
    }

    /// Keep the keys for this tab and show the account as logged in.
    pub fn signed_in(account: crate::AccountSignal, keys: &Keyring) {
        use leptos::prelude::Set as _;
        keys.store();
        account.set(Some(crate::Account {
            email: keys.email.clone(),
            fingerprint: keys.public_key().fingerprint(),
        }));
    }

    pub async fn logout(me: &Keyring) {
        let _ = Api::new(Some(me.csrf.clone())).send("POST", "/auth/logout").await;
        Keyring::forget();
    }
}

/// What an input holds now, read from the page.
#[cfg(feature = "hydrate")]
pub(super) fn input_value(input: NodeRef<leptos::html::Input>) -> String {
    input.get_untracked().map(|el| el.value()).unwrap_or_default()
}

/// The server renders the form and never sends it.
#[cfg(not(feature = "hydrate"))]
pub(super) fn input_value(_: NodeRef<leptos::html::Input>) -> String {
    String::new()
}

/// Sign-up and log-in share one form.
#[component]
fn AuthForm(signup: bool) -> impl IntoView {
    let account = expect_context::<AccountSignal>();
    // The inputs are read when the form is sent, not mirrored into signals as they change: what
    // was typed (or filled in by a password manager) before the app hydrated is kept.
    let email = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let confirm = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(Busy::Idle);
    // After sign-up: the recovery key, shown once before going on to the files.
    let recovery = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let hydrated = super::hydrated();
    let to_files = {
        let navigate = navigate.clone();
        Callback::new(move |()| navigate("/files", Default::default()))
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (e, p) = (input_value(email).trim().to_owned(), input_value(password));
        if !e.contains('@') {
            busy.set(Busy::Failed("Enter your e-mail address.".to_owned()));
            return;
        }
        if signup && p.chars().count() < 10 {
            busy.set(Busy::Failed(
                "Use at least 10 characters: the password is the key to your files.".to_owned(),
            ));
            return;
        }
        if signup && p != input_value(confirm) {
            busy.set(Busy::Failed("The two passwords differ.".to_owned()));
            return;
        }
        busy.set(Busy::Sending);
        let _navigate = navigate.clone();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let deriving = move || busy.set(Busy::Deriving(crate::browser::js::now_ms()));
            let result = if signup {
                flows::signup(&e, &p, deriving)
                    .await
                    .map(|(keys, key)| (keys, Some(key)))
            } else {
                flows::login(&e, &p, deriving).await.map(|keys| (keys, None))
            };
            match result {
                Ok((keys, recovery_key)) => {
                    flows::signed_in(account, &keys);
                    busy.set(Busy::Idle);
                    match recovery_key {
                        Some(key) => recovery.set(Some(key)),
                        None => _navigate("/files", Default::default()),
                    }
                }
                Err(m) => busy.set(Busy::Failed(m.to_string())),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (e, p, account);
    };

    view! {
        {move || recovery.get().map(|key| view! { <RecoveryKeyPanel key on_done=to_files /> })}
        <section class="panel narrow" class:hidden=move || recovery.with(Option::is_some)>
            <h1>{if signup { "Create your account" } else { "Log in" }}</h1>
            <p class="muted">{if signup {
                "Your password never leaves this tab: it becomes the keys that lock your files. Nobody can reset it, so keep it safe."
            } else {
                "Your password unlocks your keys in this tab; the server never sees it."
            }}</p>
            <form on:submit=submit class="form">
                <label>"E-mail"
                    <input type="email" name="email" autocomplete="username" required node_ref=email />
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete=if signup { "new-password" } else { "current-password" } required
                        node_ref=password />
                </label>
                {signup.then(|| view! {
                    <label>"Password again"
                        <input type="password" name="confirm" autocomplete="new-password" required
                            node_ref=confirm />
                    </label>
                })}
                <button type="submit" class="button" data-testid="auth-submit"
                    disabled=move || !hydrated.get() || matches!(busy.get(), Busy::Deriving(_) | Busy::Sending)>
                    {if signup { "Create account" } else { "Log in" }}
                </button>
            </form>
            <BusyLine busy />
            <p class="muted">{if signup {
                view! { "Already have an account? " <a href="/login">"Log in"</a> }.into_any()
            } else {
                view! {
                    "New here? " <a href="/signup">"Create an account"</a>
                    " · Forgot your password? " <a href="/recover">"Use your recovery key"</a>
                }.into_any()
            }}</p>
        </section>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    view! { <AuthForm signup=true /> }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    view! { <AuthForm signup=false /> }
}

/// The account: who, the identity fingerprint, change password, log out.
#[component]
pub fn AccountPage() -> impl IntoView {
    let account = expect_context::<AccountSignal>();
    // Read when sent, as in the sign-up form; the button waits for hydration.
    let old = NodeRef::<leptos::html::Input>::new();
    let new = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(Busy::Idle);
    let navigate = use_navigate();
    let hydrated = super::hydrated();

    let change = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (o, n) = (input_value(old), input_value(new));
        if n.chars().count() < 10 {
            busy.set(Busy::Failed("Use at least 10 characters.".to_owned()));
            return;
        }
        busy.set(Busy::Sending);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let Some(mut me) = crate::browser::keyring::Keyring::load() else {
                busy.set(Busy::Failed("Log in first.".to_owned()));
                return;
            };
            let deriving = move || busy.set(Busy::Deriving(crate::browser::js::now_ms()));
            match flows::change_password(&mut me, &o, &n, deriving).await {
                Ok(()) => {
                    for input in [old, new].into_iter().filter_map(|i| i.get_untracked()) {
                        input.set_value("");
                    }
                    busy.set(Busy::Done(
                        "Password changed. Other sessions and tokens were logged out.".to_owned(),
                    ));
                }
                Err(m) => busy.set(Busy::Failed(m.to_string())),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (o, n);
    };
    // A new recovery key: proven by the password, shown once.
    let recovery_password = NodeRef::<leptos::html::Input>::new();
    let recovery_busy = RwSignal::new(Busy::Idle);
    let new_key = RwSignal::new(None::<String>);
    let make_key = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let p = input_value(recovery_password);
        recovery_busy.set(Busy::Sending);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let Some(me) = crate::browser::keyring::Keyring::load() else {
                recovery_busy.set(Busy::Failed("Log in first.".to_owned()));
                return;
            };
            let deriving = move || recovery_busy.set(Busy::Deriving(crate::browser::js::now_ms()));
            match flows::new_recovery_key(&me, &p, deriving).await {
                Ok(key) => {
                    if let Some(input) = recovery_password.get_untracked() {
                        input.set_value("");
                    }
                    recovery_busy.set(Busy::Idle);
                    new_key.set(Some(key));
                }
                Err(m) => recovery_busy.set(Busy::Failed(m.to_string())),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = p;
    };
    let key_saved = Callback::new(move |()| {
        new_key.set(None);
        recovery_busy.set(Busy::Done(
            "New recovery key made; the old one no longer works.".to_owned(),
        ));
    });
    let logout = move |_| {
        let _navigate = navigate.clone();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if let Some(me) = crate::browser::keyring::Keyring::load() {
                flows::logout(&me).await;
            }
            account.set(None);
            _navigate("/", Default::default());
        });
    };

    view! {
        <section class="panel narrow">
            <h1>"Your account"</h1>
            {move || match account.get() {
                None => view! { <p>"You are not logged in. " <a href="/login">"Log in"</a></p> }.into_any(),
                Some(a) => view! {
                    <dl class="facts">
                        <dt>"E-mail"</dt><dd>{a.email.clone()}</dd>
                        <dt>"Identity"</dt><dd><code>{a.fingerprint.clone()}</code></dd>
                    </dl>
                    <button type="button" class="button secondary" on:click=logout.clone() data-testid="logout">"Log out"</button>
                }.into_any(),
            }}
        </section>
        <section class="panel narrow">
            <h2>"Change password"</h2>
            <form on:submit=change class="form">
                <label>"Current password"
                    <input type="password" autocomplete="current-password" required node_ref=old />
                </label>
                <label>"New password"
                    <input type="password" autocomplete="new-password" required node_ref=new />
                </label>
                <button type="submit" class="button"
                    disabled=move || !hydrated.get() || matches!(busy.get(), Busy::Deriving(_) | Busy::Sending)>
                    "Change password"
                </button>
            </form>
            <BusyLine busy />
        </section>
        {move || new_key.get().map(|key| view! { <RecoveryKeyPanel key on_done=key_saved /> })}
        <section class="panel narrow" class:hidden=move || new_key.with(Option::is_some)>
            <h2>"Recovery key"</h2>
            <p class="muted">"Lost the one from sign-up? Make a new one; the old one stops working."</p>
            <form on:submit=make_key class="form">
                <label>"Password"
                    <input type="password" autocomplete="current-password" required node_ref=recovery_password />
                </label>
                <button type="submit" class="button secondary" data-testid="new-recovery-key"
                    disabled=move || !hydrated.get() || matches!(recovery_busy.get(), Busy::Deriving(_) | Busy::Sending)>
                    "Make a new recovery key"
                </button>
            </form>
            <BusyLine busy=recovery_busy />
        </section>
        <Show when=move || account.with(Option::is_some)>
            <super::tokens::ApiTokens />
        </Show>
    }
}
