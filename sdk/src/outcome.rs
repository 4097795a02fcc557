//! [`Outcome`]: what became of an event, and the conversions from the SDK's
//! error types that let `?` pick the right outcome.

use std::fmt;
use std::time::Duration;

use crate::config::MissingConfig;
use crate::emit::EmitError;
use crate::event::PayloadError;
use crate::state::{Rejected, StateError};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event is handled. Its emits and state writes are applied.
    Done,
    /// The event failed in a way worth trying again (a timeout, a 5xx). Its
    /// emits and state writes are dropped.
    Retry {
        /// Why the call failed; recorded in the event's attempt history and
        /// shown to operators.
        reason: String,
        /// How long to wait before the next attempt. `None` lets the actor's
        /// retry policy decide (exponential backoff with jitter). The host
        /// caps it at the policy's maximum delay.
        after: Option<Duration>,
    },
    /// The event can never succeed (a malformed payload): skip the remaining
    /// attempts and park it in the dead-letter set with this reason.
    Dead(String),
}

impl Outcome {
    /// Retry after the delay the actor's retry policy chooses.
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    /// Retry no sooner than `after` (for example a `Retry-After` the actor
    /// was given). The host caps it at the policy's maximum delay.
    pub fn retry_after(reason: impl Into<String>, after: Duration) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: Some(after),
        }
    }

    /// Give up on the event: it goes to the dead-letter set with `reason`.
    pub fn dead(reason: impl Into<String>) -> Self {
        Outcome::Dead(reason.into())
    }

    /// Whether this is [`Outcome::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Done => f.write_str("done"),
            Outcome::Retry {
                reason,
                after: None,
            } => write!(f, "retry: {reason}"),
            Outcome::Retry {
                reason,
                after: Some(after),
            } => write!(f, "retry after {after:?}: {reason}"),
            Outcome::Dead(reason) => write!(f, "dead: {reason}"),
        }
    }
}

/// A payload that does not decode fails the same way on every attempt: dead.
impl From<PayloadError> for Outcome {
    fn from(err: PayloadError) -> Self {
        Outcome::Dead(err.to_string())
    }
}

/// A missing config value is fixed only by a new manifest: dead (re-drive
/// the event once the config is set).
impl From<MissingConfig> for Outcome {
    fn from(err: MissingConfig) -> Self {
        Outcome::Dead(err.to_string())
    }
}

/// The host refused a record (an empty topic, a per-call limit): retry, so
/// that a fixed actor version can take the event over; a value that could
/// not even be encoded as JSON is dead.
impl From<EmitError> for Outcome {
    fn from(err: EmitError) -> Self {
        match err {
            EmitError::Rejected(_) => Outcome::retry(err.to_string()),
            EmitError::Encode(_) => Outcome::Dead(err.to_string()),
        }
    }
}

/// The host refused a state write (a key over 4 KiB, a per-call limit):
/// retry, as for a refused emit; the reason names the limit.
impl From<Rejected> for Outcome {
    fn from(err: Rejected) -> Self {
        Outcome::retry(err.to_string())
    }
}

/// A JSON state value: one that does not decode is the actor's own data,
/// not the event's, so retry (a fixed version can read it, and later
/// events of the key wait instead of running on state the actor cannot
/// read); a refused write retries as above; a value that cannot be encoded
/// never will be: dead.
impl From<StateError> for Outcome {
    fn from(err: StateError) -> Self {
        match err {
            StateError::Decode { .. } | StateError::Rejected(_) => Outcome::retry(err.to_string()),
            StateError::Encode { .. } => Outcome::Dead(err.to_string()),
        }
    }
}

/// Outbound HTTP failed before a response arrived (denied, timed out,
/// connection refused, a bad URL from config): retry. Status codes are not
/// errors; decide on them yourself.
impl From<crate::http::Error> for Outcome {
    fn from(err: crate::http::Error) -> Self {
        Outcome::retry(err.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn malformed_payload_is_dead() {
        let outcome: Outcome = match Event::new("t", "{").json::<serde_json::Value>() {
            Err(err) => err.into(),
            Ok(_) => Outcome::Done,
        };
        assert!(
            matches!(outcome, Outcome::Dead(reason) if reason.starts_with("malformed JSON payload"))
        );
    }

    #[test]
    fn rejected_emit_retries_with_the_host_reason() {
        let outcome = Outcome::from(EmitError::Rejected("too many records".into()));
        assert_eq!(outcome, Outcome::retry("emit rejected: too many records"));
    }

    #[test]
    fn rejected_state_write_retries_with_the_host_reason() {
        let reason = "state: more than 5 keys written in one call (limits.max_state_writes)";
        let outcome = Outcome::from(Rejected(reason.into()));
        assert_eq!(
            outcome,
            Outcome::retry(format!("state write rejected: {reason}"))
        );
        // Through `set_json`'s error type the same.
        let outcome = Outcome::from(StateError::from(Rejected(reason.into())));
        assert_eq!(
            outcome,
            Outcome::retry(format!("state write rejected: {reason}"))
        );
    }

    #[test]
    fn state_that_does_not_decode_retries_and_a_value_that_does_not_encode_is_dead() {
        let decode = serde_json::from_slice::<u64>(b"{").unwrap_err();
        let outcome = Outcome::from(StateError::Decode {
            key: "totals".into(),
            source: decode,
        });
        assert!(
            matches!(&outcome, Outcome::Retry { reason, after: None }
                if reason.starts_with("state totals does not decode")),
            "{outcome}"
        );
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        let encode = serde_json::to_vec(&map).unwrap_err();
        let outcome = Outcome::from(StateError::Encode {
            key: "m".into(),
            source: encode,
        });
        assert!(
            matches!(&outcome, Outcome::Dead(reason) if reason.starts_with("state m does not encode")),
            "{outcome}"
        );
    }

    /// `?` on every state call compiles in a `Handled` function.
    #[allow(dead_code)]
    fn question_mark_works_on_state_calls() -> crate::Handled {
        crate::state::set("k", b"v")?;
        crate::state::delete("k")?;
        let _: Option<u64> = crate::state::get_json("n")?;
        crate::state::set_json("n", &1)?;
        Ok(Outcome::Done)
    }

    #[test]
    fn missing_config_is_dead_and_names_the_key() {
        let outcome = Outcome::from(MissingConfig::new("wallet_url"));
        assert_eq!(outcome, Outcome::dead("config wallet_url is not set"));
    }
}
