//! S3's XML: the answers the gateway writes, and the two request bodies it reads (DeleteObjects'
//! `<Delete>` and CompleteMultipartUpload's part list). Both request bodies are flat lists of
//! known elements, so a small scanner reads them; anything else in them is ignored as S3 does.

use std::fmt::Write as _;

/// The S3 namespace every answer's root names.
const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Text escaped for XML content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An answer's document, element by element.
#[derive(Debug)]
pub struct Doc {
    text: String,
    open: Vec<&'static str>,
}

impl Doc {
    /// A document whose root is `root` in the S3 namespace.
    pub fn new(root: &'static str) -> Self {
        Self::with_root(root, &format!(" xmlns=\"{NAMESPACE}\""))
    }

    /// A document with a root outside any namespace (S3's `<Error>`).
    pub fn bare(root: &'static str) -> Self {
        Self::with_root(root, "")
    }

    fn with_root(root: &'static str, attributes: &str) -> Self {
        let mut text = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(text, "<{root}{attributes}>");
        Self { text, open: vec![root] }
    }

    /// `<name>value</name>`.
    pub fn leaf(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.text, "<{name}>{}</{name}>", escape(&value.to_string()));
        self
    }

    /// Open `<name>`; [`Doc::end`] closes it.
    pub fn start(&mut self, name: &'static str) -> &mut Self {
        let _ = write!(self.text, "<{name}>");
        self.open.push(name);
        self
    }

    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            let _ = write!(self.text, "</{name}>");
        }
        self
    }

    /// The document, every element closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.text
    }
}

/// The text of every `<name>…</name>` inside each `<within>…</within>` of `body`, in order.
fn elements<'a>(body: &'a str, within: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{within}>"), format!("</{within}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

fn field(element: &str, name: &str) -> Option<String> {
    elements(element, name).first().map(|t| unescape(t.trim()))
}

/// DeleteObjects' request: the keys, and whether the answer lists only failures (`<Quiet>`).
pub fn parse_delete(body: &str) -> (Vec<String>, bool) {
    let keys = elements(body, "Object")
        .into_iter()
        .filter_map(|o| field(o, "Key"))
        .collect();
    let quiet = field(body, "Quiet").is_some_and(|q| q.eq_ignore_ascii_case("true"));
    (keys, quiet)
}

/// CompleteMultipartUpload's request: (part number, ETag) of each part, in the order given.
pub fn parse_complete(body: &str) -> Option<Vec<(u32, String)>> {
    elements(body, "Part")
        .into_iter()
        .map(|p| {
            let number = field(p, "PartNumber")?.parse().ok()?;
            let etag = field(p, "ETag")?.trim_matches('"').to_owned();
            Some((number, etag))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_escape_and_requests_parse() {
        let mut doc = Doc::new("ListBucketResult");
        doc.leaf("Name", "b").start("Contents").leaf("Key", "a<&>\"'\u{1}b");
        let text = doc.finish();
        assert!(text.ends_with(
            "<Name>b</Name><Contents><Key>a&lt;&amp;&gt;&quot;&apos;&#x1;b</Key></Contents></ListBucketResult>"
        ));
        let (keys, quiet) = parse_delete(
            "<Delete xmlns=\"x\"><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object><Object><Key>c/d</Key><VersionId>1</VersionId></Object></Delete>",
        );
        assert_eq!(keys, ["a & b", "c/d"]);
        assert!(quiet);
        let parts = parse_complete(
            "<CompleteMultipartUpload><Part><ETag>\"abc\"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>&quot;def&quot;</ETag></Part></CompleteMultipartUpload>",
        )
        .unwrap();
        assert_eq!(parts, [(1, "abc".to_owned()), (2, "def".to_owned())]);
        assert_eq!(
            parse_complete("<Part><PartNumber>x</PartNumber><ETag>a</ETag></Part>"),
            None
        );
    }
}
