//! How progress is shown: one live line per container on a terminal,
//! plain `name | text` lines otherwise (logs, pipes, CI).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::Printer;

/// Plain lines, prefixed with the container's name.
pub struct LinePrinter {
    pub width: usize,
    /// Progress to stderr, so stdout holds only the result (`--output json`).
    pub to_stderr: bool,
}

impl Printer for LinePrinter {
    fn line(&self, container: &str, text: &str) {
        if self.to_stderr {
            eprintln!("{container:>w$} | {text}", w = self.width);
        } else {
            println!("{container:>w$} | {text}", w = self.width);
        }
    }
}

/// A spinner per container whose message is its latest step; hook output
/// and warnings are printed above the spinners, so nothing is lost.
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
    fn line(&self, container: &str, text: &str) {
        let is_output = text.starts_with("| ") || text.starts_with("warning:");
        if is_output {
            let _ = self
                .multi
                .println(format!("{container:>w$} {text}", w = self.width));
        }
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = bars.get(container)
            && !is_output
        {
            bar.set_message(text.to_string());
        }
    }

    fn done(&self, container: &str, ok: bool, text: &str) {
        self.finish(container, ok, text);
    }
}
