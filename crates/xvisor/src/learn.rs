//! `run --learn FILE`: the learned policy, written once the run has ended.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use xvisor_confine::wall;
use xvisor_kernel::learn::{self, Learner, RenderOptions};

/// Where the learned policy goes, opened before the instance starts: the
/// supervisor, confined once the guest runs, may no longer create files.
pub struct Target {
    file: std::fs::File,
    name: String,
    command: Vec<String>,
    port_rules: bool,
    started: Instant,
}

impl Target {
    pub fn open(path: &Path) -> Result<Self> {
        let crate::report::Output { file, name } = crate::report::create(path, "--learn")?;
        Ok(Self {
            file,
            name,
            command: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
            port_rules: xvisor_sys::landlock::abi_version()
                .is_ok_and(|abi| abi >= xvisor_trap::policy_file::LANDLOCK_NET_ABI),
            started: Instant::now(),
        })
    }

    /// Writes the policy `learner` holds.
    pub fn write(mut self, learner: &Learner) -> Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut command = self.command.clone();
        if let Some(first) = command.first_mut() {
            // The program as it was called, whatever directory it is in.
            if let Some(base) = Path::new(first.as_str()).file_name() {
                *first = base.to_string_lossy().into_owned();
            }
        }
        let header = vec![
            format!(
                "Learned by xvisor from one run, {}:",
                xvisor_sys::clock::Utc::from_epoch_seconds(now).readable()
            ),
            format!("  {}", learn::shell_words(&command)),
            "Each rule is something that run used, with the programs that used it;".to_string(),
            "the same run passes under 'xvisor run --policy' with this file.".to_string(),
            String::new(),
        ];
        let options = RenderOptions {
            always_read_write: wall::ALWAYS_READ_WRITE.iter().map(|s| s.to_string()).collect(),
            always_read: wall::ALWAYS_READ.iter().map(|s| s.to_string()).collect(),
            always_exec: wall::DYNAMIC_LOADERS.iter().map(|s| s.to_string()).collect(),
            system_trees: learn::SYSTEM_TREES.iter().map(|s| s.to_string()).collect(),
            collapse_at: learn::COLLAPSE_AT,
            port_rules: self.port_rules,
        };
        let text = learner.render(&header, &options);
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| anyhow!("--learn {}: {e}", self.name))?;
        eprintln!(
            "xvisor: learned a policy from {} calls in {:.2}s: {}",
            learner.calls,
            self.started.elapsed().as_secs_f64(),
            self.name
        );
        Ok(())
    }
}
