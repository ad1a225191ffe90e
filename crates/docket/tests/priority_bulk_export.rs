//! Issue 17, items 1, 4 and 5 over real HTTP: ticket priorities (levels, history, search by
//! level order, `sort_by=priority`, tickets from before priorities), `bulk_update_tickets`
//! (dry run, set semantics, privileges and category scope, the per-call bound) and
//! `export_tickets` (NDJSON and CSV, streamed, scoped; NDJSON read back by `docket import`).

mod api_support;
mod common;

use api_support::{assert_err, assert_ok, changes, ticket, total};
use common::{cli, raw_sql, Server};
use serde_json::{json, Value};

fn nums(v: &Value) -> Vec<i64> {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["num"].as_i64().expect("num"))
        .collect()
}

async fn sorted(s: &Server, query: &str, dir: i64) -> Vec<i64> {
    let r = s
        .call(
            "search_tickets",
            json!({"query": query, "sort_by": "priority", "sort_dir": dir, "limit": 100, "compact": 1}),
        )
        .await;
    nums(assert_ok(&r))
}

#[tokio::test]
async fn priority_is_set_validated_tracked_searched_and_sorted() {
    let s = Server::start().await;
    let plain = s.create(json!({"subject": "no priority given"})).await;
    assert_eq!(plain["priority"], "none", "the default level");
    let urgent = s
        .create(json!({"subject": "db down", "priority": "urgent"}))
        .await;
    let high = s
        .create(json!({"subject": "slow", "priority": "high"}))
        .await;
    let low = s
        .create(json!({"subject": "typo", "priority": "low"}))
        .await;
    let high2 = s
        .create(json!({"subject": "slow 2", "priority": "high"}))
        .await;

    // An unknown level is a clear error and creates nothing.
    let r = s
        .call("create_ticket", json!({"subject": "x", "priority": "asap"}))
        .await;
    assert_err(&r, 400, "ticket", "unknown ticket priority: \"asap\"");
    assert!(r.1["description"]
        .as_str()
        .unwrap()
        .contains("none, low, normal, high, urgent"));
    assert_eq!(total(&s, "*").await, 5);

    // Update: recorded in the history like any field; an unknown level changes nothing.
    let id = plain["id"].as_str().unwrap();
    let r = s
        .call("update_ticket", json!({"id": id, "priority": "normal"}))
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["priority"], "normal");
    let last = changes(&ticket(&s, id).await).last().cloned().unwrap();
    assert_eq!(
        (&last["type"], &last["key"], &last["value"]),
        (&json!("change"), &json!("priority"), &json!("normal"))
    );
    let r = s
        .call("update_ticket", json!({"id": id, "priority": "ASAP"}))
        .await;
    assert_err(&r, 400, "ticket", "unknown ticket priority");
    assert_eq!(ticket(&s, id).await["priority"], "normal");

    // Search: by level, and by level order.
    assert_eq!(total(&s, "priority:urgent").await, 1);
    assert_eq!(total(&s, "priority:high").await, 2);
    assert_eq!(total(&s, "priority:>=high").await, 3);
    assert_eq!(total(&s, "priority:>high").await, 1);
    assert_eq!(total(&s, "priority:<normal").await, 1);
    assert_eq!(total(&s, "priority:<=normal").await, 2);
    assert_eq!(
        total(&s, "(priority >= \"high\" && subject =~ \"slow\")").await,
        2
    );
    assert_eq!(total(&s, "-priority:>=high").await, 2);
    let r = s
        .call("search_tickets", json!({"query": "priority:>=hgh"}))
        .await;
    assert_err(&r, 400, "ticket", "unknown priority level \"hgh\"");

    // Sort: level order, ties by number in the same direction.
    let n = |t: &Value| t["num"].as_i64().unwrap();
    assert_eq!(
        sorted(&s, "*", 1).await,
        vec![n(&low), n(&plain), n(&high), n(&high2), n(&urgent)]
    );
    assert_eq!(
        sorted(&s, "*", -1).await,
        vec![n(&urgent), n(&high2), n(&high), n(&plain), n(&low)]
    );
    assert_eq!(sorted(&s, "slow", -1).await, vec![n(&high2), n(&high)]);
}

#[tokio::test]
async fn configured_levels_and_default_and_old_tickets() {
    let config = r#"
[tickets]
priorities = [{id = "p4", title = "P4"}, {id = "p3", title = "P3"}, {id = "p2", title = "P2"}, {id = "p1", title = "P1"}]
default_priority = "p3"
"#;
    let mut s = Server::start_with_config(config, &[]).await;
    let a = s.create(json!({"subject": "a"})).await;
    assert_eq!(a["priority"], "p3");
    let b = s.create(json!({"subject": "b", "priority": "p1"})).await;
    let c = s.create(json!({"subject": "c", "priority": "p4"})).await;
    let r = s
        .call(
            "create_ticket",
            json!({"subject": "d", "priority": "urgent"}),
        )
        .await;
    assert_err(&r, 400, "ticket", "p4, p3, p2, p1");
    assert_eq!(total(&s, "priority:>=p2").await, 1);

    // A ticket stored before priorities existed: no member in its record, no keyword, no
    // rank. The next start gives it the configured default (record, search and sort).
    let old = a["id"].as_str().unwrap();
    raw_sql(
        &s.data,
        &format!(
            "UPDATE tickets SET data = json_remove(data, '$.priority'), priority_rank = NULL \
             WHERE id = '{old}'; DELETE FROM ticket_keywords WHERE field = 'priority' \
             AND num = {}",
            a["num"]
        ),
        &format!(
            "UPDATE tickets SET data = (data::jsonb - 'priority')::text, priority_rank = NULL, \
             keywords = array_remove(keywords, 'priority:p3') WHERE id = '{old}'"
        ),
    );
    s.set_env("DOCKET_TICKETS__DEFAULT_PRIORITY", "p2");
    s.restart();
    let t = ticket(&s, old).await;
    assert_eq!(t["priority"], "p2", "{t}");
    assert_eq!(t["subject"], "a");
    assert_eq!(total(&s, "priority:p2").await, 1);
    let n = |t: &Value| t["num"].as_i64().unwrap();
    assert_eq!(sorted(&s, "*", -1).await, vec![n(&b), n(&a), n(&c)]);

    // Another level order: the ranks follow at the next start.
    s.set_env(
        "DOCKET_TICKETS__PRIORITIES",
        r#"[{id = "p1", title = "P1"}, {id = "p2", title = "P2"}, {id = "p3", title = "P3"}, {id = "p4", title = "P4"}]"#,
    );
    s.restart();
    assert_eq!(sorted(&s, "*", -1).await, vec![n(&c), n(&a), n(&b)]);
    assert_eq!(total(&s, "priority:>=p2").await, 2);
}

async fn bulk(s: &Server, key: &str, params: Value) -> (u16, Value) {
    s.call_as(key, "bulk_update_tickets", params).await
}

#[tokio::test]
async fn bulk_update_dry_run_then_real_run_then_again() {
    let s = Server::start().await;
    for (i, cat) in ["general", "general", "general", "ops"].iter().enumerate() {
        if *cat == "ops" {
            s.call("create_category", json!({"title": "Ops", "id": "ops"}))
                .await;
        }
        s.create(json!({"subject": format!("disk {i}"), "category": cat, "assignees": ["bob"]}))
            .await;
    }
    s.create(json!({"subject": "other"})).await;
    let key = s.key.clone();
    let set = json!({"status": "in_progress", "priority": "high",
                      "assignees": {"add": ["ann"], "remove": ["bob"]}, "tags": {"add": ["flag"]}});

    // Dry run: counts and describes, changes nothing.
    let r = bulk(
        &s,
        &key,
        json!({"query": "disk", "set": set, "dry_run": true}),
    )
    .await;
    let v = assert_ok(&r);
    assert_eq!(
        (
            v["dry_run"].clone(),
            v["matched"].clone(),
            v["changed"].clone()
        ),
        (json!(true), json!(4), json!(0))
    );
    let preview = v["preview"].as_array().unwrap();
    assert_eq!(preview.len(), 4);
    let fields: Vec<&str> = preview[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "priority", "assignees", "tags"]);
    assert_eq!(preview[0]["changes"][2]["from"], json!(["bob"]));
    assert_eq!(preview[0]["changes"][2]["to"], json!(["ann"]));
    assert_eq!(total(&s, "status:in_progress").await, 0);

    // The real run: each ticket changed, with its history.
    let r = bulk(&s, &key, json!({"query": "disk", "set": set})).await;
    let v = assert_ok(&r);
    assert_eq!(
        (
            v["matched"].clone(),
            v["changed"].clone(),
            v["unchanged"].clone(),
            v["refused"].clone()
        ),
        (json!(4), json!(4), json!(0), json!(0)),
        "{v}"
    );
    assert_eq!(
        total(
            &s,
            "status:in_progress priority:high assignees:ann tags:flag -assignees:bob"
        )
        .await,
        4
    );
    let first = s
        .call(
            "search_tickets",
            json!({"query": "disk", "sort_by": "num", "sort_dir": 1}),
        )
        .await;
    let id = first.1["rows"][0]["id"].as_str().unwrap().to_string();
    let keys: Vec<String> = changes(&ticket(&s, &id).await)
        .iter()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    for k in ["status", "priority", "assignees", "tags"] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }
    let modified = ticket(&s, &id).await["modified"].clone();

    // Again: safe to repeat, nothing written.
    let r = bulk(&s, &key, json!({"query": "disk", "set": set})).await;
    let v = assert_ok(&r);
    assert_eq!(
        (v["changed"].clone(), v["unchanged"].clone()),
        (json!(0), json!(4)),
        "{v}"
    );
    assert_eq!(ticket(&s, &id).await["modified"], modified);
    assert_eq!(
        total(&s, "other status:open").await,
        1,
        "only matches change"
    );
}

#[tokio::test]
async fn bulk_update_rules_privileges_scope_and_bound() {
    let s = Server::start_with_env(&[("DOCKET_TICKETS__BULK_MAX_TICKETS", "3")]).await;
    s.call("create_category", json!({"title": "Ops", "id": "ops"}))
        .await;
    for i in 0..2 {
        s.create(json!({"subject": format!("gen {i}"), "category": "general"}))
            .await;
        s.create(json!({"subject": format!("ops {i}"), "category": "ops"}))
            .await;
    }
    let admin = s.key.clone();
    let set = json!({"status": "closed"});

    // Bad input: a clear error, nothing changed.
    for (params, phrase) in [
        (json!({"set": set}), "missing parameter: query"),
        (json!({"query": "*"}), "missing parameter: set"),
        (json!({"query": "*", "set": {}}), "nothing to change"),
        (
            json!({"query": "*", "set": {"colour": "red"}}),
            "unknown field in set: \"colour\"",
        ),
        (
            json!({"query": "*", "set": {"status": "nope"}}),
            "unknown ticket status",
        ),
        (
            json!({"query": "*", "set": {"priority": "asap"}}),
            "unknown ticket priority",
        ),
        (
            json!({"query": "*", "set": {"tags": {"add": ["nosuchtag"]}}}),
            "unknown tag",
        ),
        (
            json!({"query": "*", "set": {"tags": ["flag"]}}),
            "set.tags (must be an object",
        ),
        (
            json!({"query": "*", "set": {"category": "nosuch"}}),
            "unknown category",
        ),
        (
            json!({"query": "status:", "set": set}),
            "invalid search query",
        ),
    ] {
        let r = bulk(&s, &admin, params.clone()).await;
        assert_err(&r, 400, "ticket", phrase);
    }
    // More matches than the bound: refused before anything changes (the dry run answers).
    let r = bulk(&s, &admin, json!({"query": "*", "set": set})).await;
    assert_err(&r, 400, "ticket", "matches 4 tickets, more than the 3");
    let r = bulk(
        &s,
        &admin,
        json!({"query": "*", "set": set, "dry_run": true}),
    )
    .await;
    assert_eq!(assert_ok(&r)["matched"], 4);
    assert_eq!(total(&s, "status:closed").await, 0);

    // Without edit_tickets: refused.
    let reader = s.key_with(&[], &[]).await;
    let r = bulk(&s, &reader, json!({"query": "*", "set": set})).await;
    assert_err(&r, 403, "access", "edit_tickets");

    // A key limited to `general` sees and changes only those tickets.
    let scoped = s.key_with(&["edit_tickets"], &["general"]).await;
    let r = bulk(&s, &scoped, json!({"query": "*", "set": set})).await;
    let v = assert_ok(&r);
    assert_eq!(
        (v["matched"].clone(), v["changed"].clone()),
        (json!(2), json!(2)),
        "{v}"
    );
    assert_eq!(total(&s, "status:closed category:ops").await, 0);
    // ... and may not move tickets into a category it may not file in.
    let r = bulk(
        &s,
        &scoped,
        json!({"query": "*", "set": {"category": "ops"}}),
    )
    .await;
    assert_err(&r, 403, "access", "category \"ops\"");
    assert_eq!(total(&s, "category:ops").await, 2);
}

async fn export(s: &Server, key: &str, params: Value) -> (u16, String, String) {
    let res = s
        .client
        .post(s.url("/api/app/export_tickets/v1"))
        .header("X-API-Key", key)
        .json(&params)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let kind = common::content_type_of(&res);
    (status, kind, res.text().await.expect("body"))
}

#[tokio::test]
async fn export_streams_every_match_in_scope_as_ndjson_and_csv() {
    let s = Server::start().await;
    s.call("create_category", json!({"title": "Ops", "id": "ops"}))
        .await;
    // More than one export page (500), so paging by number is exercised.
    let mut lines = Vec::new();
    for i in 0..1203 {
        let cat = if i % 3 == 0 { "ops" } else { "general" };
        lines.push(
            json!({"subject": format!("Row {i}"), "category": cat, "body": "b", "status": "open"})
                .to_string(),
        );
    }
    s.create(
        json!({"subject": "Quote \"this\", then =SUM(A1)", "category": "general",
                    "tags": ["flag", "important"], "priority": "urgent", "body": "two\nlines"}),
    )
    .await;
    let mut pending = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        pending.push(s.call("create_ticket", v));
        if pending.len() == 64 {
            for r in futures_util::future::join_all(pending.drain(..)).await {
                assert_ok(&r);
            }
        }
    }
    for r in futures_util::future::join_all(pending).await {
        assert_ok(&r);
    }
    let admin = s.key.clone();

    let (status, kind, body) = export(&s, &admin, json!({})).await;
    assert_eq!((status, kind.as_str()), (200, "application/x-ndjson"));
    let records: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 1204);
    let got: Vec<i64> = records.iter().map(|r| r["num"].as_i64().unwrap()).collect();
    let mut want = got.clone();
    want.sort();
    assert_eq!(got, want, "number order");
    // Whole records, as get_ticket has them.
    let one = &records[0];
    assert_eq!(&ticket(&s, one["id"].as_str().unwrap()).await, one);

    // Scope: a key limited to `ops` exports only those, and the query narrows.
    let ops = s.key_with(&[], &["ops"]).await;
    let (_, _, body) = export(&s, &ops, json!({"query": "row"})).await;
    assert_eq!(body.lines().count(), 401);
    assert!(body.lines().all(|l| l.contains("\"category\":\"ops\"")));
    let (_, _, body) = export(&s, &ops, json!({"query": "urgent", "format": "csv"})).await;
    assert_eq!(body, "id,num,subject,status,priority,type,category,assignees,tags,username,created,modified,due\r\n");

    // Fields pick what a line holds.
    let (_, _, body) = export(
        &s,
        &admin,
        json!({"query": "priority:urgent", "fields": ["num", "subject"]}),
    )
    .await;
    let line: Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(
        line.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["num", "subject"]
    );

    // CSV: header, quoting, formula guard, lists joined.
    let (status, kind, body) = export(
        &s,
        &admin,
        json!({"query": "priority:urgent", "format": "csv", "fields": "subject,tags,priority,body,due"}),
    )
    .await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(
        body,
        "subject,tags,priority,body,due\r\n\"Quote \"\"this\"\", then =SUM(A1)\",\"flag, important\",urgent,\"two\nlines\",\r\n"
    );

    // Bad input: JSON errors before any byte of a file.
    for (params, phrase) in [
        (json!({"format": "xml"}), "format"),
        (
            json!({"fields": ["colour"]}),
            "unknown export field: \"colour\"",
        ),
        (json!({"query": "status:"}), "invalid search query"),
    ] {
        let r = s.call("export_tickets", params).await;
        assert_err(&r, 400, "ticket", phrase);
    }
}

#[tokio::test]
async fn export_ndjson_imports_into_a_fresh_data_directory() {
    let s = Server::start().await;
    for i in 0..30 {
        s.create(json!({"subject": format!("Ticket {i}"), "priority": if i % 2 == 0 { "high" } else { "low" },
                        "tags": ["flag"], "body": format!("**body** {i}"), "assignees": ["ann"]}))
            .await;
    }
    let first = s
        .call(
            "search_tickets",
            json!({"query": "*", "sort_by": "num", "sort_dir": 1}),
        )
        .await;
    let id = first.1["rows"][0]["id"].as_str().unwrap().to_string();
    s.call(
        "add_ticket_change",
        json!({"id": id, "change": {"type": "comment", "body": "a comment"}}),
    )
    .await;
    let key = s.key.clone();
    let (status, _, body) = export(&s, &key, json!({"query": "*"})).await;
    assert_eq!(status, 200);
    let exported: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 30);

    let file = s.data.join("export.ndjson");
    std::fs::write(&file, &body).unwrap();
    let target = Server::start_prepared(None, &[], |data| {
        cli(data, &["import", file.to_str().unwrap(), "--create"]);
    })
    .await;
    assert_eq!(total(&target, "*").await, 30);
    assert_eq!(total(&target, "priority:high").await, 15);
    for original in &exported {
        let copy = ticket(&target, original["id"].as_str().unwrap()).await;
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("num");
            v
        };
        assert_eq!(
            strip(&copy),
            strip(original),
            "the record comes back as it was"
        );
    }
}

/// A compressed export (as browsers, curl --compressed and python's requests ask for) ends
/// cleanly: the compression layer polls the body again after its end, which once hit a
/// panic in the stream and dropped the connection (found by schemathesis).
#[tokio::test]
async fn a_compressed_export_ends_cleanly() {
    let s = Server::start().await;
    for i in 0..3 {
        s.create(json!({"subject": format!("Zipped {i}")})).await;
    }
    for params in [
        json!({"format": "csv", "fields": [], "query": ""}),
        json!({"format": "ndjson", "query": "zipped"}),
    ] {
        let res = s
            .client
            .post(s.url("/api/app/export_tickets/v1"))
            .header("X-API-Key", &s.key)
            .header("Accept-Encoding", "gzip")
            .json(&params)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 200, "{params}");
        let encoding = res
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert_eq!(encoding, "gzip", "{params}");
        let body = res.bytes().await.expect("the whole body arrives");
        assert!(!body.is_empty(), "{params}");
    }
    assert!(
        !s.log_text().contains("panicked"),
        "the server panicked:\n{}",
        s.log_text()
    );
}
