//! `jwed mint`.

use std::{
    io::Write,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

use super::{EXIT_USAGE, MintArgs};
use crate::{
    alg::ContentEnc,
    json,
    mint::{self, Recipient, Signer},
};

pub(super) fn run(args: &MintArgs) -> u8 {
    match mint_token(args) {
        Ok(token) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{token}").is_err() {
                return 1;
            }
            0
        }
        Err(message) => {
            eprintln!("jwed mint: {message}");
            EXIT_USAGE
        }
    }
}

fn mint_token(args: &MintArgs) -> Result<String, String> {
    let enc: ContentEnc = args
        .enc
        .parse()
        .map_err(|_| format!("content encryption {:?} is not supported", args.enc))?;
    let mut claims = read_claims(&args.claims)?;
    add_times(&mut claims, args.ttl);

    let signer = match (&args.signing_keys, args.unsigned) {
        (Some(path), _) => Some(Signer::from_file(path, args.signing_kid.as_deref()).map_err(|err| err.to_string())?),
        (None, true) => None,
        (None, false) => return Err("--signing-keys is required unless --unsigned is given".into()),
    };
    let recipient = Recipient::from_file(&args.encryption_keys, args.kid.as_deref()).map_err(|err| err.to_string())?;
    mint::mint(&claims, signer.as_ref(), &recipient, enc).map_err(|err| err.to_string())
}

fn read_claims(argument: &str) -> Result<Map<String, Value>, String> {
    let text = match argument.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|err| format!("cannot read claims file {path}: {err}"))?,
        None => argument.as_bytes().to_vec(),
    };
    json::parse_object(&text).map_err(|err| format!("claims are not a JSON object: {err}"))
}

/// Adds `iat`, `exp` and `jti` when the claims lack them.
fn add_times(claims: &mut Map<String, Value>, ttl: u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    claims.entry("iat").or_insert_with(|| now.into());
    claims.entry("exp").or_insert_with(|| (now + u64::from(ttl)).into());
    claims
        .entry("jti")
        .or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
}
