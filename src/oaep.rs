//! RSA-OAEP decryption that does the same work whether the OAEP padding is
//! valid or not.
//!
//! josekit stops at an OAEP padding failure, but goes on to decrypt the
//! content when the padding is valid. The time of a rejection then tells an
//! attacker whether a chosen encrypted key had valid padding: the oracle
//! that Manger's attack on RSA-OAEP needs. Here a padding failure is
//! replaced by a random content key, the content decryption runs in every
//! case, and only then is the token rejected (the method of RFC 3218
//! section 2.3.2, which RFC 7516 section 11.5 recommends for RSA1_5).

use josekit::jwe::{JweContentEncryption, enc};
use openssl::{
    md::Md,
    pkey::{PKey, Private},
    pkey_ctx::PkeyCtx,
    rsa::Padding,
};
use zeroize::Zeroizing;

use crate::{
    alg::{ContentEnc, KeyAlg},
    compact::CompactJwe,
};

/// Any failure of [`decrypt`], with no detail: the caller reports one
/// opaque cause for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("RSA-OAEP decryption failed")]
pub struct Failed;

/// Decrypts a compact JWE that the front stage has parsed, reusing its
/// decoded segments.
///
/// # Errors
///
/// Returns [`Failed`] for any failure.
pub fn decrypt(key: &PKey<Private>, alg: KeyAlg, jwe: &CompactJwe<'_>) -> Result<Zeroizing<Vec<u8>>, Failed> {
    let content = jwe.header.enc;
    let mut cek = Zeroizing::new(vec![0u8; content.key_len()]);
    openssl::rand::rand_bytes(&mut cek).map_err(|_| Failed)?;
    let unwrapped = unwrap(key, alg, &jwe.encrypted_key);
    let key_valid = match unwrapped {
        Some(unwrapped) if unwrapped.len() == cek.len() => {
            cek = unwrapped;
            true
        }
        _ => false,
    };

    // The content is decrypted with the random key too, so that both
    // outcomes cost the same; its result is then discarded.
    let plaintext = content_encryption(content).decrypt(
        &cek,
        Some(&jwe.iv),
        &jwe.ciphertext,
        jwe.header_segment.as_bytes(),
        Some(&jwe.tag),
    );
    match (key_valid, plaintext) {
        (true, Ok(plaintext)) => Ok(Zeroizing::new(plaintext)),
        (_, Ok(plaintext)) => {
            drop(Zeroizing::new(plaintext));
            Err(Failed)
        }
        _ => Err(Failed),
    }
}

fn unwrap(key: &PKey<Private>, alg: KeyAlg, encrypted_key: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    // RFC 7518 section 4.3: RSA-OAEP uses SHA-1 and RSA-OAEP-256 SHA-256,
    // each for both the OAEP hash and MGF1.
    let digest = match alg {
        KeyAlg::RsaOaep => Md::sha1(),
        KeyAlg::RsaOaep256 => Md::sha256(),
        _ => return None,
    };
    let mut ctx = PkeyCtx::new(key).ok()?;
    ctx.decrypt_init().ok()?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    ctx.set_rsa_oaep_md(digest).ok()?;
    ctx.set_rsa_mgf1_md(digest).ok()?;

    let mut out = Zeroizing::new(Vec::new());
    ctx.decrypt_to_vec(encrypted_key, &mut out).ok()?;
    Some(out)
}

fn content_encryption(content: ContentEnc) -> &'static dyn JweContentEncryption {
    match content {
        ContentEnc::A128Gcm => &enc::A128GCM,
        ContentEnc::A192Gcm => &enc::A192GCM,
        ContentEnc::A256Gcm => &enc::A256GCM,
        ContentEnc::A128CbcHs256 => &enc::A128CBC_HS256,
        ContentEnc::A192CbcHs384 => &enc::A192CBC_HS384,
        ContentEnc::A256CbcHs512 => &enc::A256CBC_HS512,
    }
}
