//! Every page of a listing whose SDK call has no paginator (API Gateway v2's NextToken listings):
//! the loop, written once. Where the SDK has one, `into_paginator()` is used instead.

use std::future::Future;

use anyhow::Result;

/// The items of every page. `page(token)` reads one page: its items and the token of the next
/// (none, or an empty one, ends the listing).
pub async fn all<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (more, next) = page(token).await?;
        items.extend(more);
        match next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_until_no_token_or_an_empty_one() {
        let pages = |ends_with: Option<&'static str>| {
            move |token: Option<String>| async move {
                Ok(match token.as_deref() {
                    None => (vec![1, 2], Some("a".to_string())),
                    Some("a") => (vec![3], ends_with.map(String::from)),
                    other => panic!("asked for page {other:?}"),
                })
            }
        };
        assert_eq!(all(pages(None)).await.unwrap(), [1, 2, 3]);
        assert_eq!(all(pages(Some(""))).await.unwrap(), [1, 2, 3]);
    }
}
