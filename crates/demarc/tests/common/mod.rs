//! What the command-line tests share: the repository root and running the binary there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `demarc ARGS...`, run from the repository root.
#[allow(dead_code)] // Not every test binary runs it this way.
pub fn demarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("demarc runs")
}
