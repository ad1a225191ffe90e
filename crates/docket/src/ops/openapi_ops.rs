//! The routes beside the calls in the OpenAPI document: probes, metrics, the document
//! itself and file downloads. Each lists the statuses its handler answers with.

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder, ResponsesBuilder};

use super::schema::{self as s, S};

pub const GROUP: &str = "Operations";

/// A response: status, description, and its content (media type and schema), if any.
type Answer = (&'static str, &'static str, Option<(&'static str, S)>);

fn json(schema: S) -> Option<(&'static str, S)> {
    Some(("application/json", schema))
}

fn error() -> Option<(&'static str, S)> {
    json(s::reference("Error"))
}

fn op(
    id: &str,
    group: &str,
    summary: &str,
    head: bool,
    open: bool,
    answers: Vec<Answer>,
) -> Operation {
    let mut responses = ResponsesBuilder::new();
    for (status, text, content) in answers {
        let mut r = ResponseBuilder::new().description(text);
        if let (Some((media, schema)), false) = (content, head) {
            r = r.content(media, ContentBuilder::new().schema(Some(schema)).build());
        }
        responses = responses.response(status, r);
    }
    let mut b = OperationBuilder::new()
        .operation_id(Some(if head {
            format!("{id}_head")
        } else {
            id.to_string()
        }))
        .tag(group)
        .summary(Some(summary))
        .responses(responses.build());
    if open {
        b = b.securities(Some([SecurityRequirement::default()]));
    }
    b.build()
}

/// GET and HEAD of one route (axum answers HEAD for every GET route).
fn get_and_head(make: impl Fn(bool) -> Operation) -> PathItem {
    let mut item = PathItem::new(HttpMethod::Get, make(false));
    item.head = Some(make(true));
    item
}

fn file_answers() -> Vec<Answer> {
    let binary = || Some(("*/*", s::string()));
    vec![
        ("200", "The file", binary()),
        ("206", "A range of it", binary()),
        ("304", "Not modified (ETag or date)", None),
        ("400", "A malformed path (`file`)", error()),
        (
            "403",
            "No or bad credentials (`session`, `access`)",
            error(),
        ),
        ("404", "No such file, or not visible (`notfound`)", error()),
        ("405", "A method other than GET or HEAD", error()),
        ("414", "The URI is too long", None),
        ("416", "A range outside the file", error()),
        ("500", "Server failure (`internal`)", error()),
    ]
}

fn file_path(name: &str, place: ParameterIn) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(Required::True)
        .schema(Some(s::string()))
        .description(Some("The `path` of the ticket's file object"))
        .build()
}

pub fn items() -> Vec<(&'static str, PathItem)> {
    let health = get_and_head(|head| {
        op(
            "health",
            GROUP,
            "The process answers (touches nothing else)",
            head,
            true,
            vec![("200", "Alive", json(s::object()))],
        )
    });
    let ready = get_and_head(|head| {
        op(
            "ready",
            GROUP,
            "The database answers (migrations run before the server listens)",
            head,
            true,
            vec![
                ("200", "Ready", json(s::object())),
                ("503", "The database does not answer", json(s::object())),
            ],
        )
    });
    let metrics = get_and_head(|head| {
        op(
            "metrics",
            GROUP,
            "Prometheus metrics (OpenMetrics text); a bearer token when metrics.token is set",
            head,
            true,
            vec![
                (
                    "200",
                    "Metrics",
                    Some(("application/openmetrics-text", s::string())),
                ),
                ("401", "metrics.token is set and was not sent", error()),
                ("404", "metrics.enabled = false", error()),
                ("500", "The metrics could not be written", error()),
            ],
        )
    });
    let document = get_and_head(|head| {
        op(
            "openapi",
            GROUP,
            "This document",
            head,
            true,
            vec![("200", "OpenAPI 3.1", json(s::object()))],
        )
    });
    let mut file = get_and_head(|head| {
        op(
            "file",
            "Tickets",
            "Download a ticket file by its `path` (Range, ETag, `download`)",
            head,
            false,
            file_answers(),
        )
    });
    for o in [&mut file.get, &mut file.head].into_iter().flatten() {
        o.parameters = Some(vec![
            file_path("path", ParameterIn::Query),
            ParameterBuilder::new()
                .name("download")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(s::boolean()))
                .description(Some("As an attachment"))
                .build(),
        ]);
    }
    let mut files = get_and_head(|head| {
        op(
            "files",
            "Tickets",
            "Download a ticket file by its `path` (as /api/app/file/v1)",
            head,
            false,
            file_answers(),
        )
    });
    for o in [&mut files.get, &mut files.head].into_iter().flatten() {
        o.parameters = Some(vec![file_path("path", ParameterIn::Path)]);
    }
    vec![
        ("/health", health),
        ("/ready", ready),
        ("/metrics", metrics),
        ("/api/openapi.json", document),
        ("/api/app/file/v1", file),
        ("/files/{path}", files),
    ]
}
