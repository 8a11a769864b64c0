//! Random requests built from the catalogue: method, content type and
//! encoding (JSON, Rails-style form, query), headers and credentials.

use super::*;

/// The `(key, value)` pairs of a Rails-style form for `object`.
pub(super) fn form_pairs(object: &Map<String, Value>) -> Vec<(String, String)> {
    fn walk(key: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => {
                for (inner, value) in object {
                    walk(&format!("{key}[{inner}]"), value, pairs);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(&format!("{key}[]"), item, pairs);
                }
            }
            Value::String(text) => pairs.push((key.to_owned(), text.clone())),
            Value::Null => pairs.push((key.to_owned(), String::new())),
            other => pairs.push((key.to_owned(), other.to_string())),
        }
    }
    let mut pairs = vec![];
    for (key, value) in object {
        walk(key, value, &mut pairs);
    }
    pairs
}

pub(super) fn urlencode(object: &Map<String, Value>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_pairs(object))
        .finish()
}

#[derive(Clone)]
pub(super) enum Encoding {
    Json,
    Form,
    /// Parameters in the query string, no body.
    Query,
    /// Valid JSON that is not an object.
    JsonNotObject(Value),
    Bytes(Vec<u8>),
    Empty,
}

pub(super) fn encoding() -> BoxedStrategy<Encoding> {
    prop_oneof![
        4 => Just(Encoding::Json),
        3 => Just(Encoding::Form),
        3 => Just(Encoding::Query),
        1 => json_value(1).prop_filter("not an object", |v| !v.is_object()).prop_map(Encoding::JsonNotObject),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Encoding::Bytes),
        1 => Just(Encoding::Empty),
    ]
    .boxed()
}

pub(super) fn content_type() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        3 => Just(Some(b"application/json".to_vec())),
        3 => Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        1 => Just(Some(b"application/json; charset=utf-8".to_vec())),
        1 => Just(Some(b"multipart/form-data; boundary=x".to_vec())),
        1 => Just(Some(b"text/plain".to_vec())),
        1 => header_bytes().prop_map(Some),
    ]
    .boxed()
}

/// Bytes any header value may carry: visible ASCII, space, tab and obs-text.
pub(super) fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..60).boxed()
}

pub(super) fn authorization() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        4 => jwt_like().prop_map(|token| Some(format!("Bearer {token}").into_bytes())),
        // Signed, well-formed and valid: the first users' own tokens.
        2 => claims_clean().prop_map(|claims| {
            let token = jwt(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}), &claims, true);
            Some(format!("Bearer {token}").into_bytes())
        }),
        1 => "[A-Za-z0-9+/=._~-]{0,80}".prop_map(|token| Some(format!("Bearer {token}").into_bytes())),
        1 => (prop::sample::select(vec!["bearer", "BEARER", "Bearer  ", "Basic", "Token", ""]), jwt_like())
            .prop_map(|(scheme, token)| Some(format!("{scheme} {token}").into_bytes())),
        1 => header_bytes().prop_map(Some),
    ]
    .boxed()
}

/// Path segments for `DELETE /api/v1/tokens/{user_id}`, percent-encoded.
pub(super) fn user_id_segment() -> BoxedStrategy<String> {
    prop_oneof![
        (1i64..5).prop_map(|id| id.to_string()),
        any::<i64>().prop_map(|id| id.to_string()),
        Just("99999999999999999999999".to_owned()),
        "[0-9]{1,3}\\.json",
        Just("reset".to_owned()),
        Just("introspect.json".to_owned()),
        ".{1,12}".prop_map(|text| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()),
        "%[0-9A-F]{2}",
    ]
    .boxed()
}

#[derive(Clone)]
pub(super) struct Case {
    pub(super) route: usize,
    pub(super) method: Method,
    pub(super) json_suffix: bool,
    pub(super) user_id: String,
    pub(super) encoding: Encoding,
    pub(super) slots: Vec<Slot>,
    /// Random extra parameters, merged into the route's own.
    pub(super) extra: Map<String, Value>,
    /// A query string besides the body: parameters, or raw garbage.
    pub(super) query: Option<Result<Vec<Slot>, String>>,
    /// `None`: the encoding's own content type.
    pub(super) content_type: Option<Option<Vec<u8>>>,
    pub(super) authorization: Option<Vec<u8>>,
    pub(super) request_id: Option<Vec<u8>>,
    pub(super) host: Option<Vec<u8>>,
}

pub(super) fn case() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
    ];
    let query = prop::option::weighted(
        0.3,
        prop_oneof![
            slots().prop_map(Ok),
            "([a-zA-Z0-9\\[\\]=&;+._~!$'()*,:@/?-]|%[0-9a-fA-F]{2}|%){0,80}".prop_map(Err),
        ],
    );
    let extra = prop::collection::btree_map("[a-z_\\[\\]]{1,10}", json_value(1), 0..2)
        .prop_map(|map| map.into_iter().collect::<Map<_, _>>());
    (
        (
            0..ROUTES.len(),
            prop::option::weighted(0.35, method),
            any::<bool>(),
            user_id_segment(),
        ),
        (encoding(), slots(), extra, query),
        (
            prop::option::weighted(0.5, content_type()),
            authorization(),
            prop::option::weighted(0.1, header_bytes()),
            prop::option::weighted(0.1, header_bytes()),
        ),
    )
        .prop_map(
            |(
                (route, method, json_suffix, user_id),
                (encoding, slots, extra, query),
                (content_type, authorization, request_id, host),
            )| {
                // Mostly the route's own method, so requests reach the handlers.
                let method = method.unwrap_or_else(|| ROUTES[route].methods[0].parse().unwrap());
                Case {
                    route,
                    method,
                    json_suffix,
                    user_id,
                    encoding,
                    slots,
                    extra,
                    query,
                    content_type,
                    authorization,
                    request_id,
                    host,
                }
            },
        )
}

/// Bytes shown as text, so a failing case reads like the request it is.
pub(super) struct Lossy<'a>(&'a [u8]);

impl std::fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.0))
    }
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json => f.write_str("Json"),
            Self::Form => f.write_str("Form"),
            Self::Query => f.write_str("Query"),
            Self::JsonNotObject(value) => write!(f, "JsonNotObject({value})"),
            Self::Bytes(bytes) => write!(f, "Bytes({:?})", Lossy(bytes)),
            Self::Empty => f.write_str("Empty"),
        }
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn lossy(bytes: &Option<Vec<u8>>) -> Option<Lossy<'_>> {
            bytes.as_deref().map(Lossy)
        }
        f.debug_struct("Case")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("encoding", &self.encoding)
            .field("slots", &self.slots)
            .field("extra", &self.extra)
            .field("query", &self.query)
            .field("content_type", &self.content_type.as_ref().map(lossy))
            .field("authorization", &lossy(&self.authorization))
            .field("request_id", &lossy(&self.request_id))
            .field("host", &lossy(&self.host))
            .finish()
    }
}

impl Case {
    pub(super) fn route(&self) -> &'static Route {
        &ROUTES[self.route]
    }

    pub(super) fn path(&self) -> String {
        let route = self.route();
        let mut path = route.path.replace("{user_id}", &self.user_id);
        if route.json_suffix && self.json_suffix {
            path.push_str(".json");
        }
        path
    }

    pub(super) fn request(&self, known: &Known) -> Request<Body> {
        let route = self.route();
        let mut params = parameters(route.fields, &mut self.slots.iter().cloned(), known);
        for (key, value) in &self.extra {
            params.entry(key.clone()).or_insert_with(|| value.clone());
        }
        let mut query = match &self.query {
            None => String::new(),
            Some(Ok(slots)) => urlencode(&parameters(route.fields, &mut slots.iter().cloned(), known)),
            Some(Err(raw)) => raw.clone(),
        };
        let body = match &self.encoding {
            Encoding::Json => Value::Object(params).to_string().into_bytes(),
            Encoding::Form => urlencode(&params).into_bytes(),
            Encoding::Query => {
                let encoded = urlencode(&params);
                if !query.is_empty() && !encoded.is_empty() {
                    query.push('&');
                }
                query.push_str(&encoded);
                vec![]
            }
            Encoding::JsonNotObject(value) => value.to_string().into_bytes(),
            Encoding::Bytes(bytes) => bytes.clone(),
            Encoding::Empty => vec![],
        };
        let mut uri = self.path();
        // A URI longer than `http` accepts (and hyper serves) never reaches
        // the router; such a query string is left out.
        if !query.is_empty() && query.len() < 60_000 {
            uri = format!("{uri}?{query}");
        }
        let mut request = Request::builder().method(self.method.clone()).uri(uri);
        let own_content_type = match self.encoding {
            Encoding::Json | Encoding::JsonNotObject(_) => Some(b"application/json".to_vec()),
            Encoding::Form => Some(b"application/x-www-form-urlencoded".to_vec()),
            Encoding::Query | Encoding::Bytes(_) | Encoding::Empty => None,
        };
        let content_type = self.content_type.clone().unwrap_or(own_content_type);
        let headers = [
            (header::CONTENT_TYPE, &content_type),
            (header::AUTHORIZATION, &self.authorization),
            (header::HeaderName::from_static("x-request-id"), &self.request_id),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, HeaderValue::from_bytes(value).unwrap());
            }
        }
        let host = self.host.clone().unwrap_or_else(|| b"localhost:8080".to_vec());
        request = request.header(header::HOST, HeaderValue::from_bytes(&host).unwrap());
        request.body(Body::from(body)).unwrap()
    }
}
