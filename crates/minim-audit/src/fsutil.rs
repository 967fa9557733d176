//! File-system plumbing: the `flock` guard that serializes writers across processes,
//! directory fsync, and reading line-oriented files from the end.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::line::MAX_LINE_BYTES;

/// How much is read per step when scanning backwards.
const CHUNK_BYTES: usize = 64 * 1024;

/// An exclusive or shared `flock` held on a file until dropped. Locks belong to the
/// open file description, so two handles in one process exclude each other too.
pub(crate) struct FlockGuard<'a> {
    file: &'a File,
}

impl<'a> FlockGuard<'a> {
    pub fn exclusive(file: &'a File) -> io::Result<Self> {
        Self::lock(file, libc::LOCK_EX)
    }

    pub fn shared(file: &'a File) -> io::Result<Self> {
        Self::lock(file, libc::LOCK_SH)
    }

    fn lock(file: &'a File, op: libc::c_int) -> io::Result<Self> {
        loop {
            // SAFETY: flock on a file descriptor we own for the guard's lifetime.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(FlockGuard { file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for FlockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking cannot affect memory safety. Closing the file
        // would release the lock anyway, so a failure here has no lasting effect.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// fsyncs a directory so that entries created in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs the directory holding `path`.
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => sync_dir(p),
        None => sync_dir(Path::new(".")),
    }
}

/// The length of the prefix of the first `len` bytes of `file` that ends with a newline
/// (0 if there is none). Bytes after it are an unfinished line. Looks back at most
/// `MAX_LINE_BYTES + 1` bytes: a longer unterminated tail is reported as `None`, since
/// it cannot be a line this crate half-wrote.
pub(crate) fn complete_len(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut end = len;
    let floor = len.saturating_sub(MAX_LINE_BYTES as u64 + 1);
    let mut buf = vec![0u8; CHUNK_BYTES];
    while end > floor {
        let n = usize::try_from((end - floor).min(CHUNK_BYTES as u64)).unwrap_or(CHUNK_BYTES);
        let start = end - n as u64;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(Some(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(if floor == 0 { Some(0) } else { None })
}

/// One item read backwards: a line's bytes (no newline), or a line too long to be a
/// record.
pub(crate) enum RevItem {
    Line(Vec<u8>),
    Oversized,
}

/// Reads the newline-terminated lines in `[0, end)` of a file from last to first.
/// `end` must be 0 or just past a newline (see [`complete_len`]).
pub(crate) struct RevLines<'a> {
    file: &'a File,
    /// File offset of `buf[0]`.
    pos: u64,
    /// Unconsumed bytes `[pos, pos + buf.len())`; the last line ends at `buf.len()`.
    buf: Vec<u8>,
    /// While skipping an oversized line: its end offset is known, its start is not.
    skipping: bool,
    /// The first line has been returned.
    done: bool,
}

impl<'a> RevLines<'a> {
    pub fn new(file: &'a File, end: u64) -> Self {
        // Drop the final newline so that every remaining newline separates two lines.
        let pos = end.saturating_sub(1);
        RevLines {
            file,
            pos,
            buf: Vec::new(),
            skipping: false,
            done: end == 0,
        }
    }

    pub fn next_item(&mut self) -> io::Result<Option<RevItem>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(i) = memchr::memrchr(b'\n', &self.buf) {
                let bytes = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                if std::mem::take(&mut self.skipping) {
                    return Ok(Some(RevItem::Oversized));
                }
                return Ok(Some(RevItem::Line(bytes)));
            }
            if self.pos == 0 {
                self.done = true;
                if self.skipping {
                    return Ok(Some(RevItem::Oversized));
                }
                return Ok(Some(RevItem::Line(std::mem::take(&mut self.buf))));
            }
            if self.buf.len() > MAX_LINE_BYTES {
                self.buf.clear();
                self.skipping = true;
            }
            let n = usize::try_from(self.pos.min(CHUNK_BYTES as u64)).unwrap_or(CHUNK_BYTES);
            let start = self.pos - n as u64;
            let mut chunk = vec![0u8; n + self.buf.len()];
            self.file.read_exact_at(&mut chunk[..n], start)?;
            chunk[n..].copy_from_slice(&self.buf);
            self.buf = chunk;
            self.pos = start;
        }
    }
}

/// One item read forwards by [`FwdLines`].
pub(crate) enum FwdItem {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// Bytes at the end with no newline after them.
    Unterminated,
    /// A line longer than `MAX_LINE_BYTES`; reading stops there.
    Oversized,
}

/// Reads the first `len` bytes of a file line by line, never holding more than one
/// line of at most `MAX_LINE_BYTES`.
pub(crate) struct FwdLines {
    reader: io::BufReader<io::Take<File>>,
    stopped: bool,
}

impl FwdLines {
    pub fn new(file: File, len: u64) -> Self {
        FwdLines {
            reader: io::BufReader::with_capacity(CHUNK_BYTES, io::Read::take(file, len)),
            stopped: false,
        }
    }

    pub fn next_item(&mut self) -> io::Result<Option<FwdItem>> {
        use io::{BufRead, Read};
        if self.stopped {
            return Ok(None);
        }
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            return Ok(Some(FwdItem::Line(line)));
        }
        self.stopped = true;
        if line.len() > MAX_LINE_BYTES {
            Ok(Some(FwdItem::Oversized))
        } else {
            Ok(Some(FwdItem::Unterminated))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut t = tempfile::NamedTempFile::new().expect("tmp");
        t.write_all(bytes).expect("write");
        let f = t.reopen().expect("reopen");
        (t, f)
    }

    fn lines_back(bytes: &[u8]) -> Vec<String> {
        let (_t, f) = file_with(bytes);
        let end = complete_len(&f, bytes.len() as u64)
            .expect("io")
            .expect("some");
        let mut r = RevLines::new(&f, end);
        let mut out = Vec::new();
        while let Some(item) = r.next_item().expect("io") {
            match item {
                RevItem::Line(b) => out.push(String::from_utf8(b).expect("utf8")),
                RevItem::Oversized => out.push("<big>".into()),
            }
        }
        out
    }

    #[test]
    fn reads_lines_backwards_and_ignores_an_unfinished_tail() {
        assert_eq!(lines_back(b""), Vec::<String>::new());
        assert_eq!(lines_back(b"a\nbb\n\nccc\n"), vec!["ccc", "", "bb", "a"]);
        assert_eq!(lines_back(b"a\nbb\ntorn"), vec!["bb", "a"]);
        assert_eq!(lines_back(b"torn"), Vec::<String>::new());
        assert_eq!(lines_back(b"\n"), vec![""]);
        assert_eq!(lines_back(b"\n\nx\n"), vec!["x", "", ""]);
    }

    #[test]
    fn crosses_chunk_boundaries_and_flags_oversized_lines() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..5000 {
            let l = format!("line-{i}-{}", "x".repeat(i % 97));
            data.extend_from_slice(l.as_bytes());
            data.push(b'\n');
            want.push(l);
        }
        data.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES * 3));
        data.push(b'\n');
        data.extend_from_slice(b"last\n");
        want.push("<big>".into());
        want.push("last".into());
        want.reverse();
        assert_eq!(lines_back(&data), want);
    }

    #[test]
    fn reads_forwards_within_a_length() {
        let (t, f) = file_with(b"a\n\nbb\ncc");
        let mut r = FwdLines::new(f, 10);
        let mut got = Vec::new();
        while let Some(item) = r.next_item().expect("io") {
            got.push(match item {
                FwdItem::Line(l) => String::from_utf8(l).expect("utf8"),
                FwdItem::Unterminated => "<torn>".into(),
                FwdItem::Oversized => "<big>".into(),
            });
        }
        assert_eq!(got, vec!["a", "", "bb", "<torn>"]);
        let mut r = FwdLines::new(t.reopen().expect("reopen"), 7);
        let mut n = 0;
        while let Some(FwdItem::Line(_)) = r.next_item().expect("io") {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn an_overlong_unterminated_tail_is_not_a_torn_line() {
        let data = vec![b'z'; MAX_LINE_BYTES + 10];
        let (_t, f) = file_with(&data);
        assert_eq!(complete_len(&f, data.len() as u64).expect("io"), None);
    }
}
