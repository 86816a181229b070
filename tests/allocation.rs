//! Peak heap memory of one `Decrypter::decrypt` call, for a maximum-size
//! valid token and for hostile tokens of the same size.
//!
//! A counting `#[global_allocator]` needs `unsafe impl GlobalAlloc`. The
//! package sets `unsafe_code = "forbid"` in `[lints.rust]`, cargo passes it
//! to this test crate as `-F unsafe_code`, and `#![allow(unsafe_code)]`
//! cannot relax a forbid. So each measurement runs in a child process
//! instead: this test binary again, with glibc tuned so that the heap
//! extent records the peak. Every allocation stays on the heap, the heap
//! never shrinks, and before the call every free chunk is filled, so the
//! call's allocations can only come from growing the heap. The growth of
//! the `[heap]` mapping in /proc/self/maps across the call is then its peak
//! heap use, rounded up to pages and including glibc's chunk headers and
//! fragmentation.
//!
//! Peak resident set size (VmHWM) was tried first and rejected: in trials
//! its readings for the same call varied by tens of KiB from run to run.
//!
//! NOTE: this needs Linux and glibc 2.26 or later; the calibration test
//! fails where the tuning has no effect. Stack memory is not counted.

mod common;

use std::{
    collections::HashMap,
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use base64ct::{Base64UrlUnpadded, Encoding};
use common::{Issuer, KeyFiles, good_claims, test_policy, write_keys};
use josekit::{
    jwe::{self, JweHeader},
    jwk::{Jwk, JwkSet},
    jws::{self, JwsSigner},
};
use jwed::{
    alg::{KeyAlg, SigAlg},
    compact::DEFAULT_MAX_TOKEN_BYTES,
    decrypt::{Decrypter, Request, TokenInfo},
    issuers::IssuerKeys,
    keys::KeySet,
};
use serde_json::Value;

/// What the child measures: `decrypt`, `small-allocations` or
/// `large-allocation`. Its presence marks the process as a child.
const MODE_ENV: &str = "JWED_MEASURE_MODE";
const TOKEN_FILE_ENV: &str = "JWED_MEASURE_TOKEN_FILE";
const KEYS_ENV: &str = "JWED_MEASURE_KEYS";
const ISSUERS_ENV: &str = "JWED_MEASURE_ISSUERS";
const RESULT_FILE_ENV: &str = "JWED_MEASURE_RESULT_FILE";

/// glibc tuning for the child. Every allocation below 32 MiB (the largest
/// threshold glibc accepts) comes from the heap, which is never trimmed and
/// grows a page at a time, and all threads share one arena. No per-thread or
/// fast-bin cache is kept, so every freed chunk is merged at once and
/// [`fill_heap_holes`] can fill it.
const GLIBC_TUNABLES: &str = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824:\
glibc.malloc.top_pad=0:glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0";

/// Measured runs after the first. Where the previous run left the top of
/// the heap shifts a reading by up to a page, so the largest is kept.
const REPEATS: usize = 3;

/// Chosen budget for the extra peak memory of one call: 16 times the token
/// length covers a few decoded and decrypted copies of the token, and 256
/// KiB covers fixed costs such as key agreement, JSON maps and page rounding.
fn budget(token_len: usize) -> usize {
    16 * token_len + 256 * 1024
}

// --- Child process ---

#[test]
fn child_measures_one_call() {
    // Runs only as the child process started by the tests below. In a
    // normal test run it returns at once.
    let Ok(mode) = env::var(MODE_ENV) else {
        return;
    };
    let result_file = PathBuf::from(env::var(RESULT_FILE_ENV).expect("result file"));

    let report = match mode.as_str() {
        "decrypt" => measure_decrypt(),
        "small-allocations" => {
            let allocate = || {
                (0..16 * 1024)
                    .map(|i| Box::new([i as u8; 64]))
                    .collect::<Vec<Box<[u8; 64]>>>()
            };
            let (peak, first_peak, _) = measure(allocate);
            format!("{peak} {first_peak} allocated")
        }
        "large-allocation" => {
            let (peak, first_peak, _) = measure(|| vec![1u8; 1024 * 1024]);
            format!("{peak} {first_peak} allocated")
        }
        other => panic!("unknown {MODE_ENV} {other:?}"),
    };
    fs::write(result_file, report).expect("write the result file");
}

fn measure_decrypt() -> String {
    let keys = KeySet::load(Path::new(&env::var(KEYS_ENV).expect("keys")), &HashMap::new()).expect("load keys");
    let issuers = IssuerKeys::load(Path::new(&env::var(ISSUERS_ENV).expect("issuers"))).expect("load issuer keys");
    let decrypter = Decrypter::new(keys, Some(issuers), test_policy());
    let token = fs::read_to_string(env::var(TOKEN_FILE_ENV).expect("token file")).expect("read the token");
    let now = common::now();
    let call = || {
        let mut info = TokenInfo::default();
        decrypter.decrypt(
            Request {
                token: &token,
                audience: None,
                required_scopes: &[],
            },
            now,
            &mut info,
        )
    };

    let (peak, first_peak, result) = measure(call);
    let outcome = match &result {
        Ok(_) => "accepted".to_owned(),
        Err(error) => format!("rejected: {error}"),
    };
    format!("{peak} {first_peak} {outcome}")
}

/// Runs `run` once, which also fills one-time caches, then [`REPEATS`]
/// more times. Returns the largest heap growth of the repeats, the heap
/// growth of the first run and the last result.
fn measure<T>(run: impl Fn() -> T) -> (usize, usize, T) {
    // Both buffers are allocated before any measurement, so reading
    // /proc/self/maps and filling holes allocate nothing on the heap during
    // one.
    let mut maps = String::with_capacity(256 * 1024);
    let mut plugs: Vec<Box<[u8; 16]>> = Vec::with_capacity(1 << 20);

    let (first_peak, first) = heap_growth(&mut maps, &mut plugs, &run);
    drop(first);

    let mut peak = 0;
    let mut last = None;
    for _ in 0..REPEATS {
        drop(last.take());
        let (growth, result) = heap_growth(&mut maps, &mut plugs, &run);
        peak = peak.max(growth);
        last = Some(result);
    }
    (peak, first_peak, last.expect("at least one repeat"))
}

/// Fills every free chunk, then returns how far the heap grew while `run`
/// ran, in bytes, and what `run` returned.
#[expect(clippy::vec_box, reason = "each box is one separate heap chunk")]
fn heap_growth<T>(maps: &mut String, plugs: &mut Vec<Box<[u8; 16]>>, run: impl Fn() -> T) -> (usize, T) {
    fill_heap_holes(maps, plugs);
    let before = heap_end(maps).expect("the heap exists once holes are filled");
    let result = run();
    let after = heap_end(maps).expect("the heap still exists");
    (after - before, result)
}

/// Allocates 32-byte chunks, the smallest glibc makes, until the heap has
/// to grow. glibc serves a request from any free chunk before it grows the
/// heap, so afterwards no chunk freed earlier is left for the measured run
/// to reuse unseen.
#[expect(clippy::vec_box, reason = "each box is one separate heap chunk")]
fn fill_heap_holes(maps: &mut String, plugs: &mut Vec<Box<[u8; 16]>>) {
    let start = heap_end(maps);
    loop {
        for _ in 0..64 {
            plugs.push(Box::new([0; 16]));
        }
        if heap_end(maps) != start {
            return;
        }
    }
}

/// Returns the end address of the `[heap]` mapping, which is the program
/// break, or `None` before the heap exists.
fn heap_end(maps: &mut String) -> Option<usize> {
    use std::io::Read;
    maps.clear();
    fs::File::open("/proc/self/maps")
        .and_then(|mut file| file.read_to_string(maps))
        .expect("read /proc/self/maps");
    let line = maps.lines().find(|line| line.ends_with("[heap]"))?;
    let range = line.split(' ').next()?;
    let end = range.split('-').nth(1)?;
    usize::from_str_radix(end, 16).ok()
}

// --- Parent side ---

/// What a child process measured.
struct Measurement {
    /// Heap growth of the measured call, in bytes.
    peak: usize,
    /// Heap growth of the first call, which also fills one-time caches.
    first_peak: usize,
    /// `accepted`, or `rejected: ` and the error.
    outcome: String,
}

fn measure_in_child(files: &KeyFiles, case: &str, mode: &str, token: &str) -> Measurement {
    let token_file = files.dir.path().join("token.txt");
    let result_file = files.dir.path().join("result.txt");
    fs::write(&token_file, token).expect("write the token file");
    let _ = fs::remove_file(&result_file);

    let output = Command::new(env::current_exe().expect("path of this test binary"))
        .args(["--exact", "child_measures_one_call", "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, mode)
        .env(TOKEN_FILE_ENV, &token_file)
        .env(KEYS_ENV, &files.private_keys)
        .env(ISSUERS_ENV, &files.issuer_public)
        .env(RESULT_FILE_ENV, &result_file)
        .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
        .output()
        .expect("start the child process");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{case}: the child process failed: {stderr}");

    let report =
        fs::read_to_string(&result_file).unwrap_or_else(|_| panic!("{case}: the child wrote no result: {stderr}"));
    let mut fields = report.splitn(3, ' ');
    let mut number = || {
        fields
            .next()
            .and_then(|field| field.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{case}: bad result {report:?}"))
    };
    let (peak, first_peak) = (number(), number());
    let outcome = report.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
    Measurement {
        peak,
        first_peak,
        outcome,
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
    bytes
}

fn jwk_from(path: &Path, kid: &str) -> Jwk {
    let set = JwkSet::from_bytes(fs::read(path).expect("read JWK Set")).expect("parse JWK Set");
    set.get(kid)
        .first()
        .map(|jwk| (*jwk).clone())
        .unwrap_or_else(|| panic!("no key {kid} in {}", path.display()))
}

/// Finds the largest `n` in `0..=upper` for which `build(n)` is at most
/// the default maximum token size, given that its length grows with `n`,
/// and returns `n` and that token.
fn largest_fitting(upper: usize, build: impl Fn(usize) -> String) -> (usize, String) {
    let (mut low, mut high) = (0, upper);
    while low < high {
        let middle = (low + high).div_ceil(2);
        if build(middle).len() <= DEFAULT_MAX_TOKEN_BYTES {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    (low, build(low))
}

/// Tokens of close to 16 KiB, each with whether it must be accepted.
fn cases(files: &KeyFiles) -> Vec<(&'static str, String, bool)> {
    let issuer = Issuer::new(files, "sig-es256", "enc-p256");
    let (_, valid) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |len| {
        let mut claims = good_claims();
        claims.insert("padding".into(), Value::String("x".repeat(len)));
        issuer.mint(&claims, jwed::alg::ContentEnc::A256Gcm)
    });
    let valid_header = valid.split('.').next().expect("header").to_owned();

    let mut many_dots = "A.".repeat(4000);
    many_dots.push_str(&"A".repeat(DEFAULT_MAX_TOKEN_BYTES - many_dots.len()));

    let (_, huge_header) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |len| {
        let header = format!(r#"{{"alg":"ECDH-ES","enc":"A256GCM","pad":"{}"}}"#, "x".repeat(len));
        format!("{}....", b64(header.as_bytes()))
    });

    // A header at the 4 KiB limit made of about 460 small members, each of
    // which the parser stores before the allow-list rejects the first one.
    let mut members: Vec<String> = vec![r#""alg":"ECDH-ES","enc":"A256GCM""#.to_owned()];
    while members.join(",").len() < 4096 - 16 {
        members.push(format!(r#""m{}":0"#, members.len()));
    }
    let many_members = format!("{{{}}}", members.join(","));
    assert!(
        many_members.len() <= 4096,
        "the header must stay within the 4 KiB limit"
    );
    let (_, many_members) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |len| {
        format!(
            "{}..{}.{}.{}",
            b64(many_members.as_bytes()),
            b64(&[7; 12]),
            b64(&vec![7; len]),
            b64(&[7; 16])
        )
    });

    // Each number takes 2 bytes of header text and a serde_json Value of 72
    // bytes once parsed.
    let numbers_header = {
        let prefix = r#"{"alg":"ECDH-ES","enc":"A256GCM","n":[0"#;
        let header = format!("{prefix}{}]}}", ",0".repeat((4096 - prefix.len() - 2) / 2));
        assert!(header.len() <= 4096, "the header must stay within the 4 KiB limit");
        let (_, token) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |len| {
            format!(
                "{}..{}.{}.{}",
                b64(header.as_bytes()),
                b64(&[7; 12]),
                b64(&vec![7; len]),
                b64(&[7; 16])
            )
        });
        token
    };
    let signer = jws::ES256
        .signer_from_jwk(&jwk_from(&files.issuer_private, "sig-es256"))
        .expect("ES256 signer");
    let encrypter = jwe::ECDH_ES
        .encrypter_from_jwk(&jwk_from(&files.public_keys, "enc-p256"))
        .expect("encrypter");
    let (_, deep_claims) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |depth| {
        let claims = format!(r#"{{"deep":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let signing_input = format!(
            "{}.{}",
            b64(br#"{"alg":"ES256","kid":"sig-es256"}"#),
            b64(claims.as_bytes())
        );
        let inner = format!(
            "{signing_input}.{}",
            b64(&signer.sign(signing_input.as_bytes()).expect("sign"))
        );
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_key_id("enc-p256");
        header.set_content_type("JWT");
        jwe::serialize_compact(inner.as_bytes(), &header, &encrypter).expect("encrypt")
    });

    // A real header with a valid epk, so the garbage reaches key agreement
    // and AES-GCM before the tag check fails.
    let garbage = random_bytes(DEFAULT_MAX_TOKEN_BYTES);
    let (_, garbage_ciphertext) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |len| {
        format!(
            "{valid_header}..{}.{}.{}",
            b64(&garbage[..12]),
            b64(&garbage[..len]),
            b64(&garbage[..16])
        )
    });

    vec![
        ("valid token of maximum size", valid, true),
        ("4000 dots", many_dots, false),
        ("16 KiB header", huge_header, false),
        ("4 KiB header of small members", many_members, false),
        ("4 KiB header of an array of numbers", numbers_header, false),
        ("deeply nested signed claims", deep_claims, false),
        ("16 KiB garbage ciphertext", garbage_ciphertext, false),
    ]
}

#[test]
fn measurement_sees_small_and_large_allocations() {
    let files = write_keys(&[], &[]);
    let small = measure_in_child(&files, "small allocations", "small-allocations", "");
    let large = measure_in_child(&files, "large allocation", "large-allocation", "");
    eprintln!(
        "calibration: 16384 boxes of 64 bytes peak at {} bytes (first run {}), one 1 MiB vector at {} bytes (first run {})",
        small.peak, small.first_peak, large.peak, large.first_peak
    );

    assert!(
        small.peak >= 1024 * 1024,
        "small allocations: only {} bytes seen of at least 1 MiB",
        small.peak
    );
    assert!(
        small.peak <= 2 * 1024 * 1024,
        "small allocations: {} bytes seen, more than twice the 1 MiB payload",
        small.peak
    );
    assert!(
        large.peak >= 1024 * 1024,
        "large allocation: only {} bytes seen of 1 MiB",
        large.peak
    );
    assert!(
        large.peak <= 1024 * 1024 + 64 * 1024,
        "large allocation: {} bytes seen for 1 MiB",
        large.peak
    );
}

/// Measures each token in a child process and checks its outcome and its
/// peak against the budget.
fn check_within_budget(files: &KeyFiles, cases: Vec<(&str, String, bool)>) {
    for (case, token, must_accept) in cases {
        let measured = measure_in_child(files, case, "decrypt", &token);
        let budget = budget(token.len());
        eprintln!(
            "{case}: token {} bytes, peak {} bytes (first call {} bytes), budget {budget} bytes, {}",
            token.len(),
            measured.peak,
            measured.first_peak,
            measured.outcome
        );

        assert_eq!(
            measured.outcome == "accepted",
            must_accept,
            "{case}: {}",
            measured.outcome
        );
        assert!(
            token.len() > DEFAULT_MAX_TOKEN_BYTES - 64,
            "{case}: token has only {} bytes",
            token.len()
        );
        assert!(
            measured.peak <= budget,
            "{case}: peak of {} bytes exceeds the budget of {budget} bytes",
            measured.peak
        );
    }
}

#[test]
fn peak_memory_of_one_call_is_within_budget() {
    let files = write_keys(
        &[(KeyAlg::EcdhEs, "enc-p256", "P-256")],
        &[(SigAlg::ES256, "sig-es256")],
    );
    check_within_budget(&files, cases(&files));
}

#[test]
fn peak_memory_of_numeric_claims_is_within_budget() {
    // Each number takes 2 bytes of claims text and a serde_json Value of
    // 72 bytes once parsed, and the array grows by doubling. The JSON value
    // cap rejects the claims before that cost adds up.
    let files = write_keys(
        &[(KeyAlg::EcdhEs, "enc-p256", "P-256")],
        &[(SigAlg::ES256, "sig-es256")],
    );
    let issuer = Issuer::new(&files, "sig-es256", "enc-p256");
    let (count, token) = largest_fitting(DEFAULT_MAX_TOKEN_BYTES, |count| {
        let mut claims = good_claims();
        claims.insert("numbers".into(), Value::Array(vec![Value::from(0); count]));
        issuer.mint(&claims, jwed::alg::ContentEnc::A256Gcm)
    });
    let case = format!("signed claims of {count} numbers");
    check_within_budget(&files, vec![(&case, token, false)]);
}
