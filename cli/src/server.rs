//! The server's JSON API from the client side: one typed method per route, errors turned into
//! [`ClientError`] with the server's stable code kept.

use disktro_core::api::ErrorCode;
use disktro_core::api::{
    BeginUpload, Commit, ErrorBody, FileDownload, FileList, FileSummary, FolderList, FolderSummary, KdfAnswer, LogIn,
    MoveTo, NewFolder, NewShare, NewToken, PreLogin, PutGrant, Recover, RecoverAnswer, RecoverStart, Removed, Rename,
    Replan, Resize, Session, SetRecovery, ShareAccess, ShareInfo, ShareView, SignUp, TokenAnswer, UploadPlan,
};
use disktro_core::keys::PublicKey;
use disktro_core::{FileId, FolderId};
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ClientError;

/// How a request is authenticated.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Token(String),
    /// A browser-style session (cookie and CSRF token), used only to mint an API token.
    Session {
        cookie: String,
        csrf: String,
    },
}

/// Files asked for per page of a list (the server's most).
pub const FILES_PER_PAGE: u32 = 1000;

/// A connection to one Disktro server.
#[derive(Debug, Clone)]
pub struct Server {
    http: reqwest::Client,
    base: String,
    credential: Credential,
}

/// The session a log-in or sign-up opened: the answer, and the cookie the server set.
#[derive(Debug)]
pub struct Opened {
    pub session: Session,
    cookie: String,
}

impl Server {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:3000`).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        disktro_net::tls::install_default_provider();
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Usage(format!(
                "the server URL must start with http:// or https://: {url}"
            )));
        }
        let mut http = reqwest::Client::builder();
        for root in disktro_net::tls::extra_roots() {
            http = http.add_root_certificate(
                reqwest::Certificate::from_der(root)
                    .map_err(|e| ClientError::Usage(format!("a CA certificate given does not load: {e}")))?,
            );
        }
        let http = http
            .user_agent(concat!("disktro/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| ClientError::Network(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            http,
            base,
            credential: Credential::None,
        })
    }

    /// The same server, authenticated with an API token.
    pub fn with_token(mut self, token: &str) -> Self {
        self.credential = Credential::Token(token.to_owned());
        self
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.request(method, format!("{}/api/v1{path}", self.base));
        match &self.credential {
            Credential::None => {}
            Credential::Token(t) => req = req.header(AUTHORIZATION, format!("Bearer {t}")),
            Credential::Session { cookie, csrf } => req = req.header(COOKIE, cookie).header("x-csrf-token", csrf),
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            ClientError::Network(format!("cannot reach the server at {}: {}", self.base, root_cause(&e)))
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => ClientError::Api {
                status: status.as_u16(),
                code: e.error.code,
                message: e.error.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: ErrorCode::Unknown,
                message: format!("the server answered {status} without an API error"),
            },
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, body).await?;
        resp.json()
            .await
            .map_err(|e| ClientError::Network(format!("the server's answer could not be read: {}", root_cause(&e))))
    }

    async fn call_no_answer<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        let resp = self.send(method, path, body).await?;
        debug_assert!(resp.status() == StatusCode::NO_CONTENT || resp.status().is_success());
        Ok(())
    }

    /// Every node with its health (`GET /nodes`).
    pub async fn nodes(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        self.call::<(), _>(Method::GET, "/nodes", None).await
    }

    /// The rewards ledger's hash chain, recomputed by the server (`GET /ledger/verify`).
    pub async fn ledger_check(&self) -> Result<disktro_core::api::LedgerCheck, ClientError> {
        self.call::<(), _>(Method::GET, "/ledger/verify", None).await
    }

    pub async fn prelogin(&self, email: &str) -> Result<KdfAnswer, ClientError> {
        let body = PreLogin {
            email: email.to_owned(),
        };
        self.call(Method::POST, "/auth/prelogin", Some(&body)).await
    }

    async fn open_session<B: Serialize>(&self, path: &str, body: &B) -> Result<Opened, ClientError> {
        let resp = self.send(Method::POST, path, Some(body)).await?;
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next().filter(|kv| kv.contains("disktro_session=")))
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Integrity("the server opened no session".to_owned()))?;
        let session = resp
            .json()
            .await
            .map_err(|e| ClientError::Network(format!("the server's answer could not be read: {}", root_cause(&e))))?;
        Ok(Opened { session, cookie })
    }

    pub async fn signup(&self, body: &SignUp) -> Result<Opened, ClientError> {
        self.open_session("/auth/signup", body).await
    }

    pub async fn login(&self, body: &LogIn) -> Result<Opened, ClientError> {
        self.open_session("/auth/login", body).await
    }

    /// Prove a recovery key; the answer holds the identity key it wraps.
    pub async fn recover_start(&self, body: &RecoverStart) -> Result<RecoverAnswer, ClientError> {
        self.call(Method::POST, "/auth/recover/start", Some(body)).await
    }

    /// Set a new password with a recovery key; opens a session.
    pub async fn recover(&self, body: &Recover) -> Result<Opened, ClientError> {
        self.open_session("/auth/recover", body).await
    }

    /// Set or replace the account's recovery key.
    pub async fn set_recovery(&self, body: &SetRecovery) -> Result<(), ClientError> {
        self.call_no_answer(Method::POST, "/auth/recovery", Some(body)).await
    }

    /// Turn an opened session into a long-lived API token named `name`, then end the session.
    pub async fn mint_token(&self, opened: &Opened, name: &str) -> Result<String, ClientError> {
        let session = Self {
            credential: Credential::Session {
                cookie: opened.cookie.clone(),
                csrf: opened.session.csrf_token.clone(),
            },
            ..self.clone()
        };
        let answer: TokenAnswer = session
            .call(
                Method::POST,
                "/auth/tokens",
                Some(&NewToken {
                    name: name.to_owned(),
                    expires_in_days: None,
                }),
            )
            .await?;
        session.call_no_answer::<()>(Method::POST, "/auth/logout", None).await?;
        Ok(answer.token)
    }

    /// The account's API tokens that still work (`GET /auth/tokens`).
    pub async fn tokens(&self) -> Result<Vec<disktro_core::api::TokenInfo>, ClientError> {
        self.call::<(), _>(Method::GET, "/auth/tokens", None).await
    }

    /// Revoke one of the account's API tokens by its public id.
    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.call_no_answer::<()>(Method::DELETE, &format!("/auth/tokens/{id}"), None)
            .await
    }

    /// Revoke this client's API token.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call_no_answer::<()>(Method::POST, "/auth/logout", None).await
    }

    pub async fn begin_upload(&self, body: &BeginUpload) -> Result<UploadPlan, ClientError> {
        self.call(Method::POST, "/uploads", Some(body)).await
    }

    pub async fn renew_upload(&self, upload_id: &str) -> Result<Vec<PutGrant>, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/uploads/{upload_id}/renew"), None)
            .await
    }

    pub async fn upload_plan(&self, upload_id: &str) -> Result<UploadPlan, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/uploads/{upload_id}"), None)
            .await
    }

    pub async fn replan_upload(&self, upload_id: &str, body: &Replan) -> Result<UploadPlan, ClientError> {
        self.call(Method::POST, &format!("/uploads/{upload_id}/replan"), Some(body))
            .await
    }

    pub async fn resize_upload(&self, upload_id: &str, body: &Resize) -> Result<UploadPlan, ClientError> {
        self.call(Method::POST, &format!("/uploads/{upload_id}/resize"), Some(body))
            .await
    }

    pub async fn cancel_upload(&self, upload_id: &str) -> Result<(), ClientError> {
        self.call_no_answer::<()>(Method::DELETE, &format!("/uploads/{upload_id}"), None)
            .await
    }

    pub async fn commit(&self, upload_id: &str, body: &Commit) -> Result<FileSummary, ClientError> {
        self.call(Method::POST, &format!("/uploads/{upload_id}/commit"), Some(body))
            .await
    }

    /// All the account's files, newest first, a page of [`FILES_PER_PAGE`] at a time.
    pub async fn files(&self) -> Result<FileList, ClientError> {
        let mut list = self.files_page(FILES_PER_PAGE, None).await?;
        while let Some(after) = list.next.take() {
            let page = self.files_page(FILES_PER_PAGE, Some(&after)).await?;
            list.files.extend(page.files);
            (list.total, list.used_bytes, list.quota_bytes, list.next) =
                (page.total, page.used_bytes, page.quota_bytes, page.next);
        }
        Ok(list)
    }

    /// Up to `limit` of the account's files, newest first, after `after` (the `next` of the
    /// page before; the first page without it).
    pub async fn files_page(&self, limit: u32, after: Option<&str>) -> Result<FileList, ClientError> {
        let path = match after {
            // The server's cursors are digits, a dot and hex: nothing to escape in a query.
            Some(after)
                if after
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                format!("/files?limit={limit}&after={after}")
            }
            Some(_) => {
                return Err(ClientError::Integrity(
                    "the server sent a malformed page cursor".to_owned(),
                ));
            }
            None => format!("/files?limit={limit}"),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn file(&self, file_id: &str) -> Result<FileDownload, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/files/{file_id}"), None)
            .await
    }

    /// [`Self::file`] for a download whose orders are signed with `order_key`
    /// ([`disktro_core::order`]): the tokens name it, so the workers are paid for what it reads.
    pub async fn file_reading(&self, file_id: &str, order_key: &PublicKey) -> Result<FileDownload, ClientError> {
        let key = disktro_core::ids::to_hex(order_key.as_bytes());
        self.call::<(), _>(Method::GET, &format!("/files/{file_id}?order_key={key}"), None)
            .await
    }

    /// Begin re-encoding a stored file at the redundancy the policy gives now: its plan.
    pub async fn restripe(&self, file_id: &str) -> Result<UploadPlan, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/files/{file_id}/restripe"), None)
            .await
    }

    /// Every folder of the account (names sealed).
    pub async fn folders(&self) -> Result<FolderList, ClientError> {
        self.call::<(), _>(Method::GET, "/folders", None).await
    }

    pub async fn create_folder(&self, body: &NewFolder) -> Result<FolderSummary, ClientError> {
        self.call(Method::POST, "/folders", Some(body)).await
    }

    pub async fn rename_folder(&self, id: &FolderId, body: &Rename) -> Result<FolderSummary, ClientError> {
        self.call(Method::POST, &format!("/folders/{id}/rename"), Some(body))
            .await
    }

    pub async fn move_folder(&self, id: &FolderId, to: Option<FolderId>) -> Result<FolderSummary, ClientError> {
        self.call(
            Method::POST,
            &format!("/folders/{id}/move"),
            Some(&MoveTo { parent_id: to }),
        )
        .await
    }

    /// Delete a folder: an empty one, or with `recursive` everything below it.
    pub async fn delete_folder(&self, id: &FolderId, recursive: bool) -> Result<Removed, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/folders/{id}?recursive={recursive}"), None)
            .await
    }

    pub async fn move_file(&self, id: &FileId, to: Option<FolderId>) -> Result<(), ClientError> {
        self.call_no_answer(
            Method::POST,
            &format!("/files/{id}/move"),
            Some(&MoveTo { parent_id: to }),
        )
        .await
    }

    pub async fn rename_file(&self, id: &FileId, body: &Rename) -> Result<(), ClientError> {
        self.call_no_answer(Method::POST, &format!("/files/{id}/rename"), Some(body))
            .await
    }

    /// Every file in `folder` (none: at the top of the tree), newest first.
    pub async fn files_in(&self, folder: Option<&FolderId>) -> Result<FileList, ClientError> {
        let folder = folder.map_or_else(|| "root".to_owned(), FolderId::to_hex);
        let mut list: FileList = self
            .call::<(), _>(Method::GET, &format!("/files?limit=1000&folder={folder}"), None)
            .await?;
        while let Some(after) = list.next.take() {
            let page: FileList = self
                .call::<(), _>(
                    Method::GET,
                    &format!("/files?limit=1000&folder={folder}&after={after}"),
                    None,
                )
                .await?;
            list.files.extend(page.files);
            list.next = page.next;
        }
        Ok(list)
    }

    pub async fn delete_file(&self, file_id: &str) -> Result<(), ClientError> {
        self.call_no_answer::<()>(Method::DELETE, &format!("/files/{file_id}"), None)
            .await
    }

    pub async fn share(&self, file_id: &str, body: &NewShare) -> Result<ShareView, ClientError> {
        self.call(Method::POST, &format!("/files/{file_id}/shares"), Some(body))
            .await
    }

    pub async fn revoke_share(&self, share_id: &str) -> Result<ShareView, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/shares/{share_id}"), None)
            .await
    }

    pub async fn open_share(&self, share_id: &str, access: &ShareAccess) -> Result<ShareInfo, ClientError> {
        self.call(Method::POST, &format!("/public/shares/{share_id}"), Some(access))
            .await
    }

    pub async fn download_share(&self, share_id: &str, access: &ShareAccess) -> Result<FileDownload, ClientError> {
        self.call(
            Method::POST,
            &format!("/public/shares/{share_id}/download"),
            Some(access),
        )
        .await
    }

    /// Report a share download finished, so it counts (until then an interrupted download does
    /// not use up the link).
    pub async fn complete_share_download(&self, share_id: &str, download_id: &str) -> Result<(), ClientError> {
        self.call_no_answer::<()>(
            Method::POST,
            &format!("/public/shares/{share_id}/downloads/{download_id}/complete"),
            None,
        )
        .await
    }
}

/// The innermost error message (reqwest's outer ones say only "error sending request").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
