//! IP addresses, validated with `std::net` parsing on the candidate span.
//!
//! **IPv4** rule: a dotted quad of four 1–3 digit groups that `std::net::Ipv4Addr`
//! parses (octets 0–255, no leading zeros), not glued to a letter or digit, not after a
//! `.` and not followed by `.` and a digit, so `1.2.3`, `1.2.3.4.5`, `v1.2.3.4` and
//! `build.1.2.3.4` do not match. A port (`10.0.0.1:8080`) or a comma list is fine.
//! Addresses of the form `x.0.0.0` are not reported: they are network numbers, not
//! hosts, and `Chrome/120.0.0.0` is how every reduced user-agent string spells its
//! version. Any other four-part version (`4.5.2.1`) is indistinguishable from an
//! address and is reported: an IPv4 literal is an IP.
//!
//! **IPv6** rule: found from its first colon; the candidate is the run of hex digits,
//! colons and dots around it (at most 4 hex digits before the first colon, at most 45
//! bytes, trailing `.` dropped), not glued to a letter or digit or after a `.`; it must
//! contain at least two colons and three hex digits and parse as `std::net::Ipv6Addr`
//! (full, `::`-compressed, IPv4-mapped `::ffff:1.2.3.4`). A zone (`%eth0`) is not part of
//! the span. `::1` (loopback, not personal) and `a::b` are not reported; times
//! (`10:00:00`) and MAC addresses do not parse.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::bytes::{at, before, digits_from, is_alnum, is_digit};
use super::{Detector, Hit};

/// Longest textual IPv6 address (`ffff:…:ffff:255.255.255.255`).
const MAX_V6: usize = 45;

/// An IPv4 address starting at the digit `i`; returns its end.
pub(super) fn v4(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let prev = before(b, i);
    if is_alnum(prev) || prev == b'.' {
        return None;
    }
    let mut p = i;
    for k in 0..4 {
        let g = digits_from(b, p);
        if g == 0 || g > 3 {
            return None;
        }
        p += g;
        if k < 3 {
            if at(b, p) != b'.' {
                return None;
            }
            p += 1;
        }
    }
    let next = at(b, p);
    if is_alnum(next) || (next == b'.' && is_digit(at(b, p + 1))) {
        return None;
    }
    let addr: Ipv4Addr = text.get(i..p)?.parse().ok()?;
    let o = addr.octets();
    if o[1..] == [0, 0, 0] {
        return None;
    }
    Some(p)
}

fn is_v6_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// The IPv6 address whose first colon is at `colon`, if any, and the end of the run of
/// address bytes looked at (the scan does not look for IPv6 again before it). `floor`
/// is the end of the previous finding: the candidate does not reach back over it.
pub(super) fn v6_at_colon(text: &str, colon: usize, floor: usize) -> (Option<Hit>, usize) {
    let b = text.as_bytes();
    let mut s = colon;
    while s > floor && colon - s <= 4 && b[s - 1].is_ascii_hexdigit() {
        s -= 1;
    }
    if colon - s > 4 {
        return (None, colon + 1);
    }
    let prev = before(b, s);
    if s > floor && (is_alnum(prev) || prev == b'.') {
        return (None, colon + 1);
    }
    if at(b, s) == b':' && at(b, s + 1) != b':' {
        // `x:…`: a single leading colon (URL scheme, `key:value`); the address, if any,
        // starts after it.
        return (None, colon + 1);
    }
    let e = colon + super::bytes::run(b, colon, is_v6_byte);
    if is_alnum(at(b, e)) || e - s > MAX_V6 + 1 {
        return (None, e);
    }
    let mut t = e;
    while t > s && b[t - 1] == b'.' {
        t -= 1;
    }
    if t >= s + 2 && b[t - 1] == b':' && b[t - 2] != b':' {
        t -= 1;
    }
    let span = &b[s..t];
    let colons = span.iter().filter(|&&c| c == b':').count();
    let hex = span.iter().filter(|c| c.is_ascii_hexdigit()).count();
    if colons < 2 || hex < 3 || span.len() > MAX_V6 {
        return (None, e);
    }
    let ok = text
        .get(s..t)
        .is_some_and(|cand| cand.parse::<Ipv6Addr>().is_ok());
    let hit = ok.then_some(Hit {
        detector: Detector::Ip,
        start: s,
        end: t,
    });
    (hit, e)
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detector, Detectors};

    fn ips(s: &str) -> Vec<&str> {
        Detectors::new()
            .find_all(s)
            .into_iter()
            .filter(|f| f.detector == Detector::Ip)
            .map(|f| &s[f.start..f.end])
            .collect()
    }

    #[test]
    fn finds_ipv4() {
        assert_eq!(ips("10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(ips("client 192.168.1.254 said"), ["192.168.1.254"]);
        assert_eq!(ips("http://8.8.8.8:53/x"), ["8.8.8.8"]);
        assert_eq!(ips("ips=1.2.3.4,5.6.7.8"), ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(ips("ends 255.255.255.255."), ["255.255.255.255"]);
        assert_eq!(ips("(100.64.0.1)"), ["100.64.0.1"]);
    }

    #[test]
    fn rejects_ipv4_lookalikes() {
        for s in [
            "1.2.3",
            "1.2.3.4.5",
            "v1.2.3.4",
            "1.2.3.4a",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.0004",
            "Chrome/120.0.0.0 Safari/537.36",
            "0.0.0.0",
            "3.1.4.1.5",
            "x.1.2.3.4",
            "2026.01.05",
            "19.99",
        ] {
            assert!(ips(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn finds_ipv6() {
        for a in [
            "2001:db8::1",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::ffff:192.0.2.128",
            "2001:DB8::8:800:200C:417A",
            "::1234:5678",
            "1::",
        ] {
            if a == "1::" {
                assert!(ips(a).is_empty());
                continue;
            }
            assert_eq!(ips(a), [a], "{a}");
            let framed = format!("ip=[{a}]:443 ok");
            assert_eq!(ips(&framed), [a], "{framed}");
        }
        assert_eq!(ips("addr:fe80::1 x"), ["fe80::1"]);
        assert_eq!(ips("fe80::1%eth0"), ["fe80::1"]);
        assert_eq!(ips("at 2001:db8::1."), ["2001:db8::1"]);
    }

    #[test]
    fn rejects_ipv6_lookalikes() {
        for s in [
            "10:00:00",
            "2026-01-05T10:00:00.123Z",
            "00:1a:2b:3c:4d:5e",
            "::1",
            "a::b",
            "std::vector",
            "https://example.com",
            "12:34",
            "fe80::1g",
            "deadbeef::1",
            "x1::2",
        ] {
            assert!(ips(s).is_empty(), "{s}");
        }
    }
}
