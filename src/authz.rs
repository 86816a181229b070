//! Gateway checks: Envoy's `envoy.service.auth.v3.Authorization/Check` and
//! an HTTP endpoint for nginx `auth_request`, both deciding whether a web
//! request may be served from the path rules of [`crate::gate`] and the
//! caller's token.
//!
//! The token comes from `Authorization: Bearer` or a configured cookie and
//! goes through the same pipeline, limits, cache and audit as a Decrypt
//! call. Every check writes one audit record with the path and the
//! decision, including checks of public paths and checks without a token.
//!
//! Responses: 200 with the subject and scopes in headers for the upstream,
//! never the token. 401 with `WWW-Authenticate` for a missing, invalid or
//! expired token, marked with `x-jwed-refresh-required: true` when a new
//! token would pass. 403 for a valid token without the scope. 400 for a
//! path that normalization rejects. 503 when jwed cannot serve.

use std::{sync::Arc, time::Duration};

use tonic::Code;

use crate::{
    audit::{Caller, Outcome},
    gate::{GateRules, Requirement},
    pb,
    service::{Decrypt, DecryptorService},
    status,
};

/// Method name of Envoy checks in audit records and metrics.
pub const ENVOY_METHOD: &str = "envoy.service.auth.v3.Authorization/Check";

/// Method name of nginx `auth_request` checks in audit records and metrics.
pub const HTTP_METHOD: &str = "jwed.auth_request";

/// Header through which nginx passes the original request target.
pub const ORIGINAL_URI_HEADER: &str = "x-original-uri";

/// Header that marks a denial a new token would pass.
pub const REFRESH_HEADER: &str = "x-jwed-refresh-required";

/// Header that carries the ErrorInfo reason of a denial.
pub const REASON_HEADER: &str = "x-jwed-reason";

/// Gateway settings from `[gate]`.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Path rules.
    pub rules: GateRules,
    /// Cookie that may carry the token when no `Authorization` header does.
    pub cookie: String,
    /// Header that gives the upstream the token's subject.
    pub subject_header: String,
    /// Header that gives the upstream the token's scopes, space-separated.
    pub scopes_header: String,
    /// Whether Envoy removes the `Authorization` header before the upstream.
    pub remove_token_header: bool,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serve the request; for a token, with its subject and scopes.
    Allow {
        /// The token's subject, or `None` for a public path.
        subject: Option<String>,
        /// The token's scopes.
        scopes: Vec<String>,
    },
    /// Refuse the request.
    Deny {
        /// HTTP status: 400, 401, 403 or 503.
        status: u16,
        /// The ErrorInfo reason, or `TOKEN_MISSING` or `PATH_INVALID`.
        reason: &'static str,
        /// Whether a new token would pass.
        refresh_required: bool,
        /// Scopes the path needs, for a 403.
        required_scopes: Vec<String>,
    },
}

/// Checks requests against the path rules and the caller's token.
pub struct Gate<D> {
    service: DecryptorService<D>,
    settings: Arc<GateSettings>,
    deadline: Duration,
}

// === impl Gate ===

impl<D: Decrypt> Gate<D> {
    /// Checks with `service`'s pipeline, limits and audit log.
    pub fn new(service: DecryptorService<D>, settings: Arc<GateSettings>, deadline: Duration) -> Self {
        Gate {
            service,
            settings,
            deadline,
        }
    }

    /// Returns the settings.
    pub fn settings(&self) -> &GateSettings {
        &self.settings
    }

    /// Decides whether `raw_path` may be served to the bearer of the token
    /// in `authorization` or `cookie`, and audits the decision.
    pub async fn check(
        &self,
        caller: Caller,
        method: &'static str,
        raw_path: &str,
        authorization: Option<&str>,
        cookie: Option<&str>,
    ) -> Verdict {
        let started = std::time::Instant::now();
        let path = match crate::gate::normalize(raw_path) {
            Ok(path) => path,
            Err(rejected) => {
                let outcome = outcome("PATH_INVALID", rejected.to_string(), Code::InvalidArgument, started);
                let path = printable(raw_path);
                return self.finish_without_token(caller, method, path, outcome, deny(400, "PATH_INVALID"));
            }
        };
        let scopes = match self.settings.rules.requirement_of_normalized(&path) {
            Requirement::Public => {
                let outcome = outcome("OK", "public path".to_owned(), Code::Ok, started);
                let allow = Verdict::Allow {
                    subject: None,
                    scopes: Vec::new(),
                };
                return self.finish_without_token(caller, method, path, outcome, allow);
            }
            Requirement::Token { scopes } => scopes,
            Requirement::Closed => {
                let cause = "the root is served only through a public prefix or a rule".to_owned();
                let outcome = outcome("PATH_NOT_ALLOWED", cause, Code::PermissionDenied, started);
                return self.finish_without_token(caller, method, path, outcome, deny(403, "PATH_NOT_ALLOWED"));
            }
        };
        let Some(token) = crate::gate::token_from_headers(authorization, cookie, &self.settings.cookie) else {
            let outcome = outcome(
                "TOKEN_MISSING",
                "no bearer token or cookie".to_owned(),
                Code::Unauthenticated,
                started,
            );
            return self.finish_without_token(caller, method, path, outcome, deny(401, "TOKEN_MISSING"));
        };

        let request = pb::DecryptRequest {
            token: token.to_owned(),
            required_scopes: scopes.clone(),
            audience: String::new(),
        };
        match self
            .service
            .decrypt_one(caller, request, self.deadline, method, Some(path))
            .await
        {
            Ok(reply) => Verdict::Allow {
                subject: Some(reply.subject),
                scopes: reply.scopes,
            },
            Err(status) => {
                let info = tonic_types::StatusExt::get_details_error_info(&status);
                let reason = info
                    .as_ref()
                    .map_or("INTERNAL", |info| status::reason_name(&info.reason));
                let refresh_required = info
                    .as_ref()
                    .is_some_and(|info| info.metadata.get(status::REFRESH_REQUIRED).is_some_and(|v| v == "true"));
                Verdict::Deny {
                    status: http_status(reason),
                    reason,
                    refresh_required,
                    required_scopes: scopes,
                }
            }
        }
    }

    fn finish_without_token(
        &self,
        caller: Caller,
        method: &'static str,
        path: String,
        outcome: Outcome<'static>,
        verdict: Verdict,
    ) -> Verdict {
        if self.service.record_check(caller, method, path, outcome) {
            verdict
        } else {
            deny(503, status::reason::AUDIT_UNAVAILABLE)
        }
    }
}

// === impl Verdict ===

impl Verdict {
    /// Returns the HTTP status of the result.
    pub fn status(&self) -> u16 {
        match self {
            Verdict::Allow { .. } => 200,
            Verdict::Deny { status, .. } => *status,
        }
    }

    /// Returns the headers of the result: for an allowed token, the subject and scopes
    /// for the upstream; for a denial, `WWW-Authenticate` and the reason.
    pub fn headers(&self, settings: &GateSettings) -> Vec<(String, String)> {
        match self {
            Verdict::Allow { subject: None, .. } => Vec::new(),
            Verdict::Allow {
                subject: Some(subject),
                scopes,
            } => vec![
                (settings.subject_header.clone(), subject.clone()),
                (settings.scopes_header.clone(), scopes.join(" ")),
            ],
            Verdict::Deny {
                status,
                reason,
                refresh_required,
                required_scopes,
            } => {
                let mut headers = vec![(REASON_HEADER.to_owned(), (*reason).to_owned())];
                let challenge = match (*status, *reason) {
                    (401, "TOKEN_MISSING") => Some("Bearer realm=\"jwed\"".to_owned()),
                    (401, _) if *refresh_required => Some(
                        "Bearer realm=\"jwed\", error=\"invalid_token\", error_description=\"token expired or revoked\""
                            .to_owned(),
                    ),
                    (401, _) => Some("Bearer realm=\"jwed\", error=\"invalid_token\"".to_owned()),
                    (403, "INSUFFICIENT_SCOPE") => Some(format!(
                        "Bearer realm=\"jwed\", error=\"insufficient_scope\", scope=\"{}\"",
                        quoted_text(&required_scopes.join(" "))
                    )),
                    _ => None,
                };
                if let Some(challenge) = challenge {
                    headers.push(("www-authenticate".to_owned(), challenge));
                }
                if *refresh_required {
                    headers.push((REFRESH_HEADER.to_owned(), "true".to_owned()));
                }
                headers
            }
        }
    }
}

/// Returns the audit decision for a reason, such as `allow` or `deny 401`.
pub fn decision_name(reason: &str) -> String {
    match http_status(reason) {
        200 => "allow".to_owned(),
        status => format!("deny {status}"),
    }
}

/// Maps a reason to the HTTP status of a check.
fn http_status(reason: &str) -> u16 {
    use status::reason::{
        AUDIENCE_NOT_ALLOWED, AUDIT_UNAVAILABLE, CALLER_NOT_ALLOWED, DEADLINE_EXCEEDED, INSUFFICIENT_SCOPE, INTERNAL,
        OVERLOADED, REQUEST_INVALID,
    };
    match reason {
        "OK" => 200,
        INSUFFICIENT_SCOPE | CALLER_NOT_ALLOWED | AUDIENCE_NOT_ALLOWED | "PATH_NOT_ALLOWED" => 403,
        "PATH_INVALID" | REQUEST_INVALID => 400,
        OVERLOADED | DEADLINE_EXCEEDED | AUDIT_UNAVAILABLE | INTERNAL | "CANCELLED" => 503,
        _ => 401,
    }
}

/// Drops the characters that would end or escape an HTTP quoted string.
fn quoted_text(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

fn deny(status: u16, reason: &'static str) -> Verdict {
    Verdict::Deny {
        status,
        reason,
        refresh_required: false,
        required_scopes: Vec::new(),
    }
}

fn outcome(reason: &'static str, cause: String, code: Code, started: std::time::Instant) -> Outcome<'static> {
    Outcome {
        reason,
        cause,
        code,
        elapsed: started.elapsed(),
    }
}

/// Formats a request target that does not normalize for the audit record:
/// at most 512 characters, with control characters, quotes and backslashes
/// escaped as Rust string literals escape them.
fn printable(raw: &str) -> String {
    raw.chars().take(512).flat_map(char::escape_default).collect()
}

/// The Envoy `Authorization` service around a [`Gate`].
pub struct EnvoyAuthz<D>(pub Arc<Gate<D>>);

#[tonic::async_trait]
impl<D: Decrypt> envoy_types::ext_authz::v3::pb::Authorization for EnvoyAuthz<D> {
    async fn check(
        &self,
        request: tonic::Request<envoy_types::ext_authz::v3::pb::CheckRequest>,
    ) -> Result<tonic::Response<envoy_types::ext_authz::v3::pb::CheckResponse>, tonic::Status> {
        use envoy_types::ext_authz::v3::{
            CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
            pb::{CheckResponse, HeaderAppendAction, HttpStatusCode},
        };

        let caller = crate::service::caller_of(&request);
        let http = request
            .get_ref()
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref());
        let empty = std::collections::HashMap::new();
        let headers = http.map_or(&empty, |http| &http.headers);
        // Envoy sends header names in lower case; the path is the request
        // target, query included.
        let path = http.map_or("", |http| http.path.as_str());
        let verdict = self
            .0
            .check(
                caller,
                ENVOY_METHOD,
                path,
                headers.get("authorization").map(String::as_str),
                headers.get("cookie").map(String::as_str),
            )
            .await;

        let settings = self.0.settings();
        let mut response = CheckResponse::new();
        match &verdict {
            Verdict::Allow { .. } => {
                let mut ok = OkHttpResponseBuilder::new();
                // The upstream must never see these headers from the client,
                // so they are overwritten when set and removed otherwise.
                let headers = verdict.headers(settings);
                for name in [&settings.subject_header, &settings.scopes_header] {
                    if !headers.iter().any(|(set, _)| set == name) {
                        ok.remove_header(name.clone());
                    }
                }
                for (name, value) in headers {
                    ok.add_header(name, value, Some(HeaderAppendAction::OverwriteIfExistsOrAdd), false);
                }
                if settings.remove_token_header {
                    ok.remove_header("authorization");
                }
                response.set_status(tonic::Status::ok("")).set_http_response(ok);
            }
            Verdict::Deny { status, .. } => {
                let mut denied = DeniedHttpResponseBuilder::new();
                let code = match status {
                    400 => HttpStatusCode::BadRequest,
                    401 => HttpStatusCode::Unauthorized,
                    403 => HttpStatusCode::Forbidden,
                    _ => HttpStatusCode::ServiceUnavailable,
                };
                denied.set_http_status(code);
                for (name, value) in verdict.headers(settings) {
                    denied.add_header(name, value, None, false);
                }
                let grpc = if *status == 401 {
                    tonic::Status::unauthenticated("denied")
                } else {
                    tonic::Status::permission_denied("denied")
                };
                response.set_status(grpc).set_http_response(denied);
            }
        }
        Ok(tonic::Response::new(response))
    }
}

/// Serves the nginx `auth_request` endpoint `/check` on `listener` until
/// `shutdown` completes. nginx passes the original request target in
/// `X-Original-URI`. It treats 2xx as allow and 401 or 403 as deny, and
/// fails the request with 500 on any other status, so a 400 or 503 result
/// still denies.
///
/// # Errors
///
/// Returns the I/O error that stopped the server.
pub async fn serve_http<D: Decrypt>(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate<D>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::{Router, routing::any};

    if let Ok(address) = listener.local_addr() {
        tracing::info!(server.address = %address, "Listening for nginx auth_request checks");
    }
    let router = Router::new().route("/check", any(http_check::<D>)).with_state(gate);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn http_check<D: Decrypt>(
    axum::extract::State(gate): axum::extract::State<Arc<Gate<D>>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let caller = Caller {
        address: Some(peer.to_string()),
        ..Caller::default()
    };
    // nginx may pass several Cookie headers; they form one list.
    let cookies: Vec<&str> = headers
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let cookie = (!cookies.is_empty()).then(|| cookies.join("; "));
    // A missing X-Original-URI is checked, and audited, as an empty target,
    // which normalization rejects.
    let path = text(ORIGINAL_URI_HEADER).unwrap_or_default();
    let verdict = gate
        .check(caller, HTTP_METHOD, path, text("authorization"), cookie.as_deref())
        .await;
    let status =
        axum::http::StatusCode::from_u16(verdict.status()).unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let mut response = status.into_response();
    for (name, value) in verdict.headers(gate.settings()) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name),
            axum::http::HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
