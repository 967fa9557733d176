//! Property tests for the enrichment decoders of untrusted input: URL cleaning,
//! referrer origins and user-agent parsing never panic, and URL cleaning is
//! idempotent and never lets a fragment or a non-allowed query parameter through.

use minim_privacy::ua::parse_user_agent;
use minim_privacy::url::{UrlPolicy, clean_path, clean_url, is_referrer_key, referrer_origin};
use proptest::prelude::*;
use url::form_urlencoded;

/// Names the policy in these tests allows besides `utm_*`.
const ALLOWED: &[&str] = &["plan", "q", "ref"];

fn policy() -> UrlPolicy {
    UrlPolicy {
        allowed_params: ALLOWED.iter().map(|s| s.to_string()).collect(),
    }
}

fn allowed(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("utm_"))
        || ALLOWED.contains(&name)
}

/// Query parameter names: utm ones, allowed ones, near misses and PII-looking ones,
/// some percent-encoded.
fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("utm_source".to_owned()),
        Just("utm_campaign".to_owned()),
        Just("UTM_Medium".to_owned()),
        Just("utm%5Fterm".to_owned()),
        Just("plan".to_owned()),
        Just("Plan".to_owned()),
        Just("q".to_owned()),
        Just("pl%61n".to_owned()),
        Just("email".to_owned()),
        Just("token".to_owned()),
        Just("utm".to_owned()),
        Just("".to_owned()),
        "[a-zA-Z_%+=0-9]{1,8}",
    ]
}

fn param_value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9%+.~@ #?/=:-]{0,8}"
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec((param_name(), prop::option::of(param_value())), 0..6).prop_map(
        |params| {
            params
                .into_iter()
                .map(|(name, value)| match value {
                    Some(v) => format!("{name}={v}"),
                    None => name,
                })
                .collect::<Vec<_>>()
                .join("&")
        },
    )
}

/// URL-shaped strings with the parts cleaning cares about: scheme case, userinfo,
/// host case, ports, paths with dots and escapes, query, fragment, whitespace.
fn url_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("http"),
            Just("https"),
            Just("HTTPS"),
            Just("hTTp"),
            Just("ftp")
        ],
        prop::option::of("[a-zA-Z0-9:%]{0,6}@"),
        prop_oneof![
            "[a-zA-Z0-9-]{1,8}(\\.[a-zA-Z]{2,4}){0,2}",
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
            Just("xn--bcher-kva.example".to_owned()),
            Just("BÜCHER.example".to_owned()),
        ],
        prop::option::of(":[0-9]{1,5}"),
        "(/[a-zA-Z0-9.%~ @!$&'()*+,;=:é-]{0,8}){0,3}",
        prop::option::of(query()),
        prop::option::of("[a-zA-Z0-9/?=&#]{0,8}"),
        "[ \t\n]{0,1}",
    )
        .prop_map(
            |(scheme, userinfo, host, port, path, query, fragment, ws)| {
                let mut s = format!(
                    "{ws}{scheme}://{}{host}{}{path}",
                    userinfo.unwrap_or_default(),
                    port.unwrap_or_default()
                );
                if let Some(q) = query {
                    s.push('?');
                    s.push_str(&q);
                }
                if let Some(f) = fragment {
                    s.push('#');
                    s.push_str(&f);
                }
                s.push_str(&ws);
                s
            },
        )
}

fn path_like() -> impl Strategy<Value = String> {
    (
        "/{1,2}[a-zA-Z0-9.%~@:-]{0,10}(/[a-zA-Z0-9.%-]{0,6}){0,2}",
        prop::option::of(query()),
        prop::option::of("[a-zA-Z0-9/?=&#]{0,8}"),
    )
        .prop_map(|(path, query, fragment)| {
            let mut s = path;
            if let Some(q) = query {
                s.push('?');
                s.push_str(&q);
            }
            if let Some(f) = fragment {
                s.push('#');
                s.push_str(&f);
            }
            s
        })
}

/// Query of a cleaned URL or path (`None` when there is none), checking that it is
/// not empty when present (no trailing `?`).
fn query_of(cleaned: &str) -> Option<&str> {
    let (_, query) = cleaned.split_once('?')?;
    assert!(!query.is_empty(), "trailing '?' in {cleaned:?}");
    Some(query)
}

fn decoded_names(query: &str) -> Vec<String> {
    query
        .split('&')
        .map(|piece| {
            form_urlencoded::parse(piece.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The `utm_*` pieces of a query, verbatim and in order.
fn utm_pieces(query: &str) -> Vec<&str> {
    query
        .split('&')
        .filter(|piece| {
            form_urlencoded::parse(piece.as_bytes())
                .next()
                .is_some_and(|(name, _)| {
                    name.get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case("utm_"))
                })
        })
        .collect()
}

proptest! {
    #[test]
    fn nothing_panics_on_arbitrary_strings(s in any::<String>()) {
        let p = policy();
        let _ = clean_url(&s, &p);
        let _ = clean_path(&s, &p);
        let _ = referrer_origin(&s);
        let _ = is_referrer_key(&s);
        let _ = parse_user_agent(&s);
    }

    #[test]
    fn nothing_panics_on_url_shaped_strings(s in url_like(), p in path_like()) {
        let policy = policy();
        for input in [&s, &p] {
            let _ = clean_url(input, &policy);
            let _ = clean_path(input, &policy);
            let _ = referrer_origin(input);
            let _ = parse_user_agent(input);
        }
    }

    #[test]
    fn clean_url_is_idempotent(s in url_like()) {
        let p = policy();
        if let Some(once) = clean_url(&s, &p) {
            prop_assert_eq!(clean_url(&once, &p), Some(once.clone()), "input {:?}", s);
        }
    }

    #[test]
    fn clean_url_is_idempotent_on_arbitrary_strings(s in any::<String>()) {
        let p = policy();
        if let Some(once) = clean_url(&s, &p) {
            prop_assert_eq!(clean_url(&once, &p), Some(once.clone()), "input {:?}", s);
        }
    }

    #[test]
    fn clean_url_output_has_no_fragment_userinfo_or_disallowed_param(s in url_like()) {
        let Some(cleaned) = clean_url(&s, &policy()) else { return Ok(()) };
        prop_assert!(!cleaned.contains('#'), "{:?} -> {:?}", s, cleaned);
        let authority = cleaned
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default())
            .unwrap_or_default();
        prop_assert!(!authority.contains('@'), "{:?} -> {:?}", s, cleaned);
        if let Some(q) = query_of(&cleaned) {
            for name in decoded_names(q) {
                prop_assert!(allowed(&name), "{:?} survived in {:?} from {:?}", name, cleaned, s);
            }
        }
    }

    #[test]
    fn clean_url_keeps_every_utm_param_in_order(
        host in "[a-z]{1,8}\\.(com|io|co\\.uk)",
        params in prop::collection::vec(
            (prop_oneof![Just("utm_source"), Just("utm_medium"), Just("utm_campaign"), Just("utm_x"), Just("email"), Just("id")],
             "[a-zA-Z0-9._~-]{0,6}"),
            1..6,
        ),
    ) {
        let query: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let input = format!("https://{host}/landing?{}#section", query.join("&"));
        let Some(cleaned) = clean_url(&input, &UrlPolicy::default()) else {
            return Err(TestCaseError::fail(format!("{input:?} not recognised")));
        };
        let expected: Vec<&str> = query
            .iter()
            .map(String::as_str)
            .filter(|piece| piece.starts_with("utm_"))
            .collect();
        let kept = query_of(&cleaned).map(utm_pieces).unwrap_or_default();
        prop_assert_eq!(kept, expected, "{:?} -> {:?}", input, cleaned);
    }

    #[test]
    fn clean_path_is_idempotent_and_strips(p in path_like()) {
        let policy = policy();
        if let Some(once) = clean_path(&p, &policy) {
            prop_assert!(!once.contains('#'), "{:?} -> {:?}", p, once);
            if let Some(q) = query_of(&once) {
                for name in decoded_names(q) {
                    prop_assert!(allowed(&name), "{:?} survived in {:?}", name, once);
                }
            }
            prop_assert_eq!(clean_path(&once, &policy), Some(once.clone()), "input {:?}", p);
        }
    }

    #[test]
    fn referrer_origin_is_only_an_origin(s in url_like()) {
        if let Some(origin) = referrer_origin(&s) {
            let rest = origin.split_once("://").map(|(_, rest)| rest);
            prop_assert!(
                rest.is_some_and(|r| !r.is_empty() && !r.contains(['/', '?', '#', '@'])),
                "{:?} -> {:?}", s, origin
            );
            prop_assert_eq!(referrer_origin(&origin), Some(origin.clone()));
        }
    }

    #[test]
    fn user_agent_version_is_digits_only(s in any::<String>()) {
        let ua = parse_user_agent(&s);
        if let Some(v) = &ua.browser_version {
            prop_assert!(!v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()), "{:?}", v);
        }
        prop_assert_eq!(ua.is_bot, ua.device == minim_privacy::ua::DeviceType::Bot);
    }
}
