//! Compiles the sandbox's pause program (`pause/pause.c`) into OUT_DIR, where
//! `pause.rs` embeds it, and names its image tag after its hash; and the
//! replacement's gate (`pause/gate.c`), which `gate.rs` embeds.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    // No libc, so the binary is a few KiB and runs in a FROM scratch image.
    let pause = compile(
        "pause/pause.c",
        "pause",
        &[
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-Os",
            "-s",
            // A build ID would change the hash, and so the tag, from build to build.
            "-Wl,--build-id=none",
        ],
    );
    let bin = std::fs::read(&pause).expect("the pause binary was just written");
    let hash = Sha256::digest(&bin);
    let tag: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=DOCKSTACK_PAUSE_TAG={tag}");

    // The gate runs in the application's image, whatever its libc: static,
    // with glibc's (it needs getifaddrs and execvp, not worth writing raw).
    compile("pause/gate.c", "gate", &["-static", "-O2", "-s"]);
}

/// Compiles the program `src` into OUT_DIR/`name` with `flags` (and every
/// warning an error); returns its path.
fn compile(src: &str, name: &str, flags: &[&str]) -> PathBuf {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(name);
    // cc's own compile step makes objects for a library; the program needs a
    // link of its own, so only the compiler (with its target flags) is taken.
    // The profile's own flags are pinned so that debug and release servers
    // embed the same bytes, and so agree on the pause image's tag.
    let mut cmd: Command = cc::Build::new()
        .cargo_metadata(false)
        .opt_level_str("s")
        .debug(false)
        .force_frame_pointer(false)
        .get_compiler()
        .to_command();
    cmd.args(flags)
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(src);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for {src}: {e}"));
    assert!(status.success(), "compiling {src} failed: {status}");
    out
}
