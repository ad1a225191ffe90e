//! Webhook delivery: a JSON POST signed with HMAC-SHA256 of the exact body bytes,
//! `X-Docket-Signature: sha256=HEX`.

use std::time::Duration;

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookConfig;

#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    endpoints: Vec<WebhookConfig>,
}

/// `sha256=HEX` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhooks {
    pub fn new(endpoints: Vec<WebhookConfig>) -> anyhow::Result<Webhooks> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("docket/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Webhooks { client, endpoints })
    }

    /// Posts `body` to `url`; any 2xx answer is a delivery.
    pub async fn post(
        &self,
        url: &str,
        event: &str,
        delivery: i64,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let secret = self
            .endpoints
            .iter()
            .find(|w| w.url == url)
            .map(|w| w.secret.as_str())
            .unwrap_or("");
        let res = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Docket-Event", event)
            .header("X-Docket-Delivery", delivery.to_string())
            .header("X-Docket-Signature", signature(secret, &body))
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !res.status().is_success() {
            bail!("POST {url}: HTTP {}", res.status());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
