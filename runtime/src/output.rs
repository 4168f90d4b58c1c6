//! Printing a job's results: CSV with a header (first column the key, then one column per
//! flattened result value), or JSON (an array of objects in the same column order).

use std::io::Write;

use naas_ir::ir::ScalarTy;
use naas_lang::types::FloatTy;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::aggregation::Aggregation;
use crate::results::KeyResults;
use crate::value::{excerpt, format_value, write_value, Value};

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

/// Rows formatted per chunk by [`write_csv`]: large enough that handing a chunk over is
/// nothing next to formatting it, small enough that the text held at once stays a few
/// megabytes per thread.
const CSV_CHUNK_ROWS: usize = 1 << 14;

/// Writes CSV; keys are written byte for byte (quoted when needed).
///
/// Formatting numbers is most of the cost of writing a million rows, and it would be the job's
/// serial tail: one formatting thread per core takes every `T`-th chunk of rows, and this
/// thread writes the chunks in order as they come, so writing overlaps formatting.
pub fn write_csv<W: Write>(
    mut out: W,
    aggregation: &Aggregation,
    key: &str,
    results: &KeyResults,
) -> Result<(), OutputError> {
    let mut header_text = csv::Writer::from_writer(Vec::new());
    header_text.write_record(header(aggregation, key))?;
    out.write_all(&header_text.into_inner().map_err(|e| OutputError::Io(e.into_error()))?)?;
    let types: Vec<ScalarTy> = aggregation.results().iter().map(|c| c.ty).collect();
    let chunks: Vec<std::ops::Range<usize>> = (0..results.len())
        .step_by(CSV_CHUNK_ROWS)
        .map(|start| start..(start + CSV_CHUNK_ROWS).min(results.len()))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(chunks.len());
    if threads <= 1 {
        for chunk in chunks {
            out.write_all(&csv_rows(results, chunk, &types))?;
        }
        out.flush()?;
        return Ok(());
    }
    std::thread::scope(|scope| -> Result<(), OutputError> {
        // Formatter `t` sends chunks `t`, `t + T`, ... through its own channel, at most two
        // ahead of the writer. `None`: the thread could not be started, so the chunks are
        // formatted here. Returning early drops the receivers, which stops the formatters.
        let formatters: Vec<Option<crossbeam_channel::Receiver<Vec<u8>>>> = (0..threads)
            .map(|first| {
                let (sender, receiver) = crossbeam_channel::bounded(2);
                let (chunks, types) = (&chunks, &types);
                std::thread::Builder::new()
                    .name("naas-output".to_string())
                    .spawn_scoped(scope, move || {
                        for chunk in chunks.iter().skip(first).step_by(threads) {
                            if sender.send(csv_rows(results, chunk.clone(), types)).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| receiver)
            })
            .collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let text = match &formatters[i % threads] {
                Some(receiver) => receiver
                    .recv()
                    .map_err(|_| OutputError::Io(std::io::Error::other("a thread formatting results failed")))?,
                None => csv_rows(results, chunk.clone(), &types),
            };
            out.write_all(&text)?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}

/// The CSV text of `rows`, as the `csv` crate writes it (quoting only the fields that need it),
/// without its per-byte checks on fields that cannot need quoting: values are numbers, `NaN`,
/// `inf` or booleans, and a key is looked at once for the four bytes that force quotes.
fn csv_rows(results: &KeyResults, rows: std::ops::Range<usize>, types: &[ScalarTy]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 48);
    for (key, values) in rows.map(|i| results.get(i)) {
        csv_field(&mut out, key);
        for (value, ty) in values.iter().zip(types) {
            out.push(b',');
            write_value(&mut out, *value, *ty);
        }
        out.push(b'\n');
    }
    out
}

/// Appends one CSV field, in double quotes (and with its quotes doubled) when it holds a comma,
/// a quote or a line end.
fn csv_field(out: &mut Vec<u8>, field: &[u8]) {
    if !field.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for &byte in field {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Writes JSON: an array with one object per line, members in column order. Non-finite
/// floats, which JSON numbers cannot hold, are written as the strings `"NaN"`, `"inf"` and
/// `"-inf"`. A key that is not UTF-8 is an error (use CSV).
///
/// serde_json writes every value: integers exactly (all of `u64` and `i64`), floats as the
/// shortest text that reads back as the same `f64` (or `f32`, for an `f32` column). That text
/// may use another notation than CSV's (`1e15` where CSV has `1000000000000000.0`); both read
/// back to the same number, which is what a JSON reader sees.
pub fn write_json<W: Write>(
    mut out: W,
    aggregation: &Aggregation,
    key: &str,
    results: &KeyResults,
) -> Result<(), OutputError> {
    let names = header(aggregation, key);
    let types: Vec<ScalarTy> = aggregation.results().iter().map(|c| c.ty).collect();
    // Check every key before writing anything: no partial output on an error.
    if let Some((key, _)) = results.iter().find(|(key, _)| std::str::from_utf8(key).is_err()) {
        return Err(not_utf8(key));
    }
    writeln!(out, "[")?;
    let mut line = Vec::new();
    for (i, (key, values)) in results.iter().enumerate() {
        let key = std::str::from_utf8(key).map_err(|_| not_utf8(key))?;
        line.clear();
        line.extend_from_slice(b"  ");
        let row = JsonRow { names: &names, key, values, types: &types };
        // Serialising into memory cannot fail; the sink's own errors come from `write_all`.
        row.serialize(&mut serde_json::Serializer::with_formatter(&mut line, RowFormatter))
            .map_err(|error| OutputError::Io(std::io::Error::other(error)))?;
        line.extend_from_slice(if i + 1 < results.len() { b",\n" } else { b"\n" });
        out.write_all(&line)?;
    }
    writeln!(out, "]")?;
    Ok(())
}

/// One result row as a JSON object: the key, then one member per result column.
struct JsonRow<'a> {
    names: &'a [String],
    key: &'a str,
    values: &'a [Value],
    types: &'a [ScalarTy],
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        let mut names = self.names.iter();
        if let Some(key_name) = names.next() {
            map.serialize_entry(key_name, self.key)?;
        }
        for ((name, value), ty) in names.zip(self.values).zip(self.types) {
            map.serialize_entry(name, &JsonValue(*value, *ty))?;
        }
        map.end()
    }
}

/// A result value in a column of type `.1`.
struct JsonValue(Value, ScalarTy);

impl Serialize for JsonValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (Value::Bool(b), _) => serializer.serialize_bool(b),
            (Value::Int(v), _) => serializer.serialize_i64(v),
            (Value::UInt(v), _) => serializer.serialize_u64(v),
            (Value::Float(x), ty) if !x.is_finite() => serializer.serialize_str(&format_value(Value::Float(x), ty)),
            (Value::Float(x), ScalarTy::Float(FloatTy::F32)) => serializer.serialize_f32(x as f32),
            (Value::Float(x), _) => serializer.serialize_f64(x),
        }
    }
}

/// serde_json's compact form with a space after every `:` and `,` inside an object, so that a
/// row reads `{"k": "a", "s.0": 3}` as it did before serde_json wrote it.
struct RowFormatter;

impl serde_json::ser::Formatter for RowFormatter {
    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
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
        let results = KeyResults::from_rows(2, [(b"a".to_vec(), vec![Value::Int(3), Value::UInt(2)])]);
        let mut json = Vec::new();
        write_json(&mut json, &agg, "s.1", &results).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed, serde_json::json!([{"s.1_key": "a", "s.0": 3, "s.1": 2}]));
        let mut csv = Vec::new();
        write_csv(&mut csv, &agg, "s.0", &results).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "s.0_key,s.0,s.1\na,3,2\n");
    }

    /// Rows formatted in parallel chunks are the rows one writer formats in order: keys that
    /// need quoting, every value type, and more rows than one chunk holds.
    #[test]
    fn csv_in_parallel_chunks_is_csv_written_row_by_row() {
        let source = "aggregate s(x: i64, y: u64, z: f64, w: f32, b: bool) -> tuple[i64, u64, f64, f32, bool]:\n    \
                      return min(x), max(y), max(z), max(w), any(b)\n";
        let agg = Aggregation::from_source("s.naas", source, None).unwrap();
        let keys: [&[u8]; 7] =
            [b"plain", b"with,comma", b"with \"quote\"", b"two\nlines", b"\xff\xfe", b"cr\rhere", b" spaced "];
        let rows = 3 * CSV_CHUNK_ROWS + 17;
        let results: Vec<(Vec<u8>, Vec<Value>)> = (0..rows)
            .map(|i| {
                let mut key = keys[i % keys.len()].to_vec();
                key.extend_from_slice(i.to_string().as_bytes());
                let x = i as f64;
                let values = vec![
                    Value::Int(-(i as i64)),
                    Value::UInt(i as u64 * 3),
                    Value::Float(if i % 7 == 0 { f64::NAN } else { x / 7.0 }),
                    Value::Float(f64::from((x / 3.0) as f32)),
                    Value::Bool(i % 2 == 0),
                ];
                (key, values)
            })
            .collect();
        let types: Vec<ScalarTy> = agg.results().iter().map(|c| c.ty).collect();
        let mut reference = csv::Writer::from_writer(Vec::new());
        reference.write_record(header(&agg, "k")).unwrap();
        for (key, values) in &results {
            let mut row = vec![key.clone()];
            row.extend(values.iter().zip(&types).map(|(v, ty)| format_value(*v, *ty).into_bytes()));
            reference.write_record(&row).unwrap();
        }
        let mut written = Vec::new();
        write_csv(&mut written, &agg, "k", &KeyResults::from_rows(types.len(), results)).unwrap();
        assert_eq!(written, reference.into_inner().unwrap());
    }

    #[test]
    fn json_rows_keep_their_layout_and_every_value_reads_back_exactly() {
        let source = "aggregate s(x: i64, y: u64, z: f64, w: f32, b: bool) -> tuple[i64, u64, f64, f32, bool]:\n    \
                      return min(x), max(y), max(z), max(w), any(b)\n";
        let agg = Aggregation::from_source("s.naas", source, None).unwrap();
        let row = |key: &str, x: i64, y: u64, z: f64, w: f32| {
            let values =
                vec![Value::Int(x), Value::UInt(y), Value::Float(z), Value::Float(f64::from(w)), Value::Bool(true)];
            (key.as_bytes().to_vec(), values)
        };
        let results = vec![
            row("a", i64::MIN, u64::MAX, 0.1, 0.1),
            row("b\"q", i64::MAX, 0, 1e300, f32::MAX),
            row("c", -1, 1 << 53, -2.5e-310, f32::MIN_POSITIVE),
            row("d", 0, 1, f64::NAN, f32::INFINITY),
            row("e", 0, 1, f64::NEG_INFINITY, 1.5),
        ];
        let mut json = Vec::new();
        write_json(&mut json, &agg, "k", &KeyResults::from_rows(5, results.clone())).unwrap();
        let text = String::from_utf8(json).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(
            lines[1],
            "  {\"k\": \"a\", \"s.0\": -9223372036854775808, \"s.1\": 18446744073709551615, \"s.2\": 0.1, \"s.3\": 0.1, \"s.4\": true},"
        );
        assert_eq!((lines[0], lines[5].ends_with("},"), lines[6]), ("[", false, "]"), "{text}");
        assert!(lines[4].contains("\"s.2\": \"NaN\", \"s.3\": \"inf\""), "{}", lines[4]);
        assert!(lines[5].contains("\"s.2\": \"-inf\""), "{}", lines[5]);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (i, (key, values)) in results.iter().enumerate() {
            let object = &parsed[i];
            assert_eq!(object["k"].as_str().unwrap().as_bytes(), &key[..]);
            assert_eq!(object["s.0"].as_i64(), values[0].to_string().parse().ok());
            assert_eq!(object["s.1"].as_u64(), values[1].to_string().parse().ok());
            // An f64 column reads back as the same f64, an f32 column as the same f32.
            for (column, value, f32_column) in [("s.2", values[2], false), ("s.3", values[3], true)] {
                let Value::Float(x) = value else { unreachable!() };
                match object[column].as_f64() {
                    Some(read) if f32_column => {
                        assert_eq!((read as f32).to_bits(), (x as f32).to_bits(), "{column} of {i}")
                    }
                    Some(read) => assert_eq!(read.to_bits(), x.to_bits(), "{column} of {i}"),
                    None => assert!(!x.is_finite(), "{column} of {i}"),
                }
            }
        }
    }

    #[test]
    fn a_non_utf8_key_refuses_json_before_writing_and_keeps_io_errors_apart() {
        let agg = Aggregation::from_source("s.naas", PAIR, None).unwrap();
        let results = KeyResults::from_rows(2, [(vec![0xff, b'a'], vec![Value::Int(3), Value::UInt(2)])]);
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
        let ok = KeyResults::from_rows(2, [(b"a".to_vec(), vec![Value::Int(3), Value::UInt(2)])]);
        for error in [write_csv(Closed, &agg, "k", &ok).unwrap_err(), write_json(Closed, &agg, "k", &ok).unwrap_err()] {
            assert!(matches!(error, OutputError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe));
        }
    }
}
