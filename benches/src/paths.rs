//! Where the benchmarks find their inputs: the examples are compiled into the binary (from
//! paths relative to this file, that is to `CARGO_MANIFEST_DIR`), never read relative to the
//! working directory, so a benchmark runs the same from anywhere.

/// An example program, embedded at build time.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// The name the examples go by (`reduce`).
    pub name: &'static str,
    /// Its path from the repository's root, for messages (`examples/reduce.naas`).
    pub label: &'static str,
    pub source: &'static str,
}

pub const REDUCE: Example =
    Example { name: "reduce", label: "examples/reduce.naas", source: include_str!("../../examples/reduce.naas") };

pub const TOP_K: Example =
    Example { name: "top_k", label: "examples/top_k.naas", source: include_str!("../../examples/top_k.naas") };

/// The canonical examples, in the order the reports list them.
pub const EXAMPLES: [Example; 4] = [
    REDUCE,
    Example {
        name: "robust_mean",
        label: "examples/robust_mean.naas",
        source: include_str!("../../examples/robust_mean.naas"),
    },
    TOP_K,
    Example {
        name: "histogram",
        label: "examples/histogram.naas",
        source: include_str!("../../examples/histogram.naas"),
    },
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn embedded_examples_are_the_files() {
        for example in EXAMPLES {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let on_disk = std::fs::read_to_string(root.join(example.label));
            assert_eq!(on_disk.ok().as_deref(), Some(example.source), "{}", example.label);
        }
    }
}
