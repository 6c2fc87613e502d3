//! Recovery keys: a second way into an account, for the day its password is forgotten.
//!
//! A recovery key is 32 random bytes made on the client at sign-up (or later, from the account
//! page) and shown to the user once, as text to write down or a file to keep. Like a password it
//! yields two keys by HKDF ([`crate::keys`]'s labels "recovery auth key" and "recovery master
//! key"):
//!
//! - the **recovery auth key**, which the server keeps only a hash of and which proves the holder
//!   may set a new password;
//! - the **recovery master key**, never sent, under which the client wraps the identity key a
//!   second time (the same wrapping as under the master key, bound to the account's public key).
//!
//! Recovering is then: prove the recovery auth key, get the recovery-wrapped identity back, open
//! it, and re-wrap it under a new password's master key. The identity key wraps every file key,
//! so files, names and shares all survive; the server learns nothing it could not learn before.
//!
//! The text form is Crockford base32 of the 32 bytes and a 3-byte BLAKE3 checksum (so a mistyped
//! key is refused as mistyped rather than as wrong), in 14 groups of 4 after `DKRK`. Reading is
//! forgiving: any case, any spaces or dashes, `I`/`L` read as `1` and `O` as `0`.

use zeroize::Zeroizing;

use crate::Error;
use crate::keys::{AuthKey, MasterKey, derive_key};

/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PREFIX: &str = "DKRK";
const CHECKSUM_LEN: usize = 3;
/// 35 bytes are 280 bits: 56 base32 digits exactly.
const DIGITS: usize = 56;

/// An account's recovery key.
#[derive(Clone, PartialEq, Eq, zeroize::ZeroizeOnDrop)]
pub struct RecoveryKey([u8; 32]);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

impl RecoveryKey {
    pub fn generate() -> Self {
        Self(crate::random_bytes())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// What proves this key to the server.
    pub fn auth_key(&self) -> AuthKey {
        AuthKey::from_bytes(derive_key(&self.0, "recovery auth key", &[]))
    }

    /// What the identity key is wrapped under a second time.
    pub fn master_key(&self) -> MasterKey {
        MasterKey::from_bytes(derive_key(&self.0, "recovery master key", &[]))
    }

    /// `DKRK-XXXX-…`: 14 groups of 4 base32 digits.
    pub fn to_text(&self) -> String {
        let mut bytes = Zeroizing::new([0u8; 32 + CHECKSUM_LEN]);
        bytes[..32].copy_from_slice(&self.0);
        bytes[32..].copy_from_slice(&checksum(&self.0));
        let mut digits = Zeroizing::new(String::with_capacity(DIGITS));
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in bytes.iter() {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                digits.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            }
            acc &= (1 << bits) - 1;
        }
        let mut out = String::from(PREFIX);
        for group in digits.as_bytes().chunks(4) {
            out.push('-');
            out.push_str(std::str::from_utf8(group).expect("base32 digits are ASCII"));
        }
        out
    }

    /// Read the text form back; a typo is [`Error::BadRecoveryKey`].
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let mut cleaned: Zeroizing<Vec<u8>> = Zeroizing::new(
            text.bytes()
                .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\r' | b'\n'))
                .map(|b| b.to_ascii_uppercase())
                .collect(),
        );
        if cleaned.starts_with(PREFIX.as_bytes()) {
            cleaned.drain(..PREFIX.len());
        }
        if cleaned.len() != DIGITS {
            return Err(Error::BadRecoveryKey("it should have 56 letters and digits after DKRK"));
        }
        let mut bytes = Zeroizing::new([0u8; 32 + CHECKSUM_LEN]);
        let (mut acc, mut bits, mut at) = (0u32, 0u32, 0usize);
        for &c in cleaned.iter() {
            let c = match c {
                b'I' | b'L' => b'1',
                b'O' => b'0',
                other => other,
            };
            let value = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or(Error::BadRecoveryKey("it has a character that is not in recovery keys"))?;
            acc = (acc << 5) | u32::try_from(value).expect("an alphabet index is below 32");
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes[at] = u8::try_from(acc >> bits).expect("the bits above were cleared");
                at += 1;
                acc &= (1 << bits) - 1;
            }
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[..32]);
        if bytes[32..] != checksum(&key) {
            return Err(Error::BadRecoveryKey("it has a typo (its check digits do not match)"));
        }
        Ok(Self(key))
    }
}

fn checksum(key: &[u8; 32]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::derive_key("disktro v1 recovery key checksum", key);
    [hash[0], hash[1], hash[2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    #[test]
    fn the_text_form_reads_back_forgivingly_and_refuses_typos() {
        let key = RecoveryKey::generate();
        let text = key.to_text();
        assert_eq!(text.len(), 4 + 14 * 5);
        assert!(text.starts_with("DKRK-"));
        assert_eq!(RecoveryKey::from_text(&text).unwrap(), key);
        // Lower case, spaces for dashes, no prefix, O for 0 and l for 1: the same key.
        let sloppy = text[5..]
            .replace('-', " ")
            .to_lowercase()
            .replace('0', "o")
            .replace('1', "l");
        assert_eq!(RecoveryKey::from_text(&sloppy).unwrap(), key);
        // Tried: one digit changed, one dropped, a foreign character. Must hold: refused.
        let last = text.chars().last().unwrap();
        let changed = format!("{}{}", &text[..text.len() - 1], if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(
            RecoveryKey::from_text(&changed),
            Err(Error::BadRecoveryKey(_))
        ));
        assert!(RecoveryKey::from_text(&text[..text.len() - 1]).is_err());
        assert!(RecoveryKey::from_text(&text.replace('-', "U")).is_err());
    }

    #[test]
    fn it_opens_the_identity_it_wrapped_and_nothing_else() {
        let identity = Keypair::generate();
        let account = identity.public();
        let key = RecoveryKey::generate();
        let wrapped = key.master_key().wrap_identity(account.as_bytes(), &identity).unwrap();
        let opened = key.master_key().unwrap_identity(account.as_bytes(), &wrapped).unwrap();
        assert_eq!(opened.public(), account);
        assert!(
            RecoveryKey::generate()
                .master_key()
                .unwrap_identity(account.as_bytes(), &wrapped)
                .is_err()
        );
        assert_ne!(key.auth_key().as_bytes(), key.master_key().as_bytes());
    }
}
