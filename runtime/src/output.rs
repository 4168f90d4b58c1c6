//! Printing a job's results: CSV with a header (first column the key, then one column per
//! flattened result value), or JSON (an array of objects in the same column order).

use std::io::Write;

use crate::aggregation::Aggregation;
use crate::value::{format_value, Value};

/// The header: the key column's name, then the result columns.
pub fn header(aggregation: &Aggregation, key: &str) -> Vec<String> {
    std::iter::once(key.to_string()).chain(aggregation.results().iter().map(|c| c.name.clone())).collect()
}

/// Writes CSV; keys are written byte for byte (quoted when needed).
pub fn write_csv<W: Write>(
    out: W,
    aggregation: &Aggregation,
    key: &str,
    results: &[(Vec<u8>, Vec<Value>)],
) -> std::io::Result<()> {
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
) -> Result<(), String> {
    let names = header(aggregation, key);
    let types: Vec<_> = aggregation.results().iter().map(|c| c.ty).collect();
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let io = |e: std::io::Error| format!("cannot write the results: {e}");
    // Check every key before writing anything: no partial output on an error.
    if let Some((key, _)) = results.iter().find(|(key, _)| std::str::from_utf8(key).is_err()) {
        return Err(format!(
            "key `{}` is not valid UTF-8 and cannot be written as JSON; use `--format csv`",
            String::from_utf8_lossy(key)
        ));
    }
    writeln!(out, "[").map_err(io)?;
    for (i, (key, values)) in results.iter().enumerate() {
        let key = std::str::from_utf8(key).map_err(|_| {
            format!(
                "key `{}` is not valid UTF-8 and cannot be written as JSON; use `--format csv`",
                String::from_utf8_lossy(key)
            )
        })?;
        let mut fields = vec![format!("{}: {}", quote(&names[0]), quote(key))];
        for ((name, value), ty) in names[1..].iter().zip(values).zip(&types) {
            let text = match value {
                Value::Float(x) if !x.is_finite() => quote(&format_value(*value, *ty)),
                _ => format_value(*value, *ty),
            };
            fields.push(format!("{}: {text}", quote(name)));
        }
        let comma = if i + 1 < results.len() { "," } else { "" };
        writeln!(out, "  {{{}}}{comma}", fields.join(", ")).map_err(io)?;
    }
    writeln!(out, "]").map_err(io)?;
    Ok(())
}
