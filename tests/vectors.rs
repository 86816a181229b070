//! Published JWE test vectors run through jwed's public API: RFC 7516
//! Appendix A.1 and A.3, and the Wycheproof JSON Web Encryption vectors.

use std::{
    collections::{BTreeMap, HashMap},
    panic::{self, AssertUnwindSafe},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use jwed::{
    alg::{ContentEnc, KeyAlg},
    decrypt::{DecryptError, Decrypter, InvalidToken, Policy, Request, TokenInfo, UnsignedTokens},
    jwk::RawJwkSet,
    keys::KeySet,
};

/// Request time in seconds since the epoch. No vector reaches claim
/// validation, so any value works.
const NOW: i64 = 1_700_000_000;

const RFC7516_A1: &str = include_str!("fixtures/rfc7516/a1.json");
const RFC7516_A3: &str = include_str!("fixtures/rfc7516/a3.json");

/// The Wycheproof JWE vectors, copied unchanged into the fixtures.
const WYCHEPROOF_JWE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/wycheproof/json_web_encryption_test.json"
);

/// Returns a policy that enables every content encryption and accepts plain
/// payloads, so that `open` and `decrypt` go as far as the key allows.
fn permissive_policy() -> Policy {
    Policy {
        content_encryption: ContentEnc::ALL.to_vec(),
        unsigned: UnsignedTokens::AllKeys,
        ..Policy::default()
    }
}

/// Builds a key set holding only `jwk`, which must carry a `kid`. When
/// `configured_alg` is set it pins the key through the configuration map,
/// as `[key_algorithms]` does.
fn one_key_set(jwk: &Map<String, Value>, configured_alg: Option<KeyAlg>) -> Result<KeySet, String> {
    let kid = jwk.get("kid").and_then(Value::as_str).ok_or("the JWK has no kid")?;
    let mut configured = HashMap::new();
    if let Some(alg) = configured_alg {
        configured.insert(kid.to_owned(), alg);
    }

    let set = serde_json::json!({ "keys": [jwk] });
    let bytes = serde_json::to_vec(&set).map_err(|err| err.to_string())?;
    let raw = RawJwkSet::parse(&bytes, "test vector").map_err(|err| err.to_string())?;
    KeySet::from_raw(&raw, &configured, "test vector").map_err(|err| err.to_string())
}

/// Decodes the protected header of a compact JWE, or returns `None` when it
/// is not base64url-encoded JSON.
fn protected_header(token: &str) -> Option<Map<String, Value>> {
    let segment = token.split('.').next()?;
    let bytes = Base64UrlUnpadded::decode_vec(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn decode_hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "hex string {text:?} has an odd length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("member pt is not valid hex"))
        .collect()
}

/// Runs the whole pipeline with no audience and no required scopes.
fn decrypt_token(decrypter: &Decrypter, token: &str) -> Result<jwed::decrypt::Decrypted, DecryptError> {
    let request = Request {
        token,
        audience: None,
        required_scopes: &[],
    };
    decrypter.decrypt(request, NOW, &mut TokenInfo::default())
}

// === RFC 7516 Appendix A ===

/// One RFC 7516 fixture: a private JWK without `kid` or `alg`, a compact
/// JWE without `kid`, and the published plaintext.
struct RfcVector {
    jwk: Map<String, Value>,
    token: String,
    plaintext: String,
}

impl RfcVector {
    fn parse(text: &str, kid: &str) -> Self {
        let fixture: Value = serde_json::from_str(text).expect("RFC 7516 fixture is not JSON");
        let mut jwk = fixture["jwk"]
            .as_object()
            .expect("fixture member jwk is not an object")
            .clone();
        jwk.insert("kid".into(), kid.into());
        RfcVector {
            jwk,
            token: fixture["token"]
                .as_str()
                .expect("fixture member token is not a string")
                .to_owned(),
            plaintext: fixture["plaintext"]
                .as_str()
                .expect("fixture member plaintext is not a string")
                .to_owned(),
        }
    }

    fn decrypter(&self, alg: KeyAlg, policy: Policy) -> Decrypter {
        let keys = one_key_set(&self.jwk, Some(alg)).expect("RFC 7516 key is rejected");
        Decrypter::new(keys, None, policy)
    }
}

/// Opens an RFC vector under a policy that enables `enc` and plain payloads,
/// and checks that the only key was selected without a `kid` in the token.
fn assert_rfc_vector_opens(vector: &RfcVector, kid: &str, alg: KeyAlg, enc: ContentEnc) {
    let policy = Policy {
        content_encryption: vec![enc],
        unsigned: UnsignedTokens::AllKeys,
        ..Policy::default()
    };
    let decrypter = vector.decrypter(alg, policy);
    let mut info = TokenInfo::default();

    let opened = decrypter
        .open(&vector.token, &mut info)
        .expect("published token is rejected");

    assert_eq!(opened.plaintext.as_slice(), vector.plaintext.as_bytes());
    assert_eq!(opened.key.kid(), kid);
    assert!(
        !opened.nested_jwt,
        "the published token has no cty, so it is not a nested JWT"
    );
    assert_eq!(info.alg, Some(alg));
    assert_eq!(info.enc, Some(enc));
}

#[test]
fn rfc7516_a1_opens_to_plaintext() {
    let vector = RfcVector::parse(RFC7516_A1, "rfc7516-a1");
    assert_rfc_vector_opens(&vector, "rfc7516-a1", KeyAlg::RsaOaep, ContentEnc::A256Gcm);
}

#[test]
fn rfc7516_a3_opens_to_plaintext() {
    let vector = RfcVector::parse(RFC7516_A3, "rfc7516-a3");
    assert_rfc_vector_opens(&vector, "rfc7516-a3", KeyAlg::A128Kw, ContentEnc::A128CbcHs256);
}

#[test]
fn rfc7516_a1_default_policy_requires_signature() {
    let vector = RfcVector::parse(RFC7516_A1, "rfc7516-a1");
    let decrypter = vector.decrypter(KeyAlg::RsaOaep, Policy::default());

    // A256GCM is enabled by default, so the token decrypts, but its payload
    // is plain text rather than a signed JWT.
    let error = decrypt_token(&decrypter, &vector.token).expect_err("plain payload is accepted");

    assert_eq!(error, DecryptError::Invalid(InvalidToken::SignatureRequired));
}

#[test]
fn rfc7516_a3_default_policy_rejects_cbc() {
    let vector = RfcVector::parse(RFC7516_A3, "rfc7516-a3");
    let decrypter = vector.decrypter(KeyAlg::A128Kw, Policy::default());

    let error = decrypt_token(&decrypter, &vector.token).expect_err("A128CBC-HS256 is accepted by default");

    assert_eq!(
        error,
        DecryptError::Invalid(InvalidToken::EncNotAllowed(ContentEnc::A128CbcHs256))
    );
}

// === Wycheproof ===

/// Required outcome of one Wycheproof case under the permissive policy.
#[derive(Debug)]
enum Expected {
    /// A valid case that jwed implements, for which `open` must return
    /// these bytes.
    Plaintext(Vec<u8>),
    /// A valid case that uses a feature jwed leaves out on purpose.
    NotImplemented(String),
    /// An invalid case.
    Invalid,
    /// A case whose group key jwed cannot load.
    KeyNotUsable,
}

/// Counts of case outcomes, and one line per failed check.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    valid_decrypted: usize,
    valid_not_implemented_rejected: usize,
    invalid_rejected: usize,
    key_not_usable_groups: usize,
    key_not_usable_cases: usize,
    panics: usize,
    invalid_accepted: usize,
    not_implemented_accepted: usize,
    wrong_plaintexts: usize,
    valid_rejected: usize,
    default_policy_not_invalid: usize,
    unexpected_key_failures: usize,
    /// Rejection causes from `open` under the permissive policy.
    rejection_causes: BTreeMap<String, usize>,
    /// Feature that made each valid case unimplemented.
    not_implemented_features: BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// Outcome of one call to `open` guarded by `catch_unwind`.
enum OpenOutcome {
    Plaintext(Vec<u8>),
    Rejected(InvalidToken),
    Panicked,
}

fn guarded_open(decrypter: &Decrypter, token: &str) -> OpenOutcome {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut info = TokenInfo::default();
        decrypter.open(token, &mut info).map(|opened| opened.plaintext.to_vec())
    }));
    match result {
        Ok(Ok(plaintext)) => OpenOutcome::Plaintext(plaintext),
        Ok(Err(cause)) => OpenOutcome::Rejected(cause),
        Err(_) => OpenOutcome::Panicked,
    }
}

/// Returns the name of the key management algorithm a group's key is meant
/// for. That is the JWK's own `alg`, or else the `alg` of the group's first
/// valid case.
fn group_alg_name(group: &Value) -> Option<String> {
    if let Some(alg) = group["private"]["alg"].as_str() {
        return Some(alg.to_owned());
    }
    let tests = group["tests"].as_array()?;
    let first_valid = tests.iter().find(|case| case["result"] == "valid")?;
    let header = protected_header(first_valid["jwe"].as_str()?)?;
    header.get("alg").and_then(Value::as_str).map(str::to_owned)
}

/// Returns the feature of a valid case that jwed does not implement, or
/// `None` when jwed is expected to decrypt it.
fn unimplemented_feature(token: &str) -> Option<String> {
    // A header that does not decode counts as implemented, so the case
    // fails unless jwed decrypts it.
    let header = protected_header(token)?;
    if let Some(alg) = header.get("alg").and_then(Value::as_str) {
        if alg.parse::<KeyAlg>().is_err() {
            return Some(format!("alg {alg}"));
        }
    }
    if let Some(enc) = header.get("enc").and_then(Value::as_str) {
        if enc.parse::<ContentEnc>().is_err() {
            return Some(format!("enc {enc}"));
        }
    }
    // jwed rejects compressed payloads because josekit inflates them
    // without a size limit.
    if header.contains_key("zip") {
        return Some("zip".into());
    }
    None
}

/// Runs one case through `open` under the permissive policy and `decrypt`
/// under the default policy, and records the outcome.
fn check_case(tally: &mut Tally, case: &Value, expected: Expected, permissive: &Decrypter, strict: &Decrypter) {
    let tc_id = &case["tcId"];
    let comment = case["comment"].as_str().unwrap_or("");
    let token = case["jwe"].as_str().expect("member jwe is not a string");
    let fail = |tally: &mut Tally, what: String| tally.failures.push(format!("tcId {tc_id} ({comment}): {what}"));
    tally.cases += 1;

    match (guarded_open(permissive, token), expected) {
        (OpenOutcome::Panicked, _) => {
            tally.panics += 1;
            fail(tally, "open panicked".into());
        }
        (OpenOutcome::Plaintext(actual), Expected::Plaintext(expected)) if actual == expected => {
            tally.valid_decrypted += 1;
        }
        (OpenOutcome::Plaintext(actual), Expected::Plaintext(_)) => {
            tally.wrong_plaintexts += 1;
            fail(
                tally,
                format!("open returned a different plaintext of {} bytes", actual.len()),
            );
        }
        (OpenOutcome::Rejected(cause), Expected::Plaintext(_)) => {
            tally.valid_rejected += 1;
            fail(tally, format!("valid case rejected: {cause}"));
        }
        (OpenOutcome::Plaintext(_), Expected::NotImplemented(feature)) => {
            tally.not_implemented_accepted += 1;
            fail(
                tally,
                format!("open accepted a token using {feature}, which jwed does not implement"),
            );
        }
        (OpenOutcome::Plaintext(_), Expected::Invalid | Expected::KeyNotUsable) => {
            tally.invalid_accepted += 1;
            fail(tally, "open returned a plaintext for a case it must reject".into());
        }
        (OpenOutcome::Rejected(cause), expected) => {
            *tally.rejection_causes.entry(cause.to_string()).or_default() += 1;
            match expected {
                Expected::NotImplemented(feature) => {
                    tally.valid_not_implemented_rejected += 1;
                    *tally.not_implemented_features.entry(feature).or_default() += 1;
                }
                Expected::Invalid => tally.invalid_rejected += 1,
                Expected::KeyNotUsable => tally.key_not_usable_cases += 1,
                Expected::Plaintext(_) => unreachable!("matched by an earlier arm"),
            }
        }
    }

    // No vector is a nested JWT, so the default policy must reject every
    // one of them before claim validation.
    let result = panic::catch_unwind(AssertUnwindSafe(|| decrypt_token(strict, token)));
    match result {
        Ok(Err(DecryptError::Invalid(_))) => {}
        Ok(Err(other)) => {
            tally.default_policy_not_invalid += 1;
            fail(
                tally,
                format!("decrypt under the default policy returned {other:?} instead of Invalid"),
            );
        }
        Ok(Ok(_)) => {
            tally.default_policy_not_invalid += 1;
            fail(tally, "decrypt under the default policy accepted the token".into());
        }
        Err(_) => {
            tally.panics += 1;
            fail(tally, "decrypt under the default policy panicked".into());
        }
    }
}

/// Decrypters holding the RFC 7516 A.1 key, which no Wycheproof token is
/// for. Cases whose own key jwed cannot load run against these, to check
/// that such tokens are rejected without a panic.
fn unrelated_decrypters() -> (Decrypter, Decrypter) {
    let vector = RfcVector::parse(RFC7516_A1, "rfc7516-a1");
    (
        vector.decrypter(KeyAlg::RsaOaep, permissive_policy()),
        vector.decrypter(KeyAlg::RsaOaep, Policy::default()),
    )
}

fn print_tally(tally: &Tally) {
    eprintln!("Wycheproof JWE vectors: {} cases", tally.cases);
    eprintln!("  valid, decrypted to pt:              {}", tally.valid_decrypted);
    eprintln!(
        "  valid, rejected as not implemented:  {}",
        tally.valid_not_implemented_rejected
    );
    eprintln!("  invalid, rejected:                   {}", tally.invalid_rejected);
    eprintln!(
        "  rejected, key not usable:            {} cases in {} groups",
        tally.key_not_usable_cases, tally.key_not_usable_groups
    );
    eprintln!("  panics:                              {}", tally.panics);
    eprintln!("  invalid cases accepted:              {}", tally.invalid_accepted);
    eprintln!(
        "  not implemented cases accepted:      {}",
        tally.not_implemented_accepted
    );
    eprintln!("  wrong plaintexts:                    {}", tally.wrong_plaintexts);
    eprintln!("  valid implemented cases rejected:    {}", tally.valid_rejected);
    eprintln!(
        "  default policy results not Invalid:  {}",
        tally.default_policy_not_invalid
    );
    eprintln!(
        "  keys of supported algs not loaded:   {}",
        tally.unexpected_key_failures
    );
    eprintln!("  features not implemented:");
    for (feature, count) in &tally.not_implemented_features {
        eprintln!("    {count:3}  {feature}");
    }
    eprintln!("  rejection causes from open:");
    for (cause, count) in &tally.rejection_causes {
        eprintln!("    {count:3}  {cause}");
    }
    for failure in &tally.failures {
        eprintln!("  FAILED {failure}");
    }
}

#[test]
fn wycheproof_jwe_vectors() {
    let text = std::fs::read_to_string(WYCHEPROOF_JWE)
        .unwrap_or_else(|err| panic!("cannot read the Wycheproof JWE vectors at {WYCHEPROOF_JWE}: {err}"));
    let vectors: Value = serde_json::from_str(&text).expect("Wycheproof JWE vectors are not JSON");
    let groups = vectors["testGroups"]
        .as_array()
        .expect("member testGroups is not an array");
    let (unrelated_permissive, unrelated_strict) = unrelated_decrypters();
    let mut tally = Tally::default();

    for (index, group) in groups.iter().enumerate() {
        let mut jwk = group["private"]
            .as_object()
            .expect("member private is not an object")
            .clone();
        if !jwk.contains_key("kid") {
            jwk.insert("kid".into(), format!("wycheproof-{index}").into());
        }
        let alg_name = group_alg_name(group);
        let supported_alg = alg_name.as_deref().and_then(|name| name.parse::<KeyAlg>().ok());
        // A JWK's own alg pins the key, and the configuration map only fills
        // in a missing one.
        let configured_alg = if jwk.contains_key("alg") { None } else { supported_alg };

        let key_sets = one_key_set(&jwk, configured_alg).and_then(|permissive| {
            let strict = one_key_set(&jwk, configured_alg)?;
            Ok((permissive, strict))
        });
        let decrypters = match key_sets {
            Ok((permissive, strict)) => Some((
                Decrypter::new(permissive, None, permissive_policy()),
                Decrypter::new(strict, None, Policy::default()),
            )),
            Err(reason) => {
                tally.key_not_usable_groups += 1;
                if supported_alg.is_some() {
                    // The key names an algorithm jwed implements, so it
                    // should have loaded.
                    tally.unexpected_key_failures += 1;
                    tally
                        .failures
                        .push(format!("group {index}: key for {alg_name:?} is rejected: {reason}"));
                }
                None
            }
        };

        let tests = group["tests"].as_array().expect("member tests is not an array");
        for case in tests {
            let token = case["jwe"].as_str().expect("member jwe is not a string");
            let valid = case["result"] == "valid";
            let expected = match (&decrypters, valid) {
                (None, _) => Expected::KeyNotUsable,
                (Some(_), false) => Expected::Invalid,
                (Some(_), true) => match unimplemented_feature(token) {
                    Some(feature) => Expected::NotImplemented(feature),
                    None => Expected::Plaintext(decode_hex(case["pt"].as_str().expect("valid case has no pt"))),
                },
            };
            let (permissive, strict) = match &decrypters {
                Some((permissive, strict)) => (permissive, strict),
                None => (&unrelated_permissive, &unrelated_strict),
            };
            check_case(&mut tally, case, expected, permissive, strict);
        }
    }

    print_tally(&tally);

    assert_eq!(tally.panics, 0, "calls panicked");
    assert_eq!(tally.invalid_accepted, 0, "invalid cases returned a plaintext");
    assert_eq!(
        tally.not_implemented_accepted, 0,
        "cases using unimplemented features returned a plaintext"
    );
    assert_eq!(
        tally.wrong_plaintexts, 0,
        "valid cases decrypted to a different plaintext"
    );
    assert_eq!(
        tally.valid_rejected, 0,
        "valid cases that jwed implements were rejected"
    );
    assert_eq!(
        tally.default_policy_not_invalid, 0,
        "the default policy did not return Invalid"
    );
    assert_eq!(
        tally.unexpected_key_failures, 0,
        "keys for supported algorithms did not load"
    );
    let number_of_tests = vectors["numberOfTests"]
        .as_u64()
        .expect("member numberOfTests is not a number");
    assert_eq!(
        number_of_tests, 139,
        "the vector file changed; recount the expected numbers below"
    );
    assert_eq!(tally.cases as u64, number_of_tests, "not every case was run");
    // 49 of the 65 valid cases use an alg, enc and header members that jwed
    // implements and have a key it can load. Of the other 16, 8 use RSA1_5,
    // 6 use AES-GCM key wrap, 1 uses zip, and 1 is a dir token whose JWK
    // names the content encryption "A128GCM" as its alg.
    assert_eq!(tally.valid_decrypted, 49, "fewer valid cases decrypted than expected");
}
