//! Topology files (`--topology file:PATH`): a tree written one node per line,
//!
//! ```text
//! # comment
//! reducer NAME
//! switch NAME parent PARENT
//! mapper NAME parent PARENT
//! ```
//!
//! with exactly one reducer (the root), switches inside and mappers at the leaves. Nodes may
//! be declared in any order; names are any run of characters without spaces or `#`. Every
//! problem is an error naming the file and line.

use std::collections::HashMap;

use super::{Graph, NodeKind, TopologyError, MAX_NODES};
use crate::network::error::quote;

/// One declared node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNode {
    pub kind: NodeKind,
    pub name: String,
    /// The parent's index in [`FileTopology::nodes`]; `None` for the reducer.
    pub parent: Option<usize>,
    /// The 1-based line that declares the node.
    pub line: usize,
}

/// A validated topology file: a tree rooted at one reducer, with at least one mapper, every
/// switch with children and no mapper with any. Only [`FileTopology::parse`] makes one (the
/// fields are private), so the graph is built from a tree known to be valid, with its root
/// and depths found once, while validating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTopology {
    /// The path as given (shown in reports and errors).
    path: String,
    /// The nodes in declaration order.
    nodes: Vec<FileNode>,
    /// The reducer's index in `nodes`.
    root: usize,
    /// Each node's distance from the reducer.
    depth: Vec<usize>,
}

/// The longest node name (names are echoed in errors and reports).
pub const MAX_NAME_BYTES: usize = 255;

const SYNTAX: &str = "expected `reducer NAME`, `switch NAME parent PARENT` or `mapper NAME parent PARENT`";

impl FileTopology {
    /// Parses and validates the text of a topology file; `path` only labels errors.
    pub fn parse(path: &str, text: &str) -> Result<FileTopology, TopologyError> {
        let at = |line: usize| format!("topology file `{}`, line {line}", quote(path));
        // Pass 1: declarations.
        let mut nodes = Vec::new();
        let mut parents: Vec<Option<&str>> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let words: Vec<&str> = content.split_whitespace().collect();
            let (kind, name, parent) = match words.as_slice() {
                ["reducer", name] => (NodeKind::Reducer, *name, None),
                ["switch", name, "parent", parent] => (NodeKind::Switch, *name, Some(*parent)),
                ["mapper", name, "parent", parent] => (NodeKind::Mapper, *name, Some(*parent)),
                _ => return Err(TopologyError::File(format!("{}: {SYNTAX}, found `{}`", at(line), quote(content)))),
            };
            if let Some(long) = [Some(name), parent].into_iter().flatten().find(|n| n.len() > MAX_NAME_BYTES) {
                return Err(TopologyError::File(format!(
                    "{}: the name `{}` is longer than {MAX_NAME_BYTES} bytes, the limit of a node name",
                    at(line),
                    quote(long)
                )));
            }
            if let Some(&first) = by_name.get(name) {
                let first: &FileNode = &nodes[first];
                return Err(TopologyError::File(format!(
                    "{}: `{name}` is already declared on line {}; node names must be unique",
                    at(line),
                    first.line
                )));
            }
            if kind == NodeKind::Reducer {
                if let Some(root) = nodes.iter().find(|n: &&FileNode| n.kind == NodeKind::Reducer) {
                    return Err(TopologyError::File(format!(
                        "{}: a second reducer `{name}` (`{}` on line {} is the root); a topology has exactly one",
                        at(line),
                        root.name,
                        root.line
                    )));
                }
            }
            if nodes.len() as u64 >= MAX_NODES {
                return Err(TopologyError::File(format!("{}: more than {MAX_NODES} nodes", at(line))));
            }
            by_name.insert(name, nodes.len());
            nodes.push(FileNode { kind, name: name.to_string(), parent: None, line });
            parents.push(parent);
        }
        // The declarations allow one reducer at most; it is the root.
        let Some(root) = nodes.iter().position(|n| n.kind == NodeKind::Reducer) else {
            return Err(TopologyError::File(format!(
                "topology file `{path}`: no reducer; declare the root with `reducer NAME`"
            )));
        };
        // Pass 2: resolve parents.
        let mut children = vec![0usize; nodes.len()];
        for node in 0..nodes.len() {
            let Some(parent_name) = parents[node] else { continue };
            let line = nodes[node].line;
            let &parent = by_name.get(parent_name).ok_or_else(|| {
                TopologyError::File(format!("{}: unknown parent `{parent_name}` of `{}`", at(line), nodes[node].name))
            })?;
            if nodes[parent].kind == NodeKind::Mapper {
                return Err(TopologyError::File(format!(
                    "{}: the parent of `{}` is `{parent_name}`, a mapper (line {}); mappers are leaves and have no children",
                    at(line),
                    nodes[node].name,
                    nodes[parent].line
                )));
            }
            nodes[node].parent = Some(parent);
            children[parent] += 1;
        }
        let depth = match depths(&nodes) {
            Ok(depth) => depth,
            Err(cycle) => {
                let first = &nodes[cycle[0]];
                let mut names: Vec<&str> = cycle.iter().take(9).map(|n| nodes[*n].name.as_str()).collect();
                if cycle.len() > 9 {
                    names.push("…");
                }
                return Err(TopologyError::File(format!(
                    "{}: `{}` never reaches the reducer; its parents form a cycle ({})",
                    at(first.line),
                    first.name,
                    names.join(" → ")
                )));
            }
        };
        for (node, count) in nodes.iter().zip(&children) {
            match node.kind {
                NodeKind::Switch if *count == 0 => {
                    return Err(TopologyError::File(format!(
                        "{}: switch `{}` has no children; every switch needs a mapper below it",
                        at(node.line),
                        node.name
                    )))
                }
                NodeKind::Reducer if *count == 0 => {
                    return Err(TopologyError::File(format!(
                        "{}: the reducer `{}` has no children; declare mappers (and switches) below it",
                        at(node.line),
                        node.name
                    )))
                }
                _ => {}
            }
        }
        Ok(FileTopology { path: path.to_string(), nodes, root, depth })
    }

    /// The path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The nodes in declaration order.
    pub fn nodes(&self) -> &[FileNode] {
        &self.nodes
    }

    pub fn mappers(&self) -> usize {
        self.nodes.iter().filter(|n| n.kind == NodeKind::Mapper).count()
    }

    /// Builds the graph: the reducer is node 0, the other nodes follow in declaration order
    /// (so the `i`th mapper declared is the `i`th mapper of the graph). A link's tier is the
    /// height of its sender: 0 for mappers, 1 + the highest child for switches.
    pub(super) fn graph(&self) -> Graph {
        let mut graph = Graph { nodes: Vec::new(), links: Vec::new(), tiers: Vec::new() };
        let root = self.root;
        let order: Vec<usize> = std::iter::once(root).chain((0..self.nodes.len()).filter(|n| *n != root)).collect();
        let mut index = vec![0usize; self.nodes.len()];
        for &node in &order {
            index[node] = graph.add(self.nodes[node].kind, self.nodes[node].name.clone());
        }
        // Heights, deepest nodes first so that every child is done before its parent.
        let depth = &self.depth;
        let mut deepest_first: Vec<usize> = (0..self.nodes.len()).collect();
        deepest_first.sort_by_key(|n| std::cmp::Reverse(depth[*n]));
        let mut height = vec![0usize; self.nodes.len()];
        for node in deepest_first {
            if let Some(parent) = self.nodes[node].parent {
                height[parent] = height[parent].max(height[node] + 1);
            }
        }
        for &node in &order[1..] {
            if let Some(parent) = self.nodes[node].parent {
                graph.connect(index[node], index[parent], height[node]);
            }
        }
        let tiers = order[1..].iter().map(|n| height[*n]).max().unwrap_or(0) + 1;
        graph.tiers =
            (0..tiers).map(|t| if t == 0 { "from mappers".to_string() } else { format!("from height {t}") }).collect();
        graph
    }
}

/// Each node's distance from the root, or the nodes of a cycle (first node repeated at the
/// end) when some node's parents never reach the root. Linear: each walk up stops at the
/// first node whose depth is known.
fn depths(nodes: &[FileNode]) -> Result<Vec<usize>, Vec<usize>> {
    const UNKNOWN: usize = usize::MAX;
    let mut depth = vec![UNKNOWN; nodes.len()];
    let mut on_path = vec![false; nodes.len()];
    for start in 0..nodes.len() {
        let mut path = Vec::new();
        let mut node = start;
        let base = loop {
            if depth[node] != UNKNOWN {
                break depth[node];
            }
            if on_path[node] {
                let from = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(node);
                return Err(cycle);
            }
            match nodes[node].parent {
                None => {
                    depth[node] = 0;
                    break 0;
                }
                Some(parent) => {
                    on_path[node] = true;
                    path.push(node);
                    node = parent;
                }
            }
        };
        for (i, node) in path.iter().rev().enumerate() {
            depth[*node] = base + i + 1;
            on_path[*node] = false;
        }
    }
    Ok(depth)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const SMALL: &str = "
        # two racks and a mapper wired to the reducer
        mapper m0 parent rack0   # declared before its parent
        reducer r
        switch agg parent r
        switch rack0 parent agg
        switch rack1 parent agg
        mapper m1 parent rack0
        mapper m2 parent rack1
        mapper m3 parent r
    ";

    #[test]
    fn builds_a_tree_in_declaration_order() {
        let topology = FileTopology::parse("small.topo", SMALL).unwrap();
        assert_eq!(topology.mappers(), 4);
        let graph = topology.graph();
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["r", "m0", "agg", "rack0", "rack1", "m1", "m2", "m3"]);
        assert_eq!(graph.nodes[0].kind, NodeKind::Reducer);
        assert_eq!(graph.links.len(), 7);
        let tier_of = |from: &str| {
            let node = names.iter().position(|n| *n == from).unwrap();
            graph.links[graph.nodes[node].uplinks[0]].tier
        };
        assert_eq!((tier_of("m0"), tier_of("m3"), tier_of("rack1"), tier_of("agg")), (0, 0, 1, 2));
        assert_eq!(graph.tiers, ["from mappers", "from height 1", "from height 2"]);
    }

    #[test]
    fn errors_name_the_line() {
        let long = format!("reducer {}", "r".repeat(300));
        let cases = [
            ("reducer r\nmapper m parent r\nhost h parent r", "line 3: expected `reducer NAME`"),
            ("reducer r\nmapper m parent r x", "line 2: expected"),
            ("reducer r\nmapper m parent nowhere", "line 2: unknown parent `nowhere` of `m`"),
            ("reducer r\nswitch s parent r\nmapper s parent r", "line 3: `s` is already declared on line 2"),
            ("reducer r\nreducer q\nmapper m parent r", "line 2: a second reducer `q`"),
            ("reducer r\nmapper m parent r\nmapper n parent m", "line 3: the parent of `n` is `m`, a mapper (line 2)"),
            ("reducer r\nmapper m parent r\nswitch s parent r", "line 3: switch `s` has no children"),
            ("reducer r", "line 1: the reducer `r` has no children"),
            ("# nothing\n", "no reducer"),
            (long.as_str(), "line 1: the name `rrrrrrrr"),
            (
                "reducer r\nmapper m parent r\nswitch a parent b\nswitch b parent a\nmapper n parent a",
                "line 3: `a` never reaches the reducer; its parents form a cycle (a → b → a",
            ),
        ];
        for (text, expected) in cases {
            let error = FileTopology::parse("t.topo", text).unwrap_err();
            assert!(matches!(error, TopologyError::File(_)), "{error:?}");
            let error = error.to_string();
            assert!(error.starts_with("topology file `t.topo`"), "{error}");
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
