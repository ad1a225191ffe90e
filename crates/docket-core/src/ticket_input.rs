//! Shape checks for ticket fields sent by clients: every field is typed, bounded and
//! cleaned here before any rule that needs the store (tag and category existence).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::rules::TicketRules;
use crate::sanitize::{clean_line, clean_markdown};

/// The ticket fields a request sets. `None` = not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketPatch {
    pub id: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub server: Option<String>,
    pub assignees: Option<Vec<String>>,
    pub cc: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub jobs: Option<Vec<String>>,
    pub due: Option<Value>,
    pub events: Option<Vec<Value>>,
    /// Alert-storm dedupe key ("" = none).
    pub dedupe_key: Option<String>,
}

/// Fields the server owns: ignored when a client posts them (clients often send a whole
/// ticket back).
const SERVER_OWNED: [&str; 9] = [
    "num",
    "relations",
    "created",
    "modified",
    "changes",
    "files",
    "username",
    "occurrences",
    "deduplicated",
];

/// Request parameters that are not ticket fields but may accompany them.
pub const REQUEST_PARAMS: [&str; 7] = [
    "api_key",
    "session_id",
    "template",
    "job",
    "alert",
    "verbose",
    "idempotency_key",
];

/// The longest accepted `dedupe_key`.
pub const DEDUPE_KEY_MAX: usize = 256;

fn malformed(field: &str, what: &str) -> Error {
    Error::Ticket(format!("Malformed ticket parameter: {field} ({what})"))
}

/// A NUL character anywhere in `value` is an error naming `field`: it is never text a
/// person meant, and removing it silently would store something else than was sent.
pub fn reject_nul(field: &str, value: &Value) -> Result<()> {
    let found = match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|v| reject_nul(field, v)),
        Value::Object(map) => {
            return map.iter().try_for_each(|(k, v)| {
                if k.contains('\0') {
                    Err(malformed(
                        field,
                        "contains a NUL character (U+0000), which is not allowed",
                    ))
                } else {
                    reject_nul(field, v)
                }
            })
        }
        _ => false,
    };
    if found {
        return Err(malformed(
            field,
            "contains a NUL character (U+0000), which is not allowed",
        ));
    }
    Ok(())
}

impl TicketPatch {
    /// Reads ticket fields from request params. Unknown fields are an error that names them.
    pub fn from_params(params: &Map<String, Value>, rules: &TicketRules) -> Result<TicketPatch> {
        let limits = &rules.limits;
        let mut patch = TicketPatch::default();
        for (key, value) in params {
            reject_nul(key, value)?;
            match key.as_str() {
                "id" => patch.id = Some(id_field(value)?),
                "subject" => {
                    let s = clean_line(&string_field("subject", value)?);
                    if s.chars().count() > limits.subject_chars {
                        return Err(malformed(
                            "subject",
                            &format!("longer than {} characters", limits.subject_chars),
                        ));
                    }
                    patch.subject = Some(s);
                }
                "body" => {
                    let s = string_field("body", value)?;
                    if s.len() > limits.body_bytes {
                        return Err(malformed(
                            "body",
                            &format!("larger than {} bytes", limits.body_bytes),
                        ));
                    }
                    patch.body = Some(clean_markdown(&s));
                }
                "type" => {
                    let s = string_field("type", value)?;
                    if !rules.is_type(&s) {
                        return Err(Error::Ticket(format!(
                            "Unknown ticket type: {s:?}; valid types are: {}",
                            rules.type_ids()
                        )));
                    }
                    patch.kind = Some(s);
                }
                "status" => {
                    let s = string_field("status", value)?;
                    if !rules.is_status(&s) {
                        return Err(Error::Ticket(format!(
                            "Unknown ticket status: {s:?}; valid statuses are: {}",
                            rules.status_ids()
                        )));
                    }
                    patch.status = Some(s);
                }
                "priority" => patch.priority = Some(priority_field(value, rules)?),
                "category" => {
                    let s = string_field("category", value)?;
                    if !s.is_empty() && !crate::ids::is_valid_id(&s) {
                        return Err(malformed("category", "must be a category id"));
                    }
                    patch.category = Some(s);
                }
                "server" => {
                    let s = string_field("server", value)?;
                    if s.chars().count() > limits.item_chars || s.chars().any(char::is_control) {
                        return Err(malformed("server", "must be a short id"));
                    }
                    patch.server = Some(s);
                }
                "assignees" => {
                    patch.assignees = Some(list_field("assignees", value, rules, check_username)?)
                }
                "cc" => patch.cc = Some(list_field("cc", value, rules, check_cc)?),
                "notify" => {
                    // `notify: false/true` is the per-request mute switch, not the address list.
                    if !value.is_boolean() {
                        patch.notify = Some(list_field("notify", value, rules, check_email)?)
                    }
                }
                "tags" => patch.tags = Some(list_field("tags", value, rules, check_id)?),
                "jobs" => patch.jobs = Some(list_field("jobs", value, rules, check_id)?),
                "due" => patch.due = Some(value.clone()),
                "events" => patch.events = Some(events_field(value, rules)?),
                "dedupe_key" => {
                    let s = string_field("dedupe_key", value)?;
                    if s.len() > DEDUPE_KEY_MAX || s.chars().any(char::is_control) {
                        return Err(malformed(
                            "dedupe_key",
                            &format!("at most {DEDUPE_KEY_MAX} bytes of printable text"),
                        ));
                    }
                    patch.dedupe_key = Some(s);
                }
                k if SERVER_OWNED.contains(&k) || REQUEST_PARAMS.contains(&k) => {}
                other => {
                    return Err(Error::Ticket(format!(
                        "Unknown ticket field: {other:?}. Ticket fields are: id, subject, body, \
                         type, status, priority, category, server, assignees, cc, notify, tags, due, \
                         events, jobs, dedupe_key"
                    )))
                }
            }
        }
        Ok(patch)
    }
}

/// A configured priority level, by id.
pub fn priority_field(value: &Value, rules: &TicketRules) -> Result<String> {
    let s = string_field("priority", value)?;
    if !rules.is_priority(&s) {
        return Err(Error::Ticket(format!(
            "Unknown ticket priority: {s:?}; valid priorities are, lowest first: {}",
            rules.priority_ids()
        )));
    }
    Ok(s)
}

fn id_field(value: &Value) -> Result<String> {
    match value {
        Value::String(s) if crate::ids::is_valid_id(s) => Ok(s.clone()),
        Value::Number(n) if n.is_u64() => Ok(n.to_string()),
        _ => Err(malformed(
            "id",
            "must be 1 to 64 lowercase letters, digits or underscores",
        )),
    }
}

/// A text field. A whole number is taken as its digits, because query strings and forms
/// type `2024` as a number (SPEC §1) while a subject or id may well be `2024`.
fn string_field(field: &str, value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(malformed(field, "must be a string")),
    }
}

/// A list: a JSON array of strings, or (from forms and query strings) a comma-separated text.
fn list_field(
    field: &str,
    value: &Value,
    rules: &TicketRules,
    check: fn(&str) -> std::result::Result<(), String>,
) -> Result<Vec<String>> {
    let items: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                _ => Err(malformed(field, "must be an array of strings")),
            })
            .collect::<Result<_>>()?,
        Value::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Value::Null => Vec::new(),
        _ => return Err(malformed(field, "must be an array")),
    };
    if items.len() > rules.limits.list_items {
        return Err(malformed(
            field,
            &format!("more than {} items", rules.limits.list_items),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if item.is_empty() {
            continue;
        }
        if item.chars().count() > rules.limits.item_chars {
            return Err(malformed(field, "an item is too long"));
        }
        check(&item).map_err(|why| malformed(field, &why))?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Usernames: letters, digits, `_`, `-`, `.`, up to 64 characters.
pub fn check_username(s: &str) -> std::result::Result<(), String> {
    if s == docket_query::NONE_KEYWORD {
        return Err(format!(
            "{s:?} is reserved (it finds unassigned tickets in searches)"
        ));
    }
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid username"))
    }
}

fn check_id(s: &str) -> std::result::Result<(), String> {
    if crate::ids::is_valid_id(s) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid id (lowercase letters, digits, underscores)"
        ))
    }
}

fn check_cc(s: &str) -> std::result::Result<(), String> {
    if s.contains('@') {
        check_email(s)
    } else {
        check_username(s)
    }
}

/// A practical email check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn check_email(s: &str) -> std::result::Result<(), String> {
    let bad = || Err(format!("{s:?} is not a valid email address"));
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = s.split_once('@') else {
        return bad();
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty() || local.len() > 64 || !domain_ok || local.contains(['<', '>', '"', ',']) {
        return bad();
    }
    Ok(())
}

fn events_field(value: &Value, rules: &TicketRules) -> Result<Vec<Value>> {
    let Value::Array(items) = value else {
        return Err(malformed("events", "must be an array of objects"));
    };
    if items.len() > rules.limits.list_items {
        return Err(malformed("events", "too many items"));
    }
    for item in items {
        let Value::Object(obj) = item else {
            return Err(malformed("events", "each event must be an object"));
        };
        match obj.get("id") {
            Some(Value::String(id)) if check_id(id).is_ok() => {}
            _ => return Err(malformed("events", "each event needs a string id")),
        }
        for (key, v) in obj {
            let ok = match key.as_str() {
                "id" => true,
                "targets" | "tags" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                "algo" => v.is_string(),
                "params" => v.is_object(),
                _ => false,
            };
            if !ok {
                return Err(malformed(
                    "events",
                    &format!("event property {key:?} is unknown or of the wrong type"),
                ));
            }
        }
    }
    Ok(items.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<TicketPatch> {
        TicketPatch::from_params(v.as_object().unwrap(), &TicketRules::default())
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn accepts_and_cleans() {
        let p = parse(json!({
            "subject": " Disk <b>full</b> ", "body": "x<script>y</script>", "type": "bug",
            "assignees": "bob, alice,bob", "tags": ["important"], "notify": ["ops@example.com"],
            "num": 99, "changes": [], "api_key": "k"
        }))
        .unwrap();
        assert_eq!(p.subject.as_deref(), Some("Disk full"));
        assert_eq!(p.body.as_deref(), Some("x"));
        assert_eq!(p.assignees, Some(vec!["bob".into(), "alice".into()]));
        assert_eq!(p.notify, Some(vec!["ops@example.com".into()]));
        // `notify: false` mutes, it does not clear the list.
        assert_eq!(parse(json!({"notify": false})).unwrap().notify, None);
    }

    #[test]
    fn rejects_with_named_problem() {
        assert_eq!(
            err(json!({"assignees": 5})),
            "Malformed ticket parameter: assignees (must be an array)"
        );
        assert!(err(json!({"type": "nope"})).contains("Unknown ticket type"));
        assert!(err(json!({"status": "nope"})).contains("Unknown ticket status"));
        assert_eq!(
            err(json!({"priority": "asap"})),
            "Unknown ticket priority: \"asap\"; valid priorities are, lowest first: none, low, \
             normal, high, urgent"
        );
        assert_eq!(
            parse(json!({"priority": "high"}))
                .unwrap()
                .priority
                .as_deref(),
            Some("high")
        );
        assert!(err(json!({"notify": ["not-an-email"]})).contains("not a valid email"));
        assert!(err(json!({"subject": "x".repeat(1001)})).contains("longer than"));
        assert!(err(json!({"subject": 5.5})).contains("subject (must be a string)"));
        assert!(err(json!({"subject": [1]})).contains("subject (must be a string)"));
        assert_eq!(
            parse(json!({"subject": 2024})).unwrap().subject.as_deref(),
            Some("2024")
        );
        assert!(err(json!({"colour": "red"})).contains("Unknown ticket field: \"colour\""));
        assert!(err(json!({"id": "Bad-Id"})).contains("id"));
        assert!(err(json!({"tags": ["Bad Tag"]})).contains("tags"));
        assert!(err(json!({"events": [{"id": "e1", "bogus": 1}]})).contains("bogus"));
        assert!(err(json!({"assignees": [1]})).contains("array of strings"));
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a", "a@b", "a@.b", "a b@c.d", "@c.d", "a@b..c", "a@b.c.",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
