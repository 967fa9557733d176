//! US Social Security numbers.
//!
//! Rule: exactly `AAA-GG-SSSS` with dashes, where the area `AAA` is not `000`, `666` or
//! `900–999`, the group `GG` is not `00` and the serial `SSSS` is not `0000` (the SSA's
//! never-issued ranges). Not glued to a letter or digit, not after a dash or dot that
//! follows a digit, not followed by a dash or dot and a digit. Bare nine-digit numbers
//! and space-separated forms are never SSNs: too many ids look like them.

use super::bytes::{at, before, is_alnum, is_digit};

/// An SSN starting at `i`; returns its end.
pub(super) fn at_pos(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i + 11)?;
    let shape = s.iter().enumerate().all(|(k, &c)| match k {
        3 | 6 => c == b'-',
        _ => is_digit(c),
    });
    if !shape {
        return None;
    }
    let prev = before(b, i);
    if is_alnum(prev) || (matches!(prev, b'-' | b'.') && i >= 1 && is_digit(before(b, i - 1))) {
        return None;
    }
    let next = at(b, i + 11);
    if is_alnum(next) || (matches!(next, b'-' | b'.') && is_digit(at(b, i + 12))) {
        return None;
    }
    let area = &s[0..3];
    if area == b"000"
        || area == b"666"
        || area[0] == b'9'
        || &s[4..6] == b"00"
        || &s[7..11] == b"0000"
    {
        return None;
    }
    Some(i + 11)
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detector, Detectors};

    fn ssns(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Ssn)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    #[test]
    fn finds_ssns() {
        assert_eq!(ssns("123-45-6789"), ["123-45-6789"]);
        assert_eq!(ssns("ssn=078-05-1120;"), ["078-05-1120"]);
        assert_eq!(ssns("(665-01-0001)"), ["665-01-0001"]);
        assert_eq!(ssns("899-99-9999."), ["899-99-9999"]);
    }

    #[test]
    fn rejects_invalid_and_lookalikes() {
        for s in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123456789",
            "123 45 6789",
            "1123-45-6789",
            "123-45-67890",
            "123-45-6789-1",
            "9-123-45-6789",
            "a123-45-6789",
            "123-45-6789b",
            "123-456-7890x",
            "12-34-5678",
        ] {
            assert!(ssns(s).is_empty(), "{s}");
        }
    }
}
