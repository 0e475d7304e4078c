//! The relying party: who latchkey is to an authenticator (the rp id) and
//! the page origins whose ceremonies it accepts, over `webauthn-rs`, which
//! does every check of a credential (CBOR, client data, rp id hash, flags,
//! signature, counter).

use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

/// How long a ceremony's challenge lives (also the browser's timeout).
pub const CHALLENGE_LIFETIME_SECONDS: i64 = 300;

/// Why the relying party cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelyingPartyError {
    /// An origin is not `scheme://host[:port]`.
    #[error("passkey origin {0:?} is not an origin (scheme://host[:port])")]
    NotAnOrigin(String),
    /// An origin's host is neither the rp id nor under it.
    #[error("passkey origin {origin:?} is not on the relying party id {rp_id:?} (its host must be {rp_id} or end in .{rp_id})")]
    OutsideRpId {
        /// The origin.
        origin: String,
        /// The configured rp id.
        rp_id: String,
    },
    /// With HTTPS on, an `http://` origin.
    #[error("passkey origin {0:?} is not https:// while LATCHKEY_HTTPS is on")]
    NotHttps(String),
    /// `webauthn-rs` refused the settings.
    #[error("relying party: {0}")]
    Refused(String),
}

/// The configured relying party.
pub struct RelyingParty {
    pub(super) webauthn: Webauthn,
    origins: Vec<String>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// A relying party `rp_id` named `rp_name`, accepting ceremonies of
    /// exactly `origins` (at least one; each on `rp_id`, and `https://`
    /// when `https`).
    pub fn new(
        rp_id: &str,
        rp_name: &str,
        origins: &[String],
        https: bool,
    ) -> Result<Self, RelyingPartyError> {
        let mut urls = Vec::with_capacity(origins.len());
        for origin in origins {
            let url = origin_url(origin)?;
            if !host_fits(rp_id, &url) {
                return Err(RelyingPartyError::OutsideRpId {
                    origin: origin.clone(),
                    rp_id: rp_id.to_owned(),
                });
            }
            if https && url.scheme() != "https" {
                return Err(RelyingPartyError::NotHttps(origin.clone()));
            }
            urls.push(url);
        }
        let Some((first, others)) = urls.split_first() else {
            return Err(RelyingPartyError::Refused("no allowed origin".into()));
        };
        let refused =
            |e: webauthn_rs::prelude::WebauthnError| RelyingPartyError::Refused(e.to_string());
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(refused)?
            .rp_name(rp_name)
            .timeout(std::time::Duration::from_secs(
                CHALLENGE_LIFETIME_SECONDS.unsigned_abs(),
            ));
        for url in others {
            builder = builder.append_allowed_origin(url);
        }
        Ok(Self {
            webauthn: builder.build().map_err(refused)?,
            origins: urls
                .iter()
                .map(|u| u.origin().ascii_serialization())
                .collect(),
        })
    }

    /// The origins accepted.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }
}

/// The passkey origins to accept when none are configured: those of
/// `candidates` (the CORS origins and the app URL) whose host is `rp_id`
/// or under it, and only the `https://` ones when `https`; duplicates once.
pub fn derived_origins(rp_id: &str, candidates: &[String], https: bool) -> Vec<String> {
    let mut origins: Vec<String> = Vec::new();
    for candidate in candidates {
        let Ok(url) = origin_url(candidate) else {
            continue;
        };
        if !host_fits(rp_id, &url) || (https && url.scheme() != "https") {
            continue;
        }
        let origin = url.origin().ascii_serialization();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
}

/// `origin` as a URL, if it is `scheme://host[:port]` (an app URL's path is
/// dropped: a page's origin has none).
fn origin_url(origin: &str) -> Result<Url, RelyingPartyError> {
    let url =
        Url::parse(origin.trim()).map_err(|_| RelyingPartyError::NotAnOrigin(origin.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(RelyingPartyError::NotAnOrigin(origin.to_owned()));
    }
    let root = url
        .origin()
        .ascii_serialization()
        .parse::<Url>()
        .map_err(|_| RelyingPartyError::NotAnOrigin(origin.to_owned()))?;
    Ok(root)
}

/// Whether `url`'s host is the registrable `rp_id` or a subdomain of it.
fn host_fits(rp_id: &str, url: &Url) -> bool {
    url.domain().is_some_and(|host| {
        let host = host.to_ascii_lowercase();
        let rp_id = rp_id.to_ascii_lowercase();
        host == rp_id || host.ends_with(&format!(".{rp_id}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn derived_origins_keep_those_on_the_rp_id_once() {
        let candidates = strings(&[
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://localhost:5173",
            "http://localhost:3000/app",
            "https://evil-localhost.com",
        ]);
        assert_eq!(
            derived_origins("localhost", &candidates, false),
            strings(&["http://localhost:3000", "http://localhost:5173"])
        );
    }

    #[test]
    fn behind_https_only_https_origins_are_derived() {
        let candidates = strings(&[
            "http://app.example.com",
            "https://app.example.com",
            "https://example.com:8443",
        ]);
        assert_eq!(
            derived_origins("example.com", &candidates, true),
            strings(&["https://app.example.com", "https://example.com:8443"])
        );
    }

    #[test]
    fn configured_origins_off_the_rp_id_or_not_https_are_refused() {
        assert!(matches!(
            RelyingParty::new(
                "example.com",
                "x",
                &strings(&["https://example.org"]),
                false
            ),
            Err(RelyingPartyError::OutsideRpId { .. })
        ));
        assert!(matches!(
            RelyingParty::new(
                "example.com",
                "x",
                &strings(&["http://app.example.com"]),
                true
            ),
            Err(RelyingPartyError::NotHttps(_))
        ));
        assert!(matches!(
            RelyingParty::new("example.com", "x", &strings(&["app.example.com"]), false),
            Err(RelyingPartyError::NotAnOrigin(_))
        ));
        assert!(RelyingParty::new("example.com", "x", &[], false).is_err());
        let rp = RelyingParty::new(
            "example.com",
            "x",
            &strings(&["https://app.example.com", "https://example.com"]),
            true,
        )
        .unwrap();
        assert_eq!(
            rp.origins(),
            ["https://app.example.com", "https://example.com"]
        );
    }
}
