//! `LATCHKEY_SMTP_URL`: `smtp://[user:pass@]host[:port]` (STARTTLS
//! required, unless the host is a loopback address) or
//! `smtps://[user:pass@]host[:port]` (TLS from the first byte).

use std::net::IpAddr;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::MailConfigError;

/// Why an SMTP URL is refused. Never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    /// Neither `smtp://` nor `smtps://`.
    #[error("the scheme must be smtp:// or smtps://")]
    Scheme,
    /// No host.
    #[error("no host")]
    Host,
    /// The port is not a number from 1 to 65535.
    #[error("the port must be a number from 1 to 65535")]
    Port,
    /// A `%` escape in the user or password is not valid UTF-8 hex.
    #[error("bad %-escape in the user or password")]
    Escape,
}

/// How to reach the SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// Host name or address (without brackets).
    pub host: String,
    /// Port (default 587 for `smtp`, 465 for `smtps`).
    pub port: u16,
    /// `smtps://`.
    pub implicit_tls: bool,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn percent_decode(raw: &str) -> Result<String, SmtpUrlError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(SmtpUrlError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| SmtpUrlError::Escape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SmtpUrlError::Escape)
}

impl SmtpUrl {
    /// Parse an SMTP URL. A path or query after the authority is ignored.
    pub fn parse(url: &str) -> Result<Self, SmtpUrlError> {
        let url = url.trim();
        let (implicit_tls, rest) = if let Some(rest) = strip_prefix_ci(url, "smtps://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "smtp://") {
            (false, rest)
        } else {
            return Err(SmtpUrlError::Scheme);
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let credentials = userinfo
            .map(|u| {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Ok::<_, SmtpUrlError>((percent_decode(user)?, percent_decode(pass)?))
            })
            .transpose()?;
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or(SmtpUrlError::Host)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(SmtpUrlError::Port)?),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(SmtpUrlError::Host);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(SmtpUrlError::Port)?,
            None if implicit_tls => 465,
            None => 587,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            implicit_tls,
            credentials,
        })
    }

    /// Whether the host is this machine (`localhost`, 127.0.0.0/8, ::1),
    /// the one case where mail may travel without TLS.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// What TLS this URL asks for: implicit TLS for `smtps`, STARTTLS
    /// required for `smtp` to another host, none to a loopback address.
    pub fn tls(&self) -> Result<Tls, MailConfigError> {
        if !self.implicit_tls && self.is_loopback() {
            return Ok(Tls::None);
        }
        let parameters = TlsParameters::new(self.host.clone())
            .map_err(|e| MailConfigError::Tls(e.to_string()))?;
        Ok(if self.implicit_tls {
            Tls::Wrapper(parameters)
        } else {
            Tls::Required(parameters)
        })
    }

    /// The transport.
    pub fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailConfigError> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .port(self.port)
                .tls(self.tls()?)
                .hello_name(ClientId::Domain("latchkey".to_owned()))
                .timeout(Some(std::time::Duration::from_secs(20)));
        if let Some((user, pass)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(builder.build())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn smtp_urls_give_host_port_tls_and_credentials() {
        let u = SmtpUrl::parse("smtp://user%40x:p%3Ass@mail.example.com").unwrap();
        assert_eq!(u.host, "mail.example.com");
        assert_eq!(u.port, 587);
        assert!(!u.implicit_tls && !u.is_loopback());
        assert_eq!(u.credentials, Some(("user@x".into(), "p:ss".into())));
        assert!(matches!(u.tls().unwrap(), Tls::Required(_)));

        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!(u.port, 465);
        assert!(matches!(u.tls().unwrap(), Tls::Wrapper(_)));

        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(u.port, 2525);
        assert!(matches!(u.tls().unwrap(), Tls::None));
        let u = SmtpUrl::parse("smtp://[::1]:25").unwrap();
        assert_eq!(u.host, "::1");
        assert!(u.is_loopback());
        assert!(matches!(
            SmtpUrl::parse("smtps://localhost:2465")
                .unwrap()
                .tls()
                .unwrap(),
            Tls::Wrapper(_)
        ));
    }

    #[test]
    fn bad_smtp_urls_are_refused_without_echoing_the_password() {
        assert_eq!(SmtpUrl::parse("http://x"), Err(SmtpUrlError::Scheme));
        assert_eq!(SmtpUrl::parse("smtp://"), Err(SmtpUrlError::Host));
        assert_eq!(SmtpUrl::parse("smtp://h:0"), Err(SmtpUrlError::Port));
        assert_eq!(SmtpUrl::parse("smtp://h:99999"), Err(SmtpUrlError::Port));
        assert_eq!(SmtpUrl::parse("smtp://u:%zz@h"), Err(SmtpUrlError::Escape));
        let u = SmtpUrl::parse("smtp://u:hunter2@h").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn the_smtp_url_parser_never_panics(raw in "(smtps?://)?.{0,48}") {
            if let Ok(u) = SmtpUrl::parse(&raw) {
                prop_assert!(!u.host.is_empty());
                prop_assert!(u.port > 0);
            }
        }
    }
}
