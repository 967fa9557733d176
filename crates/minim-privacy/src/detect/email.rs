//! E-mail addresses (`local@domain.tld`), found from their `@`.
//!
//! Rule:
//! * **Local part**: 1–64 bytes right before the `@`, of `A-Z a-z 0-9 . _ + -` or
//!   non-ASCII bytes (the practical subset of RFC 5322: quotes, `/ = ? & ! # %` are taken
//!   as delimiters, since they surround addresses in URLs, query strings and prose).
//!   Leading `. + -` are not part of the span; it may not end with `.`. Longer runs are
//!   not addresses.
//! * **Domain**: at least two labels of `A-Z a-z 0-9 -` or non-ASCII bytes, each 1–63
//!   bytes, not starting or ending with `-`, at most 253 bytes in all.
//! * **TLD** (the last label kept): at least two ASCII letters, or punycode `xn--…`, or
//!   all non-ASCII (IDN); never a file extension, so `logo@2x.png`, `icon@3x.webp` and
//!   `lodash@4.17.21` are not addresses. Labels after the last valid TLD (`a@b.com.1`)
//!   and non-ASCII bytes glued after an ASCII TLD (`a@b.com。`) are left out of the span.
//!
//! Case-insensitive. URL userinfo (`https://user:pw@host.com`) matches `pw@host.com`,
//! which is a credential leak worth scrubbing anyway.

use super::bytes::{at, is_alpha, run};

const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;
const MAX_DOMAIN: usize = 253;

/// TLD-shaped endings that are file extensions, not domains (`image@2x.png`).
const FILE_EXTENSIONS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"avif", b"ico", b"bmp", b"tif", b"tiff",
    b"heic", b"css", b"js", b"mjs", b"cjs", b"ts", b"tsx", b"jsx", b"map", b"json", b"html",
    b"htm", b"xml", b"txt", b"pdf", b"woff", b"woff2", b"ttf", b"otf", b"eot", b"mp3", b"mp4",
    b"webm", b"wav", b"ogg", b"gz", b"tgz", b"wasm",
];

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-') || c >= 0x80
}

fn is_label(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c >= 0x80
}

/// The address around the `@` at `at_i`, as a byte range.
pub(super) fn at_sign(b: &[u8], at_i: usize) -> Option<(usize, usize)> {
    let mut s = at_i;
    while s > 0 && is_local(b[s - 1]) {
        s -= 1;
        if at_i - s > MAX_LOCAL {
            return None;
        }
    }
    // `s` follows an ASCII byte (or is 0), so it is a char boundary; so is every
    // position after the trimmed ASCII punctuation.
    while s < at_i && matches!(b[s], b'.' | b'+' | b'-') {
        s += 1;
    }
    if s == at_i || b[at_i - 1] == b'.' {
        return None;
    }
    domain_end(b, at_i + 1).map(|end| (s, end))
}

/// The end of the domain starting at `d0`, or `None` when there is no valid one.
fn domain_end(b: &[u8], d0: usize) -> Option<usize> {
    let mut p = d0;
    let mut labels = 0;
    let mut best = None;
    loop {
        // Capped: a label longer than 63 bytes ends the domain anyway.
        let len = b.get(p..).map_or(0, |rest| {
            run(&rest[..rest.len().min(MAX_LABEL + 1)], 0, is_label)
        });
        if len == 0 || len > MAX_LABEL {
            break;
        }
        let le = p + len;
        if b[p] == b'-' || b[le - 1] == b'-' || le - d0 > MAX_DOMAIN {
            break;
        }
        labels += 1;
        if labels >= 2
            && let Some(end) = tld_end(b, p, le)
        {
            best = Some(end);
        }
        if at(b, le) == b'.' && is_label(at(b, le + 1)) {
            p = le + 1;
        } else {
            break;
        }
    }
    best
}

/// Where the label `b[ls..le]` ends if it is a valid TLD.
fn tld_end(b: &[u8], ls: usize, le: usize) -> Option<usize> {
    let label = &b[ls..le];
    if label[0] >= 0x80 {
        // An IDN TLD: non-ASCII throughout.
        return label.iter().all(|&c| c >= 0x80).then_some(le);
    }
    if label.len() > 4 && label[..4].eq_ignore_ascii_case(b"xn--") {
        return label[4..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            .then_some(le);
    }
    let letters = run(label, 0, is_alpha);
    let tld = &label[..letters];
    let clean_end = letters == label.len() || label[letters] >= 0x80;
    let is_file = FILE_EXTENSIONS.iter().any(|e| tld.eq_ignore_ascii_case(e));
    (letters >= 2 && clean_end && !is_file).then_some(ls + letters)
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detector, Detectors};

    fn emails(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Email)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(emails("jane.doe@gmail.com"), ["jane.doe@gmail.com"]);
        assert_eq!(
            emails("mail jane_doe+news@mail.example.co.uk now"),
            ["jane_doe+news@mail.example.co.uk"]
        );
        assert_eq!(emails("<JANE@EXAMPLE.COM>"), ["JANE@EXAMPLE.COM"]);
        assert_eq!(emails("\"a@b.io\""), ["a@b.io"]);
        assert_eq!(emails("x?email=j.d@x.org&y=1"), ["j.d@x.org"]);
        assert_eq!(
            emails("/users/jd1985@fabrikam.dev/settings"),
            ["jd1985@fabrikam.dev"]
        );
        assert_eq!(emails("write to a@b.com."), ["a@b.com"]);
        assert_eq!(emails("a@b.com.1"), ["a@b.com"]);
        assert_eq!(emails("...a@b.com"), ["a@b.com"]);
        assert_eq!(emails("a@xn--mnchen-3ya.de"), ["a@xn--mnchen-3ya.de"]);
        assert_eq!(emails("a@xn--p1ai.xn--p1ai"), ["a@xn--p1ai.xn--p1ai"]);
    }

    #[test]
    fn non_ascii_stays_on_char_boundaries() {
        assert_eq!(emails("josé@münchen.de"), ["josé@münchen.de"]);
        assert_eq!(emails("иван@пример.рф"), ["иван@пример.рф"]);
        assert_eq!(emails("mail:a@b.com。"), ["a@b.com"]);
        assert_eq!(emails("用户a@b.com谢谢"), ["用户a@b.com"]);
    }

    #[test]
    fn rejects_non_addresses() {
        for s in [
            "@jane",
            "jane@",
            "jane@localhost",
            "logo@2x.png",
            "icon@3x.WEBP",
            "lodash@4.17.21",
            "@babel/core@7.24.0",
            "a@b.c",
            "a@-b.com",
            "a@b-.com",
            "a.@b.com",
            "a@b..com",
            "@media (max-width: 600px)",
            "50%@x",
            "price @ 12.50",
        ] {
            assert!(emails(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn length_limits() {
        let long_local = format!("{}@b.com", "a".repeat(65));
        assert!(emails(&long_local).is_empty());
        let ok_local = format!("{}@b.com", "a".repeat(64));
        assert_eq!(emails(&ok_local).len(), 1);
        let long_label = format!("a@{}.com", "b".repeat(64));
        assert!(emails(&long_label).is_empty());
    }
}
