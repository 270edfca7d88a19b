//! The master key's file: where the key is found (the environment first, else `master.key` in
//! the data dir, created mode 0600 in a 0700 folder on the first start), the refusal of a key
//! file that others may read, and the pending file of a rotation (`master.key.new`), which the
//! next start installs when the rotation committed but could not swap the files.

use std::path::Path;

use anyhow::{bail, Context};

use crate::server::keys::envelope::MasterKey;

/// Name of the key file created in the data dir when no key is configured.
pub const KEY_FILE_NAME: &str = "master.key";
/// Name of the pending new key file during a rotation.
pub const NEW_KEY_FILE_NAME: &str = "master.key.new";

/// Where the master key came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    ExistingFile(std::path::PathBuf),
    NewFile(std::path::PathBuf),
}

/// Finds the master key: `from_env` (the value of `LOOPSTACK_SECRETS_MASTER_KEY`) first, then
/// the key file in the data dir. A new key file is created only when `may_create` (the
/// database holds no encrypted data yet).
pub fn load_master_key(
    from_env: Option<&str>,
    data_dir: &Path,
    may_create: bool,
) -> anyhow::Result<(MasterKey, KeySource)> {
    if let Some(text) = from_env {
        if !text.trim().is_empty() {
            let key = MasterKey::from_base64(text).context("LOOPSTACK_SECRETS_MASTER_KEY is invalid")?;
            return Ok((key, KeySource::Environment));
        }
    }
    let path = data_dir.join(KEY_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_shared_key_file(&path)?;
            let key =
                MasterKey::from_base64(&text).with_context(|| format!("the key file {} is invalid", path.display()))?;
            Ok((key, KeySource::ExistingFile(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if !may_create {
                bail!(
                    "the master key is missing: the database holds encrypted data but neither \
                     LOOPSTACK_SECRETS_MASTER_KEY is set nor {} exists. Restore the key; a new one \
                     would not open the existing secrets",
                    path.display()
                );
            }
            let key = MasterKey::generate();
            write_key_file(&path, &key)?;
            Ok((key, KeySource::NewFile(path)))
        }
        Err(err) => Err(err).with_context(|| format!("failed to read the key file {}", path.display())),
    }
}

/// Refuses a key file that the group or others may read or write: anyone who can read it can
/// read every secret.
fn refuse_shared_key_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        std::fs::metadata(path).with_context(|| format!("failed to inspect {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "the key file {} is open to group or others (mode {:o}); anyone who can read it can read every secret. \
             Restrict it with: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

/// Creates `dir` (and missing parents) readable by its owner only (mode 0700); an existing
/// folder is left as it is.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// Writes a key file readable by its owner only (mode 0600), refusing to overwrite one.
pub fn write_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create the key file {}", path.display()))?;
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all().context("failed to sync the key file")?;
    Ok(())
}

/// Atomically puts the pending new key file in place of the current one.
pub fn install_new_key_file(new_file: &Path, key_file: &Path) -> anyhow::Result<()> {
    std::fs::rename(new_file, key_file)
        .with_context(|| format!("failed to move {} to {}", new_file.display(), key_file.display()))?;
    if let Some(dir) = key_file.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// A rotation that committed but did not get to replace the key file leaves the new key in
/// `master.key.new`: when that key opens the database, it is installed and used.
pub fn finish_interrupted_rotation(
    data_dir: &std::path::Path,
    key_file: &std::path::Path,
    check: &[u8],
) -> Option<MasterKey> {
    let pending = data_dir.join(NEW_KEY_FILE_NAME);
    let key = MasterKey::from_base64(&std::fs::read_to_string(&pending).ok()?).ok()?;
    if !key.verifies(check) {
        return None;
    }
    install_new_key_file(&pending, key_file).ok()?;
    tracing::warn!("finished an interrupted master key rotation: installed {}", key_file.display());
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        write_key_file(&path, &MasterKey::generate()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_key_file(&path, &MasterKey::generate()).is_err(), "an existing key file is never overwritten");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        write_key_file(&path, &MasterKey::generate()).unwrap();
        assert!(load_master_key(None, dir.path(), false).is_ok());
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_master_key(None, dir.path(), false).err().expect("a shared key file is refused").to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn a_new_data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        write_key_file(&data.join(KEY_FILE_NAME), &MasterKey::generate()).unwrap();
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
