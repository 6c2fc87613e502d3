//! `disktro gateway`: an S3-compatible HTTP endpoint on this machine, for the tools that speak S3
//! (rclone, restic, the aws CLI). It holds the account's keys like every other `disktro` command,
//! so the network still never sees a name or a byte in the clear: objects go through the same
//! codec and upload pipeline as `disktro upload`, and come back through `disktro download`'s.
//!
//! Buckets are the folders at the top of the account's tree; an object's key is its path below
//! (`photos/2024/a.jpg` in bucket `backup` is the file `/backup/photos/2024/a.jpg`), so what a
//! tool stores is where the web app and the CLI show it, and the other way round.
//!
//! - [`sigv4`]: requests are signed with access keys ([`keys`]) the account made on this machine;
//! - [`body`]: bodies stream between HTTP and the pipelines in bounded memory, checked as they go;
//! - [`objects`]: buckets and objects on the folder tree (Put/Get/Head/Delete/Copy, listings);
//! - [`names`]: each folder's files by name, kept between requests (for a tool storing many
//!   objects in one folder);
//! - [`multipart`]: multipart uploads, their parts spooled on disk until Complete or Abort and
//!   sent on as they arrive ([`assembly`]);
//! - [`xml`]: S3's XML answers and errors.

mod assembly;
pub mod body;
pub mod keys;
mod multipart;
mod names;
mod objects;
pub mod sigv4;
pub mod xml;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ClientError;
use crate::account::Identity;
use crate::server::Server;

/// An S3 error: its HTTP status, its S3 code and a message, written as S3's XML `<Error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: &str) -> Self {
        Self {
            status,
            code,
            message: message.to_owned(),
        }
    }

    pub fn access_denied(message: &str) -> Self {
        Self::new(403, "AccessDenied", message)
    }

    pub fn no_such_bucket() -> Self {
        Self::new(404, "NoSuchBucket", "The specified bucket does not exist")
    }

    pub fn no_such_key() -> Self {
        Self::new(404, "NoSuchKey", "The specified key does not exist.")
    }

    pub fn invalid_argument(message: &str) -> Self {
        Self::new(400, "InvalidArgument", message)
    }

    fn into_response(self, resource: &str, request_id: &str) -> Response {
        let mut doc = xml::Doc::bare("Error");
        doc.leaf("Code", self.code)
            .leaf("Message", &self.message)
            .leaf("Resource", resource)
            .leaf("RequestId", request_id);
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        xml_response(status, doc.finish())
    }
}

/// The check codes a request body fails with ([`body::CheckedReader`]), by their S3 status.
const BODY_CODES: [(&str, u16); 3] = [
    ("BadDigest", 400),
    ("XAmzContentSHA256Mismatch", 400),
    ("IncompleteBody", 400),
];

impl From<ClientError> for S3Error {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        if let Some((code, status)) = BODY_CODES
            .iter()
            .find(|(code, _)| message.contains(&format!("{code}:")))
        {
            return Self::new(*status, code, &message);
        }
        match &e {
            ClientError::Api { status: 404, .. } => Self::new(404, "NoSuchKey", &message),
            ClientError::Api {
                code:
                    disktro_core::api::ErrorCode::QuotaExceeded
                    | disktro_core::api::ErrorCode::FileTooLarge
                    | disktro_core::api::ErrorCode::TooManyUploads,
                ..
            } => Self::new(403, "QuotaExceeded", &message),
            ClientError::Api { status: 401 | 403, .. } => Self::access_denied(&message),
            ClientError::Api { status: 409, .. } => Self::new(409, "OperationAborted", &message),
            ClientError::Api { status: 429, .. } => Self::new(503, "SlowDown", &message),
            ClientError::Usage(_) | ClientError::Api { status: 400, .. } => Self::invalid_argument(&message),
            ClientError::Network(_) | ClientError::Workers(_) => Self::new(503, "ServiceUnavailable", &message),
            _ => Self::new(500, "InternalError", &message),
        }
    }
}

/// What the gateway runs with: the account's log-in and where multipart parts wait.
#[derive(Debug)]
pub struct Gateway {
    server: Server,
    me: Identity,
    /// Multipart uploads' parts, until they are completed or aborted.
    spool: PathBuf,
    /// One change of the folder tree at a time: two uploads into a new folder make it once.
    tree_changes: tokio::sync::Mutex<()>,
    /// Object reads streaming at once (each holds a download's chunks in flight, about 25 MiB);
    /// more wait their turn, since two already keep both cores of a small machine busy.
    reads: Arc<tokio::sync::Semaphore>,
    /// Each folder's files by name, kept between requests.
    names: names::Names,
    /// Multipart uploads being sent on as their parts arrive, by upload id.
    assemblies: std::sync::Mutex<std::collections::HashMap<String, Arc<assembly::Assembly>>>,
}

/// Object reads that stream at once ([`Gateway`]'s `reads`).
const READS_AT_ONCE: usize = 2;

impl Gateway {
    /// A gateway for the account logged in as `me`; multipart parts wait under `spool`.
    pub fn new(server: Server, me: Identity, spool: PathBuf) -> Self {
        Self {
            server,
            me,
            spool,
            tree_changes: tokio::sync::Mutex::new(()),
            reads: Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE)),
            assemblies: std::sync::Mutex::default(),
            names: names::Names::default(),
        }
    }
}

/// Serve S3 on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, gateway: Gateway) -> std::io::Result<()> {
    let app = Router::new().fallback(handle).with_state(Arc::new(gateway));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
}

/// Every request: verify its signature, then do what its method, path and query ask.
async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let request_id = hex::encode(disktro_core::random_bytes::<8>());
    let resource = request.uri().path().to_owned();
    let mut response = match route(&gateway, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(&resource, &request_id),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", v);
    }
    response
}

/// A request's target: the service, a bucket, or an object.
#[derive(Debug)]
enum Target {
    Service,
    Bucket(String),
    Object(String, String),
}

async fn route(gateway: &Arc<Gateway>, request: Request) -> Result<Response, S3Error> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query_text = parts.uri.query().unwrap_or("").to_owned();
    let signed = sigv4::verify(
        &sigv4::Request {
            method: parts.method.as_str(),
            path: &path,
            query: &query_text,
            headers: &parts.headers,
        },
        |id| keys::secret(&gateway.me.account_id, id),
        disktro_net::unix_now() as i64,
    )?;
    let query = sigv4::parse_query(&query_text);
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let target = target(&path)?;
    let request = objects::Call {
        gateway,
        headers: &parts.headers,
        query: &query,
        signed: &signed,
    };
    use axum::http::Method;
    match (&parts.method, target) {
        (&Method::GET, Target::Service) => request.list_buckets().await,
        (_, Target::Service) => Err(S3Error::new(
            405,
            "MethodNotAllowed",
            "only GET is allowed on the service",
        )),
        (&Method::PUT, Target::Bucket(b)) => request.create_bucket(&b).await,
        (&Method::DELETE, Target::Bucket(b)) => request.delete_bucket(&b).await,
        (&Method::HEAD, Target::Bucket(b)) => request.head_bucket(&b).await,
        (&Method::GET, Target::Bucket(b)) if has("location") => request.bucket_location(&b).await,
        (&Method::GET, Target::Bucket(b)) if has("uploads") => request.list_multipart_uploads(&b).await,
        (&Method::GET, Target::Bucket(b)) if has("versioning") => request.bucket_versioning(&b).await,
        (&Method::GET, Target::Bucket(b)) => request.list_objects(&b).await,
        (&Method::POST, Target::Bucket(b)) if has("delete") => request.delete_objects(&b, body).await,
        (&Method::PUT, Target::Object(b, k)) if has("uploadId") => request.upload_part(&b, &k, body).await,
        (&Method::PUT, Target::Object(b, k)) if parts.headers.contains_key("x-amz-copy-source") => {
            request.copy_object(&b, &k).await
        }
        (&Method::PUT, Target::Object(b, k)) => request.put_object(&b, &k, body).await,
        (&Method::GET, Target::Object(b, k)) if has("uploadId") => request.list_parts(&b, &k).await,
        (&Method::GET, Target::Object(b, k)) => request.get_object(&b, &k, false).await,
        (&Method::HEAD, Target::Object(b, k)) => request.get_object(&b, &k, true).await,
        (&Method::DELETE, Target::Object(b, k)) if has("uploadId") => request.abort_multipart(&b, &k).await,
        (&Method::DELETE, Target::Object(b, k)) => request.delete_object(&b, &k).await,
        (&Method::POST, Target::Object(b, k)) if has("uploads") => request.create_multipart(&b, &k).await,
        (&Method::POST, Target::Object(b, k)) if has("uploadId") => request.complete_multipart(&b, &k, body).await,
        _ => Err(S3Error::new(
            501,
            "NotImplemented",
            "this request is not supported by the Disktro gateway",
        )),
    }
}

/// The bucket and key of a path-style request (`/bucket/key`).
fn target(path: &str) -> Result<Target, S3Error> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| S3Error::new(400, "InvalidURI", "the path is not UTF-8"))?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    if trimmed.is_empty() {
        return Ok(Target::Service);
    }
    Ok(match trimmed.split_once('/') {
        None => Target::Bucket(trimmed.to_owned()),
        Some((bucket, "")) => Target::Bucket(bucket.to_owned()),
        Some((bucket, key)) => Target::Object(bucket.to_owned(), key.to_owned()),
    })
}

/// An XML answer.
fn xml_response(status: StatusCode, text: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/xml")],
        Body::from(text),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_service_buckets_and_objects() {
        assert!(matches!(target("/").unwrap(), Target::Service));
        assert!(matches!(target("/b").unwrap(), Target::Bucket(b) if b == "b"));
        assert!(matches!(target("/b/").unwrap(), Target::Bucket(b) if b == "b"));
        assert!(matches!(target("/b/a%20c/d.txt").unwrap(), Target::Object(b, k) if b == "b" && k == "a c/d.txt"));
        assert!(matches!(target("/b/dir/").unwrap(), Target::Object(_, k) if k == "dir/"));
        assert_eq!(target("/b/%FF").unwrap_err().code, "InvalidURI");
        let body_failure =
            ClientError::Io("encoding failed: BadDigest: the body does not match its Content-MD5".into());
        assert_eq!(S3Error::from(body_failure).code, "BadDigest");
    }
}
