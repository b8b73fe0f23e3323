//! The docs agree with each other where a reader relies on it.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The codes in a Markdown table's first or second column: "| `CODE` |".
fn codes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| {
            l.split('|')
                .skip(1)
                .take(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .filter(|c| c.len() > 3 && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_readme_lists_every_error_code_the_protocol_lists() {
    let readme = read("README.md");
    let protocol = read("docs/PROTOCOL.md");
    let section = protocol
        .split("### `error`")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("PROTOCOL.md has an error section");
    let wanted = codes(section);
    assert!(wanted.len() >= 15, "{wanted:?}");
    let listed = codes(&readme);
    let missing: Vec<_> = wanted.difference(&listed).collect();
    assert!(missing.is_empty(), "README's tables lack {missing:?}");
}
