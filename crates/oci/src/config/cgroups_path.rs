//! `linux.cgroupsPath`, as a path below xvisor's own cgroup or, in the
//! form `SLICE:PREFIX:NAME`, as the scope systemd's driver makes.

use std::path::PathBuf;

use xvisor_confine::cgroup::ScopeRequest;
use xvisor_confine::systemd::valid_unit_name;

/// A `cgroupsPath` as a path below the cgroup xvisor runs in (`None`
/// for an empty one): `/a/b` and `a/b` alike, since xvisor never creates
/// cgroups elsewhere — on a host where it runs in the root cgroup, an
/// absolute path means what it means to runc. The systemd form
/// `SLICE:PREFIX:NAME` becomes the directory systemd would use,
/// `a.slice/a-b.slice/PREFIX-NAME.scope` for `a-b.slice`.
pub(super) fn cgroup_path(value: &str) -> Result<Option<PathBuf>, String> {
    const MAX_PATH: usize = 4096;
    if value.len() > MAX_PATH {
        return Err(format!("longer than {MAX_PATH} bytes"));
    }
    let relative = match value.split(':').collect::<Vec<_>>()[..] {
        [_] => value.trim_start_matches('/').to_string(),
        [slice, prefix, name] => {
            let mut path = expand_slice(slice)?;
            if !name.is_empty() {
                path.push_str(&if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}-{name}.scope")
                });
            }
            path
        }
        _ => return Err(format!("{value:?} is neither a path nor SLICE:PREFIX:NAME")),
    };
    let mut out = PathBuf::new();
    for part in relative.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.len() > 255 || part.chars().any(char::is_control) {
            return Err(format!("{value:?}: {part:?} is not a cgroup name"));
        }
        out.push(part);
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// A `cgroupsPath` of the form `SLICE:PREFIX:NAME` (already accepted by
/// [`cgroup_path`]) as the scope systemd's driver makes: `PREFIX-NAME.scope`
/// (`NAME` itself when `PREFIX` is empty) in `SLICE` (the manager's
/// default when empty). `None` for a plain path or a name that is not a
/// scope's.
pub(super) fn systemd_scope(value: &str) -> Option<ScopeRequest> {
    let [slice, prefix, name] = value.split(':').collect::<Vec<_>>()[..] else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    let unit = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    let slice = (!slice.is_empty()).then(|| slice.to_string());
    let valid = valid_unit_name(&unit, ".scope") && slice.as_deref().is_none_or(|s| valid_unit_name(s, ".slice"));
    valid.then_some(ScopeRequest { unit, slice })
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice/` (empty or `-.slice`:
/// the root).
fn expand_slice(slice: &str) -> Result<String, String> {
    // systemd's own limit on a unit name; it also bounds the expansion,
    // which repeats each prefix.
    const UNIT_NAME_MAX: usize = 255;
    if slice.is_empty() || slice == "-.slice" {
        return Ok(String::new());
    }
    if slice.len() > UNIT_NAME_MAX {
        return Err(format!(
            "a slice name of {} bytes is longer than systemd allows ({UNIT_NAME_MAX})",
            slice.len()
        ));
    }
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("{slice:?} is not a systemd slice name"));
    };
    if stem.is_empty() || stem.contains('/') || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("{slice:?} is not a systemd slice name"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push_str(&format!("{prefix}.slice/"));
    }
    Ok(path)
}
