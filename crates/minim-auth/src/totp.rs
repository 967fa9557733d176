//! Time-based one-time passwords (RFC 6238 with HMAC-SHA1, 6 digits, 30-second steps;
//! RFC 4226 dynamic truncation): secrets, `otpauth://` enrollment URIs, code
//! generation and verification with ±1 step of clock skew and replay refusal.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Length of a time step in seconds.
pub const STEP_SECS: i64 = 30;
/// Random bytes in a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Fewest bytes [`TotpSecret::from_base32`] accepts (RFC 4226 R6: at least 128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most bytes [`TotpSecret::from_base32`] accepts.
pub const MAX_SECRET_BYTES: usize = 64;
/// Steps either side of the current one that [`verify`] accepts.
pub const SKEW_STEPS: i64 = 1;

const STEP_MS: i64 = STEP_SECS * 1000;

/// A shared TOTP key. The bytes are wiped when it is dropped and never printed by `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh secret of [`SECRET_BYTES`] random bytes.
    pub fn generate() -> Self {
        let mut b = vec![0u8; SECRET_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
        TotpSecret(b)
    }

    /// Wraps existing key bytes (any length; used for stored secrets and test vectors).
    pub fn from_bytes(b: Vec<u8>) -> Self {
        TotpSecret(b)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key in RFC 4648 base32 without padding, as authenticator apps expect.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// Parses base32 typed or pasted loosely: case-insensitive, spaces, dashes and `=`
    /// padding ignored. `None` when it is not base32 or decodes to fewer than
    /// [`MIN_SECRET_BYTES`] or more than [`MAX_SECRET_BYTES`] bytes.
    pub fn from_base32(s: &str) -> Option<Self> {
        if s.len() > MAX_SECRET_BYTES * 2 + 64 {
            return None;
        }
        let mut cleaned: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let decoded = data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes());
        cleaned.zeroize();
        let mut bytes = decoded.ok()?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            bytes.zeroize();
            return None;
        }
        Some(TotpSecret(bytes))
    }
}

/// The `otpauth://totp/...` URI an authenticator app enrolls from (usually shown as a
/// QR code). Issuer and account are percent-encoded; the label is `issuer:account`
/// and the issuer is repeated as a parameter, as Google Authenticator's key-URI format
/// asks. An empty issuer is left out.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let mut uri = String::from("otpauth://totp/");
    if !issuer.is_empty() {
        uri.push_str(&percent_encode(issuer));
        uri.push(':');
    }
    uri.push_str(&percent_encode(account));
    uri.push_str("?secret=");
    uri.push_str(&secret.base32());
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&percent_encode(issuer));
    }
    uri.push_str(&format!(
        "&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    ));
    uri
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The time step a Unix time (seconds) falls in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The 6-digit code (zero-padded) for the step containing `unix_secs`.
pub fn code_at(secret: &TotpSecret, unix_secs: i64) -> String {
    code_at_digits(secret, unix_secs, DIGITS)
}

/// Like [`code_at`] with a chosen number of digits (1..=10); exposed for the RFC 6238
/// test vectors, which use 8.
pub fn code_at_digits(secret: &TotpSecret, unix_secs: i64, digits: u32) -> String {
    code_for_step(secret, step_at(unix_secs), digits)
}

fn code_for_step(secret: &TotpSecret, step: i64, digits: u32) -> String {
    // Times before 1970 are not meaningful for TOTP; they all map to counter 0.
    hotp(secret.as_bytes(), u64::try_from(step).unwrap_or(0), digits)
}

/// RFC 4226 HOTP: HMAC-SHA1 of the big-endian counter, dynamic truncation to 31 bits,
/// reduced to `digits` decimal digits (clamped to 1..=10) with leading zeros.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let digits = digits.clamp(1, 10);
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(key) else {
        // HMAC takes keys of any length; this cannot happen. An empty code never verifies.
        debug_assert!(false, "HMAC refused a key");
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bin = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    let code = u64::from(bin) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// Checks `code` (6 digits; spaces ignored) at `now_ms` against the current step and
/// [`SKEW_STEPS`] either side. Steps at or before `last_used_step` are refused, so a
/// code cannot be used twice and an older code cannot follow a newer one. Returns the
/// step that matched; store it as the new `last_used_step`.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_ms: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    if code.len() > 32 {
        return None;
    }
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now_ms.div_euclid(STEP_MS);
    // Current step first, then the past, then the future; every candidate is computed
    // and compared so timing does not say which one matched.
    let candidates = [current, current - SKEW_STEPS, current + SKEW_STEPS];
    let mut matched = None;
    for step in candidates {
        let expected = code_for_step(secret, step, DIGITS);
        let same: bool = expected.as_bytes().ct_eq(typed.as_bytes()).into();
        let fresh = last_used_step.is_none_or(|last| step > last);
        if same && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *want);
        }
    }

    #[test]
    fn code_is_zero_padded() {
        // RFC 6238 vector at 1111111109 is 07081804: its last six digits start with 0.
        assert_eq!(code_at(&rfc_secret(), 1_111_111_109), "081804");
        assert_eq!(code_at_digits(&rfc_secret(), 1_111_111_109, 8), "07081804");
    }

    #[test]
    fn generated_secret_is_random_and_sized() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_BYTES);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(format!("{a:?}"), "TotpSecret(..)");
    }

    #[test]
    fn verify_rejects_bad_shapes() {
        let s = rfc_secret();
        let now_ms = 59_000;
        let good = code_at(&s, 59);
        assert_eq!(verify(&s, &good, now_ms, None), Some(1));
        let spaced = format!("{} {}", &good[..3], &good[3..]);
        assert_eq!(verify(&s, &spaced, now_ms, None), Some(1));
        for bad in ["", "12345", "1234567", "abcdef", "12345a", "１２３４５６"] {
            assert_eq!(verify(&s, bad, now_ms, None), None, "{bad}");
        }
        assert_eq!(verify(&s, &"1".repeat(10_000), now_ms, None), None);
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a b:c@d.e/ü"), "a%20b%3Ac%40d.e%2F%C3%BC");
        assert_eq!(percent_encode("A-Z_a~z.0"), "A-Z_a~z.0");
    }
}
