//! Counters, not copies: what the pipeline did, by reason and detector, never the values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-project totals (or one batch's delta). Keys are stable snake_case names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyStats {
    /// Events that reached the pipeline.
    pub received: u64,
    /// Events that left it to be stored.
    pub accepted: u64,
    /// Events dropped, by reason (`bot`, `undeclared_event`, `pii_<detector>`).
    pub events_dropped: BTreeMap<String, u64>,
    /// Values rewritten (redacted or hashed), by detector.
    pub values_scrubbed: BTreeMap<String, u64>,
    /// Properties removed, by reason (`undeclared`, `type_mismatch`, `secret_class`,
    /// `secret_name`, `client_ip`, `raw_user_agent`, `pii_<detector>`).
    pub properties_dropped: BTreeMap<String, u64>,
    /// URLs whose query string, fragment or credentials were cut.
    pub urls_cleaned: u64,
}

impl PrivacyStats {
    pub fn add(&mut self, other: &PrivacyStats) {
        self.received += other.received;
        self.accepted += other.accepted;
        self.urls_cleaned += other.urls_cleaned;
        for (dst, src) in [
            (&mut self.events_dropped, &other.events_dropped),
            (&mut self.values_scrubbed, &other.values_scrubbed),
            (&mut self.properties_dropped, &other.properties_dropped),
        ] {
            for (k, v) in src {
                *dst.entry(k.clone()).or_default() += v;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == PrivacyStats::default()
    }

    /// Flattened `(counter, value)` pairs, e.g. `("events_dropped.bot", 3)`, for storage.
    pub fn flatten(&self) -> Vec<(String, u64)> {
        let mut out = vec![
            ("received".to_owned(), self.received),
            ("accepted".to_owned(), self.accepted),
            ("urls_cleaned".to_owned(), self.urls_cleaned),
        ];
        for (prefix, map) in [
            ("events_dropped", &self.events_dropped),
            ("values_scrubbed", &self.values_scrubbed),
            ("properties_dropped", &self.properties_dropped),
        ] {
            out.extend(map.iter().map(|(k, v)| (format!("{prefix}.{k}"), *v)));
        }
        out.retain(|(_, v)| *v > 0);
        out
    }

    /// Inverse of [`PrivacyStats::flatten`]; unknown names are ignored.
    pub fn from_flat(pairs: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut s = PrivacyStats::default();
        for (k, v) in pairs {
            match k.split_once('.') {
                None => match k.as_str() {
                    "received" => s.received += v,
                    "accepted" => s.accepted += v,
                    "urls_cleaned" => s.urls_cleaned += v,
                    _ => {}
                },
                Some((prefix, name)) => {
                    let map = match prefix {
                        "events_dropped" => &mut s.events_dropped,
                        "values_scrubbed" => &mut s.values_scrubbed,
                        "properties_dropped" => &mut s.properties_dropped,
                        _ => continue,
                    };
                    *map.entry(name.to_owned()).or_default() += v;
                }
            }
        }
        s
    }

    pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
        match map.get_mut(key) {
            Some(v) => *v += 1,
            None => {
                map.insert(key.to_owned(), 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_round_trips_and_add_sums() {
        let mut a = PrivacyStats {
            received: 5,
            accepted: 3,
            urls_cleaned: 1,
            ..Default::default()
        };
        PrivacyStats::bump(&mut a.events_dropped, "bot");
        PrivacyStats::bump(&mut a.events_dropped, "bot");
        PrivacyStats::bump(&mut a.values_scrubbed, "email");
        PrivacyStats::bump(&mut a.properties_dropped, "secret_name");
        let back = PrivacyStats::from_flat(a.flatten());
        assert_eq!(back, a);
        let mut sum = a.clone();
        sum.add(&a);
        assert_eq!(sum.events_dropped["bot"], 4);
        assert_eq!(sum.received, 10);
    }
}
