//! Compiles the rules in `queries/` into the library, so that the binary carries its
//! detections; `--rules DIR` replaces them at run time. The same for the (empty) allow
//! tables of `allow/` that the built-in rules read.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let queries = Path::new(&manifest).join("../../queries");
    println!("cargo::rerun-if-changed={}", queries.display());
    let mut paths: Vec<_> = std::fs::read_dir(&queries)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut code = String::from(
        "/// The rules compiled in from `queries/`: (file name, text).\npub(crate) const BUILTIN_RULES: &[(&str, &str)] = &[\n",
    );
    for path in &paths {
        println!("cargo::rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("rule file names are UTF-8");
        let absolute = path.canonicalize().expect("rule file exists");
        writeln!(
            code,
            "    (\"queries/{name}\", include_str!({:?})),",
            absolute.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    // One test per rule file, for `tests/rules.rs`.
    let mut tests = String::new();
    for path in &paths {
        let id = path
            .file_stem()
            .and_then(|n| n.to_str())
            .expect("rule file names are UTF-8");
        let name: String = id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        writeln!(
            tests,
            "#[tokio::test]\nasync fn fixtures_{name}() {{\n    check_rule({id:?}).await;\n}}"
        )
        .expect("write to string");
    }
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_rules.rs");
    std::fs::write(&out, code).expect("OUT_DIR is writable");
    std::fs::write(out.with_file_name("rule_tests.rs"), tests).expect("OUT_DIR is writable");
    std::fs::write(
        out.with_file_name("builtin_allow.rs"),
        allow_tables(&manifest),
    )
    .expect("OUT_DIR is writable");
}

/// The allow tables the built-in rules read, from `allow/`: (file name, text).
fn allow_tables(manifest: &str) -> String {
    let dir = Path::new(manifest).join("../../allow");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut code = String::from(
        "/// The allow tables compiled in from `allow/`: (file name, text).\nconst BUILTIN_ALLOW: &[(&str, &str)] = &[\n",
    );
    for path in &paths {
        println!("cargo::rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("allow file names are UTF-8");
        let absolute = path.canonicalize().expect("allow file exists");
        writeln!(
            code,
            "    (\"allow/{name}\", include_str!({:?})),",
            absolute.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    code
}
