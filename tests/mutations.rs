//! Property tests: a valid token changed in any way is rejected, and no
//! change makes `Decrypter::decrypt` panic.
//!
//! jwed accepts only canonical unpadded base64url, so every changed string
//! must be rejected, including one that a lenient decoder would read as the
//! same bytes. Each property runs 256 cases so that the file finishes in a
//! few seconds in a debug build.

mod common;

use std::{
    panic::{self, AssertUnwindSafe},
    sync::OnceLock,
};

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use common::{Issuer, KeyFiles, good_claims, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    decrypt::{Decrypter, Policy, Request, TokenInfo},
};
use proptest::{prelude::*, sample::Index, test_runner::TestCaseError};

const BASE64URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Valid tokens, minted once, and the decrypter that accepts them.
struct Fixture {
    _files: KeyFiles,
    decrypter: Decrypter,
    tokens: Vec<(&'static str, String)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let files = write_keys(
            &[
                (KeyAlg::EcdhEs, "enc-p256", "P-256"),
                (KeyAlg::RsaOaep256, "enc-rsa", "P-256"),
                (KeyAlg::A256Kw, "enc-a256kw", "P-256"),
            ],
            &[(SigAlg::ES256, "sig-es256")],
        );
        let policy = Policy {
            content_encryption: ContentEnc::ALL.to_vec(),
            ..test_policy()
        };
        let decrypter = common::decrypter(&files, policy);
        let mint = |kid: &str, enc: ContentEnc| Issuer::new(&files, "sig-es256", kid).mint(&good_claims(), enc);
        let tokens = vec![
            ("ECDH-ES P-256, A256GCM", mint("enc-p256", ContentEnc::A256Gcm)),
            ("RSA-OAEP-256, A128GCM", mint("enc-rsa", ContentEnc::A128Gcm)),
            ("A256KW, A128CBC-HS256", mint("enc-a256kw", ContentEnc::A128CbcHs256)),
        ];
        for (name, token) in &tokens {
            assert!(
                decrypt(&decrypter, token).is_ok(),
                "the unchanged {name} token must be accepted"
            );
        }
        Fixture {
            _files: files,
            decrypter,
            tokens,
        }
    })
}

fn config() -> ProptestConfig {
    // No failure persistence: a failing case is printed, not written into
    // the source tree.
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn decrypt(decrypter: &Decrypter, token: &str) -> Result<(), String> {
    let request = Request {
        token,
        audience: None,
        required_scopes: &[],
    };
    let mut info = TokenInfo::default();
    decrypter
        .decrypt(request, common::now(), &mut info)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Fails the case when `mutated` differs from the original token and is
/// accepted, or when decrypting it panics. An unchanged string, which a
/// mutation such as swapping two equal segments can produce, is skipped.
fn check_rejected(token_index: &Index, mutate: impl FnOnce(&str) -> String) -> Result<(), TestCaseError> {
    let fixture = fixture();
    let (name, original) = token_index.get(&fixture.tokens);
    let mutated = mutate(original);
    if mutated == *original {
        return Ok(());
    }

    let outcome = panic::catch_unwind(AssertUnwindSafe(|| decrypt(&fixture.decrypter, &mutated)));
    prop_assert!(outcome.is_ok(), "{name}: decrypt panicked on {mutated:?}");
    prop_assert!(
        outcome.is_ok_and(|result| result.is_err()),
        "{name}: a changed token was accepted\noriginal: {original}\nmutated:  {mutated}"
    );
    Ok(())
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flipped_bit_is_rejected(token in any::<Index>(), position in any::<Index>(), bit in 0u8..7) {
        // Bit 7 is left alone so that the token stays ASCII, as gRPC strings
        // must be valid UTF-8.
        check_rejected(&token, |original| {
            let mut bytes = original.as_bytes().to_vec();
            let at = position.index(bytes.len());
            bytes[at] ^= 1 << bit;
            String::from_utf8(bytes).expect("ASCII stays ASCII")
        })?;
    }

    #[test]
    fn truncated_token_is_rejected(token in any::<Index>(), position in any::<Index>()) {
        check_rejected(&token, |original| original[..position.index(original.len())].to_owned())?;
    }

    #[test]
    fn extended_token_is_rejected(token in any::<Index>(), suffix in "[A-Za-z0-9_-]{1,16}") {
        check_rejected(&token, |original| format!("{original}{suffix}"))?;
    }

    #[test]
    fn inserted_characters_are_rejected(token in any::<Index>(), position in any::<Index>(), inserted in "[A-Za-z0-9_-]{1,4}") {
        check_rejected(&token, |original| {
            let at = position.index(original.len() + 1);
            format!("{}{inserted}{}", &original[..at], &original[at..])
        })?;
    }

    #[test]
    fn substituted_character_is_rejected(token in any::<Index>(), position in any::<Index>(), replacement in any::<Index>()) {
        check_rejected(&token, |original| {
            let mut bytes = original.as_bytes().to_vec();
            let at = position.index(bytes.len());
            bytes[at] = *replacement.get(BASE64URL_ALPHABET);
            String::from_utf8(bytes).expect("ASCII stays ASCII")
        })?;
    }

    #[test]
    fn character_replaced_by_dot_is_rejected(token in any::<Index>(), position in any::<Index>()) {
        check_rejected(&token, |original| {
            let at = position.index(original.len());
            format!("{}.{}", &original[..at], &original[at + 1..])
        })?;
    }

    #[test]
    fn swapped_segments_are_rejected(token in any::<Index>(), first in 0usize..5, second in 0usize..5) {
        check_rejected(&token, |original| {
            let mut parts = segments(original);
            parts.swap(first, second);
            parts.join(".")
        })?;
    }

    #[test]
    fn duplicated_segment_is_rejected(token in any::<Index>(), index in 0usize..5) {
        check_rejected(&token, |original| {
            let mut parts = segments(original);
            parts.insert(index, parts[index].clone());
            parts.join(".")
        })?;
    }

    #[test]
    fn deleted_segment_is_rejected(token in any::<Index>(), index in 0usize..5) {
        check_rejected(&token, |original| {
            let mut parts = segments(original);
            parts.remove(index);
            parts.join(".")
        })?;
    }

    #[test]
    fn reencoded_segment_is_rejected(token in any::<Index>(), index in 0usize..5, style in 0usize..3) {
        // Padded base64url, padded standard base64 and unpadded standard
        // base64 all decode to the same bytes as the original segment.
        check_rejected(&token, |original| {
            let mut parts = segments(original);
            let bytes = Base64UrlUnpadded::decode_vec(&parts[index]).expect("the original segment is base64url");
            parts[index] = match style {
                0 => Base64Url::encode_string(&bytes),
                1 => Base64::encode_string(&bytes),
                _ => Base64Unpadded::encode_string(&bytes),
            };
            parts.join(".")
        })?;
    }
}

#[test]
fn every_last_character_variant_is_rejected() {
    // The last character of a segment whose length is not a multiple of 4
    // carries unused low bits. Trying all 64 characters there covers every
    // non-canonical spelling of the same bytes, which a lenient decoder
    // would accept.
    let fixture = fixture();
    for (name, original) in &fixture.tokens {
        let parts = segments(original);
        for index in 0..parts.len() {
            let Some(last) = parts[index].len().checked_sub(1) else {
                continue;
            };
            for &replacement in BASE64URL_ALPHABET {
                let mut changed = parts.clone();
                let mut segment = changed[index].clone().into_bytes();
                segment[last] = replacement;
                changed[index] = String::from_utf8(segment).expect("ASCII");
                let mutated = changed.join(".");
                if mutated == *original {
                    continue;
                }
                let case = format!("{name}, segment {index}, last character {:?}", char::from(replacement));
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| decrypt(&fixture.decrypter, &mutated)));
                let result = outcome.unwrap_or_else(|_| panic!("{case}: decrypt panicked"));
                assert!(result.is_err(), "{case}: a changed token was accepted");
            }
        }
    }
}
