use super::*;

fn show(text: &str) {
    match parse(Path::new("env.yaml"), text) {
        Ok(env) => println!(
            "OK {:?}",
            env.containers
                .iter()
                .map(|c| (&c.name, &c.host))
                .collect::<Vec<_>>()
        ),
        Err(e) => println!("{e}"),
    }
    println!("-----");
}

#[test]
fn explore() {
    show("containers:\n  a1: {image: x\n");
    show("containers:\n  a1:\n    image: x\n   ip: 1\n");
    show(
        "containerhosts:\n  host1: &host1\n    ip: 192.168.1.48\n    port: 3288\n  host2:\n    ip: 192.168.1.49\ncontainerdefault: &containerdefault\n  mask: 16\n  gateway: 10.1.0.100\n  dns: 10.0.0.1\n  domain: endor.lab\n  bridge: br0\n  host: *host1\n  volums:\ncontainers:\n  dns1:\n    <<: *containerdefault\n    ip: 10.0.0.1\n    image: dns\n  web1:\n    <<: *containerdefault\n    ip: 10.0.0.1\n    image: web\n    mask: 33\n    host: host3\n    volumes:\n    - rel:/x\n    - /a/../b:/x:ro\n    - /a\n    bridge: averyveryverylongbridge\n    after: [nope, web1]\n  dns1:\n    image: x\nfoo: 1\n",
    );
    show(
        "containerhosts:\n  host1: {ip: 1.2.3.4}\n  host2: {ip: 1.2.3.5, port: 3288}\ncontainers:\n  a1: {image: x, ip: 10.0.0.1, mask: 8, bridge: br0, host: {ip: 1.2.3.5}}\n  a2: {image: x, ip: 10.0.0.2, mask: 8, bridge: br0, host: {ip: 1.2.3.6}}\n",
    );
    show("");
    show("- a\n");
    show("a: *x\n");
    show("a: &x [*x]\n");
    panic!();
}
