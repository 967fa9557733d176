//! Static vocabularies: countries, devices, pages, referrers, campaigns and fake people.
//!
//! Weighted tables are `(value, weight)` pairs with a cumulative array computed at
//! compile time; [`crate::mix::pick_weighted`] draws from them.

/// Cumulative weights of a `(value, weight)` table.
pub(crate) const fn cumulative<T: Copy, const N: usize>(table: &[(T, u32); N]) -> [u32; N] {
    let mut out = [0u32; N];
    let mut acc = 0u32;
    let mut i = 0;
    while i < N {
        acc += table[i].1;
        out[i] = acc;
        i += 1;
    }
    out
}

/// The product's site (a reserved example domain).
pub(crate) const SITE: &str = "https://nimbus.example.com";

/// A country: ISO 3166-1 alpha-2 code and a phone number pattern (`#` = a digit,
/// `AAA` = a North American area code).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    pub iso: &'static str,
    pub phone: &'static str,
}

const fn c(iso: &'static str, phone: &'static str) -> Country {
    Country { iso, phone }
}

/// Skewed like a typical English-language SaaS audience (weights in per-mille).
pub(crate) const COUNTRIES: [(Country, u32); 26] = [
    (c("US", "+1 AAA-555-01##"), 300),
    (c("GB", "+44 20 7946 0###"), 90),
    (c("DE", "+49 30 #######"), 80),
    (c("IN", "+91 98### #####"), 70),
    (c("FR", "+33 6 ## ## ## ##"), 50),
    (c("CA", "+1 AAA-555-01##"), 50),
    (c("BR", "+55 11 9####-####"), 40),
    (c("NL", "+31 6 ########"), 30),
    (c("ES", "+34 6## ### ###"), 30),
    (c("AU", "+61 4## ### ###"), 30),
    (c("JP", "+81 90-####-####"), 30),
    (c("IT", "+39 3## ### ####"), 20),
    (c("PL", "+48 5## ### ###"), 20),
    (c("SE", "+46 70-### ## ##"), 20),
    (c("MX", "+52 55 #### ####"), 20),
    (c("CH", "+41 79 ### ## ##"), 15),
    (c("IE", "+353 87 ### ####"), 15),
    (c("PT", "+351 91# ### ###"), 12),
    (c("NG", "+234 80# ### ####"), 12),
    (c("ZA", "+27 82 ### ####"), 12),
    (c("SG", "+65 9### ####"), 12),
    (c("KR", "+82 10-####-####"), 12),
    (c("AR", "+54 9 11 ####-####"), 10),
    (c("TR", "+90 5## ### ## ##"), 10),
    (c("UA", "+380 67 ### ####"), 10),
    (c("NZ", "+64 21 ### ####"), 10),
];
pub(crate) const COUNTRIES_CUM: [u32; 26] = cumulative(&COUNTRIES);

/// A device profile: type, OS and browser, named as the PostHog JS library names them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Device {
    pub device_type: &'static str,
    pub os: &'static str,
    pub browser: &'static str,
}

const fn d(device_type: &'static str, os: &'static str, browser: &'static str) -> Device {
    Device {
        device_type,
        os,
        browser,
    }
}

/// Joint device/OS/browser profiles, so the combinations stay plausible.
pub(crate) const DEVICES: [(Device, u32); 20] = [
    (d("Desktop", "Windows", "Chrome"), 260),
    (d("Desktop", "Windows", "Microsoft Edge"), 60),
    (d("Desktop", "Windows", "Firefox"), 30),
    (d("Desktop", "Mac OS X", "Chrome"), 100),
    (d("Desktop", "Mac OS X", "Safari"), 60),
    (d("Desktop", "Mac OS X", "Firefox"), 15),
    (d("Desktop", "Mac OS X", "Arc"), 5),
    (d("Desktop", "Linux", "Chrome"), 20),
    (d("Desktop", "Linux", "Firefox"), 15),
    (d("Desktop", "Chrome OS", "Chrome"), 10),
    (d("Mobile", "iOS", "Mobile Safari"), 150),
    (d("Mobile", "iOS", "Chrome iOS"), 30),
    (d("Mobile", "Android", "Chrome"), 150),
    (d("Mobile", "Android", "Samsung Internet"), 30),
    (d("Mobile", "Android", "Firefox"), 5),
    (d("Mobile", "Android", "Opera"), 5),
    (d("Tablet", "iOS", "Mobile Safari"), 35),
    (d("Tablet", "Android", "Chrome"), 15),
    (d("Desktop", "Windows", "Opera"), 5),
    (d("Desktop", "Windows", "Brave"), 5),
];
pub(crate) const DEVICES_CUM: [u32; 20] = cumulative(&DEVICES);

/// A page: its path, optionally followed by one of `suffixes` (blog slugs, doc pages,
/// or a numeric id when `numeric_id` is set).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub path: &'static str,
    pub suffixes: &'static [&'static str],
    pub numeric_id: bool,
}

const fn p(path: &'static str) -> Page {
    Page {
        path,
        suffixes: &[],
        numeric_id: false,
    }
}

const BLOG_POSTS: &[&str] = &[
    "/how-we-cut-onboarding-time-in-half",
    "/remote-team-rituals",
    "/release-notes-january",
    "/writing-better-meeting-notes",
    "/why-we-moved-off-kubernetes",
    "/the-case-for-async-standups",
    "/templates-for-product-managers",
    "/announcing-offline-mode",
];

const DOC_PAGES: &[&str] = &[
    "/getting-started",
    "/getting-started/invite-your-team",
    "/api",
    "/api/authentication",
    "/integrations/slack",
    "/integrations/github",
    "/sso",
    "/billing",
    "/import",
    "/keyboard-shortcuts",
];

/// Marketing pages, as browsed by logged-out visitors.
pub(crate) const MARKETING_PAGES: [(Page, u32); 14] = [
    (p("/"), 250),
    (p("/pricing"), 140),
    (p("/features"), 90),
    (p("/features/collaboration"), 45),
    (p("/features/integrations"), 40),
    (p("/blog"), 50),
    (
        Page {
            path: "/blog",
            suffixes: BLOG_POSTS,
            numeric_id: false,
        },
        130,
    ),
    (p("/docs"), 40),
    (
        Page {
            path: "/docs",
            suffixes: DOC_PAGES,
            numeric_id: false,
        },
        90,
    ),
    (p("/customers"), 30),
    (p("/about"), 20),
    (p("/contact"), 20),
    (p("/careers"), 10),
    (p("/login"), 45),
];
pub(crate) const MARKETING_CUM: [u32; 14] = cumulative(&MARKETING_PAGES);

/// In-app pages, as browsed by logged-in users.
pub(crate) const APP_PAGES: [(Page, u32); 13] = [
    (p("/app"), 80),
    (p("/app/dashboard"), 240),
    (p("/app/projects"), 120),
    (
        Page {
            path: "/app/projects/",
            suffixes: &[],
            numeric_id: true,
        },
        200,
    ),
    (p("/app/projects/new"), 30),
    (p("/app/reports"), 90),
    (p("/app/integrations"), 40),
    (p("/app/settings"), 50),
    (p("/app/settings/team"), 30),
    (p("/app/settings/profile"), 30),
    (p("/app/billing"), 30),
    (p("/pricing"), 20),
    (
        Page {
            path: "/docs",
            suffixes: DOC_PAGES,
            numeric_id: false,
        },
        40,
    ),
];
pub(crate) const APP_CUM: [u32; 13] = cumulative(&APP_PAGES);

/// Pages where funnel steps happen.
pub(crate) const SIGNUP_PAGE: Page = p("/signup");
pub(crate) const LOGIN_PAGE: Page = p("/login");
pub(crate) const ONBOARDING_PAGE: Page = p("/app/onboarding");
pub(crate) const CHECKOUT_PAGE: Page = p("/checkout/success");

/// Where a session came from: `$referrer`, `$referring_domain`, and the
/// `(utm_source, utm_medium)` its campaigns use, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Referrer {
    pub url: &'static str,
    pub domain: &'static str,
    pub utm: Option<(&'static str, &'static str)>,
}

const fn r(
    url: &'static str,
    domain: &'static str,
    utm: Option<(&'static str, &'static str)>,
) -> Referrer {
    Referrer { url, domain, utm }
}

pub(crate) const REFERRERS: [(Referrer, u32); 16] = [
    (r("$direct", "$direct", Some(("newsletter", "email"))), 330),
    (
        r(
            "https://www.google.com/",
            "www.google.com",
            Some(("google", "cpc")),
        ),
        300,
    ),
    (
        r(
            "https://www.bing.com/",
            "www.bing.com",
            Some(("bing", "cpc")),
        ),
        40,
    ),
    (r("https://duckduckgo.com/", "duckduckgo.com", None), 30),
    (r("https://t.co/", "t.co", Some(("twitter", "social"))), 40),
    (
        r(
            "https://www.linkedin.com/",
            "www.linkedin.com",
            Some(("linkedin", "paid_social")),
        ),
        45,
    ),
    (
        r(
            "https://www.facebook.com/",
            "www.facebook.com",
            Some(("facebook", "paid_social")),
        ),
        25,
    ),
    (
        r(
            "https://www.reddit.com/r/productivity/",
            "www.reddit.com",
            None,
        ),
        30,
    ),
    (
        r(
            "https://news.ycombinator.com/",
            "news.ycombinator.com",
            None,
        ),
        25,
    ),
    (r("https://github.com/", "github.com", None), 25),
    (
        r(
            "https://www.producthunt.com/",
            "www.producthunt.com",
            Some(("producthunt", "referral")),
        ),
        20,
    ),
    (
        r(
            "https://www.youtube.com/",
            "www.youtube.com",
            Some(("youtube", "video")),
        ),
        20,
    ),
    (
        r(
            "https://blog.example.org/best-note-taking-apps-2026",
            "blog.example.org",
            None,
        ),
        25,
    ),
    (
        r(
            "https://www.g2.com/products/nimbus/reviews",
            "www.g2.com",
            Some(("g2", "referral")),
        ),
        15,
    ),
    (r("https://chatgpt.com/", "chatgpt.com", None), 20),
    (
        r(
            "https://mail.google.com/",
            "mail.google.com",
            Some(("newsletter", "email")),
        ),
        10,
    ),
];
pub(crate) const REFERRERS_CUM: [u32; 16] = cumulative(&REFERRERS);

pub(crate) const CAMPAIGNS: &[&str] = &[
    "brand_search",
    "q1_launch",
    "winter_sale",
    "webinar_followup",
    "competitor_alt",
    "newsletter_jan",
];

pub(crate) const BUTTONS: &[&str] = &[
    "Get started",
    "Start free trial",
    "Book a demo",
    "Create project",
    "Invite teammate",
    "Export CSV",
    "Share",
    "Upgrade",
    "Save",
    "Add comment",
];

pub(crate) const FEATURES: &[&str] = &[
    "editor",
    "comments",
    "export",
    "share_link",
    "templates",
    "reports",
    "ai_assist",
    "integrations",
    "calendar",
];

pub(crate) const ACTIVATION_ACTIONS: &[&str] = &[
    "created_first_project",
    "invited_teammate",
    "connected_integration",
    "imported_data",
];

pub(crate) const SEARCHES: &[&str] = &[
    "pricing",
    "export pdf",
    "api key",
    "invite team",
    "delete account",
    "sso",
    "slack integration",
    "keyboard shortcuts",
    "dark mode",
    "templates",
    "change password",
    "offline",
];

pub(crate) const LOGIN_METHODS: [(&str, u32); 4] = [
    ("password", 600),
    ("google", 250),
    ("github", 100),
    ("sso", 50),
];
pub(crate) const LOGIN_METHODS_CUM: [u32; 4] = cumulative(&LOGIN_METHODS);

pub(crate) const SIGNUP_METHODS: [(&str, u32); 3] =
    [("email", 550), ("google", 350), ("github", 100)];
pub(crate) const SIGNUP_METHODS_CUM: [u32; 3] = cumulative(&SIGNUP_METHODS);

/// Fake first names: (as written, ASCII form for email addresses).
pub(crate) const FIRST_NAMES: &[(&str, &str)] = &[
    ("Jane", "jane"),
    ("John", "john"),
    ("Maria", "maria"),
    ("Wei", "wei"),
    ("Aisha", "aisha"),
    ("Lucas", "lucas"),
    ("Sofia", "sofia"),
    ("Liam", "liam"),
    ("Emma", "emma"),
    ("Noah", "noah"),
    ("Olivia", "olivia"),
    ("Mateo", "mateo"),
    ("Priya", "priya"),
    ("Arjun", "arjun"),
    ("Chloé", "chloe"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Björn", "bjorn"),
    ("Yuki", "yuki"),
    ("Hana", "hana"),
    ("Omar", "omar"),
    ("Fatima", "fatima"),
    ("Daniel", "daniel"),
    ("Sarah", "sarah"),
    ("Michael", "michael"),
    ("Emily", "emily"),
    ("David", "david"),
    ("Anna", "anna"),
    ("Lena", "lena"),
    ("Tomasz", "tomasz"),
    ("Ngozi", "ngozi"),
    ("Kenji", "kenji"),
];

/// Fake last names: (as written, ASCII form for email addresses).
pub(crate) const LAST_NAMES: &[(&str, &str)] = &[
    ("Doe", "doe"),
    ("Smith", "smith"),
    ("Garcia", "garcia"),
    ("Chen", "chen"),
    ("Khan", "khan"),
    ("Müller", "mueller"),
    ("Rossi", "rossi"),
    ("Johnson", "johnson"),
    ("Brown", "brown"),
    ("Nguyen", "nguyen"),
    ("Patel", "patel"),
    ("Kowalski", "kowalski"),
    ("Silva", "silva"),
    ("O'Brien", "obrien"),
    ("Martin", "martin"),
    ("Dubois", "dubois"),
    ("Tanaka", "tanaka"),
    ("Kim", "kim"),
    ("Andersson", "andersson"),
    ("Novak", "novak"),
    ("Okafor", "okafor"),
    ("Fernández", "fernandez"),
    ("Schmidt", "schmidt"),
    ("Ivanova", "ivanova"),
    ("Williams", "williams"),
    ("Jones", "jones"),
    ("Davis", "davis"),
    ("van Dijk", "vandijk"),
];

pub(crate) const EMAIL_DOMAINS: [(&str, u32); 10] = [
    ("gmail.com", 400),
    ("outlook.com", 110),
    ("yahoo.com", 90),
    ("hotmail.com", 60),
    ("icloud.com", 80),
    ("proton.me", 40),
    ("example.com", 60),
    ("contoso.com", 60),
    ("northwind.io", 50),
    ("fabrikam.dev", 50),
];
pub(crate) const EMAIL_DOMAINS_CUM: [u32; 10] = cumulative(&EMAIL_DOMAINS);

/// Area codes used to fill US/Canada phone patterns (the `###` before `555`).
pub(crate) const NA_AREA_CODES: &[&str] = &[
    "212", "310", "415", "512", "617", "206", "312", "416", "604", "303",
];
