//! Share links: `https://host/s/<share id>#<file key>`. The key is in the fragment, which no
//! browser sends to a server; the CLI likewise sends the server only the share id.

use disktro_core::FileKey;
use disktro_core::keys::{decode_link_key, encode_link_key};

use crate::ClientError;

/// A parsed share link.
#[derive(Debug)]
pub struct Link {
    /// The server's base URL (`scheme://host[:port]`).
    pub server: String,
    pub share_id: String,
    pub key: FileKey,
}

/// The link for `share_id` of a file whose key is `key`, on the server at `server`.
pub fn format(server: &str, share_id: &str, key: &FileKey) -> String {
    format!("{}/s/{share_id}#{}", server.trim_end_matches('/'), encode_link_key(key))
}

/// Parse a link; anything malformed is one clear usage error.
pub fn parse(link: &str) -> Result<Link, ClientError> {
    let malformed = |why: &str| {
        ClientError::Usage(format!(
            "not a Disktro share link ({why}): expected https://host/s/<id>#<key>"
        ))
    };
    let (url, fragment) = link.trim().split_once('#').ok_or_else(|| malformed("no #key"))?;
    let key = decode_link_key(fragment).map_err(|_| malformed("the key after # is damaged"))?;
    let (server, share_id) = url.rsplit_once("/s/").ok_or_else(|| malformed("no /s/ path"))?;
    if !(server.starts_with("http://") || server.starts_with("https://")) || server.len() <= "https://".len() {
        return Err(malformed("no http(s) server"));
    }
    let valid_id = share_id.len() == 22
        && share_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_id {
        return Err(malformed("the share id is damaged"));
    }
    Ok(Link {
        server: server.to_owned(),
        share_id: share_id.to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_damage_is_refused() {
        let key = FileKey::generate();
        let link = format("https://disktro.example/", "AbCdEfGhIjKlMnOpQrStUv", &key);
        let parsed = parse(&link).unwrap();
        assert_eq!(parsed.server, "https://disktro.example");
        assert_eq!(parsed.share_id, "AbCdEfGhIjKlMnOpQrStUv");
        assert_eq!(parsed.key.as_bytes(), key.as_bytes());
        // Tried: no fragment, a truncated key, a short id, no server, a foreign scheme.
        // Must hold: a usage error each time.
        let (base, frag) = link.split_once('#').unwrap();
        for bad in [
            base.to_owned(),
            format!("{base}#{}", &frag[1..]),
            link.replace("AbCdEfGhIjKlMnOpQrStUv", "AbCdEf"),
            format!("/s/AbCdEfGhIjKlMnOpQrStUv#{frag}"),
            link.replace("https://", "ftp://"),
        ] {
            assert!(matches!(parse(&bad), Err(ClientError::Usage(_))), "{bad}");
        }
    }
}
