//! Fault injection for tests: makes an operation panic at its start, so the
//! e2e tests can check that a panic reaches the client as an error; and
//! holds a step for a while, so that a test can break something (OVSDB)
//! between two steps.
//!
//! Compiled only in debug builds; in a release build [`point`] does nothing.

/// The variable that names the operation to break: `<op>:<container>`,
/// with `op` one of `run`, `start`, `stop`, `destroy`.
pub const PANIC_VAR: &str = "DOCKSTACK_SERVER_PANIC";

/// Panics when [`PANIC_VAR`] is `<op>:<container>`.
#[cfg(debug_assertions)]
pub fn point(op: &str, container: &str) {
    if let Ok(want) = std::env::var(PANIC_VAR)
        && want.split_once(':') == Some((op, container))
    {
        panic!("fault injected by {PANIC_VAR}={want}");
    }
}

/// Does nothing: release builds carry no fault injection.
#[cfg(not(debug_assertions))]
pub fn point(_op: &str, _container: &str) {}

/// The variable that holds a step for a while: `<step>:<ms>`, with `step`
/// `gc` (between the port gc's look-ups and its removals), or one of the
/// points between the steps of an operation, where a test kills the
/// server: a run's `run-sandbox-made`, `run-plugged`, `run-created`,
/// `run-started` (before the postcreation hooks); a replacement's
/// `replace-next-made`, `replace-unplugged`, `replace-plugged`,
/// `replace-old-removed` (before the renames); a destroy's (and a failed
/// run's rollback's) `remove-app-removed`, `remove-unplugged`; and
/// `replug`, before a restarted sandbox is plugged again.
pub const PAUSE_VAR: &str = "DOCKSTACK_SERVER_PAUSE";

/// Sleeps when [`PAUSE_VAR`] is `<step>:<ms>`, saying so in the log.
#[cfg(debug_assertions)]
pub async fn pause(step: &str) {
    let Ok(want) = std::env::var(PAUSE_VAR) else {
        return;
    };
    if let Some((s, ms)) = want.split_once(':')
        && s == step
        && let Ok(ms) = ms.parse()
    {
        tracing::warn!("{step}: held {ms} ms by {PAUSE_VAR}");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        tracing::warn!("{step}: going on after {PAUSE_VAR}");
    }
}

/// Does nothing: release builds carry no fault injection.
#[cfg(not(debug_assertions))]
pub async fn pause(_step: &str) {}
