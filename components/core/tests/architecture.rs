//! The core's layering, checked from its source: no module imports another that (directly or
//! through others) imports it back, so each module can be read after the ones it uses.

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`store::keys`) → source file, for every non-test module of the core.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).ok()?.with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            // The crate root declares modules; `testing` is the test-support feature.
            (name != "lib" && name != "testing").then_some((name, file))
        })
        .collect()
}

/// The code of a module without its tests and comments.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read module");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths that follow `prefix` in `code`, e.g. `store::keys::deposit` after `crate::`.
fn paths_after<'a>(code: &'a str, prefix: &'a str) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    code.match_indices(prefix).map(move |(at, _)| {
        let rest = &code[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        rest[..end].split("::").filter(|p| !p.is_empty()).collect()
    })
}

/// The longest known module that `parts` (under `base`) starts with.
fn resolve(modules: &BTreeMap<String, PathBuf>, base: &str, parts: &[&str]) -> Option<String> {
    (1..=parts.len()).rev().find_map(|n| {
        let name = [base]
            .into_iter()
            .filter(|b| !b.is_empty())
            .chain(parts[..n].iter().copied())
            .collect::<Vec<_>>()
            .join("::");
        modules.contains_key(&name).then_some(name)
    })
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut graph = BTreeMap::new();
    for (name, file) in &modules {
        let code = code(file);
        let is_dir_module = file.ends_with("mod.rs");
        let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
        let mut used = BTreeSet::new();
        for parts in paths_after(&code, "crate::") {
            used.extend(resolve(&modules, "", &parts));
        }
        for parts in paths_after(&code, "super::") {
            used.extend(resolve(&modules, parent, &parts).or(Some(parent.to_string())));
        }
        if is_dir_module {
            // A directory module naming its own children (`keys::deposit`).
            for child in modules
                .keys()
                .filter_map(|m| m.strip_prefix(&format!("{name}::")))
            {
                if !child.contains("::") && code.contains(&format!("{child}::")) {
                    used.insert(format!("{name}::{child}"));
                }
            }
        }
        used.remove(name);
        used.remove("");
        graph.insert(name.clone(), used);
    }
    graph
}

#[test]
fn no_module_of_the_core_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() > 20, "found only {} modules", graph.len());
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(module) = stack.pop() {
            for next in graph.get(&module).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let cycles: Vec<String> = graph
        .iter()
        .flat_map(|(module, used)| used.iter().map(move |u| (module, u)))
        .filter(|(module, used)| reaches(used, module))
        .map(|(module, used)| format!("{module} -> {used} -> … -> {module}"))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_imports() {
    // The check above is only as good as the graph: known edges must be in it.
    let graph = imports();
    assert!(graph["credit"].contains("bot"), "{:?}", graph["credit"]);
    assert!(graph["routes::status"].contains("routes::route"));
    assert!(graph["store"].contains("store::keys"));
}
