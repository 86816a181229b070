//! The example Python client (`examples/python/jwed_client.py`, grpcio)
//! against a real `jwed serve` on a temporary Unix socket: the proto, the
//! ErrorInfo details and DecryptBatch through a gRPC implementation other
//! than tonic.
//!
//! `JWED_PYTHON` names a Python interpreter with
//! `examples/python/requirements.txt` installed. Without it these tests fail,
//! unless `JWED_SKIP_PYTHON=1` is set.

mod common;

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{JWED, jwed, text};
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/jwed_client.py");
const ISSUER: &str = "https://auth.python.example";
const AUDIENCE: &str = "orders-api";

/// Returns the interpreter from `JWED_PYTHON`, or `None` when the tests are
/// skipped with `JWED_SKIP_PYTHON=1`. Panics when neither is set.
fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("JWED_PYTHON").filter(|value| !value.is_empty()) {
        return Some(PathBuf::from(path));
    }
    if std::env::var("JWED_SKIP_PYTHON").is_ok_and(|value| value == "1") {
        eprintln!("skipped: JWED_PYTHON is not set and JWED_SKIP_PYTHON=1");
        return None;
    }
    panic!(
        "JWED_PYTHON is not set. These tests run examples/python/jwed_client.py and need a Python 3.10+ \
         interpreter with its requirements:\n  python3 -m venv /tmp/jwed-venv\n  \
         /tmp/jwed-venv/bin/pip install -r examples/python/requirements.txt\n  \
         export JWED_PYTHON=/tmp/jwed-venv/bin/python\nor set JWED_SKIP_PYTHON=1 to skip them."
    );
}

/// A running `jwed serve` with its keys in a temporary directory. Dropping
/// it kills the server.
struct Server {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

        let keygen = jwed(&[
            "keygen",
            "--alg",
            "ECDH-ES",
            "--crv",
            "P-256",
            "--kid",
            "jwed-1",
            "--out",
            &path("jwed.json"),
            "--public-out",
            &path("jwed.public.json"),
        ]);
        assert!(keygen.status.success(), "keygen: {}", text(&keygen.stderr));
        let keygen = jwed(&[
            "keygen",
            "--alg",
            "EdDSA",
            "--kid",
            "issuer-1",
            "--out",
            &path("issuer.json"),
            "--public-out",
            &path("issuer.public.json"),
        ]);
        assert!(keygen.status.success(), "keygen: {}", text(&keygen.stderr));

        let socket = dir.path().join("jwed.sock");
        let config = dir.path().join("jwed.toml");
        let config_text = format!(
            "[server]\nunix_socket = {socket:?}\n\n\
             [keys]\nprivate_keys = {:?}\nissuer_keys = {:?}\n\n\
             [tokens]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\n",
            path("jwed.json"),
            path("issuer.public.json"),
        );
        std::fs::write(&config, config_text).expect("write config");

        let log = File::create(dir.path().join("serve.log")).expect("create serve.log");
        let child = Command::new(JWED)
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("JWED_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start jwed serve");
        let server = Server { dir, socket, child };

        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind(), a moment before listen().
        while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "jwed serve did not listen on {}: {}",
                server.socket.display(),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Mints a token as the issuer would; `jwed mint` adds `iat`, `exp`
    /// and `jti` when `claims` lack them.
    fn mint(&self, claims: &str) -> String {
        let path = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        let output = jwed(&[
            "mint",
            "--signing-keys",
            &path("issuer.json"),
            "--encryption-keys",
            &path("jwed.public.json"),
            "--claims",
            claims,
        ]);
        assert!(output.status.success(), "mint: {}", text(&output.stderr));
        text(&output.stdout).trim().to_owned()
    }

    fn valid_token(&self) -> String {
        self.mint(&format!(
            r#"{{"iss":{ISSUER:?},"aud":{AUDIENCE:?},"sub":"user-7","scopes":["orders:read"]}}"#
        ))
    }

    /// Mints a token whose `exp` passed five minutes ago, beyond the 30 second leeway.
    fn expired_token(&self) -> String {
        let now = common::now();
        self.mint(&format!(
            r#"{{"iss":{ISSUER:?},"aud":{AUDIENCE:?},"sub":"user-7","scopes":["orders:read"],"iat":{},"exp":{}}}"#,
            now - 600,
            now - 300
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Changes the first character of the ciphertext segment, so the token
/// stays well-formed but fails authenticated decryption.
fn tampered(token: &str) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    assert_eq!(segments.len(), 5, "not a compact JWE: {token}");
    let ciphertext = &mut segments[3];
    let replacement = if ciphertext.starts_with('A') { "B" } else { "A" };
    ciphertext.replace_range(0..1, replacement);
    segments.join(".")
}

/// Runs the Python client with `args` after `--socket`, feeding `stdin`.
fn run_client(python: &Path, socket: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(python)
        .arg(CLIENT)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("JWED_PROTO_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python client");
    child
        .stdin
        .take()
        .expect("stdin pipe")
        .write_all(stdin.as_bytes())
        .expect("write the client's stdin");
    child.wait_with_output().expect("wait for the Python client")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

#[test]
fn valid_token_prints_claims() {
    let Some(python) = python() else { return };
    let server = Server::start();
    let token = server.valid_token();

    let output = run_client(&python, &server.socket, &["--scope", "orders:read", &token], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("subject: user-7\n"), "{}", describe(&output));
    assert!(stdout.contains("scopes: orders:read\n"), "{}", describe(&output));

    let claims_line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("claims: "))
        .unwrap_or_else(|| panic!("no claims line: {}", describe(&output)));
    let claims: serde_json::Value = serde_json::from_str(claims_line).expect("claims are JSON");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "user-7");
    assert_eq!(claims["scopes"], serde_json::json!(["orders:read"]));
    assert!(claims["exp"].is_u64(), "exp is not an integer: {claims}");

    // "-" reads the token from standard input.
    let output = run_client(&python, &server.socket, &["-"], &format!("{token}\n"));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("subject: user-7\n"),
        "{}",
        describe(&output)
    );
}

#[test]
fn rejections_print_reason_and_metadata() {
    let Some(python) = python() else { return };
    let server = Server::start();
    let token = server.valid_token();

    let output = run_client(&python, &server.socket, &[&tampered(&token)], "");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout).trim(),
        "rejected TOKEN_INVALID [UNAUTHENTICATED]: token is invalid"
    );

    let output = run_client(&python, &server.socket, &[&server.expired_token()], "");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("rejected TOKEN_EXPIRED [UNAUTHENTICATED]"),
        "{}",
        describe(&output)
    );
    assert!(stdout.contains(" refresh_required=true"), "{}", describe(&output));

    let output = run_client(&python, &server.socket, &["--scope", "orders:write", &token], "");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("rejected INSUFFICIENT_SCOPE [PERMISSION_DENIED]"),
        "{}",
        describe(&output)
    );
    assert!(stdout.contains(" missing_scopes=orders:write"), "{}", describe(&output));
    assert!(!stdout.contains("refresh_required"), "{}", describe(&output));
}

#[test]
fn missing_socket_exits_1() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("absent.sock");

    let output = run_client(&python, &socket, &["token"], "");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(text(&output.stdout).is_empty(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("not found"),
        "no message about the socket: {}",
        describe(&output)
    );
}

#[test]
fn batch_prints_one_line_per_token() {
    let Some(python) = python() else { return };
    let server = Server::start();
    let token = server.valid_token();
    let input = format!("{token}\n{}\n\n{}\n{token}\n", tampered(&token), server.expired_token());

    let output = run_client(&python, &server.socket, &["--batch", "--scope", "orders:read"], &input);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", describe(&output));
    assert!(
        lines[0].starts_with("1: ok subject=user-7 scopes=orders:read claims={"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "2: rejected TOKEN_INVALID [UNAUTHENTICATED]: token is invalid"
    );
    assert!(
        lines[2].starts_with("3: rejected TOKEN_EXPIRED [UNAUTHENTICATED] refresh_required=true:"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("4: ok subject=user-7 "), "{}", lines[3]);

    let only_valid = format!("{token}\n{token}\n");
    let output = run_client(&python, &server.socket, &["--batch"], &only_valid);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(text(&output.stdout).lines().count(), 2, "{}", describe(&output));
}
