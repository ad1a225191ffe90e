//! Fetching job and alert records from an upstream xyOps server through its API: the
//! [`RecordSource`] the automation service uses when a record is not held locally.
//!
//! Calls: `get_job` (`{id}` → `{job, token}`), then, best effort, `view_job_log` (the log
//! text, with the token) and `get_event` (the event's title); `get_alert_invocations`
//! (`{ids}` → `{alerts}`), then, best effort, `get_alert` (the alert definition's title).
//! Every request has the configured timeout. A failure of the main call is an error that
//! names the server and what went wrong; a failed best-effort call only leaves its part
//! out of the report.

use std::time::Duration;

use async_trait::async_trait;
use docket_core::service::RecordSource;
use docket_core::{Error, Result};
use serde_json::{json, Value};

use crate::config::UpstreamConfig;

/// The largest job log read from the upstream server; a longer one is cut here (the report
/// shows only its head and tail anyway).
const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// An xyOps server reached with an API key.
pub struct Upstream {
    base: String,
    api_key: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl Upstream {
    /// `None` when no upstream server is configured.
    pub fn from_config(config: &UpstreamConfig) -> anyhow::Result<Option<Upstream>> {
        if config.base_url.trim().is_empty() {
            return Ok(None);
        }
        let timeout = Duration::from_secs(config.timeout.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("docket/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Upstream {
            base: config.base_url.trim().trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            timeout,
            client,
        }))
    }

    fn failed(&self, what: &str, why: impl std::fmt::Display) -> Error {
        Error::Ticket(format!(
            "Could not fetch {what} from the upstream xyOps server at {}: {why}",
            self.base
        ))
    }

    fn transport(&self, what: &str, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            self.failed(
                what,
                format!(
                    "no answer within {} s (upstream.timeout)",
                    self.timeout.as_secs()
                ),
            )
        } else if e.is_connect() {
            self.failed(what, "cannot connect")
        } else {
            self.failed(what, e)
        }
    }

    /// POSTs `/api/app/NAME/v1` and returns the reply when its `code` is 0. `Ok(Err(..))`
    /// carries an xyOps error reply (`code`, `description`).
    async fn call(
        &self,
        what: &str,
        name: &str,
        params: Value,
    ) -> Result<std::result::Result<Value, (String, String)>> {
        let res = self
            .client
            .post(format!("{}/api/app/{name}/v1", self.base))
            .header("X-API-Key", &self.api_key)
            .json(&params)
            .send()
            .await
            .map_err(|e| self.transport(what, e))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| self.transport(what, e))?;
        let reply: Value = serde_json::from_slice(&bytes).map_err(|_| {
            self.failed(what, format!("HTTP {status} with a reply that is not JSON"))
        })?;
        match reply.get("code") {
            Some(code) if code == &json!(0) => Ok(Ok(reply)),
            Some(code) => {
                let code = code
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| code.to_string());
                let desc = reply
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                Ok(Err((code, desc)))
            }
            None => Err(self.failed(what, format!("HTTP {status} with a reply without a code"))),
        }
    }

    /// An xyOps error reply: credentials problems are errors, anything else means the record
    /// is not there.
    fn refused(&self, what: &str, code: &str, desc: &str) -> Result<Option<Value>> {
        if matches!(code, "session" | "api" | "access") {
            return Err(self.failed(
                what,
                format!("refused ({code}: {desc}); check upstream.api_key"),
            ));
        }
        tracing::info!(upstream = %self.base, %code, %desc, "upstream record lookup failed");
        Ok(None)
    }

    /// The job's log text, best effort.
    async fn job_log(&self, id: &str, token: &str) -> Option<String> {
        let res = self
            .client
            .get(format!("{}/api/app/view_job_log/v1", self.base))
            .query(&[("id", id), ("t", token)])
            .send()
            .await
            .ok()?;
        let encoded = res
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v != "identity");
        if !res.status().is_success()
            || encoded
            || res.content_length().unwrap_or(0) > MAX_LOG_BYTES as u64 * 4
        {
            return None;
        }
        let bytes = res.bytes().await.ok()?;
        let cut = &bytes[..bytes.len().min(MAX_LOG_BYTES)];
        Some(String::from_utf8_lossy(cut).into_owned())
    }

    /// A definition's `title` (event or alert), best effort.
    async fn title_of(&self, call: &str, field: &str, id: &str) -> Option<String> {
        match self.call(call, call, json!({"id": id})).await {
            Ok(Ok(reply)) => reply.get(field)?.get("title")?.as_str().map(str::to_string),
            _ => None,
        }
    }
}

#[async_trait]
impl RecordSource for Upstream {
    async fn fetch_job(&self, id: &str) -> Result<Option<Value>> {
        let what = format!("job {id:?}");
        let reply = match self.call(&what, "get_job", json!({"id": id})).await? {
            Ok(reply) => reply,
            Err((code, desc)) => return self.refused(&what, &code, &desc),
        };
        let Some(Value::Object(mut job)) = reply.get("job").cloned() else {
            return Err(self.failed(&what, "the get_job reply has no job object"));
        };
        let token = reply
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let event = job
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let want_log = !token.is_empty() && !job.contains_key("log");
        let want_title =
            !event.is_empty() && !job.contains_key("event_title") && !job.contains_key("title");
        let (log, title) = tokio::join!(
            async {
                if want_log {
                    self.job_log(id, &token).await
                } else {
                    None
                }
            },
            async {
                if want_title {
                    self.title_of("get_event", "event", &event).await
                } else {
                    None
                }
            },
        );
        if let Some(log) = log {
            job.insert("log".into(), Value::String(log));
        }
        if let Some(title) = title {
            job.insert("event_title".into(), Value::String(title));
        }
        Ok(Some(Value::Object(job)))
    }

    async fn fetch_alert(&self, id: &str) -> Result<Option<Value>> {
        let what = format!("alert invocation {id:?}");
        let reply = match self
            .call(&what, "get_alert_invocations", json!({"ids": [id]}))
            .await?
        {
            Ok(reply) => reply,
            Err((code, desc)) => return self.refused(&what, &code, &desc),
        };
        let Some(Value::Object(mut alert)) = reply.get("alerts").and_then(|a| a.get(0)).cloned()
        else {
            return Ok(None);
        };
        if alert.contains_key("err") || !alert.contains_key("id") {
            return Ok(None);
        }
        if !alert.contains_key("title") {
            if let Some(def) = alert
                .get("alert")
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                if let Some(title) = self.title_of("get_alert", "alert", &def).await {
                    alert.insert("title".into(), Value::String(title));
                }
            }
        }
        Ok(Some(Value::Object(alert)))
    }
}
