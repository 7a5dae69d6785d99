//! End to end: `first_creation` is used when a run or an apply makes a
//! container, recorded by a label, never a difference, and left out of a
//! recreate by `apply`; the server refuses bad values sent raw.

mod common;
use common::{test_spec, with_grpc};

use dockstack_proto as pb;
use dockstack_tests::support::{assert_nothing_left, bed, dockstack, inspect, ok, show, text};
use dockstack_tests::testbed::BedContainer;

const LABEL: &str = "{{index .Config.Labels \"dockstack.first-creation\"}}";

/// The container's environment as Docker holds it, one `K=V` each.
fn env_of(name: &str) -> Vec<String> {
    inspect(name, "{{range .Config.Env}}{{println .}}{{end}}")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn used_at_first_creation_only_and_never_a_difference() {
    let bed = bed(1);
    let name = bed.container_name("founder");
    let ip = bed.subnet_ip(50);
    let first = "first_creation:\n  env:\n    BOOT: \"1\"\n    ROLE: founder\n";
    let spec = |role: &str, first: &str| {
        BedContainer::new(&name, 0, ip).with_yaml(&format!("env:\n  ROLE: {role}\n{first}"))
    };
    let env = bed.write_environment(&[spec("member", first)]);
    ok(&bed, &env, &["-c", &name, "run"]);
    let made = inspect(&name, "{{.Id}}");
    let vars = env_of(&name);
    assert!(vars.contains(&"BOOT=1".to_string()), "{vars:?}");
    // Merged over `env`: its value wins.
    assert!(vars.contains(&"ROLE=founder".to_string()), "{vars:?}");
    assert_eq!(inspect(&name, LABEL), "used");
    assert_eq!(show(&bed, &env, &name)["first_creation"], true);

    // The same spec run again: the container stays as it was made.
    let out = ok(&bed, &env, &["-c", &name, "run"]);
    assert!(text(&out).contains("not used"), "{}", text(&out));
    assert_eq!(inspect(&name, "{{.Id}}"), made);

    // Not part of the spec: removed or changed, nothing differs.
    for changed in [
        "",
        "first_creation:\n  env:\n    BOOT: \"2\"\n  command: [sh]\n",
    ] {
        let env = bed.write_environment(&[spec("member", changed)]);
        let out = dockstack(&bed, &env, &["plan"]);
        assert_eq!(out.status.code(), Some(0), "{changed:?}: {}", text(&out));
    }

    // A recreate by apply, with first_creation still in the file: the
    // replacement is made without it.
    let env = bed.write_environment(&[spec("member2", first)]);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["apply", "--yes"]);
    assert_ne!(inspect(&name, "{{.Id}}"), made, "not recreated");
    let vars = env_of(&name);
    assert!(vars.contains(&"ROLE=member2".to_string()), "{vars:?}");
    assert!(!vars.iter().any(|v| v.starts_with("BOOT=")), "{vars:?}");
    assert_eq!(inspect(&name, LABEL), "");
    assert_eq!(show(&bed, &env, &name).get("first_creation"), None);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Destroyed, then made by apply: a first creation again.
    ok(&bed, &env, &["destroy"]);
    ok(&bed, &env, &["apply", "--yes"]);
    assert!(env_of(&name).contains(&"BOOT=1".to_string()));
    assert_eq!(inspect(&name, LABEL), "used");
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn bad_values_sent_raw_are_refused() {
    let bed = bed(1);
    let web = bed.container_name("rawfirst");
    let host = bed.host(0).name().to_string();
    let spec = test_spec(&bed, &web, 51);
    let var = |k: &str, v: &str| [(k.to_string(), v.to_string())].into();
    let bad = [
        (
            "first_creation.env",
            spec.clone(),
            Some(pb::FirstCreation {
                env: var("A=B", "1"),
                command: Vec::new(),
            }),
        ),
        (
            "first_creation.env",
            spec.clone(),
            Some(pb::FirstCreation {
                env: var("BOOT", "1\0"),
                command: Vec::new(),
            }),
        ),
        (
            "first_creation.command",
            spec.clone(),
            Some(pb::FirstCreation {
                env: Default::default(),
                command: vec!["sh".into(), "a\0b".into()],
            }),
        ),
        (
            "env",
            pb::ContainerSpec {
                env: var("", "1"),
                ..spec.clone()
            },
            None,
        ),
    ];
    let refused = with_grpc(&bed, 0, async |mut c| {
        let mut refused = Vec::new();
        for (what, s, first_creation) in bad {
            let r = c
                .run(pb::RunRequest {
                    host: host.clone(),
                    spec: Some(s),
                    first_creation,
                    replace: false,
                })
                .await;
            refused.push((what, r.err()));
        }
        refused
    });
    for (what, status) in refused {
        let status = status.unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(
            status.message().contains(&format!("{what}: ")) && status.message().contains(&web),
            "{what}: {status:?}"
        );
    }
    assert!(bed.managed_containers(0).is_empty());
}
