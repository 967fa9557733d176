//! The one [`Authorizer`]: Cedar policies, default deny, decide every request.
//!
//! # Design
//!
//! Everything is Cedar, in four files under `crates/minim-auth/policies/`, compiled in:
//!
//! - `schema.cedarschema`: entity types `Org`, `Project in [Org]`, one principal type
//!   per [`PrincipalKind`] (`User`, `Token`, `IngestKey`, `Cli`) with attributes
//!   `org: Org`, `suspended: Bool`, `permissions: Set<String>`, `role?: String`,
//!   `project?: Project`; the context record (`mfa_fresh`, `mfa_enrolled`, `ip?`); and
//!   one action per [`Action`], named by [`Action::as_str`].
//! - `roles.cedar`: the built-in roles as **templates**
//!   `permit(principal == ?principal, action in [...], resource in ?resource)`. Per
//!   request the principal's role is linked with `?resource` = the project of its grants,
//!   or its organization when `grants.project` is `None` (projects are children of their
//!   org, so an org-wide link covers every project of the org and the org itself). The
//!   link's id is `role:<role>`. [`role_actions`] reads its lists from this file.
//! - `permits.cedar`: explicit grants, one policy per action (`grant:<action>`,
//!   `when { principal.permissions.contains("<action>") }`), so a permission list
//!   allows exactly its actions; `ingest:own_project` (an ingest key ingests into its
//!   project); `cli:operator` (the local CLI operator, see below).
//! - `forbids.cedar`: the built-in forbids (`forbid:<what>`), which nothing overrides:
//!   suspended principals; resources of another org; resources outside a project-scoped
//!   principal's project (including the org itself); ingest by anyone but an ingest key;
//!   anything but ingest by an ingest key; `read_personal` without an explicit grant;
//!   `approve_export` by a user without a fresh second factor.
//!
//! Permits say *what* a role or grant allows; forbids say *where and who never*. So
//! scoping lives in one place (the forbids) and holds for organization policies too.
//!
//! Decisions and their consequences:
//!
//! - **Resource::Org** actions (e.g. `manage_members` or `read_audit` on the whole org)
//!   need grants with `project: None`. A project-scoped admin or auditor may
//!   `read_audit` with a `Resource::Project` for their project.
//! - **Ingest keys**: the project of an ingest key is `grants.project`, or, when that is
//!   `None`, its id (an ingest key's id is its project's id).
//! - **Cli** (`PrincipalKind::Cli`): the operator has filesystem access to the data
//!   directory, so it is allowed everything in the org it acts for, except `ingest` and
//!   `read_personal` (still only through an explicit grant). It is scoped like anyone
//!   else: the CLI builds one Cli principal per organization it acts on.
//! - **Step-up** ([`Action::needs_step_up`]) is the server's business (it answers
//!   "step-up required", not "forbidden"); only `approve_export` by a user is forbidden
//!   here without `mfa_fresh`, as a floor no org policy can lower.
//! - **Organization policies** ([`Authorizer::set_org_policies`]) are static Cedar
//!   policies (no templates), validated strictly against the schema. Only the
//!   principal's own org's policies are evaluated, and the built-in forbids keep them
//!   inside that org. They may permit (let viewers run SQL:
//!   `permit(principal, action == Action::"query_sql", resource) when { principal has role && principal.role == "viewer" };`)
//!   and forbid (`forbid(principal is Token, action == Action::"query_sql", resource);`);
//!   forbid wins. Their ids are `org:<org>:<@id annotation or policyN>`.
//!
//! # Cost
//!
//! Policy sets are parsed once: the built-ins in [`Authorizer::new`], each org's set when
//! installed (kept merged with the built-in permits and forbids). Per call the
//! authorizer builds two small entities and the request, evaluates the cached set, and,
//! for a principal with a role, links the role into a copy of a one-template set and
//! evaluates that too (see `evaluate`; about a tenth of the cost of copying the cached
//! set to link into it). `examples/authorize_bench.rs` prints the time per call.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use cedar_policy::ffi::DetailedError;
use cedar_policy::{
    ActionConstraint, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, SlotId, Template, ValidationMode, Validator,
};

use crate::{Action, Context, Principal, PrincipalKind, Resource, Role};

/// The Cedar schema, for documentation and for people writing organization policies.
pub const SCHEMA_TEXT: &str = include_str!("../policies/schema.cedarschema");
const ROLES_TEXT: &str = include_str!("../policies/roles.cedar");
const PERMITS_TEXT: &str = include_str!("../policies/permits.cedar");
const FORBIDS_TEXT: &str = include_str!("../policies/forbids.cedar");

/// Largest organization policy text accepted by [`Authorizer::set_org_policies`].
pub const MAX_ORG_POLICY_BYTES: usize = 64 * 1024;
/// Most policies one organization may install.
pub const MAX_ORG_POLICIES: usize = 256;
/// Longest organization id accepted by [`Authorizer::set_org_policies`].
pub const MAX_ORG_ID_BYTES: usize = 256;

/// The outcome of [`Authorizer::authorize`], ready for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the determining policies, sorted: the permits that allowed, or the forbids
    /// that denied (empty when nothing permitted: default deny). E.g. `role:analyst`,
    /// `grant:read_personal`, `forbid:suspended`, `org:acme:policy0`.
    pub policies: Vec<String>,
    /// Errors met while evaluating (such policies are skipped, as Cedar does).
    pub errors: Vec<String>,
}

impl Decision {
    fn deny_with_error(error: String) -> Decision {
        Decision {
            allowed: false,
            policies: Vec::new(),
            errors: vec![error],
        }
    }
}

/// Why organization policies were refused. Bad input: the server answers 4xx.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("organization id must be 1 to {MAX_ORG_ID_BYTES} bytes")]
    InvalidOrg,
    #[error("policy text is {bytes} bytes; the limit is {max_bytes}")]
    TooLarge { bytes: usize, max_bytes: usize },
    #[error("{count} policies; the limit is {max}")]
    TooMany { count: usize, max: usize },
    /// Cedar could not parse the text; one message per error, with line and column.
    #[error("policy syntax error: {}", .0.join("; "))]
    Parse(Vec<String>),
    /// The policies parse but do not fit the schema (unknown action, attribute, type).
    #[error("policy does not match the schema: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(
        "line {line}: templates (?principal, ?resource) are not allowed in organization policies"
    )]
    Template { line: usize },
    #[error("two policies have the id {0:?}")]
    DuplicateId(String),
}

/// Cedar entity type names and action uids, built once.
struct Names {
    org: EntityTypeName,
    project: EntityTypeName,
    user: EntityTypeName,
    token: EntityTypeName,
    ingest_key: EntityTypeName,
    cli: EntityTypeName,
    /// Indexed like [`Action::ALL`].
    actions: Vec<EntityUid>,
    /// Per role (indexed like [`Role::ALL`]): template id and link id.
    role_templates: Vec<(PolicyId, PolicyId)>,
}

impl Names {
    fn new() -> Names {
        let ty = |name: &str| {
            EntityTypeName::from_str(name).expect("built-in entity type names are valid")
        };
        let action_ty = ty("Action");
        Names {
            org: ty("Org"),
            project: ty("Project"),
            user: ty("User"),
            token: ty("Token"),
            ingest_key: ty("IngestKey"),
            cli: ty("Cli"),
            actions: Action::ALL
                .iter()
                .map(|a| {
                    EntityUid::from_type_name_and_id(action_ty.clone(), EntityId::new(a.as_str()))
                })
                .collect(),
            role_templates: Role::ALL
                .iter()
                .map(|r| {
                    (
                        PolicyId::new(template_id(*r)),
                        PolicyId::new(format!("role:{}", r.as_str())),
                    )
                })
                .collect(),
        }
    }

    fn uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    fn principal_type(&self, kind: PrincipalKind) -> &EntityTypeName {
        match kind {
            PrincipalKind::User => &self.user,
            PrincipalKind::Token => &self.token,
            PrincipalKind::IngestKey => &self.ingest_key,
            PrincipalKind::Cli => &self.cli,
        }
    }

    fn action(&self, action: Action) -> &EntityUid {
        &self.actions[action_index(action)]
    }
}

fn action_index(action: Action) -> usize {
    Action::ALL
        .iter()
        .position(|a| *a == action)
        .expect("Action::ALL lists every action")
}

fn role_index(role: Role) -> usize {
    Role::ALL
        .iter()
        .position(|r| *r == role)
        .expect("Role::ALL lists every role")
}

fn template_id(role: Role) -> String {
    format!("template:role:{}", role.as_str())
}

/// One organization's policies: the text as given, and the built-ins merged with them.
struct OrgPolicies {
    text: String,
    set: Arc<PolicySet>,
}

/// Decides requests. `Send + Sync`; share it with an `Arc`.
pub struct Authorizer {
    cedar: cedar_policy::Authorizer,
    validator: Validator,
    names: Names,
    /// Built-in static permits and forbids (no templates): the set used for orgs
    /// without policies of their own, and the base every org's set is merged onto.
    builtin: Arc<PolicySet>,
    /// Per role (indexed like [`Role::ALL`]): a set holding only that role's template.
    roles: Vec<PolicySet>,
    orgs: RwLock<HashMap<String, OrgPolicies>>,
}

impl Default for Authorizer {
    fn default() -> Self {
        Authorizer::new()
    }
}

impl Authorizer {
    /// The built-in schema, role templates, permits and forbids; no org policies yet.
    pub fn new() -> Authorizer {
        let schema = Schema::from_cedarschema_str(SCHEMA_TEXT)
            .map(|(schema, _warnings)| schema)
            .expect("built-in schema parses");
        let all = builtin_policies();
        let builtin = PolicySet::from_policies(all.policies().cloned())
            .expect("built-in policy ids are unique");
        let names = Names::new();
        let roles = names
            .role_templates
            .iter()
            .map(|(template, _)| {
                let mut set = PolicySet::new();
                set.add_template(
                    all.template(template)
                        .expect("every role has a template")
                        .clone(),
                )
                .expect("one template per set");
                set
            })
            .collect();
        Authorizer {
            cedar: cedar_policy::Authorizer::new(),
            validator: Validator::new(schema),
            names,
            builtin: Arc::new(builtin),
            roles,
            orgs: RwLock::new(HashMap::new()),
        }
    }

    /// Validates `text` (Cedar policies) against the schema and installs them as
    /// organization `org`'s own policies, replacing earlier ones. On error nothing
    /// changes. A text without policies removes the org's policies.
    pub fn set_org_policies(&self, org: &str, text: &str) -> Result<(), PolicyError> {
        if org.is_empty() || org.len() > MAX_ORG_ID_BYTES {
            return Err(PolicyError::InvalidOrg);
        }
        if text.len() > MAX_ORG_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                bytes: text.len(),
                max_bytes: MAX_ORG_POLICY_BYTES,
            });
        }
        let parsed = PolicySet::from_str(text)
            .map_err(|e| PolicyError::Parse(summarize(describe(&DetailedError::from(&e), text))))?;
        if let Some(t) = parsed.templates().next() {
            return Err(PolicyError::Template {
                line: template_line(t, text),
            });
        }
        let count = parsed.num_of_policies();
        if count > MAX_ORG_POLICIES {
            return Err(PolicyError::TooMany {
                count,
                max: MAX_ORG_POLICIES,
            });
        }

        let mut own = PolicySet::new();
        for policy in parsed.policies() {
            let local = policy.annotation("id").unwrap_or(policy.id().as_ref());
            let id = format!("org:{org}:{local}");
            if own.policy(&PolicyId::new(&id)).is_some() {
                return Err(PolicyError::DuplicateId(local.to_string()));
            }
            own.add(policy.new_id(PolicyId::new(id)))
                .map_err(|e| PolicyError::DuplicateId(e.to_string()))?;
        }
        let validation = self.validator.validate(&own, ValidationMode::Strict);
        if !validation.validation_passed() {
            let mut messages = Vec::new();
            for e in validation.validation_errors() {
                messages.extend(describe(&DetailedError::from(e), text));
            }
            return Err(PolicyError::Invalid(summarize(messages)));
        }

        let entry = if own.is_empty() {
            None
        } else {
            let mut merged = (*self.builtin).clone();
            for policy in own.policies() {
                merged
                    .add(policy.clone())
                    .map_err(|e| PolicyError::DuplicateId(e.to_string()))?;
            }
            Some(OrgPolicies {
                text: text.to_string(),
                set: Arc::new(merged),
            })
        };
        let mut orgs = self.orgs.write().unwrap_or_else(|e| e.into_inner());
        match entry {
            Some(entry) => orgs.insert(org.to_string(), entry),
            None => orgs.remove(org),
        };
        Ok(())
    }

    /// The text last installed for `org`, if it has policies of its own.
    pub fn org_policies(&self, org: &str) -> Option<String> {
        let orgs = self.orgs.read().unwrap_or_else(|e| e.into_inner());
        orgs.get(org).map(|p| p.text.clone())
    }

    /// Decides whether `principal` may do `action` on `resource`. Default deny; any
    /// internal error denies and is reported in [`Decision::errors`].
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        ctx: &Context,
    ) -> Decision {
        let set = {
            let orgs = self.orgs.read().unwrap_or_else(|e| e.into_inner());
            match orgs.get(&principal.org) {
                Some(p) => Arc::clone(&p.set),
                None => Arc::clone(&self.builtin),
            }
        };
        match self.evaluate(&set, principal, action, resource, ctx) {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(org = %principal.org, action = action.as_str(), %error, "authorization failed; denied");
                Decision::deny_with_error(error)
            }
        }
    }

    fn evaluate(
        &self,
        set: &PolicySet,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        ctx: &Context,
    ) -> Result<Decision, String> {
        let n = &self.names;
        let principal_uid = n.uid(n.principal_type(principal.kind), &principal.id);
        let org_uid = n.uid(&n.org, &principal.org);
        let project = scope_project(principal);
        let project_uid = project.map(|p| n.uid(&n.project, p));

        let mut attrs = HashMap::with_capacity(5);
        attrs.insert(
            "org".to_string(),
            RestrictedExpression::new_entity_uid(org_uid.clone()),
        );
        attrs.insert(
            "suspended".to_string(),
            RestrictedExpression::new_bool(principal.suspended),
        );
        attrs.insert(
            "permissions".to_string(),
            RestrictedExpression::new_set(
                principal
                    .grants
                    .permissions
                    .iter()
                    .map(|a| RestrictedExpression::new_string(a.as_str().to_string())),
            ),
        );
        if let Some(role) = principal.grants.role {
            attrs.insert(
                "role".to_string(),
                RestrictedExpression::new_string(role.as_str().to_string()),
            );
        }
        if let Some(uid) = &project_uid {
            attrs.insert(
                "project".to_string(),
                RestrictedExpression::new_entity_uid(uid.clone()),
            );
        }
        let principal_entity = Entity::new(principal_uid.clone(), attrs, HashSet::new())
            .map_err(|e| format!("principal entity: {e}"))?;

        let (resource_uid, resource_entity) = match resource {
            Resource::Project { id, org } => {
                let uid = n.uid(&n.project, id);
                let parent = n.uid(&n.org, org);
                let entity = Entity::new_no_attrs(uid.clone(), HashSet::from([parent]));
                (uid, entity)
            }
            Resource::Org { id } => {
                let uid = n.uid(&n.org, id);
                (uid.clone(), Entity::new_no_attrs(uid, HashSet::new()))
            }
        };
        let entities = Entities::from_entities([principal_entity, resource_entity], None)
            .map_err(|e| format!("entities: {e}"))?;

        let mut context = Vec::with_capacity(3);
        context.push((
            "mfa_fresh".to_string(),
            RestrictedExpression::new_bool(ctx.mfa_fresh),
        ));
        context.push((
            "mfa_enrolled".to_string(),
            RestrictedExpression::new_bool(ctx.mfa_enrolled),
        ));
        if let Some(ip) = ctx.ip {
            context.push((
                "ip".to_string(),
                RestrictedExpression::new_ip(ip.to_string()),
            ));
        }
        let context =
            cedar_policy::Context::from_pairs(context).map_err(|e| format!("context: {e}"))?;
        let request = Request::new(
            principal_uid.clone(),
            n.action(action).clone(),
            resource_uid,
            context,
            None,
        )
        .map_err(|e| format!("request: {e}"))?;

        // The cached set (built-ins + org policies) is evaluated as it is; the role link
        // goes into a copy of a one-template set, evaluated only when it can matter.
        // Combined this is exactly Cedar's rule for the union of both sets: a satisfied
        // forbid (a deny from `main` naming policies) denies; otherwise any satisfied
        // permit in either allows. Cloning the whole cached set to link into it would
        // cost about as much as evaluating it.
        let main = self.cedar.is_authorized(&request, set, &entities);
        let mut allowed = main.decision() == cedar_policy::Decision::Allow;
        let mut policies: Vec<String> = main
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        let mut errors: Vec<String> = main.diagnostics().errors().map(|e| e.to_string()).collect();
        let forbidden = !allowed && !policies.is_empty();
        if let (Some(role), false) = (principal.grants.role, forbidden) {
            let i = role_index(role);
            let (template, link) = &n.role_templates[i];
            let mut linked = self.roles[i].clone();
            linked
                .link(
                    template.clone(),
                    link.clone(),
                    HashMap::from([
                        (SlotId::principal(), principal_uid),
                        (SlotId::resource(), project_uid.unwrap_or(org_uid)),
                    ]),
                )
                .map_err(|e| format!("linking {link}: {e}"))?;
            let by_role = self.cedar.is_authorized(&request, &linked, &entities);
            if by_role.decision() == cedar_policy::Decision::Allow {
                allowed = true;
                policies.extend(by_role.diagnostics().reason().map(|id| id.to_string()));
            }
            errors.extend(by_role.diagnostics().errors().map(|e| e.to_string()));
        }
        policies.sort_unstable();
        if !errors.is_empty() {
            tracing::warn!(org = %principal.org, errors = errors.len(), "policy evaluation errors");
        }
        Ok(Decision {
            allowed,
            policies,
            errors,
        })
    }
}

/// The one project a principal's grants apply to, if any. An ingest key's project is
/// its grants' project or else its id (an ingest key's id is its project's id).
fn scope_project(principal: &Principal) -> Option<&str> {
    match (&principal.grants.project, principal.kind) {
        (Some(p), _) => Some(p),
        (None, PrincipalKind::IngestKey) => Some(&principal.id),
        (None, _) => None,
    }
}

/// What a built-in role allows on its project, as listed in the role templates
/// (`policies/roles.cedar`), in that order.
pub fn role_actions(role: Role) -> &'static [Action] {
    static ROLE_ACTIONS: OnceLock<Vec<Vec<Action>>> = OnceLock::new();
    let all = ROLE_ACTIONS.get_or_init(|| {
        let set = builtin_policies();
        Role::ALL
            .iter()
            .map(|r| {
                let template = set
                    .template(&PolicyId::new(template_id(*r)))
                    .expect("every role has a template");
                template_actions(template)
            })
            .collect()
    });
    &all[role_index(role)]
}

fn template_actions(template: &Template) -> Vec<Action> {
    let uids = match template.action_constraint() {
        ActionConstraint::Any => return Action::ALL.to_vec(),
        ActionConstraint::In(uids) => uids,
        ActionConstraint::Eq(uid) => vec![uid],
    };
    uids.iter()
        .map(|uid| Action::parse(uid.id().unescaped()).expect("role templates name known actions"))
        .collect()
}

/// Parses one built-in file and gives each policy and template the id in its `@id`.
fn builtin_file(text: &str, into: &mut PolicySet) {
    let parsed = PolicySet::from_str(text).expect("built-in policies parse");
    for policy in parsed.policies() {
        let id = policy
            .annotation("id")
            .expect("built-in policies have an @id");
        into.add(policy.new_id(PolicyId::new(id)))
            .expect("built-in policy ids are unique");
    }
    for template in parsed.templates() {
        let id = template
            .annotation("id")
            .expect("role templates have an @id");
        let role = id
            .strip_prefix("role:")
            .expect("role template ids are role:<role>");
        into.add_template(template.new_id(PolicyId::new(format!("template:role:{role}"))))
            .expect("built-in template ids are unique");
    }
}

fn builtin_policies() -> PolicySet {
    let mut set = PolicySet::new();
    builtin_file(ROLES_TEXT, &mut set);
    builtin_file(PERMITS_TEXT, &mut set);
    builtin_file(FORBIDS_TEXT, &mut set);
    set
}

/// Most error messages reported by [`PolicyError::Parse`] and [`PolicyError::Invalid`].
const MAX_REPORTED_ERRORS: usize = 10;

/// One message per error in `e` and its related errors, prefixed with the line and
/// column of its first source location in `text`; with that location's byte offset.
fn describe(e: &DetailedError, text: &str) -> Vec<(Option<usize>, String)> {
    let mut out = Vec::new();
    let mut push = |e: &DetailedError| {
        let offset = e.source_locations.first().map(|label| label.loc.start);
        let mut message = match offset {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                format!("line {line}, column {column}: {}", e.message)
            }
            None => e.message.clone(),
        };
        if let Some(help) = &e.help {
            message.push_str(" (");
            message.push_str(help);
            message.push(')');
        }
        out.push((offset, message));
    };
    push(e);
    for related in &e.related {
        push(related);
    }
    out
}

/// Keeps the first message per source location (the validator repeats one mistake for
/// every principal type and action it applies to), at most [`MAX_REPORTED_ERRORS`].
fn summarize(messages: Vec<(Option<usize>, String)>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut kept: Vec<String> = messages
        .into_iter()
        .filter(|(offset, _)| offset.is_none_or(|o| seen.insert(o)))
        .map(|(_, message)| message)
        .collect();
    if kept.len() > MAX_REPORTED_ERRORS {
        let more = kept.len() - MAX_REPORTED_ERRORS;
        kept.truncate(MAX_REPORTED_ERRORS);
        kept.push(format!("and {more} more"));
    }
    kept
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The line on which `template` starts in `text` (found by its source text).
fn template_line(template: &Template, text: &str) -> usize {
    let src = template.to_cedar();
    text.find(src.trim())
        .map_or(1, |offset| line_column(text, offset).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn authorizer_is_send_and_sync() {
        assert_send_sync::<Authorizer>();
    }

    #[test]
    fn builtin_policies_validate_strictly_without_warnings() {
        let authorizer = Authorizer::new();
        let result = authorizer
            .validator
            .validate(&builtin_policies(), ValidationMode::Strict);
        let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
        let warnings: Vec<String> = result
            .validation_warnings()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn schema_actions_are_exactly_the_action_enum() {
        let (schema, _) = Schema::from_cedarschema_str(SCHEMA_TEXT).unwrap();
        let mut in_schema: Vec<String> = schema
            .actions()
            .map(|uid| uid.id().unescaped().to_string())
            .collect();
        in_schema.sort();
        let mut in_enum: Vec<String> = Action::ALL.iter().map(|a| a.as_str().to_string()).collect();
        in_enum.sort();
        assert_eq!(in_schema, in_enum);
    }

    #[test]
    fn every_action_but_ingest_has_a_grant_policy() {
        let set = builtin_policies();
        for action in Action::ALL {
            let id = PolicyId::new(format!("grant:{}", action.as_str()));
            assert_eq!(
                set.policy(&id).is_some(),
                action != Action::Ingest,
                "{}",
                action.as_str()
            );
        }
    }

    #[test]
    fn role_actions_match_the_documented_roles() {
        use Action::*;
        let analyst = [QueryAggregate, QueryRawEvents, QuerySql, Export, ReadConfig];
        let mut admin = analyst.to_vec();
        admin.extend([
            ApproveExport,
            ManageProject,
            ManageMembers,
            ManageTokens,
            ReadAudit,
        ]);
        assert_eq!(role_actions(Role::Viewer), &[QueryAggregate]);
        assert_eq!(role_actions(Role::Analyst), &analyst);
        assert_eq!(role_actions(Role::Admin), admin.as_slice());
        assert_eq!(role_actions(Role::Auditor), &[ReadAudit]);
        for role in Role::ALL {
            assert!(!role_actions(role).contains(&ReadPersonal), "{role:?}");
            assert!(!role_actions(role).contains(&Ingest), "{role:?}");
        }
    }

    #[test]
    fn line_column_counts_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (2, 2));
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 100), (3, 2));
    }
}
