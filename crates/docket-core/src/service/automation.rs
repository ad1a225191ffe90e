//! Automation: job and alert records (kept locally or fetched from an upstream xyOps
//! server), tickets written from them, alert-storm deduplication and idempotent creates.
//!
//! No HTTP here: fetching from another server goes through the [`RecordSource`] trait,
//! which the binary implements.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{required_str, Docket};
use crate::auth::{hash_secret, CanCreate, CanImport, Principal};
use crate::error::{Error, Result};
use crate::history::COMMENT;
use crate::ids::{is_valid_id, new_id, IdKind};
use crate::model::{Category, Change, FileRef, Tag, Ticket};
use crate::report::{
    alert_report, format_time, job_report, oneline, Report, ReportEnv, ReportTemplates,
};
use crate::sanitize::{clean_line, clean_markdown};
use crate::store::{CreateOutcome, CreateTicket, Dedupe, IdempotencyClaim, RecordKind};
use crate::ticket_input::TicketPatch;

/// How long an idempotency key replays its first result.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// The longest accepted idempotency key.
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// Occurrence comments quote at most this much of the body that was sent.
const OCCURRENCE_BODY_MAX: usize = 8 * 1024;

/// Another server that holds job and alert records (an xyOps server, through its API).
#[async_trait]
pub trait RecordSource: Send + Sync + 'static {
    /// The Job record with this id. `Ok(None)`: the server says there is none. Any other
    /// failure (unreachable, timeout, bad reply) is an error that says what went wrong.
    async fn fetch_job(&self, id: &str) -> Result<Option<Value>>;
    /// The AlertInvocation record with this id, likewise.
    async fn fetch_alert(&self, id: &str) -> Result<Option<Value>>;
}

/// The configured automation behaviour.
pub struct Automation {
    /// Where records not held locally are fetched from (`None`: local records only).
    pub source: Option<Arc<dyn RecordSource>>,
    pub templates: ReportTemplates,
    /// Tickets in these statuses no longer absorb creates with their dedupe key.
    pub dedupe_closed_statuses: Vec<String>,
    /// The public app URL that report links start with.
    pub base_app_url: String,
}

impl Default for Automation {
    fn default() -> Self {
        Automation {
            source: None,
            templates: ReportTemplates::default(),
            dedupe_closed_statuses: default_dedupe_closed_statuses(),
            base_app_url: String::new(),
        }
    }
}

pub fn default_dedupe_closed_statuses() -> Vec<String> {
    vec!["resolved".to_string(), "closed".to_string()]
}

/// The two record kinds, as the calls name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Job,
    Alert,
}

impl RecordType {
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Job => "job",
            RecordType::Alert => "alert",
        }
    }

    fn kind(self) -> RecordKind {
        match self {
            RecordType::Job => RecordKind::Job,
            RecordType::Alert => RecordKind::Alert,
        }
    }

    fn label(self) -> &'static str {
        match self {
            RecordType::Job => "Job",
            RecordType::Alert => "Alert invocation",
        }
    }
}

/// The result of `create_ticket`.
#[derive(Debug, Clone)]
pub struct Created {
    pub ticket: Ticket,
    /// An open ticket with the same `dedupe_key` took the create as an occurrence.
    pub deduplicated: bool,
    /// The reply repeats an earlier create made with the same idempotency key.
    pub replayed: bool,
}

/// A record id as sent: a non-blank string of printable characters (xyOps ids are
/// lowercase alphanumerics; numbers typed by a query string are taken as their digits).
fn record_id(params: &Map<String, Value>, name: &str) -> Result<String> {
    let id = required_str(params, name, Error::Ticket)?;
    let id = id.trim().to_string();
    if id.len() > 128 || id.chars().any(char::is_control) {
        return Err(Error::Ticket(format!(
            "Malformed parameter: {name} (must be a record id)"
        )));
    }
    Ok(id)
}

impl Docket {
    /// `put_job` / `put_alert`: keeps a record as sent (replacing one with the same id).
    pub async fn put_automation_record(
        &self,
        _can: &CanImport,
        kind: RecordType,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        let name = kind.name();
        let record = match params.get(name) {
            Some(Value::Object(rec)) => rec.clone(),
            None | Some(Value::Null) => {
                return Err(Error::Api(format!(
                    "Missing parameter: {name} (the {} record as a JSON object)",
                    kind.label()
                )))
            }
            Some(_) => {
                return Err(Error::Api(format!(
                    "Malformed parameter: {name} (must be a JSON object)"
                )))
            }
        };
        let id = match record.get("id") {
            Some(Value::String(id)) if is_valid_id(id) => id.clone(),
            _ => {
                return Err(Error::Api(format!(
                    "Malformed {name} record: its id must be 1 to 64 lowercase letters, digits or underscores"
                )))
            }
        };
        let value = Value::Object(record);
        let replacement = value.clone();
        let replaced = self
            .store
            .update_record(
                kind.kind(),
                &id,
                Box::new(move |v: &mut Value| {
                    *v = replacement;
                    Ok(())
                }),
            )
            .await?;
        if replaced.is_none()
            && !self
                .store
                .insert_record(kind.kind(), &id, None, &value)
                .await?
        {
            // Inserted by someone else between the two steps: replace theirs.
            let replacement = value.clone();
            self.store
                .update_record(
                    kind.kind(),
                    &id,
                    Box::new(move |v: &mut Value| {
                        *v = replacement;
                        Ok(())
                    }),
                )
                .await?;
        }
        Ok(value)
    }

    /// `get_job` / `get_alert`: a local record, else one fetched from the upstream server.
    pub async fn get_automation_record(
        &self,
        _who: &Principal,
        kind: RecordType,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        let id = record_id(params, "id")?;
        self.resolve_record(kind, &id).await
    }

    async fn resolve_record(&self, kind: RecordType, id: &str) -> Result<Value> {
        if let Some(v) = self.store.get_record(kind.kind(), id).await? {
            return Ok(v);
        }
        let fetched = match &self.automation.source {
            Some(source) => match kind {
                RecordType::Job => source.fetch_job(id).await?,
                RecordType::Alert => source.fetch_alert(id).await?,
            },
            None => None,
        };
        fetched.ok_or_else(|| {
            let where_ = if self.automation.source.is_some() {
                "neither here nor on the upstream xyOps server"
            } else {
                "here (store it with put_{name}, or configure upstream.base_url and upstream.api_key to fetch it from xyOps)"
            };
            Error::NotFound(format!("{} not found: {id:?} {}", kind.label(), where_.replace("{name}", kind.name())))
        })
    }

    /// The report asked for by `template` (`job` with `job: ID`, `alert` with `alert: ID`).
    pub(super) async fn template_report(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Option<Report>> {
        let kind = match params.get("template") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(t)) if t.is_empty() => return Ok(None),
            Some(Value::String(t)) if t == "job" => RecordType::Job,
            Some(Value::String(t)) if t == "alert" => RecordType::Alert,
            Some(other) => {
                let shown = other
                    .as_str()
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| other.to_string());
                return Err(Error::Ticket(format!(
                    "Unknown template: {shown}; templates are \"job\" (with job: ID) and \"alert\" (with alert: ID)"
                )));
            }
        };
        let name = kind.name();
        let id = match params.get(name) {
            None | Some(Value::Null) => {
                return Err(Error::Ticket(format!(
                    "Missing parameter: {name} (template {name:?} needs the {} id)",
                    kind.label().to_lowercase()
                )))
            }
            _ => record_id(params, name)?,
        };
        let record = self.resolve_record(kind, &id).await?;
        let env = ReportEnv {
            base_app_url: &self.automation.base_app_url,
            timezone: &self.rules.timezone,
            now: self.now(),
        };
        let report = match kind {
            RecordType::Job => job_report(&self.automation.templates, &record, &env),
            RecordType::Alert => alert_report(&self.automation.templates, &record, &env),
        };
        report.map(Some).map_err(|why| {
            tracing::warn!(record = %id, kind = name, error = %why, "cannot write a report from this record");
            Error::Ticket(format!("Cannot write a ticket from {name} {id:?}: {why}"))
        })
    }

    /// Fills what the request left out from the report: body (a body sent along comes
    /// first), subject, and category, tags, server and jobs where the record has valid ones.
    pub(super) async fn apply_report(
        &self,
        who: &Principal,
        patch: &mut TicketPatch,
        report: Report,
    ) -> Result<()> {
        let limits = &self.rules.limits;
        let mut body = clean_markdown(&report.body);
        if let Some(sent) = patch.body.as_deref().filter(|b| !b.trim().is_empty()) {
            body = format!("{}\n\n{body}", sent.trim_end());
        }
        if body.len() > limits.body_bytes {
            return Err(Error::Ticket(format!(
                "The generated report is larger than {} bytes; shorten the report template",
                limits.body_bytes
            )));
        }
        patch.body = Some(body);
        if patch.subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
            let subject = clean_line(&report.subject);
            patch.subject = Some(subject.chars().take(limits.subject_chars).collect());
        }
        if patch.server.is_none() {
            patch.server = report
                .server
                .map(|s| oneline(&s))
                .filter(|s| !s.is_empty() && s.chars().count() <= limits.item_chars);
        }
        if patch.jobs.is_none() {
            let jobs: Vec<String> = report
                .jobs
                .into_iter()
                .filter(|j| is_valid_id(j))
                .take(limits.list_items)
                .collect();
            if !jobs.is_empty() {
                patch.jobs = Some(jobs);
            }
        }
        if patch.tags.is_none() {
            let mut tags = Vec::new();
            for tag in report
                .tags
                .iter()
                .filter(|t| is_valid_id(t))
                .take(limits.list_items)
            {
                if !tags.contains(tag) && self.load::<Tag>(RecordKind::Tag, tag).await?.is_some() {
                    tags.push(tag.clone());
                }
            }
            if !tags.is_empty() {
                patch.tags = Some(tags);
            }
        }
        if patch.category.is_none() {
            if let Some(cat) = report.category.filter(|c| is_valid_id(c)) {
                if who.sees_category(&cat)
                    && self
                        .load::<Category>(RecordKind::Category, &cat)
                        .await?
                        .is_some()
                {
                    patch.category = Some(cat);
                }
            }
        }
        Ok(())
    }

    /// A repeated idempotency key answered before any work is done (so a retry does not
    /// depend on the upstream server again). The store checks once more inside the create
    /// transaction, which is what makes concurrent retries safe.
    pub(super) async fn replay_idempotent(
        &self,
        who: &Principal,
        params: &Map<String, Value>,
    ) -> Result<Option<Created>> {
        let Some(key) = idempotency_key(params)? else {
            return Ok(None);
        };
        let Some(rec) = self
            .store
            .get_record(RecordKind::Idempotency, &idempotency_id(who, &key))
            .await?
        else {
            return Ok(None);
        };
        if rec.get("expires").and_then(Value::as_i64).unwrap_or(0) <= self.now() {
            return Ok(None);
        }
        let deduplicated = rec
            .get("deduplicated")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ticket = match rec.get("ticket").and_then(Value::as_str) {
            Some(id) => self.store.ticket_by_id(id).await?,
            None => None,
        };
        match ticket {
            Some(ticket) if who.sees(&ticket) => Ok(Some(Created {
                ticket,
                deduplicated,
                replayed: true,
            })),
            _ => Err(Error::NotFound(
                "The ticket created earlier with this idempotency key no longer exists".into(),
            )),
        }
    }

    /// Stores a new ticket under the request's idempotency key and dedupe key, if any.
    pub(super) async fn store_new_ticket(
        &self,
        who: &Principal,
        _can: &CanCreate,
        mut ticket: Ticket,
        params: &Map<String, Value>,
        staged: Vec<FileRef>,
    ) -> Result<Created> {
        let staged_files: Vec<String> = staged.iter().map(|f| f.id.clone()).collect();
        for f in &staged {
            ticket.files.push(FileRef {
                ticket: ticket.id.clone(),
                ..f.clone()
            });
        }
        let idempotency = idempotency_key(params)?.map(|key| {
            let now = self.now();
            IdempotencyClaim {
                id: idempotency_id(who, &key),
                now,
                expires: now + IDEMPOTENCY_TTL_SECS,
            }
        });
        let dedupe = (!ticket.dedupe_key.is_empty()).then(|| Dedupe {
            key: ticket.dedupe_key.clone(),
            closed_statuses: self.automation.dedupe_closed_statuses.clone(),
            categories: who.categories.clone(),
            on_duplicate: with_files(
                occurrence(
                    &ticket,
                    &who.username,
                    &self.rules.timezone,
                    super::sends(params).then(|| self.notify.clone()),
                ),
                staged,
            ),
        });
        let id = ticket.id.clone();
        let outbox = if super::sends(params) {
            crate::notify::on_create(&self.notify, &ticket, &who.username, self.now())
        } else {
            Vec::new()
        };
        let outcome = self
            .store
            .create_ticket_with(CreateTicket {
                ticket,
                dedupe,
                idempotency,
                outbox,
                staged_files,
            })
            .await?;
        match outcome {
            CreateOutcome::Created(ticket) => Ok(Created {
                ticket,
                deduplicated: false,
                replayed: false,
            }),
            CreateOutcome::Deduplicated(ticket) => Ok(Created {
                ticket,
                deduplicated: true,
                replayed: false,
            }),
            CreateOutcome::Replayed {
                ticket: Some(ticket),
                deduplicated,
            } if who.sees(&ticket) => Ok(Created {
                ticket,
                deduplicated,
                replayed: true,
            }),
            CreateOutcome::Replayed { .. } => Err(Error::NotFound(
                "The ticket created earlier with this idempotency key no longer exists".into(),
            )),
            CreateOutcome::IdTaken => Err(Error::Ticket(format!(
                "A ticket with id {id:?} already exists"
            ))),
        }
    }
}

/// A dedupe hit's mutation that also adds the request's uploaded files to the ticket that
/// absorbs the create.
fn with_files(
    mutate: crate::store::TicketMutationOut,
    files: Vec<FileRef>,
) -> crate::store::TicketMutationOut {
    if files.is_empty() {
        return mutate;
    }
    Box::new(move |t: &mut Ticket| {
        let outbox = mutate(t)?;
        for f in files {
            t.files.push(FileRef {
                ticket: t.id.clone(),
                ..f
            });
        }
        Ok(outbox)
    })
}

/// Where an idempotency key is kept: scoped to the caller, so two callers using the same
/// key never meet, and hashed, so the key itself is not stored.
fn idempotency_id(who: &Principal, key: &str) -> String {
    hash_secret(&format!("{}\n{key}", who.username))
}

/// The idempotency key of a create: the `Idempotency-Key` header (the wire layer passes it
/// as this parameter) or the `idempotency_key` parameter.
fn idempotency_key(params: &Map<String, Value>) -> Result<Option<String>> {
    let bad = || {
        Error::Api(format!(
            "Malformed parameter: idempotency_key (1 to {IDEMPOTENCY_KEY_MAX} printable characters)"
        ))
    };
    match params.get("idempotency_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) if k.is_empty() => Ok(None),
        Some(Value::String(k))
            if k.len() <= IDEMPOTENCY_KEY_MAX && !k.chars().any(char::is_control) =>
        {
            Ok(Some(k.clone()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(bad()),
    }
}

/// The change made to the open ticket that absorbs a create: one more occurrence and a
/// comment saying what was sent and when.
/// The occurrence comment of a dedupe hit; with `notify`, its outbox entries (an "updated"
/// email batched like any comment, the `ticket_commented` webhook).
fn occurrence(
    sent: &Ticket,
    username: &str,
    tz: &jiff::tz::TimeZone,
    notify: Option<std::sync::Arc<crate::notify::NotifySettings>>,
) -> crate::store::TicketMutationOut {
    let subject = sent.subject.clone();
    let body = sent.body.clone();
    let when = sent.created;
    let username = username.to_string();
    let time = format_time(Some(when as f64), tz);
    Box::new(move |t: &mut Ticket| {
        let before = notify.as_ref().map(|_| t.clone());
        let n = t.occurrences.max(1) + 1;
        t.occurrences = n;
        let mut text = format!(
            "**Occurrence {n}** of this ticket's dedupe key, received {time} from {username}.\n\n"
        );
        text.push_str(&format!("**Subject:** {}\n", oneline(&subject)));
        if body == t.body && !body.trim().is_empty() {
            text.push_str("\n(The same body as the ticket.)\n");
        } else if !body.trim().is_empty() {
            let mut end = body.len().min(OCCURRENCE_BODY_MAX);
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            text.push('\n');
            text.push_str(&body[..end]);
            if end < body.len() {
                text.push_str("\n\n(… the rest of the body was left out)");
            }
        }
        t.changes.push(Change {
            id: new_id(IdKind::Change),
            kind: COMMENT.to_string(),
            username: username.clone(),
            date: when,
            body: Some(clean_markdown(&text)),
            ..Default::default()
        });
        t.modified = when;
        Ok(match (&notify, before) {
            (Some(ns), Some(before)) => crate::notify::on_change(
                ns,
                &before,
                t,
                &username,
                crate::notify::Cause::Comment,
                when,
            ),
            _ => Vec::new(),
        })
    })
}
