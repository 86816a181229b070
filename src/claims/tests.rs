use super::*;

use serde_json::json;

/// Validation time used by every test, in seconds since the epoch.
const NOW: i64 = 1_700_000_000;

const ISSUER: &str = "https://issuer.example";

// === helpers ===

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("claims must be a JSON object, got {other}"),
    }
}

fn with_leeway(leeway_seconds: u32) -> ClaimsPolicy {
    ClaimsPolicy {
        leeway_seconds,
        ..ClaimsPolicy::default()
    }
}

fn with_max_lifetime(max: Option<u32>) -> ClaimsPolicy {
    ClaimsPolicy {
        max_lifetime_seconds: max,
        ..ClaimsPolicy::default()
    }
}

fn with_issuer() -> ClaimsPolicy {
    ClaimsPolicy {
        issuer: Some(ISSUER.into()),
        ..ClaimsPolicy::default()
    }
}

/// Validates at [`NOW`] with no audience and no required scope.
fn validate(policy: &ClaimsPolicy, value: Value) -> Result<ValidClaims, ClaimError> {
    policy.validate(&claims(value), NOW, &[], &[])
}

fn validate_audience(value: Value, audiences: &[&str]) -> Result<ValidClaims, ClaimError> {
    ClaimsPolicy::default().validate(&claims(value), NOW, audiences, &[])
}

fn validate_scopes(value: Value, required: &[&str]) -> Result<ValidClaims, ClaimError> {
    let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
    ClaimsPolicy::default().validate(&claims(value), NOW, &[], &required)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// === exp ===

#[test]
fn requires_exp() {
    assert_eq!(
        validate(&ClaimsPolicy::default(), json!({"sub": "alice"})),
        Err(ClaimError::Missing("exp"))
    );
}

#[test]
fn accepts_exp_exactly_at_leeway_boundary() {
    for leeway in [0, 30, MAX_LEEWAY_SECONDS] {
        let exp = NOW - i64::from(leeway);

        let result = validate(&with_leeway(leeway), json!({"exp": exp}));

        assert_eq!(result.map(|c| c.expires_at), Ok(exp), "leeway {leeway}");
    }
}

#[test]
fn rejects_exp_one_second_past_leeway() {
    for leeway in [0, 30, MAX_LEEWAY_SECONDS] {
        let exp = NOW - i64::from(leeway) - 1;

        assert_eq!(
            validate(&with_leeway(leeway), json!({"exp": exp})),
            Err(ClaimError::Expired),
            "leeway {leeway}"
        );
    }
}

// === nbf and iat ===

#[test]
fn accepts_nbf_exactly_at_leeway_boundary() {
    for leeway in [0, 30] {
        let nbf = NOW + i64::from(leeway);

        let result = validate(&with_leeway(leeway), json!({"exp": NOW + 3600, "nbf": nbf}));

        assert!(result.is_ok(), "leeway {leeway}: {result:?}");
    }
}

#[test]
fn rejects_nbf_one_second_past_leeway() {
    for leeway in [0, 30] {
        let nbf = NOW + i64::from(leeway) + 1;

        let result = validate(&with_leeway(leeway), json!({"exp": NOW + 3600, "nbf": nbf}));

        assert_eq!(result, Err(ClaimError::NotYetValid), "leeway {leeway}");
    }
}

#[test]
fn accepts_iat_exactly_at_leeway_boundary() {
    for leeway in [0, 30] {
        let iat = NOW + i64::from(leeway);

        let result = validate(&with_leeway(leeway), json!({"exp": NOW + 3600, "iat": iat}));

        assert_eq!(result.map(|c| c.issued_at), Ok(Some(iat)), "leeway {leeway}");
    }
}

#[test]
fn rejects_iat_one_second_past_leeway() {
    for leeway in [0, 30] {
        let iat = NOW + i64::from(leeway) + 1;

        let result = validate(&with_leeway(leeway), json!({"exp": NOW + 3600, "iat": iat}));

        assert_eq!(result, Err(ClaimError::IssuedInFuture), "leeway {leeway}");
    }
}

#[test]
fn checks_exp_then_nbf_then_iat() {
    let policy = ClaimsPolicy::default();
    let cases = [
        (
            "all three fail",
            json!({"exp": NOW - 1, "nbf": NOW + 1, "iat": NOW + 1}),
            ClaimError::Expired,
        ),
        (
            "nbf and iat fail",
            json!({"exp": NOW + 60, "nbf": NOW + 1, "iat": NOW + 1}),
            ClaimError::NotYetValid,
        ),
    ];
    for (case, value, expected) in cases {
        assert_eq!(validate(&policy, value), Err(expected), "{case}");
    }
}

// === max lifetime ===

#[test]
fn accepts_lifetime_of_exactly_max() {
    let result = validate(&with_max_lifetime(Some(3600)), json!({"iat": NOW, "exp": NOW + 3600}));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn rejects_lifetime_one_second_over_max() {
    let result = validate(&with_max_lifetime(Some(3600)), json!({"iat": NOW, "exp": NOW + 3601}));

    assert_eq!(result, Err(ClaimError::LifetimeTooLong { max: 3600 }));
}

#[test]
fn requires_iat_when_max_lifetime_is_set() {
    let result = validate(&with_max_lifetime(Some(3600)), json!({"exp": NOW + 60}));

    assert_eq!(result, Err(ClaimError::Missing("iat")));
}

#[test]
fn treats_iat_as_optional_without_max_lifetime() {
    let result = validate(&with_max_lifetime(None), json!({"exp": NOW + 60}));

    assert_eq!(result.map(|c| c.issued_at), Ok(None));
}

#[test]
fn ignores_lifetime_without_max_lifetime() {
    let result = validate(&with_max_lifetime(None), json!({"iat": i64::MIN, "exp": i64::MAX}));

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn reports_expiry_before_missing_iat() {
    let result = validate(&with_max_lifetime(Some(3600)), json!({"exp": NOW - 1}));

    assert_eq!(result, Err(ClaimError::Expired));
}

// === NumericDate values ===

#[test]
fn accepts_extreme_integer_exp() {
    let result = validate(&with_leeway(MAX_LEEWAY_SECONDS), json!({"exp": i64::MAX}));

    assert_eq!(result.map(|c| c.expires_at), Ok(i64::MAX));
}

#[test]
fn rejects_i64_min_exp_as_expired() {
    let result = validate(&with_leeway(u32::MAX), json!({"exp": i64::MIN}));

    assert_eq!(result, Err(ClaimError::Expired));
}

#[test]
fn handles_extreme_nbf_and_iat_without_overflow() {
    let policy = with_leeway(u32::MAX);
    let cases = [
        (
            "nbf i64::MAX",
            json!({"exp": i64::MAX, "nbf": i64::MAX}),
            Err(ClaimError::NotYetValid),
        ),
        ("nbf i64::MIN", json!({"exp": i64::MAX, "nbf": i64::MIN}), Ok(())),
        (
            "iat i64::MAX",
            json!({"exp": i64::MAX, "iat": i64::MAX}),
            Err(ClaimError::IssuedInFuture),
        ),
        ("iat i64::MIN", json!({"exp": i64::MAX, "iat": i64::MIN}), Ok(())),
    ];
    for (case, value, expected) in cases {
        assert_eq!(validate(&policy, value).map(|_| ()), expected, "{case}");
    }
}

#[test]
fn rejects_extreme_lifetime_without_overflow() {
    let policy = with_max_lifetime(Some(u32::MAX));

    let result = validate(&policy, json!({"iat": i64::MIN, "exp": i64::MAX}));

    assert_eq!(result, Err(ClaimError::LifetimeTooLong { max: u32::MAX }));
}

#[test]
fn handles_extreme_now_without_overflow() {
    let policy = with_leeway(u32::MAX);
    let cases = [
        ("now i64::MAX, exp i64::MAX", i64::MAX, json!({"exp": i64::MAX}), Ok(())),
        (
            "now i64::MAX, exp i64::MIN",
            i64::MAX,
            json!({"exp": i64::MIN}),
            Err(ClaimError::Expired),
        ),
        (
            "now i64::MIN, nbf i64::MAX",
            i64::MIN,
            json!({"exp": i64::MAX, "nbf": i64::MAX}),
            Err(ClaimError::NotYetValid),
        ),
        (
            "now i64::MIN, iat i64::MIN",
            i64::MIN,
            json!({"exp": i64::MIN, "iat": i64::MIN}),
            Ok(()),
        ),
    ];
    for (case, now, value, expected) in cases {
        let result = policy.validate(&claims(value), now, &[], &[]);

        assert_eq!(result.map(|_| ()), expected, "{case}");
    }
}

#[test]
fn rejects_invalid_numeric_dates() {
    let cases = [
        ("1e20", json!(1e20)),
        ("-1e20", json!(-1e20)),
        ("u64::MAX", json!(u64::MAX)),
        ("i64::MAX + 1", json!(i64::MAX as u64 + 1)),
        ("2^53 as a float", json!(9_007_199_254_740_992.0)),
        ("string \"123\"", json!("123")),
        ("null", json!(null)),
        ("bool", json!(true)),
        ("array", json!([NOW])),
        ("object", json!({"seconds": NOW})),
    ];
    for name in ["exp", "nbf", "iat"] {
        for (case, value) in &cases {
            let mut claims = json!({"exp": NOW + 60});
            claims[name] = value.clone();

            let result = validate(&ClaimsPolicy::default(), claims);

            assert_eq!(result, Err(ClaimError::Malformed(name)), "{name} {case}");
        }
    }
}

#[test]
fn rounds_fractional_numeric_dates_down() {
    let cases = [
        (json!(1.5), 1),
        (json!(0.999), 0),
        (json!(-0.5), -1),
        (json!(-1.5), -2),
        (json!(1e3), 1000),
        (json!(1_600_000_000.75), 1_600_000_000),
        (json!(-9_007_199_254_740_991.0), -9_007_199_254_740_991),
    ];
    for (value, expected) in cases {
        let result = validate(&ClaimsPolicy::default(), json!({"exp": NOW + 60, "iat": value}));

        assert_eq!(result.map(|c| c.issued_at), Ok(Some(expected)), "iat {value}");
    }
}

#[test]
fn rounds_fractional_exp_down_before_comparing() {
    // NOW + 0.9 rounds down to NOW, which is still valid with no leeway.
    let exp = NOW as f64 + 0.9;

    let result = validate(&ClaimsPolicy::default(), json!({"exp": exp}));

    assert_eq!(result.map(|c| c.expires_at), Ok(NOW));
}

// === issuer ===

#[test]
fn accepts_exact_issuer() {
    let result = validate(&with_issuer(), json!({"exp": NOW + 60, "iss": ISSUER}));

    assert_eq!(result.map(|c| c.issuer), Ok(Some(ISSUER.to_owned())));
}

#[test]
fn rejects_issuer_that_differs() {
    let cases = [
        (
            "case differs",
            json!({"exp": NOW + 60, "iss": "https://Issuer.example"}),
        ),
        (
            "trailing slash",
            json!({"exp": NOW + 60, "iss": "https://issuer.example/"}),
        ),
        ("prefix only", json!({"exp": NOW + 60, "iss": "https://issuer.ex"})),
        ("empty", json!({"exp": NOW + 60, "iss": ""})),
        ("missing", json!({"exp": NOW + 60})),
    ];
    for (case, value) in cases {
        assert_eq!(
            validate(&with_issuer(), value),
            Err(ClaimError::IssuerMismatch),
            "{case}"
        );
    }
}

#[test]
fn rejects_non_string_issuer() {
    for value in [json!(1), json!(null), json!([ISSUER])] {
        let result = validate(&with_issuer(), json!({"exp": NOW + 60, "iss": value}));

        assert_eq!(result, Err(ClaimError::Malformed("iss")), "iss {value}");
    }
}

#[test]
fn ignores_issuer_when_unset() {
    let result = validate(
        &ClaimsPolicy::default(),
        json!({"exp": NOW + 60, "iss": "https://other.example"}),
    );

    assert_eq!(result.map(|c| c.issuer), Ok(Some("https://other.example".to_owned())));
}

// === audience ===

#[test]
fn accepts_matching_audience() {
    let cases = [
        ("string", json!("api")),
        ("array with one", json!(["api"])),
        ("array with several", json!(["other", "api", "third"])),
    ];
    for (case, aud) in cases {
        let result = validate_audience(json!({"exp": NOW + 60, "aud": aud}), &["api"]);

        assert!(result.is_ok(), "aud as {case}: {result:?}");
    }
}

#[test]
fn accepts_any_of_several_expected_audiences() {
    let result = validate_audience(json!({"exp": NOW + 60, "aud": "billing"}), &["api", "billing"]);

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn rejects_audience_that_does_not_match() {
    let cases = [
        ("other string", json!({"exp": NOW + 60, "aud": "other"})),
        ("case differs", json!({"exp": NOW + 60, "aud": "API"})),
        (
            "array without match",
            json!({"exp": NOW + 60, "aud": ["other", "third"]}),
        ),
        ("empty array", json!({"exp": NOW + 60, "aud": []})),
        ("missing", json!({"exp": NOW + 60})),
    ];
    for (case, value) in cases {
        assert_eq!(
            validate_audience(value, &["api"]),
            Err(ClaimError::AudienceMismatch),
            "{case}"
        );
    }
}

#[test]
fn rejects_malformed_audience() {
    let cases = [
        ("array with number after match", json!(["api", 1])),
        ("array with number before match", json!([1, "api"])),
        ("array with null", json!([null])),
        ("nested array", json!([["api"]])),
        ("number", json!(5)),
        ("null", json!(null)),
        ("object", json!({"aud": "api"})),
    ];
    for (case, aud) in cases {
        let result = validate_audience(json!({"exp": NOW + 60, "aud": aud}), &["api"]);

        assert_eq!(result, Err(ClaimError::Malformed("aud")), "aud as {case}");
    }
}

#[test]
fn ignores_audience_when_none_expected() {
    for aud in [json!("anything"), json!(["x", "y"]), json!([])] {
        let result = validate_audience(json!({"exp": NOW + 60, "aud": aud}), &[]);

        assert!(result.is_ok(), "aud {aud}: {result:?}");
    }
}

#[test]
fn rejects_malformed_aud_even_when_none_expected() {
    for aud in [json!(5), json!(["x", 1]), json!({"a": "b"})] {
        let result = validate_audience(json!({"exp": NOW + 60, "aud": aud}), &[]);

        assert_eq!(result, Err(ClaimError::Malformed("aud")), "aud {aud}");
    }
}

#[test]
fn expected_audiences_accepts_request_inside_configured_list() {
    let policy = ClaimsPolicy {
        audiences: strings(&["api", "billing"]),
        ..ClaimsPolicy::default()
    };

    assert_eq!(policy.expected_audiences(Some("billing")), Ok(vec!["billing"]));
}

#[test]
fn expected_audiences_rejects_request_outside_configured_list() {
    let policy = ClaimsPolicy {
        audiences: strings(&["api", "billing"]),
        ..ClaimsPolicy::default()
    };

    assert_eq!(
        policy.expected_audiences(Some("admin")),
        Err(ClaimError::AudienceNotAllowed)
    );
}

#[test]
fn expected_audiences_defaults_to_configured_list() {
    let policy = ClaimsPolicy {
        audiences: strings(&["api", "billing"]),
        ..ClaimsPolicy::default()
    };

    assert_eq!(policy.expected_audiences(None), Ok(vec!["api", "billing"]));
}

#[test]
fn expected_audiences_takes_any_request_with_empty_list() {
    let policy = ClaimsPolicy::default();

    assert_eq!(policy.expected_audiences(Some("anything")), Ok(vec!["anything"]));
    assert_eq!(policy.expected_audiences(None), Ok(vec![]));
}

#[test]
fn requested_audience_narrows_validation() {
    let policy = ClaimsPolicy {
        audiences: strings(&["api", "billing"]),
        ..ClaimsPolicy::default()
    };
    let audiences = policy
        .expected_audiences(Some("billing"))
        .expect("billing is configured");

    let result = policy.validate(&claims(json!({"exp": NOW + 60, "aud": "api"})), NOW, &audiences, &[]);

    assert_eq!(result, Err(ClaimError::AudienceMismatch));
}

// === scopes ===

#[test]
fn reads_scopes_array() {
    let result = validate_scopes(json!({"exp": NOW + 60, "scopes": ["read", "write"]}), &[]);

    assert_eq!(result.map(|c| c.scopes), Ok(strings(&["read", "write"])));
}

#[test]
fn splits_scope_string_on_spaces() {
    let cases = [
        ("single spaces", "read write", strings(&["read", "write"])),
        ("extra spaces", "  read   write ", strings(&["read", "write"])),
        ("empty", "", vec![]),
        ("spaces only", "   ", vec![]),
        ("tab is not a separator", "read\twrite", strings(&["read\twrite"])),
    ];
    for (case, scope, expected) in cases {
        let result = validate_scopes(json!({"exp": NOW + 60, "scope": scope}), &[]);

        assert_eq!(result.map(|c| c.scopes), Ok(expected), "{case}");
    }
}

#[test]
fn prefers_scopes_over_scope() {
    let cases = [("scope string", json!("admin")), ("scope malformed", json!(5))];
    for (case, scope) in cases {
        let result = validate_scopes(json!({"exp": NOW + 60, "scopes": ["read"], "scope": scope}), &[]);

        assert_eq!(result.map(|c| c.scopes), Ok(strings(&["read"])), "{case}");
    }
}

#[test]
fn returns_no_scopes_when_absent() {
    let result = validate_scopes(json!({"exp": NOW + 60}), &[]);

    assert_eq!(result.map(|c| c.scopes), Ok(vec![]));
}

#[test]
fn rejects_malformed_scopes() {
    let cases = [
        (
            "scopes string",
            json!({"exp": NOW + 60, "scopes": "read write"}),
            "scopes",
        ),
        (
            "scopes with number",
            json!({"exp": NOW + 60, "scopes": ["read", 1]}),
            "scopes",
        ),
        ("scopes null", json!({"exp": NOW + 60, "scopes": null}), "scopes"),
        ("scope number", json!({"exp": NOW + 60, "scope": 1}), "scope"),
        ("scope array", json!({"exp": NOW + 60, "scope": ["read"]}), "scope"),
        ("scope null", json!({"exp": NOW + 60, "scope": null}), "scope"),
    ];
    for (case, value, name) in cases {
        assert_eq!(validate_scopes(value, &[]), Err(ClaimError::Malformed(name)), "{case}");
    }
}

#[test]
fn accepts_token_with_all_required_scopes() {
    let result = validate_scopes(
        json!({"exp": NOW + 60, "scope": "write read admin"}),
        &["read", "write"],
    );

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn lists_missing_scopes_in_request_order() {
    let result = validate_scopes(
        json!({"exp": NOW + 60, "scopes": ["read"]}),
        &["write", "read", "admin"],
    );

    assert_eq!(
        result,
        Err(ClaimError::InsufficientScope {
            missing: strings(&["write", "admin"])
        })
    );
}

#[test]
fn matches_scopes_exactly() {
    let result = validate_scopes(json!({"exp": NOW + 60, "scopes": ["Read", "read:all"]}), &["read"]);

    assert_eq!(
        result,
        Err(ClaimError::InsufficientScope {
            missing: strings(&["read"])
        })
    );
}

// === subject and token id ===

#[test]
fn reads_subject_from_sub_or_id() {
    let cases = [
        ("sub only", json!({"exp": NOW + 60, "sub": "alice"}), Some("alice")),
        ("id only", json!({"exp": NOW + 60, "id": "svc-1"}), Some("svc-1")),
        (
            "sub wins over id",
            json!({"exp": NOW + 60, "sub": "alice", "id": "svc-1"}),
            Some("alice"),
        ),
        ("neither", json!({"exp": NOW + 60}), None),
    ];
    for (case, value, expected) in cases {
        let result = validate(&ClaimsPolicy::default(), value);

        assert_eq!(result.map(|c| c.subject), Ok(expected.map(str::to_owned)), "{case}");
    }
}

#[test]
fn rejects_non_string_subject() {
    let cases = [
        ("sub number", json!({"exp": NOW + 60, "sub": 42}), "sub"),
        ("sub null", json!({"exp": NOW + 60, "sub": null}), "sub"),
        (
            "sub number with id",
            json!({"exp": NOW + 60, "sub": 42, "id": "svc-1"}),
            "sub",
        ),
        ("id number", json!({"exp": NOW + 60, "id": 7}), "id"),
    ];
    for (case, value, name) in cases {
        assert_eq!(
            validate(&ClaimsPolicy::default(), value),
            Err(ClaimError::Malformed(name)),
            "{case}"
        );
    }
}

#[test]
fn returns_jti() {
    let result = validate(&ClaimsPolicy::default(), json!({"exp": NOW + 60, "jti": "token-1"}));

    assert_eq!(result.map(|c| c.token_id), Ok(Some("token-1".to_owned())));
}

#[test]
fn rejects_non_string_jti() {
    let result = validate(&ClaimsPolicy::default(), json!({"exp": NOW + 60, "jti": 1}));

    assert_eq!(result, Err(ClaimError::Malformed("jti")));
}

#[test]
fn returns_every_validated_claim() {
    let policy = ClaimsPolicy {
        issuer: Some(ISSUER.into()),
        audiences: strings(&["api"]),
        leeway_seconds: 30,
        max_lifetime_seconds: Some(3600),
    };
    let value = json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": "api",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 600,
        "jti": "token-1",
        "scopes": ["read"],
    });

    let result = policy.validate(&claims(value), NOW, &["api"], &strings(&["read"]));

    let expected = ValidClaims {
        subject: Some("alice".into()),
        scopes: strings(&["read"]),
        issuer: Some(ISSUER.into()),
        expires_at: NOW + 600,
        issued_at: Some(NOW - 10),
        token_id: Some("token-1".into()),
    };
    assert_eq!(result, Ok(expected));
}

// === check order ===

#[test]
fn reports_issuer_before_expiry() {
    let result = validate(
        &with_issuer(),
        json!({"exp": NOW - 3600, "iss": "https://other.example"}),
    );

    assert_eq!(result, Err(ClaimError::IssuerMismatch));
}

#[test]
fn reports_issuer_before_audience() {
    let result = with_issuer().validate(&claims(json!({"exp": NOW + 60, "aud": "other"})), NOW, &["api"], &[]);

    assert_eq!(result, Err(ClaimError::IssuerMismatch));
}

#[test]
fn reports_audience_before_expiry() {
    let result = validate_audience(json!({"exp": NOW - 3600, "aud": "other"}), &["api"]);

    assert_eq!(result, Err(ClaimError::AudienceMismatch));
}

#[test]
fn reports_expiry_before_scopes() {
    let result = validate_scopes(json!({"exp": NOW - 3600}), &["read"]);

    assert_eq!(result, Err(ClaimError::Expired));
}

#[test]
fn reports_malformed_claim_before_issuer() {
    let cases = [
        (
            "missing exp",
            json!({"iss": "https://other.example"}),
            ClaimError::Missing("exp"),
        ),
        (
            "malformed sub",
            json!({"exp": NOW + 60, "iss": "https://other.example", "sub": 1}),
            ClaimError::Malformed("sub"),
        ),
        (
            "malformed scope",
            json!({"exp": NOW + 60, "scope": 1}),
            ClaimError::Malformed("scope"),
        ),
    ];
    for (case, value, expected) in cases {
        assert_eq!(validate(&with_issuer(), value), Err(expected), "{case}");
    }
}

#[test]
fn reports_malformed_aud_before_issuer() {
    let result = with_issuer().validate(
        &claims(json!({"exp": NOW + 60, "iss": "https://other.example", "aud": 5})),
        NOW,
        &[],
        &[],
    );

    assert_eq!(result, Err(ClaimError::Malformed("aud")));
}
