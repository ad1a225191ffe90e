//! Administration: user accounts, API keys, and the defaults of a fresh server.

use serde_json::{json, Map, Value};

use super::{flag, int_param, required_str, set_if, string_list, to_value, Docket};
use crate::auth::{hash_password, hash_secret, mask_secret, random_secret, CanAdmin, PRIVILEGES};
use crate::error::{Error, Result};
use crate::ids::{is_valid_id, new_id, IdKind};
use crate::model::{ApiKey, Category, Privileges, Role, Tag, User};
use crate::store::RecordKind;
use crate::ticket_input::{check_email, check_username};

const USER_FIELDS: [&str; 8] = [
    "username",
    "password",
    "full_name",
    "email",
    "active",
    "privileges",
    "roles",
    "categories",
];
const KEY_FIELDS: [&str; 11] = [
    "id",
    "key",
    "title",
    "description",
    "username",
    "active",
    "expires",
    "max_per_sec",
    "privileges",
    "roles",
    "categories",
];
const IGNORED: [&str; 5] = ["api_key", "session_id", "created", "modified", "mask"];

fn check_fields(
    params: &Map<String, Value>,
    allowed: &[&str],
    code: fn(String) -> Error,
) -> Result<()> {
    for key in params.keys() {
        if !allowed.contains(&key.as_str()) && !IGNORED.contains(&key.as_str()) {
            return Err(code(format!(
                "Unknown parameter: {key:?}; allowed: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn opt_string(
    params: &Map<String, Value>,
    name: &str,
    max: usize,
    code: fn(String) -> Error,
) -> Result<Option<String>> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(code(format!(
            "Malformed parameter: {name} (longer than {max} characters)"
        ))),
        Some(_) => Err(code(format!(
            "Malformed parameter: {name} (must be a string)"
        ))),
    }
}

/// The `privileges` parameter in any accepted form (see [`Privileges::parse`]);
/// `None` when it was not sent.
pub(super) fn privileges_param(
    params: &Map<String, Value>,
    code: fn(String) -> Error,
) -> Result<Option<Privileges>> {
    match params.get("privileges") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => Privileges::parse(value, "privileges")
            .map(Some)
            .map_err(code),
    }
}

impl Docket {
    /// Privileges must be known names; roles and categories must exist.
    async fn check_grants(
        &self,
        privileges: &Option<Privileges>,
        roles: &Option<Vec<String>>,
        categories: &Option<Vec<String>>,
        code: fn(String) -> Error,
    ) -> Result<()> {
        for p in privileges.iter().flat_map(Privileges::iter) {
            if !PRIVILEGES.contains(&p) {
                return Err(code(format!(
                    "Unknown privilege: {p:?}; privileges are: {}",
                    PRIVILEGES.join(", ")
                )));
            }
        }
        for r in roles.iter().flatten() {
            if self.load::<Role>(RecordKind::Role, r).await?.is_none() {
                return Err(code(format!("Unknown role: {r:?}")));
            }
        }
        for c in categories.iter().flatten() {
            if self
                .load::<Category>(RecordKind::Category, c)
                .await?
                .is_none()
            {
                return Err(code(format!("Unknown category: {c:?}")));
            }
        }
        Ok(())
    }

    /// `admin_create` (also used by the CLI with a system principal).
    pub async fn create_user(&self, _can: &CanAdmin, params: &Map<String, Value>) -> Result<User> {
        check_fields(params, &USER_FIELDS, Error::User)?;
        let username = required_str(params, "username", Error::User)?.to_string();
        check_username(&username).map_err(Error::User)?;
        let password = required_str(params, "password", Error::User)?.to_string();
        if password.len() > 1024 {
            return Err(Error::User(
                "Malformed parameter: password (longer than 1024 bytes)".into(),
            ));
        }
        let email = opt_string(params, "email", 254, Error::User)?.unwrap_or_default();
        if !email.is_empty() {
            check_email(&email).map_err(Error::User)?;
        }
        let privileges = privileges_param(params, Error::User)?;
        let roles = string_list(params, "roles", Error::User)?;
        let categories = string_list(params, "categories", Error::User)?;
        self.check_grants(&privileges, &roles, &categories, Error::User)
            .await?;
        let now = self.now();
        let user = User {
            full_name: opt_string(params, "full_name", 200, Error::User)?
                .unwrap_or_else(|| username.clone()),
            username: username.clone(),
            email,
            password: hash_password_blocking(password).await?,
            active: params.get("active").is_none() || flag(params, "active")?,
            privileges: privileges
                .unwrap_or_else(|| Privileges::from_names(["create_tickets", "edit_tickets"])),
            roles: roles.unwrap_or_default(),
            categories: categories.unwrap_or_default(),
            created: now,
            modified: now,
        };
        let inserted = self
            .store
            .insert_record(RecordKind::User, &username, None, &to_value(&user)?)
            .await;
        self.record_written(RecordKind::User);
        if !inserted? {
            return Err(Error::User(format!("User {username:?} already exists")));
        }
        Ok(user.public())
    }

    /// `admin_update`: a sparse update; `password` sets a new one.
    pub async fn update_user(&self, _can: &CanAdmin, params: &Map<String, Value>) -> Result<User> {
        check_fields(params, &USER_FIELDS, Error::User)?;
        let username = required_str(params, "username", Error::User)?.to_string();
        let email = opt_string(params, "email", 254, Error::User)?;
        if let Some(e) = email.as_deref().filter(|e| !e.is_empty()) {
            check_email(e).map_err(Error::User)?;
        }
        let full_name = opt_string(params, "full_name", 200, Error::User)?;
        let privileges = privileges_param(params, Error::User)?;
        let roles = string_list(params, "roles", Error::User)?;
        let categories = string_list(params, "categories", Error::User)?;
        self.check_grants(&privileges, &roles, &categories, Error::User)
            .await?;
        let active = match params.get("active") {
            Some(_) => Some(flag(params, "active")?),
            None => None,
        };
        let password = match params.get("password") {
            Some(_) => {
                let pw = required_str(params, "password", Error::User)?.to_string();
                Some(hash_password_blocking(pw).await?)
            }
            None => None,
        };
        let now = self.now();
        let updated = self
            .store
            .update_record(
                RecordKind::User,
                &username,
                Box::new(move |v: &mut Value| {
                    let mut user: User =
                        serde_json::from_value(v.clone()).map_err(Error::internal)?;
                    set_if(&mut user.email, email);
                    set_if(&mut user.full_name, full_name);
                    set_if(&mut user.privileges, privileges);
                    set_if(&mut user.roles, roles);
                    set_if(&mut user.categories, categories);
                    set_if(&mut user.active, active);
                    set_if(&mut user.password, password);
                    user.modified = now;
                    *v = to_value(&user)?;
                    Ok(())
                }),
            )
            .await;
        self.record_written(RecordKind::User);
        let updated =
            updated?.ok_or_else(|| Error::NotFound(format!("User not found: {username}")))?;
        let user: User = serde_json::from_value(updated).map_err(Error::internal)?;
        Ok(user.public())
    }

    pub async fn delete_user(&self, _can: &CanAdmin, params: &Map<String, Value>) -> Result<()> {
        let username = required_str(params, "username", Error::User)?;
        let deleted = self.store.delete_record(RecordKind::User, &username).await;
        self.record_written(RecordKind::User);
        if !deleted? {
            return Err(Error::NotFound(format!("User not found: {username}")));
        }
        Ok(())
    }

    pub async fn get_user(&self, _can: &CanAdmin, params: &Map<String, Value>) -> Result<User> {
        let username = required_str(params, "username", Error::User)?;
        self.load::<User>(RecordKind::User, &username)
            .await?
            .map(|u| u.public())
            .ok_or_else(|| Error::NotFound(format!("User not found: {username}")))
    }

    pub async fn get_users(&self, _can: &CanAdmin) -> Result<Vec<User>> {
        Ok(self
            .load_all::<User>(RecordKind::User)
            .await?
            .iter()
            .map(User::public)
            .collect())
    }

    /// `create_api_key`: returns the record and the plain key, which is never shown again.
    pub async fn create_api_key(
        &self,
        _can: &CanAdmin,
        params: &Map<String, Value>,
    ) -> Result<(ApiKey, String)> {
        check_fields(params, &KEY_FIELDS, Error::Api)?;
        let title = required_str(params, "title", Error::Api)?
            .trim()
            .to_string();
        if title.chars().count() > 200 {
            return Err(Error::Api(
                "Malformed parameter: title (longer than 200 characters)".into(),
            ));
        }
        let id = match params.get("id") {
            Some(Value::String(id)) if is_valid_id(id) => id.clone(),
            Some(_) => {
                return Err(Error::Api(
                    "Malformed parameter: id (lowercase letters, digits, underscores)".into(),
                ))
            }
            None => new_id(IdKind::ApiKey),
        };
        let plain = match params.get("key") {
            Some(Value::String(k)) if k.len() >= 16 && k.len() <= 256 && k.bytes().all(|b| b.is_ascii_graphic()) => k.clone(),
            Some(_) => return Err(Error::Api("Malformed parameter: key (16 to 256 printable characters; omit it to have one generated)".into())),
            None => random_secret(),
        };
        let username = opt_string(params, "username", 64, Error::Api)?.filter(|u| !u.is_empty());
        if let Some(u) = &username {
            check_username(u).map_err(Error::Api)?;
        }
        let privileges = privileges_param(params, Error::Api)?;
        let roles = string_list(params, "roles", Error::Api)?;
        let categories = string_list(params, "categories", Error::Api)?;
        self.check_grants(&privileges, &roles, &categories, Error::Api)
            .await?;
        let now = self.now();
        let key = ApiKey {
            id: id.clone(),
            key: hash_secret(&plain),
            mask: mask_secret(&plain),
            title,
            description: opt_string(params, "description", 2000, Error::Api)?.unwrap_or_default(),
            username: username.unwrap_or_else(|| id.clone()),
            active: params.get("active").is_none() || flag(params, "active")?,
            expires: int_param(params, "expires", 0, 0, i64::MAX)?,
            max_per_sec: int_param(params, "max_per_sec", 0, 0, 1_000_000)? as u32,
            privileges: privileges.unwrap_or_default(),
            roles: roles.unwrap_or_default(),
            categories: categories.unwrap_or_default(),
            created: now,
            modified: now,
        };
        let inserted = self
            .store
            .insert_record(RecordKind::ApiKey, &id, Some(&key.key), &to_value(&key)?)
            .await;
        self.record_written(RecordKind::ApiKey);
        if !inserted? {
            return Err(Error::Api(format!(
                "An API key with id {id:?} (or the same key) already exists"
            )));
        }
        Ok((key.public(), plain))
    }

    pub async fn update_api_key(
        &self,
        _can: &CanAdmin,
        params: &Map<String, Value>,
    ) -> Result<ApiKey> {
        check_fields(params, &KEY_FIELDS, Error::Api)?;
        if params.contains_key("key") {
            return Err(Error::Api(
                "A key's secret cannot be changed; create a new key instead".into(),
            ));
        }
        let id = required_str(params, "id", Error::Api)?.to_string();
        let title = opt_string(params, "title", 200, Error::Api)?;
        let description = opt_string(params, "description", 2000, Error::Api)?;
        let username = opt_string(params, "username", 64, Error::Api)?;
        if let Some(u) = username.as_deref().filter(|u| !u.is_empty()) {
            check_username(u).map_err(Error::Api)?;
        }
        let privileges = privileges_param(params, Error::Api)?;
        let roles = string_list(params, "roles", Error::Api)?;
        let categories = string_list(params, "categories", Error::Api)?;
        self.check_grants(&privileges, &roles, &categories, Error::Api)
            .await?;
        let active = match params.get("active") {
            Some(_) => Some(flag(params, "active")?),
            None => None,
        };
        let expires = match params.get("expires") {
            Some(_) => Some(int_param(params, "expires", 0, 0, i64::MAX)?),
            None => None,
        };
        let max_per_sec = match params.get("max_per_sec") {
            Some(_) => Some(int_param(params, "max_per_sec", 0, 0, 1_000_000)? as u32),
            None => None,
        };
        let now = self.now();
        let updated = self
            .store
            .update_record(
                RecordKind::ApiKey,
                &id,
                Box::new(move |v: &mut Value| {
                    let mut k: ApiKey =
                        serde_json::from_value(v.clone()).map_err(Error::internal)?;
                    set_if(&mut k.title, title);
                    set_if(&mut k.description, description);
                    if let Some(x) = username {
                        k.username = if x.is_empty() { k.id.clone() } else { x };
                    }
                    set_if(&mut k.privileges, privileges);
                    set_if(&mut k.roles, roles);
                    set_if(&mut k.categories, categories);
                    set_if(&mut k.active, active);
                    set_if(&mut k.expires, expires);
                    set_if(&mut k.max_per_sec, max_per_sec);
                    k.modified = now;
                    *v = to_value(&k)?;
                    Ok(())
                }),
            )
            .await;
        self.record_written(RecordKind::ApiKey);
        let updated =
            updated?.ok_or_else(|| Error::NotFound(format!("API key not found: {id}")))?;
        let key: ApiKey = serde_json::from_value(updated).map_err(Error::internal)?;
        Ok(key.public())
    }

    pub async fn get_api_key(
        &self,
        _can: &CanAdmin,
        params: &Map<String, Value>,
    ) -> Result<ApiKey> {
        let id = required_str(params, "id", Error::Api)?;
        self.load::<ApiKey>(RecordKind::ApiKey, &id)
            .await?
            .map(|k| k.public())
            .ok_or_else(|| Error::NotFound(format!("API key not found: {id}")))
    }

    pub async fn get_api_keys(&self, _can: &CanAdmin) -> Result<Vec<ApiKey>> {
        Ok(self
            .load_all::<ApiKey>(RecordKind::ApiKey)
            .await?
            .iter()
            .map(ApiKey::public)
            .collect())
    }

    pub async fn delete_api_key(&self, _can: &CanAdmin, params: &Map<String, Value>) -> Result<()> {
        let id = required_str(params, "id", Error::Api)?;
        let deleted = self.store.delete_record(RecordKind::ApiKey, &id).await;
        self.record_written(RecordKind::ApiKey);
        if !deleted? {
            return Err(Error::NotFound(format!("API key not found: {id}")));
        }
        Ok(())
    }

    /// Creates the defaults of a fresh server once: tags `important` and `flag`, category
    /// `general`, and the `admin` user. Returns the admin password when it was generated.
    pub async fn bootstrap(&self, admin_password: Option<String>) -> Result<Option<String>> {
        let now = self.now();
        let marker = json!({"created": now});
        if !self
            .store
            .insert_record(RecordKind::Meta, "initialized", None, &marker)
            .await?
        {
            return Ok(None);
        }
        for (id, title, icon) in [
            ("important", "Important", "alert-decagram"),
            ("flag", "Flag", "flag"),
        ] {
            let tag = Tag {
                id: id.into(),
                title: title.into(),
                icon: icon.into(),
                username: "admin".into(),
                created: now,
                modified: now,
                ..Default::default()
            };
            self.store
                .insert_record(RecordKind::Tag, id, None, &to_value(&tag)?)
                .await?;
        }
        let general = Category {
            id: "general".into(),
            title: "General".into(),
            username: "admin".into(),
            created: now,
            modified: now,
            ..Default::default()
        };
        self.store
            .insert_record(RecordKind::Category, "general", None, &to_value(&general)?)
            .await?;
        let generated = admin_password.is_none();
        let password = admin_password.unwrap_or_else(random_secret);
        let mut params = Map::new();
        params.insert("username".into(), json!("admin"));
        params.insert("password".into(), json!(password));
        params.insert("full_name".into(), json!("Administrator"));
        params.insert("privileges".into(), json!({"admin": true}));
        let can = crate::auth::Principal::system("admin").can_admin()?;
        // An admin may exist already (an xyOps import brings its own): keep it.
        let created = match self.create_user(&can, &params).await {
            Ok(_) => true,
            Err(Error::User(_)) => false,
            Err(e) => return Err(e),
        };
        Ok((generated && created).then_some(password))
    }
}

async fn hash_password_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::internal)?
}
