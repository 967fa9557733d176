//! Byte classes and bounds-checked byte helpers shared by the detectors.
//!
//! Reads past either end of the text return 0, which every detector treats as a
//! boundary (not a letter, digit or separator), so validators never index out of bounds.

/// What the scan loop does with a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// Spaces, punctuation without a trigger, non-ASCII bytes.
    Other,
    Letter,
    Digit,
    At,
    Plus,
    LParen,
    Colon,
    Dash,
}

pub(super) static CLASS: [Class; 256] = {
    let mut t = [Class::Other; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            Class::Letter
        } else if b.is_ascii_digit() {
            Class::Digit
        } else {
            match b {
                b'@' => Class::At,
                b'+' => Class::Plus,
                b'(' => Class::LParen,
                b':' => Class::Colon,
                b'-' => Class::Dash,
                _ => Class::Other,
            }
        };
        c += 1;
    }
    t
};

/// The byte at `i`, or 0 past the end.
#[inline]
pub(super) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte before `i`, or 0 at the start.
#[inline]
pub(super) fn before(b: &[u8], i: usize) -> u8 {
    match i.checked_sub(1) {
        Some(j) => at(b, j),
        None => 0,
    }
}

/// ASCII letters and digits, as a table: one load instead of three range checks in the
/// word-skipping loop, which is where most bytes go.
static ALNUM: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_alnum(c: u8) -> bool {
    ALNUM[usize::from(c)]
}

#[inline]
pub(super) fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

#[inline]
pub(super) fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

/// The number of consecutive ASCII digits from `i`.
#[inline]
pub(super) fn digits_from(b: &[u8], i: usize) -> usize {
    run(b, i, is_digit)
}

/// The number of consecutive bytes from `i` that satisfy `pred`.
#[inline]
pub(super) fn run(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

/// The index of the first byte at or after `i` that is not ASCII alphanumeric.
#[inline]
pub(super) fn skip_alnum(b: &[u8], i: usize) -> usize {
    i + run(b, i, is_alnum)
}

/// `b[i..]` starts with `lit`.
#[inline]
pub(super) fn starts(b: &[u8], i: usize, lit: &[u8]) -> bool {
    b.get(i..).is_some_and(|rest| rest.starts_with(lit))
}

/// `b[i..]` starts with `lit`, ignoring ASCII case.
#[inline]
pub(super) fn starts_ci(b: &[u8], i: usize, lit: &[u8]) -> bool {
    i.checked_add(lit.len())
        .and_then(|end| b.get(i..end))
        .is_some_and(|s| s.eq_ignore_ascii_case(lit))
}

/// base64url alphabet (`A-Z a-z 0-9 - _`).
#[inline]
pub(super) fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_ends_are_zero() {
        let b = b"ab";
        assert_eq!(at(b, 2), 0);
        assert_eq!(at(b, usize::MAX), 0);
        assert_eq!(before(b, 0), 0);
        assert_eq!(before(b, 1), b'a');
        assert_eq!(run(b, 5, is_alpha), 0);
        assert!(!starts(b, 1, b"bc"));
        assert!(!starts_ci(b, usize::MAX, b"a"));
    }

    #[test]
    fn classes() {
        assert_eq!(CLASS[usize::from(b'a')], Class::Letter);
        assert_eq!(CLASS[usize::from(b'Z')], Class::Letter);
        assert_eq!(CLASS[usize::from(b'7')], Class::Digit);
        assert_eq!(CLASS[usize::from(b'@')], Class::At);
        assert_eq!(CLASS[usize::from(b' ')], Class::Other);
        assert_eq!(CLASS[0xc3], Class::Other);
    }
}
