//! `jwed audit verify`, `fingerprint` and `key`.

use std::io::Write;

use super::{AuditCommand, EXIT_USAGE};
use crate::{audit::AuditKey, audit_verify, keygen};

pub(super) fn run(command: AuditCommand) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match command {
        AuditCommand::Verify { key_file, files } => {
            let key = match AuditKey::read(&key_file) {
                Ok(key) => key,
                Err(message) => return usage(&message),
            };
            match audit_verify::verify(&key, &files) {
                Ok(Ok(verified)) => {
                    let from = if verified.first_seq > 1 {
                        format!(" (from record {}; earlier files not given)", verified.first_seq)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(stdout, "ok: {} records, chain intact{from}", verified.records);
                    0
                }
                Ok(Err(found)) => {
                    let _ = writeln!(stdout, "broken: {found}");
                    1
                }
                Err(message) => usage(&message),
            }
        }
        AuditCommand::Fingerprint { key_file, token } => {
            let key = match AuditKey::read(&key_file) {
                Ok(key) => key,
                Err(message) => return usage(&message),
            };
            match super::decrypt::read_token(token.as_deref()) {
                Ok(token) => {
                    let _ = writeln!(stdout, "{}", key.fingerprint(&token));
                    0
                }
                Err(message) => usage(&message),
            }
        }
        AuditCommand::Key { out } => match AuditKey::generate_text()
            .and_then(|text| keygen::write_private_file(&out, &text).map_err(|err| err.to_string()))
        {
            Ok(()) => {
                eprintln!("wrote a new audit key to {} (mode 0600)", out.display());
                0
            }
            Err(message) => usage(&message),
        },
    }
}

fn usage(message: &str) -> u8 {
    eprintln!("jwed audit: {message}");
    EXIT_USAGE
}
