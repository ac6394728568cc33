//! The SSRF guard: an endpoint may only be a public address.
//!
//! Checked at registration and again at every delivery, on the addresses the host name
//! resolves to *then*; the delivery connects to the address that was checked (pinned), so a
//! name that resolves to a public address for the check and a private one for the connection
//! (DNS rebinding) gets nowhere. Refused: loopback, RFC 1918, CGNAT, link-local (with the
//! cloud metadata address 169.254.169.254), unique-local and site-local IPv6, unspecified,
//! multicast, broadcast and reserved ranges, documentation and benchmarking ranges, IPv4-mapped
//! and IPv4-compatible IPv6, and the IPv6 forms that embed an IPv4 address (NAT64, 6to4) when
//! it is one of these.
//!
//! `allow_private` (the local stack only) lets private targets and plain http through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    pub allow_private: bool,
}

/// Where a delivery goes: the URL, and the parts the connection is pinned by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: url::Url,
    pub host: String,
    pub port: u16,
}

/// Why a URL or address is refused: safe to show the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("must be an absolute https URL")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must be at most 2048 characters")]
    TooLong,
    #[error("must name a host")]
    NoHost,
    #[error("the host {0} is a {1} address, which endpoints may not use")]
    Forbidden(IpAddr, &'static str),
    #[error("the host does not resolve")]
    Unresolved,
}

/// The syntactic check: scheme, no credentials, a host; an IP literal is checked here too.
pub fn check_url(raw: &str, policy: TargetPolicy) -> Result<Target, Refusal> {
    if raw.len() > 2048 {
        return Err(Refusal::TooLong);
    }
    let url = url::Url::parse(raw).map_err(|_| Refusal::NotHttps)?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => return Err(Refusal::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    let host = match url.host() {
        None => return Err(Refusal::NoHost),
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => {
            check_ip(IpAddr::V4(ip), policy)?;
            ip.to_string()
        }
        Some(url::Host::Ipv6(ip)) => {
            check_ip(IpAddr::V6(ip), policy)?;
            ip.to_string()
        }
    };
    let port = url.port_or_known_default().ok_or(Refusal::NotHttps)?;
    Ok(Target { url, host, port })
}

/// Every resolved address must be allowed (one bad answer among good ones is refused, so a
/// resolver cannot be played); the first is the one to connect to.
pub fn check_addresses(addresses: &[IpAddr], policy: TargetPolicy) -> Result<IpAddr, Refusal> {
    let first = *addresses.first().ok_or(Refusal::Unresolved)?;
    for ip in addresses {
        check_ip(*ip, policy)?;
    }
    Ok(first)
}

pub fn check_ip(ip: IpAddr, policy: TargetPolicy) -> Result<(), Refusal> {
    if policy.allow_private {
        return Ok(());
    }
    match forbidden_kind(ip) {
        Some(kind) => Err(Refusal::Forbidden(ip, kind)),
        None => Ok(()),
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // A mapped address is how an IPv6 socket reaches an IPv4 one; no public name resolves
    // to it, so it is refused whatever it carries.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4).or(Some("IPv4-mapped"));
    }
    // Other forms that carry an IPv4 address are as safe as it.
    if s[..6] == [0; 6] {
        // IPv4-compatible (deprecated): never a real public destination.
        return Some("IPv4-compatible");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_kind(v4);
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return v4_kind(v4);
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "unique-local",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x2001 if s[1] == 0 => "Teredo",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
    };
    const LOCAL: TargetPolicy = TargetPolicy {
        allow_private: true,
    };

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                check_ip(ip, STRICT).is_err(),
                "{ip} should be refused ({:?})",
                forbidden_kind(ip)
            );
            assert!(check_ip(ip, LOCAL).is_ok());
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(check_ip(ip, STRICT), Ok(()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked() {
        let t = check_url("https://hooks.example.com:8443/in?x=1", STRICT).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("hooks.example.com", 8443));
        assert_eq!(check_url("https://example.com/", STRICT).unwrap().port, 443);
        assert_eq!(
            check_url("http://example.com/", STRICT),
            Err(Refusal::NotHttps)
        );
        assert!(check_url("http://127.0.0.1:4580/sinks/a", LOCAL).is_ok());
        assert_eq!(
            check_url("ftp://example.com/", LOCAL),
            Err(Refusal::NotHttps)
        );
        assert_eq!(
            check_url("https://user:pw@example.com/", STRICT),
            Err(Refusal::Credentials)
        );
        assert_eq!(check_url("not a url", STRICT), Err(Refusal::NotHttps));
        for literal in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://017700000001/",
        ] {
            assert!(
                matches!(check_url(literal, STRICT), Err(Refusal::Forbidden(..))),
                "{literal}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(check_url(&long, STRICT), Err(Refusal::TooLong));
    }

    #[test]
    fn one_bad_answer_refuses_the_name() {
        let good: IpAddr = "8.8.8.8".parse().unwrap();
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(check_addresses(&[good], STRICT), Ok(good));
        assert!(check_addresses(&[good, bad], STRICT).is_err());
        assert_eq!(check_addresses(&[], STRICT), Err(Refusal::Unresolved));
        assert_eq!(check_addresses(&[], LOCAL), Err(Refusal::Unresolved));
    }

    proptest! {
        #[test]
        fn private_v4_ranges_are_always_refused(a in any::<u32>()) {
            let ip = Ipv4Addr::from(a);
            let [o1, o2, ..] = ip.octets();
            let private = o1 == 10 || o1 == 127 || (o1 == 172 && (16..=31).contains(&o2))
                || (o1 == 192 && o2 == 168) || (o1 == 169 && o2 == 254)
                || (o1 == 100 && (64..=127).contains(&o2)) || o1 == 0 || o1 >= 224;
            if private {
                prop_assert!(check_ip(IpAddr::V4(ip), STRICT).is_err());
            }
            // Mapped into IPv6 it is always refused: no public name resolves to that form.
            prop_assert!(check_ip(IpAddr::V6(ip.to_ipv6_mapped()), STRICT).is_err());
        }

        #[test]
        fn ula_and_link_local_v6_are_always_refused(rest in any::<u128>()) {
            let ula = Ipv6Addr::from((0xfc00u128 << 112) | (rest >> 7));
            let link = Ipv6Addr::from((0xfe80u128 << 112) | (rest >> 10));
            prop_assert!(check_ip(IpAddr::V6(ula), STRICT).is_err());
            prop_assert!(check_ip(IpAddr::V6(link), STRICT).is_err());
        }
    }
}
