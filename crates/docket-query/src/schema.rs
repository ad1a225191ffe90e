//! The field registry: every searchable field, its name and its kind (SPEC §6). The parser
//! keeps field names as written; lowering resolves them here.

use crate::ast::Ident;
use crate::error::QueryError;

/// Full-text fields, matched by analyzed tokens (see [`crate::analyze`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextField {
    Subject,
    /// The default field for bare words; covers username + subject + body.
    Body,
    /// Comments and change values.
    Changes,
}

/// Keyword fields: whole values compared after [`crate::normalize_keyword`]; may be multi-valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeywordField {
    Status,
    Type,
    Category,
    Username,
    Assignees,
    Cc,
    Tags,
    Server,
    Jobs,
    /// Relations (docket-core `relations.rs`): the other ticket's number, or `*` for any.
    Parent,
    Child,
    Blocks,
    BlockedBy,
    DuplicateOf,
    Duplicates,
    Relates,
    /// States derived from relations: `blocked`, `child`, `parent`, `duplicate`.
    Is,
    /// A configured priority level; `>`, `>=`, `<`, `<=` compare by level order (lowered
    /// to the set of levels, see `lower.rs`).
    Priority,
}

/// Integer fields searched by ranges: `num` is a number, the others are dates stored as
/// epoch seconds (`due` = 0 means "no due date").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RangeField {
    Num,
    Created,
    Modified,
    Due,
}

impl TextField {
    pub const ALL: [TextField; 3] = [TextField::Subject, TextField::Body, TextField::Changes];

    pub fn name(&self) -> &'static str {
        match self {
            TextField::Subject => "subject",
            TextField::Body => "body",
            TextField::Changes => "changes",
        }
    }
}

impl KeywordField {
    pub const ALL: [KeywordField; 18] = [
        KeywordField::Status,
        KeywordField::Type,
        KeywordField::Category,
        KeywordField::Username,
        KeywordField::Assignees,
        KeywordField::Cc,
        KeywordField::Tags,
        KeywordField::Server,
        KeywordField::Jobs,
        KeywordField::Parent,
        KeywordField::Child,
        KeywordField::Blocks,
        KeywordField::BlockedBy,
        KeywordField::DuplicateOf,
        KeywordField::Duplicates,
        KeywordField::Relates,
        KeywordField::Is,
        KeywordField::Priority,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            KeywordField::Status => "status",
            KeywordField::Type => "type",
            KeywordField::Category => "category",
            KeywordField::Username => "username",
            KeywordField::Assignees => "assignees",
            KeywordField::Cc => "cc",
            KeywordField::Tags => "tags",
            KeywordField::Server => "server",
            KeywordField::Jobs => "jobs",
            KeywordField::Parent => "parent",
            KeywordField::Child => "child",
            KeywordField::Blocks => "blocks",
            KeywordField::BlockedBy => "blocked_by",
            KeywordField::DuplicateOf => "duplicate_of",
            KeywordField::Duplicates => "duplicates",
            KeywordField::Relates => "relates",
            KeywordField::Is => "is",
            KeywordField::Priority => "priority",
        }
    }
}

impl RangeField {
    pub const ALL: [RangeField; 4] = [
        RangeField::Num,
        RangeField::Created,
        RangeField::Modified,
        RangeField::Due,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            RangeField::Num => "num",
            RangeField::Created => "created",
            RangeField::Modified => "modified",
            RangeField::Due => "due",
        }
    }

    /// True for the date fields (`created`, `modified`, `due`), false for `num`.
    pub fn is_date(&self) -> bool {
        !matches!(self, RangeField::Num)
    }
}

/// Any searchable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Text(TextField),
    Keyword(KeywordField),
    Range(RangeField),
}

impl Field {
    /// The default field of bare words.
    pub const DEFAULT: Field = Field::Text(TextField::Body);

    /// Every field, in the order the documentation lists them.
    pub fn all() -> impl Iterator<Item = Field> {
        TextField::ALL
            .into_iter()
            .map(Field::Text)
            .chain(KeywordField::ALL.into_iter().map(Field::Keyword))
            .chain(RangeField::ALL.into_iter().map(Field::Range))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Field::Text(f) => f.name(),
            Field::Keyword(f) => f.name(),
            Field::Range(f) => f.name(),
        }
    }

    /// "text", "keyword", "number" or "date", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Field::Text(_) => "text",
            Field::Keyword(_) => "keyword",
            Field::Range(RangeField::Num) => "number",
            Field::Range(_) => "date",
        }
    }
}

/// Looks a field up by name, case-insensitively.
pub fn field_by_name(name: &str) -> Option<Field> {
    Field::all().find(|f| f.name().eq_ignore_ascii_case(name))
}

/// The error for a field name that is not in the registry.
pub(crate) fn unknown_field(ident: &Ident) -> QueryError {
    let err = QueryError::new(
        format!(
            "Unknown search field \"{}\" at position {}; valid fields are: {}",
            ident.name,
            ident.span.start,
            field_names()
        ),
        ident.span,
    );
    match suggest_field(&ident.name) {
        Some(name) => err.with_hint(format!("did you mean \"{name}\"?")),
        None => err,
    }
}

/// All field names, comma separated, for error messages.
pub(crate) fn field_names() -> String {
    Field::all()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known field closest to a misspelled name, if it is close enough to be a likely typo.
pub(crate) fn suggest_field(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    Field::all()
        .map(|f| (edit_distance(&name, f.name()), f.name()))
        .filter(|&(d, n)| d <= 2 && d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance with transpositions counted as one edit (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lookup() {
        let rows: &[(&str, Option<Field>)] = &[
            ("subject", Some(Field::Text(TextField::Subject))),
            ("BODY", Some(Field::Text(TextField::Body))),
            ("Assignees", Some(Field::Keyword(KeywordField::Assignees))),
            ("num", Some(Field::Range(RangeField::Num))),
            ("due", Some(Field::Range(RangeField::Due))),
            ("stauts", None),
            ("", None),
        ];
        for (name, expected) in rows {
            assert_eq!(field_by_name(name), *expected, "field_by_name({name:?})");
        }
        for field in Field::all() {
            assert_eq!(field_by_name(field.name()), Some(field));
        }
        assert_eq!(Field::all().count(), 25);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_field("stauts"), Some("status"));
        assert_eq!(suggest_field("tag"), Some("tags"));
        assert_eq!(suggest_field("assignee"), Some("assignees"));
        assert_eq!(suggest_field("zzzzzz"), None);
    }
}
