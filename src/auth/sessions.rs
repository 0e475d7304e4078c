//! Sessions and their tokens: start, authenticate, verify, rotate (with
//! reuse detection and the grace window), logout, list and end.

use super::ids::RandomId;
use super::tokens::{Claims, TokenCodec, TokenType};
use super::{Auth, AuthError, ClientInfo, Principal, SessionView, TokenPair, TokenRejection};
use crate::metrics::{RefreshOutcome, Revocation};
use crate::store::{NewRefreshToken, NewSession, Settle, UserRecord};

impl Auth {
    /// Start a session for `user` logging in from `client` (whose address
    /// counts as known to the account from now on: `address_key`), settling
    /// the login's throttle counters in the same commit.
    pub(super) async fn start_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        address_key: &str,
        settle: Settle<'_>,
        now: i64,
    ) -> Result<TokenPair, AuthError> {
        self.open_session(user, client, address_key, settle, false, now)
            .await?
            .ok_or_else(|| {
                AuthError::Internal("an unconditional session start wrote nothing".into())
            })
    }

    /// Start a session as [`Auth::start_session`] does; with
    /// `unless_second_factor` (a password login of an account that had no
    /// second factor when it was looked up), `None`, and nothing written, if
    /// one was confirmed since (checked in the statement that starts the
    /// session, ordered against a confirmation in progress: see
    /// `Store::start_session`). A confirmation either comes first and the
    /// login gets the challenge, or comes after and ends this session with
    /// the user's others.
    pub(super) async fn open_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        address_key: &str,
        settle: Settle<'_>,
        unless_second_factor: bool,
        now: i64,
    ) -> Result<Option<TokenPair>, AuthError> {
        let start = self.new_session(user.id, Some(client), now)?;
        let started = self
            .store
            .start_session(
                &start.session(),
                &start.first_token(),
                address_key,
                &settle,
                unless_second_factor,
            )
            .await?;
        if !started {
            return Ok(None);
        }
        self.sign_pair(user.id, &start.session_id, start.refresh_jti, now)
            .await
            .map(Some)
    }

    /// Fresh ids for a session of `user_id` starting at `now`, and its first
    /// refresh token.
    pub(super) fn new_session(
        &self,
        user_id: i64,
        client: Option<&ClientInfo>,
        now: i64,
    ) -> Result<SessionStart, AuthError> {
        Ok(SessionStart {
            // Time-ordered: sessions are stored in a B-tree by id.
            session_id: RandomId::time_ordered(self.clock.now_millis())?,
            refresh_jti: RandomId::generate()?,
            user_id,
            now,
            expires_at: now + self.tokens.refresh_lifetime,
            client_addr: client.map(|c| c.addr.to_string()),
            user_agent: client.and_then(|c| c.user_agent.clone()),
        })
    }

    pub(super) async fn sign_pair(
        &self,
        user_id: i64,
        session_id: &RandomId,
        refresh_jti: RandomId,
        now: i64,
    ) -> Result<TokenPair, AuthError> {
        let codec = self.codec().await;
        let access = self.sign_access(&codec, user_id, session_id, now)?;
        let refresh = codec.encode(&Claims {
            token_type: TokenType::Refresh,
            exp: now + self.tokens.refresh_lifetime,
            iat: now,
            jti: refresh_jti,
            user_id,
            sid: session_id.clone(),
        })?;
        Ok(TokenPair { access, refresh })
    }

    /// A fresh access token of `user_id` in `session_id`.
    pub(super) fn sign_access(
        &self,
        codec: &TokenCodec,
        user_id: i64,
        session_id: &RandomId,
        now: i64,
    ) -> Result<String, AuthError> {
        Ok(codec.encode(&Claims {
            token_type: TokenType::Access,
            exp: now + self.tokens.access_lifetime,
            iat: now,
            jti: RandomId::generate()?,
            user_id,
            sid: session_id.clone(),
        })?)
    }

    // ---- Tokens ------------------------------------------------------------

    /// The caller behind an access token: valid signature, unexpired, of type
    /// access, and its session still live. Checked against the database on
    /// every call, so a logout on any instance takes effect at once.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        let claims = match self
            .codec()
            .await
            .decode(access_token, TokenType::Access, now)
        {
            Ok(claims) => claims,
            Err(own) => return self.legacy_principal(access_token, own, now).await,
        };
        self.principal(claims, now).await
    }

    /// The caller behind verified access-token claims, if the session is live.
    pub(super) async fn principal(&self, claims: Claims, now: i64) -> Result<Principal, AuthError> {
        let user = self
            .store
            .session_user(claims.sid.as_str(), now)
            .await?
            .filter(|u| u.user_id == claims.user_id)
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;
        Ok(Principal {
            email_verified: user.email_verified,
            user: user.into(),
            session_id: claims.sid,
        })
    }

    /// `/auth/token/verify/`: whether a token of either type is valid now.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let claims = match self.codec().await.decode_any(token, now) {
            Ok(claims) => claims,
            Err(own) => return self.legacy_verify(token, own, now).await,
        };
        match claims.token_type {
            TokenType::Access => self.principal(claims, now).await.map(|_| ()),
            TokenType::Refresh => {
                let state = self
                    .store
                    .refresh_token_state(claims.sid.as_str(), claims.jti.as_str(), now)
                    .await?;
                match state {
                    Some(s)
                        if s.session_live
                            && s.rotated_at.is_none()
                            && s.user_id == claims.user_id =>
                    {
                        Ok(())
                    }
                    Some(_) => Err(AuthError::Token(TokenRejection::Revoked)),
                    None => Err(AuthError::Token(TokenRejection::Invalid)),
                }
            }
        }
    }

    /// Rotate a refresh token: a new pair, the old token retired. Presenting a
    /// retired token again revokes the whole session, except for the token
    /// rotated last, within the grace window (two tabs refreshing at once).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let result = self.rotate(refresh_token).await;
        match &result {
            Ok((_, outcome)) => self.metrics.refresh(*outcome),
            Err(_) => self.metrics.refresh(RefreshOutcome::Refused),
        }
        result.map(|(pair, _)| pair)
    }

    pub(super) async fn rotate(
        &self,
        refresh_token: &str,
    ) -> Result<(TokenPair, RefreshOutcome), AuthError> {
        let now = self.clock.now();
        let claims = match self
            .codec()
            .await
            .decode(refresh_token, TokenType::Refresh, now)
        {
            Ok(claims) => claims,
            Err(own) => return self.legacy_refresh(refresh_token, own, now).await,
        };
        let jti = claims.jti.as_str();
        let next_jti = RandomId::generate()?;
        let next = NewRefreshToken {
            jti: next_jti.as_str(),
            session_id: claims.sid.as_str(),
            parent_jti: Some(jti),
            issued_at: now,
            expires_at: now + self.tokens.refresh_lifetime,
        };

        // The common case in one transaction: an unrotated token of a live
        // session. Anything else is sorted out from the stored state below.
        if self.store.rotate_refresh(jti, &next).await? {
            let pair = self
                .sign_pair(claims.user_id, &claims.sid, next_jti, now)
                .await?;
            return Ok((pair, RefreshOutcome::Rotated));
        }
        let state = self.known_refresh(&claims, now).await?;
        let Some(rotated_at) = state.rotated_at else {
            // Live session, unrotated token, yet no rotation: it ended meanwhile.
            return Err(AuthError::Token(TokenRejection::Revoked));
        };
        self.replay_or_revoke(Replay {
            user_id: claims.user_id,
            session: &claims.sid,
            presented: jti,
            rotated_at,
            db_now: state.db_now,
            rotated_last: state.rotated_last,
            legacy: false,
        })
        .await
    }

    /// A refresh token presented again after its rotation (or a legacy one
    /// after its redemption). Inside the grace window, and only for the
    /// token rotated last, the caller gets the token that rotation issued —
    /// the same one, signed again — so a session never has more than one
    /// live chain, however often the token is replayed; a fresh access
    /// token comes with it. Anything else is reuse, and the session is
    /// revoked.
    pub(super) async fn replay_or_revoke(
        &self,
        replay: Replay<'_>,
    ) -> Result<(TokenPair, RefreshOutcome), AuthError> {
        let now = self.clock.now();
        if within_reuse_grace(&replay, self.tokens.reuse_grace) {
            let head = self
                .store
                .live_successor(replay.session.as_str(), replay.presented, now)
                .await?;
            if let Some(head) = head {
                let jti = RandomId::parse(&head.jti)
                    .ok_or_else(|| AuthError::Internal("stored token id is malformed".into()))?;
                let codec = self.codec().await;
                let refresh = codec.encode(&Claims {
                    token_type: TokenType::Refresh,
                    exp: head.expires_at,
                    iat: head.issued_at,
                    jti,
                    user_id: replay.user_id,
                    sid: replay.session.clone(),
                })?;
                let access = self.sign_access(&codec, replay.user_id, replay.session, now)?;
                return Ok((TokenPair { access, refresh }, RefreshOutcome::Grace));
            }
            // The chain moved on meanwhile (its head was rotated too), or the
            // session ended: the presented token is now an older one.
        }
        self.store
            .revoke_session(replay.session.as_str(), now, "refresh token reuse")
            .await?;
        self.metrics.reuse_detected();
        self.metrics.revoked(Revocation::Reuse, 1);
        tracing::warn!(target: "latchkey::security", event = "refresh_reuse_detected", user_id = replay.user_id, legacy = replay.legacy);
        Err(AuthError::Token(TokenRejection::Revoked))
    }

    /// The stored state of a refresh token whose session is still live.
    pub(super) async fn known_refresh(
        &self,
        claims: &Claims,
        now: i64,
    ) -> Result<crate::store::RefreshTokenState, AuthError> {
        match self
            .store
            .refresh_token_state(claims.sid.as_str(), claims.jti.as_str(), now)
            .await?
        {
            Some(s) if s.user_id == claims.user_id => {
                if s.session_live {
                    Ok(s)
                } else {
                    Err(AuthError::Token(TokenRejection::Revoked))
                }
            }
            _ => Err(AuthError::Token(TokenRejection::Invalid)),
        }
    }

    /// End the session of `refresh_token`, which must belong to `caller`,
    /// and the session of the caller's access token with it.
    pub async fn logout(&self, caller: &Principal, refresh_token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let claims = match self
            .codec()
            .await
            .decode(refresh_token, TokenType::Refresh, now)
        {
            Ok(claims) => claims,
            Err(own) => return self.legacy_logout(caller, refresh_token, own, now).await,
        };
        let state = self
            .store
            .refresh_token_state(claims.sid.as_str(), claims.jti.as_str(), now)
            .await?;
        let Some(state) = state else {
            return Err(AuthError::Token(TokenRejection::Invalid));
        };
        if state.user_id != caller.user.id || claims.user_id != caller.user.id {
            tracing::warn!(target: "latchkey::security", event = "logout_foreign_token", user_id = caller.user.id);
            return Err(AuthError::NotOwner);
        }
        if !state.session_live {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        self.store
            .revoke_session(claims.sid.as_str(), now, "logout")
            .await?;
        let mut ended = 1;
        if caller.session_id != claims.sid {
            self.store
                .revoke_session(caller.session_id.as_str(), now, "logout")
                .await?;
            ended += 1;
        }
        self.metrics.revoked(Revocation::Logout, ended);
        tracing::info!(target: "latchkey::security", event = "logout", user_id = caller.user.id);
        Ok(())
    }

    // ---- Account -------------------------------------------------------------

    /// End every session of the caller, the current one included; how many ended.
    pub async fn logout_all(&self, caller: &Principal) -> Result<u64, AuthError> {
        let ended = self
            .store
            .revoke_sessions_of(caller.user.id, self.clock.now(), "logout all")
            .await?;
        self.metrics.revoked(Revocation::LogoutAll, ended);
        tracing::info!(target: "latchkey::security", event = "logout_all", user_id = caller.user.id, sessions = ended);
        Ok(ended)
    }

    /// The caller's live sessions, most recently used first.
    pub async fn sessions(&self, caller: &Principal) -> Result<Vec<SessionView>, AuthError> {
        let sessions = self
            .store
            .sessions_of(caller.user.id, self.clock.now())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.session_id.as_str(),
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                client_addr: s.client_addr,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// End one of the caller's live sessions. [`AuthError::NotFound`] for
    /// anything else, another user's session included: ids are not disclosed.
    pub async fn end_session(&self, caller: &Principal, session_id: &str) -> Result<(), AuthError> {
        let ended = self
            .store
            .revoke_session_of(
                caller.user.id,
                session_id,
                self.clock.now(),
                "ended by user",
            )
            .await?;
        if !ended {
            return Err(AuthError::NotFound);
        }
        self.metrics.revoked(Revocation::SessionEnded, 1);
        tracing::info!(target: "latchkey::security", event = "session_ended", user_id = caller.user.id);
        Ok(())
    }
}

/// A refresh token presented again after it was exchanged.
pub(super) struct Replay<'a> {
    pub(super) user_id: i64,
    pub(super) session: &'a RandomId,
    /// The presented token's `jti` (for a legacy token, SimpleJWT's).
    pub(super) presented: &'a str,
    /// When it was exchanged, by the clock `db_now` reads.
    pub(super) rotated_at: i64,
    /// Now, by the clock that wrote `rotated_at`.
    pub(super) db_now: i64,
    /// Whether it is the token its session exchanged most recently.
    pub(super) rotated_last: bool,
    /// A SimpleJWT token (for the log).
    pub(super) legacy: bool,
}

/// Whether a replay is forgiven: only of the token exchanged most recently
/// in its session, only within `grace` seconds of the exchange (both times
/// on one clock), and never when the window is 0. Anything else is reuse.
pub(super) fn within_reuse_grace(replay: &Replay<'_>, grace: i64) -> bool {
    // Both times are on one clock; one stepped back reads as no time passed.
    grace > 0 && replay.rotated_last && replay.db_now - replay.rotated_at <= grace
}

/// A session about to start: its ids and the rows that record it.
pub(super) struct SessionStart {
    pub(super) session_id: RandomId,
    pub(super) refresh_jti: RandomId,
    pub(super) user_id: i64,
    pub(super) now: i64,
    pub(super) expires_at: i64,
    pub(super) client_addr: Option<String>,
    pub(super) user_agent: Option<String>,
}

impl SessionStart {
    pub(super) fn session(&self) -> NewSession<'_> {
        NewSession {
            id: self.session_id.as_str(),
            user_id: self.user_id,
            now: self.now,
            expires_at: self.expires_at,
            client_addr: self.client_addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }

    pub(super) fn first_token(&self) -> NewRefreshToken<'_> {
        NewRefreshToken {
            jti: self.refresh_jti.as_str(),
            session_id: self.session_id.as_str(),
            parent_jti: None,
            issued_at: self.now,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(rotated_at: i64, db_now: i64, rotated_last: bool) -> bool {
        let sid = RandomId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let replay = Replay {
            user_id: 1,
            session: &sid,
            presented: "x",
            rotated_at,
            db_now,
            rotated_last,
            legacy: false,
        };
        within_reuse_grace(&replay, 10)
    }

    #[test]
    fn the_token_rotated_last_is_forgiven_within_the_window_only() {
        assert!(replay(100, 100, true));
        assert!(replay(100, 110, true));
        assert!(!replay(100, 111, true));
    }

    #[test]
    fn an_older_token_of_the_chain_is_never_forgiven() {
        assert!(!replay(100, 101, false));
    }

    #[test]
    fn a_zero_window_forgives_nothing() {
        let sid = RandomId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let replay = Replay {
            user_id: 1,
            session: &sid,
            presented: "x",
            rotated_at: 100,
            db_now: 100,
            rotated_last: true,
            legacy: false,
        };
        assert!(!within_reuse_grace(&replay, 0));
    }
}
