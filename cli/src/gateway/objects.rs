//! Buckets and objects on the account's folder tree: one method per S3 operation.
//!
//! A bucket is a folder at the top; an object is a file, found by its key's folders and its name
//! (the newest when a folder holds two of one name, as a PUT over an object replaces it: the new
//! file is committed first, the old one deleted after). A key ending in `/` is a folder (what S3
//! tools write as a "directory marker"). What S3 keeps with an object that Disktro's metadata
//! does not (its ETag, `x-amz-meta-*`) is sealed with its name as attributes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use disktro_core::FolderId;
use disktro_core::api::{Base64, FileSummary, Rename};
use disktro_core::metadata::FileMetadata;
use disktro_core::order::Orders;
use md5::{Digest as _, Md5};

use super::body::{ChannelWriter, CheckedReader, Expect};
use super::sigv4::{Payload, Signed};
use super::xml::Doc;
use super::{Gateway, S3Error, xml_response};
use crate::ClientError;
use crate::download;
use crate::tree::{self, Tree};
use crate::upload::{self, UploadOptions};

/// The attribute that keeps an object's ETag.
pub(super) const ETAG: &str = "s3-etag";
/// The prefix of attributes that keep `x-amz-meta-*` (the rest of the name follows).
const USER_META: &str = "s3-meta-";
/// Most keys in one listing page (S3's own).
const MAX_KEYS: usize = 1000;

/// One request, with what every operation needs of it.
pub(super) struct Call<'a> {
    pub gateway: &'a Arc<Gateway>,
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
    pub signed: &'a Signed,
}

/// An object found: its file and its opened metadata.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub file: FileSummary,
    pub metadata: FileMetadata,
}

/// What a listing yields before paging.
enum Listed {
    Object(Box<Found>, String),
    Prefix(String),
}

impl Listed {
    fn key(&self) -> &str {
        match self {
            Self::Object(_, k) | Self::Prefix(k) => k,
        }
    }
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    async fn tree(&self) -> Result<Tree, S3Error> {
        Ok(Tree::load(&self.gateway.server, &self.gateway.me).await?)
    }

    /// The bucket's folder, or NoSuchBucket.
    fn bucket(tree: &Tree, bucket: &str) -> Result<FolderId, S3Error> {
        tree.child(None, bucket)
            .map(|f| f.id)
            .ok_or_else(S3Error::no_such_bucket)
    }

    pub async fn list_buckets(&self) -> Result<Response, S3Error> {
        let tree = self.tree().await?;
        let mut doc = Doc::new("ListAllMyBucketsResult");
        doc.start("Owner")
            .leaf("ID", &self.gateway.me.account_id)
            .leaf("DisplayName", &self.gateway.me.email)
            .end()
            .start("Buckets");
        for folder in tree.children(None) {
            doc.start("Bucket")
                .leaf("Name", &folder.name)
                .leaf("CreationDate", iso_time(folder.created_at))
                .end();
        }
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<Response, S3Error> {
        check_bucket_name(bucket)?;
        let _one = self.gateway.tree_changes.lock().await;
        let mut tree = self.tree().await?;
        if tree.child(None, bucket).is_some() {
            return Err(S3Error::new(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            ));
        }
        tree.make(&self.gateway.server, &self.gateway.me, None, bucket).await?;
        Ok((StatusCode::OK, [("location", format!("/{bucket}"))]).into_response())
    }

    pub async fn delete_bucket(&self, bucket: &str) -> Result<Response, S3Error> {
        let tree = self.tree().await?;
        let id = Self::bucket(&tree, bucket)?;
        match self.gateway.server.delete_folder(&id, false).await {
            Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(ClientError::Api { status: 409, .. }) => Err(S3Error::new(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn head_bucket(&self, bucket: &str) -> Result<Response, S3Error> {
        Self::bucket(&self.tree().await?, bucket)?;
        Ok(StatusCode::OK.into_response())
    }

    pub async fn bucket_location(&self, bucket: &str) -> Result<Response, S3Error> {
        Self::bucket(&self.tree().await?, bucket)?;
        // Empty: us-east-1, the region every client signs for by default.
        Ok(xml_response(StatusCode::OK, Doc::new("LocationConstraint").finish()))
    }

    pub async fn bucket_versioning(&self, bucket: &str) -> Result<Response, S3Error> {
        Self::bucket(&self.tree().await?, bucket)?;
        Ok(xml_response(
            StatusCode::OK,
            Doc::new("VersioningConfiguration").finish(),
        ))
    }

    /// ListObjects (v1, `marker`) and ListObjectsV2 (`list-type=2`, `continuation-token`).
    pub async fn list_objects(&self, bucket: &str) -> Result<Response, S3Error> {
        let tree = self.tree().await?;
        let bucket_id = Self::bucket(&tree, bucket)?;
        let v2 = self.param("list-type") == Some("2");
        let prefix = self.param("prefix").unwrap_or("");
        let delimiter = self.param("delimiter").filter(|d| !d.is_empty());
        let max_keys = match self.param("max-keys") {
            Some(m) => m
                .parse::<usize>()
                .map_err(|_| S3Error::invalid_argument("max-keys is not a number"))?
                .min(MAX_KEYS),
            None => MAX_KEYS,
        };
        let url_encoded = self.param("encoding-type") == Some("url");
        let after = if v2 {
            match self.param("continuation-token") {
                Some(token) => Some(
                    Base64::decode(token)
                        .ok()
                        .and_then(|b| String::from_utf8(b.into_vec()).ok())
                        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))?,
                ),
                None => self.param("start-after").map(str::to_owned),
            }
        } else {
            self.param("marker").map(str::to_owned)
        };

        let mut listed = self.walk(&tree, bucket_id, prefix, delimiter).await?;
        listed.sort_by(|a, b| a.key().cmp(b.key()));
        listed.dedup_by(|a, b| a.key() == b.key());
        if let Some(after) = &after {
            listed.retain(|l| l.key() > after.as_str());
        }
        let truncated = listed.len() > max_keys;
        listed.truncate(max_keys);
        let encode = |key: &str| if url_encoded { url_encode(key) } else { key.to_owned() };

        let mut doc = Doc::new("ListBucketResult");
        doc.leaf("Name", bucket)
            .leaf("Prefix", encode(prefix))
            .leaf("MaxKeys", max_keys)
            .leaf("IsTruncated", truncated);
        if let Some(d) = delimiter {
            doc.leaf("Delimiter", encode(d));
        }
        if url_encoded {
            doc.leaf("EncodingType", "url");
        }
        if v2 {
            doc.leaf("KeyCount", listed.len());
            if let Some(token) = self.param("continuation-token") {
                doc.leaf("ContinuationToken", token);
            }
            if let Some(start) = self.param("start-after") {
                doc.leaf("StartAfter", encode(start));
            }
            if truncated && let Some(last) = listed.last() {
                doc.leaf("NextContinuationToken", Base64::new(last.key().as_bytes()).encode());
            }
        } else {
            if let Some(marker) = self.param("marker") {
                doc.leaf("Marker", encode(marker));
            }
            if truncated && let Some(last) = listed.last() {
                doc.leaf("NextMarker", encode(last.key()));
            }
        }
        for item in &listed {
            match item {
                Listed::Object(found, key) => {
                    doc.start("Contents")
                        .leaf("Key", encode(key))
                        .leaf("LastModified", iso_time(found.file.created_at))
                        .leaf("ETag", quoted_etag(found))
                        .leaf("Size", found.metadata.size)
                        .leaf("StorageClass", "STANDARD")
                        .end();
                }
                Listed::Prefix(p) => {
                    doc.start("CommonPrefixes").leaf("Prefix", encode(p)).end();
                }
            }
        }
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    /// The objects and common prefixes under `prefix` in the bucket. With the delimiter `/` only
    /// the folder the prefix ends in is read; otherwise its whole subtree.
    async fn walk(
        &self,
        tree: &Tree,
        bucket: FolderId,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<Listed>, S3Error> {
        // The deepest folder every match is in: the prefix up to its last `/`.
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut start = Some(bucket);
        for part in tree::parts(dir) {
            match tree.child(start, part) {
                Some(f) => start = Some(f.id),
                None => return Ok(Vec::new()),
            }
        }
        let dir_key = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let one_level = delimiter == Some("/");
        let mut out = Vec::new();
        let mut pending = vec![(start, dir_key)];
        while let Some((folder, key_above)) = pending.pop() {
            for f in self.gateway.server.files_in(folder.as_ref()).await?.files {
                let Some(metadata) = tree::file_metadata(&self.gateway.me, &f) else {
                    continue;
                };
                let key = format!("{key_above}{}", metadata.name);
                if key.starts_with(prefix) {
                    out.push(Listed::Object(Box::new(Found { file: f, metadata }), key));
                }
            }
            for sub in tree.children(folder) {
                let key = format!("{key_above}{}/", sub.name);
                if one_level {
                    if key.starts_with(prefix) {
                        out.push(Listed::Prefix(key));
                    }
                } else if key.starts_with(prefix) || prefix.starts_with(&key) {
                    pending.push((Some(sub.id), key));
                }
            }
        }
        if let Some(d) = delimiter.filter(|_| !one_level) {
            out = out
                .into_iter()
                .map(|item| match item.key()[prefix.len()..].find(d) {
                    Some(at) => Listed::Prefix(item.key()[..prefix.len() + at + d.len()].to_owned()),
                    None => item,
                })
                .collect();
        }
        Ok(out)
    }

    /// The folder of `key`'s parent folders in the bucket (`None`: not there) and the name.
    fn locate<'k>(tree: &Tree, bucket: FolderId, key: &'k str) -> (Option<FolderId>, &'k str) {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        let mut at = bucket;
        for part in tree::parts(dir) {
            match tree.child(Some(at), part) {
                Some(f) => at = f.id,
                None => return (None, name),
            }
        }
        (Some(at), name)
    }

    /// Every file named `name` in `folder`, newest first, from the folder's listing as kept
    /// ([`super::names`]) or read now.
    async fn named(&self, folder: FolderId, name: &str) -> Result<Vec<Found>, S3Error> {
        let files = match self.gateway.names.fresh(&folder) {
            Some(files) => files,
            None => {
                let reading = self.gateway.names.reading(folder);
                let opened = self
                    .gateway
                    .server
                    .files_in(Some(&folder))
                    .await?
                    .files
                    .into_iter()
                    .filter_map(|f| {
                        tree::file_metadata(&self.gateway.me, &f).map(|metadata| Found { file: f, metadata })
                    })
                    .collect();
                self.gateway.names.keep(reading, opened)
            }
        };
        let mut found: Vec<Found> = files.iter().filter(|f| f.metadata.name == name).cloned().collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.file.created_at));
        Ok(found)
    }

    /// The object at `key`, or NoSuchKey.
    pub(super) async fn find(&self, bucket: &str, key: &str) -> Result<Found, S3Error> {
        let tree = self.tree().await?;
        let bucket_id = Self::bucket(&tree, bucket)?;
        let (Some(folder), name) = Self::locate(&tree, bucket_id, key) else {
            return Err(S3Error::no_such_key());
        };
        self.named(folder, name)
            .await?
            .into_iter()
            .next()
            .ok_or_else(S3Error::no_such_key)
    }

    pub async fn get_object(&self, bucket: &str, key: &str, head_only: bool) -> Result<Response, S3Error> {
        if key.ends_with('/') {
            // A folder: what S3 tools made as a directory marker reads as an empty object.
            let tree = self.tree().await?;
            let bucket_id = Self::bucket(&tree, bucket)?;
            let mut at = Some(bucket_id);
            for part in tree::parts(key) {
                at = tree.child(at, part).map(|f| f.id);
            }
            return match at {
                Some(_) => Ok((
                    StatusCode::OK,
                    [
                        ("content-length", "0"),
                        ("etag", "\"d41d8cd98f00b204e9800998ecf8427e\""),
                    ],
                )
                    .into_response()),
                None => Err(S3Error::no_such_key()),
            };
        }
        let found = self.find(bucket, key).await?;
        let size = found.metadata.size;
        let range = match self.header("range") {
            Some(text) => Some(parse_range(text, size)?),
            None => None,
        };
        let (start, len) = range.unwrap_or((0, size));
        let mut headers = object_headers(&found);
        headers.insert("content-length", HeaderValue::from(len));
        headers.insert("accept-ranges", HeaderValue::from_static("bytes"));
        let status = if range.is_some() {
            let end = (start + len).saturating_sub(1);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                headers.insert("content-range", v);
            }
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        if head_only || len == 0 {
            return Ok((status, headers).into_response());
        }
        let body = self.stream(&found.file, start, len).await?;
        Ok((status, headers, body).into_response())
    }

    /// The bytes `start..start + len` of `file`, as a body that streams while the download runs.
    pub(super) async fn stream(&self, file: &FileSummary, start: u64, len: u64) -> Result<Body, S3Error> {
        let server = self.gateway.server.clone();
        let id = file.file_id.to_hex();
        let orders = Orders::new();
        let order_key = orders.key();
        let answer = server.file_reading(&id, &order_key).await?;
        let file_key = self
            .gateway
            .me
            .file_key(&answer.file_id, answer.wrapped_key.as_deref())?;
        let owner = self.gateway.me.public_key();
        // Only the chunks that hold the range are fetched.
        let (signed, _) = download::verify(&answer, &file_key, Some(&owner))?;
        let (chunks, skip) = download::chunk_span(start, len, signed.manifest().chunk_size);
        let (writer, body, end) = ChannelWriter::new(skip, len);
        let reads = Arc::clone(&self.gateway.reads);
        tokio::spawn(async move {
            // Closed never: the gateway holds the semaphore for its whole life.
            let Ok(_turn) = reads.acquire_owned().await else { return };
            let renew = {
                let (server, id) = (server.clone(), id.clone());
                move || {
                    let (server, id) = (server.clone(), id.clone());
                    Box::pin(async move { server.file_reading(&id, &order_key).await }) as download::Renewal
                }
            };
            let done =
                download::download_chunks(&answer, &file_key, Some(&owner), writer, chunks, Some(&renew), orders).await;
            if let Err(e) = done {
                end.failed(e.to_string()).await;
            }
        });
        Ok(body)
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: Body) -> Result<Response, S3Error> {
        let length = self.content_length()?;
        if key.ends_with('/') {
            if length != 0 {
                return Err(S3Error::invalid_argument(
                    "a key ending in / is a folder and holds no bytes",
                ));
            }
            self.folder_for(bucket, key).await?;
            return Ok(etag_response(&hex::encode(Md5::digest(b""))));
        }
        let expect = Expect {
            length,
            md5: self.content_md5()?,
            sha256: match &self.signed.payload {
                Payload::Sha256(h) => Some(*h),
                Payload::Unsigned => None,
            },
        };
        let metadata = FileMetadata {
            name: String::new(),
            mime: self.content_type(),
            size: length,
            attributes: self.user_metadata()?,
        };
        let etag = self.store(bucket, key, body, expect, metadata, None).await?;
        Ok(etag_response(&etag))
    }

    /// Store `body` (checked against `expect`) as the object at `key`, replacing what was there:
    /// the new file is committed before the old is deleted. The ETag is `etag` when given (a
    /// multipart upload's), else the body's MD5. Returns the ETag.
    pub(super) async fn store(
        &self,
        bucket: &str,
        key: &str,
        body: Body,
        expect: Expect,
        metadata: FileMetadata,
        etag: Option<String>,
    ) -> Result<String, S3Error> {
        let (folder, name) = self.object_folder(bucket, key).await?;
        let (reader, digests) = CheckedReader::new(body, expect.clone());
        // The ETag is known before the body (given, or as Content-MD5) or is the body's MD5 once
        // it arrived whole; either way it is sealed with the name at the commit, never after.
        let known = etag
            .or_else(|| expect.md5.map(hex::encode))
            .or_else(|| (expect.length == 0).then(|| hex::encode(Md5::digest(b""))));
        let mut metadata = FileMetadata {
            name: name.to_owned(),
            ..metadata
        };
        let (describe, described) = tokio::sync::oneshot::channel();
        let described_with = tokio::spawn(async move {
            let etag = match known {
                Some(etag) => etag,
                // No digest: the body broke off, and the upload fails on it.
                None => hex::encode(digests.await.ok()?.md5),
            };
            metadata.attributes.push((ETAG.to_owned(), etag.clone()));
            describe.send(metadata.clone()).ok()?;
            Some((etag, metadata))
        });
        let options = UploadOptions {
            folder_id: Some(folder),
            ..UploadOptions::default()
        };
        let uploaded = upload::upload_described(
            &self.gateway.server,
            &self.gateway.me,
            reader,
            Some(expect.length),
            described,
            &options,
            &|_| {},
        )
        .await?;
        let (etag, metadata) = described_with
            .await
            .ok()
            .flatten()
            .ok_or_else(|| S3Error::new(500, "InternalError", "the body's digest was lost"))?;
        self.replace_older(
            folder,
            name,
            Found {
                file: uploaded.summary,
                metadata,
            },
        )
        .await?;
        Ok(etag)
    }

    /// The folder an object at `key` goes in (made where missing) and its name, checked.
    pub(super) async fn object_folder<'k>(&self, bucket: &str, key: &'k str) -> Result<(FolderId, &'k str), S3Error> {
        let (folder, name) = self.folder_for(bucket, key).await?;
        disktro_core::folder::check_name(name)
            .map_err(|_| S3Error::new(400, "InvalidArgument", "a key's parts are not empty, . or .."))?;
        Ok((folder, name))
    }

    /// The object `name` in `folder` is now `stored` (its summary and metadata): the older
    /// files of that name go.
    pub(super) async fn replace_older(&self, folder: FolderId, name: &str, stored: Found) -> Result<(), S3Error> {
        let mut gone = Vec::new();
        for older in self.named(folder, name).await? {
            let id = older.file.file_id;
            // Best effort: a copy left over shows in listings as the older object.
            if id != stored.file.file_id && self.gateway.server.delete_file(&id.to_hex()).await.is_ok() {
                gone.push(id);
            }
        }
        gone.push(stored.file.file_id);
        self.gateway.names.changed(&folder, Some(stored), &gone);
        Ok(())
    }

    /// The folder `key`'s object goes in, made where missing, and its name.
    async fn folder_for<'k>(&self, bucket: &str, key: &'k str) -> Result<(FolderId, &'k str), S3Error> {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        if key
            .split('/')
            .rev()
            .skip(1)
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(S3Error::invalid_argument(
                "a key's folders are not empty, . or .. (it would not be a path)",
            ));
        }
        let _one = self.gateway.tree_changes.lock().await;
        let mut tree = self.tree().await?;
        let bucket_id = Self::bucket(&tree, bucket)?;
        let mut at = bucket_id;
        for part in tree::parts(dir) {
            at = match tree.child(Some(at), part) {
                Some(f) => f.id,
                None => {
                    tree.make(&self.gateway.server, &self.gateway.me, Some(at), part)
                        .await?
                }
            };
        }
        Ok((at, name))
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Response, S3Error> {
        self.remove(bucket, key).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// Delete the object at `key` (every file of its name there); a folder key removes the
    /// folder when it is empty. Nothing there is no error, as in S3.
    async fn remove(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let tree = self.tree().await?;
        let bucket_id = Self::bucket(&tree, bucket)?;
        if key.ends_with('/') {
            let mut at = Some(bucket_id);
            for part in tree::parts(key) {
                at = at.and_then(|id| tree.child(Some(id), part).map(|f| f.id));
            }
            if let Some(id) = at.filter(|id| *id != bucket_id) {
                match self.gateway.server.delete_folder(&id, false).await {
                    Ok(_) | Err(ClientError::Api { status: 404 | 409, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        }
        let (Some(folder), name) = Self::locate(&tree, bucket_id, key) else {
            return Ok(());
        };
        let mut gone = Vec::new();
        for found in self.named(folder, name).await? {
            match self.gateway.server.delete_file(&found.file.file_id.to_hex()).await {
                Ok(()) | Err(ClientError::Api { status: 404, .. }) => gone.push(found.file.file_id),
                Err(e) => {
                    self.gateway.names.changed(&folder, None, &gone);
                    return Err(e.into());
                }
            }
        }
        self.gateway.names.changed(&folder, None, &gone);
        Ok(())
    }

    pub async fn delete_objects(&self, bucket: &str, body: Body) -> Result<Response, S3Error> {
        let bytes = axum::body::to_bytes(body, 2 << 20)
            .await
            .map_err(|_| S3Error::new(400, "MalformedXML", "the request body is over 2 MiB or broke off"))?;
        let text = String::from_utf8_lossy(&bytes);
        let (keys, quiet) = super::xml::parse_delete(&text);
        if keys.len() > MAX_KEYS {
            return Err(S3Error::new(400, "MalformedXML", "at most 1000 keys per request"));
        }
        let mut doc = Doc::new("DeleteResult");
        for key in keys {
            match self.remove(bucket, &key).await {
                Ok(()) if !quiet => {
                    doc.start("Deleted").leaf("Key", &key).end();
                }
                Ok(()) => {}
                Err(e) => {
                    doc.start("Error")
                        .leaf("Key", &key)
                        .leaf("Code", e.code)
                        .leaf("Message", &e.message)
                        .end();
                }
            }
        }
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    /// CopyObject. Onto itself with `x-amz-metadata-directive: REPLACE` (how tools change an
    /// object's metadata) it changes the sealed metadata only; elsewhere the bytes stream from a
    /// download into an upload.
    pub async fn copy_object(&self, bucket: &str, key: &str) -> Result<Response, S3Error> {
        let source = self.header("x-amz-copy-source").unwrap_or_default();
        let source = source.split_once('?').map_or(source, |(s, _)| s);
        let source = percent_encoding::percent_decode_str(source)
            .decode_utf8_lossy()
            .into_owned();
        let source = source.trim_start_matches('/');
        let Some((src_bucket, src_key)) = source.split_once('/') else {
            return Err(S3Error::invalid_argument("x-amz-copy-source is not bucket/key"));
        };
        let found = self.find(src_bucket, src_key).await?;
        let replace = self
            .header("x-amz-metadata-directive")
            .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
        let mut metadata = found.metadata.clone();
        if replace {
            metadata.mime = self.content_type();
            metadata.attributes.retain(|(k, _)| k == ETAG);
            metadata.attributes.extend(self.user_metadata()?);
        }
        let etag = etag_of(&found);
        if src_bucket == bucket && src_key == key {
            if !replace {
                return Err(S3Error::new(
                    400,
                    "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata",
                ));
            }
            let file_key = self
                .gateway
                .me
                .file_key(&found.file.file_id, Some(&found.file.wrapped_key))?;
            let sealed = metadata
                .seal(&file_key, &found.file.file_id)
                .map_err(|e| S3Error::invalid_argument(&e.to_string()))?;
            self.gateway
                .server
                .rename_file(
                    &found.file.file_id,
                    &Rename {
                        metadata: Base64::new(sealed.clone()),
                        wrapped_key: None,
                    },
                )
                .await?;
            if let Some(folder) = found.file.folder_id {
                let id = found.file.file_id;
                let mut file = found.file.clone();
                file.metadata = Base64::new(sealed);
                self.gateway
                    .names
                    .changed(&folder, Some(Found { file, metadata }), &[id]);
            }
            return Ok(copy_result(&etag, found.file.created_at));
        }
        let size = found.metadata.size;
        let body = self.stream(&found.file, 0, size).await?;
        metadata.attributes.retain(|(k, _)| k != ETAG);
        let expect = Expect {
            length: size,
            md5: None,
            sha256: None,
        };
        let etag = self.store(bucket, key, body, expect, metadata, Some(etag)).await?;
        Ok(copy_result(&etag, disktro_net::unix_now() as i64))
    }

    pub(super) fn content_length(&self) -> Result<u64, S3Error> {
        self.header("content-length")
            .ok_or_else(|| {
                S3Error::new(
                    411,
                    "MissingContentLength",
                    "You must provide the Content-Length HTTP header.",
                )
            })?
            .parse()
            .map_err(|_| S3Error::invalid_argument("Content-Length is not a number"))
    }

    pub(super) fn content_md5(&self) -> Result<Option<[u8; 16]>, S3Error> {
        use base64::Engine as _;
        self.header("content-md5")
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .ok_or_else(|| S3Error::new(400, "InvalidDigest", "The Content-MD5 you specified was invalid."))
            })
            .transpose()
    }

    fn content_type(&self) -> String {
        self.header("content-type")
            .filter(|t| !t.is_empty() && t.len() <= disktro_core::metadata::MAX_MIME_LEN)
            .unwrap_or("application/octet-stream")
            .to_owned()
    }

    /// `x-amz-meta-*` as attributes (names lowercased, as S3 keeps them).
    pub(super) fn user_metadata(&self) -> Result<Vec<(String, String)>, S3Error> {
        let mut out = BTreeMap::new();
        for (name, value) in self.headers {
            if let Some(rest) = name.as_str().strip_prefix("x-amz-meta-") {
                let value = value
                    .to_str()
                    .map_err(|_| S3Error::invalid_argument("user metadata is not text"))?;
                out.insert(format!("{USER_META}{rest}"), value.to_owned());
            }
        }
        // As sealed, with room for the ETag kept beside them.
        let len = 1 + out.iter().map(|(k, v)| 1 + k.len() + 2 + v.len()).sum::<usize>() + 1 + ETAG.len() + 2 + 64;
        if len > disktro_core::metadata::MAX_ATTRIBUTES_LEN || out.len() > 200 {
            return Err(S3Error::new(
                400,
                "MetadataTooLarge",
                "Your metadata headers exceed the maximum allowed metadata size (2 KiB)",
            ));
        }
        Ok(out.into_iter().collect())
    }
}

/// What a GET or HEAD answers about an object besides its length.
fn object_headers(found: &Found) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&found.metadata.mime) {
        headers.insert("content-type", v);
    }
    if let Ok(v) = HeaderValue::from_str(&quoted_etag(found)) {
        headers.insert("etag", v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_time(found.file.created_at)) {
        headers.insert("last-modified", v);
    }
    for (name, value) in &found.metadata.attributes {
        if let Some(rest) = name.strip_prefix(USER_META)
            && let (Ok(n), Ok(v)) = (
                axum::http::HeaderName::from_bytes(format!("x-amz-meta-{rest}").as_bytes()),
                HeaderValue::from_str(value),
            )
        {
            headers.insert(n, v);
        }
    }
    headers
}

/// An object's ETag: kept with it when the gateway stored it; for files stored by the app or the
/// CLI (no MD5 was taken) the file id with `-0`, so no tool takes it for an MD5.
pub(super) fn etag_of(found: &Found) -> String {
    found
        .metadata
        .attributes
        .iter()
        .find(|(k, _)| k == ETAG)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("{}-0", found.file.file_id.to_hex()))
}

fn quoted_etag(found: &Found) -> String {
    format!("\"{}\"", etag_of(found))
}

fn etag_response(etag: &str) -> Response {
    (StatusCode::OK, [("etag", format!("\"{etag}\""))]).into_response()
}

fn copy_result(etag: &str, modified: i64) -> Response {
    let mut doc = Doc::new("CopyObjectResult");
    doc.leaf("LastModified", iso_time(modified))
        .leaf("ETag", format!("\"{etag}\""));
    xml_response(StatusCode::OK, doc.finish())
}

/// S3's bucket names: 3–63 lowercase letters, digits, `.` and `-`, starting and ending with a
/// letter or digit.
fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(S3Error::new(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        ))
    }
}

/// A `Range: bytes=…` header on an object of `size` bytes: (start, length).
fn parse_range(text: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let invalid = || S3Error::new(416, "InvalidRange", "The requested range is not satisfiable");
    let spec = text.strip_prefix("bytes=").ok_or_else(invalid)?;
    if spec.contains(',') {
        return Err(S3Error::new(501, "NotImplemented", "multiple ranges are not supported"));
    }
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| invalid())?;
            if n == 0 || size == 0 {
                return Err(invalid());
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().map_err(|_| invalid())?, size.saturating_sub(1)),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| invalid())?, b.parse().map_err(|_| invalid())?);
            if b < a {
                return Err(invalid());
            }
            (a, b.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Err(invalid());
    }
    Ok((start, end - start + 1))
}

/// Keys in a listing asked for with `encoding-type=url`.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Unix seconds as ISO 8601 (`2026-12-05T21:00:00.000Z`), as S3 lists times.
fn iso_time(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    // httpdate knows the calendar; reformat its fields.
    let text = httpdate::fmt_http_date(t);
    // "Sat, 05 Dec 2026 21:00:00 GMT"
    let parts: Vec<&str> = text.split(' ').collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .map_or(1, |i| i + 1);
    format!("{}-{month:02}-{}T{}.000Z", parts[3], parts[1], parts[4])
}

/// Unix seconds as an HTTP date (`Last-Modified`).
fn http_time(unix: i64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_names_and_times() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), (0, 10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), (90, 10));
        assert_eq!(parse_range("bytes=-5", 100).unwrap(), (95, 5));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), (95, 5));
        assert_eq!(parse_range("bytes=100-", 100).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range("bytes=5-1", 100).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range("items=0-1", 100).unwrap_err().code, "InvalidRange");
        assert!(check_bucket_name("my-backup.2026").is_ok());
        for bad in ["ab", "Upper", "-start", "end-", "under_score"] {
            assert_eq!(check_bucket_name(bad).unwrap_err().code, "InvalidBucketName", "{bad}");
        }
        assert_eq!(iso_time(1_767_225_600), "2026-01-01T00:00:00.000Z");
        assert_eq!(http_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(url_encode("a b/ç+"), "a%20b/%C3%A7%2B");
    }
}
