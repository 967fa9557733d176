//! Encrypting a long byte stream (backups) as a sequence of envelopes.
//!
//! ```text
//! stream := chunk*    chunk := len u32 LE | envelope(plaintext[<= CHUNK_BYTES])
//! ```
//! Chunk `i` is sealed with associated data `stream_ad | i | last`, so chunks cannot be
//! reordered, dropped, or moved between streams, and a stream cut after any chunk but
//! its last is detected (the last chunk says so, and only it).

use std::io::{self, Read, Write};

use crate::{CryptoError, Keyset};

pub const CHUNK_BYTES: usize = 1 << 20;

fn chunk_ad(stream_ad: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut ad = stream_ad.to_vec();
    ad.extend_from_slice(&index.to_le_bytes());
    ad.push(u8::from(last));
    ad
}

fn to_io(e: CryptoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A `Write` that seals what it is given in chunks; call [`SealedWriter::finish`].
pub struct SealedWriter<'k, W: Write> {
    out: W,
    keyset: &'k Keyset,
    ad: Vec<u8>,
    buf: Vec<u8>,
    index: u64,
}

impl<'k, W: Write> SealedWriter<'k, W> {
    pub fn new(out: W, keyset: &'k Keyset, stream_ad: &[u8]) -> Self {
        Self {
            out,
            keyset,
            ad: stream_ad.to_vec(),
            buf: Vec::with_capacity(CHUNK_BYTES),
            index: 0,
        }
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let ct = self
            .keyset
            .seal(&chunk_ad(&self.ad, self.index, last), &self.buf)
            .map_err(to_io)?;
        let len = u32::try_from(ct.len()).map_err(|_| io::Error::other("chunk too large"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&ct)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk (possibly empty) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealedWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_BYTES {
            self.emit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A `Read` over a sealed stream: every byte it returns was authenticated. A bad,
/// reordered or missing chunk is an `InvalidData` error naming `what` and the chunk.
pub struct OpenedReader<'k, R: Read> {
    input: R,
    keyset: &'k Keyset,
    ad: Vec<u8>,
    what: String,
    buf: Vec<u8>,
    pos: usize,
    index: u64,
    done: bool,
}

impl<'k, R: Read> OpenedReader<'k, R> {
    pub fn new(input: R, keyset: &'k Keyset, stream_ad: &[u8], what: &str) -> Self {
        Self {
            input,
            keyset,
            ad: stream_ad.to_vec(),
            what: what.to_owned(),
            buf: Vec::new(),
            pos: 0,
            index: 0,
            done: false,
        }
    }

    fn bad(&self, reason: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is corrupt or was tampered with at chunk {}: {reason}",
                self.what, self.index
            ),
        )
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut len = [0u8; 4];
        if let Err(e) = self.input.read_exact(&mut len) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                self.bad("the stream ends before its last chunk (truncated)")
            } else {
                e
            });
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > CHUNK_BYTES + crate::envelope::OVERHEAD {
            return Err(self.bad("chunk length out of range"));
        }
        let mut ct = vec![0u8; len];
        self.input
            .read_exact(&mut ct)
            .map_err(|_| self.bad("the stream ends inside a chunk (truncated)"))?;
        let what = format!("{} chunk {}", self.what, self.index);
        // A chunk opens under exactly one of the two ADs: that says whether it is last.
        let (plain, last) =
            match self
                .keyset
                .open(&chunk_ad(&self.ad, self.index, false), &ct, &what)
            {
                Ok(p) => (p, false),
                Err(_) => match self
                    .keyset
                    .open(&chunk_ad(&self.ad, self.index, true), &ct, &what)
                {
                    Ok(p) => (p, true),
                    Err(e) => return Err(self.bad(&e.to_string())),
                },
            };
        self.buf = plain;
        self.pos = 0;
        self.index += 1;
        if last {
            self.done = true;
            let mut probe = [0u8; 1];
            if self.input.read(&mut probe)? != 0 {
                return Err(self.bad("data after the last chunk"));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for OpenedReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal_all(ks: &Keyset, data: &[u8]) -> Vec<u8> {
        let mut w = SealedWriter::new(Vec::new(), ks, b"s1");
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn open_all(ks: &Keyset, sealed: &[u8], ad: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpenedReader::new(sealed, ks, ad, "backup.mbk").read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn multi_chunk_round_trip_and_every_cut_is_detected() {
        let ks = Keyset::generate("system", 0).unwrap();
        let data: Vec<u8> = (0..CHUNK_BYTES * 2 + 77).map(|i| (i % 251) as u8).collect();
        let sealed = seal_all(&ks, &data);
        assert_eq!(open_all(&ks, &sealed, b"s1").unwrap(), data);
        assert!(
            open_all(&ks, &sealed, b"s2").is_err(),
            "another stream's AD"
        );
        // Cut at every chunk boundary and inside chunks.
        let first = 4 + u32::from_le_bytes(sealed[..4].try_into().unwrap()) as usize;
        for cut in [0, 3, first, first + 10, sealed.len() - 1] {
            let err = open_all(&ks, &sealed[..cut], b"s1").unwrap_err();
            assert!(err.to_string().contains("backup.mbk"), "{err}");
        }
        let mut extra = sealed.clone();
        extra.push(0);
        assert!(open_all(&ks, &extra, b"s1").is_err());
    }

    proptest! {
        #[test]
        fn a_flipped_byte_is_an_error(data in proptest::collection::vec(any::<u8>(), 0..3000),
                                      pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let ks = Keyset::generate("system", 0).unwrap();
            let mut sealed = seal_all(&ks, &data);
            prop_assert_eq!(open_all(&ks, &sealed, b"s1").unwrap(), data);
            let i = pos.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(open_all(&ks, &sealed, b"s1").is_err());
        }
    }
}
