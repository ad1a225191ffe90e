//! The data directory and the private files in it.
//!
//! A mistyped `--data` must not quietly become a new, empty Docket (an API key or a user
//! created there would be lost on the real server), so only `serve` and commands given
//! `--create` make a missing directory. What is made is private to the service account:
//! directories 0700, the SQLite database 0600 (SQLite gives its `-wal` and `-shm` files the
//! database file's mode).

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{bail, Context};

/// Checks that `dir` exists (or makes it when `create`).
pub fn require(dir: &Path, create: bool) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        bail!("--data {}: not a directory", dir.display());
    }
    if !create {
        bail!(
            "data directory {} does not exist (check --data, or give --create to make a new one)",
            dir.display()
        );
    }
    private_dir(dir)
}

/// Creates `dir` and missing parents, mode 0700 for what is created.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// Creates an empty file with mode 0600 unless it exists, so that whoever opens it next
/// (SQLite) keeps that mode; an existing file is left as the operator set it.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn missing_directories_are_refused_unless_created_private() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("a/data");
        let err = require(&dir, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("does not exist"), "{err}");
        assert!(!dir.exists());
        require(&dir, true)?;
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("docket.db");
        private_file(&db)?;
        assert_eq!(mode(&db), 0o600);
        std::fs::write(&db, b"kept")?;
        private_file(&db)?;
        assert_eq!(std::fs::read(&db)?, b"kept");
        Ok(())
    }
}
