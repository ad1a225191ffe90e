//! `export_tickets`: every ticket a search matches, read page by page in number order, so
//! an export of any size holds one page in memory (the wire layer streams each page out
//! before asking for the next).

use docket_query::Filter;

use super::bulk::after_num;
use super::Docket;
use crate::auth::Principal;
use crate::error::Result;
use crate::store::{SearchRequest, SortField};

/// Tickets read per page of an export.
pub const EXPORT_PAGE: u64 = 500;

impl Docket {
    /// The stored JSON text of up to `limit` tickets numbered above `after` that `filter`
    /// matches in the caller's category scope, in number order. Each page is one search
    /// (through the search slots, like any search): a number bound makes every page cost
    /// the same however deep the export is.
    pub async fn export_page(
        &self,
        who: &Principal,
        filter: &Filter,
        after: i64,
        limit: u64,
    ) -> Result<Vec<String>> {
        let request = SearchRequest {
            filter: after_num(filter, after),
            categories: who.categories.clone(),
            sort_by: SortField::Num,
            descending: false,
            offset: 0,
            limit,
        };
        Ok(self
            .searches
            .run(Some(&who.username), self.store.search_stored(&request))
            .await?
            .rows)
    }
}
