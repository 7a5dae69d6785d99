//! Benchmark: what etcd costs a change (`cluster: {etcd: ...}`), on a bed
//! of three hosts with a three-member etcd (mutual TLS): the cluster's
//! lock alone (connect, acquire, release), one address's reservation and
//! release, and the wall time of `run` of one container and `apply` of
//! 100, each with and without the `cluster` section. Build the binaries
//! first (`cargo build --workspace --bins`); run as root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dockstack::environment;
use dockstack::ops::cluster;
use dockstack_tests::etcd::EtcdCluster;
use dockstack_tests::support::{dockstack, text};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};

const LOCK_ROUNDS: usize = 30;
const RUN_ROUNDS: usize = 5;
const MANY: usize = 100;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed(bed: &TestBed, env: &Path, args: &[&str]) -> Result<Duration> {
    let began = Instant::now();
    let out = dockstack(bed, env, args);
    let took = began.elapsed();
    ensure!(out.status.success(), "dockstack {args:?}: {}", text(&out));
    Ok(took)
}

fn write(
    bed: &TestBed,
    file: &str,
    containers: &[BedContainer],
    etcd: Option<&EtcdCluster>,
) -> PathBuf {
    let path = bed.dir().join(file);
    let mut y = bed.environment_yaml(containers);
    if let Some(e) = etcd {
        y.push_str(&e.yaml());
    }
    std::fs::write(&path, y).expect("write the environment");
    path
}

#[tokio::main]
async fn main() -> Result<()> {
    ensure_test_image()?;
    // The hosts' own leases live a minute: an apply of 100 on a loaded
    // 2-core machine can leave a server too busy to answer a renewal
    // within the default 10 s, which is no figure of etcd's.
    let bed = TestBed::new(BedOptions {
        server_args: vec!["--lock-ttl-ms".into(), "60000".into()],
        ..BedOptions::hosts(3)
    })?;
    let etcd = EtcdCluster::start(&bed);
    let one = [BedContainer::new(
        bed.container_name("b1"),
        0,
        bed.subnet_ip(20),
    )];
    let with = write(&bed, "one-etcd.yaml", &one, Some(&etcd));
    let without = write(&bed, "one.yaml", &one, None);

    // The lock alone, through the client's own code: connect (mutual
    // TLS), lease, transaction, revoke.
    let env = environment::load(&with)?;
    let c = env.cluster.clone().expect("a cluster section");
    let mut locks = Vec::new();
    for _ in 0..=LOCK_ROUNDS {
        let began = Instant::now();
        let s = cluster::acquire(&env, &c, "run", None).await?;
        s.release().await;
        locks.push(began.elapsed());
    }
    locks.remove(0);
    let lock = median(locks);
    // One address: reserve and release, under one lock.
    let s = cluster::acquire(&env, &c, "run", None).await?;
    let names: Vec<String> = env.containers.iter().map(|c| c.name.clone()).collect();
    let mut reserves = Vec::new();
    for _ in 0..LOCK_ROUNDS {
        let began = Instant::now();
        s.reserve(&env.containers).await?;
        s.release_containers(&names).await?;
        reserves.push(began.elapsed());
    }
    s.release().await;
    let reserve = median(reserves);
    println!(
        "figure: etcd lock (connect + acquire + release), median of {LOCK_ROUNDS}: {:.1} ms",
        ms(lock)
    );
    println!(
        "figure: reservation of one address + its release, median of {LOCK_ROUNDS}: {:.2} ms (reserve and release: one transaction each, and a range read for the release)",
        ms(reserve)
    );

    // run of one container, with and without etcd.
    let mut runs = [Vec::new(), Vec::new()];
    for _ in 0..RUN_ROUNDS {
        for (i, file) in [&without, &with].into_iter().enumerate() {
            runs[i].push(timed(&bed, file, &["run"])?);
            timed(&bed, file, &["destroy"])?;
        }
    }
    let [run_plain, run_etcd] = runs.map(median);
    // Printed now: the apply of many below takes minutes.
    println!(
        "figure: run of one container: {:.0} ms without etcd, {:.0} ms with (medians of {RUN_ROUNDS}); lock + reservation = {:.1} ms = {:.2}% of the run",
        ms(run_plain),
        ms(run_etcd),
        ms(lock + reserve),
        100.0 * ms(lock + reserve) / ms(run_plain)
    );

    // apply of MANY containers on the three hosts, with and without.
    let many: Vec<BedContainer> = (0..MANY)
        .map(|i| {
            BedContainer::new(
                bed.container_name(&format!("m{i}")),
                i % 3,
                bed.subnet_ip(100 + u32::try_from(i).unwrap_or(0)),
            )
        })
        .collect();
    let many_with = write(&bed, "many-etcd.yaml", &many, Some(&etcd));
    let many_without = write(&bed, "many.yaml", &many, None);
    // The reservations of an apply of MANY: one call, as apply makes it.
    let many_env = environment::load(&many_with)?;
    let s = cluster::acquire(&many_env, &c, "apply", None).await?;
    let names: Vec<String> = many_env.containers.iter().map(|c| c.name.clone()).collect();
    let began = Instant::now();
    s.reserve(&many_env.containers).await?;
    let reserve_many = began.elapsed();
    s.release_containers(&names).await?;
    s.release().await;
    println!(
        "figure: reservation of {MANY} addresses in one call (16 at once): {:.0} ms, {:.2} ms per address",
        ms(reserve_many),
        ms(reserve_many) / 100.0
    );
    let apply_plain = timed(&bed, &many_without, &["apply", "--yes"])?;
    timed(&bed, &many_without, &["destroy"])?;
    let apply_etcd = timed(&bed, &many_with, &["apply", "--yes"])?;
    timed(&bed, &many_with, &["destroy"])?;

    let apply_cost = lock + reserve_many;
    println!(
        "figure: apply of {MANY} containers: {:.0} ms without etcd, {:.0} ms with; lock + {MANY} reservations = {:.0} ms = {:.2}% of the apply",
        ms(apply_plain),
        ms(apply_etcd),
        ms(apply_cost),
        100.0 * ms(apply_cost) / ms(apply_plain)
    );
    drop(etcd);
    bed.teardown()?;
    Ok(())
}
