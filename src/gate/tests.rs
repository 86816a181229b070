use super::*;

// === helpers ===

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

fn rule(prefix: &str, scopes: &[&str]) -> PrefixRule {
    PrefixRule {
        prefix: prefix.to_string(),
        scopes: strings(scopes),
    }
}

fn token(scopes: &[&str]) -> Requirement {
    Requirement::Token {
        scopes: strings(scopes),
    }
}

/// Public `/public/` and `/assets/`, a rule for `/admin/` and the scope-prefix convention.
fn site() -> GateRules {
    GateRules::new(
        strings(&["/public/", "/assets/"]),
        vec![rule("/admin/", &["admin:read"])],
        true,
    )
    .expect("site rules are valid")
}

fn new_error(public: &[&str], rules: Vec<PrefixRule>) -> String {
    match GateRules::new(strings(public), rules, true) {
        Ok(_) => panic!("rules were accepted, expected an error"),
        Err(message) => message,
    }
}

// === normalize ===

#[test]
fn normalize_valid_paths() {
    let cases = [
        ("/", "/"),
        ("/index.html", "/index.html"),
        ("/a/b/", "/a/b/"),
        ("/a/b", "/a/b"),
        ("//a///b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/..", "/"),
        ("/.", "/"),
        ("/a?x=1", "/a"),
        ("/a?/../..", "/a"),
        ("/a#frag", "/a"),
        ("/a%20b/c", "/a b/c"),
        ("/orders%3Aadmin/x", "/orders:admin/x"),
        ("/%61dmin", "/admin"),
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E/b", "/a/b"),
        ("/caf%C3%A9/", "/café/"),
        ("/.hidden", "/.hidden"),
        ("/a.b/c", "/a.b/c"),
        ("/a%3Fb", "/a?b"),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize(raw).as_deref(), Ok(expected), "normalize({raw:?})");
    }
}

#[test]
fn normalize_rejections() {
    let too_long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
    let cases: Vec<(&str, PathRejected)> = vec![
        ("", NotAbsolute),
        ("a/b", NotAbsolute),
        ("*", NotAbsolute),
        ("http://host/a", NotAbsolute),
        ("?/a", NotAbsolute),
        (&too_long, TooLong),
        ("/a%", InvalidEncoding),
        ("/a%2", InvalidEncoding),
        ("/a%zz", InvalidEncoding),
        ("/a%ff", InvalidEncoding),
        ("/a%C3", InvalidEncoding),
        ("/a%2Fb", EncodedSlash),
        ("/a%2fb", EncodedSlash),
        ("/a%5Cb", EncodedSlash),
        ("/a%5cb", EncodedSlash),
        ("/a%252Fb", DoubleEncoded),
        ("/a%25", DoubleEncoded),
        ("/a\\b", Backslash),
        ("/a%00b", ControlCharacter),
        ("/a\u{0}b", ControlCharacter),
        ("/a%0Ab", ControlCharacter),
        ("/a\tb", ControlCharacter),
        ("/a%7F", ControlCharacter),
        ("/a%C2%85", ControlCharacter),
        ("/..", Traversal),
        ("/a/../..", Traversal),
        ("/%2e%2e/a", Traversal),
        ("/a./b", TrailingDotOrSpace),
        ("/a...", TrailingDotOrSpace),
        ("/a%20/b", TrailingDotOrSpace),
        ("/..%20/a", TrailingDotOrSpace),
        ("/a/b.", TrailingDotOrSpace),
        ("/admin;x/secret.html", Semicolon),
        ("/admin%3Bx/secret.html", Semicolon),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize(raw), Err(expected), "normalize({raw:?})");
    }
}

#[test]
fn normalize_length_limit_exact() {
    let at_limit = format!("/{}", "a".repeat(MAX_PATH_BYTES - 1));
    assert_eq!(normalize(&at_limit).as_deref(), Ok(at_limit.as_str()));

    let long_query = format!("/a?{}", "q".repeat(2 * MAX_PATH_BYTES));
    assert_eq!(normalize(&long_query).as_deref(), Ok("/a"));
}

// === requirement ===

#[test]
fn requirement_basic_decisions() {
    let gate = site();
    let cases = [
        ("/public/", Requirement::Public),
        ("/public", Requirement::Public),
        ("/public/a/b.css", Requirement::Public),
        ("/assets/logo.png", Requirement::Public),
        ("/admin/x", token(&["admin:read"])),
        ("/admin/", token(&["admin:read"])),
        ("/admin", token(&["admin:read"])),
        ("/administrator/x", token(&["administrator"])),
        ("/orders:admin/index.html", token(&["orders:admin"])),
        ("/orders:admin/", token(&["orders:admin"])),
        ("/orders:admin", token(&["orders:admin"])),
        ("/index.html", token(&["index.html"])),
        ("/", Requirement::Closed),
        ("/publicity/x", token(&["publicity"])),
    ];
    for (raw, expected) in cases {
        assert_eq!(gate.requirement(raw), Ok(expected), "requirement({raw:?})");
    }
}

#[test]
fn requirement_bypass_attempts() {
    let gate = site();
    let cases = [
        ("/orders%3Aadmin/x", token(&["orders:admin"])),
        ("/public/%2e%2e/admin/x", token(&["admin:read"])),
        ("/public/../admin/x", token(&["admin:read"])),
        ("//admin/x", token(&["admin:read"])),
        ("/admin//x", token(&["admin:read"])),
        ("/ADMIN/x", token(&["admin:read"])),
        ("/Admin/", token(&["admin:read"])),
        ("/admin", token(&["admin:read"])),
        ("/%61dmin/x", token(&["admin:read"])),
        ("/%41DMIN/x", token(&["admin:read"])),
        ("/./admin/x", token(&["admin:read"])),
        ("/public/./../admin", token(&["admin:read"])),
        ("/orders:admin/../orders:read/x", token(&["orders:read"])),
        ("/Orders:Admin/x", token(&["Orders:Admin"])),
        ("/PUBLIC/x", token(&["PUBLIC"])),
        ("/Public/x", token(&["Public"])),
        ("/PUBLIC/../admin/x", token(&["admin:read"])),
        ("/admin/x?/public/", token(&["admin:read"])),
        ("/admin?/public/", token(&["admin:read"])),
        ("/admin#/public/", token(&["admin:read"])),
    ];
    for (raw, expected) in cases {
        assert_eq!(gate.requirement(raw), Ok(expected), "requirement({raw:?})");
    }
}

#[test]
fn requirement_rejected_bypasses() {
    let gate = site();
    let cases = [
        ("/public/..%2Fadmin/x", EncodedSlash),
        ("/admin./x", TrailingDotOrSpace),
        ("/admin%20/x", TrailingDotOrSpace),
        ("/admin%252Fx", DoubleEncoded),
        ("/admin\\x/..", Backslash),
        ("/public/..%5Cadmin/x", EncodedSlash),
        ("/public/../../admin/x", Traversal),
        ("/admin%00/x", ControlCharacter),
    ];
    for (raw, expected) in cases {
        assert_eq!(gate.requirement(raw), Err(expected), "requirement({raw:?})");
    }
}

#[test]
fn requirement_query_ignored() {
    let gate = site();
    let pairs = [
        ("/public/x", "/public/x?/admin/"),
        ("/admin/x", "/admin/x?a=../../public/"),
        ("/orders:admin/x", "/orders:admin/x?scope=none"),
        ("/", "/?/public/"),
    ];
    for (plain, with_query) in pairs {
        assert_eq!(
            gate.requirement(plain),
            gate.requirement(with_query),
            "{plain:?} and {with_query:?}"
        );
    }
}

#[test]
fn requirement_longest_rule_wins() {
    let gate = GateRules::new(
        Vec::new(),
        vec![
            rule("/admin/", &["admin:read"]),
            rule("/admin/billing/", &["billing:admin", "admin:read"]),
            rule("/Admin/Billing/Reports", &["reports"]),
        ],
        false,
    )
    .expect("rules are valid");

    assert_eq!(gate.requirement("/admin/x"), Ok(token(&["admin:read"])));
    assert_eq!(
        gate.requirement("/admin/billing/x"),
        Ok(token(&["billing:admin", "admin:read"]))
    );
    assert_eq!(
        gate.requirement("/ADMIN/BILLING"),
        Ok(token(&["billing:admin", "admin:read"]))
    );
    assert_eq!(gate.requirement("/admin/billing/reports/q1"), Ok(token(&["reports"])));
    assert_eq!(gate.requirement("/admin/billingx"), Ok(token(&["admin:read"])));
}

#[test]
fn requirement_rule_before_public() {
    let gate = GateRules::new(strings(&["/docs/"]), vec![rule("/docs/internal/", &["staff"])], false)
        .expect("rules are valid");

    assert_eq!(gate.requirement("/docs/guide.html"), Ok(Requirement::Public));
    assert_eq!(gate.requirement("/docs/internal/x"), Ok(token(&["staff"])));
    assert_eq!(gate.requirement("/docs/Internal/x"), Ok(token(&["staff"])));
    assert_eq!(gate.requirement("/Docs/guide.html"), Ok(token(&[])));
}

#[test]
fn requirement_root_rules() {
    let root_rule = GateRules::new(strings(&["/public/"]), vec![rule("/", &["site"])], true).expect("rules are valid");
    assert_eq!(root_rule.requirement("/public/x"), Ok(token(&["site"])));
    assert_eq!(root_rule.requirement("/"), Ok(token(&["site"])));

    let root_public =
        GateRules::new(strings(&["/"]), vec![rule("/admin", &["admin"])], false).expect("rules are valid");
    assert_eq!(root_public.requirement("/anything/x"), Ok(Requirement::Public));
    assert_eq!(root_public.requirement("/admin/x"), Ok(token(&["admin"])));
}

#[test]
fn requirement_without_scope_prefix() {
    let gate = GateRules::new(strings(&["/public/"]), Vec::new(), false).expect("rules are valid");
    assert_eq!(gate.requirement("/orders:admin/x"), Ok(token(&[])));
    assert_eq!(gate.requirement("/public/x"), Ok(Requirement::Public));
}

#[test]
fn requirement_unicode_case_folding() {
    let gate = GateRules::new(Vec::new(), vec![rule("/key/", &["keys"])], false).expect("rules are valid");

    // KELVIN SIGN lower-cases to 'k', as on a case-insensitive file system.
    assert_eq!(gate.requirement("/%E2%84%AAey/x"), Ok(token(&["keys"])));
    assert_eq!(gate.requirement("/KEY/x"), Ok(token(&["keys"])));
}

// === GateRules::new ===

#[test]
fn new_rejects_invalid_config() {
    let cases: Vec<(Vec<&str>, Vec<PrefixRule>, &str)> = vec![
        (vec!["public/"], Vec::new(), "\"public/\" must start with '/'"),
        (vec![""], Vec::new(), "\"\" must start with '/'"),
        (vec!["/a/../b/"], Vec::new(), "write it as \"/b/\""),
        (vec!["//a"], Vec::new(), "write it as \"/a\""),
        (vec!["/a%20b"], Vec::new(), "write it as \"/a b\""),
        (vec!["/a?"], Vec::new(), "write it as \"/a\""),
        (vec!["/a./"], Vec::new(), "\"/a./\" is invalid"),
        (vec!["/.."], Vec::new(), "\"/..\" is invalid"),
        (
            Vec::new(),
            vec![rule("admin/", &["a"])],
            "rule prefix \"admin/\" must start with '/'",
        ),
        (Vec::new(), vec![rule("/admin/", &[])], "\"/admin/\" has no scopes"),
        (
            Vec::new(),
            vec![rule("/admin/", &[""])],
            "\"/admin/\" has an empty scope",
        ),
        (
            Vec::new(),
            vec![rule("/admin/", &["a b"])],
            "scope \"a b\" containing whitespace",
        ),
        (
            Vec::new(),
            vec![rule("/Admin/", &["a"]), rule("/admin", &["b"])],
            "\"/admin\" duplicates rule prefix \"/Admin/\"",
        ),
    ];
    for (public, rules, expected) in cases {
        let message = new_error(&public, rules.clone());
        assert!(
            message.contains(expected),
            "public {public:?}, rules {rules:?}: message {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn new_rule_count_limit() {
    let at_limit: Vec<PrefixRule> = (0..MAX_RULES).map(|i| rule(&format!("/r{i}/"), &["s"])).collect();
    assert!(GateRules::new(Vec::new(), at_limit, true).is_ok());

    let over_limit: Vec<PrefixRule> = (0..=MAX_RULES).map(|i| rule(&format!("/r{i}/"), &["s"])).collect();
    let message = new_error(&[], over_limit);
    assert!(message.contains("too many rules: 257"), "message {message:?}");

    let public: Vec<String> = (0..=MAX_RULES).map(|i| format!("/p{i}/")).collect();
    let public: Vec<&str> = public.iter().map(String::as_str).collect();
    let message = new_error(&public, Vec::new());
    assert!(message.contains("too many public prefixes"), "message {message:?}");
}

// === token_from_headers ===

#[test]
fn token_from_authorization() {
    let cases = [
        (Some("Bearer abc.def"), Some("abc.def")),
        (Some("bearer abc"), Some("abc")),
        (Some("BEARER abc"), Some("abc")),
        (Some("Bearer   abc"), Some("abc")),
        (Some("Bearer abc "), Some("abc")),
        (Some("Bearer"), None),
        (Some("Bearer "), None),
        (Some("Bearer a b"), None),
        (Some("Basic dXNlcjpwYXNz"), None),
        (Some("Bearerabc"), None),
        (Some(""), None),
        (None, None),
    ];
    for (authorization, expected) in cases {
        assert_eq!(
            token_from_headers(authorization, None, "access_token"),
            expected,
            "Authorization {authorization:?}"
        );
    }
}

#[test]
fn token_from_cookie_header() {
    let cases = [
        ("access_token=abc", Some("abc")),
        ("theme=dark; access_token=abc; lang=en", Some("abc")),
        ("theme=dark;access_token=abc", Some("abc")),
        ("access_token=\"abc\"", Some("abc")),
        ("xaccess_token=abc", None),
        ("xaccess_token=abc; access_token=def", Some("def")),
        ("access_token_2=abc", None),
        ("ACCESS_TOKEN=abc", None),
        ("access_token=", None),
        ("access_token=\"\"", None),
        ("access_token=first; access_token=second", Some("first")),
        ("access_token", None),
        ("", None),
    ];
    for (cookie, expected) in cases {
        assert_eq!(
            token_from_headers(None, Some(cookie), "access_token"),
            expected,
            "Cookie {cookie:?}"
        );
    }
}

#[test]
fn token_source_precedence() {
    let cookie = Some("access_token=from-cookie");
    assert_eq!(
        token_from_headers(Some("Bearer from-header"), cookie, "access_token"),
        Some("from-header")
    );
    assert_eq!(
        token_from_headers(Some("Basic dXNlcjpwYXNz"), cookie, "access_token"),
        Some("from-cookie")
    );
    assert_eq!(
        token_from_headers(Some("Bearer "), cookie, "access_token"),
        Some("from-cookie")
    );
    assert_eq!(token_from_headers(None, cookie, ""), None);
    assert_eq!(token_from_headers(None, None, "access_token"), None);
}
