//! Streaming a session's workspace out of the engine: the tar archive Docker sends is read
//! as it arrives, never kept whole.
//!
//! Three parts pass data through bounded channels: a task pulls the archive's chunks from the
//! engine; a blocking thread parses the tar ([`crate::copyout::read_tar`], names and caps
//! applied there) and sends file events; the caller's task hands the events to its sink. At
//! most a few chunks are in flight, so plancd's memory stays flat whatever the workspace
//! holds. Sparse files make an archive far larger than the workspace: past a budget the rest
//! of the archive is not read, and that is reported.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::backend;
use crate::copyout::{FileSink, OverBudget, Skip};
use crate::{CopyOutLimits, SandboxError, WORKSPACE};

/// Archive chunks, and file events, in flight at most.
const IN_FLIGHT: usize = 8;

/// What the parsing thread tells the sink.
enum Event {
    Begin { path: String, executable: bool, size: u64 },
    Chunk(Vec<u8>),
    End,
    Abort(Skip),
    Skip(String, Skip),
}

/// A [`FileSink`] that forwards to the caller's task.
struct Forward(mpsc::Sender<Event>);

impl Forward {
    fn send(&self, event: Event) -> Result<(), SandboxError> {
        self.0.blocking_send(event).map_err(|_| backend("the copy-out was abandoned"))
    }
}

impl FileSink for Forward {
    fn begin(&mut self, path: &str, executable: bool, size: u64) -> Result<bool, SandboxError> {
        self.send(Event::Begin { path: path.to_owned(), executable, size }).map(|()| true)
    }
    fn write(&mut self, chunk: &[u8]) -> Result<(), SandboxError> {
        self.send(Event::Chunk(chunk.to_vec()))
    }
    fn end(&mut self) -> Result<(), SandboxError> {
        self.send(Event::End)
    }
    fn abort(&mut self, why: Skip) {
        let _ = self.send(Event::Abort(why));
    }
    fn skip(&mut self, path: &str, why: Skip) {
        let _ = self.send(Event::Skip(path.to_owned(), why));
    }
}

/// The archive as a [`Read`]er over the chunks the pulling task sends; fails with
/// [`OverBudget`] past `budget` bytes.
struct Chunks {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    read: u64,
    budget: u64,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        if self.read >= self.budget {
            return Err(std::io::Error::other(OverBudget(self.budget)));
        }
        let n = buf.len().min(self.current.len()).min((self.budget - self.read) as usize);
        buf[..n].copy_from_slice(&self.current.split_to(n));
        self.read += n as u64;
        Ok(n)
    }
}

/// How much archive a workspace of `disk_mb` may send: its data and headers, and sparse files
/// up to seven times its size beyond (each counted in full by the archive).
pub(super) fn budget(disk_mb: u64) -> u64 {
    disk_mb.max(1).saturating_mul(8 << 20).saturating_add(64 << 20)
}

/// Streams the workspace of `container` to `sink`, within `limits`, reading at most `budget`
/// bytes of archive.
pub(super) async fn stream_workspace<S>(source: S, limits: &CopyOutLimits, budget: u64, sink: &mut dyn FileSink) -> Result<(), SandboxError>
where
    S: futures_util::Stream<Item = Result<Bytes, bollard::errors::Error>> + Send + 'static,
{
    let (chunk_tx, chunk_rx) = mpsc::channel(IN_FLIGHT);
    let (event_tx, mut events) = mpsc::channel(IN_FLIGHT);
    let pull = tokio::spawn(async move {
        let mut stream = Box::pin(source);
        while let Some(chunk) = stream.next().await {
            let failed = chunk.is_err();
            if chunk_tx.send(chunk.map_err(|e| e.to_string())).await.is_err() || failed {
                break;
            }
        }
    });
    let limits = *limits;
    let parse = tokio::task::spawn_blocking(move || {
        let reader = Chunks { rx: chunk_rx, current: Bytes::new(), read: 0, budget };
        crate::copyout::read_tar(reader, WORKSPACE.trim_start_matches('/'), &limits, &mut Forward(event_tx))
    });
    let mut taking = false;
    let mut delivered = Ok(());
    while let Some(event) = events.recv().await {
        if let Err(e) = deliver(event, &mut taking, sink) {
            // The parser's next event finds no receiver and stops.
            delivered = Err(e);
            break;
        }
    }
    drop(events);
    pull.abort();
    let parsed = parse.await.map_err(|e| backend(format!("the copy-out parser panicked: {e}")))?;
    delivered.and(parsed)
}

/// Hands one event to `sink`; `taking` says whether it accepted the file begun last.
fn deliver(event: Event, taking: &mut bool, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
    match event {
        Event::Begin { path, executable, size } => *taking = sink.begin(&path, executable, size)?,
        Event::Chunk(data) if *taking => sink.write(&data)?,
        Event::Chunk(_) => {}
        Event::End if *taking => {
            *taking = false;
            sink.end()?;
        }
        Event::End => {}
        Event::Abort(why) => {
            *taking = false;
            sink.abort(why);
        }
        Event::Skip(path, why) => sink.skip(&path, why),
    }
    Ok(())
}
