//! The policy's rules of a container's network identity: which networks
//! its `allowed_addresses` may name (port security lets it send from them),
//! which VLANs it may join, and which MACs it may take. Loose, any of them
//! undoes port security: `0.0.0.0/0` lets a container send as anyone, the
//! gateway's MAC or address makes it the gateway, a VLAN reaches another
//! tenant's network.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use dockstack_types::link;
use ipnetwork::Ipv4Network;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Bad, PolicyError, Refusal, Role, refuse};
use crate::spec::ContainerSpec;

/// The operator's default narrowest `allowed_addresses` entry: 16
/// addresses (a keepalived VIP is one).
pub const DEFAULT_MIN_PREFIX: u8 = 28;

/// 0.0.0.0/0: a role without a rule starts from it.
const ANY: Ipv4Network = match Ipv4Network::new_checked(Ipv4Addr::UNSPECIFIED, 0) {
    Some(n) => n,
    None => panic!("0.0.0.0/0 is a network"),
};

/// Where `allowed_addresses` entries may lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRule {
    /// Each entry must lie within one of these; an empty list allows none.
    pub within: Vec<Within>,
    /// No entry may be wider than this prefix (hold more addresses).
    pub min_prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    /// The container's own subnet (its `ip` with its prefix).
    Subnet,
    Network(Ipv4Network),
}

/// A MAC a container may be given: one, or all that begin with some
/// octets (`02:aa:*`), or any (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacPattern {
    octets: Vec<u8>,
    exact: bool,
}

impl MacPattern {
    fn parse(text: &str) -> Option<Self> {
        let (body, exact) = match text.strip_suffix('*') {
            Some(b) => (b.strip_suffix(':').unwrap_or(b), false),
            None => (text, true),
        };
        let octets: Option<Vec<u8>> = if body.is_empty() {
            Some(Vec::new())
        } else {
            body.split(':')
                .map(|p| {
                    (p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| u8::from_str_radix(p, 16).ok())
                        .flatten()
                })
                .collect()
        };
        let octets = octets?;
        let fits = if exact {
            octets.len() == 6
        } else {
            octets.len() < 6
        };
        fits.then_some(MacPattern { octets, exact })
    }

    fn matches(&self, mac: [u8; 6]) -> bool {
        mac.starts_with(&self.octets) && (!self.exact || self.octets.len() == 6)
    }
}

impl std::fmt::Display for MacPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: Vec<String> = self.octets.iter().map(|o| format!("{o:02x}")).collect();
        match (self.exact, hex.is_empty()) {
            (true, _) => f.write_str(&hex.join(":")),
            (false, true) => f.write_str("*"),
            (false, false) => write!(f, "{}:*", hex.join(":")),
        }
    }
}

/// A role's rules of the network; `None` in a field: anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub allowed_addresses: Option<AddressRule>,
    /// VLANs a container may be given (ranges of ids); empty: none.
    pub vlans: Option<Vec<RangeInclusive<u16>>>,
    /// MACs a container may be asked to have; empty: only the one derived
    /// from its IP, which is its own as long as its IP is.
    pub macs: Option<Vec<MacPattern>>,
}

impl NetworkRules {
    pub fn unrestricted() -> Self {
        NetworkRules {
            allowed_addresses: None,
            vlans: None,
            macs: None,
        }
    }

    /// The operator's: `allowed_addresses` only within its own subnet, none
    /// wider than a /28; no VLAN; no MAC but its derived one.
    pub fn operator() -> Self {
        NetworkRules {
            allowed_addresses: Some(AddressRule {
                within: vec![Within::Subnet],
                min_prefix: DEFAULT_MIN_PREFIX,
            }),
            vlans: Some(Vec::new()),
            macs: Some(Vec::new()),
        }
    }

    pub fn none() -> Self {
        NetworkRules {
            allowed_addresses: Some(AddressRule {
                within: Vec::new(),
                min_prefix: 32,
            }),
            vlans: Some(Vec::new()),
            macs: Some(Vec::new()),
        }
    }

    /// Checks `spec`'s `allowed_addresses`, `vlan` and `mac`.
    pub fn check(&self, role: Role, spec: &ContainerSpec) -> Result<(), Refusal> {
        if let Some(rule) = &self.allowed_addresses {
            for (i, a) in spec.allowed_addresses.iter().enumerate() {
                check_allowed(role, rule, spec, *a)
                    .map_err(|rule| refuse(format!("allowed_addresses[{i}]"), rule))?;
            }
        }
        if let (Some(allowed), Some(vlan)) = (&self.vlans, spec.vlan)
            && !allowed.iter().any(|r| r.contains(&vlan))
        {
            return Err(refuse(
                "vlan",
                format!("the {role} policy allows only vlans {}", vlan_list(allowed)),
            ));
        }
        if let (Some(allowed), Some(mac)) = (&self.macs, spec.mac) {
            let derived = dockstack_types::Mac::from_ip(spec.address.ip());
            if mac != derived && !allowed.iter().any(|p| p.matches(mac.octets())) {
                let listed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                return Err(refuse(
                    "mac",
                    format!(
                        "the {role} policy allows no mac but the one derived from the ip ({derived}){}",
                        if listed.is_empty() {
                            String::new()
                        } else {
                            format!(" and {}", listed.join(", "))
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Why `a` may not be in `spec`'s `allowed_addresses`, if it may not.
fn check_allowed(
    role: Role,
    rule: &AddressRule,
    spec: &ContainerSpec,
    a: Ipv4Network,
) -> Result<(), String> {
    if a.prefix() < rule.min_prefix {
        return Err(format!(
            "{a} is wider than the /{} the {role} policy allows",
            rule.min_prefix
        ));
    }
    let subnet = Ipv4Network::new(spec.address.network(), spec.address.prefix())
        .map_err(|e| e.to_string())?;
    let inside = rule.within.iter().any(|w| {
        let net = match w {
            Within::Subnet => subnet,
            Within::Network(n) => *n,
        };
        net.contains(a.network()) && net.prefix() <= a.prefix()
    });
    if !inside {
        let listed: Vec<String> = rule
            .within
            .iter()
            .map(|w| match w {
                Within::Subnet => format!("its own subnet {subnet}"),
                Within::Network(n) => n.to_string(),
            })
            .collect();
        return Err(format!(
            "{a} is outside what the {role} policy allows ({})",
            if listed.is_empty() {
                "nothing".to_string()
            } else {
                listed.join(", ")
            }
        ));
    }
    // Sending as the gateway would make the container the gateway.
    if let Some(g) = spec.gateway
        && a.contains(g)
    {
        return Err(format!("{a} holds the gateway {g}"));
    }
    Ok(())
}

fn vlan_list(ranges: &[RangeInclusive<u16>]) -> String {
    if ranges.is_empty() {
        return "none".into();
    }
    ranges
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}-{}", r.start(), r.end())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file's `allowed_addresses` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressSection {
    within: Option<Vec<Spanned<String>>>,
    min_prefix: Option<Spanned<u8>>,
}

/// A VLAN entry of the file: an id, or a range `FIRST-LAST`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum VlanEntry {
    Id(u32),
    Range(String),
}

/// The file's network keys of one role, applied over `target`.
pub(super) fn apply(
    at: &str,
    addresses: Option<&AddressSection>,
    vlans: Option<&Spanned<Vec<VlanEntry>>>,
    macs: Option<&Spanned<Vec<String>>>,
    target: &mut NetworkRules,
    bad: Bad<'_>,
) -> Result<(), PolicyError> {
    if let Some(section) = addresses {
        let mut rule = target.allowed_addresses.clone().unwrap_or(AddressRule {
            within: vec![Within::Network(ANY)],
            min_prefix: 0,
        });
        if let Some(within) = &section.within {
            rule.within = Vec::new();
            for (i, w) in within.iter().enumerate() {
                let parsed = if w.value == "subnet" {
                    Some(Within::Subnet)
                } else {
                    dockstack_types::network::parse_allowed_address(&w.value)
                        .ok()
                        .map(Within::Network)
                };
                rule.within.push(parsed.ok_or_else(|| {
                    bad(
                        w.referenced.line(),
                        format!("{at}.allowed_addresses.within[{i}]"),
                        format!(
                            "{:?} is neither `subnet` (the container's own) nor an IPv4 CIDR",
                            w.value
                        ),
                    )
                })?);
            }
        }
        if let Some(p) = &section.min_prefix {
            if p.value > 32 {
                return Err(bad(
                    p.referenced.line(),
                    format!("{at}.allowed_addresses.min_prefix"),
                    format!("{} is not a prefix length of 0 to 32", p.value),
                ));
            }
            rule.min_prefix = p.value;
        }
        target.allowed_addresses = Some(rule);
    }
    if let Some(v) = vlans {
        let mut ranges = Vec::new();
        for (i, e) in v.value.iter().enumerate() {
            let range = match e {
                VlanEntry::Id(id) => u16::try_from(*id).ok().map(|id| id..=id),
                VlanEntry::Range(text) => text.split_once('-').and_then(|(a, b)| {
                    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
                    (a <= b).then_some(a..=b)
                }),
            }
            .filter(|r| {
                link::VLAN.contains(&u32::from(*r.start()))
                    && link::VLAN.contains(&u32::from(*r.end()))
            });
            ranges.push(range.ok_or_else(|| {
                bad(
                    v.referenced.line(),
                    format!("{at}.vlans[{i}]"),
                    format!(
                        "not a VLAN id of {}..{} nor a range FIRST-LAST of them",
                        link::VLAN.start(),
                        link::VLAN.end()
                    ),
                )
            })?);
        }
        target.vlans = Some(ranges);
    }
    if let Some(m) = macs {
        let mut patterns = Vec::new();
        for (i, text) in m.value.iter().enumerate() {
            patterns.push(MacPattern::parse(text).ok_or_else(|| {
                bad(
                    m.referenced.line(),
                    format!("{at}.macs[{i}]"),
                    format!(
                        "{text:?} is not a MAC, a prefix of whole octets ending in :* (02:aa:*), nor *"
                    ),
                )
            })?);
        }
        target.macs = Some(patterns);
    }
    Ok(())
}
