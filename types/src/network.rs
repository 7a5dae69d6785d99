//! The addresses port security lets a container send from besides its own
//! (`allowed_addresses`, a keepalived VIP say).

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

/// At most this many `allowed_addresses`: each is two OpenFlow rules on the
/// host.
pub const MAX_ALLOWED_ADDRESSES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowedAddressError {
    #[error("`{0}` is no IPv4 address or CIDR (like 10.0.0.5 or 10.0.0.0/28)")]
    Invalid(String),
    #[error("{0} allowed addresses, at most {MAX_ALLOWED_ADDRESSES}")]
    TooMany(usize),
}

/// An IPv4 address (a /32) or CIDR with a `/LEN` of 0 to 32 in digits, its
/// host bits cleared.
pub fn parse_allowed_address(text: &str) -> Result<Ipv4Network, AllowedAddressError> {
    let bad = || AllowedAddressError::Invalid(text.to_owned());
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, len)) => {
            // u8's parse takes a sign ("+8"): digits only.
            if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            (
                ip,
                len.parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(bad)?,
            )
        }
        None => (text, 32),
    };
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let net = Ipv4Network::new(ip, prefix).map_err(|_| bad())?;
    Ipv4Network::new(net.network(), prefix).map_err(|_| bad())
}

/// The whole list: each parsed, duplicates dropped, at most
/// [`MAX_ALLOWED_ADDRESSES`].
pub fn parse_allowed_addresses<S: AsRef<str>>(
    texts: &[S],
) -> Result<Vec<Ipv4Network>, AllowedAddressError> {
    if texts.len() > MAX_ALLOWED_ADDRESSES {
        return Err(AllowedAddressError::TooMany(texts.len()));
    }
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        let net = parse_allowed_address(t.as_ref())?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_cidrs_are_normalised() {
        assert_eq!(
            parse_allowed_address("10.0.1.7/28").unwrap().to_string(),
            "10.0.1.0/28"
        );
        assert_eq!(
            parse_allowed_address("10.0.0.5").unwrap().to_string(),
            "10.0.0.5/32"
        );
        for bad in [
            "10.0.0",
            "10.0.0.1/33",
            "fe80::1",
            "10.0.0.1/",
            "vip",
            "10.0.0.1/+8",
        ] {
            assert!(parse_allowed_address(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("10.1.0.{i}")).collect();
        assert_eq!(
            parse_allowed_addresses(&many),
            Err(AllowedAddressError::TooMany(65))
        );
    }
}
