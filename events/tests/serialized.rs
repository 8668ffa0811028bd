//! Reading and writing serialized messages, against the real messages in
//! tests/data/bus/ at the workspace root.

use std::fs;
use std::path::{Path, PathBuf};

use events::{
    EntryError, Envelope, FormatError, MessageId, content_hash_id, parse_serialized,
    python_json_dumps,
};
use serde_json::{Value, json};

fn bus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/bus")
}

/// Every bus file as (file stem, text), sorted by name.
fn bus_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(bus_dir())
        .expect("tests/data/bus is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("UTF-8 file name")
                .to_owned();
            let text = fs::read_to_string(&path).expect("bus file is UTF-8 text");
            (stem, text)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 17,
        "expected the bus messages, found {}",
        files.len()
    );
    files
}

fn bus_file(name: &str) -> String {
    fs::read_to_string(bus_dir().join(name)).expect("bus file exists")
}

fn only_envelope(text: &str) -> Envelope {
    let mut entries = parse_serialized(text).expect("the file format is recognised");
    assert_eq!(entries.len(), 1, "one message per bus file");
    entries
        .pop()
        .expect("one entry")
        .expect("the entry is a valid message")
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn every_bus_file_parses_and_round_trips() {
    for (stem, text) in bus_files() {
        let envelope = only_envelope(&text);
        let document: Value = serde_json::from_str(&text).expect("bus file is JSON");
        assert_eq!(
            Some(envelope.topic.as_str()),
            document["topic"].as_str(),
            "{stem}"
        );

        let serialized = envelope.to_serialized();
        assert_eq!(
            keys(&serialized),
            ["topic", "headers", "id", "body", "queue", "priority"],
            "{stem}"
        );
        let again = Envelope::from_serialized(serialized.clone()).expect("own output reads back");
        assert_eq!(again, envelope, "{stem}");
        // `==` on maps ignores key order; the dumps do not.
        assert_eq!(
            python_json_dumps(&again.to_serialized()),
            python_json_dumps(&serialized),
            "{stem}"
        );

        if !stem.starts_with("legacy-") {
            // Nothing of a modern message is lost or reordered.
            assert_eq!(
                Some(envelope.id.as_str()),
                document["id"].as_str(),
                "{stem}"
            );
            assert_eq!(
                python_json_dumps(&serialized["body"]),
                python_json_dumps(&document["body"]),
                "{stem}"
            );
            assert_eq!(
                python_json_dumps(&serialized["headers"]),
                python_json_dumps(&document["headers"]),
                "{stem}"
            );
            assert_eq!(serialized["queue"], document["queue"], "{stem}");
            let priority = document.get("priority").cloned().unwrap_or(Value::Null);
            assert_eq!(serialized["priority"], priority, "{stem}");
            assert_eq!(
                envelope.sent_at().map(|at| at.to_rfc3339()),
                document["headers"]["sent-at"].as_str().map(str::to_owned),
                "{stem}"
            );
        }
    }
}

#[test]
fn serde_goes_through_the_serialized_form() {
    let envelope = only_envelope(&bus_file("buildsys.tag.json"));
    let text = serde_json::to_string(&envelope).expect("serializes");
    let expected = serde_json::to_string(&envelope.to_serialized()).expect("serializes");
    assert_eq!(text, expected);
    let back: Envelope = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(back, envelope);
    let bad: Result<Envelope, _> = serde_json::from_str(r#"{"topic": "a"}"#);
    assert!(
        bad.expect_err("no body")
            .to_string()
            .contains("missing \"body\"")
    );
}

#[test]
fn header_accessors_read_real_messages() {
    let tag = only_envelope(&bus_file("buildsys.tag.json"));
    assert_eq!(tag.schema(), Some("koji_fedoramessaging.tag.TagV1"));
    assert_eq!(tag.severity(), Some(10));
    assert_eq!(
        tag.sent_at().map(|at| at.to_rfc3339()).as_deref(),
        Some("2024-06-20T15:04:24+00:00")
    );
    assert_eq!(tag.filter_values("rpm"), ["python-specfile"]);
    assert_eq!(tag.filter_values("user"), ["nforro"]);
    assert_eq!(tag.priority, Some(2));

    let bodhi = only_envelope(&bus_file(
        "bodhi.update.status.testing.koji-build-group.build.complete.json",
    ));
    assert_eq!(bodhi.filter_values("user"), ["bodhi", "kevinb"]);
    assert_eq!(bodhi.filter_values("group"), Vec::<&str>::new());

    // Old-style ids and no schema header.
    let building = only_envelope(&bus_file("buildsys.build.state.change-building.json"));
    assert_eq!(
        building.id,
        MessageId::from("2022-08e2102d-9514-4f85-a6ae-43761657adfd")
    );
    assert_eq!(building.schema(), None);
    assert_eq!(building.severity(), None);
    assert_eq!(building.priority, None);
    assert_eq!(building.queue, None);
}

#[test]
fn bad_or_missing_header_values_are_none_not_errors() {
    let with_headers = |headers: Value| {
        Envelope::from_serialized(json!({"topic": "t", "body": {}, "id": "x", "headers": headers}))
            .expect("headers do not make a message invalid")
    };
    let envelope = with_headers(json!({
        "sent-at": "yesterday",
        "fedora_messaging_severity": "20",
        "fedora_messaging_schema": 5,
    }));
    assert_eq!(envelope.sent_at(), None);
    assert_eq!(envelope.severity(), None);
    assert_eq!(envelope.schema(), None);

    let naive = with_headers(json!({"sent-at": "2021-11-12T22:25:13"}));
    assert_eq!(naive.sent_at(), None);

    let odd = with_headers(json!({
        "sent-at": "2021-11-12T22:25:13.500+02:00",
        "fedora_messaging_severity": 35,
    }));
    assert_eq!(
        odd.sent_at().map(|at| at.to_rfc3339()).as_deref(),
        Some("2021-11-12T22:25:13.500+02:00")
    );
    assert_eq!(odd.severity(), Some(35));
    assert_eq!(
        with_headers(json!({"fedora_messaging_severity": -1})).severity(),
        Some(-1)
    );
    assert_eq!(
        with_headers(json!({"fedora_messaging_severity": 20.0})).severity(),
        None
    );
}

#[test]
fn legacy_fedmsg_files_convert() {
    let build = only_envelope(&bus_file(
        "legacy-fedmsg-buildsys.build.state.change-complete.json",
    ));
    assert_eq!(
        build.id.as_str(),
        "2021-d0aaa777-3dc2-4000-b065-f57a870f14f2"
    );
    assert_eq!(
        build.topic,
        "org.fedoraproject.prod.buildsys.build.state.change"
    );
    assert_eq!(build.body.get("build_id"), Some(&json!(1864700)));
    assert_eq!(build.body.len(), 12);
    // "headers": {} plus sent-at from "timestamp": 1638979202.0, as printed by
    // datetime.fromtimestamp(1638979202.0, timezone.utc).isoformat().
    assert_eq!(
        Value::Object(build.headers.clone()),
        json!({"sent-at": "2021-12-08T16:00:02+00:00"})
    );
    assert_eq!(
        build.sent_at().map(|at| at.timestamp()),
        Some(1_638_979_202)
    );
    assert_eq!(build.queue, None);
    assert_eq!(build.priority, None);
    assert_eq!(build.schema(), None);

    // No "headers" key at all in this one; timestamp 1493386183.0.
    let git = only_envelope(&bus_file("legacy-fedmsg-git.receive.json"));
    assert_eq!(git.id.as_str(), "2017-b29fa2b4-0600-4f08-9475-5f82f6684bd4");
    assert_eq!(git.topic, "org.fedoraproject.prod.git.receive");
    assert_eq!(
        Value::Object(git.headers.clone()),
        json!({"sent-at": "2017-04-28T13:29:43+00:00"})
    );
    assert_eq!(
        git.body["commit"]["rev"],
        json!("81e09b9c83e8550b54a64c7bdb4e5d7b534df058")
    );

    // The body is "msg" unchanged, key order included.
    let document: Value =
        serde_json::from_str(&bus_file("legacy-fedmsg-git.receive.json")).expect("JSON");
    assert_eq!(
        python_json_dumps(&Value::Object(git.body.clone())),
        python_json_dumps(&document["msg"])
    );
}

#[test]
fn legacy_details() {
    // Without msg_id: an id from the topic and the body as Python encodes it.
    let envelope = Envelope::from_serialized(json!({
        "topic": "org.fedoraproject.prod.git.receive",
        "msg": {"b": 1, "a": "é"},
        "timestamp": 1493386183,
        "headers": {"sent-at": "2017-04-28T13:29:00+00:00", "x": true},
        "i": 1,
    }))
    .expect("valid legacy message");
    assert_eq!(
        envelope.id,
        content_hash_id(
            "org.fedoraproject.prod.git.receive",
            br#"{"b": 1, "a": "\u00e9"}"#
        )
    );
    assert!(envelope.id.as_str().starts_with("sha256:"));
    // An existing sent-at header is kept (as datanommer does).
    assert_eq!(
        envelope.headers.get("sent-at"),
        Some(&json!("2017-04-28T13:29:00+00:00"))
    );
    assert_eq!(envelope.headers.get("x"), Some(&json!(true)));

    // No timestamp: no sent-at, still a message.
    let untimed = Envelope::from_serialized(json!({"topic": "t", "msg": {}, "msg_id": "m"}))
        .expect("valid legacy message");
    assert!(untimed.headers.is_empty());
    assert_eq!(untimed.sent_at(), None);

    let bad = Envelope::from_serialized(json!({"topic": "t", "msg": "text"}))
        .expect_err("msg must be an object");
    assert_eq!(
        bad.to_string(),
        "entry 0: fedmsg-era message: \"msg\" must be a JSON object, found a string"
    );
}

#[test]
fn missing_id_gets_a_content_hash() {
    for id in [None, Some(Value::Null), Some(json!(""))] {
        let mut value = json!({"topic": "a.b", "body": {"x": [1.0, "ü"]}});
        if let Some(id) = id {
            value["id"] = id;
        }
        let envelope = Envelope::from_serialized(value).expect("valid message");
        assert_eq!(
            envelope.id,
            content_hash_id("a.b", br#"{"x": [1.0, "\u00fc"]}"#)
        );
        assert!(envelope.headers.is_empty());
    }
}

#[test]
fn invalid_entries_say_what_is_wrong() {
    let cases = [
        (json!([1]), "expected a message object, found an array"),
        (json!({"body": {}}), "missing \"topic\""),
        (
            json!({"topic": 1, "body": {}}),
            "\"topic\" must be a string, found a number",
        ),
        (
            json!({"topic": "t"}),
            "missing \"body\" (and no \"msg\", so not a fedmsg-era message either)",
        ),
        (
            json!({"topic": "t", "body": []}),
            "\"body\" must be a JSON object, found an array",
        ),
        (
            json!({"topic": "t", "body": {}, "headers": "x"}),
            "\"headers\" must be a JSON object, found a string",
        ),
        (
            json!({"topic": "t", "body": {}, "id": 7}),
            "\"id\" must be a string or null, found a number",
        ),
        (
            json!({"topic": "t", "body": {}, "queue": false}),
            "\"queue\" must be a string or null, found a boolean",
        ),
        (
            json!({"topic": "t", "body": {}, "priority": 2.5}),
            "\"priority\" must be an integer or null, found 2.5",
        ),
        (
            json!({"topic": "t", "body": {}, "priority": "high"}),
            "\"priority\" must be an integer or null, found \"high\"",
        ),
    ];
    for (value, reason) in cases {
        let error = Envelope::from_serialized(value.clone()).expect_err("invalid entry");
        assert_eq!(
            error,
            EntryError {
                index: 0,
                reason: reason.to_owned()
            },
            "{value}"
        );
    }
}

#[test]
fn a_json_array_of_all_bus_files_parses() {
    let files = bus_files();
    let documents: Vec<Value> = files
        .iter()
        .map(|(_, text)| serde_json::from_str(text).expect("JSON"))
        .collect();
    let text = serde_json::to_string_pretty(&documents).expect("serializes");
    let entries = parse_serialized(&text).expect("an array is a known format");
    assert_eq!(entries.len(), files.len());
    for ((stem, text), entry) in files.iter().zip(entries) {
        let envelope = entry.expect("each bus message is valid");
        assert_eq!(envelope, only_envelope(text), "{stem}");
    }
}

#[test]
fn json_lines_keep_going_past_a_bad_line() {
    let compact = |name: &str| {
        let value: Value = serde_json::from_str(&bus_file(name)).expect("JSON");
        serde_json::to_string(&value).expect("serializes")
    };
    let text = [
        compact("buildsys.tag.json"),
        String::new(),
        compact("pagure.git.receive-pr.json"),
        r#"{"topic": "org.fedoraproject.prod.broken", "body": "#.to_owned(),
        "   ".to_owned(),
        r#"{"topic": "no.body"}"#.to_owned(),
        compact("legacy-fedmsg-git.receive.json"),
    ]
    .join("\n");
    let entries = parse_serialized(&text).expect("JSON Lines is a known format");
    assert_eq!(entries.len(), 5, "blank lines are skipped");

    let ok = |position: usize| {
        entries[position]
            .as_ref()
            .expect("a valid message")
            .id
            .as_str()
    };
    assert_eq!(ok(0), "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad");
    assert_eq!(ok(1), "10ab19ac-ec2c-5b0a-b614-51c0313b7a85");
    assert_eq!(ok(4), "2017-b29fa2b4-0600-4f08-9475-5f82f6684bd4");

    let broken = entries[2].as_ref().expect_err("line 4 is cut short");
    assert_eq!(broken.index, 3, "0-based line number, blank lines counted");
    assert_eq!(
        broken.to_string(),
        "entry 3: line 4 is not JSON: EOF while parsing a value at column 50"
    );
    let no_body = entries[3].as_ref().expect_err("line 6 has no body");
    assert_eq!(no_body.index, 5);
    assert!(no_body.reason.starts_with("missing \"body\""));
}

#[test]
fn json_lines_with_windows_line_ends() {
    let text = "{\"topic\": \"a\", \"body\": {}, \"id\": \"1\"}\r\n\r\n{\"topic\": \"b\", \"body\": {}, \"id\": \"2\"}\r\n";
    let ids: Vec<String> = parse_serialized(text)
        .expect("JSON Lines")
        .into_iter()
        .map(|entry| entry.expect("valid").id.into_string())
        .collect();
    assert_eq!(ids, ["1", "2"]);
}

#[test]
fn datagrepper_v2_page_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/datagrepper-v2-page.json");
    let text = fs::read_to_string(path).expect("page fixture exists");
    let page: Value = serde_json::from_str(&text).expect("JSON");
    let entries = parse_serialized(&text).expect("a page is a known format");
    assert_eq!(Some(entries.len() as u64), page["count"].as_u64());

    let envelopes: Vec<Envelope> = entries
        .into_iter()
        .map(|entry| entry.expect("every page entry is valid"))
        .collect();
    let ids: Vec<&str> = envelopes.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad",
            "10ab19ac-ec2c-5b0a-b614-51c0313b7a85",
            "c54ebed7-0c06-5a03-add1-82c1a97aaeb8",
            "2017-b29fa2b4-0600-4f08-9475-5f82f6684bd4",
        ]
    );
    // The page leaves out priority, so it is unknown, but otherwise these are
    // the same messages as the bus files.
    let tag = only_envelope(&bus_file("buildsys.tag.json"));
    assert_eq!(envelopes[0].priority, None);
    assert_eq!(
        Envelope {
            priority: tag.priority,
            ..envelopes[0].clone()
        },
        tag
    );
    // datanommer serves the fedmsg-era message with the sent-at it derives
    // from its timestamp, which is the one we derive too.
    let git = only_envelope(&bus_file("legacy-fedmsg-git.receive.json"));
    assert_eq!(envelopes[3], git);
}

#[test]
fn datagrepper_page_with_a_bad_entry() {
    let text =
        r#"{"raw_messages": [{"topic": "a", "body": {}, "id": "1"}, {"topic": "b"}], "count": 2}"#;
    let entries = parse_serialized(text).expect("a page");
    assert!(entries[0].is_ok());
    assert_eq!(entries[1].as_ref().map_err(|error| error.index), Err(1));
}

#[test]
fn whole_file_errors() {
    assert_eq!(parse_serialized(""), Err(FormatError::Empty));
    assert_eq!(parse_serialized(" \n\t\n"), Err(FormatError::Empty));
    assert_eq!(
        parse_serialized("\"just text\""),
        Err(FormatError::UnexpectedTopLevel("a string"))
    );
    assert_eq!(
        parse_serialized(r#"{"raw_messages": {"a": 1}, "count": 1}"#),
        Err(FormatError::BadPage(
            "\"raw_messages\" should be an array, found an object".to_owned()
        ))
    );
    assert_eq!(
        parse_serialized(r#"{"error": "not_found"}"#),
        Err(FormatError::DatagrepperError("not_found".to_owned()))
    );

    // A pretty-printed document cut short is not mistaken for JSON Lines.
    let text = bus_file("buildsys.tag.json");
    let cut = &text[..text.len() / 2];
    let error = parse_serialized(cut).expect_err("truncated JSON");
    let FormatError::NotJson {
        line, line_error, ..
    } = &error
    else {
        panic!("expected NotJson, got {error:?}");
    };
    assert_eq!(*line, 1);
    assert_eq!(line_error, "EOF while parsing an object at column 1");
    assert!(
        error
            .to_string()
            .starts_with("not JSON (EOF while parsing "),
        "{error}"
    );

    let garbage = parse_serialized("hello\nworld").expect_err("not JSON");
    assert_eq!(
        garbage.to_string(),
        "not JSON (expected value at line 1 column 1) and not JSON Lines \
         (line 1: expected value at column 1)"
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let text = format!("\u{feff}{}", bus_file("buildsys.tag.json"));
    assert_eq!(
        only_envelope(&text).id.as_str(),
        "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad"
    );
}

#[test]
fn an_empty_array_or_page_is_no_messages() {
    assert_eq!(parse_serialized("[]"), Ok(vec![]));
    assert_eq!(
        parse_serialized(r#"{"raw_messages": [], "total": 0, "pages": 0, "count": 0}"#),
        Ok(vec![])
    );
}
