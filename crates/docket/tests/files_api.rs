//! Ticket files over real HTTP: multipart create, attach and unattached uploads, deletion,
//! serving (Range, ETag, 304, 416, HEAD), active content, traversal, limits, atomicity of
//! failed requests, and the expiry sweeper.

mod common;

use std::time::{Duration, Instant};

use common::{files_under, Multipart, Server};
use serde_json::{json, Value};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn stored(server: &Server) -> Vec<String> {
    files_under(&server.data.join("files"))
}

async fn get(server: &Server, path_and_query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = server
        .client
        .get(server.url(path_and_query))
        .header("X-API-Key", &server.key);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn ticket_count(server: &Server) -> u64 {
    let (_, v) = server.call("search_tickets", json!({"query": "*"})).await;
    v["list"]["length"].as_u64().expect("length")
}

#[tokio::test]
async fn multipart_create_with_two_files_attaches_and_serves_them() {
    let server = Server::start().await;
    let form = Multipart::new()
        .json(&json!({"subject": "Disk full on db1", "body": "see logs"}))
        .file("file1", "notes.txt", "text/plain", b"hello world")
        .file("file2", "graph.png", "image/png", PNG);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let t = &v["ticket"];
    let id = t["id"].as_str().unwrap();
    let files = t["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{t}");
    for (f, name, size, kind) in [
        (&files[0], "notes.txt", 11, "text/plain"),
        (&files[1], "graph.png", PNG.len(), "image/png"),
    ] {
        assert!(f["id"].as_str().unwrap().starts_with('f'), "{f}");
        assert_eq!(f["filename"], name);
        assert_eq!(f["size"], size);
        assert_eq!(f["type"], kind);
        assert_eq!(f["ticket"], id);
        assert!(f["date"].as_i64().unwrap() > 1_600_000_000);
        assert!(f["username"].as_str().is_some_and(|u| !u.is_empty()));
        let path = f["path"].as_str().unwrap();
        let segs: Vec<&str> = path.split('/').collect();
        assert_eq!(segs.len(), 5, "{path}");
        assert_eq!((segs[0], segs[1], segs[4]), ("files", id, name), "{path}");
        // The object is on disk under the data directory.
        assert!(server.data.join(path).is_file(), "{path} not on disk");
    }
    // The stored ticket has them too.
    let (_, got) = server.call("get_ticket", json!({"id": id})).await;
    assert_eq!(got["ticket"]["files"], t["files"]);

    // Served at /files/PATH and /api/app/file/v1?path= (with or without `files/`).
    let path = files[0]["path"].as_str().unwrap();
    let res = get(&server, &format!("/{path}"), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "text/plain");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert!(header(&res, "content-disposition").starts_with("inline"));
    assert_eq!(res.text().await.unwrap(), "hello world");
    let short = path.strip_prefix("files/").unwrap();
    for p in [short, path] {
        let res = server
            .client
            .get(server.url(&format!("/api/app/file/v1?path={p}&api_key={}", server.key)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.unwrap().as_ref(), b"hello world");
    }
    let res = get(
        &server,
        &format!("/{}", files[1]["path"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(header(&res, "content-type"), "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);

    // A download needs a credential that may see the ticket's category.
    let res = server
        .client
        .get(server.url(&format!("/{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    let res = server
        .client
        .get(server.url(&format!("/{path}")))
        .header("X-API-Key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, c) = server
        .call(
            "create_category",
            json!({"id": "secret", "title": "Secret"}),
        )
        .await;
    assert_eq!(c["code"], 0, "{c}");
    let limited = server
        .key_with(&["create_tickets", "edit_tickets"], &["general"])
        .await;
    let (_, moved) = server
        .call("update_ticket", json!({"id": id, "category": "general"}))
        .await;
    assert_eq!(moved["code"], 0, "{moved}");
    let res = server
        .client
        .get(server.url(&format!("/{path}")))
        .header("X-API-Key", &limited)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "a key limited to general sees files of general tickets"
    );
    let (_, moved) = server
        .call("update_ticket", json!({"id": id, "category": "secret"}))
        .await;
    assert_eq!(moved["code"], 0, "{moved}");
    let res = server
        .client
        .get(server.url(&format!("/{path}")))
        .header("X-API-Key", &limited)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "a file of a ticket the key may not see looks missing"
    );

    // The json part may also come after the files (the ticket id is generated).
    let form = Multipart::new()
        .file("f", "late.txt", "text/plain", b"late json")
        .json(&json!({"subject": "json last"}));
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    assert_eq!(v["ticket"]["subject"], "json last");
    assert_eq!(v["ticket"]["files"][0]["filename"], "late.txt");
    // ... but not change the id after files were stored under another.
    let form = Multipart::new()
        .file("f", "late.txt", "text/plain", b"x")
        .json(&json!({"subject": "id last", "id": "late_id"}));
    let before = stored(&server);
    let (_, v) = server.upload("create_ticket", &form).await;
    assert_eq!(v["code"], "api", "{v}");
    assert_eq!(stored(&server), before);
    // A multipart create without files still works.
    let (status, v) = server
        .upload(
            "create_ticket",
            &Multipart::new().json(&json!({"subject": "no files"})),
        )
        .await;
    assert_eq!(
        (status, &v["code"], &v["ticket"]["files"]),
        (200, &json!(0), &json!([])),
        "{v}"
    );
}

#[tokio::test]
async fn attach_and_unattached_uploads() {
    let server = Server::start().await;
    let t = server.create(json!({"subject": "editor uploads"})).await;
    let id = t["id"].as_str().unwrap();

    let form = Multipart::new()
        .json(&json!({"ticket": id, "save": true}))
        .file("file1", "one.txt", "text/plain", b"1");
    let (status, v) = server.upload("upload_user_ticket_files", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    let form = Multipart::new()
        .json(&json!({"ticket": id, "save": true}))
        .file("file1", "two.txt", "text/plain", b"2");
    let (_, v) = server.upload("upload_user_ticket_files", &form).await;
    let names: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one.txt", "two.txt"], "with save: the whole list");

    // Without save: only the new files, and the ticket keeps its two.
    let form =
        Multipart::new()
            .json(&json!({"ticket": id}))
            .file("file1", "inline.png", "image/png", PNG);
    let (_, v) = server.upload("upload_user_ticket_files", &form).await;
    assert_eq!(v["code"], 0, "{v}");
    let new = v["files"].as_array().unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["filename"], "inline.png");
    let (_, got) = server.call("get_ticket", json!({"id": id})).await;
    assert_eq!(got["ticket"]["files"].as_array().unwrap().len(), 2);
    // The unattached file is served (a body-editor image).
    let res = get(
        &server,
        &format!("/{}", new[0]["path"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(stored(&server).len(), 3);

    // Errors: no files, no ticket, unknown ticket, no privilege, JSON body.
    let (_, v) = server
        .upload(
            "upload_user_ticket_files",
            &Multipart::new().json(&json!({"ticket": id, "save": true})),
        )
        .await;
    assert_eq!(v["code"], "file", "{v}");
    let (_, v) = server
        .upload(
            "upload_user_ticket_files",
            &Multipart::new().file("f", "a.txt", "text/plain", b"a"),
        )
        .await;
    assert_eq!(v["code"], "file", "{v}");
    let form = Multipart::new()
        .json(&json!({"ticket": "nosuch", "save": true}))
        .file("f", "a.txt", "text/plain", b"a");
    let (status, v) = server.upload("upload_user_ticket_files", &form).await;
    assert_eq!((status, &v["code"]), (404, &json!("notfound")), "{v}");
    let reader = server.key_with(&["create_tickets"], &[]).await;
    let form = Multipart::new()
        .json(&json!({"ticket": id, "save": true}))
        .file("f", "a.txt", "text/plain", b"a");
    let (status, v) = server
        .upload_as(&reader, "upload_user_ticket_files", &form)
        .await;
    assert_eq!((status, &v["code"]), (403, &json!("access")), "{v}");
    let (_, v) = server
        .call("upload_user_ticket_files", json!({"ticket": id}))
        .await;
    assert_eq!(v["code"], "file", "{v}");
    // None of the failures stored anything.
    assert_eq!(stored(&server).len(), 3);
}

#[tokio::test]
async fn delete_file_and_delete_ticket_remove_objects() {
    let server = Server::start().await;
    let form = Multipart::new()
        .json(&json!({"subject": "to delete"}))
        .file("a", "a.txt", "text/plain", b"aaa")
        .file("b", "b.txt", "text/plain", b"bbb");
    let (_, v) = server.upload("create_ticket", &form).await;
    let t = &v["ticket"];
    let id = t["id"].as_str().unwrap();
    let a = t["files"][0]["path"].as_str().unwrap().to_string();
    let b = t["files"][1]["path"].as_str().unwrap().to_string();
    let form =
        Multipart::new()
            .json(&json!({"ticket": id}))
            .file("c", "c.txt", "text/plain", b"ccc");
    let (_, v) = server.upload("upload_user_ticket_files", &form).await;
    let c = v["files"][0]["path"].as_str().unwrap().to_string();
    assert_eq!(stored(&server).len(), 3);

    // Escaping or unknown paths are refused and delete nothing.
    for bad in [
        "../../etc/passwd",
        "files/../docket.db",
        &format!("{a}/.."),
        "/etc/passwd",
    ] {
        let (_, v) = server
            .call("delete_ticket_file", json!({"id": id, "path": bad}))
            .await;
        assert_eq!(v["code"], "file", "{bad}: {v}");
    }
    let (_, v) = server
        .call(
            "delete_ticket_file",
            json!({"id": id, "path": format!("files/{id}/x/y/z.txt")}),
        )
        .await;
    assert_eq!(v["code"], "notfound", "{v}");
    assert_eq!(stored(&server).len(), 3);

    let (status, v) = server
        .call("delete_ticket_file", json!({"id": id, "path": a}))
        .await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let remaining: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(remaining, [b.as_str()]);
    assert!(
        !server.data.join(&a).exists(),
        "deleted object still on disk"
    );
    assert_eq!(get(&server, &format!("/{a}"), &[]).await.status(), 404);
    // Without the leading `files/` works too.
    let (_, v) = server
        .call(
            "delete_ticket_file",
            json!({"id": id, "path": b.strip_prefix("files/").unwrap()}),
        )
        .await;
    assert_eq!(v["files"], json!([]), "{v}");
    assert!(!server.data.join(&b).exists());
    let (_, v) = server
        .call("delete_ticket_file", json!({"id": id, "path": b}))
        .await;
    assert_eq!(v["code"], "notfound", "{v}");

    // A second ticket with files survives the first one's deletion.
    let form = Multipart::new().json(&json!({"subject": "keeper"})).file(
        "k",
        "keep.txt",
        "text/plain",
        b"keep",
    );
    let (_, keep) = server.upload("create_ticket", &form).await;
    let keep_path = keep["ticket"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let form = Multipart::new().json(&json!({"subject": "doomed"})).file(
        "d",
        "d.txt",
        "text/plain",
        b"ddd",
    );
    let (_, doomed) = server.upload("create_ticket", &form).await;
    let doomed_id = doomed["ticket"]["id"].as_str().unwrap();
    let (_, v) = server.call("upload_user_ticket_files", json!({})).await;
    assert_eq!(v["code"], "file");

    let (_, v) = server.call("delete_ticket", json!({"id": id})).await;
    assert_eq!(v["code"], 0, "{v}");
    assert!(
        !server.data.join(&c).exists(),
        "unattached upload of a deleted ticket still on disk"
    );
    let (_, v) = server.call("delete_ticket", json!({"id": doomed_id})).await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        stored(&server),
        vec![keep_path.strip_prefix("files/").unwrap().to_string()],
        "only the other ticket's file is left"
    );
    assert!(
        !server.data.join("files").join(id).exists(),
        "empty directories are cleaned up"
    );
}

#[tokio::test]
async fn range_etag_conditional_head_and_download() {
    let server = Server::start().await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let form = Multipart::new().json(&json!({"subject": "ranges"})).file(
        "f",
        "report final.bin",
        "application/octet-stream",
        &data,
    );
    let (_, v) = server.upload("create_ticket", &form).await;
    let f = &v["ticket"]["files"][0];
    assert_eq!(f["filename"], "report final.bin");
    let path = format!("/{}", f["path"].as_str().unwrap());
    assert!(path.ends_with("/report_final.bin"), "{path}");

    let res = get(&server, &path, &[]).await;
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");
    let last_modified = header(&res, "last-modified");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(last_modified.ends_with("GMT"), "{last_modified}");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
    assert_eq!(header(&res, "content-length"), "1000");
    assert_eq!(res.bytes().await.unwrap().as_ref(), &data[..]);

    // If-None-Match / If-Modified-Since.
    let res = get(&server, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag"), etag);
    assert!(res.bytes().await.unwrap().is_empty());
    let res = get(&server, &path, &[("If-None-Match", "\"other\", *")]).await;
    assert_eq!(res.status(), 304);
    assert_eq!(
        get(&server, &path, &[("If-None-Match", "\"other\"")])
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&server, &path, &[("If-Modified-Since", &last_modified)])
            .await
            .status(),
        304
    );
    assert_eq!(
        get(
            &server,
            &path,
            &[("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")]
        )
        .await
        .status(),
        200
    );
    // If-None-Match wins over If-Modified-Since.
    let res = get(
        &server,
        &path,
        &[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", &last_modified),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);

    // Single ranges.
    for (range, from, to) in [
        ("bytes=10-19", 10, 20),
        ("bytes=990-", 990, 1000),
        ("bytes=-5", 995, 1000),
        ("bytes=500-5000", 500, 1000),
    ] {
        let res = get(&server, &path, &[("Range", range)]).await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(
            header(&res, "content-range"),
            format!("bytes {from}-{}/1000", to - 1),
            "{range}"
        );
        assert_eq!(header(&res, "content-length"), (to - from).to_string());
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            &data[from..to],
            "{range}"
        );
    }
    for bad in ["bytes=1000-", "bytes=2000-3000", "bytes=50-10", "bytes=-0"] {
        let res = get(&server, &path, &[("Range", bad)]).await;
        assert_eq!(res.status(), 416, "{bad}");
        assert_eq!(header(&res, "content-range"), "bytes */1000", "{bad}");
    }
    // If-Range with another validator: the whole file.
    let res = get(
        &server,
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"old\"")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = get(
        &server,
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
    )
    .await;
    assert_eq!(res.status(), 206);

    // HEAD: headers without a body.
    let res = server
        .client
        .head(server.url(&path))
        .header("X-API-Key", &server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-length"), "1000");
    assert_eq!(header(&res, "etag"), etag);
    assert!(res.bytes().await.unwrap().is_empty());
    let res = server
        .client
        .head(server.url(&path))
        .header("X-API-Key", &server.key)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), header(&res, "content-length")),
        (206, "100".to_string())
    );

    // `download` forces an attachment with the original file name.
    let res = get(&server, &format!("{path}?download=1"), &[]).await;
    let cd = header(&res, "content-disposition");
    assert!(
        cd.starts_with("attachment; filename=\"report final.bin\""),
        "{cd}"
    );
    let res = get(&server, &format!("{path}?download=renamed.bin"), &[]).await;
    assert!(header(&res, "content-disposition").starts_with("attachment; filename=\"renamed.bin\""));
    assert_eq!(res.bytes().await.unwrap().len(), 1000);
}

#[tokio::test]
async fn active_content_is_always_an_attachment() {
    let server = Server::start().await;
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let form = Multipart::new()
        .json(&json!({"subject": "xss"}))
        .file("a", "page.html", "text/html", html)
        .file("b", "pic.svg", "image/svg+xml", svg)
        .file("c", "fake.png", "image/png", html)
        .file("d", "script.js", "text/javascript", b"alert(1)")
        .file("e", "real.png", "image/png", PNG);
    let (_, v) = server.upload("create_ticket", &form).await;
    let files = v["ticket"]["files"].as_array().unwrap().clone();
    let expect = [
        ("page.html", "text/html", true),
        ("pic.svg", "image/svg+xml", true),
        ("fake.png", "text/html", true),
        ("script.js", "text/javascript", true),
        ("real.png", "image/png", false),
    ];
    for (f, (name, kind, attachment)) in files.iter().zip(expect) {
        assert_eq!(f["filename"], name);
        let res = get(&server, &format!("/{}", f["path"].as_str().unwrap()), &[]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "content-type"), kind, "{name}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        let cd = header(&res, "content-disposition");
        assert_eq!(cd.starts_with("attachment"), attachment, "{name}: {cd}");
        assert!(header(&res, "content-security-policy").contains("sandbox"));
    }
}

#[tokio::test]
async fn traversal_and_bad_names_are_refused() {
    let server = Server::start().await;
    let form = Multipart::new()
        .json(&json!({"subject": "names"}))
        .file("a", "../../../etc/evil.txt", "text/plain", b"one")
        .file("b", "C:\\\\temp\\\\win.txt", "text/plain", b"two")
        .file("c", "ctl\tname .txt", "text/plain", b"three")
        .file(
            "d",
            &format!("{}.txt", "x".repeat(400)),
            "text/plain",
            b"four",
        );
    let (_, v) = server.upload("create_ticket", &form).await;
    assert_eq!(v["code"], 0, "{v}");
    let files = v["ticket"]["files"].as_array().unwrap();
    let id = v["ticket"]["id"].as_str().unwrap();
    assert_eq!(files[0]["filename"], "evil.txt");
    assert_eq!(files[1]["filename"], "win.txt");
    assert_eq!(files[2]["filename"], "ctlname .txt");
    assert!(files[3]["filename"].as_str().unwrap().len() <= 200);
    for f in files {
        let p = f["path"].as_str().unwrap();
        assert!(
            p.starts_with(&format!("files/{id}/")) && p.split('/').count() == 5,
            "{p}"
        );
        assert!(
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)),
            "{p}"
        );
        assert!(server.data.join(p).is_file());
    }
    assert_eq!(stored(&server).len(), 4);
    assert!(!server.data.join("etc").exists());

    // Download paths that try to escape: through the API parameter...
    let secret = server.data.join("docket.db");
    if common::backend() == common::Backend::Postgres {
        // No database file on PostgreSQL: plant one so the escapes below have a target.
        std::fs::write(&secret, "not for download").unwrap();
    }
    assert!(secret.exists());
    for bad in [
        "../docket.db",
        "files/../docket.db",
        "/etc/passwd",
        "files/t/u/r/..",
        "..%2fdocket.db",
        "files/t/u/r/a%00.txt",
        "files\\..\\docket.db",
        "files/./t/u/r",
        "%2e%2e/%2e%2e/etc/passwd",
    ] {
        let url = format!(
            "/api/app/file/v1?path={}",
            bad.replace('%', "%25").replace('\\', "%5C")
        );
        let res = get(&server, &url, &[]).await;
        assert_eq!(res.status(), 400, "{bad}");
        let res = get(&server, &format!("/api/app/file/v1?path={bad}"), &[]).await;
        assert!(
            res.status() == 400 || res.status() == 404,
            "{bad}: {}",
            res.status()
        );
    }
    // ... and through /files/ (percent-encoded dots, NUL, backslash).
    // (An HTTP client may normalize `%2e%2e` away; the raw requests below send it as is.)
    for bad in [
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/..%2f..%2fdocket.db",
        "/files/t/u/r/a%00",
        "/files/t%5Cu/r/x/y",
    ] {
        let res = get(&server, bad, &[]).await;
        assert!(
            res.status() == 400 || res.status() == 404,
            "{bad}: {}",
            res.status()
        );
    }
    // Raw dot segments (an HTTP client would normalize them, so send them by hand).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://").to_string();
    for target in [
        "/files/../docket.db",
        "/files/../../../../etc/passwd",
        "/files/t/../../docket.db",
        "/files/%2e%2e/docket.db",
        "/files/%2E%2E/%2E%2E/etc/passwd",
        "/files/t/u/r/..%5c..%5cdocket.db",
    ] {
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n",
            server.key
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        sock.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{target}: {out}");
        assert!(
            !out.contains("SQLite") && !out.contains("root:"),
            "{target}"
        );
    }
}

#[tokio::test]
async fn limits_and_failed_requests_leave_nothing() {
    let config = "[files]\nmax_file_size = 1024\nmax_files = 3\nmax_request_size = 65536\n";
    let server = Server::start_with_config(config, &[]).await;
    let small = vec![b's'; 100];
    let big = vec![b'B'; 2000];

    // Too many files.
    let mut form = Multipart::new().json(&json!({"subject": "many"}));
    for i in 0..4 {
        form = form.file(&format!("f{i}"), &format!("{i}.txt"), "text/plain", &small);
    }
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (400, &json!("file")), "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("files.max_files"),
        "{v}"
    );
    assert_eq!(stored(&server), Vec::<String>::new());
    assert_eq!(ticket_count(&server).await, 0);

    // One file too big: 413.
    let form =
        Multipart::new()
            .json(&json!({"subject": "big"}))
            .file("f", "big.txt", "text/plain", &big);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (413, &json!("file")), "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("files.max_file_size"),
        "{v}"
    );
    // Same on the route without /v1 (413 is about the body, not an API error).
    let res = server
        .client
        .post(server.url("/api/app/create_ticket"))
        .header("X-API-Key", &server.key)
        .header("Content-Type", form.content_type())
        .body(form.body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // The whole request too big (declared length, and streamed without one).
    let huge = vec![b'h'; 70_000];
    let form = Multipart::new()
        .json(&json!({"subject": "huge"}))
        .field("padding", &String::from_utf8(huge.clone()).unwrap());
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (413, &json!("file")), "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("files.max_request_size"),
        "{v}"
    );
    let body = form.body();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let res = server
        .client
        .post(server.url("/api/app/create_ticket/v1"))
        .header("X-API-Key", &server.key)
        .header("Content-Type", form.content_type())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // Mid-request failure: the third of three files is too big. Nothing is stored, no ticket.
    let form = Multipart::new()
        .json(&json!({"subject": "third fails"}))
        .file("a", "a.txt", "text/plain", &small)
        .file("b", "b.txt", "text/plain", &small)
        .file("c", "c.txt", "text/plain", &big);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (413, &json!("file")), "{v}");
    assert_eq!(stored(&server), Vec::<String>::new());
    assert_eq!(ticket_count(&server).await, 0);

    // The same against an existing ticket: its list is untouched.
    let t = server.create(json!({"subject": "target"})).await;
    let id = t["id"].as_str().unwrap();
    let form = Multipart::new()
        .json(&json!({"ticket": id, "save": true}))
        .file("a", "a.txt", "text/plain", &small)
        .file("b", "b.txt", "text/plain", &small)
        .file("c", "c.txt", "text/plain", &big);
    let (status, _) = server.upload("upload_user_ticket_files", &form).await;
    assert_eq!(status, 413);
    let (_, got) = server.call("get_ticket", json!({"id": id})).await;
    assert_eq!(got["ticket"]["files"], json!([]));
    assert_eq!(got["ticket"]["modified"], t["modified"]);
    assert_eq!(stored(&server), Vec::<String>::new());

    // A create whose ticket is refused after the files were stored (bad field) leaves nothing.
    let form = Multipart::new()
        .json(&json!({"subject": "bad", "status": "nonsense"}))
        .file("a", "a.txt", "text/plain", &small);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (400, &json!("ticket")), "{v}");
    assert_eq!(stored(&server), Vec::<String>::new());
    // A duplicate id too.
    let form = Multipart::new()
        .json(&json!({"subject": "dup", "id": id}))
        .file("a", "a.txt", "text/plain", &small);
    let (_, v) = server.upload("create_ticket", &form).await;
    assert_eq!(v["code"], "ticket", "{v}");
    assert_eq!(stored(&server), Vec::<String>::new());
    assert_eq!(ticket_count(&server).await, 1);

    // Within the limits all is well.
    let form = Multipart::new()
        .json(&json!({"subject": "fits"}))
        .file("a", "a.txt", "text/plain", &small)
        .file("b", "b.txt", "text/plain", &vec![b'x'; 1024]);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    assert_eq!(stored(&server).len(), 2);
}

#[tokio::test]
async fn sweeper_removes_expired_files() {
    let config = "[files]\nexpiration = \"2 seconds\"\nsweep_interval = 1\n";
    let server = Server::start_with_config(config, &[]).await;
    let keeper = server.create(json!({"subject": "no files"})).await;
    let form = Multipart::new().json(&json!({"subject": "expiring"})).file(
        "a",
        "a.txt",
        "text/plain",
        b"a",
    );
    let (_, v) = server.upload("create_ticket", &form).await;
    let id = v["ticket"]["id"].as_str().unwrap().to_string();
    let form = Multipart::new()
        .json(&json!({"ticket": id}))
        .file("b", "b.txt", "text/plain", b"b");
    let (_, v) = server.upload("upload_user_ticket_files", &form).await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(stored(&server).len(), 2);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, got) = server.call("get_ticket", json!({"id": id})).await;
        if got["ticket"]["files"] == json!([]) && stored(&server).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "files not swept: {got} {:?}",
            stored(&server)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tickets themselves stay.
    let (_, got) = server.call("get_ticket", json!({"id": keeper["id"]})).await;
    assert_eq!(got["code"], 0);
    let (_, got) = server.call("get_ticket", json!({"id": id})).await;
    assert_eq!(got["ticket"]["subject"], Value::from("expiring"));
}

/// A multipart create commits the ticket, its files and its notifications in one
/// transaction: a refused create queues nothing, a good one queues one `created` row (no
/// separate "file added"), and a dedupe hit adds the files to the ticket that absorbs it.
#[tokio::test]
async fn a_multipart_create_is_one_transaction_with_its_files_and_notifications() {
    // A webhook nobody answers: its rows stay in the outbox, where they can be counted.
    let config = "[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n";
    let server = Server::start_with_config(config, &[]).await;
    let outbox = || async {
        let (_, q) = server.call("get_outbox", json!({"all": true})).await;
        q["rows"].as_array().cloned().unwrap_or_default()
    };
    let small = vec![b's'; 100];

    let form = Multipart::new()
        .json(&json!({"subject": "refused", "status": "nonsense"}))
        .file("a", "a.txt", "text/plain", &small);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (400, &json!("ticket")), "{v}");
    assert_eq!(ticket_count(&server).await, 0);
    assert!(outbox().await.is_empty(), "a refused create queues nothing");
    assert_eq!(stored(&server), Vec::<String>::new());

    let form = Multipart::new()
        .json(&json!({"subject": "disk alert", "dedupe_key": "disk"}))
        .file("a", "a.txt", "text/plain", &small)
        .file("b", "b.txt", "text/plain", &small);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let id = v["ticket"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["ticket"]["files"].as_array().unwrap().len(), 2, "{v}");
    let rows = outbox().await;
    assert_eq!(rows.len(), 1, "one created notification: {rows:?}");
    assert_eq!(rows[0]["ticket"], json!(id));

    // The same alert again, with a file: absorbed, and the file joins the first ticket.
    let form = Multipart::new()
        .json(&json!({"subject": "disk alert", "dedupe_key": "disk"}))
        .file("c", "c.txt", "text/plain", &small);
    let (status, v) = server.upload("create_ticket", &form).await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    assert_eq!(v["ticket"]["id"], json!(id), "{v}");
    assert_eq!(ticket_count(&server).await, 1);
    let (_, got) = server.call("get_ticket", json!({"id": id})).await;
    let names: Vec<&str> = got["ticket"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt", "c.txt"]);
    assert_eq!(stored(&server).len(), 3);
    // Every file is downloadable, through its final record.
    for f in got["ticket"]["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let res = get(&server, &format!("/{path}"), &[]).await;
        assert_eq!(res.status(), 200, "{path}");
    }
}
