//! JSON Web Tokens (compact JWS, and JWE).
//!
//! Rule: at the start of a word, `eyJ` (the base64url of `{"`) begins a header segment
//! of at least 16 base64url characters, then `.`, a payload segment of at least 2
//! characters, `.`, and a signature segment that may be empty (unsecured `alg: none`
//! tokens); the two further segments of a JWE are included when present. The header
//! must decode (base64url without padding) to a JSON object: `{"` first and, ignoring
//! trailing whitespace, `}` last. A `.` that ends a sentence is not part of the span.

use super::bytes::{at, is_b64url, run};

const MIN_HEADER: usize = 16;
const MIN_PAYLOAD: usize = 2;

/// A JWT starting at `i`: its end, or where scanning may resume (the end of the header
/// run looked at).
pub(super) fn at_pos(b: &[u8], i: usize) -> Result<usize, usize> {
    let h = run(b, i, is_b64url);
    let header_end = i + h;
    if h < MIN_HEADER || at(b, header_end) != b'.' {
        return Err(header_end);
    }
    let p1 = header_end + 1;
    let pl = run(b, p1, is_b64url);
    if pl < MIN_PAYLOAD || at(b, p1 + pl) != b'.' {
        return Err(header_end);
    }
    let p2 = p1 + pl + 1;
    let mut end = p2 + run(b, p2, is_b64url);
    // JWE: five segments.
    for _ in 0..2 {
        if at(b, end) == b'.' && is_b64url(at(b, end + 1)) {
            end += 1 + run(b, end + 1, is_b64url);
        } else {
            break;
        }
    }
    if !decodes_to_object(&b[i..header_end]) {
        return Err(header_end);
    }
    Ok(end)
}

/// The value of a base64url character, or `None`.
fn b64url_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Whether the unpadded base64url `seg` decodes to `{"…}` (trailing whitespace allowed).
fn decodes_to_object(seg: &[u8]) -> bool {
    if seg.len() % 4 == 1 {
        return false;
    }
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut n = 0usize;
    let mut first = [0u8; 2];
    let mut last = 0u8;
    for &c in seg {
        let Some(v) = b64url_value(c) else {
            return false;
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if let Some(slot) = first.get_mut(n) {
                *slot = byte;
            }
            n += 1;
            if !byte.is_ascii_whitespace() {
                last = byte;
            }
        }
    }
    n >= 2 && first == *b"{\"" && last == b'}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, Detectors};

    /// jwt.io's example token.
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    fn jwts(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Jwt)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    #[test]
    fn finds_jwts() {
        assert_eq!(jwts(JWT), [JWT]);
        assert_eq!(jwts(&format!("token={JWT}&x=1")), [JWT]);
        assert_eq!(jwts(&format!("It was {JWT}.")), [JWT]);
        assert_eq!(jwts(&format!("Bearer {JWT}")), [JWT]);
        // Unsecured: empty signature.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        assert_eq!(jwts(none), [none]);
        // JWE: five segments.
        let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
        assert_eq!(jwts(jwe), [jwe]);
    }

    #[test]
    fn rejects_lookalikes() {
        for s in [
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJhbGciOiJIUzI1NiJ9..sig",
            "eyJ.eyJzdWIiOiIxIn0.sig",
            // Header decodes to `{"alg":"HS256"` without the closing brace.
            "eyJhbGciOiJIUzI1NiIs.eyJzdWIiOiIxIn0.sig",
            "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "keyJhbGciOiJIUzI1NiJ9.e30.x",
        ] {
            assert!(jwts(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn header_decoding() {
        assert!(decodes_to_object(b"eyJhbGciOiJIUzI1NiJ9"));
        assert!(!decodes_to_object(b"eyJhbGciOiJIUzI1NiJ"));
        assert!(!decodes_to_object(b"e30"));
        assert!(!decodes_to_object(b"eyJ*"));
        assert!(!decodes_to_object(b""));
    }
}
