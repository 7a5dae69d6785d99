//! `dockstack-testbed`: brings a test bed up and leaves it up (for the demo), removes a slot's bed (or every slot's no process holds), or builds the test images.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use dockstack_tests::testbed::{
    BedOptions, DEMO_SLOT, TestBed, cleanup_all, cleanup_slot, ensure_dnsmasq_image,
    ensure_test_image,
};

const USAGE: &str = "\
usage:
  dockstack-testbed up [--slot N] [--hosts N] [--gateway IP/LEN] [--bridge NAME]
                       [--host-names NAME,NAME...] [--no-servers] [--insecure]
                       [-- SERVER_ARGS...]
  dockstack-testbed down (--slot N | --all)
  dockstack-testbed images

up    makes the hosts (slot 0, 2 hosts and the servers by default) and leaves them up
down  removes everything of a slot: servers, their containers, OVS, namespaces, links
images builds the busybox and dnsmasq images (FROM scratch, no registry needed)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockstack-testbed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "up" => up(rest),
        "down" => down(rest),
        "images" => {
            for image in [ensure_test_image()?, ensure_dnsmasq_image()?] {
                println!("image {image} ready");
            }
            Ok(())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a String> {
    it.next()
        .with_context(|| format!("{flag} needs a value\n{USAGE}"))
}

fn up(args: &[String]) -> Result<()> {
    let mut hosts = None;
    let mut opts = BedOptions {
        slot: Some(DEMO_SLOT),
        detach_servers: true,
        ..BedOptions::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--slot" => opts.slot = Some(value(arg, &mut it)?.parse().context("--slot")?),
            "--hosts" => hosts = Some(value(arg, &mut it)?.parse().context("--hosts")?),
            "--gateway" => opts.gateway = Some(value(arg, &mut it)?.parse().context("--gateway")?),
            "--bridge" => opts.bridge = value(arg, &mut it)?.clone(),
            "--host-names" => {
                opts.host_names = value(arg, &mut it)?
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--no-servers" => opts.start_servers = false,
            "--insecure" => opts.insecure = true,
            "--" => {
                opts.server_args = it.by_ref().cloned().collect();
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    opts.hosts = hosts.unwrap_or(opts.host_names.len().max(2));
    let bed = TestBed::new(opts)?;
    println!(
        "test bed slot {}: {} hosts, gateway {}, bridge {}, files in {}",
        bed.slot(),
        bed.hosts().len(),
        bed.gateway(),
        bed.bridge(),
        bed.dir().display()
    );
    if bed.insecure() {
        println!("servers run --insecure (plaintext)");
    } else {
        println!(
            "certificates (CA, servers, client) in {}",
            bed.tls_dir().display()
        );
    }
    println!("# name netns mgmt-address bridge-address ovsdb rundir");
    for h in bed.hosts() {
        println!(
            "{} {} {}:{} {} {} {}",
            h.name(),
            h.netns(),
            h.mgmt_ip(),
            h.port(),
            h.bridge_ip(),
            h.ovsdb(),
            h.rundir().display()
        );
    }
    println!("remove with: dockstack-testbed down --slot {}", bed.slot());
    bed.leave_up();
    Ok(())
}

fn down(args: &[String]) -> Result<()> {
    match args {
        [flag, slot] if flag == "--slot" => {
            let slot: u8 = slot.parse().context("--slot")?;
            cleanup_slot(slot)?;
            println!("test bed slot {slot} removed");
            Ok(())
        }
        [flag] if flag == "--all" => {
            let slots = cleanup_all()?;
            println!("test bed slots removed: {slots:?}");
            Ok(())
        }
        _ => bail!("down needs --slot N or --all\n{USAGE}"),
    }
}
