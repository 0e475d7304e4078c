//! Unit tests of `tokens.rs`.

use super::*;
use proptest::prelude::*;

/// `{"alg":"HS256","typ":"JWT"}`, base64url-encoded, exactly as SimpleJWT.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

fn codec() -> TokenCodec {
    TokenCodec::hs256(&"k".repeat(40).parse().unwrap())
}

fn claims(token_type: TokenType, exp: i64) -> Claims {
    Claims {
        token_type,
        exp,
        iat: 1_000,
        jti: RandomId::generate().unwrap(),
        user_id: 7,
        sid: RandomId::generate().unwrap(),
    }
}

fn sign_raw(header: &str, payload: &str) -> String {
    let key = "k".repeat(40);
    let head = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(head.as_bytes());
    format!(
        "{head}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn a_token_round_trips_with_simplejwt_claims_in_order() {
    let c = claims(TokenType::Access, 2_000);
    let token = codec().encode(&c).unwrap();
    assert!(token.starts_with(HEADER_B64));
    let payload = token.split('.').nth(1).unwrap();
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(
        json.starts_with(r#"{"token_type":"access","exp":2000,"iat":1000,"jti":""#),
        "{json}"
    );
    assert!(json.contains(r#""user_id":7"#));
    assert_eq!(codec().decode(&token, TokenType::Access, 1_999), Ok(c));
}

#[test]
fn expired_tokens_are_refused() {
    let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
    assert_eq!(
        codec().decode(&token, TokenType::Access, 2_000),
        Err(TokenError::Expired)
    );
}

#[test]
fn a_token_stays_valid_for_the_leeway_past_its_expiry_and_no_longer() {
    let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
    let lenient = codec().with_leeway(5);
    assert!(lenient.decode(&token, TokenType::Access, 2_004).is_ok());
    assert_eq!(
        lenient.decode(&token, TokenType::Access, 2_005),
        Err(TokenError::Expired)
    );
}

#[test]
fn a_token_issued_further_ahead_than_the_leeway_is_refused() {
    // iat 1_000: an instance whose clock is 5 s behind still accepts it.
    let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
    let lenient = codec().with_leeway(5);
    assert!(lenient.decode(&token, TokenType::Access, 995).is_ok());
    assert_eq!(
        lenient.decode(&token, TokenType::Access, 994),
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn the_token_type_must_match() {
    let refresh = codec().encode(&claims(TokenType::Refresh, 2_000)).unwrap();
    assert_eq!(
        codec().decode(&refresh, TokenType::Access, 1_000),
        Err(TokenError::WrongType)
    );
    let access = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
    assert_eq!(
        codec().decode(&access, TokenType::Refresh, 1_000),
        Err(TokenError::WrongType)
    );
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let other = TokenCodec::hs256(&"z".repeat(40).parse().unwrap());
    let token = other.encode(&claims(TokenType::Access, 2_000)).unwrap();
    assert_eq!(
        codec().decode(&token, TokenType::Access, 0),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn the_none_and_other_algorithms_are_refused() {
    let payload = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1,"sid":"0123456789abcdef0123456789abcdef"}"#;
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
        r#"{"alg":"hs256"}"#,
    ] {
        let token = sign_raw(header, payload);
        assert_eq!(
            codec().decode(&token, TokenType::Access, 0),
            Err(TokenError::WrongAlgorithm)
        );
    }
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    assert!(codec().decode(&unsigned, TokenType::Access, 0).is_err());
    let good = sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, payload);
    assert!(codec().decode(&good, TokenType::Access, 1).is_ok());
}

#[test]
fn a_string_user_id_or_a_missing_claim_is_malformed() {
    let string_id = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":"1","sid":"0123456789abcdef0123456789abcdef"}"#;
    let no_sid = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1}"#;
    for payload in [string_id, no_sid] {
        let token = sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, payload);
        assert_eq!(
            codec().decode(&token, TokenType::Access, 0),
            Err(TokenError::Malformed)
        );
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(
        String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
            .unwrap()
            .replace("\"user_id\":7", "\"user_id\":8"),
    );
    assert_eq!(
        codec().decode(&parts.join("."), TokenType::Access, 0),
        Err(TokenError::BadSignature)
    );
}

fn asymmetric(algorithm: Algorithm) -> (TokenCodec, String, Vec<u8>) {
    use crate::auth::signing::PrivateKey;
    let der = PrivateKey::generate(algorithm).unwrap();
    let key = Arc::new(PrivateKey::from_pkcs8(algorithm, &der).unwrap());
    let kid = key.public().thumbprint();
    let set = KeySet::asymmetric(
        (&kid, key.clone()),
        vec![(kid.clone(), key.public().clone())],
    )
    .unwrap();
    (TokenCodec::new(Arc::new(set), Arc::default()), kid, der)
}

fn header_of(token: &str) -> serde_json::Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[test]
fn asymmetric_tokens_round_trip_with_their_kid_in_the_header() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
        let (codec, kid, _) = asymmetric(algorithm);
        let c = claims(TokenType::Access, 2_000);
        let token = codec.encode(&c).unwrap();
        assert_eq!(
            header_of(&token),
            serde_json::json!({"alg": algorithm.as_str(), "kid": kid, "typ": "JWT"})
        );
        assert_eq!(codec.decode(&token, TokenType::Access, 1_999), Ok(c));
    }
}

#[test]
fn an_hs256_token_signed_with_the_public_key_is_refused_alg_confusion() {
    let (codec, kid, _) = asymmetric(Algorithm::EdDsa);
    let jwks: serde_json::Value = serde_json::from_slice(&codec.keys.jwks()).unwrap();
    let public = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let payload = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1,"sid":"0123456789abcdef0123456789abcdef"}"#;
    for secret in [
        public.clone(),
        String::from_utf8(URL_SAFE_NO_PAD.decode(&public).unwrap_or_default()).unwrap_or_default(),
    ] {
        let head = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"JWT"}}"#)),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(head.as_bytes());
        let forged = format!(
            "{head}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(
            codec.decode(&forged, TokenType::Access, 1),
            Err(TokenError::WrongAlgorithm)
        );
    }
    // And an HS256 codec never accepts an asymmetric token.
    let token = codec.encode(&claims(TokenType::Access, 2_000)).unwrap();
    assert_eq!(
        super::tests::codec().decode(&token, TokenType::Access, 1),
        Err(TokenError::WrongAlgorithm)
    );
}

#[test]
fn a_token_of_another_asymmetric_algorithm_or_an_unknown_kid_is_refused() {
    let (eddsa, _, _) = asymmetric(Algorithm::EdDsa);
    let (es256, _, _) = asymmetric(Algorithm::Es256);
    let token = eddsa.encode(&claims(TokenType::Access, 2_000)).unwrap();
    assert_eq!(
        es256.decode(&token, TokenType::Access, 1),
        Err(TokenError::WrongAlgorithm)
    );
    let (other_eddsa, _, _) = asymmetric(Algorithm::EdDsa);
    assert_eq!(
        other_eddsa.decode(&token, TokenType::Access, 1),
        Err(TokenError::UnknownKey)
    );
    // The right kid on a token signed by another key.
    let mut parts: Vec<&str> = token.split('.').collect();
    let foreign = other_eddsa
        .encode(&claims(TokenType::Access, 2_000))
        .unwrap();
    let foreign_sig = foreign.split('.').nth(2).unwrap().to_owned();
    parts[2] = &foreign_sig;
    assert_eq!(
        eddsa.decode(&parts.join("."), TokenType::Access, 1),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn a_remembered_signature_still_needs_a_usable_kid_and_live_claims() {
    use crate::auth::signing::{PrivateKey, VerifiedSignatures};
    let verified = Arc::new(VerifiedSignatures::default());
    let key_set = |key: &Arc<PrivateKey>,
                   usable: Vec<(String, crate::auth::signing::PublicKey)>| {
        let kid = key.public().thumbprint();
        let set = KeySet::asymmetric((&kid, key.clone()), usable).unwrap();
        TokenCodec::new(Arc::new(set.remembering(verified.clone())), Arc::default())
    };
    let old = Arc::new(
        PrivateKey::from_pkcs8(
            Algorithm::EdDsa,
            &PrivateKey::generate(Algorithm::EdDsa).unwrap(),
        )
        .unwrap(),
    );
    let new = Arc::new(
        PrivateKey::from_pkcs8(
            Algorithm::EdDsa,
            &PrivateKey::generate(Algorithm::EdDsa).unwrap(),
        )
        .unwrap(),
    );
    let both = key_set(
        &old,
        vec![
            (old.public().thumbprint(), old.public().clone()),
            (new.public().thumbprint(), new.public().clone()),
        ],
    );
    let c = claims(TokenType::Access, 2_000);
    let token = both.encode(&c).unwrap();
    assert!(!verified.contains(&token));
    assert_eq!(both.decode(&token, TokenType::Access, 1_000), Ok(c.clone()));
    assert!(
        verified.contains(&token),
        "a verified signature is remembered"
    );
    // Remembered, it is still checked for type and expiry every time.
    assert_eq!(
        both.decode(&token, TokenType::Refresh, 1_000),
        Err(TokenError::WrongType)
    );
    assert_eq!(
        both.decode(&token, TokenType::Access, 2_000),
        Err(TokenError::Expired)
    );
    // The key retired (a set without it): the remembered token stops verifying.
    let only_new = key_set(
        &new,
        vec![(new.public().thumbprint(), new.public().clone())],
    );
    assert_eq!(
        only_new.decode(&token, TokenType::Access, 1_000),
        Err(TokenError::UnknownKey)
    );
    // A token whose signature fails is never remembered.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(both.decode(&forged, TokenType::Access, 1_000).is_err());
    assert!(!verified.contains(&forged));
}

#[test]
fn a_missing_kid_or_a_crit_header_is_refused() {
    let (codec, kid, _) = asymmetric(Algorithm::EdDsa);
    let token = codec.encode(&claims(TokenType::Access, 2_000)).unwrap();
    let rest = token.split_once('.').unwrap().1;
    for header in [
        r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}","crit":["exp"]}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, "a".repeat(65)),
    ] {
        let changed = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header));
        assert!(codec.decode(&changed, TokenType::Access, 1).is_err());
    }
}

#[test]
fn issuer_and_audience_are_added_and_required_when_configured() {
    let keys = Arc::new(KeySet::hs256(&"k".repeat(40).parse().unwrap()));
    let rules = ClaimRules {
        leeway: 0,
        issuer: Some("https://auth.example.com".into()),
        audience: Some("api".into()),
    };
    let strict = TokenCodec::new(keys.clone(), Arc::new(rules.clone()));
    let c = claims(TokenType::Access, 2_000);
    let token = strict.encode(&c).unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["iss"], "https://auth.example.com");
    assert_eq!(json["aud"], "api");
    assert_eq!(
        strict.decode(&token, TokenType::Access, 1_500),
        Ok(c.clone())
    );
    // A token without them, or with other values, is refused.
    let plain = TokenCodec::new(keys.clone(), Arc::default())
        .encode(&c)
        .unwrap();
    assert_eq!(
        strict.decode(&plain, TokenType::Access, 1_500),
        Err(TokenError::WrongIssuerOrAudience)
    );
    let other = TokenCodec::new(
        keys.clone(),
        Arc::new(ClaimRules {
            audience: Some("billing".into()),
            ..rules
        }),
    );
    assert_eq!(
        other.decode(&token, TokenType::Access, 1_500),
        Err(TokenError::WrongIssuerOrAudience)
    );
    // Unconfigured, a token naming an audience is not for us either.
    assert_eq!(
        TokenCodec::new(keys, Arc::default()).decode(&token, TokenType::Access, 1_500),
        Err(TokenError::WrongIssuerOrAudience)
    );
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,600}") {
        prop_assert!(codec().decode_any(&input, 0).is_err());
    }

    #[test]
    fn arbitrary_segments_never_verify(a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,400}", c in "[A-Za-z0-9_-]{0,60}") {
        let token = format!("{a}.{b}.{c}");
        prop_assert!(codec().decode_any(&token, 0).is_err());
        let with_header = format!("{HEADER_B64}.{b}.{c}");
        prop_assert!(codec().decode_any(&with_header, 0).is_err());
    }

    #[test]
    fn any_single_byte_change_is_refused(pos in 0usize..200, byte in any::<u8>()) {
        let token = codec().encode(&claims(TokenType::Refresh, i64::MAX)).unwrap();
        let mut bytes = token.clone().into_bytes();
        let pos = pos % bytes.len();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(codec().decode_any(&changed, 0).is_err());
        }
    }

    #[test]
    fn arbitrary_input_never_verifies_under_an_asymmetric_key(input in "[A-Za-z0-9_.-]{0,600}") {
        let (codec, _, _) = asymmetric(Algorithm::Es256);
        prop_assert!(codec.decode_any(&input, 0).is_err());
    }
}
