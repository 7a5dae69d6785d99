//! Progress of a long operation, sent to whoever asked for it as it happens,
//! with bounds: output is cut into lines of at most [`MAX_LINE`] bytes, an
//! operation sends at most [`MAX_OUTPUT`] bytes of it, and a slow client
//! slows the output down (a bounded channel) rather than filling memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// The longest line of output passed on; the rest of it is dropped.
pub const MAX_LINE: usize = 64 * 1024;
/// What one operation passes on of its hooks' and commands' output.
pub const MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// How many progress messages wait for a slow client.
pub const CHANNEL_CAPACITY: usize = 64;

/// Appended to a line cut at [`MAX_LINE`].
pub const LINE_CUT: &str = " [line cut at 64 KiB]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Step(String),
    Warning(String),
    HookOutput {
        hook: String,
        stderr: bool,
        line: String,
    },
    HookExit {
        hook: String,
        code: i32,
        duration: Duration,
    },
}

#[derive(Clone)]
enum Sink {
    Fn(Arc<dyn Fn(Progress) + Send + Sync>),
    Channel(mpsc::Sender<Progress>),
}

/// What an operation has sent of its output, shared by its clones.
#[derive(Debug, Default)]
struct Budget {
    sent: AtomicUsize,
    cut: AtomicBool,
}

/// Where progress goes. A client that went away does not stop the
/// operation: reporting is best effort.
#[derive(Clone, Default)]
pub struct Reporter {
    sink: Option<Sink>,
    budget: Arc<Budget>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    pub fn new(sink: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Reporter {
            sink: Some(Sink::Fn(Arc::new(sink))),
            budget: Arc::default(),
        }
    }

    /// A reporter into a bounded channel: [`Reporter::output`] waits while
    /// it is full.
    pub fn channel(tx: mpsc::Sender<Progress>) -> Self {
        Reporter {
            sink: Some(Sink::Channel(tx)),
            budget: Arc::default(),
        }
    }

    /// A reporter that drops everything, for work nobody watches (re-plugs).
    pub fn silent() -> Self {
        Reporter::default()
    }

    /// Sends a message now; into a full channel, it is dropped.
    pub fn send(&self, p: Progress) {
        match &self.sink {
            Some(Sink::Fn(f)) => f(p),
            Some(Sink::Channel(tx)) => {
                let _ = tx.try_send(p);
            }
            None => {}
        }
    }

    /// Sends a line of output, waiting while the client is behind; past
    /// the operation's [`MAX_OUTPUT`], says once that the rest is cut and
    /// drops it.
    pub async fn output(&self, hook: &str, stderr: bool, line: String) {
        let Some(p) = self.budgeted(hook, stderr, line) else {
            return;
        };
        match &self.sink {
            Some(Sink::Fn(f)) => f(p),
            Some(Sink::Channel(tx)) => {
                let _ = tx.send(p).await;
            }
            None => {}
        }
    }

    /// [`Reporter::output`] for output that cannot wait (a stream read
    /// elsewhere): into a full channel, the line is dropped.
    pub fn output_now(&self, hook: &str, stderr: bool, line: String) {
        if let Some(p) = self.budgeted(hook, stderr, line) {
            self.send(p);
        }
    }

    /// The message for a line of output within the budget, the one warning
    /// that the budget is spent, or nothing.
    fn budgeted(&self, hook: &str, stderr: bool, line: String) -> Option<Progress> {
        let sent = self.budget.sent.fetch_add(line.len(), Ordering::Relaxed);
        if sent + line.len() <= MAX_OUTPUT {
            Some(Progress::HookOutput {
                hook: hook.to_string(),
                stderr,
                line,
            })
        } else if !self.budget.cut.swap(true, Ordering::Relaxed) {
            Some(Progress::Warning(format!(
                "output of {hook:?} cut: this operation passed on {} MiB of output, the most it passes; the rest is dropped",
                MAX_OUTPUT / (1024 * 1024)
            )))
        } else {
            None
        }
    }

    /// Whether some output of the operation was dropped.
    pub fn output_cut(&self) -> bool {
        self.budget.cut.load(Ordering::Relaxed)
    }

    pub fn step(&self, s: impl Into<String>) {
        self.send(Progress::Step(s.into()));
    }

    pub fn warn(&self, s: impl Into<String>) {
        let s = s.into();
        tracing::warn!("{s}");
        self.send(Progress::Warning(s));
    }
}

/// Cuts a stream of bytes into lines of at most [`MAX_LINE`] bytes. Each
/// byte is looked at once, however long a line grows; a longer line is
/// passed on cut, marked so, and the rest of it dropped.
#[derive(Debug, Default)]
pub struct LineCutter {
    pending: Vec<u8>,
    /// The current line was cut: drop until its end.
    dropping: bool,
}

impl LineCutter {
    /// Hands every line completed by `chunk` to `emit`.
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(String)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (part, ends) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let part = &rest[..i];
                    rest = &rest[i + 1..];
                    (part, true)
                }
                None => (std::mem::take(&mut rest), false),
            };
            if !self.dropping {
                let room = MAX_LINE - self.pending.len();
                if part.len() > room {
                    self.pending.extend_from_slice(&part[..room]);
                    let mut line = self.take();
                    line.push_str(LINE_CUT);
                    emit(line);
                    self.dropping = true;
                } else {
                    self.pending.extend_from_slice(part);
                    if ends {
                        emit(self.take());
                    }
                }
            }
            if ends {
                self.dropping = false;
            }
        }
    }

    /// The last line, if the stream ended without a newline.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.pending);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        String::from_utf8_lossy(line).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> (Vec<String>, Option<String>) {
        let mut c = LineCutter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            c.push(chunk, |l| lines.push(l));
        }
        (lines, c.finish())
    }

    #[test]
    fn lines_are_cut_across_chunks() {
        let (lines, rest) = cut(&[b"one\ntw", b"o\r\n", b"", b"thr", b"ee\nfour"]);
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(rest.as_deref(), Some("four"));
    }

    #[test]
    fn a_long_line_is_cut_marked_and_the_rest_of_it_dropped() {
        let long = vec![b'a'; MAX_LINE * 3];
        let (lines, rest) = cut(&[&long[..MAX_LINE / 2], &long[MAX_LINE / 2..], b"\nnext\n"]);
        assert_eq!(
            lines.len(),
            2,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(lines[0].len(), MAX_LINE + LINE_CUT.len());
        assert!(lines[0].ends_with(LINE_CUT));
        assert_eq!(lines[1], "next");
        assert_eq!(rest, None);
    }

    #[tokio::test]
    async fn output_past_the_budget_is_dropped_after_one_warning() {
        let (tx, mut rx) = mpsc::channel(16);
        let r = Reporter::channel(tx);
        let line = "x".repeat(MAX_LINE);
        // The reporter moves into the task: the channel ends with it.
        let sender = tokio::spawn(async move {
            for _ in 0..(MAX_OUTPUT / MAX_LINE + 10) {
                r.output("hook", false, line.clone()).await;
            }
            r.output_cut()
        });
        let (mut lines, mut warnings) = (0, 0);
        while let Some(p) = rx.recv().await {
            match p {
                Progress::HookOutput { .. } => lines += 1,
                Progress::Warning(w) => {
                    assert!(w.contains("cut"), "{w}");
                    warnings += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(sender.await.unwrap());
        assert_eq!(lines, MAX_OUTPUT / MAX_LINE);
        assert_eq!(warnings, 1);
    }
}
