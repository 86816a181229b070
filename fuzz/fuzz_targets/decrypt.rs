//! Fuzzes `jwed::decrypt::Decrypter::decrypt`, the whole pipeline from the
//! compact JWE to validated claims.
//!
//! The first input byte picks the mode. Bytes 0x00 to 0x04 start a
//! structured input `[mode, t, s, payload...]` that builds a token around
//! the payload, so that mutations get past the front stage. Any other first
//! byte, or an input shorter than 3 bytes, makes the whole input the token
//! (invalid UTF-8 is replaced with U+FFFD).
//!
//! | mode | token |
//! |------|-------|
//! | 0x00 | seed token `t` with segment `s % 5` replaced by base64url(payload) |
//! | 0x01 | seed token `t` with segment `s % 5` replaced by the payload as text |
//! | 0x02 | the payload encrypted as plaintext to the dir key (`t` even) or the A128KW key (`t` odd), with the content encryption picked by `t >> 1`; `s` bit 0 sets `cty: "JWT"` |
//! | 0x03 | the nested JWS of signed seed token `t` (counting signed seeds only) with segment `s % 3` replaced by base64url(payload), encrypted to the dir key |
//! | 0x04 | the payload signed as claims with the EdDSA issuer key, encrypted to the dir key |
//!
//! Modes 0x02 to 0x04 encrypt with josekit, which draws a new content key
//! (A128KW) and IV on every run. The decrypted plaintext is the same on every
//! run, so a failure in the nested JWS or claim stages reproduces. A failure
//! that depends on the ciphertext bytes themselves may not.
//!
//! With `JWED_FUZZ_PRINT=1` in the environment, the target prints each token
//! and its outcome to stderr, which helps when reproducing an input.
//!
//! The keys in fuzz/keys and the seed tokens in fuzz/seeds/decrypt come from
//! fuzz/seed.sh. The keys are for tests only.

#![no_main]

use std::{borrow::Cow, collections::HashMap, sync::OnceLock};

use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::{
    jwe::{self, JweEncrypter},
    jwk::{Jwk, JwkSet},
    jws::{self, JwsSigner},
};
use jwed::{
    alg::ContentEnc,
    claims::ClaimsPolicy,
    compact::DEFAULT_MAX_TOKEN_BYTES,
    decrypt::{DecryptError, Decrypter, Policy, Request, TokenInfo, UnsignedTokens},
    issuers::IssuerKeys,
    jwk::RawJwkSet,
    keys::KeySet,
};
use libfuzzer_sys::fuzz_target;

/// Time of every decryption, in seconds since the epoch: 60 s after the
/// `iat` of the seed claims (2026-01-01T00:00:00Z). The seed claims expire
/// 600 s after `iat`.
const NOW: i64 = 1_767_225_660;

const ISSUER: &str = "https://issuer.fuzz.test";
const AUDIENCE: &str = "fuzz-api";
const LEEWAY_SECONDS: u32 = 30;

const DIR_KID: &str = "fuzz-dir-32";
const A128KW_KID: &str = "fuzz-a128kw";
const ES256_KID: &str = "fuzz-issuer-es256";
const EDDSA_KID: &str = "fuzz-issuer-eddsa";

/// Private JWK Sets of the decryption keys, one key in each.
const DECRYPTION_KEYS: [&str; 5] = [
    include_str!("../keys/ecdh-es-p256.json"),
    include_str!("../keys/ecdh-es-a128kw-x25519.json"),
    include_str!("../keys/rsa-oaep-256.json"),
    include_str!("../keys/a128kw.json"),
    include_str!("../keys/dir-32.json"),
];

/// Public JWK Sets of the trusted issuer keys, one key in each.
const ISSUER_KEYS: [&str; 2] = [
    include_str!("../keys/issuer-es256.public.json"),
    include_str!("../keys/issuer-eddsa.public.json"),
];

const EDDSA_PRIVATE_KEY: &str = include_str!("../keys/issuer-eddsa.json");

/// Valid tokens, indexed by the `t` byte of modes 0x00, 0x01 and 0x03.
/// fuzz/seed.sh writes the structured seeds with these positions.
const SEED_TOKENS: [&str; 10] = [
    include_str!("../seeds/decrypt/01-ecdh-es-p256-a256gcm-es256.jwe"),
    include_str!("../seeds/decrypt/02-ecdh-es-p256-a128cbc-hs256-eddsa.jwe"),
    include_str!("../seeds/decrypt/03-ecdh-es-a128kw-x25519-a128gcm-es256.jwe"),
    include_str!("../seeds/decrypt/04-ecdh-es-a128kw-x25519-a256cbc-hs512-eddsa.jwe"),
    include_str!("../seeds/decrypt/05-rsa-oaep-256-a256gcm-es256.jwe"),
    include_str!("../seeds/decrypt/06-rsa-oaep-256-a192gcm-eddsa.jwe"),
    include_str!("../seeds/decrypt/07-a128kw-a192cbc-hs384-es256.jwe"),
    include_str!("../seeds/decrypt/08-a128kw-a128gcm-unsigned.jwe"),
    include_str!("../seeds/decrypt/09-dir-a256gcm-eddsa.jwe"),
    include_str!("../seeds/decrypt/10-dir-a128cbc-hs256-unsigned.jwe"),
];

/// Everything built once per process.
struct Fixture {
    decrypter: Decrypter,
    /// The nested JWS of each signed seed token, in [`SEED_TOKENS`] order.
    nested_jws: Vec<String>,
    dir: Box<dyn JweEncrypter>,
    a128kw: Box<dyn JweEncrypter>,
    eddsa: Box<dyn JwsSigner>,
    /// Whether `JWED_FUZZ_PRINT` is set.
    print_outcomes: bool,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fixture = FIXTURE.get_or_init(Fixture::build);
    let token = match data {
        [mode @ 0x00..=0x04, t, s, payload @ ..] => match fixture.structured_token(*mode, *t, *s, payload) {
            Some(token) => Cow::Owned(token),
            None => return,
        },
        _ => String::from_utf8_lossy(data),
    };
    decrypt_and_check(fixture, &token);
});

/// Decrypts `token` and asserts the guarantees that hold for every input.
fn decrypt_and_check(fixture: &Fixture, token: &str) {
    let mut info = TokenInfo::default();
    let request = Request { token, audience: None, required_scopes: &[] };
    let result = fixture.decrypter.decrypt(request, NOW, &mut info);
    if fixture.print_outcomes {
        let outcome = match &result {
            Ok(decrypted) => format!("accepted, key {}, issuer key {:?}", decrypted.key_id, decrypted.signing_key_id),
            Err(err) => format!("rejected: {err}"),
        };
        eprintln!("token: {token}\noutcome: {outcome}, {info:?}");
    }
    let decrypted = match result {
        Ok(decrypted) => decrypted,
        Err(DecryptError::BadRequest(reason)) => panic!("a valid request was rejected as malformed: {reason}"),
        // Every other error is a rejected token, whatever its cause.
        Err(_) => return,
    };

    assert_eq!(info.kid.as_deref(), Some(decrypted.key_id.as_str()), "TokenInfo.kid differs from the key that decrypted");
    match decrypted.signing_key_id.as_deref() {
        None => assert!(
            [A128KW_KID, DIR_KID].contains(&decrypted.key_id.as_str()),
            "unsigned claims were accepted from asymmetric key {}",
            decrypted.key_id
        ),
        Some(kid) => assert!([ES256_KID, EDDSA_KID].contains(&kid), "signature verified with unknown issuer key {kid}"),
    }
    assert_eq!(decrypted.valid.issuer.as_deref(), Some(ISSUER), "accepted a token from another issuer");
    assert!(
        i128::from(decrypted.valid.expires_at) + i128::from(LEEWAY_SECONDS) >= i128::from(NOW),
        "accepted a token that expired at {}",
        decrypted.valid.expires_at
    );
    assert!(decrypted.valid.issued_at.is_some(), "accepted a token without iat although max_lifetime_seconds is set");
}

// === impl Fixture ===

impl Fixture {
    fn build() -> Fixture {
        let decryption_keys = merge_sets(&DECRYPTION_KEYS);
        let keys = KeySet::from_raw(&decryption_keys, &HashMap::new(), "fuzz/keys").expect("the decryption keys in fuzz/keys load");
        keys.self_check().expect("the decryption keys in fuzz/keys pass the self-check");
        let issuers = IssuerKeys::from_raw(&merge_sets(&ISSUER_KEYS), "fuzz/keys").expect("the issuer keys in fuzz/keys load");

        let policy = Policy {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            content_encryption: ContentEnc::ALL.to_vec(),
            unsigned: UnsignedTokens::SymmetricKeys,
            claims: ClaimsPolicy {
                issuer: Some(ISSUER.into()),
                audiences: vec![AUDIENCE.into()],
                leeway_seconds: LEEWAY_SECONDS,
                max_lifetime_seconds: Some(3600),
            },
        };
        let decrypter = Decrypter::new(keys, Some(issuers), policy);

        let mut nested_jws = Vec::new();
        for (index, token) in SEED_TOKENS.iter().enumerate() {
            let opened = decrypter
                .open(token.trim(), &mut TokenInfo::default())
                .unwrap_or_else(|err| panic!("seed token {} does not decrypt: {err}. Rerun fuzz/seed.sh and rebuild.", index + 1));
            if opened.nested_jwt {
                nested_jws.push(String::from_utf8(opened.plaintext.to_vec()).expect("a nested JWS is ASCII"));
            }
        }

        let dir_jwk = find_jwk(DECRYPTION_KEYS[4], DIR_KID);
        let a128kw_jwk = find_jwk(DECRYPTION_KEYS[3], A128KW_KID);
        let eddsa_jwk = find_jwk(EDDSA_PRIVATE_KEY, EDDSA_KID);
        Fixture {
            decrypter,
            nested_jws,
            dir: Box::new(jwe::Dir.encrypter_from_jwk(&dir_jwk).expect("josekit accepts the dir key")),
            a128kw: Box::new(jwe::A128KW.encrypter_from_jwk(&a128kw_jwk).expect("josekit accepts the A128KW key")),
            eddsa: Box::new(jws::EdDSA.signer_from_jwk(&eddsa_jwk).expect("josekit accepts the EdDSA signing key")),
            print_outcomes: std::env::var_os("JWED_FUZZ_PRINT").is_some(),
        }
    }

    /// Builds the token of a structured input, or `None` when josekit
    /// cannot sign or encrypt the payload.
    fn structured_token(&self, mode: u8, t: u8, s: u8, payload: &[u8]) -> Option<String> {
        match mode {
            0x00 => {
                let token = SEED_TOKENS[usize::from(t) % SEED_TOKENS.len()].trim();
                Some(replace_segment(token, usize::from(s) % 5, &Base64UrlUnpadded::encode_string(payload)))
            }
            0x01 => {
                let token = SEED_TOKENS[usize::from(t) % SEED_TOKENS.len()].trim();
                Some(replace_segment(token, usize::from(s) % 5, &String::from_utf8_lossy(payload)))
            }
            0x02 => {
                let nested = s & 1 == 1;
                if t & 1 == 0 {
                    // A 32-byte dir key fits exactly these two.
                    let enc = [ContentEnc::A256Gcm, ContentEnc::A128CbcHs256][usize::from(t >> 1) % 2];
                    encrypt(payload, self.dir.as_ref(), enc, nested)
                } else {
                    let enc = ContentEnc::ALL[usize::from(t >> 1) % ContentEnc::ALL.len()];
                    encrypt(payload, self.a128kw.as_ref(), enc, nested)
                }
            }
            0x03 => {
                let jws = &self.nested_jws[usize::from(t) % self.nested_jws.len()];
                let jws = replace_segment(jws, usize::from(s) % 3, &Base64UrlUnpadded::encode_string(payload));
                encrypt(jws.as_bytes(), self.dir.as_ref(), ContentEnc::A256Gcm, true)
            }
            _ => {
                let mut header = jws::JwsHeader::new();
                header.set_token_type("JWT");
                header.set_key_id(EDDSA_KID);
                let jws = jws::serialize_compact(payload, &header, self.eddsa.as_ref()).ok()?;
                encrypt(jws.as_bytes(), self.dir.as_ref(), ContentEnc::A256Gcm, true)
            }
        }
    }
}

/// Joins one-key JWK Sets into one set.
fn merge_sets(texts: &[&str]) -> RawJwkSet {
    let mut keys = Vec::new();
    for text in texts {
        let set = RawJwkSet::parse(text.as_bytes(), "fuzz/keys").expect("a JWK Set file in fuzz/keys parses");
        keys.extend(set.keys);
    }
    RawJwkSet { keys }
}

fn find_jwk(set_text: &str, kid: &str) -> Jwk {
    let set = JwkSet::from_bytes(set_text).expect("a JWK Set file in fuzz/keys parses");
    set.get(kid).first().map(|jwk| (*jwk).clone()).unwrap_or_else(|| panic!("no key {kid} in fuzz/keys"))
}

/// Returns `token` with its dot-separated segment `index` replaced.
fn replace_segment(token: &str, index: usize, replacement: &str) -> String {
    let mut segments: Vec<&str> = token.split('.').collect();
    segments[index] = replacement;
    segments.join(".")
}

fn encrypt(plaintext: &[u8], encrypter: &dyn JweEncrypter, enc: ContentEnc, nested_jwt: bool) -> Option<String> {
    let mut header = jwe::JweHeader::new();
    header.set_content_encryption(enc.name());
    if nested_jwt {
        header.set_content_type("JWT");
    }
    jwe::serialize_compact(plaintext, &header, encrypter).ok()
}
