//! Ticket files: storing uploads, attaching them to tickets, deleting them, finding them
//! for downloads, and the expiry sweeper.
//!
//! Order of writes (DESIGN.md: object first, then metadata): a pending bookkeeping record
//! (short grace expiry) → the object → the ticket's `files` list (one store transaction) →
//! the record made final. A request that fails anywhere deletes its objects and records;
//! one that dies with the process leaves pending records the sweeper collects after the
//! grace period, so no object is ever stored untracked for long.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use serde_json::{Map, Value};

use super::{required_str, Docket};
use crate::auth::{CanEdit, Principal};
use crate::error::{Error, Result};
use crate::files::{canonical_path, display_name, new_path, BlobRead, BlobStore, FileRecord};
use crate::ids::{new_id, IdKind};
use crate::model::{FileRef, Ticket};
use crate::store::RecordKind;

/// How long a pending record protects its object before the sweeper may collect it.
pub const PENDING_GRACE_SECS: i64 = 24 * 3600;

/// Upload limits and expiry, from the `files` config section.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub max_file_size: u64,
    pub max_files: usize,
    pub max_request_size: u64,
    /// Seconds a file lives.
    pub expiration: i64,
}

/// Why storing one upload failed.
#[derive(Debug)]
pub struct UploadFailure {
    pub error: Error,
    /// Over a size limit: the wire answers 413.
    pub too_large: bool,
}

impl From<Error> for UploadFailure {
    fn from(error: Error) -> Self {
        UploadFailure {
            error,
            too_large: false,
        }
    }
}

/// A file found for a download, after the access check.
#[derive(Debug, Clone)]
pub struct Download {
    pub file: FileRef,
}

/// The file service. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    pub docket: Docket,
    pub blobs: Arc<dyn BlobStore>,
    pub settings: Arc<FileSettings>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Ticket not found: {id}"))
}

fn file_not_found(path: &str) -> Error {
    Error::NotFound(format!("File not found: {path}"))
}

impl Files {
    pub fn new(docket: Docket, blobs: Arc<dyn BlobStore>, settings: FileSettings) -> Files {
        Files {
            docket,
            blobs,
            settings: Arc::new(settings),
        }
    }

    /// Checks that `who` may add files to ticket `id`. With `must_exist` false a ticket
    /// that does not exist yet is fine (body-editor uploads for a ticket being written).
    pub async fn check_target(&self, who: &Principal, id: &str, must_exist: bool) -> Result<()> {
        if !crate::ids::is_valid_id(id) {
            return Err(Error::File(format!(
                "Malformed parameter: ticket ({id:?} is not a ticket id)"
            )));
        }
        match self.docket.store.ticket_by_id(id).await? {
            Some(t) if who.sees(&t) => Ok(()),
            Some(_) => Err(not_found(id)),
            None if must_exist => Err(not_found(id)),
            None if who.categories.is_some() => Err(not_found(id)),
            None => Ok(()),
        }
    }

    /// Streams one upload into storage under a new path of ticket `ticket`. `media_type`
    /// gets the cleaned name and the first bytes. On failure nothing is left stored.
    pub async fn store<S>(
        &self,
        ticket: &str,
        username: &str,
        raw_name: &str,
        body: &mut S,
        media_type: &(dyn Fn(&str, &[u8]) -> String + Sync),
    ) -> std::result::Result<FileRef, UploadFailure>
    where
        S: Stream<Item = std::result::Result<Bytes, UploadFailure>> + Unpin + Send,
    {
        let now = self.docket.now();
        let id = new_id(IdKind::File);
        let random = new_id(IdKind::File);
        let filename = display_name(raw_name);
        let path = new_path(ticket, username, &random[1..], raw_name);
        let mut record = FileRecord {
            file: FileRef {
                id: id.clone(),
                date: now,
                filename: filename.clone(),
                path: path.clone(),
                size: 0,
                username: username.to_string(),
                ticket: ticket.to_string(),
                media_type: String::new(),
            },
            expires: now + PENDING_GRACE_SECS,
            pending: true,
            final_expires: now.saturating_add(self.settings.expiration),
        };
        let value = serde_json::to_value(&record).map_err(Error::internal)?;
        if !self
            .docket
            .store
            .insert_record(RecordKind::File, &id, Some(&path), &value)
            .await?
        {
            return Err(Error::internal("file id collision").into());
        }
        match self.write_object(&path, &filename, body, media_type).await {
            Ok((size, kind)) => {
                record.file.size = size;
                record.file.media_type = kind;
                let (size, kind) = (record.file.size, record.file.media_type.clone());
                let update = self
                    .docket
                    .store
                    .update_record(
                        RecordKind::File,
                        &id,
                        Box::new(move |v: &mut Value| {
                            v["size"] = Value::from(size);
                            v["type"] = Value::from(kind);
                            Ok(())
                        }),
                    )
                    .await;
                if let Err(e) = update {
                    self.discard(std::slice::from_ref(&record.file)).await;
                    return Err(e.into());
                }
                Ok(record.file)
            }
            Err(failure) => {
                if let Err(e) = self.docket.store.delete_record(RecordKind::File, &id).await {
                    tracing::warn!(error = %e, %path, "could not delete the record of a failed upload; the sweeper will");
                }
                Err(failure)
            }
        }
    }

    async fn write_object<S>(
        &self,
        path: &str,
        filename: &str,
        body: &mut S,
        media_type: &(dyn Fn(&str, &[u8]) -> String + Sync),
    ) -> std::result::Result<(u64, String), UploadFailure>
    where
        S: Stream<Item = std::result::Result<Bytes, UploadFailure>> + Unpin + Send,
    {
        let max = self.settings.max_file_size;
        let mut upload = self.blobs.start_put(path).await?;
        let mut size: u64 = 0;
        let mut kind: Option<String> = None;
        let result: std::result::Result<(), UploadFailure> = async {
            while let Some(chunk) = next(body).await {
                let chunk = chunk?;
                if chunk.is_empty() {
                    continue;
                }
                size += chunk.len() as u64;
                if size > max {
                    return Err(UploadFailure {
                        error: Error::File(format!(
                            "File {filename:?} is larger than the limit of {max} bytes (files.max_file_size)"
                        )),
                        too_large: true,
                    });
                }
                if kind.is_none() {
                    kind = Some(media_type(filename, &chunk));
                }
                upload.write(chunk).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                upload.finish().await?;
                Ok((size, kind.unwrap_or_else(|| media_type(filename, &[]))))
            }
            Err(failure) => {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, path, "aborting an upload failed");
                }
                // Belt and braces: a store that completed anyway must not keep the object.
                let _ = self.blobs.delete(path).await;
                Err(failure)
            }
        }
    }

    /// Deletes stored objects and their records (a failed request's cleanup). Failures are
    /// logged; a record left behind lets the sweeper finish the job.
    pub async fn discard(&self, files: &[FileRef]) {
        for f in files {
            match self.blobs.delete(&f.path).await {
                Ok(()) => {
                    if let Err(e) = self
                        .docket
                        .store
                        .delete_record(RecordKind::File, &f.id)
                        .await
                    {
                        tracing::warn!(error = %e, path = %f.path, "could not delete a file record");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, path = %f.path, "could not delete an object; the sweeper will retry")
                }
            }
        }
    }

    /// Appends stored files to a ticket's `files` in one transaction.
    pub async fn attach(
        &self,
        who: &Principal,
        ticket: &str,
        files: Vec<FileRef>,
    ) -> Result<Ticket> {
        let who2 = who.clone();
        let id2 = ticket.to_string();
        let now = self.docket.now();
        let ns = self.docket.notify.clone();
        self.docket
            .store
            .update_ticket_out(
                ticket,
                Box::new(move |t: &mut Ticket| {
                    if !who2.sees(t) {
                        return Err(not_found(&id2));
                    }
                    let before = t.clone();
                    for mut f in files {
                        f.ticket = t.id.clone();
                        t.files.push(f);
                    }
                    t.modified = now;
                    Ok(crate::notify::on_change(
                        &ns,
                        &before,
                        t,
                        &who2.username,
                        crate::notify::Cause::FileAdded,
                        now,
                    ))
                }),
            )
            .await?
            .ok_or_else(|| not_found(ticket))
    }

    /// Marks the records of a finished request final: from now on they expire with the file.
    /// The ticket id is set too (a create may have been absorbed by another ticket).
    pub async fn finalize(&self, files: &[FileRef], ticket: &str) -> Result<()> {
        for f in files {
            let ticket = ticket.to_string();
            self.docket
                .store
                .update_record(
                    RecordKind::File,
                    &f.id,
                    Box::new(move |v: &mut Value| {
                        crate::files::finalize_record(v, &ticket);
                        Ok(())
                    }),
                )
                .await?;
        }
        Ok(())
    }

    /// `delete_ticket_file`: `id` + `path` → the ticket's remaining files.
    pub async fn delete_file(
        &self,
        who: &Principal,
        _can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<Vec<FileRef>> {
        let id = required_str(params, "id", Error::File)?;
        let raw = required_str(params, "path", Error::File)?;
        let (path, _) = canonical_path(&raw)
            .map_err(|why| Error::File(format!("Malformed parameter: path ({why})")))?;
        let who2 = who.clone();
        let (id2, path2) = (id.clone(), path.clone());
        let now = self.docket.now();
        let removed: Arc<std::sync::Mutex<Option<FileRef>>> = Arc::default();
        let slot = removed.clone();
        let ticket = self
            .docket
            .store
            .update_ticket(
                &id,
                Box::new(move |t: &mut Ticket| {
                    if !who2.sees(t) {
                        return Err(not_found(&id2));
                    }
                    let Some(i) = t.files.iter().position(|f| f.path == path2) else {
                        return Err(file_not_found(&path2));
                    };
                    let f = t.files.remove(i);
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(f);
                    }
                    t.modified = now;
                    Ok(())
                }),
            )
            .await?
            .ok_or_else(|| not_found(&id))?;
        let gone = removed.lock().ok().and_then(|mut s| s.take());
        if let Some(f) = gone {
            self.remove_object(&f).await;
        }
        Ok(ticket.files)
    }

    /// Removes an object and its record; on a storage failure the record is made due so the
    /// sweeper retries.
    async fn remove_object(&self, f: &FileRef) {
        let store = &self.docket.store;
        match self.blobs.delete(&f.path).await {
            Ok(()) => {
                let by_path = store
                    .find_record(RecordKind::File, &f.path)
                    .await
                    .ok()
                    .flatten();
                let id = by_path
                    .as_ref()
                    .and_then(|v| v["id"].as_str())
                    .unwrap_or(&f.id)
                    .to_string();
                if let Err(e) = store.delete_record(RecordKind::File, &id).await {
                    tracing::warn!(error = %e, path = %f.path, "could not delete a file record");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %f.path, "could not delete an object; the sweeper will retry");
                let _ = store
                    .update_record(
                        RecordKind::File,
                        &f.id,
                        Box::new(|v: &mut Value| {
                            v["expires"] = Value::from(0);
                            v["pending"] = Value::from(false);
                            Ok(())
                        }),
                    )
                    .await;
            }
        }
    }

    /// After `delete_ticket`: every object of the ticket, attached or not.
    pub async fn purge_ticket(&self, ticket: &Ticket) {
        let mut seen = std::collections::BTreeSet::new();
        for f in &ticket.files {
            seen.insert(f.path.clone());
            self.remove_object(f).await;
        }
        match self
            .docket
            .store
            .records_of_ticket(RecordKind::File, &ticket.id)
            .await
        {
            Ok(records) => {
                for v in records {
                    if let Ok(r) = serde_json::from_value::<FileRecord>(v) {
                        if seen.insert(r.file.path.clone()) {
                            self.remove_object(&r.file).await;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, ticket = %ticket.id, "could not list the files of a deleted ticket")
            }
        }
    }

    /// Finds a file for a download and checks that `who` may see its ticket. A file the
    /// caller may not see looks exactly like a missing one.
    pub async fn find(&self, who: &Principal, raw_path: &str) -> Result<Download> {
        let (path, ticket_in_path) = canonical_path(raw_path)
            .map_err(|why| Error::File(format!("Malformed file path: {why}")))?;
        let store = &self.docket.store;
        let record: Option<FileRecord> = store
            .find_record(RecordKind::File, &path)
            .await?
            .and_then(|v| serde_json::from_value(v).ok());
        let ticket_id = record
            .as_ref()
            .map(|r| r.file.ticket.clone())
            .unwrap_or(ticket_in_path);
        let ticket = store.ticket_by_id(&ticket_id).await?;
        let file = match &ticket {
            Some(t) if !who.sees(t) => None,
            Some(t) => t
                .files
                .iter()
                .find(|f| f.path == path)
                .cloned()
                .or_else(|| record.filter(|r| !r.pending).map(|r| r.file)),
            // Unattached files of a ticket not created yet: callers without category limits.
            None if who.categories.is_none() => record.filter(|r| !r.pending).map(|r| r.file),
            None => None,
        };
        file.map(|file| Download { file })
            .ok_or_else(|| file_not_found(&path))
    }

    pub async fn open(
        &self,
        file: &FileRef,
        range: Option<Range<u64>>,
    ) -> Result<Option<BlobRead>> {
        self.blobs.get(&file.path, range).await
    }

    /// Removes expired files from their tickets and from storage, and collects the objects
    /// of requests that died half way. Returns how many files were removed.
    pub async fn sweep(&self) -> Result<u64> {
        let store = &self.docket.store;
        let mut removed = 0;
        loop {
            let now = self.docket.now();
            let due = store.expired_records(RecordKind::File, now, 100).await?;
            if due.is_empty() {
                return Ok(removed);
            }
            let mut progress = false;
            for v in due {
                let Ok(r) = serde_json::from_value::<FileRecord>(v) else {
                    continue;
                };
                let f = r.file;
                let ticket = store.ticket_by_id(&f.ticket).await?;
                let attached = ticket
                    .as_ref()
                    .is_some_and(|t| t.files.iter().any(|x| x.path == f.path));
                if r.pending && attached {
                    // The request committed but died before finalizing: repair, keep.
                    self.finalize(std::slice::from_ref(&f), &f.ticket).await?;
                    progress = true;
                    continue;
                }
                if attached {
                    let path = f.path.clone();
                    store
                        .update_ticket(
                            &f.ticket,
                            Box::new(move |t: &mut Ticket| {
                                t.files.retain(|x| x.path != path);
                                Ok(())
                            }),
                        )
                        .await?;
                }
                match self.blobs.delete(&f.path).await {
                    Ok(()) => {
                        store.delete_record(RecordKind::File, &f.id).await?;
                        removed += 1;
                        progress = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, path = %f.path, "sweeper could not delete an object")
                    }
                }
            }
            if !progress {
                return Ok(removed);
            }
        }
    }
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}
