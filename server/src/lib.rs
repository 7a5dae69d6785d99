//! dockstack-server: the per-host daemon. The gRPC layer (`service`) adapts
//! requests onto the domain API (`host`), which drives Docker (`docker`, its
//! labels in `record`), netplug, hooks and the registration file editors
//! (`regfiles`). `pause` owns the image of the sandboxes' pause program;
//! `policy` who may do what, from the role in a client's certificate;
//! `metrics` what Prometheus scrapes; `guard` the plugged
//! addresses' conflicts seen on the wire. `logs`, `session` and `events` are
//! the streams of `dockstack logs`, `exec` and `events`; `journal` the
//! server's own events for the last.

pub mod confighash;
pub mod docker;
pub mod envkey;
pub mod events;
pub mod fault;
pub mod fsopen;
pub mod gate;
pub mod guard;
pub mod hooks;
pub mod host;
pub mod journal;
pub mod lock;
pub mod logline;
pub mod logs;
pub mod metrics;
pub mod pause;
pub mod policy;
pub mod progress;
pub mod record;
pub mod regfiles;
pub mod service;
pub mod session;
pub mod slots;
pub mod spec;
pub mod tls;
