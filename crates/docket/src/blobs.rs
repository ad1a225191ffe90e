//! The [`BlobStore`] of docket-core on the `object_store` crate: the local filesystem under
//! the data directory, or an S3-compatible store, through one code path.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bytes::Bytes;
use docket_core::files::{BlobMeta, BlobRead, BlobStore, BlobUpload, ByteStream};
use docket_core::{Error, Result};
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, WriteMultipart};

use crate::config::FilesConfig;

/// Bytes per multipart part (S3 wants at least 5 MiB) and parts in flight per upload: an
/// upload holds at most about (1 + PARTS_IN_FLIGHT) × PART_SIZE in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;
/// Chunk size when streaming a local file out.
const READ_CHUNK: usize = 256 * 1024;

pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
}

fn store_err(e: object_store::Error) -> Error {
    Error::Internal(format!("file storage: {e}"))
}

fn key(path: &str) -> Result<ObjectPath> {
    ObjectPath::parse(path).map_err(|e| Error::Internal(format!("bad storage key {path:?}: {e}")))
}

impl ObjectBlobs {
    /// The store the `files` section asks for; local files live under `data_dir`.
    pub fn from_config(config: &FilesConfig, data_dir: &Path) -> anyhow::Result<ObjectBlobs> {
        let store: Arc<dyn ObjectStore> = match config.store.as_str() {
            "local" => {
                let root = data_dir.to_path_buf();
                crate::datadir::private_dir(&root.join("files"))?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(&root)
                        .with_context(|| format!("opening file storage in {}", root.display()))?
                        .with_automatic_cleanup(true),
                )
            }
            "s3" => {
                let s3 = &config.s3;
                if s3.bucket.is_empty() {
                    bail!("files.s3.bucket is required when files.store = \"s3\"");
                }
                let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(&s3.bucket);
                if !s3.region.is_empty() {
                    b = b.with_region(&s3.region);
                }
                if !s3.endpoint.is_empty() {
                    b = b
                        .with_endpoint(&s3.endpoint)
                        .with_allow_http(s3.endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if !s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(&s3.secret_access_key);
                }
                Arc::new(
                    b.build()
                        .context("configuring the S3 file store (files.s3)")?,
                )
            }
            other => bail!("files.store must be \"local\" or \"s3\", not {other:?}"),
        };
        Ok(ObjectBlobs { store })
    }
}

struct Upload {
    writer: WriteMultipart,
}

#[async_trait]
impl BlobUpload for Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(store_err)?;
        crate::ops::metrics::get().file_bytes_in(chunk.len() as u64);
        self.writer.put(chunk);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        self.writer.finish().await.map(|_| ()).map_err(store_err)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        self.writer.abort().await.map_err(store_err)
    }
}

fn meta_of(m: &object_store::ObjectMeta) -> BlobMeta {
    BlobMeta {
        size: m.size,
        modified: m.last_modified.timestamp(),
    }
}

/// Reads a local file in large chunks on the blocking pool (object_store's own reader uses
/// 8 KiB chunks, which caps throughput).
fn local_stream(file: std::fs::File, range: Range<u64>) -> ByteStream {
    use std::io::{Read, Seek, SeekFrom};
    let state = (Some(file), range.start, range.end);
    futures_util::stream::unfold(state, |(file, pos, end)| async move {
        let mut file = file?;
        if pos >= end {
            return None;
        }
        let want = (end - pos).min(READ_CHUNK as u64) as usize;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; want];
            file.seek(SeekFrom::Start(pos))?;
            let mut got = 0;
            while got < want {
                let n = file.read(&mut buf[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => Some((
                Err(Error::Internal(
                    "file storage: file shorter than expected".into(),
                )),
                (None, end, end),
            )),
            Ok(Ok((file, buf))) => {
                let n = buf.len() as u64;
                Some((Ok(Bytes::from(buf)), (Some(file), pos + n, end)))
            }
            Ok(Err(e)) => Some((
                Err(Error::Internal(format!("file storage: {e}"))),
                (None, end, end),
            )),
            Err(e) => Some((Err(Error::internal(e)), (None, end, end))),
        }
    })
    .boxed()
}

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn start_put(&self, path: &str) -> Result<Box<dyn BlobUpload>> {
        let upload = self
            .store
            .put_multipart(&key(path)?)
            .await
            .map_err(store_err)?;
        Ok(Box::new(Upload {
            writer: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
        }))
    }

    async fn get(&self, path: &str, range: Option<Range<u64>>) -> Result<Option<BlobRead>> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&key(path)?, opts).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_err(e)),
        };
        let meta = meta_of(&got.meta);
        let range = got.range.clone();
        let body = match got.payload {
            GetResultPayload::File(file, _) => local_stream(file, range.clone()),
            GetResultPayload::Stream(s) => s.map(|r| r.map_err(store_err)).boxed(),
        };
        let body = body
            .inspect(|chunk| {
                if let Ok(b) = chunk {
                    crate::ops::metrics::get().file_bytes_out(b.len() as u64);
                }
            })
            .boxed();
        Ok(Some(BlobRead { meta, range, body }))
    }

    async fn head(&self, path: &str) -> Result<Option<BlobMeta>> {
        match self.store.head(&key(path)?).await {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&key(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}
