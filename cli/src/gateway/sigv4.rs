//! AWS Signature Version 4, as S3 clients sign requests: in the `Authorization` header or in a
//! presigned URL's query (`X-Amz-Signature`, which rclone uses for its single-part uploads).
//!
//! The gateway recomputes the canonical request from what arrived (method, the path re-encoded
//! the canonical way, the sorted query, the signed headers, the payload's hash as the client
//! declared it) and compares signatures in constant time. A declared payload hash is checked
//! against the body as it streams ([`super::body`]); `UNSIGNED-PAYLOAD` is taken as declared.
//! Chunk-signed streaming payloads (`STREAMING-…`) are refused: the clients tested send neither.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::S3Error;

/// How far a request's date may be from this machine's clock (S3's own allowance).
const MAX_SKEW_SECS: i64 = 15 * 60;
/// Longest validity of a presigned URL (S3's: 7 days).
const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// What the signature says of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Not signed: taken as it comes.
    Unsigned,
    /// Its SHA-256, which the body must match.
    Sha256([u8; 32]),
}

/// A verified request: who signed it and what it says of its body.
#[derive(Debug, Clone)]
pub struct Signed {
    pub access_key_id: String,
    pub payload: Payload,
}

/// What of a request the signature covers.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query as sent (percent-encoded), without `?`.
    pub query: &'a str,
    pub headers: &'a axum::http::HeaderMap,
}

/// Verify `request`'s signature with the secret `secret_of` gives its access key (`None`: no such
/// key), at the time `now` (Unix seconds).
pub fn verify(request: &Request<'_>, secret_of: impl Fn(&str) -> Option<String>, now: i64) -> Result<Signed, S3Error> {
    let query = parse_query(request.query);
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Signature");
    let fields = if presigned {
        Fields::from_query(&query)?
    } else {
        let header = request
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| S3Error::access_denied("the request is not signed (no Authorization header)"))?;
        Fields::from_header(header, request.headers)?
    };
    let signed_at = parse_amz_date(&fields.date)
        .ok_or_else(|| S3Error::new(403, "AccessDenied", "X-Amz-Date is not a date like 20260101T000000Z"))?;
    if presigned {
        let expires: i64 = query
            .iter()
            .find(|(k, _)| k == "X-Amz-Expires")
            .and_then(|(_, v)| v.parse().ok())
            .filter(|e| (1..=MAX_PRESIGNED_SECS).contains(e))
            .ok_or_else(|| {
                S3Error::new(
                    400,
                    "AuthorizationQueryParametersError",
                    "X-Amz-Expires is missing or out of range",
                )
            })?;
        if now > signed_at + expires {
            return Err(S3Error::new(403, "AccessDenied", "Request has expired"));
        }
        if signed_at > now + MAX_SKEW_SECS {
            return Err(S3Error::new(
                403,
                "RequestTimeTooSkewed",
                "The request's date is in the future",
            ));
        }
    } else if (now - signed_at).abs() > MAX_SKEW_SECS {
        return Err(S3Error::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and this machine's time is too large",
        ));
    }
    let scope: Vec<&str> = fields.credential.split('/').collect();
    let [access_key_id, day, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(S3Error::new(
            400,
            "AuthorizationHeaderMalformed",
            "the credential scope is malformed",
        ));
    };
    if *service != "s3" || !fields.date.starts_with(day) {
        return Err(S3Error::new(
            400,
            "AuthorizationHeaderMalformed",
            "the credential scope does not match the request",
        ));
    }
    let secret = secret_of(access_key_id).ok_or_else(|| {
        S3Error::new(
            403,
            "InvalidAccessKeyId",
            "The access key ID you provided does not exist in our records",
        )
    })?;

    let declared = if presigned {
        "UNSIGNED-PAYLOAD".to_owned()
    } else {
        header_text(request.headers, "x-amz-content-sha256")
            .unwrap_or("UNSIGNED-PAYLOAD")
            .to_owned()
    };
    let payload = match declared.as_str() {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        hash if hash.starts_with("STREAMING-") => {
            return Err(S3Error::new(
                501,
                "NotImplemented",
                "chunk-signed streaming uploads are not supported: send UNSIGNED-PAYLOAD or the body's SHA-256",
            ));
        }
        hash => Payload::Sha256(
            hex::decode(hash)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| S3Error::new(400, "InvalidArgument", "x-amz-content-sha256 is not a SHA-256"))?,
        ),
    };

    let canonical = canonical_request(request, &query, &fields.signed_headers, &declared)?;
    let scope_text = format!("{day}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope_text}\n{}",
        fields.date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    for part in [region.as_bytes(), b"s3", b"aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hmac(&key, to_sign.as_bytes());
    let given = hex::decode(&fields.signature).unwrap_or_default();
    if !constant_time_eq(&expected, &given) {
        return Err(S3Error::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        ));
    }
    Ok(Signed {
        access_key_id: (*access_key_id).to_owned(),
        payload,
    })
}

/// The parts of a signature, from the header or the query.
struct Fields {
    credential: String,
    signed_headers: Vec<String>,
    signature: String,
    date: String,
}

impl Fields {
    fn from_header(header: &str, headers: &axum::http::HeaderMap) -> Result<Self, S3Error> {
        let malformed = || {
            S3Error::new(
                400,
                "AuthorizationHeaderMalformed",
                "the Authorization header is malformed",
            )
        };
        let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
            S3Error::new(
                400,
                "InvalidArgument",
                "only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported",
            )
        })?;
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(malformed)?;
            match k {
                "Credential" => credential = Some(v.to_owned()),
                "SignedHeaders" => signed = Some(v.split(';').map(str::to_owned).collect()),
                "Signature" => signature = Some(v.to_owned()),
                _ => {}
            }
        }
        let date = header_text(headers, "x-amz-date")
            .ok_or_else(|| S3Error::new(403, "AccessDenied", "the request has no X-Amz-Date header"))?
            .to_owned();
        Ok(Self {
            credential: credential.ok_or_else(malformed)?,
            signed_headers: signed.ok_or_else(malformed)?,
            signature: signature.ok_or_else(malformed)?,
            date,
        })
    }

    fn from_query(query: &[(String, String)]) -> Result<Self, S3Error> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    S3Error::new(
                        400,
                        "AuthorizationQueryParametersError",
                        &format!("the presigned URL has no {name}"),
                    )
                })
        };
        if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
            return Err(S3Error::new(
                400,
                "InvalidArgument",
                "only AWS4-HMAC-SHA256 is supported",
            ));
        }
        Ok(Self {
            credential: get("X-Amz-Credential")?,
            signed_headers: get("X-Amz-SignedHeaders")?.split(';').map(str::to_owned).collect(),
            signature: get("X-Amz-Signature")?,
            date: get("X-Amz-Date")?,
        })
    }
}

/// The canonical request of SigV4: method, URI, query, headers, signed header names, payload.
fn canonical_request(
    request: &Request<'_>,
    query: &[(String, String)],
    signed_headers: &[String],
    payload: &str,
) -> Result<String, S3Error> {
    let path = percent_encoding::percent_decode_str(request.path).collect::<Vec<u8>>();
    let uri = uri_encode(&path, false);
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k.as_bytes(), true), uri_encode(v.as_bytes(), true)))
        .collect();
    pairs.sort();
    let query_text = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers_text = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(S3Error::new(
                400,
                "AccessDenied",
                &format!("signed header {name} is missing"),
            ));
        }
        headers_text.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{uri}\n{query_text}\n{headers_text}\n{}\n{payload}",
        request.method,
        signed_headers.join(";")
    ))
}

/// A query string's pairs, decoded (`+` is a literal plus in S3's signing, not a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// SigV4's URI encoding: unreserved characters kept, everything else `%XX`; `/` kept in paths.
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn header_text<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20260101T000000Z` as Unix seconds.
fn parse_amz_date(text: &str) -> Option<i64> {
    if text.len() != 16 || !text.ends_with('Z') || text.as_bytes()[8] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (GET Object with a range, from the S3 SigV4 documentation):
    /// key AKIAIOSFODNN7EXAMPLE, the documented secret, 20130524T000000Z.
    #[test]
    fn the_documented_example_verifies_and_every_change_is_refused() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        headers.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
                .parse()
                .unwrap(),
        );
        let at = parse_amz_date("20130524T000000Z").unwrap();
        let secrets = |id: &str| (id == "AKIAIOSFODNN7EXAMPLE").then(|| secret.to_owned());
        let request = Request {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
        };
        let signed = verify(&request, secrets, at).unwrap();
        assert_eq!(signed.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(matches!(signed.payload, Payload::Sha256(_)));

        // Another path, method, header value, key, or a time 16 minutes off: each refused.
        let other_path = Request {
            path: "/test.txt2",
            ..request
        };
        assert_eq!(
            verify(&other_path, secrets, at).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let other_method = Request {
            method: "PUT",
            ..request
        };
        assert_eq!(
            verify(&other_method, secrets, at).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let mut ranged = headers.clone();
        ranged.insert("range", "bytes=0-10".parse().unwrap());
        let other_range = Request {
            headers: &ranged,
            ..request
        };
        assert_eq!(
            verify(&other_range, secrets, at).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(verify(&request, |_| None, at).unwrap_err().code, "InvalidAccessKeyId");
        assert_eq!(
            verify(&request, |_| Some("another secret".into()), at)
                .unwrap_err()
                .code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            verify(&request, secrets, at + 16 * 60).unwrap_err().code,
            "RequestTimeTooSkewed"
        );
    }

    #[test]
    fn canonical_encoding_follows_sigv4() {
        assert_eq!(uri_encode(b"a b/c~d+e", false), "a%20b/c~d%2Be");
        assert_eq!(uri_encode(b"a/b", true), "a%2Fb");
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20260101T000000Z"), Some(1_767_225_600));
        assert_eq!(parse_amz_date("2026-01-01"), None);
        let q = parse_query("list-type=2&prefix=a%2Fb&delimiter=%2F&empty");
        assert_eq!(q[1], ("prefix".into(), "a/b".into()));
        assert_eq!(q[3], ("empty".into(), String::new()));
    }
}
