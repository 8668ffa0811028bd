//! Decoding AMQP bodies, one case per way it can fail.

use events::{BadBody, check_body, decode_body};
use serde_json::{Value, json};

const LIMIT: usize = 1024 * 1024;

#[test]
fn a_real_body_decodes_in_order() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus/buildsys.tag.json");
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("bus file")).expect("JSON");
    // What a Python publisher puts on the wire: json.dumps(body).
    let wire = events::python_json_dumps(&document["body"]);
    let body = decode_body(wire.as_bytes(), Some("utf-8"), LIMIT).expect("valid body");
    assert_eq!(Value::Object(body.clone()), document["body"]);
    assert_eq!(
        body.keys().next().map(String::as_str),
        Some("base_url"),
        "key order is kept"
    );
}

#[test]
fn utf8_spellings_and_a_missing_encoding_are_accepted() {
    for encoding in [
        None,
        Some("utf-8"),
        Some("UTF-8"),
        Some("utf8"),
        Some("Utf8"),
    ] {
        let body =
            decode_body("{\"a\": \"é\"}".as_bytes(), encoding, LIMIT).expect("UTF-8 is accepted");
        assert_eq!(body.get("a"), Some(&json!("é")), "{encoding:?}");
    }
}

#[test]
fn too_large() {
    let data = vec![b' '; 10 * 1024 * 1024];
    let error = decode_body(&data, None, LIMIT).expect_err("over the limit");
    assert_eq!(
        error,
        BadBody::TooLarge {
            size: 10_485_760,
            limit: 1_048_576
        }
    );
    assert_eq!(
        error.to_string(),
        "body is 10485760 bytes, over the 1048576-byte limit"
    );
    // The limit itself is allowed, and the size check comes before anything.
    assert!(
        decode_body(b"{}", Some("latin-1"), 1)
            .is_err_and(|e| matches!(e, BadBody::TooLarge { size: 2, limit: 1 }))
    );
    assert!(decode_body(b"{}", None, 2).is_ok());
}

#[test]
fn unsupported_encoding() {
    let error = decode_body(b"{}", Some("latin-1"), LIMIT).expect_err("not UTF-8");
    assert_eq!(error, BadBody::UnsupportedEncoding("latin-1".to_owned()));
    assert_eq!(
        error.to_string(),
        "body has content-encoding \"latin-1\"; only UTF-8 is supported"
    );
    assert!(
        decode_body(b"{}", Some(""), LIMIT)
            .is_err_and(|e| matches!(e, BadBody::UnsupportedEncoding(_)))
    );
}

#[test]
fn not_utf8() {
    let error = decode_body(b"{\"name\": \"\xff\"}", None, LIMIT).expect_err("bad byte");
    assert_eq!(error, BadBody::NotUtf8 { valid_up_to: 10 });
    assert_eq!(
        error.to_string(),
        "body is not valid UTF-8 (invalid byte at offset 10)"
    );
}

#[test]
fn not_json() {
    let error = decode_body(b"", None, LIMIT).expect_err("empty");
    assert_eq!(
        error.to_string(),
        "body is not JSON: EOF while parsing a value at line 1 column 0"
    );
    let error = decode_body(b"hello", None, LIMIT).expect_err("text");
    assert_eq!(
        error,
        BadBody::NotJson("expected value at line 1 column 1".to_owned())
    );
    assert_eq!(
        error.to_string(),
        "body is not JSON: expected value at line 1 column 1"
    );
    // Python's json.loads refuses a BOM too.
    assert!(
        decode_body("\u{feff}{}".as_bytes(), None, LIMIT)
            .is_err_and(|e| matches!(e, BadBody::NotJson(_)))
    );
}

#[test]
fn not_an_object() {
    let cases: [(&[u8], &str); 5] = [
        (b"[1, 2]", "array"),
        (b"\"text\"", "string"),
        (b"42", "number"),
        (b"true", "boolean"),
        (b"null", "null"),
    ];
    for (data, kind) in cases {
        let error = decode_body(data, None, LIMIT).expect_err("not an object");
        assert_eq!(error, BadBody::NotAnObject(kind));
    }
    assert_eq!(
        BadBody::NotAnObject("array").to_string(),
        "body is a JSON array, not an object"
    );
}

#[test]
fn not_an_object_with_surrounding_whitespace() {
    let cases: [(&[u8], &str); 4] = [
        (b" \n[1]\n", "array"),
        (b"\t-1.5 ", "number"),
        (b" false", "boolean"),
        (b"null\r\n", "null"),
    ];
    for (data, kind) in cases {
        assert_eq!(
            check_body(data, None, LIMIT),
            Err(BadBody::NotAnObject(kind))
        );
    }
}

#[test]
fn check_body_returns_the_object_text_as_sent() {
    let text =
        check_body(b"  {\"b\": [1, 2.50], \"a\": {}}\n", Some("utf-8"), LIMIT).expect("an object");
    assert_eq!(text, "{\"b\": [1, 2.50], \"a\": {}}");
}

#[test]
fn nul_characters_are_refused_wherever_they_are() {
    for data in [
        &b"{\"a\": \"x\\u0000y\"}"[..],
        b"{\"k\\u0000\": 1}",
        b"{\"a\": [{\"b\": \"\\u0000\"}]}",
    ] {
        assert_eq!(check_body(data, None, LIMIT), Err(BadBody::ContainsNul));
        assert_eq!(decode_body(data, None, LIMIT), Err(BadBody::ContainsNul));
    }
    // An escaped backslash before "u0000" is not a NUL character.
    assert!(check_body(b"{\"a\": \"\\\\u0000\"}", None, LIMIT).is_ok());
    assert_eq!(
        BadBody::ContainsNul.to_string(),
        "body contains a NUL character (\\u0000), which the inbox cannot store as JSON"
    );
}

/// `{"a": [[…1…]]}`: `depth` levels in all, the object being the first.
fn nested(depth: usize) -> String {
    format!(
        "{{\"a\": {}1{}}}",
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn bodies_nested_deeper_than_the_limit_are_refused() {
    use events::{MAX_BODY_DEPTH, nesting_depth};
    let at_limit = nested(MAX_BODY_DEPTH);
    assert!(decode_body(at_limit.as_bytes(), None, LIMIT).is_ok());
    for depth in [MAX_BODY_DEPTH + 1, 129, 150, 300_000] {
        let text = nested(depth);
        assert_eq!(
            check_body(text.as_bytes(), None, LIMIT),
            Err(BadBody::TooDeep {
                depth,
                limit: MAX_BODY_DEPTH
            }),
            "{depth}"
        );
    }
    assert_eq!(
        BadBody::TooDeep {
            depth: 150,
            limit: 64
        }
        .to_string(),
        "body nests 150 levels deep, over the limit of 64"
    );
    // Brackets inside strings, escaped quotes included, are not nesting.
    assert_eq!(nesting_depth(r#"{"a": "[[[{{{\"[[[", "b": ["]]]"]}"#), 2);
    assert_eq!(nesting_depth(r#"{}"#), 1);
    assert_eq!(nesting_depth(r#"{"a": {"b": {}}, "c": [[]]}"#), 3);
}

#[test]
fn value_depth_counts_without_recursing() {
    use events::value_depth;
    use serde_json::{Value, json};
    assert_eq!(value_depth(&json!(1)), 0);
    assert_eq!(value_depth(&json!({"a": 1})), 1);
    assert_eq!(value_depth(&json!({"a": [1, {"b": []}]})), 4);
    let mut deep = Value::Null;
    for _ in 0..100_000 {
        deep = Value::Array(vec![deep]);
    }
    assert_eq!(value_depth(&deep), 100_000);
    // Dropping it recurses once per level, beyond a test thread's stack.
    std::mem::forget(deep);
}
