//! The locally built test images (busybox, dnsmasq), made once and serialised across processes, and the example's service images of `scripts/images`; nothing is pulled.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};

use super::layout::{BED_ROOT, DNSMASQ_IMAGE, TEST_IMAGE};
use super::tools::{docker, run, tool};

/// Builds (once, serialised across processes) [`TEST_IMAGE`]: a static
/// busybox `FROM scratch`, `sleep infinity` by default. Nothing is pulled.
pub fn ensure_test_image() -> Result<&'static str> {
    static BUILT: OnceLock<()> = OnceLock::new();
    if BUILT.get().is_none() {
        build_image_once(TEST_IMAGE, |ctx| {
            let busybox = static_busybox()?;
            let dest = ctx.join("busybox");
            fs::copy(&busybox, &dest).with_context(|| format!("copying {}", busybox.display()))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
            fs::write(
                ctx.join("Dockerfile"),
                "FROM scratch\n\
                 COPY busybox /bin/busybox\n\
                 RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                 CMD [\"/bin/sleep\", \"infinity\"]\n",
            )?;
            Ok(())
        })?;
        let _ = BUILT.set(());
    }
    Ok(TEST_IMAGE)
}

/// Builds (once) [`DNSMASQ_IMAGE`]: the busybox image plus the machine's
/// `/usr/sbin/dnsmasq` and `/usr/bin/pkill` with their shared libraries, serving
/// `/etc/dnsmasq.d/dockstack.dns` (empty in the image) as extra hosts.
pub fn ensure_dnsmasq_image() -> Result<&'static str> {
    static BUILT: OnceLock<()> = OnceLock::new();
    if BUILT.get().is_none() {
        let base = ensure_test_image()?;
        build_image_once(DNSMASQ_IMAGE, |ctx| {
            let dnsmasq = Path::new("/usr/sbin/dnsmasq");
            ensure!(
                dnsmasq.is_file(),
                "/usr/sbin/dnsmasq not found: apt-get install -y dnsmasq-base"
            );
            // busybox has no pkill, and the default DNS reload is `pkill -HUP -x dnsmasq`.
            let pkill = Path::new("/usr/bin/pkill");
            ensure!(
                pkill.exists(),
                "/usr/bin/pkill not found (the DNS image needs it for the reload): apt-get install -y procps"
            );
            let root = ctx.join("rootfs");
            let mut libs = BTreeSet::new();
            for bin in [dnsmasq, pkill] {
                copy_at(&root, bin)?;
                libs.extend(shared_libraries(bin)?);
            }
            for lib in libs {
                copy_at(&root, &lib)?;
            }
            let files = [
                (
                    "etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                ),
                ("etc/group", "root:x:0:\ndip:x:30:\nnogroup:x:65534:\n"),
                ("etc/dnsmasq.d/dockstack.dns", ""),
            ];
            for (path, text) in files {
                let dest = root.join(path);
                fs::create_dir_all(dest.parent().expect("has a parent"))?;
                fs::write(&dest, text)?;
            }
            for dir in ["var/run", "run", "var/lib/misc", "root"] {
                fs::create_dir_all(root.join(dir))?;
            }
            fs::write(
                ctx.join("Dockerfile"),
                format!(
                    "FROM {base}\n\
                     COPY rootfs/ /\n\
                     CMD [\"/usr/sbin/dnsmasq\", \"-k\", \"--no-resolv\", \"--no-hosts\", \
                     \"--addn-hosts=/etc/dnsmasq.d/dockstack.dns\", \"--log-facility=-\", \"--user=root\"]\n"
                ),
            )?;
            Ok(())
        })?;
        let _ = BUILT.set(());
    }
    Ok(DNSMASQ_IMAGE)
}

/// Builds (or finds up to date) the images `names` of
/// `examples/controlplane/images` with `scripts/images` (Debian's packages
/// from the machine's apt mirror, cached by their recipe); its output. The
/// script serialises itself across processes.
pub fn example_images(names: &[&str]) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/images");
    let out = Command::new(&script)
        .args(names)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "scripts/images {} failed (it needs root, debootstrap (scripts/install-deps installs \
         it), dockerd and apt's Debian mirror): status {:?}\n{}{}",
        names.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build_image_once(tag: &str, prepare: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    fs::create_dir_all(BED_ROOT)?;
    let lock_file = Path::new(BED_ROOT).join("images.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .with_context(|| format!("opening {}", lock_file.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_file.display()))?;
    if docker(&["image", "inspect", "--format", "{{.Id}}", tag]).is_ok() {
        return Ok(());
    }
    let safe: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let ctx = Path::new(BED_ROOT).join(format!("build-{safe}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&ctx);
    fs::create_dir_all(&ctx)?;
    let result = prepare(&ctx).and_then(|()| {
        docker(&[
            OsStr::new("build"),
            OsStr::new("--network=none"),
            OsStr::new("--label=dockstack.test=true"),
            OsStr::new("-t"),
            OsStr::new(tag),
            ctx.as_os_str(),
        ])
        .with_context(|| format!("building the test image {tag}"))
    });
    let _ = fs::remove_dir_all(&ctx);
    result.map(|_| ())
}

fn static_busybox() -> Result<PathBuf> {
    for path in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(path);
        if path.is_file() && is_static_elf(path)? {
            return Ok(path.to_path_buf());
        }
    }
    bail!(
        "no statically linked busybox at /bin/busybox (the test image is built FROM scratch): apt-get install -y busybox-static"
    )
}

/// Whether `path` is a 64-bit little-endian ELF without a program interpreter.
fn is_static_elf(path: &Path) -> Result<bool> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    if raw.len() < 64 || &raw[..4] != b"\x7fELF" || raw[4] != 2 || raw[5] != 1 {
        return Ok(false);
    }
    let u16_at = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]) as usize;
    let phoff = usize::try_from(u64::from_le_bytes(
        raw[0x20..0x28].try_into().expect("8 bytes"),
    ))?;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for k in 0..phnum {
        let at = phoff + k * phentsize;
        let Some(p_type) = raw.get(at..at + 4) else {
            return Ok(false);
        };
        if u32::from_le_bytes(p_type.try_into().expect("4 bytes")) == 3 {
            return Ok(false); // PT_INTERP: dynamically linked
        }
    }
    Ok(true)
}

/// The shared libraries and the loader of `bin`, from `ldd`.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = run(Command::new(tool("ldd")).arg(bin))?;
    let mut libs = Vec::new();
    for line in out.lines() {
        ensure!(
            !line.contains("not found"),
            "{}: a library is missing: {}",
            bin.display(),
            line.trim()
        );
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    ensure!(
        !libs.is_empty(),
        "ldd found no libraries of {}",
        bin.display()
    );
    Ok(libs)
}

/// Copies `path` (following links) to the same path under `root`.
fn copy_at(root: &Path, path: &Path) -> Result<()> {
    let dest = root.join(path.strip_prefix("/").unwrap_or(path));
    fs::create_dir_all(dest.parent().expect("has a parent"))?;
    fs::copy(path, &dest).with_context(|| format!("copying {}", path.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
    Ok(())
}
