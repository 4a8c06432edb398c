//! Network exposure by coverage: whether a set of CIDR blocks together is the whole
//! IPv4 or IPv6 internet, and which admin ports a protocol and port range open.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// Ports whose exposure to the internet the catalog calls administrative.
pub const ADMIN_PORTS: &[u16] = &[
    21, 22, 23, 445, 3306, 3389, 5432, 5985, 5986, 6379, 9200, 27017,
];

/// The address range of a CIDR block, in one family's space (IPv4 addresses as `u128`
/// below 2^32).
fn range(cidr: &str) -> Option<(bool, u128, u128)> {
    let (address, prefix) = cidr.trim().split_once('/')?;
    let prefix: u32 = prefix.trim().parse().ok()?;
    let address = address.trim();
    let (v6, bits, value) = if let Ok(v4) = address.parse::<Ipv4Addr>() {
        (false, 32, u128::from(u32::from(v4)))
    } else {
        let v6 = address.parse::<Ipv6Addr>().ok()?;
        (true, 128, u128::from(v6))
    };
    if prefix > bits {
        return None;
    }
    let host_bits = bits - prefix;
    let size_minus_one = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let start = value & !size_minus_one;
    Some((v6, start, start + size_minus_one))
}

/// Whether the blocks together cover every IPv4 address or every IPv6 address
/// (`0.0.0.0/0`; `0.0.0.0/1` with `128.0.0.0/1`; `::/0`…). Text that is not a CIDR
/// block covers nothing.
pub fn covers_internet<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> bool {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (is_v6, start, end) in cidrs.into_iter().filter_map(range) {
        if is_v6 {
            v6.push((start, end));
        } else {
            v4.push((start, end));
        }
    }
    covers(v4, u128::from(u32::MAX)) || covers(v6, u128::MAX)
}

fn covers(mut ranges: Vec<(u128, u128)>, last: u128) -> bool {
    ranges.sort_unstable();
    // The first address not yet covered.
    let mut next: u128 = 0;
    for (start, end) in ranges {
        if start > next {
            return false;
        }
        if end >= next {
            if end == last {
                return true;
            }
            next = end + 1;
        }
    }
    false
}

/// A port number from a JSON number or numeric string.
pub fn port(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The admin ports a protocol (name or IANA number) and port range open; `None` ports
/// mean every port, and so does `-1` at either end (EC2).
pub fn admin_ports(protocol: &str, ports: Option<(i64, i64)>) -> Vec<u16> {
    match protocol.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" => ADMIN_PORTS.to_vec(),
        "tcp" | "udp" | "sctp" | "6" | "17" | "132" => match ports {
            None => ADMIN_PORTS.to_vec(),
            Some((from, to)) if from == -1 || to == -1 => ADMIN_PORTS.to_vec(),
            Some((from, to)) => ADMIN_PORTS
                .iter()
                .copied()
                .filter(|&p| (from..=to).contains(&i64::from(p)))
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// Sources allowed to reach some ports.
#[derive(Debug, Default)]
pub struct Exposure {
    pub ports: Vec<u16>,
    pub sources: Vec<String>,
}

/// Whether some admin port is open to the whole internet, counting every exposure
/// that opens it together (two halves of IPv4 on port 22 are the internet on 22; one
/// half on 22 and the other on 3389 are not).
pub fn admin_port_open(exposures: &[Exposure]) -> bool {
    ADMIN_PORTS.iter().any(|port| {
        covers_internet(
            exposures
                .iter()
                .filter(|e| e.ports.contains(port))
                .flat_map(|e| e.sources.iter().map(String::as_str)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_internet_together_or_not_at_all() {
        let yes: [&[&str]; 6] = [
            &["0.0.0.0/0"],
            &["10.1.2.3/0"],
            &["0.0.0.0/1", "128.0.0.0/1"],
            &["128.0.0.0/2", "0.0.0.0/1", "192.0.0.0/2"],
            &["::/0"],
            &["::/1", "8000::/1"],
        ];
        for cidrs in yes {
            assert!(covers_internet(cidrs.iter().copied()), "{cidrs:?}");
        }
        let no: [&[&str]; 7] = [
            &["0.0.0.0/1"],
            &["0.0.0.0/1", "128.0.0.0/2"],
            &["0.0.0.0/1", "::/1", "192.0.0.0/2"],
            &["10.0.0.0/8", "172.16.0.0/12"],
            &["not a block", "0.0.0.0/33"],
            &["::/1"],
            &[],
        ];
        for cidrs in no {
            assert!(!covers_internet(cidrs.iter().copied()), "{cidrs:?}");
        }
        // A mixed set counts per family.
        assert!(covers_internet(["10.0.0.0/8", "::/1", "8000::/1"]));
    }

    #[test]
    fn ports_open_by_protocol_and_range() {
        assert_eq!(admin_ports("tcp", Some((22, 22))), [22]);
        assert_eq!(admin_ports("6", Some((20, 25))), [21, 22, 23]);
        assert_eq!(admin_ports("TCP", Some((443, 443))), Vec::<u16>::new());
        assert_eq!(admin_ports("-1", None).len(), ADMIN_PORTS.len());
        assert_eq!(admin_ports("tcp", Some((-1, -1))).len(), ADMIN_PORTS.len());
        assert_eq!(admin_ports("icmp", None), Vec::<u16>::new());
        assert_eq!(admin_ports("1", None), Vec::<u16>::new());
    }

    #[test]
    fn an_admin_port_is_open_only_when_its_own_sources_cover_the_internet() {
        let open = |ports: &[u16], sources: &[&str]| Exposure {
            ports: ports.to_vec(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert!(admin_port_open(&[
            open(&[22], &["0.0.0.0/1"]),
            open(&[22, 3389], &["128.0.0.0/1"]),
        ]));
        assert!(!admin_port_open(&[
            open(&[22], &["0.0.0.0/1"]),
            open(&[3389], &["128.0.0.0/1"]),
        ]));
        assert!(!admin_port_open(&[open(&[], &["0.0.0.0/0"])]));
    }
}
