//! Multipart uploads (Create, UploadPart, ListParts, Complete, Abort, ListMultipartUploads).
//!
//! Parts are written, as they stream in, to a spool directory on this machine
//! (`<config dir>/gateway-uploads/<upload id>/`), each checked against its Content-MD5 or signed
//! hash, and from there sent on in order while the others still arrive ([`super::assembly`]):
//! Complete then only waits for the end of that upload. When the parts Complete chooses are not
//! the ones sent on (a part sent again after it went, parts left out) or the gateway restarted in
//! between, Complete streams the chosen parts from the spool through the upload pipeline as one
//! file instead. Memory stays at a few frames per part; the disk holds the parts until Complete
//! or Abort. Nothing leaves this machine in the clear either way.

use std::io::Read;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use disktro_core::metadata::FileMetadata;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use super::assembly::Assembly;
use super::body::{CheckedReader, Expect};
use super::objects::{Call, ETAG};
use super::sigv4::Payload;
use super::xml::{self, Doc};
use super::{S3Error, xml_response};

/// The smallest part but the last (S3's rule, which clients size their parts by).
const MIN_PART: u64 = 5 << 20;
/// Most parts in one upload (S3's).
const MAX_PARTS: u32 = 10_000;

/// What an upload was created with, kept beside its parts.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    bucket: String,
    key: String,
    mime: String,
    attributes: Vec<(String, String)>,
    created: u64,
}

/// A part on disk: its number, size and MD5 (hex).
#[derive(Debug)]
struct Part {
    number: u32,
    size: u64,
    etag: String,
    path: PathBuf,
}

fn io_error(e: std::io::Error) -> S3Error {
    S3Error::new(500, "InternalError", &format!("the gateway's spool: {e}"))
}

fn no_such_upload() -> S3Error {
    S3Error::new(
        404,
        "NoSuchUpload",
        "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
    )
}

impl Call<'_> {
    fn upload_dir(&self) -> Result<PathBuf, S3Error> {
        let id = self
            .query
            .iter()
            .find(|(k, _)| k == "uploadId")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        // Ids are the gateway's own hex: nothing else names a directory.
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(no_such_upload());
        }
        let dir = self.gateway.spool.join(id);
        if dir.join("upload.json").is_file() {
            Ok(dir)
        } else {
            Err(no_such_upload())
        }
    }

    /// The upload's record, checked to be for this bucket and key.
    fn pending(&self, dir: &Path, bucket: &str, key: &str) -> Result<Pending, S3Error> {
        let text = std::fs::read(dir.join("upload.json")).map_err(io_error)?;
        let pending: Pending = serde_json::from_slice(&text).map_err(|_| no_such_upload())?;
        if pending.bucket != bucket || pending.key != key {
            return Err(no_such_upload());
        }
        Ok(pending)
    }

    pub async fn create_multipart(&self, bucket: &str, key: &str) -> Result<Response, S3Error> {
        // The bucket must exist now, as S3 checks; the key's folders are made now too, since the
        // parts are sent on into that folder as they arrive.
        let (folder, _) = self.object_folder(bucket, key).await?;
        let id = hex::encode(disktro_core::random_bytes::<16>());
        let dir = self.gateway.spool.join(&id);
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let pending = Pending {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            mime: self
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned(),
            attributes: self.user_metadata()?,
            created: disktro_net::unix_now(),
        };
        std::fs::write(
            dir.join("upload.json"),
            serde_json::to_vec(&pending).expect("plain data serialises"),
        )
        .map_err(io_error)?;
        let assembly = Assembly::start(std::sync::Arc::clone(self.gateway), dir, folder);
        self.assemblies().insert(id.clone(), assembly);
        let mut doc = Doc::new("InitiateMultipartUploadResult");
        doc.leaf("Bucket", bucket).leaf("Key", key).leaf("UploadId", &id);
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    fn assemblies(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::sync::Arc<Assembly>>> {
        self.gateway
            .assemblies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of the upload in `dir` (its directory's name).
    fn id_of(dir: &Path) -> String {
        dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned()
    }

    async fn find_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let tree = crate::tree::Tree::load(&self.gateway.server, &self.gateway.me).await?;
        tree.child(None, bucket).map(|_| ()).ok_or_else(S3Error::no_such_bucket)
    }

    pub async fn upload_part(&self, bucket: &str, key: &str, body: Body) -> Result<Response, S3Error> {
        let dir = self.upload_dir()?;
        self.pending(&dir, bucket, key)?;
        let number: u32 = self
            .query
            .iter()
            .find(|(k, _)| k == "partNumber")
            .and_then(|(_, v)| v.parse().ok())
            .filter(|n| (1..=MAX_PARTS).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
            })?;
        if self.headers.contains_key("x-amz-copy-source") {
            return Err(S3Error::new(501, "NotImplemented", "UploadPartCopy is not supported"));
        }
        let length = self.content_length()?;
        let md5 = self.content_md5()?;
        let expect = Expect {
            length,
            md5,
            sha256: match &self.signed.payload {
                Payload::Sha256(h) => Some(*h),
                Payload::Unsigned => None,
            },
        };
        let (mut reader, digests) = CheckedReader::new(body, expect);
        let temp = dir.join(format!("part-{number:05}.incoming"));
        let written = {
            let temp = temp.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                // Not synced: the assembly reads it back from the page cache at once, and the
                // spool's copy is checked against its MD5 whenever it is read again.
                let mut file = std::fs::File::create(&temp)?;
                std::io::copy(&mut reader, &mut file)
            })
            .await
            .map_err(|e| S3Error::new(500, "InternalError", &e.to_string()))?
        };
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(crate::ClientError::Io(e.to_string()).into());
        }
        let md5 = digests
            .await
            .map_err(|_| S3Error::new(500, "InternalError", "the part's digest was lost"))?
            .md5;
        let etag = hex::encode(md5);
        // A part sent again replaces the one before (its other ETag goes with it).
        for old in parts(&dir)?.into_iter().filter(|p| p.number == number) {
            let _ = std::fs::remove_file(old.path);
        }
        std::fs::rename(&temp, dir.join(format!("part-{number:05}.{etag}"))).map_err(io_error)?;
        let assembly = self.assemblies().get(&Self::id_of(&dir)).cloned();
        if let Some(assembly) = assembly {
            assembly.arrived(number, &etag);
        }
        Ok((StatusCode::OK, [("etag", format!("\"{etag}\""))]).into_response())
    }

    pub async fn list_parts(&self, bucket: &str, key: &str) -> Result<Response, S3Error> {
        let dir = self.upload_dir()?;
        self.pending(&dir, bucket, key)?;
        let id = Self::id_of(&dir);
        let after: u32 = self
            .query
            .iter()
            .find(|(k, _)| k == "part-number-marker")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut doc = Doc::new("ListPartsResult");
        doc.leaf("Bucket", bucket)
            .leaf("Key", key)
            .leaf("UploadId", &id)
            .leaf("PartNumberMarker", after)
            .leaf("MaxParts", MAX_PARTS)
            .leaf("IsTruncated", false)
            .leaf("StorageClass", "STANDARD");
        for part in parts(&dir)?.into_iter().filter(|p| p.number > after) {
            doc.start("Part")
                .leaf("PartNumber", part.number)
                .leaf("ETag", format!("\"{}\"", part.etag))
                .leaf("Size", part.size)
                .end();
        }
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str) -> Result<Response, S3Error> {
        let dir = self.upload_dir()?;
        self.pending(&dir, bucket, key)?;
        let assembly = self.assemblies().remove(&Self::id_of(&dir));
        if let Some(assembly) = assembly {
            assembly.stop("the multipart upload was aborted");
        }
        std::fs::remove_dir_all(&dir).map_err(io_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub async fn list_multipart_uploads(&self, bucket: &str) -> Result<Response, S3Error> {
        self.find_bucket(bucket).await?;
        let mut doc = Doc::new("ListMultipartUploadsResult");
        doc.leaf("Bucket", bucket).leaf("IsTruncated", false);
        let entries = match std::fs::read_dir(&self.gateway.spool) {
            Ok(entries) => entries.flatten().collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        for entry in entries {
            let Ok(text) = std::fs::read(entry.path().join("upload.json")) else {
                continue;
            };
            let Ok(pending) = serde_json::from_slice::<Pending>(&text) else {
                continue;
            };
            if pending.bucket == bucket {
                doc.start("Upload")
                    .leaf("Key", &pending.key)
                    .leaf("UploadId", entry.file_name().to_string_lossy())
                    .end();
            }
        }
        Ok(xml_response(StatusCode::OK, doc.finish()))
    }

    pub async fn complete_multipart(&self, bucket: &str, key: &str, body: Body) -> Result<Response, S3Error> {
        let dir = self.upload_dir()?;
        let pending = self.pending(&dir, bucket, key)?;
        let bytes = axum::body::to_bytes(body, 4 << 20)
            .await
            .map_err(|_| S3Error::new(400, "MalformedXML", "the request body is over 4 MiB or broke off"))?;
        let asked = xml::parse_complete(&String::from_utf8_lossy(&bytes))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                S3Error::new(
                    400,
                    "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema",
                )
            })?;
        if asked.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(S3Error::new(
                400,
                "InvalidPartOrder",
                "The list of parts was not in ascending order.",
            ));
        }
        let on_disk = parts(&dir)?;
        let mut chosen = Vec::with_capacity(asked.len());
        for (number, etag) in &asked {
            let part = on_disk
                .iter()
                .find(|p| p.number == *number && p.etag == *etag)
                .ok_or_else(|| {
                    S3Error::new(
                        400,
                        "InvalidPart",
                        "One or more of the specified parts could not be found.",
                    )
                })?;
            chosen.push(part);
        }
        if chosen[..chosen.len() - 1].iter().any(|p| p.size < MIN_PART) {
            return Err(S3Error::new(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        // S3's multipart ETag: the MD5 of the parts' MD5s, and their count.
        let mut md5s = Md5::new();
        for part in &chosen {
            md5s.update(hex::decode(&part.etag).unwrap_or_default());
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let assembly = self.assemblies().remove(&Self::id_of(&dir));
        if let Some(assembly) = assembly {
            let (folder, name) = self.object_folder(bucket, key).await?;
            let mut attributes = pending.attributes.clone();
            attributes.push((ETAG.to_owned(), etag.clone()));
            let metadata = FileMetadata {
                name: name.to_owned(),
                mime: pending.mime.clone(),
                size,
                attributes,
            };
            let numbers: Vec<(u32, String)> = chosen.iter().map(|p| (p.number, p.etag.clone())).collect();
            if assembly.finish(&numbers, metadata.clone()) {
                // A failure leaves the spool: Complete asked again uploads from it.
                let uploaded = assembly.outcome().await?;
                let stored = super::objects::Found {
                    file: uploaded.summary,
                    metadata,
                };
                self.replace_older(folder, name, stored).await?;
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(completed(bucket, key, &etag));
            }
        }
        let paths: Vec<(PathBuf, String)> = chosen.iter().map(|p| (p.path.clone(), p.etag.clone())).collect();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
        // The parts, read in order on a blocking thread, as one body.
        // Each part is checked against its MD5 as it passes (the spool is not synced, so a part
        // cut short by a crash of this machine fails here instead of being stored).
        tokio::task::spawn_blocking(move || {
            for (path, etag) in paths {
                let mut file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                let mut buf = vec![0u8; 1 << 20];
                let mut md5 = Md5::new();
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            md5.update(&buf[..n]);
                            if tx
                                .blocking_send(Ok(axum::body::Bytes::copy_from_slice(&buf[..n])))
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if hex::encode(md5.finalize()) != etag {
                    let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                        "the spooled part {} no longer matches its ETag",
                        path.display()
                    ))));
                    return;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let metadata = FileMetadata {
            name: String::new(),
            mime: pending.mime,
            size,
            attributes: pending.attributes,
        };
        let expect = Expect {
            length: size,
            md5: None,
            sha256: None,
        };
        let etag = self
            .store(bucket, key, Body::from_stream(stream), expect, metadata, Some(etag))
            .await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(completed(bucket, key, &etag))
    }
}

/// Complete's answer.
fn completed(bucket: &str, key: &str, etag: &str) -> Response {
    let mut doc = Doc::new("CompleteMultipartUploadResult");
    doc.leaf("Location", format!("/{bucket}/{key}"))
        .leaf("Bucket", bucket)
        .leaf("Key", key)
        .leaf("ETag", format!("\"{etag}\""));
    xml_response(StatusCode::OK, doc.finish())
}

/// The parts in an upload's directory, by number.
fn parts(dir: &Path) -> Result<Vec<Part>, S3Error> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("part-") else {
            continue;
        };
        let Some((number, etag)) = rest.split_once('.') else {
            continue;
        };
        let (Ok(number), true) = (number.parse::<u32>(), etag.len() == 32) else {
            continue;
        };
        let size = entry.metadata().map_err(io_error)?.len();
        out.push(Part {
            number,
            size,
            etag: etag.to_owned(),
            path: entry.path(),
        });
    }
    out.sort_by_key(|p| p.number);
    Ok(out)
}
