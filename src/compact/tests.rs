use super::*;

use base64ct::Base64Url;
use serde_json::json;

// === helpers ===

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Encodes `len` filler bytes, so the segment decodes to exactly `len` bytes.
fn filler(len: usize) -> String {
    b64(&vec![0xA5; len])
}

fn header_segment(header: &Value) -> String {
    b64(header.to_string().as_bytes())
}

/// Builds a compact JWE from a header and the decoded lengths of the
/// encrypted key, IV, ciphertext and tag.
fn jwe(header: &Value, key: usize, iv: usize, ciphertext: usize, tag: usize) -> String {
    [
        header_segment(header),
        filler(key),
        filler(iv),
        filler(ciphertext),
        filler(tag),
    ]
    .join(".")
}

/// Builds a JWE whose segments after the header fit `dir` with A128GCM.
/// Header checks run before any length check, so this serves every header test.
fn jwe_with_header(header: &Value) -> String {
    jwe(header, 0, 12, 20, 16)
}

/// Returns the segments of a well-formed `A128KW` with `A128GCM` token, all
/// of them non-empty.
fn key_wrap_segments() -> Vec<String> {
    let header = json!({"alg": "A128KW", "enc": "A128GCM"});
    vec![header_segment(&header), filler(24), filler(12), filler(20), filler(16)]
}

fn parse(token: &str) -> Result<CompactJwe<'_>, FormatError> {
    CompactJwe::parse(token, DEFAULT_MAX_TOKEN_BYTES)
}

fn parse_err(token: &str, case: &str) -> FormatError {
    match parse(token) {
        Ok(jwe) => panic!("{case}: expected an error, got {:?}", jwe.header),
        Err(err) => err,
    }
}

fn header_err(header: Value, case: &str) -> FormatError {
    parse_err(&jwe_with_header(&header), case)
}

fn ec_epk(crv: &str, x_len: usize, y_len: usize) -> Value {
    json!({"kty": "EC", "crv": crv, "x": filler(x_len), "y": filler(y_len)})
}

fn x25519_epk() -> Value {
    json!({"kty": "OKP", "crv": "X25519", "x": filler(32)})
}

fn ecdh_es_header(epk: Value) -> Value {
    json!({"alg": "ECDH-ES", "enc": "A128GCM", "epk": epk})
}

fn jws(header: &Value, payload: &[u8], signature_len: usize) -> String {
    [header_segment(header), b64(payload), filler(signature_len)].join(".")
}

fn parse_jws(token: &str) -> Result<CompactJws<'_>, FormatError> {
    CompactJws::parse(token, DEFAULT_MAX_TOKEN_BYTES)
}

fn jws_err(header: Value, case: &str) -> FormatError {
    match parse_jws(&jws(&header, b"{}", 64)) {
        Ok(jws) => panic!("{case}: expected an error, got {:?}", jws.header),
        Err(err) => err,
    }
}

fn length_err(segment: &'static str, actual: usize, expected: usize) -> FormatError {
    FormatError::SegmentLength {
        segment,
        actual,
        expected,
    }
}

// === well-formed JWE ===

#[test]
fn accepts_each_alg_and_enc_pair() {
    // (alg, enc, encrypted key, IV, ciphertext, tag) in decoded bytes.
    let cases = [
        ("dir", "A128GCM", 0, 12, 20, 16),
        ("dir", "A256GCM", 0, 12, 1, 16),
        ("A128KW", "A128GCM", 24, 12, 20, 16),
        ("A192KW", "A192GCM", 32, 12, 20, 16),
        ("A256KW", "A256GCM", 40, 12, 20, 16),
        ("A128KW", "A128CBC-HS256", 40, 16, 16, 16),
        ("A192KW", "A192CBC-HS384", 56, 16, 32, 24),
        ("A256KW", "A256CBC-HS512", 72, 16, 48, 32),
        ("RSA-OAEP", "A256GCM", 256, 12, 20, 16),
        ("RSA-OAEP-256", "A128CBC-HS256", 384, 16, 16, 16),
    ];
    for (alg, enc, key, iv, ciphertext, tag) in cases {
        let case = format!("{alg} with {enc}");
        let token = jwe(&json!({"alg": alg, "enc": enc}), key, iv, ciphertext, tag);

        let parsed = parse(&token).unwrap_or_else(|err| panic!("{case}: {err:?}"));

        assert_eq!(parsed.text, token, "{case}");
        assert_eq!(parsed.header.alg.name(), alg, "{case}");
        assert_eq!(parsed.header.enc.name(), enc, "{case}");
        assert_eq!(parsed.encrypted_key.len(), key, "{case}");
        assert_eq!(parsed.header.epk_curve, None, "{case}");
    }
}

#[test]
fn accepts_ecdh_es_tokens_with_each_curve() {
    let cases = [
        ("ECDH-ES", "A256GCM", ec_epk("P-256", 32, 32), 0, Curve::P256),
        ("ECDH-ES+A128KW", "A128GCM", ec_epk("P-384", 48, 48), 24, Curve::P384),
        (
            "ECDH-ES+A192KW",
            "A192CBC-HS384",
            ec_epk("P-521", 66, 66),
            56,
            Curve::P521,
        ),
        ("ECDH-ES+A256KW", "A256GCM", x25519_epk(), 40, Curve::X25519),
    ];
    for (alg, enc, epk, key, curve) in cases {
        let case = format!("{alg} with {}", curve.name());
        let enc_value: ContentEnc = enc.parse().expect("enc name is supported");
        let header = json!({"alg": alg, "enc": enc, "epk": epk});
        let token = jwe(&header, key, enc_value.iv_len(), 32, enc_value.tag_len());

        let parsed = parse(&token).unwrap_or_else(|err| panic!("{case}: {err:?}"));

        assert_eq!(parsed.header.alg.name(), alg, "{case}");
        assert_eq!(parsed.header.epk_curve, Some(curve), "{case}");
        assert_eq!(parsed.encrypted_key.len(), key, "{case}");
    }
}

#[test]
fn returns_kid_and_cty_from_header() {
    let header = json!({"alg": "dir", "enc": "A128GCM", "kid": "key-1", "typ": "JWE", "cty": "JWT"});
    let token = jwe_with_header(&header);

    let parsed = parse(&token).expect("header is valid");

    assert_eq!(parsed.header.kid.as_deref(), Some("key-1"));
    assert_eq!(parsed.header.cty.as_deref(), Some("JWT"));
}

#[test]
fn leaves_kid_and_cty_empty_when_absent() {
    let token = jwe_with_header(&json!({"alg": "dir", "enc": "A128GCM"}));
    let parsed = parse(&token).expect("header is valid");

    assert_eq!(parsed.header.kid, None);
    assert_eq!(parsed.header.cty, None);
}

#[test]
fn accepts_empty_gcm_ciphertext() {
    let token = jwe(&json!({"alg": "dir", "enc": "A256GCM"}), 0, 12, 0, 16);

    assert!(parse(&token).is_ok());
}

// === size and segments ===

#[test]
fn accepts_token_of_exactly_max_bytes() {
    let token = jwe_with_header(&json!({"alg": "dir", "enc": "A128GCM"}));

    assert!(CompactJwe::parse(&token, token.len()).is_ok());
}

#[test]
fn rejects_token_one_byte_over_max() {
    let token = jwe_with_header(&json!({"alg": "dir", "enc": "A128GCM"}));
    let max = token.len() - 1;

    let err = CompactJwe::parse(&token, max).expect_err("token is over the max");

    assert_eq!(err, FormatError::TooLarge { max });
}

#[test]
fn rejects_token_over_default_max() {
    let token = jwe(
        &json!({"alg": "dir", "enc": "A128GCM"}),
        0,
        12,
        DEFAULT_MAX_TOKEN_BYTES,
        16,
    );

    assert_eq!(
        parse_err(&token, "16 KiB ciphertext"),
        FormatError::TooLarge {
            max: DEFAULT_MAX_TOKEN_BYTES
        }
    );
}

#[test]
fn checks_size_before_segment_count() {
    let dots = ".".repeat(1000);

    let err = CompactJwe::parse(&dots, 999)
        .map(|jwe| jwe.header)
        .expect_err("1000 dots over a max of 999");

    assert_eq!(err, FormatError::TooLarge { max: 999 });
}

#[test]
fn rejects_token_with_four_segments() {
    let segments = key_wrap_segments();
    let token = segments[..4].join(".");

    assert_eq!(
        parse_err(&token, "four segments"),
        FormatError::SegmentCount { expected: 5 }
    );
}

#[test]
fn rejects_token_with_six_segments() {
    let token = format!("{}.{}", key_wrap_segments().join("."), filler(4));

    assert_eq!(
        parse_err(&token, "six segments"),
        FormatError::SegmentCount { expected: 5 }
    );
}

#[test]
fn rejects_token_of_one_thousand_dots() {
    let token = ".".repeat(1000);

    assert_eq!(
        parse_err(&token, "1000 dots"),
        FormatError::SegmentCount { expected: 5 }
    );
}

#[test]
fn rejects_empty_token() {
    assert_eq!(parse_err("", "empty token"), FormatError::SegmentCount { expected: 5 });
}

#[test]
fn rejects_empty_header_segment_as_not_json() {
    let token = format!(".{}", key_wrap_segments()[1..].join("."));

    assert_eq!(parse_err(&token, "empty header"), FormatError::HeaderJson);
}

// === base64url encoding ===

#[test]
fn rejects_padded_segments() {
    let header = json!({"alg": "A128KW", "enc": "A128GCM"});
    // Padded base64url of 20 and 16 bytes ends in "=" and "==".
    let cases = [
        (
            3,
            [
                header_segment(&header),
                filler(24),
                filler(12),
                Base64Url::encode_string(&[0xA5; 20]),
                filler(16),
            ],
        ),
        (
            4,
            [
                header_segment(&header),
                filler(24),
                filler(12),
                filler(20),
                Base64Url::encode_string(&[0xA5; 16]),
            ],
        ),
    ];
    for (index, segments) in cases {
        assert!(segments[index].ends_with('='), "segment {index} is padded");

        let err = parse_err(&segments.join("."), &format!("padded segment {index}"));

        assert_eq!(err, FormatError::Base64 { index }, "padded segment {index}");
    }
}

#[test]
fn rejects_padding_appended_to_any_segment() {
    for index in 0..5 {
        let mut segments = key_wrap_segments();
        segments[index].push('=');

        let err = parse_err(&segments.join("."), &format!("segment {index} with '='"));

        assert_eq!(err, FormatError::Base64 { index }, "segment {index} with '='");
    }
}

#[test]
fn rejects_standard_alphabet_characters() {
    for replacement in ["+", "/"] {
        for index in 0..5 {
            let case = format!("segment {index} starting with {replacement:?}");
            let mut segments = key_wrap_segments();
            segments[index].replace_range(0..1, replacement);

            let err = parse_err(&segments.join("."), &case);

            assert_eq!(err, FormatError::Base64 { index }, "{case}");
        }
    }
}

#[test]
fn rejects_non_zero_unused_bits() {
    // 16 bytes encode to 22 characters and 20 bytes to 27, so the final
    // character carries 4 and 2 unused bits. All-zero bytes end in 'A'. A
    // final 'B' sets one unused bit, and a lenient decoder would still
    // return the same bytes.
    let cases = [(3, 20), (4, 16)];
    for (index, len) in cases {
        let mut segments = key_wrap_segments();
        let mut segment = b64(&vec![0; len]);
        assert!(segment.ends_with('A'), "segment {index} ends in 'A'");
        segment.replace_range(segment.len() - 1.., "B");
        segments[index] = segment;

        let err = parse_err(&segments.join("."), &format!("segment {index} with unused bits set"));

        assert_eq!(
            err,
            FormatError::Base64 { index },
            "segment {index} with unused bits set"
        );
    }
}

#[test]
fn rejects_non_zero_unused_bits_in_header() {
    // 29 bytes encode to 39 characters, whose final character carries 2
    // unused bits in its lowest positions.
    let header = br#"{"alg":"dir","enc":"A128GCM"}"#;
    assert_eq!(header.len(), 29);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut segment = b64(header);
    let last = segment.pop().expect("segment is non-empty");
    let position = alphabet
        .iter()
        .position(|&c| char::from(c) == last)
        .expect("final character is in the alphabet");
    assert_eq!(position & 0b11, 0, "unused bits of the canonical form are zero");
    segment.push(char::from(alphabet[position | 1]));
    let token = format!("{segment}..{}.{}.{}", filler(12), filler(20), filler(16));

    assert_eq!(
        parse_err(&token, "header with unused bits set"),
        FormatError::Base64 { index: 0 }
    );
}

#[test]
fn rejects_whitespace_inside_segments() {
    for whitespace in [" ", "\t", "\n", "\r\n"] {
        for index in 0..5 {
            let case = format!("segment {index} with {whitespace:?} inside");
            let mut segments = key_wrap_segments();
            segments[index].insert_str(4, whitespace);

            let err = parse_err(&segments.join("."), &case);

            assert_eq!(err, FormatError::Base64 { index }, "{case}");
        }
    }
}

#[test]
fn rejects_trailing_newline_on_token() {
    let token = format!("{}\n", key_wrap_segments().join("."));

    assert_eq!(parse_err(&token, "trailing newline"), FormatError::Base64 { index: 4 });
}

#[test]
fn rejects_leading_space_on_token() {
    let token = format!(" {}", key_wrap_segments().join("."));

    assert_eq!(parse_err(&token, "leading space"), FormatError::Base64 { index: 0 });
}

#[test]
fn rejects_segment_of_impossible_length() {
    // No byte string encodes to a length of 1 modulo 4.
    let mut segments = key_wrap_segments();
    segments[2].push('A');
    assert_eq!(segments[2].len() % 4, 1);

    assert_eq!(
        parse_err(&segments.join("."), "17-character IV"),
        FormatError::Base64 { index: 2 }
    );
}

#[test]
fn rejects_non_ascii_characters_in_segment() {
    let mut segments = key_wrap_segments();
    segments[3].replace_range(0..1, "é");

    assert_eq!(
        parse_err(&segments.join("."), "non-ASCII ciphertext"),
        FormatError::Base64 { index: 3 }
    );
}

// === protected header size ===

/// Returns a valid `dir` header of exactly `len` bytes, padded with JSON
/// whitespace.
fn header_of_len(len: usize) -> String {
    let start = r#"{"alg":"dir","enc":"A128GCM""#;
    let text = format!("{start}{}}}", " ".repeat(len - start.len() - 1));
    assert_eq!(text.len(), len);
    text
}

fn jwe_with_raw_header(header: &[u8]) -> String {
    format!("{}..{}.{}.{}", b64(header), filler(12), filler(20), filler(16))
}

#[test]
fn accepts_header_of_exactly_max_bytes() {
    let token = jwe_with_raw_header(header_of_len(MAX_HEADER_BYTES).as_bytes());

    assert!(parse(&token).is_ok());
}

#[test]
fn rejects_header_one_or_two_bytes_over_max() {
    for len in [MAX_HEADER_BYTES + 1, MAX_HEADER_BYTES + 2] {
        let token = jwe_with_raw_header(header_of_len(len).as_bytes());

        let err = parse(&token)
            .map(|jwe| jwe.header)
            .expect_err(&format!("{len}-byte header"));

        assert_eq!(
            err,
            FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES },
            "{len}-byte header"
        );
    }
}

#[test]
fn rejects_header_three_bytes_over_max() {
    let token = jwe_with_raw_header(header_of_len(MAX_HEADER_BYTES + 3).as_bytes());

    assert_eq!(
        parse_err(&token, "4099-byte header"),
        FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES }
    );
}

#[test]
fn rejects_oversized_header_before_decoding_it() {
    // Not base64url, so only the length check can have rejected it.
    let token = format!("{}..{}.{}.{}", "!".repeat(8000), filler(12), filler(20), filler(16));

    assert_eq!(
        parse_err(&token, "8000 '!' header"),
        FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES }
    );
}

// === protected header JSON ===

#[test]
fn rejects_header_not_json_object() {
    let cases: [(&str, &[u8]); 11] = [
        ("plain text", b"not json"),
        ("array", br#"["alg","dir"]"#),
        ("string", br#""dir""#),
        ("number", b"42"),
        ("null", b"null"),
        ("truncated object", br#"{"alg":"dir","enc":"A128GCM""#),
        ("trailing bytes", br#"{"alg":"dir","enc":"A128GCM"} x"#),
        ("trailing comma", br#"{"alg":"dir","enc":"A128GCM",}"#),
        ("invalid UTF-8", b"{\"alg\":\"dir\xff\",\"enc\":\"A128GCM\"}"),
        ("byte order mark", b"\xef\xbb\xbf{\"alg\":\"dir\",\"enc\":\"A128GCM\"}"),
        ("single quotes", b"{'alg':'dir','enc':'A128GCM'}"),
    ];
    for (case, header) in cases {
        assert_eq!(
            parse_err(&jwe_with_raw_header(header), case),
            FormatError::HeaderJson,
            "{case}"
        );
    }
}

#[test]
fn rejects_duplicate_header_members() {
    let cases: [(&str, &[u8]); 3] = [
        ("duplicate alg", br#"{"alg":"dir","alg":"A128KW","enc":"A128GCM"}"#),
        (
            "duplicate enc with same value",
            br#"{"alg":"dir","enc":"A128GCM","enc":"A128GCM"}"#,
        ),
        ("duplicate kid", br#"{"alg":"dir","enc":"A128GCM","kid":"a","kid":"b"}"#),
    ];
    for (case, header) in cases {
        assert_eq!(
            parse_err(&jwe_with_raw_header(header), case),
            FormatError::HeaderJson,
            "{case}"
        );
    }
}

#[test]
fn rejects_duplicate_member_inside_epk() {
    let x = filler(32);
    let header =
        format!(r#"{{"alg":"ECDH-ES","enc":"A128GCM","epk":{{"kty":"OKP","crv":"X25519","x":"{x}","x":"{x}"}}}}"#);

    assert_eq!(
        parse_err(&jwe_with_raw_header(header.as_bytes()), "epk with two x"),
        FormatError::HeaderJson
    );
}

#[test]
fn rejects_header_nested_too_deeply() {
    let depth = json::MAX_DEPTH;
    let header = format!(
        r#"{{"alg":"dir","enc":"A128GCM","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );

    assert_eq!(
        parse_err(&jwe_with_raw_header(header.as_bytes()), "deep nesting"),
        FormatError::HeaderJson
    );
}

// === header members ===

#[test]
fn rejects_each_forbidden_member() {
    let cases = [
        ("zip", json!("DEF")),
        ("jku", json!("https://jwks.example/keys")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5u", json!("https://certs.example/chain.pem")),
        ("x5c", json!(["MIIB"])),
        ("x5t", json!("AAAA")),
        ("crit", json!(["exp"])),
        ("p2s", json!("AAAAAAAAAAA")),
        ("p2c", json!(1_000_000)),
        ("iv", json!("AAAAAAAAAAAAAAAA")),
        ("tag", json!("AAAAAAAAAAAAAAAAAAAAAA")),
        ("x-unknown", json!(1)),
        ("Alg", json!("dir")),
    ];
    for (name, value) in cases {
        let mut header = json!({"alg": "dir", "enc": "A128GCM"});
        header[name] = value;

        assert_eq!(
            header_err(header, name),
            FormatError::MemberNotAllowed(name.into()),
            "member {name}"
        );
    }
}

#[test]
fn reports_forbidden_member_before_missing_alg() {
    assert_eq!(
        header_err(json!({"zip": "DEF"}), "zip only"),
        FormatError::MemberNotAllowed("zip".into())
    );
}

#[test]
fn truncates_member_name_to_64_characters() {
    let name = "é".repeat(100);
    let mut header = json!({"alg": "dir", "enc": "A128GCM"});
    header[name.as_str()] = json!(1);

    let err = header_err(header, "100-character name");

    assert_eq!(err, FormatError::MemberNotAllowed("é".repeat(64)));
}

#[test]
fn rejects_missing_alg_or_enc() {
    let cases = [
        ("empty object", json!({}), "alg"),
        ("enc only", json!({"enc": "A128GCM"}), "alg"),
        ("alg only", json!({"alg": "dir"}), "enc"),
    ];
    for (case, header, name) in cases {
        assert_eq!(header_err(header, case), FormatError::MemberMissing(name), "{case}");
    }
}

#[test]
fn rejects_invalid_alg_or_enc() {
    let cases = [
        ("alg number", json!({"alg": 1, "enc": "A128GCM"}), "alg"),
        ("alg null", json!({"alg": null, "enc": "A128GCM"}), "alg"),
        ("alg empty", json!({"alg": "", "enc": "A128GCM"}), "alg"),
        ("alg array", json!({"alg": ["dir"], "enc": "A128GCM"}), "alg"),
        ("enc number", json!({"alg": "dir", "enc": 128}), "enc"),
        ("enc empty", json!({"alg": "dir", "enc": ""}), "enc"),
    ];
    for (case, header, name) in cases {
        assert_eq!(header_err(header, case), FormatError::MemberInvalid(name), "{case}");
    }
}

#[test]
fn rejects_unsupported_alg() {
    for alg in [
        "RSA1_5",
        "PBES2-HS256+A128KW",
        "A128GCMKW",
        "none",
        "DIR",
        "rsa-oaep",
        "ECDH-ES+A128GCMKW",
    ] {
        let header = json!({"alg": alg, "enc": "A128GCM"});

        assert_eq!(
            header_err(header, alg),
            FormatError::UnsupportedAlgorithm("alg"),
            "alg {alg}"
        );
    }
}

#[test]
fn rejects_unsupported_enc() {
    for enc in ["A128CBC", "A512GCM", "a128gcm", "none", "XC20P", "A128GCM "] {
        let header = json!({"alg": "dir", "enc": enc});

        assert_eq!(
            header_err(header, enc),
            FormatError::UnsupportedAlgorithm("enc"),
            "enc {enc:?}"
        );
    }
}

#[test]
fn checks_alg_before_enc() {
    let header = json!({"alg": "RSA1_5", "enc": "none"});

    assert_eq!(
        header_err(header, "both unsupported"),
        FormatError::UnsupportedAlgorithm("alg")
    );
}

#[test]
fn rejects_invalid_kid_typ_or_cty() {
    let cases = [
        ("number", json!(1)),
        ("null", json!(null)),
        ("bool", json!(true)),
        ("array", json!(["a"])),
        ("object", json!({})),
        ("empty", json!("")),
        ("257 bytes", json!("k".repeat(MAX_HEADER_STRING_BYTES + 1))),
        // 129 two-byte characters: within 256 characters but over 256 bytes.
        ("258 bytes in 129 characters", json!("é".repeat(129))),
    ];
    for name in ["kid", "typ", "cty"] {
        for (case, value) in &cases {
            let mut header = json!({"alg": "dir", "enc": "A128GCM"});
            header[name] = value.clone();

            let err = header_err(header, &format!("{name} {case}"));

            assert_eq!(err, FormatError::MemberInvalid(name), "{name} {case}");
        }
    }
}

#[test]
fn accepts_256_byte_kid_typ_and_cty() {
    let value = "é".repeat(MAX_HEADER_STRING_BYTES / 2);
    let header = json!({"alg": "dir", "enc": "A128GCM", "kid": value, "typ": value, "cty": value});
    let token = jwe_with_header(&header);

    let parsed = parse(&token).expect("256-byte values are allowed");

    assert_eq!(parsed.header.kid.as_deref(), Some(value.as_str()));
}

// === segment lengths ===

#[test]
fn rejects_wrong_iv_length() {
    let cases = [
        ("A128GCM", 0, 12),
        ("A128GCM", 8, 12),
        ("A256GCM", 16, 12),
        ("A128CBC-HS256", 12, 16),
        ("A256CBC-HS512", 0, 16),
    ];
    for (enc, iv, expected) in cases {
        let case = format!("{enc} with {iv}-byte IV");
        let enc_value: ContentEnc = enc.parse().expect("enc name is supported");
        let token = jwe(&json!({"alg": "dir", "enc": enc}), 0, iv, 32, enc_value.tag_len());

        let err = parse_err(&token, &case);

        assert_eq!(err, length_err("initialization vector", iv, expected), "{case}");
    }
}

#[test]
fn rejects_wrong_tag_length() {
    let cases = [
        ("A128GCM", 1, 16),
        ("A128GCM", 12, 16),
        ("A256GCM", 15, 16),
        ("A256GCM", 17, 16),
        ("A256GCM", 0, 16),
        ("A128CBC-HS256", 32, 16),
        ("A192CBC-HS384", 16, 24),
        ("A256CBC-HS512", 16, 32),
    ];
    for (enc, tag, expected) in cases {
        let case = format!("{enc} with {tag}-byte tag");
        let enc_value: ContentEnc = enc.parse().expect("enc name is supported");
        let token = jwe(&json!({"alg": "dir", "enc": enc}), 0, enc_value.iv_len(), 32, tag);

        let err = parse_err(&token, &case);

        assert_eq!(err, length_err("authentication tag", tag, expected), "{case}");
    }
}

#[test]
fn rejects_empty_or_partial_cbc_ciphertext() {
    for enc in ["A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"] {
        let enc_value: ContentEnc = enc.parse().expect("enc name is supported");
        for ciphertext in [0, 1, 15, 17, 31] {
            let case = format!("{enc} with {ciphertext}-byte ciphertext");
            let token = jwe(
                &json!({"alg": "dir", "enc": enc}),
                0,
                16,
                ciphertext,
                enc_value.tag_len(),
            );

            assert_eq!(parse_err(&token, &case), FormatError::CiphertextLength, "{case}");
        }
    }
}

#[test]
fn accepts_gcm_ciphertext_of_any_length() {
    for ciphertext in [0, 1, 15, 17, 31] {
        let token = jwe(&json!({"alg": "dir", "enc": "A128GCM"}), 0, 12, ciphertext, 16);

        assert!(parse(&token).is_ok(), "{ciphertext}-byte ciphertext");
    }
}

#[test]
fn rejects_wrong_encrypted_key_length_for_key_wrap() {
    let cases = [
        ("A128KW", "A128GCM", 0, 24),
        ("A128KW", "A128GCM", 7, 24),
        ("A128KW", "A128GCM", 23, 24),
        ("A128KW", "A128GCM", 25, 24),
        ("A256KW", "A256CBC-HS512", 40, 72),
        ("A192KW", "A128CBC-HS256", 32, 40),
    ];
    for (alg, enc, key, expected) in cases {
        let case = format!("{alg} with {enc} and {key}-byte key");
        let enc_value: ContentEnc = enc.parse().expect("enc name is supported");
        let token = jwe(
            &json!({"alg": alg, "enc": enc}),
            key,
            enc_value.iv_len(),
            32,
            enc_value.tag_len(),
        );

        let err = parse_err(&token, &case);

        assert_eq!(err, length_err("encrypted key", key, expected), "{case}");
    }
}

#[test]
fn rejects_encrypted_key_with_dir_or_ecdh_es() {
    let cases = [
        ("dir", json!({"alg": "dir", "enc": "A128GCM"}), 1),
        ("dir", json!({"alg": "dir", "enc": "A128GCM"}), 16),
        ("ECDH-ES", ecdh_es_header(x25519_epk()), 1),
        ("ECDH-ES", ecdh_es_header(ec_epk("P-256", 32, 32)), 24),
    ];
    for (alg, header, key) in cases {
        let case = format!("{alg} with {key}-byte key");

        let err = parse_err(&jwe(&header, key, 12, 20, 16), &case);

        assert_eq!(err, length_err("encrypted key", key, 0), "{case}");
    }
}

#[test]
fn rejects_empty_key_for_ecdh_es_wrap() {
    let header = json!({"alg": "ECDH-ES+A128KW", "enc": "A128GCM", "epk": x25519_epk()});

    let err = parse_err(&jwe(&header, 0, 12, 20, 16), "ECDH-ES+A128KW with empty key");

    assert_eq!(err, length_err("encrypted key", 0, 24));
}

#[test]
fn accepts_any_encrypted_key_length_for_rsa() {
    // The RSA modulus fixes the length, and this stage has no key.
    for key in [0, 1, 128, 512] {
        let token = jwe(&json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"}), key, 12, 20, 16);

        assert_eq!(
            parse(&token).map(|jwe| jwe.encrypted_key.len()),
            Ok(key),
            "{key}-byte key"
        );
    }
}

#[test]
fn checks_segment_lengths_in_order() {
    let header = json!({"alg": "A128KW", "enc": "A128CBC-HS256"});
    let cases = [
        (
            "all wrong",
            jwe(&header, 1, 2, 3, 4),
            length_err("encrypted key", 1, 40),
        ),
        (
            "IV, tag and ciphertext wrong",
            jwe(&header, 40, 2, 3, 4),
            length_err("initialization vector", 2, 16),
        ),
        (
            "tag and ciphertext wrong",
            jwe(&header, 40, 16, 3, 4),
            length_err("authentication tag", 4, 16),
        ),
        (
            "ciphertext wrong",
            jwe(&header, 40, 16, 3, 16),
            FormatError::CiphertextLength,
        ),
    ];
    for (case, token, expected) in cases {
        assert_eq!(parse_err(&token, case), expected, "{case}");
    }
}

// === ephemeral public key ===

#[test]
fn rejects_missing_or_non_object_epk() {
    let cases = [
        ("ECDH-ES without epk", json!({"alg": "ECDH-ES", "enc": "A128GCM"})),
        (
            "ECDH-ES+A128KW without epk",
            json!({"alg": "ECDH-ES+A128KW", "enc": "A128GCM"}),
        ),
        (
            "ECDH-ES+A192KW without epk",
            json!({"alg": "ECDH-ES+A192KW", "enc": "A128GCM"}),
        ),
        (
            "ECDH-ES+A256KW without epk",
            json!({"alg": "ECDH-ES+A256KW", "enc": "A128GCM"}),
        ),
        ("epk string", ecdh_es_header(json!("key"))),
        ("epk array", ecdh_es_header(json!([x25519_epk()]))),
        ("epk null", ecdh_es_header(json!(null))),
    ];
    for (case, header) in cases {
        let expected = if case.ends_with("without epk") {
            FormatError::MemberMissing("epk")
        } else {
            FormatError::MemberInvalid("epk")
        };
        assert_eq!(header_err(header, case), expected, "{case}");
    }
}

#[test]
fn rejects_epk_with_non_ecdh_alg() {
    for alg in ["dir", "A128KW", "RSA-OAEP"] {
        let header = json!({"alg": alg, "enc": "A128GCM", "epk": x25519_epk()});

        assert_eq!(
            header_err(header, alg),
            FormatError::MemberNotAllowed("epk".into()),
            "epk with {alg}"
        );
    }
}

#[test]
fn rejects_wrong_kty_and_crv_pairs() {
    let cases = [
        ("OKP", "P-256"),
        ("EC", "X25519"),
        ("OKP", "Ed25519"),
        ("OKP", "X448"),
        ("EC", "secp256k1"),
        ("EC", "p-256"),
        ("RSA", "P-256"),
        ("oct", "P-256"),
    ];
    for (kty, crv) in cases {
        let epk = json!({"kty": kty, "crv": crv, "x": filler(32), "y": filler(32)});

        let err = header_err(ecdh_es_header(epk), &format!("{kty} {crv}"));

        assert_eq!(err, FormatError::MemberInvalid("epk"), "kty {kty} with crv {crv}");
    }
}

#[test]
fn rejects_epk_with_invalid_kty_or_crv() {
    let x = filler(32);
    let cases = [
        ("no kty", json!({"crv": "X25519", "x": x})),
        ("no crv", json!({"kty": "OKP", "x": x})),
        ("kty number", json!({"kty": 1, "crv": "X25519", "x": x})),
        ("crv array", json!({"kty": "OKP", "crv": ["X25519"], "x": x})),
        ("empty epk", json!({})),
    ];
    for (case, epk) in cases {
        assert_eq!(
            header_err(ecdh_es_header(epk), case),
            FormatError::MemberInvalid("epk"),
            "{case}"
        );
    }
}

#[test]
fn rejects_coordinates_of_wrong_length() {
    let cases = [
        ("P-256 short x", ec_epk("P-256", 31, 32)),
        ("P-256 long x", ec_epk("P-256", 33, 32)),
        ("P-256 short y", ec_epk("P-256", 32, 31)),
        ("P-256 long y", ec_epk("P-256", 32, 33)),
        ("P-384 with P-256 lengths", ec_epk("P-384", 32, 32)),
        ("P-521 with leading zero stripped", ec_epk("P-521", 65, 66)),
        ("P-521 y with leading zero stripped", ec_epk("P-521", 66, 65)),
        ("P-521 long x", ec_epk("P-521", 67, 66)),
        (
            "X25519 short x",
            json!({"kty": "OKP", "crv": "X25519", "x": filler(31)}),
        ),
        ("X25519 long x", json!({"kty": "OKP", "crv": "X25519", "x": filler(33)})),
        ("X25519 empty x", json!({"kty": "OKP", "crv": "X25519", "x": ""})),
    ];
    for (case, epk) in cases {
        assert_eq!(
            header_err(ecdh_es_header(epk), case),
            FormatError::MemberInvalid("epk"),
            "{case}"
        );
    }
}

#[test]
fn rejects_epk_with_missing_or_extra_coordinate() {
    let cases = [
        ("P-256 without y", json!({"kty": "EC", "crv": "P-256", "x": filler(32)})),
        ("P-256 without x", json!({"kty": "EC", "crv": "P-256", "y": filler(32)})),
        (
            "X25519 with y",
            json!({"kty": "OKP", "crv": "X25519", "x": filler(32), "y": filler(32)}),
        ),
        (
            "X25519 with empty y",
            json!({"kty": "OKP", "crv": "X25519", "x": filler(32), "y": ""}),
        ),
        ("X25519 without x", json!({"kty": "OKP", "crv": "X25519"})),
    ];
    for (case, epk) in cases {
        assert_eq!(
            header_err(ecdh_es_header(epk), case),
            FormatError::MemberInvalid("epk"),
            "{case}"
        );
    }
}

#[test]
fn rejects_non_canonical_epk_coordinate() {
    let padded = Base64Url::encode_string(&[0xA5; 32]);
    let cases = [
        ("x number", json!({"kty": "OKP", "crv": "X25519", "x": 5})),
        ("x padded", json!({"kty": "OKP", "crv": "X25519", "x": padded})),
        (
            "x with '+'",
            json!({"kty": "OKP", "crv": "X25519", "x": filler(32).replacen('p', "+", 1)}),
        ),
        (
            "y padded",
            json!({"kty": "EC", "crv": "P-256", "x": filler(32), "y": padded}),
        ),
        (
            "y null",
            json!({"kty": "EC", "crv": "P-256", "x": filler(32), "y": null}),
        ),
    ];
    for (case, epk) in cases {
        assert_eq!(
            header_err(ecdh_es_header(epk), case),
            FormatError::MemberInvalid("epk"),
            "{case}"
        );
    }
}

#[test]
fn rejects_epk_with_extra_member() {
    let cases = [
        ("d", json!(filler(32))),
        ("kid", json!("ephemeral")),
        ("alg", json!("ECDH-ES")),
        ("use", json!("enc")),
        ("ext", json!(true)),
    ];
    for (name, value) in cases {
        let mut epk = x25519_epk();
        epk[name] = value;

        let err = header_err(ecdh_es_header(epk), name);

        assert_eq!(err, FormatError::MemberInvalid("epk"), "epk with {name}");
    }
}

#[test]
fn accepts_valid_epk_for_each_curve() {
    let cases = [
        (ec_epk("P-256", 32, 32), Curve::P256),
        (ec_epk("P-384", 48, 48), Curve::P384),
        (ec_epk("P-521", 66, 66), Curve::P521),
        (x25519_epk(), Curve::X25519),
    ];
    for (epk, curve) in cases {
        let token = jwe_with_header(&ecdh_es_header(epk));

        assert_eq!(
            parse(&token).map(|jwe| jwe.header.epk_curve),
            Ok(Some(curve)),
            "{}",
            curve.name()
        );
    }
}

// === apu and apv ===

#[test]
fn accepts_apu_and_apv_with_ecdh_es() {
    let cases = [
        ("short", b64(b"Alice"), b64(b"Bob")),
        ("empty", String::new(), String::new()),
        ("256 bytes", filler(MAX_PARTY_INFO_BYTES), filler(MAX_PARTY_INFO_BYTES)),
    ];
    for alg in ["ECDH-ES", "ECDH-ES+A128KW"] {
        for (case, apu, apv) in &cases {
            let key = if alg == "ECDH-ES" { 0 } else { 24 };
            let header = json!({"alg": alg, "enc": "A128GCM", "epk": x25519_epk(), "apu": apu, "apv": apv});

            assert!(
                parse(&jwe(&header, key, 12, 20, 16)).is_ok(),
                "{alg} with {case} apu and apv"
            );
        }
    }
}

#[test]
fn rejects_apu_or_apv_without_ecdh_es() {
    for alg in ["dir", "A128KW", "RSA-OAEP"] {
        for name in ["apu", "apv"] {
            let mut header = json!({"alg": alg, "enc": "A128GCM"});
            header[name] = json!(b64(b"Alice"));

            let err = header_err(header, &format!("{name} with {alg}"));

            assert_eq!(err, FormatError::MemberNotAllowed(name.into()), "{name} with {alg}");
        }
    }
}

#[test]
fn rejects_invalid_apu_or_apv() {
    let cases = [
        ("257 bytes", json!(filler(MAX_PARTY_INFO_BYTES + 1))),
        ("number", json!(1)),
        ("null", json!(null)),
        ("array", json!([b64(b"Alice")])),
        ("padded", json!(Base64Url::encode_string(b"Alice"))),
        ("standard alphabet", json!("+/+/")),
        ("whitespace", json!("QWxp Y2U")),
    ];
    for name in ["apu", "apv"] {
        for (case, value) in &cases {
            let mut header = ecdh_es_header(x25519_epk());
            header[name] = value.clone();

            let err = header_err(header, &format!("{name} {case}"));

            assert_eq!(err, FormatError::MemberInvalid(name), "{name} {case}");
        }
    }
}

// === nested JWS ===

#[test]
fn accepts_jws_for_each_signature_alg() {
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let token = jws(
            &json!({"alg": alg, "typ": "JWT", "kid": "signer-1"}),
            br#"{"sub":"alice"}"#,
            64,
        );

        let parsed = parse_jws(&token).unwrap_or_else(|err| panic!("{alg}: {err:?}"));

        assert_eq!(parsed.text, token, "{alg}");
        assert_eq!(parsed.header.alg.name(), alg, "{alg}");
        assert_eq!(parsed.header.kid.as_deref(), Some("signer-1"), "{alg}");
        assert_eq!(parsed.signature_len, 64, "{alg}");
    }
}

#[test]
fn reports_jws_signature_length() {
    for signature_len in [0, 1, 96, 512] {
        let token = jws(&json!({"alg": "ES256"}), b"{}", signature_len);

        assert_eq!(
            parse_jws(&token).map(|jws| jws.signature_len),
            Ok(signature_len),
            "{signature_len} bytes"
        );
    }
}

#[test]
fn leaves_jws_kid_empty_when_absent() {
    let token = jws(&json!({"alg": "EdDSA"}), b"{}", 64);

    assert_eq!(parse_jws(&token).map(|jws| jws.header.kid), Ok(None));
}

#[test]
fn rejects_jws_with_wrong_segment_count() {
    let header = header_segment(&json!({"alg": "ES256"}));
    let cases = [
        ("two segments", format!("{header}.{}", b64(b"{}"))),
        ("four segments", format!("{header}.{}.{}.", b64(b"{}"), filler(64))),
        ("five segments", format!("{header}....")),
        ("1000 dots", ".".repeat(1000)),
        ("no dots", header.clone()),
    ];
    for (case, token) in cases {
        let err = parse_jws(&token).map(|jws| jws.header).expect_err(case);

        assert_eq!(err, FormatError::SegmentCount { expected: 3 }, "{case}");
    }
}

#[test]
fn rejects_jws_over_max_size() {
    let token = jws(&json!({"alg": "ES256"}), b"{}", 64);
    let max = token.len() - 1;

    let err = CompactJws::parse(&token, max)
        .map(|jws| jws.header)
        .expect_err("token is over the max");

    assert_eq!(err, FormatError::TooLarge { max });
}

#[test]
fn rejects_jws_alg_outside_allow_list() {
    for alg in [
        "none", "HS256", "HS512", "ES512", "RS384", "RS512", "PS512", "es256", "Ed25519",
    ] {
        assert_eq!(
            jws_err(json!({"alg": alg}), alg),
            FormatError::UnsupportedAlgorithm("alg"),
            "alg {alg}"
        );
    }
}

#[test]
fn rejects_jws_with_missing_or_invalid_alg() {
    let cases = [
        ("missing alg", json!({"typ": "JWT"}), FormatError::MemberMissing("alg")),
        ("empty alg", json!({"alg": ""}), FormatError::MemberInvalid("alg")),
        ("alg null", json!({"alg": null}), FormatError::MemberInvalid("alg")),
        ("alg number", json!({"alg": 256}), FormatError::MemberInvalid("alg")),
    ];
    for (case, header, expected) in cases {
        assert_eq!(jws_err(header, case), expected, "{case}");
    }
}

#[test]
fn rejects_extra_jws_header_members() {
    let cases = [
        ("cty", json!("JWT")),
        ("jku", json!("https://jwks.example/keys")),
        ("jwk", json!({"kty": "EC"})),
        ("x5u", json!("https://certs.example/chain.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["b64"])),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
        ("enc", json!("A128GCM")),
        ("epk", x25519_epk()),
    ];
    for (name, value) in cases {
        let mut header = json!({"alg": "ES256"});
        header[name] = value;

        assert_eq!(
            jws_err(header, name),
            FormatError::MemberNotAllowed(name.into()),
            "member {name}"
        );
    }
}

#[test]
fn rejects_invalid_jws_kid_or_typ() {
    let cases = [
        ("kid empty", json!({"alg": "ES256", "kid": ""}), "kid"),
        (
            "kid 257 bytes",
            json!({"alg": "ES256", "kid": "k".repeat(MAX_HEADER_STRING_BYTES + 1)}),
            "kid",
        ),
        ("kid number", json!({"alg": "ES256", "kid": 7}), "kid"),
        ("kid object", json!({"alg": "ES256", "kid": {"id": "a"}}), "kid"),
        ("typ number", json!({"alg": "ES256", "typ": 1}), "typ"),
        ("typ empty", json!({"alg": "ES256", "typ": ""}), "typ"),
    ];
    for (case, header, name) in cases {
        assert_eq!(jws_err(header, case), FormatError::MemberInvalid(name), "{case}");
    }
}

#[test]
fn accepts_jws_kid_of_exactly_256_bytes() {
    let kid = "k".repeat(MAX_HEADER_STRING_BYTES);
    let token = jws(&json!({"alg": "ES256", "kid": kid}), b"{}", 64);

    assert_eq!(parse_jws(&token).map(|jws| jws.header.kid), Ok(Some(kid)));
}

#[test]
fn rejects_non_object_jws_header() {
    let cases: [(&str, &[u8]); 3] = [
        ("plain text", b"ES256"),
        ("array", br#"[{"alg":"ES256"}]"#),
        ("duplicate alg", br#"{"alg":"ES256","alg":"none"}"#),
    ];
    for (case, header) in cases {
        let token = format!("{}.{}.{}", b64(header), b64(b"{}"), filler(64));

        let err = parse_jws(&token).map(|jws| jws.header).expect_err(case);

        assert_eq!(err, FormatError::HeaderJson, "{case}");
    }
}

#[test]
fn rejects_jws_header_over_max_bytes() {
    let header = format!(r#"{{"alg":"ES256"{}}}"#, " ".repeat(MAX_HEADER_BYTES));
    let token = format!("{}.{}.{}", b64(header.as_bytes()), b64(b"{}"), filler(64));

    let err = parse_jws(&token).map(|jws| jws.header).expect_err("oversized header");

    assert_eq!(err, FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES });
}

#[test]
fn rejects_non_canonical_jws_payload_or_signature() {
    let header = header_segment(&json!({"alg": "ES256"}));
    let cases = [
        (
            "padded payload",
            format!("{header}.{}.{}", Base64Url::encode_string(b"{}"), filler(64)),
            1,
        ),
        ("payload with space", format!("{header}.e30 .{}", filler(64)), 1),
        (
            "signature with '/'",
            format!("{header}.{}./{}", b64(b"{}"), &filler(64)[1..]),
            2,
        ),
        (
            "padded signature",
            format!("{header}.{}.{}", b64(b"{}"), Base64Url::encode_string(&[1; 64])),
            2,
        ),
    ];
    for (case, token, index) in cases {
        let err = parse_jws(&token).map(|jws| jws.header).expect_err(case);

        assert_eq!(err, FormatError::Base64 { index }, "{case}");
    }
}
