//! Email in: the SMTP receiver (`[email_in]`). `smtp.rs` speaks the protocol, `message.rs`
//! decodes MIME; this file decides what a message becomes. The rules without IO (reply
//! tokens, quote stripping, HTML to Markdown, loop detection, the sender limit) are in
//! `docket_core::email_in`, the ticket writes in `docket_core::service::email_in`.
//!
//! What happens to a message:
//! - RCPT: an intake address or a reply address with a valid token is accepted; anything
//!   else is refused (550: no open relay, and a wrong token is a bounce at once).
//! - After DATA: auto-replies, bounces and our own notifications are accepted and dropped
//!   (logged); a sender over `max_per_sender_per_hour` gets 451 (try later); a reply
//!   becomes a comment; otherwise the first intake address opens a ticket. A refusal of
//!   the service (no privilege, bad input) is a 5xx bounce naming the reason; a failure of
//!   ours is a 451, so the sending server retries.

pub mod message;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use docket_core::email_in::{loops, normalize_address, rate::SenderRate, reply};
use docket_core::service::{Files, IntakeRoute};
use docket_core::Error;
use smtp::Reply;

use crate::config::EmailInConfig;

/// Where reply addresses point and the secret of their tokens.
#[derive(Clone)]
pub struct ReplyAddressing {
    pub base: String,
    pub secret: Arc<Vec<u8>>,
}

impl ReplyAddressing {
    /// The reply address of a ticket.
    pub fn address(&self, num: i64, ticket_id: &str) -> Option<String> {
        reply::address(&self.base, &self.secret, num, ticket_id)
    }
}

/// The reply addressing of this configuration (with its secret), when email in is on and
/// has a reply address.
pub async fn reply_addressing(
    config: &EmailInConfig,
    docket: &docket_core::Docket,
) -> anyhow::Result<Option<ReplyAddressing>> {
    if !config.enabled || config.reply_address.is_empty() {
        return Ok(None);
    }
    let secret = docket
        .email_reply_secret(&config.reply_secret)
        .await
        .context("reading the reply-token secret")?;
    Ok(Some(ReplyAddressing {
        base: config.reply_address.clone(),
        secret: Arc::new(secret),
    }))
}

/// The receiver: the services, the intake routes, the sender limit.
pub struct Receiver {
    files: Files,
    intake: Vec<IntakeRoute>,
    reply: Option<ReplyAddressing>,
    rate: SenderRate,
    limits: smtp::Limits,
    max_connections: usize,
}

impl Receiver {
    pub fn new(config: &EmailInConfig, files: Files, reply: Option<ReplyAddressing>) -> Receiver {
        Receiver {
            files,
            intake: config
                .intake
                .iter()
                .map(|i| IntakeRoute {
                    address: normalize_address(&i.address),
                    kind: i.kind.clone(),
                    category: i.category.clone(),
                    tags: i.tags.clone(),
                })
                .collect(),
            reply,
            rate: SenderRate::new(config.max_per_sender_per_hour),
            limits: smtp::Limits {
                hostname: config.hostname.clone(),
                max_message_bytes: config.max_message_bytes,
                max_recipients: config.max_recipients,
                timeout: Duration::from_secs(config.timeout_sec),
            },
            max_connections: config.max_connections,
        }
    }

    fn now(&self) -> i64 {
        self.files.docket.now()
    }

    fn intake_route(&self, rcpt: &str) -> Option<&IntakeRoute> {
        let r = normalize_address(rcpt);
        self.intake.iter().find(|i| i.address == r)
    }

    fn reply_target(&self, rcpt: &str) -> Option<(&ReplyAddressing, reply::ReplyTarget)> {
        let addressing = self.reply.as_ref()?;
        reply::parse(&addressing.base, rcpt).map(|t| (addressing, t))
    }

    /// Serves SMTP on `listener` until the task is aborted.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        loop {
            let (mut stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "email in: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = self.max_connections, "email in: connection limit reached (email_in.max_connections)");
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        stream.write_all(b"421 4.3.2 Too many connections; try again later\r\n"),
                    )
                    .await;
                });
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = smtp::session(stream, me.as_ref(), &me.limits).await {
                    tracing::debug!(%peer, error = %e, "email in: connection ended with an error");
                }
            });
        }
    }

    async fn deliver_inner(&self, envelope_from: &str, rcpts: &[String], data: Vec<u8>) -> Reply {
        let Some(parsed) = message::parse(&data) else {
            return Reply::new(554, "5.6.0 The message could not be parsed");
        };
        drop(data);
        let mail = parsed.mail;
        if let Some(why) = parsed.ignore {
            tracing::info!(from = %mail.from, message_id = %mail.message_id, "email in: ignored {why}");
            return Reply::new(250, format!("2.6.0 Accepted and ignored: {why}"));
        }
        if loops::is_daemon_sender(envelope_from) || loops::is_daemon_sender(&mail.from) {
            tracing::info!(from = %mail.from, message_id = %mail.message_id, "email in: ignored a delivery report (bounce)");
            return Reply::new(250, "2.6.0 Accepted and ignored: a delivery report");
        }
        if mail.from.is_empty() {
            return Reply::new(550, "5.6.0 The message has no From address");
        }
        if !self.rate.take(&mail.from, self.now()) {
            tracing::warn!(from = %mail.from, "email in: sender over email_in.max_per_sender_per_hour");
            return Reply::new(
                451,
                format!(
                    "4.7.1 Too many messages from {}; try again later",
                    mail.from
                ),
            );
        }
        let sender = match self.files.docket.email_sender(&mail.from).await {
            Ok(s) => s,
            Err(e) => return refusal(e),
        };
        let media_type = crate::wire::files::media_type;
        // A reply (also when an intake address is copied): comments on the named tickets.
        let mut replies = Vec::new();
        for r in rcpts {
            if let Some((addressing, target)) = self.reply_target(r) {
                if !replies
                    .iter()
                    .any(|(_, t): &(_, reply::ReplyTarget)| t.num == target.num)
                {
                    replies.push((addressing, target));
                }
            }
        }
        if !replies.is_empty() {
            let mut done = Vec::new();
            for (addressing, target) in replies {
                let ticket = match self
                    .files
                    .docket
                    .reply_target(&addressing.secret, &target)
                    .await
                {
                    Ok(t) => t,
                    Err(e) => return refusal(e),
                };
                match self
                    .files
                    .comment_from_email(&ticket, &sender, &mail, &media_type)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(ticket = ticket.num, from = %mail.from, "email in: reply added as a comment");
                        done.push(format!("#{}", ticket.num));
                    }
                    Err(e) => return refusal(e),
                }
            }
            return Reply::new(
                250,
                format!("2.0.0 Comment added to ticket {}", done.join(", ")),
            );
        }
        let Some(route) = rcpts.iter().find_map(|r| self.intake_route(r)) else {
            return Reply::new(550, "5.1.1 No such mailbox here");
        };
        match self
            .files
            .ticket_from_email(route, &sender, &mail, &media_type)
            .await
        {
            Ok(created) => {
                let num = created.ticket.num;
                tracing::info!(ticket = num, from = %mail.from, intake = %route.address, "email in: ticket created");
                Reply::new(250, format!("2.0.0 Ticket #{num} created"))
            }
            Err(e) => refusal(e),
        }
    }
}

/// A service error as an SMTP reply: ours are temporary (the sender's server retries),
/// the sender's are permanent and say why.
fn refusal(e: Error) -> Reply {
    match e {
        Error::Internal(why) => {
            tracing::error!(error = %why, "email in: internal error");
            Reply::new(451, "4.3.0 Temporary failure; try again later")
        }
        Error::Rate(m) => Reply::new(451, format!("4.7.1 {m}")),
        Error::Access(m) => Reply::new(550, format!("5.7.1 {m}")),
        Error::NotFound(m) => Reply::new(550, format!("5.1.1 {m}")),
        Error::File(m) if m.contains("larger than") || m.contains("Too many") => {
            Reply::new(552, format!("5.3.4 {m}"))
        }
        other => Reply::new(554, format!("5.6.0 {other}")),
    }
}

impl smtp::Delivery for Receiver {
    async fn check_sender(&self, from: &str) -> Result<(), Reply> {
        if !from.is_empty() && !self.rate.allows(from, self.now()) {
            return Err(Reply::new(
                451,
                format!("4.7.1 Too many messages from {from}; try again later"),
            ));
        }
        Ok(())
    }

    async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply> {
        if self.intake_route(rcpt).is_some() {
            return Ok(());
        }
        if let Some((addressing, target)) = self.reply_target(rcpt) {
            return match self
                .files
                .docket
                .reply_target(&addressing.secret, &target)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::info!(
                        rcpt,
                        "email in: refused a reply address (wrong token or no such ticket)"
                    );
                    Err(refusal(e))
                }
            };
        }
        Err(Reply::new(550, "5.1.1 No such mailbox here"))
    }

    async fn deliver(&self, from: &str, rcpts: &[String], data: Vec<u8>) -> Reply {
        self.deliver_inner(from, rcpts, data).await
    }
}

/// Binds the receiver's address when email in is enabled.
pub async fn bind(config: &EmailInConfig) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    if !config.enabled {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding email_in.listen {}", config.listen))?;
    Ok(Some(listener))
}
