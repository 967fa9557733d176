//! PII and credential detection: one pass over a string finds e-mail addresses, phone
//! numbers, payment cards, IBANs, IP addresses, US SSNs, JWTs and secret keys.
//!
//! Every string of every event (values, URLs, referrers, property names) goes through
//! [`Detectors::scan`] before anything reaches disk, so the scanner is built for speed
//! and for few false positives on ordinary analytics data:
//!
//! * **One pass, cheap triggers.** A 256-entry byte-class table sends each byte to a
//!   handler: letters skip their whole word after a look at its first bytes (secret-key
//!   prefixes, IBAN country codes, `eyJ`), digits run the numeric validators once per
//!   digit run, and `@`, `+`, `(`, `:` and `-----` start the e-mail, international
//!   phone, NANP phone, IPv6 and PEM validators. Nothing allocates; findings are appended
//!   to the caller's `Vec`.
//! * **Validators, not patterns.** Each candidate is checked structurally (Luhn and
//!   issuer ranges for cards, ISO 7064 mod 97 and the country's length for IBANs,
//!   `std::net` parsing for IPs, SSA rules for SSNs, base64url-decoded JSON header for
//!   JWTs) and must stand alone: a number inside a longer digit run, glued to letters,
//!   or after a decimal point is not a finding. All scans are bounded; there is no
//!   backtracking, and the work per input byte is bounded by a constant.
//! * **ASCII spans.** Every finding starts and ends next to ASCII bytes (or at the end
//!   of the text), so spans always fall on `char` boundaries; multi-byte characters are
//!   never split and no input panics.
//!
//! The exact rule of each detector is documented at the top of its file (`email.rs`,
//! `phone.rs`, `card.rs`, `iban.rs`, `ip.rs`, `ssn.rs`, `jwt.rs`, `secret.rs`);
//! credential property names are in `names.rs`.
//!
//! Percent-encoded text (`a%40b.com`) is not decoded here: callers that handle URLs
//! decode first and scan the decoded text (the pipeline does).

mod bytes;
mod card;
mod email;
mod iban;
mod ip;
mod jwt;
mod names;
mod phone;
mod secret;
mod ssn;

use std::fmt;

use memchr::memmem;

use self::bytes::{CLASS, Class, at, before, digits_from, is_alnum, is_alpha, skip_alnum};
pub use self::names::is_secret_name;

/// One kind of sensitive data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    Email,
    Phone,
    Card,
    Iban,
    Ip,
    Ssn,
    Jwt,
    SecretKey,
}

impl Detector {
    pub const ALL: [Detector; 8] = [
        Detector::Email,
        Detector::Phone,
        Detector::Card,
        Detector::Iban,
        Detector::Ip,
        Detector::Ssn,
        Detector::Jwt,
        Detector::SecretKey,
    ];

    /// Stable snake_case name used in counters/metrics/config: "email", "phone", "card",
    /// "iban", "ip", "ssn", "jwt", "secret_key".
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::Card => "card",
            Detector::Iban => "iban",
            Detector::Ip => "ip",
            Detector::Ssn => "ssn",
            Detector::Jwt => "jwt",
            Detector::SecretKey => "secret_key",
        }
    }

    /// The detector named `s` (exactly as [`Detector::name`] spells it).
    pub fn from_name(s: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == s)
    }

    /// JWTs and secret keys are credentials: always dropped, never kept in any form.
    pub fn is_secret(self) -> bool {
        matches!(self, Detector::Jwt | Detector::SecretKey)
    }

    /// Tie-break between two overlapping findings of the same length: the more specific
    /// format wins (a JWT is more specific than a generic bearer token, an IBAN than a
    /// phone number).
    fn specificity(self) -> u8 {
        match self {
            Detector::Jwt => 7,
            Detector::SecretKey => 6,
            Detector::Iban => 5,
            Detector::Card => 4,
            Detector::Ssn => 3,
            Detector::Email => 2,
            Detector::Ip => 1,
            Detector::Phone => 0,
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs longer than this that a failed secret-key candidate walked are skipped.
const LONG_RUN: usize = 64;

/// What a detector found: a byte range of the scanned text, on `char` boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub detector: Detector,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether `self` should replace `other` when the two overlap: secrets first, then
    /// the longer span, then the more specific detector.
    fn beats(&self, other: &Finding) -> bool {
        let (a, b) = (self.detector, other.detector);
        if a.is_secret() != b.is_secret() {
            return a.is_secret();
        }
        if self.len() != other.len() {
            return self.len() > other.len();
        }
        a.specificity() > b.specificity()
    }
}

/// A validator's candidate finding, before overlap resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    pub detector: Detector,
    pub start: usize,
    pub end: usize,
}

/// The prebuilt state shared by all scans. Built once, shared by all threads.
pub struct Detectors {
    /// Finds the `-----END ` line of a PEM private key block.
    pem_end: memmem::Finder<'static>,
}

impl Default for Detectors {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Detectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Detectors")
    }
}

/// Appends findings to the caller's vector, resolving overlaps with the findings this
/// scan already made (never those before `base`).
struct Sink<'o> {
    out: &'o mut Vec<Finding>,
    base: usize,
}

impl Sink<'_> {
    fn last_end(&self) -> usize {
        match self.out.last() {
            Some(f) if self.out.len() > self.base => f.end,
            _ => 0,
        }
    }

    /// Adds `f` unless an overlapping earlier finding beats it; earlier findings it beats
    /// are removed. Returns whether `f` was kept.
    fn push(&mut self, f: Finding) -> bool {
        debug_assert!(f.start < f.end);
        let mut keep_from = self.out.len();
        while keep_from > self.base {
            let prev = &self.out[keep_from - 1];
            if prev.end <= f.start {
                break;
            }
            if !f.beats(prev) {
                return false;
            }
            keep_from -= 1;
        }
        self.out.truncate(keep_from);
        self.out.push(f);
        true
    }
}

impl Detectors {
    pub fn new() -> Self {
        Self {
            pem_end: memmem::Finder::new(b"-----END ").into_owned(),
        }
    }

    /// Appends the findings in `text` to `out`, in order of `start`, non-overlapping
    /// (when two overlap, secrets win, then the longer one, then the more specific
    /// detector). Does not clear `out`.
    pub fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        let mut sink = Sink {
            base: out.len(),
            out,
        };
        // IPv6 candidates are found from their first colon; this marks the end of the
        // last colon run looked at, so a long run is not re-parsed at every colon.
        let mut v6_done = 0usize;
        let mut i = 0usize;
        while i < b.len() {
            let next = match CLASS[usize::from(b[i])] {
                Class::Other => {
                    // Spaces, punctuation and non-ASCII text: skip the whole stretch.
                    let mut j = i + 1;
                    while j < b.len() && CLASS[usize::from(b[j])] == Class::Other {
                        j += 1;
                    }
                    j
                }
                Class::Letter => self.on_letter(b, i, &mut sink),
                Class::Digit => on_digit(text, b, i, &mut sink),
                Class::At => on_at(b, i, &mut sink),
                Class::Plus => on_plus(b, i, &mut sink),
                Class::LParen => on_lparen(b, i, &mut sink),
                Class::Colon => {
                    if i < v6_done {
                        i + 1
                    } else {
                        let (hit, done) = ip::v6_at_colon(text, i, sink.last_end());
                        v6_done = done;
                        match hit {
                            Some(h) if emit(&mut sink, h) => h.end,
                            _ => i + 1,
                        }
                    }
                }
                Class::Dash => self.on_dash(b, i, &mut sink),
            };
            debug_assert!(next > i, "scan must advance");
            i = next.max(i + 1);
        }
    }

    /// Convenience for tests and tools: the findings of `text` in a new vector.
    pub fn find_all(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        self.scan(text, &mut out);
        out
    }

    /// A letter: at the start of a word, secret-key prefixes, JWTs and IBANs; then the
    /// rest of the word is skipped (nothing starts inside a word).
    fn on_letter(&self, b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
        if is_alnum(before(b, i)) {
            return skip_alnum(b, i);
        }
        let mut resume = i + 1;
        if secret::may_start(b[i]) {
            let (hit, r) = secret::at_word(b, i);
            if let Some(h) = hit
                && emit(sink, h)
            {
                return h.end;
            }
            // A failed candidate that walked a long run (a token of the wrong shape) is
            // not walked again from every word start inside it, which keeps the scan
            // linear; a short run is, so nothing that starts inside it is missed.
            if r > i + LONG_RUN {
                resume = r;
            }
        }
        if is_alpha(at(b, i + 1))
            && at(b, i + 2).is_ascii_digit()
            && at(b, i + 3).is_ascii_digit()
            && let Some(end) = iban::at_pos(b, i)
            && emit(sink, hit(Detector::Iban, i, end))
        {
            return end;
        }
        skip_alnum(b, i).max(resume)
    }

    /// `-----BEGIN ... PRIVATE KEY-----`.
    fn on_dash(&self, b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
        if at(b, i + 1) != b'-' {
            return i + 1;
        }
        match secret::pem_at(b, i, &self.pem_end) {
            Some(end) if emit(sink, hit(Detector::SecretKey, i, end)) => end,
            _ => i + 1,
        }
    }
}

fn hit(detector: Detector, start: usize, end: usize) -> Hit {
    Hit {
        detector,
        start,
        end,
    }
}

fn emit(sink: &mut Sink<'_>, h: Hit) -> bool {
    if h.start >= h.end {
        return false;
    }
    sink.push(Finding {
        detector: h.detector,
        start: h.start,
        end: h.end,
    })
}

/// A digit: every numeric detector starts at the first digit of a run that is not glued
/// to a preceding letter or digit. Dispatch is on the length of the first digit group
/// and the byte after it, so most runs (ids, counts, dates) cost one look.
fn on_digit(text: &str, b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
    if is_alnum(before(b, i)) {
        return skip_alnum(b, i);
    }
    let g = digits_from(b, i);
    let next = at(b, i + g);
    if is_alpha(next) {
        // `3px`, `15E148`, hex ids: no numeric detector applies.
        return skip_alnum(b, i + g);
    }
    let first = b[i];
    let card_run = (13..=19).contains(&g);
    let card_groups = g == 4 && matches!(next, b' ' | b'-');
    let ssn = g == 3 && next == b'-';
    let ipv4 = g <= 3 && next == b'.';
    let nanp = (g == 3 && matches!(next, b'-' | b'.' | b' '))
        || (g == 1 && first == b'1' && matches!(next, b' ' | b'-' | b'.'));
    let trunk = first == b'0' && (2..=5).contains(&g) && phone::separator(b, i + g).is_some();
    let found = when(card_run, Detector::Card, || card::contiguous(b, i, g))
        .or_else(|| when(card_groups, Detector::Card, || card::grouped(b, i)))
        .or_else(|| when(ssn, Detector::Ssn, || ssn::at_pos(b, i)))
        .or_else(|| when(ipv4, Detector::Ip, || ip::v4(text, i)))
        .or_else(|| when(nanp, Detector::Phone, || phone::nanp(b, i)))
        .or_else(|| when(trunk, Detector::Phone, || phone::trunk0(b, i)));
    match found {
        Some((d, end)) if emit(sink, hit(d, i, end)) => end,
        _ => i + g,
    }
}

/// Runs `validate` only when its cheap precondition holds.
fn when(
    precondition: bool,
    detector: Detector,
    validate: impl FnOnce() -> Option<usize>,
) -> Option<(Detector, usize)> {
    if precondition {
        validate().map(|end| (detector, end))
    } else {
        None
    }
}

/// `@`: an e-mail address around it.
fn on_at(b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
    match email::at_sign(b, i) {
        Some((start, end)) if emit(sink, hit(Detector::Email, start, end)) => end,
        _ => i + 1,
    }
}

/// `+`: an international phone number.
fn on_plus(b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
    match phone::international(b, i) {
        Some(end) if emit(sink, hit(Detector::Phone, i, end)) => end,
        _ => i + 1,
    }
}

/// `(`: a NANP number written `(555) 123-4567`.
fn on_lparen(b: &[u8], i: usize, sink: &mut Sink<'_>) -> usize {
    if is_alnum(before(b, i)) || !at(b, i + 1).is_ascii_digit() {
        return i + 1;
    }
    match phone::nanp(b, i) {
        Some(end) if emit(sink, hit(Detector::Phone, i, end)) => end,
        _ => i + 1,
    }
}

#[cfg(test)]
mod tests;
