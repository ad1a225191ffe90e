//! A 1 GiB upload is streamed to storage: the server's resident memory stays within 100 MB
//! of its idle level during the upload and during the download.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, BOUNDARY};
use futures_util::StreamExt;
use serde_json::json;

const GIB: u64 = 1024 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

/// Samples the server's VmRSS every 20 ms until stopped; returns the peak (KiB).
fn watch_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = s
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    peak = peak.max(kb);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

#[tokio::test]
async fn one_gib_upload_and_download_stream_in_bounded_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc to read the server's memory from");
        return;
    }
    let config = format!(
        "[files]\nmax_file_size = {}\nmax_request_size = {}\n",
        2 * GIB,
        2 * GIB
    );
    let server = Server::start_with_config(&config, &[]).await;
    let pid = server.pid().expect("pid");
    // Warm up (first requests allocate pools), then take the idle level.
    for _ in 0..3 {
        server.call("ping", json!({})).await;
    }
    let t = server.create(json!({"subject": "big file"})).await;
    let id = t["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = server.rss_kib().expect("rss");

    // A generated body: the json part, 1 GiB of a byte pattern in 1 MiB chunks, the end.
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        json!({"ticket": id, "save": true})
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let chunk: Arc<Vec<u8>> = Arc::new((0..CHUNK).map(|i| (i % 253) as u8).collect());
    let n_chunks = (GIB as usize) / CHUNK;
    let body = futures_util::stream::iter(
        std::iter::once(head.into_bytes())
            .chain((0..n_chunks).map({
                let chunk = chunk.clone();
                move |_| chunk.as_ref().clone()
            }))
            .chain(std::iter::once(tail.into_bytes())),
    )
    .map(Ok::<_, std::io::Error>);

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_rss(pid, stop.clone());
    let started = Instant::now();
    let res = server
        .client
        .post(server.url("/api/app/upload_user_ticket_files/v1"))
        .header("X-API-Key", &server.key)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    let (status, v) = common::decode(res).await;
    let up_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak_up = watcher.join().unwrap();
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let file = &v["files"][0];
    assert_eq!(file["size"], GIB);
    let path = file["path"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::metadata(server.data.join(&path)).unwrap().len(),
        GIB
    );

    // Download it back, counting and checking bytes as they come.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_rss(pid, stop.clone());
    let started = Instant::now();
    let res = server
        .client
        .get(server.url(&format!("/{path}")))
        .header("X-API-Key", &server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = AtomicU64::new(0);
    let mut stream = res.bytes_stream();
    let mut mismatch = None;
    while let Some(part) = stream.next().await {
        let part = part.unwrap();
        let at = got.load(Ordering::Relaxed);
        if mismatch.is_none() {
            if let Some(i) = part
                .iter()
                .enumerate()
                .position(|(i, b)| *b != ((at as usize + i) % CHUNK % 253) as u8)
            {
                mismatch = Some(at + i as u64);
            }
        }
        got.fetch_add(part.len() as u64, Ordering::Relaxed);
    }
    let down_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak_down = watcher.join().unwrap();
    assert_eq!(got.load(Ordering::Relaxed), GIB);
    assert_eq!(mismatch, None, "downloaded bytes differ from the upload");

    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "idle RSS {:.1} MiB; peak during upload {:.1} MiB (+{:.1}); during download {:.1} MiB (+{:.1}); \
         upload {:.0} MB/s, download {:.0} MB/s (debug build)",
        mb(idle),
        mb(peak_up),
        mb(peak_up.saturating_sub(idle)),
        mb(peak_down),
        mb(peak_down.saturating_sub(idle)),
        GIB as f64 / 1e6 / up_secs,
        GIB as f64 / 1e6 / down_secs,
    );
    let limit_kib = 100 * 1000;
    assert!(
        peak_up.saturating_sub(idle) < limit_kib,
        "upload grew RSS from {idle} KiB to {peak_up} KiB"
    );
    assert!(
        peak_down.saturating_sub(idle) < limit_kib,
        "download grew RSS from {idle} KiB to {peak_down} KiB"
    );

    // And it goes away with its ticket.
    let (_, v) = server.call("delete_ticket", json!({"id": id})).await;
    assert_eq!(v["code"], 0);
    assert!(!server.data.join(&path).exists());
}
