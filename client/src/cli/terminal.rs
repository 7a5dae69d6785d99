//! The terminal the client runs on: raw mode for `exec -t` and single
//! keys for `status --watch`, each undone when dropped, and its size.

use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};

/// The terminal's settings before they were changed, put back when dropped.
pub struct RawMode(Termios);

impl RawMode {
    /// Raw mode: every byte, Ctrl-C's too, is read as it is typed and
    /// written as it is sent. `None` when stdin is no terminal.
    pub fn enter() -> Option<RawMode> {
        Self::with(termios::cfmakeraw)
    }

    /// Keys one at a time, unechoed, Ctrl-C as a byte; output as usual.
    pub fn keys() -> Option<RawMode> {
        Self::with(|t| {
            t.local_flags
                .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        })
    }

    fn with(change: impl FnOnce(&mut Termios)) -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut changed = saved.clone();
        change(&mut changed);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &changed).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.0);
    }
}

/// Rows and columns of the terminal on stdout (or stdin), if it is one.
pub fn window_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass,
        // which lives through the call; a descriptor that is no terminal
        // makes it fail with ENOTTY, changing nothing.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &raw mut ws) };
        if r == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}
