//! The role a client certificate carries: the shared type, whose names and
//! URI SAN form are `dockstack-types`' and so the servers' too.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

pub use dockstack_types::Role;
pub use dockstack_types::role::ROLE_URI_PREFIX;

/// `--role`'s parser: the roles' names, which clap lists in the help, the
/// manual page and the completions.
pub fn role_parser() -> impl TypedValueParser<Value = Role> {
    let values = Role::ALL.map(|r| {
        PossibleValue::new(r.as_str()).help(match r {
            Role::Admin => "Everything",
            Role::Operator => "Run, start, stop, destroy and register containers",
            Role::Viewer => "Show, list and status only",
        })
    });
    PossibleValuesParser::new(values).try_map(|s| s.parse::<Role>())
}
