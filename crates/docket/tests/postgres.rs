//! Every integration suite again, unchanged, on PostgreSQL: the harness (`common::backend`)
//! sees this target's name and gives each server and CLI call a fresh database of its own on
//! the local PostgreSQL (127.0.0.1:5432, user postgres), dropped when the server goes.
//!
//! `cargo test --test postgres` runs just these; `cargo test` runs both backends.

#![allow(
    clippy::duplicate_mod,
    reason = "each suite brings its own `mod common;`, so the harness is compiled once per suite here"
)]

#[path = "api_access.rs"]
mod api_access;
#[path = "api_admin.rs"]
mod api_admin;
#[path = "api_conventions.rs"]
mod api_conventions;
#[path = "api_feed.rs"]
mod api_feed;
#[path = "api_robustness.rs"]
mod api_robustness;
#[path = "api_tickets.rs"]
mod api_tickets;
#[path = "automation_api.rs"]
mod automation_api;
#[path = "bench_cli.rs"]
mod bench_cli;
#[path = "bounded_work.rs"]
mod bounded_work;
#[path = "cli_admin.rs"]
mod cli_admin;
#[path = "cli_remote.rs"]
mod cli_remote;
#[path = "cli_safety.rs"]
mod cli_safety;
#[path = "docs_examples.rs"]
mod docs_examples;
#[path = "email_in.rs"]
mod email_in;
#[path = "files_api.rs"]
mod files_api;
#[path = "files_big.rs"]
mod files_big;
#[path = "files_s3.rs"]
mod files_s3;
#[path = "internal_notes.rs"]
mod internal_notes;
#[path = "notify_email.rs"]
mod notify_email;
#[path = "notify_restart.rs"]
mod notify_restart;
#[path = "notify_webhooks.rs"]
mod notify_webhooks;
#[path = "ops.rs"]
mod ops;
#[path = "priority_bulk_export.rs"]
mod priority_bulk_export;
#[path = "reindex_cli.rs"]
mod reindex_cli;
#[path = "search_diff.rs"]
mod search_diff;
#[path = "search_errors.rs"]
mod search_errors;
#[path = "search_fresh.rs"]
mod search_fresh;
#[path = "smoke.rs"]
mod smoke;
#[path = "ticket_relations.rs"]
mod ticket_relations;
#[path = "web_pages.rs"]
mod web_pages;
#[path = "xyops_import.rs"]
mod xyops_import;
