//! SMTP delivery through lettre: one multipart (plain text + HTML) message per outbox batch.

use std::time::Duration;

use anyhow::Context;
use docket_core::notify::Message as Rendered;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::SmtpConfig;

/// A configured SMTP client. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl Mailer {
    /// `None` when no `smtp.host` is configured.
    pub fn from_config(c: &SmtpConfig) -> anyhow::Result<Option<Mailer>> {
        let host = c.host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let builder = match c.tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "tls" => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).context("smtp: TLS setup")?
            }
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .context("smtp: STARTTLS setup")?,
        };
        let mut builder = builder
            .port(c.port)
            .timeout(Some(Duration::from_secs(c.timeout.max(1))));
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        let from: Mailbox = c
            .from
            .parse()
            .with_context(|| format!("smtp.from {:?} is not an email address", c.from))?;
        let domain = from.email.domain().to_string();
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            domain,
        }))
    }

    /// Sends one message to `to`. `ids` are the outbox rows it carries: the Message-ID is
    /// derived from them, so a message repeated after a crash is recognizable as the same.
    /// `reply_to`: the ticket's reply address (email in), where answers become comments.
    pub async fn send(
        &self,
        to: &[String],
        msg: &Rendered,
        ids: &[i64],
        reply_to: Option<&str>,
    ) -> anyhow::Result<()> {
        let first = ids.first().copied().unwrap_or(0);
        let last = ids.last().copied().unwrap_or(0);
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(msg.subject.clone())
            .message_id(Some(format!(
                "<docket.outbox.{first}.{last}@{}>",
                self.domain
            )));
        if let Some(r) = reply_to {
            let mb: Mailbox = r
                .parse()
                .with_context(|| format!("bad reply address {r:?}"))?;
            b = b.reply_to(mb);
        }
        for addr in to {
            let mb: Mailbox = addr
                .parse()
                .with_context(|| format!("bad recipient address {addr:?}"))?;
            b = b.to(mb);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut email = b
            .multipart(MultiPart::alternative_plain_html(
                msg.text.clone(),
                msg.html.clone(),
            ))
            .context("building the email")?;
        email.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Docket-Outbox"),
            list,
        ));
        self.transport.send(email).await.context("SMTP delivery")?;
        Ok(())
    }
}
