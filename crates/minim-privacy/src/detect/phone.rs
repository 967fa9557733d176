//! Phone numbers, in three accepted forms. Everything else (bare digit runs without a
//! `+`, dates, times, versions, prices, IPs, UUIDs, epoch timestamps, order numbers) is
//! not a phone number.
//!
//! 1. **International**: `+`, a country code starting with 1–9, then 8–15 digits in
//!    all (E.164), in groups separated by one space (or no-break space), `-` or `.`,
//!    with at most one
//!    parenthesized group: `+14155550132`, `+1 415-555-0132`, `+1 (415) 555-0132`,
//!    `+44 (0)20 7946 0958` (a `(0)` trunk prefix is not counted), `+33 6 12 34 56 78`.
//!    When the groups run past 15 digits or the last one is glued to a letter, the
//!    longest prefix of whole groups holding 8–15 digits is the number; a single run of
//!    more than 15 digits is not a number.
//! 2. **NANP** (US/Canada): `AAA-EEE-NNNN`, `AAA.EEE.NNNN`, `AAA EEE NNNN` (one
//!    separator throughout), `(AAA) EEE-NNNN` or `(AAA)EEE-NNNN` (then `-`, `.` or a
//!    space before the last four), optionally after `1` and a separator
//!    (`1-800-555-0199`); the area code starts with 2–9.
//! 3. **National with trunk prefix** (most of Europe, Latin America, Asia): a first
//!    group of 2–5 digits starting with `0` and a non-zero digit, then groups of 2–8
//!    digits, one kind of separator throughout (space or no-break space, `-`, `.`; `/`
//!    only for a single
//!    `area/number` pair with a 3–5 digit area not inside a path), 9–12 digits in all:
//!    `030 1234567`, `020 7946 0958`, `06 12 34 56 78`, `06.12.34.56.78`,
//!    `089/1234567`. Dates such as `05.01.2026` have too few digits.
//!
//! In every form the number is not glued to a letter or digit on either side, does not
//! follow its own separator (or `.`, `-`) after a digit (the tail of a longer number),
//! and is not followed by its separator (or `.`, `-`) and a digit.

use super::bytes::{at, before, digits_from, is_alnum, is_digit};

const MIN_E164: usize = 8;
const MAX_E164: usize = 15;
const MAX_GROUPS: usize = 12;

/// An international number at the `+` at `i`; returns its end.
pub(super) fn international(b: &[u8], i: usize) -> Option<usize> {
    let prev = before(b, i);
    if is_alnum(prev) || prev == b'+' || !matches!(at(b, i + 1), b'1'..=b'9') {
        return None;
    }
    let mut p = i + 1;
    let mut digits = 0;
    let mut groups = 0;
    let mut best = None;
    let mut paren_open = false;
    let mut paren_used = false;
    loop {
        let g = digits_from(b, p);
        let trunk = g == 1 && b[p] == b'0';
        p += g;
        groups += 1;
        let mut counted = g;
        let closed = paren_open;
        if paren_open {
            if at(b, p) != b')' {
                // Only one group inside the parentheses.
                break;
            }
            p += 1;
            if trunk {
                counted = 0;
            }
        }
        digits += counted;
        if digits > MAX_E164 {
            break;
        }
        if digits >= MIN_E164 && !is_alnum(at(b, p)) {
            best = Some(p);
        }
        if groups == MAX_GROUPS {
            break;
        }
        let mut q = p;
        if let Some((kind, n)) = separator(b, q)
            && kind != b'/'
        {
            q += n;
        }
        let open = !paren_used && at(b, q) == b'(';
        if open {
            q += 1;
        }
        // After `)` the next group may follow directly: `(0)20`.
        if (q == p && !closed) || !is_digit(at(b, q)) {
            break;
        }
        paren_open = open;
        paren_used |= open;
        p = q;
    }
    best
}

/// A NANP number at `i` (its first digit, the `1` of a `1-` prefix, or its `(`);
/// returns its end.
pub(super) fn nanp(b: &[u8], i: usize) -> Option<usize> {
    if is_alnum(before(b, i)) {
        return None;
    }
    let mut p = i;
    let mut lead = None;
    if at(b, p) == b'1' && matches!(at(b, p + 1), b' ' | b'-' | b'.') {
        lead = Some(at(b, p + 1));
        p += 2;
    }
    let paren = at(b, p) == b'(';
    if paren {
        p += 1;
    }
    if digits_from(b, p) != 3 || !matches!(at(b, p), b'2'..=b'9') {
        return None;
    }
    p += 3;
    let sep1 = if paren {
        if at(b, p) != b')' {
            return None;
        }
        p += 1;
        if at(b, p) == b' ' {
            p += 1;
        }
        None
    } else {
        let s = at(b, p);
        if !matches!(s, b'-' | b'.' | b' ') {
            return None;
        }
        p += 1;
        Some(s)
    };
    if digits_from(b, p) != 3 {
        return None;
    }
    p += 3;
    let sep2 = at(b, p);
    let sep_ok = match sep1 {
        Some(s) => sep2 == s,
        None => matches!(sep2, b'-' | b'.' | b' '),
    };
    if !sep_ok {
        return None;
    }
    p += 1;
    if digits_from(b, p) != 4 {
        return None;
    }
    p += 4;
    let own = lead.or(sep1).unwrap_or(sep2);
    (!continues_left(b, i, own) && !continues_right(b, p, sep2)).then_some(p)
}

/// A national number with a trunk `0` at `i`; returns its end.
pub(super) fn trunk0(b: &[u8], i: usize) -> Option<usize> {
    let g0 = digits_from(b, i);
    if at(b, i) != b'0' || !matches!(at(b, i + 1), b'1'..=b'9') || !(2..=5).contains(&g0) {
        return None;
    }
    let (sep, _) = separator(b, i + g0)?;
    if continues_left(b, i, sep) {
        return None;
    }
    let mut p = i + g0;
    let mut total = g0;
    let mut groups = 1;
    while let Some((kind, n)) = separator(b, p)
        && kind == sep
        && is_digit(at(b, p + n))
    {
        let g = digits_from(b, p + n);
        if !(2..=8).contains(&g) {
            return None;
        }
        p += n + g;
        total += g;
        groups += 1;
        if groups > 6 || total > 12 {
            return None;
        }
    }
    if groups < 2 || total < 9 || continues_right(b, p, sep) {
        return None;
    }
    if sep == b'/' && (groups != 2 || g0 < 3 || before(b, i) == b'/' || at(b, p) == b'/') {
        return None;
    }
    Some(p)
}

/// The digit-group separator at `p`, as `(kind, byte length)`: `-`, `.`, `/`, or a
/// space, which includes the no-break spaces typeset text puts in numbers (U+00A0,
/// U+202F; their bytes lie between two ASCII digits, so spans stay on char boundaries).
pub(super) fn separator(b: &[u8], p: usize) -> Option<(u8, usize)> {
    match at(b, p) {
        c @ (b' ' | b'-' | b'.' | b'/') => Some((c, 1)),
        0xc2 if at(b, p + 1) == 0xa0 => Some((b' ', 2)),
        0xe2 if at(b, p + 1) == 0x80 && at(b, p + 2) == 0xaf => Some((b' ', 3)),
        _ => None,
    }
}

/// The byte before `i` is `sep`, `.` or `-` right after a digit: `i` is inside a
/// longer number.
fn continues_left(b: &[u8], i: usize, sep: u8) -> bool {
    let prev = before(b, i);
    (prev == sep || matches!(prev, b'.' | b'-')) && i >= 1 && is_digit(before(b, i - 1))
}

/// The number ending at `end` goes on (a letter or digit, or `sep`, `.`, `-` and a
/// digit).
fn continues_right(b: &[u8], end: usize, sep: u8) -> bool {
    let next = at(b, end);
    is_alnum(next) || ((next == sep || matches!(next, b'.' | b'-')) && is_digit(at(b, end + 1)))
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detector, Detectors};

    fn phones(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Phone)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    fn one(s: &str, want: &str) {
        assert_eq!(phones(s), [want], "in {s:?}");
    }

    #[test]
    fn international() {
        for p in [
            "+14155550132",
            "+1 415-555-0132",
            "+1 (415) 555-0132",
            "+1 415 555 0132",
            "+1.415.555.0132",
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+49 30 1234567",
            "+33 6 12 34 56 78",
            "+55 11 91234-5678",
            "+81 90-1234-5678",
            "+353 87 123 4567",
            "+54 9 11 1234-5678",
            "+4930123456",
            "+123456789012345",
            "+33\u{a0}6\u{a0}12\u{a0}34\u{a0}56\u{a0}78",
            "+49\u{202f}30\u{202f}1234567",
        ] {
            one(p, p);
            one(&format!("tel:{p}"), p);
            one(&format!("phone=\"{p}\", x"), p);
        }
        // Past 15 digits: the longest prefix of whole groups.
        one("+1 415 555 0132 98765", "+1 415 555 0132");
        // A trailing group glued to letters is not part of the number.
        one("+49 30 1234567 8x", "+49 30 1234567");
    }

    #[test]
    fn international_rejects() {
        for s in [
            "+1234567",
            "+1234567890123456",
            "+0 30 1234567",
            "+05:30",
            "2026-01-05T10:00:00+01:00",
            "a+14155550132",
            "1+14155550132",
            "+14155550132x",
            "C++",
            "+1 (415 555-0132",
            "+100 points",
            "iphone+15+pro",
        ] {
            assert!(phones(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn nanp() {
        for p in [
            "(555) 123-4567",
            "(555)123-4567",
            "(415) 555 0132",
            "555-123-4567",
            "555.123.4567",
            "555 123 4567",
            "1-800-555-0199",
            "1 (800) 555-0199",
            "1 800 555 0199",
        ] {
            one(p, p);
            one(&format!("call {p} now"), p);
            one(&format!("[{p}]"), p);
        }
    }

    #[test]
    fn nanp_rejects() {
        for s in [
            "155-123-4567",
            "555-123-45678",
            "555-123-4567-1",
            "5555-123-4567",
            "555-123 4567",
            "555.123-4567",
            "1 555-123-4567-2",
            "2 555 123 4567",
            "(555) 123-456",
            "(55) 123-4567",
            "x(555) 123-4567",
            "555-1234",
            "5551234567",
            "4155550132",
            "rgb(255, 128, 0)",
            "1.555.123.45",
        ] {
            assert!(phones(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn trunk_prefix() {
        for p in [
            "030 1234567",
            "020 7946 0958",
            "06 12 34 56 78",
            "06-12-34-56-78",
            "06.12.34.56.78",
            "0151 12345678",
            "089/1234567",
            "020-1234567",
            "055-123-4567",
            "06\u{a0}12\u{a0}34\u{a0}56\u{a0}78",
            "030\u{202f}1234567",
        ] {
            one(p, p);
            one(&format!("Tel. {p}, ab 9 Uhr"), p);
        }
    }

    #[test]
    fn trunk_prefix_rejects() {
        for s in [
            "05.01.2026",
            "01/02/2026",
            "05-01-26",
            "0612345678",
            "00 12 34 56 78",
            "0 612 345 678",
            "06 1 2 3 4 5 6 7",
            "/items/0301/234567",
            "0301/234567/1",
            "030 1234567 8",
            "030 1234567-8",
            "06 12 34 56 78 90 12",
            "030 12345678901",
        ] {
            assert!(phones(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn benign_numbers() {
        for s in [
            "2026-01-05",
            "2026-01-05T10:00:00.123Z",
            "10:00:00",
            "1.2.3.4",
            "v1.2.3",
            "1735689600",
            "1735689600000",
            "$1,299.99",
            "ORD-2026-000123",
            "550e8400-e29b-41d4-a716-446655440000",
            "12345678-1234-1234-1234-123456789012",
            "Chrome/120.0.6099.109",
            "qty 3, total 45.00",
        ] {
            assert!(phones(s).is_empty(), "{s}");
        }
    }
}
