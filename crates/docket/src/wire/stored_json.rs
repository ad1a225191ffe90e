//! Ticket replies written from the JSON text the store keeps, without building a `Ticket`
//! or a `serde_json::Value` for them. The stores keep each ticket as
//! `serde_json::to_string(&Ticket)` (see `Store::stored_ticket`), which is exactly what the
//! full reply shape is, so a full ticket is copied as it is; a `compact` search row is one
//! pass over that text that leaves out `body` and writes `changes` as its length.

use std::borrow::Cow;
use std::fmt;

use docket_core::Error;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Writes `[row,row,...]`, each row as `shape` makes it.
pub fn rows(stored: &[String], compact: bool) -> Result<Vec<u8>, Error> {
    let size: usize = stored.iter().map(String::len).sum();
    let mut out = Vec::with_capacity(if compact { size / 4 } else { size } + stored.len() + 2);
    out.push(b'[');
    for (i, row) in stored.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if compact {
            compact_row(row, &mut out)?;
        } else {
            out.extend_from_slice(row.as_bytes());
        }
    }
    out.push(b']');
    Ok(out)
}

/// Appends the `compact` form of one stored ticket: every member as stored except `body`
/// (left out) and `changes` (its number of entries).
pub fn compact_row(stored: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut de = serde_json::Deserializer::from_str(stored);
    CompactRow { out }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))
}

struct CompactRow<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for CompactRow<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CompactRow<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a ticket object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'{');
        let mut first = true;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "body" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match &key {
                // Borrowed: the stored key had no escapes, so it is its own JSON text.
                Cow::Borrowed(k) => {
                    out.push(b'"');
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'"');
                }
                Cow::Owned(k) => serde_json::to_writer(&mut *out, k).map_err(de::Error::custom)?,
            }
            out.push(b':');
            if key == "changes" {
                let n = map.next_value::<Count>()?.0;
                out.extend_from_slice(n.to_string().as_bytes());
            } else {
                let raw: &'de RawValue = map.next_value()?;
                out.extend_from_slice(raw.get().as_bytes());
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The number of entries of an array (each skipped unread).
struct Count(u64);

impl<'de> de::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        deserializer.deserialize_seq(CountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::model::{Change, Ticket};
    use serde_json::{json, Value};

    fn sample() -> Ticket {
        Ticket {
            id: "tk1".into(),
            num: 7,
            subject: "Disk \"full\" \u{e9}".into(),
            body: "a long body\nwith lines".into(),
            tags: vec!["flag".into()],
            changes: vec![
                Change {
                    kind: "change".into(),
                    username: "ann".into(),
                    date: 5,
                    key: Some("status".into()),
                    value: Some(json!({"b": [1, 2], "a": "x"})),
                    ..Default::default()
                },
                Change::default(),
            ],
            ..Default::default()
        }
    }

    /// The shapes the typed path made (wire/tickets.rs before this module).
    fn typed_compact(t: &Ticket) -> Value {
        let mut v = serde_json::to_value(t).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("body");
        m.insert("changes".into(), json!(t.changes.len()));
        v
    }

    #[test]
    fn stored_rows_equal_the_typed_shapes() {
        let t = sample();
        let stored = vec![
            serde_json::to_string(&t).unwrap(),
            serde_json::to_string(&Ticket::default()).unwrap(),
        ];
        let compact: Value = serde_json::from_slice(&rows(&stored, true).unwrap()).unwrap();
        assert_eq!(
            compact,
            json!([typed_compact(&t), typed_compact(&Ticket::default())])
        );
        let full: Value = serde_json::from_slice(&rows(&stored, false).unwrap()).unwrap();
        assert_eq!(
            full,
            json!([
                serde_json::to_value(&t).unwrap(),
                serde_json::to_value(Ticket::default()).unwrap()
            ])
        );
    }

    #[test]
    fn escaped_keys_and_corrupt_rows() {
        let mut out = Vec::new();
        compact_row(
            r#"{"b\u006fdy":"x","changes":[1,[2],{}],"k\"":1}"#,
            &mut out,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"changes": 3, "k\"": 1}));
        assert!(compact_row("{\"a\":", &mut Vec::new()).is_err());
        assert!(compact_row("[1]", &mut Vec::new()).is_err());
        assert!(compact_row("{} x", &mut Vec::new()).is_err());
    }
}
