//! `jwed keygen`.

use serde_json::Value;

use super::{EXIT_USAGE, KeygenArgs};
use crate::keygen::{self, GeneratedKey, KeySpec};

pub(super) fn run(args: &KeygenArgs) -> u8 {
    match generate(args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("jwed keygen: {message}");
            EXIT_USAGE
        }
    }
}

fn generate(args: &KeygenArgs) -> Result<(), String> {
    let spec = KeySpec::parse(&args.alg).map_err(|err| err.to_string())?;
    let kid = match &args.kid {
        Some(kid) => kid.clone(),
        None => format!("{}-{}", args.alg.to_ascii_lowercase(), &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let key = GeneratedKey::generate(spec, &kid, &args.crv, args.bits, args.size).map_err(|err| err.to_string())?;
    if key.public().is_some() && args.public_out.exists() {
        return Err(format!("{} already exists; choose another --public-out", args.public_out.display()));
    }

    let private = keygen::jwk_set_text(&[key.expose_private_json()]);
    keygen::write_private_file(&args.out, &private).map_err(|err| err.to_string())?;
    eprintln!("wrote private key {kid:?} to {} (mode 0600)", args.out.display());

    if let Some(public) = key.public() {
        keygen::write_public_file(&args.public_out, vec![Value::Object(public.clone())]).map_err(|err| err.to_string())?;
        eprintln!("wrote public key {kid:?} to {}", args.public_out.display());
    } else {
        eprintln!("symmetric key: no public file; share {} with the issuer over a secure channel", args.out.display());
    }
    Ok(())
}
