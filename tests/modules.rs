//! The module drawing: which source file uses which, read from `src/` the way a
//! newcomer would draw it (every `use` and every `crate::`/`super::` path in code
//! points at the file that defines the item, through re-exports). The drawing
//! must have no circles, so that each file can be read, and changed, knowing only
//! the files below it. `MODULE_GRAPH=1 cargo test --test modules -- --nocapture`
//! prints it (Graphviz).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[test]
fn the_module_drawing_has_no_circles() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = crate_.edges();
    assert!(
        edges.values().map(BTreeSet::len).sum::<usize>() > 50,
        "the reader found almost no uses; it no longer understands the source"
    );
    if std::env::var_os("MODULE_GRAPH").is_some() {
        println!("digraph boxoffice {{");
        for (from, tos) in &edges {
            for to in tos {
                println!("  \"{from}\" -> \"{to}\";");
            }
        }
        println!("}}");
    }
    let circles: Vec<_> = circles(&edges)
        .into_iter()
        .map(|c| {
            let names: Vec<_> = c.iter().map(String::as_str).collect();
            names.join(", ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other:\n  {}",
        circles.join("\n  ")
    );
}

/// The same drawing with each top-level module as one box: layers, from leaves
/// (`error`, `status`, `text`) up to `app`.
#[test]
fn the_top_level_modules_form_layers() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let top = |file: &str| {
        file.split('/')
            .next()
            .unwrap_or(file)
            .trim_end_matches(".rs")
            .to_string()
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in crate_.edges() {
        let entry = edges.entry(top(&from)).or_default();
        entry.extend(tos.iter().map(|t| top(t)).filter(|t| *t != top(&from)));
    }
    assert!(edges["app"].contains("http"), "the reader lost app's uses");
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new());
}

#[test]
fn the_reader_follows_re_exports_and_relative_paths() {
    let mut crate_ = Crate::default();
    crate_.add(
        vec![],
        "lib.rs",
        "mod a; mod b; pub use b::Thing; fn x() { a::f(); }",
    );
    crate_.add(vec!["a".into()], "a.rs", "use crate::Thing; pub fn f() {}");
    crate_.add(vec!["b".into()], "b.rs", "pub struct Thing; fn y() {}");
    let edges = crate_.edges();
    assert_eq!(edges["a.rs"], BTreeSet::from(["b.rs".to_string()]));
    assert!(edges["lib.rs"].contains("a.rs"));
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new());

    crate_.add(
        vec!["b".into()],
        "b.rs",
        "pub struct Thing; fn y() { super::a::f() }",
    );
    assert_eq!(
        circles(&crate_.edges()),
        vec![vec!["a.rs".to_string(), "b.rs".to_string()]]
    );
}

/// One module: the file it lives in, the items it defines and the names its
/// `use` declarations bring in (private ones count: child modules see them).
#[derive(Default)]
struct Module {
    file: String,
    items: BTreeSet<String>,
    uses: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    /// Paths used in code, relative to this module, as written.
    paths: Vec<Vec<String>>,
}

#[derive(Default)]
struct Crate {
    modules: HashMap<Vec<String>, Module>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut crate_ = Crate::default();
        for file in rust_files(src) {
            let rel = file
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "main.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            crate_.add(module_path(&rel), &rel, &text);
        }
        crate_
    }

    fn add(&mut self, path: Vec<String>, file: &str, text: &str) {
        let code = without_tests(&strip(text));
        let mut module = Module {
            file: file.to_string(),
            ..Module::default()
        };
        for (names, alias) in use_declarations(&code) {
            if names.last().map(String::as_str) == Some("*") {
                module.globs.push(names[..names.len() - 1].to_vec());
            } else if let Some(alias) = alias {
                module.uses.insert(alias, names);
            }
        }
        module.items = definitions(&code);
        module.paths = code_paths(&without_uses(&code));
        // Inline modules (`pub mod close { ... }`) live in the same file.
        for inline in inline_modules(&code) {
            let mut child = path.clone();
            child.push(inline);
            self.modules.insert(
                child,
                Module {
                    file: file.to_string(),
                    ..Module::default()
                },
            );
        }
        self.modules.insert(path, module);
    }

    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, module) in &self.modules {
            let from = module.file.clone();
            let entry = edges.entry(from.clone()).or_default();
            let written = module
                .uses
                .values()
                .chain(&module.globs)
                .chain(&module.paths);
            for p in written {
                if let Some(to) = self.resolve(path, p, 0)
                    && to != from
                {
                    entry.insert(to);
                }
            }
        }
        edges
    }

    /// The file that defines what `written` names, seen from module `at`; `None`
    /// for other crates and for modules themselves (using a module is not a use
    /// of its file until one of its items is named).
    fn resolve(&self, at: &[String], written: &[String], depth: usize) -> Option<String> {
        if depth > 16 || written.is_empty() {
            return None;
        }
        let mut cur: Vec<String> = at.to_vec();
        let mut rest = written;
        match written[0].as_str() {
            "crate" => {
                cur.clear();
                rest = &written[1..];
            }
            "self" => rest = &written[1..],
            "super" => {
                while rest.first().map(String::as_str) == Some("super") {
                    cur.pop();
                    rest = &rest[1..];
                }
            }
            first => {
                let mut child = cur.clone();
                child.push(first.to_string());
                if !self.modules.contains_key(&child) {
                    // A name this module imported, or a path into another crate.
                    let target = self.modules.get(at)?.uses.get(first)?;
                    let mut full = target.clone();
                    full.extend_from_slice(&written[1..]);
                    return self.resolve(at, &full, depth + 1);
                }
            }
        }
        for (i, segment) in rest.iter().enumerate() {
            let mut child = cur.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                cur = child;
                continue;
            }
            let module = self.modules.get(&cur)?;
            if module.items.contains(segment) {
                return Some(module.file.clone());
            }
            if let Some(target) = module.uses.get(segment) {
                let mut full = target.clone();
                full.extend_from_slice(&rest[i + 1..]);
                return self.resolve(&cur, &full, depth + 1);
            }
            for glob in &module.globs {
                let mut full = glob.clone();
                full.extend_from_slice(&rest[i..]);
                if let Some(file) = self.resolve(&cur, &full, depth + 1) {
                    return Some(file);
                }
            }
            // A macro or something the reader does not parse: count the module.
            return Some(module.file.clone());
        }
        None
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source without comments, strings and character literals, which may
/// mention paths (doc links) or hold braces.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += body
                + rest[body..]
                    .find(&close)
                    .map_or(rest.len(), |e| e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(rest) {
            i += rest[1..].find('\'').map_or(rest.len(), |e| e + 2);
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn raw_string_start(rest: &str) -> Option<usize> {
    let after = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r'))?;
    let hashes = after.len() - after.trim_start_matches('#').len();
    after[hashes..]
        .starts_with('"')
        .then_some(hashes + usize::from(rest.starts_with('b')))
}

/// `'x'`, `'\n'`, `'\u{..}'`, not a lifetime (`'a`).
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// The code without `#[cfg(test)] mod … { … }` blocks: tests may use what they
/// like.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if trimmed.starts_with("mod ") {
            let open = trimmed.find('{').unwrap_or(0);
            let end = matching_brace(&trimmed[open..]).map_or(trimmed.len(), |e| open + e + 1);
            rest = &trimmed[end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Words at word boundaries, with the byte offset after each.
fn words(code: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in code
        .char_indices()
        .chain(std::iter::once((code.len(), ' ')))
    {
        match (start, is_ident(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push((i, &code[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Every `use` tree, flattened: the full path of each name and what it is
/// called here.
fn use_declarations(code: &str) -> Vec<(Vec<String>, Option<String>)> {
    let mut out = Vec::new();
    for (end, word) in words(code) {
        if word != "use" {
            continue;
        }
        let Some(semi) = code[end..].find(';') else {
            continue;
        };
        flatten(&[], &squeeze(&code[end..end + semi]), &mut out);
    }
    out
}

fn flatten(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, Option<String>)>) {
    if let Some(open) = tree.find('{') {
        let mut base = prefix.to_vec();
        base.extend(segments(tree[..open].trim_end_matches("::")));
        let inner = &tree[open + 1..tree.len() - 1];
        for part in split_top(inner) {
            flatten(&base, part, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a)),
        None => (tree, None),
    };
    let path = path.trim_end_matches(|c: char| !is_ident(c) && c != '*');
    let mut full = prefix.to_vec();
    full.extend(segments(path));
    if full.last().map(String::as_str) == Some("self") {
        full.pop();
    }
    let Some(last) = full.last().cloned() else {
        return;
    };
    let alias = alias.map(str::to_string).unwrap_or(last);
    if alias != "_" {
        out.push((full, Some(alias)));
    }
}

/// A `use` tree without whitespace, but for one space between two words
/// (`a::{b as c}`).
fn squeeze(tree: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in tree.chars() {
        if c.is_whitespace() {
            gap = true;
            continue;
        }
        if gap && is_ident(c) && out.ends_with(is_ident) {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn split_top(list: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

const DEFINERS: &[&str] = &[
    "fn", "struct", "enum", "trait", "type", "const", "static", "union",
];

fn definitions(code: &str) -> BTreeSet<String> {
    let words = words(code);
    let mut items = BTreeSet::new();
    for pair in words.windows(2) {
        let ((end, keyword), (_, name)) = (pair[0], pair[1]);
        let between = &code[end..end + code[end..].find(name).unwrap_or(0)];
        if DEFINERS.contains(&keyword) && between.trim().is_empty() {
            items.insert(name.to_string());
        }
        if keyword == "macro_rules" {
            items.insert(name.to_string());
        }
    }
    items
}

fn without_uses(code: &str) -> String {
    let mut out = String::new();
    let mut from = 0;
    for (end, word) in words(code) {
        if word == "use" && end >= from {
            out.push_str(&code[from..end - 3]);
            from = code[end..].find(';').map_or(code.len(), |s| end + s + 1);
        }
    }
    out.push_str(&code[from.min(code.len())..]);
    out
}

fn inline_modules(code: &str) -> Vec<String> {
    let words = words(code);
    words
        .windows(2)
        .filter(|p| p[0].1 == "mod" && code[p[1].0..].trim_start().starts_with('{'))
        .map(|p| p[1].1.to_string())
        .collect()
}

/// Paths written in code (`a::b::c`), outside `use` declarations.
fn code_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = code[i..].chars().next().unwrap();
        let starts = is_ident(c) && (i == 0 || !is_ident(code[..i].chars().last().unwrap()));
        let after_colons = i >= 2 && &code[i - 2..i] == "::";
        if !starts || after_colons {
            i += c.len_utf8();
            continue;
        }
        let len = code[i..]
            .find(|c: char| !is_ident(c) && c != ':')
            .unwrap_or(code.len() - i);
        let path = code[i..i + len].trim_end_matches(':');
        if path.contains("::") {
            out.push(segments(path));
        }
        i += len.max(1);
    }
    out
}

/// Circles in the drawing (Tarjan's strongly connected components of two or
/// more files), each sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found.sort();
    walk.found
}
