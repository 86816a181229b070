//! A real nginx serves a static site and queries a real `jwed serve` for each
//! request through `auth_request` and the gate's HTTP endpoint `/check`.
//! The test covers allowed pages, 401 and 403 without the page, the cookie
//! and an expired token. It also sends paths that try to reach a protected
//! page through a public prefix, an encoded slash, a doubled slash, other
//! letter case or a trailing dot.
//!
//! `JWED_NGINX` names the nginx binary (default `/usr/sbin/nginx`, from the
//! Debian package `nginx-light` or `nginx`). Without it the test fails,
//! unless `JWED_SKIP_NGINX=1` is set.

mod common;

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{JWED, jwed, text};
const DEFAULT_NGINX: &str = "/usr/sbin/nginx";
const ISSUER: &str = "https://auth.nginx.example";
const AUDIENCE: &str = "orders-api";

/// Body markers of the static site, one per page, so a response shows
/// which file nginx served.
const PUBLIC_MARKER: &str = "marker-public-3f1a";
const ORDERS_READ_MARKER: &str = "marker-orders-read-8c2e";
const ORDERS_ADMIN_MARKER: &str = "marker-orders-admin-51d7";
const ADMIN_MARKER: &str = "marker-admin-secret-a94b";

/// Pages of the static site: path below the site root and body marker.
const PAGES: [(&str, &str); 4] = [
    ("public/index.html", PUBLIC_MARKER),
    ("orders:read/report.html", ORDERS_READ_MARKER),
    ("orders:admin/index.html", ORDERS_ADMIN_MARKER),
    ("admin/secret.html", ADMIN_MARKER),
];

/// Markers of the pages that need a token.
const PROTECTED_MARKERS: [&str; 3] = [ORDERS_READ_MARKER, ORDERS_ADMIN_MARKER, ADMIN_MARKER];

/// Returns the nginx binary from `JWED_NGINX` or the default path, or `None`
/// when it is missing and `JWED_SKIP_NGINX=1` is set. Panics when it is
/// missing otherwise, or when it lacks the auth_request module.
fn nginx() -> Option<PathBuf> {
    let path = std::env::var_os("JWED_NGINX")
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_NGINX), PathBuf::from);
    if !path.is_file() {
        if std::env::var("JWED_SKIP_NGINX").is_ok_and(|value| value == "1") {
            eprintln!("skipped: nginx not found at {} and JWED_SKIP_NGINX=1", path.display());
            return None;
        }
        panic!(
            "nginx not found at {}. This test runs a real nginx with the auth_request module:\n  \
             apt-get install -y --no-install-recommends nginx-light\n\
             or set JWED_NGINX to the nginx binary, or set JWED_SKIP_NGINX=1 to skip it.",
            path.display()
        );
    }

    let version = Command::new(&path)
        .arg("-V")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {} -V: {error}", path.display()));
    let build = text(&version.stderr);
    assert!(
        build.contains("http_auth_request_module"),
        "{} was built without the auth_request module (nginx -V: {build}); install the Debian package \
         nginx-light or nginx, or set JWED_NGINX to another build",
        path.display()
    );
    Some(path)
}

/// Returns a loopback port that was free a moment ago. Another process may
/// take it before the server binds it, which makes that start fail loudly.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Kills and reaps a child process when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `jwed serve` with the gate's HTTP endpoint and nginx in front of a
/// static site, all in one temporary directory. Dropping it stops both.
struct Stack {
    // Declared first so that the processes stop before the directory goes.
    nginx: ChildGuard,
    jwed: ChildGuard,
    dir: tempfile::TempDir,
    web: SocketAddr,
}

impl Stack {
    fn start(nginx_binary: &Path) -> Stack {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

        for args in [
            [
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
            ]
            .as_slice(),
            [
                "keygen",
                "--alg",
                "EdDSA",
                "--kid",
                "issuer-1",
                "--out",
                &path("issuer.json"),
                "--public-out",
                &path("issuer.public.json"),
            ]
            .as_slice(),
        ] {
            let output = jwed(args);
            assert!(
                output.status.success(),
                "jwed {}: {}",
                args.join(" "),
                text(&output.stderr)
            );
        }

        let gate_port = free_port();
        let socket = dir.path().join("jwed.sock");
        let config = dir.path().join("jwed.toml");
        let config_text = format!(
            "[server]\nunix_socket = {socket:?}\n\n\
             [keys]\nprivate_keys = {:?}\nissuer_keys = {:?}\n\n\
             [tokens]\nissuer = {ISSUER:?}\naudiences = [{AUDIENCE:?}]\n\n\
             [gate]\nhttp_listen = \"127.0.0.1:{gate_port}\"\npublic = [\"/public/\"]\n\n\
             [[gate.rules]]\nprefix = \"/admin/\"\nscopes = [\"admin:read\"]\n",
            path("jwed.json"),
            path("issuer.public.json"),
        );
        std::fs::write(&config, config_text).expect("write jwed.toml");

        let jwed_log = File::create(dir.path().join("jwed.log")).expect("create jwed.log");
        let jwed = ChildGuard(
            Command::new(JWED)
                .args(["serve", "--config"])
                .arg(&config)
                .env_remove("JWED_LOG")
                .stdout(Stdio::null())
                .stderr(jwed_log)
                .spawn()
                .expect("start jwed serve"),
        );

        let site = dir.path().join("site");
        for (page, marker) in PAGES {
            let file = site.join(page);
            std::fs::create_dir_all(file.parent().expect("page has a directory")).expect("create site directory");
            std::fs::write(&file, format!("<!doctype html>\n<p>{marker}</p>\n")).expect("write page");
        }

        let web_port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), &site, web_port, gate_port)).expect("write nginx.conf");
        std::fs::create_dir_all(dir.path().join("temp")).expect("create nginx temp directory");
        let nginx_log = File::create(dir.path().join("nginx.stderr")).expect("create nginx.stderr");
        let nginx = ChildGuard(
            Command::new(nginx_binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdout(Stdio::null())
                .stderr(nginx_log)
                .spawn()
                .expect("start nginx"),
        );

        let mut stack = Stack {
            nginx,
            jwed,
            dir,
            web: SocketAddr::from(([127, 0, 0, 1], web_port)),
        };
        stack.wait_for_listeners(&socket, SocketAddr::from(([127, 0, 0, 1], gate_port)));
        stack
    }

    /// Waits until jwed listens on its socket and the gate port, and nginx on
    /// its port. Panics with the logs when a process exits or 10 s pass.
    fn wait_for_listeners(&mut self, socket: &Path, gate: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let jwed_ready = std::os::unix::net::UnixStream::connect(socket).is_ok()
                && TcpStream::connect_timeout(&gate, Duration::from_millis(200)).is_ok();
            let nginx_ready = TcpStream::connect_timeout(&self.web, Duration::from_millis(200)).is_ok();
            if jwed_ready && nginx_ready {
                return;
            }
            if let Ok(Some(status)) = self.jwed.0.try_wait() {
                panic!("jwed serve exited with {status}: {}", self.logs());
            }
            if let Ok(Some(status)) = self.nginx.0.try_wait() {
                panic!("nginx exited with {status}: {}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 10 s waiting for jwed (ready: {jwed_ready}) and nginx (ready: {nginx_ready}): {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "\n--- jwed.log\n{}\n--- nginx.stderr\n{}\n--- nginx error.log\n{}",
            read("jwed.log"),
            read("nginx.stderr"),
            read("error.log")
        )
    }

    /// Mints a token for `user-7` with `scopes`. `jwed mint` adds `iat`,
    /// `exp` and `jti`.
    fn token(&self, scopes: &[&str]) -> String {
        let claims = serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-7", "scopes": scopes});
        self.mint(&claims.to_string())
    }

    /// Mints a token whose `exp` passed five minutes ago, beyond the 30 second leeway.
    fn expired_token(&self) -> String {
        let now = common::now();
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "user-7", "scopes": ["orders:read"],
            "iat": now - 600, "exp": now - 300,
        });
        self.mint(&claims.to_string())
    }

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
        assert!(output.status.success(), "jwed mint: {}", text(&output.stderr));
        text(&output.stdout).trim().to_owned()
    }

    /// Sends `GET target` to nginx with the extra header lines `headers`.
    fn get(&self, target: &str, headers: &[String]) -> Response {
        let mut stream = TcpStream::connect(self.web).expect("connect to nginx");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send request to nginx");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response from nginx");
        Response::parse(target, &text(&raw))
    }
}

/// Writes an nginx configuration that keeps every file it opens inside
/// `prefix`, so nginx runs in the foreground as any user without touching
/// /var. It is also a working example of `auth_request` with jwed.
fn nginx_conf(prefix: &Path, site: &Path, web_port: u16, gate_port: u16) -> String {
    let prefix = prefix.display();
    let site = site.display();
    format!(
        r#"daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;

events {{
    worker_connections 64;
}}

http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;

    server {{
        listen 127.0.0.1:{web_port};
        server_name localhost;

        location / {{
            auth_request /_jwed;
            # nginx copies WWW-Authenticate from a 401 check on its own;
            # the other headers need auth_request_set.
            auth_request_set $jwed_subject $upstream_http_x_jwed_subject;
            auth_request_set $jwed_refresh $upstream_http_x_jwed_refresh_required;
            add_header X-Jwed-Subject $jwed_subject;
            add_header X-Jwed-Refresh-Required $jwed_refresh always;
            root {site};
        }}

        location = /_jwed {{
            internal;
            proxy_pass http://127.0.0.1:{gate_port}/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
    }}
}}
"#
    )
}

/// One HTTP response from nginx, with lower-cased header names.
struct Response {
    target: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn parse(target: &str, raw: &str) -> Response {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("GET {target}: response without a header end: {raw:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("GET {target}: invalid status line {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Response {
            target: target.to_owned(),
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Panics unless the response is 200 with `marker` in the body.
    fn assert_page(&self, marker: &str) {
        assert_eq!(self.status, 200, "GET {}: {}", self.target, self.body);
        assert!(
            self.body.contains(marker),
            "GET {}: body lacks {marker}: {}",
            self.target,
            self.body
        );
    }

    /// Panics unless the response has `status` and no protected page's marker.
    fn assert_denied(&self, status: u16) {
        assert_eq!(self.status, status, "GET {}: {}", self.target, self.body);
        self.assert_no_protected_marker();
    }

    fn assert_no_protected_marker(&self) {
        for marker in PROTECTED_MARKERS {
            assert!(
                !self.body.contains(marker),
                "GET {} returned {} with the protected marker {marker}: {}",
                self.target,
                self.status,
                self.body
            );
        }
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

#[test]
fn nginx_auth_request_guards_static_site() {
    let Some(nginx_binary) = nginx() else { return };
    let stack = Stack::start(&nginx_binary);
    let orders_read = stack.token(&["orders:read"]);
    let orders_admin = stack.token(&["orders:admin"]);
    let admin_read = stack.token(&["admin:read"]);
    let expired = stack.expired_token();

    // A public prefix needs no token.
    stack.get("/public/index.html", &[]).assert_page(PUBLIC_MARKER);

    // No token, a malformed token and an expired token: 401.
    let missing = stack.get("/orders:read/report.html", &[]);
    missing.assert_denied(401);
    assert!(
        missing
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Bearer")),
        "401 without a Bearer challenge: {:?}",
        missing.headers
    );
    assert_eq!(missing.header("x-jwed-refresh-required"), None);

    let malformed = stack.get("/orders:read/report.html", &[bearer("not-a-token")]);
    malformed.assert_denied(401);
    assert_eq!(malformed.header("x-jwed-refresh-required"), None);

    let stale = stack.get("/orders:read/report.html", &[bearer(&expired)]);
    stale.assert_denied(401);
    assert_eq!(stale.header("x-jwed-refresh-required"), Some("true"));

    // The scope in the first segment, from the header or the cookie.
    let allowed = stack.get("/orders:read/report.html", &[bearer(&orders_read)]);
    allowed.assert_page(ORDERS_READ_MARKER);
    assert_eq!(allowed.header("x-jwed-subject"), Some("user-7"));
    stack
        .get(
            "/orders:read/report.html",
            &[format!("Cookie: theme=dark; access_token={orders_read}")],
        )
        .assert_page(ORDERS_READ_MARKER);

    // A token without the scope: 403.
    let forbidden = stack.get("/orders:admin/index.html", &[bearer(&orders_read)]);
    forbidden.assert_denied(403);
    stack
        .get("/admin/secret.html", &[bearer(&orders_read)])
        .assert_denied(403);
    stack
        .get("/admin/secret.html", &[bearer(&orders_admin)])
        .assert_denied(403);
    stack.get("/admin/secret.html", &[]).assert_denied(401);

    // The right scope, including a directory's index page.
    stack
        .get("/orders:admin/index.html", &[bearer(&orders_admin)])
        .assert_page(ORDERS_ADMIN_MARKER);
    stack
        .get("/orders:admin/", &[bearer(&orders_admin)])
        .assert_page(ORDERS_ADMIN_MARKER);
    stack
        .get("/admin/secret.html", &[bearer(&admin_read)])
        .assert_page(ADMIN_MARKER);

    // Paths that nginx may map to a protected file while they look like
    // another path. jwed rejects (400, which nginx turns into 500) or denies
    // them, and a 404 is fine too. None may show a protected page.
    let bypasses = [
        "/public/../orders:admin/index.html",
        "/public/..%2Forders:admin/index.html",
        "/public/%2e%2e/orders:admin/index.html",
        "//orders:admin/index.html",
        "/ORDERS:ADMIN/index.html",
        "/orders:admin./index.html",
        "/orders%3aadmin/index.html",
        "/admin",
        "/admin/",
        "/Admin/secret.html",
        "/public/../admin/secret.html",
        "/public/..%2Fadmin/secret.html",
    ];
    let tokens = [("no token", None), ("orders:read token", Some(&orders_read))];
    for target in bypasses {
        for (label, token) in tokens {
            let headers: Vec<String> = token.map(|token| bearer(token)).into_iter().collect();
            let response = stack.get(target, &headers);
            assert!(
                [400, 401, 403, 404, 500].contains(&response.status),
                "GET {target} with {label}: status {}, expected a denial or 404: {}",
                response.status,
                response.body
            );
            response.assert_no_protected_marker();
        }
    }
}
