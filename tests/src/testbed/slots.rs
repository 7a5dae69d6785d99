//! Slot allocation across test processes: one lock file per slot, held for the bed's lifetime.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::layout::{BED_ROOT, MAX_SLOT};

fn lock_path(slot: u8) -> PathBuf {
    Path::new(BED_ROOT).join(format!("slot-{slot}.lock"))
}

pub(super) fn lock_slot(slot: u8) -> Result<Option<File>> {
    let path = lock_path(slot);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            write!(file, "{}", std::process::id())?;
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

pub(super) fn slot_busy(slot: u8) -> anyhow::Error {
    let pid = fs::read_to_string(lock_path(slot)).unwrap_or_default();
    anyhow!(
        "test bed slot {slot} is in use by another process (pid {}, lock {})",
        pid.trim(),
        lock_path(slot).display()
    )
}

pub(super) fn allocate_slot() -> Result<(u8, File)> {
    for slot in 1..=MAX_SLOT {
        if let Some(lock) = lock_slot(slot)? {
            return Ok((slot, lock));
        }
    }
    bail!("all test bed slots 1..={MAX_SLOT} are in use")
}
