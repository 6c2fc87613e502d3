//! Squeeze: compress a chunk with zstd only where that clearly pays.
//!
//! Three gates, cheapest first:
//! 1. **Format**: the file's first bytes are matched against the magic numbers of formats that are
//!    already compressed ([`detect_compressed_format`]); such a file is stored raw throughout.
//! 2. **Entropy**: an order-0 entropy estimate over a few samples of the chunk; near 8 bits/byte
//!    the chunk is stored raw without trying zstd. The estimate is integer arithmetic, so the
//!    browser and native builds make the same decision and produce the same bytes.
//! 3. **Result**: zstd output is kept only if it is clearly smaller than the input.
//!
//! The codec chosen is recorded per chunk in the manifest and bound into the seal's associated
//! data, so it cannot be flipped without detection.

use crate::Error;

/// How a chunk's plaintext is encoded before sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is.
    Raw = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Codec {
    /// The byte recorded in manifests and associated data.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Strict inverse of [`Codec::to_byte`].
    pub fn from_byte(b: u8) -> Result<Self, Error> {
        match b {
            0 => Ok(Self::Raw),
            1 => Ok(Self::Zstd),
            _ => Err(Error::NonCanonical("unknown chunk codec")),
        }
    }
}

/// zstd level: the lowest that compresses text at least as well as gzip -6 (see BENCHMARKS.md).
pub const ZSTD_LEVEL: i32 = 3;

/// Already-compressed formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressedFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    IsoMedia,
    Matroska,
    Mp3,
    Ogg,
    Flac,
    Zip,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    SevenZip,
    Rar,
    Lz4,
    Woff2,
}

/// Recognise already-compressed formats from a file's first bytes (at least 12 are needed for
/// every format to be recognised; fewer simply match less).
pub fn detect_compressed_format(head: &[u8]) -> Option<CompressedFormat> {
    use CompressedFormat::*;
    let starts = |magic: &[u8]| head.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some(Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Gif)
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        Some(Webp)
    } else if at(4, b"ftyp") || at(4, b"moov") || at(4, b"mdat") || at(4, b"wide") {
        // MP4, MOV, M4A, HEIC, AVIF, 3GP: ISO base media files.
        Some(IsoMedia)
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(Matroska)
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        // ID3 tag, or an MPEG audio / ADTS frame sync.
        Some(Mp3)
    } else if starts(b"OggS") {
        Some(Ogg)
    } else if starts(b"fLaC") {
        Some(Flac)
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        // ZIP, and everything built on it: DOCX, XLSX, PPTX, ODF, JAR, APK, EPUB.
        Some(Zip)
    } else if starts(&[0x1F, 0x8B]) {
        Some(Gzip)
    } else if starts(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Some(Zstd)
    } else if starts(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Xz)
    } else if starts(b"BZh") {
        Some(Bzip2)
    } else if starts(&[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C]) {
        Some(SevenZip)
    } else if starts(b"Rar!\x1A\x07") {
        Some(Rar)
    } else if starts(&[0x04, 0x22, 0x4D, 0x18]) {
        Some(Lz4)
    } else if starts(b"wOF2") {
        Some(Woff2)
    } else {
        None
    }
}

/// Size of each sample window for the entropy estimate.
const SAMPLE_WINDOW: usize = 4096;
/// Number of windows spread over a chunk.
const SAMPLE_WINDOWS: usize = 4;
/// Chunks whose sampled entropy reaches this many hundredths of a bit per byte are stored raw
/// without trying zstd. Random data samples at about 7.99; text at 4 to 5.5.
const SKIP_ENTROPY_CENTIBITS: u64 = 780;

/// Order-0 entropy of the sampled bytes, in bits per byte as a 16.16 fixed-point number.
///
/// Integer-only on purpose: floating-point `log2` may differ in the last bit between platforms,
/// and this decision changes the stored bytes, which must be identical in wasm32 and natively.
pub fn sampled_entropy_q16(chunk: &[u8]) -> u64 {
    let mut histogram = [0u32; 256];
    let mut total: u32 = 0;
    let mut count = |window: &[u8]| {
        for &b in window {
            histogram[usize::from(b)] += 1;
        }
        total += u32::try_from(window.len()).expect("windows are at most SAMPLE_WINDOW bytes");
    };
    if chunk.len() <= SAMPLE_WINDOW * SAMPLE_WINDOWS {
        count(chunk);
    } else {
        let stride = (chunk.len() - SAMPLE_WINDOW) / (SAMPLE_WINDOWS - 1);
        for i in 0..SAMPLE_WINDOWS {
            count(&chunk[i * stride..i * stride + SAMPLE_WINDOW]);
        }
    }
    if total == 0 {
        return 0;
    }
    // H = log2(N) - (1/N) * sum(c * log2(c))
    let n = u64::from(total);
    let weighted: u64 = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| u64::from(c) * u64::from(log2_q16(c)))
        .sum();
    (n * u64::from(log2_q16(total)) - weighted) / n
}

/// log2(x) for x >= 1 as 16.16 fixed point, by repeated squaring of the normalised mantissa.
fn log2_q16(x: u32) -> u32 {
    debug_assert!(x >= 1);
    let int = 31 - x.leading_zeros();
    // Mantissa in [1, 2) as a Q31 number in [2^31, 2^32).
    let mut m = u64::from(x) << (31 - int);
    let mut frac = 0u32;
    for bit in (0..16).rev() {
        m = (m * m) >> 31;
        if m >= 1 << 32 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

/// Per-file squeeze state: remembers whether the file announced itself as already compressed, and
/// keeps one zstd context for all its chunks.
pub struct Squeezer {
    file_is_compressed: Option<bool>,
    compressor: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for Squeezer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Squeezer")
            .field("file_is_compressed", &self.file_is_compressed)
            .finish()
    }
}

impl Default for Squeezer {
    fn default() -> Self {
        Self::new()
    }
}

impl Squeezer {
    pub fn new() -> Self {
        let compressor =
            zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd accepts its documented compression levels");
        Self {
            file_is_compressed: None,
            compressor,
        }
    }

    /// Another squeezer that makes the same choices as this one for the rest of the file, with
    /// its own zstd context: chunks can then be squeezed on several threads at once. `None` until
    /// this one has seen the file's first chunk (which decides whether the file is compressed).
    pub fn sibling(&self) -> Option<Self> {
        let file_is_compressed = self.file_is_compressed?;
        Some(Self {
            file_is_compressed: Some(file_is_compressed),
            ..Self::new()
        })
    }

    /// Decide the codec for the next chunk of the file and, for zstd, return the compressed bytes.
    /// The first call must be given the file's first chunk (its magic bytes are checked there).
    pub fn squeeze(&mut self, chunk: &[u8]) -> (Codec, Option<Vec<u8>>) {
        let file_is_compressed = *self
            .file_is_compressed
            .get_or_insert_with(|| detect_compressed_format(chunk).is_some());
        if file_is_compressed || chunk.is_empty() {
            return (Codec::Raw, None);
        }
        if sampled_entropy_q16(chunk) * 100 >= SKIP_ENTROPY_CENTIBITS << 16 {
            return (Codec::Raw, None);
        }
        // "Clearly smaller": at least 1/32 of the chunk and 64 bytes saved. Capping the output
        // buffer there lets zstd give up as soon as it cannot get under it.
        let saving = (chunk.len() / 32).max(64);
        let Some(limit) = chunk.len().checked_sub(saving) else {
            return (Codec::Raw, None);
        };
        let mut out = Vec::with_capacity(limit);
        match self.compressor.compress_to_buffer(chunk, &mut out) {
            Ok(_) if out.len() <= limit => (Codec::Zstd, Some(out)),
            _ => (Codec::Raw, None),
        }
    }
}

/// Undo [`Squeezer::squeeze`] for a zstd chunk whose plaintext is exactly `plain_len` bytes.
/// Never allocates more than `plain_len`, so a hostile frame cannot balloon memory.
pub fn unsqueeze_zstd(compressed: &[u8], plain_len: usize, chunk: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(plain_len);
    let mut decompressor = zstd::bulk::Decompressor::new().map_err(|_| Error::CorruptChunk(chunk))?;
    match decompressor.decompress_to_buffer(compressed, &mut out) {
        Ok(n) if n == plain_len => Ok(out),
        _ => Err(Error::CorruptChunk(chunk)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_is_exact_on_powers_of_two_and_close_elsewhere() {
        for p in 0..31 {
            assert_eq!(log2_q16(1 << p), p << 16);
        }
        for x in [3u32, 5, 10, 1000, 4095, 16383] {
            let exact = f64::from(x).log2();
            let got = f64::from(log2_q16(x)) / 65536.0;
            assert!((exact - got).abs() < 1e-3, "log2({x}): {got} vs {exact}");
        }
    }

    #[test]
    fn entropy_separates_text_from_noise() {
        let text = b"the quick brown fox jumps over the lazy dog. ".repeat(500);
        let noise: Vec<u8> = (0..20_000u32)
            .map(|i| blake3::hash(&i.to_le_bytes()).as_bytes()[0])
            .collect();
        let bits = |e: u64| e as f64 / 65536.0;
        assert!(bits(sampled_entropy_q16(&text)) < 5.0);
        assert!(bits(sampled_entropy_q16(&noise)) > 7.9);
        assert_eq!(sampled_entropy_q16(&[]), 0);
        assert_eq!(sampled_entropy_q16(&[7; 100]), 0);
    }

    #[test]
    fn every_listed_format_is_detected() {
        let cases: &[(&[u8], CompressedFormat)] = &[
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", CompressedFormat::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", CompressedFormat::Png),
            (b"GIF89a\x01\0", CompressedFormat::Gif),
            (b"RIFF\x24\0\0\0WEBPVP8 ", CompressedFormat::Webp),
            (b"\0\0\0\x20ftypisom\0\0\x02\0", CompressedFormat::IsoMedia),
            (b"\0\0\0\x14ftypqt  ", CompressedFormat::IsoMedia),
            (b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81", CompressedFormat::Matroska),
            (b"ID3\x04\0\0\0\0", CompressedFormat::Mp3),
            (b"\xFF\xFB\x90\x64", CompressedFormat::Mp3),
            (b"OggS\0\x02", CompressedFormat::Ogg),
            (b"fLaC\0\0\0\x22", CompressedFormat::Flac),
            (b"PK\x03\x04\x14\0\x06\0", CompressedFormat::Zip),
            (b"\x1F\x8B\x08\0", CompressedFormat::Gzip),
            (b"\x28\xB5\x2F\xFD\x04", CompressedFormat::Zstd),
            (b"\xFD7zXZ\0\0\x04", CompressedFormat::Xz),
            (b"BZh91AY&SY", CompressedFormat::Bzip2),
            (b"7z\xBC\xAF\x27\x1C\0\x04", CompressedFormat::SevenZip),
            (b"Rar!\x1A\x07\x01\0", CompressedFormat::Rar),
            (b"\x04\x22\x4D\x18\x64", CompressedFormat::Lz4),
            (b"wOF2\0\x01\0\0", CompressedFormat::Woff2),
        ];
        for (head, want) in cases {
            assert_eq!(detect_compressed_format(head), Some(*want), "{head:?}");
        }
        for plain in [&b"hello world"[..], b"", b"%PDF-1.7", b"<html>", b"{\"a\":1}"] {
            assert_eq!(detect_compressed_format(plain), None, "{plain:?}");
        }
    }

    #[test]
    fn compressible_chunk_is_squeezed_and_restored() {
        let text = b"lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(2000);
        let mut s = Squeezer::new();
        let (codec, out) = s.squeeze(&text);
        assert_eq!(codec, Codec::Zstd);
        let out = out.unwrap();
        assert!(out.len() < text.len() / 10);
        assert_eq!(unsqueeze_zstd(&out, text.len(), 0).unwrap(), text);
        // Decompression is bounded by the recorded length, in both directions.
        assert_eq!(unsqueeze_zstd(&out, text.len() - 1, 0), Err(Error::CorruptChunk(0)));
        assert_eq!(unsqueeze_zstd(&out, text.len() + 1, 0), Err(Error::CorruptChunk(0)));
        assert_eq!(unsqueeze_zstd(b"not zstd", 8, 3), Err(Error::CorruptChunk(3)));
    }

    #[test]
    fn compressed_files_stay_raw_even_when_later_chunks_look_compressible() {
        let mut s = Squeezer::new();
        let mut first = b"\x89PNG\r\n\x1a\n".to_vec();
        first.extend(std::iter::repeat_n(0u8, 10_000));
        assert_eq!(s.squeeze(&first).0, Codec::Raw);
        assert_eq!(s.squeeze(&[0u8; 10_000]).0, Codec::Raw);
    }

    #[test]
    fn incompressible_and_tiny_chunks_stay_raw() {
        let noise: Vec<u8> = (0..50_000u32)
            .flat_map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect();
        assert_eq!(Squeezer::new().squeeze(&noise).0, Codec::Raw);
        assert_eq!(Squeezer::new().squeeze(b"").0, Codec::Raw);
        // 40 bytes of zeros compress, but not by 64 bytes: not clearly smaller.
        assert_eq!(Squeezer::new().squeeze(&[0u8; 40]).0, Codec::Raw);
    }
}
