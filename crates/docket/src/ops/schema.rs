//! JSON Schema pieces for the OpenAPI document (utoipa's builders, shortened), and the
//! schemas of the records the API replies with. Record schemas are closed
//! (`additionalProperties: false`) so a field the model gains shows up as a failure of the
//! test below and of the schemathesis run, not as silent drift.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder,
    OneOfBuilder, Ref, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;

pub type S = RefOr<Schema>;

fn of(b: ObjectBuilder) -> S {
    RefOr::T(Schema::Object(b.build()))
}

fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(t))
}

pub fn string() -> S {
    of(typed(Type::String))
}

pub fn boolean() -> S {
    of(typed(Type::Boolean))
}

pub fn integer() -> S {
    of(typed(Type::Integer))
}

/// An integer or `null`.
fn nullable(t: Type) -> S {
    of(ObjectBuilder::new().schema_type(SchemaType::from_iter([t, Type::Null])))
}

pub fn id() -> S {
    of(typed(Type::String)
        .pattern(Some("^[a-z0-9_]{1,64}$"))
        .description(Some("1 to 64 lowercase letters, digits or _")))
}

pub fn text(min: usize, max: usize) -> S {
    of(typed(Type::String)
        .min_length((min > 0).then_some(min))
        .max_length((max > 0).then_some(max)))
}

pub fn pattern(p: &str) -> S {
    of(typed(Type::String).pattern(Some(p)))
}

pub fn words(words: &[&str]) -> S {
    of(typed(Type::String).enum_values(Some(words.iter().copied())))
}

pub fn int(min: i64, max: i64) -> S {
    of(typed(Type::Integer)
        .minimum((min != i64::MIN).then_some(min as f64))
        .maximum((max != i64::MAX).then_some(max as f64)))
}

pub fn int_of(values: &[i64]) -> S {
    of(typed(Type::Integer).enum_values(Some(values.iter().copied())))
}

/// `true`, the only value.
pub fn words_bool_true() -> S {
    of(typed(Type::Boolean).enum_values(Some([true])))
}

/// Any object.
pub fn object() -> S {
    of(typed(Type::Object))
}

pub fn reference(name: &str) -> S {
    RefOr::Ref(Ref::from_schema_name(name))
}

pub fn described(schema: S, text: &str) -> S {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            o.description = Some(text.to_string());
            RefOr::T(Schema::Object(o))
        }
        RefOr::Ref(r) => RefOr::T(Schema::AllOf(
            AllOfBuilder::new()
                .item(RefOr::<Schema>::Ref(r))
                .description(Some(text))
                .build(),
        )),
        other => other,
    }
}

pub fn array(items: S) -> S {
    RefOr::T(Schema::Array(ArrayBuilder::new().items(items).build()))
}

pub fn array_max(items: S, max: usize) -> S {
    RefOr::T(Schema::Array(
        ArrayBuilder::new()
            .items(items)
            .max_items(Some(max))
            .build(),
    ))
}

pub fn any_of<const N: usize>(items: [S; N]) -> S {
    let mut b = AnyOfBuilder::new();
    for i in items {
        b = b.item(i);
    }
    RefOr::T(Schema::AnyOf(b.build()))
}

pub fn one_of<const N: usize>(items: [S; N]) -> S {
    let mut b = OneOfBuilder::new();
    for i in items {
        b = b.item(i);
    }
    RefOr::T(Schema::OneOf(b.build()))
}

/// An object of exactly these properties (name, schema, required); `one_of` names
/// properties of which at least one must be present.
pub fn closed_object(props: Vec<(&str, S, bool)>, one_of: &[&str]) -> S {
    let mut b =
        typed(Type::Object).additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (name, schema, required) in props {
        b = b.property(name, schema);
        if required {
            b = b.required(name);
        }
    }
    if one_of.is_empty() {
        return of(b);
    }
    let mut either = AnyOfBuilder::new();
    for name in one_of {
        either = either.item(ObjectBuilder::new().required(*name).build());
    }
    RefOr::T(Schema::AllOf(
        AllOfBuilder::new()
            .item(of(b))
            .item(RefOr::<Schema>::T(Schema::AnyOf(either.build())))
            .build(),
    ))
}

/// A multipart body: the parameters as JSON in a `json` part, and file parts.
pub fn multipart() -> S {
    let file =
        || of(typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))));
    of(typed(Type::Object)
        .property(
            "json",
            of(typed(Type::String).description(Some("the parameters, as a JSON object"))),
        )
        .property("file1", file())
        .additional_properties(Some(AdditionalProperties::RefOr(file()))))
}

/// A record's fields: (name, schema, always present).
type Fields = Vec<(&'static str, S, bool)>;

fn record(fields: Fields) -> S {
    closed_object(fields, &[])
}

fn strings() -> S {
    array(string())
}

fn ticket_fields(body: bool, changes: Option<S>) -> Fields {
    let mut f: Fields = vec![
        ("id", string(), true),
        ("num", integer(), true),
        ("subject", string(), true),
        ("type", string(), true),
        ("status", string(), true),
        ("priority", string(), false),
        ("category", string(), true),
        ("server", string(), true),
        ("username", string(), true),
        ("assignees", strings(), true),
        ("cc", strings(), true),
        ("notify", strings(), true),
        ("tags", strings(), true),
        ("due", integer(), true),
        ("events", array(object()), true),
        ("files", array(reference("FileRef")), true),
        ("jobs", strings(), true),
        ("created", integer(), true),
        ("modified", integer(), true),
        ("dedupe_key", string(), false),
        ("occurrences", integer(), false),
        ("relations", array(reference("Relation")), false),
        ("deduplicated", words_bool_true(), false),
    ];
    if body {
        f.push(("body", string(), true));
    }
    if let Some(c) = changes {
        f.push(("changes", c, true));
    }
    f
}

fn directory(extra: Fields) -> S {
    let mut f: Fields = vec![
        ("id", string(), true),
        ("title", string(), true),
        ("username", string(), false),
        ("created", integer(), false),
        ("modified", integer(), false),
    ];
    f.extend(extra);
    record(f)
}

fn grants() -> Fields {
    vec![
        ("privileges", reference("Privileges"), true),
        ("roles", strings(), true),
        ("categories", strings(), true),
        ("created", integer(), true),
        ("modified", integer(), true),
    ]
}

/// Every component schema, by name.
pub fn records() -> Vec<(&'static str, S)> {
    let mut user: Fields = vec![
        ("username", string(), true),
        ("full_name", string(), true),
        ("email", string(), true),
        ("active", boolean(), true),
    ];
    user.extend(grants());
    let mut api_key: Fields = vec![
        ("id", string(), true),
        ("mask", string(), true),
        ("title", string(), true),
        ("description", string(), true),
        ("username", string(), true),
        ("active", boolean(), true),
        ("expires", integer(), true),
        ("max_per_sec", integer(), true),
    ];
    api_key.extend(grants());
    let privileges = of(typed(Type::Object)
        .description(Some("Granted privileges as `name: true` pairs"))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .enum_values(Some(docket_core::auth::PRIVILEGES))
                .build(),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(boolean()))));
    vec![
        (
            "Error",
            record(vec![
                (
                    "code",
                    words(&[
                        "session",
                        "api",
                        "access",
                        "rate",
                        "ticket",
                        "notfound",
                        "file",
                        "user",
                        "tag",
                        "category",
                        "role",
                        "internal",
                        "cursor_expired",
                    ]),
                    true,
                ),
                ("description", string(), true),
            ]),
        ),
        ("ListInfo", record(vec![("length", int(0, i64::MAX), true)])),
        (
            "BulkSet",
            record(vec![
                ("status", string(), false),
                ("priority", string(), false),
                ("category", string(), false),
                ("due", any_of([int(0, i64::MAX), string()]), false),
                ("assignees", reference("AddRemove"), false),
                ("tags", reference("AddRemove"), false),
            ]),
        ),
        (
            "AddRemove",
            record(vec![
                ("add", strings(), false),
                ("remove", strings(), false),
            ]),
        ),
        (
            "BulkRefusal",
            record(vec![
                ("id", string(), true),
                ("num", integer(), true),
                ("code", string(), true),
                ("description", string(), true),
            ]),
        ),
        (
            "BulkPreview",
            record(vec![
                ("id", string(), true),
                ("num", integer(), true),
                ("subject", string(), true),
                ("changes", array(reference("BulkFieldChange")), true),
            ]),
        ),
        (
            "BulkFieldChange",
            record(vec![
                ("field", string(), true),
                ("from", RefOr::T(Schema::default()), true),
                ("to", RefOr::T(Schema::default()), true),
            ]),
        ),
        ("Missing", record(vec![("err", string(), true)])),
        (
            "Ticket",
            record(ticket_fields(true, Some(array(reference("Change"))))),
        ),
        ("TicketBrief", record(ticket_fields(false, None))),
        (
            "TicketCompact",
            record(ticket_fields(false, Some(int(0, i64::MAX)))),
        ),
        (
            "Change",
            record(vec![
                ("id", string(), false),
                ("type", string(), true),
                ("username", string(), true),
                ("date", integer(), true),
                ("key", string(), false),
                ("value", RefOr::T(Schema::default()), false),
                ("body", string(), false),
                ("edited", integer(), false),
                ("internal", boolean(), false),
            ]),
        ),
        (
            "Relation",
            record(vec![
                ("type", words(&docket_core::relations::TYPES), true),
                ("num", integer(), true),
                ("id", string(), true),
                ("subject", string(), false),
                ("status", string(), false),
            ]),
        ),
        (
            "TicketEvent",
            record(vec![
                ("position", int(1, i64::MAX), true),
                ("id", string(), true),
                ("num", integer(), true),
                (
                    "kind",
                    words(&["created", "updated", "commented", "files", "deleted"]),
                    true,
                ),
                ("modified", integer(), true),
                ("changes", array(reference("Change")), true),
                ("files_added", array(reference("FileRef")), false),
                ("files_removed", array(reference("FileRef")), false),
            ]),
        ),
        (
            "ChangeInput",
            record(vec![
                ("type", words(&["comment", "change"]), false),
                ("body", text(1, 0), false),
                ("key", id(), false),
                ("value", RefOr::T(Schema::default()), false),
                ("internal", boolean(), false),
            ]),
        ),
        (
            "FileRef",
            record(vec![
                ("id", string(), true),
                ("date", integer(), true),
                ("filename", string(), true),
                ("path", string(), true),
                ("size", int(0, i64::MAX), true),
                ("username", string(), true),
                ("ticket", string(), true),
                ("type", string(), false),
            ]),
        ),
        ("User", record(user)),
        ("ApiKey", record(api_key)),
        (
            "Session",
            record(vec![
                ("created", integer(), true),
                ("expires", integer(), true),
            ]),
        ),
        ("Privileges", privileges),
        (
            "Tag",
            directory(vec![("icon", string(), false), ("notes", string(), false)]),
        ),
        (
            "Category",
            directory(vec![
                ("icon", string(), false),
                ("notes", string(), false),
                ("color", string(), false),
                ("sort_order", integer(), false),
            ]),
        ),
        (
            "Role",
            directory(vec![
                ("notes", string(), false),
                ("privileges", reference("Privileges"), false),
                ("categories", strings(), false),
            ]),
        ),
        (
            "OutboxRow",
            record(vec![
                ("id", integer(), true),
                ("channel", string(), true),
                ("kind", string(), true),
                ("ticket", string(), true),
                ("target", string(), true),
                ("created", integer(), true),
                ("not_before", integer(), true),
                ("attempts", integer(), true),
                ("claimed_until", nullable(Type::Integer), true),
                ("sent_at", nullable(Type::Integer), true),
                ("last_error", nullable(Type::String), true),
                ("status", words(&["pending", "retrying", "sent"]), true),
            ]),
        ),
        (
            "XyopsRecord",
            of(typed(Type::Object)
                .description(Some("An xyOps record, kept as sent"))
                .property("id", id())
                .required("id")
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::model::{ApiKey, Change, FileRef, Session, Ticket, User};
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    fn schema(name: &str) -> Value {
        let all: serde_json::Map<String, Value> = records()
            .into_iter()
            .map(|(n, s)| (n.to_string(), serde_json::to_value(s).expect("schema")))
            .collect();
        all[name].clone()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The schema of a record names every field the model serializes (a full record), and
    /// requires only those it always serializes (a default record).
    fn check(name: &str, full: Value, empty: Value, wire_only: &[&str]) {
        let s = schema(name);
        let mut props = keys(&s["properties"]);
        for w in wire_only {
            assert!(props.remove(*w), "{name}: {w}");
        }
        assert_eq!(
            props,
            keys(&full),
            "{name}: properties vs the model's fields"
        );
        let required: BTreeSet<String> = s["required"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let always = keys(&empty);
        assert!(
            required.is_subset(&always),
            "{name}: {required:?} vs {always:?}"
        );
        assert_eq!(s["additionalProperties"], json!(false), "{name}");
    }

    #[test]
    fn record_schemas_match_the_model() {
        let ticket = Ticket {
            dedupe_key: "k".into(),
            occurrences: 2,
            relations: vec![Default::default()],
            priority: "high".into(),
            ..Default::default()
        };
        check(
            "Ticket",
            serde_json::to_value(&ticket).expect("ticket"),
            serde_json::to_value(Ticket::default()).expect("ticket"),
            &["deduplicated"],
        );
        let change = Change {
            id: "c".into(),
            key: Some("k".into()),
            value: Some(json!(1)),
            body: Some("b".into()),
            edited: Some(1),
            internal: true,
            ..Default::default()
        };
        check(
            "Change",
            serde_json::to_value(&change).expect("change"),
            serde_json::to_value(Change::default()).expect("change"),
            &[],
        );
        let relation = docket_core::model::Relation {
            subject: "s".into(),
            status: "open".into(),
            ..Default::default()
        };
        check(
            "Relation",
            serde_json::to_value(&relation).expect("relation"),
            serde_json::to_value(docket_core::model::Relation::default()).expect("relation"),
            &[],
        );
        let file = FileRef {
            media_type: "text/plain".into(),
            ..Default::default()
        };
        let event = docket_core::feed::FeedEvent {
            position: 1,
            entry: docket_core::feed::FeedEntry {
                files_added: vec![file.clone()],
                files_removed: vec![file.clone()],
                ..Default::default()
            },
        };
        check(
            "TicketEvent",
            serde_json::to_value(&event).expect("event"),
            serde_json::to_value(docket_core::feed::FeedEvent::default()).expect("event"),
            &[],
        );
        check(
            "FileRef",
            serde_json::to_value(&file).expect("file"),
            serde_json::to_value(FileRef::default()).expect("file"),
            &[],
        );
        // Public forms: never the password hash or the key hash.
        check(
            "User",
            serde_json::to_value(User::default().public()).expect("user"),
            serde_json::to_value(User::default()).expect("user"),
            &[],
        );
        check(
            "ApiKey",
            serde_json::to_value(ApiKey::default().public()).expect("key"),
            serde_json::to_value(ApiKey::default()).expect("key"),
            &[],
        );
        check(
            "Session",
            docket_core::Docket::session_value(&Session::default()),
            docket_core::Docket::session_value(&Session::default()),
            &[],
        );
    }
}
