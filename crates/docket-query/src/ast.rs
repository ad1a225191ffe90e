//! The syntax tree both query syntaxes parse into. Field names are kept as written (the
//! registry check happens in lowering) and every node carries the byte span it came from,
//! so that errors can point at the input.

/// A byte range `start..end` of the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A node of the query tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub kind: AstKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AstKind {
    /// `*`, or an empty query: every ticket.
    All,
    And(Vec<Ast>),
    Or(Vec<Ast>),
    /// `-term`, `field:-value`, or PxQL `!~`.
    Not(Box<Ast>),
    Term(Term),
}

/// One comparison: `field OP value`, or a bare value for the default field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `None` for a bare word or phrase (the default field, `body`).
    pub field: Option<Ident>,
    pub op: CompareOp,
    /// Where the operator was written; empty for a simple term without one.
    pub op_span: Span,
    pub value: Value,
}

/// A field name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// The comparison of a term. The simple syntax writes the ordering ones as a prefix of the
/// value (`num:>=5`) and everything else as `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `field:value`, PxQL `=` and `==`.
    Eq,
    /// PxQL `=~`; means the same as `Eq` (see the crate docs).
    Contains,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// The operator as written in PxQL.
    pub fn symbol(&self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Contains => "=~",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        }
    }

    /// True for `>`, `>=`, `<`, `<=`, which only number and date fields accept.
    pub fn is_ordering(&self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

/// A value: a bare word or a quoted string (quotes removed, escapes resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub quoted: bool,
    /// Covers the quotes of a quoted value.
    pub span: Span,
}

impl Value {
    /// Byte offset in the query of byte `offset` of `text` (exact for bare words and for
    /// strings without escapes).
    pub fn position_of(&self, offset: usize) -> usize {
        self.span.start + usize::from(self.quoted) + offset
    }

    /// The value as the user wrote it, for messages.
    pub fn display(&self) -> String {
        if self.quoted {
            format!("\"{}\"", self.text)
        } else {
            self.text.clone()
        }
    }
}
