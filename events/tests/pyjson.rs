//! python_json_dumps against output of CPython itself.
//!
//! The expected strings in tests/data/pyjson/ were made once by running
//! `python3 events/tests/data/pyjson/generate.py` (CPython 3.11.7), which
//! writes `json.dumps(value)` with default arguments for the body and for the
//! whole document of every file in tests/data/bus/, and for every
//! `*.input.json` next to it. `edge-cases.input.json` holds non-ASCII text in
//! several scripts, emoji (astral, ZWJ sequences, flags), control characters,
//! awkward floats and integers, empty containers and a duplicate key.
//! Regenerate after changing any of those inputs.

use std::fs;
use std::path::{Path, PathBuf};

use events::python_json_dumps;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pyjson")
}

fn expected(name: &str) -> String {
    fs::read_to_string(fixtures().join(name)).unwrap_or_else(|error| {
        panic!("missing fixture {name} ({error}); run python3 events/tests/data/pyjson/generate.py")
    })
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

#[test]
fn bus_bodies_and_documents_match_python() {
    let bus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/bus");
    let mut checked = 0;
    for entry in fs::read_dir(bus).expect("tests/data/bus is readable") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("UTF-8 file name");
        let document = parse(&fs::read_to_string(&path).expect("bus file"));
        let body = document.get("body").or_else(|| document.get("msg"));
        let body = body.expect("a body or a fedmsg msg");

        assert_eq!(
            python_json_dumps(body),
            expected(&format!("{stem}.body.txt")),
            "body of {stem}"
        );
        assert_eq!(
            python_json_dumps(&document),
            expected(&format!("{stem}.whole.txt")),
            "whole {stem}"
        );
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} bus files found");
}

#[test]
fn edge_cases_match_python() {
    let input = fs::read_to_string(fixtures().join("edge-cases.input.json")).expect("input");
    let output = python_json_dumps(&parse(&input));
    let wanted = expected("edge-cases.txt");
    assert!(output.is_ascii());
    assert_eq!(output, wanted);
}

#[test]
fn non_ascii_body_from_the_bus_is_escaped() {
    // pagure.pull-request.new-fork.json has names with accents; make sure the
    // fixture comparison above exercised escaping at all.
    let wanted = expected("pagure.pull-request.new-fork.body.txt");
    assert!(wanted.contains("\\u"), "fixture has escapes");
}
