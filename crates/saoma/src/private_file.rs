//! Files that hold secrets (a device's seed, the master key, the demo's keys): readable
//! and writable by their owner only, whether new or overwritten.

use anyhow::Context;
use std::io::Write;

/// Writes `contents` to `path`, creating it or truncating it, with mode 0600 on Unix.
pub fn write(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let path = path.as_ref();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    // A file that existed keeps its mode on open: narrow it before the secret goes in.
    #[cfg(unix)]
    file.set_permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    file.write_all(contents.as_ref()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn new_and_overwritten_files_are_the_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write(&path, "secret").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret");
        let fresh = dir.path().join("demo.env");
        super::write(&fresh, "x").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
