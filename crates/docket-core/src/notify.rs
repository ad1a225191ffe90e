//! Notification rules, free of IO: which outbox entries a ticket change produces, who
//! receives an email, how batched changes read, and the message content (Markdown rendered
//! to sanitized HTML plus the plain-text Markdown).
//!
//! The service computes outbox entries from a ticket before and after a change and hands
//! them to the store, which writes them in the same transaction as the change. The binary's
//! delivery worker claims due rows, asks this module for recipients and content, and sends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::history::COMMENT;
use crate::model::{Change, Ticket, User};
use crate::rules::{TicketRules, DRAFT};

/// An outbox group is held while new rows keep arriving (each row's `not_before` is its
/// change time plus the debounce, so the group is due once the ticket was quiet for the
/// debounce), but never longer than this past its first row's time. Every store claims by it.
pub const OUTBOX_MAX_HOLD_SECS: i64 = 600;

pub const EMAIL: &str = "email";
pub const WEBHOOK: &str = "webhook";

/// Email kinds.
pub const NEW: &str = "new";
pub const UPDATED: &str = "updated";
pub const OVERDUE: &str = "overdue";

/// Webhook event names.
pub const EV_CREATED: &str = "ticket_created";
pub const EV_UPDATED: &str = "ticket_updated";
pub const EV_COMMENTED: &str = "ticket_commented";
pub const EV_DELETED: &str = "ticket_deleted";
pub const EV_FILE_ADDED: &str = "ticket_file_added";
pub const EVENTS: [&str; 5] = [
    EV_CREATED,
    EV_UPDATED,
    EV_COMMENTED,
    EV_DELETED,
    EV_FILE_ADDED,
];

pub const NEW_TEMPLATE: &str = include_str!("../templates/email_new.md.j2");
pub const UPDATED_TEMPLATE: &str = include_str!("../templates/email_updated.md.j2");
pub const OVERDUE_TEMPLATE: &str = include_str!("../templates/email_overdue.md.j2");

/// One message to deliver, written to the outbox in the transaction of its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// `email` or `webhook`.
    pub channel: String,
    /// Email: `new`, `updated`, `overdue`; webhook: the event name.
    pub kind: String,
    pub ticket: String,
    /// Rows of one group are delivered as one message (an "updated" email batches every
    /// pending change of its ticket); a group is due once its LAST row is (the ticket was
    /// quiet for the debounce), or at most the store's hold limit after its first.
    pub grp: String,
    /// Webhook URL (empty for emails).
    pub target: String,
    pub payload: Value,
    /// Not delivered before this time (epoch seconds): the debounce.
    pub not_before: i64,
    /// At most one row ever exists per unique key (overdue reminders: ticket + day).
    pub unique_key: Option<String>,
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub ticket: String,
    pub grp: String,
    pub target: String,
    pub payload: Value,
    pub created: i64,
    pub not_before: i64,
    pub attempts: i64,
    pub claimed_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// An outbox row's columns in the order both stores select them (`id, channel, kind,
/// ticket, grp, target, payload, created, not_before, attempts, claimed_until, sent_at,
/// last_error`), the payload still JSON text.
pub type OutboxColumns = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

impl OutboxRow {
    /// The row of `columns`; a payload that is not JSON is a corrupt row.
    pub fn from_columns(c: OutboxColumns) -> crate::Result<OutboxRow> {
        Ok(OutboxRow {
            id: c.0,
            channel: c.1,
            kind: c.2,
            ticket: c.3,
            grp: c.4,
            target: c.5,
            payload: serde_json::from_str(&c.6)
                .map_err(|e| crate::Error::Internal(format!("corrupt outbox row: {e}")))?,
            created: c.7,
            not_before: c.8,
            attempts: c.9,
            claimed_until: c.10,
            sent_at: c.11,
            last_error: c.12,
        })
    }
}

/// A configured webhook endpoint as the rules see it (the secret stays in the binary).
#[derive(Debug, Clone, Default)]
pub struct WebhookTarget {
    pub url: String,
    /// Event names; empty = every event.
    pub events: Vec<String>,
    /// Receives internal notes; other endpoints never see them (`webhooks.internal`).
    pub internal: bool,
}

impl WebhookTarget {
    pub fn wants(&self, event: &str) -> bool {
        self.events.is_empty()
            || self.events.iter().any(|e| {
                e == "*" || e == event || event.strip_prefix("ticket_") == Some(e.as_str())
            })
    }
}

/// What produces notifications.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    pub email_enabled: bool,
    pub debounce_sec: i64,
    pub webhooks: Vec<WebhookTarget>,
}

/// What caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Update,
    Comment,
    FileAdded,
}

fn new_changes<'a>(before: &Ticket, after: &'a Ticket) -> Vec<&'a Change> {
    let old: BTreeSet<&str> = before.changes.iter().map(|c| c.id.as_str()).collect();
    after
        .changes
        .iter()
        .filter(|c| !old.contains(c.id.as_str()))
        .collect()
}

/// A ticket without its internal notes: what outsiders (emails to everyone, webhooks not
/// marked internal) may be shown.
pub fn without_internal(ticket: &Ticket) -> Ticket {
    let mut t = ticket.clone();
    t.changes.retain(|c| !c.internal);
    t
}

/// Webhook rows of `event` for every endpoint that wants it. `before` is the ticket before
/// a change (`None` for a create or delete) and `added` the history entries the change
/// made: an endpoint not marked internal gets the ticket and the entries without internal
/// notes, and nothing at all when the change made no difference it may see.
fn webhook_items(
    s: &NotifySettings,
    event: &str,
    ticket: &Ticket,
    before: Option<&Ticket>,
    actor: &str,
    added: Option<&[&Change]>,
    now: i64,
) -> Vec<OutboxItem> {
    let public = s
        .webhooks
        .iter()
        .any(|w| !w.internal && w.wants(event))
        .then(|| {
            let after = without_internal(ticket);
            let visible_change = match before {
                None => true,
                Some(b) => {
                    let mut b = without_internal(b);
                    b.modified = after.modified;
                    b != after
                }
            };
            (after, visible_change)
        });
    let data = |internal: bool| match added {
        None => Value::Null,
        Some(changes) => {
            let shown: Vec<&&Change> = changes.iter().filter(|c| internal || !c.internal).collect();
            json!({ "changes": shown })
        }
    };
    s.webhooks
        .iter()
        .enumerate()
        .filter(|(_, w)| w.wants(event))
        .filter_map(|(i, w)| {
            let shown = match (&public, w.internal) {
                (_, true) | (None, _) => ticket,
                (Some((_, false)), false) => return None,
                (Some((t, true)), false) => t,
            };
            Some(OutboxItem {
                channel: WEBHOOK.into(),
                kind: event.into(),
                ticket: ticket.id.clone(),
                grp: format!(
                    "hook:{}:{}:{i}",
                    ticket.id,
                    crate::ids::new_id(crate::ids::IdKind::Change)
                ),
                target: w.url.clone(),
                payload: json!({
                    "event": event,
                    "time": now,
                    "username": actor,
                    "ticket": shown,
                    "data": data(w.internal),
                }),
                not_before: now,
                unique_key: None,
            })
        })
        .collect()
}

fn new_email(ticket: &Ticket, actor: &str, now: i64) -> OutboxItem {
    OutboxItem {
        channel: EMAIL.into(),
        kind: NEW.into(),
        ticket: ticket.id.clone(),
        grp: format!("new:{}", ticket.id),
        target: String::new(),
        payload: json!({ "actors": [actor] }),
        not_before: now,
        unique_key: None,
    }
}

/// The outbox entries of a new ticket.
pub fn on_create(s: &NotifySettings, ticket: &Ticket, actor: &str, now: i64) -> Vec<OutboxItem> {
    if ticket.status == DRAFT {
        return Vec::new();
    }
    let mut out = Vec::new();
    if s.email_enabled {
        out.push(new_email(ticket, actor, now));
    }
    out.extend(webhook_items(s, EV_CREATED, ticket, None, actor, None, now));
    out
}

/// The outbox entries of a change to an existing ticket.
pub fn on_change(
    s: &NotifySettings,
    before: &Ticket,
    after: &Ticket,
    actor: &str,
    cause: Cause,
    now: i64,
) -> Vec<OutboxItem> {
    if after.status == DRAFT {
        return Vec::new();
    }
    let mut out = Vec::new();
    if before.status == DRAFT {
        // Published: the "new" email now, with the ticket as it is.
        if s.email_enabled {
            out.push(new_email(after, actor, now));
        }
        out.extend(webhook_items(s, EV_CREATED, after, None, actor, None, now));
        return out;
    }
    let added: Vec<&Change> = new_changes(before, after);
    let body_changed = before.body != after.body;
    let edited_comment = cause == Cause::Comment && added.is_empty();
    if added.is_empty() && !body_changed && !edited_comment && cause != Cause::FileAdded {
        return out;
    }
    // Internal notes go in an email group of their own, which is sent only to people who
    // may read them (`internal` in the payload); the others' email never holds them.
    let (internal, public): (Vec<&Change>, Vec<&Change>) =
        added.iter().copied().partition(|c| c.internal);
    if s.email_enabled && (!public.is_empty() || body_changed) {
        out.push(OutboxItem {
            channel: EMAIL.into(),
            kind: UPDATED.into(),
            ticket: after.id.clone(),
            grp: format!("upd:{}", after.id),
            target: String::new(),
            payload: json!({ "actors": [actor], "changes": public, "body_changed": body_changed }),
            not_before: now + s.debounce_sec.max(0),
            unique_key: None,
        });
    }
    if s.email_enabled && !internal.is_empty() {
        out.push(OutboxItem {
            channel: EMAIL.into(),
            kind: UPDATED.into(),
            ticket: after.id.clone(),
            grp: format!("int:{}", after.id),
            target: String::new(),
            payload: json!({ "actors": [actor], "changes": internal, "body_changed": false, "internal": true }),
            not_before: now + s.debounce_sec.max(0),
            unique_key: None,
        });
    }
    let event = match cause {
        Cause::Comment => EV_COMMENTED,
        Cause::FileAdded => EV_FILE_ADDED,
        Cause::Update => EV_UPDATED,
    };
    out.extend(webhook_items(
        s,
        event,
        after,
        Some(before),
        actor,
        Some(added.as_slice()),
        now,
    ));
    out
}

/// The outbox entries of a deleted ticket (webhooks only).
pub fn on_delete(s: &NotifySettings, ticket: &Ticket, actor: &str, now: i64) -> Vec<OutboxItem> {
    if ticket.status == DRAFT {
        return Vec::new();
    }
    webhook_items(s, EV_DELETED, ticket, None, actor, None, now)
}

/// The overdue reminder of `ticket` for the local day `day` (`YYYY-MM-DD`): one per ticket
/// and day, ever (the unique key).
pub fn overdue_item(ticket: &Ticket, day: &str, now: i64) -> OutboxItem {
    OutboxItem {
        channel: EMAIL.into(),
        kind: OVERDUE.into(),
        ticket: ticket.id.clone(),
        grp: format!("overdue:{day}:{}", ticket.id),
        target: String::new(),
        payload: json!({ "day": day }),
        not_before: now,
        unique_key: Some(format!("overdue:{day}:{}", ticket.id)),
    }
}

/// One batch of rows of the same group merged: who acted, what changed, in order.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub actors: BTreeSet<String>,
    pub changes: Vec<Change>,
    pub body_changed: bool,
    /// A batch of internal notes: only for people who may read them.
    pub internal: bool,
}

pub fn merge(rows: &[OutboxRow]) -> Batch {
    let mut b = Batch::default();
    let mut seen = BTreeSet::new();
    for r in rows {
        for a in r
            .payload
            .get("actors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(a) = a.as_str() {
                b.actors.insert(a.to_string());
            }
        }
        b.internal |= r.payload.get("internal").and_then(Value::as_bool) == Some(true);
        b.body_changed |= r
            .payload
            .get("body_changed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let changes: Vec<Change> = r
            .payload
            .get("changes")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        for c in changes {
            if seen.insert(c.id.clone()) {
                b.changes.push(c);
            }
        }
    }
    b.changes.sort_by_key(|c| c.date);
    b
}

fn norm(addr: &str) -> String {
    addr.trim().to_ascii_lowercase()
}

/// Email recipients, each once: assignees and cc users (their account email), cc entries
/// that are addresses, and `notify` addresses — or the assignees alone (`assignees_only`,
/// the overdue reminder). The people in `exclude` (the authors of the change) are left out
/// unless `notify_self`.
pub fn recipients(
    ticket: &Ticket,
    users: &HashMap<String, User>,
    exclude: &BTreeSet<String>,
    notify_self: bool,
    assignees_only: bool,
) -> Vec<String> {
    let email_of = |name: &str| -> Option<String> {
        if name.contains('@') {
            return Some(name.trim().to_string());
        }
        users
            .get(name)
            .filter(|u| u.active && u.email.contains('@'))
            .map(|u| u.email.trim().to_string())
    };
    let mut candidates: Vec<String> = ticket
        .assignees
        .iter()
        .filter_map(|a| email_of(a))
        .collect();
    if !assignees_only {
        candidates.extend(ticket.cc.iter().filter_map(|c| email_of(c)));
        candidates.extend(
            ticket
                .notify
                .iter()
                .filter(|n| n.contains('@'))
                .map(|n| n.trim().to_string()),
        );
    }
    let excluded: BTreeSet<String> = if notify_self {
        BTreeSet::new()
    } else {
        exclude
            .iter()
            .flat_map(|name| [Some(norm(name)), users.get(name).map(|u| norm(&u.email))])
            .flatten()
            .filter(|e| !e.is_empty())
            .collect()
    };
    let mut seen = BTreeSet::new();
    candidates
        .into_iter()
        .filter(|addr| !excluded.contains(&norm(addr)) && seen.insert(norm(addr)))
        .collect()
}

/// The recipients of an email of internal notes: assignees and cc'd people who are users
/// in `users` (the caller passes only those who may read internal notes), never an address
/// written on the ticket (`cc` addresses, `notify`).
pub fn internal_recipients(
    ticket: &Ticket,
    users: &HashMap<String, User>,
    exclude: &BTreeSet<String>,
    notify_self: bool,
) -> Vec<String> {
    let people = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !n.contains('@') && users.contains_key(n.as_str()))
            .cloned()
            .collect()
    };
    let only_users = Ticket {
        assignees: people(&ticket.assignees),
        cc: people(&ticket.cc),
        notify: Vec::new(),
        ..Default::default()
    };
    recipients(&only_users, users, exclude, notify_self, false)
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email templates, the built-in ones or overrides.
pub struct EmailTemplates {
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for EmailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailTemplates")
    }
}

impl Default for EmailTemplates {
    fn default() -> Self {
        EmailTemplates::new(BTreeMap::new()).expect("built-in email templates compile")
    }
}

impl EmailTemplates {
    /// `overrides`: kind (`new`, `updated`, `overdue`) → template text.
    pub fn new(overrides: BTreeMap<String, String>) -> Result<Self, String> {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (kind, builtin) in [
            (NEW, NEW_TEMPLATE),
            (UPDATED, UPDATED_TEMPLATE),
            (OVERDUE, OVERDUE_TEMPLATE),
        ] {
            let text = overrides
                .get(kind)
                .cloned()
                .unwrap_or_else(|| builtin.to_string());
            env.add_template_owned(kind.to_string(), text)
                .map_err(|e| format!("email template {kind:?}: {e}"))?;
        }
        Ok(EmailTemplates { env })
    }

    pub fn render(&self, kind: &str, ctx: &Value) -> Result<Message, String> {
        let tpl = self.env.get_template(kind).map_err(|e| e.to_string())?;
        let out = tpl
            .render(ctx)
            .map_err(|e| format!("email template {kind:?}: {e}"))?;
        let (subject, text) = match out.strip_prefix("Subject:") {
            Some(rest) => {
                let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
                (
                    line.trim().to_string(),
                    body.trim_start_matches('\n').to_string(),
                )
            }
            None => (String::new(), out),
        };
        Ok(Message {
            subject: oneline(&subject),
            html: markdown_html(&text),
            text,
        })
    }
}

fn oneline(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Markdown → sanitized HTML document.
pub fn markdown_html(md: &str) -> String {
    let mut raw = String::new();
    let parser = pulldown_cmark::Parser::new_ext(
        md,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    pulldown_cmark::html::push_html(&mut raw, parser);
    let clean = ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .clean(&raw)
        .to_string();
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n{clean}</body></html>\n"
    )
}

fn local_time(secs: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

fn local_day(secs: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

/// A change entry in words.
pub fn describe(c: &Change, rules: &TicketRules) -> String {
    let key = c.key.as_deref().unwrap_or("");
    let value = c.value.clone().unwrap_or(Value::Null);
    match key {
        "body" => "Description changed".into(),
        "due" => match value.as_i64() {
            Some(0) | None => "Due date removed".into(),
            Some(d) => format!("Due date set to {}", local_day(d, &rules.timezone)),
        },
        "status" => format!(
            "Status changed to {}",
            title_of(&rules.statuses, &show(&value))
        ),
        "type" => format!("Type changed to {}", title_of(&rules.types, &show(&value))),
        "priority" => format!(
            "Priority changed to {}",
            title_of(&rules.priorities, &show(&value))
        ),
        "delete" => "A history entry was deleted".into(),
        "created" => "Ticket created".into(),
        crate::relations::HISTORY_KEY => crate::relations::describe(&value),
        "" => format!("{} entry added", c.kind),
        k => {
            let mut name = k.replace('_', " ");
            if let Some(first) = name.get(..1) {
                name = first.to_uppercase() + &name[1..];
            }
            format!("{name} changed to {}", show(&value))
        }
    }
}

fn title_of(choices: &[crate::rules::Choice], id: &str) -> String {
    choices
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.title.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The template context of one email.
pub fn context(ticket: &Ticket, batch: &Batch, rules: &TicketRules, base_url: &str) -> Value {
    let tz = &rules.timezone;
    let changes: Vec<Value> = batch
        .changes
        .iter()
        .filter(|c| c.kind != COMMENT)
        .map(|c| json!({ "text": describe(c, rules), "username": c.username, "time": local_time(c.date, tz) }))
        .collect();
    let comments: Vec<Value> = batch
        .changes
        .iter()
        .filter(|c| c.kind == COMMENT)
        .map(|c| {
            // The comment as it is now, if it was edited since.
            let body = ticket
                .changes
                .iter()
                .find(|x| x.id == c.id)
                .and_then(|x| x.body.clone())
                .or_else(|| c.body.clone())
                .unwrap_or_default();
            json!({ "username": c.username, "time": local_time(c.date, tz), "body": body })
        })
        .collect();
    // Only an internal batch (sent to people who may read them) shows internal notes.
    let shown = if batch.internal {
        ticket.clone()
    } else {
        without_internal(ticket)
    };
    let mut t = serde_json::to_value(&shown).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut t {
        m.insert(
            "type_title".into(),
            json!(title_of(&rules.types, &ticket.kind)),
        );
        m.insert(
            "due_text".into(),
            json!(if ticket.due > 0 {
                local_day(ticket.due, tz)
            } else {
                String::new()
            }),
        );
    }
    json!({
        "ticket": t,
        "link": format!("{}/#Tickets?id={}", base_url.trim_end_matches('/'), ticket.id),
        "changes": changes,
        "comments": comments,
        "body_changed": batch.body_changed,
        "actors": batch.actors,
        "internal": batch.internal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            id: "t1".into(),
            num: 7,
            subject: "Disk full".into(),
            body: "The **disk** is full <script>alert(1)</script>".into(),
            status: "open".into(),
            kind: "issue".into(),
            username: "ann".into(),
            assignees: vec!["bob".into(), "ann".into()],
            cc: vec!["carl".into(), "x@example.com".into()],
            notify: vec!["X@example.com".into(), "ops@example.com".into()],
            ..Default::default()
        }
    }

    fn users() -> HashMap<String, User> {
        ["ann", "bob", "carl"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    User {
                        username: n.to_string(),
                        email: format!("{n}@example.com"),
                        active: true,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    fn settings() -> NotifySettings {
        NotifySettings {
            email_enabled: true,
            debounce_sec: 30,
            webhooks: vec![WebhookTarget {
                url: "http://h/".into(),
                events: vec!["ticket_commented".into()],
                internal: false,
            }],
        }
    }

    #[test]
    fn internal_notes_go_only_to_internal_channels() {
        let mut s = settings();
        s.webhooks.push(WebhookTarget {
            url: "http://team/".into(),
            events: Vec::new(),
            internal: true,
        });
        let before = ticket();
        let mut after = before.clone();
        after.changes.push(Change {
            id: "n1".into(),
            kind: COMMENT.into(),
            body: Some("secret".into()),
            internal: true,
            ..Default::default()
        });
        let out = on_change(&s, &before, &after, "ann", Cause::Comment, 5);
        let groups: Vec<&str> = out.iter().map(|o| o.grp.as_str()).collect();
        assert_eq!(out.len(), 2, "{groups:?}");
        assert_eq!(out[0].grp, "int:t1");
        assert_eq!(out[0].payload["internal"], true);
        assert_eq!(out[1].target, "http://team/");
        // A public comment: the public email and both hooks, none holding the note.
        let before = after.clone();
        after.changes.push(Change {
            id: "c2".into(),
            kind: COMMENT.into(),
            body: Some("hello".into()),
            ..Default::default()
        });
        let out = on_change(&s, &before, &after, "ann", Cause::Comment, 6);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].grp, "upd:t1");
        let public_hook = out.iter().find(|o| o.target == "http://h/").unwrap();
        assert!(!public_hook.payload.to_string().contains("secret"));
        let team_hook = out.iter().find(|o| o.target == "http://team/").unwrap();
        assert!(team_hook.payload.to_string().contains("secret"));
        // Only users make an internal email's recipients: no addresses, no notify.
        let r = internal_recipients(&after, &users(), &BTreeSet::new(), false);
        assert_eq!(
            r,
            vec!["bob@example.com", "ann@example.com", "carl@example.com"]
        );
    }

    #[test]
    fn recipients_once_without_the_actor() {
        let ex: BTreeSet<String> = ["ann".to_string()].into();
        let r = recipients(&ticket(), &users(), &ex, false, false);
        assert_eq!(
            r,
            vec![
                "bob@example.com",
                "carl@example.com",
                "x@example.com",
                "ops@example.com"
            ]
        );
        let r = recipients(&ticket(), &users(), &ex, true, false);
        assert_eq!(r[0], "bob@example.com");
        assert_eq!(r[1], "ann@example.com");
        let r = recipients(&ticket(), &users(), &BTreeSet::new(), false, true);
        assert_eq!(r, vec!["bob@example.com", "ann@example.com"]);
    }

    #[test]
    fn drafts_are_silent_and_publishing_is_new() {
        let s = settings();
        let mut t = ticket();
        t.status = DRAFT.into();
        assert!(on_create(&s, &t, "ann", 0).is_empty());
        let mut after = t.clone();
        after.status = "open".into();
        let out = on_change(&s, &t, &after, "ann", Cause::Update, 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, NEW);
        assert!(on_change(&s, &t, &t, "ann", Cause::Update, 5).is_empty());
    }

    #[test]
    fn updates_are_debounced_and_webhooks_filtered() {
        let s = settings();
        let before = ticket();
        let mut after = before.clone();
        after.changes.push(Change {
            id: "c1".into(),
            kind: COMMENT.into(),
            username: "bob".into(),
            date: 3,
            body: Some("hi".into()),
            ..Default::default()
        });
        let out = on_change(&s, &before, &after, "bob", Cause::Comment, 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].not_before, 40);
        assert_eq!(out[0].grp, "upd:t1");
        assert_eq!(out[1].channel, WEBHOOK);
        assert_eq!(out[1].kind, EV_COMMENTED);
        let out = on_change(&s, &before, &after, "bob", Cause::Update, 10);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn renders_sanitized_html_and_words() {
        let rules = TicketRules::default();
        let t = ticket();
        let batch = Batch {
            actors: ["bob".to_string()].into(),
            changes: vec![
                Change {
                    id: "a".into(),
                    kind: "status".into(),
                    username: "bob".into(),
                    date: 1,
                    key: Some("status".into()),
                    value: Some(json!("closed")),
                    ..Default::default()
                },
                Change {
                    id: "b".into(),
                    kind: COMMENT.into(),
                    username: "bob".into(),
                    date: 2,
                    body: Some("Looking *now*".into()),
                    ..Default::default()
                },
            ],
            body_changed: true,
            internal: false,
        };
        let m = EmailTemplates::default()
            .render(UPDATED, &context(&t, &batch, &rules, "https://d.example"))
            .unwrap();
        assert!(m.subject.contains("#7: Disk full"), "{}", m.subject);
        assert!(m.text.contains("Status changed to Closed"), "{}", m.text);
        assert!(m.text.contains("Looking *now*"));
        assert!(m.html.contains("<em>now</em>"));
        assert!(!m.html.contains("<script>"));
        assert!(m.text.contains("https://d.example/#Tickets?id=t1"));
    }
}
