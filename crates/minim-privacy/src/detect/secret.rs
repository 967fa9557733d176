//! Credentials with a recognisable shape: vendor API keys and tokens, bearer and basic
//! authorization values, PEM private keys. JWTs are in `jwt.rs` but are dispatched
//! from here (they also start with a literal, `eyJ`).
//!
//! Each format is a literal prefix at the start of a word (not after an ASCII letter or
//! digit) and a validated tail; a tail is a maximal run of its alphabet, so "exactly N"
//! also means "not followed by another such character". The prefixes are matched by
//! hand at word starts only, behind a 256-entry table of possible first bytes, instead
//! of running an Aho-Corasick automaton over the text: the scan loop already stops at
//! every word start, and a second pass over every byte would cost more than the few
//! comparisons made there. `memchr::memmem` finds the end line of a PEM block.
//!
//! | format | rule |
//! |---|---|
//! | AWS access key id | `AKIA` or `ASIA` + exactly 16 `A-Z 0-9`, not followed by a letter or digit |
//! | Google API key | `AIza` + exactly 35 `A-Z a-z 0-9 - _` |
//! | GitHub token | `ghp_` `gho_` `ghu_` `ghs_` `ghr_` + 36–255 `A-Z a-z 0-9`; `github_pat_` + ≥ 22 `A-Z a-z 0-9 _` |
//! | GitLab token | `glpat-` + ≥ 20 `A-Z a-z 0-9 - _` |
//! | Slack token | `xoxb-` `xoxp-` `xoxa-` `xoxr-` `xoxs-` `xoxe-` `xapp-` + ≥ 10 `A-Z a-z 0-9 -` with a digit |
//! | Slack webhook | `hooks.slack.com/services/` + ≥ 20 `A-Z a-z 0-9 /` |
//! | Stripe secret / restricted key | `sk_live_` `sk_test_` `rk_live_` `rk_test_` + ≥ 16 `A-Z a-z 0-9`; `whsec_` + ≥ 24 base64 |
//! | OpenAI / Anthropic style | `sk-` + ≥ 32 `A-Z a-z 0-9 - _` with a digit (`sk-proj-…`, `sk-ant-…`) |
//! | npm token | `npm_` + exactly 36 `A-Z a-z 0-9` |
//! | Twilio API key | `SK` + exactly 32 `0-9 a-f`, not followed by a letter or digit |
//! | SendGrid key | `SG.` + ≥ 16 base64url + `.` + ≥ 16 base64url |
//! | Shopify token | `shpat_` `shpca_` `shppa_` `shpss_` + exactly 32 hex |
//! | Hugging Face token | `hf_` + exactly 34 `A-Z a-z 0-9` |
//! | PyPI token | `pypi-AgEIcHlwaS5vcmc` + ≥ 50 base64url |
//! | DigitalOcean token | `dop_v1_` `doo_v1_` `dor_v1_` + exactly 64 hex |
//!
//! * **Bearer**: `Bearer` (any case), 1–3 spaces, then a token of at least 20 RFC 6750
//!   characters (`A-Z a-z 0-9 - . _ ~ + /`, then `=` padding) holding a letter and a
//!   digit; a trailing `.` is dropped. The span is the token only; a token of a known
//!   format (JWT, GitHub, …) is reported as that format.
//! * **Basic**: `Basic` (any case), 1–3 spaces, then at least 8 base64 characters
//!   (padded to a multiple of 4) that decode to printable ASCII with a `:` after at
//!   least one character (`user:password`); the span is the encoded value.
//! * **PEM private key**: `-----BEGIN <label>PRIVATE KEY-----` or `… PRIVATE KEY
//!   BLOCK-----` (label of `A-Z 0-9` and spaces); the span runs to the end of the next
//!   `-----END …-----` line, or to the end of the text when there is none (everything
//!   after the header is key material). Public keys and certificates are not reported.
//!
//! Stripe publishable keys (`pk_live_`, `pk_test_`) are not reported: they are meant to
//! be public and are embedded in every checkout page. Formats without a prefix (AWS
//! secret access keys, generic hex API keys) cannot be told from hashes and ids; the
//! property name (`is_secret_name`) is what catches those.

use memchr::memmem;

use super::bytes::{at, is_alnum, is_b64url, run, starts, starts_ci};
use super::{Detector, Hit, jwt};

/// First bytes that may start a prefix handled by [`at_word`].
static PREFIX_START: [bool; 256] = {
    let mut t = [false; 256];
    let starts = b"ABSbdeghnprswx";
    let mut k = 0;
    while k < starts.len() {
        t[starts[k] as usize] = true;
        k += 1;
    }
    t
};

const MAX_GITHUB: usize = 255;

/// Whether a word starting with `c` may be a prefixed credential.
#[inline]
pub(super) fn may_start(c: u8) -> bool {
    PREFIX_START[usize::from(c)]
}

fn is_upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn is_lower_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn is_bearer_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

fn is_slack_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// The credential starting at the word start `i`, if any, and where scanning may resume
/// (past the run a failed candidate looked at).
pub(super) fn at_word(b: &[u8], i: usize) -> (Option<Hit>, usize) {
    match at_word_inner(b, i) {
        Ok((detector, start, end)) => (
            Some(Hit {
                detector,
                start,
                end,
            }),
            end,
        ),
        Err(resume) => (None, resume),
    }
}

type Found = Result<(Detector, usize, usize), usize>;

/// A tail of `pred` characters at `p` whose length is in `min..=max`: the secret ends
/// there. Otherwise `Err` with the end of the run.
fn tail(
    b: &[u8],
    p: usize,
    pred: impl Fn(u8) -> bool,
    min: usize,
    max: usize,
) -> Result<usize, usize> {
    let n = run(b, p, pred);
    if (min..=max).contains(&n) {
        Ok(p + n)
    } else {
        Err(p + n)
    }
}

fn key(start: usize, end: Result<usize, usize>) -> Found {
    end.map(|e| (Detector::SecretKey, start, e))
}

/// `end` is not followed by an ASCII letter or digit.
fn standalone(b: &[u8], end: Result<usize, usize>) -> Result<usize, usize> {
    end.and_then(|e| if is_alnum(at(b, e)) { Err(e) } else { Ok(e) })
}

fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}

fn at_word_inner(b: &[u8], i: usize) -> Found {
    let none = Err(i + 1);
    match at(b, i) {
        b'A' => {
            if starts(b, i, b"AKIA") || starts(b, i, b"ASIA") {
                key(i, standalone(b, tail(b, i + 4, is_upper_alnum, 16, 16)))
            } else if starts(b, i, b"AIza") {
                key(i, tail(b, i + 4, is_b64url, 35, 35))
            } else {
                none
            }
        }
        b'S' => {
            if starts(b, i, b"SK") {
                key(i, standalone(b, tail(b, i + 2, is_lower_hex, 32, 32)))
            } else if starts(b, i, b"SG.") {
                let first = tail(b, i + 3, is_b64url, 16, usize::MAX)?;
                if at(b, first) != b'.' {
                    return Err(first);
                }
                key(i, tail(b, first + 1, is_b64url, 16, usize::MAX))
            } else {
                none
            }
        }
        b'B' | b'b' => {
            if starts_ci(b, i, b"bearer ") {
                bearer(b, i + 6)
            } else if starts_ci(b, i, b"basic ") {
                basic(b, i + 5)
            } else {
                none
            }
        }
        b'e' => {
            if starts(b, i, b"eyJ") {
                jwt::at_pos(b, i).map(|e| (Detector::Jwt, i, e))
            } else {
                none
            }
        }
        b'g' => {
            if starts(b, i, b"gh")
                && matches!(at(b, i + 2), b'p' | b'o' | b'u' | b's' | b'r')
                && at(b, i + 3) == b'_'
            {
                key(
                    i,
                    tail(b, i + 4, |c| c.is_ascii_alphanumeric(), 36, MAX_GITHUB),
                )
            } else if starts(b, i, b"github_pat_") {
                key(
                    i,
                    tail(
                        b,
                        i + 11,
                        |c| c.is_ascii_alphanumeric() || c == b'_',
                        22,
                        usize::MAX,
                    ),
                )
            } else if starts(b, i, b"glpat-") {
                key(i, tail(b, i + 6, is_b64url, 20, usize::MAX))
            } else {
                none
            }
        }
        b'x' => {
            let slack = (starts(b, i, b"xox")
                && matches!(at(b, i + 3), b'b' | b'p' | b'a' | b'r' | b's' | b'e')
                && at(b, i + 4) == b'-')
                || starts(b, i, b"xapp-");
            if !slack {
                return none;
            }
            let end = tail(b, i + 5, is_slack_char, 10, usize::MAX)?;
            if has_digit(&b[i + 5..end]) {
                Ok((Detector::SecretKey, i, end))
            } else {
                Err(end)
            }
        }
        b's' | b'r' => {
            let stripe = [b"sk_live_", b"sk_test_", b"rk_live_", b"rk_test_"];
            if stripe.iter().any(|p| starts(b, i, *p)) {
                key(
                    i,
                    tail(b, i + 8, |c| c.is_ascii_alphanumeric(), 16, usize::MAX),
                )
            } else if starts(b, i, b"sk-") {
                let end = tail(b, i + 3, is_b64url, 32, usize::MAX)?;
                if has_digit(&b[i + 3..end]) {
                    Ok((Detector::SecretKey, i, end))
                } else {
                    Err(end)
                }
            } else if [b"shpat_", b"shpca_", b"shppa_", b"shpss_"]
                .iter()
                .any(|p| starts(b, i, *p))
            {
                key(i, tail(b, i + 6, |c| c.is_ascii_hexdigit(), 32, 32))
            } else {
                none
            }
        }
        b'n' if starts(b, i, b"npm_") => {
            key(i, tail(b, i + 4, |c| c.is_ascii_alphanumeric(), 36, 36))
        }
        b'w' if starts(b, i, b"whsec_") => key(
            i,
            tail(b, i + 6, |c| is_b64(c) || c == b'=', 24, usize::MAX),
        ),
        b'h' => {
            if starts(b, i, b"hooks.slack.com/services/") {
                key(
                    i,
                    tail(
                        b,
                        i + 25,
                        |c| c.is_ascii_alphanumeric() || c == b'/',
                        20,
                        usize::MAX,
                    ),
                )
            } else if starts(b, i, b"hf_") {
                key(i, tail(b, i + 3, |c| c.is_ascii_alphanumeric(), 34, 34))
            } else {
                none
            }
        }
        b'p' if starts(b, i, b"pypi-AgEIcHlwaS5vcmc") => {
            key(i, tail(b, i + 20, is_b64url, 50, usize::MAX))
        }
        b'd' if [b"dop_v1_", b"doo_v1_", b"dor_v1_"]
            .iter()
            .any(|p| starts(b, i, *p)) =>
        {
            key(i, tail(b, i + 7, |c| c.is_ascii_hexdigit(), 64, 64))
        }
        _ => none,
    }
}

/// `Bearer <token>`; `p` is the first space after the scheme.
fn bearer(b: &[u8], p: usize) -> Found {
    let spaces = run(b, p, |c| c == b' ');
    if !(1..=3).contains(&spaces) {
        return Err(p);
    }
    let t = p + spaces;
    // A token of a known format is reported as that format (not `Bearer Bearer …`,
    // which would recurse).
    if !matches!(at(b, t), b'B' | b'b')
        && let Ok(found) = at_word_inner(b, t)
        && found.1 == t
    {
        return Ok(found);
    }
    let n = run(b, t, is_bearer_char);
    let mut end = t + n;
    end += run(b, end, |c| c == b'=');
    while end > t && b[end - 1] == b'.' {
        end -= 1;
    }
    let token = &b[t..end];
    if token.len() >= 20 && has_digit(token) && token.iter().any(u8::is_ascii_alphabetic) {
        Ok((Detector::SecretKey, t, end))
    } else {
        Err(t + n)
    }
}

/// `Basic <base64(user:password)>`; `p` is the first space after the scheme.
fn basic(b: &[u8], p: usize) -> Found {
    let spaces = run(b, p, |c| c == b' ');
    if !(1..=3).contains(&spaces) {
        return Err(p);
    }
    let t = p + spaces;
    let n = run(b, t, is_b64);
    let pad = run(b, t + n, |c| c == b'=');
    let end = t + n + pad;
    if n < 8
        || pad > 2
        || !(n + pad).is_multiple_of(4)
        || is_b64url(at(b, end))
        || !is_user_password(&b[t..t + n])
    {
        return Err(end);
    }
    Ok((Detector::SecretKey, t, end))
}

/// Whether unpadded standard base64 decodes to printable ASCII with a `:` that is not
/// the first character.
fn is_user_password(enc: &[u8]) -> bool {
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut n = 0usize;
    let mut colon = false;
    for &c in enc {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if !(0x20..0x7f).contains(&byte) {
                return false;
            }
            if byte == b':' && n > 0 {
                colon = true;
            }
            n += 1;
        }
    }
    colon
}

/// A PEM private-key block whose first dash is at `i`; returns the end of its span.
pub(super) fn pem_at(b: &[u8], i: usize, end_line: &memmem::Finder<'_>) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    if !starts(b, i, BEGIN) {
        return None;
    }
    let label_start = i + BEGIN.len();
    let is_label = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ';
    let label_len = run(b, label_start, is_label).min(64);
    let label = &b[label_start..label_start + label_len];
    if !starts(b, label_start + label_len, DASHES)
        || !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
    {
        return None;
    }
    let body = label_start + label_len + DASHES.len();
    let rest = b.get(body..)?;
    let Some(k) = end_line.find(rest) else {
        // No end line: everything after the header is key material.
        return Some(b.len());
    };
    let end_label = body + k + b"-----END ".len();
    let n = run(b, end_label, is_label).min(64);
    if starts(b, end_label + n, DASHES) {
        Some(end_label + n + DASHES.len())
    } else {
        Some(end_label)
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detector, Detectors, Finding};

    fn secrets(s: &str) -> Vec<(Detector, &str)> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector.is_secret())
            .map(|f: Finding| (f.detector, &s[f.start..f.end]))
            .collect()
    }

    fn key(s: &str) {
        for text in [
            s.to_owned(),
            format!("key={s}&x=1"),
            format!("\"{s}\", "),
            format!("a {s}"),
        ] {
            assert_eq!(secrets(&text), [(Detector::SecretKey, s)], "{text}");
        }
    }

    #[test]
    fn vendor_keys() {
        key("AKIAIOSFODNN7EXAMPLE");
        key("ASIAY34FZKBOKMUTVV7A");
        key("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe");
        key("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");
        key("gho_16C7e42F292c6912E7710c838347Ae178B4a");
        key(
            "github_pat_11ABCDEFG0123456789abcd_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFG",
        );
        key("glpat-xxxxxxxxxxxxxxxxxxxx");
        key("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
        key("xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef");
        key("xapp-1-A0123456789-0123456789012-abcdef0123456789");
        key("sk_live_4eC39HqLyjWDarjtT1zdp7dc");
        key("sk_test_4eC39HqLyjWDarjtT1zdp7dc");
        key("rk_live_51H8abcdefghijklmnopqrst");
        key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        key("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD");
        key("sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789");
        key("npm_abcdefghijklmnopqrstuvwxyz0123456789");
        key("SK0123456789abcdef0123456789abcdef");
        key("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");
        key("shpat_0123456789abcdef0123456789abcdef");
        key("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH");
        key("dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        key("hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX");
    }

    #[test]
    fn not_keys() {
        for s in [
            "pk_live_51H8abcdefghijklmnopqrst",
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAIOSFODNN7EXAMPLEx",
            "xAKIAIOSFODNN7EXAMPLE",
            "ghp_short",
            "sk-SK",
            "sk-abcdefghijklmnopqrstuvwxyzabcdefghij",
            "task_live_0123456789abcdefghij",
            "SKU0123456789",
            "SKIP",
            "xoxb-abcdefghijklmnop",
            "Bearer token",
            "Bearer <token>",
            "bearer authenticationisgreat",
            "the Basic plan",
            "Basic dXNlcg==",
            "npm_abc",
            "SG.abc.def",
        ] {
            assert!(secrets(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn bearer_and_basic() {
        let s = "Authorization: Bearer abcDEF0123456789ghiJKL.mno-pqr~stu+vwx/yz==";
        assert_eq!(
            secrets(s),
            [(
                Detector::SecretKey,
                "abcDEF0123456789ghiJKL.mno-pqr~stu+vwx/yz=="
            )]
        );
        assert_eq!(
            secrets("bearer 0123456789abcdefghij."),
            [(Detector::SecretKey, "0123456789abcdefghij")]
        );
        assert_eq!(
            secrets("Bearer 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"),
            [(
                Detector::SecretKey,
                "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"
            )]
        );
        // base64("aladdin:opensesame")
        assert_eq!(
            secrets("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            [(Detector::SecretKey, "YWxhZGRpbjpvcGVuc2VzYW1l")]
        );
    }

    #[test]
    fn pem_blocks() {
        let block =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        let text = format!("key: {block}\nnext");
        assert_eq!(secrets(&text), [(Detector::SecretKey, block)]);
        let open = "x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
        assert_eq!(secrets(open), [(Detector::SecretKey, &open[2..])]);
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nabc\n-----END PGP PRIVATE KEY BLOCK-----";
        assert_eq!(secrets(pgp), [(Detector::SecretKey, pgp)]);
        assert!(secrets("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----").is_empty());
        assert!(secrets("-----BEGIN CERTIFICATE-----").is_empty());
        assert!(secrets("a -- b ----- c").is_empty());
    }
}
