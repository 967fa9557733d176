//! RFC 5424 syslog messages over a unix datagram socket, for the `Syslog` mirror.
//!
//! One datagram per record: `<86>1 TIMESTAMP HOST minim PID audit - LINE`, where 86 is
//! facility authpriv (10) at severity info (6), TIMESTAMP is the record's `time_ms` in
//! UTC with milliseconds, and LINE is the record's JSON line (without newline).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use chrono::{DateTime, SecondsFormat};

/// `<PRI>` for facility authpriv (10), severity informational (6).
const PRI: u8 = 10 * 8 + 6;

/// Sends one message per record to a syslog daemon's datagram socket.
pub(crate) struct SyslogSender {
    socket: Option<UnixDatagram>,
    hostname: String,
    pid: u32,
}

impl SyslogSender {
    pub fn new() -> Self {
        SyslogSender {
            socket: None,
            hostname: hostname(),
            pid: std::process::id(),
        }
    }

    /// Sends `line` stamped with `time_ms` to the socket at `path`.
    pub fn send(&mut self, path: &Path, time_ms: i64, line: &[u8]) -> io::Result<()> {
        let msg = format_message(&self.hostname, self.pid, time_ms, line);
        let sock = match &self.socket {
            Some(s) => s,
            None => self.socket.insert(UnixDatagram::unbound()?),
        };
        match sock.send_to(&msg, path) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.socket = None;
                Err(e)
            }
        }
    }
}

/// The full RFC 5424 message for one record.
pub(crate) fn format_message(hostname: &str, pid: u32, time_ms: i64, line: &[u8]) -> Vec<u8> {
    let ts = DateTime::from_timestamp_millis(time_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".to_owned());
    let header = format!("<{PRI}>1 {ts} {hostname} minim {pid} audit - ");
    let mut msg = Vec::with_capacity(header.len() + line.len());
    msg.extend_from_slice(header.as_bytes());
    msg.extend_from_slice(line);
    msg
}

/// The host name as RFC 5424 allows it (printable ASCII, no spaces, at most 255
/// characters), or the NILVALUE `-`.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "-".into();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = buf[..len]
        .iter()
        .take(255)
        .filter(|b| b.is_ascii_graphic())
        .map(|&b| char::from(b))
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc5424() {
        let m = format_message("host1", 42, 1_700_000_000_123, b"{\"seq\":1}");
        assert_eq!(
            String::from_utf8(m).expect("utf8"),
            "<86>1 2023-11-14T22:13:20.123Z host1 minim 42 audit - {\"seq\":1}"
        );
    }

    #[test]
    fn sends_datagrams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let mut s = SyslogSender::new();
        s.send(&path, 0, b"x").expect("send");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).expect("recv");
        let text = std::str::from_utf8(&buf[..n]).expect("utf8");
        assert!(text.starts_with("<86>1 1970-01-01T00:00:00.000Z "));
        assert!(text.ends_with(" audit - x"));
    }
}
