//! The second factor: TOTP (RFC 6238) with recovery codes. Enrolment
//! proves the user holds the secret before it counts; a password login of
//! an enrolled user yields only an `mfa_token` (see [`challenge`]), which
//! `login_mfa` exchanges with a code for a session.
//!
//! Every password login of an account with a second factor ends in
//! [`Auth::second_factor_challenge`]: the login looks the factor up with
//! the account, and starts a session only if none was confirmed by then
//! (see `Auth::open_session`). No other way of
//! proving the password (a reset, say) yields a session.

pub mod challenge;
pub mod code;
pub mod recovery;
pub mod sealed;
pub mod totp;

pub use code::Code;

use super::mail::Kind as MailKind;
use super::password::Password;
use super::reauth::{Reauth, WRONG_PASSWORD};
use super::{view, Auth, AuthError, ClientInfo, FieldErrors, LoggedIn, Principal, TokenRejection};
use crate::metrics::{MfaEvent, Revocation};
use crate::store::{Finish, NewChallenge, Proof, Settle, UserRecord};

/// The message of a wrong, replayed, used or malformed code.
pub const INVALID_CODE: &str = "Invalid code.";
/// How the second factor's routes name a wrong password.
const MFA_PASSWORD: Reauth = Reauth {
    field: "password",
    message: WRONG_PASSWORD,
    failed_event: "mfa_password_failed",
    throttled_event: "mfa_password_throttled",
};
/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "latchkey";
/// Methods a login can finish with.
pub const METHODS: [&str; 2] = ["totp", "recovery_code"];

/// The keys the second factor uses, derived from the server key.
#[derive(Clone)]
pub struct MfaKeys {
    /// Seals TOTP secrets.
    pub secrets: sealed::SecretBox,
    /// Keys recovery-code hashes.
    pub recovery: [u8; 32],
}

impl MfaKeys {
    /// The keys derived from `key`.
    pub fn derive(key: &super::SecretKey) -> Self {
        Self {
            secrets: sealed::SecretBox::new(key.derive("latchkey/mfa/totp-secret/v1")),
            recovery: key.derive("latchkey/mfa/recovery-code/v1"),
        }
    }
}

/// A login that needs its second factor.
pub struct MfaChallenge {
    /// The opaque token to present to `/auth/login/mfa`.
    pub token: String,
    /// The methods it accepts.
    pub methods: &'static [&'static str],
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaChallenge([redacted])")
    }
}

/// A pending TOTP enrolment, shown once.
pub struct TotpEnrolment {
    /// The secret, base32.
    pub secret: String,
    /// The `otpauth://` URI an authenticator app scans.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// A fresh set of recovery codes, shown once.
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes([redacted])")
    }
}

/// The second factors of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed TOTP secret.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys (they log in without a second step).
    pub passkeys: i64,
}

/// The second step of a login.
#[derive(Debug)]
pub struct MfaLogin {
    /// The `mfa_token` the password step gave.
    pub token: String,
    /// A TOTP or recovery code.
    pub code: Code,
}

fn invalid_code() -> AuthError {
    AuthError::Invalid(FieldErrors::one("code", INVALID_CODE))
}

impl Auth {
    /// Called by a password login of an account with a second factor once
    /// the password (whose stored hash is now `password_hash`) is right: a
    /// new challenge (the attempt stays counted on neither throttle counter,
    /// and the account's counter is not cleared: only a right code does
    /// that).
    pub(super) async fn second_factor_challenge(
        &self,
        user: &UserRecord,
        password_hash: &str,
        account_key: &str,
        address_key: &str,
        now: i64,
    ) -> Result<MfaChallenge, AuthError> {
        self.store
            .throttle_settle(&[], &[account_key, address_key])
            .await?;
        let token = challenge::generate()?;
        self.store
            .create_mfa_challenge(
                &NewChallenge {
                    token_hash: &challenge::hash(&token),
                    user_id: user.id,
                    password_digest: &challenge::password_digest(password_hash),
                    account_key,
                    address_key,
                    expires_at: now + challenge::LIFETIME_SECONDS,
                },
                now,
            )
            .await?;
        self.metrics.mfa(MfaEvent::Challenge);
        tracing::info!(target: "latchkey::security", event = "mfa_challenge", user_id = user.id);
        Ok(MfaChallenge {
            token,
            methods: &METHODS,
        })
    }

    /// Exchange an `mfa_token` and a code for a session. Runs to completion
    /// even if the client goes away (the attempt is counted, then settled).
    pub async fn login_mfa(
        &self,
        form: MfaLogin,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let (auth, client) = (self.clone(), client.clone());
        let attempt = async move { auth.login_mfa_to_completion(form, &client).await };
        tokio::spawn(crate::telemetry::in_current_request(attempt))
            .await
            .map_err(|e| AuthError::Internal(format!("login task failed: {e}")))?
    }

    async fn login_mfa_to_completion(
        &self,
        form: MfaLogin,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let refused = AuthError::Token(TokenRejection::Invalid);
        let token_hash = challenge::parse_and_hash(&form.token).ok_or(refused)?;
        let now = self.clock.now();
        let found = self
            .store
            .mfa_challenge(&token_hash, now, challenge::MAX_FAILURES)
            .await?
            .ok_or(AuthError::Token(TokenRejection::Invalid))?;

        // A code is a guess at the account like a password: counted first,
        // on the login's own counters, and settled by its outcome.
        let keys = [found.account_key.as_str(), found.address_key.as_str()];
        let [per_account, per_address] = self
            .store
            .throttle_hit(keys, now, self.throttle.window_seconds)
            .await?;
        let verdict = self.throttle.verdict(
            now,
            &[
                (&per_account, self.throttle.per_account),
                (&per_address, self.throttle.per_address),
            ],
        );
        if let Some(retry_after) = verdict {
            tracing::warn!(target: "latchkey::security", event = "mfa_throttled", user_id = found.user_id, client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }

        let user = self
            .store
            .user_by_id(found.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::Token(TokenRejection::Invalid))?;
        // The password changed since the password step: that proof is void.
        if !challenge::same_digest(&found.password_digest, &user.password_hash) {
            return Err(AuthError::Token(TokenRejection::Invalid));
        }
        let recovery_hash = match &form.code {
            Code::Recovery(code) => Some(recovery::hash(&self.mfa.recovery, user.id, code)),
            Code::Totp(_) => None,
        };
        let proof = match (&form.code, &recovery_hash) {
            (Code::Totp(code), _) => {
                let totp = self
                    .store
                    .totp_of(user.id)
                    .await?
                    .filter(|t| t.confirmed)
                    .ok_or(AuthError::Token(TokenRejection::Invalid))?;
                let secret = self.open_secret(user.id, &totp.secret_sealed)?;
                totp::matching_step(&secret, *code, now).map(Proof::TotpStep)
            }
            (Code::Recovery(_), Some(hash)) => Some(Proof::RecoveryHash(hash)),
            (Code::Recovery(_), None) => None,
        };
        let finish = match proof {
            Some(proof) => {
                self.store
                    .finish_mfa_challenge(&token_hash, user.id, proof, now, challenge::MAX_FAILURES)
                    .await?
            }
            None => Finish::ProofRefused,
        };
        match finish {
            Finish::Done => {}
            Finish::ChallengeGone => return Err(AuthError::Token(TokenRejection::Invalid)),
            Finish::ProofRefused => {
                self.store
                    .mfa_challenge_failed(&token_hash, challenge::MAX_FAILURES)
                    .await?;
                self.metrics.mfa(MfaEvent::Failure);
                tracing::info!(target: "latchkey::security", event = "mfa_failed", user_id = user.id, client = %client.addr);
                return Err(invalid_code());
            }
        }

        let (event, method) = match form.code {
            Code::Totp(_) => (MfaEvent::TotpAccepted, "totp"),
            Code::Recovery(_) => (MfaEvent::RecoveryCodeUsed, "recovery_code"),
        };
        self.metrics.mfa(event);
        self.metrics.login(crate::metrics::LoginOutcome::Success);
        tracing::info!(target: "latchkey::security", event = "mfa_login", user_id = user.id, method, client = %client.addr);
        let settle = Settle {
            clear: &[&found.account_key],
            forgive: &[&found.address_key],
        };
        let tokens = self
            .start_session(&user, client, &found.address_key, settle, now)
            .await?;
        Ok(LoggedIn {
            user: view(&user),
            tokens,
            device: self.devices.issue(user.id, &user.password_hash, now)?,
        })
    }

    /// Start (or restart) TOTP enrolment: a new secret, pending until
    /// confirmed with a code. Needs the password.
    pub async fn start_totp_enrolment(
        &self,
        caller: &Principal,
        password: Password,
    ) -> Result<TotpEnrolment, AuthError> {
        let user = self.reauthenticate(caller, password, MFA_PASSWORD).await?;
        let secret = super::ids::random::<{ totp::SECRET_BYTES }>()?;
        let sealed = self.mfa.secrets.seal(user.id, &secret)?;
        let now = self.clock.now();
        if !self
            .store
            .start_totp_enrolment(user.id, &sealed, now)
            .await?
        {
            return Err(AuthError::Invalid(FieldErrors::one(
                "non_field_errors",
                "Two-factor authentication is already enabled.",
            )));
        }
        let secret = totp::base32(&secret);
        self.metrics.mfa(MfaEvent::EnrolmentStarted);
        tracing::info!(target: "latchkey::security", event = "mfa_enrolment_started", user_id = user.id);
        Ok(TotpEnrolment {
            otpauth_uri: otpauth_uri(&secret, &user.email),
            secret,
        })
    }

    /// Confirm the pending enrolment with a current code: from now on
    /// login needs a second factor. Every other session of the user ends.
    pub async fn confirm_totp(
        &self,
        caller: &Principal,
        code: Code,
    ) -> Result<RecoveryCodes, AuthError> {
        let user_id = caller.user.id;
        let pending = self
            .store
            .totp_of(user_id)
            .await?
            .filter(|t| !t.confirmed)
            .ok_or_else(|| {
                AuthError::Invalid(FieldErrors::one(
                    "non_field_errors",
                    "No two-factor enrolment is pending.",
                ))
            })?;
        let secret = self.open_secret(user_id, &pending.secret_sealed)?;
        let now = self.clock.now();
        let step = code
            .totp()
            .and_then(|code| totp::matching_step(&secret, code, now))
            .ok_or_else(invalid_code)?;
        let (codes, hashes) = self.new_recovery_codes(user_id)?;
        let vars = [
            ("name", caller.user.name.as_str()),
            ("email", caller.user.email.as_str()),
        ];
        let notice = self
            .mail
            .render(MailKind::MfaEnabled, &caller.user.email, &vars);
        let ended = self
            .store
            .confirm_totp(
                user_id,
                step,
                &hashes,
                now,
                caller.session_id.as_str(),
                &notice.message(user_id, now),
            )
            .await?
            .ok_or_else(invalid_code)?;
        self.metrics.mail_queued(1);
        self.metrics.revoked(Revocation::MfaChanged, ended);
        self.metrics.mfa(MfaEvent::Enrolled);
        tracing::info!(target: "latchkey::security", event = "mfa_enabled", user_id, sessions_ended = ended);
        Ok(RecoveryCodes(codes))
    }

    /// Remove the second factor (and the recovery codes). Needs the
    /// password; every other session of the user ends.
    pub async fn disable_totp(
        &self,
        caller: &Principal,
        password: Password,
    ) -> Result<(), AuthError> {
        let user = self.reauthenticate(caller, password, MFA_PASSWORD).await?;
        let now = self.clock.now();
        let vars = [("name", user.name.as_str()), ("email", user.email.as_str())];
        let notice = self.mail.render(MailKind::MfaDisabled, &user.email, &vars);
        let (removed, ended) = self
            .store
            .remove_mfa(
                user.id,
                now,
                Some(caller.session_id.as_str()),
                Some(&notice.message(user.id, now)),
            )
            .await?;
        self.metrics.revoked(Revocation::MfaChanged, ended);
        if removed {
            self.metrics.mfa(MfaEvent::Disabled);
            self.metrics.mail_queued(1);
        }
        tracing::info!(target: "latchkey::security", event = "mfa_disabled", user_id = user.id, removed, sessions_ended = ended);
        Ok(())
    }

    /// Ten new recovery codes; the old ones die. Needs the password.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Principal,
        password: Password,
    ) -> Result<RecoveryCodes, AuthError> {
        let user = self.reauthenticate(caller, password, MFA_PASSWORD).await?;
        let (codes, hashes) = self.new_recovery_codes(user.id)?;
        if !self.store.replace_recovery_codes(user.id, &hashes).await? {
            return Err(AuthError::Invalid(FieldErrors::one(
                "non_field_errors",
                "Two-factor authentication is not enabled.",
            )));
        }
        self.metrics.mfa(MfaEvent::RecoveryCodesRegenerated);
        tracing::info!(target: "latchkey::security", event = "mfa_recovery_codes_regenerated", user_id = user.id);
        Ok(RecoveryCodes(codes))
    }

    /// The caller's second factors.
    pub async fn mfa_status(&self, caller: &Principal) -> Result<MfaStatus, AuthError> {
        let state = self.store.mfa_state(caller.user.id).await?;
        Ok(MfaStatus {
            totp: state.totp,
            recovery_codes_left: state.recovery_codes_left,
            passkeys: state.passkeys,
        })
    }

    fn new_recovery_codes(&self, user_id: i64) -> Result<(Vec<String>, Vec<String>), AuthError> {
        let codes = recovery::generate_set()?;
        let hashes = codes
            .iter()
            .map(|c| recovery::hash(&self.mfa.recovery, user_id, &recovery::normalise(c)))
            .collect();
        Ok((codes, hashes))
    }

    fn open_secret(&self, user_id: i64, sealed: &str) -> Result<Vec<u8>, AuthError> {
        self.mfa.secrets.open(user_id, sealed).map_err(|e| {
            tracing::error!(target: "latchkey::security", event = "mfa_secret_unopenable", user_id,
                "the TOTP secret does not open with the current server key (was LATCHKEY_SECRET_KEY changed?); \
                 restore the old key, or run `latchkey user mfa-reset` for the user");
            AuthError::Internal(e.to_string())
        })
    }
}

/// The Key URI Format authenticator apps read: `otpauth://totp/ISSUER:ACCOUNT?...`.
pub fn otpauth_uri(secret: &str, account: &str) -> String {
    let (issuer, account) = (percent_encode(ISSUER), percent_encode(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={}&period={}",
        totp::DIGITS,
        totp::STEP_SECONDS
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("JBSWY3DPEHPK3PXP", "ada+x@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/latchkey:ada%2Bx%40example.com?secret=JBSWY3DPEHPK3PXP\
             &issuer=latchkey&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets_or_codes() {
        let shown = format!(
            "{:?} {:?} {:?}",
            MfaChallenge {
                token: "tok123".into(),
                methods: &METHODS
            },
            TotpEnrolment {
                secret: "SECRET".into(),
                otpauth_uri: "otpauth://SECRET".into()
            },
            RecoveryCodes(vec!["abcd-efgh-ijkl".into()]),
        );
        assert!(!shown.contains("tok123") && !shown.contains("SECRET") && !shown.contains("abcd"));
    }
}
