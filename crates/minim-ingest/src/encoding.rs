//! `Content-Encoding`: parsing the header and capped, streaming gzip decompression.

use std::borrow::Cow;
use std::io::{ErrorKind, Read};

use crate::DecodeError;

/// How the request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentEncoding {
    #[default]
    Identity,
    Gzip,
}

impl ContentEncoding {
    /// From the `Content-Encoding` header value (`None` when absent). Case and
    /// surrounding whitespace are ignored; `gzip`/`x-gzip` are gzip, `identity` or an
    /// empty value is no compression, anything else (including stacked encodings such
    /// as `gzip, br`) is [`DecodeError::UnsupportedEncoding`].
    pub fn from_header(value: Option<&str>) -> Result<Self, DecodeError> {
        let Some(value) = value else {
            return Ok(Self::Identity);
        };
        let v = value.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Ok(Self::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Ok(Self::Gzip)
        } else {
            Err(DecodeError::UnsupportedEncoding(safe_token(v)))
        }
    }
}

/// A short, printable rendering of an unrecognised header value for the error message.
fn safe_token(v: &str) -> String {
    let mut out: String = v
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.,; ".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if v.chars().nth(32).is_some() {
        out.push('…');
    }
    out
}

/// Growth step of the output buffer while inflating.
const CHUNK_BYTES: usize = 64 * 1024;

/// Undoes `encoding`, refusing bodies larger than `max_bytes` before AND after
/// decompression. Identity borrows the input; gzip streams into a buffer whose capacity
/// never exceeds `max_bytes`, so a gzip bomb costs at most `max_bytes` of memory and
/// ends with [`DecodeError::BodyTooLarge`]. Concatenated gzip members are accepted
/// (RFC 1952); truncated input, a bad checksum or trailing garbage is
/// [`DecodeError::BadGzip`].
pub fn decompress(
    body: &[u8],
    encoding: ContentEncoding,
    max_bytes: usize,
) -> Result<Cow<'_, [u8]>, DecodeError> {
    if body.len() > max_bytes {
        return Err(DecodeError::BodyTooLarge { limit: max_bytes });
    }
    match encoding {
        ContentEncoding::Identity => Ok(Cow::Borrowed(body)),
        ContentEncoding::Gzip => gunzip_capped(body, max_bytes).map(Cow::Owned),
    }
}

fn gunzip_capped(body: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let too_large = DecodeError::BodyTooLarge { limit: max_bytes };
    let mut decoder = flate2::read::MultiGzDecoder::new(body);
    // JSON usually compresses 5-15x; start near the expected size, grow by doubling.
    let initial = body.len().saturating_mul(8).max(CHUNK_BYTES).min(max_bytes);
    // Invariant: `buf.len()` is the zero-initialised area, `filled` the inflated bytes.
    let mut buf = vec![0u8; initial];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled >= max_bytes {
                // At the cap: the body is acceptable only if the stream ends right here.
                let mut probe = [0u8; 1];
                return match read_retrying(&mut decoder, &mut probe) {
                    Ok(0) => Ok(buf),
                    Ok(_) => Err(too_large),
                    Err(e) => Err(bad_gzip(&e)),
                };
            }
            let grow = buf.len().max(CHUNK_BYTES).min(max_bytes - buf.len());
            buf.reserve_exact(grow);
            buf.resize(buf.len() + grow, 0);
        }
        match read_retrying(&mut decoder, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(bad_gzip(&e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn bad_gzip(e: &std::io::Error) -> DecodeError {
    let what = match e.kind() {
        ErrorKind::UnexpectedEof => "truncated gzip stream",
        _ => "corrupt gzip stream",
    };
    DecodeError::BadGzip(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn content_encoding_header_values() {
        assert_eq!(
            ContentEncoding::from_header(None),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(
            ContentEncoding::from_header(Some("")),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(
            ContentEncoding::from_header(Some("identity")),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(
            ContentEncoding::from_header(Some(" GZip ")),
            Ok(ContentEncoding::Gzip)
        );
        assert_eq!(
            ContentEncoding::from_header(Some("x-gzip")),
            Ok(ContentEncoding::Gzip)
        );
        for bad in ["br", "deflate", "gzip, br", "zstd"] {
            let err = ContentEncoding::from_header(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "unsupported_encoding", "{bad}");
        }
    }

    #[test]
    fn unsupported_encoding_message_is_short_and_printable() {
        let long = format!("evil\n{}", "x".repeat(1000));
        let DecodeError::UnsupportedEncoding(shown) =
            ContentEncoding::from_header(Some(&long)).unwrap_err()
        else {
            panic!("wrong variant");
        };
        assert!(shown.chars().count() <= 33, "{shown}");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn gzip_round_trip() {
        let data = br#"[{"event":"a","distinct_id":"u"}]"#.repeat(1000);
        let body = gzip(&data);
        let out = decompress(&body, ContentEncoding::Gzip, 1 << 20).unwrap();
        assert_eq!(&*out, &data[..]);
    }

    #[test]
    fn gzip_concatenated_members_are_one_body() {
        let mut body = gzip(b"[1,");
        body.extend(gzip(b"2]"));
        assert_eq!(
            &*decompress(&body, ContentEncoding::Gzip, 100).unwrap(),
            b"[1,2]"
        );
    }

    #[test]
    fn gzip_output_exactly_at_the_limit_is_accepted() {
        let data = vec![b' '; 5000];
        let body = gzip(&data);
        let out = decompress(&body, ContentEncoding::Gzip, 5000).unwrap();
        assert_eq!(out.len(), 5000);
        assert!(
            matches!(&out, Cow::Owned(v) if v.capacity() <= 5000),
            "buffer grew past the cap"
        );
        let err = decompress(&gzip(&data), ContentEncoding::Gzip, 4999).unwrap_err();
        assert_eq!(err, DecodeError::BodyTooLarge { limit: 4999 });
    }

    #[test]
    fn gzip_bomb_is_capped_without_allocating_its_full_size() {
        // 1 GiB of zeros compresses to ~1 MiB; stream it instead of holding it.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        let max = 4 << 20;
        let err = decompress(&bomb, ContentEncoding::Gzip, max).unwrap_err();
        assert_eq!(err, DecodeError::BodyTooLarge { limit: max });
    }

    #[test]
    fn compressed_body_over_the_limit_is_refused_before_inflating() {
        let body = gzip(&[7u8; 100]);
        let err = decompress(&body, ContentEncoding::Gzip, body.len() - 1).unwrap_err();
        assert_eq!(err.code(), "body_too_large");
        assert_eq!(
            decompress(b"12345", ContentEncoding::Identity, 4)
                .unwrap_err()
                .code(),
            "body_too_large"
        );
    }

    #[test]
    fn truncated_gzip_is_malformed_gzip() {
        let body = gzip(&b"[1,2,3,4,5,6,7,8,9]".repeat(50));
        for cut in [1, 5, 10, body.len() / 2, body.len() - 4, body.len() - 1] {
            let err = decompress(&body[..cut], ContentEncoding::Gzip, 1 << 20).unwrap_err();
            assert_eq!(err.code(), "malformed_gzip", "cut at {cut}");
        }
    }

    #[test]
    fn corrupt_or_trailing_garbage_gzip_is_malformed_gzip() {
        let mut body = gzip(b"[1,2,3]");
        let crc_at = body.len() - 8;
        body[crc_at] ^= 0xff;
        assert_eq!(
            decompress(&body, ContentEncoding::Gzip, 100)
                .unwrap_err()
                .code(),
            "malformed_gzip"
        );

        let mut body = gzip(b"[1,2,3]");
        body.extend_from_slice(b"garbage");
        assert_eq!(
            decompress(&body, ContentEncoding::Gzip, 100)
                .unwrap_err()
                .code(),
            "malformed_gzip"
        );

        assert_eq!(
            decompress(b"not gzip at all", ContentEncoding::Gzip, 100)
                .unwrap_err()
                .code(),
            "malformed_gzip"
        );
    }

    #[test]
    fn identity_borrows_the_body() {
        let body = b"[]";
        assert!(matches!(
            decompress(body, ContentEncoding::Identity, 10),
            Ok(Cow::Borrowed(_))
        ));
    }
}
