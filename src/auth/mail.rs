//! Mail the flows send: the tokens links carry, the settings, and the
//! templates messages are rendered from. Rendering happens when a message
//! is queued, in the transaction of the state it announces; delivery is
//! the sender's (`crate::mail`).

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::ids;
use crate::store::{NewEmailToken, NewMessage};

/// Bytes of randomness in an email token (256 bits; the contract asks 128+).
const TOKEN_BYTES: usize = 32;
/// Its length as unpadded URL-safe base64.
const TOKEN_CHARS: usize = 43;

/// A token mailed as a link: random, URL-safe, stored only as its hash.
pub struct EmailToken(String);

impl std::fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailToken([redacted])")
    }
}

impl EmailToken {
    /// A new token from the operating system's random number generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        use base64::Engine as _;
        let bytes = ids::random::<TOKEN_BYTES>()?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// A token as a client presents it, if it has the shape of one: exactly
    /// 43 characters of the URL-safe base64 alphabet that decode to 32 bytes.
    pub fn parse(raw: &str) -> Option<Self> {
        use base64::Engine as _;
        if raw.len() != TOKEN_CHARS
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        (decoded.len() == TOKEN_BYTES).then(|| Self(raw.to_owned()))
    }

    /// The token itself (for the link, never for a log).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: SHA-256 of the token, hex. A database leak yields no
    /// usable link; 256 random bits need no salt or slow hash.
    pub fn hash(&self) -> String {
        ids::hex(&Sha256::digest(self.0.as_bytes()))
    }
}

/// What a stored token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /auth/password/reset/confirm`.
    PasswordReset,
    /// `POST /auth/email/verify`.
    VerifyEmail,
    /// `POST /auth/email/change/confirm`.
    ChangeEmail,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// The messages latchkey sends, one template each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The link to verify the address (registration, resend).
    VerifyEmail,
    /// The password reset link.
    PasswordReset,
    /// "Your password was changed" (after a reset).
    PasswordChanged,
    /// The link confirming a new address, sent to it.
    ChangeEmail,
    /// "Your address is being changed", sent to the current one.
    EmailChangeNotice,
    /// "Two-factor authentication is on" (an enrolment was confirmed).
    MfaEnabled,
    /// "Two-factor authentication is off".
    MfaDisabled,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::VerifyEmail,
        Kind::PasswordReset,
        Kind::PasswordChanged,
        Kind::ChangeEmail,
        Kind::EmailChangeNotice,
        Kind::MfaEnabled,
        Kind::MfaDisabled,
    ];

    /// The template's name (its files are `<name>.subject`, `<name>.txt`,
    /// `<name>.html` in `LATCHKEY_MAIL_TEMPLATE_DIR`).
    pub fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::ChangeEmail => "change_email",
            Self::EmailChangeNotice => "email_change_notice",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
        }
    }
}

/// One message's subject, plain-text and HTML templates.
#[derive(Debug, Clone)]
pub struct Template {
    subject: String,
    text: String,
    html: String,
}

/// Every message's templates: built in, each file replaceable by the operator.
#[derive(Debug, Clone)]
pub struct Templates(HashMap<Kind, Template>);

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Self {
        Self(
            Kind::ALL
                .iter()
                .map(|&kind| {
                    let (subject, text, html) = builtin(kind);
                    (
                        kind,
                        Template {
                            subject: subject.to_owned(),
                            text: text.to_owned(),
                            html: html.to_owned(),
                        },
                    )
                })
                .collect(),
        )
    }

    /// The built-in templates, with every file found in `dir` replacing
    /// its built-in counterpart (`verify_email.subject`, `verify_email.txt`,
    /// `verify_email.html`, ...). A missing file keeps the built-in one.
    pub fn with_overrides_from(dir: &Path) -> std::io::Result<Self> {
        let mut templates = Self::builtin();
        for (kind, template) in &mut templates.0 {
            for (suffix, slot) in [
                ("subject", &mut template.subject),
                ("txt", &mut template.text),
                ("html", &mut template.html),
            ] {
                let path = dir.join(format!("{}.{suffix}", kind.name()));
                match std::fs::read_to_string(&path) {
                    Ok(content) => *slot = content,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", path.display()),
                        ))
                    }
                }
            }
        }
        Ok(templates)
    }
}

fn builtin(kind: Kind) -> (&'static str, &'static str, &'static str) {
    match kind {
        Kind::VerifyEmail => (
            "{app_name}: confirm your email address",
            "Hello {name},\n\nPlease confirm that {email} is your address for {app_name} by opening this link:\n\n{link}\n\nIf you did not sign up for {app_name}, ignore this message.\n",
            "<p>Hello {name},</p><p>Please confirm that {email} is your address for {app_name}:</p><p><a href=\"{link}\">Confirm my email address</a></p><p>If you did not sign up for {app_name}, ignore this message.</p>",
        ),
        Kind::PasswordReset => (
            "{app_name}: reset your password",
            "Hello {name},\n\nSomeone (hopefully you) asked to reset the password of your {app_name} account. To choose a new password, open this link within the hour:\n\n{link}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n",
            "<p>Hello {name},</p><p>Someone (hopefully you) asked to reset the password of your {app_name} account. To choose a new password, open this link within the hour:</p><p><a href=\"{link}\">Reset my password</a></p><p>If you did not ask for this, ignore this message: your password stays as it is.</p>",
        ),
        Kind::PasswordChanged => (
            "{app_name}: your password was changed",
            "Hello {name},\n\nThe password of your {app_name} account was just reset, and every session was logged out.\n\nIf this was not you, reset your password at once and contact the {app_name} team.\n",
            "<p>Hello {name},</p><p>The password of your {app_name} account was just reset, and every session was logged out.</p><p>If this was not you, reset your password at once and contact the {app_name} team.</p>",
        ),
        Kind::ChangeEmail => (
            "{app_name}: confirm your new email address",
            "Hello {name},\n\nTo make {new_email} the address of your {app_name} account, open this link:\n\n{link}\n\nIf you did not ask for this, ignore this message.\n",
            "<p>Hello {name},</p><p>To make {new_email} the address of your {app_name} account, open this link:</p><p><a href=\"{link}\">Confirm my new address</a></p><p>If you did not ask for this, ignore this message.</p>",
        ),
        Kind::EmailChangeNotice => (
            "{app_name}: your email address is being changed",
            "Hello {name},\n\nSomeone logged in to your {app_name} account asked to change its address from {email} to {new_email}. The change happens once the new address is confirmed.\n\nIf this was not you, change your password at once.\n",
            "<p>Hello {name},</p><p>Someone logged in to your {app_name} account asked to change its address from {email} to {new_email}. The change happens once the new address is confirmed.</p><p>If this was not you, change your password at once.</p>",
        ),
        Kind::MfaEnabled => (
            "{app_name}: two-factor authentication is on",
            "Hello {name},\n\nTwo-factor authentication was just turned on for your {app_name} account, and every other session was logged out. From now on a login needs a code from your authenticator app, or one of your recovery codes.\n\nIf this was not you, reset your password at once and contact the {app_name} team.\n",
            "<p>Hello {name},</p><p>Two-factor authentication was just turned on for your {app_name} account, and every other session was logged out. From now on a login needs a code from your authenticator app, or one of your recovery codes.</p><p>If this was not you, reset your password at once and contact the {app_name} team.</p>",
        ),
        Kind::MfaDisabled => (
            "{app_name}: two-factor authentication is off",
            "Hello {name},\n\nTwo-factor authentication was just turned off for your {app_name} account, and every other session was logged out. A login now needs only the password.\n\nIf this was not you, reset your password at once and contact the {app_name} team.\n",
            "<p>Hello {name},</p><p>Two-factor authentication was just turned off for your {app_name} account, and every other session was logged out. A login now needs only the password.</p><p>If this was not you, reset your password at once and contact the {app_name} team.</p>",
        ),
    }
}

/// Replace each `{var}` of `vars` in `template` in one pass, so a value
/// that itself holds `{link}` (a user's name, say) is never expanded;
/// unknown `{...}` stays as written. `escape` is applied to every value.
pub fn fill(template: &str, vars: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (close, *value))
        });
        match value {
            Some((close, value)) => {
                out.push_str(&escape(value));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML-escape a value put into an HTML body.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verbatim(value: &str) -> String {
    value.to_owned()
}

/// A rendered message, ready to queue.
pub struct Rendered {
    /// Template.
    pub kind: Kind,
    /// The address.
    pub recipient: String,
    /// Subject (one line).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl Rendered {
    /// The outbox row for user `user_id`.
    pub fn message(&self, user_id: i64, now: i64) -> NewMessage<'_> {
        NewMessage {
            user_id,
            kind: self.kind.name(),
            recipient: &self.recipient,
            subject: &self.subject,
            text: &self.text,
            html: &self.html,
            now,
        }
    }
}

/// A token and the message carrying it.
pub struct TokenMail {
    /// The token's hash (what is stored).
    pub token_hash: String,
    /// What it is for.
    pub purpose: Purpose,
    /// The address it goes to.
    pub email: String,
    /// Expiry.
    pub expires_at: i64,
    /// The message.
    pub rendered: Rendered,
}

impl TokenMail {
    /// The token row for user `user_id`.
    pub fn token(&self, user_id: i64, now: i64) -> NewEmailToken<'_> {
        NewEmailToken {
            token_hash: &self.token_hash,
            user_id,
            purpose: self.purpose.as_str(),
            email: &self.email,
            now,
            expires_at: self.expires_at,
        }
    }
}

/// Mail settings as configured.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `LATCHKEY_APP_NAME`.
    pub app_name: String,
    /// `LATCHKEY_APP_URL`, without a trailing slash.
    pub app_url: String,
    /// `LATCHKEY_VERIFY_EMAIL_URL`: a link template holding `{token}`.
    pub verify_email_url: Option<String>,
    /// `LATCHKEY_RESET_PASSWORD_URL`.
    pub reset_password_url: Option<String>,
    /// `LATCHKEY_CONFIRM_EMAIL_CHANGE_URL`.
    pub confirm_email_change_url: Option<String>,
    /// Reset (and email-change) link lifetime, seconds.
    pub reset_lifetime: i64,
    /// Verification link lifetime, seconds.
    pub verification_lifetime: i64,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL`.
    pub require_verified_email: bool,
    /// Mail requests (reset, resend) per email address or user per window;
    /// beyond it nothing is sent.
    pub per_email: u32,
    /// Mail requests per client address per window; beyond it, 429.
    pub per_address: u32,
    /// The window of both, seconds.
    pub window_seconds: i64,
    /// The message templates.
    pub templates: Templates,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            app_name: "latchkey".into(),
            app_url: "http://localhost:3000".into(),
            verify_email_url: None,
            reset_password_url: None,
            confirm_email_change_url: None,
            reset_lifetime: 3_600,
            verification_lifetime: 259_200,
            require_verified_email: false,
            per_email: 3,
            per_address: 20,
            window_seconds: 3_600,
            templates: Templates::builtin(),
        }
    }
}

impl MailSettings {
    /// The front-end link for `token` of `purpose`: the configured template
    /// with `{token}` replaced, or `LATCHKEY_APP_URL` and the default path.
    /// Never built from a request.
    pub fn link(&self, purpose: Purpose, token: &EmailToken) -> String {
        let (custom, path) = match purpose {
            Purpose::VerifyEmail => (&self.verify_email_url, "/verify-email"),
            Purpose::PasswordReset => (&self.reset_password_url, "/reset-password"),
            Purpose::ChangeEmail => (&self.confirm_email_change_url, "/confirm-email-change"),
        };
        match custom {
            Some(template) => template.replace("{token}", token.expose()),
            None => format!(
                "{}{path}?token={}",
                self.app_url.trim_end_matches('/'),
                token.expose()
            ),
        }
    }

    /// Render `kind` for `recipient` with `vars` (plus `app_name`).
    pub fn render(&self, kind: Kind, recipient: &str, vars: &[(&str, &str)]) -> Rendered {
        let mut all = vec![("app_name", self.app_name.as_str())];
        all.extend_from_slice(vars);
        let builtin;
        let template = match self.templates.0.get(&kind) {
            Some(t) => t,
            None => {
                builtin = Templates::builtin();
                &builtin.0[&kind]
            }
        };
        // One line: no header injection, whatever a name holds.
        let subject: String = fill(&template.subject, &all, verbatim)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Rendered {
            kind,
            recipient: recipient.to_owned(),
            subject: subject.trim().to_owned(),
            text: fill(&template.text, &all, verbatim),
            html: fill(&template.html, &all, escape_html),
        }
    }

    /// A new token of `purpose` for `email`, and its message `kind`.
    pub fn token_mail(
        &self,
        purpose: Purpose,
        kind: Kind,
        email: &str,
        vars: &[(&str, &str)],
        now: i64,
    ) -> Result<TokenMail, getrandom::Error> {
        let token = EmailToken::generate()?;
        let link = self.link(purpose, &token);
        let lifetime = match purpose {
            Purpose::VerifyEmail => self.verification_lifetime,
            Purpose::PasswordReset | Purpose::ChangeEmail => self.reset_lifetime,
        };
        let mut all = vec![("link", link.as_str())];
        all.extend_from_slice(vars);
        Ok(TokenMail {
            token_hash: token.hash(),
            purpose,
            email: email.to_owned(),
            expires_at: now.saturating_add(lifetime),
            rendered: self.render(kind, email, &all),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_parse_and_hash_to_64_hex_characters() {
        let token = EmailToken::generate().unwrap();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        let parsed = EmailToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(token.hash().len(), 64);
        assert_ne!(EmailToken::generate().unwrap().hash(), token.hash());
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_refused() {
        let good = EmailToken::generate().unwrap();
        let good = good.expose();
        assert!(EmailToken::parse(&good[1..]).is_none());
        assert!(EmailToken::parse(&format!("{good}A")).is_none());
        assert!(EmailToken::parse(&good.replace(&good[..1], "+")).is_none());
        assert!(EmailToken::parse("").is_none());
        // 43 characters whose last one carries bits past the 32 bytes.
        assert!(EmailToken::parse(&format!("{}B", &good[..42])).is_none());
    }

    #[test]
    fn debug_hides_the_token() {
        let token = EmailToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn links_point_at_the_app_or_the_configured_template() {
        let token = EmailToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let mut settings = MailSettings {
            app_url: "https://app.example.com/".into(),
            ..MailSettings::default()
        };
        assert_eq!(
            settings.link(Purpose::PasswordReset, &token),
            format!(
                "https://app.example.com/reset-password?token={}",
                token.expose()
            )
        );
        settings.verify_email_url = Some("https://x.example/#/v/{token}".into());
        assert_eq!(
            settings.link(Purpose::VerifyEmail, &token),
            format!("https://x.example/#/v/{}", token.expose())
        );
    }

    #[test]
    fn fill_expands_each_placeholder_once_and_escapes_html_values() {
        let vars = [("name", "{link} <b>"), ("link", "https://a/?t=1&u=2")];
        assert_eq!(
            fill("Hi {name}: {link} {unknown}", &vars, verbatim),
            "Hi {link} <b>: https://a/?t=1&u=2 {unknown}"
        );
        assert_eq!(
            fill("<a href=\"{link}\">{name}</a>", &vars, escape_html),
            "<a href=\"https://a/?t=1&amp;u=2\">{link} &lt;b&gt;</a>"
        );
    }

    #[test]
    fn subjects_are_one_line() {
        let settings = MailSettings::default();
        let r = settings.render(Kind::PasswordChanged, "a@b.c", &[("name", "x")]);
        assert_eq!(r.subject, "latchkey: your password was changed");
        let mut settings = settings;
        settings.app_name = "Evil\r\nBcc: x@y.z".into();
        let r = settings.render(Kind::PasswordChanged, "a@b.c", &[("name", "x")]);
        assert!(!r.subject.contains(['\r', '\n']));
    }

    proptest! {
        #[test]
        fn the_token_parser_never_panics_and_accepts_only_43_url_safe_characters(raw in ".{0,64}") {
            if let Some(token) = EmailToken::parse(&raw) {
                prop_assert_eq!(token.expose().len(), TOKEN_CHARS);
                prop_assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }

        #[test]
        fn the_token_parser_accepts_every_32_byte_value(bytes in proptest::array::uniform32(any::<u8>())) {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            prop_assert!(EmailToken::parse(&raw).is_some());
        }

        #[test]
        fn fill_never_panics(template in ".{0,64}", value in ".{0,16}") {
            let _ = fill(&template, &[("name", &value)], escape_html);
        }
    }
}
