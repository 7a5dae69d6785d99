//! `plan --output json`: the plan's shape as Serialize structs, turned into a
//! value whose keys serde_json keeps sorted, as the client always printed them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Change, Plan, Planned};

/// The plan as `plan --output json` prints it.
pub(super) fn plan(plan: &Plan) -> serde_json::Value {
    let changes = plan.items.iter().map(JsonChange::from).collect();
    let failed_hosts = plan
        .failed
        .iter()
        .map(|(host, error)| JsonFailedHost { error, host })
        .collect();
    let json = JsonPlan {
        changes,
        failed_hosts,
        plan_id: &plan.id,
        summary: plan.summary(),
    };
    serde_json::to_value(json).unwrap_or_default()
}

/// `plan --output json`.
#[derive(Serialize)]
struct JsonPlan<'a> {
    changes: Vec<JsonChange<'a>>,
    failed_hosts: Vec<JsonFailedHost<'a>>,
    plan_id: &'a str,
    summary: BTreeMap<&'static str, usize>,
}

/// One container's change, with what the host has now when it has it.
#[derive(Serialize)]
struct JsonChange<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_changed: Option<&'a [String]>,
    container: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    differences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a str>,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
}

impl<'a> From<&'a Planned> for JsonChange<'a> {
    fn from(p: &'a Planned) -> Self {
        let (differences, from) = match &p.change {
            Change::Recreate { differences, from } => {
                (Some(differences.as_slice()), Some(from.as_str()))
            }
            _ => (None, None),
        };
        let config_changed = match &p.change {
            Change::Restart { paths } => Some(paths.as_slice()),
            _ => None,
        };
        let found = p.found.as_ref();
        JsonChange {
            action: p.change.verb(),
            config_changed,
            container: &p.container,
            differences,
            from,
            health: found.map(|f| f.health.as_str()),
            host: &p.host,
            id: found.map(|f| f.id.as_str()),
            state: found.map(|f| f.container_state().as_str()),
        }
    }
}

/// A host that could not be asked.
#[derive(Serialize)]
struct JsonFailedHost<'a> {
    error: &'a str,
    host: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockstack_proto as pb;
    use serde_json::json;

    /// The value the client built with `json!` before these structs.
    fn old(plan: &Plan) -> serde_json::Value {
        let items: Vec<_> = plan
            .items
            .iter()
            .map(|p| {
                let mut item = json!({
                    "container": p.container, "host": p.host, "action": p.change.verb(),
                });
                if let Change::Recreate { differences, from } = &p.change {
                    item["differences"] = json!(differences);
                    item["from"] = json!(from);
                }
                if let Change::Restart { paths } = &p.change {
                    item["config_changed"] = json!(paths);
                }
                if let Some(f) = &p.found {
                    item["id"] = json!(f.id);
                    item["state"] = json!(f.container_state().as_str());
                    item["health"] = json!(f.health);
                }
                item
            })
            .collect();
        let failed: Vec<_> = plan
            .failed
            .iter()
            .map(|(h, e)| json!({"host": h, "error": e}))
            .collect();
        json!({
            "plan_id": plan.id, "changes": items, "summary": plan.summary(),
            "failed_hosts": failed,
        })
    }

    fn planned(container: &str, change: Change, found: bool) -> Planned {
        Planned {
            container: container.into(),
            host: "host1".into(),
            change,
            found: found.then(|| pb::ContainerInfo {
                id: "abc".into(),
                state: pb::ContainerState::Running.into(),
                health: "healthy".into(),
                ..Default::default()
            }),
            image_present: true,
            image: "nginx".into(),
        }
    }

    #[test]
    fn the_json_is_as_before() {
        let plan = Plan {
            items: vec![
                planned("a", Change::Create, false),
                planned(
                    "b",
                    Change::Recreate {
                        differences: vec!["image".into()],
                        from: "host2".into(),
                    },
                    true,
                ),
                planned(
                    "c",
                    Change::Restart {
                        paths: vec!["/etc/x".into()],
                    },
                    true,
                ),
                planned("d", Change::Unchanged, true),
                planned("e", Change::Orphan, true),
            ],
            id: "0123".into(),
            failed: vec![("host3".into(), "unreachable".into())],
            seen: Vec::new(),
        };
        assert_eq!(plan.to_json().to_string(), old(&plan).to_string());
    }
}
