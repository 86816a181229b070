//! Server configuration: a TOML file, overridden by flags and `JWED_*`
//! environment variables (clap reads both), validated as a whole before
//! anything binds a socket.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    alg::{ContentEnc, KeyAlg},
    audit::Destination,
    callers::CallerRule,
    claims::{ClaimsPolicy, MAX_LEEWAY_SECONDS},
    compact::DEFAULT_MAX_TOKEN_BYTES,
    decrypt::{Policy, UnsignedTokens},
    service::{AuditFailure, Limits, Placement},
};

/// Default Unix socket path, on the volume a sidecar shares with its app.
pub const DEFAULT_UNIX_SOCKET: &str = "/run/jwed/jwed.sock";

/// Largest token size a configuration may set, in bytes.
pub const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Invalid configuration. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped setting.
    #[error("invalid configuration file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, which names the setting.
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// Dotted setting name, as in the TOML file.
        setting: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// The configuration file. Every member is optional; defaults and flags
/// fill the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]` table.
    #[serde(default)]
    pub server: ServerSection,
    /// `[keys]` table.
    #[serde(default)]
    pub keys: KeysSection,
    /// `[tokens]` table.
    #[serde(default)]
    pub tokens: TokensSection,
    /// `[audit]` table.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[cache]` table.
    #[serde(default)]
    pub cache: CacheSection,
    /// `[gate]` table; absent turns gateway checks off.
    pub gate: Option<GateSection>,
    /// `[[callers]]` rules; none admits every caller.
    #[serde(default)]
    pub callers: Vec<CallerRule>,
}

/// `[gate]`: gateway checks for Envoy ext_authz and nginx auth_request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// Serve `envoy.service.auth.v3.Authorization` on the gRPC listeners.
    #[serde(default)]
    pub envoy: bool,
    /// TCP address of the HTTP endpoint for nginx `auth_request`.
    pub http_listen: Option<String>,
    /// Cookie that may carry the token.
    pub cookie: Option<String>,
    /// Whether `/<scope>/...` requires that scope.
    pub scope_prefix: Option<bool>,
    /// Path prefixes served without a token.
    #[serde(default)]
    pub public: Vec<String>,
    /// Header with the token's subject for the upstream.
    pub subject_header: Option<String>,
    /// Header with the token's scopes for the upstream.
    pub scopes_header: Option<String>,
    /// Whether Envoy removes the `Authorization` header before the upstream.
    pub remove_token_header: Option<bool>,
    /// Explicit prefix rules.
    #[serde(default)]
    pub rules: Vec<GateRuleEntry>,
}

/// One `[[gate.rules]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRuleEntry {
    /// Path prefix, such as `/admin/`.
    pub prefix: String,
    /// Scopes a token must all carry under the prefix.
    pub scopes: Vec<String>,
}

/// Gateway settings after validation.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Serve the Envoy service.
    pub envoy: bool,
    /// The nginx endpoint's address, if any.
    pub http_listen: Option<SocketAddr>,
    /// Rules and headers.
    pub settings: crate::authz::GateSettings,
}

/// `[cache]`: the claims cache.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Verified tokens kept; 0 turns the cache off.
    pub max_entries: Option<usize>,
}

/// `[audit]`: where audit records go and what a write failure does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Audit log file; absent means standard output.
    pub file: Option<PathBuf>,
    /// Size at which the file is rotated, in bytes.
    pub max_file_bytes: Option<u64>,
    /// Rotated files kept.
    pub keep_files: Option<usize>,
    /// File with the audit key (at least 32 bytes, base64url or raw).
    pub key_file: Option<PathBuf>,
    /// `fail-closed` or `fail-open`.
    pub on_failure: Option<String>,
}

/// `[server]`: listeners and shutdown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Unix socket path.
    pub unix_socket: Option<PathBuf>,
    /// Optional TCP address, `host:port`.
    pub tcp_listen: Option<String>,
    /// Seconds to wait for in-flight calls after SIGTERM or SIGINT.
    pub shutdown_grace_seconds: Option<u64>,
    /// Decrypts running at once.
    pub max_concurrent_decrypts: Option<usize>,
    /// Calls waiting or running at once; more get RESOURCE_EXHAUSTED.
    pub max_pending_decrypts: Option<usize>,
    /// Longest time one call may take, in milliseconds.
    pub call_timeout_ms: Option<u64>,
    /// Thread placement of the private-key work: `blocking-pool`,
    /// `dedicated-threads` or `inline`.
    pub decrypt_placement: Option<String>,
    /// TCP address of the operations HTTP port.
    pub ops_listen: Option<String>,
    /// Unix socket of the Admin service.
    pub admin_socket: Option<PathBuf>,
    /// Unix user ids allowed to call the Admin service.
    pub admin_uids: Option<Vec<u32>>,
    /// PEM certificate chain of the TCP listener.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TCP listener.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to.
    pub tls_client_ca: Option<PathBuf>,
}

/// `[keys]`: key files and algorithm pins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Private JWK Set file.
    pub private_keys: Option<PathBuf>,
    /// Trusted issuer public JWK Set file.
    pub issuer_keys: Option<PathBuf>,
    /// Revocation list file.
    pub revocations: Option<PathBuf>,
    /// How often the key files are checked for changes, in milliseconds.
    pub reload_interval_ms: Option<u64>,
    /// Algorithm per key id, for keys without an `alg` member.
    #[serde(default)]
    pub algorithms: HashMap<String, String>,
}

/// `[tokens]`: what a token must look like.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensSection {
    /// Largest token accepted, in bytes.
    pub max_bytes: Option<usize>,
    /// Accepted content encryption algorithms.
    pub content_encryption: Option<Vec<String>>,
    /// `reject`, `symmetric-keys` or `all-keys`.
    pub unsigned: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Accepted audiences.
    pub audiences: Option<Vec<String>>,
    /// Clock leeway in seconds.
    pub leeway_seconds: Option<u32>,
    /// Largest `exp - iat` in seconds; 0 turns the check off.
    pub max_lifetime_seconds: Option<u32>,
}

/// Settings that flags and environment variables override.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--unix-socket`, `JWED_UNIX_SOCKET`.
    pub unix_socket: Option<PathBuf>,
    /// `--tcp-listen`, `JWED_TCP_LISTEN`.
    pub tcp_listen: Option<String>,
    /// `--private-keys`, `JWED_PRIVATE_KEYS`.
    pub private_keys: Option<PathBuf>,
    /// `--issuer-keys`, `JWED_ISSUER_KEYS`.
    pub issuer_keys: Option<PathBuf>,
    /// `--revocations`, `JWED_REVOCATIONS`.
    pub revocations: Option<PathBuf>,
    /// `--issuer`, `JWED_ISSUER`.
    pub issuer: Option<String>,
    /// `--audience`, `JWED_AUDIENCES` (comma-separated).
    pub audiences: Option<Vec<String>>,
}

/// The files that turn the TCP listener into an mTLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates for client certificates.
    pub client_ca: PathBuf,
}

/// Validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unix socket to listen on.
    pub unix_socket: Option<PathBuf>,
    /// TCP address to listen on, if any.
    pub tcp_listen: Option<SocketAddr>,
    /// Time allowed for in-flight calls at shutdown.
    pub shutdown_grace: Duration,
    /// Concurrency, queue and deadline limits of Decrypt calls.
    pub limits: Limits,
    /// Operations HTTP address, if any.
    pub ops_listen: Option<SocketAddr>,
    /// Admin socket, if any.
    pub admin_socket: Option<PathBuf>,
    /// User ids allowed on the admin socket.
    pub admin_uids: Vec<u32>,
    /// mTLS files of the TCP listener: certificate, key, client CA.
    pub tls: Option<TlsFiles>,
    /// Caller rules.
    pub callers: Vec<CallerRule>,
    /// Audit destination.
    pub audit_destination: Destination,
    /// Audit key file, if any.
    pub audit_key_file: Option<PathBuf>,
    /// What an audit write failure does.
    pub audit_on_failure: AuditFailure,
    /// Private JWK Set file.
    pub private_keys: PathBuf,
    /// Trusted issuer JWK Set file, if any.
    pub issuer_keys: Option<PathBuf>,
    /// Revocation list file, if any.
    pub revocations: Option<PathBuf>,
    /// How often the key files are checked for changes.
    pub reload_interval: Duration,
    /// Algorithm pins by key id.
    pub key_algorithms: HashMap<String, KeyAlg>,
    /// Token policy.
    pub policy: Policy,
    /// Entries of the claims cache; 0 turns it off.
    pub cache_max_entries: usize,
    /// Gateway checks, if configured.
    pub gate: Option<GateConfig>,
}

// === impl FileConfig ===

impl FileConfig {
    /// Reads a TOML configuration file.
    ///
    /// # Errors
    ///
    /// Returns [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text; `path` names it in errors.
    ///
    /// # Errors
    ///
    /// Returns [`ConfigError::Syntax`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: path.into(),
            message: err.to_string(),
        })
    }
}

// === impl Config ===

impl Config {
    /// Merges file settings and overrides and validates the result.
    ///
    /// # Errors
    ///
    /// Returns [`ConfigError::Invalid`] naming the first invalid setting.
    pub fn build(file: FileConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        let server = file.server;
        let keys = file.keys;
        let tokens = file.tokens;
        let audit = file.audit;
        if file.callers.iter().any(|rule| !rule.has_identity()) {
            return Err(invalid(
                "callers",
                "every [[callers]] rule needs uid, certificate_uri or certificate_subject",
            ));
        }
        let callers = file.callers;
        let limits = build_limits(&server)?;
        let ops_listen = match server.ops_listen.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|_| invalid("server.ops_listen", "expected ip:port, such as 127.0.0.1:9090"))?,
            ),
        };
        let admin_socket = server.admin_socket.clone().filter(|path| !path.as_os_str().is_empty());
        let tls = match (
            server.tls_cert.clone(),
            server.tls_key.clone(),
            server.tls_client_ca.clone(),
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles { cert, key, client_ca }),
            _ => {
                return Err(invalid(
                    "server.tls_cert",
                    "set server.tls_cert, server.tls_key and server.tls_client_ca together (mTLS)",
                ));
            }
        };
        let admin_uids = match &server.admin_uids {
            Some(uids) if uids.is_empty() => {
                return Err(invalid("server.admin_uids", "must list at least one user id"));
            }
            Some(uids) => uids.clone(),
            None => own_uid().into_iter().collect(),
        };

        // An empty path turns the Unix socket off, for a TCP-only server.
        let unix_socket = match overrides.unix_socket.or(server.unix_socket) {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path),
            None => Some(PathBuf::from(DEFAULT_UNIX_SOCKET)),
        };
        let tcp_listen = match overrides.tcp_listen.or(server.tcp_listen) {
            None => None,
            Some(text) if text.is_empty() => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "server.tcp_listen",
                    "expected host:port with a numeric IP, such as 127.0.0.1:50051",
                )
            })?),
        };
        if unix_socket.is_none() && tcp_listen.is_none() {
            return Err(invalid(
                "server.unix_socket",
                "no listener: set a Unix socket path or server.tcp_listen",
            ));
        }
        let grace = server.shutdown_grace_seconds.unwrap_or(10);
        if grace > 300 {
            return Err(invalid("server.shutdown_grace_seconds", "must be at most 300"));
        }

        let private_keys = overrides.private_keys.or(keys.private_keys).ok_or_else(|| {
            invalid(
                "keys.private_keys",
                "is required: the private JWK Set file (flag --private-keys, env JWED_PRIVATE_KEYS)",
            )
        })?;
        let issuer_keys = overrides.issuer_keys.or(keys.issuer_keys);
        let revocations = overrides.revocations.or(keys.revocations);
        let reload_ms = keys.reload_interval_ms.unwrap_or(2000);
        if !(100..=3_600_000).contains(&reload_ms) {
            return Err(invalid("keys.reload_interval_ms", "must be between 100 and 3600000"));
        }
        let key_algorithms = parse_pins(keys.algorithms)?;

        let policy = build_policy(tokens, overrides.issuer, overrides.audiences)?;
        let gate = file.gate.map(build_gate).transpose()?;
        let cache_max_entries = file.cache.max_entries.unwrap_or(crate::cache::DEFAULT_MAX_ENTRIES);
        if cache_max_entries > 1_000_000 {
            return Err(invalid("cache.max_entries", "must be at most 1000000"));
        }
        let audit_destination = match audit.file {
            None => Destination::Stdout,
            Some(path) if path.as_os_str().is_empty() => Destination::Stdout,
            Some(path) => {
                let max_bytes = audit.max_file_bytes.unwrap_or(100 * 1024 * 1024);
                if max_bytes < 4096 {
                    return Err(invalid("audit.max_file_bytes", "must be at least 4096"));
                }
                let keep = audit.keep_files.unwrap_or(5);
                if !(1..=1000).contains(&keep) {
                    return Err(invalid("audit.keep_files", "must be between 1 and 1000"));
                }
                Destination::File { path, max_bytes, keep }
            }
        };
        let audit_on_failure = match audit.on_failure.as_deref() {
            None | Some("fail-closed") => AuditFailure::FailClosed,
            Some("fail-open") => AuditFailure::FailOpen,
            Some(_) => return Err(invalid("audit.on_failure", "expected fail-closed or fail-open")),
        };
        if policy.unsigned == UnsignedTokens::Reject && issuer_keys.is_none() {
            return Err(invalid(
                "keys.issuer_keys",
                "is missing: set it to the issuer's public JWK Set file, which verifies the signed JWT inside each token (or set tokens.unsigned to accept unsigned tokens)",
            ));
        }

        Ok(Config {
            unix_socket,
            tcp_listen,
            shutdown_grace: Duration::from_secs(grace),
            limits,
            ops_listen,
            admin_socket,
            admin_uids,
            tls,
            callers,
            audit_destination,
            audit_key_file: audit.key_file,
            audit_on_failure,
            private_keys,
            issuer_keys,
            revocations,
            reload_interval: Duration::from_millis(reload_ms),
            key_algorithms,
            policy,
            cache_max_entries,
            gate,
        })
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The user id this process runs as, which may use the admin socket by
/// default.
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;

    std::fs::metadata("/proc/self").ok().map(|meta| meta.uid())
}

fn build_gate(section: GateSection) -> Result<GateConfig, ConfigError> {
    let http_listen = match section.http_listen.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<SocketAddr>()
                .map_err(|_| invalid("gate.http_listen", "expected ip:port, such as 127.0.0.1:8081"))?,
        ),
    };
    if !section.envoy && http_listen.is_none() {
        return Err(invalid("gate", "set gate.envoy = true, gate.http_listen, or both"));
    }
    let rules = section
        .rules
        .into_iter()
        .map(|entry| crate::gate::PrefixRule {
            prefix: entry.prefix,
            scopes: entry.scopes,
        })
        .collect();
    let rules =
        crate::gate::GateRules::new(section.public, rules, section.scope_prefix.unwrap_or(true)).map_err(|reason| {
            let setting = if reason.contains("public") {
                "gate.public"
            } else {
                "gate.rules"
            };
            invalid(setting, reason)
        })?;
    let header = |value: Option<String>, default: &str, setting: &'static str| {
        let value = value.unwrap_or_else(|| default.to_owned()).to_ascii_lowercase();
        let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid {
            Ok(value)
        } else {
            Err(invalid(setting, "expected a header name of letters, digits and '-'"))
        }
    };
    let cookie = section.cookie.unwrap_or_else(|| "access_token".to_owned());
    if cookie.is_empty() || !cookie.bytes().all(|b| b.is_ascii_graphic() && !b"=;,\"".contains(&b)) {
        return Err(invalid("gate.cookie", "expected a cookie name"));
    }
    Ok(GateConfig {
        envoy: section.envoy,
        http_listen,
        settings: crate::authz::GateSettings {
            rules,
            cookie,
            subject_header: header(section.subject_header, "x-jwed-subject", "gate.subject_header")?,
            scopes_header: header(section.scopes_header, "x-jwed-scopes", "gate.scopes_header")?,
            remove_token_header: section.remove_token_header.unwrap_or(true),
        },
    })
}

fn build_limits(server: &ServerSection) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let max_concurrent = server.max_concurrent_decrypts.unwrap_or(defaults.max_concurrent);
    if !(1..=1024).contains(&max_concurrent) {
        return Err(invalid("server.max_concurrent_decrypts", "must be between 1 and 1024"));
    }
    let max_pending = server
        .max_pending_decrypts
        .unwrap_or(defaults.max_pending.max(max_concurrent));
    if max_pending < max_concurrent || max_pending > 65_536 {
        return Err(invalid(
            "server.max_pending_decrypts",
            "must be at least server.max_concurrent_decrypts and at most 65536",
        ));
    }
    let call_timeout_ms = server.call_timeout_ms.unwrap_or(2000);
    if !(10..=60_000).contains(&call_timeout_ms) {
        return Err(invalid("server.call_timeout_ms", "must be between 10 and 60000"));
    }
    let placement = match server.decrypt_placement.as_deref() {
        None => defaults.placement,
        Some("blocking-pool") => Placement::BlockingPool,
        Some("dedicated-threads") => Placement::Dedicated,
        Some("inline") => Placement::Inline,
        Some(_) => {
            return Err(invalid(
                "server.decrypt_placement",
                "expected blocking-pool, dedicated-threads or inline",
            ));
        }
    };
    Ok(Limits {
        max_concurrent,
        max_pending,
        call_timeout: Duration::from_millis(call_timeout_ms),
        placement,
    })
}

fn parse_pins(pins: HashMap<String, String>) -> Result<HashMap<String, KeyAlg>, ConfigError> {
    pins.into_iter()
        .map(|(kid, name)| match name.parse::<KeyAlg>() {
            Ok(alg) => Ok((kid, alg)),
            Err(_) => Err(invalid(
                "keys.algorithms",
                format!("{name:?} for key {kid:?} is not a supported algorithm"),
            )),
        })
        .collect()
}

fn build_policy(
    tokens: TokensSection,
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
) -> Result<Policy, ConfigError> {
    let max_token_bytes = tokens.max_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if !(256..=MAX_TOKEN_BYTES_LIMIT).contains(&max_token_bytes) {
        return Err(invalid(
            "tokens.max_bytes",
            format!("must be between 256 and {MAX_TOKEN_BYTES_LIMIT}"),
        ));
    }

    let content_encryption = match tokens.content_encryption {
        None => ContentEnc::DEFAULT_ALLOWED.to_vec(),
        Some(names) if names.is_empty() => return Err(invalid("tokens.content_encryption", "must name at least one algorithm")),
        Some(names) => names
            .iter()
            .map(|name| name.parse::<ContentEnc>().map_err(|_| invalid("tokens.content_encryption", format!("{name:?} is not supported; use A128GCM, A192GCM, A256GCM, A128CBC-HS256, A192CBC-HS384 or A256CBC-HS512"))))
            .collect::<Result<_, _>>()?,
    };
    let unsigned = match tokens.unsigned.as_deref() {
        None => UnsignedTokens::Reject,
        Some(value) => value
            .parse()
            .map_err(|reason: String| invalid("tokens.unsigned", reason))?,
    };

    let leeway_seconds = tokens.leeway_seconds.unwrap_or(30);
    if leeway_seconds > MAX_LEEWAY_SECONDS {
        return Err(invalid(
            "tokens.leeway_seconds",
            format!("must be at most {MAX_LEEWAY_SECONDS}"),
        ));
    }
    let max_lifetime_seconds = match tokens.max_lifetime_seconds.unwrap_or(3600) {
        0 => None,
        seconds => Some(seconds),
    };
    let audiences = audiences.or(tokens.audiences).unwrap_or_default();
    if audiences.iter().any(String::is_empty) {
        return Err(invalid("tokens.audiences", "an audience is empty"));
    }
    let issuer = issuer.or(tokens.issuer).filter(|issuer| !issuer.is_empty());

    Ok(Policy {
        max_token_bytes,
        content_encryption,
        unsigned,
        claims: ClaimsPolicy {
            issuer,
            audiences,
            leeway_seconds,
            max_lifetime_seconds,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(toml: &str) -> Result<Config, ConfigError> {
        Config::build(FileConfig::parse(toml, Path::new("test.toml"))?, Overrides::default())
    }

    const MINIMAL: &str = "[keys]\nprivate_keys = \"k.json\"\nissuer_keys = \"i.json\"\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let config = build(MINIMAL).unwrap();
        assert_eq!(config.unix_socket.as_deref(), Some(Path::new(DEFAULT_UNIX_SOCKET)));
        assert_eq!(config.tcp_listen, None);
        assert_eq!(config.policy.content_encryption, ContentEnc::DEFAULT_ALLOWED.to_vec());
        assert_eq!(config.policy.unsigned, UnsignedTokens::Reject);
        assert_eq!(config.policy.claims.leeway_seconds, 30);
        assert_eq!(config.policy.claims.max_lifetime_seconds, Some(3600));
    }

    #[test]
    fn unknown_setting_is_named() {
        let err = build(&format!("{MINIMAL}[tokens]\nleway_seconds = 5\n")).unwrap_err();
        assert!(err.to_string().contains("leway_seconds"), "{err}");
    }

    #[test]
    fn missing_private_keys_is_named() {
        let err = build("").unwrap_err();
        assert!(err.to_string().contains("keys.private_keys"), "{err}");
    }

    #[test]
    fn issuer_keys_required_unless_unsigned_allowed() {
        let err = build("[keys]\nprivate_keys = \"k.json\"\n").unwrap_err();
        assert!(err.to_string().contains("keys.issuer_keys"), "{err}");
        let config = build("[keys]\nprivate_keys = \"k.json\"\n[tokens]\nunsigned = \"symmetric-keys\"\n").unwrap();
        assert_eq!(config.policy.unsigned, UnsignedTokens::SymmetricKeys);
    }

    #[test]
    fn invalid_values_name_their_setting() {
        let cases = [
            ("[tokens]\nleeway_seconds = 301\n", "tokens.leeway_seconds"),
            ("[tokens]\nmax_bytes = 10\n", "tokens.max_bytes"),
            (
                "[tokens]\ncontent_encryption = [\"A128CBC\"]\n",
                "tokens.content_encryption",
            ),
            ("[tokens]\nunsigned = \"yes\"\n", "tokens.unsigned"),
            ("[server]\ntcp_listen = \"localhost\"\n", "server.tcp_listen"),
            ("[keys.algorithms]\nk1 = \"RSA1_5\"\n", "keys.algorithms"),
            (
                "[server]\nmax_concurrent_decrypts = 0\n",
                "server.max_concurrent_decrypts",
            ),
            (
                "[server]\nmax_concurrent_decrypts = 8\nmax_pending_decrypts = 4\n",
                "server.max_pending_decrypts",
            ),
            ("[server]\ncall_timeout_ms = 5\n", "server.call_timeout_ms"),
            ("[server]\ndecrypt_placement = \"fast\"\n", "server.decrypt_placement"),
            ("[cache]\nmax_entries = 2000000\n", "cache.max_entries"),
            ("[gate]\ncookie = \"a\"\n", "gate"),
            (
                "[gate]\nenvoy = true\nhttp_listen = \"localhost\"\n",
                "gate.http_listen",
            ),
            ("[gate]\nenvoy = true\ncookie = \"a;b\"\n", "gate.cookie"),
            (
                "[gate]\nenvoy = true\nsubject_header = \"x y\"\n",
                "gate.subject_header",
            ),
            (
                "[gate]\nenvoy = true\n[[gate.rules]]\nprefix = \"admin\"\nscopes = [\"a\"]\n",
                "gate.rules",
            ),
        ];
        for (extra, setting) in cases {
            let err = build(&format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(err.to_string().contains(setting), "{setting}: {err}");
        }
    }

    #[test]
    fn gate_section_builds_rules_and_headers() {
        let extra = "[gate]\nenvoy = true\nhttp_listen = \"127.0.0.1:8081\"\npublic = [\"/public/\"]\n\
                     [[gate.rules]]\nprefix = \"/admin/\"\nscopes = [\"admin:read\"]\n";
        let config = build(&format!("{MINIMAL}{extra}")).unwrap();
        let gate = config.gate.expect("gate");
        assert!(gate.envoy);
        assert_eq!(gate.http_listen, Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(gate.settings.cookie, "access_token");
        assert_eq!(gate.settings.subject_header, "x-jwed-subject");
        assert!(gate.settings.remove_token_header);
        assert_eq!(
            gate.settings.rules.requirement("/admin/x"),
            Ok(crate::gate::Requirement::Token {
                scopes: vec!["admin:read".into()]
            })
        );
        assert_eq!(
            gate.settings.rules.requirement("/public/x"),
            Ok(crate::gate::Requirement::Public)
        );
        assert!(build(MINIMAL).unwrap().gate.is_none());
    }

    #[test]
    fn overrides_win_over_file() {
        let file = FileConfig::parse(&format!("{MINIMAL}[tokens]\naudiences = [\"a\"]\n"), Path::new("t")).unwrap();
        let overrides = Overrides {
            audiences: Some(vec!["b".into()]),
            tcp_listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        };
        let config = Config::build(file, overrides).unwrap();
        assert_eq!(config.policy.claims.audiences, vec!["b".to_string()]);
        assert!(config.tcp_listen.is_some());
        assert_eq!(config.unix_socket.as_deref(), Some(Path::new(DEFAULT_UNIX_SOCKET)));
    }
}
