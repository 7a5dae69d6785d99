//! Fault injection for tests: makes an operation panic at its start, so the
//! e2e tests can check that a panic reaches the client as an error.
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
