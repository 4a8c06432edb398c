//! Compiles the rules in `queries/` into the library, so that the binary carries its
//! detections; `--rules DIR` replaces them at run time. The same for the (empty) allow
//! tables of `allow/` that the built-in rules read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The files of `dir` with one of `extensions`, sorted; cargo watches each.
fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| extensions.contains(&e))
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    for path in &paths {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    paths
}

/// `const NAME: &[(&str, &str)]` of (`folder/file name`, text) for `paths`.
fn embed(name: &str, doc: &str, folder: &str, paths: &[PathBuf]) -> String {
    let mut code = format!("/// {doc}: (file name, text).\nconst {name}: &[(&str, &str)] = &[\n");
    for path in paths {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file names are UTF-8");
        let absolute = path.canonicalize().expect("file exists");
        writeln!(
            code,
            "    (\"{folder}/{file}\", include_str!({:?})),",
            absolute.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    code
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../..");
    let rules = files(&root.join("queries"), &["sql"]);
    let code = embed(
        "BUILTIN_RULES",
        "The rules compiled in from `queries/`",
        "queries",
        &rules,
    )
    .replacen("const", "pub(crate) const", 1);
    // One test per rule file, for `tests/rules.rs`.
    let mut tests = String::new();
    for path in &rules {
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
    let allow = embed(
        "BUILTIN_ALLOW",
        "The allow tables compiled in from `allow/`",
        "allow",
        &files(&root.join("allow"), &["csv", "toml"]),
    );
    let catalog = embed(
        "BUILTIN_CATALOG",
        "The control catalog compiled in from `catalog/`",
        "catalog",
        &files(&root.join("catalog"), &["toml"]),
    );
    let fixtures = fixture_names(&root.join("testdata/rules"));
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_rules.rs");
    std::fs::write(&out, code).expect("OUT_DIR is writable");
    std::fs::write(out.with_file_name("rule_tests.rs"), tests).expect("OUT_DIR is writable");
    std::fs::write(out.with_file_name("builtin_allow.rs"), allow).expect("OUT_DIR is writable");
    std::fs::write(
        out.with_file_name("builtin_catalog.rs"),
        format!("{catalog}{fixtures}"),
    )
    .expect("OUT_DIR is writable");
}

/// `const BUILTIN_FIXTURES` of (rule id, `positive` or `negative`, file name) for the
/// fixtures of the built-in rules: names only, for the coverage report.
fn fixture_names(dir: &Path) -> String {
    let mut code = String::from(
        "/// The built-in rules' fixture files: (rule id, positive or negative, file name).\n\
         const BUILTIN_FIXTURES: &[(&str, &str, &str)] = &[\n",
    );
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut rules: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    rules.sort();
    for rule in rules.iter().filter(|p| p.is_dir()) {
        let id = rule
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 names");
        for kind in ["positive", "negative"] {
            let folder = rule.join(kind);
            println!("cargo::rerun-if-changed={}", folder.display());
            let mut names: Vec<String> = std::fs::read_dir(&folder)
                .map(|e| {
                    e.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for name in names {
                writeln!(code, "    ({id:?}, {kind:?}, {name:?}),").expect("write to string");
            }
        }
    }
    code.push_str("];\n");
    code
}
