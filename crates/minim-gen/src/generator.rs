//! The event model: sessions of Zipf-chosen users walking a signup funnel over time.
//!
//! The stream is produced session by session. Each session starts at a time given
//! by the position in the stream ([`Rhythm`]), so sessions come out in start-time
//! order and the output is nearly sorted. A session belongs to a registered user
//! (chosen with a heavy-tailed [`PowerLaw`] over user ranks, among users who have
//! "arrived" by then) or to an anonymous visitor, and is a burst of events seconds
//! to minutes apart. Registered users move through the funnel
//! `signup -> activated -> purchase`, at most one step per session.
//!
//! Memory: one packed `u32` per registered user (funnel stage and the time of the
//! last step, so steps stay strictly ordered even when a heavy user's sessions
//! overlap); everything else about a user is derived from a hash of its number.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{GenConfig, GenError};
use crate::mix::{Draw, PowerLaw, Scatter, hash, mix64, pick_weighted};
use crate::tables::{self, Page};
use crate::time::Rhythm;

/// Longest session, in events.
const MAX_SESSION_EVENTS: u32 = 48;
/// Probability (per mille) that a session continues after each event: mean ~6 events.
const SESSION_CONTINUE_PM: u32 = 830;
/// Share of sessions by anonymous visitors who never sign up.
const ANON_SESSION_PM: u32 = 220;
/// Anonymous visitor pool size, per registered user.
const ANON_PER_USER: u64 = 3;
/// Share of users already around on the first day; the rest arrive uniformly.
const EARLY_USERS_PM: u64 = 350;
/// How often to retry picking a user who has arrived before falling back to anonymous.
const ARRIVAL_TRIES: u32 = 8;
/// Funnel: chance per session (of two or more events) of taking the next step.
const SIGNUP_PM: u32 = 110;
const ACTIVATE_PM: u32 = 300;
const PURCHASE_PM: u32 = 120;
const REPURCHASE_PM: u32 = 15;
/// Chance that a returning user's session starts with `login`.
const LOGIN_PM: u32 = 650;
/// Planted personal data: pageview URLs, search queries, optional signup fields.
const PII_URL_PM: u32 = 25;
const PII_SEARCH_PM: u32 = 60;
const SIGNUP_NAME_PM: u32 = 700;
const SIGNUP_PHONE_PM: u32 = 300;
/// Share of enterprise buyers (the rest buy `pro`).
const ENTERPRISE_PM: u64 = 200;
/// Share of landings with utm parameters (only for referrers that run campaigns).
const UTM_PM: u32 = 300;
/// Logged-in users still browse marketing pages sometimes.
const APP_USER_MARKETING_PM: u32 = 80;

/// Funnel stage bits of the packed per-user state: `stage << 30 | last_step_seconds`.
const STAGE_SHIFT: u32 = 30;
const SECS_MASK: u32 = (1 << STAGE_SHIFT) - 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pageview,
    ButtonClicked,
    Search,
    FeatureUsed,
    Login,
    Signup,
    Activated,
    Purchase,
}

impl Kind {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Pageview => "$pageview",
            Self::ButtonClicked => "button_clicked",
            Self::Search => "search",
            Self::FeatureUsed => "feature_used",
            Self::Login => "login",
            Self::Signup => "signup",
            Self::Activated => "activated",
            Self::Purchase => "purchase",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// Registered user number (0-based; rendered as `user-{n + 1}`).
    User(u32),
    /// Anonymous visitor: a hashed id (rendered as `anon-{16 hex}`).
    Anon(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    None,
    Free,
    Pro,
    Enterprise,
}

impl Plan {
    pub(crate) const fn name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Free => Some("free"),
            Self::Pro => Some("pro"),
            Self::Enterprise => Some("enterprise"),
        }
    }
}

/// A page as visited: the table entry and which suffix (slug or numeric id).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRef {
    pub page: Page,
    pub suffix: u32,
}

/// Personal data planted in a pageview URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PiiUrl {
    AccountEmailQuery,
    UserEmailPath,
    InviteNameEmail,
    ResetPassword,
    SupportPhone,
}

const PII_URLS: [PiiUrl; 5] = [
    PiiUrl::AccountEmailQuery,
    PiiUrl::UserEmailPath,
    PiiUrl::InviteNameEmail,
    PiiUrl::ResetPassword,
    PiiUrl::SupportPhone,
];

/// What a search query contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    Term(u8),
    Email,
    Phone,
    Name,
}

/// Kind-specific details.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Detail {
    Pageview {
        duration_ms: u32,
        pii: Option<PiiUrl>,
        pii_token: u64,
    },
    Button(u8),
    Search {
        query: Query,
        results: u32,
    },
    Feature(u8),
    Login {
        method: u8,
    },
    Signup {
        method: u8,
        name: bool,
        phone: bool,
    },
    Activated {
        action: u8,
    },
    Purchase {
        cents: u64,
        seats: u32,
        annual: bool,
    },
}

/// Where the session came from (on its first pageview only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Landing {
    pub referrer: u8,
    /// Campaign index into [`tables::CAMPAIGNS`] when utm parameters are present.
    pub campaign: Option<u8>,
}

/// One event in compact form; rendered to JSON or to a [`crate::GeneratedEvent`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEvent {
    pub kind: Kind,
    pub actor: Actor,
    /// Hash that fixes the actor's device, country and identity.
    pub persona: u64,
    pub ts_ms: i64,
    /// Position in the stream: the basis of the unique `insert_id`.
    pub seq: u64,
    pub session_start_ms: i64,
    pub session_bits: u64,
    pub page: PageRef,
    pub landing: Option<Landing>,
    pub plan: Plan,
    pub detail: Detail,
}

/// Keys for the hashes that derive ids and per-user attributes from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub insert_lo: u64,
    pub insert_hi: u64,
    pub user: u64,
    pub anon: u64,
}

impl Keys {
    fn new(base: u64) -> Self {
        Self {
            insert_lo: mix64(base ^ 0x01),
            insert_hi: mix64(base ^ 0x02),
            user: mix64(base ^ 0x03),
            anon: mix64(base ^ 0x04),
        }
    }
}

/// Hash of the whole config: equal configs give equal streams (and insert ids, so
/// re-ingesting the same data deduplicates); different configs give different ids.
fn config_digest(cfg: &GenConfig) -> u64 {
    let mut h = mix64(cfg.seed ^ 0x6d69_6e69_6d2d_6765); // "minim-ge"
    for v in [
        cfg.events,
        cfg.users,
        u64::from(cfg.days),
        cfg.start_ms() as u64,
    ] {
        h = mix64(h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    h
}

/// The session being emitted.
#[derive(Debug, Clone, Copy)]
struct Session {
    actor: Actor,
    persona: u64,
    start_ms: i64,
    bits: u64,
    next_ts: i64,
    slot: u32,
    left: u32,
    /// Funnel step and its slot, if this session takes one.
    step: Option<(Kind, u32)>,
    login: bool,
    logged_in: bool,
    landed: bool,
    page: PageRef,
}

/// Deterministic stream of synthetic events; see the crate docs.
#[derive(Clone)]
pub struct Generator {
    cfg: GenConfig,
    keys: Keys,
    rng: ChaCha8Rng,
    zipf: PowerLaw,
    scatter: Scatter,
    rhythm: Rhythm,
    /// Per registered user: `stage << 30 | seconds since start of the last step`.
    users: Vec<u32>,
    start_ms: i64,
    end_ms: i64,
    emitted: u64,
    session: Session,
    pub(crate) render: crate::render::Scratch,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the per-user state: it can hold millions of entries.
        f.debug_struct("Generator")
            .field("cfg", &self.cfg)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Validates `cfg` and prepares the stream. Allocates 4 bytes per user.
    pub fn new(cfg: GenConfig) -> Result<Self, GenError> {
        cfg.validate()?;
        let base = config_digest(&cfg);
        let mut seed = [0u8; 32];
        for (i, chunk) in seed.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&mix64(base ^ (i as u64 + 1)).to_le_bytes());
        }
        let start_ms = cfg.start_ms();
        let users = usize::try_from(cfg.users).map_err(|_| GenError::InvalidConfig {
            field: "users",
            reason: "too large for this platform".into(),
        })?;
        Ok(Self {
            keys: Keys::new(base),
            rng: ChaCha8Rng::from_seed(seed),
            zipf: PowerLaw::new(cfg.users, 1.0),
            scatter: Scatter::new(cfg.users, mix64(base ^ 0x05)),
            rhythm: Rhythm::new(start_ms, cfg.days, cfg.first_weekday()),
            users: vec![0; users],
            start_ms,
            end_ms: cfg.end_ms(),
            emitted: 0,
            session: Session {
                actor: Actor::Anon(0),
                persona: 0,
                start_ms,
                bits: 0,
                next_ts: start_ms,
                slot: 0,
                left: 0,
                step: None,
                login: false,
                logged_in: false,
                landed: false,
                page: PageRef {
                    page: tables::SIGNUP_PAGE,
                    suffix: 0,
                },
            },
            render: crate::render::Scratch::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Events still to come.
    pub fn remaining(&self) -> u64 {
        self.cfg.events - self.emitted
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    fn stage(&self, user: u32) -> u32 {
        self.users[user as usize] >> STAGE_SHIFT
    }

    fn last_step_ms(&self, user: u32) -> i64 {
        self.start_ms + i64::from(self.users[user as usize] & SECS_MASK) * 1000
    }

    /// Users have arrived (first visit) at a position in the stream derived from
    /// their hash: some from the start, the rest spread uniformly.
    fn arrived(&self, persona: u64, fraction: f64) -> bool {
        let h = mix64(persona ^ 0xa11);
        h % 1000 < EARLY_USERS_PM || crate::mix::unit_f64(mix64(h)) <= fraction
    }

    fn start_session(&mut self) {
        // Jitter within one event's share keeps session starts non-decreasing.
        let jitter = crate::mix::unit_f64(self.rng.next_u64());
        let fraction = (self.emitted as f64 + jitter) / self.cfg.events as f64;
        let start = self.rhythm.time_at(fraction);
        let mut len = 1;
        while len < MAX_SESSION_EVENTS && self.rng.chance(SESSION_CONTINUE_PM) {
            len += 1;
        }
        let len = u64::from(len).min(self.remaining()) as u32;

        let mut actor = None;
        if !self.rng.chance(ANON_SESSION_PM) {
            for _ in 0..ARRIVAL_TRIES {
                let rank = self.zipf.sample(self.rng.next_u64());
                let user = self.scatter.apply(rank) as u32;
                if self.arrived(hash(self.keys.user, u64::from(user)), fraction) {
                    actor = Some(Actor::User(user));
                    break;
                }
            }
        }
        let actor = actor.unwrap_or_else(|| {
            let pool = self.cfg.users.saturating_mul(ANON_PER_USER);
            Actor::Anon(hash(self.keys.anon, self.rng.below(pool)))
        });
        let persona = match actor {
            Actor::User(u) => hash(self.keys.user, u64::from(u)),
            Actor::Anon(id) => mix64(id ^ self.keys.anon),
        };

        let (mut step, mut login, mut logged_in) = (None, false, false);
        if let Actor::User(u) = actor {
            let stage = self.stage(u);
            logged_in = stage >= 1;
            login = logged_in && start > self.last_step_ms(u) && self.rng.chance(LOGIN_PM);
            let (kind, pm) = match stage {
                0 => (Kind::Signup, SIGNUP_PM),
                1 => (Kind::Activated, ACTIVATE_PM),
                2 => (Kind::Purchase, PURCHASE_PM),
                _ => (Kind::Purchase, REPURCHASE_PM),
            };
            if len >= 2 && self.rng.chance(pm) {
                step = Some((kind, 1 + self.rng.below(u64::from(len - 1)) as u32));
            }
        }
        self.session = Session {
            actor,
            persona,
            start_ms: start,
            bits: self.rng.next_u64(),
            next_ts: start,
            slot: 0,
            left: len,
            step,
            login,
            logged_in,
            landed: false,
            page: PageRef {
                page: tables::LOGIN_PAGE,
                suffix: 0,
            },
        };
    }

    /// The next event in compact form.
    pub(crate) fn next_raw(&mut self) -> Option<RawEvent> {
        if self.emitted >= self.cfg.events {
            return None;
        }
        if self.session.left == 0 {
            self.start_session();
        }
        let ts = self.session.next_ts.min(self.end_ms - 1);
        // Seconds to minutes until the next event: product of two uniforms, 1 s .. 10 min.
        let gap = 1_000 + self.rng.below(600_000) * self.rng.below(1_000) / 1_000;
        self.session.next_ts = ts + gap as i64;
        let slot = self.session.slot;
        self.session.slot += 1;
        self.session.left -= 1;

        let (kind, detail) = self.choose(slot, ts, gap as u32);
        let plan = match self.session.actor {
            Actor::User(u) if self.session.logged_in => match (kind, self.stage(u)) {
                (Kind::Purchase, _) | (_, 3) => self.tier(),
                _ => Plan::Free,
            },
            _ => Plan::None,
        };
        let landing = if kind == Kind::Pageview && !self.session.landed {
            self.session.landed = true;
            Some(self.landing())
        } else {
            None
        };
        let seq = self.emitted;
        self.emitted += 1;
        debug_assert!(ts >= self.start_ms && ts < self.end_ms);
        Some(RawEvent {
            kind,
            actor: self.session.actor,
            persona: self.session.persona,
            ts_ms: ts,
            seq,
            session_start_ms: self.session.start_ms,
            session_bits: self.session.bits,
            page: self.session.page,
            landing,
            plan,
            detail,
        })
    }

    fn tier(&self) -> Plan {
        if mix64(self.session.persona ^ 0x71e2) % 1000 < ENTERPRISE_PM {
            Plan::Enterprise
        } else {
            Plan::Pro
        }
    }

    /// Decides the event kind for `slot` at time `ts`, updating session and user state.
    fn choose(&mut self, slot: u32, ts: i64, gap_ms: u32) -> (Kind, Detail) {
        if slot == 0 && self.session.login {
            self.session.page = PageRef {
                page: tables::LOGIN_PAGE,
                suffix: 0,
            };
            let method = self.rng.weighted(&tables::LOGIN_METHODS_CUM) as u8;
            return (Kind::Login, Detail::Login { method });
        }
        if let (Some((kind, at)), Actor::User(user)) = (self.session.step, self.session.actor)
            && at == slot
            && let Some(detail) = self.funnel_step(user, kind, ts)
        {
            return (kind, detail);
        }
        let roll = self.rng.below(1000);
        let (kind, detail) = match (slot, self.session.logged_in, roll) {
            (0, ..) | (_, false, 0..800) | (_, true, 0..560) => {
                self.session.page = self.pick_page();
                let pii = self
                    .rng
                    .chance(PII_URL_PM)
                    .then(|| PII_URLS[self.rng.below(PII_URLS.len() as u64) as usize]);
                let pii_token = if pii.is_some() {
                    self.rng.next_u64()
                } else {
                    0
                };
                (
                    Kind::Pageview,
                    Detail::Pageview {
                        duration_ms: gap_ms,
                        pii,
                        pii_token,
                    },
                )
            }
            (_, false, 800..930) | (_, true, 560..690) => (
                Kind::ButtonClicked,
                Detail::Button(self.rng.below(tables::BUTTONS.len() as u64) as u8),
            ),
            (_, true, 690..910) => (
                Kind::FeatureUsed,
                Detail::Feature(self.rng.below(tables::FEATURES.len() as u64) as u8),
            ),
            _ => {
                let query = if self.rng.chance(PII_SEARCH_PM) {
                    [Query::Email, Query::Phone, Query::Name][self.rng.below(3) as usize]
                } else {
                    Query::Term(self.rng.below(tables::SEARCHES.len() as u64) as u8)
                };
                (
                    Kind::Search,
                    Detail::Search {
                        query,
                        results: self.rng.below(40) as u32,
                    },
                )
            }
        };
        (kind, detail)
    }

    /// Takes the planned funnel step if it can be strictly after the user's previous
    /// step (whole seconds are stored, so require the next whole second).
    fn funnel_step(&mut self, user: u32, kind: Kind, ts: i64) -> Option<Detail> {
        let stage = self.stage(user);
        if stage >= 1 && ts < self.last_step_ms(user) + 1000 {
            return None;
        }
        let secs = ((ts - self.start_ms) / 1000) as u32;
        debug_assert!(secs <= SECS_MASK);
        self.users[user as usize] = ((stage + 1).min(3) << STAGE_SHIFT) | (secs & SECS_MASK);
        let detail = match kind {
            Kind::Signup => {
                self.session.logged_in = true;
                self.session.page = PageRef {
                    page: tables::SIGNUP_PAGE,
                    suffix: 0,
                };
                Detail::Signup {
                    method: self.rng.weighted(&tables::SIGNUP_METHODS_CUM) as u8,
                    name: self.rng.chance(SIGNUP_NAME_PM),
                    phone: self.rng.chance(SIGNUP_PHONE_PM),
                }
            }
            Kind::Activated => {
                self.session.page = PageRef {
                    page: tables::ONBOARDING_PAGE,
                    suffix: 0,
                };
                let n = tables::ACTIVATION_ACTIONS.len() as u64;
                Detail::Activated {
                    action: self.rng.below(n) as u8,
                }
            }
            _ => {
                self.session.page = PageRef {
                    page: tables::CHECKOUT_PAGE,
                    suffix: 0,
                };
                self.purchase()
            }
        };
        Some(detail)
    }

    fn purchase(&mut self) -> Detail {
        let annual = self.rng.chance(350);
        let (seats, per_seat_cents, base_cents) = match self.tier() {
            // Small teams, long tail of bigger ones.
            Plan::Enterprise => (10 + self.rng.below(50) * self.rng.below(10), 2_500, 49_900),
            _ => (1 + self.rng.below(4) * self.rng.below(6), 1_200, 0),
        };
        let mut cents = base_cents + seats * per_seat_cents;
        if annual {
            cents *= 10;
        }
        if self.rng.chance(200) {
            cents = cents * 85 / 100; // a 15% coupon; gives odd cents
        }
        Detail::Purchase {
            cents,
            seats: seats as u32,
            annual,
        }
    }

    fn pick_page(&mut self) -> PageRef {
        let app = self.session.logged_in && !self.rng.chance(APP_USER_MARKETING_PM);
        let bits = self.rng.next_u64();
        let page = if app {
            tables::APP_PAGES[pick_weighted(&tables::APP_CUM, bits)].0
        } else {
            tables::MARKETING_PAGES[pick_weighted(&tables::MARKETING_CUM, bits)].0
        };
        let suffix = if page.numeric_id {
            // Each user works in a handful of projects; ids are global.
            (self.session.persona % 40_000) as u32 + 1 + self.rng.below(4) as u32 * 40_000
        } else if page.suffixes.is_empty() {
            0
        } else {
            self.rng.below(page.suffixes.len() as u64) as u32
        };
        PageRef { page, suffix }
    }

    fn landing(&mut self) -> Landing {
        let referrer = self.rng.weighted(&tables::REFERRERS_CUM);
        let campaign = (tables::REFERRERS[referrer].0.utm.is_some() && self.rng.chance(UTM_PM))
            .then(|| self.rng.below(tables::CAMPAIGNS.len() as u64) as u8);
        Landing {
            referrer: referrer as u8,
            campaign,
        }
    }
}
