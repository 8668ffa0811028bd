//! A small XML-RPC codec in the dialect Koji speaks (`koji/xmlrpcplus.py` on
//! top of Python's `xmlrpc.client`): the `<nil/>` and `<i8>` extensions,
//! keyword arguments as a trailing struct with `__starstar`, faults as
//! `{faultCode, faultString}`.
//!
//! Encoding writes what Python's marshaller writes (same elements, same line
//! breaks), so the stand-in hub answers byte for byte like a real one.
//! Decoding accepts everything Python's unmarshaller accepts that Koji can
//! send: `int`/`i4`/`i8` (and `i1`, `i2`, `bigint`), `boolean`, `string` and
//! untyped values, `double`, `dateTime.iso8601`, `base64`, `array`, `struct`
//! and `nil`.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Deeper nesting than this is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<int>`, `<i4>` or `<i8>`: one type here, encoded as `<int>` when it
    /// fits in 32 bits and as `<i8>` otherwise, as Koji does.
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    /// `<dateTime.iso8601>`, kept as written (Koji itself sends dates as
    /// strings).
    DateTime(String),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    /// Members in the order they were written.
    Struct(Vec<(String, Value)>),
    Nil,
}

impl Value {
    /// A struct from `(name, value)` pairs.
    pub fn structure<K: Into<String>>(members: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Struct(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Keyword arguments as Koji's `encode_args` passes them: a trailing
    /// struct with `__starstar: True`.
    pub fn kwargs<K: Into<String>>(args: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut members: Vec<(String, Value)> =
            args.into_iter().map(|(k, v)| (k.into(), v)).collect();
        members.push(("__starstar".to_owned(), Value::Bool(true)));
        Value::Struct(members)
    }

    /// A struct member by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(n) => Some(*n),
            Value::Int(n) => Some(*n as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The value as JSON: dates stay strings, base64 stays base64 text,
    /// doubles that JSON cannot hold (NaN, infinities) become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Int(n) => J::from(*n),
            Value::Bool(b) => J::Bool(*b),
            Value::String(s) | Value::DateTime(s) => J::String(s.clone()),
            Value::Double(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
            Value::Base64(bytes) => J::String(BASE64.encode(bytes)),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Struct(members) => J::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            Value::Nil => J::Null,
        }
    }

    /// A JSON value as XML-RPC: integers that fit in 64 bits stay integers,
    /// other numbers become doubles.
    pub fn from_json(value: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match value {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            J::Object(map) => Value::Struct(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Int(n) => {
                let tag = if i32::try_from(*n).is_ok() {
                    "int"
                } else {
                    "i8"
                };
                let _ = writeln!(out, "<value><{tag}>{n}</{tag}></value>");
            }
            Value::Bool(b) => {
                let _ = writeln!(out, "<value><boolean>{}</boolean></value>", u8::from(*b));
            }
            Value::String(s) => {
                let _ = writeln!(out, "<value><string>{}</string></value>", escape(s));
            }
            Value::Double(n) => {
                let _ = writeln!(out, "<value><double>{n:?}</double></value>");
            }
            Value::DateTime(s) => {
                let _ = writeln!(
                    out,
                    "<value><dateTime.iso8601>{}</dateTime.iso8601></value>",
                    escape(s)
                );
            }
            Value::Base64(bytes) => {
                let _ = writeln!(
                    out,
                    "<value><base64>\n{}\n</base64></value>",
                    BASE64.encode(bytes)
                );
            }
            Value::Array(items) => {
                out.push_str("<value><array><data>\n");
                for item in items {
                    item.write(out);
                }
                out.push_str("</data></array></value>\n");
            }
            Value::Struct(members) => {
                out.push_str("<value><struct>\n");
                for (name, value) in members {
                    let _ = writeln!(out, "<member>\n<name>{}</name>", escape(name));
                    value.write(out);
                    out.push_str("</member>\n");
                }
                out.push_str("</struct></value>\n");
            }
            // Python writes no line break after nil.
            Value::Nil => out.push_str("<value><nil/></value>"),
        }
    }
}

/// What a hub answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Value(Value),
    Fault(Fault),
}

/// An XML-RPC fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i64,
    pub string: String,
}

/// A document that is not the XML-RPC it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid XML-RPC: {0}")]
pub struct DecodeError(String);

fn bad<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(message.into()))
}

const XML_HEADER: &str = "<?xml version='1.0'?>\n";

/// A `<methodCall>`.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::from(XML_HEADER);
    let _ = writeln!(
        out,
        "<methodCall>\n<methodName>{}</methodName>",
        escape(method)
    );
    write_params(&mut out, params);
    out.push_str("</methodCall>\n");
    out
}

/// A `<methodResponse>` carrying one value.
pub fn encode_response(value: &Value) -> String {
    let mut out = String::from(XML_HEADER);
    out.push_str("<methodResponse>\n");
    write_params(&mut out, std::slice::from_ref(value));
    out.push_str("</methodResponse>\n");
    out
}

/// A `<methodResponse>` carrying a fault.
pub fn encode_fault(fault: &Fault) -> String {
    let mut out = String::from(XML_HEADER);
    out.push_str("<methodResponse>\n<fault>\n");
    Value::structure([
        ("faultCode", Value::Int(fault.code)),
        ("faultString", Value::String(fault.string.clone())),
    ])
    .write(&mut out);
    out.push_str("</fault>\n</methodResponse>\n");
    out
}

fn write_params(out: &mut String, params: &[Value]) {
    out.push_str("<params>\n");
    for param in params {
        out.push_str("<param>\n");
        param.write(out);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n");
}

/// Python's `xml.sax.saxutils.escape`, which is what its marshaller uses.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// A `<methodResponse>`: its value, or its fault.
pub fn decode_response(text: &str) -> Result<Response, DecodeError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "methodResponse" {
        return bad(format!(
            "expected <methodResponse>, found <{}>",
            root.tag_name().name()
        ));
    }
    let child = only_child(root)?;
    match child.tag_name().name() {
        "params" => {
            let params = params(child)?;
            match <[Value; 1]>::try_from(params) {
                Ok([value]) => Ok(Response::Value(value)),
                Err(params) => bad(format!(
                    "a response carries one value, this one {}",
                    params.len()
                )),
            }
        }
        "fault" => {
            let value = value(only_child(child)?, 0)?;
            let code = value.get("faultCode").and_then(Value::as_i64);
            let string = value.get("faultString").and_then(Value::as_str);
            match (code, string) {
                (Some(code), Some(string)) => Ok(Response::Fault(Fault {
                    code,
                    string: string.to_owned(),
                })),
                _ => bad("a fault needs an integer faultCode and a string faultString"),
            }
        }
        other => bad(format!("unexpected <{other}> in <methodResponse>")),
    }
}

/// A `<methodCall>`: the method name and the parameters as sent (keyword
/// arguments are still the trailing `__starstar` struct).
pub fn decode_call(text: &str) -> Result<(String, Vec<Value>), DecodeError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "methodCall" {
        return bad(format!(
            "expected <methodCall>, found <{}>",
            root.tag_name().name()
        ));
    }
    let mut method = None;
    let mut values = Vec::new();
    for child in elements(root) {
        match child.tag_name().name() {
            "methodName" => method = Some(child.text().unwrap_or_default().to_owned()),
            "params" => values = params(child)?,
            other => return bad(format!("unexpected <{other}> in <methodCall>")),
        }
    }
    match method {
        Some(method) if !method.is_empty() => Ok((method, values)),
        _ => bad("<methodCall> has no <methodName>"),
    }
}

fn parse(text: &str) -> Result<roxmltree::Document<'_>, DecodeError> {
    // DTDs (and with them entity expansion) stay refused, roxmltree's default.
    roxmltree::Document::parse(text).map_err(|e| DecodeError(e.to_string()))
}

fn elements<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> {
    node.children().filter(roxmltree::Node::is_element)
}

fn only_child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
) -> Result<roxmltree::Node<'a, 'input>, DecodeError> {
    let mut children = elements(node);
    match (children.next(), children.next()) {
        (Some(child), None) => Ok(child),
        (None, _) => bad(format!("<{}> is empty", node.tag_name().name())),
        (Some(_), Some(_)) => bad(format!(
            "<{}> has more than one element",
            node.tag_name().name()
        )),
    }
}

fn params(node: roxmltree::Node<'_, '_>) -> Result<Vec<Value>, DecodeError> {
    elements(node)
        .map(|param| {
            if param.tag_name().name() != "param" {
                return bad(format!(
                    "unexpected <{}> in <params>",
                    param.tag_name().name()
                ));
            }
            value(only_child(param)?, 0)
        })
        .collect()
}

fn value(node: roxmltree::Node<'_, '_>, depth: usize) -> Result<Value, DecodeError> {
    if node.tag_name().name() != "value" {
        return bad(format!(
            "expected <value>, found <{}>",
            node.tag_name().name()
        ));
    }
    if depth > MAX_DEPTH {
        return bad(format!("values nested deeper than {MAX_DEPTH}"));
    }
    let mut typed = elements(node);
    let Some(typed_node) = typed.next() else {
        // An untyped value is a string, whitespace and all.
        return Ok(Value::String(all_text(node)));
    };
    if typed.next().is_some() {
        return bad("<value> has more than one element");
    }
    let text = || all_text(typed_node);
    let name = typed_node.tag_name().name();
    match name {
        "int" | "i4" | "i8" | "i1" | "i2" | "bigint" => text()
            .trim()
            .parse()
            .map(Value::Int)
            .or_else(|_| bad(format!("<{name}> holds {:?}", text()))),
        "boolean" => match text().trim() {
            "1" => Ok(Value::Bool(true)),
            "0" => Ok(Value::Bool(false)),
            other => bad(format!("<boolean> holds {other:?}")),
        },
        "string" => Ok(Value::String(text())),
        "double" | "float" => text()
            .trim()
            .parse()
            .map(Value::Double)
            .or_else(|_| bad(format!("<{name}> holds {:?}", text()))),
        "dateTime.iso8601" => Ok(Value::DateTime(text().trim().to_owned())),
        "base64" => {
            let cleaned: String = text()
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            BASE64
                .decode(cleaned)
                .map(Value::Base64)
                .or_else(|e| bad(format!("<base64>: {e}")))
        }
        "nil" => Ok(Value::Nil),
        "array" => {
            let data = only_child(typed_node)?;
            if data.tag_name().name() != "data" {
                return bad(format!(
                    "expected <data> in <array>, found <{}>",
                    data.tag_name().name()
                ));
            }
            elements(data)
                .map(|item| value(item, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        "struct" => {
            let mut members = Vec::new();
            for member in elements(typed_node) {
                if member.tag_name().name() != "member" {
                    return bad(format!(
                        "unexpected <{}> in <struct>",
                        member.tag_name().name()
                    ));
                }
                let mut member_name = None;
                let mut member_value = None;
                for part in elements(member) {
                    match part.tag_name().name() {
                        "name" => member_name = Some(all_text(part)),
                        "value" => member_value = Some(value(part, depth + 1)?),
                        other => return bad(format!("unexpected <{other}> in <member>")),
                    }
                }
                match (member_name, member_value) {
                    (Some(n), Some(v)) => members.push((n, v)),
                    _ => return bad("a <member> needs a <name> and a <value>"),
                }
            }
            Ok(Value::Struct(members))
        }
        other => bad(format!("unknown value type <{other}>")),
    }
}

/// The text of a node, entity references resolved and CDATA included.
fn all_text(node: roxmltree::Node<'_, '_>) -> String {
    node.children()
        .filter(roxmltree::Node::is_text)
        .filter_map(|t| t.text())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_call_as_python_does() {
        let xml = encode_call(
            "getTaskInfo",
            &[
                Value::Int(45270170),
                Value::kwargs([("request", Value::Bool(true))]),
            ],
        );
        assert_eq!(
            xml,
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>getTaskInfo</methodName>\n<params>\n\
             <param>\n<value><int>45270170</int></value>\n</param>\n\
             <param>\n<value><struct>\n<member>\n<name>request</name>\n<value><boolean>1</boolean></value>\n</member>\n\
             <member>\n<name>__starstar</name>\n<value><boolean>1</boolean></value>\n</member>\n</struct></value>\n</param>\n\
             </params>\n</methodCall>\n"
        );
    }

    #[test]
    fn big_integers_are_i8_and_small_ones_int() {
        let xml = encode_response(&Value::Array(vec![
            Value::Int(2_147_483_647),
            Value::Int(2_147_483_648),
        ]));
        assert!(xml.contains("<value><int>2147483647</int></value>"));
        assert!(xml.contains("<value><i8>2147483648</i8></value>"));
        assert_eq!(
            decode_response(&xml),
            Ok(Response::Value(Value::Array(vec![
                Value::Int(2_147_483_647),
                Value::Int(2_147_483_648)
            ])))
        );
    }

    #[test]
    fn nil_is_written_without_a_line_break_and_read_back() {
        let xml = encode_response(&Value::Nil);
        assert_eq!(
            xml,
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n"
        );
        assert_eq!(decode_response(&xml), Ok(Response::Value(Value::Nil)));
    }

    #[test]
    fn decodes_a_task_info_as_the_hub_sends_it() {
        // The shape of a real hub answer to getTaskInfo(45270170, request=True).
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n\
            <member>\n<name>id</name>\n<value><int>45270170</int></value>\n</member>\n\
            <member>\n<name>state</name>\n<value><int>2</int></value>\n</member>\n\
            <member>\n<name>create_time</name>\n<value><string>2020-06-01 06:30:47.123456+00:00</string></value>\n</member>\n\
            <member>\n<name>create_ts</name>\n<value><double>1590993047.12346</double></value>\n</member>\n\
            <member>\n<name>parent</name>\n<value><nil/></value></member>\n\
            <member>\n<name>label</name>\n<value><nil/></value></member>\n\
            <member>\n<name>request</name>\n<value><array><data>\n\
            <value><string>git+https://src.fedoraproject.org/rpms/hello.git#beaf90b</string></value>\n\
            <value><string>rawhide</string></value>\n\
            <value><struct>\n<member>\n<name>scratch</name>\n<value><boolean>1</boolean></value>\n</member>\n</struct></value>\n\
            </data></array></value>\n</member>\n\
            </struct></value>\n</param>\n</params>\n</methodResponse>\n";
        let Ok(Response::Value(info)) = decode_response(xml) else {
            panic!("not a value: {:?}", decode_response(xml));
        };
        assert_eq!(info.get("id"), Some(&Value::Int(45270170)));
        assert_eq!(info.get("parent"), Some(&Value::Nil));
        assert_eq!(
            info.to_json(),
            serde_json::json!({
                "id": 45270170,
                "state": 2,
                "create_time": "2020-06-01 06:30:47.123456+00:00",
                "create_ts": 1590993047.12346,
                "parent": null,
                "label": null,
                "request": ["git+https://src.fedoraproject.org/rpms/hello.git#beaf90b", "rawhide", {"scratch": true}],
            })
        );
    }

    #[test]
    fn decodes_a_fault() {
        let xml = encode_fault(&Fault {
            code: 1004,
            string: "you must be logged in for this operation".into(),
        });
        assert!(xml.contains("<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1004</int></value>"));
        assert_eq!(
            decode_response(&xml),
            Ok(Response::Fault(Fault {
                code: 1004,
                string: "you must be logged in for this operation".into()
            }))
        );
    }

    #[test]
    fn accepts_what_python_accepts() {
        let xml = "<methodResponse><params><param><value><array><data>\
            <value>untyped text</value>\
            <value></value>\
            <value><string></string></value>\
            <value><i4>-5</i4></value>\
            <value><i8> 9007199254740993 </i8></value>\
            <value><boolean>0</boolean></value>\
            <value><double>-0.5</double></value>\
            <value><dateTime.iso8601>20200601T06:30:47</dateTime.iso8601></value>\
            <value><base64>aGVs\nbG8=</base64></value>\
            <value><string>a &amp; b &lt;c&gt; <![CDATA[<d>]]></string></value>\
            <value><struct></struct></value>\
            <value><array><data></data></array></value>\
            </data></array></value></param></params></methodResponse>";
        assert_eq!(
            decode_response(xml),
            Ok(Response::Value(Value::Array(vec![
                Value::String("untyped text".into()),
                Value::String(String::new()),
                Value::String(String::new()),
                Value::Int(-5),
                Value::Int(9_007_199_254_740_993),
                Value::Bool(false),
                Value::Double(-0.5),
                Value::DateTime("20200601T06:30:47".into()),
                Value::Base64(b"hello".to_vec()),
                Value::String("a & b <c> <d>".into()),
                Value::Struct(vec![]),
                Value::Array(vec![]),
            ])))
        );
    }

    #[test]
    fn round_trips_every_type() {
        let value = Value::structure([
            ("int", Value::Int(-7)),
            ("long", Value::Int(i64::MAX)),
            ("bool", Value::Bool(true)),
            (
                "text",
                Value::String("<tag> & \"quotes\" ünïcode\nnewline".into()),
            ),
            ("double", Value::Double(1590993047.0)),
            ("date", Value::DateTime("20200601T06:30:47".into())),
            ("bytes", Value::Base64(vec![0, 1, 2, 254, 255])),
            ("list", Value::Array(vec![Value::Nil, Value::Array(vec![])])),
            ("nested", Value::structure([("nil", Value::Nil)])),
        ]);
        assert_eq!(
            decode_response(&encode_response(&value)),
            Ok(Response::Value(value.clone()))
        );
        let call = encode_call("echo", std::slice::from_ref(&value));
        assert_eq!(decode_call(&call), Ok(("echo".to_owned(), vec![value])));
    }

    #[test]
    fn json_round_trip_keeps_member_order() {
        let json = serde_json::json!({"src": "git+https://x#1", "target": "rawhide", "opts": {"scratch": true}, "n": null, "f": 1.5});
        let value = Value::from_json(&json);
        assert_eq!(value.get("target"), Some(&Value::String("rawhide".into())));
        assert_eq!(value.to_json(), json);
        assert_eq!(
            serde_json::to_string(&value.to_json()).ok(),
            Some(r#"{"src":"git+https://x#1","target":"rawhide","opts":{"scratch":true},"n":null,"f":1.5}"#.to_owned())
        );
    }

    #[test]
    fn refuses_what_is_not_xml_rpc() {
        for xml in [
            "",
            "<html><body>502 Bad Gateway</body></html>",
            "<methodResponse></methodResponse>",
            "<methodResponse><params></params></methodResponse>",
            "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><int>99999999999999999999</int></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><boolean>yes</boolean></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><foo/></value></param></params></methodResponse>",
            "<methodResponse><fault><value><struct></struct></value></fault></methodResponse>",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse/>",
            "<methodResponse><params><param><value><int>1</int>",
        ] {
            assert!(decode_response(xml).is_err(), "accepted {xml:?}");
        }
        assert!(decode_call("<methodCall><params/></methodCall>").is_err());
    }

    #[test]
    fn refuses_absurd_nesting() {
        let depth = MAX_DEPTH + 5;
        let mut xml = String::from("<methodResponse><params><param>");
        for _ in 0..depth {
            xml.push_str("<value><array><data>");
        }
        for _ in 0..depth {
            xml.push_str("</data></array></value>");
        }
        xml.push_str("</param></params></methodResponse>");
        assert!(decode_response(&xml).is_err());
    }
}
