//! International bank account numbers (IBANs).
//!
//! Rule: a two-letter country code from the SWIFT IBAN registry, two check digits,
//! then the BBAN, exactly as long in total as that country's IBAN (DE 22, GB 22, FR 27,
//! ES 24, IT 27, NL 18, BE 16, CH 21, AT 20, PL 28, SE 24, NO 15, … 89 countries), either
//! contiguous or grouped in fours by single spaces (`DE89 3704 0044 0532 0130 00`), and
//! passing the ISO 7064 mod-97 check (remainder 1). All upper case or all lower case
//! (lower case IBANs appear in URLs); mixed case is not an IBAN. Not glued to a letter
//! or digit on either side. Unknown countries and wrong lengths never match, which is
//! what keeps hex ids (`de12ab…`) out.

use super::bytes::{at, before, is_alnum};

/// `(country, IBAN length)` from the SWIFT IBAN registry.
const COUNTRIES: &[(&[u8; 2], u8)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

const MAX_LEN: usize = 34;

/// IBAN length by country code (`[A-Z][A-Z]` as `26 * first + second`), 0 = unknown.
static LENGTHS: [u8; 26 * 26] = {
    let mut t = [0u8; 26 * 26];
    let mut k = 0;
    while k < COUNTRIES.len() {
        let (cc, len) = COUNTRIES[k];
        t[(cc[0] - b'A') as usize * 26 + (cc[1] - b'A') as usize] = len;
        k += 1;
    }
    t
};

/// The IBAN length of country `cc` (upper case), if it has IBANs.
pub(super) fn country_length(cc: [u8; 2]) -> Option<usize> {
    let [a, b] = cc;
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() {
        return None;
    }
    let len = LENGTHS[usize::from(a - b'A') * 26 + usize::from(b - b'A')];
    (len > 0).then_some(usize::from(len))
}

/// An IBAN starting at `i`; returns its end.
pub(super) fn at_pos(b: &[u8], i: usize) -> Option<usize> {
    let (c0, c1) = (at(b, i), at(b, i + 1));
    let lower = c0.is_ascii_lowercase();
    if !c0.is_ascii_alphabetic() || c1.is_ascii_lowercase() != lower || is_alnum(before(b, i)) {
        return None;
    }
    let len = country_length([c0.to_ascii_uppercase(), c1.to_ascii_uppercase()])?;
    if !at(b, i + 2).is_ascii_digit() || !at(b, i + 3).is_ascii_digit() {
        return None;
    }
    let mut buf = [0u8; MAX_LEN];
    let mut spaced = None;
    let mut p = i;
    for (k, slot) in buf.iter_mut().enumerate().take(len) {
        if k > 0 && k % 4 == 0 {
            let space = *spaced.get_or_insert(at(b, p) == b' ');
            if space {
                if at(b, p) != b' ' {
                    return None;
                }
                p += 1;
            }
        }
        let c = at(b, p);
        if !c.is_ascii_alphanumeric()
            || (c.is_ascii_alphabetic() && c.is_ascii_lowercase() != lower)
        {
            return None;
        }
        *slot = c.to_ascii_uppercase();
        p += 1;
    }
    if is_alnum(at(b, p)) || !mod97_ok(&buf[..len]) {
        return None;
    }
    Some(p)
}

/// ISO 7064 MOD 97-10 over an upper-case IBAN: the first four characters moved to the
/// end, letters as 10–35, remainder 1.
pub(super) fn mod97_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut r = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        r = match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (r * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    r == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, Detectors};

    fn ibans(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Iban)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    /// Example IBANs from the SWIFT registry and national banks.
    const VALID: &[&str] = &[
        "DE89370400440532013000",
        "GB29NWBK60161331926819",
        "FR1420041010050500013M02606",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "CH9300762011623852957",
        "AT611904300234573201",
        "PL61109010140000071219812874",
        "SE4550000000058398257466",
        "NO9386011117947",
        "MT84MALT011000012345MTLCAST001S",
    ];

    #[test]
    fn finds_valid_ibans() {
        for iban in VALID {
            assert_eq!(ibans(iban), [*iban]);
            let grouped: String = iban
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ");
            let text = format!("IBAN: {grouped}, thanks");
            assert_eq!(ibans(&text), [grouped.as_str()]);
            let lower = iban.to_ascii_lowercase();
            assert_eq!(ibans(&format!("?iban={lower}&x=1")), [lower.as_str()]);
        }
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "DE89370400440532013001",  // check digits
            "DE8937040044053201300",   // too short
            "DE893704004405320130000", // too long
            "XX89370400440532013000",  // unknown country
            "De89370400440532013000",  // mixed case
            "DE89 3704 0044 0532 013000",
            "DE89 37040044 0532 0130 00",
            "xDE89370400440532013000",
            "de89370400440532013000ab12",
        ] {
            assert!(ibans(s).is_empty(), "{s}");
        }
    }

    proptest::proptest! {
        /// The streaming mod 97 against arithmetic on the whole decimal expansion,
        /// reduced with 128-bit integers 30 digits at a time.
        #[test]
        fn mod97_matches_reference(s in "[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}") {
            let b = s.as_bytes();
            let mut expansion = String::new();
            for &c in b[4..].iter().chain(&b[..4]) {
                if c.is_ascii_digit() {
                    expansion.push(char::from(c));
                } else {
                    expansion.push_str(&(u32::from(c - b'A') + 10).to_string());
                }
            }
            let mut rem = 0u128;
            for chunk in expansion.as_bytes().chunks(30) {
                let digits = std::str::from_utf8(chunk).unwrap_or("0");
                let scale = 10u128.pow(chunk.len() as u32) % 97;
                rem = (rem * scale + digits.parse::<u128>().unwrap_or(0)) % 97;
            }
            proptest::prop_assert_eq!(mod97_ok(b), rem == 1);
        }
    }

    #[test]
    fn registry_lengths() {
        assert_eq!(country_length(*b"DE"), Some(22));
        assert_eq!(country_length(*b"NO"), Some(15));
        assert_eq!(country_length(*b"RU"), Some(33));
        assert_eq!(country_length(*b"US"), None);
        assert_eq!(country_length(*b"de"), None);
        for (cc, len) in COUNTRIES {
            assert!((15..=MAX_LEN).contains(&usize::from(*len)), "{cc:?}");
        }
    }
}
