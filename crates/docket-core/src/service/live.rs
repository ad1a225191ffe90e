//! Questions a live view asks when a ticket changes: does this ticket, as the caller may
//! see it, match the query they are looking at?

use docket_query::{Filter, RangeField};

use super::Docket;
use crate::auth::Principal;
use crate::error::Result;
use crate::store::{SearchRequest, SortField};

impl Docket {
    /// Whether ticket `num` exists, is visible to `who`, and matches `filter`.
    pub async fn ticket_matches(&self, who: &Principal, filter: &Filter, num: i64) -> Result<bool> {
        let one = Filter::And(vec![
            filter.clone(),
            Filter::Range {
                field: RangeField::Num,
                min: Some(num),
                max: num.checked_add(1),
            },
        ]);
        let page = self
            .run_search(
                Some(&who.username),
                &SearchRequest {
                    filter: one,
                    categories: who.categories.clone(),
                    sort_by: SortField::Num,
                    descending: true,
                    offset: 0,
                    limit: 1,
                },
            )
            .await?;
        Ok(page.total > 0)
    }
}
