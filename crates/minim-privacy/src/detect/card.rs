//! Payment card numbers (PANs).
//!
//! Rule:
//! * **Shape**: 13–19 digits, either contiguous or grouped by single spaces or single
//!   dashes (one kind throughout): `4-4-4-4`, `4-4-4-1..4`, `4-4-4-4-1..3`, or the
//!   Amex/Diners `4-6-5` and `4-6-4`.
//! * **Luhn** checksum passes.
//! * **Issuer**: the prefix and length match a known scheme: Visa `4` (13, 16, 19);
//!   Mastercard `51–55`, `2221–2720` (16); Amex `34`, `37` (15); Discover `6011`,
//!   `644–649`, `65` (16–19); JCB `3528–3589` (16–19); Diners `300–305`, `3095`, `36`,
//!   `38`, `39` (14–19); UnionPay `62` (16–19); Maestro `5018`, `5020`, `5038`, `5893`,
//!   `6304`, `6759`, `6761–6763` (13–19); Mir `2200–2204` (16–19). Numbers starting
//!   with `1`, `7`, `8`, `9` or `0` are never cards, which keeps epoch timestamps
//!   (seconds to nanoseconds) and snowflake ids out.
//! * **Standalone**: not glued to a letter or digit on either side, not after `.` or `,`
//!   that follows a digit (a decimal fraction), not after the group separator that
//!   follows a digit (the tail of a longer grouped number), and not followed by `.`, `,`
//!   or the separator and a digit.

use super::bytes::{at, before, digits_from, is_alnum, is_digit};

const MAX_DIGITS: usize = 19;

/// A contiguous run of `g` (13–19) digits at `i`; returns the end.
pub(super) fn contiguous(b: &[u8], i: usize, g: usize) -> Option<usize> {
    if !(13..=MAX_DIGITS).contains(&g) || !left_ok(b, i, 0) || !right_ok(b, i + g, 0) {
        return None;
    }
    valid(b.get(i..i + g)?).then_some(i + g)
}

/// A grouped number at `i` (its first group has four digits and is followed by a space
/// or dash); returns the end.
pub(super) fn grouped(b: &[u8], i: usize) -> Option<usize> {
    let sep = at(b, i + 4);
    if !matches!(sep, b' ' | b'-') || !left_ok(b, i, sep) {
        return None;
    }
    let mut groups = [0usize; 5];
    let mut n = 0;
    let mut p = i;
    loop {
        let g = digits_from(b, p);
        if n == groups.len() || g > 6 {
            return None;
        }
        groups[n] = g;
        n += 1;
        p += g;
        if at(b, p) == sep && is_digit(at(b, p + 1)) {
            p += 1;
        } else {
            break;
        }
    }
    let groups = &groups[..n];
    let total: usize = groups.iter().sum();
    let standard =
        n >= 4 && groups[..n - 1].iter().all(|&g| g == 4) && (1..=4).contains(&groups[n - 1]);
    let amex_diners = groups == [4, 6, 5] || groups == [4, 6, 4];
    if !(13..=MAX_DIGITS).contains(&total) || !(standard || amex_diners) || !right_ok(b, p, sep) {
        return None;
    }
    let mut digits = [0u8; MAX_DIGITS];
    let mut k = 0;
    for &c in &b[i..p] {
        if is_digit(c) {
            digits[k] = c;
            k += 1;
        }
    }
    valid(&digits[..k]).then_some(p)
}

/// Not glued to a preceding number (`sep` = 0 for contiguous numbers).
fn left_ok(b: &[u8], i: usize, sep: u8) -> bool {
    let prev = before(b, i);
    if is_alnum(prev) {
        return false;
    }
    let joins = matches!(prev, b'.' | b',') || (sep != 0 && prev == sep);
    !(joins && i >= 1 && is_digit(before(b, i - 1)))
}

/// Not continued by a letter, digit, fraction or further group.
fn right_ok(b: &[u8], end: usize, sep: u8) -> bool {
    let next = at(b, end);
    if is_alnum(next) {
        return false;
    }
    let joins = matches!(next, b'.' | b',') || (sep != 0 && next == sep);
    !(joins && is_digit(at(b, end + 1)))
}

/// Luhn and issuer checks on ASCII digits.
pub(super) fn valid(digits: &[u8]) -> bool {
    digits.iter().all(u8::is_ascii_digit) && issuer_ok(digits) && luhn(digits)
}

/// The Luhn (mod 10) checksum of ASCII digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &c) in digits.iter().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Whether the prefix and length belong to a known card scheme.
fn issuer_ok(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |k: usize| -> u32 {
        d.iter()
            .take(k)
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c.wrapping_sub(b'0')))
    };
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let long = (16..=19).contains(&len);
    match d.first() {
        Some(b'4') => matches!(len, 13 | 16 | 19),
        Some(b'2') => {
            ((2221..=2720).contains(&p4) && len == 16) || ((2200..=2204).contains(&p4) && long)
        }
        Some(b'3') => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || ((3528..=3589).contains(&p4) && long)
                || (((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39))
                    && (14..=19).contains(&len))
        }
        Some(b'5') => {
            ((51..=55).contains(&p2) && len == 16)
                || (matches!(p4, 5018 | 5020 | 5038 | 5893) && (13..=19).contains(&len))
        }
        Some(b'6') => {
            ((p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || p2 == 62) && long)
                || (matches!(p4, 6304 | 6759 | 6761 | 6762 | 6763) && (13..=19).contains(&len))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, Detectors};

    fn cards(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Card)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    /// Test numbers published by the card schemes and payment processors.
    const TEST_CARDS: &[&str] = &[
        "4111111111111111",
        "4012888888881881",
        "4222222222222",
        "4000056655665556",
        "5555555555554444",
        "5105105105105100",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "6445644564456445",
        "3530111333300000",
        "3566002020360505",
        "30569309025904",
        "38520000023237",
        "36227206271667",
        "6200000000000005",
        "6759649826438453",
        "2200000000000004",
    ];

    #[test]
    fn finds_test_cards() {
        for c in TEST_CARDS {
            assert_eq!(cards(c), [*c], "{c}");
            let spaced = format!("card: {} exp 12/29", group(c, ' '));
            assert_eq!(cards(&spaced), [group(c, ' ').as_str()], "{spaced}");
            let dashed = format!("\"{}\"", group(c, '-'));
            assert_eq!(cards(&dashed), [group(c, '-').as_str()], "{dashed}");
        }
        assert_eq!(cards("3782 822463 10005"), ["3782 822463 10005"]);
        assert_eq!(cards("n=4111111111111111&x"), ["4111111111111111"]);
    }

    fn group(c: &str, sep: char) -> String {
        if c.len() == 15 || c.len() == 14 {
            return format!("{}{sep}{}{sep}{}", &c[..4], &c[4..10], &c[10..]);
        }
        let mut out = String::new();
        for (k, ch) in c.chars().enumerate() {
            if k > 0 && k % 4 == 0 {
                out.push(sep);
            }
            out.push(ch);
        }
        out
    }

    #[test]
    fn rejects_lookalikes() {
        for s in [
            "4111111111111112",              // Luhn
            "1234567812345670",              // no issuer (Luhn ok)
            "1735689600000",                 // epoch ms
            "1735689600000000",              // epoch µs
            "1735689600000000000",           // epoch ns
            "41111111111111110",             // 17 digits Visa
            "94111111111111111",             // longer run
            "0.4111111111111111",            // fraction
            "4111111111111111.25",           // decimal
            "x4111111111111111",             // glued
            "4111111111111111abc",           // glued
            "4111 1111 1111 1111 1111 1111", // too many groups
            "1 4111-1111-1111-1111-",        // mixed ok? (see below)
            "4111-1111 1111-1111",           // mixed separators
            "4111  1111  1111  1111",        // double spaces
            "9 4111 1111 1111 1111",         // tail of a longer grouped number
            "41111 1111 1111 111",           // bad grouping
        ] {
            if s == "1 4111-1111-1111-1111-" {
                assert_eq!(cards(s), ["4111-1111-1111-1111"]);
                continue;
            }
            assert!(cards(s).is_empty(), "{s}");
        }
    }

    proptest::proptest! {
        /// The fast Luhn against the textbook one: the number plus its check digit
        /// is valid, and any other last digit is not.
        #[test]
        fn luhn_matches_reference(payload in proptest::collection::vec(0u8..10, 1..25)) {
            let doubled_sum: u32 = payload
                .iter()
                .rev()
                .enumerate()
                .map(|(k, &d)| {
                    let d = u32::from(d);
                    if k % 2 == 0 { (2 * d) / 10 + (2 * d) % 10 } else { d }
                })
                .sum();
            let check = ((10 - doubled_sum % 10) % 10) as u8;
            for last in 0..10u8 {
                let mut digits: Vec<u8> = payload.iter().map(|d| b'0' + d).collect();
                digits.push(b'0' + last);
                proptest::prop_assert_eq!(luhn(&digits), last == check);
            }
        }
    }

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(luhn(b""));
    }
}
