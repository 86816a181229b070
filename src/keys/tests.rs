use super::*;

use std::{io::Write, sync::OnceLock};

use base64ct::{Base64UrlUnpadded, Encoding};
use openssl::rsa::Rsa;
use serde_json::json;

use crate::{
    jwk::MAX_FILE_BYTES,
    keygen::{GeneratedKey, KeySpec, jwk_set_text},
};

/// JWK members that hold private key material.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Name the sets are given in error messages.
const ORIGIN: &str = "test keys";

// === helpers ===

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("a JWK must be a JSON object, got {other}"),
    }
}

/// Returns one 2048-bit RSA key shared by every test, because generating
/// RSA keys is slow. Tests set their own `kid` and `alg` on a copy.
fn rsa_2048() -> &'static Map<String, Value> {
    static KEY: OnceLock<Map<String, Value>> = OnceLock::new();
    KEY.get_or_init(|| generated(KeyAlg::RsaOaep256, "rsa", "P-256", 32))
}

fn generated(alg: KeyAlg, kid: &str, crv: &str, size: usize) -> Map<String, Value> {
    let key = GeneratedKey::generate(KeySpec::Decryption(alg), kid, crv, 2048, size).expect("key options are valid");
    object(serde_json::from_str(key.expose_private_json()).expect("a generated JWK is JSON"))
}

/// Returns a private JWK for `alg`. `crv` applies to the ECDH-ES family and
/// `size` to `dir` keys, in bytes.
fn private_jwk(alg: KeyAlg, kid: &str, crv: &str, size: usize) -> Map<String, Value> {
    if matches!(alg, KeyAlg::RsaOaep | KeyAlg::RsaOaep256) {
        let mut jwk = rsa_2048().clone();
        jwk.insert("kid".into(), kid.into());
        jwk.insert("alg".into(), alg.name().into());
        return jwk;
    }
    generated(alg, kid, crv, size)
}

fn ec_jwk(kid: &str, crv: &str) -> Map<String, Value> {
    private_jwk(KeyAlg::EcdhEs, kid, crv, 32)
}

/// Builds an `oct` JWK of `len` random bytes, whatever length `alg` needs.
fn oct_jwk(kid: &str, alg: &str, len: usize) -> Map<String, Value> {
    let mut bytes = vec![0u8; len];
    openssl::rand::rand_bytes(&mut bytes).expect("OpenSSL returns random bytes");
    object(json!({"kty": "oct", "kid": kid, "alg": alg, "k": b64(&bytes)}))
}

/// Builds an RSA JWK by hand, for sizes that keygen does not generate.
fn rsa_jwk_of_bits(kid: &str, bits: u32) -> Map<String, Value> {
    let rsa = Rsa::generate(bits).expect("OpenSSL generates the RSA key");
    let part = |value: Option<&openssl::bn::BigNumRef>, name: &str| {
        b64(&value.unwrap_or_else(|| panic!("{name} is present")).to_vec())
    };
    object(json!({
        "kty": "RSA",
        "kid": kid,
        "alg": "RSA-OAEP-256",
        "n": b64(&rsa.n().to_vec()),
        "e": b64(&rsa.e().to_vec()),
        "d": b64(&rsa.d().to_vec()),
        "p": part(rsa.p(), "p"),
        "q": part(rsa.q(), "q"),
        "dp": part(rsa.dmp1(), "dp"),
        "dq": part(rsa.dmq1(), "dq"),
        "qi": part(rsa.iqmp(), "qi"),
    }))
}

fn member(jwk: &Map<String, Value>, name: &str) -> String {
    jwk.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("member {name} is a string"))
        .to_owned()
}

fn decoded_member(jwk: &Map<String, Value>, name: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(&member(jwk, name)).expect("member is base64url")
}

fn with_member(mut jwk: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
    jwk.insert(name.into(), value);
    jwk
}

fn without_member(mut jwk: Map<String, Value>, name: &str) -> Map<String, Value> {
    jwk.remove(name);
    jwk
}

fn set_text(keys: &[Map<String, Value>]) -> Zeroizing<String> {
    let texts: Vec<String> = keys.iter().map(|key| Value::Object(key.clone()).to_string()).collect();
    let members: Vec<&str> = texts.iter().map(String::as_str).collect();
    jwk_set_text(&members)
}

fn no_pins() -> HashMap<String, KeyAlg> {
    HashMap::new()
}

fn load(keys: &[Map<String, Value>], configured: &HashMap<String, KeyAlg>) -> Result<KeySet, JwkError> {
    let raw = RawJwkSet::parse(set_text(keys).as_bytes(), ORIGIN).expect("the set parses");
    KeySet::from_raw(&raw, configured, ORIGIN)
}

fn load_ok(keys: &[Map<String, Value>], configured: &HashMap<String, KeyAlg>, case: &str) -> KeySet {
    load(keys, configured).unwrap_or_else(|err| panic!("{case}: {err}"))
}

/// Collects the base64url text of every private member of `keys`.
fn private_values(keys: &[Map<String, Value>]) -> Vec<String> {
    let mut values = Vec::new();
    for key in keys {
        for name in PRIVATE_MEMBERS {
            if let Some(value) = key.get(name).and_then(Value::as_str) {
                values.push(value.to_owned());
            }
        }
    }
    values
}

/// Asserts that `text` contains no private member of `keys`, whole or as
/// its first 16 characters.
fn assert_no_private_values(text: &str, keys: &[Map<String, Value>], case: &str) {
    let values = private_values(keys);
    assert!(!values.is_empty(), "{case}: the keys have private members to look for");
    for value in values {
        assert!(!text.contains(&value), "{case}: the text contains a private member");
        let start = value.get(..16).unwrap_or(&value);
        assert!(
            !text.contains(start),
            "{case}: the text contains the start of a private member"
        );
    }
}

/// Loads `keys`, expecting a key error whose message contains no private
/// member, and returns the key id and reason it names.
fn rejection(keys: &[Map<String, Value>], configured: &HashMap<String, KeyAlg>, case: &str) -> (String, String) {
    let err = match load(keys, configured) {
        Ok(set) => panic!("{case}: expected a rejection, got {set:?}"),
        Err(err) => err,
    };
    assert_no_private_values(&err.to_string(), keys, case);
    assert_no_private_values(&format!("{err:?}"), keys, case);
    match err {
        JwkError::Key { path, kid, reason } => {
            assert_eq!(path, ORIGIN, "{case}");
            (kid, reason)
        }
        other => panic!("{case}: expected a key error, got {other}"),
    }
}

fn reason(keys: &[Map<String, Value>], case: &str) -> String {
    rejection(keys, &no_pins(), case).1
}

fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file can be created");
    file.write_all(bytes).expect("the temporary file is writable");
    file.flush().expect("the temporary file is flushed");
    file
}

/// Returns a valid one-key set padded with trailing spaces to exactly `len` bytes.
fn padded_set_text(len: usize) -> Vec<u8> {
    let mut bytes = set_text(&[oct_jwk("padded", "A128KW", 16)]).as_bytes().to_vec();
    assert!(bytes.len() <= len, "the set fits in {len} bytes");
    bytes.resize(len, b' ');
    bytes
}

// === supported keys ===

#[test]
fn loads_each_supported_kind_and_passes_self_check() {
    // (alg, crv, dir key size, expected kind)
    let cases = [
        (KeyAlg::RsaOaep, "", 0, KeyKind::Rsa { modulus_len: 256 }),
        (KeyAlg::RsaOaep256, "", 0, KeyKind::Rsa { modulus_len: 256 }),
        (KeyAlg::EcdhEs, "P-256", 0, KeyKind::Ec(Curve::P256)),
        (KeyAlg::EcdhEs, "P-384", 0, KeyKind::Ec(Curve::P384)),
        (KeyAlg::EcdhEs, "P-521", 0, KeyKind::Ec(Curve::P521)),
        (KeyAlg::EcdhEs, "X25519", 0, KeyKind::Ec(Curve::X25519)),
        (KeyAlg::EcdhEsA128Kw, "P-256", 0, KeyKind::Ec(Curve::P256)),
        (KeyAlg::EcdhEsA256Kw, "X25519", 0, KeyKind::Ec(Curve::X25519)),
        (KeyAlg::Dir, "", 16, KeyKind::Oct { len: 16 }),
        (KeyAlg::Dir, "", 32, KeyKind::Oct { len: 32 }),
        (KeyAlg::A128Kw, "", 0, KeyKind::Oct { len: 16 }),
        (KeyAlg::A256Kw, "", 0, KeyKind::Oct { len: 32 }),
    ];
    for (alg, crv, size, kind) in cases {
        let case = format!("{alg} {crv} {kind:?}");
        let jwk = private_jwk(alg, "key-1", crv, size);

        let set = load_ok(&[jwk], &no_pins(), &case);
        let key = set
            .get("key-1")
            .unwrap_or_else(|| panic!("{case}: key-1 is in the set"));

        assert_eq!(set.self_check(), Ok(()), "{case}");
        assert_eq!(key.kid(), "key-1", "{case}");
        assert_eq!(key.alg(), alg, "{case}");
        assert_eq!(key.kind(), kind, "{case}");
    }
}

#[test]
fn loads_every_kind_in_one_set() {
    let keys = vec![
        private_jwk(KeyAlg::RsaOaep256, "rsa", "", 0),
        ec_jwk("p256", "P-256"),
        ec_jwk("p384", "P-384"),
        ec_jwk("p521", "P-521"),
        ec_jwk("x25519", "X25519"),
        private_jwk(KeyAlg::EcdhEsA128Kw, "p256-kw", "P-256", 0),
        private_jwk(KeyAlg::Dir, "dir16", "", 16),
        private_jwk(KeyAlg::Dir, "dir32", "", 32),
        private_jwk(KeyAlg::A128Kw, "a128kw", "", 0),
        private_jwk(KeyAlg::A256Kw, "a256kw", "", 0),
    ];

    let set = load_ok(&keys, &no_pins(), "every kind");

    assert_eq!(set.self_check(), Ok(()));
    let kids: Vec<&str> = set.iter().map(DecryptionKey::kid).collect();
    assert_eq!(
        kids,
        [
            "rsa", "p256", "p384", "p521", "x25519", "p256-kw", "dir16", "dir32", "a128kw", "a256kw"
        ]
    );
    assert!(set.get("missing").is_none());
}

#[test]
fn dir_key_fits_only_enc_of_its_length() {
    let set = load_ok(&[private_jwk(KeyAlg::Dir, "dir16", "", 16)], &no_pins(), "dir 16 bytes");
    let key = set.get("dir16").expect("dir16 is in the set");

    for enc in ContentEnc::ALL {
        assert_eq!(key.fits_enc(enc), enc.key_len() == 16, "{enc}");
    }
}

#[test]
fn accepts_key_ops_that_allow_decryption() {
    let cases = [
        vec!["decrypt"],
        vec!["unwrapKey"],
        vec!["deriveKey"],
        vec!["deriveBits"],
        vec!["encrypt", "decrypt"],
    ];
    for ops in cases {
        let case = format!("key_ops {ops:?}");
        let jwk = with_member(ec_jwk("k", "P-256"), "key_ops", json!(ops));

        assert!(load(&[jwk], &no_pins()).is_ok(), "{case}");
    }
}

#[test]
fn accepts_key_without_use() {
    let jwk = without_member(ec_jwk("k", "P-256"), "use");

    assert!(load(&[jwk], &no_pins()).is_ok());
}

#[test]
fn accepts_kid_of_256_bytes() {
    let kid = "k".repeat(256);
    let jwk = ec_jwk(&kid, "P-256");

    let set = load_ok(&[jwk], &no_pins(), "kid of 256 bytes");

    assert!(set.get(&kid).is_some());
}

// === configured algorithm pins ===

#[test]
fn configured_pin_applies_to_jwk_without_alg() {
    let cases = [
        (without_member(ec_jwk("k", "P-256"), "alg"), KeyAlg::EcdhEsA128Kw),
        (
            without_member(private_jwk(KeyAlg::RsaOaep, "k", "", 0), "alg"),
            KeyAlg::RsaOaep,
        ),
        (without_member(oct_jwk("k", "A256KW", 32), "alg"), KeyAlg::A256Kw),
    ];
    for (jwk, pinned) in cases {
        let case = format!("pinned to {pinned}");
        let configured = HashMap::from([("k".to_string(), pinned)]);

        let set = load_ok(&[jwk], &configured, &case);
        let key = set.get("k").expect("k is in the set");

        assert_eq!(key.alg(), pinned, "{case}");
        assert_eq!(set.self_check(), Ok(()), "{case}");
    }
}

#[test]
fn public_jwk_carries_configured_pin() {
    let jwk = without_member(ec_jwk("k", "P-256"), "alg");
    let configured = HashMap::from([("k".to_string(), KeyAlg::EcdhEsA128Kw)]);

    let set = load_ok(&[jwk], &configured, "pinned by configuration");
    let public = set
        .get("k")
        .and_then(DecryptionKey::public_jwk)
        .expect("an EC key has a public JWK");

    assert_eq!(public.get("alg"), Some(&json!("ECDH-ES+A128KW")));
}

#[test]
fn accepts_jwk_alg_equal_to_configured_pin() {
    let configured = HashMap::from([("k".to_string(), KeyAlg::EcdhEs)]);

    let set = load_ok(&[ec_jwk("k", "P-256")], &configured, "equal pins");

    assert_eq!(set.get("k").map(DecryptionKey::alg), Some(KeyAlg::EcdhEs));
}

#[test]
fn configured_pin_for_another_kid_does_not_apply() {
    let jwk = without_member(ec_jwk("k", "P-256"), "alg");
    let configured = HashMap::from([("other".to_string(), KeyAlg::EcdhEs)]);

    let (kid, reason) = rejection(&[jwk], &configured, "pin for another kid");

    assert_eq!(kid, "k");
    assert!(reason.contains("no algorithm is pinned"), "{reason}");
}

// === rejected keys ===

#[test]
fn rejects_key_without_usable_kid() {
    let long_kid = "k".repeat(257);
    let cases = [
        ("missing kid", without_member(ec_jwk("k", "P-256"), "kid"), "#0"),
        ("empty kid", ec_jwk("", "P-256"), ""),
        ("kid of 257 bytes", ec_jwk(&long_kid, "P-256"), long_kid.as_str()),
    ];
    for (case, jwk, expected_kid) in cases {
        let (kid, reason) = rejection(&[jwk], &no_pins(), case);

        assert_eq!(kid, expected_kid, "{case}");
        assert!(reason.contains("member kid is missing"), "{case}: {reason}");
    }
}

#[test]
fn rejects_duplicate_kid() {
    let keys = [ec_jwk("same", "P-256"), ec_jwk("same", "P-384")];

    let (kid, reason) = rejection(&keys, &no_pins(), "duplicate kid");

    assert_eq!(kid, "same");
    assert!(reason.contains("used twice"), "{reason}");
}

#[test]
fn rejects_key_without_alg_or_configured_pin() {
    let jwk = without_member(ec_jwk("k", "P-256"), "alg");

    let (kid, reason) = rejection(&[jwk], &no_pins(), "no alg");

    assert_eq!(kid, "k");
    assert!(reason.contains("no algorithm is pinned"), "{reason}");
}

#[test]
fn rejects_jwk_alg_that_differs_from_configured_pin() {
    let configured = HashMap::from([("k".to_string(), KeyAlg::EcdhEsA128Kw)]);

    let (_, reason) = rejection(&[ec_jwk("k", "P-256")], &configured, "pins differ");

    assert!(reason.contains("the JWK pins ECDH-ES"), "{reason}");
    assert!(reason.contains("the configuration pins ECDH-ES+A128KW"), "{reason}");
}

#[test]
fn rejects_unsupported_algorithms() {
    let cases = [
        ("RSA1_5", private_jwk(KeyAlg::RsaOaep, "k", "", 0)),
        ("PBES2-HS256+A128KW", oct_jwk("k", "A128KW", 16)),
        ("A128GCMKW", oct_jwk("k", "A128KW", 16)),
        ("none", ec_jwk("k", "P-256")),
    ];
    for (alg, jwk) in cases {
        let jwk = with_member(jwk, "alg", json!(alg));

        let reason = reason(&[jwk], alg);

        assert!(
            reason.contains(&format!("algorithm {alg:?} is not supported")),
            "{alg}: {reason}"
        );
    }
}

#[test]
fn rejects_signing_use() {
    let jwk = with_member(ec_jwk("k", "P-256"), "use", json!("sig"));

    let reason = reason(&[jwk], "use sig");

    assert!(reason.contains("member use must be \"enc\""), "{reason}");
}

#[test]
fn rejects_key_ops_without_decryption() {
    let cases = [vec!["sign"], vec!["encrypt", "wrapKey"], vec![]];
    for ops in cases {
        let case = format!("key_ops {ops:?}");
        let jwk = with_member(ec_jwk("k", "P-256"), "key_ops", json!(ops));

        let reason = reason(&[jwk], &case);

        assert!(reason.contains("key_ops does not allow decryption"), "{case}: {reason}");
    }
}

#[test]
fn rejects_rsa_key_of_1024_bits() {
    let jwk = rsa_jwk_of_bits("k", 1024);

    let reason = reason(&[jwk], "1024-bit RSA");

    assert!(reason.contains("RSA modulus has 1024 bits"), "{reason}");
}

#[test]
fn rejects_rsa_key_with_changed_d() {
    let original = private_jwk(KeyAlg::RsaOaep256, "k", "", 0);
    let mut d = decoded_member(&original, "d");
    *d.last_mut().expect("d is not empty") ^= 0x02;
    let changed = with_member(original.clone(), "d", json!(b64(&d)));

    let reason = reason(std::slice::from_ref(&changed), "changed d");

    assert!(reason.contains("RSA members do not form a valid key"), "{reason}");
    let err = load(&[changed], &no_pins())
        .map(|_| ())
        .expect_err("the key is inconsistent");
    assert_no_private_values(&err.to_string(), &[original], "changed d, original members");
}

#[test]
fn rejects_rsa_key_without_crt_member() {
    for name in ["p", "q", "dp", "dq", "qi"] {
        let jwk = without_member(private_jwk(KeyAlg::RsaOaep256, "k", "", 0), name);

        let reason = reason(&[jwk], name);

        assert!(
            reason.contains(&format!("member {name} is missing")),
            "{name}: {reason}"
        );
    }
}

#[test]
fn rejects_ec_key_with_other_keys_point() {
    for crv in ["P-256", "P-384", "P-521"] {
        let other = ec_jwk("other", crv);
        let mut jwk = ec_jwk("k", crv);
        jwk.insert("x".into(), other["x"].clone());
        jwk.insert("y".into(), other["y"].clone());

        let reason = reason(&[jwk], crv);

        assert!(reason.contains("does not match its public members"), "{crv}: {reason}");
    }
}

#[test]
fn rejects_ec_point_off_the_curve() {
    for crv in ["P-256", "P-384", "P-521"] {
        let mut jwk = ec_jwk("k", crv);
        let mut y = decoded_member(&jwk, "y");
        *y.last_mut().expect("y is not empty") ^= 0x01;
        jwk.insert("y".into(), json!(b64(&y)));

        let reason = reason(&[jwk], crv);

        assert!(reason.contains("does not match its public members"), "{crv}: {reason}");
    }
}

#[test]
fn rejects_ec_members_of_wrong_length() {
    let p256 = ec_jwk("k", "P-256");
    let p384 = ec_jwk("other", "P-384");
    let cases = [
        ("d of P-384 length", with_member(p256.clone(), "d", p384["d"].clone())),
        ("x of P-384 length", with_member(p256.clone(), "x", p384["x"].clone())),
    ];
    for (case, jwk) in cases {
        let reason = reason(&[jwk], case);

        assert!(
            reason.contains("members d and x must have 32 bytes for P-256"),
            "{case}: {reason}"
        );
    }
}

#[test]
fn rejects_unsupported_curve() {
    let cases = [
        (
            "secp256k1",
            with_member(ec_jwk("k", "P-256"), "crv", json!("secp256k1")),
        ),
        (
            "Ed25519 as ECDH key",
            with_member(ec_jwk("k", "X25519"), "crv", json!("Ed25519")),
        ),
        (
            "X25519 with kty EC",
            with_member(ec_jwk("k", "X25519"), "kty", json!("EC")),
        ),
    ];
    for (case, jwk) in cases {
        let reason = reason(&[jwk], case);

        assert!(reason.contains("is not supported"), "{case}: {reason}");
    }
}

#[test]
fn rejects_x25519_key_with_another_keys_x() {
    let other = ec_jwk("other", "X25519");
    let jwk = with_member(ec_jwk("k", "X25519"), "x", other["x"].clone());

    let reason = reason(&[jwk], "X25519 with another x");

    assert!(reason.contains("does not match its public members"), "{reason}");
}

#[test]
fn rejects_x25519_key_with_y_member() {
    let y = ec_jwk("other", "P-256")["y"].clone();
    let jwk = with_member(ec_jwk("k", "X25519"), "y", y);

    let reason = reason(&[jwk], "X25519 with y");

    assert!(reason.contains("member y is not allowed for X25519"), "{reason}");
}

#[test]
fn rejects_symmetric_keys_of_wrong_length() {
    let cases = [
        ("dir", 20, "a dir key of 20 bytes fits no content encryption"),
        ("dir", 8, "a dir key of 8 bytes fits no content encryption"),
        ("A128KW", 32, "A128KW needs a key of 16 bytes, not 32"),
        ("A256KW", 16, "A256KW needs a key of 32 bytes, not 16"),
    ];
    for (alg, len, expected) in cases {
        let case = format!("{alg} with {len} bytes");

        let reason = reason(&[oct_jwk("k", alg, len)], &case);

        assert_eq!(reason, expected, "{case}");
    }
}

#[test]
fn rejects_key_type_that_does_not_fit_alg() {
    let rsa = || private_jwk(KeyAlg::RsaOaep, "k", "", 0);
    let cases = [
        (
            "RSA key with ECDH-ES",
            with_member(rsa(), "alg", json!("ECDH-ES")),
            "an RSA key cannot be used with ECDH-ES",
        ),
        (
            "RSA key with A128KW",
            with_member(rsa(), "alg", json!("A128KW")),
            "an RSA key cannot be used with A128KW",
        ),
        (
            "EC key with RSA-OAEP",
            with_member(ec_jwk("k", "P-256"), "alg", json!("RSA-OAEP")),
            "an EC key cannot be used with RSA-OAEP",
        ),
        (
            "OKP key with dir",
            with_member(ec_jwk("k", "X25519"), "alg", json!("dir")),
            "an OKP key cannot be used with dir",
        ),
        (
            "oct key with ECDH-ES",
            oct_jwk("k", "ECDH-ES", 32),
            "an oct key cannot be used with ECDH-ES",
        ),
        (
            "oct key with RSA-OAEP-256",
            oct_jwk("k", "RSA-OAEP-256", 32),
            "an oct key cannot be used with RSA-OAEP-256",
        ),
    ];
    for (case, jwk, expected) in cases {
        assert_eq!(reason(&[jwk], case), expected, "{case}");
    }
}

#[test]
fn rejects_unknown_key_type() {
    let jwk = with_member(oct_jwk("k", "A128KW", 16), "kty", json!("AKP"));

    let reason = reason(&[jwk], "kty AKP");

    assert!(reason.contains("key type \"AKP\" is not supported"), "{reason}");
}

#[test]
fn rejects_whole_set_for_one_bad_key() {
    let keys = [
        ec_jwk("good", "P-256"),
        oct_jwk("bad", "A128KW", 20),
        ec_jwk("also-good", "P-384"),
    ];

    let (kid, _) = rejection(&keys, &no_pins(), "one bad key");

    assert_eq!(kid, "bad");
}

// === set and file limits ===

#[test]
fn rejects_unknown_member() {
    for name in ["x5c", "x5u", "jku", "oth"] {
        let jwk = with_member(ec_jwk("k", "P-256"), name, json!("value"));
        let text = set_text(std::slice::from_ref(&jwk));

        let err = RawJwkSet::parse(text.as_bytes(), ORIGIN)
            .map(|_| ())
            .expect_err("unknown members reject the file");

        assert!(matches!(err, JwkError::Syntax { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: {err}");
        assert_no_private_values(&err.to_string(), &[jwk], name);
    }
}

#[test]
fn rejects_unknown_member_when_loading_file() {
    let jwk = with_member(ec_jwk("k", "P-256"), "x5c", json!(["MIIB"]));
    let file = temp_file(set_text(&[jwk]).as_bytes());

    let err = KeySet::load(file.path(), &no_pins())
        .map(|_| ())
        .expect_err("x5c rejects the file");

    assert!(matches!(err, JwkError::Syntax { .. }), "{err:?}");
}

#[test]
fn accepts_64_keys() {
    let keys: Vec<Map<String, Value>> = (0..MAX_KEYS).map(|i| oct_jwk(&format!("k{i}"), "A128KW", 16)).collect();

    let set = load_ok(&keys, &no_pins(), "64 keys");

    assert_eq!(set.iter().count(), MAX_KEYS);
}

#[test]
fn rejects_more_than_64_keys() {
    let keys: Vec<Map<String, Value>> = (0..=MAX_KEYS)
        .map(|i| oct_jwk(&format!("k{i}"), "A128KW", 16))
        .collect();

    let (kid, reason) = rejection(&keys, &no_pins(), "65 keys");

    assert_eq!(kid, "(all)");
    assert!(reason.contains("more than 64 keys"), "{reason}");
}

#[test]
fn rejects_empty_keys_array() {
    let parsed = RawJwkSet::parse(br#"{"keys":[]}"#, ORIGIN).map(|_| ());
    let built = KeySet::from_raw(&RawJwkSet { keys: Vec::new() }, &no_pins(), ORIGIN).map(|_| ());

    assert!(matches!(parsed, Err(JwkError::NoKeys { .. })), "parse: {parsed:?}");
    assert!(matches!(built, Err(JwkError::NoKeys { .. })), "from_raw: {built:?}");
}

#[test]
fn rejects_empty_file() {
    let file = temp_file(b"");

    let read = RawJwkSet::read(file.path()).map(|_| ());
    let loaded = KeySet::load(file.path(), &no_pins()).map(|_| ());

    assert!(matches!(read, Err(JwkError::Empty { .. })), "read: {read:?}");
    assert!(matches!(loaded, Err(JwkError::Empty { .. })), "load: {loaded:?}");
}

#[test]
fn rejects_file_over_1_mib() {
    let len = usize::try_from(MAX_FILE_BYTES).expect("1 MiB fits in usize") + 1;
    let file = temp_file(&padded_set_text(len));

    let err = RawJwkSet::read(file.path())
        .map(|_| ())
        .expect_err("the file is over 1 MiB");

    assert!(
        matches!(
            err,
            JwkError::TooLarge {
                max: MAX_FILE_BYTES,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn accepts_file_of_exactly_1_mib() {
    let len = usize::try_from(MAX_FILE_BYTES).expect("1 MiB fits in usize");
    let file = temp_file(&padded_set_text(len));

    let raw = RawJwkSet::read(file.path()).expect("a file of exactly 1 MiB is read");

    assert_eq!(raw.keys.len(), 1);
}

#[test]
fn rejects_missing_file() {
    let dir = tempfile::tempdir().expect("a temporary directory can be created");
    let path = dir.path().join("absent.json");

    let err = KeySet::load(&path, &no_pins())
        .map(|_| ())
        .expect_err("the file does not exist");

    assert!(matches!(err, JwkError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.json"), "{err}");
}

#[test]
fn loads_set_from_file() {
    let keys = [ec_jwk("p256", "P-256"), oct_jwk("a128kw", "A128KW", 16)];
    let file = temp_file(set_text(&keys).as_bytes());

    let set = KeySet::load(file.path(), &no_pins()).expect("the file holds a valid set");

    assert_eq!(set.self_check(), Ok(()));
    assert_eq!(set.iter().count(), 2);
}

#[test]
fn names_file_in_key_errors() {
    let file = temp_file(set_text(&[oct_jwk("k", "A128KW", 20)]).as_bytes());
    let path_text = file.path().display().to_string();

    let err = KeySet::load(file.path(), &no_pins())
        .map(|_| ())
        .expect_err("the key has the wrong length");

    assert!(err.to_string().contains(&path_text), "{err}");
}

// === what the set shows ===

fn mixed_keys() -> Vec<Map<String, Value>> {
    vec![
        private_jwk(KeyAlg::RsaOaep256, "rsa", "", 0),
        ec_jwk("p384", "P-384"),
        ec_jwk("x25519", "X25519"),
        private_jwk(KeyAlg::Dir, "dir", "", 32),
        private_jwk(KeyAlg::A256Kw, "a256kw", "", 0),
    ]
}

#[test]
fn debug_output_omits_private_members() {
    let keys = mixed_keys();
    let set = load_ok(&keys, &no_pins(), "mixed keys");

    let set_debug = format!("{set:?}");

    assert_no_private_values(&set_debug, &keys, "key set");
    for key in set.iter() {
        let kid = key.kid();
        let key_debug = format!("{key:?}");

        assert_no_private_values(&key_debug, &keys, kid);
        assert!(key_debug.contains(kid), "{kid}: {key_debug}");
        assert!(key_debug.contains(&format!("{:?}", key.alg())), "{kid}: {key_debug}");
        assert!(set_debug.contains(kid), "{kid}: {set_debug}");
        assert!(set_debug.contains(&format!("{:?}", key.alg())), "{kid}: {set_debug}");
    }
}

#[test]
fn public_jwk_set_excludes_symmetric_keys() {
    let set = load_ok(&mixed_keys(), &no_pins(), "mixed keys");

    let public = set.public_jwk_set();

    let kids: Vec<&str> = public["keys"]
        .as_array()
        .expect("keys is an array")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid is a string"))
        .collect();
    assert_eq!(kids, ["rsa", "p384", "x25519"]);
}

#[test]
fn public_jwk_set_contains_only_public_members() {
    let keys = mixed_keys();
    let set = load_ok(&keys, &no_pins(), "mixed keys");

    let public = set.public_jwk_set();

    assert_no_private_values(&public.to_string(), &keys, "public set");
    for key in public["keys"].as_array().expect("keys is an array") {
        let kid = key["kid"].as_str().expect("kid is a string");
        for name in PRIVATE_MEMBERS {
            assert!(key.get(name).is_none(), "{kid} has member {name}");
        }
        assert_eq!(key.get("use"), Some(&json!("enc")), "{kid}");
        assert!(key.get("alg").is_some_and(Value::is_string), "{kid}");
    }
}

#[test]
fn public_jwk_keeps_public_members() {
    let jwk = ec_jwk("k", "P-256");
    let set = load_ok(std::slice::from_ref(&jwk), &no_pins(), "P-256");

    let public = set
        .get("k")
        .and_then(DecryptionKey::public_jwk)
        .expect("an EC key has a public JWK");

    for name in ["kty", "crv", "x", "y", "kid", "alg", "use"] {
        assert_eq!(public.get(name), jwk.get(name), "member {name}");
    }
}

#[test]
fn symmetric_key_has_no_public_jwk() {
    let set = load_ok(&[oct_jwk("k", "A128KW", 16)], &no_pins(), "A128KW");

    assert!(set.get("k").expect("k is in the set").public_jwk().is_none());
}
