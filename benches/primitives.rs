//! Single-thread cost of each key management family: the cryptographic
//! primitives alone, called through the `openssl` crate, next to jwed's
//! `Decrypter::open` (the JWE only) and `Decrypter::decrypt` (the whole
//! pipeline) on the same tokens.
//!
//! The primitives are the work that no implementation can skip for a token:
//! - the key operation, which yields the content key. For RSA it is OAEP
//!   decryption. For ECDH-ES it is the import of the token's ephemeral public
//!   key from its coordinates (with the on-curve check), ECDH and the Concat
//!   KDF of RFC 7518 section 4.6.2, followed by AES key unwrap for
//!   ECDH-ES+AxxxKW. For AxxxKW it is AES key unwrap with the shared key.
//!   `dir` has none.
//! - AES-256-GCM decryption of the token's ciphertext.
//! - Verification of the nested JWT's signature.
//!
//! Their sum bounds what one thread can reach. Each share column is the raw
//! time as a percentage of jwed's time, which equals jwed's throughput as a
//! percentage of the primitives' throughput. The raw calls reuse what can be
//! prepared once: the parsed private key, the RSA decryption context, the
//! expanded AES key of AxxxKW, and the issuer's public key.
//!
//! Every family has its own keys and 100 distinct tokens, each with its own
//! content key and its own encrypted key or ephemeral public key. The calls
//! cycle through them. A warm-up pass precedes the measurements, and each
//! number is the median of several rounds. A round measures every step of a
//! family in turn, so that a change of load on the machine affects all of
//! them alike.
//!
//! Run: `cargo bench --bench primitives` (optionally `-- CALLS`, the minimum
//! number of calls per step and round; default 300).

#![expect(clippy::print_stdout, reason = "a benchmark reports its results on stdout")]

mod support;

use std::{
    hint::black_box,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use jwed::{
    alg::{KeyAlg, SigAlg},
    decrypt::{Request, TokenInfo},
};
use openssl::{
    aes::{self, AesKey},
    bn::{BigNum, BigNumContext},
    derive::Deriver,
    ec::{EcGroup, EcKey, EcPoint},
    ecdsa::EcdsaSig,
    md::Md,
    nid::Nid,
    pkey::{Id, PKey, Private, Public},
    pkey_ctx::PkeyCtx,
    rsa::{Padding, RsaPrivateKeyBuilder},
    sha::{Sha256, sha256},
    sign::Verifier,
    symm::{self, Cipher},
};
use serde_json::{Map, Value};
use support::TokenSpec;

/// Distinct tokens minted for each family.
const TOKENS_PER_FAMILY: usize = 100;

/// Measured rounds after the warm-up pass.
const ROUNDS: usize = 7;

/// Default minimum number of calls per step and round.
const DEFAULT_CALLS: usize = 300;

/// Shortest duration of one step in one round. Cheap steps such as GCM get
/// more calls than the minimum, so that no sample lasts only microseconds.
const MIN_STEP_SECONDS: f64 = 0.02;

/// Share of the primitives' throughput that the pipeline should reach.
const TARGET_SHARE: f64 = 75.0;

/// One row of the table: a key management algorithm with its key size or
/// curve, and the issuer's signature algorithm.
struct Family {
    alg: KeyAlg,
    curve: &'static str,
    rsa_bits: u32,
    signing_alg: SigAlg,
}

/// Every supported key management algorithm, with each RSA size and curve
/// that matters. `keygen` generates the keys and `mint` the tokens of all of
/// them.
const FAMILIES: [Family; 17] = [
    Family::rsa(KeyAlg::RsaOaep256, 2048),
    Family::rsa(KeyAlg::RsaOaep256, 3072),
    Family::rsa(KeyAlg::RsaOaep, 2048),
    Family::ecdh(KeyAlg::EcdhEs, "X25519"),
    Family::ecdh(KeyAlg::EcdhEs, "P-256"),
    Family::ecdh(KeyAlg::EcdhEs, "P-384"),
    Family::ecdh(KeyAlg::EcdhEs, "P-521"),
    Family::ecdh(KeyAlg::EcdhEsA128Kw, "P-256"),
    Family::ecdh(KeyAlg::EcdhEsA128Kw, "X25519"),
    Family::ecdh(KeyAlg::EcdhEsA192Kw, "P-256"),
    Family::ecdh(KeyAlg::EcdhEsA256Kw, "P-256"),
    Family::ecdh(KeyAlg::EcdhEsA256Kw, "X25519"),
    Family::symmetric(KeyAlg::A128Kw),
    Family::symmetric(KeyAlg::A192Kw),
    Family::symmetric(KeyAlg::A256Kw),
    Family::symmetric(KeyAlg::Dir),
    Family::ecdh(KeyAlg::EcdhEs, "X25519").signed_with(SigAlg::EdDSA),
];

/// jwed's private key as the raw calls use it.
enum RawKey {
    /// An RSA key with a context set up for OAEP decryption, reused by every call.
    Rsa(PkeyCtx<Private>),
    /// An EC key on a NIST curve.
    Ec { key: PKey<Private>, group: EcGroup },
    /// An X25519 key.
    X25519(PKey<Private>),
    /// The AES key wrap key of A128KW, A192KW or A256KW, expanded once.
    AesKw(Box<AesKey>),
    /// The content key of `dir`.
    Dir(Vec<u8>),
}

/// The issuer's public key.
enum IssuerKey {
    Es256(EcKey<Public>),
    EdDsa(PKey<Public>),
}

/// The decoded segments of one token.
struct TokenParts {
    /// The protected header segment as sent: the GCM additional data.
    aad: Vec<u8>,
    encrypted_key: Vec<u8>,
    /// Coordinates of the ephemeral public key, empty when the token has
    /// none. X25519 keys have no `y`.
    epk_x: Vec<u8>,
    epk_y: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// The nested JWS of one token.
struct SignedParts {
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// Median time per call of each step of one family, in microseconds.
struct Timings {
    key_op: Option<f64>,
    gcm: f64,
    signature: f64,
    open: f64,
    pipeline: f64,
    content_bytes: usize,
}

// === impl Family ===

impl Family {
    const fn rsa(alg: KeyAlg, rsa_bits: u32) -> Self {
        Family {
            alg,
            curve: "",
            rsa_bits,
            signing_alg: SigAlg::ES256,
        }
    }

    const fn ecdh(alg: KeyAlg, curve: &'static str) -> Self {
        Family {
            alg,
            curve,
            rsa_bits: 0,
            signing_alg: SigAlg::ES256,
        }
    }

    const fn symmetric(alg: KeyAlg) -> Self {
        Family {
            alg,
            curve: "",
            rsa_bits: 0,
            signing_alg: SigAlg::ES256,
        }
    }

    const fn signed_with(self, signing_alg: SigAlg) -> Self {
        Family { signing_alg, ..self }
    }

    fn label(&self) -> String {
        let key = if self.alg.name().starts_with("RSA") {
            format!("{}, {}-bit", self.alg, self.rsa_bits)
        } else if self.curve.is_empty() {
            self.alg.to_string()
        } else {
            format!("{}, {}", self.alg, self.curve)
        };
        if self.signing_alg == SigAlg::ES256 {
            key
        } else {
            format!("{key}, {} JWT", self.signing_alg)
        }
    }
}

fn main() {
    // `cargo test --all-targets` also runs bench targets; only `cargo bench`
    // passes --bench.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let calls = args
        .iter()
        .filter_map(|arg| arg.parse::<usize>().ok())
        .next()
        .unwrap_or(DEFAULT_CALLS)
        .max(1);

    let started = Instant::now();
    let mut rows = Vec::new();
    for family in &FAMILIES {
        eprintln!("measuring {}", family.label());
        rows.push((family, measure_family(family, calls)));
    }
    print_table(&rows, calls);
    eprintln!("finished in {:.0} s", started.elapsed().as_secs_f64());
}

/// Mints the family's tokens, checks that the raw calls decrypt them exactly
/// as jwed does, and times every step.
fn measure_family(family: &Family, calls: usize) -> Timings {
    let fixture = support::fixture(&TokenSpec {
        alg: family.alg,
        curve: family.curve,
        rsa_bits: family.rsa_bits,
        signing_alg: family.signing_alg,
        count: TOKENS_PER_FAMILY,
    });
    let decrypter = &fixture.decrypter;
    let tokens = &fixture.tokens;
    let mut key = raw_key(&parse_jwk(fixture.decryption_key.expose_private_json()), family.alg);
    let issuer = issuer_key(fixture.issuer_key.public().expect("the issuer key has a public half"));
    let parts: Vec<TokenParts> = tokens.iter().map(|token| split_jwe(token)).collect();

    // One pass outside the timing: the raw calls must reach the same
    // plaintext as jwed and a valid signature, or the comparison means nothing.
    let mut content_keys = Vec::new();
    let mut signed = Vec::new();
    for (token, token_parts) in tokens.iter().zip(&parts) {
        let content_key = unwrap_content_key(&mut key, family.alg, token_parts).expect("the key operation succeeds");
        let plaintext = decrypt_content(&content_key, token_parts);
        let opened = decrypter
            .open(token, &mut TokenInfo::default())
            .expect("jwed opens a valid token");
        assert_eq!(
            plaintext,
            *opened.plaintext,
            "the raw calls and jwed decrypt a token of {} to different plaintexts",
            family.label()
        );
        let signed_parts = split_jws(&plaintext);
        assert!(
            verify_signature(&issuer, &signed_parts),
            "the nested signature of a {} token does not verify",
            family.label()
        );
        content_keys.push(content_key);
        signed.push(signed_parts);
    }
    if let RawKey::Ec { group, .. } = &key {
        assert_off_curve_point_rejected(group, &parts[0]);
    }

    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs(),
    )
    .expect("the time fits in i64");
    let has_key_op = family.alg != KeyAlg::Dir;
    let mut key_op = |i: usize| {
        black_box(unwrap_content_key(&mut key, family.alg, &parts[i]).expect("the key operation succeeds"));
    };
    let mut gcm = |i: usize| {
        black_box(decrypt_content(&content_keys[i], &parts[i]));
    };
    let mut signature = |i: usize| {
        assert!(
            black_box(verify_signature(&issuer, &signed[i])),
            "the signature verifies"
        );
    };
    let mut open = |i: usize| {
        let opened = decrypter.open(&tokens[i], &mut TokenInfo::default());
        black_box(opened.expect("jwed opens a valid token"));
    };
    let mut pipeline = |i: usize| {
        let request = Request {
            token: &tokens[i],
            audience: None,
            required_scopes: &[],
        };
        let decrypted = decrypter.decrypt(request, now, &mut TokenInfo::default());
        black_box(decrypted.expect("jwed accepts a valid token"));
    };

    let mut steps: Vec<&mut dyn FnMut(usize)> = Vec::new();
    if has_key_op {
        steps.push(&mut key_op);
    }
    steps.extend([
        &mut gcm as &mut dyn FnMut(usize),
        &mut signature,
        &mut open,
        &mut pipeline,
    ]);
    let mut medians = measure_steps(&mut steps, tokens.len(), calls).into_iter();
    let mut next = || medians.next().expect("one median per step");
    Timings {
        key_op: has_key_op.then(&mut next),
        gcm: next(),
        signature: next(),
        open: next(),
        pipeline: next(),
        content_bytes: parts[0].ciphertext.len(),
    }
}

/// Times each step, calling it with token indexes that cycle through
/// `tokens`. A warm-up pass through every token, and of at least `calls`
/// calls, also sets each step's number of calls per round: at least `calls`,
/// and enough to last `MIN_STEP_SECONDS`.
/// Returns each step's median time per call over `ROUNDS` rounds, in
/// microseconds.
fn measure_steps(steps: &mut [&mut dyn FnMut(usize)], tokens: usize, calls: usize) -> Vec<f64> {
    let counts: Vec<usize> = steps
        .iter_mut()
        .map(|step| {
            let warm_up = calls.max(tokens);
            let micros = mean_micros(&mut **step, warm_up, tokens);
            calls.max((MIN_STEP_SECONDS * 1e6 / micros).ceil() as usize)
        })
        .collect();

    let mut samples = vec![Vec::with_capacity(ROUNDS); steps.len()];
    for _ in 0..ROUNDS {
        for ((step, &count), step_samples) in steps.iter_mut().zip(&counts).zip(&mut samples) {
            step_samples.push(mean_micros(&mut **step, count, tokens));
        }
    }
    samples.into_iter().map(median).collect()
}

/// Calls `step` `count` times with token indexes `0, 1, 2, …` modulo
/// `tokens`, and returns the mean time per call in microseconds.
fn mean_micros(step: &mut dyn FnMut(usize), count: usize, tokens: usize) -> f64 {
    let started = Instant::now();
    for i in 0..count {
        step(i % tokens);
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// === Raw calls ===

/// Runs the family's key operation on one token and returns the content
/// key. For `dir`, returns the shared key.
fn unwrap_content_key(key: &mut RawKey, alg: KeyAlg, parts: &TokenParts) -> Result<Vec<u8>, &'static str> {
    match key {
        RawKey::Rsa(context) => {
            let mut content_key = Vec::new();
            context
                .decrypt_to_vec(&parts.encrypted_key, &mut content_key)
                .map_err(|_| "RSA-OAEP decryption failed")?;
            Ok(content_key)
        }
        RawKey::Ec { key, group } => {
            let ephemeral = import_nist_point(group, &parts.epk_x, &parts.epk_y)?;
            agree_and_unwrap(key, &ephemeral, alg, parts)
        }
        RawKey::X25519(key) => {
            let ephemeral =
                PKey::public_key_from_raw_bytes(&parts.epk_x, Id::X25519).map_err(|_| "invalid X25519 public key")?;
            agree_and_unwrap(key, &ephemeral, alg, parts)
        }
        RawKey::AesKw(wrap_key) => aes_unwrap(wrap_key, &parts.encrypted_key),
        RawKey::Dir(content_key) => Ok(content_key.clone()),
    }
}

/// Imports an ephemeral public key from its coordinates, as the uncompressed
/// SEC1 point `04 || x || y`. `EcPoint::from_bytes` rejects coordinates out
/// of range and a point that is not on the curve, and this form cannot
/// encode the point at infinity. On a curve with cofactor 1 (P-256, P-384,
/// P-521) that is all of OpenSSL 3.6.3's public key check
/// (`ossl_ec_key_public_check`).
///
/// `EcKey::from_public_key_affine_coordinates` makes the same check with
/// more work: it took 9.6 µs per P-256 import against 2.1 µs for this one,
/// in a one-off measurement on a 2-vCPU AMD EPYC machine.
fn import_nist_point(group: &EcGroup, x: &[u8], y: &[u8]) -> Result<PKey<Public>, &'static str> {
    let invalid = |_| "invalid EC public key";
    let mut encoded = Vec::with_capacity(1 + x.len() + y.len());
    encoded.push(0x04);
    encoded.extend_from_slice(x);
    encoded.extend_from_slice(y);
    let mut context = BigNumContext::new().map_err(invalid)?;
    let point = EcPoint::from_bytes(group, &encoded, &mut context).map_err(invalid)?;
    let key = EcKey::from_public_key(group, &point).map_err(invalid)?;
    PKey::from_ec_key(key).map_err(invalid)
}

/// ECDH with the ephemeral key, the Concat KDF, and for ECDH-ES+AxxxKW the
/// AES key unwrap of the encrypted key.
fn agree_and_unwrap(
    key: &PKey<Private>,
    ephemeral: &PKey<Public>,
    alg: KeyAlg,
    parts: &TokenParts,
) -> Result<Vec<u8>, &'static str> {
    let failed = |_| "ECDH failed";
    let mut deriver = Deriver::new(key).map_err(failed)?;
    // The import has checked the point already, so OpenSSL's own check of
    // the peer key is skipped. Every 32-byte string is an X25519 public key
    // (RFC 7748), and OpenSSL rejects the all-zero shared secret that a
    // point of small order gives.
    deriver.set_peer_ex(ephemeral, false).map_err(failed)?;
    let shared_secret = deriver.derive_to_vec().map_err(failed)?;

    match alg.wrap_key_len() {
        // Every token uses A256GCM, whose content key has 32 bytes.
        None => Ok(concat_kdf(&shared_secret, "A256GCM", 32)),
        Some(len) => {
            let wrap_key = concat_kdf(&shared_secret, alg.name(), len);
            let wrap_key = AesKey::new_decrypt(&wrap_key).map_err(|_| "invalid AES key wrap key")?;
            aes_unwrap(&wrap_key, &parts.encrypted_key)
        }
    }
}

/// Derives a key of `key_len` bytes from an ECDH shared secret with the
/// Concat KDF of NIST SP 800-56A and SHA-256, as RFC 7518 section 4.6.2
/// applies it. `apu` and `apv` are left empty because the minted tokens
/// have none. One hash output covers every key length used here (at most
/// 32 bytes).
fn concat_kdf(shared_secret: &[u8], algorithm_id: &str, key_len: usize) -> Vec<u8> {
    let length = |len: usize| u32::try_from(len).expect("the length fits in u32").to_be_bytes();
    let mut hasher = Sha256::new();
    hasher.update(&1u32.to_be_bytes());
    hasher.update(shared_secret);
    hasher.update(&length(algorithm_id.len()));
    hasher.update(algorithm_id.as_bytes());
    hasher.update(&length(0));
    hasher.update(&length(0));
    hasher.update(&length(key_len * 8));
    hasher.finish()[..key_len].to_vec()
}

/// AES key unwrap of RFC 3394 with the default initial value.
fn aes_unwrap(wrap_key: &AesKey, wrapped: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut content_key = vec![0u8; wrapped.len().saturating_sub(8)];
    aes::unwrap_key(wrap_key, None, &mut content_key, wrapped).map_err(|_| "AES key unwrap failed")?;
    Ok(content_key)
}

fn decrypt_content(content_key: &[u8], parts: &TokenParts) -> Vec<u8> {
    symm::decrypt_aead(
        Cipher::aes_256_gcm(),
        content_key,
        Some(&parts.iv),
        &parts.aad,
        &parts.ciphertext,
        &parts.tag,
    )
    .expect("AES-256-GCM decryption succeeds")
}

fn verify_signature(issuer: &IssuerKey, signed: &SignedParts) -> bool {
    match issuer {
        IssuerKey::Es256(key) => {
            // A JWS carries r and s as two 32-byte big-endian integers.
            let digest = sha256(&signed.signing_input);
            let (r, s) = signed.signature.split_at(32);
            let signature = BigNum::from_slice(r)
                .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
                .and_then(|(r, s)| EcdsaSig::from_private_components(r, s));
            signature
                .and_then(|signature| signature.verify(&digest, key))
                .unwrap_or(false)
        }
        IssuerKey::EdDsa(key) => Verifier::new_without_digest(key)
            .and_then(|mut verifier| verifier.verify_oneshot(&signed.signature, &signed.signing_input))
            .unwrap_or(false),
    }
}

/// An off-curve point must fail the import, or the raw ECDH would skip a
/// check that jwed cannot skip.
fn assert_off_curve_point_rejected(group: &EcGroup, parts: &TokenParts) {
    let mut y = parts.epk_y.clone();
    let last = y.len() - 1;
    y[last] ^= 1;
    assert!(
        import_nist_point(group, &parts.epk_x, &y).is_err(),
        "an ephemeral key that is not on the curve was imported"
    );
}

// === Setup ===

fn decode(segment: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(segment).expect("canonical base64url")
}

fn parse_jwk(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text).expect("a JWK is JSON") {
        Value::Object(members) => members,
        _ => panic!("a JWK is a JSON object"),
    }
}

/// Decodes the base64url member `name` of a JWK.
fn member(jwk: &Map<String, Value>, name: &str) -> Vec<u8> {
    decode(
        jwk.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("the JWK has no member {name}")),
    )
}

fn number(jwk: &Map<String, Value>, name: &str) -> BigNum {
    BigNum::from_slice(&member(jwk, name)).expect("a JWK integer")
}

fn nist_group(crv: &str) -> EcGroup {
    let nid = match crv {
        "P-256" => Nid::X9_62_PRIME256V1,
        "P-384" => Nid::SECP384R1,
        "P-521" => Nid::SECP521R1,
        other => panic!("curve {other} is not a NIST curve"),
    };
    EcGroup::from_curve_name(nid).expect("OpenSSL has the curve")
}

fn raw_key(jwk: &Map<String, Value>, alg: KeyAlg) -> RawKey {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    match (text("kty"), alg) {
        ("RSA", _) => {
            let rsa = RsaPrivateKeyBuilder::new(number(jwk, "n"), number(jwk, "e"), number(jwk, "d"))
                .and_then(|builder| builder.set_factors(number(jwk, "p"), number(jwk, "q")))
                .and_then(|builder| builder.set_crt_params(number(jwk, "dp"), number(jwk, "dq"), number(jwk, "qi")))
                .expect("a valid RSA key")
                .build();
            let key = PKey::from_rsa(rsa).expect("a valid RSA key");
            // RFC 7518 section 4.3: SHA-1 for RSA-OAEP, SHA-256 for
            // RSA-OAEP-256, each for both the OAEP hash and MGF1.
            let digest = if alg == KeyAlg::RsaOaep {
                Md::sha1()
            } else {
                Md::sha256()
            };
            let mut context = PkeyCtx::new(&key).expect("an RSA context");
            context.decrypt_init().expect("RSA decryption is available");
            context.set_rsa_padding(Padding::PKCS1_OAEP).expect("OAEP is available");
            context.set_rsa_oaep_md(digest).expect("the OAEP digest is available");
            context.set_rsa_mgf1_md(digest).expect("the MGF1 digest is available");
            RawKey::Rsa(context)
        }
        ("EC", _) => {
            let group = nist_group(text("crv"));
            let public = EcKey::from_public_key_affine_coordinates(&group, &number(jwk, "x"), &number(jwk, "y"))
                .expect("a valid EC public key");
            let key = EcKey::from_private_components(&group, &number(jwk, "d"), public.public_key())
                .and_then(PKey::from_ec_key)
                .expect("a valid EC private key");
            RawKey::Ec { key, group }
        }
        ("OKP", _) => {
            RawKey::X25519(PKey::private_key_from_raw_bytes(&member(jwk, "d"), Id::X25519).expect("a valid X25519 key"))
        }
        ("oct", KeyAlg::Dir) => RawKey::Dir(member(jwk, "k")),
        ("oct", _) => RawKey::AesKw(Box::new(
            AesKey::new_decrypt(&member(jwk, "k")).expect("a valid AES key"),
        )),
        (kty, _) => panic!("key type {kty} is not supported here"),
    }
}

fn issuer_key(jwk: &Map<String, Value>) -> IssuerKey {
    match jwk.get("crv").and_then(Value::as_str) {
        Some("Ed25519") => IssuerKey::EdDsa(
            PKey::public_key_from_raw_bytes(&member(jwk, "x"), Id::ED25519).expect("a valid Ed25519 key"),
        ),
        Some(crv) => IssuerKey::Es256(
            EcKey::from_public_key_affine_coordinates(&nist_group(crv), &number(jwk, "x"), &number(jwk, "y"))
                .expect("a valid EC public key"),
        ),
        None => panic!("the issuer key has no curve"),
    }
}

fn split_jwe(token: &str) -> TokenParts {
    let segments: [&str; 5] = token
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .expect("a compact JWE has five segments");
    let header = match serde_json::from_slice(&decode(segments[0])).expect("the header is JSON") {
        Value::Object(members) => members,
        _ => panic!("the header is a JSON object"),
    };
    let epk = header.get("epk").and_then(Value::as_object);
    let coordinate = |name: &str| {
        epk.and_then(|epk| epk.get(name))
            .and_then(Value::as_str)
            .map(decode)
            .unwrap_or_default()
    };
    TokenParts {
        aad: segments[0].as_bytes().to_vec(),
        encrypted_key: decode(segments[1]),
        epk_x: coordinate("x"),
        epk_y: coordinate("y"),
        iv: decode(segments[2]),
        ciphertext: decode(segments[3]),
        tag: decode(segments[4]),
    }
}

fn split_jws(plaintext: &[u8]) -> SignedParts {
    let text = std::str::from_utf8(plaintext).expect("the nested JWS is text");
    let (signing_input, signature) = text.rsplit_once('.').expect("a compact JWS has three segments");
    SignedParts {
        signing_input: signing_input.as_bytes().to_vec(),
        signature: decode(signature),
    }
}

// === Report ===

fn print_table(rows: &[(&Family, Timings)], calls: usize) {
    println!(
        "Single thread, in process, {}. Each family: {TOKENS_PER_FAMILY} tokens in a cycle, \
         median of {ROUNDS} rounds of at least {calls} calls per step after a warm-up pass.",
        openssl::version::version()
    );
    println!("Content: A256GCM. Nested JWT signed with ES256 unless the family names another algorithm.");
    println!();
    println!(
        "| family | content bytes | key op µs | GCM µs | signature µs | raw sum µs | open µs | pipeline µs \
         | pipeline share | open share |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");

    let mut meeting_target = 0;
    for (family, timings) in rows {
        let key_op = timings.key_op.unwrap_or(0.0);
        let raw_sum = key_op + timings.gcm + timings.signature;
        let pipeline_share = 100.0 * raw_sum / timings.pipeline;
        let open_share = 100.0 * (key_op + timings.gcm) / timings.open;
        if pipeline_share >= TARGET_SHARE {
            meeting_target += 1;
        }
        let key_op_cell = timings
            .key_op
            .map_or_else(|| "none".to_owned(), |micros| format!("{micros:.1}"));
        println!(
            "| {} | {} | {key_op_cell} | {:.2} | {:.1} | {raw_sum:.1} | {:.1} | {:.1} | {pipeline_share:.1} % \
             | {open_share:.1} % |",
            family.label(),
            timings.content_bytes,
            timings.gcm,
            timings.signature,
            timings.open,
            timings.pipeline,
        );
    }

    println!();
    println!("raw sum = key op + GCM + signature, the primitives alone through the openssl crate.");
    println!(
        "pipeline share = raw sum / pipeline (Decrypter::decrypt); open share = (key op + GCM) / open (Decrypter::open)."
    );
    println!(
        "{meeting_target} of {} families reach the target pipeline share of {TARGET_SHARE:.0} %.",
        rows.len()
    );
}
