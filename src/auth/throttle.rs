//! Login throttling policy: which counters an attempt is charged to, and
//! when they say stop. The counters themselves live in the store, so every
//! instance sharing a database enforces one limit.

use std::net::IpAddr;

use crate::store::ThrottleWindow;

/// Limits on login attempts within a fixed window.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Attempts allowed per account in one window.
    pub per_account: u32,
    /// Attempts allowed per client address in one window.
    pub per_address: u32,
    /// Registrations allowed per client address in one window.
    pub registrations_per_address: u32,
    /// Passkey login challenges one client address may hold live at once
    /// (unanswered, unexpired).
    pub passkey_challenges_per_address: u32,
    /// Window length in seconds.
    pub window_seconds: i64,
}

/// The counter key for a client address. IPv6 clients are counted per /64,
/// the block one subscriber usually controls, so rotating addresses within
/// it does not reset the limit.
pub fn address_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The counter key for an account: its id when it exists, else the
/// identifier that was tried (so unknown accounts are throttled alike).
pub fn account_key(user_id: Option<i64>, identifier_kind: &str, identifier: &str) -> String {
    match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("unknown:{identifier_kind}:{identifier}"),
    }
}

/// A client that logged in to an account before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownClient {
    /// It holds a device token of the account (the token's nonce).
    Device(String),
    /// Its address (an [`address_key`]) logged in to the account.
    Address(String),
}

/// The counter of account `user_id` for a client it knows: failed logins
/// from it are limited as strictly as the account's shared counter, but
/// apart from it, so an attacker elsewhere cannot use them up.
pub fn known_client_key(user_id: i64, client: &KnownClient) -> String {
    match client {
        KnownClient::Device(nonce) => format!("user:{user_id}:device:{nonce}"),
        KnownClient::Address(address) => format!("user:{user_id}:{address}"),
    }
}

/// The counter of current-password guesses made through session `sid` of
/// account `user_id` (at a password change). Cleared with the account.
pub fn session_key(user_id: i64, sid: &str) -> String {
    format!("user:{user_id}:session:{sid}")
}

/// The counter of registrations from a client address.
pub fn registration_key(addr: IpAddr) -> String {
    format!("register:{}", address_key(addr))
}

impl ThrottlePolicy {
    /// The verdict on an attempt, written once for every throttled flow:
    /// `Some(seconds until it may be retried)` when any of the counted
    /// windows holds more attempts than its limit (the longest wait of
    /// those), `None` when the attempt may proceed.
    pub fn verdict(&self, now: i64, counted: &[(&ThrottleWindow, u32)]) -> Option<u64> {
        counted
            .iter()
            .filter(|(window, limit)| window.attempts > i64::from(*limit))
            .map(|(window, _)| self.retry_after(window.window_start, now))
            .max()
    }

    /// Seconds until a window that began at `window_start` ends, at least 1.
    pub fn retry_after(&self, window_start: i64, now: i64) -> u64 {
        u64::try_from(window_start + self.window_seconds - now)
            .unwrap_or(0)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(attempts: i64, window_start: i64) -> ThrottleWindow {
        ThrottleWindow {
            attempts,
            window_start,
        }
    }

    #[test]
    fn the_verdict_is_the_longest_wait_of_the_windows_over_their_limits() {
        let p = ThrottlePolicy {
            per_account: 5,
            per_address: 20,
            registrations_per_address: 10,
            passkey_challenges_per_address: 100,
            window_seconds: 900,
        };
        let (account, address) = (window(6, 1_000), window(21, 500));
        assert_eq!(
            p.verdict(1_100, &[(&account, 5), (&address, 20)]),
            Some(800)
        );
        assert_eq!(
            p.verdict(1_100, &[(&account, 5), (&window(20, 500), 20)]),
            Some(800)
        );
        assert_eq!(
            p.verdict(1_100, &[(&window(5, 1_000), 5), (&address, 20)]),
            Some(300)
        );
        // At the limit is still allowed: the limit counts attempts, the
        // one being judged included.
        assert_eq!(
            p.verdict(1_100, &[(&window(5, 1_000), 5), (&window(20, 500), 20)]),
            None
        );
        assert_eq!(p.verdict(1_100, &[]), None);
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_key() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), "addr:10.1.2.3");
    }

    #[test]
    fn a_known_client_counts_apart_from_the_accounts_shared_counter() {
        let device = known_client_key(7, &KnownClient::Device("ab".into()));
        let address = known_client_key(7, &KnownClient::Address("addr:10.0.0.1".into()));
        let shared = account_key(Some(7), "email", "x");
        assert_eq!(device, "user:7:device:ab");
        assert_eq!(address, "user:7:addr:10.0.0.1");
        assert!(device != shared && address != shared);
        // Every one of them is cleared with the account (`user unlock`).
        assert!(device.starts_with("user:7:") && address.starts_with("user:7:"));
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window_and_never_zero() {
        let p = ThrottlePolicy {
            per_account: 1,
            per_address: 1,
            registrations_per_address: 1,
            passkey_challenges_per_address: 1,
            window_seconds: 900,
        };
        assert_eq!(p.retry_after(1_000, 1_100), 800);
        assert_eq!(p.retry_after(1_000, 5_000), 1);
    }
}
