//! The keeper's transfer channel: files go into and out of a session as tar over plancd's own
//! connection to the keeper's standard input and output. The engine's archive endpoint starts
//! a helper process per call (hundreds of milliseconds); this costs one `tar` in the keeper.
//!
//! Requests are lines (`put DIR N TAG` followed by N bytes of tar; `get PARENT NAME TAG`),
//! answers end with the line `TAG STATUS`. A `get` answers with GNU tar's output (blocking
//! factor 1), whose end plancd finds by its framing: headers, their data in 512-byte blocks,
//! two zero blocks. The keeper runs as the sandbox user inside its locked-down container.

use std::pin::Pin;
use std::sync::Arc;

use bollard::container::LogOutput;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::backend;
use crate::SandboxError;

/// What the keeper runs: it serves transfers until its standard input closes. A `put` reads
/// exactly its N bytes whatever tar makes of them, so that the next request line is one.
pub const KEEPER: &str = r#"while IFS=' ' read -r op a b tag; do case "$op" in put) head -c "$b" | { tar -x -C "$a" 2>/dev/null; s=$?; cat >/dev/null; exit $s; }; echo "$tag $?";; get) tar -c -b 1 -C "$a" "$b" 2>/dev/null; echo "$tag $?";; *) exit 2;; esac; done"#;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// plancd's end of a keeper.
pub struct Channel {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
    /// Standard output read but not used yet.
    pending: BytesMut,
    /// A transfer was abandoned midway: what comes next is not an answer.
    broken: bool,
    next_tag: u64,
}

/// A shared channel; transfers take it in turn.
pub type Shared = Arc<tokio::sync::Mutex<Channel>>;

impl Channel {
    /// The channel over an attached keeper's streams.
    pub fn new(input: Pin<Box<dyn AsyncWrite + Send>>, output: Output) -> Channel {
        Channel { input, output, pending: BytesMut::new(), broken: false, next_tag: 0 }
    }

    fn tag(&mut self) -> Result<String, SandboxError> {
        if self.broken {
            return Err(backend("the keeper's channel broke during an earlier transfer"));
        }
        self.next_tag += 1;
        Ok(format!("t{}", self.next_tag))
    }

    /// More of the keeper's standard output into `pending`; false at its end.
    async fn fill(&mut self) -> bool {
        while let Some(Ok(frame)) = self.output.next().await {
            if let LogOutput::StdOut { message } = frame {
                self.pending.extend_from_slice(&message);
                return true;
            }
        }
        false
    }

    /// Reads the answer line of `tag`; its status.
    async fn status(&mut self, tag: &str) -> Result<i32, SandboxError> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line = self.pending.split_to(end + 1);
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                let status = text.strip_prefix(tag).and_then(|rest| rest.trim().parse().ok());
                return status.ok_or_else(|| {
                    self.broken = true;
                    backend(format!("the keeper answered `{text}` to transfer {tag}"))
                });
            }
            if self.pending.len() > 4096 || !self.fill().await {
                self.broken = true;
                return Err(backend("the keeper stopped answering"));
            }
        }
    }

    /// Extracts `archive` into `dir`, as the sandbox user.
    pub async fn put(&mut self, dir: &str, archive: &[u8]) -> Result<(), SandboxError> {
        let tag = self.tag()?;
        let request = format!("put {dir} {} {tag}\n", archive.len());
        let sent = async {
            self.input.write_all(request.as_bytes()).await?;
            self.input.write_all(archive).await?;
            self.input.flush().await
        };
        if let Err(e) = sent.await {
            self.broken = true;
            return Err(backend(format!("the keeper's channel: {e}")));
        }
        match self.status(&tag).await? {
            0 => Ok(()),
            code => Err(backend(format!("extracting files into {dir} failed (tar exit {code})"))),
        }
    }
}

/// Where a tar stream stands: inside an entry's data, or between headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Data bytes (padded to blocks) of the current entry still to come.
    data: u64,
    /// Zero blocks in a row.
    zeros: u8,
}

impl Framing {
    /// Whether the end-of-archive (two zero blocks) went by.
    pub fn ended(&self) -> bool {
        self.zeros >= 2
    }

    /// How many bytes of `input` belong to the archive, `block` collecting a header split
    /// across calls.
    pub fn advance(&mut self, input: &[u8], block: &mut Vec<u8>) -> usize {
        let mut used = 0;
        while used < input.len() && !self.ended() {
            if self.data > 0 {
                let n = (input.len() - used).min(usize::try_from(self.data).unwrap_or(usize::MAX));
                self.data -= n as u64;
                used += n;
                continue;
            }
            let n = (512 - block.len()).min(input.len() - used);
            block.extend_from_slice(&input[used..used + n]);
            used += n;
            if block.len() == 512 {
                if block.iter().all(|b| *b == 0) {
                    self.zeros += 1;
                } else {
                    self.zeros = 0;
                    self.data = entry_size(block).div_ceil(512) * 512;
                }
                block.clear();
            }
        }
        used
    }
}

/// The size field of a tar header: octal text, or base-256 when its first byte's high bit is set.
fn entry_size(header: &[u8]) -> u64 {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        return field[1..].iter().fold(0u64, |n, b| n.saturating_mul(256).saturating_add(u64::from(*b)));
    }
    let text = String::from_utf8_lossy(field);
    u64::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
}

/// How much of an archive whose reader went away is read to its end, so that the channel
/// stays usable; past it the channel is given up.
const DRAIN: u64 = 64 << 20;

/// The tar of `PARENT/NAME` as the keeper makes it, streamed. The channel stays taken until
/// the archive ends; a stream dropped midway has the rest read and thrown away (up to
/// [`DRAIN`] bytes, past which the channel is broken).
pub fn get(channel: Shared, parent: &str, name: &str) -> impl Stream<Item = Result<Bytes, bollard::errors::Error>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, bollard::errors::Error>>(8);
    let request = format!("get {parent} {name}");
    tokio::spawn(async move {
        let mut channel = channel.lock_owned().await;
        if let Err(e) = pump(&mut channel, &request, &tx).await {
            let _ = tx.send(Err(bollard::errors::Error::IOError { err: std::io::Error::other(e.to_string()) })).await;
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

async fn pump(
    channel: &mut Channel,
    request: &str,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, bollard::errors::Error>>,
) -> Result<(), SandboxError> {
    let tag = channel.tag()?;
    if let Err(e) = channel.input.write_all(format!("{request} {tag}\n").as_bytes()).await {
        channel.broken = true;
        return Err(backend(format!("the keeper's channel: {e}")));
    }
    let (mut framing, mut block) = (Framing::default(), Vec::with_capacity(512));
    // Bytes read after the reader went away. A tar reader stops at the first zero block, so
    // the usual case is one block; a reader that gave up early leaves more.
    let mut drained: Option<u64> = None;
    while !framing.ended() {
        if channel.pending.is_empty() && !channel.fill().await {
            channel.broken = true;
            return Err(backend("the keeper stopped in the middle of an archive"));
        }
        let used = framing.advance(&channel.pending, &mut block);
        let part = channel.pending.split_to(used).freeze();
        match &mut drained {
            Some(n) => {
                *n += part.len() as u64;
                if *n > DRAIN {
                    channel.broken = true;
                    return Ok(());
                }
            }
            None if tx.send(Ok(part)).await.is_err() => drained = Some(0),
            None => {}
        }
    }
    match channel.status(&tag).await? {
        0 | 1 => Ok(()),
        code => Err(backend(format!("archiving the workspace failed (tar exit {code})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, usize)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, size) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(*size as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, &vec![0u8; *size][..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn the_end_of_an_archive_is_found_whatever_the_chunks() {
        let long = "d/".repeat(80) + "file";
        let tar = archive(&[("a", 0), ("zeros", 1500), (&long, 512), ("b", 1)]);
        for chunk in [1, 7, 512, 513, 4096, tar.len()] {
            let mut stream = tar.clone();
            stream.extend_from_slice(b"t1 0\n");
            let (mut framing, mut block, mut used) = (Framing::default(), Vec::new(), 0);
            for part in stream.chunks(chunk) {
                used += framing.advance(part, &mut block);
                if framing.ended() {
                    break;
                }
            }
            assert!(framing.ended(), "chunks of {chunk}");
            assert_eq!(used, tar.len(), "chunks of {chunk}: the archive, not the answer after it");
        }
    }

    /// A keeper whose standard output the test writes, frame by frame.
    fn keeper() -> (Shared, tokio::sync::mpsc::UnboundedSender<Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let output =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|message| (Ok(LogOutput::StdOut { message }), rx)) },
            );
        let channel = Channel::new(Box::pin(tokio::io::sink()), Box::pin(output));
        (Arc::new(tokio::sync::Mutex::new(channel)), tx)
    }

    #[tokio::test]
    async fn a_reader_that_stops_at_the_first_zero_block_leaves_the_channel_usable() {
        let (channel, keeper) = keeper();
        let tar = archive(&[("workspace/a", 1000)]);
        let (head, tail) = tar.split_at(tar.len() - 512);
        keeper.send(Bytes::copy_from_slice(head)).unwrap();
        let mut stream = Box::pin(get(Arc::clone(&channel), "/", "workspace"));
        let first = stream.next().await.expect("a chunk").expect("no error");
        assert_eq!(first.len(), head.len());
        drop(stream);
        keeper.send([tail, b"t1 0\n"].concat().into()).unwrap();
        keeper.send(Bytes::from_static(b"t2 0\n")).unwrap();
        channel.lock().await.put("/workspace", &[]).await.expect("the next transfer works");
    }

    #[tokio::test]
    async fn a_reader_that_gives_up_on_a_large_archive_breaks_the_channel() {
        let (channel, keeper) = keeper();
        let tar = archive(&[("workspace/big", (DRAIN + (1 << 20)) as usize)]);
        keeper.send(Bytes::copy_from_slice(&tar[..512])).unwrap();
        let mut stream = Box::pin(get(Arc::clone(&channel), "/", "workspace"));
        stream.next().await.expect("a chunk").expect("no error");
        drop(stream);
        for part in tar[512..].chunks(1 << 20) {
            keeper.send(Bytes::copy_from_slice(part)).unwrap();
        }
        let err = channel.lock().await.put("/workspace", &[]).await.expect_err("the channel is given up");
        assert!(err.to_string().contains("broke during an earlier transfer"), "{err}");
    }

    #[test]
    fn sizes_are_read_in_octal_and_base_256() {
        let mut header = [0u8; 512];
        header[124..136].copy_from_slice(b"00000001750\0");
        assert_eq!(entry_size(&header), 1000);
        let mut big = [0u8; 512];
        big[124] = 0x80;
        big[128..136].copy_from_slice(&(9u64 << 32).to_be_bytes());
        assert_eq!(entry_size(&big), 9 << 32);
    }
}
