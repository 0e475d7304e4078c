//! Moving from the Django + SimpleJWT backend without losing anyone.
//!
//! - Django's password hashes are kinds of [`StoredHash`], verified on the
//!   hashing workers and upgraded to Argon2id at the first successful login.
//! - [`tokens`]: SimpleJWT's tokens, verified with the Django key.
//! - [`import`]: `latchkey import django`.
//!
//! The migration window: with the Django key configured
//! (`LATCHKEY_LEGACY_DJANGO_KEY`), an access token SimpleJWT issued is
//! accepted until it expires (for an imported, active user), and a SimpleJWT
//! refresh token is accepted once at `/auth/token/refresh/`, becoming a
//! latchkey session, unless Django blacklisted it. Ending all of a user's
//! sessions (logout everywhere, password change, deactivation) refuses every
//! SimpleJWT token of theirs issued before. Without the key, the
//! methods here refuse everything with the error latchkey's own codec gave.
//!
//! [`StoredHash`]: crate::auth::password::StoredHash

pub mod import;
pub mod tokens;

use tokens::{DjangoKey, LegacyClaims, SimpleJwtVerifier};

use super::ids::RandomId;
use super::tokens::{TokenError, TokenType};
use super::{Auth, AuthError, Principal, Replay, TokenPair, TokenRejection};
use crate::metrics::{RefreshOutcome, Revocation};
use crate::store::{LegacyRedemption, NewRefreshToken, SessionUser};

impl Auth {
    /// Accept SimpleJWT's tokens signed with `key` during the migration
    /// window; `None` accepts none.
    pub fn with_legacy_django(mut self, key: Option<&DjangoKey>) -> Self {
        self.legacy = key.map(SimpleJwtVerifier::new);
        self
    }

    /// The legacy claims of `token`, which latchkey's own codec refused with
    /// `own`. Tokens latchkey itself signed (expired, or of the other type)
    /// keep their own error, and so does anything the Django key does not
    /// verify either.
    fn legacy_claims(
        &self,
        token: &str,
        own: TokenError,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<LegacyClaims, AuthError> {
        let Some(verifier) = &self.legacy else {
            return Err(own.into());
        };
        if matches!(own, TokenError::Expired | TokenError::WrongType) {
            return Err(own.into());
        }
        let claims = match verifier.decode(token, now) {
            Ok(claims) => claims,
            Err(TokenError::BadSignature | TokenError::Malformed) => return Err(own.into()),
            Err(e) => return Err(e.into()),
        };
        if expected.is_some_and(|t| t != claims.token_type) {
            return Err(AuthError::Token(TokenRejection::Invalid));
        }
        Ok(claims)
    }

    /// The user `claims` name: imported from Django, active, and without
    /// every session ended since the token was issued.
    async fn legacy_user(&self, claims: &LegacyClaims) -> Result<SessionUser, AuthError> {
        let found = self
            .store
            .legacy_token_user(claims.user_id)
            .await?
            .ok_or(AuthError::Token(TokenRejection::Invalid))?;
        let issued = claims.iat.unwrap_or(0);
        if found.tokens_revoked_at.is_some_and(|at| issued <= at) {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        Ok(found.user)
    }

    /// The caller behind a SimpleJWT access token: an imported, active user.
    /// Such a caller belongs to no latchkey session; the token's `jti` stands
    /// in for the session id and names none.
    pub(super) async fn legacy_principal(
        &self,
        token: &str,
        own: TokenError,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let claims = self.legacy_claims(token, own, Some(TokenType::Access), now)?;
        let user = self.legacy_user(&claims).await?;
        Ok(Principal {
            email_verified: user.email_verified,
            user: user.into(),
            session_id: claims.jti,
        })
    }

    /// `/auth/token/verify/` for a SimpleJWT token of either type.
    pub(super) async fn legacy_verify(
        &self,
        token: &str,
        own: TokenError,
        now: i64,
    ) -> Result<(), AuthError> {
        let claims = self.legacy_claims(token, own, None, now)?;
        self.legacy_user(&claims).await?;
        if claims.token_type == TokenType::Access {
            return Ok(());
        }
        if self.store.legacy_token_used(claims.jti.as_str()).await? {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        Ok(())
    }

    /// Logout with a SimpleJWT refresh token (an SPA that has not refreshed
    /// since the switch): the token, which must be the caller's, is
    /// blacklisted, and the caller's latchkey session, if any, ends. A
    /// SimpleJWT access token stays valid until it expires, as in Django.
    pub(super) async fn legacy_logout(
        &self,
        caller: &Principal,
        token: &str,
        own: TokenError,
        now: i64,
    ) -> Result<(), AuthError> {
        let claims = self.legacy_claims(token, own, Some(TokenType::Refresh), now)?;
        if claims.user_id != caller.user.id {
            tracing::warn!(target: "latchkey::security", event = "logout_foreign_token", user_id = caller.user.id, legacy = true);
            return Err(AuthError::NotOwner);
        }
        if !self
            .store
            .blacklist_legacy_refresh(claims.jti.as_str(), claims.exp, now)
            .await?
        {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        if self
            .store
            .revoke_session_of(caller.user.id, caller.session_id.as_str(), now, "logout")
            .await?
        {
            self.metrics.revoked(Revocation::Logout, 1);
        }
        tracing::info!(target: "latchkey::security", event = "logout", user_id = caller.user.id, legacy = true);
        Ok(())
    }

    /// Exchange a SimpleJWT refresh token for a new latchkey session, once.
    /// A second presentation is reuse, as for latchkey's own tokens: within
    /// the grace window it gets a sibling pair in the session the first one
    /// started; after it, that session is revoked.
    pub(super) async fn legacy_refresh(
        &self,
        token: &str,
        own: TokenError,
        now: i64,
    ) -> Result<(TokenPair, RefreshOutcome), AuthError> {
        let claims = self.legacy_claims(token, own, Some(TokenType::Refresh), now)?;
        let user = self.legacy_user(&claims).await?;
        let start = self.new_session(user.user_id, None, now)?;
        // The session's first token names the SimpleJWT token it was
        // exchanged for, so a replay inside the grace window finds it.
        let first = NewRefreshToken {
            parent_jti: Some(claims.jti.as_str()),
            ..start.first_token()
        };
        let outcome = self
            .store
            .redeem_legacy_refresh(claims.jti.as_str(), claims.exp, &start.session(), &first)
            .await?;
        match outcome {
            LegacyRedemption::Redeemed => {
                tracing::info!(target: "latchkey::security", event = "legacy_refresh_redeemed", user_id = user.user_id);
                let pair = self
                    .sign_pair(user.user_id, &start.session_id, start.refresh_jti, now)
                    .await?;
                Ok((pair, RefreshOutcome::Rotated))
            }
            LegacyRedemption::Blacklisted => Err(AuthError::Token(TokenRejection::Revoked)),
            LegacyRedemption::AlreadyRedeemed {
                session_id: Some(first),
                redeemed_at,
                db_now,
            } => {
                let first = RandomId::parse(&first)
                    .ok_or_else(|| AuthError::Internal("stored session id is malformed".into()))?;
                // A legacy token is exchanged once, so it is always the one
                // its session exchanged last.
                self.replay_or_revoke(Replay {
                    user_id: user.user_id,
                    session: &first,
                    presented: claims.jti.as_str(),
                    rotated_at: redeemed_at,
                    db_now,
                    rotated_last: true,
                    legacy: true,
                })
                .await
            }
            LegacyRedemption::AlreadyRedeemed {
                session_id: None, ..
            } => Err(AuthError::Token(TokenRejection::Revoked)),
        }
    }
}
