//! The `jwed` binary: parses the command line and hands over to [`jwed::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ExitCode::from(jwed::cli::run(jwed::cli::Cli::parse()))
}
