//! `export_tickets`: every ticket a search matches as CSV (for spreadsheets) or NDJSON (one
//! stored record per line, which `docket import` reads back), streamed page by page so
//! memory stays constant however many tickets match.
//!
//! The first page is read before the reply starts, so a bad query or a search that fails
//! at once is an ordinary JSON error. A later failure (a search that times out, the
//! database gone) ends the stream without its last chunk, so the client sees a broken
//! transfer, never a silently short file.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use docket_core::auth::Principal;
use docket_core::service::EXPORT_PAGE;
use docket_core::{Docket, Error};
use docket_query::Filter;
use serde_json::{Map, Value};

use super::{AppState, Call, Reply};

/// Every field a row may carry, in record order.
pub const EXPORT_FIELDS: [&str; 23] = [
    "id",
    "num",
    "subject",
    "body",
    "type",
    "status",
    "priority",
    "category",
    "server",
    "username",
    "assignees",
    "cc",
    "notify",
    "tags",
    "due",
    "events",
    "files",
    "changes",
    "jobs",
    "created",
    "modified",
    "dedupe_key",
    "occurrences",
];

/// The columns of a CSV export that names none: what a spreadsheet of tickets wants.
const CSV_DEFAULT: [&str; 13] = [
    "id",
    "num",
    "subject",
    "status",
    "priority",
    "type",
    "category",
    "assignees",
    "tags",
    "username",
    "created",
    "modified",
    "due",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

/// The fields asked for (`None`: the whole record, NDJSON only).
fn fields_param(c: &Call, format: Format) -> Result<Option<Vec<String>>, Error> {
    let asked: Vec<String> = match c.params.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(|s| s.trim().to_string()).ok_or_else(|| {
                    Error::Ticket(
                        "Malformed parameter: fields (must be an array of strings)".into(),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Error::Ticket(
                "Malformed parameter: fields (must be an array of field names)".into(),
            ))
        }
    };
    if let Some(bad) = asked.iter().find(|f| !EXPORT_FIELDS.contains(&f.as_str())) {
        return Err(Error::Ticket(format!(
            "Unknown export field: {bad:?}; fields are: {}",
            EXPORT_FIELDS.join(", ")
        )));
    }
    let mut unique = Vec::with_capacity(asked.len());
    for f in asked {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    Ok(match (unique.is_empty(), format) {
        (false, _) => Some(unique),
        (true, Format::Csv) => Some(CSV_DEFAULT.iter().map(|f| f.to_string()).collect()),
        (true, Format::Ndjson) => None,
    })
}

// `export_tickets`: /api/app/export_tickets/v1 — a CSV or NDJSON body, not a JSON reply.
pub async fn export_tickets(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?.clone();
    let query = match c.params.get("query") {
        None | Some(Value::Null) => "*".to_string(),
        Some(Value::String(q)) => q.clone(),
        Some(_) => {
            return Err(Error::Ticket(
                "Malformed parameter: query (must be a string)".into(),
            ))
        }
    };
    let format = match c.params.get("format").and_then(Value::as_str) {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(Error::Ticket(format!(
                "Unknown export format: {other:?}; formats are csv and ndjson"
            )))
        }
    };
    let fields = fields_param(c, format)?;
    let filter = s.docket.compile_query(&query).map_err(Error::Ticket)?;
    let first = s.docket.export_page(&who, &filter, 0, EXPORT_PAGE).await?;
    let rows = Rows {
        docket: s.docket.clone(),
        who,
        filter,
        format,
        fields,
        pending: Some(first),
        after: 0,
        header_sent: false,
        done: false,
    };
    let body =
        futures_util::StreamExt::fuse(futures_util::stream::unfold(rows, |mut r| async move {
            match r.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, Error>(chunk), r)),
                Ok(None) => None,
                Err(e) => {
                    if let Error::Internal(detail) = &e {
                        tracing::error!(error = %detail, "export stopped");
                    }
                    r.done = true;
                    Some((Err(e), r))
                }
            }
        }));
    // Fused (above): the body is polled again after its end (the compression layer does),
    // which a bare `unfold` answers with a panic.
    let (kind, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "tickets.csv"),
        Format::Ndjson => ("application/x-ndjson", "tickets.ndjson"),
    };
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(Error::internal)?,
    );
    Ok(Reply::streamed(response))
}

/// The state of one export between chunks.
struct Rows {
    docket: Docket,
    who: Principal,
    filter: Filter,
    format: Format,
    fields: Option<Vec<String>>,
    /// A page read but not yet written.
    pending: Option<Vec<String>>,
    /// The number of the last ticket written.
    after: i64,
    header_sent: bool,
    /// Set after a failure: the stream ends.
    done: bool,
}

impl Rows {
    /// The next piece of the body: the CSV header, then one page of rows at a time;
    /// `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if self.done {
            return Ok(None);
        }
        if self.format == Format::Csv && !self.header_sent {
            self.header_sent = true;
            let mut out = String::new();
            csv_row(&mut out, self.fields.iter().flatten().map(String::as_str));
            return Ok(Some(Bytes::from(out)));
        }
        let page = match self.pending.take() {
            Some(p) => p,
            None => {
                self.docket
                    .export_page(&self.who, &self.filter, self.after, EXPORT_PAGE)
                    .await?
            }
        };
        if page.is_empty() {
            self.done = true;
            return Ok(None);
        }
        if (page.len() as u64) < EXPORT_PAGE {
            // The last page: no need to ask again.
            self.pending = Some(Vec::new());
        }
        let mut out = String::with_capacity(page.iter().map(|r| r.len() + 1).sum());
        for stored in &page {
            let record: Map<String, Value> = serde_json::from_str(stored)
                .map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))?;
            self.after = record
                .get("num")
                .and_then(Value::as_i64)
                .unwrap_or(self.after);
            match (self.format, &self.fields) {
                (Format::Ndjson, None) => out.push_str(stored),
                (Format::Ndjson, Some(fields)) => {
                    let picked: Map<String, Value> = fields
                        .iter()
                        .filter_map(|f| record.get(f).map(|v| (f.clone(), v.clone())))
                        .collect();
                    out.push_str(&Value::Object(picked).to_string());
                }
                (Format::Csv, fields) => {
                    let cells: Vec<String> = fields
                        .iter()
                        .flatten()
                        .map(|f| csv_cell(f, record.get(f)))
                        .collect();
                    csv_row(&mut out, cells.iter().map(String::as_str));
                    continue;
                }
            }
            out.push('\n');
        }
        Ok(Some(Bytes::from(out)))
    }
}

/// One field as spreadsheet text: dates as UTC RFC 3339 (an unset due date empty), lists
/// of names joined with ", ", other structures as JSON.
fn csv_cell(field: &str, value: Option<&Value>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    match (field, value) {
        ("created" | "modified" | "due", Value::Number(n)) => match n.as_i64() {
            Some(0) | None => String::new(),
            Some(secs) => jiff::Timestamp::from_second(secs)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|_| secs.to_string()),
        },
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// Appends one CSV record (RFC 4180): a cell with a comma, quote or line break is quoted,
/// quotes doubled; a cell a spreadsheet would run as a formula (starting with `=`, `+`,
/// `-`, `@`, tab or carriage return) gets a leading `'`, the usual guard against CSV
/// injection. Records end with CRLF.
fn csv_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded;
        let cell = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            guarded = format!("'{cell}");
            guarded.as_str()
        } else {
            cell
        };
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(cells: &[&str]) -> String {
        let mut out = String::new();
        csv_row(&mut out, cells.iter().copied());
        out
    }

    #[test]
    fn csv_quotes_what_needs_it_and_guards_formulas() {
        assert_eq!(row(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            row(&["x,y", "say \"hi\"", "two\nlines"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(row(&["=1+1", "-x", "@a,b"]), "'=1+1,'-x,\"'@a,b\"\r\n");
    }

    #[test]
    fn csv_cells_are_spreadsheet_text() {
        assert_eq!(csv_cell("due", Some(&json!(0))), "");
        assert_eq!(
            csv_cell("created", Some(&json!(86400))),
            "1970-01-02T00:00:00Z"
        );
        assert_eq!(csv_cell("num", Some(&json!(42))), "42");
        assert_eq!(csv_cell("tags", Some(&json!(["a", "b"]))), "a, b");
        assert_eq!(
            csv_cell("events", Some(&json!([{"id": "e"}]))),
            "[{\"id\":\"e\"}]"
        );
        assert_eq!(csv_cell("dedupe_key", None), "");
    }
}
