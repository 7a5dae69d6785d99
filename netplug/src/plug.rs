//! What a plug is (its spec, its owner, its result, the kinds of bridge)
//! and the [`Plugger`] that plugs a container's network namespace into a
//! bridge, all or nothing, and unplugs it again.

mod announce;
mod bridge;
mod fresh;
mod matching;
mod observe;
mod path;
mod plugger;
mod probe;
mod security;
mod spec;
mod teardown;

pub use bridge::BridgeKind;
pub use plugger::Plugger;
pub use spec::{MAX_OBSERVED_ADDRESSES, Observed, Owner, PlugSpec, Plugged};
