//! Records the commit the binary is built from, for `xvisor --version`:
//! `XVISOR_COMMIT` from the environment when set (a build from a tarball
//! can name it), else git's HEAD, else "unknown" (not a git checkout, or
//! no git). Uncommitted changes are not marked: this script does not run
//! again when a source file changes, so such a mark could be stale.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=XVISOR_COMMIT");
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("XVISOR_COMMIT").ok().filter(|c| !c.is_empty()) {
        Some(given) => given,
        None => match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
            Some(head) => {
                // Rebuilt when HEAD moves: its file, the branch it names,
                // and the index (a commit or a checkout changes it).
                for what in ["HEAD", "index"] {
                    if let Some(path) = git(&dir, &["rev-parse", "--git-path", what]) {
                        println!("cargo:rerun-if-changed={}", dir.join(path).display());
                    }
                }
                if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                    if let Some(path) = git(&dir, &["rev-parse", "--git-path", &branch]) {
                        println!("cargo:rerun-if-changed={}", dir.join(path).display());
                    }
                }
                head
            }
            None => "unknown".to_string(),
        },
    };
    println!("cargo:rustc-env=XVISOR_COMMIT={commit}");
}
