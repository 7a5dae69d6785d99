//! A program under a pseudo-terminal, as a person at a terminal runs it:
//! what it prints is collected as it comes, keys are written to it, and
//! the window can be resized (SIGWINCH, as a terminal emulator sends).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

/// A child whose stdin, stdout and stderr are a pseudo-terminal.
#[derive(Debug)]
pub struct PtyChild {
    master: File,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl PtyChild {
    /// Runs `cmd` on a new terminal of `rows` by `cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtyChild {
        let pty = openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty"));
        let child = cmd
            .stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave))
            .spawn()
            .expect("spawn under a pty");
        drop(pty.slave);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().expect("dup the pty master");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last holder of the terminal's other side is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyChild {
            master,
            child,
            output,
        }
    }

    /// Types `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// How many bytes were printed so far (a mark for [`PtyChild::since`]).
    pub fn mark(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// What was printed after `mark`.
    pub fn since(&self, mark: usize) -> String {
        let out = self.output.lock().unwrap();
        String::from_utf8_lossy(&out[mark.min(out.len())..]).into_owned()
    }

    /// Waits until what was printed after `mark` satisfies `f`.
    pub fn wait_for(&self, mark: usize, timeout: Duration, f: impl Fn(&str) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if f(&self.since(mark)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f(&self.since(mark))
    }

    /// Resizes the window and tells the program, as a terminal emulator does.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which
        // points at `ws`, alive through the call; the descriptor is our
        // open pty master.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH).expect("SIGWINCH");
    }

    /// Its exit status, if it ends within `timeout`; killed otherwise.
    pub fn wait(mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
