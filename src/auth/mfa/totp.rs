//! RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps) over RFC 4226
//! HOTP, and the RFC 4648 base32 the secret is shown in.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Steps accepted either side of the current one (clock drift, slow typing).
pub const WINDOW_STEPS: i64 = 1;

/// The time step of Unix time `now` (T0 = 0).
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// RFC 4226 HOTP value of `secret` at `counter`, with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation (RFC 4226 section 5.3).
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The 6-digit code of `secret` at time step `step`.
pub fn code_at_step(secret: &[u8], step: i64) -> u32 {
    hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS)
}

/// The step within ±[`WINDOW_STEPS`] of `now` whose code is `code`, if
/// any. Every candidate is computed and compared in constant time, so the
/// time taken does not tell which step (if any) matched.
pub fn matching_step(secret: &[u8], code: u32, now: i64) -> Option<i64> {
    let current = step_at(now);
    let mut found = None;
    for step in (current - WINDOW_STEPS)..=(current + WINDOW_STEPS) {
        if step < 0 {
            continue;
        }
        let candidate = code_at_step(secret, step);
        if bool::from(candidate.to_be_bytes().ct_eq(&code.to_be_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, without padding (what authenticator apps take).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the 20-byte ASCII seed, 8 digits.
    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let seed = b"12345678901234567890";
        let vectors: [(i64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (time, expected) in vectors {
            let counter = u64::try_from(step_at(time)).unwrap();
            assert_eq!(hotp(seed, counter, 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0..9, 6 digits.
    #[test]
    fn rfc_4226_hotp_test_vectors() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *want);
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = step_at(now);
        for offset in -1..=1 {
            let code = code_at_step(secret, step + offset);
            assert_eq!(matching_step(secret, code, now), Some(step + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = code_at_step(secret, step + offset);
            // A code two steps away may collide by chance with a near one;
            // this seed's do not.
            assert_eq!(matching_step(secret, code, now), None, "offset {offset}");
        }
    }

    #[test]
    fn base32_follows_rfc_4648() {
        // RFC 4648 section 10, padding removed.
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
