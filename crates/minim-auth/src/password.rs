//! Password hashing (argon2id, OWASP parameters: m = 19 456 KiB, t = 2, p = 1, stored as
//! PHC strings), verification, a dummy verification for unknown accounts and the
//! password policy.
//!
//! Verification compares digests in constant time (the `password-hash` crate's `Output`
//! equality). [`dummy_verify`] does the same work against a fixed hash, so a login for
//! an account that does not exist takes as long as one with a wrong password.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Random salt bytes per hash.
pub const SALT_BYTES: usize = 16;

/// Fewest characters (Unicode scalar values) a new password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes (UTF-8) a new password may have.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Largest parameters [`verify_password`] will run with, so a corrupted or hostile
/// stored hash cannot make one login allocate gigabytes or spin for minutes.
const MAX_VERIFY_M_COST_KIB: u32 = 1024 * 1024;
const MAX_VERIFY_T_COST: u32 = 64;
const MAX_VERIFY_P_COST: u32 = 64;

/// A PHC string with the current parameters and arbitrary salt and digest. Verifying
/// any password against it costs exactly a real verification and never succeeds in
/// practice (finding a password that matches would be a preimage on argon2id).
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$HJrTO4KEfFCfEhjtUvevDw$F/iq4fIdFdL2wSKKPEmiIdKEVwhkto3Fq2whaIznh6U";

/// Passwords that meet the length rule but are among the most used ones (compared
/// case-insensitively). A short list on purpose: the length rule already removes the
/// bulk of common passwords; this catches the long ones people still pick.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789012345",
    "1234567890123456",
    "098765432109",
    "123123123123",
    "112233445566",
    "121212121212",
    "123321123321",
    "password1234",
    "password12345",
    "password123456",
    "password123!",
    "password!123",
    "passwordpassword",
    "password1password1",
    "p@ssw0rd1234",
    "p@ssword1234",
    "qwertyuiop12",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "qwertyuiopasdfgh",
    "qwerty123456",
    "qwerty1234567",
    "qwertyqwerty",
    "qwerty123qwerty",
    "1q2w3e4r5t6y",
    "1q2w3e4r5t6y7u",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "zaq12wsxcde3",
    "asdfghjkl123",
    "asdfasdfasdf",
    "abcdefghijkl",
    "abcdefghijklm",
    "abc123456789",
    "abcd12345678",
    "iloveyou1234",
    "iloveyouiloveyou",
    "letmein12345",
    "letmeinletmein",
    "welcome12345",
    "welcome123456",
    "changeme1234",
    "changemechangeme",
    "administrator",
    "administrator1",
    "adminadmin123",
    "admin1234567",
    "trustno1trustno1",
    "correcthorsebatterystaple",
    "monkey123456",
    "dragon123456",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "princess1234",
    "superman1234",
    "starwars1234",
    "whatever1234",
    "masterkey123",
    "secretpassword",
    "mypassword123",
    "default12345",
];

/// Why a password was refused or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {min_chars} characters long")]
    TooShort { min_chars: usize },
    #[error("password must be at most {max_bytes} bytes long")]
    TooLong { max_bytes: usize },
    #[error("password must not repeat a single character")]
    SingleCharacter,
    #[error("password is one of the most commonly used passwords")]
    Common,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id, the current parameters and a fresh random salt,
/// returning the PHC string to store (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt_bytes = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. The digest comparison is
/// constant-time. A malformed PHC string, a non-argon2 algorithm or absurd parameters
/// give `false`.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if Algorithm::try_from(hash.algorithm).is_err() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    // Argon2's verifier takes algorithm, version and parameters from the PHC string.
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Runs a verification with the current parameters against a fixed hash and throws the
/// result away. Call it when the account does not exist so the response time does not
/// tell whether it does.
pub fn dummy_verify(password: &str) {
    let matched = verify_password(DUMMY_PHC, password);
    std::hint::black_box(matched);
}

/// Checks a new password against the policy: at least [`MIN_PASSWORD_CHARS`]
/// characters, at most [`MAX_PASSWORD_BYTES`] bytes, not a single repeated character,
/// not one of a built-in list of common passwords. The error says which rule failed.
pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong {
            max_bytes: MAX_PASSWORD_BYTES,
        });
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort {
            min_chars: MIN_PASSWORD_CHARS,
        });
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(PasswordError::SingleCharacter);
    }
    if common_passwords().contains(password.to_lowercase().as_str()) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.iter().copied().collect())
}

/// Whether a stored hash should be replaced (at the next successful login) because it
/// is not argon2id v19 or any of its parameters is weaker than the current ones.
/// Malformed strings also give `true`.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    if Algorithm::try_from(hash.algorithm).ok() != Some(Algorithm::Argon2id) {
        return true;
    }
    if hash.version != Some(Version::V0x13.into()) {
        return true;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    params.m_cost() < M_COST_KIB || params.t_cost() < T_COST || params.p_cost() < P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_with(m: u32, t: u32, p: u32, alg: Algorithm, password: &str) -> String {
        let params = Params::new(m, t, p, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(alg, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterz"));
        assert!(!verify_password(&phc, ""));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password("same password here").unwrap();
        let b = hash_password("same password here").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_phc_is_false() {
        for phc in [
            "",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$@@@",
            "$bcrypt$v=19$m=19456,t=2,p=1$HJrTO4KEfFCfEhjtUvevDw$F/iq4fIdFdL2wSKKPEmiIdKEVwhkto3Fq2whaIznh6U",
        ] {
            assert!(!verify_password(phc, "whatever"), "{phc}");
        }
    }

    #[test]
    fn absurd_parameters_are_refused_without_running() {
        let phc = "$argon2id$v=19$m=4294967295,t=2,p=1$HJrTO4KEfFCfEhjtUvevDw$F/iq4fIdFdL2wSKKPEmiIdKEVwhkto3Fq2whaIznh6U";
        assert!(!verify_password(phc, "x"));
    }

    #[test]
    fn dummy_hash_uses_current_parameters() {
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
        assert!(!needs_rehash(DUMMY_PHC));
        assert!(!verify_password(DUMMY_PHC, ""));
        dummy_verify("anything");
    }

    #[test]
    fn verifies_older_argon2_variants() {
        let phc = hash_with(8, 1, 1, Algorithm::Argon2i, "old password 1");
        assert!(verify_password(&phc, "old password 1"));
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn needs_rehash_for_weaker_params() {
        let current = hash_password("a fine password").unwrap();
        assert!(!needs_rehash(&current));
        let pw = "a fine password";
        assert!(needs_rehash(&hash_with(
            8192,
            2,
            1,
            Algorithm::Argon2id,
            pw
        )));
        assert!(needs_rehash(&hash_with(
            19456,
            1,
            1,
            Algorithm::Argon2id,
            pw
        )));
        assert!(needs_rehash(&hash_with(
            19456,
            2,
            1,
            Algorithm::Argon2d,
            pw
        )));
        // Stronger than current is fine.
        assert!(!needs_rehash(&hash_with(
            65536,
            3,
            1,
            Algorithm::Argon2id,
            pw
        )));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn policy_length() {
        assert_eq!(
            check_password_policy("short"),
            Err(PasswordError::TooShort { min_chars: 12 })
        );
        assert_eq!(
            check_password_policy("elevenchars"),
            Err(PasswordError::TooShort { min_chars: 12 })
        );
        assert_eq!(check_password_policy("twelve chars"), Ok(()));
        // Characters, not bytes: 12 accented letters pass, 11 do not.
        assert_eq!(
            check_password_policy(&"é".repeat(11)),
            Err(PasswordError::TooShort { min_chars: 12 })
        );
        assert_eq!(check_password_policy("éèêëàâäôöûüç"), Ok(()));
        let long = "ab".repeat(512);
        assert_eq!(check_password_policy(&long), Ok(()));
        let too_long = format!("{long}x");
        let err = check_password_policy(&too_long).unwrap_err();
        assert_eq!(err, PasswordError::TooLong { max_bytes: 1024 });
        assert!(err.to_string().contains("1024 bytes"));
    }

    #[test]
    fn policy_single_character() {
        let err = check_password_policy("aaaaaaaaaaaaaaaa").unwrap_err();
        assert_eq!(err, PasswordError::SingleCharacter);
        assert!(err.to_string().contains("single character"));
        assert_eq!(check_password_policy("aaaaaaaaaaaaaaab"), Ok(()));
    }

    #[test]
    fn policy_common() {
        for p in [
            "password1234",
            "PASSWORD1234",
            "123456789012",
            "Qwerty123456",
        ] {
            let err = check_password_policy(p).unwrap_err();
            assert_eq!(err, PasswordError::Common, "{p}");
            assert!(err.to_string().contains("commonly used"));
        }
        // Every listed password would otherwise pass the length rule.
        for p in COMMON_PASSWORDS {
            assert!(p.chars().count() >= MIN_PASSWORD_CHARS, "{p}");
            assert_eq!(*p, p.to_lowercase());
        }
    }
}
