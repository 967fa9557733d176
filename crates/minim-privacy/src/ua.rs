//! User-agent enrichment: a `User-Agent` header becomes browser family, major
//! version, OS family and device type, and bots and automation are flagged. The raw
//! header is not kept.
//!
//! `woothee` does the parsing; on top of it `BOT_PATTERNS` (one list, the place to add
//! a bot) catches crawlers, headless browsers and HTTP libraries that woothee files
//! under a browser or does not know. Every string in the result comes from woothee's
//! fixed dataset or from this module, never from the header itself (the version is
//! digits only), so the output has bounded cardinality and carries no free text.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// Longest user agent parsed; longer headers are cut at this many bytes (at a char
/// boundary) first. Real browsers send a few hundred bytes.
pub const MAX_USER_AGENT_BYTES: usize = 1024;

/// Substrings (ASCII case-insensitive) that mark a user agent as a bot or automation,
/// in addition to woothee's crawler category and its "HTTP Library" entry.
///
/// Generic words first, then names that contain none of them. `bot` has one known
/// false positive, the phone maker CUBOT, handled in `matches_bot_pattern`. Brands that
/// also ship browsers or in-app webviews (DuckDuckGo, Yandex, Pinterest, WhatsApp) are
/// matched only through their crawler's own token (`DuckDuckBot`, `YandexBot`, ...).
pub const BOT_PATTERNS: &[&str] = &[
    // generic
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scraper",
    "headless",
    // link previews and platform fetchers
    "facebookexternalhit",
    "facebookcatalog",
    "meta-externalagent",
    "bingpreview",
    "skypeuripreview",
    "embedly",
    "feedfetcher",
    "mediapartners-google",
    "google-inspectiontool",
    "apis-google",
    "google page speed",
    "ia_archiver",
    "heritrix",
    // SEO and AI crawlers whose token lacks "bot"
    "ahrefs",
    "semrush",
    "anthropic-ai",
    "claude-web",
    "cohere-ai",
    "perplexity",
    // browser automation
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "lighthouse",
    // uptime and performance monitors
    "pingdom",
    "uptimerobot",
    "statuscake",
    "site24x7",
    "gtmetrix",
    "newrelicpinger",
    "datadog",
    "nagios",
    "check_http",
    "zabbix",
    "kube-probe",
    "elb-healthchecker",
    "googlehc",
];

/// HTTP libraries and command-line clients. As the user agent of an *event* (a
/// browser's, forwarded by an SDK) they mean automation, so they count as bots; as the
/// *request's* user agent they usually mean a server-side SDK sending on behalf of real
/// users, so the pipeline ignores such a request header instead ([`is_http_client`]).
pub const HTTP_CLIENT_PATTERNS: &[&str] = &[
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "curl/",
    "wget/",
    "libwww-perl",
    "go-http-client",
    "java/",
    "apache-httpclient",
    "okhttp",
    "axios/",
    "node-fetch",
    "undici",
    "got (https://github.com/sindresorhus/got)",
    "guzzlehttp",
    "postmanruntime",
    "insomnia/",
    "httpie/",
    "windowspowershell",
    "scrapy",
    // analytics SDKs that name themselves
    "posthog-",
    "mixpanel-",
    "analytics-",
];

/// A matcher over `BOT_PATTERNS` then `HTTP_CLIENT_PATTERNS` (pattern ids in that
/// order). Built once; the patterns are constants, so building cannot fail for any input
/// (a test builds it).
static BOT_MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(BOT_PATTERNS.iter().chain(HTTP_CLIENT_PATTERNS))
        .expect("the bot patterns are a small constant list of literals")
});

/// True when `ua` is an HTTP library, command-line client or server-side SDK rather
/// than a browser or a crawler.
pub fn is_http_client(ua: &str) -> bool {
    let ua = truncate_at_char_boundary(ua.trim(), MAX_USER_AGENT_BYTES);
    let parsed = woothee::parser::Parser::new().parse(ua);
    if parsed.as_ref().is_some_and(|r| r.name == "HTTP Library") {
        return true;
    }
    let crawler = parsed.is_some_and(|r| r.category == "crawler");
    !crawler
        && BOT_MATCHER
            .find_overlapping_iter(ua)
            .any(|m| m.pattern().as_usize() >= BOT_PATTERNS.len())
}

/// What kind of device sent the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    /// Crawlers, headless browsers, HTTP libraries, monitors.
    Bot,
    /// Consoles, TVs, unknown and empty user agents.
    Other,
}

impl DeviceType {
    /// Stable lowercase name stored with the event.
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Other => "other",
        }
    }
}

/// A user agent reduced to families.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAgent {
    /// Browser family: "Chrome", "Safari", "Firefox", "Edge", "Opera",
    /// "Samsung Internet", "Internet Explorer", "Yandex", "Vivaldi", "WebView",
    /// "Google App", a crawler name from woothee ("Googlebot", "bingbot", ...), or
    /// "Other".
    pub browser: String,
    /// Major version only, e.g. "120"; `None` when unknown or not numeric.
    pub browser_version: Option<String>,
    /// OS family: "Windows", "macOS", "iOS", "Android", "Linux", "ChromeOS",
    /// "Windows Phone", "BlackBerry", a console name from woothee, or "Other".
    pub os: String,
    pub device: DeviceType,
    pub is_bot: bool,
}

impl Default for UserAgent {
    /// Everything "Other", not a bot: what an empty or unparseable header gives.
    fn default() -> Self {
        UserAgent {
            browser: OTHER.to_owned(),
            browser_version: None,
            os: OTHER.to_owned(),
            device: DeviceType::Other,
            is_bot: false,
        }
    }
}

const OTHER: &str = "Other";

/// woothee's placeholder for "not detected".
const WOOTHEE_UNKNOWN: &str = "UNKNOWN";

/// Parses a `User-Agent` header value. Empty or whitespace-only input gives
/// `UserAgent::default()` (all "Other"). Never panics.
pub fn parse_user_agent(ua: &str) -> UserAgent {
    let ua = truncate_at_char_boundary(ua.trim(), MAX_USER_AGENT_BYTES);
    if ua.is_empty() {
        return UserAgent::default();
    }
    let parsed = woothee::parser::Parser::new().parse(ua);
    let (name, category, os, version) = match &parsed {
        Some(r) => (r.name, r.category, r.os, r.version),
        None => (WOOTHEE_UNKNOWN, WOOTHEE_UNKNOWN, WOOTHEE_UNKNOWN, ""),
    };
    let is_bot = category == "crawler" || name == "HTTP Library" || matches_bot_pattern(ua);
    let device = if is_bot {
        DeviceType::Bot
    } else {
        match category {
            "pc" => DeviceType::Desktop,
            "smartphone" if is_tablet(os, ua) => DeviceType::Tablet,
            "smartphone" | "mobilephone" => DeviceType::Mobile,
            _ => DeviceType::Other,
        }
    };
    let browser = browser_family(name);
    // A webview's `Version/4.0` token says nothing about the engine.
    let browser_version = if browser == "WebView" {
        None
    } else {
        major_version(version)
    };
    UserAgent {
        browser: browser.to_owned(),
        browser_version,
        os: os_family(os).to_owned(),
        device,
        is_bot,
    }
}

/// True when any of `BOT_PATTERNS` occurs in `ua`, except `bot` inside "CUBOT".
fn matches_bot_pattern(ua: &str) -> bool {
    BOT_MATCHER.find_overlapping_iter(ua).any(|m| {
        let is_cubot = BOT_PATTERNS.get(m.pattern().as_usize()) == Some(&"bot")
            && m.start() >= 2
            && ua
                .get(m.start() - 2..m.start())
                .is_some_and(|before| before.eq_ignore_ascii_case("cu"));
        !is_cubot
    })
}

/// iPads, and Android devices without the "Mobile" token (Chrome and Samsung Internet
/// drop it on tablets; Firefox sends "Tablet" instead of "Mobile").
fn is_tablet(woothee_os: &str, ua: &str) -> bool {
    woothee_os == "iPad" || (woothee_os == "Android" && !ua.contains("Mobile"))
}

fn browser_family(woothee_name: &str) -> &str {
    match woothee_name {
        "SamsungBrowser" => "Samsung Internet",
        "Yandex Browser" => "Yandex",
        "Google Search App" => "Google App",
        "Webview" => "WebView",
        // woothee's catch-alls for things it only recognises as "some crawler/library".
        "misc crawler" | "HTTP Library" | WOOTHEE_UNKNOWN | "" => OTHER,
        other => other,
    }
}

fn os_family(woothee_os: &str) -> &str {
    match woothee_os {
        "Mac OSX" => "macOS",
        "Mac OS Classic" => "Mac OS",
        "iPhone" | "iPad" | "iPod" | "iOS" => "iOS",
        "Windows Phone OS" => "Windows Phone",
        "Windows CE" => "Windows CE",
        os if os.starts_with("Windows") => "Windows",
        "BlackBerry" | "BlackBerry 10" => "BlackBerry",
        WOOTHEE_UNKNOWN | "" => OTHER,
        other => other,
    }
}

/// "120.0.6099.144" -> "120". `None` unless the part before the first dot is 1 to 5
/// ASCII digits.
fn major_version(version: &str) -> Option<String> {
    let major = version.split('.').next().unwrap_or_default();
    let numeric = (1..=5).contains(&major.len()) && major.bytes().all(|b| b.is_ascii_digit());
    numeric.then(|| major.to_owned())
}

fn truncate_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceType::*;

    /// (user agent, browser, major version, os, device, is_bot)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        DeviceType,
        bool,
    );

    const CASES: &[Case] = &[
        // Desktop browsers
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome",
            Some("120"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            "Safari",
            Some("17"),
            "macOS",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome",
            Some("120"),
            "macOS",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox",
            Some("121"),
            "Linux",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
            "Firefox",
            Some("115"),
            "Linux",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox",
            Some("121"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            "Edge",
            Some("120"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
            "Opera",
            Some("106"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome",
            Some("120"),
            "ChromeOS",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer",
            Some("11"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
            "Yandex",
            Some("24"),
            "Windows",
            Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5",
            "Vivaldi",
            Some("6"),
            "Windows",
            Desktop,
            false,
        ),
        // Phones
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            "Safari",
            Some("17"),
            "iOS",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            "Chrome",
            Some("120"),
            "iOS",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
            "Firefox",
            Some("121"),
            "iOS",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "WebView",
            None,
            "iOS",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome",
            Some("120"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            "Samsung Internet",
            Some("23"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
            "Edge",
            Some("120"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 OPR/79.0.2254.70438",
            "Opera",
            Some("79"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
            "Firefox",
            Some("121"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36",
            "WebView",
            None,
            "Android",
            Mobile,
            false,
        ),
        // CUBOT is a phone maker, not a bot.
        (
            "Mozilla/5.0 (Linux; Android 10; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Chrome",
            Some("120"),
            "Android",
            Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
            "Edge",
            Some("15"),
            "Windows Phone",
            Mobile,
            false,
        ),
        // Tablets
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "Safari",
            Some("16"),
            "iOS",
            Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Safari/537.36",
            "Chrome",
            Some("120"),
            "Android",
            Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X810) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
            "Samsung Internet",
            Some("23"),
            "Android",
            Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
            "Firefox",
            Some("121"),
            "Android",
            Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
            "Chrome",
            Some("120"),
            "Android",
            Tablet,
            false,
        ),
        // Consoles
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edge/44.18363.8131",
            "Xbox One",
            Some("44"),
            "Xbox One",
            Other,
            false,
        ),
        (
            "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            "Safari",
            Some("13"),
            "Other",
            Other,
            false,
        ),
        // Crawlers woothee knows
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "bingbot",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
            "Other",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
            "Other",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebook",
            None,
            "Other",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "ahref AhrefsBot",
            None,
            "Other",
            Bot,
            true,
        ),
        // Automation that looks like a browser to woothee
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36",
            "Chrome",
            Some("120"),
            "Linux",
            Bot,
            true,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Chrome-Lighthouse",
            "Chrome",
            Some("120"),
            "Windows",
            Bot,
            true,
        ),
        // HTTP libraries and CLIs
        ("curl/8.4.0", "Other", None, "Other", Bot, true),
        ("python-requests/2.31.0", "Other", None, "Other", Bot, true),
        ("Wget/1.21.4", "Other", None, "Other", Bot, true),
        ("Go-http-client/2.0", "Other", None, "Other", Bot, true),
        ("axios/1.6.2", "Other", None, "Other", Bot, true),
        ("okhttp/4.12.0", "Other", None, "Other", Bot, true),
        ("Java/17.0.9", "Other", None, "Other", Bot, true),
        ("PostmanRuntime/7.36.0", "Other", None, "Other", Bot, true),
        // Empty and garbage
        ("", "Other", None, "Other", Other, false),
        ("   ", "Other", None, "Other", Other, false),
        ("-", "Other", None, "Other", Other, false),
        ("garbage ###", "Other", None, "Other", Other, false),
        ("Mozilla/5.0", "Other", None, "Other", Other, false),
        (
            "\u{0}\u{ffff}\u{1F600}",
            "Other",
            None,
            "Other",
            Other,
            false,
        ),
    ];

    #[test]
    fn real_user_agents() {
        for &(ua, browser, version, os, device, is_bot) in CASES {
            let expected = UserAgent {
                browser: browser.to_owned(),
                browser_version: version.map(str::to_owned),
                os: os.to_owned(),
                device,
                is_bot,
            };
            assert_eq!(parse_user_agent(ua), expected, "{ua:?}");
        }
    }

    #[test]
    fn empty_is_all_other() {
        assert_eq!(parse_user_agent(""), UserAgent::default());
        assert_eq!(UserAgent::default().device.name(), "other");
        assert!(!UserAgent::default().is_bot);
    }

    #[test]
    fn device_names_are_stable() {
        let names: Vec<_> = [Desktop, Mobile, Tablet, Bot, Other]
            .into_iter()
            .map(DeviceType::name)
            .collect();
        assert_eq!(names, ["desktop", "mobile", "tablet", "bot", "other"]);
    }

    #[test]
    fn bot_matcher_builds_and_is_case_insensitive() {
        assert!(matches_bot_pattern("SomeNewCRAWLER/1.0"));
        assert!(matches_bot_pattern("my-uptimerobot-check"));
        assert!(matches_bot_pattern(
            "Mozilla/5.0 (compatible; YandexBot/3.0)"
        ));
        assert!(!matches_bot_pattern(
            "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0.0.0"
        ));
    }

    #[test]
    fn cubot_exception_does_not_hide_a_real_bot() {
        assert!(!matches_bot_pattern("Android 10; CUBOT_X19"));
        assert!(!matches_bot_pattern("Android 10; cubot note"));
        assert!(matches_bot_pattern("CUBOT_X19 Googlebot/2.1"));
        assert!(matches_bot_pattern("bot"));
        assert!(matches_bot_pattern("ubot"));
    }

    #[test]
    fn every_bot_pattern_is_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in BOT_PATTERNS.iter().chain(HTTP_CLIENT_PATTERNS) {
            assert_eq!(*p, p.to_ascii_lowercase(), "{p:?}");
            assert!(seen.insert(*p), "duplicate {p:?}");
        }
    }

    #[test]
    fn http_clients_are_told_from_browsers_and_crawlers() {
        for ua in [
            "curl/8.4.0",
            "python-requests/2.31.0",
            "posthog-python/3.0.0",
            "Go-http-client/1.1",
        ] {
            assert!(is_http_client(ua), "{ua}");
            assert!(parse_user_agent(ua).is_bot, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "",
        ] {
            assert!(!is_http_client(ua), "{ua}");
        }
    }

    #[test]
    fn major_version_accepts_digits_only() {
        assert_eq!(major_version("120.0.6099.144").as_deref(), Some("120"));
        assert_eq!(major_version("17").as_deref(), Some("17"));
        assert_eq!(major_version("curl"), None);
        assert_eq!(major_version(""), None);
        assert_eq!(major_version("UNKNOWN"), None);
        assert_eq!(major_version("123456.1"), None);
        assert_eq!(major_version(".1"), None);
    }

    #[test]
    fn long_user_agents_are_cut_at_a_char_boundary() {
        let long = format!("Mozilla/5.0 {}", "é".repeat(MAX_USER_AGENT_BYTES));
        let cut = truncate_at_char_boundary(&long, MAX_USER_AGENT_BYTES);
        assert!(cut.len() <= MAX_USER_AGENT_BYTES);
        assert!(long.starts_with(cut));
        let parsed = parse_user_agent(&long);
        assert!(!parsed.is_bot);
    }

    #[test]
    fn output_never_echoes_free_text_from_the_header() {
        let ua = "Mozilla/5.0 (Linux; Android 13; alice@example.com) Chrome/120.0.0.0 Mobile Safari/537.36";
        let parsed = parse_user_agent(ua);
        assert_eq!(parsed.browser, "Chrome");
        assert_eq!(parsed.os, "Android");
        assert!(!format!("{parsed:?}").contains("alice"));
    }
}
