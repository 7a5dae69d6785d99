//! Exit codes scripts can rely on.

use std::process::ExitCode;

/// Something the user asked for failed (a container, a host).
pub const FAILED: u8 = 1;
/// The command line or the environment file is wrong; nothing was done.
pub const INVALID: u8 = 2;
/// `plan`: the hosts differ from the file.
pub const PENDING: u8 = 3;
/// Another holds the change lock of a host the command would change;
/// nothing was done.
pub const LOCKED: u8 = 4;

/// Success, or [`FAILED`] when anything failed.
pub fn failed_if(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
