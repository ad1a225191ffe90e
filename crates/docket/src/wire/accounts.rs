//! Handlers for sessions (login, logout, resume), user administration and API keys.

use docket_core::Error;
use serde_json::{json, Value};

use super::{AppState, Auth, Call, Reply};

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(Error::internal)
}

fn session_cookie(value: &str, max_age: i64) -> String {
    format!("session_id={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

// `login`: /api/user/login — {username, password} → {session_id, csrf_token, user} + cookie
pub async fn login(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let username = docket_core::service::required_str(&c.params, "username", Error::Session)?;
    let password = docket_core::service::required_str(&c.params, "password", Error::Session)?;
    let login = s.docket.login(&username, &password, c.peer).await?;
    let mut reply = Reply::ok()
        .with("session_id", login.session_id.clone())
        .with("csrf_token", login.csrf_token)
        .with("user", to_json(&login.user)?);
    reply.set_cookie = Some(session_cookie(&login.session_id, 30 * 86_400));
    Ok(reply)
}

// `logout`: /api/user/logout
pub async fn logout(s: &AppState, c: &Call) -> Result<Reply, Error> {
    if let Auth::Session { session_id, .. } = c.auth()? {
        s.docket.logout(session_id).await?;
    }
    let mut reply = Reply::ok();
    reply.set_cookie = Some(session_cookie("", 0));
    Ok(reply)
}

// `resume_session`: /api/user/resume_session — the user behind a session (and its CSRF token).
pub async fn resume_session(_s: &AppState, c: &Call) -> Result<Reply, Error> {
    match c.auth()? {
        Auth::Session { user, session, .. } => Ok(Reply::ok()
            .with("user", to_json(user)?)
            .with("csrf_token", session.csrf_token.clone())
            .with("session", docket_core::Docket::session_value(session))),
        Auth::ApiKey(_) => Err(Error::Session(
            "resume_session needs a user session, not an API key".into(),
        )),
    }
}

// `admin_create`: /api/user/admin_create
pub async fn admin_create(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let user = s.docket.create_user(&can, &c.params).await?;
    Ok(Reply::ok().with("user", to_json(&user)?))
}

// `admin_update`: /api/user/admin_update
pub async fn admin_update(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let user = s.docket.update_user(&can, &c.params).await?;
    Ok(Reply::ok().with("user", to_json(&user)?))
}

// `admin_delete`: /api/user/admin_delete
pub async fn admin_delete(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    s.docket.delete_user(&can, &c.params).await?;
    Ok(Reply::ok())
}

// `admin_get_user`: /api/user/admin_get_user
pub async fn admin_get_user(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let user = s.docket.get_user(&can, &c.params).await?;
    Ok(Reply::ok().with("user", to_json(&user)?))
}

// `admin_get_users`: /api/user/admin_get_users
pub async fn admin_get_users(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let users = s.docket.get_users(&can).await?;
    let length = users.len();
    Ok(Reply::ok()
        .with("rows", to_json(&users)?)
        .with("list", json!({"length": length})))
}

// `get_api_keys`: /api/app/get_api_keys/v1
pub async fn get_api_keys(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let keys = s.docket.get_api_keys(&can).await?;
    let length = keys.len();
    Ok(Reply::ok()
        .with("rows", to_json(&keys)?)
        .with("list", json!({"length": length})))
}

// `get_api_key`: /api/app/get_api_key/v1
pub async fn get_api_key(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let key = s.docket.get_api_key(&can, &c.params).await?;
    Ok(Reply::ok().with("api_key", to_json(&key)?))
}

// `create_api_key`: /api/app/create_api_key/v1 — `plain_key` is in this reply only.
pub async fn create_api_key(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let (key, plain) = s.docket.create_api_key(&can, &c.params).await?;
    Ok(Reply::ok()
        .with("api_key", to_json(&key)?)
        .with("plain_key", plain))
}

// `update_api_key`: /api/app/update_api_key/v1
pub async fn update_api_key(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    let key = s.docket.update_api_key(&can, &c.params).await?;
    Ok(Reply::ok().with("api_key", to_json(&key)?))
}

// `delete_api_key`: /api/app/delete_api_key/v1
pub async fn delete_api_key(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_admin()?;
    s.docket.delete_api_key(&can, &c.params).await?;
    Ok(Reply::ok())
}
