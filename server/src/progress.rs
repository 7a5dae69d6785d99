//! Progress of a long operation, sent to whoever asked for it as it happens.

use std::sync::Arc;
use std::time::Duration;

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

/// Where progress goes. A client that went away does not stop the
/// operation: reporting is best effort.
#[derive(Clone, Default)]
pub struct Reporter {
    sink: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    pub fn new(sink: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Reporter {
            sink: Some(Arc::new(sink)),
        }
    }

    /// A reporter that drops everything, for work nobody watches (re-plugs).
    pub fn silent() -> Self {
        Reporter { sink: None }
    }

    pub fn send(&self, p: Progress) {
        if let Some(sink) = &self.sink {
            sink(p);
        }
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
