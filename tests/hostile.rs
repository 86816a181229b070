//! Known JOSE attack classes, one test each. Every hostile token is built
//! inside its test, with a one-line recipe, and sent through
//! `Decrypter::decrypt` in-process. Each test asserts the exact rejection
//! and that no call panics. The last test sends some of the tokens over a
//! real gRPC server to check that callers see one opaque status for all.

mod common;

use std::{
    panic::{self, AssertUnwindSafe},
    path::Path,
    sync::OnceLock,
    time::{Duration, Instant},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use common::{AUDIENCE, ISSUER, Issuer, KeyFiles, TestServer, good_claims, test_policy, write_keys};
use josekit::{
    jwe::{self, JweCompression, JweHeader, zip::Def},
    jwk::{Jwk, JwkSet},
    jws::{self, JwsSigner},
};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    claims::ClaimError,
    compact::{DEFAULT_MAX_TOKEN_BYTES, FormatError, MAX_HEADER_BYTES},
    decrypt::{DecryptError, Decrypted, Decrypter, InvalidToken, Policy, Request, TokenInfo},
    pb::DecryptRequest,
    status::DOMAIN,
};
use openssl::{
    hash::MessageDigest,
    pkey::PKey,
    symm::{Cipher, encrypt_aead},
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

/// Time within which the front stage must reject a token, generous so that
/// a loaded machine running a debug build still passes.
const FAST: Duration = Duration::from_millis(50);

/// Protected header of a nested JWT sealed with the shared `dir` key.
const NESTED_HEADER: &str = r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT"}"#;

/// JWS header the issuer's ES256 key signs under.
const JWS_HEADER: &str = r#"{"alg":"ES256","typ":"JWT","kid":"sig-es256"}"#;

/// Keys shared by every test, generated once because RSA key generation is
/// slow.
struct Fixture {
    files: KeyFiles,
    decrypter: Decrypter,
    /// The shared `dir` key, for sealing headers that josekit's header type
    /// cannot express.
    dir_key: Vec<u8>,
    /// The issuer's private ES256 key.
    issuer_signer: Box<dyn JwsSigner>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let files = write_keys(
            &[
                (KeyAlg::EcdhEs, "enc-p256", "P-256"),
                (KeyAlg::EcdhEs, "enc-p384", "P-384"),
                (KeyAlg::RsaOaep256, "enc-rsa", "P-256"),
                (KeyAlg::A128Kw, "enc-a128kw", "P-256"),
                (KeyAlg::A256Kw, "enc-a256kw", "P-256"),
                (KeyAlg::Dir, "enc-dir", "P-256"),
            ],
            &[(SigAlg::ES256, "sig-es256")],
        );
        let decrypter = common::decrypter(&files, test_policy());
        let dir_jwk = jwk_from(&files.private_keys, "enc-dir");
        let dir_key = Base64UrlUnpadded::decode_vec(string_parameter(&dir_jwk, "k")).expect("k is base64url");
        let issuer_signer = Box::new(
            jws::ES256
                .signer_from_jwk(&jwk_from(&files.issuer_private, "sig-es256"))
                .expect("ES256 signer"),
        );
        Fixture {
            files,
            decrypter,
            dir_key,
            issuer_signer,
        }
    })
}

// --- Building tokens ---

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
    bytes
}

fn jwk_from(path: &Path, kid: &str) -> Jwk {
    let bytes = std::fs::read(path).expect("read JWK Set");
    let set = JwkSet::from_bytes(&bytes).expect("parse JWK Set");
    set.get(kid)
        .first()
        .map(|jwk| (*jwk).clone())
        .unwrap_or_else(|| panic!("no key {kid} in {}", path.display()))
}

fn string_parameter<'j>(jwk: &'j Jwk, name: &str) -> &'j str {
    jwk.parameter(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("JWK has no string member {name}"))
}

/// Encrypts `payload` with the shared `dir` key under exactly `header`,
/// which may be any text. A hostile header thus still makes a correctly
/// encrypted token, and only jwed's header checks can reject it.
fn seal_dir(header: &str, payload: &[u8]) -> String {
    let protected = b64(header.as_bytes());
    let iv = random_bytes(12);
    let mut tag = [0u8; 16];
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        &fixture().dir_key,
        Some(&iv),
        protected.as_bytes(),
        payload,
        &mut tag,
    )
    .expect("AES-256-GCM");
    format!("{protected}..{}.{}.{}", b64(&iv), b64(&ciphertext), b64(&tag))
}

/// Encrypts `payload` as a nested JWT to jwed's public P-256 key with
/// josekit, as anyone holding the public key can.
fn seal_to_public_key(payload: &[u8]) -> String {
    let encrypter = jwe::ECDH_ES
        .encrypter_from_jwk(&jwk_from(&fixture().files.public_keys, "enc-p256"))
        .expect("encrypter");
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id("enc-p256");
    header.set_content_type("JWT");
    jwe::serialize_compact(payload, &header, &encrypter).expect("encrypt")
}

/// Builds a token with `header` and random segments of these decoded lengths:
/// encrypted key, IV, ciphertext and tag. Its tag never verifies, so any
/// error other than `DecryptionFailed` comes from a check before decryption.
fn random_body(header: &str, lengths: [usize; 4]) -> String {
    let mut segments = vec![b64(header.as_bytes())];
    segments.extend(lengths.iter().map(|&len| b64(&random_bytes(len))));
    segments.join(".")
}

fn with_segment(token: &str, index: usize, bytes: &[u8]) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    segments[index] = b64(bytes);
    segments.join(".")
}

fn decoded_segment(token: &str, index: usize) -> Vec<u8> {
    let segment = token.split('.').nth(index).expect("segment");
    Base64UrlUnpadded::decode_vec(segment).expect("segment is base64url")
}

/// Signs `payload` under exactly `header`, which may be any text.
fn sign_raw(signer: &dyn JwsSigner, header: &str, payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload));
    let signature = signer.sign(signing_input.as_bytes()).expect("sign");
    format!("{signing_input}.{}", b64(&signature))
}

fn signed(payload: &[u8]) -> String {
    sign_raw(fixture().issuer_signer.as_ref(), JWS_HEADER, payload)
}

fn signed_claims(claims: &Value) -> String {
    signed(claims.to_string().as_bytes())
}

fn good_claims_value() -> Value {
    Value::Object(good_claims())
}

/// Mints good claims signed with the issuer's ES256 key and encrypted to
/// the key `kid` with `enc`.
fn minted(kid: &str, enc: ContentEnc) -> String {
    Issuer::new(&fixture().files, "sig-es256", kid).mint(&good_claims(), enc)
}

// --- Running tokens ---

/// Runs `Decrypter::decrypt` on `token` with no requested audience or
/// scopes, and fails the test if the call panics.
fn decrypt_with(decrypter: &Decrypter, case: &str, token: &str) -> Result<Decrypted, DecryptError> {
    let request = Request {
        token,
        audience: None,
        required_scopes: &[],
    };
    let mut info = TokenInfo::default();
    match panic::catch_unwind(AssertUnwindSafe(|| {
        decrypter.decrypt(request, common::now(), &mut info)
    })) {
        Ok(result) => result,
        Err(_) => panic!("{case}: decrypt panicked"),
    }
}

fn rejection_with(decrypter: &Decrypter, case: &str, token: &str) -> DecryptError {
    match decrypt_with(decrypter, case, token) {
        Ok(decrypted) => panic!("{case}: the token was accepted with claims {}", decrypted.claims_json),
        Err(error) => error,
    }
}

fn rejection(case: &str, token: &str) -> DecryptError {
    rejection_with(&fixture().decrypter, case, token)
}

/// Decrypts `token` three times, expecting a rejection, and returns the
/// error and the shortest time, so that one preempted call on a loaded
/// machine does not fail the test.
fn timed_rejection_with(decrypter: &Decrypter, case: &str, token: &str) -> (DecryptError, Duration) {
    let mut fastest = Duration::MAX;
    let mut error = None;
    for _ in 0..3 {
        let started = Instant::now();
        error = Some(rejection_with(decrypter, case, token));
        fastest = fastest.min(started.elapsed());
    }
    (error.expect("three attempts"), fastest)
}

fn accept_with(decrypter: &Decrypter, case: &str, token: &str) {
    if let Err(error) = decrypt_with(decrypter, case, token) {
        panic!("{case}: the token was rejected: {error:?}");
    }
}

fn jwe_format(error: FormatError) -> DecryptError {
    DecryptError::Invalid(InvalidToken::Format(error))
}

fn jws_format(error: FormatError) -> DecryptError {
    DecryptError::Invalid(InvalidToken::NestedFormat(error))
}

fn invalid(cause: InvalidToken) -> DecryptError {
    DecryptError::Invalid(cause)
}

fn not_allowed(member: &str) -> DecryptError {
    jwe_format(FormatError::MemberNotAllowed(member.into()))
}

// --- Tests ---

#[test]
fn hand_built_tokens_are_accepted() {
    // Recipe: the helpers below with nothing hostile, so that each later
    // rejection comes from the one hostile part.
    let claims = signed_claims(&good_claims_value());
    accept_with(
        &fixture().decrypter,
        "sealed with the dir key",
        &seal_dir(NESTED_HEADER, claims.as_bytes()),
    );
    accept_with(
        &fixture().decrypter,
        "sealed to the public key",
        &seal_to_public_key(claims.as_bytes()),
    );
}

#[test]
fn deflate_bomb_is_rejected_before_inflation() {
    // Recipe: zip "DEF" over 10 MiB of zeros, deflated to fit a 16 KiB token and encrypted with the dir key.
    let inflated_len = 10 * 1024 * 1024;
    let compressed = Def.compress(&vec![0u8; inflated_len]).expect("deflate");
    assert_eq!(
        Def.decompress(&compressed).expect("inflate").len(),
        inflated_len,
        "the payload must be a real bomb"
    );
    let header = r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","zip":"DEF"}"#;
    let token = seal_dir(header, &compressed);
    assert!(
        token.len() <= DEFAULT_MAX_TOKEN_BYTES,
        "the bomb must pass the size check, but has {} bytes",
        token.len()
    );

    let (error, elapsed) = timed_rejection_with(&fixture().decrypter, "zip DEF", &token);

    assert_eq!(error, not_allowed("zip"), "zip DEF");
    assert!(elapsed < FAST, "zip DEF took {elapsed:?}");
}

#[test]
fn pbes2_is_rejected_fast() {
    // Recipe: a PBES2 header with p2c 10^9 and a 16-byte p2s, aimed at the A256KW key.
    let salt = b64(&random_bytes(16));
    let cases = [
        (
            "p2s before p2c",
            format!(
                r#"{{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","kid":"enc-a256kw","p2s":"{salt}","p2c":1000000000}}"#
            ),
            not_allowed("p2s"),
        ),
        (
            "p2c before p2s",
            format!(
                r#"{{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","kid":"enc-a128kw","p2c":1000000000,"p2s":"{salt}"}}"#
            ),
            not_allowed("p2c"),
        ),
        (
            "PBES2 alg alone",
            r#"{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","kid":"enc-a256kw"}"#.to_owned(),
            jwe_format(FormatError::UnsupportedAlgorithm("alg")),
        ),
    ];
    for (case, header, expected) in cases {
        let token = random_body(&header, [40, 12, 32, 16]);
        let (error, elapsed) = timed_rejection_with(&fixture().decrypter, case, &token);

        assert_eq!(error, expected, "{case}");
        assert!(elapsed < FAST, "{case} took {elapsed:?}");
    }
}

#[test]
fn invalid_curve_epk_fails_decryption() {
    // Recipe: an ECDH-ES epk with coordinates of the right length that are not a P-256 point.
    let public = jwk_from(&fixture().files.public_keys, "enc-p256");
    let mut y_off_curve = Base64UrlUnpadded::decode_vec(string_parameter(&public, "y")).expect("y");
    y_off_curve[31] ^= 1;
    let mut coordinate_one = [0u8; 32];
    coordinate_one[31] = 1;

    let cases = [
        ("x=1, y=1", b64(&coordinate_one), b64(&coordinate_one)),
        ("x=0, y=0", b64(&[0u8; 32]), b64(&[0u8; 32])),
        (
            "real x, y with its last bit flipped",
            string_parameter(&public, "x").to_owned(),
            b64(&y_off_curve),
        ),
    ];
    for (case, x, y) in cases {
        let header = json!({
            "alg": "ECDH-ES",
            "enc": "A256GCM",
            "kid": "enc-p256",
            "epk": {"kty": "EC", "crv": "P-256", "x": x, "y": y},
        });
        let token = random_body(&header.to_string(), [0, 12, 32, 16]);
        assert_eq!(
            rejection(case, &token),
            invalid(InvalidToken::DecryptionFailed),
            "{case}"
        );
    }
}

#[test]
fn epk_on_another_curve_is_key_mismatch() {
    // Recipe: a valid point of one curve in the epk of a token for a key on another curve.
    let p256 = jwk_from(&fixture().files.public_keys, "enc-p256");
    let p384 = jwk_from(&fixture().files.public_keys, "enc-p384");
    let cases = [
        ("P-256 point for the P-384 key", &p256, "enc-p384"),
        ("P-384 point for the P-256 key", &p384, "enc-p256"),
    ];
    for (case, point, kid) in cases {
        let header = json!({
            "alg": "ECDH-ES",
            "enc": "A256GCM",
            "kid": kid,
            "epk": {
                "kty": "EC",
                "crv": string_parameter(point, "crv"),
                "x": string_parameter(point, "x"),
                "y": string_parameter(point, "y"),
            },
        });
        let token = random_body(&header.to_string(), [0, 12, 32, 16]);
        let expected = invalid(InvalidToken::KeyMismatch("epk curve differs from the key's curve"));
        assert_eq!(rejection(case, &token), expected, "{case}");
    }
}

#[test]
fn rsa1_5_is_unsupported() {
    // Recipe: josekit encrypts to jwed's RSA public key with RSA1_5 instead of its pinned RSA-OAEP-256.
    let mut public = jwk_from(&fixture().files.public_keys, "enc-rsa").as_ref().clone();
    public.remove("alg");
    #[expect(deprecated, reason = "josekit deprecates RSA1_5, which is the point of this attack")]
    let encrypter = jwe::RSA1_5
        .encrypter_from_jwk(&Jwk::from_map(public).expect("JWK"))
        .expect("RSA1_5 encrypter");
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id("enc-rsa");
    header.set_content_type("JWT");
    let token =
        jwe::serialize_compact(signed_claims(&good_claims_value()).as_bytes(), &header, &encrypter).expect("encrypt");

    assert_eq!(
        rejection("RSA1_5", &token),
        jwe_format(FormatError::UnsupportedAlgorithm("alg")),
        "RSA1_5"
    );
}

#[test]
fn truncated_and_extended_tags_are_rejected() {
    // Recipe: a valid A256GCM token whose 16-byte tag is cut to n bytes (josekit 0.10.3 accepts 1 byte) or extended by one.
    let token = minted("enc-p256", ContentEnc::A256Gcm);
    accept_with(&fixture().decrypter, "unchanged tag", &token);
    let tag = decoded_segment(&token, 4);

    for len in [0, 1, 4, 8, 12, 15, 17] {
        let case = format!("{len}-byte tag");
        let mut changed = tag.clone();
        changed.resize(len, 0);
        let expected = jwe_format(FormatError::SegmentLength {
            segment: "authentication tag",
            actual: len,
            expected: 16,
        });
        assert_eq!(rejection(&case, &with_segment(&token, 4, &changed)), expected, "{case}");
    }
}

#[test]
fn josekit_panic_triggers_are_rejected() {
    // Recipe: valid tokens with an empty or 8-byte IV, or a 0- or 7-byte wrapped key. josekit 0.10.3 panics on all but the 0-byte key.
    let cbc_policy = Policy {
        content_encryption: ContentEnc::ALL.to_vec(),
        ..test_policy()
    };
    let cbc_decrypter = common::decrypter(&fixture().files, cbc_policy);

    let gcm = minted("enc-p256", ContentEnc::A256Gcm);
    let cbc = minted("enc-p256", ContentEnc::A128CbcHs256);
    let key_wrap = minted("enc-a128kw", ContentEnc::A128Gcm);
    accept_with(&cbc_decrypter, "unchanged A128CBC-HS256 token", &cbc);
    accept_with(&fixture().decrypter, "unchanged A128KW token", &key_wrap);

    let iv = |actual, expected| {
        jwe_format(FormatError::SegmentLength {
            segment: "initialization vector",
            actual,
            expected,
        })
    };
    let key = |actual| {
        jwe_format(FormatError::SegmentLength {
            segment: "encrypted key",
            actual,
            expected: 24,
        })
    };
    let cases = [
        ("empty IV", with_segment(&gcm, 2, &[]), iv(0, 12)),
        ("8-byte CBC IV", with_segment(&cbc, 2, &random_bytes(8)), iv(8, 16)),
        ("empty A128KW encrypted key", with_segment(&key_wrap, 1, &[]), key(0)),
        (
            "7-byte A128KW encrypted key",
            with_segment(&key_wrap, 1, &decoded_segment(&key_wrap, 1)[..7]),
            key(7),
        ),
    ];
    for (case, token, expected) in cases {
        assert_eq!(rejection_with(&cbc_decrypter, case, &token), expected, "{case}");
    }
}

#[test]
fn crit_header_is_rejected() {
    // Recipe: correctly encrypted tokens whose header marks extensions as critical.
    let claims = signed_claims(&good_claims_value());
    let cases = [
        (
            "crit [\"exp\"]",
            r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","crit":["exp"],"exp":1}"#,
        ),
        (
            "crit []",
            r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","crit":[]}"#,
        ),
        (
            "crit [\"b64\"]",
            r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","crit":["b64"],"b64":false}"#,
        ),
    ];
    for (case, header) in cases {
        assert_eq!(
            rejection(case, &seal_dir(header, claims.as_bytes())),
            not_allowed("crit"),
            "{case}"
        );
    }

    let inner = sign_raw(
        fixture().issuer_signer.as_ref(),
        r#"{"alg":"ES256","kid":"sig-es256","crit":["b64"],"b64":false}"#,
        good_claims_value().to_string().as_bytes(),
    );
    let expected = jws_format(FormatError::MemberNotAllowed("crit".into()));
    assert_eq!(
        rejection("crit in the JWS", &seal_to_public_key(inner.as_bytes())),
        expected,
        "crit in the JWS"
    );
}

#[test]
fn unsigned_and_hmac_inner_jws_are_rejected() {
    // Recipe: an inner JWS with alg none, or HS256 keyed with the issuer's public key, sealed to the public key.
    let payload = b64(good_claims_value().to_string().as_bytes());
    let hmac_input = format!("{}.{payload}", b64(br#"{"alg":"HS256","typ":"JWT","kid":"sig-es256"}"#));
    let public_key_text = std::fs::read(&fixture().files.issuer_public).expect("issuer public keys");
    let hmac_key = PKey::hmac(&public_key_text).expect("HMAC key");
    let mut hmac = openssl::sign::Signer::new(MessageDigest::sha256(), &hmac_key).expect("HMAC");
    let mac = hmac.sign_oneshot_to_vec(hmac_input.as_bytes()).expect("HMAC-SHA256");

    let cases = [
        (
            "alg none",
            format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg None",
            format!("{}.{payload}.", b64(br#"{"alg":"None","typ":"JWT"}"#)),
        ),
        (
            "alg none with kid",
            format!("{}.{payload}.", b64(br#"{"alg":"none","kid":"sig-es256"}"#)),
        ),
        ("HS256 keyed with the public key", format!("{hmac_input}.{}", b64(&mac))),
    ];
    for (case, inner) in cases {
        let expected = jws_format(FormatError::UnsupportedAlgorithm("alg"));
        assert_eq!(
            rejection(case, &seal_to_public_key(inner.as_bytes())),
            expected,
            "{case}"
        );
    }
}

#[test]
fn jwe_nested_in_jwe_is_rejected() {
    // Recipe: cty JWT whose payload is another valid 5-segment JWE instead of a JWS.
    let inner = minted("enc-p256", ContentEnc::A256Gcm);
    let token = seal_to_public_key(inner.as_bytes());
    assert_eq!(
        rejection("JWE in JWE", &token),
        jws_format(FormatError::SegmentCount { expected: 3 }),
        "JWE in JWE"
    );
}

#[test]
fn stripped_signature_is_rejected() {
    // Recipe: a valid inner JWS whose signature segment is emptied, dropped, cut or zeroed.
    let inner = signed_claims(&good_claims_value());
    let (signing_input, signature) = inner.rsplit_once('.').expect("JWS");
    let signature = Base64UrlUnpadded::decode_vec(signature).expect("signature");

    let cases = [
        (
            "empty signature",
            format!("{signing_input}."),
            invalid(InvalidToken::BadSignature),
        ),
        (
            "no signature segment",
            signing_input.to_owned(),
            jws_format(FormatError::SegmentCount { expected: 3 }),
        ),
        (
            "63-byte signature",
            format!("{signing_input}.{}", b64(&signature[..63])),
            invalid(InvalidToken::BadSignature),
        ),
        (
            "zero signature",
            format!("{signing_input}.{}", b64(&[0u8; 64])),
            invalid(InvalidToken::BadSignature),
        ),
    ];
    for (case, inner, expected) in cases {
        assert_eq!(
            rejection(case, &seal_to_public_key(inner.as_bytes())),
            expected,
            "{case}"
        );
    }
}

#[test]
fn jws_signed_by_unknown_key_is_rejected() {
    // Recipe: an inner JWS signed by a stranger's key, under the issuer's kid, another kid or no kid.
    let stranger = write_keys(&[], &[(SigAlg::ES256, "sig-es256"), (SigAlg::EdDSA, "sig-eddsa")]);
    let es256 = jws::ES256
        .signer_from_jwk(&jwk_from(&stranger.issuer_private, "sig-es256"))
        .expect("ES256 signer");
    let eddsa = jws::EdDSA
        .signer_from_jwk(&jwk_from(&stranger.issuer_private, "sig-eddsa"))
        .expect("EdDSA signer");
    let claims = good_claims_value().to_string();

    let cases: [(&str, &dyn JwsSigner, &str, InvalidToken); 4] = [
        (
            "ES256 under the issuer's kid",
            &es256,
            JWS_HEADER,
            InvalidToken::BadSignature,
        ),
        (
            "ES256 without kid",
            &es256,
            r#"{"alg":"ES256","typ":"JWT"}"#,
            InvalidToken::BadSignature,
        ),
        (
            "ES256 under an unknown kid",
            &es256,
            r#"{"alg":"ES256","kid":"sig-stranger"}"#,
            InvalidToken::UnknownIssuerKey,
        ),
        (
            "EdDSA under the issuer's kid",
            &eddsa,
            r#"{"alg":"EdDSA","kid":"sig-es256"}"#,
            InvalidToken::SignatureAlgorithmMismatch {
                header: SigAlg::EdDSA,
                pinned: SigAlg::ES256,
            },
        ),
    ];
    for (case, signer, header, expected) in cases {
        let inner = sign_raw(signer, header, claims.as_bytes());
        assert_eq!(
            rejection(case, &seal_to_public_key(inner.as_bytes())),
            invalid(expected),
            "{case}"
        );
    }
}

#[test]
fn cty_jwt_is_matched_case_insensitively() {
    // Recipe: the same signed JWT sealed under cty "JWT" in other cases, and with cty left out.
    let claims = signed_claims(&good_claims_value());
    for cty in ["JWT", "jwt", "Jwt", "application/jwt", "Application/JWT"] {
        let header = format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"{cty}"}}"#);
        accept_with(
            &fixture().decrypter,
            &format!("cty {cty}"),
            &seal_dir(&header, claims.as_bytes()),
        );
    }

    let without_cty = seal_dir(r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir"}"#, claims.as_bytes());
    assert_eq!(
        rejection("no cty", &without_cty),
        invalid(InvalidToken::SignatureRequired),
        "no cty"
    );
}

#[test]
fn many_segments_are_rejected_fast() {
    // Recipe: strings made mostly of dots, up to and beyond the token size limit.
    let large_policy = Policy {
        max_token_bytes: 2 * 1024 * 1024,
        ..test_policy()
    };
    let large_decrypter = common::decrypter(&fixture().files, large_policy);
    let mut sixteen_kib: String = "A.".repeat(4000);
    sixteen_kib.push_str(&"A".repeat(DEFAULT_MAX_TOKEN_BYTES - sixteen_kib.len()));
    assert_eq!(sixteen_kib.len(), DEFAULT_MAX_TOKEN_BYTES);

    // Counting a million separators takes about 30 ms in a debug build on
    // a 2-CPU test machine, so that case gets a looser, linear-time bound.
    let linear = Duration::from_millis(250);
    let too_large = jwe_format(FormatError::TooLarge {
        max: DEFAULT_MAX_TOKEN_BYTES,
    });
    let segment_count = jwe_format(FormatError::SegmentCount { expected: 5 });
    let cases = [
        (
            "1_000_000 dots",
            &fixture().decrypter,
            ".".repeat(1_000_000),
            too_large,
            FAST,
        ),
        (
            "16 KiB with 4000 dots",
            &fixture().decrypter,
            sixteen_kib,
            segment_count.clone(),
            FAST,
        ),
        (
            "1_000_000 dots under a 2 MiB limit",
            &large_decrypter,
            ".".repeat(1_000_000),
            segment_count.clone(),
            linear,
        ),
        (
            "six segments",
            &fixture().decrypter,
            format!("{}.AAAA", minted("enc-p256", ContentEnc::A256Gcm)),
            segment_count,
            FAST,
        ),
    ];
    for (case, decrypter, token, expected, bound) in cases {
        let (error, elapsed) = timed_rejection_with(decrypter, case, &token);

        assert_eq!(error, expected, "{case}");
        assert!(elapsed < bound, "{case} took {elapsed:?}");
    }
}

#[test]
fn duplicate_members_are_rejected() {
    // Recipe: correctly encrypted and signed tokens whose JSON repeats a member with another value.
    let claims = signed_claims(&good_claims_value());
    let headers = [
        (
            "alg twice",
            r#"{"alg":"dir","alg":"RSA1_5","enc":"A256GCM","kid":"enc-dir","cty":"JWT"}"#,
        ),
        (
            "kid twice",
            r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","kid":"enc-rsa","cty":"JWT"}"#,
        ),
        (
            "enc twice",
            r#"{"alg":"dir","enc":"A256GCM","enc":"A128GCM","kid":"enc-dir","cty":"JWT"}"#,
        ),
        (
            "cty twice",
            r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","cty":"json"}"#,
        ),
    ];
    for (case, header) in headers {
        assert_eq!(
            rejection(case, &seal_dir(header, claims.as_bytes())),
            jwe_format(FormatError::HeaderJson),
            "{case}"
        );
    }

    let payload = good_claims_value().to_string();
    let twice_alg = sign_raw(
        fixture().issuer_signer.as_ref(),
        r#"{"alg":"ES256","alg":"none","kid":"sig-es256"}"#,
        payload.as_bytes(),
    );
    let case = "alg twice in the JWS";
    assert_eq!(
        rejection(case, &seal_dir(NESTED_HEADER, twice_alg.as_bytes())),
        jws_format(FormatError::HeaderJson),
        "{case}"
    );

    let twice_sub = payload.replacen('{', r#"{"sub":"admin","#, 1);
    let case = "sub twice in the claims";
    let token = seal_dir(NESTED_HEADER, signed(twice_sub.as_bytes()).as_bytes());
    assert_eq!(rejection(case, &token), invalid(InvalidToken::ClaimsNotJson), "{case}");
}

#[test]
fn key_pointing_header_members_are_rejected() {
    // Recipe: correctly encrypted tokens whose header points at a key or certificate held elsewhere.
    let stranger_key = jwk_from(&fixture().files.public_keys, "enc-p384");
    let certificate = b64(&random_bytes(300)).replace(['-', '_'], "A");
    let pointers = [
        ("jku", json!("https://keys.attacker.example/jwks.json")),
        ("jwk", Value::Object(stranger_key.as_ref().clone())),
        ("x5u", json!("https://keys.attacker.example/cert.pem")),
        ("x5c", json!([certificate])),
    ];
    let claims = signed_claims(&good_claims_value());
    for (member, value) in &pointers {
        let mut header = json!({"alg": "dir", "enc": "A256GCM", "kid": "enc-dir", "cty": "JWT"});
        header[*member] = value.clone();
        let case = format!("{member} in the JWE header");
        assert_eq!(
            rejection(&case, &seal_dir(&header.to_string(), claims.as_bytes())),
            not_allowed(member),
            "{case}"
        );
    }

    let payload = good_claims_value().to_string();
    for (member, value) in &pointers {
        let mut header = json!({"alg": "ES256", "kid": "sig-es256"});
        header[*member] = value.clone();
        let inner = sign_raw(
            fixture().issuer_signer.as_ref(),
            &header.to_string(),
            payload.as_bytes(),
        );
        let case = format!("{member} in the JWS header");
        let expected = jws_format(FormatError::MemberNotAllowed((*member).into()));
        assert_eq!(
            rejection(&case, &seal_dir(NESTED_HEADER, inner.as_bytes())),
            expected,
            "{case}"
        );
    }
}

#[test]
fn oversized_token_and_header_are_rejected() {
    // Recipe: a valid token one byte over a limit set just below it, and headers just over 4 KiB.
    let token = minted("enc-p256", ContentEnc::A256Gcm);
    let at_limit = common::decrypter(
        &fixture().files,
        Policy {
            max_token_bytes: token.len(),
            ..test_policy()
        },
    );
    let below = common::decrypter(
        &fixture().files,
        Policy {
            max_token_bytes: token.len() - 1,
            ..test_policy()
        },
    );
    accept_with(&at_limit, "token of exactly max_token_bytes", &token);
    let expected = jwe_format(FormatError::TooLarge { max: token.len() - 1 });
    assert_eq!(
        rejection_with(&below, "token one byte over", &token),
        expected,
        "token one byte over"
    );

    let over_default = format!("{}....", "A".repeat(DEFAULT_MAX_TOKEN_BYTES - 3));
    assert_eq!(over_default.len(), DEFAULT_MAX_TOKEN_BYTES + 1);
    let expected = jwe_format(FormatError::TooLarge {
        max: DEFAULT_MAX_TOKEN_BYTES,
    });
    assert_eq!(
        rejection("16 KiB plus one byte", &over_default),
        expected,
        "16 KiB plus one byte"
    );

    // The header is padded with an unknown member to an exact decoded size.
    let header_of_len = |len: usize| {
        let prefix = r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","pad":""#;
        format!("{prefix}{}\"}}", "x".repeat(len - prefix.len() - 2))
    };
    let claims = signed_claims(&good_claims_value());
    let large_decrypter = common::decrypter(
        &fixture().files,
        Policy {
            max_token_bytes: 1024 * 1024,
            ..test_policy()
        },
    );
    let too_large = jwe_format(FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES });
    let cases = [
        (
            "header of exactly 4096 bytes",
            header_of_len(MAX_HEADER_BYTES),
            not_allowed("pad"),
        ),
        (
            "header of 4097 bytes",
            header_of_len(MAX_HEADER_BYTES + 1),
            too_large.clone(),
        ),
        ("header of 100 KiB", header_of_len(100 * 1024), too_large),
    ];
    for (case, header, expected) in cases {
        let (error, elapsed) = timed_rejection_with(&large_decrypter, case, &seal_dir(&header, claims.as_bytes()));

        assert_eq!(error, expected, "{case}");
        assert!(elapsed < FAST, "{case} took {elapsed:?}");
    }
}

#[test]
fn deeply_nested_json_is_rejected() {
    // Recipe: correctly signed claims nested 10000 deep, and a header nested 2000 deep.
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let in_claims = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","deep":{arrays}}}"#);
    // Base64 twice over 20 KB of brackets needs about 36 KB, beyond the default limit.
    let decrypter = common::decrypter(
        &fixture().files,
        Policy {
            max_token_bytes: 256 * 1024,
            ..test_policy()
        },
    );

    let cases = [
        ("10000 nested arrays", arrays),
        ("10000 nested objects", objects),
        ("10000 nested arrays in a claim", in_claims),
    ];
    for (case, payload) in cases {
        let token = seal_dir(NESTED_HEADER, signed(payload.as_bytes()).as_bytes());
        assert_eq!(
            rejection_with(&decrypter, case, &token),
            invalid(InvalidToken::ClaimsNotJson),
            "{case}"
        );
    }

    let header = format!(
        r#"{{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","x":{}{}}}"#,
        "[".repeat(2000),
        "]".repeat(2000)
    );
    let token = seal_dir(&header, signed_claims(&good_claims_value()).as_bytes());
    assert_eq!(
        rejection("2000 nested arrays in the header", &token),
        jwe_format(FormatError::HeaderJson),
        "2000 nested arrays in the header"
    );
}

#[test]
fn exp_of_wrong_type_or_range_is_rejected() {
    // Recipe: correctly signed claims whose exp is huge, negative, a string, null or absent.
    let now = common::now();
    let cases = [
        ("exp 1e20", json!(1e20), ClaimError::Malformed("exp")),
        ("exp -1e20", json!(-1e20), ClaimError::Malformed("exp")),
        ("exp u64::MAX", json!(u64::MAX), ClaimError::Malformed("exp")),
        ("exp \"123\"", json!("123"), ClaimError::Malformed("exp")),
        ("exp null", Value::Null, ClaimError::Malformed("exp")),
        (
            "exp i64::MAX",
            json!(i64::MAX),
            ClaimError::LifetimeTooLong { max: 3600 },
        ),
        ("exp i64::MIN", json!(i64::MIN), ClaimError::Expired),
        ("exp far in the past", json!(now - 3600), ClaimError::Expired),
    ];
    for (case, exp, expected) in cases {
        let mut claims = good_claims_value();
        claims["exp"] = exp;
        let token = seal_to_public_key(signed_claims(&claims).as_bytes());
        assert_eq!(rejection(case, &token), DecryptError::Claims(expected), "{case}");
    }

    let mut claims = good_claims_value();
    claims.as_object_mut().expect("object").remove("exp");
    let token = seal_to_public_key(signed_claims(&claims).as_bytes());
    assert_eq!(
        rejection("exp missing", &token),
        DecryptError::Claims(ClaimError::Missing("exp")),
        "exp missing"
    );
}

#[test]
fn issuer_must_match_exactly() {
    // Recipe: correctly signed claims whose iss only resembles the configured issuer.
    let cases = [
        (
            "issuer with a suffix",
            json!(format!("{ISSUER}.evil")),
            ClaimError::IssuerMismatch,
        ),
        (
            "issuer with a prefix",
            json!(format!("evil.{ISSUER}")),
            ClaimError::IssuerMismatch,
        ),
        (
            "issuer with a trailing slash",
            json!(format!("{ISSUER}/")),
            ClaimError::IssuerMismatch,
        ),
        (
            "issuer in upper case",
            json!(ISSUER.to_uppercase()),
            ClaimError::IssuerMismatch,
        ),
        ("issuer in an array", json!([ISSUER]), ClaimError::Malformed("iss")),
        ("issuer null", Value::Null, ClaimError::Malformed("iss")),
    ];
    for (case, iss, expected) in cases {
        let mut claims = good_claims_value();
        claims["iss"] = iss;
        let token = seal_to_public_key(signed_claims(&claims).as_bytes());
        assert_eq!(rejection(case, &token), DecryptError::Claims(expected), "{case}");
    }
}

#[test]
fn audience_is_a_string_or_array_of_strings() {
    // Recipe: correctly signed claims with aud in each JSON form.
    let accepted = [
        ("aud string", json!(AUDIENCE)),
        ("aud array", json!([AUDIENCE])),
        ("aud array, match second", json!(["billing-api", AUDIENCE])),
    ];
    for (case, aud) in accepted {
        let mut claims = good_claims_value();
        claims["aud"] = aud;
        accept_with(
            &fixture().decrypter,
            case,
            &seal_to_public_key(signed_claims(&claims).as_bytes()),
        );
    }

    let rejected = [
        ("aud number", json!(42), ClaimError::Malformed("aud")),
        ("aud array of numbers", json!([42]), ClaimError::Malformed("aud")),
        ("aud object", json!({"aud": AUDIENCE}), ClaimError::Malformed("aud")),
        (
            "aud with a suffix",
            json!(format!("{AUDIENCE}-evil")),
            ClaimError::AudienceMismatch,
        ),
    ];
    for (case, aud, expected) in rejected {
        let mut claims = good_claims_value();
        claims["aud"] = aud;
        let token = seal_to_public_key(signed_claims(&claims).as_bytes());
        assert_eq!(rejection(case, &token), DecryptError::Claims(expected), "{case}");
    }
}

#[tokio::test]
async fn grpc_returns_one_status_for_hostile_tokens() {
    // Recipe: five of the tokens above, sent over a real socket.
    let compressed = Def.compress(&vec![0u8; 1024 * 1024]).expect("deflate");
    let mut coordinate_one = [0u8; 32];
    coordinate_one[31] = 1;
    let invalid_curve = json!({
        "alg": "ECDH-ES", "enc": "A256GCM", "kid": "enc-p256",
        "epk": {"kty": "EC", "crv": "P-256", "x": b64(&coordinate_one), "y": b64(&coordinate_one)},
    });
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(good_claims_value().to_string().as_bytes())
    );
    let claims = signed_claims(&good_claims_value());
    let tokens = [
        (
            "deflate bomb",
            seal_dir(
                r#"{"alg":"dir","enc":"A256GCM","kid":"enc-dir","cty":"JWT","zip":"DEF"}"#,
                &compressed,
            ),
        ),
        (
            "PBES2",
            random_body(
                r#"{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","kid":"enc-a256kw","p2s":"AAAAAAAAAAAAAAAAAAAAAA","p2c":1000000000}"#,
                [40, 12, 32, 16],
            ),
        ),
        (
            "invalid curve",
            random_body(&invalid_curve.to_string(), [0, 12, 32, 16]),
        ),
        ("alg none in the JWS", seal_to_public_key(alg_none.as_bytes())),
        (
            "alg twice",
            seal_dir(
                r#"{"alg":"dir","alg":"RSA1_5","enc":"A256GCM","kid":"enc-dir","cty":"JWT"}"#,
                claims.as_bytes(),
            ),
        ),
    ];

    let server = TestServer::start(common::decrypter(&fixture().files, test_policy())).await;
    for (case, token) in tokens {
        let request = DecryptRequest {
            token,
            ..DecryptRequest::default()
        };
        let status = server.client().await.decrypt(request).await.expect_err(case);
        let details = status.get_error_details();
        let info = details.error_info().unwrap_or_else(|| panic!("{case}: no ErrorInfo"));
        assert_eq!(status.code(), Code::Unauthenticated, "{case}");
        assert_eq!(info.domain, DOMAIN, "{case}");
        assert_eq!(info.reason, "TOKEN_INVALID", "{case}");
        assert_eq!(status.message(), "token is invalid", "{case}");
    }
    server.stop().await;
}
