//! The tier rule of `src/runtime/` (see the runtime's module docs,
//! "Tiers"), checked over the source: every `use` (and every inline path)
//! that names another module of the runtime points to the same tier or a
//! lower one, and no import circle exists between its files.
//!
//! A text check, not a compiler one: it reads `super::…`, `self::…` and
//! `crate::runtime::…` paths in code (comments skipped), resolves them
//! against the file's own module path, and maps each to the file that
//! defines the module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The tiers, lowest first: a file may import from its own tier or below.
fn tier(first: &str) -> usize {
    match first {
        "task" => 0,
        "driver" | "observe" => 1,
        "scheduler" => 2,
        "wait" => 3,
        "blocking" | "coop" | "current" | "fd_wait" | "io_source" | "join" | "spawn" | "time"
        | "timeout" | "gather" | "fiber_local" | "stats" => 4,
        // The dump asks every worker for its fibers.
        "worker" | "dump" => 5,
        "" => 6, // runtime/mod.rs: `Runtime`, the owner of it all
        other => panic!(
            "src/runtime/{other}: a module with no tier; \
             add it to the tier table here and in the runtime docs"
        ),
    }
}

/// Module path (below `runtime`) of every file, e.g. `scheduler/core.rs`
/// is `["scheduler", "core"]` and `scheduler/mod.rs` is `["scheduler"]`.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            modules(&path, &p, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut p = prefix.to_vec();
            if name != "mod" {
                p.push(name);
            }
            out.insert(p, path);
        }
    }
}

/// The code of a file with comments removed (line comments, and the text
/// of doc comments), so that doc links do not count as imports, and
/// without its unit tests (an inline `mod tests`, whose `super` is the
/// file itself).
fn code(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("mod tests {"))
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// Every path in `code` that may name a runtime module.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let boundary = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let Some(end) = rest[i..].find(';') else {
            break;
        };
        if boundary {
            out.extend(expand(&rest[i + 4..i + end]));
        }
        rest = &rest[i + end..];
    }
    // Inline paths such as `super::task::Key` in code.
    let bytes = code.as_bytes();
    for start in ["super::", "self::", "crate::runtime::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let i = from + i;
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b':') {
                continue;
            }
            let len = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(code.len() - i);
            out.push(code[i..i + len].to_string());
        }
    }
    out
}

/// Resolves `path`, written in the module `here`, to a module path below
/// `runtime` (or `None` if it leads elsewhere).
fn resolve(here: &[String], is_mod_rs: bool, path: &str) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut cur: Vec<String>;
    let mut i = 0;
    if segs.first() == Some(&"crate") {
        if segs.get(1) != Some(&"runtime") {
            return None;
        }
        cur = Vec::new();
        i = 2;
    } else if segs.first() == Some(&"super") || segs.first() == Some(&"self") {
        // A file `a/b.rs` is module runtime::a::b; `super` is runtime::a.
        cur = here.to_vec();
        let _ = is_mod_rs;
        while let Some(&s) = segs.get(i) {
            match s {
                "self" => {}
                "super" => {
                    cur.pop()?; // past `runtime` itself: not ours
                }
                _ => break,
            }
            i += 1;
        }
    } else {
        return None;
    }
    cur.extend(segs[i..].iter().map(|s| s.to_string()));
    Some(cur)
}

#[test]
fn runtime_imports_point_down_the_tiers_and_form_no_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runtime");
    let mut files = BTreeMap::new();
    modules(&root, &[], &mut files);
    assert!(files.len() > 10, "found only {:?}", files.keys());

    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (module, file) in &files {
        let text = fs::read_to_string(file).unwrap();
        let is_mod_rs = file.ends_with("mod.rs");
        let from_tier = tier(module.first().map_or("", String::as_str));
        for p in paths(&code(&text)) {
            let Some(target) = resolve(module, is_mod_rs, &p) else {
                continue;
            };
            // The longest module path that is a file.
            let Some(to) = (0..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|t| files.contains_key(t))
            else {
                continue;
            };
            if &to == module || to.is_empty() && target.is_empty() {
                continue;
            }
            // A file declaring its child (`mod x;` is no use) is not an
            // edge; a child reaching its parent's items is.
            let to_tier = tier(to.first().map_or("", String::as_str));
            if to_tier > from_tier {
                wrong.push(format!(
                    "{} (tier {from_tier}) imports {p} (tier {to_tier})",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
            edges.entry(module.clone()).or_default().insert(to);
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up:\n{}",
        wrong.join("\n")
    );

    // No circle: depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => {
                let i = stack.iter().position(|s| s == m).unwrap();
                let circle: Vec<String> = stack[i..].iter().map(|s| s.join("/")).collect();
                panic!("import circle: {} -> {}", circle.join(" -> "), m.join("/"));
            }
            _ => {}
        }
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for to in edges.get(m).into_iter().flatten() {
            visit(to, edges, state, stack);
        }
        stack.pop();
        state.insert(m.clone(), 2);
    }
    let mut state = BTreeMap::new();
    for m in files.keys() {
        visit(m, &edges, &mut state, &mut Vec::new());
    }
}

#[test]
fn the_checker_parses_use_trees_and_resolves_paths() {
    // The parsing above, on known input: a nested use tree, a `super`
    // path from a nested file, and a path that leaves the runtime.
    assert_eq!(
        expand("super::{a::B, c::{d::E, F}}"),
        ["super::a::B", "super::c::d::E", "super::c::F"]
    );
    let here = vec!["scheduler".to_string(), "core".to_string()];
    assert_eq!(
        resolve(&here, false, "super::run_queue::RunQueue"),
        Some(vec![
            "scheduler".into(),
            "run_queue".into(),
            "RunQueue".into()
        ])
    );
    assert_eq!(
        resolve(&here, false, "crate::runtime::task::Key"),
        Some(vec!["task".into(), "Key".into()])
    );
    assert_eq!(resolve(&here, false, "crate::stack::Stack"), None);
    assert!(paths(&code("use super::x; // use super::y;")).contains(&"super::x".to_string()));
    assert!(!paths(&code("/// [`a`](super::y)"))
        .iter()
        .any(|p| p.contains('y')));
    assert!(
        !paths(&code("fn f() {}\nmod tests {\n    use super::*;\n}"))
            .iter()
            .any(|p| p.starts_with("super"))
    );
    assert!(std::panic::catch_unwind(|| tier("nowhere")).is_err());
}
