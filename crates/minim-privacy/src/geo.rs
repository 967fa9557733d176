//! Geo enrichment from a MaxMind-format database (GeoLite2/GeoIP2 Country or City,
//! or a compatible `.mmdb`): the client IP becomes country, and optionally region and
//! city, and is then forgotten.
//!
//! The address is never logged, never put into an error and never returned: errors
//! only name the database file, and a failed lookup is counted and reported once
//! without the address that triggered it.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Deserialize;

/// Largest database file `Geo::open` accepts. GeoIP2 City is about 120 MB, GeoLite2
/// City about 60 MB; the file is held in memory.
pub const MAX_GEO_DB_BYTES: u64 = 1024 * 1024 * 1024;

/// How much location is kept. Finer levels include the coarser ones.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GeoLevel {
    #[default]
    Country,
    Region,
    City,
}

/// The location kept for an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 code, e.g. "GB".
    pub country: Option<String>,
    /// Only at `GeoLevel::Region` and finer: the first (largest) subdivision as an
    /// ISO 3166-2 code, e.g. "GB-ENG" or "US-WA", so that it is unambiguous without
    /// the country; its English name when the database has no code for it.
    pub region: Option<String>,
    /// Only at `GeoLevel::City`: the English city name, e.g. "London".
    pub city: Option<String>,
}

/// Why a geo database could not be opened. Messages name the file, nothing else
/// about the deployment.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read geo database {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("geo database {path} is {size_bytes} bytes, more than the limit of {limit_bytes}")]
    TooLarge {
        path: PathBuf,
        size_bytes: u64,
        limit_bytes: u64,
    },
    #[error("{path} is not a valid MaxMind DB (.mmdb) file: {reason}")]
    NotMmdb { path: PathBuf, reason: String },
    #[error(
        "geo database {path} is a {database_type:?} database, which has no country data; \
         use a GeoLite2/GeoIP2 Country or City database"
    )]
    Unsupported {
        path: PathBuf,
        database_type: String,
    },
}

/// An opened geo database. Cheap to share (`Arc<Geo>`); lookups take `&self`.
///
/// Asking for `Region` or `City` from a Country-only database is allowed: `open`
/// succeeds (with a warning) and `region`/`city` are simply always `None`.
pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
    level: GeoLevel,
    path: PathBuf,
    lookup_errors: AtomicU64,
    lookup_error_reported: AtomicBool,
}

impl fmt::Debug for Geo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Geo")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata.database_type)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Geo {
    /// Opens a MaxMind-format `.mmdb` file (GeoLite2/GeoIP2 Country or City, or another
    /// database whose type names "Country", "City" or "Enterprise") and reads it into
    /// memory. Fails with an error naming `path` when the file is missing, unreadable,
    /// too large, not an `.mmdb`, or a database without country data (ASN,
    /// Anonymous-IP, ...).
    pub fn open(path: &Path, level: GeoLevel) -> Result<Geo, GeoError> {
        let bytes = read_limited(path)?;
        let not_mmdb = |reason: String| GeoError::NotMmdb {
            path: path.to_path_buf(),
            reason,
        };
        let file_bytes = bytes.len() as u64;
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| not_mmdb(e.to_string()))?;
        check_structure(&reader.metadata, file_bytes).map_err(not_mmdb)?;

        let database_type = reader.metadata.database_type.clone();
        let kind = DatabaseKind::of(&database_type);
        if kind == DatabaseKind::Unsupported {
            return Err(GeoError::Unsupported {
                path: path.to_path_buf(),
                database_type,
            });
        }
        if kind == DatabaseKind::Country && level > GeoLevel::Country {
            tracing::warn!(
                path = %path.display(),
                database_type = %database_type,
                ?level,
                "the geo database has no region or city data; only the country will be recorded"
            );
        }
        Ok(Geo {
            reader,
            level,
            path: path.to_path_buf(),
            lookup_errors: AtomicU64::new(0),
            lookup_error_reported: AtomicBool::new(false),
        })
    }

    /// Looks up an address. `None` when it is not a public address (private, loopback,
    /// link-local, ...), when the database has no record or no location for it, or when
    /// the lookup fails (counted in `lookup_errors`). Never logs the address.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return None;
        }
        // An IPv4-only database has no IPv6 tree; walking it with 128 bits would
        // return whatever IPv4 network the high bits happen to spell.
        if ip.is_ipv6() && self.reader.metadata.ip_version != 6 {
            return None;
        }
        let info = match self.level {
            GeoLevel::Country => self
                .reader
                .lookup::<CountryRecord>(ip)
                .map(|r| r.map(CountryRecord::into_info)),
            GeoLevel::Region | GeoLevel::City => self
                .reader
                .lookup::<CityRecord>(ip)
                .map(|r| r.map(|r| r.into_info(self.level))),
        };
        match info {
            Ok(info) => info.filter(|i| i != &GeoInfo::default()),
            Err(e) => {
                self.lookup_errors.fetch_add(1, Ordering::Relaxed);
                if !self.lookup_error_reported.swap(true, Ordering::Relaxed) {
                    // The error text comes from the database decoder and never
                    // contains the address; the address itself is not logged.
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %e,
                        "geo lookup failed; the database may be corrupt (reported once, see lookup_errors)"
                    );
                }
                None
            }
        }
    }

    pub fn level(&self) -> GeoLevel {
        self.level
    }

    /// Lookups that failed because of the database (not "address not found").
    pub fn lookup_errors(&self) -> u64 {
        self.lookup_errors.load(Ordering::Relaxed)
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, GeoError> {
    let read_error = |source| GeoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size_bytes = file.metadata().map_err(read_error)?.len();
    if size_bytes > MAX_GEO_DB_BYTES {
        return Err(GeoError::TooLarge {
            path: path.to_path_buf(),
            size_bytes,
            limit_bytes: MAX_GEO_DB_BYTES,
        });
    }
    let mut bytes = Vec::new();
    // `take` guards against a file that grows between `metadata` and the read.
    file.take(MAX_GEO_DB_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}

/// Checks the metadata the reader trusts when walking the search tree, so that a
/// truncated or doctored file is refused at open instead of failing on lookups.
fn check_structure(meta: &maxminddb::Metadata, file_bytes: u64) -> Result<(), String> {
    if !matches!(meta.record_size, 24 | 28 | 32) {
        return Err(format!("unsupported record size {}", meta.record_size));
    }
    if !matches!(meta.ip_version, 4 | 6) {
        return Err(format!("unsupported IP version {}", meta.ip_version));
    }
    let tree_bytes = u64::from(meta.node_count) * u64::from(meta.record_size) / 4;
    // The search tree is followed by a 16-byte separator, then the data section.
    let needed_bytes = tree_bytes + 16;
    if needed_bytes > file_bytes {
        return Err(format!(
            "the search tree needs {needed_bytes} bytes but the file has {file_bytes}"
        ));
    }
    Ok(())
}

/// What a database can answer, from its `database_type` metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DatabaseKind {
    Country,
    City,
    Unsupported,
}

impl DatabaseKind {
    fn of(database_type: &str) -> DatabaseKind {
        let t = database_type.to_ascii_lowercase();
        if t.contains("city") || t.contains("enterprise") {
            DatabaseKind::City
        } else if t.contains("country") {
            DatabaseKind::Country
        } else {
            DatabaseKind::Unsupported
        }
    }
}

/// Addresses worth looking up: not private, loopback, link-local, unspecified,
/// broadcast, multicast, documentation, shared (CGNAT) or reserved. Expects
/// `IpAddr::to_canonical` to have turned IPv4-mapped IPv6 addresses into IPv4.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let this_network = a == 0;
    let shared_cgnat = a == 100 && (64..128).contains(&b);
    let reserved = a >= 240;
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || this_network
        || shared_cgnat
        || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    let documentation = first == 0x2001 && second == 0x0db8;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || documentation)
}

/// The parts of a GeoIP2 record Minim reads; everything else is skipped while
/// decoding. Field names follow the GeoIP2 schema.
#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Place<'a>>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

impl Place<'_> {
    fn iso_code(&self) -> Option<&str> {
        self.iso_code.map(str::trim).filter(|s| !s.is_empty())
    }

    fn english_name(&self) -> Option<&str> {
        self.names
            .as_ref()
            .and_then(|n| n.en)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

fn country_code(country: Option<&Place<'_>>) -> Option<String> {
    country
        .and_then(Place::iso_code)
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
}

impl CountryRecord<'_> {
    fn into_info(self) -> GeoInfo {
        GeoInfo {
            country: country_code(self.country.as_ref()),
            region: None,
            city: None,
        }
    }
}

impl CityRecord<'_> {
    fn into_info(self, level: GeoLevel) -> GeoInfo {
        let country = country_code(self.country.as_ref());
        let region = (level >= GeoLevel::Region)
            .then(|| {
                let first = self.subdivisions.as_ref()?.first()?;
                // ISO 3166-2 subdivision parts are 1 to 3 letters or digits.
                let code = first
                    .iso_code()
                    .filter(|c| c.len() <= 3 && c.bytes().all(|b| b.is_ascii_alphanumeric()));
                match (code, &country) {
                    (Some(code), Some(cc)) => Some(format!("{cc}-{}", code.to_ascii_uppercase())),
                    _ => first.english_name().or(code).map(str::to_owned),
                }
            })
            .flatten();
        let city = (level == GeoLevel::City)
            .then(|| self.city.as_ref()?.english_name().map(str::to_owned))
            .flatten();
        GeoInfo {
            country,
            region,
            city,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MaxMind's published test databases in `../shared/testdata/geo/` beside the
    /// project root (see the README there).
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/geo/");

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    #[track_caller]
    fn open(name: &str, level: GeoLevel) -> Geo {
        match Geo::open(&fixture(name), level) {
            Ok(geo) => geo,
            Err(e) => panic!("opening {name}: {e}"),
        }
    }

    fn city_db(level: GeoLevel) -> Geo {
        open("GeoLite2-City-Test.mmdb", level)
    }

    fn country_db(level: GeoLevel) -> Geo {
        open("GeoLite2-Country-Test.mmdb", level)
    }

    #[track_caller]
    fn ip(s: &str) -> IpAddr {
        match s.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn info(country: &str, region: Option<&str>, city: Option<&str>) -> GeoInfo {
        GeoInfo {
            country: Some(country.to_owned()),
            region: region.map(str::to_owned),
            city: city.map(str::to_owned),
        }
    }

    #[test]
    fn country_database_resolves_known_networks() {
        let geo = country_db(GeoLevel::Country);
        for (addr, country) in [
            ("81.2.69.142", "GB"),
            ("2.125.160.217", "GB"),
            ("89.160.20.112", "SE"),
            ("89.160.20.200", "SE"),
            ("50.114.0.1", "US"),
            ("216.160.83.60", "US"),
            ("2001:218::1", "JP"),
            ("2001:220::abcd", "KR"),
        ] {
            assert_eq!(
                geo.lookup(ip(addr)),
                Some(info(country, None, None)),
                "{addr}"
            );
        }
        assert_eq!(geo.lookup_errors(), 0);
    }

    #[test]
    fn city_database_at_city_level_gives_region_and_city() {
        let geo = city_db(GeoLevel::City);
        let cases = [
            ("81.2.69.142", info("GB", Some("GB-ENG"), Some("London"))),
            ("81.2.69.160", info("GB", Some("GB-ENG"), Some("London"))),
            ("2.125.160.216", info("GB", Some("GB-ENG"), Some("Boxford"))),
            ("89.160.20.128", info("SE", Some("SE-E"), Some("Linköping"))),
            ("216.160.83.56", info("US", Some("US-WA"), Some("Milton"))),
            ("175.16.199.1", info("CN", Some("CN-22"), Some("Changchun"))),
            ("67.43.156.1", info("BT", None, None)),
            ("2001:218::1", info("JP", None, None)),
        ];
        for (addr, expected) in cases {
            assert_eq!(geo.lookup(ip(addr)), Some(expected), "{addr}");
        }
    }

    #[test]
    fn region_level_omits_city_and_country_level_omits_both() {
        let addr = ip("81.2.69.142");
        assert_eq!(
            city_db(GeoLevel::Region).lookup(addr),
            Some(info("GB", Some("GB-ENG"), None))
        );
        assert_eq!(
            city_db(GeoLevel::Country).lookup(addr),
            Some(info("GB", None, None))
        );
    }

    #[test]
    fn city_level_on_a_country_database_opens_and_gives_country_only() {
        let geo = country_db(GeoLevel::City);
        assert_eq!(geo.level(), GeoLevel::City);
        assert_eq!(geo.lookup(ip("81.2.69.142")), Some(info("GB", None, None)));
    }

    #[test]
    fn addresses_not_in_the_database_give_none() {
        for geo in [city_db(GeoLevel::City), country_db(GeoLevel::Country)] {
            for addr in ["8.8.8.8", "1.1.1.1", "81.2.69.141", "2600::1"] {
                assert_eq!(geo.lookup(ip(addr)), None, "{addr}");
            }
            assert_eq!(geo.lookup_errors(), 0);
        }
    }

    #[test]
    fn records_without_a_country_give_none() {
        // 2a02:d500::/29 holds only a continent and a location in both test databases.
        assert_eq!(city_db(GeoLevel::City).lookup(ip("2a02:d500::1")), None);
        assert_eq!(
            country_db(GeoLevel::Country).lookup(ip("2a02:d500::1")),
            None
        );
    }

    #[test]
    fn private_and_special_addresses_are_not_looked_up() {
        let geo = city_db(GeoLevel::City);
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.0.1",
        ] {
            assert!(!is_public(ip(addr).to_canonical()), "{addr}");
            assert_eq!(geo.lookup(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
        assert_eq!(
            country_db(GeoLevel::Country).lookup(ip("::ffff:81.2.69.142")),
            Some(info("GB", None, None))
        );
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let path = fixture("no-such-file.mmdb");
        let err = match Geo::open(&path, GeoLevel::Country) {
            Err(e) => e,
            Ok(_) => panic!("opened a missing file"),
        };
        assert!(
            matches!(&err, GeoError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("cannot read geo database"), "{message}");
    }

    #[test]
    fn non_mmdb_file_is_a_clear_error() {
        let path = fixture("README.md");
        let err = match Geo::open(&path, GeoLevel::Country) {
            Err(e) => e,
            Ok(_) => panic!("opened a text file as a database"),
        };
        assert!(matches!(err, GeoError::NotMmdb { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("not a valid MaxMind DB"), "{message}");
    }

    #[test]
    fn directory_is_a_read_error() {
        let err = Geo::open(Path::new(FIXTURES), GeoLevel::Country).err();
        assert!(matches!(err, Some(GeoError::Read { .. })), "{err:?}");
    }

    /// A file cut short (metadata intact, search tree missing) is refused at open
    /// instead of failing, or reading out of bounds, on lookups.
    #[test]
    fn truncated_database_is_refused_at_open() {
        let bytes = match std::fs::read(fixture("GeoLite2-City-Test.mmdb")) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let marker = b"\xAB\xCD\xEFMaxMind.com";
        let Some(metadata_start) = bytes.windows(marker.len()).rposition(|w| w == marker) else {
            panic!("fixture has no metadata marker");
        };
        let mut truncated = bytes[..100].to_vec();
        truncated.extend_from_slice(&bytes[metadata_start..]);
        let dir = std::env::temp_dir().join(format!("minim-geo-test-{}", std::process::id()));
        let path = dir.join("truncated.mmdb");
        let written =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &truncated));
        assert!(written.is_ok(), "{written:?}");
        let result = Geo::open(&path, GeoLevel::City);
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Err(GeoError::NotMmdb { reason, .. }) => {
                assert!(reason.contains("search tree"), "{reason}")
            }
            other => panic!("expected NotMmdb, got {other:?}"),
        }
    }

    #[test]
    fn database_kinds() {
        assert_eq!(DatabaseKind::of("GeoLite2-City"), DatabaseKind::City);
        assert_eq!(DatabaseKind::of("GeoIP2-City"), DatabaseKind::City);
        assert_eq!(DatabaseKind::of("GeoIP2-Enterprise"), DatabaseKind::City);
        assert_eq!(DatabaseKind::of("DBIP-City-Lite"), DatabaseKind::City);
        assert_eq!(DatabaseKind::of("GeoLite2-Country"), DatabaseKind::Country);
        assert_eq!(DatabaseKind::of("GeoLite2-ASN"), DatabaseKind::Unsupported);
        assert_eq!(
            DatabaseKind::of("GeoIP2-Anonymous-IP"),
            DatabaseKind::Unsupported
        );
    }

    #[test]
    fn unsupported_error_message_names_path_and_type() {
        let err = GeoError::Unsupported {
            path: PathBuf::from("/etc/minim/GeoLite2-ASN.mmdb"),
            database_type: "GeoLite2-ASN".to_owned(),
        };
        let message = err.to_string();
        assert!(
            message.contains("/etc/minim/GeoLite2-ASN.mmdb"),
            "{message}"
        );
        assert!(message.contains("GeoLite2-ASN"), "{message}");
    }

    #[test]
    fn geo_level_serde_names_and_order() {
        assert!(GeoLevel::Country < GeoLevel::Region && GeoLevel::Region < GeoLevel::City);
        assert_eq!(GeoLevel::default(), GeoLevel::Country);
        for (level, name) in [
            (GeoLevel::Country, "\"country\""),
            (GeoLevel::Region, "\"region\""),
            (GeoLevel::City, "\"city\""),
        ] {
            assert_eq!(serde_json::to_string(&level).ok().as_deref(), Some(name));
            assert_eq!(serde_json::from_str::<GeoLevel>(name).ok(), Some(level));
        }
    }

    #[test]
    fn debug_shows_the_database_not_addresses() {
        let geo = city_db(GeoLevel::City);
        let _ = geo.lookup(ip("81.2.69.142"));
        let debug = format!("{geo:?}");
        assert!(debug.contains("GeoLite2-City"), "{debug}");
        assert!(!debug.contains("81.2.69"), "{debug}");
    }
}
