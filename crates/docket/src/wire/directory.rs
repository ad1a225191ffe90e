//! Handlers for tags, categories and roles: `get_X` (list), `get_x`, `create_x`,
//! `update_x`, `delete_x`.

use docket_core::service::{DirectoryKind, CATEGORIES, ROLES, TAGS};
use docket_core::Error;
use serde_json::json;

use super::{AppState, Call, Reply};

async fn list(s: &AppState, c: &Call, dir: &DirectoryKind) -> Result<Reply, Error> {
    c.who()?;
    let rows = s.docket.list_directory(dir).await?;
    let length = rows.len();
    Ok(Reply::ok()
        .with("rows", rows)
        .with("list", json!({"length": length})))
}

async fn get(s: &AppState, c: &Call, dir: &DirectoryKind) -> Result<Reply, Error> {
    c.who()?;
    let record = s.docket.get_directory(dir, &c.params).await?;
    Ok(Reply::ok().with(dir.noun(), record))
}

async fn create(s: &AppState, c: &Call, dir: &DirectoryKind) -> Result<Reply, Error> {
    let record = s.docket.create_directory(c.who()?, dir, &c.params).await?;
    Ok(Reply::ok().with(dir.noun(), record))
}

async fn update(s: &AppState, c: &Call, dir: &DirectoryKind) -> Result<Reply, Error> {
    let record = s.docket.update_directory(c.who()?, dir, &c.params).await?;
    Ok(Reply::ok().with(dir.noun(), record))
}

async fn delete(s: &AppState, c: &Call, dir: &DirectoryKind) -> Result<Reply, Error> {
    s.docket.delete_directory(c.who()?, dir, &c.params).await?;
    Ok(Reply::ok())
}

// /api/app/get_tags/v1 ... delete_tag
pub async fn get_tags(s: &AppState, c: &Call) -> Result<Reply, Error> {
    list(s, c, &TAGS).await
}
pub async fn get_tag(s: &AppState, c: &Call) -> Result<Reply, Error> {
    get(s, c, &TAGS).await
}
pub async fn create_tag(s: &AppState, c: &Call) -> Result<Reply, Error> {
    create(s, c, &TAGS).await
}
pub async fn update_tag(s: &AppState, c: &Call) -> Result<Reply, Error> {
    update(s, c, &TAGS).await
}
pub async fn delete_tag(s: &AppState, c: &Call) -> Result<Reply, Error> {
    delete(s, c, &TAGS).await
}
// /api/app/get_categories/v1 ... delete_category
pub async fn get_categories(s: &AppState, c: &Call) -> Result<Reply, Error> {
    list(s, c, &CATEGORIES).await
}
pub async fn get_category(s: &AppState, c: &Call) -> Result<Reply, Error> {
    get(s, c, &CATEGORIES).await
}
pub async fn create_category(s: &AppState, c: &Call) -> Result<Reply, Error> {
    create(s, c, &CATEGORIES).await
}
pub async fn update_category(s: &AppState, c: &Call) -> Result<Reply, Error> {
    update(s, c, &CATEGORIES).await
}
pub async fn delete_category(s: &AppState, c: &Call) -> Result<Reply, Error> {
    delete(s, c, &CATEGORIES).await
}
// /api/app/get_roles/v1 ... delete_role
pub async fn get_roles(s: &AppState, c: &Call) -> Result<Reply, Error> {
    list(s, c, &ROLES).await
}
pub async fn get_role(s: &AppState, c: &Call) -> Result<Reply, Error> {
    get(s, c, &ROLES).await
}
pub async fn create_role(s: &AppState, c: &Call) -> Result<Reply, Error> {
    create(s, c, &ROLES).await
}
pub async fn update_role(s: &AppState, c: &Call) -> Result<Reply, Error> {
    update(s, c, &ROLES).await
}
pub async fn delete_role(s: &AppState, c: &Call) -> Result<Reply, Error> {
    delete(s, c, &ROLES).await
}
