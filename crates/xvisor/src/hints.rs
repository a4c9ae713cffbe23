//! The hint at the end of a run that failed: a host path the guest was
//! told about (an absolute path on its command line, its `-w`) or, with
//! `--trace`, one a call failed on (`Instance::absent_hints`), which the
//! host has and the instance does not show, with the `-v` that would show
//! it (`xvisor_confine::absent`). Nothing is looked at unless the guest
//! failed; nothing is trapped for it.

use xvisor_confine::absent::{Hint, View};
use xvisor_instance::{InstanceError, InstanceSpec};

/// Most hint lines after a run.
const SHOWN: usize = 3;

/// What the run's end needs of the spec, kept before the instance takes it.
pub(crate) struct ExitHints {
    view: View,
    program: String,
    /// The program's arguments and a `-w` other than the home directory.
    words: Vec<String>,
}

impl ExitHints {
    /// `None` for a root not made of the host's directories (an image,
    /// `--rootfs`): a host path means nothing there.
    pub(crate) fn of(spec: &InstanceSpec) -> Option<Self> {
        let view = View::of(&spec.root)?;
        let mut words: Vec<String> = spec.argv.iter().skip(1).cloned().collect();
        if spec.workdir != spec.root.home {
            words.push(spec.workdir.clone());
        }
        Some(Self {
            view,
            program: spec.argv.first().cloned().unwrap_or_default(),
            words,
        })
    }

    /// After the guest's end with status `code` (xvisor's exit status):
    /// when it failed, one line per hint (those `--trace` found first).
    pub(crate) fn after_exit(&self, code: i32, traced: Vec<Hint>) {
        if code == 0 {
            return;
        }
        let mut hints = traced;
        for h in self.view.hints_for_words(self.words.iter().map(String::as_str)) {
            if !hints.iter().any(|seen| seen.volume == h.volume) {
                hints.push(h);
            }
        }
        for h in hints.iter().take(SHOWN) {
            eprintln!("xvisor: hint: {h}");
        }
    }

    /// After a start that failed because the program or the working
    /// directory is missing.
    pub(crate) fn after_start_failure(&self, e: &InstanceError) {
        let path = match e {
            InstanceError::NotFound { .. } => &self.program,
            InstanceError::Workdir { dir, error } if error.kind() == std::io::ErrorKind::NotFound => dir,
            _ => return,
        };
        if let Some(h) = self.view.hint(path, false) {
            eprintln!("xvisor: hint: {h}");
        }
    }
}
