//! Printing a job's results: CSV with a header (first column the key, then one column per
//! flattened result value), or JSON (an array of objects in the same column order).

use std::io::Write;

use crate::aggregation::Aggregation;
use crate::value::{excerpt, format_value, Value};

/// Why results could not be written.
#[derive(Debug)]
pub enum OutputError {
    /// The sink failed (its kind is kept: a closed pipe is told apart from a full disk).
    Io(std::io::Error),
    /// JSON cannot hold this key (shown lossily and cut): it is not UTF-8.
    KeyNotUtf8(String),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::Io(error) => write!(f, "{error}"),
            OutputError::KeyNotUtf8(key) => {
                write!(f, "key `{key}` is not valid UTF-8 and cannot be written as JSON; use `--format csv`")
            }
        }
    }
}

impl std::error::Error for OutputError {}

impl From<std::io::Error> for OutputError {
    fn from(error: std::io::Error) -> OutputError {
        OutputError::Io(error)
    }
}

impl From<csv::Error> for OutputError {
    fn from(error: csv::Error) -> OutputError {
        match error.into_kind() {
            csv::ErrorKind::Io(error) => OutputError::Io(error),
            other => OutputError::Io(std::io::Error::other(format!("{other:?}"))),
        }
    }
}

fn not_utf8(key: &[u8]) -> OutputError {
    OutputError::KeyNotUtf8(excerpt(&String::from_utf8_lossy(key)))
}

/// The header: the key column's name, then the result columns, every name distinct (a JSON
/// reader keeps only one member of a name). Result columns keep their names (§17.4); when the
/// key column's name is also a result column's (`--key s.0` with an aggregate `s` of a tuple),
/// the key column is written as `NAME_key`, or `NAME_key2`, `NAME_key3`, ... if that is taken too.
pub fn header(aggregation: &Aggregation, key: &str) -> Vec<String> {
    let results: Vec<String> = aggregation.results().iter().map(|c| c.name.clone()).collect();
    let taken: std::collections::HashSet<&str> = results.iter().map(String::as_str).collect();
    let mut key_name = key.to_string();
    let mut suffix = 1u64;
    while taken.contains(key_name.as_str()) {
        key_name = match suffix {
            1 => format!("{key}_key"),
            n => format!("{key}_key{n}"),
        };
        suffix += 1;
    }
    std::iter::once(key_name).chain(results).collect()
}

/// Writes CSV; keys are written byte for byte (quoted when needed).
pub fn write_csv<W: Write>(
    out: W,
    aggregation: &Aggregation,
    key: &str,
    results: &[(Vec<u8>, Vec<Value>)],
) -> Result<(), OutputError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(header(aggregation, key))?;
    let types: Vec<_> = aggregation.results().iter().map(|c| c.ty).collect();
    let mut row: Vec<Vec<u8>> = Vec::new();
    for (key, values) in results {
        row.clear();
        row.push(key.clone());
        row.extend(values.iter().zip(&types).map(|(v, ty)| format_value(*v, *ty).into_bytes()));
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes JSON. Non-finite floats, which JSON numbers cannot hold, are written as the strings
/// `"NaN"`, `"inf"` and `"-inf"`. A key that is not UTF-8 is an error (use CSV).
pub fn write_json<W: Write>(
    mut out: W,
    aggregation: &Aggregation,
    key: &str,
    results: &[(Vec<u8>, Vec<Value>)],
) -> Result<(), OutputError> {
    let names = header(aggregation, key);
    let types: Vec<_> = aggregation.results().iter().map(|c| c.ty).collect();
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    // Check every key before writing anything: no partial output on an error.
    if let Some((key, _)) = results.iter().find(|(key, _)| std::str::from_utf8(key).is_err()) {
        return Err(not_utf8(key));
    }
    writeln!(out, "[")?;
    for (i, (key, values)) in results.iter().enumerate() {
        let key = std::str::from_utf8(key).map_err(|_| not_utf8(key))?;
        let mut fields = vec![format!("{}: {}", quote(&names[0]), quote(key))];
        for ((name, value), ty) in names[1..].iter().zip(values).zip(&types) {
            let text = match value {
                Value::Float(x) if !x.is_finite() => quote(&format_value(*value, *ty)),
                _ => format_value(*value, *ty),
            };
            fields.push(format!("{}: {text}", quote(name)));
        }
        let comma = if i + 1 < results.len() { "," } else { "" };
        writeln!(out, "  {{{}}}{comma}", fields.join(", "))?;
    }
    writeln!(out, "]")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const PAIR: &str = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(x), count()\n";

    #[test]
    fn a_key_named_like_a_result_column_gets_a_distinct_name() {
        let agg = Aggregation::from_source("s.naas", PAIR, None).unwrap();
        assert_eq!(header(&agg, "k"), ["k", "s.0", "s.1"]);
        assert_eq!(header(&agg, "s.0"), ["s.0_key", "s.0", "s.1"]);
        let results = vec![(b"a".to_vec(), vec![Value::Int(3), Value::UInt(2)])];
        let mut json = Vec::new();
        write_json(&mut json, &agg, "s.1", &results).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed, serde_json::json!([{"s.1_key": "a", "s.0": 3, "s.1": 2}]));
        let mut csv = Vec::new();
        write_csv(&mut csv, &agg, "s.0", &results).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "s.0_key,s.0,s.1\na,3,2\n");
    }

    #[test]
    fn a_non_utf8_key_refuses_json_before_writing_and_keeps_io_errors_apart() {
        let agg = Aggregation::from_source("s.naas", PAIR, None).unwrap();
        let results = vec![(vec![0xff, b'a'], vec![Value::Int(3), Value::UInt(2)])];
        let mut json = Vec::new();
        assert!(matches!(write_json(&mut json, &agg, "k", &results), Err(OutputError::KeyNotUtf8(_))));
        assert!(json.is_empty());
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let ok = vec![(b"a".to_vec(), vec![Value::Int(3), Value::UInt(2)])];
        for error in [write_csv(Closed, &agg, "k", &ok).unwrap_err(), write_json(Closed, &agg, "k", &ok).unwrap_err()] {
            assert!(matches!(error, OutputError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe));
        }
    }
}
