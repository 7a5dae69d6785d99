//! What each action is made of: the call on the container's host and the
//! DNS and Puppet registration around `run` and `destroy`, and the
//! `register` / `deregister` actions that repair it alone.
//!
//! The client never touches a registry file: it asks the server of the host
//! that runs the DNS container (or the Puppet master) to edit its own files,
//! and the servers to run the commands inside containers. On `run`: cert
//! clean in the master (for a new container), the run, registration, then
//! the Puppet agent in the container. On `destroy`: the destroy, then
//! deregistration and cert clean.

use std::collections::BTreeMap;

use dockstack_proto as pb;

use super::rpc::{self, Client, Clients, Failure};
use super::{Action, OpError};
use crate::connect::Connector;
use crate::environment::{Container, Environment, PuppetRegistration};
use crate::progress::{Printer, Progress};

/// Exit codes of `puppet agent -t` that mean success: it implies
/// `--detailed-exitcodes`, where 2 says changes were applied.
const AGENT_SUCCESS: [i32; 2] = [0, 2];

/// Applies `action` to `c`, with its registration. `client` is the
/// connection to `c`'s host (or why there is none).
pub(super) async fn act(
    clients: &Clients,
    client: Result<Client, Failure>,
    action: Action,
    c: &Container,
    printer: &dyn Printer,
) -> Result<Option<pb::ContainerInfo>, OpError> {
    let ctx = Ctx {
        clients,
        c,
        printer,
        conn: clients.connector(),
    };
    ctx.recipe(client, action).await.map_err(|f| OpError {
        host: c.host.clone(),
        container: c.name.clone(),
        code: f.code,
        message: f.message,
    })
}

/// The Puppet registration of `c` when it is a Puppet node: it has a
/// service and is not the master itself (whose cert is its CA's).
fn puppet_node<'e>(env: &'e Environment, c: &Container) -> Option<&'e PuppetRegistration> {
    env.registration
        .puppet
        .as_ref()
        .filter(|p| c.service.is_some() && p.master != c.name)
}

/// `{name}`, `{fqdn}` and `{ip}` of a registration command line.
fn substitute(command: &str, c: &Container) -> String {
    command
        .replace("{name}", &c.name)
        .replace("{fqdn}", &c.fqdn())
        .replace("{ip}", &c.ip.to_string())
}

/// The host that runs a registry container of the environment.
fn host_of(env: &Environment, container: &str) -> Result<String, Failure> {
    env.container(container)
        .map(|r| r.host.clone())
        .ok_or_else(|| {
            Failure::new(format!(
                "container {container} is not in the environment file"
            ))
        })
}

struct Ctx<'a> {
    clients: &'a Clients,
    c: &'a Container,
    printer: &'a dyn Printer,
    conn: &'a Connector,
}

impl Ctx<'_> {
    /// `action`'s call on the container's host, under this context.
    async fn operate(
        &self,
        client: &mut Client,
        action: Action,
    ) -> Result<Option<pb::ContainerInfo>, Failure> {
        rpc::operate(
            client,
            action,
            self.c,
            &self.clients.environment,
            self.printer,
            self.conn,
        )
        .await
    }

    async fn recipe(
        &self,
        client: Result<Client, Failure>,
        action: Action,
    ) -> Result<Option<pb::ContainerInfo>, Failure> {
        let (env, c, conn) = (&self.clients.env, self.c, self.conn);
        match action {
            Action::Register => self.registration(true).await.map(|()| None),
            Action::Deregister => self.registration(false).await.map(|()| None),
            Action::Run | Action::Replace => {
                let mut client = client?;
                let node = puppet_node(env, c);
                // A run that only checks an existing container must not
                // clean the certificate it is using; a replacement is a new
                // node under the old one's name.
                if let Some(p) = node
                    && (action == Action::Replace || !rpc::exists(&mut client, c, conn).await?)
                {
                    self.cert_clean(p).await;
                }
                let info = self.operate(&mut client, action).await?;
                let state = if c.state { "running" } else { "created" };
                self.registration(true).await.map_err(|f| {
                    f.context(|e| {
                        format!("{} is {state}, but its registration failed: {e}", c.name)
                    })
                })?;
                match node {
                    Some(p) if c.state => {
                        let agent = substitute(&p.agent, c);
                        self.exec(&c.host, &c.name, &agent, &AGENT_SUCCESS)
                            .await
                            .map_err(|f| {
                                f.context(|e| {
                                    format!(
                                        "{} is running and registered, but the Puppet agent failed: {e}",
                                        c.name
                                    )
                                })
                            })?;
                    }
                    Some(_) => self
                        .printer
                        .progress(&c.name, Progress::Step("puppet: not running: no agent run")),
                    None => {}
                }
                Ok(info)
            }
            Action::Destroy => {
                let mut client = client?;
                let done = self.operate(&mut client, action).await?;
                let deregistered = self.registration(false).await;
                if let Some(p) = puppet_node(env, c) {
                    self.cert_clean(p).await;
                }
                deregistered.map_err(|f| {
                    f.context(|e| {
                        format!(
                            "{} is destroyed, but its deregistration failed: {e}",
                            c.name
                        )
                    })
                })?;
                Ok(done)
            }
            Action::Start | Action::Restart | Action::Stop | Action::Show => {
                self.operate(&mut client?, action).await
            }
        }
    }

    /// Registers (`add`) or deregisters `c` on the DNS container's host and
    /// on the master's host (one request when they are the same host). Every
    /// host is asked even when one fails, so a deregistration removes what
    /// it can; the errors are joined, with the first one's code.
    async fn registration(&self, add: bool) -> Result<(), Failure> {
        let env = &self.clients.env;
        let c = self.c;
        let mut requests: BTreeMap<String, pb::RegisterRequest> = BTreeMap::new();
        let request = |host: &String| pb::RegisterRequest {
            host: host.clone(),
            name: c.name.clone(),
            fqdn: c.fqdn(),
            ip: c.ip.to_string(),
            ip6: c.ip6.map(|n| n.ip().to_string()).unwrap_or_default(),
            service: c.service.clone().unwrap_or_default(),
            dns: None,
            puppet: None,
        };
        if let Some(dns) = &env.registration.dns {
            let host = host_of(env, &dns.container)?;
            requests
                .entry(host.clone())
                .or_insert_with(|| request(&host))
                .dns = Some(pb::DnsTarget {
                container: dns.container.clone(),
                hostsfile: dns.hostsfile.display().to_string(),
                reload: substitute(&dns.reload, c),
            });
        }
        if let Some(p) = &env.registration.puppet
            && c.service.is_some()
        {
            let host = host_of(env, &p.master)?;
            requests
                .entry(host.clone())
                .or_insert_with(|| request(&host))
                .puppet = Some(pb::PuppetTarget {
                master: p.master.clone(),
                hieradata: p.hieradata.display().to_string(),
                sitepp: p.sitepp.display().to_string(),
            });
        }
        let mut errors: Vec<Failure> = Vec::new();
        for (host, req) in requests {
            let what = match (&req.dns, &req.puppet) {
                (Some(_), Some(_)) => "dns and puppet",
                (Some(_), None) => "dns",
                _ => "puppet",
            };
            let done = async {
                let mut client = self.clients.get(&host).await?;
                rpc::register(&mut client, add, req, &c.name, self.printer, self.conn).await
            }
            .await;
            if let Err(f) = done {
                errors.push(f.context(|e| format!("{what} on host {host}: {e}")));
            }
        }
        match errors.first() {
            None => Ok(()),
            Some(first) => Err(Failure {
                code: first.code,
                message: errors
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// Runs `command` inside `container` on `host`, its output under `c`'s name.
    async fn exec(
        &self,
        host: &str,
        container: &str,
        command: &str,
        success: &[i32],
    ) -> Result<(), Failure> {
        let mut client = self.clients.get(host).await?;
        let req = pb::ExecRequest {
            host: host.to_string(),
            container: container.to_string(),
            command: command.to_string(),
            success_codes: success.to_vec(),
        };
        rpc::exec(&mut client, req, &self.c.name, self.printer, self.conn).await
    }

    /// Cleans `c`'s certificate in the master. A failure is a warning: the
    /// master has no certificate for a node that never ran (Puppet's
    /// `cert clean` then fails), and a stale one is what the next run's
    /// clean is for.
    async fn cert_clean(&self, p: &PuppetRegistration) {
        let command = substitute(&p.certclean, self.c);
        let done = match host_of(&self.clients.env, &p.master) {
            Ok(host) => self.exec(&host, &p.master, &command, &[]).await,
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            self.printer.progress(
                &self.c.name,
                Progress::Warning(&format!("cert clean in {}: {e}", p.master)),
            );
        }
    }
}
#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;

    pub(in crate::ops) fn env() -> Environment {
        let text = "\
containerhosts:
  h1: {ip: 10.1.0.1}
  h2: {ip: 10.1.0.2}
containers:
  web1: {image: web, ip: 10.0.0.3, mask: 16, bridge: br0, host: h2, domain: endor.lab, service: haproxy}
  plain1: {image: web, ip: 10.0.0.4, mask: 16, bridge: br0, host: h2}
  puppet1: {image: puppet, ip: 10.0.0.2, mask: 16, bridge: br0, host: h1, service: puppet}
  dns1: {image: dns, ip: 10.0.0.1, mask: 16, bridge: br0, host: h1}
registration:
  dns: {container: dns1, hostsfile: /srv/dns/dockstack.dns}
  puppet: {master: puppet1, hieradata: /srv/common.yaml, sitepp: /srv/site.pp}
";
        crate::environment::parse(Path::new("environment.yaml"), text).unwrap()
    }

    #[test]
    fn placeholders_are_the_containers() {
        let env = env();
        let web = env.container("web1").unwrap();
        assert_eq!(
            substitute("puppet cert clean {fqdn} # {name} {ip} {fqdn}", web),
            "puppet cert clean web1.endor.lab # web1 10.0.0.3 web1.endor.lab"
        );
    }

    #[test]
    fn puppet_nodes_have_a_service_and_are_not_the_master() {
        let env = env();
        let node = |n| puppet_node(&env, env.container(n).unwrap()).is_some();
        assert!(node("web1"));
        assert!(!node("plain1"), "no service");
        assert!(!node("puppet1"), "the master itself");
        assert_eq!(host_of(&env, "puppet1").unwrap(), "h1");
    }
}
