//! The in-memory keyword index stays equal to `tickets` / `ticket_keywords` through every
//! kind of write, failed writes in a group commit, reindexing, reopening and writes from
//! another process; and searches through it answer like SQL alone.

use std::collections::{BTreeMap, BTreeSet};

use docket_core::model::Ticket;
use docket_core::store::{SearchRequest, SortField, Store};
use docket_core::Error;

use crate::keyword_index::{self, State};
use crate::{SqliteOptions, SqliteStore};

type Sets = BTreeMap<(String, String), BTreeSet<u32>>;

fn ticket(id: &str, status: &str, tags: &[&str]) -> Ticket {
    Ticket {
        id: id.into(),
        subject: format!("disk {id}"),
        status: status.into(),
        kind: "task".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

async fn open(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions::default())
        .await
        .unwrap()
}

/// What the database holds: every ticket number, and every keyword term's numbers.
async fn database_sets(store: &SqliteStore) -> (BTreeSet<u32>, Sets) {
    let all: Vec<(i64,)> = sqlx::query_as("SELECT num FROM tickets")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT field, value, num FROM ticket_keywords")
            .fetch_all(&store.reader)
            .await
            .unwrap();
    let mut terms = Sets::new();
    for (f, v, n) in rows {
        terms.entry((f, v)).or_default().insert(n as u32);
    }
    (all.into_iter().map(|(n,)| n as u32).collect(), terms)
}

fn memory_sets(state: &State) -> (BTreeSet<u32>, Sets) {
    let mut terms = Sets::new();
    for (f, values) in &state.terms {
        for (v, set) in values {
            terms.insert((f.clone(), v.clone()), set.iter().collect());
        }
    }
    (state.all.iter().collect(), terms)
}

/// Asserts the index is usable, at the database's epoch, and holds exactly what the
/// database holds for every term it keeps in memory; then has the writer load every other
/// term (as searches would) and asserts again, so every term is compared.
async fn assert_index_exact(store: &SqliteStore) {
    let (all, terms) = database_sets(store).await;
    let check = |state: &State, every_term: bool| {
        let (mem_all, mem_terms) = memory_sets(state);
        assert_eq!(mem_all, all, "the set of all tickets");
        for (term, set) in &mem_terms {
            let want = terms.get(term).cloned().unwrap_or_default();
            assert_eq!(set, &want, "term {term:?}");
        }
        if every_term {
            for (term, set) in &terms {
                assert_eq!(mem_terms.get(term), Some(set), "term {term:?}");
            }
        }
    };
    let state = store.index.snapshot().expect("the index is usable");
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert_eq!(
        state.epoch,
        store
            .searcher
            .run(later, keyword_index::epoch_of)
            .await
            .unwrap()
    );
    check(&state, false);
    for (field, value) in terms.keys() {
        store.writer.promote(field, value);
    }
    // Two writes in a row: the second is taken after the first batch's control work.
    for _ in 0..2 {
        store.write(|_| Ok(())).await.unwrap();
    }
    check(&store.index.snapshot().unwrap(), true);
}

async fn search(store: &SqliteStore, query: &str, sort_by: SortField) -> (u64, Vec<String>) {
    let ctx = docket_query::LowerCtx {
        tz: jiff::tz::TimeZone::UTC,
        now: jiff::Timestamp::now(),
    };
    let page = store
        .search_tickets(&SearchRequest {
            filter: docket_query::compile(query, &ctx).unwrap(),
            categories: None,
            sort_by,
            descending: true,
            offset: 1,
            limit: 5,
        })
        .await
        .unwrap();
    (page.total, page.rows.into_iter().map(|t| t.id).collect())
}

#[tokio::test]
async fn the_index_follows_creates_updates_deletes_reindex_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = open(&path).await;
    assert_index_exact(&store).await;
    for i in 0..30 {
        let status = ["open", "closed", "on_hold"][i % 3];
        let tags: &[&str] = if i % 4 == 0 { &["important"] } else { &[] };
        store
            .create_ticket(ticket(&format!("t{i}"), status, tags))
            .await
            .unwrap()
            .unwrap();
    }
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 10);

    // A keyword change: status and tags move between terms.
    store
        .update_ticket(
            "t0",
            Box::new(|t| {
                t.status = "closed".into();
                t.tags = vec!["flag".into()];
                Ok(())
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 9);
    assert_eq!(search(&store, "tags:flag", SortField::Num).await.0, 1);

    // A change of text alone moves no set but still moves the epoch (the parallel text
    // search relies on it).
    let epoch = store.index.epoch().unwrap();
    store
        .update_ticket(
            "t1",
            Box::new(|t| {
                t.subject = "network down".into();
                Ok(())
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store.index.epoch().unwrap() > epoch);
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "network", SortField::Num).await.0, 1);

    store
        .delete_ticket("t3", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "*", SortField::Num).await.0, 29);
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 8);

    // Lose the keyword rows (the triggers see it), then reindex.
    store
        .write(|c| {
            c.execute("DELETE FROM ticket_keywords", [])
                .map(drop)
                .map_err(crate::writer::sql_err)
        })
        .await
        .unwrap();
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 0);
    let mut after = 0;
    while let Some((last, _)) = store.reindex_batch(after, 7).await.unwrap() {
        after = last;
    }
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 8);

    // Reopening builds the same index from the database.
    let before = memory_sets(&store.index.snapshot().unwrap());
    store.close().await;
    let store = open(&path).await;
    assert_eq!(memory_sets(&store.index.snapshot().unwrap()), before);
    assert_index_exact(&store).await;
    store.close().await;
}

#[tokio::test]
async fn failed_writes_in_a_group_commit_leave_no_index_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.db")).await;
    store
        .create_ticket(ticket("base", "open", &["important"]))
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..90 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                // Changes keywords, then fails.
                0 => store
                    .update_ticket(
                        "base",
                        Box::new(|t| {
                            t.status = "poisoned".into();
                            t.tags = vec!["flag".into()];
                            Err(Error::Ticket("rejected".into()))
                        }),
                    )
                    .await
                    .map(|_| false),
                // Inserts a whole ticket (row, keywords, text), then fails.
                1 => {
                    let t = ticket(&format!("ghost{i}"), "poisoned", &["flag"]);
                    store
                        .write(move |c| {
                            crate::writer::run_now(docket_core::kernel::create(
                                &mut crate::write_tx::SqliteTx(c),
                                t,
                            ))?;
                            Err::<(), _>(Error::Ticket("rejected".into()))
                        })
                        .await
                        .map(|_| false)
                }
                _ => store
                    .create_ticket(ticket(&format!("t{i}"), "open", &[]))
                    .await
                    .map(|t| t.is_some()),
            }
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(true) if i % 3 == 2 => {}
            Err(Error::Ticket(_)) if i % 3 != 2 => {}
            other => panic!("write {i}: unexpected {other:?}"),
        }
    }
    assert_index_exact(&store).await;
    assert_eq!(search(&store, "status:poisoned", SortField::Num).await.0, 0);
    assert_eq!(search(&store, "tags:flag", SortField::Num).await.0, 0);
    assert_eq!(search(&store, "status:open", SortField::Num).await.0, 31);
    assert_eq!(search(&store, "*", SortField::Num).await.0, 31);
    store.close().await;
}

#[tokio::test]
async fn searches_through_the_index_answer_like_sql_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.db")).await;
    for i in 0..60u32 {
        let mut t = ticket(
            &format!("t{i:02}"),
            ["open", "closed", "on_hold"][(i % 3) as usize],
            if i % 4 == 0 { &["important"] } else { &[] },
        );
        t.subject = format!(
            "{} {}",
            ["disk full", "network down", "disk slow"][(i % 5 % 3) as usize],
            i
        );
        t.kind = ["task", "bug"][(i % 7 % 2) as usize].into();
        t.created = 1_700_000_000 + i64::from((i * 7919) % 60) * 86_400;
        t.due = if i % 2 == 0 { t.created + 86_400 } else { 0 };
        // Few distinct first assignees (and some none), so the list sorts have ties.
        t.assignees = match i % 4 {
            0 => vec![],
            1 => vec!["Carol".into(), "bob".into()],
            2 => vec!["émile".into()],
            _ => vec!["bob".into()],
        };
        store.create_ticket(t).await.unwrap().unwrap();
    }
    let queries = [
        "*",
        "status:open",
        "status:open tags:important",
        "(status = \"open\" & (tags = \"important\" | type = \"bug\"))",
        "disk status:open",
        "-status:closed",
        "disk -status:closed -type:bug",
        "status:open | \"disk full\"",
        "num:>10 num:<=40 status:open",
        "status:nothing",
        "disk",
        "\"disk full\"",
        "created:>=2023-11-20 status:closed",
        "due:>=2023-11-01 | tags:important",
        "-disk",
    ];
    let sorts = [
        SortField::Num,
        SortField::Created,
        SortField::Due,
        SortField::Subject,
        SortField::Status,
        SortField::Assignees,
        SortField::Tags,
    ];
    let mut indexed = Vec::new();
    for q in queries {
        for s in sorts {
            indexed.push(search(&store, q, s).await);
        }
    }
    // The same searches with the index out of the way (the SQL-only path).
    store.index.replace(None);
    let mut sql_only = Vec::new();
    for q in queries {
        for s in sorts {
            sql_only.push(search(&store, q, s).await);
        }
    }
    assert_eq!(indexed, sql_only);
    assert!(indexed.iter().any(|(n, _)| *n > 5));
    store.close().await;
}

#[tokio::test]
async fn writes_from_another_process_are_seen_and_the_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let server = open(&path).await;
    server
        .create_ticket(ticket("a", "open", &[]))
        .await
        .unwrap()
        .unwrap();
    // Another process (a CLI import, say) writes tickets to the same file.
    let other = open(&path).await;
    other
        .create_ticket(ticket("b", "open", &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(search(&server, "status:open", SortField::Num).await.0, 2);
    // The search asked the writer to rebuild; a write after that finds it done.
    server
        .create_ticket(ticket("c", "open", &[]))
        .await
        .unwrap()
        .unwrap();
    assert_index_exact(&server).await;
    assert_eq!(search(&server, "status:open", SortField::Num).await.0, 3);
    other.close().await;
    server.close().await;
}
