//! Property tests for `detect`: generated valid instances of every detector, embedded
//! in random surrounding text, are found with the right detector and exact span; and
//! arbitrary input never panics and yields in-bounds, ordered, non-overlapping findings
//! on char boundaries.
//!
//! The generators compute check digits (Luhn, ISO 7064 mod 97) and base64url on their
//! own, independently of the detector's code, so they double as reference models.

use minim_privacy::detect::{Detector, Detectors, Finding};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------- embedding

/// Text around an instance: an optional lowercase word and a separator on each side.
/// Lowercase letters alone never form a finding, so the instance is the only one.
fn context() -> impl Strategy<Value = (String, String)> {
    let seps = select(vec![" ", "\"", "=", "/", "?", "'", ",", " (", "&x=", "\t"]);
    (
        "[a-z]{0,8}",
        seps.clone(),
        seps.prop_map(|s| match s {
            " (" => ") ",
            "&x=" => "&y",
            other => other,
        }),
        "[a-z]{0,8}",
    )
        .prop_map(|(w1, s1, s2, w2)| (format!("{w1}{s1}"), format!("{s2}{w2}")))
}

fn assert_found(
    detector: Detector,
    instance: &str,
    (before, after): &(String, String),
) -> Result<(), TestCaseError> {
    let text = format!("{before}{instance}{after}");
    let found = Detectors::new().find_all(&text);
    let want = Finding {
        detector,
        start: before.len(),
        end: before.len() + instance.len(),
    };
    prop_assert_eq!(&found, &vec![want], "text {:?}", text);
    // Alone, too.
    let alone = Detectors::new().find_all(instance);
    prop_assert_eq!(
        alone,
        vec![Finding {
            detector,
            start: 0,
            end: instance.len()
        }]
    );
    Ok(())
}

// ---------------------------------------------------------------- cards

/// `(prefix, lengths)` per scheme.
const CARD_SCHEMES: &[(&str, &[usize])] = &[
    ("4", &[13, 16, 19]),
    ("51", &[16]),
    ("55", &[16]),
    ("2221", &[16]),
    ("2720", &[16]),
    ("34", &[15]),
    ("37", &[15]),
    ("6011", &[16, 17, 18, 19]),
    ("644", &[16, 19]),
    ("65", &[16]),
    ("3528", &[16, 19]),
    ("3589", &[16]),
    ("300", &[14]),
    ("305", &[14, 16]),
    ("36", &[14]),
    ("38", &[14, 16]),
    ("62", &[16, 17, 19]),
    ("6759", &[13, 16, 19]),
    ("5018", &[13, 16]),
    ("2200", &[16]),
];

/// The Luhn check digit for `payload` (reference implementation: doubles every
/// second digit counted from the check digit's left neighbour).
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn card() -> impl Strategy<Value = String> {
    (
        0..CARD_SCHEMES.len(),
        any::<usize>(),
        prop::collection::vec(0u8..10, 19),
        0..3usize,
    )
        .prop_map(|(scheme, len_pick, body, format)| {
            let (prefix, lens) = CARD_SCHEMES[scheme];
            let len = lens[len_pick % lens.len()];
            let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
            digits.extend(&body[..len - 1 - digits.len()]);
            digits.push(luhn_check_digit(&digits));
            let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            match format {
                0 => s,
                _ => {
                    let sep = if format == 1 { ' ' } else { '-' };
                    let cuts: Vec<usize> = if len == 15 || len == 14 {
                        vec![4, 10]
                    } else {
                        (4..len).step_by(4).collect()
                    };
                    let mut out = String::new();
                    for (k, ch) in s.chars().enumerate() {
                        if cuts.contains(&k) {
                            out.push(sep);
                        }
                        out.push(ch);
                    }
                    out
                }
            }
        })
}

// ---------------------------------------------------------------- IBANs

/// `(country, length, BBAN alphabet: digits only or alphanumeric)`.
const IBAN_COUNTRIES: &[(&str, usize, bool)] = &[
    ("DE", 22, false),
    ("GB", 22, true),
    ("FR", 27, true),
    ("ES", 24, false),
    ("IT", 27, true),
    ("NL", 18, true),
    ("BE", 16, false),
    ("CH", 21, true),
    ("AT", 20, false),
    ("PL", 28, false),
    ("SE", 24, false),
    ("NO", 15, false),
    ("IE", 22, true),
    ("PT", 25, false),
    ("MT", 31, true),
];

/// The check digits: 98 - (BBAN ‖ country ‖ "00" as a decimal number mod 97),
/// computed with 9-digit chunks (a different method from the detector's).
fn iban_check(country: &str, bban: &str) -> u32 {
    let mut digits = String::new();
    for c in bban.chars().chain(country.chars()).chain("00".chars()) {
        if let Some(d) = c.to_digit(10) {
            digits.push(char::from(b'0' + d as u8));
        } else {
            digits.push_str(&(u32::from(c as u8 - b'A') + 10).to_string());
        }
    }
    let mut rem = 0u64;
    let bytes = digits.as_bytes();
    for chunk in bytes.chunks(9) {
        let mut s = rem.to_string();
        s.push_str(std::str::from_utf8(chunk).unwrap_or("0"));
        rem = s.parse::<u64>().unwrap_or(0) % 97;
    }
    98 - rem as u32
}

fn iban() -> impl Strategy<Value = String> {
    (
        0..IBAN_COUNTRIES.len(),
        prop::collection::vec(0u8..36, 30),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(k, chars, grouped, lower)| {
            let (cc, len, alnum) = IBAN_COUNTRIES[k];
            let bban: String = chars[..len - 4]
                .iter()
                .map(|&c| {
                    let c = if alnum { c } else { c % 10 };
                    if c < 10 {
                        char::from(b'0' + c)
                    } else {
                        char::from(b'A' + c - 10)
                    }
                })
                .collect();
            let check = iban_check(cc, &bban);
            let mut s = format!("{cc}{check:02}{bban}");
            if grouped {
                let chunks: Vec<String> = s
                    .as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                s = chunks.join(" ");
            }
            if lower {
                s = s.to_ascii_lowercase();
            }
            s
        })
}

// ---------------------------------------------------------------- e-mail

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]([a-z0-9_+-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,2}",
        "[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,2}",
        select(vec![
            "com", "org", "net", "io", "dev", "de", "co.uk", "fr", "app", "shop", "info", "me",
            "travel", "xn--p1ai",
        ]),
        any::<bool>(),
    )
        .prop_map(|(local, domain, tld, upper)| {
            let s = format!("{local}@{domain}.{tld}");
            if upper { s.to_ascii_uppercase() } else { s }
        })
}

// ---------------------------------------------------------------- phones

fn digits(n: usize, seed: &[u8]) -> String {
    (0..n)
        .map(|k| char::from(b'0' + seed[k % seed.len()] % 10))
        .collect()
}

fn international() -> impl Strategy<Value = String> {
    (
        1..=3usize,
        8..=15usize,
        prop::collection::vec(0u8..10, 16),
        prop::collection::vec(2..=4usize, 8),
        select(vec!["", " ", "-", "."]),
        any::<bool>(),
    )
        .prop_map(|(cc_len, total, seed, sizes, sep, paren)| {
            let cc_len = cc_len.min(total - 7);
            let mut cc = digits(cc_len, &seed);
            cc.replace_range(0..1, &((seed[0] % 9) + 1).to_string());
            let rest = digits(total - cc_len, &seed[cc_len..]);
            let mut out = format!("+{cc}");
            let mut k = 0;
            let mut first = true;
            for &size in sizes.iter().cycle() {
                if k >= rest.len() {
                    break;
                }
                let end = (k + size).min(rest.len());
                let group = &rest[k..end];
                if first && paren && !sep.is_empty() {
                    out.push_str(&format!(" ({group})"));
                } else {
                    out.push_str(if first && !sep.is_empty() { " " } else { sep });
                    out.push_str(group);
                }
                first = false;
                k = end;
            }
            out
        })
}

fn nanp() -> impl Strategy<Value = String> {
    (2u8..=9, prop::collection::vec(0u8..10, 9), 0..6usize).prop_map(|(a0, d, form)| {
        let area = format!("{a0}{}", digits(2, &d));
        let exch = digits(3, &d[2..]);
        let line = digits(4, &d[5..]);
        match form {
            0 => format!("({area}) {exch}-{line}"),
            1 => format!("{area}-{exch}-{line}"),
            2 => format!("{area}.{exch}.{line}"),
            3 => format!("{area} {exch} {line}"),
            4 => format!("1-{area}-{exch}-{line}"),
            _ => format!("({area}){exch}-{line}"),
        }
    })
}

fn trunk0() -> impl Strategy<Value = String> {
    (
        1u8..=9,
        2..=5usize,
        9..=12usize,
        prop::collection::vec(2..=4usize, 6),
        prop::collection::vec(0u8..10, 16),
        select(vec![" ", "-", "."]),
    )
        .prop_filter_map("not SSN-shaped", |(d1, area, total, sizes, seed, sep)| {
            let mut out = format!("0{d1}{}", digits(area - 2, &seed));
            let mut left = total - area;
            let mut groups = Vec::new();
            for (k, &s) in sizes.iter().cycle().enumerate() {
                if left == 0 {
                    break;
                }
                // Never leave a single digit behind.
                let g = if left <= 8 && left < s + 2 { left } else { s };
                out.push_str(sep);
                out.push_str(&digits(g, &seed[k % 8..]));
                groups.push(g);
                left -= g;
            }
            // `0NN-NN-NNNN` is SSN-shaped, and the SSN (more specific) wins.
            let ssn_shaped = *sep == *"-" && area == 3 && groups == [2, 4];
            (!ssn_shaped).then_some(out)
        })
}

// ---------------------------------------------------------------- IPs, SSNs

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>()
        .prop_filter("not a network number", |o| o[1..] != [0, 0, 0])
        .prop_map(|o| std::net::Ipv4Addr::from(o).to_string())
}

fn ipv6() -> impl Strategy<Value = String> {
    (any::<[u16; 8]>(), 0..4usize, 0..8usize).prop_filter_map(
        "three hex digits",
        |(groups, form, zeros)| {
            let mut g = groups;
            // Runs of zero groups, so `::` compression is exercised.
            for x in g.iter_mut().skip(zeros / 2).take(zeros) {
                *x = 0;
            }
            let addr = std::net::Ipv6Addr::from(g);
            let s = match form {
                0 => g
                    .iter()
                    .map(|x| format!("{x:04x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                1 => addr.to_string().to_ascii_uppercase(),
                2 => {
                    let [a, b, c, d] = [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff];
                    format!("::ffff:{a}.{b}.{c}.{d}")
                }
                _ => addr.to_string(),
            };
            let hex = s.chars().filter(char::is_ascii_hexdigit).count();
            (hex >= 3 && s.matches(':').count() >= 2).then_some(s)
        },
    )
}

fn ssn() -> impl Strategy<Value = String> {
    (1u32..900, 1u32..100, 1u32..10_000)
        .prop_filter("never issued", |(a, _, _)| *a != 666)
        .prop_map(|(a, g, s)| format!("{a:03}-{g:02}-{s:04}"))
}

// ---------------------------------------------------------------- credentials

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

fn jwt() -> impl Strategy<Value = String> {
    (
        select(vec![
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"typ":"JWT","alg":"ES256"}"#,
            r#"{"alg":"none"}"#,
        ]),
        "[a-z0-9]{1,20}",
        0u64..4_000_000_000,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(header, sub, iat, sig)| {
            let payload = format!(r#"{{"sub":"{sub}","iat":{iat}}}"#);
            format!(
                "{}.{}.{}",
                b64url(header.as_bytes()),
                b64url(payload.as_bytes()),
                b64url(&sig)
            )
        })
}

fn secret_key() -> impl Strategy<Value = String> {
    prop_oneof![
        ("(AKIA|ASIA)", "[A-Z2-7]{16}").prop_map(|(p, t)| format!("{p}{t}")),
        ("gh[pousr]_", "[A-Za-z0-9]{36}").prop_map(|(p, t)| format!("{p}{t}")),
        ("(sk|rk)_(live|test)_", "[A-Za-z0-9]{24,99}").prop_map(|(p, t)| format!("{p}{t}")),
        "AIza[A-Za-z0-9_-]{35}",
        "npm_[A-Za-z0-9]{36}",
        "glpat-[A-Za-z0-9_-]{20}",
        "xox[bpar]-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
        "SK[0-9a-f]{32}",
    ]
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn finds_cards(c in card(), ctx in context()) {
        assert_found(Detector::Card, &c, &ctx)?;
    }

    #[test]
    fn finds_ibans(i in iban(), ctx in context()) {
        assert_found(Detector::Iban, &i, &ctx)?;
    }

    #[test]
    fn finds_emails(e in email(), ctx in context()) {
        assert_found(Detector::Email, &e, &ctx)?;
    }

    #[test]
    fn finds_international_phones(p in international(), ctx in context()) {
        assert_found(Detector::Phone, &p, &ctx)?;
    }

    #[test]
    fn finds_nanp_phones(p in nanp(), ctx in context()) {
        assert_found(Detector::Phone, &p, &ctx)?;
    }

    #[test]
    fn finds_trunk_prefix_phones(p in trunk0(), ctx in context()) {
        assert_found(Detector::Phone, &p, &ctx)?;
    }

    #[test]
    fn finds_ipv4(ip in ipv4(), ctx in context()) {
        assert_found(Detector::Ip, &ip, &ctx)?;
    }

    #[test]
    fn finds_ipv6(ip in ipv6(), ctx in context()) {
        assert_found(Detector::Ip, &ip, &ctx)?;
    }

    #[test]
    fn finds_ssns(s in ssn(), ctx in context()) {
        assert_found(Detector::Ssn, &s, &ctx)?;
    }

    #[test]
    fn finds_jwts(t in jwt(), ctx in context()) {
        assert_found(Detector::Jwt, &t, &ctx)?;
    }

    #[test]
    fn finds_secret_keys(k in secret_key(), ctx in context()) {
        assert_found(Detector::SecretKey, &k, &ctx)?;
    }
}

/// The invariants every scan must keep, whatever the input.
fn check_invariants(text: &str) -> Result<(), TestCaseError> {
    let d = Detectors::new();
    let mut out = vec![Finding {
        detector: Detector::Email,
        start: 0,
        end: 0,
    }];
    d.scan(text, &mut out);
    // `scan` appends and leaves what was there.
    prop_assert_eq!(out[0].end, 0);
    let mut prev_end = 0;
    for f in &out[1..] {
        prop_assert!(f.start < f.end && f.end <= text.len(), "{:?}", f);
        prop_assert!(
            text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
            "{:?}",
            f
        );
        prop_assert!(f.start >= prev_end, "overlap or disorder: {:?}", out);
        prev_end = f.end;
    }
    // Deterministic.
    prop_assert_eq!(&d.find_all(text)[..], &out[1..]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_strings_keep_invariants(s in any::<String>()) {
        check_invariants(&s)?;
    }

    /// Dense in the bytes the detectors look at, with some multi-byte characters.
    #[test]
    fn trigger_heavy_strings_keep_invariants(
        s in "[0-9 .@+()\\-:/_=a-fA-FxyzeJKSGIkpv%é€😀\u{a0}]{0,120}"
    ) {
        check_invariants(&s)?;
    }

    /// Valid instances glued together and to noise: still well-formed output.
    #[test]
    fn concatenated_instances_keep_invariants(
        parts in prop::collection::vec(
            prop_oneof![card(), iban(), email(), international(), nanp(), ipv4(), ipv6(),
                        ssn(), jwt(), secret_key(), "[ -~]{0,6}", "[é😀.:@+-]{0,3}"],
            0..8,
        )
    ) {
        check_invariants(&parts.concat())?;
    }
}
