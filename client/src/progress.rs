//! How progress is shown: one live line per container on a terminal,
//! plain `name | text` lines otherwise (logs, pipes, CI).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One progress event of a container's action, as the printer gets it: the
/// kind decides where a live printer shows it, the text how it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A step of the operation; a live printer shows it as the latest state.
    Step(&'a str),
    /// Something that did not stop the operation but should be read.
    Warning(&'a str),
    /// A line a hook printed.
    HookOutput(&'a str),
    /// A hook ended.
    HookExit { code: i32, duration_ms: u64 },
}

impl Progress<'_> {
    /// Whether the event is output to keep (printed above the spinners)
    /// rather than a state that the next one replaces.
    fn is_output(self) -> bool {
        matches!(self, Progress::Warning(_) | Progress::HookOutput(_))
    }
}

impl fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Step(s) => f.write_str(s),
            Progress::Warning(s) => write!(f, "warning: {s}"),
            Progress::HookOutput(line) => write!(f, "| {line}"),
            Progress::HookExit { code, duration_ms } => {
                write!(f, "hook exited {code} after {duration_ms} ms")
            }
        }
    }
}

/// Receives progress as it comes.
pub trait Printer: Send + Sync {
    fn progress(&self, container: &str, event: Progress<'_>);
    /// A container's action has ended.
    fn done(&self, _container: &str, _ok: bool, _text: &str) {}
}

/// Plain lines, prefixed with the container's name.
#[derive(Debug)]
pub struct LinePrinter {
    pub width: usize,
    /// Progress to stderr, so stdout holds only the result (`--output json`).
    pub to_stderr: bool,
}

impl Printer for LinePrinter {
    fn progress(&self, container: &str, event: Progress<'_>) {
        if self.to_stderr {
            eprintln!("{container:>w$} | {event}", w = self.width);
        } else {
            println!("{container:>w$} | {event}", w = self.width);
        }
    }
}

/// A spinner per container whose message is its latest step; hook output
/// and warnings are printed above the spinners, so nothing is lost.
#[derive(Debug)]
pub struct LivePrinter {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    width: usize,
}

impl LivePrinter {
    pub fn new(containers: &[String]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = containers.iter().map(String::len).max().unwrap_or(8);
        let style = ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut bars = HashMap::new();
        for name in containers {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(format!("{name:>width$}"));
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.insert(name.clone(), bar);
        }
        LivePrinter {
            multi,
            bars: Mutex::new(bars),
            width,
        }
    }

    /// Ends a container's line with its result.
    pub fn finish(&self, container: &str, ok: bool, text: &str) {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = bars.get(container) {
            let mark = if ok { "ok" } else { "FAILED" };
            bar.finish_with_message(format!("{mark} {text}"));
        }
    }
}

impl Printer for LivePrinter {
    fn progress(&self, container: &str, event: Progress<'_>) {
        if event.is_output() {
            let _ = self
                .multi
                .println(format!("{container:>w$} {event}", w = self.width));
            return;
        }
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = bars.get(container) {
            bar.set_message(event.to_string());
        }
    }

    fn done(&self, container: &str, ok: bool, text: &str) {
        self.finish(container, ok, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_the_lines_of_before() {
        assert_eq!(Progress::Step("pulling").to_string(), "pulling");
        assert_eq!(Progress::Warning("slow").to_string(), "warning: slow");
        assert_eq!(Progress::HookOutput("hi").to_string(), "| hi");
        let exit = Progress::HookExit {
            code: 3,
            duration_ms: 12,
        };
        assert_eq!(exit.to_string(), "hook exited 3 after 12 ms");
        assert!(Progress::HookOutput("| x").is_output());
        assert!(!Progress::Step("| not output").is_output());
    }
}
