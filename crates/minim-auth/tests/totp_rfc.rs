//! TOTP against RFC 6238 Appendix B (SHA-1 vectors), plus replay refusal, clock-skew
//! tolerance, base32 round trips and the `otpauth://` URI shape.

use minim_auth::totp::{self, TotpSecret};

/// RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
fn rfc_secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890".to_vec())
}

/// (Unix time, 8-digit TOTP) from RFC 6238 Appendix B, SHA1 column.
const RFC6238_SHA1: [(i64, &str); 6] = [
    (59, "94287082"),
    (1_111_111_109, "07081804"),
    (1_111_111_111, "14050471"),
    (1_234_567_890, "89005924"),
    (2_000_000_000, "69279037"),
    (20_000_000_000, "65353130"),
];

#[test]
fn rfc6238_appendix_b_sha1_eight_digits() {
    let s = rfc_secret();
    for (t, want) in RFC6238_SHA1 {
        assert_eq!(totp::code_at_digits(&s, t, 8), want, "T = {t}");
    }
}

#[test]
fn rfc6238_six_digits_are_the_last_six() {
    let s = rfc_secret();
    for (t, want) in RFC6238_SHA1 {
        assert_eq!(totp::code_at(&s, t), want[2..], "T = {t}");
    }
}

#[test]
fn rfc6238_vectors_verify() {
    let s = rfc_secret();
    for (t, want) in RFC6238_SHA1 {
        let step = t.div_euclid(30);
        assert_eq!(
            totp::verify(&s, &want[2..], t * 1000, None),
            Some(step),
            "T = {t}"
        );
    }
}

#[test]
fn replay_of_the_same_step_is_refused() {
    let s = rfc_secret();
    let now_ms = 1_234_567_890_000;
    let code = totp::code_at(&s, 1_234_567_890);
    let step = totp::verify(&s, &code, now_ms, None).unwrap();
    assert_eq!(step, 1_234_567_890 / 30);
    assert_eq!(totp::verify(&s, &code, now_ms, Some(step)), None);
    assert_eq!(totp::verify(&s, &code, now_ms + 5_000, Some(step)), None);
    // An older code after a newer one was used is refused too.
    let previous = totp::code_at(&s, 1_234_567_890 - 30);
    assert_eq!(totp::verify(&s, &previous, now_ms, Some(step)), None);
    assert_eq!(
        totp::verify(&s, &previous, now_ms, Some(step - 2)),
        Some(step - 1)
    );
    // The next step's code is still fine.
    let next = totp::code_at(&s, 1_234_567_890 + 30);
    assert_eq!(
        totp::verify(&s, &next, now_ms + 30_000, Some(step)),
        Some(step + 1)
    );
}

#[test]
fn one_step_of_skew_is_accepted_two_are_not() {
    let s = rfc_secret();
    let t = 2_000_000_000i64;
    let step = t / 30;
    let now_ms = t * 1000;
    let at = |d: i64| totp::code_at(&s, t + d * 30);
    assert_eq!(totp::verify(&s, &at(0), now_ms, None), Some(step));
    assert_eq!(totp::verify(&s, &at(-1), now_ms, None), Some(step - 1));
    assert_eq!(totp::verify(&s, &at(1), now_ms, None), Some(step + 1));
    for d in [-2, 2, -3, 3] {
        let code = at(d);
        // Guard against an accidental collision with an accepted step's code.
        if [-1, 0, 1].iter().all(|k| at(*k) != code) {
            assert_eq!(totp::verify(&s, &code, now_ms, None), None, "skew {d}");
        }
    }
}

#[test]
fn wrong_code_is_refused() {
    let s = rfc_secret();
    let now_ms = 59_000;
    let good = totp::code_at(&s, 59);
    let bad: String = good
        .chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect();
    assert_eq!(totp::verify(&s, &bad, now_ms, None), None);
    let other = TotpSecret::generate();
    let theirs = totp::code_at(&other, 59);
    if theirs != good && [29, 89].iter().all(|t| totp::code_at(&s, *t) != theirs) {
        assert_eq!(totp::verify(&s, &theirs, now_ms, None), None);
    }
}

#[test]
fn base32_round_trip() {
    let s = rfc_secret();
    assert_eq!(s.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    let back = TotpSecret::from_base32(&s.base32()).unwrap();
    assert_eq!(back.as_bytes(), s.as_bytes());
    // Typed loosely: lowercase, spaces, padding.
    let loose = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq====").unwrap();
    assert_eq!(loose.as_bytes(), s.as_bytes());
    for _ in 0..20 {
        let g = TotpSecret::generate();
        assert_eq!(g.as_bytes().len(), 20);
        let b32 = g.base32();
        assert!(!b32.contains('='));
        assert_eq!(b32.len(), 32);
        assert_eq!(
            TotpSecret::from_base32(&b32).unwrap().as_bytes(),
            g.as_bytes()
        );
    }
}

#[test]
fn base32_rejects_garbage_and_short_keys() {
    assert!(TotpSecret::from_base32("not base32!").is_none());
    assert!(TotpSecret::from_base32("").is_none());
    assert!(TotpSecret::from_base32("GEZDGNBV").is_none()); // 5 bytes
    assert!(TotpSecret::from_base32(&"A".repeat(10_000)).is_none());
}

#[test]
fn otpauth_uri_shape() {
    let s = rfc_secret();
    let uri = totp::otpauth_uri(&s, "Minim Co", "ada@example.com");
    assert_eq!(
        uri,
        "otpauth://totp/Minim%20Co:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
         &issuer=Minim%20Co&algorithm=SHA1&digits=6&period=30"
    );
    // Characters that would break the URI are encoded.
    let odd = totp::otpauth_uri(&s, "a:b&c", "x?y#z/é");
    assert!(odd.starts_with("otpauth://totp/a%3Ab%26c:x%3Fy%23z%2F%C3%A9?secret="));
    assert!(odd.contains("&issuer=a%3Ab%26c&"));
    // No issuer: label is the account alone and there is no issuer parameter.
    let bare = totp::otpauth_uri(&s, "", "ada");
    assert!(bare.starts_with("otpauth://totp/ada?secret="));
    assert!(!bare.contains("issuer="));
}
