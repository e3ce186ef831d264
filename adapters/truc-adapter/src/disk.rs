//! File moves the DMS can rely on: a file appears in a folder whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

/// fsyncs a folder, so a rename into it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `temp` and fsyncs it (the first half of an atomic write).
pub fn write_durable(temp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(temp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `bytes` at `path` atomically: a hidden temp file beside it, fsync, rename, fsync of the
/// folder. Readers see the old content or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_beside(path);
    write_durable(&temp, bytes)?;
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `dir/.name.part`: hidden and not `*.edxml`, so a DMS watching the folder ignores it.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

/// `dir/name`, or `dir/<seq>-name` when `name` is taken, so nothing the DMS has is overwritten.
pub fn free_name(dir: &Path, name: &str, seq: u64) -> PathBuf {
    let p = dir.join(name);
    if p.exists() {
        dir.join(format!("{seq}-{name}"))
    } else {
        p
    }
}

/// Keeps a name safe as one path segment (relay ids are UUIDs; this is a guard, not a format).
pub fn safe_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn atomic_write_leaves_no_part_file_and_never_overwrites_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.edxml");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            free_name(dir.path(), "a.edxml", 7),
            dir.path().join("7-a.edxml")
        );
        assert_eq!(
            free_name(dir.path(), "b.edxml", 7),
            dir.path().join("b.edxml")
        );
        assert_eq!(safe_segment("../x/y"), "_x_y");
    }
}
