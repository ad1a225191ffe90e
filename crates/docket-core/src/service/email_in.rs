//! Email in, the service side: who a sender is, a new ticket from a mail to an intake
//! address, a comment from a reply to a ticket's reply address. Everything goes through the
//! ordinary calls (`create_ticket_with_files`, `add_ticket_change`, `Files::store` /
//! `attach`), so validation, sanitizing, history and notifications are those of the API.
//!
//! Who acts:
//! - A sender whose address is the email of an active user acts as that user: a new ticket
//!   is theirs (`username`) and they are put on its `cc`; a reply is their comment, allowed
//!   only when they may comment through the API (`edit_tickets` and the ticket's category).
//! - Any other sender is an external reporter: a new ticket records their address as its
//!   `username` and in `notify` (so they hear about its progress); a reply is a comment
//!   under their address, allowed only when that address is in the ticket's `notify` or
//!   `cc` list.
//! - Creating needs no privilege of the sender: the operator opened the intake address, so
//!   its configured type, category and tags apply whoever writes.

use bytes::Bytes;
use serde_json::{json, Map};

use super::{Created, Docket, Files};
use crate::auth::Principal;
use crate::email_in::{normalize_address, reply};
use crate::error::{Error, Result};
use crate::model::{FileRef, Privileges, Ticket, User};
use crate::store::RecordKind;

/// The meta record holding the reply-token secret when none is configured.
const SECRET_RECORD: &str = "email_reply_secret";

/// A received message, decoded.
#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// The `From` address.
    pub from: String,
    pub subject: String,
    /// Markdown (from the text part, or converted from the HTML part).
    pub body: String,
    pub attachments: Vec<MailAttachment>,
    /// `Message-ID` (replays of one message make one ticket).
    pub message_id: String,
}

#[derive(Debug, Clone)]
pub struct MailAttachment {
    pub name: String,
    pub data: Bytes,
}

/// An intake address's defaults.
#[derive(Debug, Clone, Default)]
pub struct IntakeRoute {
    pub address: String,
    /// Ticket type; empty = the configured default.
    pub kind: String,
    pub category: String,
    pub tags: Vec<String>,
}

/// Who sent a message.
#[derive(Debug, Clone)]
pub enum Sender {
    /// An active user (with roles folded in).
    User(Box<Principal>),
    /// Anyone else, by address.
    External(String),
}

impl Sender {
    pub fn name(&self) -> &str {
        match self {
            Sender::User(principal) => &principal.username,
            Sender::External(addr) => addr,
        }
    }
}

/// Why a reply is refused (each is a bounce with this sentence).
pub fn reply_refused() -> Error {
    Error::NotFound("No such ticket reply address here".into())
}

impl Docket {
    /// The sender of `address`: the active user with that email (case-insensitive), else
    /// an external reporter. A disabled user's address is refused, not treated as external.
    pub async fn email_sender(&self, address: &str) -> Result<Sender> {
        let addr = normalize_address(address);
        crate::ticket_input::check_email(&addr)
            .map_err(|why| Error::User(format!("Bad sender address: {why}")))?;
        let users: Vec<User> = self.load_all(RecordKind::User).await?;
        let mut matches: Vec<User> = users
            .into_iter()
            .filter(|u| normalize_address(&u.email) == addr)
            .collect();
        // Two accounts with one email: the active one, then the first by name.
        matches.sort_by(|a, b| b.active.cmp(&a.active).then(a.username.cmp(&b.username)));
        match matches.into_iter().next() {
            Some(user) if user.active => {
                let principal = self.principal_of_user(&user).await?;
                Ok(Sender::User(Box::new(principal)))
            }
            Some(user) => Err(Error::Access(format!(
                "The account of {addr} ({}) is disabled",
                user.username
            ))),
            None => Ok(Sender::External(addr)),
        }
    }

    /// The secret of reply tokens: `configured` when set, else one generated once and kept
    /// in the database (a `meta` record), so every node of a cluster uses the same.
    pub async fn email_reply_secret(&self, configured: &str) -> Result<Vec<u8>> {
        if !configured.is_empty() {
            return Ok(configured.as_bytes().to_vec());
        }
        let fresh =
            json!({ "secret": crate::auth::random_secret() + &crate::auth::random_secret() });
        // Insert-if-absent: when two nodes start at once, both read the winner's.
        self.store
            .insert_record(RecordKind::Meta, SECRET_RECORD, None, &fresh)
            .await?;
        let stored = self
            .store
            .get_record(RecordKind::Meta, SECRET_RECORD)
            .await?
            .and_then(|v| v["secret"].as_str().map(str::to_string))
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| Error::internal("the reply secret record is unreadable"))?;
        Ok(stored.into_bytes())
    }

    /// The ticket a reply address names, when its token is right; otherwise the one
    /// refusal for a missing ticket and a wrong token alike.
    pub async fn reply_target(&self, secret: &[u8], target: &reply::ReplyTarget) -> Result<Ticket> {
        let ticket = self
            .store
            .ticket_by_num(target.num)
            .await?
            .ok_or_else(reply_refused)?;
        if !reply::token_matches(secret, &ticket.id, &target.token) {
            return Err(reply_refused());
        }
        Ok(ticket)
    }
}

/// The principal an external sender acts as: exactly the one privilege the step needs,
/// every category (the intake or the reply address decided the ticket).
fn external(addr: &str, privilege: &str) -> Principal {
    Principal::new(addr, &Privileges::from_names([privilege]), &[], &[])
}

impl Files {
    /// A new ticket from a mail to an intake address.
    pub async fn ticket_from_email(
        &self,
        route: &IntakeRoute,
        sender: &Sender,
        mail: &InboundMail,
        media_type: &(dyn Fn(&str, &[u8]) -> String + Sync),
    ) -> Result<Created> {
        let docket = &self.docket;
        let who = external(sender.name(), "create_tickets");
        let can = who.can_create()?;
        let limits = &docket.rules.limits;
        let mut params = Map::new();
        let subject = mail.subject.trim();
        let subject = if subject.is_empty() {
            "(no subject)"
        } else {
            subject
        };
        params.insert(
            "subject".into(),
            json!(truncate_chars(subject, limits.subject_chars)),
        );
        params.insert(
            "body".into(),
            json!(fit_body(&mail.body, limits.body_bytes)),
        );
        if !route.kind.is_empty() {
            params.insert("type".into(), json!(route.kind));
        }
        if !route.category.is_empty() {
            params.insert("category".into(), json!(route.category));
        }
        if !route.tags.is_empty() {
            params.insert("tags".into(), json!(route.tags));
        }
        match sender {
            Sender::User(principal) => {
                params.insert("cc".into(), json!([principal.username]));
            }
            Sender::External(addr) => {
                params.insert("notify".into(), json!([addr]));
            }
        }
        if let Some(key) = idempotency_key(&mail.message_id) {
            params.insert("idempotency_key".into(), json!(key));
        }
        let id = crate::ids::new_id(crate::ids::IdKind::Ticket);
        params.insert("id".into(), json!(id));
        let staged = self.stage(&id, &who.username, mail, media_type).await?;
        match docket
            .create_ticket_with_files(&who, &can, &params, staged.clone())
            .await
        {
            Ok(created) => {
                if created.replayed {
                    self.discard(&staged).await;
                }
                Ok(created)
            }
            Err(e) => {
                self.discard(&staged).await;
                Err(e)
            }
        }
    }

    /// A comment (and the mail's attachments) from a reply to `ticket`'s reply address.
    pub async fn comment_from_email(
        &self,
        ticket: &Ticket,
        sender: &Sender,
        mail: &InboundMail,
        media_type: &(dyn Fn(&str, &[u8]) -> String + Sync),
    ) -> Result<Ticket> {
        let docket = &self.docket;
        let denied = || {
            Error::Access(format!(
                "{} may not comment on ticket #{} by email",
                mail.from, ticket.num
            ))
        };
        let who = match sender {
            Sender::User(principal) => {
                if principal.can_edit().is_err() || !principal.sees(ticket) {
                    return Err(denied());
                }
                principal.as_ref().clone()
            }
            Sender::External(addr) => {
                let listed = ticket
                    .notify
                    .iter()
                    .chain(ticket.cc.iter())
                    .any(|a| normalize_address(a) == *addr);
                if !listed {
                    return Err(denied());
                }
                external(addr, "edit_tickets")
            }
        };
        let can = who.can_edit()?;
        let text = crate::email_in::quote::strip_quoted(&mail.body);
        if text.is_empty() && mail.attachments.is_empty() {
            return Err(Error::Ticket(
                "The reply has no text above the quoted message".into(),
            ));
        }
        let staged = self
            .stage(&ticket.id, &who.username, mail, media_type)
            .await?;
        let result = async {
            let mut t = None;
            if !text.is_empty() {
                let body = fit_body(&text, docket.rules.limits.body_bytes);
                let mut params = Map::new();
                params.insert("id".into(), json!(ticket.id));
                params.insert("change".into(), json!({"type": "comment", "body": body}));
                t = Some(docket.add_ticket_change(&who, &can, &params).await?);
            }
            if !staged.is_empty() {
                t = Some(self.attach(&who, &ticket.id, staged.clone()).await?);
            }
            t.ok_or_else(|| Error::internal("nothing was written"))
        }
        .await;
        match result {
            Ok(t) => {
                if let Err(e) = self.finalize(&staged, &t.id).await {
                    tracing::warn!(error = %e, "finalizing emailed files failed; the sweeper repairs them");
                }
                Ok(t)
            }
            Err(e) => {
                self.discard(&staged).await;
                Err(e)
            }
        }
    }

    /// Stores a mail's attachments as pending files of ticket `ticket` (within the upload
    /// limits); on any failure the ones stored already are removed.
    async fn stage(
        &self,
        ticket: &str,
        username: &str,
        mail: &InboundMail,
        media_type: &(dyn Fn(&str, &[u8]) -> String + Sync),
    ) -> Result<Vec<FileRef>> {
        if mail.attachments.len() > self.settings.max_files {
            return Err(Error::File(format!(
                "Too many attachments: at most {} per message (files.max_files)",
                self.settings.max_files
            )));
        }
        let mut staged = Vec::new();
        for a in &mail.attachments {
            let chunk: std::result::Result<Bytes, super::UploadFailure> = Ok(a.data.clone());
            let mut body = OneChunk(Some(chunk));
            match self
                .store(ticket, username, &a.name, &mut body, media_type)
                .await
            {
                Ok(f) => staged.push(f),
                Err(failure) => {
                    self.discard(&staged).await;
                    return Err(failure.error);
                }
            }
        }
        Ok(staged)
    }
}

/// A stream of one chunk (an attachment already in memory).
struct OneChunk(Option<std::result::Result<Bytes, super::UploadFailure>>);

impl futures_core::Stream for OneChunk {
    type Item = std::result::Result<Bytes, super::UploadFailure>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.take())
    }
}

/// The idempotency key of a message: its Message-ID, so a mail server that delivers one
/// message twice (a retry after a lost answer) makes one ticket.
fn idempotency_key(message_id: &str) -> Option<String> {
    let id: String = message_id
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    (!id.is_empty()).then(|| format!("email:{id}"))
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The body within the body limit (cut at a character boundary, with a note).
fn fit_body(body: &str, max: usize) -> String {
    if body.len() <= max {
        return body.to_string();
    }
    let note = "\n\n(The email was longer; the rest was cut.)";
    let mut end = max.saturating_sub(note.len());
    while end > 0 && !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_fit_and_keys_are_clean() {
        assert_eq!(fit_body("short", 100), "short");
        let long = "é".repeat(100);
        let cut = fit_body(&long, 60);
        assert!(cut.len() <= 60 && cut.ends_with("cut.)"), "{cut}");
        assert_eq!(idempotency_key(" <a@b> "), Some("email:<a@b>".into()));
        assert_eq!(idempotency_key(""), None);
    }
}
