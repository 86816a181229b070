//! `jwed bench`: key material, a server to drive, and the report.
//!
//! By default it makes a key for the chosen algorithm, an ES256 issuer and
//! distinct tokens. It then starts `jwed serve` from its own executable on
//! a temporary Unix socket, drives it and stops it. That server writes
//! audit records to a file and keeps the claims cache off unless `--cache`
//! is given. `--export` writes the
//! material to a directory instead, `--from` reuses it, and `--socket` or
//! `--tcp` drive a server that is already running.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use super::BenchArgs;
use crate::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    bench::{self, Load, Report, Target},
    claims::ClaimsPolicy,
    decrypt::{Decrypter, Policy, Request, TokenInfo},
    issuers::IssuerKeys,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
};

const PRIVATE_KEYS: &str = "private.jwks.json";
const ISSUER_KEYS: &str = "issuer.jwks.json";
const TOKENS: &str = "tokens.txt";

/// Key kinds `--alg` accepts: name, algorithm, curve, RSA bits.
const KINDS: &[(&str, KeyAlg, &str, u32)] = &[
    ("rsa-oaep-256", KeyAlg::RsaOaep256, "", 2048),
    ("rsa-oaep-256-3072", KeyAlg::RsaOaep256, "", 3072),
    ("rsa-oaep", KeyAlg::RsaOaep, "", 2048),
    ("ecdh-es-x25519", KeyAlg::EcdhEs, "X25519", 0),
    ("ecdh-es-p256", KeyAlg::EcdhEs, "P-256", 0),
    ("ecdh-es-p384", KeyAlg::EcdhEs, "P-384", 0),
    ("ecdh-es-p521", KeyAlg::EcdhEs, "P-521", 0),
    ("ecdh-es-a128kw-p256", KeyAlg::EcdhEsA128Kw, "P-256", 0),
    ("ecdh-es-a256kw-p256", KeyAlg::EcdhEsA256Kw, "P-256", 0),
    ("ecdh-es-a256kw-x25519", KeyAlg::EcdhEsA256Kw, "X25519", 0),
    ("a128kw", KeyAlg::A128Kw, "", 0),
    ("a256kw", KeyAlg::A256Kw, "", 0),
    ("dir", KeyAlg::Dir, "", 0),
];

pub(super) async fn run(args: BenchArgs) -> u8 {
    match bench(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("jwed bench: {message}");
            super::EXIT_USAGE
        }
    }
}

async fn bench(args: BenchArgs) -> Result<u8, String> {
    if let Some(dir) = &args.export {
        let count = write_material(&args.alg, args.tokens, dir)?;
        eprintln!("Wrote {count} tokens and their keys to {}", dir.display());
        return Ok(0);
    }

    let scratch = tempfile::tempdir().map_err(|err| format!("cannot create a temporary directory: {err}"))?;
    let material = match &args.from {
        Some(dir) => dir.clone(),
        None => {
            write_material(&args.alg, args.tokens, scratch.path())?;
            scratch.path().to_path_buf()
        }
    };
    let tokens = read_tokens(&material.join(TOKENS))?;
    let key = describe_key(&material.join(PRIVATE_KEYS));
    // Measured before the load starts, so that the two costs come from one
    // run on the same tokens.
    let in_process_us = if args.skip_in_process {
        None
    } else {
        Some(in_process_cost(&material, &tokens)?)
    };

    let mut server = None;
    let (target, server_pid) = match (&args.socket, &args.tcp) {
        (Some(path), _) => (
            Target::Unix(path.clone()),
            args.server_pid.or(bench::peer_pid(path).await),
        ),
        (None, Some(address)) => (Target::Tcp(address.clone()), args.server_pid),
        (None, None) => {
            let spawned = Spawned::start(&material, scratch.path(), &args).await?;
            let target = Target::Unix(spawned.socket.clone());
            let pid = spawned.child.id();
            server = Some(spawned);
            (target, Some(pid))
        }
    };

    let load = Load {
        concurrency: usize::from(args.concurrency),
        connections: usize::from(args.connections),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        rate: args.rate,
        batch: args.batch,
    };
    let result = bench::run(&target, tokens, &load, server_pid).await;
    if let Some(mut server) = server {
        server.stop();
    }
    let report = match result {
        Ok(report) => report,
        Err(error @ bench::BenchError::Connect { .. }) => {
            eprintln!("jwed bench: {error}");
            return Ok(1);
        }
        Err(error) => return Err(error.to_string()),
    };
    if let Some(rate) = load.rate {
        if report.calls_per_second < 0.95 * rate * load.batch as f64 {
            eprintln!(
                "jwed bench: the requested rate of {rate} calls/s was not reached; the latency figures include queueing"
            );
        }
    }
    print_report(&args, &key, in_process_us, &target, &load, &report)?;
    Ok(if report.errors == 0 { 0 } else { 1 })
}

fn print_report(
    args: &BenchArgs,
    key: &str,
    in_process_us: Option<f64>,
    target: &Target,
    load: &Load,
    report: &Report,
) -> Result<(), String> {
    let cpu_ratio = report
        .server_cpu_us_per_call
        .zip(in_process_us)
        .map(|(server, in_process)| server / in_process);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let mut value = serde_json::to_value(report).map_err(|err| err.to_string())?;
        if let Value::Object(map) = &mut value {
            map.insert("key".into(), key.into());
            map.insert("in_process_us_per_call".into(), json!(in_process_us));
            map.insert("server_cpu_to_in_process".into(), json!(cpu_ratio));
            map.insert("target".into(), target.describe().into());
            map.insert("concurrency".into(), load.concurrency.into());
            map.insert("connections".into(), load.connections.into());
            map.insert("rate".into(), json!(load.rate));
            map.insert("batch".into(), load.batch.into());
        }
        writeln!(out, "{value}")
    } else {
        let optional =
            |value: Option<f64>, unit: &str| value.map_or("unknown".to_owned(), |v| format!("{v:.1} {unit}"));
        let rate = load.rate.map_or("as fast as replies come".to_owned(), |rate| {
            format!("{rate:.0} calls/s")
        });
        writeln!(
            out,
            "key           {key}\ntarget        {}\nload          {} in flight on {} connections, {} token(s) per call, {}, {:.1} s measured\n\
             calls         {} ({} failed)\nthroughput    {:.0} calls/s\n\
             latency       p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us\n\
             server cpu    {} per call{}\nserver rss    {} peak",
            target.describe(),
            load.concurrency,
            load.connections,
            load.batch,
            rate,
            report.seconds,
            report.calls,
            report.errors,
            report.calls_per_second,
            report.p50_us,
            report.p90_us,
            report.p99_us,
            report.max_us,
            optional(report.server_cpu_us_per_call, "us"),
            cpu_ratio.zip(in_process_us).map_or(String::new(), |(ratio, in_process)| format!(
                " ({ratio:.2} times the in-process pipeline: {in_process:.1} us per call)"
            )),
            optional(
                report.server_peak_rss_bytes.map(|bytes| bytes as f64 / 1_048_576.0),
                "MiB"
            ),
        )
        .and_then(|()| {
            report
                .error_reasons
                .iter()
                .try_for_each(|(reason, count)| writeln!(out, "failed        {count} x {reason}"))
        })
    };
    written.map_err(|err| format!("cannot write the report: {err}"))
}

/// Makes a key of kind `alg`, an ES256 issuer and `count` distinct tokens
/// valid for an hour, and writes them to `dir`.
fn write_material(alg: &str, count: usize, dir: &Path) -> Result<usize, String> {
    let &(_, key_alg, curve, bits) = KINDS
        .iter()
        .find(|(name, ..)| *name == alg)
        .ok_or_else(|| format!("unknown --alg {alg:?}; expected one of {}", kind_names()))?;
    if count == 0 {
        return Err("--tokens must be at least 1".into());
    }
    let failed = |err: keygen::KeygenError| err.to_string();
    let key = GeneratedKey::generate(KeySpec::Decryption(key_alg), &format!("bench-{alg}"), curve, bits, 32)
        .map_err(failed)?;
    let issuer =
        GeneratedKey::generate(KeySpec::Signing(SigAlg::ES256), "bench-issuer", "", 2048, 32).map_err(failed)?;

    let jwk = |text: &str| josekit::jwk::Jwk::from_bytes(text).map_err(|err| err.to_string());
    let recipient = Recipient::from_jwk(jwk(key.expose_private_json())?).map_err(|err| err.to_string())?;
    let signer = Signer::from_jwk(jwk(issuer.expose_private_json())?).map_err(|err| err.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut tokens = String::new();
    for _ in 0..count {
        let subject = uuid::Uuid::new_v4().to_string();
        let claims = json!({
            "sub": subject,
            "id": subject,
            "jti": uuid::Uuid::new_v4().to_string(),
            "scopes": ["orders:read", "orders:write"],
            "iat": now,
            "exp": now + 3600,
        });
        let claims = claims.as_object().ok_or("claims are not an object")?;
        let token =
            mint::mint(claims, Some(&signer), &recipient, ContentEnc::A256Gcm).map_err(|err| err.to_string())?;
        tokens.push_str(&token);
        tokens.push('\n');
    }

    std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    keygen::write_private_file(
        &dir.join(PRIVATE_KEYS),
        &keygen::jwk_set_text(&[key.expose_private_json()]),
    )
    .map_err(failed)?;
    let public = issuer.public().cloned().ok_or("the issuer key has no public half")?;
    keygen::write_public_file(&dir.join(ISSUER_KEYS), vec![Value::Object(public)]).map_err(failed)?;
    std::fs::write(dir.join(TOKENS), tokens).map_err(|err| format!("cannot write {TOKENS}: {err}"))?;
    Ok(count)
}

/// Times jwed's whole pipeline in this process, on one thread, over the
/// tokens in turn: the median of five rounds of about 0.3 s each, in µs per
/// token.
fn in_process_cost(material: &Path, tokens: &[String]) -> Result<f64, String> {
    let keys = KeySet::load(&material.join(PRIVATE_KEYS), &HashMap::new()).map_err(|err| err.to_string())?;
    let issuers = IssuerKeys::load(&material.join(ISSUER_KEYS)).map_err(|err| err.to_string())?;
    let policy = Policy {
        claims: ClaimsPolicy {
            max_lifetime_seconds: None,
            ..ClaimsPolicy::default()
        },
        ..Policy::default()
    };
    let decrypter = Decrypter::new(keys, Some(issuers), policy);
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
    )
    .unwrap_or(i64::MAX);
    let decrypt_one = |token: &String| {
        let request = Request {
            token,
            audience: None,
            required_scopes: &[],
        };
        decrypter.decrypt(request, now, &mut TokenInfo::default())
    };
    if let Err(error) = tokens.iter().try_for_each(|token| decrypt_one(token).map(drop)) {
        return Err(format!("a token does not decrypt in process: {error}"));
    }

    let mut rounds = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut calls = 0_u32;
        for token in tokens.iter().cycle() {
            let _ = std::hint::black_box(decrypt_one(token));
            calls += 1;
            if started.elapsed() >= Duration::from_millis(300) {
                break;
            }
        }
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[rounds.len() / 2])
}

/// Describes the first key of a private JWK Set, such as `ECDH-ES X25519`
/// or `RSA-OAEP-256 2048-bit`, for the report.
fn describe_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let set: Value = serde_json::from_str(&text).unwrap_or_default();
    let key = &set["keys"][0];
    let alg = key["alg"].as_str().unwrap_or("unknown");
    match (key["crv"].as_str(), key["n"].as_str()) {
        (Some(curve), _) => format!("{alg} {curve}"),
        (None, Some(modulus)) => format!("{alg} {}-bit", modulus.len() * 6 / 8 * 8),
        (None, None) => alg.to_owned(),
    }
}

fn kind_names() -> String {
    KINDS.iter().map(|(name, ..)| *name).collect::<Vec<_>>().join(", ")
}

fn read_tokens(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(format!("{} holds no tokens", path.display()));
    }
    Ok(tokens)
}

/// A `jwed serve` started for the run.
struct Spawned {
    child: Child,
    socket: PathBuf,
}

// === impl Spawned ===

impl Spawned {
    async fn start(material: &Path, scratch: &Path, args: &BenchArgs) -> Result<Self, String> {
        let socket = scratch.join("jwed.sock");
        let config = scratch.join("jwed.toml");
        let cache_entries = if args.cache {
            crate::cache::DEFAULT_MAX_ENTRIES
        } else {
            0
        };
        let text = format!(
            "[server]\nunix_socket = {socket:?}\ndecrypt_placement = {placement:?}\n\n\
             [keys]\nprivate_keys = {keys:?}\nissuer_keys = {issuers:?}\n\n\
             [tokens]\nmax_lifetime_seconds = 0\n\n\
             [audit]\nfile = {audit:?}\nmax_file_bytes = 268435456\nkeep_files = 1\n\n\
             [cache]\nmax_entries = {cache_entries}\n",
            socket = socket.display().to_string(),
            placement = args.placement,
            keys = material.join(PRIVATE_KEYS).display().to_string(),
            issuers = material.join(ISSUER_KEYS).display().to_string(),
            audit = scratch.join("audit.log").display().to_string(),
        );
        std::fs::write(&config, text).map_err(|err| format!("cannot write {}: {err}", config.display()))?;
        let log = std::fs::File::create(scratch.join("server.log")).map_err(|err| err.to_string())?;
        let executable = std::env::current_exe().map_err(|err| format!("cannot find the jwed executable: {err}"))?;
        let mut command = Command::new(executable);
        // The server takes its settings from the file above only.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JWED_") {
                command.env_remove(name);
            }
        }
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot start jwed serve: {err}"))?;
        let mut spawned = Spawned { child, socket };

        for _ in 0..200 {
            if let Ok(Some(status)) = spawned.child.try_wait() {
                let log = std::fs::read_to_string(scratch.join("server.log")).unwrap_or_default();
                return Err(format!("jwed serve exited with {status}:\n{log}"));
            }
            if crate::client::connect_unix(&spawned.socket).await.is_ok() {
                return Ok(spawned);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        spawned.stop();
        Err("jwed serve did not open its socket within 10 seconds".into())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}
