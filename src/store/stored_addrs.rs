//! Client addresses as the store keeps them: their bytes, not their text
//! (migration 0011; docs/benchmarks.md, "Cost as the data grows").
//! Converted here, at the edge of storage, so every other layer keeps the
//! text form.
//!
//! * A session's address: an IP address's 4 or 16 bytes in `client_ip`;
//!   anything that is not an IP address in its canonical text form (and
//!   the address of a session started before 0011) as text in
//!   `client_addr_text`. Exactly one of the two is set, or neither.
//! * A known client's key (`known_clients.client_key`, an address key
//!   `auth::throttle::address_key` made): a tag byte then the address's
//!   bytes, `4` and the 4 bytes of an IPv4 address, `6` and the first 8 of
//!   an IPv6 /64; any other key as `0` then its UTF-8. A key written before
//!   0011 is its bare UTF-8 ("addr:..."), which never starts with one of
//!   those tags, so no two keys share their bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::StoreError;

/// A session's client address as its two columns: (`client_ip`,
/// `client_addr_text`).
pub(super) fn session_addr(addr: Option<&str>) -> (Option<Vec<u8>>, Option<&str>) {
    let Some(addr) = addr else {
        return (None, None);
    };
    match addr.parse::<IpAddr>() {
        // Only the canonical text: it is what comes back.
        Ok(ip) if ip.to_string() == addr => (
            Some(match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            }),
            None,
        ),
        _ => (None, Some(addr)),
    }
}

/// The text of a session's client address from its two columns.
pub(super) fn session_addr_text(
    ip: Option<Vec<u8>>,
    text: Option<String>,
) -> Result<Option<String>, StoreError> {
    let Some(ip) = ip else {
        return Ok(text);
    };
    let addr = if let Ok(v4) = <[u8; 4]>::try_from(ip.as_slice()) {
        IpAddr::V4(Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(ip.as_slice()) {
        IpAddr::V6(Ipv6Addr::from(v6))
    } else {
        return Err(StoreError::Other(format!(
            "a stored client address has {} bytes",
            ip.len()
        )));
    };
    Ok(Some(addr.to_string()))
}

/// The tag of an IPv4 address key.
const TAG_V4: u8 = 4;
/// The tag of an IPv6 /64 address key.
const TAG_V6_64: u8 = 6;
/// The tag of any other key.
const TAG_TEXT: u8 = 0;

/// The stored bytes of address key `key`.
pub(super) fn address_key(key: &str) -> Vec<u8> {
    compact_address_key(key).unwrap_or_else(|| {
        let mut out = Vec::with_capacity(1 + key.len());
        out.push(TAG_TEXT);
        out.extend_from_slice(key.as_bytes());
        out
    })
}

/// The bytes a row written before migration 0011 holds for `key`.
pub(super) fn address_key_before_0011(key: &str) -> Vec<u8> {
    key.as_bytes().to_vec()
}

/// `key`'s tagged address bytes, when it is an address key in the exact
/// text `auth::throttle::address_key` makes.
fn compact_address_key(key: &str) -> Option<Vec<u8>> {
    let addr = key.strip_prefix("addr:")?;
    if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        let compact = [&[TAG_V4][..], &v4.octets()].concat();
        return (format!("addr:{v4}") == key).then_some(compact);
    }
    let groups = addr.strip_suffix("::/64")?;
    let mut compact = vec![TAG_V6_64];
    let mut count = 0;
    for group in groups.split(':') {
        // Lowercase hex without leading zeros, as `{:x}` prints a group.
        let canonical = !group.is_empty()
            && group.len() <= 4
            && group
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && (group == "0" || !group.starts_with('0'));
        if !canonical {
            return None;
        }
        let value = u16::from_str_radix(group, 16).ok()?;
        compact.extend_from_slice(&value.to_be_bytes());
        count += 1;
    }
    (count == 4).then_some(compact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_ipv4_session_address_is_stored_as_its_four_bytes() {
        assert_eq!(
            session_addr(Some("203.0.113.7")),
            (Some(vec![203, 0, 113, 7]), None)
        );
        assert_eq!(
            session_addr_text(Some(vec![203, 0, 113, 7]), None).unwrap(),
            Some("203.0.113.7".to_owned())
        );
    }

    #[test]
    fn an_ipv6_session_address_is_stored_as_its_sixteen_bytes() {
        for addr in ["2001:db8::1", "::1", "::ffff:10.1.2.3", "fe80::1:2:3:4"] {
            let (ip, text) = session_addr(Some(addr));
            assert_eq!(ip.as_ref().map(Vec::len), Some(16), "{addr}");
            assert_eq!(text, None);
            assert_eq!(session_addr_text(ip, None).unwrap().as_deref(), Some(addr));
        }
    }

    #[test]
    fn a_session_address_that_is_not_a_canonical_ip_address_is_kept_as_text() {
        for addr in [
            "unknown",
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "10.0.0.1:443",
            "",
        ] {
            assert_eq!(session_addr(Some(addr)), (None, Some(addr)), "{addr:?}");
            assert_eq!(
                session_addr_text(None, Some(addr.to_owned()))
                    .unwrap()
                    .as_deref(),
                Some(addr)
            );
        }
        assert_eq!(session_addr(None), (None, None));
        assert_eq!(session_addr_text(None, None).unwrap(), None);
    }

    #[test]
    fn a_stored_session_address_of_the_wrong_length_is_an_error_not_a_panic() {
        for len in [0, 3, 5, 15, 17] {
            assert!(
                session_addr_text(Some(vec![1; len]), None).is_err(),
                "{len}"
            );
        }
    }

    #[test]
    fn address_keys_are_stored_as_a_tag_and_the_addresses_bytes() {
        assert_eq!(address_key("addr:203.0.113.7"), vec![4, 203, 0, 113, 7]);
        assert_eq!(
            address_key("addr:2001:db8:0:a0::/64"),
            vec![6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0xa0]
        );
    }

    #[test]
    fn a_key_in_any_other_form_is_stored_as_tagged_text() {
        for key in [
            "addr:010.0.0.1",
            "addr:2001:0db8:0:a0::/64",
            "addr:2001:DB8:0:a0::/64",
            "addr:2001:db8:0::/64",
            "addr:2001:db8:0:a0:1::/64",
            "addr:2001:db8:0:a0::/48",
            "addr:",
            "user:7:device:ab",
            "",
        ] {
            let stored = address_key(key);
            assert_eq!(stored[0], TAG_TEXT, "{key:?}");
            assert_eq!(&stored[1..], key.as_bytes());
        }
    }

    #[test]
    fn the_bytes_written_before_0011_are_the_keys_text() {
        assert_eq!(
            address_key_before_0011("addr:203.0.113.7"),
            b"addr:203.0.113.7".to_vec()
        );
    }

    fn v6_64_key(segments: [u16; 4]) -> String {
        let [a, b, c, d] = segments;
        format!("addr:{a:x}:{b:x}:{c:x}:{d:x}::/64")
    }

    proptest! {
        #[test]
        fn every_session_address_comes_back_as_it_went_in(
            v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), text in "\\PC{0,40}"
        ) {
            for addr in [
                Ipv4Addr::from(v4).to_string(),
                Ipv6Addr::from(v6).to_string(),
                text,
            ] {
                let (ip, text) = session_addr(Some(&addr));
                prop_assert!(ip.is_none() || text.is_none());
                let back = session_addr_text(ip, text.map(str::to_owned)).unwrap();
                prop_assert_eq!(back.as_deref(), Some(addr.as_str()));
            }
        }

        #[test]
        fn two_different_keys_never_share_their_stored_bytes(
            a in any::<[u8; 4]>(), b in any::<[u8; 4]>(),
            c in any::<[u16; 4]>(), d in any::<[u16; 4]>(),
            s in "\\PC{0,30}", t in "\\PC{0,30}"
        ) {
            let keys = [
                format!("addr:{}", Ipv4Addr::from(a)),
                format!("addr:{}", Ipv4Addr::from(b)),
                v6_64_key(c),
                v6_64_key(d),
                s,
                t,
            ];
            for x in &keys {
                for y in &keys {
                    prop_assert_eq!(x == y, address_key(x) == address_key(y), "{:?} {:?}", x, y);
                    // Nor does a new key share the bytes of a row written
                    // before 0011, which are an address key's text.
                    if y.starts_with("addr:") {
                        prop_assert_ne!(address_key(x), address_key_before_0011(y));
                    }
                }
            }
        }

        // Keys in the text `auth::throttle::address_key` writes (copied in
        // `v6_64_key`; the store does not depend on auth). That the real
        // login's keys take the short form is checked against the database
        // in tests/upgrade.rs.
        #[test]
        fn address_keys_in_the_throttles_text_are_stored_compactly(v6 in any::<[u16; 8]>(), v4 in any::<[u8; 4]>()) {
            let six = v6_64_key([v6[0], v6[1], v6[2], v6[3]]);
            prop_assert_eq!(address_key(&six).len(), 9);
            let four = format!("addr:{}", Ipv4Addr::from(v4));
            prop_assert_eq!(address_key(&four).len(), 5);
        }
    }
}
