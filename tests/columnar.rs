//! End-to-end tests of columnar input (`naasc run --input FILE.parquet|.arrow|.feather`): the
//! same data gives the same output as CSV for every canonical example, on files of several
//! Parquet row groups and Arrow record batches; nulls are invalid rows (an error naming the
//! row and row group, or skipped and counted); integer inputs accept integral floats as
//! dataframe tools write them; integer keys print as their CSV text; columns of a type that
//! cannot fill an input are refused before any row is read.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use common::{naasc, stderr, stdout, temp_file, TempFile};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// The rows of a test file: a string key and one value column, either possibly null.
struct Table {
    value_name: &'static str,
    keys: Vec<Option<String>>,
    values: ArrayRef,
}

impl Table {
    fn batch(&self) -> RecordBatch {
        let keys: ArrayRef = Arc::new(StringArray::from(self.keys.clone()));
        let schema = Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new(self.value_name, self.values.data_type().clone(), true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![keys, self.values.clone()]).unwrap()
    }

    /// The same rows as CSV (nulls as empty fields, which CSV reading rejects as well).
    fn csv(&self) -> TempFile {
        let batch = self.batch();
        let mut text = format!("key,{}\n", self.value_name);
        for row in 0..batch.num_rows() {
            let key = self.keys[row].clone().unwrap_or_default();
            let value = arrow_cast_text(&self.values, row);
            text.push_str(&format!("{key},{value}\n"));
        }
        temp_file("data.csv", text.as_bytes())
    }

    /// The rows as Parquet, in row groups of 700 rows (so a run spans several groups and
    /// batches that straddle them).
    fn parquet(&self) -> TempFile {
        let file = temp_file("data.parquet", b"");
        let properties = WriterProperties::builder().set_max_row_group_row_count(Some(700)).build();
        let batch = self.batch();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&*file).unwrap(), batch.schema(), Some(properties)).unwrap();
        // Several record batches, of uneven sizes.
        let mut start = 0;
        for size in [1, 999, 3000].into_iter().cycle() {
            if start >= batch.num_rows() {
                break;
            }
            let len = size.min(batch.num_rows() - start);
            writer.write(&batch.slice(start, len)).unwrap();
            start += len;
        }
        writer.close().unwrap();
        file
    }

    /// The rows as an Arrow IPC file (`name` ends in `.arrow` or `.feather`), in batches.
    fn arrow(&self, name: &str) -> TempFile {
        let batch = self.batch();
        let parts: Vec<RecordBatch> = (0..batch.num_rows())
            .step_by(1500)
            .map(|start| batch.slice(start, 1500.min(batch.num_rows() - start)))
            .collect();
        write_ipc(name, &parts)
    }
}

/// An Arrow IPC file `name` holding `batches` (one schema).
fn write_ipc(name: &str, batches: &[RecordBatch]) -> TempFile {
    let file = temp_file(name, b"");
    let mut writer =
        arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&*file).unwrap(), &batches[0].schema()).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    file
}

/// A value as CSV text (empty for a null).
fn arrow_cast_text(values: &ArrayRef, row: usize) -> String {
    use arrow_array::Array;
    if values.is_null(row) {
        return String::new();
    }
    let any = values.as_any();
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        a.value(row).to_string()
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.value(row).to_string()
    } else if let Some(a) = any.downcast_ref::<UInt32Array>() {
        a.value(row).to_string()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        format!("{:?}", a.value(row))
    } else {
        panic!("no CSV text for {:?}", values.data_type())
    }
}

/// `rows` rows over 37 keys with values from `value(i)`.
fn table(value_name: &'static str, rows: usize, values: ArrayRef) -> Table {
    assert_eq!(values.len(), rows);
    let keys = (0..rows).map(|i| Some(format!("k{}", (i * 7919) % 37))).collect();
    Table { value_name, keys, values }
}

fn run(example: &str, input: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", example, "--input", input.to_str().unwrap(), "--key", "key"];
    args.extend_from_slice(extra);
    naasc(&args)
}

fn run_ok(example: &str, input: &Path, extra: &[&str]) -> String {
    let output = run(example, input, extra);
    assert_eq!(output.status.code(), Some(0), "{example} on {}: {}", input.display(), stderr(&output));
    stdout(&output)
}

fn examples() -> Vec<(&'static str, Table, &'static [&'static str])> {
    let n = 5000;
    let signed = |i: usize| ((i * 7727) % 2001) as i64 - 1000;
    vec![
        (
            "examples/reduce.naas",
            table("delay", n, Arc::new(Int32Array::from_iter_values((0..n).map(|i| signed(i) as i32)))),
            &[],
        ),
        (
            "examples/robust_mean.naas",
            table("sample", n, Arc::new(Int64Array::from_iter_values((0..n).map(|i| signed(i) * 1_000_003)))),
            &[],
        ),
        ("examples/top_k.naas", table("x", n, Arc::new(Int64Array::from_iter_values((0..n).map(signed)))), &[]),
        (
            "examples/histogram.naas",
            table("micros", n, Arc::new(UInt32Array::from_iter_values((0..n).map(|i| ((i * 7727) % 5000) as u32)))),
            &[],
        ),
    ]
}

#[test]
fn parquet_and_arrow_give_the_output_of_the_same_csv_for_every_example() {
    for (example, table, extra) in examples() {
        let expected = run_ok(example, &table.csv(), extra);
        assert!(expected.lines().count() == 38, "{example}: {expected}");
        for input in [table.parquet(), table.arrow("data.arrow"), table.arrow("data.feather")] {
            assert_eq!(run_ok(example, &input, extra), expected, "{example} on {}", input.display());
            let workers = run_ok(example, &input, &[extra, &["--workers", "3"]].concat());
            assert_eq!(workers, expected, "{example} on {} with 3 workers", input.display());
            for timely in [&["--engine", "timely", "--workers", "3"][..], &["--engine", "timely", "--processes", "2"]] {
                let output = run_ok(example, &input, &[extra, timely].concat());
                assert_eq!(output, expected, "{example} on {} with {timely:?}", input.display());
            }
        }
    }
}

#[test]
fn nulls_are_invalid_rows_named_by_row_and_row_group_or_skipped() {
    let n = 3000;
    let mut values: Vec<Option<i32>> = (0..n).map(|i| Some((i % 50) as i32)).collect();
    values[1500] = None;
    let mut with_nulls = table("delay", n, Arc::new(Int32Array::from(values)));
    with_nulls.keys[2100] = None;
    let parquet = with_nulls.parquet();
    let output = run("examples/reduce.naas", &parquet, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // Row 1501 of the file (1-based), in row group 2 (rows 1401-2100).
    assert!(
        stderr(&output).contains("data.parquet:1501:2: column `delay`: null value (row group 2)"),
        "{}",
        stderr(&output)
    );
    let output = run("examples/reduce.naas", &with_nulls.arrow("data.arrow"), &[]);
    assert!(stderr(&output).contains("data.arrow:1501:2: column `delay`: null value"), "{}", stderr(&output));
    // The timely engine names the same row, whichever of its workers owns the batch.
    for timely in [&["--engine", "timely", "--workers", "2"][..], &["--engine", "timely", "--processes", "2"]] {
        let output = run("examples/reduce.naas", &parquet, timely);
        assert_eq!(output.status.code(), Some(1), "{timely:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("data.parquet:1501:2: column `delay`: null value (row group 2)"),
            "{timely:?}: {}",
            stderr(&output)
        );
    }

    // Skipping: the result of the same rows without the two invalid ones.
    let skipped = run("examples/reduce.naas", &parquet, &["--skip-invalid"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    assert!(stderr(&skipped).contains("skipped 2"), "{}", stderr(&skipped));
    let timely = run("examples/reduce.naas", &parquet, &["--skip-invalid", "--engine", "timely", "--processes", "2"]);
    assert_eq!(timely.status.code(), Some(0), "{}", stderr(&timely));
    assert!(stderr(&timely).contains("skipped 2"), "{}", stderr(&timely));
    assert_eq!(stdout(&timely), stdout(&skipped));
    let mut clean = with_nulls;
    let keep: Vec<usize> = (0..n).filter(|&i| i != 1500 && i != 2100).collect();
    clean.keys = keep.iter().map(|&i| clean.keys[i].clone()).collect();
    clean.values = Arc::new(Int32Array::from_iter_values(keep.iter().map(|&i| (i % 50) as i32)));
    assert_eq!(stdout(&skipped), run_ok("examples/reduce.naas", &clean.csv(), &[]));
}

#[test]
fn integer_inputs_take_integral_floats_as_dataframe_tools_write_them() {
    let n = 2000;
    let ints = table("delay", n, Arc::new(Int32Array::from_iter_values((0..n).map(|i| (i % 90) as i32 - 20))));
    let floats = table("delay", n, Arc::new(Float64Array::from_iter_values((0..n).map(|i| (i % 90) as f64 - 20.0))));
    let expected = run_ok("examples/reduce.naas", &ints.csv(), &[]);
    assert_eq!(run_ok("examples/reduce.naas", &floats.parquet(), &[]), expected);
    let mut values: Vec<f64> = (0..n).map(|i| (i % 90) as f64).collect();
    values[77] = 11.5;
    let fractional = table("delay", n, Arc::new(Float64Array::from(values)));
    let output = run("examples/reduce.naas", &fractional.parquet(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("data.parquet:78:2: column `delay`: `11.5` is not an integer"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn integer_keys_print_as_their_text_and_unfit_columns_are_refused_up_front() {
    let n: i32 = 1000;
    let keys: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i % 13) as i64 - 6)));
    let values: ArrayRef = Arc::new(Int32Array::from_iter_values(0..n));
    let schema =
        Schema::new(vec![Field::new("key", DataType::Int64, false), Field::new("delay", DataType::Int32, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![keys, values]).unwrap();
    let file = write_ipc("int_keys.arrow", &[batch]);
    let mut csv = String::from("key,delay\n");
    for i in 0..n {
        csv.push_str(&format!("{},{}\n", (i % 13) as i64 - 6, i));
    }
    let expected = run_ok("examples/reduce.naas", &temp_file("int_keys.csv", csv.as_bytes()), &[]);
    assert_eq!(run_ok("examples/reduce.naas", &file, &[]), expected);

    // A boolean column cannot fill an i32 input: refused before any row, exit 2.
    let flags: ArrayRef = Arc::new(BooleanArray::from(vec![true; 10]));
    let keys: ArrayRef = Arc::new(StringArray::from(vec!["a"; 10]));
    let schema =
        Schema::new(vec![Field::new("key", DataType::Utf8, false), Field::new("delay", DataType::Boolean, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![keys, flags]).unwrap();
    let file = write_ipc("flags.arrow", &[batch]);
    let output = run("examples/reduce.naas", &file, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("column `delay` holds Boolean, which cannot fill the aggregation's i32 input"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn broken_columnar_files_are_clear_errors_on_both_engines() {
    let garbage = temp_file("broken.parquet", b"PAR1 this is not a parquet file PAR1");
    let output = run("examples/reduce.naas", &garbage, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("is not a readable Parquet file"), "{}", stderr(&output));
    let output = run("examples/reduce.naas", &temp_file("empty.arrow", b""), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("is not a readable Arrow IPC file"), "{}", stderr(&output));

    for timely in [&["--engine", "timely"][..], &["--engine", "timely", "--processes", "2"]] {
        let output = run("examples/reduce.naas", &garbage, timely);
        assert_eq!(output.status.code(), Some(2), "{timely:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("is not a readable Parquet file"), "{timely:?}: {}", stderr(&output));
    }
}
