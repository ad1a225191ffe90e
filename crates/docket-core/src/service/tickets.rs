//! The ticket calls: get, get many, search, create, update, comment, edit a comment, delete.

use docket_query::Filter;
use serde_json::{Map, Value};
use tracing::instrument;

use super::{flag, int_param, required_str, string_list, Created, Docket};
use crate::auth::{CanCreate, CanDelete, CanEdit, Principal};
use crate::compact_json;
use crate::due::parse_due;
use crate::error::{Error, Result};
use crate::history::{
    created_entry, push_collapsing, record_changes, CHANGE, CHANGE_TYPES, COMMENT,
};
use crate::ids::{new_id, IdKind};
use crate::model::{Category, Change, FileRef, Tag, Ticket};
use crate::notify::{self, Cause, NotifySettings, OutboxItem};
use crate::rules::DRAFT;
use crate::sanitize::clean_markdown;
use crate::store::{
    RecordKind, RowShape, SearchPage, SearchRequest, SortField, StoredPage, StoredRow, TicketRef,
};
use crate::ticket_input::TicketPatch;

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Ticket not found: {id}"))
}

/// The ticket `get_ticket` names (`id`, else `num`) and how "not found" names it.
fn which_ticket(params: &Map<String, Value>) -> Result<(TicketRef<'_>, String)> {
    match (params.get("id"), params.get("num")) {
        (Some(Value::String(id)), _) if !id.is_empty() => Ok((TicketRef::Id(id), id.clone())),
        (_, Some(num)) if !num.is_null() => {
            let num = int_param(params, "num", 0, 1, i64::MAX).map_err(|_| {
                Error::Ticket("Malformed parameter: num (must be a positive whole number)".into())
            })?;
            Ok((TicketRef::Num(num), format!("#{num}")))
        }
        (None | Some(Value::Null | Value::String(_)), _) => {
            Err(Error::Ticket("Missing parameter: id or num".into()))
        }
        (Some(_), _) => Err(Error::Ticket(
            "Malformed parameter: id (must be a string)".into(),
        )),
    }
}

/// One slot of a `get_tickets` reply.
pub type TicketOrError = std::result::Result<Ticket, String>;

/// The parameters of `search_tickets`, as the reference names them.
#[derive(Debug, Clone)]
pub struct SearchParams {
    pub query: String,
    pub offset: u64,
    pub limit: u64,
    pub sort_by: SortField,
    pub descending: bool,
}

/// The most rows one search page may return.
pub const MAX_LIMIT: i64 = 10_000;

impl SearchParams {
    pub fn from_params(params: &Map<String, Value>) -> Result<SearchParams> {
        let query = match params.get("query") {
            None | Some(Value::Null) => "*".to_string(),
            Some(Value::String(s)) => s.clone(),
            // A query string types `5` and `true`; as a search they are words.
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => {
                return Err(Error::Api(
                    "Malformed parameter: query (must be a string)".into(),
                ))
            }
        };
        let sort_by = match params.get("sort_by") {
            None | Some(Value::Null) => SortField::Id,
            Some(Value::String(s)) if s.is_empty() => SortField::Id,
            Some(Value::String(s)) => SortField::parse(s).ok_or_else(|| {
                Error::Api(format!(
                    "Unknown sort_by field: {s:?}; sortable fields are: {}",
                    SortField::NAMES
                ))
            })?,
            Some(_) => {
                return Err(Error::Api(
                    "Malformed parameter: sort_by (must be a string)".into(),
                ))
            }
        };
        let dir = int_param(params, "sort_dir", -1, -1, 1)?;
        if dir == 0 {
            return Err(Error::Api(
                "Malformed parameter: sort_dir (must be -1 or 1)".into(),
            ));
        }
        Ok(SearchParams {
            query,
            offset: int_param(params, "offset", 0, 0, i64::MAX)? as u64,
            limit: int_param(params, "limit", 1, 1, MAX_LIMIT)? as u64,
            sort_by,
            descending: dir < 0,
        })
    }
}

impl Docket {
    /// `get_ticket`: by `id`, or by `num`.
    #[instrument(skip_all)]
    pub async fn get_ticket(&self, who: &Principal, params: &Map<String, Value>) -> Result<Ticket> {
        let (which, label) = which_ticket(params)?;
        let found = match which {
            TicketRef::Id(id) => self.store.ticket_by_id(id).await?,
            TicketRef::Num(num) => self.store.ticket_by_num(num).await?,
        };
        match found {
            Some(t) if who.sees(&t) => self.present(who, t).await,
            _ => Err(not_found(&label)),
        }
    }

    /// `get_ticket` as the ticket's stored JSON text, which is the reply's `ticket` as it is
    /// (no parse, no encode); the same scope check as [`Docket::get_ticket`].
    pub async fn get_ticket_json(
        &self,
        who: &Principal,
        params: &Map<String, Value>,
    ) -> Result<String> {
        let (which, label) = which_ticket(params)?;
        match self.store.stored_ticket(which).await? {
            Some(t) if who.sees_category(&t.category) => {
                let mut one = self.present_json(who, vec![t.json]).await?;
                one.pop().ok_or_else(|| not_found(&label))
            }
            _ => Err(not_found(&label)),
        }
    }

    /// `get_tickets`: many by id, in order; a missing or forbidden one becomes an error slot.
    pub async fn get_tickets(
        &self,
        who: &Principal,
        params: &Map<String, Value>,
    ) -> Result<Vec<TicketOrError>> {
        let ids = string_list(params, "ids", Error::Ticket)?
            .ok_or_else(|| Error::Ticket("Missing parameter: ids".into()))?;
        if ids.len() > MAX_LIMIT as usize {
            return Err(Error::Ticket(format!(
                "Too many ids: at most {MAX_LIMIT} per call"
            )));
        }
        let found = self.store.tickets_by_ids(&ids).await?;
        let mut visible: Vec<Ticket> = found
            .iter()
            .flatten()
            .filter(|t| who.sees(t))
            .cloned()
            .collect();
        self.present_many(who, &mut visible).await?;
        let mut shown = visible.into_iter();
        Ok(ids
            .iter()
            .zip(found)
            .map(|(id, t)| match t {
                Some(t) if who.sees(&t) => shown.next().ok_or_else(|| not_found(id).to_string()),
                _ => Err(not_found(id).to_string()),
            })
            .collect())
    }

    /// Parses and lowers search language text as `search_tickets` does (dates in the
    /// configured time zone); the error is the parser's message with its hint.
    pub fn compile_query(&self, query: &str) -> std::result::Result<Filter, String> {
        let ctx = docket_query::LowerCtx {
            tz: self.rules.timezone.clone(),
            now: jiff::Timestamp::now(),
        };
        let levels = self.rules.priority_levels().levels;
        docket_query::compile_with(query, &ctx, &levels).map_err(|e| {
            let hint = e
                .hint
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("Invalid search query: {e}{hint}")
        })
    }

    /// `search_tickets`: the query language over tickets the caller may see.
    #[instrument(skip_all)]
    pub async fn search_tickets(
        &self,
        who: &Principal,
        search: &SearchParams,
    ) -> Result<SearchPage> {
        let mut page = self
            .run_search(Some(&who.username), &self.search_request(who, search)?)
            .await?;
        self.present_many(who, &mut page.rows).await?;
        Ok(page)
    }

    /// `search_tickets` with each row as JSON text, as the caller may see it (see
    /// [`Docket::get_ticket_json`]) and, with `compact`, in the compact form
    /// ([`crate::compact_json`]); scoped to the caller's categories in the store. Rows the
    /// store hands over compact already are the same for every reader and go out as they are.
    pub async fn search_tickets_json(
        &self,
        who: &Principal,
        search: &SearchParams,
        compact: bool,
    ) -> Result<StoredPage> {
        let request = self.search_request(who, search)?;
        let shape = if compact {
            RowShape::Compact
        } else {
            RowShape::Full
        };
        let page = self
            .searches
            .run(Some(&who.username), self.store.search_rows(&request, shape))
            .await?;
        let mut rows = Vec::with_capacity(page.rows.len());
        let mut full = Vec::new();
        for (i, row) in page.rows.into_iter().enumerate() {
            match row {
                StoredRow::Compact(text) => rows.push(text),
                StoredRow::Full(text) => {
                    rows.push(String::new());
                    full.push((i, text));
                }
            }
        }
        let (slots, texts): (Vec<usize>, Vec<String>) = full.into_iter().unzip();
        for (i, text) in slots.into_iter().zip(self.present_json(who, texts).await?) {
            rows[i] = if compact {
                compact_json::compact(&text)?
            } else {
                text
            };
        }
        Ok(StoredPage {
            rows,
            total: page.total,
        })
    }

    fn search_request(&self, who: &Principal, search: &SearchParams) -> Result<SearchRequest> {
        Ok(SearchRequest {
            filter: self.compile_query(&search.query).map_err(Error::Ticket)?,
            categories: who.categories.clone(),
            sort_by: search.sort_by,
            descending: search.descending,
            offset: search.offset,
            limit: search.limit,
        })
    }

    /// `create_ticket`.
    #[instrument(skip_all)]
    pub async fn create_ticket(
        &self,
        who: &Principal,
        can: &CanCreate,
        params: &Map<String, Value>,
    ) -> Result<Ticket> {
        Ok(self.create_ticket_outcome(who, can, params).await?.ticket)
    }

    /// `create_ticket` with what happened: created, deduplicated into an open ticket, or
    /// replayed for a repeated idempotency key (see `automation.rs`).
    #[instrument(skip_all)]
    pub async fn create_ticket_outcome(
        &self,
        who: &Principal,
        can: &CanCreate,
        params: &Map<String, Value>,
    ) -> Result<Created> {
        self.create_ticket_with_files(who, can, params, Vec::new())
            .await
    }

    /// [`Docket::create_ticket_outcome`] with files the request uploaded first (staged by
    /// the files service): the ticket is stored with them, or a dedupe hit adds them to the
    /// ticket that absorbs the create, and their records are made final — one transaction,
    /// so a failure leaves no ticket, no notification and only staged files for the sweeper.
    /// On a replay the caller discards them (the first request's files are in place).
    #[instrument(skip_all)]
    pub async fn create_ticket_with_files(
        &self,
        who: &Principal,
        can: &CanCreate,
        params: &Map<String, Value>,
        staged: Vec<FileRef>,
    ) -> Result<Created> {
        let mut created = self.create_unpresented(who, can, params, staged).await?;
        // A dedupe hit or replay answers with an existing ticket: shown as the caller may.
        created.ticket = self.present(who, created.ticket).await?;
        Ok(created)
    }

    async fn create_unpresented(
        &self,
        who: &Principal,
        can: &CanCreate,
        params: &Map<String, Value>,
        staged: Vec<FileRef>,
    ) -> Result<Created> {
        if let Some(replayed) = self.replay_idempotent(who, params).await? {
            return Ok(replayed);
        }
        let mut patch = TicketPatch::from_params(params, &self.rules)?;
        if patch.id.is_some() && who.categories.is_some() {
            // "Already exists" would tell a caller limited to some categories that a ticket
            // it may not see has that id. So such a caller may not choose ids at all: the
            // same answer for every id, before anything is looked up.
            return Err(Error::Access(
                "A caller limited to categories cannot choose a ticket id; leave out `id` \
                 and the server assigns one"
                    .into(),
            ));
        }
        if let Some(report) = self.template_report(params).await? {
            self.apply_report(who, &mut patch, report).await?;
        }
        self.fill_from_template(&mut patch)?;
        let subject = patch.subject.clone().unwrap_or_default();
        if subject.trim().is_empty() {
            return Err(Error::Ticket(
                "Missing parameter: subject (a ticket needs a non-blank subject)".into(),
            ));
        }
        self.check_references(who, &patch).await?;
        let now = self.now();
        let due = match &patch.due {
            Some(v) => self.parse_due(v)?,
            None => 0,
        };
        let ticket = Ticket {
            id: patch.id.clone().unwrap_or_else(|| new_id(IdKind::Ticket)),
            num: 0,
            subject,
            body: patch.body.unwrap_or_default(),
            kind: patch.kind.unwrap_or_else(|| self.rules.default_type()),
            status: patch.status.unwrap_or_else(|| "open".to_string()),
            priority: patch
                .priority
                .unwrap_or_else(|| self.rules.default_priority.clone()),
            category: patch.category.unwrap_or_default(),
            server: patch.server.unwrap_or_default(),
            username: who.username.clone(),
            assignees: patch.assignees.unwrap_or_default(),
            cc: patch.cc.unwrap_or_default(),
            notify: patch.notify.unwrap_or_default(),
            tags: patch.tags.unwrap_or_default(),
            due,
            events: patch.events.unwrap_or_default(),
            files: Vec::new(),
            changes: vec![created_entry(&who.username, now)],
            jobs: patch.jobs.unwrap_or_default(),
            created: now,
            modified: now,
            relations: Vec::new(),
            occurrences: u64::from(patch.dedupe_key.as_deref().is_some_and(|k| !k.is_empty())),
            dedupe_key: patch.dedupe_key.unwrap_or_default(),
        };
        self.store_new_ticket(who, can, ticket, params, staged)
            .await
    }

    /// Fills what a create request left out from the configured new-ticket template.
    fn fill_from_template(&self, patch: &mut TicketPatch) -> Result<()> {
        let tpl = &self.rules.template;
        let bad =
            |what: &str| Error::Internal(format!("new_ticket_template has an invalid {what}"));
        if patch.kind.is_none() {
            if let Some(kind) = &tpl.kind {
                patch.kind = Some(kind.clone())
                    .filter(|k| self.rules.is_type(k))
                    .ok_or_else(|| bad("type"))?
                    .into();
            }
        }
        if patch.status.is_none() {
            if let Some(status) = &tpl.status {
                patch.status = Some(status.clone())
                    .filter(|s| self.rules.is_status(s))
                    .ok_or_else(|| bad("status"))?
                    .into();
            }
        }
        if patch.priority.is_none() {
            if let Some(priority) = &tpl.priority {
                patch.priority = Some(priority.clone())
                    .filter(|p| self.rules.is_priority(p))
                    .ok_or_else(|| bad("priority"))?
                    .into();
            }
        }
        fill(&mut patch.assignees, &tpl.assignees);
        fill(&mut patch.cc, &tpl.cc);
        fill(&mut patch.notify, &tpl.notify);
        fill(&mut patch.tags, &tpl.tags);
        if patch.due.is_none() {
            patch.due = tpl.due.clone();
        }
        Ok(())
    }

    pub(super) fn parse_due(&self, value: &Value) -> Result<i64> {
        parse_due(value, jiff::Timestamp::now(), &self.rules.timezone)
            .map_err(|why| Error::Ticket(format!("Malformed ticket parameter: due ({why})")))
    }

    /// Tags and the category must exist, and the caller must be allowed that category.
    pub(super) async fn check_references(
        &self,
        who: &Principal,
        patch: &TicketPatch,
    ) -> Result<()> {
        for tag in patch.tags.iter().flatten() {
            if self.load::<Tag>(RecordKind::Tag, tag).await?.is_none() {
                return Err(Error::Ticket(format!(
                    "Unknown tag: {tag:?} (create it first with create_tag)"
                )));
            }
        }
        let category = patch.category.as_deref().unwrap_or("");
        if !category.is_empty()
            && self
                .load::<Category>(RecordKind::Category, category)
                .await?
                .is_none()
        {
            return Err(Error::Ticket(format!("Unknown category: {category:?}")));
        }
        if (patch.category.is_some() || who.categories.is_some()) && !who.sees_category(category) {
            let allowed: Vec<&str> = who
                .categories
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            return Err(Error::Access(format!(
                "You may not file tickets in category {category:?}; your categories are: {}",
                allowed.join(", ")
            )));
        }
        Ok(())
    }

    /// `update_ticket`: a shallow merge of the sent fields, with change history.
    #[instrument(skip_all)]
    pub async fn update_ticket(
        &self,
        who: &Principal,
        _can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<Ticket> {
        let id = required_str(params, "id", Error::Ticket)?.to_string();
        let mut patch = TicketPatch::from_params(params, &self.rules)?;
        patch.id = None;
        if patch
            .subject
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(Error::Ticket(
                "Malformed ticket parameter: subject (must not be blank)".into(),
            ));
        }
        if patch.tags.is_some() || patch.category.is_some() {
            let refs = TicketPatch {
                tags: patch.tags.clone(),
                category: patch.category.clone(),
                ..Default::default()
            };
            // Only the category named in this request is checked against the caller here;
            // the closure below checks the ticket's current one.
            if refs.category.is_some() {
                self.check_references(who, &refs).await?;
            } else {
                self.check_references(&Principal::system(&who.username), &refs)
                    .await?;
            }
        }
        let due = match &patch.due {
            Some(v) => Some(self.parse_due(v)?),
            None => None,
        };
        self.edit_visible_ticket(who, &id, params, move |t, who, now| {
            let before = t.clone();
            apply_patch(t, patch, due);
            record_changes(&before, t, &who.username, now);
            Ok(Cause::Update)
        })
        .await
    }

    /// `add_ticket_change`: a comment (or other history entry) written by the caller.
    #[instrument(skip_all)]
    pub async fn add_ticket_change(
        &self,
        who: &Principal,
        _can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<Ticket> {
        let id = required_str(params, "id", Error::Ticket)?.to_string();
        let change = match params.get("change") {
            Some(Value::Object(c)) => c,
            None => return Err(Error::Ticket("Missing parameter: change".into())),
            Some(_) => {
                return Err(Error::Ticket(
                    "Malformed parameter: change (must be an object)".into(),
                ))
            }
        };
        let mut entry = self.change_from_params(change, true)?;
        if entry.internal && !who.sees_internal() {
            return Err(Error::Access(
                "You do not have the view_internal privilege, which internal notes require.".into(),
            ));
        }
        let now = self.now();
        entry.id = new_id(IdKind::Change);
        entry.username = who.username.clone();
        entry.date = now;
        self.edit_visible_ticket(who, &id, params, move |t, _, _| {
            if entry.kind == COMMENT {
                t.changes.push(entry);
                Ok(Cause::Comment)
            } else {
                push_collapsing(&mut t.changes, entry);
                Ok(Cause::Update)
            }
        })
        .await
    }

    /// Checks a client-written change entry: `{type, body?, key?, value?}`.
    fn change_from_params(
        &self,
        change: &Map<String, Value>,
        require_type: bool,
    ) -> Result<Change> {
        let mut entry = Change::default();
        for (key, value) in change {
            match key.as_str() {
                "type" => {
                    let kind = value.as_str().unwrap_or_default();
                    if !CHANGE_TYPES.contains(&kind) {
                        return Err(Error::Ticket(format!(
                            "Malformed change: type must be one of {}",
                            CHANGE_TYPES.join(", ")
                        )));
                    }
                    entry.kind = kind.to_string();
                }
                "body" => {
                    let body = value.as_str().ok_or_else(|| {
                        Error::Ticket("Malformed change: body (must be a string)".into())
                    })?;
                    if body.contains('\0') {
                        return Err(Error::Ticket(
                            "Malformed change: body (contains a NUL character (U+0000), which is not allowed)".into(),
                        ));
                    }
                    if body.len() > self.rules.limits.body_bytes {
                        return Err(Error::Ticket(format!(
                            "Malformed change: body (larger than {} bytes)",
                            self.rules.limits.body_bytes
                        )));
                    }
                    entry.body = Some(clean_markdown(body));
                }
                "key" => {
                    let k = value
                        .as_str()
                        .filter(|k| crate::ids::is_valid_id(k))
                        .ok_or_else(|| {
                            Error::Ticket("Malformed change: key (must be a field id)".into())
                        })?;
                    entry.key = Some(k.to_string());
                }
                "value" => entry.value = Some(value.clone()),
                "internal" => {
                    entry.internal = match value {
                        Value::Bool(b) => *b,
                        Value::Null => false,
                        _ => {
                            return Err(Error::Ticket(
                                "Malformed change: internal (must be true or false)".into(),
                            ))
                        }
                    }
                }
                "id" | "username" | "date" | "edited" => {}
                other => {
                    return Err(Error::Ticket(format!(
                        "Unknown change property: {other:?} (a change has type, body, key, value, internal)"
                    )))
                }
            }
        }
        if require_type && entry.kind.is_empty() {
            return Err(Error::Ticket("Missing parameter: change.type".into()));
        }
        if entry.kind == COMMENT && entry.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(Error::Ticket("A comment needs a non-blank body".into()));
        }
        if entry.internal && !entry.kind.is_empty() && entry.kind != COMMENT {
            return Err(Error::Ticket(
                "Only a comment can be internal (change.type \"comment\")".into(),
            ));
        }
        Ok(entry)
    }

    /// `update_ticket_change`: edit (merge) or delete one history entry.
    #[instrument(skip_all)]
    pub async fn update_ticket_change(
        &self,
        who: &Principal,
        _can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<Ticket> {
        let id = required_str(params, "id", Error::Ticket)?.to_string();
        let change_id = required_str(params, "change_id", Error::Ticket)?.to_string();
        let delete = flag(params, "delete")?;
        // Whether the request sets the internal flag (a merge cannot tell `false` from unsent).
        let sets_internal = match params.get("change") {
            Some(Value::Object(c)) => c.get("internal").is_some_and(|v| !v.is_null()),
            _ => false,
        };
        if sets_internal && !who.sees_internal() {
            return Err(Error::Access(
                "You do not have the view_internal privilege, which internal notes require.".into(),
            ));
        }
        let merge = if delete {
            None
        } else {
            match params.get("change") {
                Some(Value::Object(c)) => Some(self.change_from_params(c, false)?),
                None => {
                    return Err(Error::Ticket(
                        "Missing parameter: change (or delete: true)".into(),
                    ))
                }
                Some(_) => {
                    return Err(Error::Ticket(
                        "Malformed parameter: change (must be an object)".into(),
                    ))
                }
            }
        };
        self.edit_visible_ticket(who, &id, params, move |t, who, now| {
            // An internal note is no entry at all to a caller who may not read it.
            let pos = t
                .changes
                .iter()
                .position(|c| c.id == change_id && (!c.internal || who.sees_internal()))
                .ok_or_else(|| Error::NotFound(format!("Change not found: {change_id}")))?;
            if t.changes[pos].username != who.username && !who.is_admin() {
                return Err(Error::Access(
                    "Only the author of a change or an administrator may edit or delete it".into(),
                ));
            }
            match merge {
                None => {
                    t.changes.remove(pos);
                    if t.status != DRAFT {
                        t.changes.push(Change {
                            id: new_id(IdKind::Change),
                            kind: CHANGE.to_string(),
                            username: who.username.clone(),
                            date: now,
                            key: Some("delete".to_string()),
                            ..Default::default()
                        });
                    }
                }
                Some(m) => {
                    let c = &mut t.changes[pos];
                    if !m.kind.is_empty() {
                        c.kind = m.kind;
                    }
                    if m.body.is_some() {
                        c.body = m.body;
                    }
                    if m.key.is_some() {
                        c.key = m.key;
                    }
                    if m.value.is_some() {
                        c.value = m.value;
                    }
                    if sets_internal {
                        c.internal = m.internal;
                    }
                    if c.internal && c.kind != COMMENT {
                        return Err(Error::Ticket(
                            "Only a comment can be internal (change.type \"comment\")".into(),
                        ));
                    }
                    if c.kind == COMMENT && c.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
                        return Err(Error::Ticket("A comment needs a non-blank body".into()));
                    }
                    c.edited = Some(now);
                }
            }
            Ok(Cause::Update)
        })
        .await
    }

    /// `delete_ticket`: the ticket, its history and its index entries.
    #[instrument(skip_all)]
    pub async fn delete_ticket(
        &self,
        who: &Principal,
        _can: &CanDelete,
        params: &Map<String, Value>,
    ) -> Result<Ticket> {
        let id = required_str(params, "id", Error::Ticket)?.to_string();
        let who2 = who.clone();
        let id2 = id.clone();
        let ns = self.notify.clone();
        let send = super::sends(params);
        let now = self.now();
        self.store
            .delete_ticket_out(
                &id,
                Box::new(move |t: &Ticket| {
                    if who2.sees(t) {
                        Ok(if send {
                            notify::on_delete(&ns, t, &who2.username, now)
                        } else {
                            Vec::new()
                        })
                    } else {
                        Err(not_found(&id2))
                    }
                }),
            )
            .await?
            .ok_or_else(|| not_found(&id))
    }
}

/// The outbox entries of a change, unless the request said `notify: false`.
impl Docket {
    /// Edits a ticket the caller may see, in one store transaction: a ticket they may not see
    /// is `notfound`; `edit` changes it (given the caller and the time) and says why, which
    /// decides its notifications; `modified` and the outbox entries are set here, once.
    async fn edit_visible_ticket<F>(
        &self,
        who: &Principal,
        id: &str,
        params: &Map<String, Value>,
        edit: F,
    ) -> Result<Ticket>
    where
        F: FnOnce(&mut Ticket, &Principal, i64) -> Result<Cause> + Send + 'static,
    {
        let now = self.now();
        let viewer = who.clone();
        let who = who.clone();
        let missing = id.to_string();
        let ns = self.notify.clone();
        let send = super::sends(params);
        let default_priority = self.rules.default_priority.clone();
        let edited = self
            .store
            .update_ticket_out(
                id,
                Box::new(move |t: &mut Ticket| {
                    if !who.sees(t) {
                        return Err(not_found(&missing));
                    }
                    // A record without a priority (the stores fill it in when they open;
                    // this is the belt to those braces) has the default: not a change.
                    if t.priority.is_empty() {
                        t.priority = default_priority;
                    }
                    let before = t.clone();
                    let cause = edit(t, &who, now)?;
                    t.modified = now;
                    Ok(outbox_for(send, &ns, &before, t, &who.username, cause, now))
                }),
            )
            .await?
            .ok_or_else(|| not_found(id))?;
        self.present(&viewer, edited).await
    }
}

pub(super) fn outbox_for(
    send: bool,
    ns: &NotifySettings,
    before: &Ticket,
    after: &Ticket,
    actor: &str,
    cause: Cause,
    now: i64,
) -> Vec<OutboxItem> {
    if send {
        notify::on_change(ns, before, after, actor, cause, now)
    } else {
        Vec::new()
    }
}

fn fill(target: &mut Option<Vec<String>>, default: &Option<Vec<String>>) {
    if target.is_none() {
        target.clone_from(default);
    }
}

fn apply_patch(t: &mut Ticket, p: TicketPatch, due: Option<i64>) {
    use super::set_if as set;
    set(&mut t.subject, p.subject);
    set(&mut t.body, p.body);
    set(&mut t.kind, p.kind);
    set(&mut t.status, p.status);
    set(&mut t.priority, p.priority);
    set(&mut t.category, p.category);
    set(&mut t.server, p.server);
    set(&mut t.assignees, p.assignees);
    set(&mut t.cc, p.cc);
    set(&mut t.notify, p.notify);
    set(&mut t.tags, p.tags);
    set(&mut t.jobs, p.jobs);
    set(&mut t.events, p.events);
    set(&mut t.dedupe_key, p.dedupe_key);
    set(&mut t.due, due);
}
