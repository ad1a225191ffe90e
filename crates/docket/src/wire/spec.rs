//! The call table: every API call with its handler, who may call it, its parameters and
//! its reply. The dispatcher routes by it (`super::handle`), every request's parameters are
//! checked against it ([`CallSpec::prepare`]) and the OpenAPI document is built from it
//! (`crate::ops::openapi`) — one description, so the document cannot drift from the server.

use docket_core::Error;
use serde_json::{Map, Value};

use super::{accounts, automation, directory, export, feed, notify, tickets, Call, CallFn};

/// The type of a parameter: its JSON schema in the document, and the coarse check made
/// before the handler runs (the services check the rest, with the data at hand).
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// 1 to 64 lowercase letters, digits or `_`.
    Id,
    /// Text of `min` to `max` characters (`max` 0: no limit here).
    Text {
        min: usize,
        max: usize,
    },
    /// Text matching a regular expression (JSON Schema `pattern`).
    Pattern(&'static str),
    /// One of these words.
    Word(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    /// One of these whole numbers.
    IntOf(&'static [i64]),
    /// `true`/`false` (also `1`/`0` and those words as text).
    Bool,
    /// An array of ids, or one comma-separated text; at most `max`.
    Ids {
        max: usize,
    },
    /// An array of strings, or one comma-separated text.
    Texts,
    /// Usernames (letters, digits, `_`, `-`, `.`): an array, or one comma-separated text.
    Names,
    /// An object: a component schema when named, else any object.
    Object(Option<&'static str>),
    /// Privilege names: an object of `name: true` pairs, or an array of names.
    Privileges,
    /// A due date: epoch seconds, or a date or relative text.
    Due,
    /// Notification addresses (array or comma text), or `false` to send nothing.
    Notify,
    /// An array of objects.
    Objects,
}

impl Ty {
    /// Whether the value is text on the wire (so a query string's `5` or `true` is text).
    fn is_text(self) -> bool {
        matches!(
            self,
            Ty::Id | Ty::Text { .. } | Ty::Pattern(_) | Ty::Word(_) | Ty::Due
        )
    }

    fn is_list(self) -> bool {
        matches!(self, Ty::Ids { .. } | Ty::Texts | Ty::Names | Ty::Notify)
    }

    /// Whether a query string or form field can carry it (objects cannot).
    pub fn in_query(self) -> bool {
        !matches!(self, Ty::Object(_) | Ty::Privileges | Ty::Objects)
    }

    /// What the value must be, when `value` can never be one. Objects are left to the
    /// services, which say what the object should hold.
    fn mismatch(self, value: &Value) -> Option<&'static str> {
        let (array, object, boolean) = (value.is_array(), value.is_object(), value.is_boolean());
        let (bad, what) = match self {
            Ty::Id | Ty::Text { .. } | Ty::Pattern(_) | Ty::Word(_) => {
                (array || object, "must be a string")
            }
            Ty::Int { .. } | Ty::IntOf(_) => (array || object || boolean, "must be a whole number"),
            Ty::Due => (array || object || boolean, "must be a number or a date"),
            Ty::Bool => (array || object, "must be true or false"),
            Ty::Ids { .. } | Ty::Texts | Ty::Names => (object || boolean, "must be an array"),
            Ty::Notify => (object, "must be an array"),
            Ty::Object(_) | Ty::Privileges | Ty::Objects => (false, ""),
        };
        bad.then_some(what)
    }
}

/// One parameter of a call.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
    /// The error code of a malformed value, when not the call's.
    pub error: Option<fn(String) -> Error>,
}

impl Param {
    /// A malformed value of this parameter is an `api` error (not the call's code).
    const fn api(mut self) -> Param {
        self.error = Some(Error::Api);
        self
    }
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        doc,
        error: None,
    }
}

const fn opt(name: &'static str, ty: Ty, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
        doc,
        error: None,
    }
}

/// Who may make a call (checked by the handler; stated in the document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential needed.
    Open,
    /// Any valid API key or session.
    Caller,
    /// A caller holding this privilege (`admin` holds them all).
    Privilege(&'static str),
    /// A caller with `admin`.
    Admin,
}

/// One field of a successful reply (beside `code: 0`).
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// A record: the named component schema.
    Record(&'static str),
    /// An array of the named component schema.
    Array(&'static str),
    /// Any object (an xyOps record kept as sent, or the echoed parameters).
    Object,
    Text,
    /// A change-feed position (a whole number from 0).
    Position,
    Bool,
    /// Always `true` when present.
    True,
    /// A whole number, 0 or more.
    Count,
    /// `{length}`: how many rows there are in all.
    ListInfo,
    /// `get_tickets`: a ticket (brief, or whole with `verbose`) or `{err}` per id.
    TicketSlots,
    /// `search_tickets`: whole tickets, or compact rows with `compact`.
    TicketRows,
    /// `export_tickets`: not a JSON reply but a CSV or NDJSON body.
    Export,
}

/// A reply field, and whether every success carries it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub out: Out,
    pub always: bool,
}

const fn out(name: &'static str, out: Out) -> Field {
    Field {
        name,
        out,
        always: true,
    }
}

/// How the request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// JSON (or a form, or the query string).
    Params,
    /// `multipart/form-data`: a `json` part and file parts.
    Multipart,
}

/// One call of the API, served at `/api/NS/NAME/v1` and `/api/NS/NAME`.
pub struct CallSpec {
    pub ns: &'static str,
    pub name: &'static str,
    /// The group it is listed under in the document.
    pub group: &'static str,
    pub access: Access,
    /// Changes nothing: a cookie session needs no CSRF token for it.
    pub read_only: bool,
    /// What it does, in Markdown (who may call it and the parameters are added).
    pub doc: &'static str,
    pub params: &'static [Param],
    /// At least one of these parameters must be sent (the services say which is missing).
    pub one_of: &'static [&'static str],
    pub body: Body,
    pub reply: &'static [Field],
    /// The error code of a malformed parameter (`ticket`, `tag`, … or `api`).
    pub error: fn(String) -> Error,
    pub(super) run: CallFn,
}

impl CallSpec {
    pub fn path(&self) -> String {
        format!("/api/{}/{}/v1", self.ns, self.name)
    }

    /// Readies the parameters before the handler: a value a query string or form typed as a
    /// number or boolean (`?title=1`) is text again when this call declares it text, and a
    /// value of a type the parameter can never have is refused, naming the parameter.
    /// `from_text` names the parameters that came from a query string or form.
    pub fn prepare(
        &self,
        params: &mut Map<String, Value>,
        from_text: &[String],
    ) -> Result<(), Error> {
        for p in self.params {
            let Some(value) = params.get_mut(p.name) else {
                continue;
            };
            if from_text.iter().any(|k| k == p.name) {
                untype(p.ty, value);
            }
            if value.is_null() {
                continue;
            }
            if let Some(what) = p.ty.mismatch(value) {
                return Err(p.error.unwrap_or(self.error)(format!(
                    "Malformed parameter: {} ({what})",
                    p.name
                )));
            }
        }
        Ok(())
    }
}

/// A number or boolean typed from text, back to its text.
fn untype(ty: Ty, value: &mut Value) {
    let text = |v: &mut Value, booleans: bool| match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Bool(b) if booleans => *v = Value::String(b.to_string()),
        _ => {}
    };
    if ty.is_text() {
        text(value, true);
    } else if ty.is_list() {
        // `notify=false` stays the mute switch.
        let booleans = !matches!(ty, Ty::Notify);
        match value {
            Value::Array(items) => items.iter_mut().for_each(|v| text(v, booleans)),
            other => text(other, booleans),
        }
    }
}

macro_rules! handler {
    ($f:path) => {
        |s, c: Call| Box::pin(async move { $f(&s, &c).await })
    };
}

const ID: Param = req("id", Ty::Id, "");
const NOTIFY_FLAG: Param = opt(
    "notify",
    Ty::Bool,
    "`false`: record the change without sending notifications",
);
/// A directory record's title (the service trims it and takes 1 to 200 characters; the
/// pattern keeps generated titles to ones that stay titles after trimming).
const TITLE: Ty = Ty::Pattern("^[A-Za-z0-9][A-Za-z0-9 ]{0,199}$");
/// A username (`ticket_input::check_username`).
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";
const USERNAME: Ty = Ty::Pattern(USERNAME_PATTERN);
/// A ticket file's path as the server makes them (`files::check_path`).
const FILE_PATH: Ty = Ty::Pattern(
    "^files/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
);
const NOTES: Ty = Ty::Text {
    min: 0,
    max: 10_000,
};
const TEXT: Ty = Ty::Text { min: 0, max: 0 };
const IDS: Ty = Ty::Ids { max: 10_000 };

/// A ticket's fields as `create_ticket` and `update_ticket` take them.
macro_rules! ticket_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            opt("subject", Ty::Text { min: 1, max: 1000 }, "required unless a template writes it"),
            opt("body", TEXT, "Markdown, at most 1 MiB"),
            opt("type", TEXT, "one of the configured ticket types"),
            opt("status", TEXT, "one of the configured statuses (default `open`)"),
            opt("category", Ty::Id, "an existing category"),
            opt("server", Ty::Text { min: 0, max: 255 }, ""),
            opt("assignees", Ty::Names, "usernames"),
            opt("cc", Ty::Texts, "email addresses or usernames"),
            opt("notify", Ty::Notify, "email addresses; `false` sends no notifications"),
            opt("tags", IDS, "existing tags"),
            opt("due", Ty::Due, "epoch seconds, `YYYY-MM-DD`, or a relative text such as `3 days`"),
            opt("events", Ty::Objects, "xyOps event references"),
            opt("jobs", IDS, "xyOps job ids"),
            opt("dedupe_key", Ty::Text { min: 0, max: 256 }, "an open ticket with the same key absorbs the create"),
        ]
    };
}

/// The five calls of a directory kind (tags, categories, roles): list, get, create, update,
/// delete; `$field`s are the kind's own fields beside `id` and `title`.
macro_rules! directory_calls {
    ($noun:literal, $plural:literal, $code:path, $component:literal,
     [$create:expr, $edit:expr, $remove:expr], [$($field:expr),*],
     $list_fn:path, $get_fn:path, $create_fn:path, $update_fn:path, $delete_fn:path) => {
        [
            CallSpec {
                ns: "app",
                name: concat!("get_", $plural),
                group: DIRECTORY,
                access: Access::Caller,
                read_only: true,
                doc: concat!("Every ", $noun, ", sorted by title."),
                params: &[],
                one_of: &[],
                body: Body::Params,
                reply: &[out("rows", Out::Array($component)), out("list", Out::ListInfo)],
                error: $code,
                run: handler!($list_fn),
            },
            CallSpec {
                ns: "app",
                name: concat!("get_", $noun),
                group: DIRECTORY,
                access: Access::Caller,
                read_only: true,
                doc: concat!("One ", $noun, " by `id`."),
                params: &[ID],
                one_of: &[],
                body: Body::Params,
                reply: &[out($noun, Out::Record($component))],
                error: $code,
                run: handler!($get_fn),
            },
            CallSpec {
                ns: "app",
                name: concat!("create_", $noun),
                group: DIRECTORY,
                access: $create,
                read_only: false,
                doc: concat!("Creates a ", $noun, "; its `id` is made from the title when none is sent."),
                params: &[req("title", TITLE, ""), opt("id", Ty::Id, "") $(, $field)*],
                one_of: &[],
                body: Body::Params,
                reply: &[out($noun, Out::Record($component))],
                error: $code,
                run: handler!($create_fn),
            },
            CallSpec {
                ns: "app",
                name: concat!("update_", $noun),
                group: DIRECTORY,
                access: $edit,
                read_only: false,
                doc: concat!("Changes the fields sent of the ", $noun, " `id`."),
                params: &[ID, opt("title", TITLE, "") $(, $field)*],
                one_of: &[],
                body: Body::Params,
                reply: &[out($noun, Out::Record($component))],
                error: $code,
                run: handler!($update_fn),
            },
            CallSpec {
                ns: "app",
                name: concat!("delete_", $noun),
                group: DIRECTORY,
                access: $remove,
                read_only: false,
                doc: concat!("Deletes the ", $noun, " `id`."),
                params: &[ID],
                one_of: &[],
                body: Body::Params,
                reply: &[],
                error: $code,
                run: handler!($delete_fn),
            },
        ]
    };
}

const DIRECTORY: &str = "Tags, categories and roles";
const TICKETS: &str = "Tickets";
const RECORDS: &str = "Job and alert records";
const KEYS: &str = "API keys";
const USERS: &str = "Sessions and users";

/// A call with the usual defaults: a JSON body, malformed parameters answered `api`.
macro_rules! call {
    ($ns:literal $name:literal, $group:expr, $access:expr, read_only: $ro:expr, $f:path,
     doc: $doc:expr, params: $params:expr, reply: $reply:expr
     $(, one_of: $one_of:expr)? $(, body: $body:expr)? $(, error: $error:path)? $(,)?) => {
        CallSpec {
            ns: $ns,
            name: $name,
            group: $group,
            access: $access,
            read_only: $ro,
            doc: $doc,
            params: $params,
            one_of: call!(@or &[] $(, $one_of)?),
            body: call!(@or Body::Params $(, $body)?),
            reply: $reply,
            error: call!(@or Error::Api $(, $error)?),
            run: handler!($f),
        }
    };
    (@or $default:expr, $given:expr) => { $given };
    (@or $default:expr) => { $default };
}

const TICKET_REPLY: &[Field] = &[out("ticket", Out::Record("Ticket"))];
const FILES_REPLY: &[Field] = &[out("files", Out::Array("FileRef"))];
const RELATION_REPLY: &[Field] = &[
    out("ticket", Out::Record("Ticket")),
    out("other", Out::Record("Ticket")),
];
const RELATION_TYPE: Param = req(
    "type",
    Ty::Word(&docket_core::relations::TYPES),
    "what the other ticket is to ticket `id`",
);
const RELATION_OTHER: Param = opt("other", Ty::Id, "the other ticket's id");
const RELATION_OTHER_NUM: Param = opt(
    "other_num",
    Ty::Int {
        min: 1,
        max: 9_007_199_254_740_991,
    },
    "the other ticket's number",
);

static SERVER_CALLS: [CallSpec; 2] = [
    call!("app" "ping", "Server", Access::Open, read_only: true, super::ping,
        doc: "A health check: no parameters, no credential.", params: &[], reply: &[]),
    call!("app" "echo", "Server", Access::Open, read_only: true, super::echo,
        doc: "Returns the parameters it received as `params` (without `password` and \
              `session_id`), for checking how a client's request arrives.",
        params: &[], reply: &[out("params", Out::Object)]),
];

static TICKET_CALLS: [CallSpec; 15] = [
    call!("app" "get_ticket", TICKETS, Access::Caller, read_only: true, tickets::get_ticket,
        doc: "One ticket, with its body and history, by `id` or by `num`. A ticket the \
              caller may not see is `notfound`.",
        params: &[opt("id", Ty::Id, ""), opt("num", Ty::Int { min: 1, max: 9_007_199_254_740_991 }, "the ticket number")],
        reply: TICKET_REPLY, one_of: &["id", "num"], error: Error::Ticket),
    call!("app" "get_tickets", TICKETS, Access::Caller, read_only: true, tickets::get_tickets,
        doc: "Tickets by id, in the order of `ids`, with `{\"err\": \"…\"}` in place of one \
              that is missing or not visible. Without `verbose` the rows carry no `body` \
              and no `changes`.",
        params: &[req("ids", IDS, ""), opt("verbose", Ty::Bool, "include `body` and `changes`")],
        reply: &[out("tickets", Out::TicketSlots)], error: Error::Ticket),
    call!("app" "search_tickets", TICKETS, Access::Caller, read_only: true, tickets::search_tickets,
        doc: "Searches tickets (the language is in docs/search.md). `list.length` counts every \
              match; a malformed query is `ticket`, with its position.",
        params: &[
            opt("query", TEXT, "the search, default `*`"),
            opt("offset", Ty::Int { min: 0, max: i64::MAX }, "default 0"),
            opt("limit", Ty::Int { min: 1, max: 10_000 }, "default **1**"),
            opt("sort_by", Ty::Word(&["_id", "num", "created", "modified", "due", "subject", "status", "type", "priority"]), "default `_id`; `priority` sorts by the configured level order"),
            opt("sort_dir", Ty::IntOf(&[1, -1]), "default -1"),
            opt("compact", Ty::Bool, "rows without `body`, with `changes` as a count"),
        ],
        reply: &[out("rows", Out::TicketRows), out("list", Out::ListInfo)]),
    call!("app" "get_ticket_events", TICKETS, Access::Caller, read_only: true, feed::get_ticket_events,
        doc: "Pages through the change feed: every committed ticket event (`created`, \
              `updated`, `commented`, `files`, `deleted`) with its `position`, oldest first, \
              only of tickets the caller may see. Pass the reply's `cursor` as `after` to \
              continue; nothing is skipped or repeated. A cursor older than the retention \
              (`events.retention_days`) is `cursor_expired` (HTTP 410 on `/v1`): start again \
              without `after`. `GET /api/app/stream_ticket_events/v1` streams the same \
              events live as Server-Sent Events (see docs/feed.md).",
        params: &[
            opt("after", Ty::Int { min: 0, max: i64::MAX }, "a cursor (a position): events after it; default: from the oldest kept"),
            opt("limit", Ty::Int { min: 1, max: 1000 }, "default 100"),
            opt("query", TEXT, "only events of tickets matching this search now (`deleted` events always pass)"),
        ],
        reply: &[out("events", Out::Array("TicketEvent")), out("cursor", Out::Position), out("more", Out::Bool)],
        error: Error::Ticket),
    call!("app" "create_ticket", TICKETS, Access::Privilege("create_tickets"), read_only: false, tickets::create_ticket,
        doc: "Creates a ticket. Fields the server owns (`num`, `created`, `modified`, \
              `changes`, `files`) are ignored when sent; any other unknown field is an error \
              naming it. `template: \"job\"` with `job`, or `template: \"alert\"` with \
              `alert`, writes the body (and the subject when none is sent) from that xyOps \
              record. The same `idempotency_key` (or `Idempotency-Key` header) from the same \
              caller within 24 hours returns the first result. As `multipart/form-data` \
              (a `json` part and file parts) the files are attached.",
        params: ticket_fields!(
            opt("id", Ty::Id, "a client-chosen id"),
            opt("template", Ty::Word(&["job", "alert"]), ""),
            opt("job", Ty::Id, "with `template: \"job\"`"),
            opt("alert", Ty::Id, "with `template: \"alert\"`"),
            opt("idempotency_key", Ty::Text { min: 0, max: 256 }, "").api(),
        ),
        reply: &[out("ticket", Out::Record("Ticket")),
                 Field { name: "deduplicated", out: Out::True, always: false }],
        error: Error::Ticket),
    call!("app" "update_ticket", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::update_ticket,
        doc: "Changes the fields sent of ticket `id` (a shallow merge); each change is \
              recorded in its history.",
        params: ticket_fields!(ID), reply: TICKET_REPLY, error: Error::Ticket),
    call!("app" "add_ticket_change", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::add_ticket_change,
        doc: "Adds a history entry, usually a comment (`{type: \"comment\", body}`); the \
              server sets its `id`, `username` and `date`.",
        params: &[ID, req("change", Ty::Object(Some("ChangeInput")), ""), NOTIFY_FLAG],
        reply: TICKET_REPLY, error: Error::Ticket),
    call!("app" "update_ticket_change", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::update_ticket_change,
        doc: "Edits (`change`, merged into the entry) or removes (`delete: true`) the entry \
              `change_id` of ticket `id`; only its author or an admin may.",
        params: &[ID, req("change_id", Ty::Id, ""), opt("change", Ty::Object(Some("ChangeInput")), ""),
                  opt("delete", Ty::Bool, ""), NOTIFY_FLAG],
        reply: TICKET_REPLY, one_of: &["change", "delete"], error: Error::Ticket),
    call!("app" "upload_user_ticket_files", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::upload_user_ticket_files,
        doc: "A `multipart/form-data` request whose `json` part is `{ticket, save?}` and whose \
              other parts are files. With `save: true` the files are attached and the reply \
              is the ticket's whole file list; without it, only the new files.",
        params: &[], reply: FILES_REPLY, body: Body::Multipart, error: Error::File),
    call!("app" "delete_ticket_file", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::delete_ticket_file,
        doc: "Removes the file `path` from ticket `id` and from storage; the reply lists the \
              files that remain.",
        params: &[ID, req("path", FILE_PATH, "the file's `path`")],
        reply: FILES_REPLY, error: Error::File),
    call!("app" "bulk_update_tickets", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::bulk_update_tickets,
        doc: "Applies one change to every ticket `query` matches in the caller's categories, \
              each ticket in its own transaction with history and notifications as \
              `update_ticket` gives them. `set` may hold `status`, `priority`, `category`, \
              `due`, `assignees: {add, remove}` and `tags: {add, remove}`; the same call \
              again changes nothing. `dry_run: true` changes nothing and answers how many \
              tickets match and, for the first 20 by number, what would change. A query \
              matching more than `tickets.bulk_max_tickets` tickets is refused.",
        params: &[
            req("query", Ty::Text { min: 1, max: 0 }, "the tickets to change (search language; `*` = all)"),
            req("set", Ty::Object(Some("BulkSet")), ""),
            opt("dry_run", Ty::Bool, "report only, change nothing"),
            NOTIFY_FLAG,
        ],
        reply: &[out("dry_run", Out::Bool), out("matched", Out::Count), out("max_tickets", Out::Count),
                 out("changed", Out::Count), out("unchanged", Out::Count), out("refused", Out::Count),
                 out("refusals", Out::Array("BulkRefusal")), out("preview", Out::Array("BulkPreview"))],
        error: Error::Ticket),
    call!("app" "export_tickets", TICKETS, Access::Caller, read_only: true, export::export_tickets,
        doc: "Every ticket `query` matches in the caller's categories, in number order, as \
              a streamed file (not a JSON reply): `format: \"ndjson\"` (default) writes one \
              stored record per line, which `docket import` reads back; `format: \"csv\"` \
              writes a header row and one row per ticket. `fields` picks the fields \
              (CSV default: id, num, subject, status, priority, type, category, assignees, \
              tags, username, created, modified, due).",
        params: &[
            opt("query", TEXT, "the search, default `*`"),
            opt("format", Ty::Word(&["ndjson", "csv"]), "default `ndjson`"),
            opt("fields", Ty::Texts, "field names, in column order"),
        ],
        reply: &[out("", Out::Export)],
        error: Error::Ticket),
    call!("app" "delete_ticket", TICKETS, Access::Privilege("delete_tickets"), read_only: false, tickets::delete_ticket,
        doc: "Deletes ticket `id` with its history and files. The tickets related to it lose \
              their relations to it (each gets a history entry).",
        params: &[ID, NOTIFY_FLAG], reply: &[], error: Error::Ticket),
    call!("app" "add_ticket_relation", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::add_ticket_relation,
        doc: "Relates ticket `id` to ticket `other` (or `other_num`) as `type` — what the \
              other ticket is to this one — and the other ticket back with the inverse \
              type, both in one transaction with a history entry on each. The reply holds \
              both tickets.",
        params: &[ID, RELATION_TYPE, RELATION_OTHER, RELATION_OTHER_NUM, NOTIFY_FLAG],
        reply: RELATION_REPLY, one_of: &["other", "other_num"], error: Error::Ticket),
    call!("app" "remove_ticket_relation", TICKETS, Access::Privilege("edit_tickets"), read_only: false, tickets::remove_ticket_relation,
        doc: "Removes the relation `type` of ticket `id` to ticket `other` (or `other_num`) \
              and its inverse on the other ticket, with a history entry on each.",
        params: &[ID, RELATION_TYPE, RELATION_OTHER, RELATION_OTHER_NUM, NOTIFY_FLAG],
        reply: RELATION_REPLY, one_of: &["other", "other_num"], error: Error::Ticket),
];

static RECORD_CALLS: [CallSpec; 4] = [
    call!("app" "put_job", RECORDS, Access::Privilege("import_records"), read_only: false, automation::put_job,
        doc: "Stores an xyOps Job record (replacing one with the same `id`) for \
              `create_ticket`'s job reports.",
        params: &[req("job", Ty::Object(Some("XyopsRecord")), "")],
        reply: &[out("job", Out::Record("XyopsRecord"))]),
    call!("app" "get_job", RECORDS, Access::Caller, read_only: true, automation::get_job,
        doc: "The stored Job record `id`, else the configured upstream xyOps server's.",
        params: &[ID], reply: &[out("job", Out::Record("XyopsRecord"))]),
    call!("app" "put_alert", RECORDS, Access::Privilege("import_records"), read_only: false, automation::put_alert,
        doc: "Stores an xyOps AlertInvocation record.",
        params: &[req("alert", Ty::Object(Some("XyopsRecord")), "")],
        reply: &[out("alert", Out::Record("XyopsRecord"))]),
    call!("app" "get_alert", RECORDS, Access::Caller, read_only: true, automation::get_alert,
        doc: "The stored AlertInvocation record `id`, else the upstream xyOps server's.",
        params: &[ID], reply: &[out("alert", Out::Record("XyopsRecord"))]),
];

const KEY_FIELDS_DOC: &str = "`privileges` are known privilege names; `roles` and \
    `categories` must exist.";

static ACCOUNT_CALLS: [CallSpec; 14] = [
    call!("app" "get_outbox", "Notifications", Access::Admin, read_only: true, notify::get_outbox,
        doc: "The queue of emails and webhooks: by default the rows still to send; with \
              `all`, the latest rows of every state.",
        params: &[opt("all", Ty::Bool, ""), opt("limit", Ty::Int { min: 1, max: 10_000 }, "default 100")],
        reply: &[out("rows", Out::Array("OutboxRow")), out("list", Out::ListInfo)]),
    call!("app" "get_api_keys", KEYS, Access::Admin, read_only: true, accounts::get_api_keys,
        doc: "Every API key (never the key itself).", params: &[],
        reply: &[out("rows", Out::Array("ApiKey")), out("list", Out::ListInfo)]),
    call!("app" "get_api_key", KEYS, Access::Admin, read_only: true, accounts::get_api_key,
        doc: "One API key by `id`.", params: &[ID], reply: &[out("api_key", Out::Record("ApiKey"))]),
    call!("app" "create_api_key", KEYS, Access::Admin, read_only: false, accounts::create_api_key,
        doc: "Creates an API key; `plain_key` is in this reply only.",
        params: &[
            req("title", Ty::Text { min: 1, max: 200 }, ""),
            opt("id", Ty::Id, ""),
            opt("key", Ty::Pattern("^[!-~]{16,256}$"), "16 to 256 printable ASCII characters; generated when left out"),
            opt("description", NOTES, ""),
            opt("username", Ty::Text { min: 0, max: 64 }, "author name for what the key creates"),
            opt("active", Ty::Bool, "default true"),
            opt("expires", Ty::Int { min: 0, max: i64::MAX }, "epoch seconds; 0 never"),
            opt("max_per_sec", Ty::Int { min: 0, max: u32::MAX as i64 }, "0 unlimited"),
            opt("privileges", Ty::Privileges, KEY_FIELDS_DOC),
            opt("roles", IDS, ""),
            opt("categories", IDS, ""),
        ],
        reply: &[out("api_key", Out::Record("ApiKey")), out("plain_key", Out::Text)]),
    call!("app" "update_api_key", KEYS, Access::Admin, read_only: false, accounts::update_api_key,
        doc: "Changes the fields sent of API key `id` (not the key: create a new one).",
        params: &[
            ID,
            opt("title", Ty::Text { min: 1, max: 200 }, ""),
            opt("description", NOTES, ""),
            opt("username", Ty::Text { min: 0, max: 64 }, ""),
            opt("active", Ty::Bool, ""),
            opt("expires", Ty::Int { min: 0, max: i64::MAX }, ""),
            opt("max_per_sec", Ty::Int { min: 0, max: u32::MAX as i64 }, ""),
            opt("privileges", Ty::Privileges, KEY_FIELDS_DOC),
            opt("roles", IDS, ""),
            opt("categories", IDS, ""),
        ],
        reply: &[out("api_key", Out::Record("ApiKey"))]),
    call!("app" "delete_api_key", KEYS, Access::Admin, read_only: false, accounts::delete_api_key,
        doc: "Deletes API key `id`.", params: &[ID], reply: &[]),
    call!("user" "login", USERS, Access::Open, read_only: true, accounts::login,
        doc: "Signs in: the reply carries a session id (for `X-Session-ID`) and its CSRF \
              token, and sets a `session_id` cookie (HttpOnly, SameSite=Lax). A wrong name \
              or password is `session`, the same answer for both.",
        params: &[req("username", Ty::Text { min: 1, max: 0 }, ""), req("password", Ty::Text { min: 1, max: 0 }, "")],
        reply: &[out("session_id", Out::Text), out("csrf_token", Out::Text), out("user", Out::Record("User"))],
        error: Error::Session),
    call!("user" "logout", USERS, Access::Caller, read_only: false, accounts::logout,
        doc: "Ends the calling session and clears the cookie.", params: &[], reply: &[]),
    call!("user" "resume_session", USERS, Access::Caller, read_only: true, accounts::resume_session,
        doc: "The user behind a session credential, with its CSRF token (`session` with an \
              API key).", params: &[],
        reply: &[out("user", Out::Record("User")), out("csrf_token", Out::Text), out("session", Out::Record("Session"))]),
    call!("user" "admin_create", USERS, Access::Admin, read_only: false, accounts::admin_create,
        doc: "Creates a user account.",
        params: &[
            req("username", USERNAME, ""),
            req("password", Ty::Text { min: 1, max: 0 }, ""),
            opt("full_name", Ty::Text { min: 0, max: 200 }, ""),
            opt("email", Ty::Text { min: 0, max: 254 }, ""),
            opt("active", Ty::Bool, "default true"),
            opt("privileges", Ty::Privileges, KEY_FIELDS_DOC),
            opt("roles", IDS, ""),
            opt("categories", IDS, ""),
        ],
        reply: &[out("user", Out::Record("User"))], error: Error::User),
    call!("user" "admin_update", USERS, Access::Admin, read_only: false, accounts::admin_update,
        doc: "Changes the fields sent of user `username`; `password` sets a new one.",
        params: &[
            req("username", Ty::Text { min: 1, max: 64 }, ""),
            opt("password", Ty::Text { min: 1, max: 0 }, ""),
            opt("full_name", Ty::Text { min: 0, max: 200 }, ""),
            opt("email", Ty::Text { min: 0, max: 254 }, ""),
            opt("active", Ty::Bool, ""),
            opt("privileges", Ty::Privileges, KEY_FIELDS_DOC),
            opt("roles", IDS, ""),
            opt("categories", IDS, ""),
        ],
        reply: &[out("user", Out::Record("User"))], error: Error::User),
    call!("user" "admin_delete", USERS, Access::Admin, read_only: false, accounts::admin_delete,
        doc: "Deletes user `username`.", params: &[req("username", Ty::Text { min: 1, max: 64 }, "")],
        reply: &[], error: Error::User),
    call!("user" "admin_get_user", USERS, Access::Admin, read_only: true, accounts::admin_get_user,
        doc: "One user by `username`.", params: &[req("username", Ty::Text { min: 1, max: 64 }, "")],
        reply: &[out("user", Out::Record("User"))], error: Error::User),
    call!("user" "admin_get_users", USERS, Access::Admin, read_only: true, accounts::admin_get_users,
        doc: "Every user.", params: &[],
        reply: &[out("rows", Out::Array("User")), out("list", Out::ListInfo)], error: Error::User),
];

static TAG_CALLS: [CallSpec; 5] = directory_calls!(
    "tag",
    "tags",
    Error::Tag,
    "Tag",
    [
        Access::Privilege("create_tags"),
        Access::Privilege("edit_tags"),
        Access::Privilege("delete_tags")
    ],
    [opt("icon", NOTES, ""), opt("notes", NOTES, "")],
    directory::get_tags,
    directory::get_tag,
    directory::create_tag,
    directory::update_tag,
    directory::delete_tag
);

static CATEGORY_CALLS: [CallSpec; 5] = directory_calls!(
    "category",
    "categories",
    Error::Category,
    "Category",
    [
        Access::Privilege("create_categories"),
        Access::Privilege("edit_categories"),
        Access::Privilege("delete_categories")
    ],
    [
        opt("icon", NOTES, ""),
        opt("notes", NOTES, ""),
        opt("color", NOTES, ""),
        opt(
            "sort_order",
            Ty::Int {
                min: i64::MIN,
                max: i64::MAX
            },
            ""
        )
    ],
    directory::get_categories,
    directory::get_category,
    directory::create_category,
    directory::update_category,
    directory::delete_category
);

static ROLE_CALLS: [CallSpec; 5] = directory_calls!(
    "role",
    "roles",
    Error::Role,
    "Role",
    [Access::Admin, Access::Admin, Access::Admin],
    [
        opt("notes", NOTES, ""),
        opt("privileges", Ty::Privileges, KEY_FIELDS_DOC),
        opt("categories", IDS, "")
    ],
    directory::get_roles,
    directory::get_role,
    directory::create_role,
    directory::update_role,
    directory::delete_role
);

/// Every call, in the document's order.
static GROUPS: [&[CallSpec]; 7] = [
    &SERVER_CALLS,
    &TICKET_CALLS,
    &RECORD_CALLS,
    &ACCOUNT_CALLS,
    &TAG_CALLS,
    &CATEGORY_CALLS,
    &ROLE_CALLS,
];

/// Every call of the API.
pub fn calls() -> impl Iterator<Item = &'static CallSpec> {
    GROUPS.iter().flat_map(|g| g.iter())
}

/// The call named `ns`/`name`.
pub fn find(ns: &str, name: &str) -> Option<&'static CallSpec> {
    calls().find(|c| c.ns == ns && c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn names_are_unique_and_every_required_parameter_is_declared_once() {
        let mut seen = std::collections::BTreeSet::new();
        for c in calls() {
            assert!(seen.insert((c.ns, c.name)), "{} twice", c.name);
            let mut names = std::collections::BTreeSet::new();
            for p in c.params {
                assert!(names.insert(p.name), "{}: {} twice", c.name, p.name);
            }
            for n in c.one_of {
                assert!(names.contains(n), "{}: one_of {n} undeclared", c.name);
            }
        }
        assert!(find("app", "create_ticket").is_some_and(|c| !c.read_only));
        assert!(find("app", "nope").is_none());
    }

    /// The calls a cookie session may make without the CSRF token: exactly those that
    /// change nothing (login only starts a session).
    #[test]
    fn read_only_calls_are_the_reads() {
        let read_only: Vec<&str> = calls().filter(|c| c.read_only).map(|c| c.name).collect();
        assert_eq!(
            read_only,
            [
                "ping",
                "echo",
                "get_ticket",
                "get_tickets",
                "search_tickets",
                "get_ticket_events",
                "export_tickets",
                "get_job",
                "get_alert",
                "get_outbox",
                "get_api_keys",
                "get_api_key",
                "login",
                "resume_session",
                "admin_get_user",
                "admin_get_users",
                "get_tags",
                "get_tag",
                "get_categories",
                "get_category",
                "get_roles",
                "get_role",
            ]
        );
    }

    #[test]
    fn query_typed_values_are_text_again_where_the_call_declares_text() {
        let tag = find("app", "create_tag").expect("create_tag");
        let mut p = map(json!({"title": 2024, "notes": true, "icon": "x"}));
        tag.prepare(&mut p, &["title".into(), "notes".into()])
            .expect("ok");
        assert_eq!(
            Value::Object(p),
            json!({"title": "2024", "notes": "true", "icon": "x"})
        );
        // From a JSON body a value is left as sent (the service judges it).
        let mut p = map(json!({"title": 2024}));
        tag.prepare(&mut p, &[]).expect("ok");
        assert_eq!(p["title"], json!(2024));
        // Lists: each item; `notify=false` stays the mute switch; numbers stay numbers.
        let create = find("app", "create_ticket").expect("create_ticket");
        let mut p = map(json!({"tags": [1, "b"], "jobs": 7, "notify": false, "subject": 5}));
        let text: Vec<String> = ["tags", "jobs", "notify", "subject"]
            .map(String::from)
            .into();
        create.prepare(&mut p, &text).expect("ok");
        assert_eq!(
            Value::Object(p),
            json!({"tags": ["1", "b"], "jobs": "7", "notify": false, "subject": "5"})
        );
        let search = find("app", "search_tickets").expect("search");
        let mut p = map(json!({"limit": 5}));
        search.prepare(&mut p, &["limit".into()]).expect("ok");
        assert_eq!(p["limit"], json!(5));
    }

    #[test]
    fn impossible_types_are_refused_with_the_calls_code() {
        let cases = [
            (
                "create_tag",
                json!({"title": {"a": 1}}),
                "tag",
                "title (must be a string)",
            ),
            (
                "get_tickets",
                json!({"ids": {"a": 1}}),
                "ticket",
                "ids (must be an array)",
            ),
            (
                "search_tickets",
                json!({"limit": [1]}),
                "api",
                "limit (must be a whole number)",
            ),
            (
                "create_ticket",
                json!({"subject": ["x"]}),
                "ticket",
                "subject (must be a string)",
            ),
            (
                "create_ticket",
                json!({"idempotency_key": {}}),
                "api",
                "idempotency_key",
            ),
        ];
        for (name, params, code, phrase) in cases {
            let call = calls().find(|c| c.name == name).expect("call");
            let mut p = map(params);
            let err = call.prepare(&mut p, &[]).expect_err(name);
            assert_eq!(err.code(), code, "{name}");
            assert!(err.to_string().contains(phrase), "{name}: {err}");
        }
        // Nulls, objects and undeclared parameters are the services' business.
        let tag = find("app", "create_tag").expect("create_tag");
        let mut p = map(json!({"title": null, "other": {"x": 1}}));
        assert!(tag.prepare(&mut p, &[]).is_ok());
        let change = find("app", "add_ticket_change").expect("add_ticket_change");
        assert!(change.prepare(&mut map(json!({"change": []})), &[]).is_ok());
    }
}
