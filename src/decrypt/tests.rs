use super::*;

use std::time::{SystemTime, UNIX_EPOCH};

use josekit::{jwe as jose_jwe, jwk::Jwk, jws as jose_jws};
use serde_json::json;

use crate::{
    claims::ClaimError,
    jwk::RawJwkSet,
    keygen::{GeneratedKey, KeySpec, jwk_set_text},
    mint::{self, Recipient, Signer},
};

/// Key id of the decryption key most tests use.
const ENC_KID: &str = "enc-1";

/// Key id of the issuer key most tests use.
const ISSUER_KID: &str = "issuer-1";

/// JWK members that hold private key material.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

// === helpers ===

/// Returns the current time in seconds since the epoch.
fn now() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(elapsed.as_secs()).expect("the time fits in i64")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// Generates a decryption key. `crv` applies to the ECDH-ES family.
fn decryption_key(alg: KeyAlg, kid: &str, crv: &str) -> GeneratedKey {
    GeneratedKey::generate(KeySpec::Decryption(alg), kid, crv, 2048, 32).expect("key options are valid")
}

fn rsa_decryption_key(alg: KeyAlg, kid: &str, bits: u32) -> GeneratedKey {
    GeneratedKey::generate(KeySpec::Decryption(alg), kid, "", bits, 32).expect("key options are valid")
}

/// Generates a `dir` key of `size` bytes.
fn dir_key(kid: &str, size: usize) -> GeneratedKey {
    GeneratedKey::generate(KeySpec::Decryption(KeyAlg::Dir), kid, "", 2048, size).expect("key options are valid")
}

fn signing_key(alg: SigAlg, kid: &str) -> GeneratedKey {
    GeneratedKey::generate(KeySpec::Signing(alg), kid, "", 2048, 32).expect("key options are valid")
}

fn private_map(key: &GeneratedKey) -> Map<String, Value> {
    object(serde_json::from_str(key.expose_private_json()).expect("a generated JWK is JSON"))
}

fn with_member(mut jwk: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
    jwk.insert(name.into(), value);
    jwk
}

fn key_set(keys: &[&GeneratedKey]) -> KeySet {
    let texts: Vec<&str> = keys.iter().map(|key| key.expose_private_json()).collect();
    let raw = RawJwkSet::parse(jwk_set_text(&texts).as_bytes(), "test keys").expect("the set parses");
    KeySet::from_raw(&raw, &Default::default(), "test keys").expect("the keys are valid")
}

/// Builds the trusted issuer keys from the public halves of `keys`.
fn issuer_keys(keys: &[&GeneratedKey]) -> IssuerKeys {
    let public: Vec<Value> = keys
        .iter()
        .map(|key| Value::Object(key.public().expect("signing keys have a public half").clone()))
        .collect();
    issuer_keys_from_values(public)
}

fn issuer_keys_from_values(public: Vec<Value>) -> IssuerKeys {
    let text = json!({ "keys": public }).to_string();
    let raw = RawJwkSet::parse(text.as_bytes(), "issuer keys").expect("the issuer set parses");
    IssuerKeys::from_raw(&raw, "issuer keys").expect("the issuer keys are valid")
}

fn signer(key: &GeneratedKey) -> Signer {
    signer_from_map(private_map(key))
}

fn signer_from_map(jwk: Map<String, Value>) -> Signer {
    Signer::from_jwk(Jwk::from_map(jwk).expect("josekit reads the JWK")).expect("the signing key is usable")
}

fn recipient(key: &GeneratedKey) -> Recipient {
    recipient_from_map(private_map(key))
}

fn recipient_from_map(jwk: Map<String, Value>) -> Recipient {
    Recipient::from_jwk(Jwk::from_map(jwk).expect("josekit reads the JWK")).expect("the encryption key is usable")
}

fn claims_at(now: i64) -> Map<String, Value> {
    object(json!({
        "iss": "https://issuer.example",
        "sub": "alice",
        "jti": "token-1",
        "iat": now,
        "exp": now + 300,
        "scope": "read write",
    }))
}

fn mint_token(claims: &Map<String, Value>, signer: Option<&Signer>, recipient: &Recipient, enc: ContentEnc) -> String {
    mint::mint(claims, signer, recipient, enc).expect("josekit mints the token")
}

/// Mints a token with fresh claims, signed by `issuer` and encrypted to `key`.
fn signed_token(issuer: &GeneratedKey, key: &GeneratedKey, enc: ContentEnc) -> String {
    mint_token(&claims_at(now()), Some(&signer(issuer)), &recipient(key), enc)
}

fn request(token: &str) -> Request<'_> {
    Request {
        token,
        audience: None,
        required_scopes: &[],
    }
}

fn run(decrypter: &Decrypter, request: Request<'_>) -> (Result<Decrypted, DecryptError>, TokenInfo) {
    let mut info = TokenInfo::default();
    let result = decrypter.decrypt(request, now(), &mut info);
    (result, info)
}

fn accepted(decrypter: &Decrypter, token: &str, case: &str) -> (Decrypted, TokenInfo) {
    match run(decrypter, request(token)) {
        (Ok(decrypted), info) => (decrypted, info),
        (Err(err), info) => panic!("{case}: expected the token to be accepted, got {err:?} with {info:?}"),
    }
}

fn rejected(decrypter: &Decrypter, token: &str, case: &str) -> (InvalidToken, TokenInfo) {
    match run(decrypter, request(token)) {
        (Ok(decrypted), _) => panic!(
            "{case}: expected an invalid token, got claims {}",
            decrypted.claims_json
        ),
        (Err(DecryptError::Invalid(cause)), info) => (cause, info),
        (Err(other), _) => panic!("{case}: expected an invalid token, got {other:?}"),
    }
}

fn invalid(decrypter: &Decrypter, token: &str, case: &str) -> InvalidToken {
    rejected(decrypter, token, case).0
}

/// Replaces the first character of segment `index` of a compact token with
/// another base64url character. The first character carries six data bits,
/// so the segment stays canonical and keeps its decoded length.
fn tamper_segment(token: &str, index: usize) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    let segment = &mut segments[index];
    assert!(!segment.is_empty(), "segment {index} is not empty");
    let replacement = if segment.starts_with('A') { "B" } else { "A" };
    segment.replace_range(0..1, replacement);
    segments.join(".")
}

/// Signs `payload` with the ES256 key `key`, putting `kid` in the header
/// when given. josekit would copy the JWK's kid into the header, so the
/// signer is built without it.
fn sign_es256(payload: &[u8], key: &GeneratedKey, kid: Option<&str>) -> String {
    let mut jwk = private_map(key);
    jwk.remove("kid");
    let jwk = Jwk::from_map(jwk).expect("josekit reads the JWK");
    let signer = jose_jws::ES256.signer_from_jwk(&jwk).expect("the ES256 key is usable");
    let mut header = jose_jws::JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    jose_jws::serialize_compact(payload, &header, &signer).expect("josekit signs the payload")
}

/// Encrypts `payload` to the ECDH-ES key `key` with A256GCM and, when
/// `nested` is set, `cty: "JWT"`, as an issuer wraps a signed JWT.
fn encrypt_ecdh_es(payload: &[u8], key: &GeneratedKey, nested: bool) -> String {
    let public =
        Jwk::from_map(key.public().expect("an ECDH-ES key has a public half").clone()).expect("josekit reads the JWK");
    let encrypter = jose_jwe::ECDH_ES
        .encrypter_from_jwk(&public)
        .expect("the ECDH-ES key is usable");
    let mut header = jose_jwe::JweHeader::new();
    header.set_content_encryption("A256GCM");
    if nested {
        header.set_content_type("JWT");
    }
    jose_jwe::serialize_compact(payload, &header, &encrypter).expect("josekit encrypts the payload")
}

/// Collects the base64url text of every private member of `keys`.
fn private_values(keys: &[&GeneratedKey]) -> Vec<String> {
    let mut values = Vec::new();
    for key in keys {
        let jwk = private_map(key);
        for name in PRIVATE_MEMBERS {
            if let Some(value) = jwk.get(name).and_then(Value::as_str) {
                values.push(value.to_owned());
            }
        }
    }
    values
}

/// Asserts that `text` shows no private member of `keys`, not the whole
/// `token` and none of its segments longer than 8 characters.
fn assert_no_secrets(text: &str, keys: &[&GeneratedKey], token: &str, case: &str) {
    for value in private_values(keys) {
        assert!(!text.contains(&value), "{case}: the text contains a private member");
        let start = value.get(..16).unwrap_or(&value);
        assert!(
            !text.contains(start),
            "{case}: the text contains the start of a private member"
        );
    }
    assert!(!text.contains(token), "{case}: the text contains the token");
    for (index, segment) in token.split('.').enumerate().filter(|(_, segment)| segment.len() > 8) {
        assert!(
            !text.contains(segment),
            "{case}: the text contains token segment {index}"
        );
    }
}

/// Decryption key `enc-1` (ECDH-ES on P-256), issuer key `issuer-1`
/// (ES256) and a decrypter that trusts both.
struct Setup {
    decryption: GeneratedKey,
    issuer: GeneratedKey,
    decrypter: Decrypter,
}

impl Setup {
    fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    fn with_policy(policy: Policy) -> Self {
        let decryption = decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256");
        let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
        let decrypter = Decrypter::new(key_set(&[&decryption]), Some(issuer_keys(&[&issuer])), policy);
        Setup {
            decryption,
            issuer,
            decrypter,
        }
    }

    fn signed_token(&self, claims: &Map<String, Value>) -> String {
        mint_token(
            claims,
            Some(&signer(&self.issuer)),
            &recipient(&self.decryption),
            ContentEnc::A256Gcm,
        )
    }

    fn unsigned_token(&self, claims: &Map<String, Value>) -> String {
        mint_token(claims, None, &recipient(&self.decryption), ContentEnc::A256Gcm)
    }

    /// Encrypts `jws` to `enc-1` as a nested JWT.
    fn nested_token(&self, jws: &str) -> String {
        encrypt_ecdh_es(jws.as_bytes(), &self.decryption, true)
    }
}

// === accepted tokens ===

#[test]
fn accepts_signed_token_and_fills_token_info() {
    let setup = Setup::new();
    let claims = claims_at(now());
    let token = setup.signed_token(&claims);

    let (decrypted, info) = accepted(&setup.decrypter, &token, "signed ECDH-ES token");

    assert_eq!(
        decrypted.claims_json,
        serde_json::to_string(&claims).expect("claims serialize")
    );
    assert_eq!(decrypted.claims, claims);
    assert_eq!(decrypted.key_id, ENC_KID);
    assert_eq!(decrypted.signing_key_id.as_deref(), Some(ISSUER_KID));
    assert_eq!(decrypted.valid.subject.as_deref(), Some("alice"));
    assert_eq!(decrypted.valid.scopes, ["read", "write"]);
    assert_eq!(decrypted.valid.token_id.as_deref(), Some("token-1"));
    let expected = TokenInfo {
        kid: Some(ENC_KID.into()),
        alg: Some(KeyAlg::EcdhEs),
        enc: Some(ContentEnc::A256Gcm),
        signing_kid: Some(ISSUER_KID.into()),
        signing_alg: Some(SigAlg::ES256),
        subject: Some("alice".into()),
        token_id: Some("token-1".into()),
    };
    assert_eq!(info, expected);
}

#[test]
fn accepts_tokens_for_each_key_kind_and_signer() {
    let es256 = signing_key(SigAlg::ES256, "es256");
    let eddsa = signing_key(SigAlg::EdDSA, "eddsa");
    let issuers = [(&es256, SigAlg::ES256), (&eddsa, SigAlg::EdDSA)];
    // (decryption key, enc)
    let cases = [
        (
            rsa_decryption_key(KeyAlg::RsaOaep, "rsa-oaep", 2048),
            ContentEnc::A256Gcm,
        ),
        (
            rsa_decryption_key(KeyAlg::RsaOaep256, "rsa-oaep-256", 3072),
            ContentEnc::A128Gcm,
        ),
        (decryption_key(KeyAlg::EcdhEs, "p256", "P-256"), ContentEnc::A256Gcm),
        (decryption_key(KeyAlg::EcdhEs, "p521", "P-521"), ContentEnc::A128Gcm),
        (
            decryption_key(KeyAlg::EcdhEsA128Kw, "x25519-kw", "X25519"),
            ContentEnc::A256Gcm,
        ),
        (
            decryption_key(KeyAlg::EcdhEsA256Kw, "p384-kw", "P-384"),
            ContentEnc::A256Gcm,
        ),
        (dir_key("dir16", 16), ContentEnc::A128Gcm),
        (dir_key("dir32", 32), ContentEnc::A256Gcm),
        (decryption_key(KeyAlg::A128Kw, "a128kw", ""), ContentEnc::A256Gcm),
        (decryption_key(KeyAlg::A256Kw, "a256kw", ""), ContentEnc::A128Gcm),
    ];
    for (key, enc) in &cases {
        let recipient = recipient(key);
        let decrypter = Decrypter::new(key_set(&[key]), Some(issuer_keys(&[&es256, &eddsa])), Policy::default());
        for (issuer, sig_alg) in issuers {
            let case = format!("{} with {enc}, signed {sig_alg}", recipient.alg());
            let claims = claims_at(now());
            let token = mint_token(&claims, Some(&signer(issuer)), &recipient, *enc);

            let (decrypted, info) = accepted(&decrypter, &token, &case);

            assert_eq!(decrypted.claims, claims, "{case}");
            assert_eq!(info.alg, Some(recipient.alg()), "{case}");
            assert_eq!(info.enc, Some(*enc), "{case}");
            assert_eq!(info.signing_alg, Some(sig_alg), "{case}");
        }
    }
}

#[test]
fn accepts_token_without_kid_when_one_key_fits() {
    let decryption = decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256");
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let keys = key_set(&[&decryption, &decryption_key(KeyAlg::A256Kw, "a256kw", "")]);
    let decrypter = Decrypter::new(keys, Some(issuer_keys(&[&issuer])), Policy::default());
    let token = mint_token(
        &claims_at(now()),
        Some(&signer(&issuer)),
        &recipient(&decryption).without_kid(),
        ContentEnc::A256Gcm,
    );

    let (decrypted, info) = accepted(&decrypter, &token, "no kid, one ECDH-ES key");

    assert_eq!(decrypted.key_id, ENC_KID);
    assert_eq!(info.kid.as_deref(), Some(ENC_KID));
}

#[test]
fn accepts_jws_without_kid_for_one_issuer() {
    let setup = Setup::new();
    let claims = claims_at(now());
    let jws = sign_es256(
        serde_json::to_string(&claims).expect("claims serialize").as_bytes(),
        &setup.issuer,
        None,
    );
    let token = setup.nested_token(&jws);

    let (decrypted, info) = accepted(&setup.decrypter, &token, "JWS without kid");

    assert_eq!(decrypted.signing_key_id.as_deref(), Some(ISSUER_KID));
    assert_eq!(info.signing_kid.as_deref(), Some(ISSUER_KID));
}

#[test]
fn accepts_enc_enabled_by_policy() {
    let policy = Policy {
        content_encryption: vec![ContentEnc::A128CbcHs256],
        ..Policy::default()
    };
    let setup = Setup::with_policy(policy);
    let token = signed_token(&setup.issuer, &setup.decryption, ContentEnc::A128CbcHs256);

    let (_, info) = accepted(&setup.decrypter, &token, "A128CBC-HS256 enabled");

    assert_eq!(info.enc, Some(ContentEnc::A128CbcHs256));
}

#[test]
fn open_returns_plaintext_and_key() {
    let setup = Setup::new();
    let claims = claims_at(now());
    let cases = [
        ("unsigned", setup.unsigned_token(&claims), false),
        ("signed", setup.signed_token(&claims), true),
    ];
    for (case, token, nested_jwt) in cases {
        let mut info = TokenInfo::default();

        let opened = setup
            .decrypter
            .open(&token, &mut info)
            .unwrap_or_else(|err| panic!("{case}: {err}"));

        assert_eq!(opened.key.kid(), ENC_KID, "{case}");
        assert_eq!(opened.nested_jwt, nested_jwt, "{case}");
        assert_eq!(info.kid.as_deref(), Some(ENC_KID), "{case}");
    }
}

#[test]
fn open_returns_unsigned_claims_unchanged() {
    let setup = Setup::new();
    let claims = claims_at(now());
    let token = setup.unsigned_token(&claims);
    let mut info = TokenInfo::default();

    let opened = setup.decrypter.open(&token, &mut info).expect("the token opens");

    assert_eq!(
        opened.plaintext.as_slice(),
        serde_json::to_vec(&claims).expect("claims serialize").as_slice()
    );
}

// === unsigned tokens ===

#[test]
fn unsigned_tokens_follow_policy() {
    let ecdh = decryption_key(KeyAlg::EcdhEs, "ecdh", "P-256");
    let a256kw = decryption_key(KeyAlg::A256Kw, "a256kw", "");
    // (policy, key, accepted)
    let cases = [
        (UnsignedTokens::Reject, &ecdh, false),
        (UnsignedTokens::Reject, &a256kw, false),
        (UnsignedTokens::SymmetricKeys, &ecdh, false),
        (UnsignedTokens::SymmetricKeys, &a256kw, true),
        (UnsignedTokens::AllKeys, &ecdh, true),
        (UnsignedTokens::AllKeys, &a256kw, true),
    ];
    for (unsigned, key, expect_accepted) in cases {
        let recipient = recipient(key);
        let case = format!("{unsigned:?} with {}", recipient.alg());
        let policy = Policy {
            unsigned,
            ..Policy::default()
        };
        let decrypter = Decrypter::new(key_set(&[&ecdh, &a256kw]), None, policy);
        let claims = claims_at(now());
        let token = mint_token(&claims, None, &recipient, ContentEnc::A256Gcm);

        let (result, info) = run(&decrypter, request(&token));

        if expect_accepted {
            let decrypted = result.unwrap_or_else(|err| panic!("{case}: {err:?}"));
            assert_eq!(decrypted.claims, claims, "{case}");
            assert_eq!(decrypted.signing_key_id, None, "{case}");
            assert_eq!(info.signing_kid, None, "{case}");
        } else {
            assert_eq!(
                result.map(|d| d.claims_json),
                Err(InvalidToken::SignatureRequired.into()),
                "{case}"
            );
        }
    }
}

// === key selection ===

#[test]
fn rejects_token_for_unknown_kid() {
    let setup = Setup::new();
    let stranger = decryption_key(KeyAlg::EcdhEs, "stranger", "P-256");
    let token = signed_token(&setup.issuer, &stranger, ContentEnc::A256Gcm);

    let (cause, info) = rejected(&setup.decrypter, &token, "unknown kid");

    assert_eq!(cause, InvalidToken::UnknownKey);
    assert_eq!(info.kid, None);
    assert_eq!(info.alg, Some(KeyAlg::EcdhEs));
}

#[test]
fn rejects_token_without_kid_when_no_key_fits() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let ecdh = decryption_key(KeyAlg::EcdhEs, "ecdh", "P-256");
    let keys = key_set(&[&decryption_key(KeyAlg::A256Kw, "a256kw", ""), &dir_key("dir16", 16)]);
    let decrypter = Decrypter::new(keys, Some(issuer_keys(&[&issuer])), Policy::default());
    let cases = [
        ("ECDH-ES token, no ECDH-ES key", ecdh),
        ("dir A256GCM token, only a 16-byte dir key", dir_key("dir32", 32)),
    ];
    for (case, key) in cases {
        let token = mint_token(
            &claims_at(now()),
            Some(&signer(&issuer)),
            &recipient(&key).without_kid(),
            ContentEnc::A256Gcm,
        );

        assert_eq!(
            invalid(&decrypter, &token, case),
            InvalidToken::NoUniqueKey { candidates: 0 },
            "{case}"
        );
    }
}

#[test]
fn rejects_token_without_kid_when_two_keys_fit() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let first = decryption_key(KeyAlg::EcdhEs, "first", "P-256");
    let second = decryption_key(KeyAlg::EcdhEs, "second", "P-384");
    let decrypter = Decrypter::new(
        key_set(&[&first, &second]),
        Some(issuer_keys(&[&issuer])),
        Policy::default(),
    );
    let token = mint_token(
        &claims_at(now()),
        Some(&signer(&issuer)),
        &recipient(&first).without_kid(),
        ContentEnc::A256Gcm,
    );

    let (cause, info) = rejected(&decrypter, &token, "two ECDH-ES keys");

    assert_eq!(cause, InvalidToken::NoUniqueKey { candidates: 2 });
    assert_eq!(info.kid, None);
}

#[test]
fn rejects_header_alg_that_differs_from_pinned_alg() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let rsa = rsa_decryption_key(KeyAlg::RsaOaep, "k", 2048);
    let decrypter = Decrypter::new(key_set(&[&rsa]), Some(issuer_keys(&[&issuer])), Policy::default());
    // The issuer's copy of the same key claims RSA-OAEP-256.
    let issuers_copy = recipient_from_map(with_member(private_map(&rsa), "alg", json!("RSA-OAEP-256")));
    let token = mint_token(
        &claims_at(now()),
        Some(&signer(&issuer)),
        &issuers_copy,
        ContentEnc::A256Gcm,
    );

    let (cause, info) = rejected(&decrypter, &token, "RSA-OAEP-256 token to an RSA-OAEP key");

    assert_eq!(
        cause,
        InvalidToken::AlgorithmMismatch {
            header: KeyAlg::RsaOaep256,
            pinned: KeyAlg::RsaOaep
        }
    );
    assert_eq!(info.alg, Some(KeyAlg::RsaOaep256));
}

#[test]
fn rejects_key_wrap_alg_for_ecdh_key() {
    let setup = Setup::new();
    let a128kw = decryption_key(KeyAlg::A128Kw, ENC_KID, "");
    let token = signed_token(&setup.issuer, &a128kw, ContentEnc::A256Gcm);

    let cause = invalid(&setup.decrypter, &token, "A128KW token to an ECDH-ES key");

    assert_eq!(
        cause,
        InvalidToken::AlgorithmMismatch {
            header: KeyAlg::A128Kw,
            pinned: KeyAlg::EcdhEs
        }
    );
}

#[test]
fn rejects_enc_outside_allow_list() {
    let setup = Setup::new();
    for enc in [ContentEnc::A128CbcHs256, ContentEnc::A192Gcm, ContentEnc::A256CbcHs512] {
        let token = signed_token(&setup.issuer, &setup.decryption, enc);

        let (cause, info) = rejected(&setup.decrypter, &token, enc.name());

        assert_eq!(cause, InvalidToken::EncNotAllowed(enc), "{enc}");
        assert_eq!(info.enc, Some(enc), "{enc}");
        assert_eq!(info.kid, None, "{enc}");
    }
}

// === key fit ===

#[test]
fn rejects_rsa_token_for_larger_modulus() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let small = rsa_decryption_key(KeyAlg::RsaOaep256, "k", 2048);
    let large = rsa_decryption_key(KeyAlg::RsaOaep256, "k", 3072);
    let decrypter = Decrypter::new(key_set(&[&small]), Some(issuer_keys(&[&issuer])), Policy::default());
    let token = signed_token(&issuer, &large, ContentEnc::A256Gcm);

    let (cause, info) = rejected(&decrypter, &token, "3072-bit token to a 2048-bit key");

    assert_eq!(
        cause,
        InvalidToken::KeyMismatch("encrypted key length differs from the RSA modulus length")
    );
    assert_eq!(info.kid.as_deref(), Some("k"));
}

#[test]
fn rejects_epk_on_another_curve() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let p256 = decryption_key(KeyAlg::EcdhEs, "k", "P-256");
    let decrypter = Decrypter::new(key_set(&[&p256]), Some(issuer_keys(&[&issuer])), Policy::default());
    for crv in ["P-384", "P-521", "X25519"] {
        let other = decryption_key(KeyAlg::EcdhEs, "k", crv);
        let token = signed_token(&issuer, &other, ContentEnc::A256Gcm);

        let cause = invalid(&decrypter, &token, crv);

        assert_eq!(
            cause,
            InvalidToken::KeyMismatch("epk curve differs from the key's curve"),
            "{crv}"
        );
    }
}

#[test]
fn rejects_dir_token_for_key_of_other_length() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let decrypter = Decrypter::new(
        key_set(&[&dir_key("k", 16)]),
        Some(issuer_keys(&[&issuer])),
        Policy::default(),
    );
    let token = mint_token(
        &claims_at(now()),
        Some(&signer(&issuer)),
        &recipient(&dir_key("k", 32)),
        ContentEnc::A256Gcm,
    );

    let cause = invalid(&decrypter, &token, "A256GCM token to a 16-byte dir key");

    assert_eq!(
        cause,
        InvalidToken::KeyMismatch("dir key length differs from the content key length")
    );
}

// === decryption ===

#[test]
fn rejects_tampered_segments() {
    let setup = Setup::new();
    let a256kw = decryption_key(KeyAlg::A256Kw, "a256kw", "");
    let keys = key_set(&[&setup.decryption, &a256kw]);
    let decrypter = Decrypter::new(keys, Some(issuer_keys(&[&setup.issuer])), Policy::default());
    let ecdh_token = setup.signed_token(&claims_at(now()));
    let kw_token = signed_token(&setup.issuer, &a256kw, ContentEnc::A256Gcm);
    let cases = [
        ("ECDH-ES initialization vector", tamper_segment(&ecdh_token, 2)),
        ("ECDH-ES ciphertext", tamper_segment(&ecdh_token, 3)),
        ("ECDH-ES tag", tamper_segment(&ecdh_token, 4)),
        ("A256KW encrypted key", tamper_segment(&kw_token, 1)),
        ("A256KW ciphertext", tamper_segment(&kw_token, 3)),
    ];
    for (case, token) in cases {
        let (cause, info) = rejected(&decrypter, &token, case);

        assert_eq!(cause, InvalidToken::DecryptionFailed, "{case}");
        assert!(info.kid.is_some(), "{case}");
        assert_eq!(info.signing_kid, None, "{case}");
    }
}

#[test]
fn rejects_token_for_other_key_with_same_kid() {
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    // (case, jwed's key, the key the token was encrypted to)
    let cases = [
        (
            "ECDH-ES",
            decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256"),
            decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256"),
        ),
        (
            "A256KW",
            decryption_key(KeyAlg::A256Kw, ENC_KID, ""),
            decryption_key(KeyAlg::A256Kw, ENC_KID, ""),
        ),
    ];
    for (case, own, other) in cases {
        let decrypter = Decrypter::new(key_set(&[&own]), Some(issuer_keys(&[&issuer])), Policy::default());
        let token = signed_token(&issuer, &other, ContentEnc::A256Gcm);

        assert_eq!(
            invalid(&decrypter, &token, case),
            InvalidToken::DecryptionFailed,
            "{case}"
        );
    }
}

#[test]
fn rejects_malformed_token_in_front_stage() {
    let setup = Setup::new();

    let (cause, info) = rejected(&setup.decrypter, "not.a.token", "three segments");

    assert_eq!(cause, InvalidToken::Format(FormatError::SegmentCount { expected: 5 }));
    assert_eq!(info, TokenInfo::default());
}

// === nested signature ===

#[test]
fn rejects_signer_not_among_issuer_keys() {
    let setup = Setup::new();
    let stranger = signing_key(SigAlg::ES256, "stranger");
    let token = signed_token(&stranger, &setup.decryption, ContentEnc::A256Gcm);

    let (cause, info) = rejected(&setup.decrypter, &token, "signer kid stranger");

    assert_eq!(cause, InvalidToken::UnknownIssuerKey);
    assert_eq!(info.signing_alg, Some(SigAlg::ES256));
    assert_eq!(info.signing_kid, None);
}

#[test]
fn rejects_signed_token_without_issuer_keys() {
    let decryption = decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256");
    let issuer = signing_key(SigAlg::ES256, ISSUER_KID);
    let decrypter = Decrypter::new(key_set(&[&decryption]), None, Policy::default());
    let token = signed_token(&issuer, &decryption, ContentEnc::A256Gcm);

    assert_eq!(
        invalid(&decrypter, &token, "no issuer keys"),
        InvalidToken::UnknownIssuerKey
    );
}

#[test]
fn rejects_ambiguous_jws_without_kid() {
    let decryption = decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256");
    let first = signing_key(SigAlg::ES256, "first");
    let second = signing_key(SigAlg::ES256, "second");
    let decrypter = Decrypter::new(
        key_set(&[&decryption]),
        Some(issuer_keys(&[&first, &second])),
        Policy::default(),
    );
    let jws = sign_es256(
        serde_json::to_string(&claims_at(now()))
            .expect("claims serialize")
            .as_bytes(),
        &first,
        None,
    );
    let token = encrypt_ecdh_es(jws.as_bytes(), &decryption, true);

    assert_eq!(
        invalid(&decrypter, &token, "two ES256 issuer keys"),
        InvalidToken::UnknownIssuerKey
    );
}

#[test]
fn rejects_signature_alg_that_differs_from_pinned_alg() {
    let decryption = decryption_key(KeyAlg::EcdhEs, ENC_KID, "P-256");
    let rsa_issuer = signing_key(SigAlg::PS256, "rsa-issuer");
    let ed_issuer = signing_key(SigAlg::EdDSA, "ed-issuer");
    let decrypter = Decrypter::new(
        key_set(&[&decryption]),
        Some(issuer_keys(&[&rsa_issuer, &ed_issuer])),
        Policy::default(),
    );
    // (signer, header alg, pinned alg)
    let cases = [
        (
            signer_from_map(with_member(private_map(&rsa_issuer), "alg", json!("RS256"))),
            SigAlg::RS256,
            SigAlg::PS256,
        ),
        (
            signer(&signing_key(SigAlg::ES256, "ed-issuer")),
            SigAlg::ES256,
            SigAlg::EdDSA,
        ),
    ];
    for (signer, header, pinned) in cases {
        let case = format!("{header} signature to a {pinned} key");
        let token = mint_token(
            &claims_at(now()),
            Some(&signer),
            &recipient(&decryption),
            ContentEnc::A256Gcm,
        );

        let (cause, info) = rejected(&decrypter, &token, &case);

        assert_eq!(
            cause,
            InvalidToken::SignatureAlgorithmMismatch { header, pinned },
            "{case}"
        );
        assert_eq!(info.signing_alg, Some(header), "{case}");
        assert!(info.signing_kid.is_some(), "{case}");
    }
}

#[test]
fn rejects_signature_by_other_key_with_same_kid() {
    let setup = Setup::new();
    let impostor = signing_key(SigAlg::ES256, ISSUER_KID);
    let token = signed_token(&impostor, &setup.decryption, ContentEnc::A256Gcm);

    let (cause, info) = rejected(&setup.decrypter, &token, "impostor with kid issuer-1");

    assert_eq!(cause, InvalidToken::BadSignature);
    assert_eq!(info.signing_kid.as_deref(), Some(ISSUER_KID));
    assert_eq!(info.subject, None);
}

#[test]
fn rejects_tampered_nested_jws() {
    let setup = Setup::new();
    let claims_text = serde_json::to_string(&claims_at(now())).expect("claims serialize");
    let jws = sign_es256(claims_text.as_bytes(), &setup.issuer, Some(ISSUER_KID));
    let other_jws = sign_es256(br#"{"sub":"mallory"}"#, &setup.issuer, Some(ISSUER_KID));
    let segments: Vec<&str> = jws.split('.').collect();
    let other_payload = other_jws.split('.').nth(1).expect("a JWS has a payload");
    let cases = [
        ("signature with one character changed", tamper_segment(&jws, 2)),
        (
            "signature one byte short",
            format!("{}.{}.{}", segments[0], segments[1], &segments[2][..84]),
        ),
        (
            "payload of another JWS",
            format!("{}.{other_payload}.{}", segments[0], segments[2]),
        ),
    ];
    for (case, tampered) in cases {
        let token = setup.nested_token(&tampered);

        let (cause, info) = rejected(&setup.decrypter, &token, case);

        assert_eq!(cause, InvalidToken::BadSignature, "{case}");
        assert_eq!(info.subject, None, "{case}");
    }
}

#[test]
fn accepts_untampered_nested_jws_built_with_josekit() {
    let setup = Setup::new();
    let claims = claims_at(now());
    let jws = sign_es256(
        serde_json::to_string(&claims).expect("claims serialize").as_bytes(),
        &setup.issuer,
        Some(ISSUER_KID),
    );
    let token = setup.nested_token(&jws);

    let (decrypted, _) = accepted(&setup.decrypter, &token, "josekit-built nested JWS");

    assert_eq!(decrypted.claims, claims);
}

#[test]
fn rejects_signed_non_object_claims() {
    let setup = Setup::new();
    let cases: [(&str, &[u8]); 5] = [
        ("plain text", b"not json"),
        ("JSON array", b"[1, 2]"),
        ("JSON string", br#""alice""#),
        (
            "duplicate member",
            br#"{"sub":"alice","sub":"mallory","exp":4102444800}"#,
        ),
        ("invalid UTF-8", b"{\"sub\":\"\xff\"}"),
    ];
    for (case, payload) in cases {
        let token = setup.nested_token(&sign_es256(payload, &setup.issuer, Some(ISSUER_KID)));

        let (cause, info) = rejected(&setup.decrypter, &token, case);

        assert_eq!(cause, InvalidToken::ClaimsNotJson, "{case}");
        assert_eq!(info.signing_kid.as_deref(), Some(ISSUER_KID), "{case}");
    }
}

#[test]
fn rejects_unsigned_non_object_claims() {
    let policy = Policy {
        unsigned: UnsignedTokens::AllKeys,
        ..Policy::default()
    };
    let setup = Setup::with_policy(policy);
    let token = encrypt_ecdh_es(b"not json", &setup.decryption, false);

    assert_eq!(
        invalid(&setup.decrypter, &token, "unsigned text"),
        InvalidToken::ClaimsNotJson
    );
}

#[test]
fn rejects_unsigned_token_under_reject() {
    let setup = Setup::new();
    let token = setup.unsigned_token(&claims_at(now()));

    let (cause, info) = rejected(&setup.decrypter, &token, "unsigned ECDH-ES token");

    assert_eq!(cause, InvalidToken::SignatureRequired);
    assert_eq!(info.kid.as_deref(), Some(ENC_KID));
    assert_eq!(info.subject, None);
}

// === claims ===

#[test]
fn reports_claim_errors_after_the_signature() {
    let setup = Setup::new();
    let now = now();
    let mut claims = claims_at(now - 3600);
    claims.insert("exp".into(), json!(now - 60));
    let token = setup.signed_token(&claims);

    let (result, info) = run(&setup.decrypter, request(&token));

    assert_eq!(
        result.map(|d| d.claims_json),
        Err(DecryptError::Claims(ClaimError::Expired))
    );
    assert_eq!(info.subject.as_deref(), Some("alice"));
    assert_eq!(info.token_id.as_deref(), Some("token-1"));
}

#[test]
fn reports_missing_required_scope() {
    let setup = Setup::new();
    let token = setup.signed_token(&claims_at(now()));
    let required = vec!["read".to_string(), "admin".to_string()];

    let (result, _) = run(
        &setup.decrypter,
        Request {
            token: &token,
            audience: None,
            required_scopes: &required,
        },
    );

    let expected = DecryptError::Claims(ClaimError::InsufficientScope {
        missing: vec!["admin".into()],
    });
    assert_eq!(result.map(|d| d.claims_json), Err(expected));
}

// === request checks ===

#[test]
fn accepts_64_required_scopes() {
    let setup = Setup::new();
    let scopes: Vec<String> = (0..MAX_REQUIRED_SCOPES).map(|i| format!("scope-{i}")).collect();
    let mut claims = claims_at(now());
    claims.insert("scopes".into(), json!(scopes));
    let token = setup.signed_token(&claims);

    let (result, _) = run(
        &setup.decrypter,
        Request {
            token: &token,
            audience: None,
            required_scopes: &scopes,
        },
    );

    assert_eq!(result.map(|d| d.valid.scopes), Ok(scopes));
}

#[test]
fn accepts_scope_and_audience_of_256_bytes() {
    let setup = Setup::new();
    let long = "s".repeat(MAX_REQUEST_STRING_BYTES);
    let mut claims = claims_at(now());
    claims.insert("scope".into(), json!(long));
    claims.insert("aud".into(), json!(long));
    let token = setup.signed_token(&claims);
    let required = vec![long.clone()];

    let (result, _) = run(
        &setup.decrypter,
        Request {
            token: &token,
            audience: Some(&long),
            required_scopes: &required,
        },
    );

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn rejects_bad_requests_before_opening_token() {
    let setup = Setup::new();
    let token = setup.signed_token(&claims_at(now()));
    let too_many: Vec<String> = (0..=MAX_REQUIRED_SCOPES).map(|i| format!("scope-{i}")).collect();
    let empty = vec![String::new()];
    let too_long = vec!["s".repeat(MAX_REQUEST_STRING_BYTES + 1)];
    let long_audience = "a".repeat(MAX_REQUEST_STRING_BYTES + 1);
    let invalid_string = "a required scope or the audience is empty or longer than 256 bytes";
    // (case, audience, required scopes, expected message)
    let cases = [
        ("65 scopes", None, &too_many, "more than 64 required scopes"),
        ("empty scope", None, &empty, invalid_string),
        ("scope of 257 bytes", None, &too_long, invalid_string),
        ("empty audience", Some(""), &Vec::new(), invalid_string),
        (
            "audience of 257 bytes",
            Some(long_audience.as_str()),
            &Vec::new(),
            invalid_string,
        ),
    ];
    for (case, audience, required_scopes, message) in cases {
        let (result, info) = run(
            &setup.decrypter,
            Request {
                token: &token,
                audience,
                required_scopes,
            },
        );

        assert_eq!(
            result.map(|d| d.claims_json),
            Err(DecryptError::BadRequest(message)),
            "{case}"
        );
        assert_eq!(info, TokenInfo::default(), "{case}");
    }
}

// === what errors and Debug show ===

#[test]
fn invalid_token_messages_show_no_key_or_token() {
    let setup = Setup::new();
    let impostor = signing_key(SigAlg::ES256, ISSUER_KID);
    let stranger = decryption_key(KeyAlg::EcdhEs, "stranger", "P-256");
    let valid = setup.signed_token(&claims_at(now()));
    let cases = [
        (
            "unknown kid",
            signed_token(&setup.issuer, &stranger, ContentEnc::A256Gcm),
        ),
        ("tampered ciphertext", tamper_segment(&valid, 3)),
        (
            "bad signature",
            signed_token(&impostor, &setup.decryption, ContentEnc::A256Gcm),
        ),
        ("unsigned", setup.unsigned_token(&claims_at(now()))),
        (
            "claims not JSON",
            setup.nested_token(&sign_es256(b"not json", &setup.issuer, Some(ISSUER_KID))),
        ),
        (
            "enc not allowed",
            signed_token(&setup.issuer, &setup.decryption, ContentEnc::A256CbcHs512),
        ),
    ];
    let keys = [&setup.decryption, &setup.issuer, &impostor, &stranger];
    for (case, token) in cases {
        let (result, info) = run(&setup.decrypter, request(&token));
        let err = result.map(|d| d.claims_json).expect_err("the token is invalid");

        assert!(matches!(err, DecryptError::Invalid(_)), "{case}: {err:?}");
        assert_no_secrets(&err.to_string(), &keys, &token, case);
        assert_no_secrets(&format!("{err:?}"), &keys, &token, case);
        assert_no_secrets(&format!("{info:?}"), &keys, &token, case);
    }
}

#[test]
fn decrypter_debug_shows_no_key_or_token() {
    let setup = Setup::new();
    let token = setup.signed_token(&claims_at(now()));
    accepted(&setup.decrypter, &token, "signed token");

    let debug = format!("{:?}", setup.decrypter);

    assert_no_secrets(&debug, &[&setup.decryption, &setup.issuer], &token, "Decrypter");
    assert!(debug.contains(ENC_KID), "{debug}");
    assert!(debug.contains(ISSUER_KID), "{debug}");
}
