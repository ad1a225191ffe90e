//! Who is calling and what they may do: principals, privileges, category scope, and the
//! capability values that prove a privilege was checked. Also secret hashing.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::model::{Privileges, Role, Ticket};

/// Every privilege name the server knows.
pub const PRIVILEGES: [&str; 12] = [
    "admin",
    "create_tickets",
    "edit_tickets",
    "delete_tickets",
    "create_tags",
    "edit_tags",
    "delete_tags",
    "create_categories",
    "edit_categories",
    "delete_categories",
    "import_records",
    "view_internal",
];

/// The privilege to read internal notes (comments flagged `internal`); admin implies it.
pub const VIEW_INTERNAL: &str = "view_internal";

/// The caller of a request, after roles were folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The name recorded as author of what this caller writes.
    pub username: String,
    pub privileges: BTreeSet<String>,
    /// `None`: every category. `Some(set)`: only tickets in these categories.
    pub categories: Option<BTreeSet<String>>,
}

impl Principal {
    /// Builds a principal from its own privileges and categories plus those of its roles.
    pub fn new(
        username: &str,
        privileges: &Privileges,
        categories: &[String],
        roles: &[Role],
    ) -> Self {
        let mut privs: BTreeSet<String> = privileges.iter().map(str::to_string).collect();
        let mut cats: BTreeSet<String> = categories.iter().cloned().collect();
        for role in roles {
            privs.extend(role.privileges.iter().map(str::to_string));
            cats.extend(role.categories.iter().cloned());
        }
        let admin = privs.contains("admin");
        Principal {
            username: username.to_string(),
            privileges: privs,
            categories: if cats.is_empty() || admin {
                None
            } else {
                Some(cats)
            },
        }
    }

    /// A principal with every right, for administration from the shell.
    pub fn system(username: &str) -> Self {
        Principal::new(username, &Privileges::from_names(["admin"]), &[], &[])
    }

    pub fn is_admin(&self) -> bool {
        self.privileges.contains("admin")
    }

    pub fn has(&self, privilege: &str) -> bool {
        self.is_admin() || self.privileges.contains(privilege)
    }

    /// Whether this caller may see tickets in `category` ("" = uncategorized).
    pub fn sees_category(&self, category: &str) -> bool {
        match &self.categories {
            None => true,
            Some(set) => set.contains(category),
        }
    }

    pub fn sees(&self, ticket: &Ticket) -> bool {
        self.sees_category(&ticket.category)
    }

    /// Whether this caller may read (and write) internal notes.
    pub fn sees_internal(&self) -> bool {
        self.has(VIEW_INTERNAL)
    }

    fn require(&self, privilege: &str) -> Result<()> {
        if self.has(privilege) {
            Ok(())
        } else {
            Err(Error::Access(format!(
                "You do not have the {privilege} privilege, which this call requires."
            )))
        }
    }

    pub fn can_create(&self) -> Result<CanCreate> {
        self.require("create_tickets").map(|_| CanCreate(()))
    }
    pub fn can_edit(&self) -> Result<CanEdit> {
        self.require("edit_tickets").map(|_| CanEdit(()))
    }
    pub fn can_delete(&self) -> Result<CanDelete> {
        self.require("delete_tickets").map(|_| CanDelete(()))
    }
    pub fn can_admin(&self) -> Result<CanAdmin> {
        self.require("admin").map(|_| CanAdmin(()))
    }
    /// `put_job` / `put_alert`: `import_records` (or admin).
    pub fn can_import(&self) -> Result<CanImport> {
        self.require("import_records").map(|_| CanImport(()))
    }
    /// For tags, categories: `create_tags`, `edit_categories`, ...
    pub fn can(&self, privilege: &str) -> Result<CanManage> {
        self.require(privilege).map(|_| CanManage(()))
    }
}

/// Proof that the caller holds `create_tickets`. Only [`Principal::can_create`] makes one.
#[derive(Debug)]
pub struct CanCreate(());
/// Proof that the caller holds `edit_tickets`.
#[derive(Debug)]
pub struct CanEdit(());
/// Proof that the caller holds `delete_tickets`.
#[derive(Debug)]
pub struct CanDelete(());
/// Proof that the caller is an administrator.
#[derive(Debug)]
pub struct CanAdmin(());
/// Proof that the caller holds `import_records` (may store job and alert records).
#[derive(Debug)]
pub struct CanImport(());
/// Proof that the caller holds a tag/category management privilege.
#[derive(Debug)]
pub struct CanManage(());

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

/// How an imported xyOps password hash is stored: xyOps hashes the password followed by a
/// per-user salt with bcrypt, so the salt travels with the hash
/// (`xyops-bcrypt:BASE64URL(SALT):BCRYPT_HASH`).
const XYOPS_BCRYPT: &str = "xyops-bcrypt:";

/// The stored form of an xyOps user's bcrypt hash and salt.
pub fn xyops_password_hash(bcrypt_hash: &str, salt: &str) -> String {
    use base64::Engine;
    let salt = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(salt.as_bytes());
    format!("{XYOPS_BCRYPT}{salt}:{bcrypt_hash}")
}

/// Whether a stored hash should be replaced by the current scheme after a successful login
/// (it came from xyOps).
pub fn needs_rehash(hash: &str) -> bool {
    hash.starts_with(XYOPS_BCRYPT)
}

/// bcrypt over the password and the xyOps salt (bcrypt reads at most 72 bytes, as xyOps did).
fn verify_xyops(password: &str, stored: &str) -> bool {
    use base64::Engine;
    let Some((salt, hash)) = stored
        .strip_prefix(XYOPS_BCRYPT)
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let Ok(salt) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(salt) else {
        return false;
    };
    let mut salted = password.as_bytes().to_vec();
    salted.extend_from_slice(&salt);
    salted.truncate(72);
    bcrypt::verify(&salted, hash).unwrap_or(false)
}

/// Password verifications made by this process (a test can see that the dummy path runs).
static VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many passwords this process has verified (argon2 runs).
pub fn password_verifications() -> u64 {
    VERIFICATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Checks a password against the stored hash of an account, or — when there is no such
/// account — against a dummy hash made with the same parameters and then answers `false`,
/// so a wrong password costs the same time whether the user exists or not.
pub fn verify_password_or_dummy(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match hash {
        Some(hash) => verify_password(password, hash),
        None => {
            let dummy = DUMMY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default());
            let _ = verify_password(password, dummy);
            false
        }
    }
}

/// Checks a password against its stored hash: argon2 (ours), or bcrypt (imported).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if needs_rehash(hash) {
        return verify_xyops(password, hash);
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// SHA-256 of a high-entropy secret (API key, session id). These are random 128+ bit
/// values, so a fast hash is safe and keeps per-request authentication cheap.
pub fn hash_secret(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret: 32 lowercase hex characters (128 bits).
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Shows enough of a secret to tell it apart in logs, never the whole thing.
pub fn mask_secret(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xyops_hashes_verify_with_their_salt() {
        // From a real xyOps export: user alice, password "alice-pass-1".
        let stored = xyops_password_hash(
            "$2b$10$.W.WlZSThxpgnk2q/moGMuASb90y7yA4K2fqUg5hGDQtIka5.Fh42",
            "52acbadd36a8a5535cb80abf2756ad2ec6cf698ab82d1879392fbdc05af7eeaf",
        );
        assert!(needs_rehash(&stored));
        assert!(verify_password("alice-pass-1", &stored));
        assert!(!verify_password("alice-pass-2", &stored));
        assert!(!verify_password("alice-pass-1", "xyops-bcrypt:!!:$2b$10$x"));
    }

    #[test]
    fn roles_add_privileges_and_categories() {
        let role = Role {
            id: "ops".into(),
            privileges: Privileges::from_names(["edit_tickets"]),
            categories: vec!["prod".into()],
            ..Default::default()
        };
        let p = Principal::new(
            "bob",
            &Privileges::from_names(["create_tickets"]),
            &[],
            &[role],
        );
        assert!(p.can_create().is_ok());
        assert!(p.can_edit().is_ok());
        assert!(p.can_delete().is_err());
        assert!(p.sees_category("prod"));
        assert!(!p.sees_category("general"));
        assert!(!p.sees_category(""));
        let admin = Principal::system("root");
        assert!(admin.can_delete().is_ok());
        assert!(admin.sees_category("anything"));
    }

    #[test]
    fn passwords_and_secrets() {
        let hash = hash_password("hunter2").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("hunter2", &hash));
        assert!(!verify_password("hunter3", &hash));
        assert!(!verify_password("x", "not a hash"));
        let s = random_secret();
        assert_eq!(s.len(), 32);
        assert_ne!(hash_secret(&s), s);
        assert_eq!(mask_secret(&s).chars().count(), 5);
    }
}
