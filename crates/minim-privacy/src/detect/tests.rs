//! Scanner-level tests: names, overlap resolution, ordering, appending, odd input.

use super::*;

fn spans(s: &str) -> Vec<(Detector, &str)> {
    Detectors::new()
        .find_all(s)
        .into_iter()
        .map(|f| (f.detector, &s[f.start..f.end]))
        .collect()
}

#[test]
fn names_round_trip() {
    let names: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "email",
            "phone",
            "card",
            "iban",
            "ip",
            "ssn",
            "jwt",
            "secret_key"
        ]
    );
    for d in Detector::ALL {
        assert_eq!(Detector::from_name(d.name()), Some(d));
        assert_eq!(d.to_string(), d.name());
    }
    assert_eq!(Detector::from_name("Email"), None);
    assert_eq!(Detector::from_name(""), None);
    let secrets: Vec<Detector> = Detector::ALL
        .into_iter()
        .filter(|d| d.is_secret())
        .collect();
    assert_eq!(secrets, [Detector::Jwt, Detector::SecretKey]);
}

#[test]
fn mixed_text_in_order() {
    let s = "Jane <jane@x.io>, +1 415 555 0132, card 4111 1111 1111 1111, \
             ip 10.1.2.3, ssn 123-45-6789, iban DE89370400440532013000, \
             key AKIAIOSFODNN7EXAMPLE.";
    assert_eq!(
        spans(s),
        [
            (Detector::Email, "jane@x.io"),
            (Detector::Phone, "+1 415 555 0132"),
            (Detector::Card, "4111 1111 1111 1111"),
            (Detector::Ip, "10.1.2.3"),
            (Detector::Ssn, "123-45-6789"),
            (Detector::Iban, "DE89370400440532013000"),
            (Detector::SecretKey, "AKIAIOSFODNN7EXAMPLE"),
        ]
    );
}

#[test]
fn scan_appends_and_keeps_earlier_findings() {
    let d = Detectors::new();
    let mut out = Vec::new();
    d.scan("a@b.com", &mut out);
    // The second scan's e-mail reaches back over its phone number; the first scan's
    // finding (same byte offsets, other text) must survive.
    d.scan("+14155550132@b.com", &mut out);
    assert_eq!(
        out,
        [
            Finding {
                detector: Detector::Email,
                start: 0,
                end: 7
            },
            Finding {
                detector: Detector::Email,
                start: 1,
                end: 18
            },
        ]
    );
}

#[test]
fn longer_finding_replaces_overlapped_ones() {
    // The phone number is found first; the address around it is longer and wins.
    assert_eq!(
        spans("555-123-4567@example.com"),
        [(Detector::Email, "555-123-4567@example.com")]
    );
    // An e-mail local part holding an SSN-shaped run.
    assert_eq!(
        spans("x 123-45-6789.x@y.org"),
        [(Detector::Email, "123-45-6789.x@y.org")]
    );
}

#[test]
fn overlap_rules() {
    let f = |detector, start, end| Finding {
        detector,
        start,
        end,
    };
    // Secrets win regardless of length.
    assert!(f(Detector::Jwt, 0, 5).beats(&f(Detector::Email, 0, 50)));
    assert!(!f(Detector::Email, 0, 50).beats(&f(Detector::SecretKey, 0, 5)));
    // Then length, then specificity.
    assert!(f(Detector::Phone, 0, 10).beats(&f(Detector::Card, 2, 9)));
    assert!(f(Detector::Card, 0, 10).beats(&f(Detector::Phone, 0, 10)));
    assert!(!f(Detector::Phone, 0, 10).beats(&f(Detector::Card, 0, 10)));

    let mut out = vec![f(Detector::Email, 0, 3)];
    let mut sink = Sink {
        out: &mut out,
        base: 1,
    };
    // Overlaps a finding of an earlier scan: not this scan's business.
    assert!(sink.push(f(Detector::Phone, 2, 6)));
    assert!(sink.push(f(Detector::Ip, 8, 10)));
    // Overlaps both findings of this scan: longer than both, so both go.
    assert!(sink.push(f(Detector::Email, 4, 12)));
    // Loses to one of the two it overlaps: nothing changes.
    assert!(sink.push(f(Detector::Phone, 14, 20)));
    assert!(sink.push(f(Detector::SecretKey, 21, 22)));
    assert!(!sink.push(f(Detector::Card, 15, 23)));
    assert_eq!(
        out,
        [
            f(Detector::Email, 0, 3),
            f(Detector::Email, 4, 12),
            f(Detector::Phone, 14, 20),
            f(Detector::SecretKey, 21, 22),
        ]
    );
}

#[test]
fn detectors_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Detectors>();
}

#[test]
fn failed_prefix_candidates_do_not_hide_findings() {
    assert_eq!(
        spans("sk-foo-4111111111111111"),
        [(Detector::Card, "4111111111111111")]
    );
    assert_eq!(
        spans("Bearer token 555-123-4567"),
        [(Detector::Phone, "555-123-4567")]
    );
    assert_eq!(
        spans("eyJfoo-123-45-6789"),
        [(Detector::Ssn, "123-45-6789")]
    );
    assert_eq!(
        spans("SK31 1200 0000 1987 4263 7541"),
        [(Detector::Iban, "SK31 1200 0000 1987 4263 7541")]
    );
}

#[test]
fn benign_analytics_strings() {
    for s in [
        "",
        "$pageview",
        "https://nimbus.example.com/blog/how-to-export?utm_source=google&utm_medium=cpc",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 \
         (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b",
        "anon-0123456789abcdef",
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
        "2026-01-05T10:00:00.123Z",
        "2026-01-05 10:00:00+01:00",
        "1735689600000",
        "$1,299.99",
        "v2.14.0-rc.1",
        "#ff8800",
        "rgb(255, 136, 0)",
        "ORD-2026-000123",
        "user-42",
        "@media (min-width: 768px)",
        "logo@2x.png",
        "C++ / C# / F#",
    ] {
        assert_eq!(spans(s), [], "{s}");
    }
}

#[test]
fn odd_input_never_panics() {
    let d = Detectors::new();
    let mut out = Vec::new();
    for s in [
        "@",
        "+",
        "(",
        ":",
        "-",
        "--",
        "-----BEGIN ",
        "::",
        ":::",
        "@@",
        "1",
        "1.",
        "1.2.3.",
        "+1",
        "(5",
        "(555)",
        "(555) 1",
        "eyJ",
        "eyJ.",
        "Bearer",
        "Bearer ",
        "Basic ",
        "AKIA",
        "SG.",
        "é@",
        "@é",
        "ü:",
        "0",
        "0/",
        "00000",
        "4111 ",
        "DE89",
        "de",
        "x@y.",
        "a@b.c\u{0}",
    ] {
        out.clear();
        d.scan(s, &mut out);
        for f in &out {
            assert!(f.start < f.end && f.end <= s.len(), "{s:?} {f:?}");
        }
    }
}

#[test]
fn adversarial_input_stays_linear() {
    // Each of these would be quadratic if a validator re-walked the same run from
    // every position; with a 200 kB input that would take seconds.
    let d = Detectors::new();
    let mut out = Vec::new();
    let n = 200_000;
    for unit in [
        "sk-",
        "eyJ",
        "a@",
        "@a.",
        "1:",
        "1.",
        "+1 ",
        "(555) ",
        "0",
        "Bearer ",
        "ghp_",
        "::1",
        "xoxb-",
        "DE89",
        "-----BEGIN RSA PRIVATE KEY-----",
        "1-",
        "4111 ",
        "a.",
    ] {
        let s = unit.repeat(n / unit.len());
        let t = std::time::Instant::now();
        out.clear();
        d.scan(&s, &mut out);
        assert!(
            t.elapsed().as_secs_f64() < 2.0,
            "{unit:?} took {:?}",
            t.elapsed()
        );
    }
}
