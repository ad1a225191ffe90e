//! The configurable parts of ticket handling: types, statuses, the new-ticket template,
//! the time zone, and field limits.

use serde::{Deserialize, Serialize};

/// A configured choice (a type or a status) with its display title.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    pub id: String,
    pub title: String,
}

impl Choice {
    fn new(id: &str, title: &str) -> Self {
        Choice {
            id: id.to_string(),
            title: title.to_string(),
        }
    }
}

/// Values a create request leaves out are filled from this template.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NewTicketTemplate {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assignees: Option<Vec<String>>,
    pub cc: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Same forms as a ticket's `due`, e.g. `"3 days"`.
    pub due: Option<serde_json::Value>,
}

/// Everything the ticket service needs to know from configuration.
#[derive(Debug, Clone)]
pub struct TicketRules {
    pub types: Vec<Choice>,
    pub statuses: Vec<Choice>,
    /// Priority levels, lowest first (their order is the order of `priority:>=x` and of
    /// `sort_by=priority`).
    pub priorities: Vec<Choice>,
    /// The level of a new ticket that names none, and of a ticket stored before priorities
    /// existed.
    pub default_priority: String,
    pub template: NewTicketTemplate,
    pub timezone: jiff::tz::TimeZone,
    pub limits: Limits,
    /// The status a ticket gets when it is marked a duplicate of another
    /// (`tickets.close_duplicates`); empty: its status is left alone.
    pub close_duplicates: String,
}

/// Size limits on ticket fields. Generous, but bounded so no request can bloat a record.
#[derive(Debug, Clone)]
pub struct Limits {
    pub subject_chars: usize,
    pub body_bytes: usize,
    pub list_items: usize,
    pub item_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            subject_chars: 1000,
            body_bytes: 1024 * 1024,
            list_items: 200,
            item_chars: 256,
        }
    }
}

impl Default for TicketRules {
    fn default() -> Self {
        TicketRules {
            types: default_types(),
            statuses: default_statuses(),
            priorities: default_priorities(),
            default_priority: DEFAULT_PRIORITY.to_string(),
            template: NewTicketTemplate::default(),
            timezone: jiff::tz::TimeZone::UTC,
            limits: Limits::default(),
            close_duplicates: String::new(),
        }
    }
}

pub fn default_types() -> Vec<Choice> {
    [
        ("task", "Task"),
        ("bug", "Bug"),
        ("feature", "Feature"),
        ("question", "Question"),
        ("incident", "Incident"),
        ("issue", "Issue"),
        ("release", "Release"),
        ("change", "Change"),
        ("maintenance", "Maintenance"),
        ("other", "Other"),
    ]
    .iter()
    .map(|(id, title)| Choice::new(id, title))
    .collect()
}

pub fn default_statuses() -> Vec<Choice> {
    [
        ("draft", "Draft"),
        ("open", "Open"),
        ("in_progress", "In Progress"),
        ("on_hold", "On Hold"),
        ("resolved", "Resolved"),
        ("closed", "Closed"),
    ]
    .iter()
    .map(|(id, title)| Choice::new(id, title))
    .collect()
}

/// Priority levels, lowest first: `none` means "not prioritized yet", which is what a
/// ticket from before priorities existed honestly is, so it is also the default.
pub fn default_priorities() -> Vec<Choice> {
    [
        ("none", "None"),
        ("low", "Low"),
        ("normal", "Normal"),
        ("high", "High"),
        ("urgent", "Urgent"),
    ]
    .iter()
    .map(|(id, title)| Choice::new(id, title))
    .collect()
}

/// The default of `tickets.default_priority`.
pub const DEFAULT_PRIORITY: &str = "none";

/// The configured priority levels as the stores rank them: each level's rank is its
/// position (lowest first); a ticket without a priority ranks as `default`; a level no
/// longer configured ranks [`UNKNOWN_PRIORITY_RANK`], below every configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityLevels {
    pub levels: Vec<String>,
    pub default: String,
}

/// The rank of a stored priority that is not a configured level.
pub const UNKNOWN_PRIORITY_RANK: i64 = -1;

impl Default for PriorityLevels {
    fn default() -> Self {
        PriorityLevels {
            levels: default_priorities().into_iter().map(|c| c.id).collect(),
            default: DEFAULT_PRIORITY.to_string(),
        }
    }
}

impl PriorityLevels {
    /// Every stored priority value with its rank: the levels, and `""` (no priority) with
    /// the default's rank. The stores keep this table and recompute ticket ranks when it
    /// changes.
    pub fn ranks(&self) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as i64))
            .collect();
        out.push((String::new(), self.rank(&self.default)));
        out
    }

    /// The rank of a stored priority value.
    pub fn rank(&self, priority: &str) -> i64 {
        let priority = if priority.is_empty() {
            self.default.as_str()
        } else {
            priority
        };
        self.levels
            .iter()
            .position(|l| l == priority)
            .map_or(UNKNOWN_PRIORITY_RANK, |i| i as i64)
    }
}

/// The status of a ticket that is not published yet.
pub const DRAFT: &str = "draft";

impl TicketRules {
    pub fn is_type(&self, id: &str) -> bool {
        self.types.iter().any(|c| c.id == id)
    }

    pub fn is_status(&self, id: &str) -> bool {
        self.statuses.iter().any(|c| c.id == id)
    }

    pub fn is_priority(&self, id: &str) -> bool {
        self.priorities.iter().any(|c| c.id == id)
    }

    pub fn priority_ids(&self) -> String {
        ids(&self.priorities)
    }

    /// The levels in order, for search lowering and the stores' ranks.
    pub fn priority_levels(&self) -> PriorityLevels {
        PriorityLevels {
            levels: self.priorities.iter().map(|c| c.id.clone()).collect(),
            default: self.default_priority.clone(),
        }
    }

    pub fn type_ids(&self) -> String {
        ids(&self.types)
    }

    pub fn status_ids(&self) -> String {
        ids(&self.statuses)
    }

    /// The type a new ticket gets when neither the request nor the template names one.
    pub fn default_type(&self) -> String {
        if self.is_type("issue") {
            "issue".to_string()
        } else {
            self.types.first().map(|c| c.id.clone()).unwrap_or_default()
        }
    }
}

fn ids(list: &[Choice]) -> String {
    list.iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
