//! Topologies: the text syntax (`tree:fanout=F,depth=D`, `leaf-spine:leaves=L,spines=S,hosts=H`,
//! `file:PATH`) and the graph of mappers, switches and the reducer it describes.

mod file;

use std::sync::Arc;

use super::error::quote;

pub use file::{FileNode, FileTopology};

/// Why a topology was rejected. Every message starts with what was being read (`invalid
/// topology ...`, `topology file ...`), as the CLI prints it.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The topology text, or a built-in topology's counts, are not valid: the message names
    /// the parameter and the limit.
    #[error("{0}")]
    Invalid(String),
    /// The topology file could not be read.
    #[error("cannot read topology file `{path}`: {error}")]
    Read {
        /// The path, shortened.
        path: String,
        error: std::io::Error,
    },
    /// The topology file is over [`MAX_FILE_BYTES`].
    #[error("topology file `{path}` is larger than {MAX_FILE_BYTES} bytes, the limit of a topology file")]
    TooLarge {
        /// The path, shortened.
        path: String,
    },
    #[error("topology file `{path}` is not UTF-8 text: {error}")]
    NotUtf8 {
        /// The path, shortened.
        path: String,
        error: std::string::FromUtf8Error,
    },
    /// A mistake in the topology file's text: the message names the line.
    #[error("{0}")]
    File(String),
}

/// A network shape. Entries flow from mappers (leaves) to the reducer (root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// A complete tree rooted at the reducer: the reducer and every switch have `fanout`
    /// children; `depth` levels of switches; `fanout^(depth+1)` mappers (depth 0: the
    /// mappers talk to the reducer directly).
    Tree { fanout: u32, depth: u32 },
    /// `leaves` leaf switches with `hosts` mappers each; every leaf links to every spine and
    /// sends each entry to the spine its key hashes to; spines link to the reducer's top-of-
    /// rack switch, which links to the reducer.
    LeafSpine { leaves: u32, spines: u32, hosts: u32 },
    /// Any tree, read from a topology file (see [`FileTopology`]).
    File(Arc<FileTopology>),
}

/// The largest number of nodes a topology may have.
pub const MAX_NODES: u64 = 1 << 20;

/// The largest topology file read: 64 MiB, 64 bytes a line for [`MAX_NODES`] nodes.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The largest number of links a topology may have. A tree has one link fewer than nodes;
/// a leaf-spine network has `leaves x spines` links between its leaves and spines, which
/// can exceed its node count by far. Every link holds per-link transport state and its
/// report (about 900 bytes in all, measured: `leaf-spine:leaves=1024,spines=1024,hosts=2`
/// peaks at 0.94 GB), so this keeps the largest topology's links under about 1 GB.
pub const MAX_LINKS: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Mapper,
    Switch,
    Reducer,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub name: String,
    /// Links toward the reducer (several when entries are spread by key).
    pub uplinks: Vec<usize>,
    /// Links from the children.
    pub downlinks: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    /// Hops from the mappers: 0 for mapper uplinks.
    pub tier: usize,
}

/// Nodes (node 0 is the reducer) and links, with the name of each tier.
#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub tiers: Vec<String>,
}

impl Topology {
    /// Parses `tree:fanout=4,depth=3`, `leaf-spine:leaves=4,spines=2,hosts=8`, or `file:PATH`
    /// (also a plain `PATH` naming an existing file), which reads a topology file.
    ///
    /// Reading the file here is the one place this library touches the file system: the
    /// topology is a single string that the CLI, the benchmark and the runtime all pass
    /// through this function, so they all accept files the same way. [`Topology::from_file_text`]
    /// is the pure form.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        if let Some(path) = text.strip_prefix("file:") {
            return Topology::read_file(path);
        }
        // The text is a flag's value and may be very long; messages show its start.
        let shown = quote(text);
        let (kind, params) = text.split_once(':').unwrap_or((text, ""));
        if !matches!(kind.trim(), "tree" | "leaf-spine") && std::path::Path::new(text).is_file() {
            return Topology::read_file(text);
        }
        let mut values: Vec<(String, u32)> = Vec::new();
        for part in params.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                TopologyError::Invalid(format!(
                    "invalid topology `{shown}`: expected `name=value`, found `{}`",
                    quote(part)
                ))
            })?;
            let value: u32 = value.trim().parse().map_err(|_| {
                TopologyError::Invalid(format!(
                    "invalid topology `{shown}`: `{}` must be an integer from 0 to {}, found `{}`",
                    quote(name.trim()),
                    u32::MAX,
                    quote(value)
                ))
            })?;
            values.push((name.trim().to_string(), value));
        }
        let take = |allowed: &[&str]| -> Result<Vec<u32>, TopologyError> {
            if let Some((name, _)) = values.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
                return Err(TopologyError::Invalid(format!(
                    "invalid topology `{shown}`: unknown parameter `{}` (expected {})",
                    quote(name),
                    allowed.join(", ")
                )));
            }
            allowed
                .iter()
                .map(|name| {
                    values.iter().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(|| {
                        TopologyError::Invalid(format!(
                            "invalid topology `{shown}`: missing parameter `{name}` (expected {})",
                            allowed.join(", ")
                        ))
                    })
                })
                .collect()
        };
        let topology = match kind.trim() {
            "tree" => {
                let v = take(&["fanout", "depth"])?;
                Topology::Tree { fanout: v[0], depth: v[1] }
            }
            "leaf-spine" => {
                let v = take(&["leaves", "spines", "hosts"])?;
                Topology::LeafSpine { leaves: v[0], spines: v[1], hosts: v[2] }
            }
            other => {
                return Err(TopologyError::Invalid(format!(
                    "invalid topology `{shown}`: unknown kind `{}` (expected `tree:fanout=F,depth=D`, `leaf-spine:leaves=L,spines=S,hosts=H` or `file:PATH`)",
                    quote(other)
                )))
            }
        };
        topology.check()?;
        Ok(topology)
    }

    /// Reads and parses a topology file of at most [`MAX_FILE_BYTES`] (a path such as
    /// `/dev/zero` would otherwise be read until memory runs out).
    fn read_file(path: &str) -> Result<Topology, TopologyError> {
        use std::io::Read;
        let shown = || quote(path).into_owned();
        let file = std::fs::File::open(path).map_err(|error| TopologyError::Read { path: shown(), error })?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| TopologyError::Read { path: shown(), error })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(TopologyError::TooLarge { path: shown() });
        }
        let text = String::from_utf8(bytes).map_err(|error| TopologyError::NotUtf8 { path: shown(), error })?;
        Topology::from_file_text(path, &text)
    }

    /// Parses the text of a topology file (the format is in [`FileTopology`]'s module
    /// documentation); `path` labels errors and reports.
    pub fn from_file_text(path: &str, text: &str) -> Result<Topology, TopologyError> {
        Ok(Topology::File(Arc::new(FileTopology::parse(path, text)?)))
    }

    /// Checks a built-in topology before anything is built: every count at least 1, and at
    /// most [`MAX_NODES`] nodes and [`MAX_LINKS`] links, counted exactly with checked
    /// arithmetic (a count that overflows is over the limit). A topology file was checked
    /// when it was read. [`super::simulate`] calls this too, as the variants' fields are
    /// public and a caller may build one without [`Topology::parse`].
    pub fn check(&self) -> Result<(), TopologyError> {
        let zero = match *self {
            Topology::Tree { fanout, .. } => fanout == 0,
            Topology::LeafSpine { leaves, spines, hosts } => leaves == 0 || spines == 0 || hosts == 0,
            Topology::File(_) => return Ok(()),
        };
        if zero {
            return Err(TopologyError::Invalid(format!("invalid topology `{self}`: every count must be at least 1")));
        }
        let Some((nodes, links)) = self.size() else {
            // Counting stopped at an overflow or, for a tree, at the first level past the limit.
            let what = match self {
                Topology::Tree { .. } => format!("more than {MAX_NODES} nodes (the limit of a topology)"),
                _ => format!("more than {MAX_NODES} nodes or {MAX_LINKS} links (the limits of a topology)"),
            };
            return Err(TopologyError::Invalid(format!("invalid topology `{self}`: {what}")));
        };
        if nodes > MAX_NODES {
            return Err(TopologyError::Invalid(format!(
                "invalid topology `{self}`: {nodes} nodes, more than the limit of {MAX_NODES}"
            )));
        }
        if links > MAX_LINKS {
            return Err(TopologyError::Invalid(format!(
                "invalid topology `{self}`: {links} links, more than the limit of {MAX_LINKS}"
            )));
        }
        Ok(())
    }

    /// The exact numbers of nodes and links of a built-in topology, or `None` when either
    /// exceeds [`MAX_NODES`] or [`MAX_LINKS`] before it is fully counted (so that counting
    /// is bounded however large the parameters are). A topology file's counts are exact.
    fn size(&self) -> Option<(u64, u64)> {
        match *self {
            Topology::Tree { fanout, depth } => {
                // Levels 0 (the reducer) to depth + 1 (the mappers): 1 + F + F^2 + ...
                // With F = 1 every level adds one node, so the sum is depth + 2; for F >= 2
                // the loop ends after at most 21 levels, once a level exceeds the limit.
                if fanout == 1 {
                    let nodes = u64::from(depth) + 2;
                    return Some((nodes, nodes - 1));
                }
                let (mut nodes, mut level) = (1u64, 1u64);
                for _ in 0..=depth {
                    level = level.checked_mul(u64::from(fanout))?;
                    nodes = nodes.checked_add(level)?;
                    if nodes > MAX_NODES {
                        return None;
                    }
                }
                Some((nodes, nodes - 1))
            }
            Topology::LeafSpine { leaves, spines, hosts } => {
                let (leaves, spines, hosts) = (u64::from(leaves), u64::from(spines), u64::from(hosts));
                let mappers = leaves.checked_mul(hosts)?;
                // The reducer, the top-of-rack switch, the spines, the leaves and the mappers.
                let nodes = mappers.checked_add(leaves)?.checked_add(spines)?.checked_add(2)?;
                // tor → reducer, every spine → tor, every leaf → every spine, every mapper → its leaf.
                let links = leaves.checked_mul(spines)?.checked_add(mappers)?.checked_add(spines)?.checked_add(1)?;
                Some((nodes, links))
            }
            Topology::File(ref file) => {
                let nodes = file.nodes().len() as u64;
                Some((nodes, nodes.saturating_sub(1)))
            }
        }
    }

    /// The number of mappers (leaves). A checked topology has at most 2^20 nodes
    /// ([`MAX_NODES`]); for an unchecked one the count saturates.
    pub fn mappers(&self) -> usize {
        let count = match self {
            Topology::Tree { fanout, depth } => u64::from(*fanout).saturating_pow(depth.saturating_add(1)),
            Topology::LeafSpine { leaves, hosts, .. } => u64::from(*leaves).saturating_mul(u64::from(*hosts)),
            Topology::File(file) => return file.mappers(),
        };
        usize::try_from(count).unwrap_or(usize::MAX)
    }

    /// Builds the graph. Node 0 is the reducer.
    pub fn graph(&self) -> Graph {
        if let Topology::File(file) = self {
            return file.graph();
        }
        let mut graph = Graph { nodes: Vec::new(), links: Vec::new(), tiers: Vec::new() };
        graph.add(NodeKind::Reducer, "reducer".to_string());
        match *self {
            Topology::Tree { fanout, depth } => {
                // Build level by level from the root; `above` holds the previous level.
                let mut above = vec![0usize];
                for level in 1..=depth {
                    let mut this = Vec::new();
                    for (i, parent) in above.iter().enumerate() {
                        for c in 0..fanout as usize {
                            let node = graph.add(NodeKind::Switch, format!("s{level}.{}", i * fanout as usize + c));
                            graph.connect(node, *parent, (depth - level + 1) as usize);
                            this.push(node);
                        }
                    }
                    above = this;
                }
                let mut index = 0;
                for parent in &above {
                    for _ in 0..fanout {
                        let node = graph.add(NodeKind::Mapper, format!("m{index}"));
                        graph.connect(node, *parent, 0);
                        index += 1;
                    }
                }
                graph.tiers = (0..=depth)
                    .map(|tier| match (tier, depth) {
                        (0, 0) => "mapper → reducer".to_string(),
                        (0, _) => format!("mapper → level {depth}"),
                        (t, d) if t == d => "level 1 → reducer".to_string(),
                        (t, d) => format!("level {} → level {}", d - t + 1, d - t),
                    })
                    .collect();
            }
            Topology::LeafSpine { leaves, spines, hosts } => {
                let tor = graph.add(NodeKind::Switch, "tor".to_string());
                graph.connect(tor, 0, 3);
                let spine_nodes: Vec<usize> = (0..spines)
                    .map(|s| {
                        let node = graph.add(NodeKind::Switch, format!("spine{s}"));
                        graph.connect(node, tor, 2);
                        node
                    })
                    .collect();
                for l in 0..leaves {
                    let leaf = graph.add(NodeKind::Switch, format!("leaf{l}"));
                    for spine in &spine_nodes {
                        graph.connect(leaf, *spine, 1);
                    }
                    for h in 0..hosts {
                        let mapper = graph.add(NodeKind::Mapper, format!("m{}", l * hosts + h));
                        graph.connect(mapper, leaf, 0);
                    }
                }
                graph.tiers = ["mapper → leaf", "leaf → spine", "spine → tor", "tor → reducer"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            }
            Topology::File(_) => {}
        }
        graph
    }
}

impl Graph {
    fn add(&mut self, kind: NodeKind, name: String) -> usize {
        self.nodes.push(Node { kind, name, uplinks: Vec::new(), downlinks: Vec::new() });
        self.nodes.len() - 1
    }

    fn connect(&mut self, from: usize, to: usize, tier: usize) {
        self.links.push(Link { from, to, tier });
        let link = self.links.len() - 1;
        self.nodes[from].uplinks.push(link);
        self.nodes[to].downlinks.push(link);
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Topology::Tree { fanout, depth } => write!(f, "tree:fanout={fanout},depth={depth}"),
            Topology::LeafSpine { leaves, spines, hosts } => {
                write!(f, "leaf-spine:leaves={leaves},spines={spines},hosts={hosts}")
            }
            Topology::File(file) => write!(f, "file:{}", file.path()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Nodes and links are counted exactly, with checked arithmetic, before anything is
    /// built: a node-count estimate of `2 * fanout^(depth+1)` saturated to a small number for
    /// `fanout=1` and let `depth=2000000` (2,000,002 nodes) and `depth=4294967295` through,
    /// and leaf-spine links (`leaves x spines`) were not counted at all.
    #[test]
    fn sizes_are_exact_and_limited() {
        let size = |text: &str| {
            let topology = Topology::parse(text).unwrap();
            let graph = topology.graph();
            assert_eq!(topology.size(), Some((graph.nodes.len() as u64, graph.links.len() as u64)), "{text}");
        };
        for text in [
            "tree:fanout=1,depth=0",
            "tree:fanout=1,depth=5",
            "tree:fanout=3,depth=4",
            "tree:fanout=1024,depth=0",
            "leaf-spine:leaves=3,spines=5,hosts=2",
            "leaf-spine:leaves=1,spines=1,hosts=1",
        ] {
            size(text);
        }
        // At the limit exactly, and one over.
        let chain = |depth: u64| format!("tree:fanout=1,depth={depth}");
        assert!(Topology::parse(&chain(MAX_NODES - 2)).is_ok());
        let over = [
            (chain(MAX_NODES - 1), "1048577 nodes, more than the limit of 1048576"),
            (chain(2_000_000), "2000002 nodes"),
            (chain(u64::from(u32::MAX)), "4294967297 nodes"),
            ("tree:fanout=2,depth=4294967295".to_string(), "more than 1048576 nodes"),
            ("tree:fanout=4294967295,depth=4294967295".to_string(), "more than 1048576 nodes"),
            ("tree:fanout=2,depth=18".to_string(), "1048575"),
            ("leaf-spine:leaves=340000,spines=340000,hosts=1".to_string(), "115600680001 links"),
            ("leaf-spine:leaves=1024,spines=1024,hosts=1".to_string(), "1050625 links, more than the limit of 1048576"),
            ("leaf-spine:leaves=4294967295,spines=4294967295,hosts=4294967295".to_string(), "more than"),
        ];
        for (text, expected) in over {
            match Topology::parse(&text) {
                Err(error) => assert!(error.to_string().contains(expected), "{text}: {error}"),
                Ok(topology) => {
                    assert!(expected == "1048575" && topology.size() == Some(((1 << 20) - 1, (1 << 20) - 2)))
                }
            }
        }
        // A topology built without `parse` is checked by the simulator.
        assert!(Topology::Tree { fanout: 1, depth: 3_000_000 }.check().is_err());
    }

    #[test]
    fn parses_and_builds() {
        let tree = Topology::parse("tree:fanout=4,depth=3").unwrap();
        assert_eq!(tree, Topology::Tree { fanout: 4, depth: 3 });
        let graph = tree.graph();
        let count = |kind| graph.nodes.iter().filter(|n| n.kind == kind).count();
        assert_eq!((count(NodeKind::Mapper), count(NodeKind::Switch), count(NodeKind::Reducer)), (256, 84, 1));
        assert_eq!(graph.tiers.len(), 4);
        let flat = Topology::parse("tree:depth=0,fanout=3").unwrap().graph();
        assert_eq!(flat.nodes.len(), 4);
        let ls = Topology::parse("leaf-spine:leaves=3,spines=2,hosts=4").unwrap().graph();
        assert_eq!(ls.nodes.len(), 1 + 1 + 2 + 3 + 12);
        assert_eq!(ls.links.len(), 1 + 2 + 6 + 12);
        assert_eq!(Topology::parse(&tree.to_string()).unwrap(), tree);
    }

    #[test]
    fn errors_are_clear() {
        let cases = [
            ("ring:size=3", "unknown kind `ring`"),
            ("tree:fanout=4", "missing parameter `depth`"),
            ("tree:fanout=4,depth=x", "`depth` must be an integer from 0 to 4294967295, found `x`"),
            ("tree:fanout=4,depth=2,width=3", "unknown parameter `width`"),
            ("tree:fanout4,depth=2", "expected `name=value`, found `fanout4`"),
            ("tree:fanout=0,depth=2", "every count must be at least 1"),
            ("tree:fanout=1000,depth=9", "more than"),
            ("leaf-spine:leaves=2,spines=0,hosts=2", "every count must be at least 1"),
            ("tree:fanout=2,depth=99999999999", "must be an integer from 0 to 4294967295"),
        ];
        for (text, expected) in cases {
            let error = Topology::parse(text).unwrap_err();
            assert!(matches!(error, TopologyError::Invalid(_)), "{error:?}");
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }
}
