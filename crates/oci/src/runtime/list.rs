//! `list` and `ps`: the containers under the state directory, and one
//! container's processes.

use xvisor_instance::registry::{Registry, Request};

use super::base::{status_of, Runtime};
use super::error::RuntimeError;
use crate::{ContainerState, Status};

impl Runtime<'_> {
    /// Every container whose state can be read, with its status.
    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>, RuntimeError> {
        let store = self.store();
        let mut rows = Vec::new();
        for id in store.ids()? {
            if let Ok(row) = status_of(&store, &id) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Host pids of the container's processes (none once it has stopped).
    pub fn processes(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let (_, status) = self.status(id)?;
        if status == Status::Stopped {
            return Ok(Vec::new());
        }
        container_pids(id)
    }
}

/// Host pids of instance `id`'s processes: its init and every descendant
/// (read from `/proc/PID/stat`, which any user may read, unlike the
/// namespace links of an undumpable init).
pub fn container_pids(id: &str) -> Result<Vec<i32>, RuntimeError> {
    let info = Registry::for_caller().ask(id, &Request::Info)?;
    let init: i32 = info
        .iter()
        .find_map(|l| l.strip_prefix("init_pid\t"))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| RuntimeError::Failed(format!("container {id:?} did not say its init pid")))?;
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map_err(RuntimeError::io("read /proc"))?
        .flatten()
    {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut pids = vec![init];
    let mut i = 0;
    while let Some(&parent) = pids.get(i) {
        pids.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}
