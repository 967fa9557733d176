//! The pipeline every event passes between decoding and the WAL: bots, tracking plan,
//! PII in names and values, URL hygiene, pseudonymous identity, cookieless ids, user
//! agent and geo enrichment. The client IP and raw user agent are used here and go no
//! further.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use minim_core::props::{REDACTED, push_json_str, skip_value};
use minim_core::{Event, ProjectId};
use serde::{Deserialize, Serialize};

use crate::counters::PrivacyStats;
use crate::detect::{Detector, Detectors, Finding, is_secret_name};
use crate::geo::{Geo, GeoLevel};
use crate::json::{self, Kind};
use crate::plan::{
    CompiledPlan, Mode, PiiAction, PropertyRule, PropertyType, ReferrerPolicy, Sensitivity,
};
use crate::pseudo::{Purpose, Secret};
use crate::salt::SaltRing;
use crate::ua::{UserAgent, is_http_client, parse_user_agent};
use crate::url::{UrlPolicy, clean_path, clean_url, is_referrer_key, referrer_origin};

/// Properties the pipeline adds. Clients may not set them: theirs are replaced.
pub const BROWSER: &str = "$browser";
pub const BROWSER_VERSION: &str = "$browser_version";
pub const OS: &str = "$os";
pub const DEVICE_TYPE: &str = "$device_type";
pub const BOT: &str = "$bot";
pub const GEO_COUNTRY: &str = "$geo_country";
pub const GEO_REGION: &str = "$geo_region";
pub const GEO_CITY: &str = "$geo_city";
/// Where SDKs put the raw user agent and client IP; read, then removed.
const UA_PROPERTIES: [&str; 2] = ["$raw_user_agent", "$user_agent"];
const IP_PROPERTIES: [&str; 2] = ["$ip", "ip"];
/// Bound on remembered learn-mode names per project (suggestions are persisted by the
/// caller; this only avoids reporting the same name again and again).
const MAX_LEARNED_PER_PROJECT: usize = 50_000;

/// The `[privacy]` config section (process-wide; per-project rules are in the plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// MaxMind-format database for geo enrichment; absent = no geo.
    pub geoip_path: Option<std::path::PathBuf>,
    pub geoip_level: GeoLevel,
    /// Peers whose `X-Forwarded-For` is believed (CIDRs); others' is ignored.
    pub trusted_proxies: Vec<String>,
    /// How often the retention job runs (0 = never; `minim retention run` still works).
    pub retention_interval_ms: u64,
    /// Benchmarks only: store events as decoded, skipping the whole pipeline (no
    /// scrubbing, no pseudonyms). Measures the pipeline's cost; never for real data.
    pub benchmark_bypass: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            geoip_path: None,
            geoip_level: GeoLevel::Country,
            trusted_proxies: Vec::new(),
            retention_interval_ms: 3_600_000,
            benchmark_bypass: false,
        }
    }
}

impl PrivacyConfig {
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("privacy.trusted_proxies: {s:?} is not an IP or CIDR"))
            })
            .collect()
    }
}

/// What the HTTP layer knows about the sender. Never stored, never logged.
#[derive(Clone, Default)]
pub struct ClientContext {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientContext(..)")
    }
}

/// A project's rules and keys for one batch.
pub struct ProjectContext<'a> {
    pub project: &'a ProjectId,
    pub plan: &'a CompiledPlan,
    pub secret: &'a Secret,
}

/// A name seen in `learn` mode that the plan does not declare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Suggestion {
    pub event: String,
    /// `None` for an undeclared event, else the undeclared property of `event`.
    pub property: Option<String>,
    /// JSON type of the first value seen.
    pub seen_type: &'static str,
}

/// The result of one batch.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<Event>,
    /// Input index of each kept event, parallel to `events`.
    pub indices: Vec<usize>,
    /// `(input index, reason)` of dropped events.
    pub dropped: Vec<(usize, String)>,
    pub stats: PrivacyStats,
    pub suggestions: Vec<Suggestion>,
    /// `(pseudonym, original distinct_id)` when the plan keeps an identity map.
    pub identities: Vec<(String, String)>,
}

/// `(event, property)` as reported in learn mode.
type LearnedName = (String, Option<String>);

/// Shared by all requests; cheap per event.
pub struct Pipeline {
    detectors: Detectors,
    geo: Option<Geo>,
    salts: SaltRing,
    learned: Mutex<HashMap<ProjectId, HashSet<LearnedName>>>,
}

impl Pipeline {
    pub fn new(geo: Option<Geo>, now_ms: i64) -> Self {
        Self {
            detectors: Detectors::new(),
            geo,
            salts: SaltRing::new(now_ms),
            learned: Mutex::new(HashMap::new()),
        }
    }

    /// Rotates the cookieless salt at UTC midnight even when no event arrives.
    pub fn tick(&self, now_ms: i64) {
        self.salts.rotate_if_due(now_ms);
    }

    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    /// Runs the pipeline over a decoded batch. `now_ms` picks the cookieless salt.
    pub fn process(
        &self,
        ctx: &ProjectContext<'_>,
        client: &ClientContext,
        events: Vec<Event>,
        now_ms: i64,
    ) -> Outcome {
        let mut out = Outcome {
            events: Vec::with_capacity(events.len()),
            indices: Vec::with_capacity(events.len()),
            ..Outcome::default()
        };
        out.stats.received = events.len() as u64;
        // A server-side SDK's own user agent (an HTTP library) says nothing about the
        // user: such a request header is ignored rather than taken for a bot.
        let header_ua = client
            .user_agent
            .as_deref()
            .filter(|ua| !is_http_client(ua))
            .map(parse_user_agent);
        let geo = match (&self.geo, client.ip) {
            (Some(g), Some(ip)) => g.lookup(ip),
            _ => None,
        };
        let mut w = Worker {
            p: self,
            ctx,
            stats: &mut out.stats,
            suggestions: Vec::new(),
            findings: Vec::new(),
            url_policy: UrlPolicy {
                allowed_params: ctx.plan.plan.url_params.clone(),
            },
        };
        let mut seen_ids: HashSet<String> = HashSet::new();
        for (index, mut event) in events.into_iter().enumerate() {
            match w.event(&mut event, header_ua.as_ref(), client, geo.as_ref(), now_ms) {
                Ok(original_id) => {
                    if let Some(original) = original_id
                        && seen_ids.insert(event.distinct_id.clone())
                    {
                        out.identities.push((event.distinct_id.clone(), original));
                    }
                    out.events.push(event);
                    out.indices.push(index);
                }
                Err(reason) => {
                    PrivacyStats::bump(&mut w.stats.events_dropped, &reason);
                    out.dropped.push((index, reason));
                }
            }
        }
        out.suggestions =
            self.keep_new_suggestions(ctx.project, std::mem::take(&mut w.suggestions));
        out.stats.accepted = out.events.len() as u64;
        out
    }

    fn keep_new_suggestions(&self, project: &ProjectId, s: Vec<Suggestion>) -> Vec<Suggestion> {
        if s.is_empty() {
            return s;
        }
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        let seen = learned.entry(project.clone()).or_default();
        if seen.len() > MAX_LEARNED_PER_PROJECT {
            seen.clear();
        }
        s.into_iter()
            .filter(|x| seen.insert((x.event.clone(), x.property.clone())))
            .collect()
    }
}

/// Per-batch state.
struct Worker<'a, 'c> {
    p: &'a Pipeline,
    ctx: &'a ProjectContext<'c>,
    stats: &'a mut PrivacyStats,
    suggestions: Vec<Suggestion>,
    findings: Vec<Finding>,
    url_policy: UrlPolicy,
}

/// What to do with a value after scrubbing.
enum Verdict<T> {
    Keep(T),
    DropProperty(String),
    DropEvent(String),
}

/// The top-level facts the enrichment step needs from the properties walk.
#[derive(Default)]
struct Seen {
    user_agent: Option<String>,
    /// Enrichment names the client set itself (already scrubbed): kept only where the
    /// pipeline has nothing of its own (e.g. a server-side SDK forwarding `$browser`).
    reserved: Vec<(String, String)>,
}

impl Worker<'_, '_> {
    /// Rewrites one event in place; `Err(reason)` drops it. `Ok(Some(original))` carries
    /// the original `distinct_id` for the identity map.
    fn event(
        &mut self,
        e: &mut Event,
        header_ua: Option<&UserAgent>,
        client: &ClientContext,
        geo: Option<&crate::geo::GeoInfo>,
        now_ms: i64,
    ) -> Result<Option<String>, String> {
        let plan = self.ctx.plan;
        // The event name is a string like any other; scrubbed first, so that nothing
        // below (suggestions included) sees PII in it. Declared names carry none.
        match self.scrub_text(&e.event) {
            Verdict::Keep(Cow::Borrowed(_)) => {}
            Verdict::Keep(Cow::Owned(s)) => e.event = s,
            Verdict::DropProperty(r) | Verdict::DropEvent(r) => return Err(r),
        }
        if !plan.is_declared_event(&e.event) {
            match plan.mode() {
                Mode::Strict => return Err("undeclared_event".into()),
                Mode::Learn => self.suggestions.push(Suggestion {
                    event: e.event.clone(),
                    property: None,
                    seen_type: "event",
                }),
                Mode::Permissive => {}
            }
        }
        let event_name = e.event.clone();
        let mut seen = Seen::default();
        let mut props = String::with_capacity(e.properties.len() + 96);
        let mut personal = String::new();
        self.properties(
            &event_name,
            &e.properties,
            &mut props,
            &mut personal,
            &mut seen,
        )?;
        e.personal = (!personal.is_empty()).then(|| {
            personal.push('}');
            personal
        });

        // User agent: the event's own (server-side SDKs forward the browser's) wins.
        let event_ua = seen.user_agent.as_deref().map(parse_user_agent);
        let ua = event_ua.as_ref().or(header_ua);
        if let Some(ua) = ua {
            if ua.is_bot && !plan.plan.keep_bots {
                return Err("bot".into());
            }
            push_str(&mut props, BROWSER, &ua.browser);
            if let Some(v) = &ua.browser_version {
                push_str(&mut props, BROWSER_VERSION, v);
            }
            push_str(&mut props, OS, &ua.os);
            push_str(&mut props, DEVICE_TYPE, ua.device.name());
            if ua.is_bot {
                push_raw(&mut props, BOT, "true");
            }
        }
        if let Some(g) = geo {
            for (name, v) in [
                (GEO_COUNTRY, &g.country),
                (GEO_REGION, &g.region),
                (GEO_CITY, &g.city),
            ] {
                if let Some(v) = v {
                    push_str(&mut props, name, v);
                }
            }
        }
        for (key, raw) in &seen.reserved {
            let ours = match key.as_str() {
                GEO_COUNTRY | GEO_REGION | GEO_CITY => geo.is_some(),
                _ => ua.is_some(),
            };
            if ours {
                self.drop_prop("reserved_name");
            } else {
                push_raw(&mut props, key, raw);
            }
        }
        props.push('}');
        e.properties = props;

        if let Some(id) = &e.insert_id {
            self.findings.clear();
            self.p.detectors.scan(id, &mut self.findings);
            if !self.findings.is_empty() {
                e.insert_id = Some(
                    self.ctx
                        .secret
                        .keyed_hash(Purpose::InsertId, &[id.as_bytes()]),
                );
            }
        }
        // Identity last: nothing above may depend on the original id.
        if e.distinct_id.is_empty() {
            let ua = client
                .user_agent
                .as_deref()
                .or(seen.user_agent.as_deref())
                .unwrap_or("");
            e.distinct_id = self
                .p
                .salts
                .visitor_id(now_ms, self.ctx.project, client.ip, ua);
            Ok(None)
        } else {
            let original = std::mem::take(&mut e.distinct_id);
            e.distinct_id = self.ctx.secret.pseudonym(&original);
            Ok(plan.plan.identity_map.then_some(original))
        }
    }

    /// Rewrites the top-level properties object into `out` (without its closing brace).
    /// A `personal` value goes into `personal` (an object without its closing brace, empty
    /// when there is none) and [`REDACTED`] takes its place in `out`.
    fn properties(
        &mut self,
        event: &str,
        text: &str,
        out: &mut String,
        personal: &mut String,
        seen: &mut Seen,
    ) -> Result<(), String> {
        out.push('{');
        let b = text.as_bytes();
        if b.first() != Some(&b'{') {
            return Ok(());
        }
        let mut pos = 1;
        while pos < b.len() && b[pos] != b'}' {
            if b[pos] == b',' {
                pos += 1;
            }
            let Some((key, key_end)) = json::read_string(text, pos) else {
                return Ok(());
            };
            let vstart = key_end + 1; // past ':'
            let Some(vend) = skip_value(b, vstart) else {
                return Ok(());
            };
            let raw = &text[vstart..vend];
            pos = vend;
            if let Some((value, class)) = self.top_property(event, &key, raw, seen)? {
                if out.len() > 1 {
                    out.push(',');
                }
                push_json_str(out, &key);
                out.push(':');
                if class == Sensitivity::Personal && value != "null" {
                    out.push_str(REDACTED);
                    personal.push(if personal.is_empty() { '{' } else { ',' });
                    push_json_str(personal, &key);
                    personal.push(':');
                    personal.push_str(&value);
                } else {
                    out.push_str(&value);
                }
            }
        }
        Ok(())
    }

    /// One top-level property, with its class: `Ok(None)` drops it, `Err` drops the event.
    fn top_property(
        &mut self,
        event: &str,
        key: &str,
        raw: &str,
        seen: &mut Seen,
    ) -> Result<Option<(String, Sensitivity)>, String> {
        if UA_PROPERTIES.contains(&key) {
            if let Some((ua, _)) = json::read_string(raw, 0) {
                seen.user_agent = Some(ua.into_owned());
            }
            self.drop_prop("raw_user_agent");
            return Ok(None);
        }
        if IP_PROPERTIES.contains(&key) {
            self.drop_prop("client_ip");
            return Ok(None);
        }
        if let Some(reason) = self.bad_name(key) {
            self.drop_prop(&reason);
            return Ok(None);
        }
        let plan = self.ctx.plan;
        let (class, ty) = match plan.property(event, key) {
            PropertyRule::Declared(spec) => (spec.class, spec.ty),
            PropertyRule::Undeclared => {
                match plan.mode() {
                    Mode::Strict => {
                        self.drop_prop("undeclared");
                        return Ok(None);
                    }
                    Mode::Learn => self.suggestions.push(Suggestion {
                        event: event.to_owned(),
                        property: Some(key.to_owned()),
                        seen_type: type_name(raw),
                    }),
                    Mode::Permissive => {}
                }
                (Sensitivity::Internal, PropertyType::Any)
            }
        };
        if class == Sensitivity::Secret {
            self.drop_prop("secret_class");
            return Ok(None);
        }
        let Some(raw) = coerce(raw, ty) else {
            self.drop_prop("type_mismatch");
            return Ok(None);
        };
        let referrer = is_referrer_key(key);
        match self.value(&raw, class, referrer)? {
            Verdict::Keep(v) if is_enriched(key) => {
                seen.reserved.push((key.to_owned(), v.into_owned()));
                Ok(None)
            }
            Verdict::Keep(v) => Ok(Some((v.into_owned(), class))),
            Verdict::DropProperty(reason) => {
                self.drop_prop(&reason);
                Ok(None)
            }
            Verdict::DropEvent(reason) => Err(reason),
        }
    }

    /// Scrubs any JSON value (recursively); `Err` drops the event.
    fn value<'v>(
        &mut self,
        raw: &'v str,
        class: Sensitivity,
        referrer: bool,
    ) -> Result<Verdict<Cow<'v, str>>, String> {
        let b = raw.as_bytes();
        Ok(match json::kind_at(b, 0) {
            Some(Kind::String) => {
                let Some((s, _)) = json::read_string(raw, 0) else {
                    return Ok(Verdict::Keep(Cow::Borrowed(raw)));
                };
                match self.string(&s, class, referrer) {
                    Verdict::Keep(Cow::Borrowed(_)) => Verdict::Keep(Cow::Borrowed(raw)),
                    Verdict::Keep(Cow::Owned(new)) => {
                        let mut out = String::with_capacity(new.len() + 2);
                        push_json_str(&mut out, &new);
                        Verdict::Keep(Cow::Owned(out))
                    }
                    Verdict::DropProperty(r) => Verdict::DropProperty(r),
                    Verdict::DropEvent(r) => return Err(r),
                }
            }
            Some(Kind::Number) => match self.scrub_text(raw) {
                Verdict::Keep(Cow::Borrowed(_)) => Verdict::Keep(Cow::Borrowed(raw)),
                Verdict::Keep(Cow::Owned(new)) => {
                    let mut out = String::new();
                    push_json_str(&mut out, &new);
                    Verdict::Keep(Cow::Owned(out))
                }
                Verdict::DropProperty(r) => Verdict::DropProperty(r),
                Verdict::DropEvent(r) => return Err(r),
            },
            Some(Kind::Object) => self.container(raw, class, b'{', b'}')?,
            Some(Kind::Array) => self.container(raw, class, b'[', b']')?,
            _ => Verdict::Keep(Cow::Borrowed(raw)),
        })
    }

    /// Nested objects and arrays: a bad member is dropped alone.
    fn container<'v>(
        &mut self,
        raw: &'v str,
        class: Sensitivity,
        open: u8,
        close: u8,
    ) -> Result<Verdict<Cow<'v, str>>, String> {
        let b = raw.as_bytes();
        let mut out = String::with_capacity(raw.len());
        out.push(open as char);
        let mut changed = false;
        let mut pos = 1;
        while pos < b.len() && b[pos] != close {
            if b[pos] == b',' {
                pos += 1;
            }
            let mut key: Option<Cow<'_, str>> = None;
            let mut vstart = pos;
            if open == b'{' {
                let Some((k, end)) = json::read_string(raw, pos) else {
                    break;
                };
                key = Some(k);
                vstart = end + 1;
            }
            let Some(vend) = skip_value(b, vstart) else {
                break;
            };
            pos = vend;
            if let Some(k) = &key
                && let Some(reason) = self.bad_name(k)
            {
                self.drop_prop(&reason);
                changed = true;
                continue;
            }
            let referrer = key.as_deref().is_some_and(is_referrer_key);
            let v = match self.value(&raw[vstart..vend], class, referrer)? {
                Verdict::Keep(v) => v,
                Verdict::DropProperty(reason) => {
                    self.drop_prop(&reason);
                    changed = true;
                    continue;
                }
                Verdict::DropEvent(r) => return Err(r),
            };
            changed |= matches!(v, Cow::Owned(_));
            if out.len() > 1 {
                out.push(',');
            }
            if let Some(k) = &key {
                push_json_str(&mut out, k);
                out.push(':');
            }
            out.push_str(&v);
        }
        out.push(close as char);
        Ok(Verdict::Keep(if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(raw)
        }))
    }

    /// A string value: URL hygiene, then PII. Personal values keep their text; only
    /// credentials are removed from them.
    fn string<'s>(
        &mut self,
        s: &'s str,
        class: Sensitivity,
        referrer: bool,
    ) -> Verdict<Cow<'s, str>> {
        let mut value: Cow<'s, str> = Cow::Borrowed(s);
        if referrer && self.ctx.plan.plan.referrer == ReferrerPolicy::Origin {
            if let Some(origin) = referrer_origin(s)
                && origin != s
            {
                self.stats.urls_cleaned += 1;
                value = Cow::Owned(origin);
            }
        } else if let Some(clean) = clean_url(s, &self.url_policy).or_else(|| {
            s.starts_with('/')
                .then(|| clean_path(s, &self.url_policy))
                .flatten()
        }) && clean != s
        {
            self.stats.urls_cleaned += 1;
            value = Cow::Owned(clean);
        }
        // Percent-encoded PII (`a%40b.com`) is looked for in the decoded text.
        if value.contains('%')
            && let Some(decoded) = percent_decode(&value)
        {
            self.findings.clear();
            self.p.detectors.scan(&decoded, &mut self.findings);
            if !self.findings.is_empty() {
                value = Cow::Owned(decoded);
            }
        }
        if class == Sensitivity::Personal {
            self.findings.clear();
            self.p.detectors.scan(&value, &mut self.findings);
            return match self.findings.iter().find(|f| f.detector.is_secret()) {
                Some(f) => self.drop_for(f.detector),
                None => Verdict::Keep(value),
            };
        }
        match self.scrub_text(&value) {
            Verdict::Keep(Cow::Borrowed(_)) => Verdict::Keep(value),
            Verdict::Keep(Cow::Owned(v)) => Verdict::Keep(Cow::Owned(v)),
            Verdict::DropProperty(r) => Verdict::DropProperty(r),
            Verdict::DropEvent(r) => Verdict::DropEvent(r),
        }
    }

    /// Applies the plan's per-detector actions to the findings in `s`.
    fn scrub_text<'s>(&mut self, s: &'s str) -> Verdict<Cow<'s, str>> {
        self.findings.clear();
        self.p.detectors.scan(s, &mut self.findings);
        if self.findings.is_empty() {
            return Verdict::Keep(Cow::Borrowed(s));
        }
        let plan = self.ctx.plan;
        // The strongest action wins: drop the event, then the property.
        let mut drop_prop = None;
        for f in &self.findings {
            match plan.action(f.detector) {
                PiiAction::DropEvent => {
                    return Verdict::DropEvent(format!("pii_{}", f.detector.name()));
                }
                PiiAction::DropProperty if drop_prop.is_none() => drop_prop = Some(f.detector),
                _ => {}
            }
        }
        if let Some(d) = drop_prop {
            return Verdict::DropProperty(format!("pii_{}", d.name()));
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for f in &self.findings {
            out.push_str(&s[last..f.start]);
            match plan.action(f.detector) {
                PiiAction::Hash => {
                    let h = self
                        .ctx
                        .secret
                        .keyed_hash(Purpose::Pii, &[&s.as_bytes()[f.start..f.end]]);
                    out.push('[');
                    out.push_str(f.detector.name());
                    out.push(':');
                    out.push_str(&h);
                    out.push(']');
                }
                _ => {
                    out.push_str("[redacted:");
                    out.push_str(f.detector.name());
                    out.push(']');
                }
            }
            last = f.end;
            PrivacyStats::bump(&mut self.stats.values_scrubbed, f.detector.name());
        }
        out.push_str(&s[last..]);
        Verdict::Keep(Cow::Owned(out))
    }

    fn drop_for(&mut self, d: Detector) -> Verdict<Cow<'static, str>> {
        match self.ctx.plan.action(d) {
            PiiAction::DropEvent => Verdict::DropEvent(format!("pii_{}", d.name())),
            _ => Verdict::DropProperty(format!("pii_{}", d.name())),
        }
    }

    /// Why a property name may not be stored, if it may not.
    fn bad_name(&mut self, key: &str) -> Option<String> {
        if is_secret_name(key) {
            return Some("secret_name".into());
        }
        self.findings.clear();
        self.p.detectors.scan(key, &mut self.findings);
        self.findings
            .first()
            .map(|f| format!("pii_{}", f.detector.name()))
    }

    fn drop_prop(&mut self, reason: &str) {
        PrivacyStats::bump(&mut self.stats.properties_dropped, reason);
    }
}

fn is_enriched(key: &str) -> bool {
    matches!(
        key,
        BROWSER | BROWSER_VERSION | OS | DEVICE_TYPE | BOT | GEO_COUNTRY | GEO_REGION | GEO_CITY
    )
}

fn type_name(raw: &str) -> &'static str {
    match json::kind_at(raw.as_bytes(), 0) {
        Some(Kind::Object) => "object",
        Some(Kind::Array) => "array",
        Some(Kind::String) => "string",
        Some(Kind::Number) => "number",
        Some(Kind::Bool) => "boolean",
        _ => "null",
    }
}

/// The value as the declared type, converting only where no information is lost;
/// `None` when it cannot be. `null` is always accepted (it means "not set").
fn coerce(raw: &str, ty: PropertyType) -> Option<Cow<'_, str>> {
    let kind = json::kind_at(raw.as_bytes(), 0)?;
    if kind == Kind::Null {
        return Some(Cow::Borrowed(raw));
    }
    let as_string = || json::read_string(raw, 0).map(|(s, _)| s);
    match (ty, kind) {
        (PropertyType::Any, _)
        | (PropertyType::String, Kind::String)
        | (PropertyType::Number, Kind::Number)
        | (PropertyType::Boolean, Kind::Bool)
        | (PropertyType::Object, Kind::Object)
        | (PropertyType::Array, Kind::Array) => Some(Cow::Borrowed(raw)),
        (PropertyType::String, Kind::Number | Kind::Bool) => {
            let mut out = String::new();
            push_json_str(&mut out, raw);
            Some(Cow::Owned(out))
        }
        (PropertyType::Integer, Kind::Number) => {
            if raw.parse::<i64>().is_ok() {
                return Some(Cow::Borrowed(raw));
            }
            let f: f64 = raw.parse().ok()?;
            (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
                .then(|| Cow::Owned((f as i64).to_string()))
        }
        (PropertyType::Integer, Kind::String) => {
            let s = as_string()?;
            let n: i64 = s.trim().parse().ok()?;
            Some(Cow::Owned(n.to_string()))
        }
        (PropertyType::Number, Kind::String) => {
            let s = as_string()?;
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return Some(Cow::Owned(n.to_string()));
            }
            let f: f64 = s.parse().ok()?;
            let text = serde_json::Number::from_f64(f)?.to_string();
            Some(Cow::Owned(text))
        }
        (PropertyType::Boolean, Kind::String) => match as_string()?.trim() {
            "true" => Some(Cow::Borrowed("true")),
            "false" => Some(Cow::Borrowed("false")),
            _ => None,
        },
        _ => None,
    }
}

/// `%XX`-decoded text when it decodes to valid UTF-8 and differs.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            changed = true;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if !changed {
        return None;
    }
    String::from_utf8(out).ok()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn push_str(out: &mut String, key: &str, value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    push_json_str(out, key);
    out.push(':');
    push_json_str(out, value);
}

fn push_raw(out: &mut String, key: &str, raw: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    push_json_str(out, key);
    out.push(':');
    out.push_str(raw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TrackingPlan;

    fn run(plan: &str, props: &str, distinct_id: &str) -> (Outcome, Secret) {
        let project = ProjectId::new("p1").unwrap();
        let plan = CompiledPlan::new(TrackingPlan::from_json(plan).unwrap());
        let secret = Secret::from_bytes(&[3; 32]).unwrap();
        let ctx = ProjectContext {
            project: &project,
            plan: &plan,
            secret: &secret,
        };
        let e = Event {
            timestamp_ms: 1,
            event: "view".into(),
            distinct_id: distinct_id.into(),
            insert_id: None,
            properties: props.into(),
            personal: None,
            received_at_ms: 1,
        };
        let client = ClientContext::default();
        let out = Pipeline::new(None, 0).process(&ctx, &client, vec![e], 0);
        (out, secret)
    }

    fn props(out: &Outcome) -> serde_json::Value {
        serde_json::from_str(&out.events[0].properties).unwrap()
    }

    #[test]
    fn redacts_spans_and_keeps_the_rest_byte_for_byte() {
        let (out, secret) = run(
            "{}",
            r#"{"a":"mail bob@example.com now","n":1.5,"deep":{"x":["ok","+44 20 7946 0958"]}}"#,
            "user-1",
        );
        assert_eq!(
            out.events[0].properties,
            r#"{"a":"mail [redacted:email] now","n":1.5,"deep":{"x":["ok","[redacted:phone]"]}}"#
        );
        assert_eq!(out.events[0].distinct_id, secret.pseudonym("user-1"));
        assert_eq!(out.stats.values_scrubbed["email"], 1);
        assert_eq!(out.stats.values_scrubbed["phone"], 1);
    }

    #[test]
    fn actions_follow_the_plan() {
        let (out, secret) = run(
            r#"{"pii": {"email": "hash"}}"#,
            r#"{"a":"bob@example.com"}"#,
            "u",
        );
        let h = secret.keyed_hash(Purpose::Pii, &[b"bob@example.com"]);
        assert_eq!(props(&out)["a"], format!("[email:{h}]"));
        let (out, _) = run(
            r#"{"pii": {"email": "drop_event"}}"#,
            r#"{"a":"bob@example.com"}"#,
            "u",
        );
        assert!(out.events.is_empty());
        assert_eq!(out.dropped, vec![(0, "pii_email".to_owned())]);
        // Cards are dropped with their property by default, also as JSON numbers.
        let (out, _) = run("{}", r#"{"c":4111111111111111,"d":"x"}"#, "u");
        assert_eq!(out.events[0].properties, r#"{"d":"x"}"#);
        assert_eq!(out.stats.properties_dropped["pii_card"], 1);
    }

    #[test]
    fn personal_is_kept_secret_is_dropped_types_are_coerced() {
        let plan = r#"{"properties": {
            "email": {"type": "string", "class": "personal"},
            "api": {"class": "secret"},
            "n": {"type": "integer"}, "flag": {"type": "boolean"}, "s": {"type": "string"}}}"#;
        let (out, _) = run(
            plan,
            r#"{"email":"bob@example.com","api":"x","n":"42","flag":"yes","s":7}"#,
            "u",
        );
        // The personal value is kept apart (encrypted under its own key at rest), its
        // placeholder in its place; merged back it is the event as sent.
        let e = &out.events[0];
        assert_eq!(e.properties, r#"{"email":"[redacted]","n":42,"s":"7"}"#);
        assert_eq!(
            e.personal.as_deref(),
            Some(r#"{"email":"bob@example.com"}"#)
        );
        assert_eq!(
            e.full_properties(),
            r#"{"email":"bob@example.com","n":42,"s":"7"}"#
        );
        assert_eq!(out.stats.properties_dropped["secret_class"], 1);
        assert_eq!(out.stats.properties_dropped["type_mismatch"], 1);
        // A credential inside a personal value is still dropped.
        let (out, _) = run(plan, r#"{"email":"AKIAIOSFODNN7EXAMPLE"}"#, "u");
        assert_eq!(out.events[0].properties, "{}");
        assert_eq!(out.events[0].personal, None);
        // A personal property sent as null is not a value: it stays where it is.
        let (out, _) = run(plan, r#"{"email":null,"s":"x"}"#, "u");
        assert_eq!(out.events[0].properties, r#"{"email":null,"s":"x"}"#);
        assert_eq!(out.events[0].personal, None);
    }

    #[test]
    fn urls_names_and_encoded_pii() {
        let (out, _) = run(
            r#"{"url_params": ["page"]}"#,
            r#"{"$current_url":"https://a.example/p?page=2&session=abc&utm_medium=x#top","$referrer":"https://www.google.com/search?q=shoes","password":"hunter2","bob@example.com":1,"link":"https://x.example/?e=bob%40example.com"}"#,
            "u",
        );
        let p = props(&out);
        assert_eq!(p["$current_url"], "https://a.example/p?page=2&utm_medium=x");
        assert_eq!(p["$referrer"], "https://www.google.com");
        assert!(
            p.get("password").is_none() && p.get("bob@example.com").is_none(),
            "{p}"
        );
        assert!(!p["link"].as_str().unwrap().contains("bob"), "{p}");
        assert_eq!(out.stats.properties_dropped["secret_name"], 1);
        assert_eq!(out.stats.properties_dropped["pii_email"], 1);
    }

    #[test]
    fn strict_and_learn_modes() {
        let strict = r#"{"mode": "strict", "events": {"view": {"properties": {"a": {}}}}}"#;
        let (out, _) = run(strict, r#"{"a":1,"b":2}"#, "u");
        assert_eq!(out.events[0].properties, r#"{"a":1}"#);
        let (out, _) = run(r#"{"mode": "strict"}"#, r#"{"a":1}"#, "u");
        assert_eq!(out.dropped, vec![(0, "undeclared_event".to_owned())]);
        let (out, _) = run(r#"{"mode": "learn"}"#, r#"{"a":1}"#, "u");
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.suggestions.len(), 2);
        assert_eq!(out.suggestions[1].property.as_deref(), Some("a"));
        assert_eq!(out.suggestions[1].seen_type, "number");
    }

    #[test]
    fn pii_in_event_names_is_scrubbed_before_learn_mode_sees_it() {
        let project = ProjectId::new("p1").unwrap();
        let plan = CompiledPlan::new(TrackingPlan::from_json(r#"{"mode": "learn"}"#).unwrap());
        let secret = Secret::from_bytes(&[3; 32]).unwrap();
        let ctx = ProjectContext {
            project: &project,
            plan: &plan,
            secret: &secret,
        };
        let e = Event {
            timestamp_ms: 1,
            event: "mail bob@example.com".into(),
            distinct_id: "u".into(),
            insert_id: Some("bob@example.com".into()),
            properties: "{}".into(),
            personal: None,
            received_at_ms: 1,
        };
        let out = Pipeline::new(None, 0).process(&ctx, &ClientContext::default(), vec![e], 0);
        assert_eq!(out.events[0].event, "mail [redacted:email]");
        assert_eq!(out.suggestions[0].event, "mail [redacted:email]");
        assert_eq!(out.events[0].insert_id.as_ref().unwrap().len(), 32);
    }

    #[test]
    fn client_enrichment_names_are_kept_only_where_the_pipeline_has_none() {
        let (out, _) = run(
            "{}",
            r#"{"$browser":"Firefox","$geo_country":"FR","a":1}"#,
            "u",
        );
        assert_eq!(
            out.events[0].properties,
            r#"{"a":1,"$browser":"Firefox","$geo_country":"FR"}"#
        );
    }

    #[test]
    fn identity_map_only_when_the_plan_keeps_one() {
        let (out, _) = run("{}", "{}", "user-9");
        assert!(out.identities.is_empty());
        let (out, secret) = run(r#"{"identity_map": true}"#, "{}", "user-9");
        assert_eq!(
            out.identities,
            vec![(secret.pseudonym("user-9"), "user-9".to_owned())]
        );
        // Cookieless events get a visitor id, never an empty one.
        let (out, _) = run("{}", "{}", "");
        assert_eq!(out.events[0].distinct_id.len(), 32);
    }
}
