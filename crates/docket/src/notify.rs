//! The delivery worker: claims due outbox rows (with a lease), sends each group as one email
//! or one webhook POST, and marks the rows sent right after the server accepted them. Also
//! the daily overdue reminders.
//!
//! Exactly once: a row is marked `sent_at` in its own write as soon as SMTP (or the webhook
//! endpoint) accepted it, and a sent row is never claimed again. The one window left is a
//! crash between the acceptance and that write; the row is then delivered again once its
//! lease runs out. The Message-ID (`<docket.outbox.FIRST.LAST@domain>`) and the webhook
//! `X-Docket-Delivery` header are derived from the row ids, so such a repeat carries the same
//! identity and receivers can drop it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use docket_core::auth::Principal;
use docket_core::model::User;
use docket_core::notify::{self, EmailTemplates, OutboxRow};
use docket_core::service::SearchParams;
use docket_core::store::{RecordKind, SortField};
use docket_core::Docket;
use serde_json::{json, Value};

use crate::config::Config;
use crate::mailer::Mailer;
use crate::webhooks::Webhooks;

/// Template override files (in `templates/` beside the config file, then the data directory).
pub const TEMPLATE_FILES: [(&str, &str); 3] = [
    (notify::NEW, "email_new.md.j2"),
    (notify::UPDATED, "email_updated.md.j2"),
    (notify::OVERDUE, "email_overdue.md.j2"),
];

/// Groups claimed per pass.
const GROUPS_PER_PASS: u32 = 20;
/// The meta record remembering the last day overdue reminders were queued.
const OVERDUE_META: &str = "overdue_reminders";
/// How long a node holds the day's overdue run before another may take it over.
const OVERDUE_CLAIM_SECS: i64 = 600;

#[derive(Clone)]
pub struct Notifier {
    docket: Docket,
    config: Arc<Config>,
    mailer: Option<Mailer>,
    hooks: Webhooks,
    templates: Arc<EmailTemplates>,
    /// Reply addresses (`Reply-To`) of ticket emails, when email in takes replies.
    reply: Option<crate::email_in::ReplyAddressing>,
}

/// The notification settings of the services, from the configuration.
pub fn settings(config: &Config) -> notify::NotifySettings {
    notify::NotifySettings {
        email_enabled: config.emails_on(),
        debounce_sec: config.tickets.email_debounce_sec as i64,
        webhooks: config
            .webhooks
            .iter()
            .map(|w| notify::WebhookTarget {
                url: w.url.clone(),
                events: w.events.clone(),
                internal: w.internal,
            })
            .collect(),
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Seconds before a failed delivery is tried again: 2, 4, 8, … up to an hour.
fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 12) as u32;
    (1i64 << exp).min(3600)
}

impl Notifier {
    pub fn new(docket: Docket, config: Arc<Config>, data_dir: &Path) -> anyhow::Result<Notifier> {
        let dirs = crate::automation::template_dirs(&config, data_dir);
        let mut overrides = BTreeMap::new();
        for (kind, file) in TEMPLATE_FILES {
            if let Some(src) = crate::automation::find_override(&dirs, file)? {
                overrides.insert(kind.to_string(), src.text);
            }
        }
        let templates = EmailTemplates::new(overrides).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Notifier {
            mailer: Mailer::from_config(&config.smtp)?,
            hooks: Webhooks::new(config.webhooks.clone())?,
            templates: Arc::new(templates),
            docket,
            config,
            reply: None,
        })
    }

    /// Ticket emails carry the ticket's reply address as `Reply-To`.
    pub fn with_reply(mut self, reply: Option<crate::email_in::ReplyAddressing>) -> Notifier {
        self.reply = reply;
        self
    }

    fn lease_secs(&self) -> i64 {
        self.config.smtp.timeout as i64 * 2 + 30
    }

    /// Delivers until the process ends.
    pub async fn run(self) {
        loop {
            match self.pass().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One pass: claims due groups and delivers them. Returns how many groups were handled.
    pub async fn pass(&self) -> anyhow::Result<usize> {
        let t = now();
        match self.docket.store.outbox_next_due().await? {
            Some(due) if due <= t => {}
            _ => return Ok(0),
        }
        let rows = self
            .docket
            .store
            .outbox_claim(t, t + self.lease_secs(), GROUPS_PER_PASS)
            .await?;
        let mut groups: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
        for r in rows {
            groups.entry(r.grp.clone()).or_default().push(r);
        }
        let n = groups.len();
        for (_, rows) in groups {
            self.deliver(rows).await;
        }
        Ok(n)
    }

    async fn deliver(&self, rows: Vec<OutboxRow>) {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let first = &rows[0];
        let result = if first.channel == notify::WEBHOOK {
            self.deliver_webhooks(&rows).await
        } else {
            self.deliver_email(&rows).await
        };
        let store = &self.docket.store;
        let outcome = match result {
            Ok(what) => {
                crate::ops::metrics::get().outbox_delivery(&first.channel, true);
                tracing::info!(outbox = ?ids, channel = %first.channel, kind = %first.kind, ticket = %first.ticket, "{what}");
                store.outbox_sent(ids.clone(), now()).await
            }
            Err(Failure::Postpone(why, until)) => {
                tracing::warn!(outbox = ?ids, "{why}");
                store.outbox_failed(ids.clone(), why, until).await
            }
            Err(Failure::Error(e)) => {
                crate::ops::metrics::get().outbox_delivery(&first.channel, false);
                let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(1);
                let wait = backoff(attempts);
                tracing::warn!(outbox = ?ids, channel = %first.channel, attempts, retry_in_secs = wait, error = %format!("{e:#}"), "delivery failed; will retry");
                store
                    .outbox_failed(ids.clone(), format!("{e:#}"), now() + wait)
                    .await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(outbox = ?ids, error = %e, "could not record the delivery outcome");
        }
    }

    async fn deliver_webhooks(&self, rows: &[OutboxRow]) -> Result<String, Failure> {
        for r in rows {
            let mut payload = r.payload.clone();
            if let Value::Object(m) = &mut payload {
                m.insert("delivery".into(), json!(r.id));
            }
            let body = serde_json::to_vec(&payload).map_err(|e| Failure::Error(e.into()))?;
            self.hooks
                .post(&r.target, &r.kind, r.id, body)
                .await
                .map_err(Failure::Error)?;
        }
        Ok(format!("webhook delivered to {}", rows[0].target))
    }

    async fn deliver_email(&self, rows: &[OutboxRow]) -> Result<String, Failure> {
        let first = &rows[0];
        let Some(mailer) = &self.mailer else {
            return Err(Failure::Postpone(
                "emails are queued but smtp.host is not set".into(),
                now() + 3600,
            ));
        };
        let store = &self.docket.store;
        let Some(ticket) = store
            .ticket_by_id(&first.ticket)
            .await
            .map_err(|e| Failure::Error(e.into()))?
        else {
            return Ok("ticket deleted since; email dropped".into());
        };
        let cap = self.config.smtp.max_emails_per_day;
        if cap > 0 {
            let day_start = now() - now().rem_euclid(86_400);
            let sent = store
                .outbox_sent_since(notify::EMAIL, day_start)
                .await
                .map_err(|e| Failure::Error(e.into()))?;
            if sent >= cap {
                return Err(Failure::Postpone(
                    format!("smtp.max_emails_per_day ({cap}) reached; emails wait for the next day (UTC)"),
                    day_start + 86_400,
                ));
            }
        }
        let roles: HashMap<String, docket_core::model::Role> = store
            .list_records(RecordKind::Role)
            .await
            .map_err(|e| Failure::Error(e.into()))?
            .into_iter()
            .filter_map(|v| serde_json::from_value::<docket_core::model::Role>(v).ok())
            .map(|r| (r.id.clone(), r))
            .collect();
        let batch = notify::merge(rows);
        // Only users who may see the ticket's category hear about it: an email is a view.
        // Internal notes go only to users who may read them.
        let users: HashMap<String, User> = store
            .list_records(RecordKind::User)
            .await
            .map_err(|e| Failure::Error(e.into()))?
            .into_iter()
            .filter_map(|v| serde_json::from_value::<User>(v).ok())
            .filter(|u| {
                let own_roles: Vec<_> = u
                    .roles
                    .iter()
                    .filter_map(|r| roles.get(r).cloned())
                    .collect();
                let who = docket_core::auth::Principal::new(
                    &u.username,
                    &u.privileges,
                    &u.categories,
                    &own_roles,
                );
                who.sees(&ticket) && (!batch.internal || who.sees_internal())
            })
            .map(|u| (u.username.clone(), u))
            .collect();
        let overdue = first.kind == notify::OVERDUE;
        // The author of every change in the batch is not told of them; when several people
        // changed the ticket, each of them hears about the others' changes.
        let exclude = if overdue || batch.actors.len() != 1 {
            BTreeSet::new()
        } else {
            batch.actors.clone()
        };
        let notify_self = self.config.tickets.email_notify_self;
        let to = if batch.internal {
            notify::internal_recipients(&ticket, &users, &exclude, notify_self)
        } else {
            notify::recipients(&ticket, &users, &exclude, notify_self, overdue)
        };
        if to.is_empty() {
            return Ok("no recipients; nothing sent".into());
        }
        let ctx = notify::context(
            &ticket,
            &batch,
            &self.docket.rules,
            &self.config.server.base_app_url,
        );
        let msg = self
            .templates
            .render(&first.kind, &ctx)
            .map_err(|e| Failure::Postpone(format!("email template: {e}"), now() + 3600))?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let reply_to = self
            .reply
            .as_ref()
            .and_then(|r| r.address(ticket.num, &ticket.id));
        mailer
            .send(&to, &msg, &ids, reply_to.as_deref())
            .await
            .map_err(Failure::Error)?;
        Ok(format!("email sent to {}", to.join(", ")))
    }

    /// Queues today's overdue reminders (once per ticket and day, ever). Returns how many
    /// were queued now.
    pub async fn queue_overdue(&self) -> anyhow::Result<u64> {
        if !self.config.emails_on() {
            tracing::info!(
                "overdue reminders skipped: emails are off (tickets.email_enabled, smtp.host)"
            );
            return Ok(0);
        }
        let tz = self.config.time_zone()?;
        let day = jiff::Timestamp::now()
            .to_zoned(tz)
            .strftime("%Y-%m-%d")
            .to_string();
        let who = Principal::system("docket");
        let mut items = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .docket
                .search_tickets(
                    &who,
                    &SearchParams {
                        query: self.config.tickets.overdue_query.clone(),
                        offset,
                        limit: 1000,
                        sort_by: SortField::Num,
                        descending: false,
                    },
                )
                .await?;
            let n = page.rows.len() as u64;
            items.extend(
                page.rows
                    .iter()
                    .filter(|t| !t.assignees.is_empty() && t.status != docket_core::rules::DRAFT)
                    .map(|t| notify::overdue_item(t, &day, now())),
            );
            offset += n;
            if n == 0 || offset >= page.total {
                break;
            }
        }
        let queued = self.docket.store.outbox_enqueue(items).await?;
        let mark = json!({ "day": day, "done": true, "queued": queued, "time": now() });
        if !self
            .docket
            .store
            .insert_record(RecordKind::Meta, OVERDUE_META, None, &mark)
            .await?
        {
            let m = mark.clone();
            self.docket
                .store
                .update_record(
                    RecordKind::Meta,
                    OVERDUE_META,
                    Box::new(move |v| {
                        *v = m;
                        Ok(())
                    }),
                )
                .await?;
        }
        tracing::info!(day = %day, queued, "overdue reminders queued");
        Ok(queued)
    }

    /// Queues the overdue reminders once a day at `tickets.overdue_schedule` (local time);
    /// a day already done (the meta record) is not done again, also across restarts.
    pub async fn run_overdue_schedule(self) {
        let Ok((hour, minute)) = self.config.overdue_time() else {
            return;
        };
        let Ok(tz) = self.config.time_zone() else {
            return;
        };
        loop {
            let z = jiff::Timestamp::now().to_zoned(tz.clone());
            let today = z.strftime("%Y-%m-%d").to_string();
            if (z.hour(), z.minute()) >= (hour, minute) {
                match self.claim_overdue_day(&today).await {
                    Ok(true) => {
                        if let Err(e) = self.queue_overdue().await {
                            tracing::warn!(error = %e, "overdue reminders failed");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "overdue schedule: reading its state failed")
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }

    /// Takes today's overdue run for this node, in one transaction on the meta record:
    /// true unless today's run is done or another node holds it. With several nodes on one
    /// database exactly one of them runs it; a claim expires after `OVERDUE_CLAIM_SECS`, so
    /// a node that dies half way is replaced (the per-ticket-and-day outbox key keeps the
    /// second attempt from queueing anything twice).
    async fn claim_overdue_day(&self, today: &str) -> anyhow::Result<bool> {
        let now = now();
        let claim =
            json!({ "day": today, "done": false, "claimed_until": now + OVERDUE_CLAIM_SECS });
        let store = &self.docket.store;
        if store
            .insert_record(RecordKind::Meta, OVERDUE_META, None, &claim)
            .await?
        {
            return Ok(true);
        }
        let won = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = won.clone();
        let today = today.to_string();
        store
            .update_record(
                RecordKind::Meta,
                OVERDUE_META,
                Box::new(move |v| {
                    let same_day = v.get("day").and_then(Value::as_str) == Some(today.as_str());
                    // Records written before claims existed have no `done`: a mark of the day
                    // meant the day was done.
                    let done = v.get("done").and_then(Value::as_bool).unwrap_or(true);
                    let held = v.get("claimed_until").and_then(Value::as_i64).unwrap_or(0) > now;
                    if !(same_day && (done || held)) {
                        *v = claim;
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(())
                }),
            )
            .await?;
        Ok(won.load(std::sync::atomic::Ordering::SeqCst))
    }
}

enum Failure {
    /// Not an error of the receiver: wait until the time given (cap reached, no SMTP).
    Postpone(String, i64),
    Error(anyhow::Error),
}
