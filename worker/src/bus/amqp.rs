//! AMQP field tables to and from JSON.
//!
//! Publishers differ in which AMQP types they use for the same header (pika
//! sends a severity as a signed 32-bit integer, other clients as a byte or a
//! 64-bit integer), so every type is accepted on the way in. On the way out we
//! encode the way pika does, so consumers see what fedora-messaging would send.

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

/// How deeply a header table nests, the table itself being level 1, counted
/// with an explicit stack: a table nested thousands of levels deep (one
/// 128 KiB frame holds over 20,000) is measured without recursing, and only
/// a table within [`events::MAX_HEADER_DEPTH`] is then converted.
pub fn table_depth(table: &FieldTable) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&AMQPValue, usize)> = table.inner().values().map(|v| (v, 1)).collect();
    while let Some((value, depth)) = stack.pop() {
        match value {
            AMQPValue::FieldArray(items) => {
                deepest = deepest.max(depth + 1);
                stack.extend(items.as_slice().iter().map(|v| (v, depth + 1)));
            }
            AMQPValue::FieldTable(inner) => {
                deepest = deepest.max(depth + 1);
                stack.extend(inner.inner().values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// The headers of a delivery as a JSON object. Recursive: callers check
/// [`table_depth`] first.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table
        .inner()
        .iter()
        .map(|(key, value)| (key.as_str().to_owned(), value_to_json(value)))
        .collect()
}

fn value_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::from(*i),
        AMQPValue::ShortShortUInt(i) => Value::from(*i),
        AMQPValue::ShortInt(i) => Value::from(*i),
        AMQPValue::ShortUInt(i) => Value::from(*i),
        AMQPValue::LongInt(i) => Value::from(*i),
        AMQPValue::LongUInt(i) => Value::from(*i),
        AMQPValue::LongLongInt(i) => Value::from(*i),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::Float(f) => float(f64::from(*f)),
        AMQPValue::Double(f) => float(*f),
        AMQPValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => {
            Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        AMQPValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b.as_slice()).into_owned())
        }
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A JSON object as AMQP headers, typed as pika types Python values.
pub fn json_to_table(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in map {
        table.insert(ShortString::from(key.as_str()), json_to_value(value));
    }
    table
}

fn json_to_value(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                // pika: 'I' (signed 32-bit) when it fits, else 'l' (signed 64-bit).
                i32::try_from(i).map_or(AMQPValue::LongLongInt(i), AMQPValue::LongInt)
            } else if let Some(u) = n.as_u64() {
                // Beyond i64; AMQP has no unsigned 64-bit type, keep the digits.
                AMQPValue::LongString(LongString::from(u.to_string()))
            } else {
                AMQPValue::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(json_to_value).collect::<Vec<_>>(),
        )),
        Value::Object(map) => AMQPValue::FieldTable(json_to_table(map)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::DecimalValue;
    use serde_json::json;

    #[test]
    fn every_integer_type_reads_as_a_number() {
        let mut table = FieldTable::default();
        let values = [
            AMQPValue::ShortShortInt(20),
            AMQPValue::ShortShortUInt(20),
            AMQPValue::ShortInt(20),
            AMQPValue::ShortUInt(20),
            AMQPValue::LongInt(20),
            AMQPValue::LongUInt(20),
            AMQPValue::LongLongInt(20),
            AMQPValue::Timestamp(20),
        ];
        for (i, value) in values.into_iter().enumerate() {
            table.insert(format!("h{i}").into(), value);
        }
        let json = table_to_json(&table);
        assert_eq!(json.len(), 8);
        assert!(json.values().all(|v| v.as_i64() == Some(20)), "{json:?}");
    }

    #[test]
    fn strings_floats_and_nesting() {
        let mut inner = FieldTable::default();
        inner.insert("x".into(), AMQPValue::Boolean(true));
        let mut table = FieldTable::default();
        table.insert("short".into(), AMQPValue::ShortString("a".into()));
        table.insert("long".into(), AMQPValue::LongString("b".into()));
        table.insert("bytes".into(), AMQPValue::ByteArray(b"c".to_vec().into()));
        table.insert("double".into(), AMQPValue::Double(1.5));
        table.insert(
            "decimal".into(),
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 150,
            }),
        );
        table.insert("void".into(), AMQPValue::Void);
        table.insert(
            "array".into(),
            AMQPValue::FieldArray(vec![AMQPValue::LongInt(1)].into()),
        );
        table.insert("table".into(), AMQPValue::FieldTable(inner));
        assert_eq!(
            Value::Object(table_to_json(&table)),
            json!({"short": "a", "long": "b", "bytes": "c", "double": 1.5, "decimal": 1.5,
                   "void": null, "array": [1], "table": {"x": true}})
        );
    }

    #[test]
    fn depth_is_measured_without_recursing() {
        let mut flat = FieldTable::default();
        flat.insert("a".into(), AMQPValue::LongInt(1));
        assert_eq!(table_depth(&flat), 1);
        assert_eq!(table_depth(&FieldTable::default()), 1);
        // 100,000 levels of arrays in a table, then of tables: far beyond what
        // a recursive walk survives on a test thread's stack.
        let mut value = AMQPValue::Void;
        for _ in 0..100_000 {
            value = AMQPValue::FieldArray(vec![value].into());
        }
        let mut deep = FieldTable::default();
        deep.insert("deep".into(), value);
        assert_eq!(table_depth(&deep), 100_001);
        let mut table = FieldTable::default();
        for _ in 0..50_000 {
            let mut outer = FieldTable::default();
            outer.insert("".into(), AMQPValue::FieldTable(table));
            table = outer;
        }
        assert_eq!(table_depth(&table), 50_001);
        // Dropping them recurses too; the test thread would not survive it.
        std::mem::forget(deep);
        std::mem::forget(table);
    }

    #[test]
    fn headers_round_trip_with_pika_types() {
        let headers = json!({
            "fedora_messaging_schema": "pagure.pull-request.new",
            "fedora_messaging_severity": 20,
            "fedora_messaging_user_zbyszek": true,
            "sent-at": "2026-11-22T21:24:17+00:00",
            "priority": 0,
            "big": 5_000_000_000i64,
        });
        let map = headers.as_object().expect("object");
        let table = json_to_table(map);
        assert!(matches!(
            table.inner().get("fedora_messaging_severity"),
            Some(AMQPValue::LongInt(20))
        ));
        assert!(matches!(
            table.inner().get("big"),
            Some(AMQPValue::LongLongInt(_))
        ));
        assert!(matches!(
            table.inner().get("sent-at"),
            Some(AMQPValue::LongString(_))
        ));
        assert_eq!(&table_to_json(&table), map);
    }
}
