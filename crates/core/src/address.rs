//! Which network addresses a webhook may be sent to: only public unicast ones. Loopback,
//! private, shared (CGNAT), link-local (cloud metadata lives there), unspecified,
//! multicast, broadcast, documentation and reserved ranges are refused, also when
//! wrapped in an IPv4-mapped, NAT64 or 6to4 IPv6 address. An IPv6 address must be in
//! global unicast space (2000::/3), and Teredo, whose IPv4 part is hidden, is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when a webhook may be delivered to this address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 (64:ff9b::/96): the IPv4 address in the last 32 bits decides.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16): a relay delivers to the IPv4 address in bits 16..48.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return is_public_v4(v4);
    }
    // Only global unicast space is ever assigned to a public host: this leaves out
    // loopback, unspecified, multicast, unique-local, link-local and the ::/96 forms.
    (s[0] & 0xe000) == 0x2000
        // IETF protocol assignments (2001::/23: Teredo, which hides the IPv4 address it
        // reaches, benchmarking, ORCHID) and documentation (2001:db8::/32).
        && !(s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        && (s[0] & 0xfff0) != 0x3ff0 // documentation, RFC 9637
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn refuses_every_internal_range() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
            "100::1",
            "4000::1",
            "3fff::1",
            "2001:2::1",
            "2001:10::1",
            "192.88.99.1",
            "2002:c058:6301::",
        ] {
            assert!(!public(s), "{s} must be refused");
        }
    }

    #[test]
    fn accepts_public_addresses() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "203.0.114.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "2a00:1450:4001::1",
        ] {
            assert!(public(s), "{s} must be allowed");
        }
    }
}
