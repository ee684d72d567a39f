//! Output capture: keeps the first bytes of a stream up to a limit and drains the rest, so a
//! command that floods its output neither blocks on a full pipe nor fills plancd's memory.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{OutputStream, OutputTee};

/// The kept start of one output stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    limit: usize,
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Whether anything past the limit was dropped.
    pub truncated: bool,
}

impl Capture {
    /// An empty capture keeping up to `limit` bytes.
    pub fn new(limit: usize) -> Capture {
        Capture { limit, bytes: Vec::new(), truncated: false }
    }

    /// Keeps what fits of `chunk`, notes the rest as dropped.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// Reads `reader` to its end into a capture of `limit` bytes, handing every chunk to `tee`
/// (with the stream it is) as it comes.
pub async fn drain(mut reader: impl AsyncRead + Unpin, limit: usize, tee: Option<(OutputTee, OutputStream)>) -> Capture {
    let mut capture = Capture::new(limit);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return capture,
            Ok(n) => {
                if let Some((tee, stream)) = &tee {
                    tee.write(*stream, &buf[..n]);
                }
                capture.push(&buf[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_keep_the_start_and_flag_the_rest() {
        let mut c = Capture::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        assert_eq!(c.bytes, b"abcde");
        assert!(c.truncated);
        c.push(b"");
        assert_eq!(c.bytes.len(), 5);
    }

    #[tokio::test]
    async fn draining_reads_to_the_end() {
        let data = vec![7u8; 300_000];
        let c = tokio::time::timeout(std::time::Duration::from_secs(10), drain(&data[..], 1000, None))
            .await
            .expect("draining a slice is quick");
        assert_eq!(c.bytes.len(), 1000);
        assert!(c.truncated);
    }

    #[tokio::test]
    async fn a_tee_sees_everything_even_past_the_limit() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        let tee = OutputTee::new(move |stream, chunk| {
            assert_eq!(stream, OutputStream::Stderr);
            into.lock().unwrap().extend_from_slice(chunk);
        });
        let data = vec![7u8; 300_000];
        let c = tokio::time::timeout(std::time::Duration::from_secs(10), drain(&data[..], 1000, Some((tee, OutputStream::Stderr))))
            .await
            .expect("draining a slice is quick");
        assert_eq!(c.bytes.len(), 1000);
        assert_eq!(seen.lock().unwrap().len(), 300_000);
    }
}
