//! URL hygiene: URLs lose their userinfo, fragment and every query parameter the
//! policy does not allow before they are stored; referrers shrink to their origin.
//!
//! `clean_url` has a fast path for the common already-clean URL (lowercase scheme and
//! host, a plain path, no `?`, `#` or `@`) that returns it unchanged without running
//! the `url` crate's parser; a property test in this module checks that the fast path
//! agrees with the parser on every input it accepts.

use url::Url;
use url::form_urlencoded;

/// Which query parameters survive cleaning.
///
/// Parameters whose name starts with `utm_` (ASCII case-insensitive: `utm_source`,
/// `utm_medium`, `utm_campaign`, `utm_term`, `utm_content`, `utm_id`, ...) always
/// survive; so do the names in `allowed_params` (exact, case-sensitive), e.g. from the
/// tracking plan. Names are compared after percent-decoding (`utm%5Fsource` is
/// `utm_source`); the kept parameter keeps its original encoding.
#[derive(Clone, Debug, Default)]
pub struct UrlPolicy {
    pub allowed_params: Vec<String>,
}

impl UrlPolicy {
    /// True when a query parameter with this (decoded) name survives.
    pub fn allows(&self, name: &str) -> bool {
        is_utm_param(name) || self.allowed_params.iter().any(|p| p == name)
    }
}

fn is_utm_param(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("utm_"))
}

/// Cleans an absolute `http`/`https` URL: removes the userinfo (`user:pass@`), the
/// fragment and the query parameters `policy` does not allow (the kept ones keep their
/// order and original encoding; no trailing `?` when none remain). Scheme and host are
/// lowercased and the rest is normalised the way browsers serialise URLs (WHATWG URL
/// standard, via the `url` crate): default ports dropped, an empty path becomes `/`,
/// internationalised hosts become punycode.
///
/// The scheme is matched case-insensitively and must be followed by `//`; surrounding
/// whitespace is ignored. Returns `None` when `input` is not such a URL, so the caller
/// can treat it as plain text. Never panics.
pub fn clean_url(input: &str, policy: &UrlPolicy) -> Option<String> {
    let s = input.trim();
    if is_clean_fast(s) {
        return Some(s.to_owned());
    }
    clean_url_parsed(s, policy)
}

/// The full path of `clean_url`: parse, strip, filter, serialise.
fn clean_url_parsed(s: &str, policy: &UrlPolicy) -> Option<String> {
    if !has_http_scheme(s) {
        return None;
    }
    let mut url = Url::parse(s).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    // Both only fail for URLs without a host, excluded above; refuse rather than keep
    // credentials if that ever changes.
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    url.set_fragment(None);
    let query = url.query().and_then(|q| filter_query(q, policy));
    url.set_query(query.as_deref());
    Some(url.into())
}

/// `http://` or `https://`, ASCII case-insensitive.
fn has_http_scheme(s: &str) -> bool {
    let starts = |prefix: &str| {
        s.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

/// True when `s` is an http(s) URL that cleaning would return unchanged, decided
/// without the full parser. Deliberately conservative: anything unusual (uppercase,
/// ports, userinfo, query, fragment, dot segments, percent-encoded dots, non-ASCII,
/// numeric hosts, punycode, an empty path) takes the parser.
fn is_clean_fast(s: &str) -> bool {
    let rest = match s.strip_prefix("https://") {
        Some(rest) => rest,
        None => match s.strip_prefix("http://") {
            Some(rest) => rest,
            None => return false,
        },
    };
    let Some(slash) = rest.find('/') else {
        return false;
    };
    let (host, path) = rest.split_at(slash);
    is_plain_host(host) && is_plain_path(path)
}

/// Lowercase DNS name whose labels are `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, not punycode,
/// and whose last label starts with a letter (so it can never be read as an IPv4
/// number such as `127.1` or `0x7f`).
fn is_plain_host(host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    let mut last = "";
    for label in host.split('.') {
        let bytes = label.as_bytes();
        let (Some(first), Some(end)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        let inner_ok = bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !inner_ok || *first == b'-' || *end == b'-' || label.starts_with("xn--") {
            return false;
        }
        last = label;
    }
    last.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// A path the WHATWG parser leaves byte-for-byte as it is: RFC 3986 path characters
/// minus `@`, no `.`/`..` segments, no percent-encoded dots.
fn is_plain_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let chars_ok = bytes.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'%'
            )
    });
    if !chars_ok || path.contains("/.") {
        return false;
    }
    // `%2e` is a dot to the WHATWG parser (`/%2e%2e/` is `/../`).
    !bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] == b'e' || w[2] == b'E'))
}

/// Keeps the `&`-separated parameters whose percent-decoded name `policy` allows,
/// verbatim and in order. `None` when none remain.
fn filter_query(query: &str, policy: &UrlPolicy) -> Option<String> {
    let mut out = String::new();
    for piece in query.split('&') {
        let keep = form_urlencoded::parse(piece.as_bytes())
            .next()
            .is_some_and(|(name, _)| policy.allows(&name));
        if keep {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(piece);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Cleans a path-with-query such as `/pricing?x=1#top` (PostHog's `$pathname`, relative
/// URLs): drops the fragment and the query parameters `policy` does not allow. The
/// path itself is kept as it is.
///
/// A protocol-relative reference (`//host/path`) is cleaned like the `http:` URL it
/// stands for (userinfo removed, host lowercased) and returned without the scheme.
/// Returns `None` unless `input` (trimmed) starts with `/`.
pub fn clean_path(input: &str, policy: &UrlPolicy) -> Option<String> {
    let s = input.trim();
    if !s.starts_with('/') {
        return None;
    }
    if s.starts_with("//") {
        let as_url = format!("http:{s}");
        if let Some(cleaned) = clean_url(&as_url, policy) {
            return cleaned.strip_prefix("http:").map(str::to_owned);
        }
        // Not a valid authority (`//`, `//[x`): just a path with empty segments.
    }
    let without_fragment = s.split_once('#').map_or(s, |(before, _)| before);
    let Some((path, query)) = without_fragment.split_once('?') else {
        return Some(without_fragment.trim_end().to_owned());
    };
    let mut out = path.to_owned();
    if let Some(kept) = filter_query(query, policy) {
        out.push('?');
        out.push_str(&kept);
    }
    // Whitespace before a dropped fragment or parameter is now trailing; trim it so
    // that cleaning the output again changes nothing.
    out.truncate(out.trim_end().len());
    Some(out)
}

/// Reduces a referrer to its origin: `https://www.google.com/search?q=...` becomes
/// `https://www.google.com` (non-default port kept, userinfo dropped). URLs with
/// other schemes and a host, such as `android-app://com.google.android.gm/`, become
/// `scheme://host`. Returns `None` for input that is not an absolute URL with a host
/// (`$direct`, `about:blank`, `mailto:...`, bare domains), never panics.
pub fn referrer_origin(input: &str) -> Option<String> {
    let url = Url::parse(input.trim()).ok()?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let origin = url.origin();
    if origin.is_tuple() {
        return Some(origin.ascii_serialization());
    }
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    Some(out)
}

/// True for property names whose value is a referrer URL, ASCII case-insensitive,
/// ignoring one leading `$`: `referrer`, `referer` (the HTTP header's spelling), and
/// any name ending in `_referrer` or `_referer` (`$initial_referrer`,
/// `document_referrer`, `$session_entry_referrer`, `http_referer`, ...).
///
/// `$referring_domain` and `$initial_referring_domain` are not referrer keys: PostHog
/// already reduces them to a bare host (or `$direct`), which is no URL and has
/// nothing left to strip.
pub fn is_referrer_key(name: &str) -> bool {
    let name = name.strip_prefix('$').unwrap_or(name);
    let ends_with = |suffix: &str| {
        name.len()
            .checked_sub(suffix.len())
            .and_then(|start| name.get(start..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
    };
    name.eq_ignore_ascii_case("referrer")
        || name.eq_ignore_ascii_case("referer")
        || ends_with("_referrer")
        || ends_with("_referer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_params() -> UrlPolicy {
        UrlPolicy::default()
    }

    fn allowing(names: &[&str]) -> UrlPolicy {
        UrlPolicy {
            allowed_params: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[track_caller]
    fn url(input: &str, policy: &UrlPolicy) -> String {
        match clean_url(input, policy) {
            Some(cleaned) => cleaned,
            None => panic!("{input:?} was not recognised as a URL"),
        }
    }

    #[test]
    fn clean_url_strips_userinfo_fragment_and_unknown_params() {
        let cleaned = url(
            "https://alice:hunter2@Example.COM/account?token=abc&utm_source=news#settings",
            &no_params(),
        );
        assert_eq!(cleaned, "https://example.com/account?utm_source=news");
    }

    #[test]
    fn clean_url_keeps_allowed_params_in_order_with_original_encoding() {
        let policy = allowing(&["plan", "q"]);
        let cleaned = url(
            "https://example.com/p?email=a%40b.c&q=caf%C3%A9+au+lait&utm_campaign=x%20y&plan=pro&Plan=x",
            &policy,
        );
        assert_eq!(
            cleaned,
            "https://example.com/p?q=caf%C3%A9+au+lait&utm_campaign=x%20y&plan=pro"
        );
    }

    #[test]
    fn clean_url_all_utm_variants_survive() {
        let input = "https://example.com/?utm_source=a&utm_medium=b&utm_campaign=c&utm_term=d&utm_content=e&utm_id=f&utm_custom=g&UTM_SOURCE=h";
        assert_eq!(url(input, &no_params()), input);
    }

    #[test]
    fn clean_url_matches_names_after_percent_decoding() {
        assert_eq!(
            url(
                "https://example.com/?utm%5Fsource=a&pl%61n=b",
                &allowing(&["plan"])
            ),
            "https://example.com/?utm%5Fsource=a&pl%61n=b"
        );
    }

    #[test]
    fn clean_url_drops_trailing_question_mark_when_nothing_survives() {
        assert_eq!(
            url("https://example.com/x?a=1&b=2", &no_params()),
            "https://example.com/x"
        );
        assert_eq!(
            url("https://example.com/x?", &no_params()),
            "https://example.com/x"
        );
        assert_eq!(
            url("https://example.com/x?&&", &no_params()),
            "https://example.com/x"
        );
    }

    #[test]
    fn clean_url_drops_empty_pieces_between_kept_params() {
        assert_eq!(
            url("https://example.com/?utm_a=1&&x=2&utm_b=2&", &no_params()),
            "https://example.com/?utm_a=1&utm_b=2"
        );
    }

    #[test]
    fn clean_url_lowercases_scheme_and_host_and_tolerates_whitespace() {
        assert_eq!(
            url("  HTTPS://WWW.Example.Com/Path/Case  \n", &no_params()),
            "https://www.example.com/Path/Case"
        );
        assert_eq!(
            url("hTtP://example.com:80/", &no_params()),
            "http://example.com/"
        );
    }

    #[test]
    fn clean_url_keeps_non_default_ports_and_ip_hosts() {
        assert_eq!(
            url("http://u@127.0.0.1:8080/x#y", &no_params()),
            "http://127.0.0.1:8080/x"
        );
        assert_eq!(
            url("http://[::1]:3000/?utm_x=1", &no_params()),
            "http://[::1]:3000/?utm_x=1"
        );
    }

    #[test]
    fn clean_url_rejects_non_http_and_non_urls() {
        for input in [
            "",
            "   ",
            "hello world",
            "example.com/path",
            "/relative?x=1",
            "ftp://example.com/file",
            "mailto:alice@example.com",
            "javascript:alert(1)",
            "http:example.com",
            "http:/example.com",
            "http://",
            "https://exa mple.com/",
            "https://[::1/",
            "httpx://example.com/",
            "data:text/html,hi",
        ] {
            assert_eq!(clean_url(input, &no_params()), None, "{input:?}");
        }
    }

    #[test]
    fn clean_url_fast_path_returns_input_unchanged() {
        for input in [
            "https://example.com/",
            "https://www.example.com/pricing/enterprise",
            "http://localhost/a/b-c_d~e",
            "https://docs.example.co.uk/guide/v1.2/intro.html",
            "https://example.com/caf%C3%A9",
        ] {
            assert!(is_clean_fast(input), "{input:?} should take the fast path");
            assert_eq!(url(input, &no_params()), input);
        }
    }

    #[test]
    fn clean_url_fast_path_declines_what_the_parser_would_change() {
        for input in [
            "https://example.com",
            "HTTPS://example.com/",
            "https://Example.com/",
            "https://example.com:443/",
            "https://u@example.com/",
            "https://example.com/a?b",
            "https://example.com/a#b",
            "https://example.com/a/../b",
            "https://example.com/a/%2e%2e/b",
            "https://example.com/a b",
            "https://example.com/a\\b",
            "https://127.1/",
            "https://0x7f/",
            "https://xn--caf-dma.com/",
            "https://café.com/",
            "https://example.com./",
            "https://a..b/",
        ] {
            assert!(
                !is_clean_fast(input),
                "{input:?} must not take the fast path"
            );
        }
    }

    #[test]
    fn clean_url_normalises_like_a_browser() {
        assert_eq!(
            url("https://example.com", &no_params()),
            "https://example.com/"
        );
        assert_eq!(
            url("https://example.com/a/./b/../c", &no_params()),
            "https://example.com/a/c"
        );
        assert_eq!(
            url("https://BÜCHER.example/", &no_params()),
            "https://xn--bcher-kva.example/"
        );
    }

    #[test]
    fn clean_path_drops_fragment_and_unknown_params() {
        let policy = allowing(&["x"]);
        assert_eq!(
            clean_path("/pricing?x=1&email=a@b.c#top", &policy).as_deref(),
            Some("/pricing?x=1")
        );
        assert_eq!(
            clean_path("/pricing?email=a@b.c", &policy).as_deref(),
            Some("/pricing")
        );
        assert_eq!(
            clean_path(" /A/B?utm_medium=cpc ", &policy).as_deref(),
            Some("/A/B?utm_medium=cpc")
        );
        assert_eq!(clean_path("/#/route?x=1", &policy).as_deref(), Some("/"));
        assert_eq!(clean_path("/@alice", &policy).as_deref(), Some("/@alice"));
    }

    #[test]
    fn clean_path_treats_protocol_relative_as_url() {
        assert_eq!(
            clean_path("//user:pw@CDN.example.com/x?y=1#z", &no_params()).as_deref(),
            Some("//cdn.example.com/x")
        );
        assert_eq!(clean_path("//", &no_params()).as_deref(), Some("//"));
    }

    #[test]
    fn clean_path_rejects_non_paths() {
        for input in ["", "pricing", "https://example.com/", "?x=1", "#top"] {
            assert_eq!(clean_path(input, &no_params()), None, "{input:?}");
        }
    }

    #[test]
    fn referrer_origin_keeps_scheme_host_and_port() {
        let cases = [
            (
                "https://www.google.com/search?q=my+secret",
                Some("https://www.google.com"),
            ),
            (
                "HTTPS://User:Pw@News.Ycombinator.com/item?id=1#c",
                Some("https://news.ycombinator.com"),
            ),
            ("http://localhost:3000/x", Some("http://localhost:3000")),
            ("https://example.com:443/x", Some("https://example.com")),
            (
                "android-app://com.google.android.gm/",
                Some("android-app://com.google.android.gm"),
            ),
            (
                "android-app://com.slack/http/slack.com/x?y",
                Some("android-app://com.slack"),
            ),
            ("ios-app://123/x", Some("ios-app://123")),
            ("$direct", None),
            ("www.google.com", None),
            ("about:blank", None),
            ("mailto:alice@example.com", None),
            ("file:///etc/passwd", None),
            ("", None),
            ("not a url", None),
        ];
        for (input, expected) in cases {
            assert_eq!(referrer_origin(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn referrer_keys() {
        for key in [
            "$referrer",
            "$initial_referrer",
            "referrer",
            "Referer",
            "$referer",
            "document_referrer",
            "DOCUMENT_REFERRER",
            "$session_entry_referrer",
            "http_referer",
        ] {
            assert!(is_referrer_key(key), "{key:?}");
        }
        for key in [
            "$referring_domain",
            "$initial_referring_domain",
            "referrer_count",
            "$current_url",
            "",
            "$",
            "referrers",
            "$$referrer",
            "_referrer_",
        ] {
            assert!(!is_referrer_key(key), "{key:?}");
        }
    }

    proptest! {
        /// The fast path is an optimisation only: whenever it accepts an input, the
        /// parser-based path returns the same string.
        #[test]
        fn fast_path_agrees_with_parser(
            input in "(https?|HTTPS?)://[a-zA-Z0-9.@:-]{0,12}(/[a-zA-Z0-9.%~!$&'()*+,;=:@_/ -]{0,16})?",
        ) {
            if is_clean_fast(&input) {
                prop_assert_eq!(clean_url_parsed(&input, &UrlPolicy::default()), Some(input.clone()));
            }
        }

        #[test]
        fn fast_path_agrees_with_parser_on_hostlike_noise(
            host in "[a-z0-9.x-]{1,10}",
            path in "/[a-z0-9.%2eE/]{0,10}",
        ) {
            let input = format!("http://{host}{path}");
            if is_clean_fast(&input) {
                prop_assert_eq!(clean_url_parsed(&input, &UrlPolicy::default()), Some(input.clone()));
            }
        }
    }
}
