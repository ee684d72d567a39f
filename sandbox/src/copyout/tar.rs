//! Copy-out from a tar stream (what Docker's archive API returns), read entry by entry as it
//! arrives: a file's data goes to the sink in chunks, skipped data is read past, and nothing
//! keeps the archive.

use std::io::Read;

use super::{FileSink, Gate, Skip};
use crate::{CopyOutLimits, SandboxError};

/// Bytes read at a time.
const CHUNK: usize = 64 << 10;

/// The error a reader returns once its archive passes the budget it was given (the tar of a
/// workspace of sparse files can be far larger than the workspace).
#[derive(Debug, thiserror::Error)]
#[error("the archive passed {0} bytes")]
pub struct OverBudget(pub u64);

fn over_budget(e: &std::io::Error) -> Option<u64> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<OverBudget>()).map(|b| b.0)
}

fn skip_for(kind: tar::EntryType) -> Option<Skip> {
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => None,
        tar::EntryType::Symlink => Some(Skip::Symlink),
        tar::EntryType::Link => Some(Skip::HardLink(2)),
        tar::EntryType::Fifo => Some(Skip::Fifo),
        tar::EntryType::Char | tar::EntryType::Block => Some(Skip::Device),
        _ => Some(Skip::NotRegular),
    }
}

/// Streams the regular files of a tar archive to `sink`, within `limits`; `strip` is the
/// leading folder the archive puts every path under (Docker names the archived folder itself,
/// e.g. `workspace/`). A reader that fails with [`OverBudget`] ends the copy-out early with
/// the entry it was reading reported as [`Skip::ArchiveOverBudget`].
pub fn read_tar(reader: impl Read, strip: &str, limits: &CopyOutLimits, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
    let mut gate = Gate::new(*limits);
    let mut last = String::from("(archive)");
    let mut begun = false;
    let result = entries(tar::Archive::new(reader), strip, &mut gate, sink, &mut last, &mut begun);
    let error = match result {
        Ok(()) => return Ok(()),
        Err(SandboxError::Io(e)) => e,
        Err(other) => return Err(other),
    };
    let Some(budget) = over_budget(&error) else {
        if begun {
            sink.abort(Skip::Unreadable(error.to_string()));
        }
        return Err(error.into());
    };
    match begun {
        true => sink.abort(Skip::ArchiveOverBudget(budget)),
        false => sink.skip(&last, Skip::ArchiveOverBudget(budget)),
    }
    Ok(())
}

/// Takes every entry; `last` is the path of the entry being read, `begun` whether its data
/// is being handed to the sink.
fn entries<R: Read>(
    mut archive: tar::Archive<R>,
    strip: &str,
    gate: &mut Gate,
    sink: &mut dyn FileSink,
    last: &mut String,
    begun: &mut bool,
) -> Result<(), SandboxError> {
    for entry in archive.entries()? {
        let mut entry = entry?;
        *last = entry_path(&entry, strip);
        take(&mut entry, last, gate, sink, begun)?;
    }
    Ok(())
}

/// The workspace-relative path of an entry, lossily (for reports).
fn entry_path<R: Read>(entry: &tar::Entry<'_, R>, strip: &str) -> String {
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let trimmed = raw.trim_end_matches('/');
    trimmed.strip_prefix(strip).map(|r| r.trim_start_matches('/')).unwrap_or(trimmed).to_owned()
}

fn take<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    rel: &str,
    gate: &mut Gate,
    sink: &mut dyn FileSink,
    begun: &mut bool,
) -> Result<(), SandboxError> {
    if rel.is_empty() || rel == "." {
        return Ok(());
    }
    let refused = {
        let raw = entry.path_bytes();
        match std::str::from_utf8(&raw) {
            Ok(_) => crate::names::refusal(rel),
            Err(_) => crate::names::refusal_bytes(&raw),
        }
    };
    if let Some(refused) = refused {
        sink.skip(rel, Skip::Name(refused));
        return Ok(());
    }
    let kind = entry.header().entry_type();
    if kind.is_dir() {
        return Ok(());
    }
    if let Some(why) = skip_for(kind) {
        sink.skip(rel, why);
        return Ok(());
    }
    let size = entry.header().size()?;
    let executable = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
    if let Err(why) = gate.admit(size) {
        sink.skip(rel, why);
        return Ok(());
    }
    if !sink.begin(rel, executable, size)? {
        return Ok(());
    }
    *begun = true;
    let mut buf = vec![0u8; CHUNK.min(size as usize).max(1)];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = entry.read(&mut buf[..want])?;
        if n == 0 {
            *begun = false;
            sink.abort(Skip::Changed);
            return Ok(());
        }
        sink.write(&buf[..n])?;
        left -= n as u64;
    }
    *begun = false;
    sink.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copyout::Collector;
    use crate::names::NameRefusal;

    fn add(builder: &mut tar::Builder<Vec<u8>>, path: &[u8], kind: tar::EntryType, data: &[u8]) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }

    #[test]
    fn tar_streams_keep_regular_files_and_refuse_escapes() {
        let mut builder = tar::Builder::new(Vec::new());
        add(&mut builder, b"workspace/", tar::EntryType::Directory, b"");
        add(&mut builder, b"workspace/ok.txt", tar::EntryType::Regular, b"fine");
        add(&mut builder, b"workspace/../../etc/evil", tar::EntryType::Regular, b"evil");
        add(&mut builder, b"/etc/abs", tar::EntryType::Regular, b"evil");
        add(&mut builder, b"workspace/link", tar::EntryType::Symlink, b"");
        add(&mut builder, b"workspace/fifo", tar::EntryType::Fifo, b"");
        add(&mut builder, b"workspace/.git/config", tar::EntryType::Regular, b"[core]\n\tfsmonitor = id\n");
        add(&mut builder, b"workspace/sub/.GIT./hooks/x", tar::EntryType::Regular, b"x");
        add(&mut builder, b"workspace/a\x1b]0;pwned\x07", tar::EntryType::Regular, b"x");
        let bytes = builder.into_inner().unwrap();
        let mut sink = Collector::new();
        read_tar(&bytes[..], "workspace", &CopyOutLimits::default(), &mut sink).unwrap();
        let out = sink.finish();
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].path, "ok.txt");
        assert!(out.files[0].executable);
        let skipped: Vec<(&str, &Skip)> = out.skipped.iter().map(|(p, w)| (p.as_str(), w)).collect();
        assert_eq!(skipped.len(), 7, "{skipped:?}");
        assert!(skipped.contains(&(".git/config", &Skip::Name(NameRefusal::GitDir))));
        assert!(skipped.contains(&("sub/.GIT./hooks/x", &Skip::Name(NameRefusal::GitDir))));
        assert!(skipped.contains(&("a\x1b]0;pwned\x07", &Skip::Name(NameRefusal::ControlCharacter))));
    }

    /// A reader that fails with [`OverBudget`] past `budget` bytes.
    struct Budgeted<R>(R, u64);

    impl<R: Read> Read for Budgeted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 = self.1.checked_sub(n as u64).ok_or_else(|| std::io::Error::other(OverBudget(4096)))?;
            Ok(n)
        }
    }

    #[test]
    fn oversized_files_are_read_past_and_a_budget_ends_the_archive() {
        let mut builder = tar::Builder::new(Vec::new());
        add(&mut builder, b"workspace/a-big", tar::EntryType::Regular, &[0u8; 3000]);
        add(&mut builder, b"workspace/b-small", tar::EntryType::Regular, b"kept");
        add(&mut builder, b"workspace/c-huge", tar::EntryType::Regular, &[0u8; 8192]);
        add(&mut builder, b"workspace/d-after", tar::EntryType::Regular, b"never read");
        let bytes = builder.into_inner().unwrap();
        let limits = CopyOutLimits { max_file_bytes: 1000, ..Default::default() };
        let mut sink = Collector::new();
        read_tar(Budgeted(&bytes[..], 4096 + 1024), "workspace", &limits, &mut sink).unwrap();
        let out = sink.finish();
        assert_eq!(out.files, vec![crate::FileEntry { path: "b-small".into(), executable: true, data: b"kept".to_vec() }]);
        assert!(out.skipped.contains(&("a-big".to_owned(), Skip::TooLarge(1000))));
        assert!(out.skipped.iter().any(|(_, w)| *w == Skip::ArchiveOverBudget(4096)), "{:?}", out.skipped);
        assert!(!out.skipped.iter().any(|(p, _)| p == "d-after"));
    }
}
