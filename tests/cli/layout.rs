//! The module layout holds: no import circles between the top-level modules of
//! src/ (test code aside), domain modules use no front end, and the value types
//! of configuration keys are a leaf.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules each top-level module names (`crate::X`, `use crate::{X, ...}`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(SRC).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        // test modules in their own files (`mod tests;`) are not the layout either
        if top == "main" || top == "lib" || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // test modules close each file; what they use is not the layout
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = graph.entry(top.clone()).or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                inner.split(',').filter_map(|n| n.split("::").next()).collect()
            } else {
                vec![
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap(),
                ]
            };
            for name in names {
                let name = name.trim();
                if !name.is_empty() && name != "self" && name != top {
                    deps.insert(name.to_string());
                }
            }
        }
    }
    graph
}

/// A path that leads from `from` back to itself, if any.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == from {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let graph = graph();
    assert!(graph.len() > 15, "{graph:?}");
    for module in graph.keys() {
        if let Some(path) = circle(&graph, module) {
            panic!("import circle: {}", path.join(" -> "));
        }
    }
}

#[test]
fn the_value_types_are_a_leaf() {
    let graph = graph();
    let deps = &graph["values"];
    assert!(deps.is_empty(), "values must use nothing of edge-setup: {deps:?}");
    // config, the agent and the device ID take their value types from there
    for module in ["config", "agent", "device_id"] {
        assert!(graph[module].contains("values"), "{module}: {:?}", graph[module]);
    }
}

/// Domain modules take the system only: the front ends (the clap types, the
/// context with its prompt and stdin) stay in `commands`, `wizard` and `app`.
#[test]
fn domain_modules_use_no_front_end() {
    let graph = graph();
    let front = ["app", "cli", "commands", "context", "prompt", "wizard", "testkit"];
    let domain: Vec<&String> = graph.keys().filter(|m| !front.contains(&m.as_str())).collect();
    assert!(domain.len() >= 12, "{domain:?}");
    for module in domain {
        let used: Vec<&String> = graph[module].iter().filter(|d| front.contains(&d.as_str())).collect();
        assert!(used.is_empty(), "{module} uses the front end {used:?}");
    }
}

/// The check itself finds a circle where there is one.
#[test]
fn a_circle_is_found() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&graph, "a").unwrap(), vec!["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(circle(&graph, "a"), None);
}
