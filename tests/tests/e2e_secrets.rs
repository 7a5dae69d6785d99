//! End to end, secrets in labels (finding 8 of the second audit): an env
//! value, or a first-creation one, reaches no label of the pair, neither
//! in clear nor as its plain SHA-256 (which would let whoever reads labels
//! test guesses); a plan still names a changed value, without showing it.

use dockstack_tests::support::{bed, dockstack, inspect, ok, text};
use dockstack_tests::testbed::{BedContainer, SANDBOX_SUFFIX};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn env_values_reach_no_label_and_a_plan_names_a_change_without_the_value() {
    let bed = bed(1);
    let name = bed.container_name("secret");
    let ip = bed.subnet_ip(60);
    let spec = |secret: &str| {
        BedContainer::new(&name, 0, ip).with_yaml(&format!(
            "env:\n  SECRET: {secret}\nfirst_creation:\n  env:\n    BOOT: firstsecret\n"
        ))
    };
    let env = bed.write_environment(&[spec("hunter2")]);
    ok(&bed, &env, &["-c", &name, "run"]);
    // The value is the container's: Docker must have it to pass it on.
    assert!(
        inspect(&name, "{{json .Config.Env}}").contains("SECRET=hunter2"),
        "the container did not get its env"
    );
    for secret in ["hunter2", "firstsecret"] {
        let plain = sha256_hex(secret);
        // The whole hash, and the 16 bytes the spec hash keeps.
        let shapes = [secret.to_string(), plain.clone(), plain[..32].to_string()];
        for member in [name.clone(), format!("{name}{SANDBOX_SUFFIX}")] {
            let labels = inspect(&member, "{{json .Config.Labels}}");
            for shape in &shapes {
                assert!(
                    !labels.contains(shape.as_str()),
                    "{member}'s labels hold {shape:?} (of {secret:?}): {labels}"
                );
            }
        }
    }

    // The same value: nothing to do. Another: a recreate naming the key only.
    let out = dockstack(&bed, &env, &["--output", "json", "plan"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["changes"][0]["action"], "unchanged", "{plan}");
    let env = bed.write_environment(&[spec("hunter3")]);
    let out = dockstack(&bed, &env, &["--output", "json", "plan"]);
    let plan: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}: {}", text(&out)));
    let change = &plan["changes"][0];
    assert_eq!(change["action"], "recreate", "{plan}");
    assert_eq!(
        change["differences"],
        serde_json::json!(["env.SECRET"]),
        "{plan}"
    );
    let out = dockstack(&bed, &env, &["plan"]);
    let shown = text(&out);
    assert!(shown.contains("env.SECRET"), "{shown}");
    assert!(!shown.contains("hunter"), "{shown}");
}
