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

/// The status of a ticket that is not published yet.
pub const DRAFT: &str = "draft";

impl TicketRules {
    pub fn is_type(&self, id: &str) -> bool {
        self.types.iter().any(|c| c.id == id)
    }

    pub fn is_status(&self, id: &str) -> bool {
        self.statuses.iter().any(|c| c.id == id)
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
