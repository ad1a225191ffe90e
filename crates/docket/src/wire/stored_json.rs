//! The `rows` of a `search_tickets` reply, written from the rows the service hands over as
//! JSON text (stored tickets as they are, or their `compact` form: see
//! `docket_core::compact_json`), without building a `Ticket` or a `serde_json::Value`.

/// Writes `[row,row,...]`.
pub fn rows(rows: &[String]) -> Vec<u8> {
    let size: usize = rows.iter().map(String::len).sum();
    let mut out = Vec::with_capacity(size + rows.len() + 2);
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(row.as_bytes());
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_joined_as_a_json_array() {
        let joined = rows(&[r#"{"a":1}"#.to_string(), "{}".to_string()]);
        assert_eq!(joined, br#"[{"a":1},{}]"#);
        assert_eq!(rows(&[]), b"[]");
    }
}
