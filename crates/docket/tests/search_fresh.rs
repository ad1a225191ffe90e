//! Search reflects every write at once (SPEC §3: the index commits with the ticket), with no
//! retry loop anywhere, and a key limited to categories never sees other tickets.

mod common;

use common::Server;
use serde_json::{json, Value};

/// Runs a search with the given key; returns (ids of rows, list.length).
async fn search_as(s: &Server, key: &str, query: &str) -> (Vec<String>, u64) {
    let (status, v) = s
        .call_as(
            key,
            "search_tickets",
            json!({"query": query, "limit": 1000, "sort_dir": 1}),
        )
        .await;
    assert_eq!(
        (status, &v["code"]),
        (200, &json!(0)),
        "query {query:?}: {v}"
    );
    let ids = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    (ids, v["list"]["length"].as_u64().expect("list.length"))
}

async fn search(s: &Server, query: &str) -> (Vec<String>, u64) {
    let key = s.key.clone();
    search_as(s, &key, query).await
}

async fn ok(s: &Server, name: &str, params: Value) -> Value {
    let (status, v) = s.call(name, params.clone()).await;
    assert_eq!(
        (status, &v["code"]),
        (200, &json!(0)),
        "{name} {params}: {v}"
    );
    v
}

#[tokio::test]
async fn writes_are_searchable_immediately() {
    let s = Server::start().await;
    // `flag` may be a built-in tag already.
    let (_, v) = s
        .call("create_tag", json!({"id": "flag", "title": "Flag"}))
        .await;
    assert!(
        v["code"] == json!(0)
            || v["description"]
                .as_str()
                .unwrap_or("")
                .contains("already exists"),
        "{v}"
    );
    // Many rounds, each write followed at once by a search: any index lag would show.
    for round in 0..25 {
        let word = format!("plover{round}x");
        let t = s
            .create(json!({"subject": format!("Fresh {word} ticket"), "body": "nothing else", "type": "task"}))
            .await;
        let id = t["id"].as_str().unwrap().to_string();
        assert_eq!(
            search(&s, &word).await,
            (vec![id.clone()], 1),
            "create, round {round}"
        );
        assert_eq!(
            search(&s, &format!("subject:{word}")).await,
            (vec![id.clone()], 1)
        );

        // Update the subject: the old word is gone, the new one is found.
        let new_word = format!("quokka{round}y");
        ok(
            &s,
            "update_ticket",
            json!({"id": id, "subject": format!("Renamed {new_word}")}),
        )
        .await;
        assert_eq!(
            search(&s, &word).await,
            (vec![], 0),
            "old subject word, round {round}"
        );
        assert_eq!(
            search(&s, &new_word).await,
            (vec![id.clone()], 1),
            "new subject word, round {round}"
        );
        // The old subject is in the history (a change value) now.
        assert_eq!(
            search(&s, &format!("changes:{new_word}")).await,
            (vec![id.clone()], 1)
        );

        // Status update: keyword index follows.
        ok(&s, "update_ticket", json!({"id": id, "status": "on_hold"})).await;
        assert_eq!(
            search(&s, &format!("{new_word} status:on_hold")).await,
            (vec![id.clone()], 1)
        );
        assert_eq!(
            search(&s, &format!("{new_word} status:open")).await,
            (vec![], 0)
        );

        // A comment is found through changes:, not through body.
        let comment_word = format!("wombat{round}z");
        ok(
            &s,
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": format!("We saw **{comment_word}** here")}}),
        )
        .await;
        assert_eq!(
            search(&s, &format!("changes:{comment_word}")).await,
            (vec![id.clone()], 1),
            "comment, round {round}"
        );
        assert_eq!(
            search(&s, &comment_word).await,
            (vec![], 0),
            "a comment is not body text"
        );

        // Editing the comment replaces its words; deleting it removes them.
        let (_, v) = s.call("get_ticket", json!({"id": id})).await;
        let change_id = v["ticket"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "comment")
            .expect("the comment")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let edited_word = format!("numbat{round}q");
        ok(
            &s,
            "update_ticket_change",
            json!({"id": id, "change_id": change_id, "change": {"body": format!("now {edited_word}")}}),
        )
        .await;
        assert_eq!(
            search(&s, &format!("changes:{comment_word}")).await,
            (vec![], 0),
            "edited comment, round {round}"
        );
        assert_eq!(
            search(&s, &format!("changes:{edited_word}")).await,
            (vec![id.clone()], 1)
        );
        ok(
            &s,
            "update_ticket_change",
            json!({"id": id, "change_id": change_id, "delete": true}),
        )
        .await;
        assert_eq!(
            search(&s, &format!("changes:{edited_word}")).await,
            (vec![], 0),
            "deleted comment, round {round}"
        );

        // Tags and due follow updates too.
        ok(
            &s,
            "update_ticket",
            json!({"id": id, "tags": ["flag"], "due": "2031-05-06"}),
        )
        .await;
        assert_eq!(
            search(&s, &format!("{new_word} tags:flag due:2031-05")).await,
            (vec![id.clone()], 1)
        );
        ok(&s, "update_ticket", json!({"id": id, "tags": [], "due": 0})).await;
        assert_eq!(
            search(&s, &format!("{new_word} tags:flag")).await,
            (vec![], 0)
        );
        assert_eq!(
            search(&s, &format!("{new_word} due:2031")).await,
            (vec![], 0)
        );
        assert_eq!(
            search(&s, &format!("{new_word} -due:2031")).await,
            (vec![id.clone()], 1)
        );

        // Delete: gone from every kind of search, and from the count.
        ok(&s, "delete_ticket", json!({"id": id})).await;
        assert_eq!(
            search(&s, &new_word).await,
            (vec![], 0),
            "deleted, round {round}"
        );
        assert_eq!(
            search(&s, &format!("changes:{comment_word}")).await,
            (vec![], 0)
        );
        assert_eq!(
            search(&s, "*").await,
            (vec![], 0),
            "nothing left after round {round}"
        );
        assert_eq!(search(&s, &format!("-{new_word}")).await, (vec![], 0));
    }
}

#[tokio::test]
async fn category_keys_see_only_their_categories() {
    let s = Server::start().await;
    for cat in ["cat_a", "cat_b"] {
        ok(&s, "create_category", json!({"id": cat, "title": cat})).await;
    }
    // `flag` may be a built-in tag already.
    let (_, v) = s
        .call("create_tag", json!({"id": "flag", "title": "Flag"}))
        .await;
    assert!(
        v["code"] == json!(0)
            || v["description"]
                .as_str()
                .unwrap_or("")
                .contains("already exists"),
        "{v}"
    );
    let mut in_a = Vec::new();
    for i in 0..12 {
        let category = match i % 3 {
            0 => "cat_a",
            1 => "cat_b",
            _ => "",
        };
        let t = s
            .create(json!({
                "subject": format!("Shared sparrow subject {i}"),
                "body": "common text",
                "category": category,
                "tags": ["flag"],
                "status": if i % 2 == 0 { "open" } else { "closed" },
            }))
            .await;
        if category == "cat_a" {
            in_a.push(t["id"].as_str().unwrap().to_string());
        }
    }
    let key_a = s
        .key_with(&["create_tickets", "edit_tickets"], &["cat_a"])
        .await;

    let queries = [
        "*",
        "sparrow",
        "\"shared sparrow\"",
        "-nosuchword",
        "tags:flag",
        "status:open|closed",
        "category:cat_b",
        "category:cat_a|cat_b",
        "-category:cat_a",
        "(category = \"cat_b\" | subject =~ \"sparrow\")",
        "num:>=1",
    ];
    let admin_key = s.key.clone();
    for query in queries {
        let (ids, total) = search_as(&s, &key_a, query).await;
        let (all_ids, _) = search_as(&s, &admin_key, query).await;
        let expected: Vec<String> = all_ids.into_iter().filter(|id| in_a.contains(id)).collect();
        assert_eq!(ids, expected, "key limited to cat_a, query {query:?}");
        assert_eq!(total, expected.len() as u64, "list.length for {query:?}");
    }
    // Paging never leaks either: the count is the scoped one.
    let (status, v) = s
        .call_as(
            &key_a,
            "search_tickets",
            json!({"query": "*", "limit": 1, "offset": 0}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["list"]["length"], json!(in_a.len()));
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);

    // A ticket the key files in its own category shows up at once; moving it out hides it.
    let (_, v) = s
        .call_as(
            &key_a,
            "create_ticket",
            json!({"subject": "Kestrel in a", "category": "cat_a"}),
        )
        .await;
    assert_eq!(v["code"], json!(0), "{v}");
    let id = v["ticket"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        search_as(&s, &key_a, "kestrel").await,
        (vec![id.clone()], 1)
    );
    ok(&s, "update_ticket", json!({"id": id, "category": "cat_b"})).await;
    assert_eq!(search_as(&s, &key_a, "kestrel").await, (vec![], 0));
    assert_eq!(search(&s, "kestrel").await, (vec![id], 1));
}

/// Subjects and usernames are plain text lines, not Markdown (SPEC §2): a subject that looks
/// like a Markdown list item or emphasis is still found by its words.
#[tokio::test]
async fn subjects_are_plain_text() {
    let s = Server::start().await;
    let rows = [
        ("2024. Year in review", "2024"),
        ("1) Disk full", "1"),
        ("- minus sign first", "minus"),
        ("__init__ fails on import", "__init__"),
        ("# 42 servers down", "42"),
        ("* starred subject", "starred"),
        ("> quoted subject line", "quoted"),
    ];
    for (subject, word) in rows {
        let t = s.create(json!({"subject": subject})).await;
        let id = t["id"].as_str().unwrap().to_string();
        let stored = t["subject"].as_str().unwrap().to_string();
        for query in [
            format!("\"{stored}\""),
            format!("subject:\"{stored}\""),
            format!("subject:{word}"),
            format!("(subject = {})", serde_json::to_string(&stored).unwrap()),
        ] {
            let (ids, _) = search(&s, &query).await;
            assert!(
                ids.contains(&id),
                "subject {stored:?} not found by {query:?}"
            );
        }
        // A change value (the new subject after an update) is plain text too.
        ok(
            &s,
            "update_ticket",
            json!({"id": id, "subject": format!("{subject} again")}),
        )
        .await;
        let (ids, _) = search(&s, &format!("changes:\"{stored} again\"")).await;
        assert!(
            ids.contains(&id),
            "changed subject {stored:?} not found in changes"
        );
        ok(&s, "delete_ticket", json!({"id": id})).await;
    }
}
