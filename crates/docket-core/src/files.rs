//! Ticket files in the domain: the [`BlobStore`] interface the services write objects
//! through (implemented with `object_store` in the binary), file names and storage paths,
//! and the bookkeeping record every stored object has.
//!
//! Paths are `files/TICKET/USER/RANDOM/CLEAN_NAME`, every segment from `[A-Za-z0-9._-]`
//! and none starting with a dot, so a valid path never needs escaping and can never climb
//! out of the storage root. Anything else a client sends as a path is refused.

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::FileRef;

/// A stream of object bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// What a store knows of an object.
#[derive(Debug, Clone)]
pub struct BlobMeta {
    pub size: u64,
    /// Epoch seconds.
    pub modified: i64,
}

/// An object (or a byte range of it) being read.
pub struct BlobRead {
    pub meta: BlobMeta,
    /// The bytes `body` yields, within `0..meta.size`.
    pub range: Range<u64>,
    pub body: ByteStream,
}

/// One object being written. Nothing is visible under the key before [`finish`] returns;
/// [`abort`] (or dropping it) leaves nothing behind.
///
/// [`finish`]: BlobUpload::finish
/// [`abort`]: BlobUpload::abort
#[async_trait]
pub trait BlobUpload: Send {
    /// Appends a chunk; may wait for earlier chunks to reach the store (back-pressure).
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    async fn finish(self: Box<Self>) -> Result<()>;
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Object storage: local disk or an S3-compatible store.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn start_put(&self, key: &str) -> Result<Box<dyn BlobUpload>>;
    /// `Ok(None)` when there is no such object. `range` must lie inside the object.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<BlobRead>>;
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>>;
    /// Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// A stored object's bookkeeping, kept as a [`RecordKind::File`](crate::store::RecordKind)
/// record (id = file id, lookup = path) for attached and unattached files alike: the
/// sweeper finds expired files through it, downloads find unattached files through it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileRecord {
    #[serde(flatten)]
    pub file: FileRef,
    /// When the sweeper removes the file (epoch seconds). While `pending` it is a short
    /// grace period instead, so an object whose request died half way is collected soon.
    pub expires: i64,
    /// The request that stores the file has not finished yet.
    pub pending: bool,
    /// The file's expiry once the request has finished.
    pub final_expires: i64,
}

/// Marks a [`FileRecord`] (as stored JSON) final for `ticket`: its request finished, so from
/// now on it expires with the file, not with the short pending grace period.
pub fn finalize_record(record: &mut serde_json::Value, ticket: &str) {
    let final_expires = record["final_expires"].as_i64().unwrap_or(0);
    record["expires"] = serde_json::Value::from(final_expires);
    record["pending"] = serde_json::Value::from(false);
    record["ticket"] = serde_json::Value::from(ticket);
}

/// The longest file name kept (in bytes, after cleaning).
pub const MAX_NAME_BYTES: usize = 200;

/// The display name of an upload: the last path component (either slash), without control
/// characters, trimmed, at most [`MAX_NAME_BYTES`]; `file` when nothing is left.
pub fn display_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let name = truncate_keeping_extension(cleaned, MAX_NAME_BYTES);
    if name.is_empty() {
        "file".to_string()
    } else {
        name
    }
}

/// The storage name of an upload: the display name reduced to `[A-Za-z0-9._-]` (anything
/// else becomes `_`, runs collapsed), not starting with a dot.
pub fn storage_name(raw: &str) -> String {
    clean_segment(&display_name(raw), "file")
}

/// Any text as one safe path segment.
pub fn clean_segment(raw: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let c = if keep { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches(['.', '_']).to_string();
    let trimmed = truncate_keeping_extension(&trimmed, MAX_NAME_BYTES);
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        fallback.to_string()
    } else {
        trimmed
    }
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut stem_end = max - ext.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{}", &name[..stem_end], ext)
}

/// `files/TICKET/USER/RANDOM/NAME` for a new upload.
pub fn new_path(ticket: &str, username: &str, random: &str, raw_name: &str) -> String {
    format!(
        "files/{}/{}/{}/{}",
        clean_segment(ticket, "ticket"),
        clean_segment(username, "user"),
        clean_segment(random, "x"),
        storage_name(raw_name)
    )
}

/// Checks a client-sent file path (with or without its leading `files/`) and returns it in
/// its canonical `files/…` form with the ticket id. Anything that could escape or is not
/// exactly a path this server hands out is refused: `..`, `.` segments, absolute paths,
/// backslashes, percent signs, NUL and other control characters, empty segments.
pub fn canonical_path(raw: &str) -> std::result::Result<(String, String), String> {
    if raw.is_empty() {
        return Err("Missing file path".into());
    }
    if raw.len() > 1024 {
        return Err("File path is too long".into());
    }
    if raw.starts_with('/') {
        return Err("File path must be relative (no leading slash)".into());
    }
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_control() || matches!(c, '\\' | '%'))
    {
        return Err(format!(
            "File path contains a character that is not allowed: {c:?}"
        ));
    }
    let rest = raw.strip_prefix("files/").unwrap_or(raw);
    let segments: Vec<&str> = rest.split('/').collect();
    for s in &segments {
        if s.is_empty() || *s == "." || *s == ".." {
            return Err("File path has an empty, '.' or '..' segment".into());
        }
        if s.starts_with('.')
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "File path segment {s:?} is not one this server creates"
            ));
        }
    }
    if segments.len() != 4 {
        return Err("File path must look like files/TICKET/USER/ID/NAME".into());
    }
    Ok((format!("files/{rest}"), segments[0].to_string()))
}

/// A duration text such as `"5 years"`, `"30 days"`, `"2 seconds"` or a number of seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    crate::due::parse_relative(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(
            display_name("C:\\Users\\me\\report final.pdf"),
            "report final.pdf"
        );
        assert_eq!(display_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(display_name(".."), "file");
        assert_eq!(display_name(".htaccess"), "htaccess");
        assert_eq!(storage_name("report final (1).pdf"), "report_final_1_.pdf");
        assert_eq!(storage_name("café.png"), "caf_.png");
        assert_eq!(storage_name("..."), "file");
        let long = format!("{}.txt", "x".repeat(500));
        let s = storage_name(&long);
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".txt"), "{s}");
        let d = display_name(&format!("{}.txt", "é".repeat(300)));
        assert!(d.len() <= MAX_NAME_BYTES && d.ends_with(".txt"));
    }

    #[test]
    fn paths_are_checked() {
        let ok = canonical_path("files/t1/admin/abc/a.txt").unwrap();
        assert_eq!(
            ok,
            ("files/t1/admin/abc/a.txt".to_string(), "t1".to_string())
        );
        assert_eq!(
            canonical_path("t1/admin/abc/a.txt").unwrap().0,
            "files/t1/admin/abc/a.txt"
        );
        for bad in [
            "",
            "/etc/passwd",
            "files/../../etc/passwd",
            "files/t1/admin/abc/..",
            "files/t1/admin/%2e%2e/a",
            "files/t1/admin/abc/a\u{0}.txt",
            "files\\t1\\admin\\abc\\a.txt",
            "files/t1//abc/a.txt",
            "files/t1/admin/abc/.hidden",
            "files/t1/admin/a.txt",
            "files/t1/admin/abc/d/a.txt",
            "files/t1/admin/abc/a b.txt",
        ] {
            assert!(canonical_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5 years"), Some(5 * 365 * 86_400));
        assert_eq!(parse_duration("2 seconds"), Some(2));
        assert_eq!(parse_duration("60"), Some(60));
        assert_eq!(parse_duration("soon"), None);
    }
}
