//! `GET /api/openapi.json` and `docket openapi`: the API as an OpenAPI 3.1 document, built
//! with utoipa's types from the call table (`wire::spec`) that also routes and checks every
//! call, so it cannot name a call, a parameter or a reply the server does not have.
//! `docs/openapi.json` is a copy kept current by a test (see `docs/operations.md`).

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, ParameterStyle, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    Required, ResponseBuilder, ResponsesBuilder, ServerBuilder,
};

use super::schema::{self as s, S};
use crate::wire::spec::{self, Access, Body, CallSpec, Out, Param, Ty};

/// The document as served: built once.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // The document is plain data; serializing it cannot fail.
        let mut text = build().to_pretty_json().unwrap_or_default();
        text.push('\n');
        text
    })
}

pub async fn document() -> Response {
    let mut res = json().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The error statuses of a `/v1` call, each with the `code`s it carries (shared responses
/// of the document's components, named by the second field). 414 and 431 have no content
/// described: past hyper's own limits (a 64 KiB URI, `max_buf_size`) the HTTP layer
/// refuses the request with an empty body before the router's JSON reply can be made.
const ERRORS: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadInput",
        "Bad input: `api` (malformed parameters; also an API key that is unknown, \
         disabled or expired, as xyOps answers it), or the record kind's code (`ticket`, \
         `file`, `user`, `tag`, `category`, `role`)",
    ),
    (
        "403",
        "Refused",
        "No or bad session (`session`), or not allowed (`access`)",
    ),
    ("404", "NotFound", "Not found (`notfound`)"),
    (
        "405",
        "MethodNotAllowed",
        "A method other than GET, POST or HEAD (the `Allow` header lists them)",
    ),
    (
        "413",
        "TooLarge",
        "The body is over `server.max_body_bytes`",
    ),
    (
        "414",
        "UriTooLong",
        "The URI is over 32 KiB (send long parameters in a POST body): the JSON error, or \
         an empty body past 64 KiB",
    ),
    (
        "431",
        "HeadersTooLarge",
        "The headers are over `server.max_header_bytes`: the JSON error, or an empty body \
         when far over",
    ),
    (
        "429",
        "TooManyRequests",
        "Over the API key's rate, or too many failed logins (`rate`)",
    ),
    ("500", "ServerError", "Server failure (`internal`)"),
];

/// The change feed's expired cursor (`get_ticket_events` only).
const GONE: (&str, &str, &str) = (
    "410",
    "Gone",
    "The cursor is older than the change feed's retention (`cursor_expired`): start again \
     without `after`",
);

pub fn build() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for call in spec::calls() {
        paths = paths.path(call.path(), call_item(call));
    }
    for (path, item) in super::openapi_ops::items() {
        paths = paths.path(path, item);
    }
    let mut tags: Vec<&str> = Vec::new();
    for call in spec::calls() {
        if !tags.contains(&call.group) {
            tags.push(call.group);
        }
    }
    tags.push(super::openapi_ops::GROUP);
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Docket API")
                .version("1")
                .description(Some(
                    "The xyOps Tickets API as Docket serves it, generated from the server's \
                     call table. Every call takes POST (JSON, a url-encoded form, or \
                     multipart with a `json` part), GET and HEAD (parameters in the query \
                     string; a value that looks like a number or `true`/`false` there is one, \
                     unless the parameter is text). Each is also served without `/v1`, where \
                     errors answer HTTP 200 with their `code`.",
                )),
        )
        .servers(Some([ServerBuilder::new().url("/").build()]))
        .security(Some([
            SecurityRequirement::new("apiKey", Vec::<String>::new()),
            SecurityRequirement::new("sessionId", Vec::<String>::new()),
            SecurityRequirement::new("sessionCookie", Vec::<String>::new()),
        ]))
        .tags(Some(
            tags.into_iter().map(|t| TagBuilder::new().name(t).build()),
        ))
        .paths(paths.build())
        .components(Some(components()))
        .build()
}

fn components() -> utoipa::openapi::Components {
    let mut c = ComponentsBuilder::new()
        .security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (also accepted as the `api_key` parameter). An unknown, \
                 disabled or expired key is answered 400 `api`, as xyOps does.",
            ))),
        )
        .security_scheme(
            "sessionId",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Session-ID"))),
        )
        .security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "session_id",
                "Calls that change data also need the X-CSRF-Token header.",
            ))),
        )
        .security_scheme(
            "metricsToken",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    for (name, schema) in s::records() {
        c = c.schema(name, schema);
    }
    for (status, name, text) in ERRORS.into_iter().chain([GONE]) {
        let r = ResponseBuilder::new().description(text);
        c = c.response(
            name,
            if matches!(status, "414" | "431") {
                r
            } else {
                r.content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(s::reference("Error")))
                        .build(),
                )
            },
        );
    }
    c.build()
}

fn access_text(access: Access) -> String {
    match access {
        Access::Open => "No credential needed.".into(),
        Access::Caller => "Any valid caller.".into(),
        Access::Admin => "Admin.".into(),
        Access::Privilege(p) => format!("Privilege `{p}` (or `admin`)."),
    }
}

fn description(call: &CallSpec) -> String {
    let mut text = format!("{} {}", access_text(call.access), call.doc);
    if !call.one_of.is_empty() {
        let names: Vec<String> = call.one_of.iter().map(|n| format!("`{n}`")).collect();
        text.push_str(&format!(" One of {} is required.", names.join(", ")));
    }
    text.push_str(&format!(
        "\n\nAlso served at `/api/{}/{}`, where errors answer HTTP 200.",
        call.ns, call.name
    ));
    text
}

/// POST, GET and HEAD of one call (the dispatcher's `wire::METHODS`).
fn call_item(call: &CallSpec) -> PathItem {
    let mut item = PathItem::new(HttpMethod::Post, operation(call, HttpMethod::Post));
    item.get = Some(operation(call, HttpMethod::Get));
    item.head = Some(operation(call, HttpMethod::Head));
    item
}

fn operation(call: &CallSpec, method: HttpMethod) -> utoipa::openapi::path::Operation {
    let suffix = match method {
        HttpMethod::Get => "_get",
        HttpMethod::Head => "_head",
        _ => "",
    };
    let mut op = OperationBuilder::new()
        .operation_id(Some(format!("{}{suffix}", call.name)))
        .tag(call.group)
        .summary(Some(
            call.doc
                .split(". ")
                .next()
                .unwrap_or(call.doc)
                .trim_end_matches('.'),
        ))
        .description(Some(description(call)));
    if call.access == Access::Open {
        op = op.securities(Some([SecurityRequirement::default()]));
    }
    if method == HttpMethod::Post {
        // Machine-readable access, which a test holds the server to (tests/api_access.rs).
        let access = match call.access {
            Access::Open => "open",
            Access::Caller => "caller",
            Access::Admin => "admin",
            Access::Privilege(p) => p,
        };
        op = op
            .request_body(Some(request_body(call)))
            .extensions(Some([("x-docket-access", access)].into_iter().collect()));
    } else {
        op = op.parameters(Some(
            call.params
                .iter()
                .filter(|p| p.ty.in_query())
                .map(query_param),
        ));
    }
    let body = method != HttpMethod::Head;
    let export = call.reply.iter().any(|f| matches!(f.out, Out::Export));
    let mut responses = ResponsesBuilder::new().response("200", {
        if export {
            let r = ResponseBuilder::new().description("Success: the file, streamed");
            if body {
                r.content(
                    "application/x-ndjson",
                    ContentBuilder::new().schema(Some(s::string())).build(),
                )
                .content(
                    "text/csv",
                    ContentBuilder::new().schema(Some(s::string())).build(),
                )
            } else {
                r
            }
        } else {
            let r = ResponseBuilder::new().description("Success: `code` is 0");
            if body {
                r.content(
                    "application/json",
                    ContentBuilder::new().schema(Some(reply(call))).build(),
                )
            } else {
                r
            }
        }
    });
    let gone = (call.name == "get_ticket_events").then_some(GONE);
    for (status, name, text) in ERRORS.into_iter().chain(gone) {
        responses = if body {
            responses.response(status, Ref::from_response_name(name))
        } else {
            // HEAD: the same statuses, without a body.
            responses.response(status, ResponseBuilder::new().description(text))
        };
    }
    op.responses(responses.build()).build()
}

fn param_schema(p: &Param) -> S {
    let schema = ty_schema(p.ty);
    if p.doc.is_empty() {
        schema
    } else {
        s::described(schema, p.doc)
    }
}

fn ty_schema(ty: Ty) -> S {
    match ty {
        Ty::Id => s::id(),
        Ty::Text { min, max } => s::text(min, max),
        Ty::Pattern(p) => s::pattern(p),
        Ty::Word(words) => s::words(words),
        Ty::Int { min, max } => s::int(min, max),
        Ty::IntOf(values) => s::int_of(values),
        Ty::Bool => s::boolean(),
        Ty::Ids { max } => s::array_max(s::id(), max),
        Ty::Texts => s::array(s::string()),
        Ty::Names => s::array(s::pattern(spec::USERNAME_PATTERN)),
        Ty::Object(Some(name)) => s::reference(name),
        Ty::Object(None) => s::object(),
        Ty::Privileges => s::reference("Privileges"),
        Ty::Due => s::any_of([s::int(0, i64::MAX), s::string()]),
        Ty::Notify => s::any_of([s::array(s::string()), s::string(), s::boolean()]),
        Ty::Objects => s::array(s::object()),
    }
}

fn query_param(p: &Param) -> utoipa::openapi::path::Parameter {
    let list = matches!(p.ty, Ty::Ids { .. } | Ty::Texts | Ty::Names);
    ParameterBuilder::new()
        .name(p.name)
        .parameter_in(ParameterIn::Query)
        .required(if p.required {
            Required::True
        } else {
            Required::False
        })
        .schema(Some(param_schema(p)))
        .style(list.then_some(ParameterStyle::Form))
        .explode(list.then_some(true))
        .build()
}

fn request_body(call: &CallSpec) -> utoipa::openapi::request_body::RequestBody {
    let required = call.params.iter().any(|p| p.required) || !call.one_of.is_empty();
    let builder = RequestBodyBuilder::new().required(Some(if required {
        Required::True
    } else {
        Required::False
    }));
    if call.body == Body::Multipart {
        return builder
            .content(
                "multipart/form-data",
                ContentBuilder::new().schema(Some(s::multipart())).build(),
            )
            .build();
    }
    let props: Vec<(&str, S, bool)> = call
        .params
        .iter()
        .map(|p| (p.name, param_schema(p), p.required))
        .collect();
    let schema = s::closed_object(props, call.one_of);
    builder
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

fn reply(call: &CallSpec) -> S {
    let mut props = vec![("code", s::int_of(&[0]), true)];
    for f in call.reply {
        let schema = match f.out {
            Out::Record(name) => s::reference(name),
            Out::Array(name) => s::array(s::reference(name)),
            Out::Object => s::object(),
            Out::Text => s::string(),
            Out::Position => s::int(0, i64::MAX),
            Out::Bool => s::boolean(),
            Out::True => s::words_bool_true(),
            Out::Count => s::int(0, i64::MAX),
            // Not a JSON field: `operation` describes the body instead.
            Out::Export => continue,
            Out::ListInfo => s::reference("ListInfo"),
            Out::TicketSlots => s::array(s::one_of([
                s::reference("TicketBrief"),
                s::reference("Ticket"),
                s::reference("Missing"),
            ])),
            Out::TicketRows => s::array(s::any_of([
                s::reference("Ticket"),
                s::reference("TicketCompact"),
            ])),
        };
        props.push((f.name, schema, f.always));
    }
    s::closed_object(props, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn doc() -> serde_json::Value {
        serde_json::from_str(json()).expect("valid JSON")
    }

    #[test]
    fn every_call_of_the_table_is_documented_and_nothing_else() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: BTreeSet<String> = doc["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let calls: BTreeSet<String> = spec::calls().map(|c| c.path()).collect();
        let api: BTreeSet<String> = paths
            .iter()
            .filter(|p| p.starts_with("/api/") && p.ends_with("/v1") && *p != "/api/app/file/v1")
            .cloned()
            .collect();
        assert_eq!(api, calls);
        assert_eq!(
            calls.len(),
            spec::calls().count(),
            "a call is in the table twice"
        );
        for p in [
            "/health",
            "/ready",
            "/metrics",
            "/api/openapi.json",
            "/api/app/file/v1",
        ] {
            assert!(paths.contains(p), "{p}");
        }
        // Every reference resolves.
        for kind in ["schemas", "responses"] {
            for part in json().split(&format!("\"#/components/{kind}/")).skip(1) {
                let name = part.split('"').next().unwrap_or("");
                assert!(
                    doc["components"][kind].get(name).is_some(),
                    "dangling $ref {kind}/{name}"
                );
            }
        }
        // Every call takes the methods the dispatcher allows.
        for c in spec::calls() {
            let item = &doc["paths"][c.path()];
            for method in crate::wire::METHODS {
                let m = method.as_str().to_ascii_lowercase();
                assert!(item[&m].is_object(), "{} {m}", c.name);
            }
        }
    }

    /// `docs/openapi.json` is the generated document. To refresh it after changing the call
    /// table: `DOCKET_WRITE_OPENAPI=1 cargo test -p docket --bin docket openapi`, or
    /// `docket openapi > docs/openapi.json`.
    #[test]
    fn docs_openapi_json_is_what_the_code_generates() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        if std::env::var_os("DOCKET_WRITE_OPENAPI").is_some() {
            std::fs::write(file, json()).expect("write docs/openapi.json");
        }
        let on_disk = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            on_disk == json(),
            "docs/openapi.json differs from the generated document; run \
             `DOCKET_WRITE_OPENAPI=1 cargo test -p docket --bin docket openapi`"
        );
    }
}
