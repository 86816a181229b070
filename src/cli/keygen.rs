//! `jwed keygen`.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{EXIT_USAGE, KeyStateArgs, KeygenArgs};
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
        None => format!(
            "{}-{}",
            args.alg.to_ascii_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
    };
    let key = GeneratedKey::generate(spec, &kid, &args.crv, args.bits, args.size).map_err(|err| err.to_string())?;
    if key.public().is_some() && args.public_out.exists() {
        return Err(format!(
            "{} already exists; choose another --public-out",
            args.public_out.display()
        ));
    }

    let public_keys = match &args.add_to {
        Some(path) => add_to_set(path, &key, &kid)?,
        None => {
            let private = keygen::jwk_set_text(&[key.expose_private_json()]);
            keygen::write_private_file(&args.out, &private).map_err(|err| err.to_string())?;
            eprintln!("wrote private key {kid:?} to {} (mode 0600)", args.out.display());
            key.public()
                .map(|public| vec![Value::Object(public.clone())])
                .unwrap_or_default()
        }
    };

    if key.public().is_some() {
        keygen::write_public_file(&args.public_out, public_keys).map_err(|err| err.to_string())?;
        eprintln!("wrote the public key set to {}", args.public_out.display());
    } else {
        eprintln!(
            "symmetric key: no public file; share {} with the issuer over a secure channel",
            args.out.display()
        );
    }
    Ok(())
}

pub(super) fn run_key_state(args: &KeyStateArgs) -> u8 {
    let result = change_state(&args.keys, &args.kid, &args.state);
    match result {
        Ok(()) => {
            eprintln!("key {:?} in {} is now {}", args.kid, args.keys.display(), args.state);
            0
        }
        Err(message) => {
            eprintln!("jwed key-state: {message}");
            EXIT_USAGE
        }
    }
}

/// Adds `key` as the current key of the set in `path`; the set's other
/// current keys of the same kind become accepted. Returns the public keys
/// of the new set, current first.
fn add_to_set(path: &Path, key: &GeneratedKey, kid: &str) -> Result<Vec<Value>, String> {
    let mut set = read_set(path)?;
    let keys = keys_of(&mut set)?;
    if keys.iter().any(|existing| existing["kid"] == kid) {
        return Err(format!("{} already has a key {kid:?}", path.display()));
    }
    let symmetric = key.public().is_none();
    for existing in keys.iter_mut() {
        let same_kind = (existing["kty"] == "oct") == symmetric;
        if same_kind && existing.get("state").is_none_or(|state| state == "current") {
            existing["state"] = json!("accepted");
        }
    }
    let mut new: Value = serde_json::from_str(key.expose_private_json()).map_err(|err| err.to_string())?;
    new["state"] = json!("current");
    keys.insert(0, new);

    write_set(path, &set)?;
    eprintln!(
        "added key {kid:?} to {} as current; earlier current keys are now accepted",
        path.display()
    );
    Ok(public_keys(&set))
}

fn change_state(path: &Path, kid: &str, state: &str) -> Result<(), String> {
    if !matches!(state, "current" | "accepted" | "retired") {
        return Err(format!("state {state:?} is not current, accepted or retired"));
    }
    let mut set = read_set(path)?;
    let keys = keys_of(&mut set)?;
    let key = keys
        .iter_mut()
        .find(|key| key["kid"] == kid)
        .ok_or_else(|| format!("{} has no key {kid:?}", path.display()))?;
    key["state"] = json!(state);
    write_set(path, &set)
}

/// The public JWK Set members of a private set: current keys first, then
/// accepted ones, without private members or the state.
fn public_keys(set: &Value) -> Vec<Value> {
    let keys = set["keys"].as_array().cloned().unwrap_or_default();
    let public = |key: &Value| {
        let mut key = key.clone();
        if let Some(map) = key.as_object_mut() {
            for name in ["d", "p", "q", "dp", "dq", "qi", "k", "state"] {
                map.remove(name);
            }
        }
        key
    };
    let in_state = |wanted: &'static str| {
        keys.iter()
            .filter(move |key| {
                key["kty"] != "oct" && key.get("state").and_then(Value::as_str).unwrap_or("current") == wanted
            })
            .map(public)
    };
    in_state("current").chain(in_state("accepted")).collect()
}

// NOTE: serde_json keeps the parsed private members in plain strings, which
// are not wiped; the file bytes and the text written back are.
fn read_set(path: &Path) -> Result<Value, String> {
    let bytes = crate::jwk::read_limited(path).map_err(|err| err.to_string())?;
    serde_json::from_slice(&bytes).map_err(|_| format!("{} is not a JWK Set", path.display()))
}

fn keys_of(set: &mut Value) -> Result<&mut Vec<Value>, String> {
    set.get_mut("keys")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "the file has no keys array".to_string())
}

/// Replaces `path` atomically with a file readable by its owner only.
fn write_set(path: &Path, set: &Value) -> Result<(), String> {
    let text = Zeroizing::new(serde_json::to_string_pretty(set).map_err(|err| err.to_string())? + "\n");
    let temporary = path.with_extension("json.tmp");
    let write_error = |err: std::io::Error| format!("cannot write {}: {err}", temporary.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(write_error)?;
    file.write_all(text.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(|err| format!("cannot replace {}: {err}", path.display()))
}
