//! Request parameters the xyOps way: a JSON body, a url-encoded form, or a multipart form
//! whose `json` field holds the JSON, with query-string parameters merged on top.

use axum::http::{header, HeaderMap};
use docket_core::Error;
use serde_json::{Map, Value};

/// Parameters plus any uploaded file parts (kept for the calls that accept files).
#[derive(Debug, Default)]
pub struct Params {
    pub map: Map<String, Value>,
    pub file_parts: usize,
    /// The parameters that came as text (query string, form fields), typed by [`typed`].
    pub from_text: Vec<String>,
}

/// Turns a query-string or form value into JSON: numbers stay numbers, `true`/`false` are
/// booleans, anything else is text. Only a number's canonical text (`5`, `-3`; not `007`,
/// `-0`, `+1`) is a number, so the text can always be recovered from the value
/// (`spec::CallSpec::prepare` does, for parameters a call declares text).
pub fn typed(raw: &str) -> Value {
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match raw.parse::<i64>() {
            Ok(n) if raw.len() <= 15 && n.to_string() == raw => Value::from(n),
            _ => Value::String(raw.to_string()),
        },
    }
}

/// Percent-decoding must give UTF-8: `%FF` is an error rather than a silent U+FFFD.
fn check_decoded_utf8(text: &str) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) {
                decoded.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    std::str::from_utf8(&decoded).map(|_| ()).map_err(|_| {
        Error::Api(
            "Malformed url-encoded parameters: a percent-encoded value is not valid UTF-8".into(),
        )
    })
}

/// Pairs from a url-encoded text; a repeated key becomes an array.
pub fn pairs_to_map(text: &str) -> Result<Map<String, Value>, Error> {
    check_decoded_utf8(text)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
        .map_err(|e| Error::Api(format!("Malformed url-encoded parameters: {e}")))?;
    let mut map = Map::new();
    for (key, raw) in pairs {
        let key = key.trim_end_matches("[]").to_string();
        let value = typed(&raw);
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key, value);
            }
        }
    }
    Ok(map)
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Api(
            "Malformed JSON: the request body must be a JSON object".into(),
        )),
        Err(e) => Err(Error::Api(format!("Malformed JSON in request body: {e}"))),
    }
}

/// Parses the body according to its content type, then merges the query string over it.
pub async fn parse(
    headers: &HeaderMap,
    query: Option<&str>,
    body: axum::body::Bytes,
) -> Result<Params, Error> {
    let raw_content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = raw_content_type.to_ascii_lowercase();
    let mut params = Params::default();
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &body[i..])
        .unwrap_or(&[]);
    if trimmed.is_empty() {
        // No body: parameters come from the query string alone.
    } else if content_type.starts_with("multipart/form-data") {
        // The boundary is case-sensitive (browsers send `----WebKitFormBoundaryAbC…`).
        params = parse_multipart(raw_content_type, body).await?;
    } else if content_type.starts_with("application/json")
        || trimmed.first() == Some(&b'{')
        || trimmed.first() == Some(&b'[')
    {
        // Many clients (curl -d) send JSON labelled as a form; a body that starts like JSON is JSON.
        params.map = json_object(trimmed)?;
    } else if content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.is_empty()
    {
        let text = std::str::from_utf8(&body)
            .map_err(|_| Error::Api("Request body is not valid UTF-8".into()))?;
        params.map = pairs_to_map(text)?;
        params.from_text = params.map.keys().cloned().collect();
    } else {
        return Err(Error::Api(format!(
            "Unsupported content type {content_type:?}; send JSON, a url-encoded form or multipart/form-data"
        )));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        for (k, v) in pairs_to_map(q)? {
            params.from_text.push(k.clone());
            params.map.insert(k, v);
        }
    }
    Ok(params)
}

async fn parse_multipart(content_type: &str, body: axum::body::Bytes) -> Result<Params, Error> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| Error::Api(format!("Malformed multipart request: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut params = Params::default();
    let mut json_seen = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::Api(format!("Malformed multipart request: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        if field.file_name().is_some() {
            params.file_parts += 1;
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| Error::Api(format!("Malformed multipart field {name:?}: {e}")))?;
        if name == "json" {
            json_seen = true;
            for (k, v) in json_object(text.as_bytes())? {
                params.from_text.retain(|n| *n != k);
                params.map.insert(k, v);
            }
        } else if !json_seen || !params.map.contains_key(&name) {
            params.from_text.push(name.clone());
            params.map.insert(name, typed(&text));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_are_typed_and_repeated_keys_become_arrays() {
        let m = pairs_to_map(
            "a=1&b=true&c=false&d=x&ids=a&ids=b&z=007&n=-3&big=12345678901234567890&m=-0&p=%2B1",
        )
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({
                "a": 1, "b": true, "c": false, "d": "x", "ids": ["a", "b"], "z": "007", "n": -3,
                "big": "12345678901234567890", "m": "-0", "p": "+1"
            })
        );
        assert_eq!(
            pairs_to_map("s=caf%C3%A9+%25%zz").unwrap()["s"],
            json!("café %%zz")
        );
        assert!(pairs_to_map("s=%FF")
            .unwrap_err()
            .to_string()
            .contains("not valid UTF-8"));
    }

    #[tokio::test]
    async fn query_wins_over_body() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let p = parse(
            &h,
            Some("limit=5"),
            axum::body::Bytes::from_static(br#"{"limit": 1, "query": "x"}"#),
        )
        .await
        .unwrap();
        assert_eq!(Value::Object(p.map), json!({"limit": 5, "query": "x"}));
        let bad = parse(&h, None, axum::body::Bytes::from_static(b"{nope"))
            .await
            .unwrap_err();
        assert!(bad.to_string().starts_with("Malformed JSON"));
        let arr = parse(&h, None, axum::body::Bytes::from_static(b"[1]"))
            .await
            .unwrap_err();
        assert!(arr.to_string().contains("JSON object"));
    }

    #[tokio::test]
    async fn multipart_json_field() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{\"subject\":\"hi\"}\r\n--XX\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XX--\r\n";
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XX".parse().unwrap(),
        );
        let p = parse(&h, None, axum::body::Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(Value::Object(p.map), json!({"subject": "hi"}));
        assert_eq!(p.file_parts, 1);
    }

    /// Random bodies under each content type (JSON, form, multipart with broken
    /// boundaries, parts and headers) and random query strings: every one is parsed or
    /// refused with an `api` error, never a panic, quickly. `DOCKET_FUZZ_ITERATIONS=N cargo
    /// test -p docket --bin docket fuzz_params` runs it longer (default 2000).
    #[tokio::test]
    async fn fuzz_params_and_multipart_never_panic() {
        let iterations: u64 = std::env::var("DOCKET_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "a",
            "json",
            "=",
            "&",
            "%",
            "%zz",
            "%FF",
            "+",
            "\r\n",
            "--XX",
            "--XX--",
            "Content-Disposition: form-data; name=\"json\"",
            "; filename=\"a\\\"b\"",
            "\r\n\r\n",
            "1e999",
            "null",
            "true",
            "\\u0000",
            "é",
            "ids=a&ids=b",
            "limit=5",
        ];
        const TYPES: &[&str] = &[
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=XX",
            "multipart/form-data",
            "text/plain",
            "",
        ];
        let started = std::time::Instant::now();
        for _ in 0..iterations {
            let mut body = String::new();
            for _ in 0..next(40) {
                body.push_str(PIECES[next(PIECES.len())]);
            }
            let mut query = String::new();
            for _ in 0..next(6) {
                query.push_str(PIECES[next(PIECES.len())]);
            }
            let mut h = HeaderMap::new();
            if let Ok(v) = TYPES[next(TYPES.len())].parse() {
                h.insert(header::CONTENT_TYPE, v);
            }
            let q = (!query.is_empty()).then_some(query.as_str());
            if let Err(e) = parse(&h, q, axum::body::Bytes::from(body.clone())).await {
                assert_eq!(e.code(), "api", "{body:?}: {e}");
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
}
