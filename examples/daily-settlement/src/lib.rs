//! `daily-settlement`: record each of a day's payment transactions once,
//! from the payment gateway, every night (the Haraj case).
//!
//! Two kinds of events:
//! - a request for a day, `{"date": "YYYY-MM-DD"}`, from the `nightly`
//!   schedule (its `<group>.schedule` topic) or from `settlement.requests`:
//!   forwarded to `days_topic` under the one key `settlement`, so that
//!   every day is recorded in the state of one partition;
//! - on `days_topic`, `{"date": ..., "page": n}`: one page of that day's
//!   transactions is fetched; each transaction not recorded yet (state key
//!   `tx:<id>`) is emitted to `recorded_topic` and recorded; a full page
//!   asks for the next one; the last page of a day that recorded anything
//!   emits a reconciliation check to `checks_topic`, delayed by an hour
//!   (a delayed emit).
//!
//! Config: `gateway_url` (required), `days_topic` (default
//! `settlement.days`), `recorded_topic` (default `settlement.recorded`),
//! `checks_topic` (default `settlement.checks`),
//! `page_size` (default 100, at most 500: one call's emits and state writes
//! stay below the host's per-call limits).

use serde::{Deserialize, Serialize};
use wactor_sdk::http::Request;
use wactor_sdk::{config, emit, state, Actor, Event, Handled, Outcome};

const DEFAULT_DAYS_TOPIC: &str = "settlement.days";
const DEFAULT_RECORDED_TOPIC: &str = "settlement.recorded";
const DEFAULT_PAGE_SIZE: u32 = 100;
const DEFAULT_CHECKS_TOPIC: &str = "settlement.checks";
/// How long after a day is recorded its reconciliation check is due.
const CHECK_DELAY: std::time::Duration = std::time::Duration::from_secs(3600);
const MAX_PAGE_SIZE: u32 = 500;
/// The key every day request is forwarded under (one partition, one state).
const DAYS_KEY: &str = "settlement";

/// A request for a day (and a page of it).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct DayRequest {
    date: String,
    #[serde(default = "first_page")]
    page: u32,
}

fn first_page() -> u32 {
    1
}

/// One page of the gateway's answer.
#[derive(Debug, Deserialize)]
struct Page {
    transactions: Vec<Transaction>,
}

/// One payment transaction, as the gateway gives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Transaction {
    id: String,
    amount: u64,
    currency: String,
    #[serde(default)]
    merchant: String,
}

/// A reconciliation check, due an hour after a day is recorded.
#[derive(Serialize)]
struct ReconcileCheck<'a> {
    date: &'a str,
    check: &'a str,
}

/// The record of a transaction.
#[derive(Serialize)]
struct Recorded<'a> {
    date: &'a str,
    transaction: &'a Transaction,
}

struct DailySettlement;

impl Actor for DailySettlement {
    fn handle(event: Event) -> Handled {
        let request: DayRequest = event.json()?;
        check_date(&request.date)?;
        let days_topic = config::get_or("days_topic", DEFAULT_DAYS_TOPIC);
        if event.topic != days_topic {
            // A schedule firing or a request by hand: to the one partition.
            let forwarded = DayRequest {
                date: request.date.clone(),
                page: 1,
            };
            emit::send(emit::Record::json(&days_topic, &forwarded)?.key(DAYS_KEY))?;
            wactor_sdk::info!("settlement of {} requested", request.date);
            return Ok(Outcome::Done);
        }
        settle_page(&request)
    }
}

wactor_sdk::export_actor!(DailySettlement);

/// Fetches and records one page of a day.
fn settle_page(request: &DayRequest) -> Handled {
    let gateway = config::require("gateway_url")?;
    let page_size = page_size()?;
    let url = format!(
        "{}/transactions?date={}&page={}&page_size={page_size}",
        gateway.trim_end_matches('/'),
        request.date,
        request.page
    );
    let response = Request::get(url)
        .send()
        .map_err(|err| Outcome::retry(format!("payment gateway unreachable: {err}")))?;
    match response.status {
        200..=299 => {}
        429 | 500..=599 => {
            return Err(Outcome::retry(format!(
                "payment gateway answered {}",
                response.status
            )))
        }
        status => {
            return Err(Outcome::dead(format!(
                "payment gateway refused {} page {}: {status}",
                request.date, request.page
            )))
        }
    }
    let page: Page = response
        .json()
        .map_err(|err| Outcome::retry(format!("payment gateway answered garbage: {err}")))?;
    let recorded_topic = config::get_or("recorded_topic", DEFAULT_RECORDED_TOPIC);
    let mut new = 0usize;
    for transaction in &page.transactions {
        let marker = format!("tx:{}", transaction.id);
        if state::get(&marker).is_some() {
            continue;
        }
        let record = Recorded {
            date: &request.date,
            transaction,
        };
        emit::send(emit::Record::json(&recorded_topic, &record)?.key(transaction.id.as_str()))?;
        state::set(&marker, request.date.as_bytes())
            .map_err(|err| Outcome::retry(format!("cannot record {}: {err}", transaction.id)))?;
        new += 1;
    }
    if page.transactions.len() >= usize::try_from(page_size).unwrap_or(usize::MAX) {
        let days_topic = config::get_or("days_topic", DEFAULT_DAYS_TOPIC);
        let next = DayRequest {
            date: request.date.clone(),
            page: request.page.saturating_add(1),
        };
        emit::send(emit::Record::json(&days_topic, &next)?.key(DAYS_KEY))?;
    } else if new > 0 {
        // The day's last page: ask for a reconciliation check an hour from
        // now (a delayed emit: it waits in the host, durably, and is sent
        // only because this call is done).
        let checks_topic = config::get_or("checks_topic", DEFAULT_CHECKS_TOPIC);
        let check = ReconcileCheck {
            date: &request.date,
            check: "reconcile",
        };
        emit::send(
            emit::Record::json(&checks_topic, &check)?
                .key(request.date.as_str())
                .delay(CHECK_DELAY),
        )?;
    }
    wactor_sdk::info!(
        "{} page {}: {} transactions, {new} new",
        request.date,
        request.page,
        page.transactions.len()
    );
    Ok(Outcome::Done)
}

/// `page_size` from config.
fn page_size() -> Result<u32, Outcome> {
    match config::get("page_size") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(Outcome::dead(format!(
                "config page_size must be 1 to {MAX_PAGE_SIZE}: {text:?}"
            ))),
        },
    }
}

/// A date is `YYYY-MM-DD` with plausible numbers (it goes into a URL).
fn check_date(date: &str) -> Result<(), Outcome> {
    let parts: Vec<&str> = date.split('-').collect();
    let ok = parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(Outcome::dead(format!("not a date (YYYY-MM-DD): {date:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_before_they_reach_a_url() {
        assert!(check_date("2024-07-10").is_ok());
        for bad in ["2024-7-10", "2024-13-01", "2024-07-10&page=9", "", "x"] {
            assert!(matches!(check_date(bad), Err(Outcome::Dead(_))), "{bad}");
        }
    }

    #[test]
    fn a_request_without_a_page_is_the_first_page() {
        let event = Event::new("settlement.requests", r#"{"date":"2024-07-10"}"#);
        assert_eq!(
            event.json::<DayRequest>().ok(),
            Some(DayRequest {
                date: "2024-07-10".into(),
                page: 1
            })
        );
        let garbage = Event::new("settlement.requests", "not json");
        assert!(matches!(
            garbage.json::<DayRequest>().map_err(Outcome::from),
            Err(Outcome::Dead(_))
        ));
    }
}
