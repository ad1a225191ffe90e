//! Docket's domain layer: ticket records, their validation and history rules, privileges,
//! and the services that apply them through the [`store::Store`] trait.
//!
//! No HTTP and no SQL here: the wire layer (the `docket` binary) calls the services, and the
//! store crates implement [`store::Store`].

pub mod auth;
pub mod compact_json;
pub mod due;
pub mod email_in;
pub mod error;
pub mod feed;
pub mod files;
pub mod history;
pub mod ids;
pub mod index_version;
pub mod kernel;
pub mod model;
pub mod notify;
pub mod privileges;
pub mod relations;
pub mod report;
pub mod rules;
pub mod sanitize;
pub mod search_doc;
pub mod service;
pub mod store;
pub mod ticket_input;

pub use error::{Error, Result};
pub use service::Docket;
