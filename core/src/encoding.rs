//! Canonical binary encoding helpers shared by every format in the crate.
//!
//! Integers are fixed-width big-endian, so each value has exactly one encoding; lengths are checked
//! against explicit limits before anything is allocated; a decoder must consume its input exactly
//! ([`Reader::finish`]), so trailing bytes are rejected.

use crate::Error;

/// A cursor over untrusted bytes. Every read is bounds-checked and fails with
/// [`Error::Truncated`] naming what was being read.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(Error::Truncated(self.what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Magic bytes followed by the version byte, both checked.
    pub(crate) fn header(&mut self, magic: &[u8; 4]) -> Result<(), Error> {
        self.versioned_header(magic, &[crate::FORMAT_VERSION]).map(drop)
    }

    /// Magic bytes followed by one of the `accepted` versions, which is returned (for formats
    /// whose older versions are still read).
    pub(crate) fn versioned_header(&mut self, magic: &[u8; 4], accepted: &[u8]) -> Result<u8, Error> {
        if self.bytes(4)? != magic {
            return Err(Error::BadMagic(self.what));
        }
        let version = self.u8()?;
        if !accepted.contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: self.what,
                found: version,
            });
        }
        Ok(version)
    }

    /// A u16-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn short_bytes(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(Error::too_large(self.what, len, max));
        }
        self.bytes(len)
    }

    /// Check that exactly `len` bytes are left (`None`: a length that overflowed), before a
    /// decoder allocates for a count it read: fewer is `Truncated`, more is `TrailingBytes`.
    pub(crate) fn expect_remaining(&self, len: Option<usize>) -> Result<(), Error> {
        match len {
            Some(n) if n == self.rest.len() => Ok(()),
            Some(n) if n < self.rest.len() => Err(Error::TrailingBytes(self.what)),
            _ => Err(Error::Truncated(self.what)),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes(self.what))
        }
    }
}

/// Append-only writer matching [`Reader`].
pub(crate) trait Writer {
    fn put_header(&mut self, magic: &[u8; 4]) {
        self.put_versioned_header(magic, crate::FORMAT_VERSION);
    }
    fn put_versioned_header(&mut self, magic: &[u8; 4], version: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    /// A u16-length-prefixed byte string; callers have already bounded its length.
    fn put_short_bytes(&mut self, bytes: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_versioned_header(&mut self, magic: &[u8; 4], version: u8) {
        self.extend_from_slice(magic);
        self.push(version);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_short_bytes(&mut self, bytes: &[u8]) {
        let len = u16::try_from(bytes.len()).expect("callers bound short byte strings to u16");
        self.put_u16(len);
        self.extend_from_slice(bytes);
    }
}
