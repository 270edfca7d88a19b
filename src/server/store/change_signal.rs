//! SQLite: a change counter in a small file beside the database (`<database>-changes`). Every
//! process that commits events to the outbox (the server, and the CLI's `import`, `token
//! revoke`, ...) adds one to it after the commit and before it answers. A server reads it (one
//! `pread`) before it would read the outbox: while it is where it was when the last outbox check
//! began, no process has committed anything since, and the check is skipped.
//!
//! The counter is bumped under an exclusive `flock` (two processes may commit one after the
//! other and bump at once); it is read without one: a write of 8 aligned bytes is seen whole or
//! not at all, and any value other than the last one seen only costs a check.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub struct ChangeSignal {
    file: File,
}

impl ChangeSignal {
    /// Opens (creating, mode 0600) the counter of the database at `database`.
    pub fn open(database: &Path) -> std::io::Result<ChangeSignal> {
        // Kept as it is: other processes may be counting on it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path(database))?;
        Ok(ChangeSignal { file })
    }

    /// The counter now (a new file reads 0), or `None` when it cannot be read.
    pub fn read(&self) -> Option<u64> {
        let mut bytes = [0u8; 8];
        match self.file.read_at(&mut bytes, 0) {
            Ok(8) => Some(u64::from_le_bytes(bytes)),
            Ok(0) => Some(0),
            _ => None,
        }
    }

    /// Adds one, after a commit. On a failure (the disk is full) the caller says so in the log:
    /// a server sees that commit only with the next bump or after a restart.
    pub fn bump(&self) -> std::io::Result<()> {
        self.file.lock()?;
        let bumped = self.read().unwrap_or(0).wrapping_add(1);
        let written = self.file.write_all_at(&bumped.to_le_bytes(), 0);
        self.file.unlock()?;
        written
    }
}

/// `<database>-changes`, beside SQLite's own `-wal` and `-shm`.
fn path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-changes");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_process_sees_the_others_bumps() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("data.db");
        let (server, cli) = (ChangeSignal::open(&database).unwrap(), ChangeSignal::open(&database).unwrap());
        assert_eq!(server.read(), Some(0));
        cli.bump().unwrap();
        cli.bump().unwrap();
        assert_eq!(server.read(), Some(2));
        server.bump().unwrap();
        assert_eq!(cli.read(), Some(3));
        assert!(dir.path().join("data.db-changes").exists());
    }
}
