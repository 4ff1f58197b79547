//! The layering holds: crate dependencies point one way (raft-store ← federation ← gateway ←
//! warden), and inside each crate no module imports a module that imports it back.
//!
//! Modules are files. An edge A → B is a `use` of, or a `crate::`/`super::`/child path into, a
//! module B from A's code (declaring `mod b;` is not an import). A path naming an item is
//! resolved to the deepest module file that holds it. A cycle is any strongly connected set
//! of two or more modules; the test prints each one with the lines that make its edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files of one crate: module path (`proxy::plan`) → file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), p);
        }
    }
    out
}

/// The code with comments, string and char literals blanked out (lines kept).
fn strip(code: &str) -> String {
    let b: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                if b[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char(prev(&b, i)) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&b, i) {
            let mut j = i + 1;
            if b.get(j) == Some(&'\\') {
                j += 1;
            }
            j += 1;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            i = j + 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev(b: &[char], i: usize) -> char {
    if i == 0 { ' ' } else { b[i - 1] }
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `'a'`, `'\n'`, `'\u{1F600}'` — not a lifetime like `'a`.
fn is_char_literal(b: &[char], i: usize) -> bool {
    match b.get(i + 1) {
        Some('\\') => true,
        Some(_) => b.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Expands a use tree (`crate::a::{b, c::{d as e, *}}`) into plain paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.replace(['\n', '\r', '\t'], " ");
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let join = |p: &str, s: &str| {
        if p.is_empty() {
            s.to_string()
        } else {
            format!("{p}::{s}")
        }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        let bytes: Vec<char> = inner.chars().collect();
        let mut parts = Vec::new();
        for (i, c) in bytes.iter().enumerate() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(bytes[start..i].iter().collect::<String>());
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(bytes[start..].iter().collect::<String>());
        for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            expand_into(&base, p, out);
        }
    } else {
        // `a::b as c` names a::b.
        let path = tree.split_whitespace().next().unwrap_or("");
        let path = path.trim_end_matches("::self").trim_end_matches("::*");
        out.push(join(prefix, path));
    }
}

/// Resolves a path written in module `at` to the deepest module it names, if any.
fn resolve(at: &str, path: &str, mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if at.is_empty() {
        vec![]
    } else {
        at.split("::").collect()
    };
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("self") => {
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
        }
        Some(first) => {
            // A child module of `at` (uniform paths), else nothing of ours (std, extern crates).
            let child = if at.is_empty() {
                first.to_string()
            } else {
                format!("{at}::{first}")
            };
            if !mods.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    let mut full: Vec<&str> = base;
    full.extend(segs);
    while !full.is_empty() {
        let m = full.join("::");
        if mods.contains_key(&m) {
            return Some(m);
        }
        full.pop();
    }
    Some(String::new())
}

/// Inline `mod name { ... }` blocks: (start, end, name), by byte offset.
fn inline_mods(code: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = find_keyword(&code[from..], "mod") {
        let at = from + pos;
        let after = &code[at + 3..];
        let name: String = after
            .trim_start()
            .chars()
            .take_while(|c| ident_char(*c))
            .collect();
        let rest = after.trim_start()[name.len()..].trim_start();
        if rest.starts_with('{') {
            let open = code.len() - rest.len();
            let mut depth = 0usize;
            let mut end = code.len();
            for (i, c) in code[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            out.push((open, end, name));
        }
        from = at + 3;
    }
    out
}

/// The module a byte offset of file module `m` is in (inline blocks included).
fn scope_at(m: &str, blocks: &[(usize, usize, String)], pos: usize) -> String {
    let mut scope = m.to_string();
    for (s, e, name) in blocks {
        if *s < pos && pos < *e {
            scope = if scope.is_empty() {
                name.clone()
            } else {
                format!("{scope}::{name}")
            };
        }
    }
    scope
}

fn line_at(code: &str, pos: usize) -> String {
    let s = code[..pos].rfind('\n').map(|n| n + 1).unwrap_or(0);
    let e = code[pos..]
        .find('\n')
        .map(|n| pos + n)
        .unwrap_or(code.len());
    code[s..e].trim().chars().take(120).collect()
}

/// Module → (imported module → first line that imports it).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mods = modules(src);
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (m, file) in &mods {
        let code = strip(&std::fs::read_to_string(file).expect("read source"));
        let blocks = inline_mods(&code);
        let mut edges: BTreeMap<String, String> = BTreeMap::new();
        let mut add = |target: Option<String>, pos: usize| {
            if let Some(t) = target
                && t != *m
            {
                edges.entry(t).or_insert_with(|| line_at(&code, pos));
            }
        };
        // `use` statements (possibly over several lines); their spans are skipped below.
        let mut uses: Vec<(usize, usize)> = Vec::new();
        let mut from = 0;
        while let Some(pos) = find_keyword(&code[from..], "use") {
            let at = from + pos;
            let end = code[at..].find(';').map(|e| at + e).unwrap_or(code.len());
            let scope = scope_at(m, &blocks, at);
            for p in expand(&code[at + 3..end]) {
                add(resolve(&scope, &p, &mods), at);
            }
            uses.push((at, end));
            from = end;
        }
        // Inline paths: `crate::x::y`, `super::x`, `child::x`.
        let chars: Vec<(usize, char)> = code.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (pos, c) = chars[i];
            let starts = ident_char(c) && (i == 0 || !ident_char(chars[i - 1].1));
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len() && (ident_char(chars[j].1) || chars[j].1 == ':') {
                j += 1;
            }
            let path: String = chars[i..j].iter().map(|(_, c)| *c).collect();
            let in_use = uses.iter().any(|(s, e)| *s <= pos && pos < *e);
            let after_colons = i > 0 && chars[i - 1].1 == ':';
            if path.contains("::") && !in_use && !after_colons {
                let scope = scope_at(m, &blocks, pos);
                add(resolve(&scope, path.trim_end_matches(':'), &mods), pos);
            }
            i = j;
        }
        g.insert(m.clone(), edges);
    }
    g
}

/// Finds `kw` as a whole word at a statement start.
fn find_keyword(s: &str, kw: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = s[from..].find(kw) {
        let at = from + p;
        let before = s[..at].chars().next_back().unwrap_or('\n');
        let after = s[at + kw.len()..].chars().next().unwrap_or(' ');
        let line_start = s[..at].rfind('\n').map(|n| n + 1).unwrap_or(0);
        let lead = s[line_start..at].trim();
        let at_stmt = lead.is_empty() || lead == "pub" || lead.starts_with("pub(");
        if !ident_char(before) && after.is_whitespace() && at_stmt {
            return Some(at);
        }
        from = at + kw.len();
    }
    None
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn describe(g: &BTreeMap<String, BTreeMap<String, String>>, comp: &[String]) -> String {
    let mut s = format!("cycle among {comp:?}:\n");
    for a in comp {
        for (b, line) in &g[a] {
            if comp.contains(b) {
                let name = |m: &str| {
                    if m.is_empty() {
                        "<root>".to_string()
                    } else {
                        m.to_string()
                    }
                };
                s.push_str(&format!("  {} -> {}   ({line})\n", name(a), name(b)));
            }
        }
    }
    s
}

/// No module of any crate imports a module that imports it back.
#[test]
fn no_import_cycles_in_any_crate() {
    let mut report = String::new();
    for krate in ["raft-store", "federation", "gateway", "."] {
        let g = graph(&root().join(krate).join("src"));
        assert!(g.len() > 3, "{krate}: found only {} modules", g.len());
        for comp in cycles(&g) {
            report.push_str(&format!("{krate}: {}", describe(&g, &comp)));
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// The checker itself finds a cycle when there is one, resolves `super`, children and
/// use trees, and ignores what strings and comments say.
#[test]
fn the_checker_sees_cycles_and_ignores_strings() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\nuse x::Thing;\n").unwrap();
    std::fs::write(
        src.join("a/x.rs"),
        "use crate::{b::{self, B as Bee}, c};\n// use crate::a;\nconst S: &str = \"super::y\";\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { crate::a::x::g(); }\n").unwrap();
    std::fs::write(src.join("c.rs"), "fn h() -> char { 'a' }\n").unwrap();
    let g = graph(src);
    assert_eq!(g["a"].keys().collect::<Vec<_>>(), ["a::x"]);
    assert_eq!(g["a::x"].keys().collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(g["b"].keys().collect::<Vec<_>>(), ["a::x"]);
    assert!(g["c"].is_empty());
    assert_eq!(cycles(&g), vec![vec!["a::x".to_string(), "b".to_string()]]);
}

/// Path dependencies between the workspace's crates point one way.
#[test]
fn crate_dependencies_point_one_way() {
    let allowed: &[(&str, &[&str])] = &[
        ("raft-store", &[]),
        ("federation", &["warden-raft-store"]),
        ("gateway", &["warden-federation"]),
        (
            ".",
            &["warden-federation", "warden-gateway", "warden-raft-store"],
        ),
    ];
    for (krate, ok) in allowed {
        let text = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let mut path_deps: Vec<String> = Vec::new();
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(t) = doc.get(section).and_then(|v| v.as_table()) {
                for (name, spec) in t {
                    if spec.get("path").is_some() {
                        path_deps.push(name.clone());
                    }
                }
            }
        }
        path_deps.sort();
        for d in &path_deps {
            assert!(
                ok.contains(&d.as_str()),
                "{krate} depends on {d}: dependencies must point raft-store <- federation <- gateway <- warden"
            );
        }
    }
}
