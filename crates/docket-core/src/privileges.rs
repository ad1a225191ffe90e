//! The privileges granted to a user, an API key or a role.
//!
//! xyOps writes them as an object of `name: true` pairs; Docket before issue 12 wrote (and
//! only accepted) an array of names. Both forms are read — so xyOps clients and records
//! stored by older Docket versions keep working — and the object form is what is written
//! and sent. Inside, privileges are a sorted set of granted names.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A sorted set of granted privilege names; serialized as `{"name": true, …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges(BTreeSet<String>);

impl Privileges {
    /// The privileges named by `names`.
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Privileges(names.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The granted names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Reads privileges in any accepted form: an object of `name: flag` pairs (`true` or
    /// `1` grants; `false`, `0`, `""` and `null` do not), an array of names, or a
    /// comma-separated string of names. `field` names the parameter in error messages.
    pub fn parse(value: &Value, field: &str) -> Result<Self, String> {
        match value {
            Value::Object(pairs) => Self::from_object(pairs, field),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_string).ok_or_else(|| {
                        format!(
                            "Malformed parameter: {field} (an array of privileges must hold names, got {item})"
                        )
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()
                .map(Privileges),
            Value::String(s) => Ok(Self::from_names(
                s.split(',').map(str::trim).filter(|p| !p.is_empty()),
            )),
            Value::Null => Ok(Self::default()),
            other => Err(format!(
                "Malformed parameter: {field} (must be an object of name: true pairs, got {other})"
            )),
        }
    }

    fn from_object(pairs: &Map<String, Value>, field: &str) -> Result<Self, String> {
        let mut granted = BTreeSet::new();
        for (name, flag) in pairs {
            if granted_flag(flag).ok_or_else(|| {
                format!("Malformed parameter: {field}.{name} (must be true or false, got {flag})")
            })? {
                granted.insert(name.clone());
            }
        }
        Ok(Privileges(granted))
    }

    /// The object form, as sent and stored.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|name| (name.clone(), Value::Bool(true)))
                .collect(),
        )
    }
}

/// `Some(true)` for a grant, `Some(false)` for a falsy value, `None` for anything else.
fn granted_flag(flag: &Value) -> Option<bool> {
    match flag {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::String(s) if s.is_empty() => Some(false),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
        Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
        _ => None,
    }
}

impl<'a> IntoIterator for &'a Privileges {
    type Item = &'a String;
    type IntoIter = std::collections::btree_set::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Privileges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().collect();
        f.write_str(&names.join(", "))
    }
}

impl Serialize for Privileges {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for name in &self.0 {
            map.serialize_entry(name, &true)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Privileges {
    /// Stored records of either age: the object form, or the array form of older versions.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Privileges::parse(&value, "privileges").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_objects_arrays_and_strings() {
        let want = Privileges::from_names(["create_tickets", "edit_tickets"]);
        for form in [
            json!({"create_tickets": true, "edit_tickets": true}),
            json!({"create_tickets": true, "edit_tickets": 1, "admin": false, "delete_tickets": 0, "x": "", "y": null}),
            json!(["edit_tickets", "create_tickets"]),
            json!("create_tickets, edit_tickets"),
        ] {
            assert_eq!(
                Privileges::parse(&form, "privileges"),
                Ok(want.clone()),
                "{form}"
            );
        }
        assert_eq!(
            Privileges::parse(&json!(null), "p"),
            Ok(Privileges::default())
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = Privileges::parse(&json!({"admin": "yes"}), "privileges").unwrap_err();
        assert!(err.contains("privileges.admin"), "{err}");
        let err = Privileges::parse(&json!({"admin": [true]}), "privileges").unwrap_err();
        assert!(err.contains("privileges.admin"), "{err}");
        let err = Privileges::parse(&json!([1, 2]), "privileges").unwrap_err();
        assert!(err.contains("privileges"), "{err}");
        let err = Privileges::parse(&json!(5), "privileges").unwrap_err();
        assert!(err.contains("name: true"), "{err}");
    }

    #[test]
    fn writes_the_object_form() {
        let p: Privileges = serde_json::from_value(json!(["b", "a"])).expect("array form");
        assert_eq!(
            serde_json::to_value(&p).expect("serializes"),
            json!({"a": true, "b": true})
        );
        assert_eq!(p.to_value(), json!({"a": true, "b": true}));
        let back: Privileges =
            serde_json::from_value(json!({"a": true, "b": true})).expect("object form");
        assert_eq!(back, p);
    }
}
