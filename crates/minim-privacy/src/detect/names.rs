//! Property names that denote credentials (`password`, `X-Api-Key`, `refreshToken`).
//!
//! Rule: the name is split into word parts, on every byte that is not an ASCII letter
//! or digit (`_ - . $ :` space, non-ASCII), on camelCase boundaries (`userPassword` →
//! `user` `Password`; `APIKey` → `API` `Key`) and between letters and digits (`cvv2` →
//! `cvv` `2`). Parts compare case-insensitively. The name is a credential name when
//!
//! * a part is a credential word: `password passwd pwd pass passphrase passcode secret
//!   secrets token auth authorization credential credentials cookie cookies otp totp
//!   hotp pin cvv cvc cvn csc jwt bearer csrf xsrf` or a run-together compound
//!   (`apikey accesskey secretkey privatekey accesstoken refreshtoken idtoken authtoken
//!   sessiontoken clientsecret setcookie`), or
//! * two adjacent parts form a key name: `api|access|secret|private|signing|encryption|
//!   master|ssh|account` + `key` (`X-Api-Key`, `private_key`), or `access|refresh|id|
//!   session|auth|oauth|api|bearer` + `tokens`;
//!
//! unless the name describes a credential instead of holding one: its **last** part is
//! a qualifier (`count length size type kind method provider strength score status state
//! policy expiry expires expired expiration exp ttl age version set present exists
//! enabled disabled required changed updated reset rotated error errors valid invalid at
//! ms sec secs seconds mode format source field label scope scopes attempts attempt
//! failures failed used usage sent verified requested created issued limit id ids
//! consent consents banner accepted declined preferences prefs choice category`), or
//! its **first** part is a quantity or flag (`has is num n max min total count avg show
//! can should needs requires use uses`).
//!
//! So `token_count`, `password_strength`, `auth_method`, `has_password`, `max_tokens`,
//! `cookie_consent` are ordinary properties, while `token`, `access_token`,
//! `client_secret`, `userPassword`, `X-Api-Key`, `stripe_secret`, `set-cookie`, `pin`,
//! `cvv2` are credentials. Plural `tokens` alone is a count in LLM analytics
//! (`prompt_tokens`), not a credential. Words merely containing a credential word
//! (`author`, `pinned`, `passenger`, `compass`, `tokenizer_version`, `bypass`) are not
//! parts and never match.

const WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "secret",
    "secrets",
    "token",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "cookies",
    "otp",
    "totp",
    "hotp",
    "pin",
    "cvv",
    "cvc",
    "cvn",
    "csc",
    "jwt",
    "bearer",
    "csrf",
    "xsrf",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "authtoken",
    "sessiontoken",
    "clientsecret",
    "setcookie",
];

const KEY_OWNERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "encryption",
    "master",
    "ssh",
    "account",
];

const TOKENS_OWNERS: &[&str] = &[
    "access", "refresh", "id", "session", "auth", "oauth", "api", "bearer",
];

const LAST_QUALIFIERS: &[&str] = &[
    "count",
    "length",
    "size",
    "type",
    "kind",
    "method",
    "provider",
    "strength",
    "score",
    "status",
    "state",
    "policy",
    "expiry",
    "expires",
    "expired",
    "expiration",
    "exp",
    "ttl",
    "age",
    "version",
    "set",
    "present",
    "exists",
    "enabled",
    "disabled",
    "required",
    "changed",
    "updated",
    "reset",
    "rotated",
    "error",
    "errors",
    "valid",
    "invalid",
    "at",
    "ms",
    "sec",
    "secs",
    "seconds",
    "mode",
    "format",
    "source",
    "field",
    "label",
    "scope",
    "scopes",
    "attempts",
    "attempt",
    "failures",
    "failed",
    "used",
    "usage",
    "sent",
    "verified",
    "requested",
    "created",
    "issued",
    "limit",
    "id",
    "ids",
    "consent",
    "consents",
    "banner",
    "accepted",
    "declined",
    "preferences",
    "prefs",
    "choice",
    "category",
];

const FIRST_QUALIFIERS: &[&str] = &[
    "has", "is", "num", "n", "max", "min", "total", "count", "avg", "show", "can", "should",
    "needs", "requires", "use", "uses",
];

fn is(part: &[u8], list: &[&str]) -> bool {
    list.iter().any(|w| part.eq_ignore_ascii_case(w.as_bytes()))
}

/// True for property names that denote credentials (see the module docs for the rule).
pub fn is_secret_name(name: &str) -> bool {
    let mut parts = Parts::new(name.as_bytes());
    let Some(first) = parts.next() else {
        return false;
    };
    if is(first, FIRST_QUALIFIERS) {
        return false;
    }
    let mut found = is(first, WORDS);
    let mut prev = first;
    let mut last = first;
    for part in parts {
        found = found
            || is(part, WORDS)
            || (part.eq_ignore_ascii_case(b"key") && is(prev, KEY_OWNERS))
            || (part.eq_ignore_ascii_case(b"tokens") && is(prev, TOKENS_OWNERS));
        prev = part;
        last = part;
    }
    found && !is(last, LAST_QUALIFIERS)
}

/// The word parts of a name, as byte slices.
struct Parts<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parts<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, i: 0 }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.s;
        while self.i < s.len() && !s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        if self.i >= s.len() {
            return None;
        }
        let start = self.i;
        self.i += 1;
        while self.i < s.len() {
            let (p, c) = (s[self.i - 1], s[self.i]);
            let boundary = !c.is_ascii_alphanumeric()
                || (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                || (p.is_ascii_digit() != c.is_ascii_digit())
                || (p.is_ascii_uppercase()
                    && c.is_ascii_uppercase()
                    && s.get(self.i + 1).is_some_and(u8::is_ascii_lowercase));
            if boundary {
                break;
            }
            self.i += 1;
        }
        Some(&s[start..self.i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Vec<&str> {
        Parts::new(s.as_bytes())
            .map(|p| std::str::from_utf8(p).unwrap_or("?"))
            .collect()
    }

    #[test]
    fn splits_word_parts() {
        assert_eq!(parts("userPassword"), ["user", "Password"]);
        assert_eq!(parts("X-Api-Key"), ["X", "Api", "Key"]);
        assert_eq!(parts("APIKey"), ["API", "Key"]);
        assert_eq!(parts("XMLHttpRequest"), ["XML", "Http", "Request"]);
        assert_eq!(parts("cvv2"), ["cvv", "2"]);
        assert_eq!(parts("$session_id"), ["session", "id"]);
        assert_eq!(parts("__a..b__"), ["a", "b"]);
        assert_eq!(parts("mot_de_passe_é"), ["mot", "de", "passe"]);
        assert!(parts("").is_empty());
        assert!(parts("$_-").is_empty());
    }

    #[test]
    fn credential_names() {
        for n in [
            "password",
            "Password",
            "passwd",
            "pwd",
            "pass",
            "secret",
            "client_secret",
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "api_key",
            "apikey",
            "api-key",
            "apiKey",
            "APIKey",
            "access_key",
            "secret_key",
            "private_key",
            "auth",
            "authorization",
            "Authorization",
            "credential",
            "credentials",
            "session_token",
            "sessionToken",
            "cookie",
            "set-cookie",
            "Set-Cookie",
            "otp",
            "pin",
            "cvv",
            "cvc",
            "cvv2",
            "userPassword",
            "X-Api-Key",
            "x_api_key",
            "stripe_secret",
            "new_password",
            "password_confirmation",
            "reset_password",
            "csrf_token",
            "auth_token",
            "oauth_token",
            "access_tokens",
            "AWS_SECRET_ACCESS_KEY",
            "aws_access_key_id_secret",
            "pin_code",
            "Authorization Header",
            "ssh_key",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn ordinary_names() {
        for n in [
            "author",
            "pinned",
            "passenger",
            "compass",
            "tokenizer_version",
            "bypass",
            "token_count",
            "tokenCount",
            "prompt_tokens",
            "max_tokens",
            "completion_tokens",
            "password_strength",
            "password_reset",
            "has_password",
            "isAuthenticated",
            "auth_method",
            "auth_provider",
            "otp_sent",
            "cookie_consent",
            "pin_enabled",
            "keyboard_shortcut",
            "key",
            "$session_id",
            "session",
            "utm_source",
            "$current_url",
            "email",
            "",
            "$",
            "passport_country",
            "spinner",
            "tokens",
            "secretary",
            "api_key_id",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
