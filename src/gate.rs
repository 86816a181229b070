//! Access decisions for Envoy ext_authz and nginx auth_request checks.
//!
//! Before serving a path, a web server sends jwed a check request with the
//! caller's token. This module decides what that path requires, without I/O.
//!
//! Decision rules, in order:
//!
//! 1. The request target is normalized by [`normalize`]. A target that could
//!    be read differently by the web server is rejected instead of guessed at.
//!    The query string and fragment are dropped first, so they never change a
//!    requirement.
//! 2. Prefixes match on segment boundaries. The prefix `/admin/` (or `/admin`)
//!    matches `/admin`, `/admin/` and `/admin/x`, never `/administrator`. So a
//!    path equal to a prefix without its trailing slash matches that prefix.
//! 3. An explicit [`PrefixRule`] wins first. Among matching rules the longest
//!    prefix wins, and the path then requires all of its scopes. Rules match
//!    case-insensitively (Unicode lower case), because a case-insensitive file
//!    system serves `/ADMIN/x` from `/admin/x`.
//! 4. Otherwise a public prefix makes the path [`Requirement::Public`]. Public
//!    prefixes match only with exact case, so `/Public/x` is never public by
//!    accident. A root rule (`/`) therefore leaves no path public.
//! 5. Otherwise, with the scope-prefix convention on, a path whose first
//!    segment is `<first>` requires the scope `<first>` exactly as written,
//!    also when nothing follows it: `/orders:admin` needs `orders:admin`,
//!    because a server may serve the directory's index page for it. Files at
//!    the root, such as `/index.html`, need a public prefix to be served. A
//!    request for `/Orders:Admin/x` requires the scope `Orders:Admin`, which
//!    a token with `orders:admin` lacks, so changing the case never widens
//!    access.
//! 6. Otherwise any valid token is enough: `Token { scopes: [] }`. Anonymous
//!    requests are denied by default.

use PathRejected::*;

/// Maximum length of the path part of a request target, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Maximum number of explicit rules, and separately of public prefixes.
pub const MAX_RULES: usize = 256;

/// One explicit rule: paths under `prefix` need all of `scopes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRule {
    /// Normalized path prefix starting with `/`, matched on segment boundaries.
    pub prefix: String,
    /// Scopes that a token must all contain.
    pub scopes: Vec<String>,
}

/// Validated public prefixes and rules, used by [`GateRules::requirement`].
#[derive(Debug, Clone)]
pub struct GateRules {
    /// Public prefixes without their trailing slash, so `/` is stored as "".
    public: Vec<String>,
    /// Rules sorted by descending prefix length, so the first match is the longest.
    rules: Vec<CompiledRule>,
    scope_prefix: bool,
}

/// A rule whose prefix is lower-cased and stripped of its trailing slash.
#[derive(Debug, Clone)]
struct CompiledRule {
    folded_prefix: String,
    scopes: Vec<String>,
}

/// Access requirement of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Served without a token.
    Public,
    /// A valid token containing all of `scopes`. An empty list accepts any valid token.
    Token {
        /// Scopes the token must all contain, compared case-sensitively.
        scopes: Vec<String>,
    },
    /// Never served: the root `/` under the scope-prefix convention when
    /// no rule or public prefix covers it, because a server serves a root
    /// file such as `/index.html` for it.
    Closed,
}

/// Reason a request target was rejected before any rule was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejected {
    /// The path does not start with `/`, for example `*` or an absolute URL.
    #[error("request path does not start with '/'")]
    NotAbsolute,
    /// The path part is longer than [`MAX_PATH_BYTES`].
    #[error("request path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// A `%` is not followed by two hex digits, or the decoded bytes are not UTF-8.
    #[error("request path has an invalid percent-encoding or does not decode to UTF-8")]
    InvalidEncoding,
    /// `%2F` or `%5C`, which servers disagree on whether to split at.
    #[error("request path contains an encoded slash or backslash (%2F or %5C)")]
    EncodedSlash,
    /// A `%` remains after decoding once (`%25`), so a second decoding would change the path.
    #[error("request path is percent-encoded twice (contains %25)")]
    DoubleEncoded,
    /// A literal `\`, which some servers treat as a path separator.
    #[error("request path contains a backslash")]
    Backslash,
    /// A control character such as NUL, raw or decoded.
    #[error("request path contains a control character")]
    ControlCharacter,
    /// A `..` segment would climb above the root.
    #[error("request path climbs above the root with '..'")]
    Traversal,
    /// A segment ends in `.` or a space, which some servers strip.
    #[error("request path has a segment ending in '.' or a space")]
    TrailingDotOrSpace,
    /// A `;`, which servers such as Tomcat and Jetty read as the start of
    /// path parameters, so that `/admin;x/y` serves `/admin/y`.
    #[error("request path contains ';'")]
    Semicolon,
}

impl GateRules {
    /// Validates and compiles the public prefixes, explicit rules and the
    /// `/<scope>/...` convention switch.
    ///
    /// Every prefix must start with `/` and already be in the form
    /// [`normalize`] returns. Each rule needs at least one scope, and no scope
    /// may be empty or contain whitespace. Two rules may not have the same
    /// prefix when compared case-insensitively. At most [`MAX_RULES`] rules
    /// and [`MAX_RULES`] public prefixes are accepted. The error message names
    /// the invalid entry.
    pub fn new(public: Vec<String>, rules: Vec<PrefixRule>, scope_prefix: bool) -> Result<Self, String> {
        if rules.len() > MAX_RULES {
            return Err(format!("too many rules: {}, maximum is {MAX_RULES}", rules.len()));
        }
        if public.len() > MAX_RULES {
            return Err(format!(
                "too many public prefixes: {}, maximum is {MAX_RULES}",
                public.len()
            ));
        }

        let mut public_prefixes = Vec::with_capacity(public.len());
        for prefix in &public {
            check_prefix("public prefix", prefix)?;
            public_prefixes.push(without_trailing_slash(prefix).to_owned());
        }

        let mut compiled: Vec<CompiledRule> = Vec::with_capacity(rules.len());
        for rule in &rules {
            check_prefix("rule prefix", &rule.prefix)?;
            check_scopes(rule)?;

            let folded_prefix = without_trailing_slash(&rule.prefix).to_lowercase();
            if let Some(earlier) = compiled.iter().position(|c| c.folded_prefix == folded_prefix) {
                return Err(format!(
                    "rule prefix {:?} duplicates rule prefix {:?} (rule prefixes compare case-insensitively)",
                    rule.prefix, rules[earlier].prefix
                ));
            }
            compiled.push(CompiledRule {
                folded_prefix,
                scopes: rule.scopes.clone(),
            });
        }
        compiled.sort_by_key(|rule| std::cmp::Reverse(rule.folded_prefix.len()));

        Ok(GateRules {
            public: public_prefixes,
            rules: compiled,
            scope_prefix,
        })
    }

    /// Decides what serving `raw_path` requires.
    ///
    /// `raw_path` is the request target as received: a path plus an optional
    /// `?query`, still percent-encoded. The query never affects the result.
    pub fn requirement(&self, raw_path: &str) -> Result<Requirement, PathRejected> {
        Ok(self.requirement_of_normalized(&normalize(raw_path)?))
    }

    /// Decides what serving `path`, a result of [`normalize`], requires.
    pub fn requirement_of_normalized(&self, path: &str) -> Requirement {
        let folded = path.to_lowercase();
        let rule = self.rules.iter().find(|r| is_under(&folded, &r.folded_prefix));
        if let Some(rule) = rule {
            return Requirement::Token {
                scopes: rule.scopes.clone(),
            };
        }

        if self.public.iter().any(|prefix| is_under(path, prefix)) {
            return Requirement::Public;
        }

        if self.scope_prefix {
            // Every path under the root belongs to the scope named by its
            // first segment, a file such as `/index.html` included, because a
            // server may serve that directory's index page for `/orders:admin`.
            let first = path.get(1..).unwrap_or_default().split('/').next().unwrap_or_default();
            if first.is_empty() {
                return Requirement::Closed;
            }
            return Requirement::Token {
                scopes: vec![first.to_owned()],
            };
        }

        Requirement::Token { scopes: Vec::new() }
    }
}

/// Normalizes a request target into the path the web server will serve.
///
/// The steps, in order:
/// 1. Drop everything from the first `?` or `#`.
/// 2. Reject a path part longer than [`MAX_PATH_BYTES`] or not starting with `/`.
/// 3. Reject a literal `\`, and percent-decode once. A `%` without two hex
///    digits, `%2F`, `%5C` and a decoded `%` (double encoding) are rejected.
/// 4. Reject bytes that are not UTF-8 and any control character.
/// 5. Collapse repeated `/` and remove `.` and `..` segments as RFC 3986
///    section 5.2.4 does. A `..` that would climb above the root is rejected,
///    where the RFC would silently stop at the root.
/// 6. Reject a segment that ends in `.` or a space (other than `.` and `..`),
///    because Windows file systems and some servers strip those characters.
/// 7. Reject `;`, the start of path parameters for some servers.
///
/// A trailing `/` is kept, and a path ending in a dot segment keeps one too
/// (`/a/b/..` becomes `/a/`).
pub fn normalize(raw: &str) -> Result<String, PathRejected> {
    let path_end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = &raw[..path_end];
    if path.len() > MAX_PATH_BYTES {
        return Err(TooLong);
    }
    if !path.starts_with('/') {
        return Err(NotAbsolute);
    }

    let decoded = percent_decode(path)?;
    let decoded = String::from_utf8(decoded).map_err(|_| InvalidEncoding)?;
    if decoded.chars().any(char::is_control) {
        return Err(ControlCharacter);
    }
    if decoded.contains(';') {
        return Err(Semicolon);
    }

    remove_dot_segments(&decoded)
}

/// Decodes `%XX` escapes once, rejecting escapes that could be read twice or
/// that encode a separator.
fn percent_decode(path: &str) -> Result<Vec<u8>, PathRejected> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'\\' => return Err(Backslash),
            b'%' => {
                let high = bytes.get(index + 1).and_then(|b| hex_value(*b));
                let low = bytes.get(index + 2).and_then(|b| hex_value(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(InvalidEncoding);
                };
                match high << 4 | low {
                    b'/' | b'\\' => return Err(EncodedSlash),
                    b'%' => return Err(DoubleEncoded),
                    value => decoded.push(value),
                }
                index += 3;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Ok(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Collapses empty segments and resolves `.` and `..` in a decoded absolute path.
fn remove_dot_segments(decoded: &str) -> Result<String, PathRejected> {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = decoded.ends_with('/');

    let mut parts = decoded[1..].split('/').peekable();
    while let Some(segment) = parts.next() {
        let is_last = parts.peek().is_none();
        match segment {
            "" => {}
            "." => trailing_slash |= is_last,
            ".." => {
                segments.pop().ok_or(Traversal)?;
                trailing_slash |= is_last;
            }
            _ if segment.ends_with('.') || segment.ends_with(' ') => return Err(TrailingDotOrSpace),
            _ => segments.push(segment),
        }
    }

    let mut normalized = String::with_capacity(decoded.len());
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        normalized.push('/');
    }
    Ok(normalized)
}

/// Tells whether `path` is `prefix` itself or lies below it. `prefix` has no
/// trailing slash, so "" (the root) contains every path.
fn is_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn without_trailing_slash(prefix: &str) -> &str {
    prefix.strip_suffix('/').unwrap_or(prefix)
}

/// Checks that a configured prefix is absolute and already normalized.
fn check_prefix(kind: &str, prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!("{kind} {prefix:?} must start with '/'"));
    }
    match normalize(prefix) {
        Ok(normalized) if normalized == prefix => Ok(()),
        Ok(normalized) => Err(format!(
            "{kind} {prefix:?} is not normalized; write it as {normalized:?}"
        )),
        Err(error) => Err(format!("{kind} {prefix:?} is invalid: {error}")),
    }
}

fn check_scopes(rule: &PrefixRule) -> Result<(), String> {
    if rule.scopes.is_empty() {
        return Err(format!("rule for prefix {:?} has no scopes", rule.prefix));
    }
    for scope in &rule.scopes {
        if scope.is_empty() {
            return Err(format!("rule for prefix {:?} has an empty scope", rule.prefix));
        }
        if scope.chars().any(char::is_whitespace) {
            return Err(format!(
                "rule for prefix {:?} has scope {scope:?} containing whitespace; list each scope separately",
                rule.prefix
            ));
        }
    }
    Ok(())
}

/// Extracts the token from `Authorization: Bearer <token>`, else from the
/// cookie named `cookie_name` in a `Cookie` header value.
///
/// The `Bearer` scheme is matched case-insensitively. A header with another
/// scheme, or an empty or space-containing bearer value, falls through to the
/// cookie. Cookie names match exactly, and the first cookie with that name is
/// used, with surrounding double quotes removed. Returns `None` when neither
/// source gives a non-empty token.
pub fn token_from_headers<'a>(
    authorization: Option<&'a str>,
    cookie: Option<&'a str>,
    cookie_name: &str,
) -> Option<&'a str> {
    if let Some(token) = authorization.and_then(bearer_token) {
        return Some(token);
    }
    cookie.and_then(|header| cookie_value(header, cookie_name))
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, credentials) = authorization.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = credentials.trim_start_matches([' ', '\t']);
    if token.is_empty() || token.contains([' ', '\t']) {
        return None;
    }
    Some(token)
}

fn cookie_value<'a>(header: &'a str, cookie_name: &str) -> Option<&'a str> {
    if cookie_name.is_empty() {
        return None;
    }
    let pair = header
        .split(';')
        .filter_map(|pair| pair.trim_matches([' ', '\t']).split_once('='))
        .find(|(name, _)| *name == cookie_name)?;

    let value = pair.1;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() { None } else { Some(value) }
}

#[cfg(test)]
mod tests;
