//! Reply addresses: a notification about ticket 123 carries `Reply-To:
//! tickets+123.TOKEN@example.com`, where TOKEN is the first 96 bits of
//! HMAC-SHA256(secret, "docket-reply:" + ticket id) in lowercase hex. Without the secret
//! the token of another ticket cannot be guessed, and the secret itself never leaves the
//! server. Lowercase hex survives mail systems that change the case of local parts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of a token (96 bits).
pub const TOKEN_HEX_LEN: usize = 24;

/// The reply token of the ticket with id `ticket_id`.
pub fn token(secret: &[u8], ticket_id: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(b"docket-reply:");
    mac.update(ticket_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..TOKEN_HEX_LEN / 2])
}

/// Whether `given` is the token of `ticket_id` (compared in constant time).
pub fn token_matches(secret: &[u8], ticket_id: &str, given: &str) -> bool {
    let want = token(secret, ticket_id);
    let given = given.to_ascii_lowercase();
    if want.len() != given.len() || want.is_empty() {
        return false;
    }
    want.bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The base reply address split: `tickets@example.com` → (`tickets`, `example.com`).
/// `None` when it is not a plain address or its local part already holds a `+`.
pub fn split_base(base: &str) -> Option<(String, String)> {
    let base = super::normalize_address(base);
    let (local, domain) = base.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('+') || !domain.contains('.') {
        return None;
    }
    Some((local.to_string(), domain.to_string()))
}

/// The reply address of ticket number `num` with id `ticket_id`.
pub fn address(base: &str, secret: &[u8], num: i64, ticket_id: &str) -> Option<String> {
    let (local, domain) = split_base(base)?;
    Some(format!(
        "{local}+{num}.{}@{domain}",
        token(secret, ticket_id)
    ))
}

/// A recipient that names a ticket: `local+NUM.TOKEN@domain` of the base address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTarget {
    pub num: i64,
    pub token: String,
}

/// Reads a recipient as a reply address of `base`; `None` when it is not one (another
/// mailbox, or a malformed `+` part).
pub fn parse(base: &str, recipient: &str) -> Option<ReplyTarget> {
    let (local, domain) = split_base(base)?;
    let rcpt = super::normalize_address(recipient);
    let (rlocal, rdomain) = rcpt.rsplit_once('@')?;
    if rdomain != domain {
        return None;
    }
    let detail = rlocal.strip_prefix(&local)?.strip_prefix('+')?;
    let (num, token) = detail.split_once('.')?;
    let num: i64 = num.parse().ok().filter(|n| *n > 0)?;
    if token.len() != TOKEN_HEX_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(ReplyTarget {
        num,
        token: token.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_ticket_and_per_secret() {
        let t = token(b"s1", "tk1");
        assert_eq!(t.len(), TOKEN_HEX_LEN);
        assert_ne!(t, token(b"s1", "tk2"));
        assert_ne!(t, token(b"s2", "tk1"));
        assert!(token_matches(b"s1", "tk1", &t));
        assert!(token_matches(b"s1", "tk1", &t.to_uppercase()));
        assert!(!token_matches(b"s1", "tk2", &t));
        assert!(!token_matches(b"s1", "tk1", &t[..10]));
    }

    #[test]
    fn addresses_round_trip() {
        let a = address("Tickets@Example.com", b"k", 123, "tk1").unwrap();
        assert!(a.starts_with("tickets+123."), "{a}");
        assert!(a.ends_with("@example.com"), "{a}");
        let r = parse("tickets@example.com", &format!("<{}>", a.to_uppercase())).unwrap();
        assert_eq!(r.num, 123);
        assert!(token_matches(b"k", "tk1", &r.token));
        for other in [
            "tickets@example.com",
            "tickets+123@example.com",
            "tickets+x.abc@example.com",
            "tickets+0.000000000000000000000000@example.com",
            "ticketsx+1.000000000000000000000000@example.com",
            "tickets+1.000000000000000000000000@example.org",
            "tickets+1.00000000000000000000000g@example.com",
        ] {
            assert_eq!(parse("tickets@example.com", other), None, "{other}");
        }
        assert!(split_base("tickets+x@example.com").is_none());
        assert!(split_base("nodomain").is_none());
    }
}
