//! Each surface's happy path, with random valid numbers typed in random
//! formats, names, devices and encodings.

use super::*;

/// A valid US number (area codes libphonenumber knows) as E.164 and in a
/// format people type.
pub(super) fn us_number() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["206", "415", "212", "312", "646"]),
        "[2-9][0-9]{2}",
        "[0-9]{4}",
        0..6,
    )
        .prop_map(|(area, exchange, line, format)| {
            let e164 = format!("+1{area}{exchange}{line}");
            let typed = match format {
                0 => format!("({area}){exchange}-{line}"),
                1 => format!("{area}-{exchange}-{line}"),
                2 => format!("+1 {area} {exchange} {line}"),
                3 => format!("{area}.{exchange}.{line}"),
                4 => format!(" 1 ({area}) {exchange}-{line} "),
                _ => e164.clone(),
            };
            (e164, typed)
        })
}

/// A Hong Kong number that pin-auth's rule accepts and libphonenumber
/// knows as a mobile (codes are texted only to mobiles).
pub(super) fn hk_mobile() -> impl Strategy<Value = String> {
    let hong_kong = PhonePolicy::new("HK", &[], vec![]).unwrap();
    "\\+852[569][0-9]{7}".prop_filter("a mobile number", move |number| {
        matches!(hong_kong.parse_with_kind(number), Ok((_, LineKind::Mobile)))
    })
}

/// Names and handles: any printable text, short or long.
pub(super) fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\p{{C}}\\s][^\\p{{C}}]{{0,{}}}[^\\p{{C}}\\s]", max - 2)).unwrap()
}

#[derive(Debug, Clone)]
pub(super) struct Flow {
    pub(super) hk_mobile: String,
    pub(super) us: (String, String),
    pub(super) device_id: String,
    pub(super) call: bool,
    pub(super) first_name: String,
    pub(super) platform: &'static str,
    pub(super) handle: String,
    pub(super) form: bool,
    pub(super) email: String,
    pub(super) password: String,
}

pub(super) fn flow() -> impl Strategy<Value = Flow> {
    (
        (hk_mobile(), us_number(), printable(60), any::<bool>()),
        (
            printable(255),
            prop::sample::select(vec!["fcm", "gcm", "aps"]),
            printable(200),
            any::<bool>(),
        ),
        ("[a-z0-9._+-]{1,20}@[a-z0-9-]{1,20}\\.[a-z]{2,6}", "[^\u{0}]{8,40}"),
    )
        .prop_map(
            |((hk_mobile, us, device_id, call), (first_name, platform, handle, form), (email, password))| Flow {
                hk_mobile,
                us,
                device_id,
                call,
                first_name,
                platform,
                handle,
                form,
                email,
                password,
            },
        )
}

/// POSTs `params` as JSON or as a Rails-style form.
pub(super) async fn post(app: &TestApp, path: &str, params: &Value, form: bool) -> Answer {
    let object = params.as_object().unwrap();
    let (content_type, body) = if form {
        ("application/x-www-form-urlencoded", urlencode(object))
    } else {
        ("application/json", params.to_string())
    };
    send(
        app,
        Request::post(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

pub(super) async fn run_flow(app: &TestApp, flow: &Flow) -> Result<(), TestCaseError> {
    let ok = |answer: &Answer, what: &str| -> Result<Value, TestCaseError> {
        prop_assert!(answer.status.is_success(), "{what}: {answer:?}");
        Ok(answer.body.clone().unwrap_or_default())
    };
    let form = flow.form;

    // pin-auth: signup, a wrong pin, the right pin, the profile, a device.
    let signup = json!({"user_auth": {
        "mobile": flow.hk_mobile, "first_name": flow.first_name, "last_name": "L",
        "address_attributes": {"district_id": "1", "address_type": "Profile", "street": flow.handle.chars().take(255).collect::<String>()},
    }});
    let body = ok(&post(app, "/api/v1/auth/signup", &signup, form).await, "signup")?;
    let key = body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(&flow.hk_mobile);
    let wrong = if pin == "0000" { "1111" } else { "0000" };
    let answer = post(
        app,
        "/api/v1/auth/verify",
        &json!({"otp_auth_key": key, "pin": wrong}),
        form,
    )
    .await;
    prop_assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    prop_assert!(error_shape(
        Surface::PinAuth,
        answer.status,
        answer.body.as_ref().unwrap()
    ));
    let body = ok(
        &post(
            app,
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": key, "pin": pin}),
            form,
        )
        .await,
        "verify",
    )?;
    let jwt = body["jwt_token"].as_str().unwrap().to_owned();
    prop_assert_eq!(&body["user"]["user_profile"]["first_name"], &json!(flow.first_name));
    let profile = ok(
        &get_with_bearer(app, "/api/v1/auth/current_user_profile", &jwt).await,
        "profile",
    )?;
    prop_assert_eq!(
        profile["user_profile"]["mobile"].as_str().unwrap(),
        flow.hk_mobile.strip_prefix("+852").unwrap()
    );
    let answer = send(
        app,
        Request::post("/api/v1/auth/register_device")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"handle": flow.handle, "platform": flow.platform}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    prop_assert_eq!(answer.status, StatusCode::NO_CONTENT, "register_device: {:?}", answer);

    // phone-verify: register, then verify with the code.
    let (e164, typed) = &flow.us;
    let body = ok(
        &post(app, "/api/phone/register", &json!({"phone_number": typed}), form).await,
        "register",
    )?;
    let session_token = body["session_token"].as_str().unwrap().to_owned();
    let code = app.last_code_to(e164);
    let verify = json!({"phone_number": typed, "security_code": code, "session_token": session_token});
    let body = ok(&post(app, "/api/phone/verify", &verify, form).await, "phone verify")?;
    prop_assert_eq!(body, json!({"message": "Security code is valid."}));

    // phone-login: a PIN by SMS or call, an access code, its check.
    let login =
        json!({"phone_number": typed, "device_id": flow.device_id, "call_verify": if flow.call { "T" } else { "F" }});
    let query = urlencode(login.as_object().unwrap());
    let body = ok(
        &post_query(app, &format!("/v1/auth/phone_login?{query}")).await,
        "phone_login",
    )?;
    // The number became a user through phone-verify above.
    prop_assert_eq!(&body["res_info"]["code"], &json!(2));
    let pin = if flow.call {
        app.last_spoken_code_to(e164)
    } else {
        app.last_code_to(e164)
    };
    let check = json!({"phone_number": e164, "device_id": flow.device_id, "verify_pin": pin});
    let body = ok(&post(app, "/v1/auth/check_pin", &check, form).await, "check_pin")?;
    let access_code = body["res_content"]["access_code"].as_str().unwrap().to_owned();
    let body = ok(
        &post(
            app,
            "/v1/auth/check_access_code",
            &json!({"access_code": access_code, "device_id": flow.device_id}),
            form,
        )
        .await,
        "check_access_code",
    )?;
    prop_assert_eq!(&body["res_content"]["phone_number"], &json!(e164));

    // tokens: sign in, confirm another number, introspect, sign out.
    let user_id = app.create_user(&flow.email, &flow.password, "F", "L").await;
    let body = ok(
        &post(app, "/api/v1/tokens.json", &json!({"email": flow.email, "password": flow.password, "device_token": flow.device_id, "mobile_os": "ios"}), form).await,
        "sign in",
    )?;
    let token = body["token"].as_str().unwrap().to_owned();
    prop_assert_eq!(&body["user_info"]["id"], &json!(user_id));
    // The phone-verify user owns the US number; a free one is confirmed here.
    let own = format!("+1415{}", &e164[5..]);
    let own = if own == *e164 {
        format!("+1206{}", &e164[5..])
    } else {
        own
    };
    ok(
        &post(
            app,
            "/api/v1/settings/send_phone_verification",
            &json!({"auth_token": token, "phone": own}),
            form,
        )
        .await,
        "send_phone_verification",
    )?;
    let code = app.last_code_to(&own);
    ok(
        &post(
            app,
            "/api/v1/settings/verify_phone",
            &json!({"auth_token": token, "token": code}),
            form,
        )
        .await,
        "verify_phone",
    )?;
    let (_, app_token) = app.create_application("fuzz").await;
    let body = ok(
        &post(
            app,
            "/api/v1/tokens/introspect",
            &json!({"auth_token": app_token.expose(), "token": token}),
            form,
        )
        .await,
        "introspect",
    )?;
    prop_assert_eq!(&body["active"], &json!(true));
    let answer = send(
        app,
        Request::delete(format!("/api/v1/tokens/{user_id}.json"))
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(urlencode(json!({"auth_token": token}).as_object().unwrap())))
            .unwrap(),
    )
    .await;
    ok(&answer, "sign out")?;
    Ok(())
}

pub(super) async fn get_with_bearer(app: &TestApp, path: &str, token: &str) -> Answer {
    send(
        app,
        Request::get(path)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

pub(super) async fn post_query(app: &TestApp, path_and_query: &str) -> Answer {
    send(
        app,
        Request::post(path_and_query)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap(),
    )
    .await
}
