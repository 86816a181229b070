//! Command-line interface: `serve`, `keygen`, `mint`, `decrypt`, `demo`.

mod audit;
mod bench;
mod decrypt;
mod demo;
mod keygen;
mod mint;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Exit status for invalid configuration or usage (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// Exit status of `jwed decrypt` when the server rejected the token.
pub const EXIT_REJECTED: u8 = 2;

/// jwed: the JWE decryption sidecar.
#[derive(Debug, Parser)]
#[command(
    name = "jwed",
    version,
    about = "JWE decryption sidecar: holds the private key, decrypts and validates nested JWTs over gRPC"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "JWED_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// jwed's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Generate a private JWK Set and its public half, or add a key to a set.
    Keygen(KeygenArgs),
    /// Change a key's state (current, accepted, retired) in a private JWK Set.
    KeyState(KeyStateArgs),
    /// Sign and encrypt claims as a development issuer.
    Mint(MintArgs),
    /// Send a token to a running server and print the claims or the reason.
    Decrypt(DecryptArgs),
    /// Run the whole loop in one process on ephemeral keys.
    Demo,
    /// Work with audit logs: verify their chain, fingerprint a token, make a key.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure a server under load: throughput, latency, server CPU and memory.
    Bench(BenchArgs),
}

/// `jwed audit` commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the chain of audit files, oldest first; exits 1 at the first break.
    Verify {
        /// The deployment's audit key file.
        #[arg(long)]
        key_file: PathBuf,
        /// Audit files, oldest first (for example audit.log.2 audit.log.1 audit.log).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a token's fingerprint, to find its records with grep.
    Fingerprint {
        /// The deployment's audit key file.
        #[arg(long)]
        key_file: PathBuf,
        /// The token; `-` or nothing reads it from standard input.
        token: Option<String>,
    },
    /// Write a new audit key file (32 random bytes, base64url, mode 0600).
    Key {
        /// File to create; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `jwed serve`. Each overrides the configuration file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "JWED_CONFIG")]
    pub config: Option<PathBuf>,
    /// Unix socket path (default /run/jwed/jwed.sock); an empty value turns
    /// the socket off.
    #[arg(long, env = "JWED_UNIX_SOCKET")]
    pub unix_socket: Option<String>,
    /// TCP address to listen on as well, such as 127.0.0.1:50051.
    #[arg(long, env = "JWED_TCP_LISTEN")]
    pub tcp_listen: Option<String>,
    /// Private JWK Set file with jwed's decryption keys.
    #[arg(long, env = "JWED_PRIVATE_KEYS")]
    pub private_keys: Option<PathBuf>,
    /// Public JWK Set file with the trusted issuer signing keys.
    #[arg(long, env = "JWED_ISSUER_KEYS")]
    pub issuer_keys: Option<PathBuf>,
    /// Revocation list file (JSON: tokens, subjects, keys).
    #[arg(long, env = "JWED_REVOCATIONS")]
    pub revocations: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "JWED_ISSUER")]
    pub issuer: Option<String>,
    /// Accepted audiences; repeat the flag or separate with commas.
    #[arg(long = "audience", env = "JWED_AUDIENCES", value_delimiter = ',')]
    pub audiences: Option<Vec<String>>,
}

/// Options of `jwed keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Algorithm the key is for: a JWE key management algorithm (RSA-OAEP-256,
    /// RSA-OAEP, ECDH-ES, ECDH-ES+A128KW, ECDH-ES+A192KW, ECDH-ES+A256KW, dir,
    /// A128KW, A192KW, A256KW) for jwed, or a JWS algorithm (RS256, PS256,
    /// ES256, ES384, EdDSA) for an issuer.
    #[arg(long, default_value = "ECDH-ES")]
    pub alg: String,
    /// Curve for ECDH-ES keys: P-256, P-384, P-521 or X25519.
    #[arg(long, default_value = "P-256")]
    pub crv: String,
    /// Modulus size in bits for RSA keys.
    #[arg(long, default_value_t = 2048)]
    pub bits: u32,
    /// Key size in bytes for dir keys (16 for A128GCM, 32 for A256GCM).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Key id; default: the algorithm and a random suffix.
    #[arg(long)]
    pub kid: Option<String>,
    /// Private JWK Set file to create; it must not exist.
    #[arg(long, default_value = "jwed-keys.json", conflicts_with = "add_to")]
    pub out: PathBuf,
    /// Add the new key to this existing private JWK Set as the current key;
    /// its other current keys become accepted. The file is replaced
    /// atomically.
    #[arg(long)]
    pub add_to: Option<PathBuf>,
    /// Public JWK Set file to create, for asymmetric keys; it must not exist.
    #[arg(long, default_value = "jwed-keys.public.json")]
    pub public_out: PathBuf,
}

/// Options of `jwed key-state`.
#[derive(Debug, Args)]
pub struct KeyStateArgs {
    /// Private JWK Set file to change; it is replaced atomically.
    #[arg(long)]
    pub keys: PathBuf,
    /// Key id to change.
    #[arg(long)]
    pub kid: String,
    /// New state: current, accepted or retired.
    #[arg(long)]
    pub state: String,
}

/// Options of `jwed mint`.
#[derive(Debug, Args)]
pub struct MintArgs {
    /// Private JWK Set of the issuer's signing key.
    #[arg(long)]
    pub signing_keys: Option<PathBuf>,
    /// Key id of the signing key; default: the first key.
    #[arg(long)]
    pub signing_kid: Option<String>,
    /// Make an unsigned token (for symmetric keys with tokens.unsigned set).
    #[arg(long, conflicts_with = "signing_keys")]
    pub unsigned: bool,
    /// JWK Set with jwed's public key (or a shared symmetric key).
    #[arg(long)]
    pub encryption_keys: PathBuf,
    /// Key id of the encryption key; default: the first key.
    #[arg(long)]
    pub kid: Option<String>,
    /// Content encryption algorithm.
    #[arg(long, default_value = "A256GCM")]
    pub enc: String,
    /// Claims as a JSON object; `@FILE` reads a file.
    #[arg(long)]
    pub claims: String,
    /// Lifetime in seconds, used to add `exp` when the claims have none.
    #[arg(long, default_value_t = 300)]
    pub ttl: u32,
}

/// Options of `jwed decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Unix socket of the server.
    #[arg(long, env = "JWED_UNIX_SOCKET", default_value = crate::config::DEFAULT_UNIX_SOCKET)]
    pub unix_socket: PathBuf,
    /// TCP address of the server, instead of the Unix socket.
    #[arg(long)]
    pub tcp: Option<String>,
    /// Audience the token must be issued for.
    #[arg(long)]
    pub audience: Option<String>,
    /// A scope the token must carry; repeat for several.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The token; `-` or nothing reads it from standard input.
    pub token: Option<String>,
}

/// Options of `jwed bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Key kind of the generated material: rsa-oaep-256, rsa-oaep-256-3072,
    /// rsa-oaep, ecdh-es-x25519, ecdh-es-p256, ecdh-es-p384, ecdh-es-p521,
    /// ecdh-es-a128kw-p256, ecdh-es-a256kw-p256, ecdh-es-a256kw-x25519,
    /// a128kw, a256kw or dir.
    #[arg(long, default_value = "rsa-oaep-256", conflicts_with = "from")]
    pub alg: String,
    /// Distinct tokens to generate; they are sent in turn.
    #[arg(long, default_value_t = 1000, conflicts_with = "from")]
    pub tokens: usize,
    /// Write the keys and tokens to this directory (private.jwks.json,
    /// issuer.jwks.json, tokens.txt) and exit. The tokens have no `iss` or
    /// `aud` and expire one hour after export.
    #[arg(long, conflicts_with_all = ["from", "socket", "tcp"])]
    pub export: Option<PathBuf>,
    /// Use the keys and tokens that `--export` wrote to this directory.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Drive the server already listening on this Unix socket instead of
    /// starting one. Its keys must match `--from`, its `[tokens]` settings
    /// must accept the exported tokens, and its claims cache should be off
    /// (`[cache] max_entries = 0`) unless cache hits are what is measured.
    #[arg(long, requires = "from", conflicts_with = "tcp")]
    pub socket: Option<PathBuf>,
    /// Drive the server already listening on this TCP address (no TLS).
    #[arg(long, requires = "from")]
    pub tcp: Option<String>,
    /// Process id of the server to read CPU time and memory from, when it
    /// is not started here or found through the Unix socket.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Calls in flight at once (1 to 4096).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    /// Connections the calls share (1 to 64).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub connections: u8,
    /// Seconds measured (above 0, at most 86400).
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    pub duration: f64,
    /// Seconds of load before measuring (0 to 86400).
    #[arg(long, default_value_t = 2.0, value_parser = seconds_or_zero)]
    pub warmup: f64,
    /// Calls per second in total, a batch counting as one call (above 0, at
    /// most 1000000). Without it, each call is sent as soon as the previous
    /// one of its slot returned.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Tokens per call: above 1, each call is a `DecryptBatch` of that
    /// many tokens (at most 32), and each token counts as one call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Turn the claims cache on in the started server, where it is off
    /// otherwise. Every call after the first round of tokens is then a hit.
    #[arg(long, conflicts_with_all = ["socket", "tcp"])]
    pub cache: bool,
    /// Thread placement of the private-key work in the started server:
    /// blocking-pool, dedicated-threads or inline.
    #[arg(long, default_value = "blocking-pool", conflicts_with_all = ["socket", "tcp"])]
    pub placement: String,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Skip timing the pipeline in this process before the load, which
    /// needs the private keys (with `--socket` or `--tcp` they may live
    /// elsewhere).
    #[arg(long)]
    pub skip_in_process: bool,
}

/// Parses a number of seconds above zero, at most a day.
fn positive_seconds(text: &str) -> Result<f64, String> {
    let seconds = seconds_or_zero(text)?;
    if seconds == 0.0 {
        return Err("expected a number of seconds above 0".into());
    }
    Ok(seconds)
}

/// Parses a number of seconds from 0 to a day.
fn seconds_or_zero(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.0..=86_400.0).contains(&seconds) => Ok(seconds),
        _ => Err("expected a number of seconds from 0 to 86400".into()),
    }
}

/// Parses a call rate above zero, at most a million per second.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err("expected calls per second above 0 and at most 1000000".into()),
    }
}

/// Runs the parsed command and returns the process exit status.
pub fn run(cli: Cli) -> u8 {
    crate::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "Cannot start the async runtime");
            return 1;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Keygen(args) => keygen::run(&args),
            Command::KeyState(args) => keygen::run_key_state(&args),
            Command::Mint(args) => mint::run(&args),
            Command::Decrypt(args) => decrypt::run(args).await,
            Command::Demo => demo::run().await,
            Command::Audit(command) => audit::run(command),
            Command::Bench(args) => bench::run(args).await,
        }
    })
}
