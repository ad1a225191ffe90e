//! The `compact` form of a stored ticket (`search_tickets` with `compact`): every member as
//! stored except `body` (left out) and `changes` (written as its number of entries). One
//! pass over the stored JSON text, without building a `Ticket` or a `serde_json::Value`.
//! The SQLite store keeps this form ready for tickets that read the same to every reader
//! (its migration 0012 writes it with SQL; a test there checks both agree).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::Error;

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

/// [`compact_row`] as a new string.
pub fn compact(stored: &str) -> Result<String, Error> {
    let mut out = Vec::with_capacity(stored.len() / 4);
    compact_row(stored, &mut out)?;
    String::from_utf8(out).map_err(|e| Error::Internal(format!("compact row: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, Ticket};
    use serde_json::{json, Value};

    /// The shape the typed path made (a `Value` with `body` removed and `changes` counted).
    fn typed_compact(t: &Ticket) -> Value {
        let mut v = serde_json::to_value(t).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("body");
        m.insert("changes".into(), json!(t.changes.len()));
        v
    }

    #[test]
    fn compact_equals_the_typed_shape() {
        let t = Ticket {
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
        };
        for t in [t, Ticket::default()] {
            let text = compact(&serde_json::to_string(&t).unwrap()).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v, typed_compact(&t));
        }
    }

    #[test]
    fn escaped_keys_and_corrupt_rows() {
        let text = compact(r#"{"b\u006fdy":"x","changes":[1,[2],{}],"k\"":1}"#).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"changes": 3, "k\"": 1}));
        assert!(compact("{\"a\":").is_err());
        assert!(compact("[1]").is_err());
        assert!(compact("{} x").is_err());
    }
}
