use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation, jwk::Jwk};
use phonegate_domain::token::PublicKeyParams;

use super::*;
use crate::random::OsRandom;

const SECRET_ONE: &str = "secret-one-0123456789abcdef012345";
const SECRET_TWO: &str = "secret-two-0123456789abcdef012345";

const RSA_A: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-a.pem");
const RSA_A_PKCS1: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-a.pkcs1.pem");
const RSA_A_PUB: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-a.pub.pem");
const RSA_B: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-b.pem");
const RSA_1024: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-1024.pem");
const ED_A: &[u8] = include_bytes!("../../tests/fixtures/jwt/ed25519-a.pem");
const ED_A_PUB: &[u8] = include_bytes!("../../tests/fixtures/jwt/ed25519-a.pub.pem");
const ED_B: &[u8] = include_bytes!("../../tests/fixtures/jwt/ed25519-b.pem");
const EC_P256: &[u8] = include_bytes!("../../tests/fixtures/jwt/ec-p256.pem");

const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

fn hs(kid: &str, secret: &str) -> SigningKey {
    SigningKey::hs256(kid, &SecretString::from(secret)).unwrap()
}

fn hs_previous(kid: &str, secret: &str) -> VerifyingKey {
    VerifyingKey::hs256(kid, &SecretString::from(secret)).unwrap()
}

fn rs(kid: &str, pem: &[u8]) -> SigningKey {
    SigningKey::private_pem(kid, JwtAlgorithm::Rs256, pem).unwrap()
}

fn ed(kid: &str, pem: &[u8]) -> SigningKey {
    SigningKey::private_pem(kid, JwtAlgorithm::EdDsa, pem).unwrap()
}

fn service(current: SigningKey, previous: Vec<VerifyingKey>) -> JwtTokens {
    JwtTokens::new(
        JwtSettings {
            issuer: "phonegate".into(),
            ttl: Duration::from_secs(1800),
            current,
            previous,
            legacy: None,
        },
        Arc::new(OsRandom),
    )
    .unwrap()
}

/// The HS256-only service of before: one secret under kid `k1`.
fn tokens(secret: &str) -> JwtTokens {
    service(hs("k1", secret), vec![])
}

fn header_of(token: &str) -> Header {
    decode_header(token).unwrap()
}

#[test]
fn a_token_verifies_until_it_expires() {
    let tokens = tokens(SECRET_ONE);
    let issued = tokens.issue(UserId::new(42), NOW).unwrap();
    let claims = tokens.verify(issued.expose(), NOW).unwrap();
    assert_eq!(claims.user_id, UserId::new(42));
    assert_eq!(claims.token_id.len(), 32);
    let later = NOW.plus(Duration::from_secs(1799));
    assert!(tokens.verify(issued.expose(), later).is_ok());
    let expired = NOW.plus(Duration::from_secs(1800));
    assert_eq!(tokens.verify(issued.expose(), expired), Err(TokenError::Expired));
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let issued = tokens(SECRET_ONE).issue(UserId::new(42), NOW).unwrap();
    assert_eq!(
        tokens(SECRET_TWO).verify(issued.expose(), NOW),
        Err(TokenError::Invalid)
    );
}

fn forge(header: &str, claims: &serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "42", "user_id": 42, "iat": NOW.unix_seconds(), "nbf": NOW.unix_seconds(),
        "exp": NOW.unix_seconds() + 600, "iss": "phonegate", "aud": "phonegate:access", "jti": "x"
    })
}

#[test]
fn alg_none_is_refused() {
    for header in [
        r#"{"alg":"none","typ":"JWT","kid":"k1"}"#,
        r#"{"alg":"none","typ":"JWT"}"#,
    ] {
        let token = forge(header, &claims(), "");
        assert_eq!(
            tokens(SECRET_ONE).verify(&token, NOW),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
}

#[test]
fn other_algorithms_are_refused() {
    for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA", "PS256"] {
        let token = forge(
            &format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#),
            &claims(),
            "AAAA",
        );
        assert_eq!(
            tokens(SECRET_ONE).verify(&token, NOW),
            Err(TokenError::Invalid),
            "{alg}"
        );
    }
}

/// An access token's header: `alg`, `kid` and `typ: at+jwt`.
fn header(alg: Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    header
}

fn header_k1() -> Header {
    header(Algorithm::HS256, "k1")
}

fn secret_one() -> EncodingKey {
    EncodingKey::from_secret(SECRET_ONE.as_bytes())
}

#[test]
fn a_token_without_kid_is_refused() {
    let mut without_kid = Header::new(Algorithm::HS256);
    without_kid.typ = Some("at+jwt".into());
    let token = encode(&without_kid, &claims(), &secret_one()).unwrap();
    assert_eq!(tokens(SECRET_ONE).verify(&token, NOW), Err(TokenError::Invalid));
    let token = encode(&header_k1(), &claims(), &secret_one()).unwrap();
    assert!(
        tokens(SECRET_ONE).verify(&token, NOW).is_ok(),
        "the same token with our kid verifies"
    );
}

#[test]
fn an_unknown_kid_is_refused() {
    let tokens = tokens(SECRET_ONE);
    let token = encode(&header(Algorithm::HS256, "someone-elses-key"), &claims(), &secret_one()).unwrap();
    assert_eq!(tokens.verify(&token, NOW), Err(TokenError::Invalid));
}

#[test]
fn a_wrong_issuer_is_refused() {
    let mut claims = claims();
    claims["iss"] = "someone-else".into();
    let token = encode(&header_k1(), &claims, &secret_one()).unwrap();
    assert_eq!(tokens(SECRET_ONE).verify(&token, NOW), Err(TokenError::Invalid));
}

#[test]
fn a_token_from_the_future_is_refused() {
    let mut claims = claims();
    claims["nbf"] = (NOW.unix_seconds() + 3600).into();
    claims["exp"] = (NOW.unix_seconds() + 7200).into();
    let token = encode(&header_k1(), &claims, &secret_one()).unwrap();
    assert_eq!(tokens(SECRET_ONE).verify(&token, NOW), Err(TokenError::NotYetValid));
}

#[test]
fn a_token_missing_exp_is_refused() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("exp");
    let token = encode(&header_k1(), &claims, &secret_one()).unwrap();
    assert_eq!(tokens(SECRET_ONE).verify(&token, NOW), Err(TokenError::Invalid));
}

#[test]
fn a_session_token_is_not_an_access_token_and_back() {
    let tokens = tokens(SECRET_ONE);
    let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
    let expires = NOW.plus(Duration::from_secs(600));
    let session = tokens.issue_phone_session(&phone, "nonce", NOW, expires).unwrap();
    let claims = tokens.verify_phone_session(session.expose(), NOW).unwrap();
    assert_eq!(
        (claims.phone.as_str(), claims.nonce.as_str()),
        ("+12063721234", "nonce")
    );
    assert_eq!(tokens.verify(session.expose(), NOW), Err(TokenError::Invalid));
    let access = tokens.issue(UserId::new(1), NOW).unwrap();
    assert_eq!(
        tokens.verify_phone_session(access.expose(), NOW),
        Err(TokenError::Invalid)
    );
    assert_eq!(
        tokens.verify_phone_session(session.expose(), expires),
        Err(TokenError::Expired)
    );
}

/// Access tokens carry RFC 9068's `typ: at+jwt`, session tokens
/// `pv-session+jwt`.
#[test]
fn each_kind_of_token_names_its_kind_in_typ() {
    let tokens = tokens(SECRET_ONE);
    let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
    let access = tokens.issue(UserId::new(1), NOW).unwrap();
    let session = tokens
        .issue_phone_session(&phone, "n", NOW, NOW.plus(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(header_of(access.expose()).typ.as_deref(), Some("at+jwt"));
    assert_eq!(header_of(session.expose()).typ.as_deref(), Some("pv-session+jwt"));
}

/// Claims of one kind under the other kind's `typ`, correctly signed: the
/// `aud` alone would let each through, the `typ` refuses it.
#[test]
fn a_token_is_refused_by_typ_where_another_kind_is_expected() {
    let tokens = tokens(SECRET_ONE);
    let with_typ = |typ: &str| {
        let mut header = header_k1();
        header.typ = Some(typ.into());
        header
    };
    let access_claims = claims();
    let session_claims = serde_json::json!({
        "phone_number": "+12063721234", "nonce": "n", "iat": NOW.unix_seconds(),
        "exp": NOW.unix_seconds() + 600, "iss": "phonegate", "aud": "phonegate:phone-verify"
    });
    // The right typ: accepted, so the refusals below are the typ's doing.
    let token = encode(&with_typ("at+jwt"), &access_claims, &secret_one()).unwrap();
    assert!(tokens.verify(&token, NOW).is_ok());
    let token = encode(&with_typ("application/AT+JWT"), &access_claims, &secret_one()).unwrap();
    assert!(tokens.verify(&token, NOW).is_ok(), "typ ignores case and application/");
    let token = encode(&with_typ("pv-session+jwt"), &session_claims, &secret_one()).unwrap();
    assert!(tokens.verify_phone_session(&token, NOW).is_ok());

    for typ in ["pv-session+jwt", "JWT", "jwt", "id+jwt", ""] {
        let token = encode(&with_typ(typ), &access_claims, &secret_one()).unwrap();
        assert_eq!(tokens.verify(&token, NOW), Err(TokenError::Invalid), "{typ}");
    }
    for typ in ["at+jwt", "JWT", "application/at+jwt"] {
        let token = encode(&with_typ(typ), &session_claims, &secret_one()).unwrap();
        assert_eq!(
            tokens.verify_phone_session(&token, NOW),
            Err(TokenError::Invalid),
            "{typ}"
        );
    }
    let mut untyped = header_k1();
    untyped.typ = None;
    let token = encode(&untyped, &access_claims, &secret_one()).unwrap();
    assert_eq!(tokens.verify(&token, NOW), Err(TokenError::Invalid), "no typ");
}

// Tokens of the version before explicit typing and the separate HS256 key.

const MASTER: &str = "the-raw-master-secret-0123456789abcdef";
const UNTIL: Timestamp = Timestamp::from_unix_millis(NOW.unix_millis() + 1_800_000);

/// The service after the upgrade: HS256 under a key of its own, with the
/// raw master secret verifying legacy tokens of kid `k1` until [`UNTIL`].
fn upgraded() -> JwtTokens {
    JwtTokens::new(
        JwtSettings {
            issuer: "phonegate".into(),
            ttl: Duration::from_secs(1800),
            current: hs("k1", SECRET_ONE),
            previous: vec![],
            legacy: Some(LegacyTokens {
                until: UNTIL,
                master: Some(hs_previous("k1", MASTER)),
            }),
        },
        Arc::new(OsRandom),
    )
    .unwrap()
}

/// A token as the version before signed it: `typ: JWT`, kid `k1`, HS256
/// with `secret`.
fn legacy_token(claims: &serde_json::Value, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[test]
fn legacy_tokens_verify_until_the_upgrade_window_ends() {
    let session_claims = serde_json::json!({
        "phone_number": "+12063721234", "nonce": "n", "iat": NOW.unix_seconds(),
        "exp": NOW.unix_seconds() + 600, "iss": "phonegate", "aud": "phonegate:phone-verify"
    });
    let mut long_lived = claims();
    long_lived["exp"] = (NOW.unix_seconds() + 86_400).into();
    let upgraded = upgraded();
    for secret in [MASTER, SECRET_ONE] {
        let access = legacy_token(&long_lived, secret);
        assert!(upgraded.verify(&access, NOW).is_ok(), "signed with {secret}");
        let just_before = Timestamp::from_unix_millis(UNTIL.unix_millis() - 1);
        assert!(upgraded.verify(&access, just_before).is_ok());
        assert_eq!(
            upgraded.verify(&access, UNTIL),
            Err(TokenError::Invalid),
            "the window is over, though the token has not expired"
        );
        let session = legacy_token(&session_claims, secret);
        assert!(upgraded.verify_phone_session(&session, NOW).is_ok());
        // Its aud is still checked: a legacy session token is no access token.
        assert_eq!(upgraded.verify(&session, NOW), Err(TokenError::Invalid));
        assert_eq!(upgraded.verify_phone_session(&access, NOW), Err(TokenError::Invalid));
    }
    // Without a window (a service built without legacy tokens), refused.
    let access = legacy_token(&claims(), SECRET_ONE);
    assert_eq!(tokens(SECRET_ONE).verify(&access, NOW), Err(TokenError::Invalid));
}

/// The raw master secret verifies legacy tokens only, under the kid they
/// carried; it never signs, and a token typed by the new version is never
/// checked with it.
#[test]
fn the_raw_master_secret_verifies_legacy_tokens_only_and_never_signs() {
    let upgraded = upgraded();
    let issued = upgraded.issue(UserId::new(5), NOW).unwrap();
    let master_only = tokens(MASTER);
    assert_eq!(master_only.verify(issued.expose(), NOW), Err(TokenError::Invalid));
    assert!(tokens(SECRET_ONE).verify(issued.expose(), NOW).is_ok());

    let typed = encode(&header_k1(), &claims(), &EncodingKey::from_secret(MASTER.as_bytes())).unwrap();
    assert_eq!(
        upgraded.verify(&typed, NOW),
        Err(TokenError::Invalid),
        "a token typed at+jwt signed with the master is a forgery"
    );
    let mut other_kid = Header::new(Algorithm::HS256);
    other_kid.kid = Some("k0".into());
    let token = encode(&other_kid, &claims(), &EncodingKey::from_secret(MASTER.as_bytes())).unwrap();
    assert_eq!(
        upgraded.verify(&token, NOW),
        Err(TokenError::Invalid),
        "only under its kid"
    );
    let debug = format!("{upgraded:?}");
    assert!(
        !debug.contains("master-secret") && !debug.contains("secret-one"),
        "{debug}"
    );
}

#[test]
fn an_access_token_without_audience_is_refused() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("aud");
    let token = encode(&header_k1(), &claims, &secret_one()).unwrap();
    assert_eq!(tokens(SECRET_ONE).verify(&token, NOW), Err(TokenError::Invalid));
}

#[test]
fn garbage_is_refused() {
    for token in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
        assert_eq!(
            tokens(SECRET_ONE).verify(token, NOW),
            Err(TokenError::Invalid),
            "{token}"
        );
    }
}

// Rotation.

#[test]
fn after_rotation_old_tokens_verify_until_their_key_is_removed() {
    let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
    let expires = NOW.plus(Duration::from_secs(600));
    let before = service(hs("k1", SECRET_ONE), vec![]);
    let old_access = before.issue(UserId::new(7), NOW).unwrap();
    let old_session = before.issue_phone_session(&phone, "n", NOW, expires).unwrap();

    let rotated = service(hs("k2", SECRET_TWO), vec![hs_previous("k1", SECRET_ONE)]);
    assert_eq!(
        rotated.verify(old_access.expose(), NOW).unwrap().user_id,
        UserId::new(7),
        "a token of the previous key still verifies"
    );
    assert!(rotated.verify_phone_session(old_session.expose(), NOW).is_ok());
    let new_access = rotated.issue(UserId::new(7), NOW).unwrap();
    assert_eq!(header_of(new_access.expose()).kid.as_deref(), Some("k2"));
    assert!(rotated.verify(new_access.expose(), NOW).is_ok());

    let retired = service(hs("k2", SECRET_TWO), vec![]);
    assert_eq!(
        retired.verify(old_access.expose(), NOW),
        Err(TokenError::Invalid),
        "once k1 is removed its tokens are refused"
    );
    assert_eq!(
        retired.verify_phone_session(old_session.expose(), NOW),
        Err(TokenError::Invalid)
    );
    assert!(retired.verify(new_access.expose(), NOW).is_ok());
}

#[test]
fn previous_keys_never_sign() {
    let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
    let rotated = service(ed("k2", ED_A), vec![hs_previous("k1", SECRET_ONE)]);
    let only_k1 = tokens(SECRET_ONE);
    for _ in 0..3 {
        let access = rotated.issue(UserId::new(1), NOW).unwrap();
        let session = rotated
            .issue_phone_session(&phone, "n", NOW, NOW.plus(Duration::from_secs(60)))
            .unwrap();
        for token in [&access, &session] {
            let header = header_of(token.expose());
            assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::EdDSA, Some("k2")));
        }
        assert_eq!(only_k1.verify(access.expose(), NOW), Err(TokenError::Invalid));
        assert_eq!(
            only_k1.verify_phone_session(session.expose(), NOW),
            Err(TokenError::Invalid)
        );
    }
}

#[test]
fn rotating_from_hs256_to_eddsa_keeps_hs256_tokens_and_publishes_only_the_public_key() {
    let old = tokens(SECRET_ONE).issue(UserId::new(3), NOW).unwrap();
    let rotated = service(ed("e1", ED_A), vec![hs_previous("k1", SECRET_ONE)]);
    assert!(rotated.verify(old.expose(), NOW).is_ok());
    let keys = rotated.public_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!((keys[0].kid.as_str(), keys[0].alg.as_str()), ("e1", "EdDSA"));
}

#[test]
fn a_duplicate_kid_is_refused() {
    let error = JwtTokens::new(
        JwtSettings {
            issuer: "phonegate".into(),
            ttl: Duration::from_secs(60),
            current: hs("k1", SECRET_ONE),
            previous: vec![hs_previous("k1", SECRET_TWO)],
            legacy: None,
        },
        Arc::new(OsRandom),
    )
    .unwrap_err();
    assert_eq!(error, JwtKeyError::DuplicateKeyId("k1".into()));
}

// Asymmetric keys.

fn round_trip(tokens: &JwtTokens, alg: Algorithm, kid: &str) {
    let issued = tokens.issue(UserId::new(42), NOW).unwrap();
    let header = header_of(issued.expose());
    assert_eq!((header.alg, header.kid.as_deref()), (alg, Some(kid)));
    assert_eq!(tokens.verify(issued.expose(), NOW).unwrap().user_id, UserId::new(42));
    assert_eq!(
        tokens.verify(issued.expose(), NOW.plus(Duration::from_secs(1800))),
        Err(TokenError::Expired)
    );
    let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
    let session = tokens
        .issue_phone_session(&phone, "nonce", NOW, NOW.plus(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(header_of(session.expose()).alg, alg);
    assert_eq!(
        tokens.verify_phone_session(session.expose(), NOW).unwrap().nonce,
        "nonce"
    );
    assert_eq!(tokens.verify(session.expose(), NOW), Err(TokenError::Invalid));
    // A flipped signature bit is refused.
    let mut tampered = issued.expose().to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(tokens.verify(&tampered, NOW), Err(TokenError::Invalid));
}

#[test]
fn rs256_tokens_round_trip() {
    round_trip(&service(rs("r1", RSA_A), vec![]), Algorithm::RS256, "r1");
}

#[test]
fn eddsa_tokens_round_trip() {
    round_trip(&service(ed("e1", ED_A), vec![]), Algorithm::EdDSA, "e1");
}

#[test]
fn a_pkcs1_rsa_key_is_the_same_key_as_its_pkcs8_form() {
    let pkcs1 = rs("r1", RSA_A_PKCS1);
    let pkcs8 = rs("r1", RSA_A);
    assert_eq!(pkcs1.verifying_key().public_jwk(), pkcs8.verifying_key().public_jwk());
    let token = service(pkcs1, vec![]).issue(UserId::new(1), NOW).unwrap();
    assert!(service(pkcs8, vec![]).verify(token.expose(), NOW).is_ok());
}

#[test]
fn a_public_key_file_verifies_what_its_private_key_signed() {
    for (algorithm, private, public) in [
        (JwtAlgorithm::Rs256, RSA_A, RSA_A_PUB),
        (JwtAlgorithm::EdDsa, ED_A, ED_A_PUB),
    ] {
        let signing = SigningKey::private_pem("old", algorithm, private).unwrap();
        let public = VerifyingKey::public_pem("old", algorithm, public).unwrap();
        assert_eq!(
            public.public_jwk(),
            signing.verifying_key().public_jwk(),
            "{algorithm}: the same JWK from either file"
        );
        let old_token = service(signing, vec![]).issue(UserId::new(5), NOW).unwrap();
        let rotated = service(hs("k2", SECRET_TWO), vec![public]);
        assert_eq!(
            rotated.verify(old_token.expose(), NOW).unwrap().user_id,
            UserId::new(5),
            "{algorithm}"
        );
    }
}

#[test]
fn a_token_signed_by_another_key_under_our_kid_is_refused() {
    for (ours, theirs, alg) in [
        (rs("a", RSA_A), rs("a", RSA_B), Algorithm::RS256),
        (ed("a", ED_A), ed("a", ED_B), Algorithm::EdDSA),
    ] {
        let forged = service(theirs, vec![]).issue(UserId::new(1), NOW).unwrap();
        assert_eq!(
            service(ours, vec![]).verify(forged.expose(), NOW),
            Err(TokenError::Invalid),
            "{alg:?}"
        );
    }
}

#[test]
fn an_hs256_token_made_with_the_rsa_public_key_as_secret_is_refused() {
    let tokens = service(rs("r1", RSA_A), vec![]);
    // The classic confusion attack: the public key, which anyone can read
    // from the JWKS or the PEM, used as an HMAC secret under the RSA kid.
    for secret in [RSA_A_PUB, RSA_A_PUB.trim_ascii_end()] {
        let token = encode(
            &header(Algorithm::HS256, "r1"),
            &claims(),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_eq!(tokens.verify(&token, NOW), Err(TokenError::Invalid));
    }
    // The same with an HS256 previous key configured alongside.
    let mixed = service(rs("r1", RSA_A), vec![hs_previous("k1", SECRET_ONE)]);
    let token = encode(
        &header(Algorithm::HS256, "r1"),
        &claims(),
        &EncodingKey::from_secret(RSA_A_PUB),
    )
    .unwrap();
    assert_eq!(mixed.verify(&token, NOW), Err(TokenError::Invalid));
}

#[test]
fn a_token_whose_alg_differs_from_its_keys_is_refused() {
    // An EdDSA token relabelled RS256 (and the reverse) under the same kid.
    let eddsa = service(ed("a", ED_A), vec![]);
    let token = eddsa.issue(UserId::new(1), NOW).unwrap();
    let mut parts = token.expose().splitn(2, '.');
    let (_, rest) = (parts.next().unwrap(), parts.next().unwrap());
    for alg in ["RS256", "HS256", "none"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"a"}}"#));
        assert_eq!(
            eddsa.verify(&format!("{header}.{rest}"), NOW),
            Err(TokenError::Invalid),
            "{alg}"
        );
    }
}

#[test]
fn only_asymmetric_keys_are_published() {
    assert!(tokens(SECRET_ONE).public_keys().is_empty());
    let tokens = service(
        rs("r2", RSA_B),
        vec![
            VerifyingKey::public_pem("e1", JwtAlgorithm::EdDsa, ED_A_PUB).unwrap(),
            hs_previous("k1", SECRET_ONE),
        ],
    );
    let keys = tokens.public_keys();
    let listed: Vec<_> = keys.iter().map(|k| (k.kid.as_str(), k.alg.as_str(), k.kty())).collect();
    assert_eq!(listed, [("r2", "RS256", "RSA"), ("e1", "EdDSA", "OKP")]);
    assert!(matches!(&keys[0].params, PublicKeyParams::Rsa { e, .. } if e == "AQAB"));
    assert!(matches!(&keys[1].params, PublicKeyParams::Okp { crv, x } if crv == "Ed25519" && x.len() == 43));
}

/// The published JWK, as another service would read it, verifies tokens.
#[test]
fn the_published_jwks_verifies_tokens() {
    for (signing, alg) in [(rs("r1", RSA_A), Algorithm::RS256), (ed("e1", ED_A), Algorithm::EdDSA)] {
        let tokens = service(signing, vec![]);
        let key = &tokens.public_keys()[0];
        let mut jwk = serde_json::json!({"kid": key.kid, "alg": key.alg, "kty": key.kty(), "use": "sig"});
        match &key.params {
            PublicKeyParams::Rsa { n, e } => {
                jwk["n"] = n.as_str().into();
                jwk["e"] = e.as_str().into();
            }
            PublicKeyParams::Okp { crv, x } => {
                jwk["crv"] = crv.as_str().into();
                jwk["x"] = x.as_str().into();
            }
        }
        let jwk: Jwk = serde_json::from_value(jwk).unwrap();
        let issued = tokens.issue(UserId::new(9), NOW).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&["phonegate:access"]);
        validation.validate_exp = false;
        let data =
            decode::<serde_json::Value>(issued.expose(), &DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap();
        assert_eq!(data.claims["user_id"], 9);
    }
}

// Refused keys.

#[test]
fn unusable_keys_are_refused_with_a_reason() {
    let rsa = JwtAlgorithm::Rs256;
    let eddsa = JwtAlgorithm::EdDsa;
    assert_eq!(
        SigningKey::private_pem("r", rsa, RSA_1024).unwrap_err(),
        JwtKeyError::RsaKeyTooShort { bits: 1024 }
    );
    assert!(matches!(
        SigningKey::private_pem("r", rsa, RSA_A_PUB),
        Err(JwtKeyError::WrongPemKind(_))
    ));
    assert!(matches!(
        VerifyingKey::public_pem("r", rsa, RSA_A),
        Err(JwtKeyError::WrongPemKind(message)) if message.contains("-pubout")
    ));
    for (algorithm, pem) in [
        (rsa, ED_A),
        (eddsa, RSA_A),
        (eddsa, EC_P256),
        (rsa, EC_P256),
        (eddsa, RSA_A_PKCS1),
    ] {
        assert!(
            matches!(
                SigningKey::private_pem("k", algorithm, pem),
                Err(JwtKeyError::BadPrivateKey { .. })
            ),
            "{algorithm}"
        );
    }
    for pem in [
        &b""[..],
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(matches!(
            SigningKey::private_pem("k", eddsa, pem),
            Err(JwtKeyError::BadPrivateKey { .. })
        ));
    }
    assert!(matches!(
        VerifyingKey::public_pem("k", eddsa, RSA_A_PUB),
        Err(JwtKeyError::BadPublicKey { .. })
    ));
    assert!(matches!(
        SigningKey::private_pem("k", JwtAlgorithm::Hs256, RSA_A),
        Err(JwtKeyError::BadPrivateKey { .. })
    ));
    assert_eq!(
        SigningKey::hs256("k", &SecretString::from("too short")).unwrap_err(),
        JwtKeyError::SecretTooShort
    );
    assert_eq!(
        VerifyingKey::hs256(" ", &SecretString::from(SECRET_ONE)).unwrap_err(),
        JwtKeyError::EmptyKeyId
    );
}

#[test]
fn debug_output_shows_no_key_material() {
    let tokens = service(hs("k2", SECRET_TWO), vec![hs_previous("k1", SECRET_ONE)]);
    let debug = format!("{tokens:?} {:?}", hs("k1", SECRET_ONE));
    assert!(debug.contains("k2") && debug.contains("k1"), "{debug}");
    assert!(!debug.contains("secret-"), "{debug}");
    let debug = format!("{:?}", rs("r1", RSA_A));
    assert!(!debug.contains("MII"), "{debug}");
}
