//! The search differential: ~200 varied tickets (with updates and deletes) go into this store
//! and into the SQLite store; every query must give the in-memory evaluator's matches
//! (`docket_query::matches` over `ticket_doc`), and the SQLite store's exact pages and totals
//! for every sort field and direction, with and without a category scope.

use std::collections::BTreeSet;

use docket_core::model::{Change, Ticket};
use docket_core::search_doc::{list_sort_key, ticket_doc};
use docket_core::store::{SearchRequest, SortField, Store};
use docket_core::Error;
use docket_query::{Filter, KeywordField};
use docket_store_sqlite::{SqliteOptions, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{request, TestDb};

const WORDS: &[&str] = &[
    "disk",
    "full",
    "network",
    "down",
    "server",
    "jumping",
    "jumps",
    "cats",
    "Café",
    "Nancy's",
    "2.5.1",
    "deploy",
    "failed",
    "timeout",
    "database",
    "web01",
    "latency",
    "memory",
    "leak",
    "restart",
    "coffee",
    "alpha",
    "Émile",
    "éclair",
    "big",
    "the",
    "of",
    "db1.prod.acme.io",
    "e.g.",
    "main.rs",
    "10.0.0.1",
    "Grafana.Example.com",
];
const STATUSES: &[&str] = &[
    "open",
    "in_progress",
    "on_hold",
    "resolved",
    "closed",
    "draft",
];
const TYPES: &[&str] = &["task", "bug", "incident", "question"];
const CATEGORIES: &[&str] = &["general", "ops", "dev", ""];
const TAGS: &[&str] = &["x", "urgent", "ops", "Flag", "db"];
const PEOPLE: &[&str] = &["alice", "bob", "carol", "api_key_1"];

/// 2024-01-01T00:00:00Z.
const BASE: i64 = 1_704_067_200;
const DAY: i64 = 86_400;

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn words(rng: &mut StdRng, range: std::ops::Range<usize>) -> String {
    let n = rng.gen_range(range);
    (0..n)
        .map(|_| {
            let w = pick(rng, WORDS);
            match rng.gen_range(0..4) {
                0 => w.to_uppercase(),
                1 => {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                }
                _ => w.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn subset(rng: &mut StdRng, items: &[&str]) -> Vec<String> {
    items
        .iter()
        .filter(|_| rng.gen_bool(0.3))
        .map(|s| s.to_string())
        .collect()
}

/// Subjects whose NOCASE order is easy to get wrong: case, `_` between `Z` and `a`,
/// non-ASCII (not folded), prefixes, leading spaces, long ones that differ after 1024 bytes.
fn special_subjects() -> Vec<String> {
    let long = "Ω".repeat(600);
    vec![
        "apple pie".into(),
        "Apple pie".into(),
        "APPLE PIE".into(),
        "Apple".into(),
        "Zebra crossing".into(),
        "_underscore first".into(),
        "zebra".into(),
        "Émile report".into(),
        "émile report".into(),
        "Eclair".into(),
        "éclair".into(),
        "123 numbers".into(),
        "  leading spaces".into(),
        "[bracket] subject".into(),
        "~tilde".into(),
        format!("{long} b"),
        format!("{long} a"),
        format!("{long} A"),
        long.clone(),
        format!("{long}{long}"),
    ]
}

fn make_tickets() -> Vec<Ticket> {
    let mut rng = StdRng::seed_from_u64(20240615);
    let mut out = Vec::new();
    let specials = special_subjects();
    for i in 0..200 {
        let subject = if i < specials.len() {
            specials[i].clone()
        } else {
            words(&mut rng, 1..6)
        };
        let mut body = words(&mut rng, 0..40);
        match rng.gen_range(0..6) {
            0 => body.push_str("\n\n```\ncargo test --release\n```\n"),
            1 => body.push_str(" see https://grafana.example.com/d/1 for **details**"),
            2 => body.push_str("\n\n- disk full\n- memory leak"),
            3 => body.push_str(
                " [dashboard](https://db1.prod.acme.io:8443/x) and http://status.acme.io.",
            ),
            _ => {}
        }
        let mut changes = Vec::new();
        for c in 0..rng.gen_range(0..4) {
            changes.push(if rng.gen_bool(0.5) {
                Change {
                    id: format!("c{i}_{c}"),
                    kind: "comment".into(),
                    username: pick(&mut rng, PEOPLE).into(),
                    date: BASE + c,
                    body: Some(words(&mut rng, 1..10)),
                    ..Default::default()
                }
            } else {
                Change {
                    kind: "change".into(),
                    username: pick(&mut rng, PEOPLE).into(),
                    date: BASE + c,
                    key: Some("tags".into()),
                    value: Some(if rng.gen_bool(0.5) {
                        serde_json::json!(words(&mut rng, 2..3))
                    } else {
                        serde_json::json!([pick(&mut rng, WORDS), pick(&mut rng, WORDS)])
                    }),
                    ..Default::default()
                }
            });
        }
        // Few distinct dates, so sorts have ties that `num` must break.
        let created = BASE + DAY * rng.gen_range(0..300) / 7 * 7;
        out.push(Ticket {
            id: format!("t{i:03}"),
            subject,
            body,
            kind: pick(&mut rng, TYPES).into(),
            status: pick(&mut rng, STATUSES).into(),
            category: pick(&mut rng, CATEGORIES).into(),
            server: pick(&mut rng, &["web01", "db1", ""]).into(),
            username: pick(&mut rng, PEOPLE).into(),
            assignees: subset(&mut rng, PEOPLE),
            cc: subset(&mut rng, PEOPLE),
            tags: subset(&mut rng, TAGS),
            jobs: subset(&mut rng, &["j1", "j2", "J3"]),
            due: if rng.gen_bool(0.4) {
                0
            } else {
                BASE + DAY * rng.gen_range(0..400)
            },
            changes,
            created,
            modified: created + DAY * rng.gen_range(0..3),
            ..Default::default()
        });
    }
    // Beyond tsvector limits: positions past 16383 and a lexeme past 256 positions. A
    // clamped or truncated tsvector would get these phrases wrong.
    let mut long_body: Vec<String> = (0..16_380).map(|i| format!("filler{}", i % 50)).collect();
    long_body.extend(["wpre".into(), "gap".into(), "gap".into(), "gap".into()]);
    long_body.extend((0..700).map(|i| format!("more{}", i % 10)));
    long_body.extend(["zpost".into(), "omega".into(), "sigma".into()]);
    out.push(Ticket {
        id: "long".into(),
        subject: "very long ticket".into(),
        body: long_body.join(" "),
        kind: "task".into(),
        status: "open".into(),
        created: BASE,
        modified: BASE,
        ..Default::default()
    });
    let mut again = vec!["again"; 300].join(" ");
    again.push_str(" again final");
    out.push(Ticket {
        id: "again".into(),
        subject: "repeated words".into(),
        body: again,
        kind: "task".into(),
        status: "open".into(),
        created: BASE,
        modified: BASE,
        ..Default::default()
    });
    // A phrase never spans parts: subject "... disk", body "full ...".
    out.push(Ticket {
        id: "parts".into(),
        subject: "Broken disk".into(),
        body: "full stop here".into(),
        username: "alice".into(),
        kind: "task".into(),
        status: "open".into(),
        created: BASE,
        modified: BASE,
        ..Default::default()
    });
    out
}

const QUERIES: &[&str] = &[
    "*",
    "",
    "disk",
    "jumps",
    "jumping",
    "\"disk full\"",
    "\"full disk\"",
    "disk full",
    "-disk",
    "-disk -cats",
    "disk|network",
    "disk|network status:open",
    "subject:cafe",
    "subject:\"disk full\"",
    "nancys",
    "2.5.1",
    "grafana.example.com",
    "grafana",
    "example",
    "\"grafana example\"",
    "\"example com\"",
    "grafana_example_com",
    "db1.prod.acme.io",
    "db1",
    "acme",
    "\"prod acme\"",
    "\"acme io\"",
    "status.acme.io",
    "e.g.",
    "main.rs|10.0.0.1",
    "subject:main.rs",
    "changes:db1.prod",
    "cargo",
    "status:open",
    "status:closed|resolved",
    "-status:closed",
    "tags:x",
    "tags:flag",
    "tags:-x",
    "tags:x tags:urgent",
    "tags:x tags:urgent status:open -type:bug",
    "category:ops",
    "assignees:alice",
    "cc:bob",
    "server:web01",
    "jobs:j3",
    "username:bob",
    "type:bug",
    "num:>=50",
    "num:10..20",
    "num:<5",
    "created:2024-06",
    "created:2024-03-01..2024-05-31",
    "due:<2024-06-16",
    "-due:<2024-06-16",
    "due:2024",
    "modified:>2024-03-01",
    "changes:restart",
    "changes:\"memory leak\"",
    "-changes:restart",
    "changes:restart|leak -status:draft",
    "\"omega sigma\"",
    "\"wpre zpost\"",
    "\"wpre gap gap gap\"",
    "\"again final\"",
    "\"again again final\"",
    // Long phrases (over docket_query::phrase::SHORT_PHRASE_WORDS): matched outside FTS5
    // and, on raw fields, outside strpos.
    "\"wpre gap gap gap more0\"",
    "\"gap gap gap more0 more2\"",
    "\"filler1 filler2 filler3 filler4 filler5\"",
    "\"again again again again again final\"",
    "-\"again again again again again final\" again",
    "\"zpost omega sigma wpre gap\" | \"more7 more8 more9 zpost omega\"",
    "\"broken disk full stop here\"",
    "again",
    "filler7 omega",
    "\"broken disk full\"",
    "subject:\"broken disk\"",
    "emile",
    "eclair",
    "zzzzz",
    "alpha -tags:x",
    "((status = \"open\" | tags = \"x\") & subject =~ \"disk\")",
    "(subject !~ \"disk full\")",
    "(status = \"open\" & (subject =~ \"disk\" | body =~ \"coffee\"))",
    "((tags = \"x\" | tags = \"urgent\") & (type = \"bug\" | type = \"incident\") & num >= 10)",
    "(body =~ \"memory leak\" | changes =~ \"restart\")",
    "(due > \"2024-03-01\" & due < \"2024-09-01\")",
    "(body !~ \"the\" & status = \"open\")",
];

const SORTS: [SortField; 10] = [
    SortField::Id,
    SortField::Num,
    SortField::Created,
    SortField::Modified,
    SortField::Due,
    SortField::Subject,
    SortField::Status,
    SortField::Type,
    SortField::Assignees,
    SortField::Tags,
];

fn ids(rows: &[Ticket]) -> Vec<String> {
    rows.iter().map(|t| t.id.clone()).collect()
}

/// The same updates and deletes on both stores.
async fn churn(store: &dyn Store) {
    for i in (0..200).step_by(13) {
        let id = format!("t{i:03}");
        store
            .update_ticket(
                &id,
                Box::new(move |t| {
                    t.subject = format!("{} updated disk {i}", t.subject);
                    t.status = STATUSES[i % STATUSES.len()].into();
                    t.tags.push("x".into());
                    // Case and accents: list sort keys are normalized like keywords.
                    match i % 3 {
                        0 => t.assignees = vec!["Zoë".into(), "Émile".into()],
                        1 => t.assignees.push("BOB".into()),
                        _ => t.assignees.clear(),
                    }
                    t.modified += 1;
                    t.changes.push(Change {
                        kind: "comment".into(),
                        username: "bob".into(),
                        date: BASE,
                        body: Some("please restart the server".into()),
                        ..Default::default()
                    });
                    Ok(())
                }),
            )
            .await
            .unwrap()
            .unwrap();
    }
    for i in (5..200).step_by(31) {
        store
            .delete_ticket(&format!("t{i:03}"), Box::new(|_| Ok(())))
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn search_matches_the_evaluator_and_the_sqlite_store() {
    let db = TestDb::new().await;
    let pg = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
        .await
        .unwrap();
    for t in make_tickets() {
        let a = pg.create_ticket(t.clone()).await.unwrap().unwrap();
        let b = lite.create_ticket(t).await.unwrap().unwrap();
        assert_eq!(a.num, b.num);
    }
    churn(&pg).await;
    churn(&lite).await;
    // Both stores hold the same tickets.
    let all = pg
        .search_tickets(&request("*", SortField::Num, false))
        .await
        .unwrap();
    let all_lite = lite
        .search_tickets(&request("*", SortField::Num, false))
        .await
        .unwrap();
    assert_eq!(all.total, all_lite.total);
    assert_eq!(ids(&all.rows), ids(&all_lite.rows));
    let tickets = all.rows;
    assert!(tickets.len() > 190);

    let scopes: [Option<BTreeSet<String>>; 3] = [
        None,
        Some(BTreeSet::from(["ops".to_string(), "dev".to_string()])),
        Some(BTreeSet::new()),
    ];
    // The fields beyond tsvector limits are stored raw, and their phrases are exact.
    let raw: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM tickets WHERE body_raw IS NOT NULL ORDER BY num")
            .fetch_all(&mut db.conn().await)
            .await
            .unwrap();
    assert_eq!(raw, vec![("long".to_string(),), ("again".to_string(),)]);
    for (query, want) in [
        ("\"omega sigma\"", vec!["long"]),
        ("\"wpre zpost\"", vec![]),
        ("\"wpre gap gap gap\"", vec!["long"]),
        ("\"again final\"", vec!["again"]),
        ("\"again again again again again final\"", vec!["again"]),
        ("\"wpre gap gap gap more0\"", vec!["long"]),
        ("\"wpre gap gap gap more1\"", vec![]),
        ("\"broken disk full\"", vec![]),
        ("subject:\"broken disk\"", vec!["parts"]),
    ] {
        assert_eq!(super::find(&pg, query).await, want, "{query}");
    }

    let mut checked = 0;
    let mut selective = 0;
    for query in QUERIES {
        let base = request(query, SortField::Num, false);
        // The evaluator's matches, in number order.
        let expected: Vec<String> = tickets
            .iter()
            .filter(|t| docket_query::matches(&base.filter, &ticket_doc(t)))
            .map(|t| t.id.clone())
            .collect();
        let page = pg.search_tickets(&base).await.unwrap();
        assert_eq!(
            ids(&page.rows),
            expected,
            "query {query:?} vs the evaluator"
        );
        assert_eq!(page.total, expected.len() as u64, "total of {query:?}");
        selective += usize::from(!expected.is_empty() && expected.len() < tickets.len());

        for scope in &scopes {
            for sort in SORTS {
                for descending in [false, true] {
                    for (offset, limit) in [(0, 1000), (3, 7)] {
                        let req = SearchRequest {
                            categories: scope.clone(),
                            sort_by: sort,
                            descending,
                            offset,
                            limit,
                            ..base.clone()
                        };
                        let got = pg.search_tickets(&req).await.unwrap();
                        let want = lite.search_tickets(&req).await.unwrap();
                        assert_eq!(
                            ids(&got.rows),
                            ids(&want.rows),
                            "query {query:?} sort {sort:?} desc {descending} scope {scope:?} \
                             offset {offset}"
                        );
                        assert_eq!(got.total, want.total, "total of {query:?} {scope:?}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, QUERIES.len() * 3 * SORTS.len() * 2 * 2);

    // The list sorts follow their definition: the first normalized value, ties by number
    // (in the same direction), empty lists first going up.
    for (sort, list) in [
        (
            SortField::Assignees,
            (|t: &Ticket| t.assignees.clone()) as fn(&Ticket) -> Vec<String>,
        ),
        (SortField::Tags, |t: &Ticket| t.tags.clone()),
    ] {
        let mut expected: Vec<(String, i64, String)> = tickets
            .iter()
            .map(|t| (list_sort_key(&list(t)), t.num, t.id.clone()))
            .collect();
        expected.sort();
        assert_eq!(expected[0].0, "", "some tickets have an empty list");
        if sort == SortField::Assignees {
            assert!(expected.iter().any(|e| e.0 == "emile"), "keys are folded");
        }
        let mut want: Vec<String> = expected.into_iter().map(|e| e.2).collect();
        for descending in [false, true] {
            let req = SearchRequest {
                sort_by: sort,
                descending,
                ..request("*", SortField::Num, false)
            };
            for store in [&pg as &dyn Store, &lite] {
                let got = store.search_tickets(&req).await.unwrap();
                assert_eq!(ids(&got.rows), want, "{sort:?} desc {descending}");
            }
            want.reverse();
        }
    }
    // The data makes most queries select something but not everything.
    assert!(
        selective * 10 >= QUERIES.len() * 8,
        "only {selective} of {} queries are selective",
        QUERIES.len()
    );

    // A query over the term limit fails with the SQLite store's message.
    let huge = SearchRequest {
        filter: Filter::Or(
            (0..1001)
                .map(|i| Filter::Keyword {
                    field: KeywordField::Tags,
                    value: format!("t{i}"),
                })
                .collect(),
        ),
        ..request("*", SortField::Num, false)
    };
    let (a, b) = (
        pg.search_tickets(&huge).await,
        lite.search_tickets(&huge).await,
    );
    match (a, b) {
        (Err(Error::Ticket(a)), Err(Error::Ticket(b))) => assert_eq!(a, b),
        other => panic!("expected the term limit error from both: {other:?}"),
    }
    // A thousand terms are fine (and deep ORs do not overflow anything).
    let wide = SearchRequest {
        filter: Filter::Or(
            (0..1000)
                .map(|i| Filter::Keyword {
                    field: KeywordField::Tags,
                    value: if i == 999 {
                        "x".into()
                    } else {
                        format!("t{i}")
                    },
                })
                .collect(),
        ),
        ..request("*", SortField::Num, false)
    };
    assert_eq!(
        pg.search_tickets(&wide).await.unwrap().total,
        lite.search_tickets(&wide).await.unwrap().total
    );
    // Odd keyword values (NUL, long, non-ASCII) are found exactly, never an error.
    let odd = ["a\0b", &"y".repeat(700), "ünï"];
    let mut t = super::ticket("odd", "odd keywords");
    t.tags = odd.iter().map(|s| s.to_string()).collect();
    pg.create_ticket(t).await.unwrap().unwrap();
    for value in odd {
        let req = SearchRequest {
            filter: Filter::Keyword {
                field: KeywordField::Tags,
                value: docket_query::normalize_keyword(value),
            },
            ..request("*", SortField::Num, false)
        };
        assert_eq!(
            ids(&pg.search_tickets(&req).await.unwrap().rows),
            vec!["odd"]
        );
    }
    pg.close().await;
    lite.close().await;
}
