//! The tracking plan: which events and properties a project may collect, their types,
//! sensitivity classes and retention, and the per-detector PII actions. Parsed from JSON
//! (the API) or YAML (the CLI), validated with errors that name the field.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::detect::Detector;

/// 25 months, the default retention of a project without a plan that says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 760;
/// Bounds that keep a plan (and the work per event) small.
pub const MAX_PLAN_EVENTS: usize = 10_000;
pub const MAX_PLAN_PROPERTIES: usize = 10_000;
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Undeclared events and properties are dropped.
    Strict,
    /// Everything is kept; each undeclared name is recorded as a suggestion.
    Learn,
    /// Everything is kept.
    #[default]
    Permissive,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    #[default]
    Any,
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Public,
    #[default]
    Internal,
    /// Kept as sent (no value redaction) for principals with `read_personal` only.
    Personal,
    /// Never stored.
    Secret,
}

/// What happens to a value in which a detector found PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// The matched text becomes `[redacted:<detector>]`.
    Redact,
    /// The matched text becomes `[<detector>:<keyed hash>]`: countable, not readable.
    Hash,
    DropProperty,
    DropEvent,
}

impl PiiAction {
    pub fn name(self) -> &'static str {
        match self {
            PiiAction::Redact => "redact",
            PiiAction::Hash => "hash",
            PiiAction::DropProperty => "drop_property",
            PiiAction::DropEvent => "drop_event",
        }
    }

    /// The default per detector. Credentials are always dropped.
    pub fn default_for(d: Detector) -> PiiAction {
        match d {
            Detector::Email | Detector::Phone | Detector::Ip => PiiAction::Redact,
            Detector::Card | Detector::Iban | Detector::Ssn => PiiAction::DropProperty,
            Detector::Jwt | Detector::SecretKey => PiiAction::DropProperty,
        }
    }
}

/// How referrers are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferrerPolicy {
    /// Scheme and host only (default).
    #[default]
    Origin,
    /// The cleaned URL (query parameters filtered like any URL, fragment dropped).
    CleanUrl,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    #[serde(default, rename = "type")]
    pub ty: PropertyType,
    #[serde(default)]
    pub class: Sensitivity,
    /// The property is removed from events older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Properties allowed on this event, beyond the plan's global ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertySpec>,
    /// Overrides the project's retention for this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A project's tracking plan as users write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingPlan {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub events: BTreeMap<String, EventSpec>,
    /// Properties allowed on every event.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
    /// Query parameters kept in URLs besides `utm_*`.
    #[serde(default)]
    pub url_params: Vec<String>,
    #[serde(default)]
    pub referrer: ReferrerPolicy,
    /// Overrides of the per-detector action (see [`PiiAction::default_for`]).
    #[serde(default)]
    pub pii: BTreeMap<String, PiiAction>,
    /// Project default retention of events, in days.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Keep a map from pseudonym to the original `distinct_id` (for `read_personal`
    /// principals and data subject requests). Off by default: the hash is one-way.
    #[serde(default)]
    pub identity_map: bool,
    /// Keep events from known bots (flagged with `$bot: true`) instead of dropping them.
    #[serde(default)]
    pub keep_bots: bool,
}

fn default_retention() -> u32 {
    DEFAULT_RETENTION_DAYS
}

impl Default for TrackingPlan {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            events: BTreeMap::new(),
            properties: BTreeMap::new(),
            url_params: Vec::new(),
            referrer: ReferrerPolicy::default(),
            pii: BTreeMap::new(),
            retention_days: DEFAULT_RETENTION_DAYS,
            identity_map: false,
            keep_bots: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    /// Dotted path of the offending field, e.g. `events.signup.retention_days`.
    pub field: String,
    pub message: String,
}

impl PlanError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl TrackingPlan {
    /// Parses JSON, naming the offending field on error.
    pub fn from_json(text: &str) -> Result<Self, PlanError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let plan: TrackingPlan = serde_path(de)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Parses YAML (a superset of JSON), naming the offending field on error.
    pub fn from_yaml(text: &str) -> Result<Self, PlanError> {
        let value: serde_json::Value = serde_norway::from_str(text)
            .map_err(|e| PlanError::new("plan", format!("not valid YAML: {e}")))?;
        let plan: TrackingPlan = serde_path(value)?;
        plan.validate()?;
        Ok(plan)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        if self.events.len() > MAX_PLAN_EVENTS {
            return Err(PlanError::new(
                "events",
                format!("at most {MAX_PLAN_EVENTS} events"),
            ));
        }
        let props = self.properties.len()
            + self
                .events
                .values()
                .map(|e| e.properties.len())
                .sum::<usize>();
        if props > MAX_PLAN_PROPERTIES {
            return Err(PlanError::new(
                "properties",
                format!("at most {MAX_PLAN_PROPERTIES} properties in all"),
            ));
        }
        check_days("retention_days", Some(self.retention_days))?;
        if self.retention_days == 0 {
            return Err(PlanError::new("retention_days", "must be at least 1"));
        }
        for (name, spec) in &self.properties {
            check_name(&format!("properties.{name}"), name)?;
            check_days(
                &format!("properties.{name}.retention_days"),
                spec.retention_days,
            )?;
        }
        for (event, spec) in &self.events {
            check_name(&format!("events.{event}"), event)?;
            check_days(
                &format!("events.{event}.retention_days"),
                spec.retention_days,
            )?;
            for (name, p) in &spec.properties {
                check_name(&format!("events.{event}.properties.{name}"), name)?;
                check_days(
                    &format!("events.{event}.properties.{name}.retention_days"),
                    p.retention_days,
                )?;
            }
        }
        for (name, action) in &self.pii {
            let field = format!("pii.{name}");
            let Some(d) = Detector::from_name(name) else {
                let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
                return Err(PlanError::new(
                    field,
                    format!("unknown detector; expected one of {}", known.join(", ")),
                ));
            };
            if d.is_secret() && matches!(action, PiiAction::Redact | PiiAction::Hash) {
                return Err(PlanError::new(
                    field,
                    "credentials are always dropped: use drop_property or drop_event",
                ));
            }
        }
        for (i, p) in self.url_params.iter().enumerate() {
            if p.is_empty() || p.len() > 128 {
                return Err(PlanError::new(
                    format!("url_params[{i}]"),
                    "must be 1 to 128 bytes",
                ));
            }
        }
        Ok(())
    }

    /// The action for a detector: the plan's override or the default.
    pub fn action(&self, d: Detector) -> PiiAction {
        self.pii
            .get(d.name())
            .copied()
            .unwrap_or_else(|| PiiAction::default_for(d))
    }
}

fn serde_path<'de, D: serde::Deserializer<'de>>(de: D) -> Result<TrackingPlan, PlanError>
where
    D::Error: std::fmt::Display,
{
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(de, &mut track);
    TrackingPlan::deserialize(de).map_err(|e| {
        let path = track.path().to_string();
        let field = if path == "." || path.is_empty() {
            "plan".to_owned()
        } else {
            path
        };
        PlanError::new(field, e.to_string())
    })
}

fn check_name(field: &str, name: &str) -> Result<(), PlanError> {
    if name.is_empty() || name.len() > 256 {
        return Err(PlanError::new(field, "names must be 1 to 256 bytes"));
    }
    Ok(())
}

fn check_days(field: &str, days: Option<u32>) -> Result<(), PlanError> {
    match days {
        Some(0) => Err(PlanError::new(field, "must be at least 1 day")),
        Some(d) if d > MAX_RETENTION_DAYS => Err(PlanError::new(
            field,
            format!("must be at most {MAX_RETENTION_DAYS} days"),
        )),
        _ => Ok(()),
    }
}

/// A plan prepared for the per-event path: look-ups by name without allocation.
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    pub plan: TrackingPlan,
    events: HashMap<String, HashMap<String, PropertySpec>>,
    global: HashMap<String, PropertySpec>,
    actions: [PiiAction; Detector::ALL.len()],
}

/// What the plan says about one property of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyRule<'a> {
    Declared(&'a PropertySpec),
    Undeclared,
}

impl CompiledPlan {
    pub fn new(plan: TrackingPlan) -> Self {
        let events = plan
            .events
            .iter()
            .map(|(k, v)| {
                let props = v
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (k.clone(), props)
            })
            .collect();
        let global = plan
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let actions = Detector::ALL.map(|d| plan.action(d));
        Self {
            plan,
            events,
            global,
            actions,
        }
    }

    pub fn mode(&self) -> Mode {
        self.plan.mode
    }

    /// Names declared `personal` or `secret` (globally or for any event), sorted: what a
    /// reader without `read_personal` must never see the values of.
    pub fn restricted_properties(&self) -> Vec<String> {
        let restricted =
            |s: &PropertySpec| matches!(s.class, Sensitivity::Personal | Sensitivity::Secret);
        let mut names: Vec<String> = self
            .global
            .iter()
            .chain(self.events.values().flatten())
            .filter(|(_, s)| restricted(s))
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn is_declared_event(&self, event: &str) -> bool {
        self.events.contains_key(event)
    }

    /// An event-level declaration wins over a global one.
    pub fn property(&self, event: &str, name: &str) -> PropertyRule<'_> {
        if let Some(spec) = self.events.get(event).and_then(|p| p.get(name)) {
            return PropertyRule::Declared(spec);
        }
        match self.global.get(name) {
            Some(spec) => PropertyRule::Declared(spec),
            None => PropertyRule::Undeclared,
        }
    }

    pub fn action(&self, d: Detector) -> PiiAction {
        self.actions[d as usize]
    }
}

impl Default for CompiledPlan {
    fn default() -> Self {
        Self::new(TrackingPlan::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_plan_and_round_trips() {
        let text = r#"{
            "mode": "strict",
            "events": {"signup": {"properties": {"plan": {"type": "string", "class": "public"}},
                                  "retention_days": 400}},
            "properties": {"email": {"type": "string", "class": "personal", "retention_days": 30}},
            "url_params": ["ref"],
            "pii": {"email": "hash", "secret_key": "drop_event"},
            "retention_days": 365,
            "identity_map": true
        }"#;
        let plan = TrackingPlan::from_json(text).unwrap();
        assert_eq!(plan.mode, Mode::Strict);
        assert_eq!(plan.action(Detector::Email), PiiAction::Hash);
        assert_eq!(plan.action(Detector::Phone), PiiAction::Redact);
        assert_eq!(plan.action(Detector::SecretKey), PiiAction::DropEvent);
        let again = TrackingPlan::from_json(&plan.to_json()).unwrap();
        assert_eq!(again, plan);
        let yaml = TrackingPlan::from_yaml(&plan.to_yaml()).unwrap();
        assert_eq!(yaml, plan);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"mode": "lenient"}"#, "mode"),
            (r#"{"retention_days": 0}"#, "retention_days"),
            (
                r#"{"events": {"a": {"retention_days": 0}}}"#,
                "events.a.retention_days",
            ),
            (
                r#"{"events": {"a": {"properties": {"p": {"type": "float"}}}}}"#,
                "events.a.properties.p.type",
            ),
            (r#"{"pii": {"jwt": "redact"}}"#, "pii.jwt"),
            (r#"{"pii": {"dna": "redact"}}"#, "pii.dna"),
            (r#"{"colour": 1}"#, "colour"),
        ];
        for (text, field) in cases {
            let err = TrackingPlan::from_json(text).unwrap_err();
            assert!(
                err.field.starts_with(field) || err.field == field,
                "{text}: got field {}",
                err.field
            );
        }
    }

    #[test]
    fn event_declaration_wins_over_global() {
        let plan = TrackingPlan::from_yaml(
            "properties:\n  plan: {type: string, class: public}\nevents:\n  buy:\n    properties:\n      plan: {type: integer}\n",
        )
        .unwrap();
        let c = CompiledPlan::new(plan);
        match c.property("buy", "plan") {
            PropertyRule::Declared(s) => assert_eq!(s.ty, PropertyType::Integer),
            PropertyRule::Undeclared => panic!("declared"),
        }
        match c.property("view", "plan") {
            PropertyRule::Declared(s) => assert_eq!(s.ty, PropertyType::String),
            PropertyRule::Undeclared => panic!("declared"),
        }
        assert_eq!(c.property("view", "other"), PropertyRule::Undeclared);
    }
}
