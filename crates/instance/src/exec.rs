//! A second process in a running instance: what a client asks for
//! ([`ExecRequest`]), and what the instance's init then starts
//! ([`ProcessSpec`]): the request completed with the instance's own
//! program's settings (its environment, working directory, user and
//! capabilities), the way an OCI runtime's `exec` inherits them from
//! `config.json`'s `process`.
//!
//! The request crosses two boundaries: from a client (the same user, or
//! root) to the supervisor over its control socket, and from the supervisor
//! to init over the control channel. Its encoding is length-prefixed
//! binary; decoding bounds every length and never panics.

use xvisor_confine::identity::{CapabilityCeiling, CapabilitySets, CapabilityViolation, IdMaps, IdRange};

use crate::spec::{InstanceSpec, StdinMode};

/// The largest encoded request (arguments and environment included).
pub const MAX_EXEC_REQUEST: usize = 128 * 1024;

/// The most descriptors a request passes beyond stdio (`--preserve-fds`).
pub const MAX_PRESERVED_FDS: u32 = 64;

/// What a client asks: the program, and what differs from the instance's
/// own program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecRequest {
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
    /// Variables set over the instance program's environment (or the whole
    /// environment, with `replace_env`).
    pub env: Vec<(String, String)>,
    pub replace_env: bool,
    pub workdir: Option<String>,
    /// `(uid, gid)` inside the instance.
    pub user: Option<(u32, u32)>,
    pub additional_gids: Option<Vec<u32>>,
    /// The whole capability sets (an OCI process.json's), instead of the
    /// instance program's.
    pub capabilities: Option<CapabilitySets>,
    /// Capabilities added to the granted set (`--cap`), and to the ambient
    /// set when they are inheritable.
    pub add_capabilities: Vec<u32>,
    /// `(resource, soft, hard)`; others are inherited from the instance.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub umask: Option<u32>,
    /// A new pseudo-terminal of the instance's devpts as the process's
    /// stdio; its master side goes to the client.
    pub tty: bool,
    /// Descriptors passed beyond stdio: 3 .. 3+N in the new process.
    pub preserve_fds: u32,
    /// Whether the process sets `no_new_privs` (an OCI process.json's
    /// `noNewPrivileges`, `--no-new-privs`); `None`: as the instance's
    /// program does.
    pub no_new_privileges: Option<bool>,
    /// The AppArmor profile an OCI process.json names; it must be the
    /// container's own (every process of the container runs under that).
    pub apparmor_profile: Option<String>,
}

/// A process as init starts it: everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Its capabilities inside the instance's user namespace.
    pub capabilities: CapabilitySets,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub umask: Option<u32>,
    /// Standard input is `/dev/null` (without a terminal).
    pub stdin_null: bool,
    /// It sets `no_new_privs` before its exec.
    pub no_new_privileges: bool,
    /// The instance's ceiling, which its init keeps for the processes it
    /// starts.
    pub capability_ceiling: CapabilityCeiling,
    /// The AppArmor profile the program is executed under.
    pub apparmor_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("no command given")]
    NoCommand,
    #[error("arguments and environment must not contain NUL bytes")]
    NulByte,
    #[error("the working directory {0:?} is not an absolute path")]
    RelativeWorkdir(String),
    #[error("capability {0} is not one this instance grants (an instance of `xvisor run` grants at most the 14 container engines grant by default)")]
    CapabilityNotGranted(u32),
    #[error("no_new_privs is always set in an instance of `xvisor run`")]
    NoNewPrivilegesRequired,
    #[error("ambient capability {0} is not both permitted and inheritable")]
    AmbientNotPermittedAndInheritable(u32),
    #[error("user {uid}:{gid}: a rootless instance maps only its own user {own_uid}:{own_gid}")]
    UnmappedUser {
        uid: u32,
        gid: u32,
        own_uid: u32,
        own_gid: u32,
    },
    #[error("supplementary groups need an instance started by root (a rootless instance maps one group)")]
    GroupsRootless,
    #[error("user {uid}:{gid} or one of its groups is not mapped by the container's linux.uidMappings/gidMappings")]
    NotInTheMaps { uid: u32, gid: u32 },
    #[error("--preserve-fds {0}: at most {MAX_PRESERVED_FDS}")]
    TooManyFds(u32),
    #[error("the request is larger than {MAX_EXEC_REQUEST} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("apparmorProfile {asked:?}: every process of this container runs under {own}")]
    OtherAppArmorProfile { asked: String, own: String },
}

impl ExecRequest {
    /// A program to run, and no argument or variable the kernel could not
    /// take (a NUL byte, an empty or `=`-holding name).
    fn check_words(&self) -> Result<(), ExecError> {
        if self.argv.is_empty() {
            return Err(ExecError::NoCommand);
        }
        let has_nul = |s: &str| s.contains('\0');
        if self.argv.iter().any(|a| has_nul(a))
            || self
                .env
                .iter()
                .any(|(k, v)| has_nul(k) || has_nul(v) || k.is_empty() || k.contains('='))
        {
            return Err(ExecError::NulByte);
        }
        Ok(())
    }

    /// The instance's main program `main` with this request's program,
    /// environment (over the instance's) and working directory: the first
    /// program of a pooled instance, which takes nothing else per run
    /// (identity, capabilities, limits and the rest stay the instance's).
    pub fn as_main(&self, mut main: ProcessSpec) -> Result<ProcessSpec, ExecError> {
        self.check_words()?;
        let has_nul = |s: &str| s.contains('\0');
        let others = self.replace_env
            || self.user.is_some()
            || self.additional_gids.is_some()
            || self.capabilities.is_some()
            || !self.add_capabilities.is_empty()
            || !self.rlimits.is_empty()
            || self.umask.is_some()
            || self.tty
            || self.preserve_fds != 0
            || self.no_new_privileges.is_some()
            || self.apparmor_profile.is_some();
        if others {
            return Err(ExecError::Malformed(
                "a pooled program takes its program, environment and working directory only",
            ));
        }
        if let Some(workdir) = &self.workdir {
            if !workdir.starts_with('/') || has_nul(workdir) {
                return Err(ExecError::RelativeWorkdir(workdir.clone()));
            }
            main.workdir = workdir.clone();
        }
        for (key, value) in &self.env {
            main.env.retain(|(k, _)| k != key);
            main.env.push((key.clone(), value.clone()));
        }
        main.argv = self.argv.clone();
        main.stdin_null = false;
        Ok(main)
    }

    /// The process to start in the instance `spec` describes. `rootless`:
    /// the instance maps a single uid and gid (its own program's).
    // Long: one setting of the process after another, each checked against the instance.
    pub fn resolve(&self, spec: &InstanceSpec, rootless: bool) -> Result<ProcessSpec, ExecError> {
        self.check_words()?;
        let has_nul = |s: &str| s.contains('\0');
        if self.preserve_fds > MAX_PRESERVED_FDS {
            return Err(ExecError::TooManyFds(self.preserve_fds));
        }
        let mut env = if self.replace_env { Vec::new() } else { spec.env.clone() };
        for (key, value) in &self.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        let workdir = self.workdir.clone().unwrap_or_else(|| spec.workdir.clone());
        if !workdir.starts_with('/') || has_nul(&workdir) {
            return Err(ExecError::RelativeWorkdir(workdir));
        }
        let (uid, gid) = self.user.unwrap_or((spec.uid, spec.gid));
        if rootless && (uid, gid) != (spec.uid, spec.gid) {
            return Err(ExecError::UnmappedUser {
                uid,
                gid,
                own_uid: spec.uid,
                own_gid: spec.gid,
            });
        }
        let additional_gids = match &self.additional_gids {
            Some(groups) => groups.clone(),
            None if self.user.is_some() => Vec::new(),
            None => spec.additional_gids.clone(),
        };
        if rootless && !additional_gids.is_empty() {
            return Err(ExecError::GroupsRootless);
        }
        if let Some(IdMaps::Given { uid: uids, gid: gids }) = &spec.id_maps {
            let mapped = IdRange::maps(uids, uid)
                && IdRange::maps(gids, gid)
                && additional_gids.iter().all(|g| IdRange::maps(gids, *g));
            if !mapped {
                return Err(ExecError::NotInTheMaps { uid, gid });
            }
        }
        let capabilities = self.capabilities_in(spec.capabilities.as_ref(), spec.capability_ceiling)?;
        let no_new_privileges = self.no_new_privileges.unwrap_or(spec.no_new_privileges);
        // Leaving it off needs CAP_SYS_ADMIN kept by init (to install the
        // filter without it), which only an OCI engine's instance keeps.
        if !no_new_privileges && spec.capability_ceiling == CapabilityCeiling::EnginesDefault {
            return Err(ExecError::NoNewPrivilegesRequired);
        }
        if let Some(asked) = &self.apparmor_profile {
            if spec.apparmor_profile.as_ref() != Some(asked) {
                return Err(ExecError::OtherAppArmorProfile {
                    asked: asked.clone(),
                    own: spec
                        .apparmor_profile
                        .as_ref()
                        .map_or_else(|| "no profile".to_string(), |p| format!("{p:?}")),
                });
            }
        }
        Ok(ProcessSpec {
            argv: self.argv.clone(),
            env,
            workdir,
            uid,
            gid,
            additional_gids,
            capabilities,
            rlimits: self.rlimits.clone(),
            umask: self.umask,
            stdin_null: false,
            no_new_privileges,
            capability_ceiling: spec.capability_ceiling,
            apparmor_profile: spec.apparmor_profile.clone(),
        })
    }

    /// The process's capabilities in an instance whose program has
    /// `instance` (`None`: the defaults): the request's own sets or the
    /// instance's, with `add_capabilities` granted, and ambient too when
    /// they are inheritable (the only way the kernel raises them, which
    /// lets a user other than root use them as well).
    fn capabilities_in(
        &self,
        instance: Option<&CapabilitySets>,
        ceiling: CapabilityCeiling,
    ) -> Result<CapabilitySets, ExecError> {
        let mut capabilities = match &self.capabilities {
            Some(sets) => sets.clone(),
            None => instance.cloned().unwrap_or_default(),
        };
        for &c in &self.add_capabilities {
            capabilities.granted.push(c);
            if capabilities.inheritable.contains(&c) {
                capabilities.ambient.push(c);
            }
        }
        let capabilities = capabilities.normalized();
        match capabilities.violation(ceiling) {
            None => Ok(capabilities),
            Some(CapabilityViolation::NotGranted(c)) => Err(ExecError::CapabilityNotGranted(c)),
            Some(CapabilityViolation::AmbientNotPermittedAndInheritable(c)) => {
                Err(ExecError::AmbientNotPermittedAndInheritable(c))
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(256));
        w.strings(&self.argv);
        w.pairs(&self.env);
        w.flag(self.replace_env);
        w.optional_string(self.workdir.as_deref());
        match self.user {
            Some((uid, gid)) => {
                w.flag(true);
                w.u32(uid);
                w.u32(gid);
            }
            None => w.flag(false),
        }
        w.optional_ids(self.additional_gids.as_deref());
        match &self.capabilities {
            Some(sets) => {
                w.flag(true);
                w.ids(&sets.granted);
                w.ids(&sets.inheritable);
                w.ids(&sets.ambient);
            }
            None => w.flag(false),
        }
        w.ids(&self.add_capabilities);
        w.u32(self.rlimits.len() as u32);
        for (resource, soft, hard) in &self.rlimits {
            w.u32(*resource);
            w.u64(*soft);
            w.u64(*hard);
        }
        match self.umask {
            Some(m) => {
                w.flag(true);
                w.u32(m);
            }
            None => w.flag(false),
        }
        w.flag(self.tty);
        w.u32(self.preserve_fds);
        match self.no_new_privileges {
            Some(set) => {
                w.flag(true);
                w.flag(set);
            }
            None => w.flag(false),
        }
        w.optional_string(self.apparmor_profile.as_deref());
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ExecError> {
        if bytes.len() > MAX_EXEC_REQUEST {
            return Err(ExecError::TooLarge);
        }
        let mut r = Reader(bytes);
        let argv = r.strings()?;
        let env = r.pairs()?;
        let replace_env = r.flag()?;
        let workdir = r.optional_string()?;
        let user = if r.flag()? { Some((r.u32()?, r.u32()?)) } else { None };
        let additional_gids = r.optional_ids()?;
        let capabilities = if r.flag()? {
            Some(CapabilitySets {
                granted: r.ids()?,
                inheritable: r.ids()?,
                ambient: r.ids()?,
            })
        } else {
            None
        };
        let add_capabilities = r.ids()?;
        let count = r.count(20)?;
        let mut rlimits = Vec::with_capacity(count);
        for _ in 0..count {
            rlimits.push((r.u32()?, r.u64()?, r.u64()?));
        }
        let umask = if r.flag()? { Some(r.u32()?) } else { None };
        let tty = r.flag()?;
        let preserve_fds = r.u32()?;
        let no_new_privileges = if r.flag()? { Some(r.flag()?) } else { None };
        let apparmor_profile = r.optional_string()?;
        if !r.0.is_empty() {
            return Err(ExecError::Malformed("trailing bytes"));
        }
        Ok(Self {
            argv,
            env,
            replace_env,
            workdir,
            user,
            additional_gids,
            capabilities,
            add_capabilities,
            rlimits,
            umask,
            tty,
            preserve_fds,
            no_new_privileges,
            apparmor_profile,
        })
    }
}

impl InstanceSpec {
    /// The instance's own program as a process to start.
    pub fn main_process(&self) -> ProcessSpec {
        ProcessSpec {
            argv: self.argv.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            uid: self.uid,
            gid: self.gid,
            additional_gids: self.additional_gids.clone(),
            capabilities: self.capabilities.clone().unwrap_or_default(),
            // Applied to the supervisor before the instance exists, and
            // inherited.
            rlimits: Vec::new(),
            umask: None,
            stdin_null: self.stdin == StdinMode::Null,
            no_new_privileges: self.no_new_privileges,
            capability_ceiling: self.capability_ceiling,
            apparmor_profile: self.apparmor_profile.clone(),
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn flag(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn strings(&mut self, list: &[String]) {
        self.u32(list.len() as u32);
        for s in list {
            self.string(s);
        }
    }
    fn pairs(&mut self, list: &[(String, String)]) {
        self.u32(list.len() as u32);
        for (k, v) in list {
            self.string(k);
            self.string(v);
        }
    }
    fn optional_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.flag(true);
                self.string(s);
            }
            None => self.flag(false),
        }
    }
    fn ids(&mut self, ids: &[u32]) {
        self.u32(ids.len() as u32);
        for id in ids {
            self.u32(*id);
        }
    }
    fn optional_ids(&mut self, ids: Option<&[u32]>) {
        match ids {
            Some(ids) => {
                self.flag(true);
                self.ids(ids);
            }
            None => self.flag(false),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ExecError> {
        if n > self.0.len() {
            return Err(ExecError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, ExecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ExecError> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | (hi << 32))
    }
    fn flag(&mut self) -> Result<bool, ExecError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ExecError::Malformed("bad flag")),
        }
    }
    /// A count of items each at least `item_bytes` long, checked against
    /// what is left (so no allocation is larger than the message).
    fn count(&mut self, item_bytes: usize) -> Result<usize, ExecError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes) > self.0.len() {
            return Err(ExecError::Malformed("count beyond the message"));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, ExecError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ExecError::Malformed("text is not UTF-8"))
    }
    fn strings(&mut self) -> Result<Vec<String>, ExecError> {
        let n = self.count(4)?;
        (0..n).map(|_| self.string()).collect()
    }
    fn pairs(&mut self) -> Result<Vec<(String, String)>, ExecError> {
        let n = self.count(8)?;
        (0..n).map(|_| Ok((self.string()?, self.string()?))).collect()
    }
    fn optional_string(&mut self) -> Result<Option<String>, ExecError> {
        if self.flag()? {
            Ok(Some(self.string()?))
        } else {
            Ok(None)
        }
    }
    fn ids(&mut self) -> Result<Vec<u32>, ExecError> {
        let n = self.count(4)?;
        (0..n).map(|_| self.u32()).collect()
    }
    fn optional_ids(&mut self) -> Result<Option<Vec<u32>>, ExecError> {
        if self.flag()? {
            Ok(Some(self.ids()?))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ExecRequest {
        ExecRequest {
            argv: vec!["sh".into(), "-c".into(), "echo é".into()],
            env: vec![("A".into(), "1".into()), ("B".into(), String::new())],
            replace_env: true,
            workdir: Some("/tmp".into()),
            user: Some((1000, 100)),
            additional_gids: Some(vec![4, 5]),
            capabilities: Some(CapabilitySets {
                granted: vec![0, 5],
                inheritable: vec![5, 10],
                ambient: vec![5],
            }),
            add_capabilities: vec![7],
            rlimits: vec![(7, 256, u64::MAX)],
            umask: Some(0o22),
            tty: true,
            preserve_fds: 2,
            no_new_privileges: Some(false),
            apparmor_profile: Some("containers-default-0.50.0".into()),
        }
    }

    fn run(argv: &str) -> ExecRequest {
        ExecRequest {
            argv: vec![argv.into()],
            ..ExecRequest::default()
        }
    }

    #[test]
    fn capabilities_come_from_the_instance_unless_given() {
        use xvisor_confine::identity::GUEST_ROOT_CAPABILITIES;
        use xvisor_sys::caps::cap;
        // The default: the engines' set, nothing inheritable or ambient.
        let p = run("true")
            .capabilities_in(None, CapabilityCeiling::EnginesDefault)
            .unwrap();
        assert_eq!(p, CapabilitySets::default());
        assert_eq!(p.granted, GUEST_ROOT_CAPABILITIES);
        let own = CapabilitySets {
            granted: vec![cap::KILL, cap::NET_BIND_SERVICE],
            inheritable: vec![cap::CHOWN, cap::NET_BIND_SERVICE],
            ambient: vec![cap::NET_BIND_SERVICE],
        };
        let p = run("true")
            .capabilities_in(Some(&own), CapabilityCeiling::EnginesDefault)
            .unwrap();
        assert_eq!(p, own);
        // --cap: granted, and ambient when inheritable.
        let mut r = run("true");
        r.add_capabilities = vec![cap::CHOWN, cap::SETUID];
        let p = r
            .capabilities_in(Some(&own), CapabilityCeiling::EnginesDefault)
            .unwrap();
        assert_eq!(
            p.granted,
            vec![cap::CHOWN, cap::KILL, cap::SETUID, cap::NET_BIND_SERVICE]
        );
        assert_eq!(p.ambient, vec![cap::CHOWN, cap::NET_BIND_SERVICE]);
        assert_eq!(p.inheritable, own.inheritable);
        // A process's own sets replace the instance's.
        let mut r = run("true");
        r.capabilities = Some(CapabilitySets::granting(vec![cap::KILL]));
        let p = r
            .capabilities_in(Some(&own), CapabilityCeiling::EnginesDefault)
            .unwrap();
        assert_eq!(p, CapabilitySets::granting(vec![cap::KILL]));
    }

    #[test]
    fn capabilities_beyond_xvisors_limits_are_refused() {
        let mut r = run("true");
        r.add_capabilities = vec![12];
        assert_eq!(
            r.capabilities_in(None, CapabilityCeiling::EnginesDefault),
            Err(ExecError::CapabilityNotGranted(12))
        );
        let mut r = run("true");
        r.capabilities = Some(CapabilitySets {
            granted: vec![5],
            inheritable: vec![],
            ambient: vec![5],
        });
        assert_eq!(
            r.capabilities_in(None, CapabilityCeiling::EnginesDefault),
            Err(ExecError::AmbientNotPermittedAndInheritable(5))
        );
        let mut r = run("true");
        r.capabilities = Some(CapabilitySets {
            granted: vec![5],
            inheritable: vec![19],
            ambient: vec![],
        });
        assert_eq!(
            r.capabilities_in(None, CapabilityCeiling::EnginesDefault),
            Err(ExecError::CapabilityNotGranted(19))
        );
        // An OCI engine's instance grants any capability (inside it).
        assert!(r.capabilities_in(None, CapabilityCeiling::Any).is_ok());
        let mut r = run("true");
        r.add_capabilities = vec![21];
        assert!(r
            .capabilities_in(None, CapabilityCeiling::Any)
            .unwrap()
            .granted
            .contains(&21));
    }

    #[test]
    fn requests_round_trip() {
        for r in [full(), ExecRequest::default()] {
            assert_eq!(ExecRequest::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn every_truncation_and_random_bytes_are_refused_without_panic() {
        let bytes = full().encode();
        for n in 0..bytes.len() {
            assert!(ExecRequest::decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let junk: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            if let Ok(r) = ExecRequest::decode(&junk) {
                assert_eq!(ExecRequest::decode(&r.encode()), Ok(r));
            }
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(ExecRequest::decode(&huge).is_err());
        assert_eq!(
            ExecRequest::decode(&vec![0; MAX_EXEC_REQUEST + 1]),
            Err(ExecError::TooLarge)
        );
    }
}
