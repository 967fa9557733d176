//! The optional continuous copy of every record line ([`Mirror`]). A mirror is written
//! after the log is durable and never fails an append: failures are counted and logged
//! at WARN (the first of a run, then every 1000th), recovery at INFO.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::syslog::SyslogSender;

/// Where to copy records as they are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mirror {
    /// Append every record line to this file (opened `O_APPEND`, not fsynced), e.g. on
    /// a mount that lives on another host. [`crate::verify_against_mirror`] checks it.
    File(PathBuf),
    /// Send every record as an RFC 5424 message over a unix datagram socket (usually
    /// `/dev/log`), for a syslog daemon that forwards off the host.
    Syslog { socket: PathBuf },
}

impl Mirror {
    /// The usual syslog socket.
    pub fn default_syslog() -> Mirror {
        Mirror::Syslog {
            socket: PathBuf::from("/dev/log"),
        }
    }
}

enum Target {
    File {
        path: PathBuf,
        file: Option<File>,
    },
    Syslog {
        socket: PathBuf,
        sender: SyslogSender,
    },
}

/// Writes groups of record lines to the configured mirror.
pub(crate) struct MirrorWriter {
    target: Target,
    failures: Arc<AtomicU64>,
    failing_run: u64,
}

impl MirrorWriter {
    pub fn new(mirror: Mirror, failures: Arc<AtomicU64>) -> Self {
        let target = match mirror {
            Mirror::File(path) => Target::File { path, file: None },
            Mirror::Syslog { socket } => Target::Syslog {
                socket,
                sender: SyslogSender::new(),
            },
        };
        MirrorWriter {
            target,
            failures,
            failing_run: 0,
        }
    }

    /// Copies `lines` (complete, newline-terminated record lines; `times[i]` is line
    /// i's `time_ms`). Never fails: problems are counted and logged.
    pub fn write_group(&mut self, lines: &[u8], times: &[i64]) {
        let result = match &mut self.target {
            Target::File { path, file } => write_file(path, file, lines),
            Target::Syslog { socket, sender } => {
                let mut result = Ok(());
                for (line, &t) in lines
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .zip(times)
                {
                    if let Err(e) = sender.send(socket, t, line) {
                        result = Err(e);
                        break;
                    }
                }
                result
            }
        };
        match result {
            Ok(()) => {
                if self.failing_run > 0 {
                    tracing::info!(failed_groups = self.failing_run, "audit mirror recovered");
                    self.failing_run = 0;
                }
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if self.failing_run.is_multiple_of(1000) {
                    tracing::warn!(error = %e, failed_groups = self.failing_run + 1,
                        "audit mirror write failed; the log itself is intact");
                }
                self.failing_run += 1;
            }
        }
    }
}

fn write_file(path: &Path, file: &mut Option<File>, lines: &[u8]) -> io::Result<()> {
    let f = match file {
        Some(f) => f,
        None => file.insert(open_mirror_file(path)?),
    };
    let r = f.write_all(lines);
    if r.is_err() {
        // Reopen next time: the mount may come back, and the reopen terminates any
        // line this write left unfinished.
        *file = None;
    }
    r
}

/// Opens the mirror for appending. If it ends in an unfinished line (an earlier write
/// failed halfway), terminates that line so the next record starts on its own.
fn open_mirror_file(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .read(true)
        .mode(0o600)
        .open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
        }
    }
    Ok(f)
}
