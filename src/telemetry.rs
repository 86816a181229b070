//! Log output: text or JSON lines on stderr, filtered by `JWED_LOG`.
//!
//! Audit records share this output for now under the `jwed::audit` target;
//! `JWED_LOG` may raise the level of everything else without losing them,
//! because the default filter always keeps that target at `info`.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Environment variable holding the log filter, in `tracing` directive form.
pub const ENV_LOG: &str = "JWED_LOG";

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Calling it twice is harmless: the second
/// call keeps the first subscriber.
pub fn init(format: LogFormat) {
    let directives = std::env::var(ENV_LOG).unwrap_or_else(|_| "info".to_owned());
    let (filter, invalid) = match EnvFilter::try_new(format!("{directives},jwed::audit=info")) {
        Ok(filter) => (filter, false),
        Err(_) => (EnvFilter::new("info,jwed::audit=info"), true),
    };

    let registry = tracing_subscriber::registry().with(filter);
    let ansi = std::io::stderr().is_terminal();
    let _ = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
    };
    if invalid {
        tracing::warn!(env = ENV_LOG, "Invalid log filter; using \"info\"");
    }
}
