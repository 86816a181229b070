//! `jwed decrypt`: a small client for a running server.

use std::io::{Read, Write};

use tonic_types::StatusExt;

use super::{DecryptArgs, EXIT_REJECTED, EXIT_USAGE};
use crate::{client, pb};

pub(super) async fn run(args: DecryptArgs) -> u8 {
    let token = match read_token(args.token.as_deref()) {
        Ok(token) => token,
        Err(message) => {
            eprintln!("jwed decrypt: {message}");
            return EXIT_USAGE;
        }
    };

    let connected = match &args.tcp {
        Some(address) => client::connect_tcp(address).await,
        None => client::connect_unix(&args.unix_socket).await,
    };
    let mut client = match connected {
        Ok(client) => client,
        Err(error) => {
            let target = args
                .tcp
                .clone()
                .unwrap_or_else(|| args.unix_socket.display().to_string());
            eprintln!("jwed decrypt: cannot connect to {target}: {}", error_chain(&error));
            return 1;
        }
    };

    let request = pb::DecryptRequest {
        token,
        required_scopes: args.scopes,
        audience: args.audience.unwrap_or_default(),
    };
    let mut stdout = std::io::stdout().lock();
    let written = match client.decrypt(request).await {
        Ok(response) => {
            let claims = response.into_inner().claims_json;
            let pretty = serde_json::from_str::<serde_json::Value>(&claims)
                .and_then(|value| serde_json::to_string_pretty(&value))
                .unwrap_or(claims);
            writeln!(stdout, "{pretty}").map(|()| 0)
        }
        Err(status) => writeln!(stdout, "{}", describe_rejection(&status)).map(|()| EXIT_REJECTED),
    };
    written.unwrap_or(1)
}

/// One line naming the reason, code and message of a rejection.
pub(crate) fn describe_rejection(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let Some(info) = details.error_info() else {
        return format!("rejected: {:?}: {}", status.code(), status.message());
    };
    let refresh = if info
        .metadata
        .get("refresh_required")
        .is_some_and(|value| value == "true")
    {
        " (refresh required)"
    } else {
        ""
    };
    format!(
        "rejected: {} [{:?}]{refresh}: {}",
        info.reason,
        status.code(),
        status.message()
    )
}

/// Joins an error and its sources, since tonic's transport error alone says
/// only "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) fn read_token(argument: Option<&str>) -> Result<String, String> {
    match argument {
        Some(token) if token != "-" => Ok(token.trim().to_owned()),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(1024 * 1024)
                .read_to_string(&mut text)
                .map_err(|err| format!("cannot read the token from standard input: {err}"))?;
            Ok(text.trim().to_owned())
        }
    }
}
