//! `xvisor image`: import, list, inspect and remove images in the local
//! store (no daemon, no registry).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xvisor_image::store::{Progress, Quiet};
use xvisor_image::{show_bytes, ImageInfo, ImportOptions, Store};

use crate::units::parse_size;

pub const HELP: &str = "\
Manage images in xvisor's local store, without a daemon or a registry.

Usage: xvisor image COMMAND [OPTIONS]

Commands:
  import PATH [OPTIONS]    add an image from an OCI image layout (a directory
                           or a tar of one) or a docker archive ('docker save'
                           or 'podman save --format docker-archive' output);
                           PATH '-' reads the tar from standard input
  ls [--json]              list the images (sizes in KiB, MiB, GiB; bytes
                           with --json)
  inspect NAME [--json]    show an image: id, layers, size, and the defaults
                           it gives a run (Entrypoint, Cmd, Env, WorkingDir,
                           User)
  rm NAME...               remove images by name (or id); layers no image
                           uses any more are deleted

Names: as podman resolves short names. NAME:TAG is that name, else
localhost/NAME:TAG, else the only REGISTRY/.../NAME:TAG there is; a name with
its registry is only itself (docker.io/library/busybox is busybox, as Docker
shows it). Without a TAG: 'latest', or, when no such image has 'latest', the
name's only tag. A name that could be several images is refused, listing them.

Options of import:
      --name NAME[:TAG]       the image's name (default: the one the archive
                              gives, else the file's name; TAG defaults to
                              'latest')
      --max-layer-size SIZE   refuse a layer that expands past SIZE
                              (default 16G); from standard input, the whole
                              archive too
      --max-ratio N           refuse a compressed layer that expands more than
                              N times its size once past 256M (default 200;
                              0: no check)
  -q, --quiet                 no progress bar

Every blob's sha256 digest is checked while it is read, each layer is unpacked
once (later imports sharing it reuse it), and an archive with unsafe entries
(absolute paths, '..', writes through symlinks, hard links out of the layer,
device nodes), a digest mismatch, a truncated layer or a decompression bomb is
refused with nothing left behind. Layers compressed with zstd are not read yet.

The store is /var/lib/xvisor for root and $XDG_DATA_HOME/xvisor (by default
~/.local/share/xvisor) for other users; XVISOR_STORE=DIR puts it elsewhere.

Examples:
  docker save busybox:latest -o busybox.tar   # on a machine with docker
  xvisor image import busybox.tar
  podman save localhost/app:1 | xvisor image import -
  skopeo copy docker://alpine:3.20 oci:alpine:3.20 && xvisor image import alpine --name alpine:3.20
  xvisor image ls
  xvisor image inspect busybox
  xvisor run --image busybox                  # the image's default command
  xvisor run --image busybox -- sh -c 'echo hi; ls /'
  xvisor image rm busybox
";

/// Runs `xvisor image ARGS`; returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    match dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xvisor: {}", crate::message::plain(&format!("{e:#}")));
            125
        }
    }
}

fn dispatch(mut args: Vec<OsString>) -> Result<i32> {
    if args.is_empty() {
        eprint!("{HELP}");
        return Ok(125);
    }
    let command = args.remove(0);
    match command.to_str().unwrap_or("") {
        "import" | "load" => import(args),
        "ls" | "list" => list(args),
        "inspect" => inspect(args),
        "rm" | "remove" => remove(args),
        "help" | "-h" | "--help" => {
            out!("{HELP}");
            Ok(0)
        }
        other => bail!("image: unknown command {other:?} (commands: import, ls, inspect, rm)"),
    }
}

fn text(value: OsString, what: &str) -> Result<String> {
    value
        .into_string()
        .map_err(|v| anyhow::anyhow!("{what}: not valid UTF-8: {v:?}"))
}

fn import(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut path: Option<PathBuf> = None;
    let mut options = ImportOptions::default();
    let mut quiet = false;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                out!("{HELP}");
                return Ok(0);
            }
            Long("name") => options.name = Some(text(p.value()?, "--name")?),
            Long("max-layer-size") => {
                options.limits.max_size = parse_size(&text(p.value()?, "--max-layer-size")?)
                    .map_err(|e| anyhow::anyhow!("--max-layer-size {e}"))?
            }
            Long("max-ratio") => {
                let v = text(p.value()?, "--max-ratio")?;
                options.limits.max_ratio = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--max-ratio {v:?}: give a whole number (0: no check)"))?;
            }
            Short('q') | Long("quiet") => quiet = true,
            Value(v) if path.is_none() => path = Some(PathBuf::from(v)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(path) = path else {
        bail!("image import: no PATH given (e.g. xvisor image import busybox.tar)");
    };
    let store = Store::open_default()?;
    let show_bar = !quiet && xvisor_sys::tty::is_terminal(xvisor_sys::event::standard(2));
    let mut bar = Bar::new(show_bar);
    let mut quiet_progress = Quiet;
    let progress: &mut dyn Progress = if show_bar { &mut bar } else { &mut quiet_progress };
    let done = if path.as_os_str() == "-" {
        if xvisor_sys::tty::is_terminal(xvisor_sys::event::standard(0)) {
            bail!("image import -: standard input is a terminal; pipe an archive in (podman save IMAGE | xvisor image import -)");
        }
        store.import_stream(&mut std::io::stdin().lock(), &options, progress)?
    } else {
        store.import(&path, &options, progress)?
    };
    let reused = if done.reused > 0 {
        format!(", {} already in the store", done.reused)
    } else {
        String::new()
    };
    outln!(
        "Imported {} ({}, {} layer{}{reused}, {})",
        done.reference,
        done.id.short(),
        done.layers,
        if done.layers == 1 { "" } else { "s" },
        show_bytes(done.size)
    );
    Ok(0)
}

/// A progress bar on stderr for imports of more than a few megabytes.
struct Bar {
    enabled: bool,
    total: u64,
    done: u64,
    drawn: Option<Instant>,
}

impl Bar {
    const MIN_TOTAL: u64 = 16 << 20;

    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            total: 0,
            done: 0,
            drawn: None,
        }
    }

    fn draw(&mut self) {
        let width = 30u64;
        let filled = (self.done.min(self.total) * width / self.total.max(1)) as usize;
        let percent = self.done.min(self.total) * 100 / self.total.max(1);
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\rimporting [{}{}] {percent:3}% {}/{}\x1b[K",
            "#".repeat(filled),
            ".".repeat(width as usize - filled),
            show_bytes(self.done),
            show_bytes(self.total)
        );
        let _ = err.flush();
    }
}

impl Progress for Bar {
    fn begin(&mut self, total: u64) {
        self.total = total;
        self.enabled &= total >= Self::MIN_TOTAL;
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if !self.enabled {
            return;
        }
        if self.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
            self.drawn = Some(Instant::now());
            self.draw();
        }
    }

    fn end(&mut self) {
        if self.enabled && self.drawn.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        self.enabled = false;
    }
}

fn flags(args: Vec<OsString>, command: &str) -> Result<(Vec<String>, bool, bool)> {
    use lexopt::prelude::*;
    let mut json = false;
    let mut names = Vec::new();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok((names, json, true)),
            Long("json") => json = true,
            Value(v) => names.push(text(v, command)?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok((names, json, false))
}

fn list(args: Vec<OsString>) -> Result<i32> {
    let (names, json, help) = flags(args, "image ls")?;
    if help {
        out!("{HELP}");
        return Ok(0);
    }
    if let Some(extra) = names.first() {
        bail!("image ls: unexpected argument {extra:?}");
    }
    let images = Store::open_default()?.list_if_any()?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(0);
    }
    let width = images
        .iter()
        .flat_map(|i| i.names.iter().map(String::len))
        .max()
        .unwrap_or(0)
        .max(4);
    outln!("{:width$}  {:12}  {:>6}  {:>10}", "NAME", "ID", "LAYERS", "SIZE");
    for i in &images {
        for n in &i.names {
            outln!(
                "{n:width$}  {:12}  {:>6}  {:>10}",
                i.id.short(),
                i.layers.len(),
                show_bytes(i.size)
            );
        }
    }
    Ok(0)
}

fn inspect(args: Vec<OsString>) -> Result<i32> {
    let (names, json, help) = flags(args, "image inspect")?;
    if help {
        out!("{HELP}");
        return Ok(0);
    }
    let [name] = &names[..] else {
        bail!("image inspect: give one image NAME (see 'xvisor image ls')");
    };
    let info = Store::open_default()?.inspect(name)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        out!("{}", describe(&info));
    }
    Ok(0)
}

fn describe(i: &ImageInfo) -> String {
    let list = |v: &Option<Vec<String>>| serde_json::to_string(&v.clone().unwrap_or_default()).unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!("Names:       {}\n", i.names.join(", ")));
    out.push_str(&format!("Id:          {}\n", i.id));
    if let Some(m) = &i.manifest {
        out.push_str(&format!("Manifest:    {m}\n"));
    }
    let format = serde_json::to_value(i.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    out.push_str(&format!("Format:      {format}\n"));
    out.push_str(&format!("Platform:    {}/{}\n", i.os, i.architecture));
    out.push_str(&format!("Size:        {} unpacked\n", show_bytes(i.size)));
    out.push_str(&format!("Entrypoint:  {}\n", list(&i.config.entrypoint)));
    out.push_str(&format!("Cmd:         {}\n", list(&i.config.cmd)));
    out.push_str(&format!(
        "WorkingDir:  {}\n",
        i.config.working_dir.as_deref().unwrap_or("")
    ));
    out.push_str(&format!("User:        {}\n", i.config.user.as_deref().unwrap_or("")));
    out.push_str("Env:\n");
    for e in i.config.env.iter().flatten() {
        out.push_str(&format!("  {e}\n"));
    }
    out.push_str("Layers (bottom first):\n");
    for l in &i.layers {
        out.push_str(&format!(
            "  {}  {} unpacked, {} imported\n",
            l.diff_id,
            show_bytes(l.unpacked.bytes),
            show_bytes(l.size)
        ));
    }
    out
}

fn remove(args: Vec<OsString>) -> Result<i32> {
    let (names, _, help) = flags(args, "image rm")?;
    if help {
        out!("{HELP}");
        return Ok(0);
    }
    if names.is_empty() {
        bail!("image rm: give the NAME of an image (see 'xvisor image ls')");
    }
    let store = Store::open_default()?;
    for name in &names {
        let r = store.remove(name)?;
        for n in &r.untagged {
            outln!("Removed {n}");
        }
        if r.kept_in_use > 0 {
            eprintln!(
                "xvisor: {} layer(s) are kept while a running instance uses the store; the next 'xvisor image rm' or import deletes them",
                r.kept_in_use
            );
        }
    }
    Ok(0)
}
