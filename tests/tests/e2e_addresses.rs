//! The cluster's live address table end to end on two hosts: a second
//! environment file's container on an address another file's holds is
//! refused before anything is made; an address moved in the file is
//! refused by `run` and handed over in order by `apply`; `addresses`
//! prints the table.

use dockstack_tests::foreign::ForeignNode;
use dockstack_tests::support::{bed, dockstack, eth0_addresses, exists, ok, text};
use dockstack_tests::testbed::BedContainer;
use serde_json::Value;

#[test]
fn a_second_file_on_an_address_the_first_holds_is_refused_naming_it() {
    let bed = bed(2);
    let (first, second) = (bed.container_name("first"), bed.container_name("second"));
    let ip = bed.subnet_ip(70);
    let write = |file: &str, c: BedContainer| {
        let path = bed.dir().join(file);
        std::fs::write(&path, bed.environment_yaml(&[c])).unwrap();
        path
    };
    let env1 = write("one.yaml", BedContainer::new(&first, 0, ip));
    let env2 = write("two.yaml", BedContainer::new(&second, 1, ip));
    ok(&bed, &env1, &["run"]);

    let out = dockstack(&bed, &env2, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let file1 = std::fs::canonicalize(&env1).unwrap();
    assert!(
        err.contains(&format!(
            "address {ip} of {second} is held by container {first} on host {}",
            bed.host(0).name()
        )) && err.contains(&file1.display().to_string()),
        "{}",
        text(&out)
    );
    assert!(!exists(&second), "the refused run made a container");
    assert!(
        bed.managed_containers(1).is_empty(),
        "{:?}",
        bed.managed_containers(1)
    );
    // apply is refused alike, before anything is made.
    let out = dockstack(&bed, &env2, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("held by container {first}")),
        "{}",
        text(&out)
    );
    assert!(bed.managed_containers(1).is_empty());

    // The table, from either file (both name both hosts).
    let out = ok(&bed, &env2, &["--output", "json", "addresses"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"] == first.as_str())
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["address"], ip.to_string());
    assert_eq!(row["host"], bed.host(0).name());
    assert_eq!(row["environment"], file1.display().to_string());
    assert_eq!(row["state"], "running");
    ok(&bed, &env1, &["destroy"]);
}

#[test]
fn an_address_moved_in_the_file_is_refused_by_run_and_handed_over_by_apply() {
    let bed = bed(2);
    let (old, new) = (bed.container_name("keeper"), bed.container_name("taker"));
    let (a, b) = (bed.subnet_ip(80), bed.subnet_ip(81));
    let env = bed.write_environment(&[BedContainer::new(&old, 0, a)]);
    ok(&bed, &env, &["apply", "--yes"]);
    // The file now gives `old`'s address to `new`, on the other host.
    let env =
        bed.write_environment(&[BedContainer::new(&old, 0, b), BedContainer::new(&new, 1, a)]);
    let out = dockstack(&bed, &env, &["-c", &new, "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("address {a} of {new} is held by container {old}")),
        "{}",
        text(&out)
    );
    assert!(!exists(&new));
    ok(&bed, &env, &["apply", "--yes"]);
    assert!(
        eth0_addresses(&new).contains(&format!("{a}/{}", bed.gateway().prefix())),
        "{:?}",
        eth0_addresses(&new)
    );
    assert!(
        eth0_addresses(&old).contains(&format!("{b}/{}", bed.gateway().prefix())),
        "{:?}",
        eth0_addresses(&old)
    );
    assert!(bed.ping_from_host(0, a) && bed.ping_from_host(1, b));
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn an_address_something_outside_dockstack_answers_for_is_refused_naming_its_mac() {
    let bed = bed(1);
    let ip = bed.subnet_ip(90);
    // A plain namespace on the bridge with that address.
    let foreign_mac = "02:00:00:00:09:90";
    let foreign = ForeignNode::new(&bed, 0, "", foreign_mac.parse().unwrap());
    foreign.add_address(ip);

    let name = bed.container_name("clash");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, ip)]);
    let ports_before = bed.ovs_ports(0);
    let out = dockstack(&bed, &env, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "address {ip} is already answered for on the bridge by MAC {foreign_mac}"
        )),
        "{}",
        text(&out)
    );
    assert!(!exists(&name), "the refused run left its container");
    assert!(
        bed.managed_containers(0).is_empty(),
        "{:?}",
        bed.managed_containers(0)
    );
    assert_eq!(
        bed.ovs_ports(0),
        ports_before,
        "the refused run left a port"
    );

    drop(foreign);
    // The address free again: the same run goes through.
    ok(&bed, &env, &["run"]);
    ok(&bed, &env, &["destroy"]);
}
