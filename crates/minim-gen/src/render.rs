//! Rendering a compact `RawEvent` into properties: one walk over the keys in sorted
//! order, feeding either the hand-written JSON writer (the fast path) or a
//! `serde_json::Map` (for [`crate::GeneratedEvent`]). Both produce the same bytes.

use serde_json::{Map, Value};

use crate::generator::{Actor, Detail, Keys, Kind, PiiUrl, Query, RawEvent};
use crate::mix::{hash, mix64, pick_weighted, push_hex, push_hex16};
use crate::tables::{self, Country, Device};

/// Receives properties, always in ascending key order.
pub(crate) trait Sink {
    fn str(&mut self, key: &'static str, value: &str);
    fn uint(&mut self, key: &'static str, value: u64);
    /// A money amount in cents, as a JSON float (`29.0`, `30.6`, `49.99`).
    fn cents(&mut self, key: &'static str, cents: u64);
}

/// Reused string buffers, so rendering does not allocate once warmed up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    country: &'static str,
    device: Option<Device>,
    pub distinct_id: String,
    pub insert_id: String,
    session_id: String,
    url: String,
    path: String,
    email: String,
    name: String,
    phone: String,
}

/// The fake person behind a persona hash (registered user or anonymous visitor).
struct Person {
    first: (&'static str, &'static str),
    last: (&'static str, &'static str),
    country: Country,
    device: Device,
    bits: u64,
}

impl Person {
    fn of(persona: u64) -> Self {
        let bits = mix64(persona ^ 0x9e15);
        Self {
            first: tables::FIRST_NAMES[(bits % tables::FIRST_NAMES.len() as u64) as usize],
            last: tables::LAST_NAMES[((bits >> 8) % tables::LAST_NAMES.len() as u64) as usize],
            country: tables::COUNTRIES
                [pick_weighted(&tables::COUNTRIES_CUM, mix64(persona ^ 0xc0))]
            .0,
            device: tables::DEVICES[pick_weighted(&tables::DEVICES_CUM, mix64(persona ^ 0xde))].0,
            bits,
        }
    }

    fn push_name(&self, out: &mut String) {
        out.push_str(self.first.0);
        out.push(' ');
        out.push_str(self.last.0);
    }

    fn push_email(&self, out: &mut String) {
        let (first, last) = (self.first.1, self.last.1);
        let number = (self.bits >> 20) % 100;
        match (self.bits >> 16) % 5 {
            0 | 1 => {
                out.push_str(first);
                out.push('.');
                out.push_str(last);
            }
            2 => {
                out.push_str(first);
                out.push('.');
                out.push_str(last);
                push_u64_str(out, number);
            }
            3 => {
                out.push_str(&first[..1]);
                out.push_str(last);
            }
            _ => {
                out.push_str(first);
                out.push('_');
                out.push_str(last);
                push_u64_str(out, 1960 + number % 45);
            }
        }
        out.push('@');
        out.push_str(
            tables::EMAIL_DOMAINS[pick_weighted(&tables::EMAIL_DOMAINS_CUM, mix64(self.bits))].0,
        );
    }

    /// The country's pattern filled in; sometimes compacted to E.164 (`+14155550132`).
    fn push_phone(&self, out: &mut String) {
        let mut digits = mix64(self.bits ^ 0x9f);
        let area = tables::NA_AREA_CODES[(digits % tables::NA_AREA_CODES.len() as u64) as usize];
        let mut area = area.chars();
        let compact = (self.bits >> 40).is_multiple_of(3);
        for ch in self.country.phone.chars() {
            match ch {
                '#' => {
                    out.push(char::from(b'0' + (digits % 10) as u8));
                    digits /= 10;
                }
                'A' => out.push(area.next().unwrap_or('5')),
                ' ' | '-' if compact => {}
                other => out.push(other),
            }
        }
    }
}

/// Fills the scratch strings an event needs; then [`emit`] walks its properties.
pub(crate) fn prepare(ev: &RawEvent, keys: &Keys, s: &mut Scratch) {
    s.distinct_id.clear();
    match ev.actor {
        Actor::User(n) => {
            s.distinct_id.push_str("user-");
            push_u64_str(&mut s.distinct_id, u64::from(n) + 1);
        }
        Actor::Anon(id) => {
            s.distinct_id.push_str("anon-");
            push_hex16(&mut s.distinct_id, id);
        }
    }

    // Unique per stream position: `lo` is a bijection of `seq` for a fixed key.
    let lo = hash(keys.insert_lo, ev.seq);
    s.insert_id.clear();
    push_hex16(&mut s.insert_id, mix64(lo ^ keys.insert_hi));
    push_hex16(&mut s.insert_id, lo);

    // UUIDv7 layout, as PostHog's session ids: 48 bits of session start time first.
    let hi = ((ev.session_start_ms.max(0) as u64) << 16) | 0x7000 | (ev.session_bits >> 52);
    let lo = (ev.session_bits & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    s.session_id.clear();
    push_hex(&mut s.session_id, hi >> 32, 8);
    s.session_id.push('-');
    push_hex(&mut s.session_id, hi >> 16, 4);
    s.session_id.push('-');
    push_hex(&mut s.session_id, hi, 4);
    s.session_id.push('-');
    push_hex(&mut s.session_id, lo >> 48, 4);
    s.session_id.push('-');
    push_hex(&mut s.session_id, lo, 12);

    let person = Person::of(ev.persona);
    s.country = person.country.iso;
    s.device = Some(person.device);
    let needs_email = matches!(ev.detail, Detail::Signup { .. })
        || matches!(
            ev.detail,
            Detail::Search {
                query: Query::Email,
                ..
            }
        )
        || matches!(
            ev.detail,
            Detail::Pageview {
                pii: Some(
                    PiiUrl::AccountEmailQuery
                        | PiiUrl::UserEmailPath
                        | PiiUrl::InviteNameEmail
                        | PiiUrl::ResetPassword
                ),
                ..
            }
        );
    s.email.clear();
    if needs_email {
        person.push_email(&mut s.email);
    }
    let needs_name = matches!(ev.detail, Detail::Signup { name: true, .. })
        || matches!(
            ev.detail,
            Detail::Search {
                query: Query::Name,
                ..
            }
        )
        || matches!(
            ev.detail,
            Detail::Pageview {
                pii: Some(PiiUrl::InviteNameEmail),
                ..
            }
        );
    s.name.clear();
    if needs_name {
        person.push_name(&mut s.name);
    }
    let needs_phone = matches!(ev.detail, Detail::Signup { phone: true, .. })
        || matches!(
            ev.detail,
            Detail::Search {
                query: Query::Phone,
                ..
            }
        )
        || matches!(
            ev.detail,
            Detail::Pageview {
                pii: Some(PiiUrl::SupportPhone),
                ..
            }
        );
    s.phone.clear();
    if needs_phone {
        person.push_phone(&mut s.phone);
    }

    s.path.clear();
    s.url.clear();
    s.url.push_str(tables::SITE);
    match ev.detail {
        Detail::Pageview {
            pii: Some(pii),
            pii_token,
            ..
        } => match pii {
            PiiUrl::AccountEmailQuery => {
                s.path.push_str("/account");
                s.url.push_str("/account?email=");
                push_pct(&mut s.url, &s.email);
            }
            PiiUrl::UserEmailPath => {
                s.path.push_str("/users/");
                s.path.push_str(&s.email);
                s.url.push_str(&s.path);
            }
            PiiUrl::InviteNameEmail => {
                s.path.push_str("/invite/accept");
                s.url.push_str("/invite/accept?name=");
                push_pct(&mut s.url, &s.name);
                s.url.push_str("&email=");
                push_pct(&mut s.url, &s.email);
            }
            PiiUrl::ResetPassword => {
                s.path.push_str("/reset-password");
                s.url.push_str("/reset-password?email=");
                push_pct(&mut s.url, &s.email);
                s.url.push_str("&token=");
                push_hex16(&mut s.url, pii_token);
            }
            PiiUrl::SupportPhone => {
                s.path.push_str("/support/callback");
                s.url.push_str("/support/callback?phone=");
                push_pct(&mut s.url, &s.phone);
            }
        },
        _ => {
            let page = ev.page.page;
            s.path.push_str(page.path);
            if page.numeric_id {
                push_u64_str(&mut s.path, u64::from(ev.page.suffix));
            } else if let Some(suffix) = page.suffixes.get(ev.page.suffix as usize) {
                s.path.push_str(suffix);
            }
            s.url.push_str(&s.path);
        }
    }
    if let Some((campaign, (source, medium))) = landing_utm(ev) {
        s.url.push(if s.url.contains('?') { '&' } else { '?' });
        s.url.push_str("utm_source=");
        s.url.push_str(source);
        s.url.push_str("&utm_medium=");
        s.url.push_str(medium);
        s.url.push_str("&utm_campaign=");
        s.url.push_str(campaign);
    }
}

fn landing_utm(ev: &RawEvent) -> Option<(&'static str, (&'static str, &'static str))> {
    let landing = ev.landing?;
    let campaign = tables::CAMPAIGNS.get(usize::from(landing.campaign?))?;
    let utm = tables::REFERRERS
        .get(usize::from(landing.referrer))?
        .0
        .utm?;
    Some((campaign, utm))
}

/// Walks the event's properties in ascending key order; `s` must have been
/// [`prepare`]d for this event.
pub(crate) fn emit(ev: &RawEvent, s: &Scratch, sink: &mut impl Sink) {
    let device = s.device.unwrap_or(tables::DEVICES[0].0);
    sink.str("$browser", device.browser);
    sink.str("$country", s.country);
    sink.str("$current_url", &s.url);
    sink.str("$device_type", device.device_type);
    sink.str("$os", device.os);
    sink.str("$pathname", &s.path);
    if let Some(landing) = ev.landing
        && let Some((referrer, _)) = tables::REFERRERS.get(usize::from(landing.referrer))
    {
        sink.str("$referrer", referrer.url);
        sink.str("$referring_domain", referrer.domain);
    }
    sink.str("$session_id", &s.session_id);
    if let Detail::Activated { action } = ev.detail {
        sink.str(
            "activation_action",
            pick(tables::ACTIVATION_ACTIONS, action),
        );
    }
    if let Detail::Purchase { annual, .. } = ev.detail {
        sink.str("billing_period", if annual { "annual" } else { "monthly" });
    }
    if let Detail::Button(b) = ev.detail {
        sink.str("button", pick(tables::BUTTONS, b));
    }
    if ev.kind == Kind::Purchase {
        sink.str("currency", "USD");
    }
    if let Detail::Pageview { duration_ms, .. } = ev.detail {
        sink.uint("duration_ms", u64::from(duration_ms));
    }
    if let Detail::Signup { .. } = ev.detail {
        sink.str("email", &s.email);
    }
    if let Detail::Feature(f) = ev.detail {
        sink.str("feature", pick(tables::FEATURES, f));
    }
    match ev.detail {
        Detail::Login { method } => sink.str("method", pick_pair(&tables::LOGIN_METHODS, method)),
        Detail::Signup { method, .. } => {
            sink.str("method", pick_pair(&tables::SIGNUP_METHODS, method));
        }
        _ => {}
    }
    if let Detail::Signup { name: true, .. } = ev.detail {
        sink.str("name", &s.name);
    }
    if let Detail::Signup { phone: true, .. } = ev.detail {
        sink.str("phone", &s.phone);
    }
    if let Some(plan) = ev.plan.name() {
        sink.str("plan", plan);
    }
    if let Detail::Search { query, results } = ev.detail {
        let q = match query {
            Query::Term(t) => pick(tables::SEARCHES, t),
            Query::Email => &s.email,
            Query::Phone => &s.phone,
            Query::Name => &s.name,
        };
        sink.str("query", q);
        sink.uint("results_count", u64::from(results));
    }
    if let Detail::Purchase { cents, seats, .. } = ev.detail {
        sink.cents("revenue", cents);
        sink.uint("seats", u64::from(seats));
    }
    if let Some((campaign, (source, medium))) = landing_utm(ev) {
        sink.str("utm_campaign", campaign);
        sink.str("utm_medium", medium);
        sink.str("utm_source", source);
    }
}

fn pick(table: &[&'static str], i: u8) -> &'static str {
    table.get(usize::from(i)).copied().unwrap_or_default()
}

fn pick_pair(table: &[(&'static str, u32)], i: u8) -> &'static str {
    table.get(usize::from(i)).map_or("", |p| p.0)
}

/// Writes the whole event as one JSON line (without the newline) into `out`.
pub(crate) fn write_event(ev: &RawEvent, s: &Scratch, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"event\":");
    push_json_str(out, ev.kind.name());
    out.extend_from_slice(b",\"distinct_id\":");
    push_json_str(out, &s.distinct_id);
    out.extend_from_slice(b",\"timestamp\":\"");
    crate::time::push_timestamp(out, ev.ts_ms);
    out.extend_from_slice(b"\",\"insert_id\":");
    push_json_str(out, &s.insert_id);
    out.extend_from_slice(b",\"properties\":{");
    let mut sink = JsonSink {
        out,
        first: true,
        last_key: "",
    };
    emit(ev, s, &mut sink);
    out.extend_from_slice(b"}}");
}

/// Builds the properties map of an event.
pub(crate) fn to_map(ev: &RawEvent, s: &Scratch) -> Map<String, Value> {
    let mut sink = MapSink(Map::new());
    emit(ev, s, &mut sink);
    sink.0
}

struct JsonSink<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    last_key: &'static str,
}

impl JsonSink<'_> {
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            self.first || self.last_key < key,
            "{} before {key}",
            self.last_key
        );
        self.last_key = key;
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Keys are fixed identifiers that never need escaping.
        debug_assert!(is_plain(key.as_bytes()));
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
}

impl Sink for JsonSink<'_> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        push_json_str(self.out, value);
    }

    fn uint(&mut self, key: &'static str, value: u64) {
        self.key(key);
        push_u64(self.out, value);
    }

    fn cents(&mut self, key: &'static str, cents: u64) {
        self.key(key);
        push_cents(self.out, cents);
    }
}

struct MapSink(Map<String, Value>);

impl Sink for MapSink {
    fn str(&mut self, key: &'static str, value: &str) {
        self.0
            .insert(key.to_owned(), Value::String(value.to_owned()));
    }

    fn uint(&mut self, key: &'static str, value: u64) {
        self.0.insert(key.to_owned(), Value::from(value));
    }

    fn cents(&mut self, key: &'static str, cents: u64) {
        self.0
            .insert(key.to_owned(), Value::from(cents as f64 / 100.0));
    }
}

/// True when `s` needs no escaping inside a JSON string (the common case): no byte
/// below 0x20, no `"`, no `\\`. Checks eight bytes at a time (SWAR bit tricks whose
/// yes/no answer is exact: "does any byte equal zero / lie below n").
#[inline]
fn is_plain(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if below_space
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// A JSON string literal, escaped exactly as `serde_json` escapes it.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    if is_plain(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decimal digits of `v`.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn push_u64_str(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// `cents / 100` the way `serde_json` prints that `f64` (shortest round-trip form:
/// `29.0`, `30.6`, `49.99`), for amounts below 10^15 cents.
pub(crate) fn push_cents(out: &mut Vec<u8>, cents: u64) {
    push_u64(out, cents / 100);
    out.push(b'.');
    let frac = cents % 100;
    if frac.is_multiple_of(10) {
        out.push(b'0' + (frac / 10) as u8);
    } else {
        out.push(b'0' + (frac / 10) as u8);
        out.push(b'0' + (frac % 10) as u8);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn push_pct(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_check_is_exact() {
        for b in 0..=255u8 {
            let want = b >= 0x20 && b != b'"' && b != b'\\';
            for pos in 0..17 {
                let mut v = vec![b'a'; 17];
                v[pos] = b;
                assert_eq!(is_plain(&v), want, "byte {b:#x} at {pos}");
                // Neighbours with the high bit set must not mask or fake a hit.
                let mut w = vec![0xff; 17];
                w[pos] = b;
                assert_eq!(is_plain(&w), want, "byte {b:#x} at {pos} among 0xff");
            }
        }
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{0}\u{1f}\n\r\t\u{8}\u{c}\u{7f}",
            "Müller é ☃",
            "",
            "a long plain ascii string, > 8 bytes",
            "0123456\"",
            "01234567\u{1}",
        ] {
            let mut ours = Vec::new();
            push_json_str(&mut ours, s);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn cents_print_like_serde_json_floats() {
        let mut cases: Vec<u64> = (0..20_000).collect();
        cases.extend([
            99_999_999,
            12_345_678_901,
            10_000_000_000_000,
            99_999_999_999_999,
        ]);
        for cents in cases {
            let mut ours = Vec::new();
            push_cents(&mut ours, cents);
            let theirs = serde_json::to_string(&(cents as f64 / 100.0)).unwrap();
            assert_eq!(String::from_utf8_lossy(&ours), theirs, "cents={cents}");
        }
    }

    #[test]
    fn numbers_and_percent_encoding() {
        let mut out = Vec::new();
        for v in [0, 7, 10, 12345, u64::MAX] {
            out.clear();
            push_u64(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), v.to_string());
        }
        let mut s = String::new();
        push_pct(&mut s, "José O'Brien+1@x.com");
        assert_eq!(s, "Jos%C3%A9%20O%27Brien%2B1%40x.com");
    }
}
