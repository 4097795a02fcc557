//! Retry: when a failed event runs again, and when it is given up.
//!
//! This module owns the per-actor [`RetryPolicy`] (its configuration form and
//! validation) and the decision after each failed attempt
//! ([`RetryPolicy::decide`]): retry after some delay, or dead-letter for a
//! named reason. Exponential backoff with a cap and full jitter, as in AWS's
//! "Exponential Backoff and Jitter"; an actor may ask for its own delay.
//!
//! It does not keep retry state, sleep, or read the clock: the caller passes
//! the attempt number, the times and the random source, which keeps every
//! decision reproducible in tests.

use std::fmt;
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How the backoff delay is randomized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// Uniform in `[0, backoff]`: spreads retries of many failing events so
    /// that they do not hit a recovering dependency at once.
    #[default]
    Full,
    /// Exactly the backoff.
    None,
}

/// An actor's retry policy (`[retry]` in its manifest). Durations are
/// written `"500ms"`, `"10s"`, `"5m"`, `"1h"` (see [`crate::duration_str`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` means never retry.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff after the first failed attempt.
    #[serde(default = "default_initial_backoff", with = "crate::duration_str")]
    pub initial_backoff: Duration,
    /// Cap on any delay, the actor's requested delays included.
    #[serde(default = "default_max_backoff", with = "crate::duration_str")]
    pub max_backoff: Duration,
    /// Growth of the backoff per failed attempt.
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    /// An event whose next attempt would start later than this after its
    /// first attempt is dead-lettered instead; `"none"` for no limit.
    #[serde(default = "default_max_age", with = "crate::duration_str::option")]
    pub max_age: Option<Duration>,
    /// Randomization of the backoff.
    #[serde(default)]
    pub jitter: Jitter,
}

/// Default [`RetryPolicy::max_attempts`]: 5.
pub fn default_max_attempts() -> u32 {
    5
}

/// Default [`RetryPolicy::initial_backoff`]: 1 s.
pub fn default_initial_backoff() -> Duration {
    Duration::from_secs(1)
}

/// Default [`RetryPolicy::max_backoff`]: 5 min.
pub fn default_max_backoff() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Default [`RetryPolicy::multiplier`]: 2.
pub fn default_multiplier() -> f64 {
    2.0
}

/// Default [`RetryPolicy::max_age`]: 24 h.
pub fn default_max_age() -> Option<Duration> {
    Some(Duration::from_secs(24 * 3600))
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_max_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            multiplier: default_multiplier(),
            max_age: default_max_age(),
            jitter: Jitter::default(),
        }
    }
}

/// A policy that cannot work as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// `max_attempts` is 0: not even one attempt.
    #[error("retry.max_attempts must be at least 1")]
    NoAttempts,
    /// `initial_backoff` is above `max_backoff`.
    #[error("retry.initial_backoff ({initial:?}) is above retry.max_backoff ({max:?})")]
    InitialAboveMax {
        /// The initial backoff.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
    /// `multiplier` is below 1 or not a finite number.
    #[error("retry.multiplier must be a finite number >= 1, not {0}")]
    BadMultiplier(f64),
    /// `max_age` is zero: every event would be dead-lettered on failure.
    #[error("retry.max_age must be above zero (or \"none\")")]
    ZeroMaxAge,
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The actor returned `retry`, maybe with its own delay.
    Retry {
        /// The delay the actor asked for (capped at `max_backoff`).
        requested_delay: Option<Duration>,
    },
    /// The call trapped (panic, deadline, memory limit): retried with backoff.
    Trap,
    /// The actor returned `dead`: dead-lettered at once.
    Dead,
}

/// What to do with an event whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the next attempt after this delay.
    RetryAfter(Duration),
    /// Stop and put the event in the dead-letter set.
    DeadLetter(DeadReason),
}

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// The actor returned `dead`.
    ActorDead,
    /// The last allowed attempt failed.
    AttemptsExhausted,
    /// The next attempt would start after `max_age`.
    MaxAgeExceeded,
    /// The record cannot be presented to the actor at all (e.g. a header
    /// name that is not UTF-8); no attempt is made.
    Undecodable,
    /// The event had to be held (for its retry, or behind a retrying event
    /// of its lane) but its held record is larger than the host may write
    /// to its retry changelog (Kafka's message size limit). Not a policy
    /// decision: the Kafka layer makes it.
    TooLargeToHold,
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadReason::ActorDead => "the actor declared the event dead",
            DeadReason::AttemptsExhausted => "retry attempts exhausted",
            DeadReason::MaxAgeExceeded => "retry max age exceeded",
            DeadReason::Undecodable => "undecodable record",
            DeadReason::TooLargeToHold => "too large to hold for retry",
        })
    }
}

impl RetryPolicy {
    /// Checks the rules between fields; call it when a manifest is loaded.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::NoAttempts);
        }
        if self.initial_backoff > self.max_backoff {
            return Err(PolicyError::InitialAboveMax {
                initial: self.initial_backoff,
                max: self.max_backoff,
            });
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(PolicyError::BadMultiplier(self.multiplier));
        }
        if self.max_age == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroMaxAge);
        }
        Ok(())
    }

    /// The backoff before jitter after failed attempt `attempt` (1-based; 0
    /// counts as 1): `min(max_backoff, initial_backoff * multiplier^(attempt-1))`.
    pub fn base_backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let nanos = self.initial_backoff.as_nanos() as f64 * self.multiplier.powi(exponent);
        let max = self.max_backoff;
        // NaN (a policy that failed validation) falls back to the cap too.
        if nanos.is_nan() || nanos >= max.as_nanos() as f64 {
            return max;
        }
        // Below max_backoff, so it fits; `as` saturates anyway.
        Duration::from_nanos(nanos.round() as u64).min(max)
    }

    /// The delay after failed attempt `attempt` (1-based): the
    /// [`base_backoff`](Self::base_backoff), jittered as the policy says.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self.base_backoff(attempt);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => {
                let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.gen_range(0..=nanos))
            }
        }
    }

    /// Decides what follows failed attempt `attempt` (1-based; 0 counts as
    /// 1) of an event first attempted at `first_attempt_at`, now `now`.
    ///
    /// In order: `Dead` dead-letters ([`DeadReason::ActorDead`]); if
    /// `attempt >= max_attempts` there is no next attempt
    /// ([`DeadReason::AttemptsExhausted`]); otherwise the delay is the
    /// actor's requested delay capped at `max_backoff` (not jittered), or the
    /// jittered backoff; if the next attempt would start more than `max_age`
    /// after the first, [`DeadReason::MaxAgeExceeded`]. A clock that went
    /// back before `first_attempt_at` counts as no time elapsed.
    pub fn decide(
        &self,
        attempt: u32,
        first_attempt_at: SystemTime,
        now: SystemTime,
        failure: Failure,
        rng: &mut impl Rng,
    ) -> Decision {
        let requested = match failure {
            Failure::Dead => return Decision::DeadLetter(DeadReason::ActorDead),
            Failure::Retry { requested_delay } => requested_delay,
            Failure::Trap => None,
        };
        if attempt.max(1) >= self.max_attempts {
            return Decision::DeadLetter(DeadReason::AttemptsExhausted);
        }
        let delay = match requested {
            Some(requested) => requested.min(self.max_backoff),
            None => self.backoff(attempt, rng),
        };
        if let Some(max_age) = self.max_age {
            let elapsed = now.duration_since(first_attempt_at).unwrap_or_default();
            if elapsed.saturating_add(delay) > max_age {
                return Decision::DeadLetter(DeadReason::MaxAgeExceeded);
            }
        }
        Decision::RetryAfter(delay)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const SEC: Duration = Duration::from_secs(1);

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: Jitter::None,
            max_attempts: 20,
            max_age: None,
            ..RetryPolicy::default()
        }
    }

    fn retry() -> Failure {
        Failure::Retry {
            requested_delay: None,
        }
    }

    /// Decides with the event first attempted now.
    fn decide(policy: &RetryPolicy, attempt: u32, failure: Failure) -> Decision {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        policy.decide(attempt, now, now, failure, &mut rng())
    }

    #[test]
    fn defaults_are_the_documented_policy() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.initial_backoff, SEC);
        assert_eq!(policy.max_backoff, 300 * SEC);
        assert_eq!(policy.multiplier, 2.0);
        assert_eq!(policy.max_age, Some(24 * 3600 * SEC));
        assert_eq!(policy.jitter, Jitter::Full);
        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn delays_double_from_one_second_without_jitter() {
        let policy = no_jitter();
        let delays: Vec<Decision> = (1..=5).map(|n| decide(&policy, n, retry())).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16].map(|s| Decision::RetryAfter(s * SEC))
        );
    }

    #[test]
    fn backoff_is_capped_at_max_backoff() {
        let policy = no_jitter();
        assert_eq!(policy.base_backoff(9), 256 * SEC);
        assert_eq!(policy.base_backoff(10), 300 * SEC);
        assert_eq!(policy.base_backoff(19), 300 * SEC);
        assert_eq!(policy.base_backoff(u32::MAX), 300 * SEC);
        assert_eq!(
            decide(&policy, 12, Failure::Trap),
            Decision::RetryAfter(300 * SEC)
        );
    }

    #[test]
    fn attempt_zero_counts_as_the_first() {
        let policy = no_jitter();
        assert_eq!(policy.base_backoff(0), SEC);
    }

    #[test]
    fn fractional_multipliers_give_exact_delays() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            multiplier: 1.5,
            ..no_jitter()
        };
        let delays: Vec<Duration> = (1..=4).map(|n| policy.base_backoff(n)).collect();
        assert_eq!(
            delays,
            [100_000, 150_000, 225_000, 337_500].map(Duration::from_micros)
        );
    }

    #[test]
    fn multiplier_one_keeps_the_delay_constant() {
        let policy = RetryPolicy {
            multiplier: 1.0,
            ..no_jitter()
        };
        assert_eq!(policy.base_backoff(1), SEC);
        assert_eq!(policy.base_backoff(15), SEC);
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_backoff() {
        let policy = RetryPolicy {
            max_attempts: 20,
            ..RetryPolicy::default()
        };
        let mut rng = rng();
        for attempt in 1..=12 {
            let base = policy.base_backoff(attempt);
            let mut total = Duration::ZERO;
            for _ in 0..200 {
                let delay = policy.backoff(attempt, &mut rng);
                assert!(delay <= base);
                total += delay;
            }
            // The mean of 200 uniform draws is near base / 2.
            let mean = total / 200;
            assert!(
                mean > base / 3 && mean < base * 2 / 3,
                "{attempt}: {mean:?}"
            );
        }
    }

    #[test]
    fn full_jitter_is_reproducible_with_a_seeded_rng() {
        let policy = RetryPolicy::default();
        let first: Vec<Duration> = (1..=5).map(|n| policy.backoff(n, &mut rng())).collect();
        let again: Vec<Duration> = (1..=5).map(|n| policy.backoff(n, &mut rng())).collect();
        assert_eq!(first, again);
        let now = SystemTime::now();
        let decision = policy.decide(2, now, now, Failure::Trap, &mut rng());
        assert_eq!(decision, Decision::RetryAfter(first[1]));
    }

    #[test]
    fn requested_delay_overrides_backoff_without_jitter() {
        let policy = RetryPolicy::default();
        let failure = Failure::Retry {
            requested_delay: Some(42 * SEC),
        };
        assert_eq!(decide(&policy, 1, failure), Decision::RetryAfter(42 * SEC));
        assert_eq!(decide(&policy, 3, failure), Decision::RetryAfter(42 * SEC));
        let zero = Failure::Retry {
            requested_delay: Some(Duration::ZERO),
        };
        assert_eq!(
            decide(&policy, 1, zero),
            Decision::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn requested_delay_is_capped_at_max_backoff() {
        let policy = RetryPolicy::default();
        let failure = Failure::Retry {
            requested_delay: Some(3600 * SEC),
        };
        assert_eq!(decide(&policy, 1, failure), Decision::RetryAfter(300 * SEC));
    }

    #[test]
    fn the_last_attempt_dead_letters_with_attempts_exhausted() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..no_jitter()
        };
        assert_eq!(decide(&policy, 2, retry()), Decision::RetryAfter(2 * SEC));
        let exhausted = Decision::DeadLetter(DeadReason::AttemptsExhausted);
        assert_eq!(decide(&policy, 3, retry()), exhausted);
        assert_eq!(decide(&policy, 4, Failure::Trap), exhausted);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..no_jitter()
        };
        let exhausted = Decision::DeadLetter(DeadReason::AttemptsExhausted);
        assert_eq!(decide(&policy, 1, Failure::Trap), exhausted);
        assert_eq!(decide(&policy, 0, Failure::Trap), exhausted);
    }

    #[test]
    fn a_dead_outcome_dead_letters_at_once() {
        let policy = no_jitter();
        assert_eq!(
            decide(&policy, 1, Failure::Dead),
            Decision::DeadLetter(DeadReason::ActorDead)
        );
    }

    #[test]
    fn a_trap_is_retried_with_backoff() {
        let policy = no_jitter();
        assert_eq!(
            decide(&policy, 3, Failure::Trap),
            Decision::RetryAfter(4 * SEC)
        );
    }

    #[test]
    fn max_age_dead_letters_when_the_next_attempt_would_be_too_late() {
        let policy = RetryPolicy {
            max_age: Some(60 * SEC),
            ..no_jitter()
        };
        let first = SystemTime::UNIX_EPOCH + 1000 * SEC;
        let mut rng = rng();
        // 50 s elapsed + 8 s backoff = 58 s: still within the age.
        let decision = policy.decide(4, first, first + 50 * SEC, Failure::Trap, &mut rng);
        assert_eq!(decision, Decision::RetryAfter(8 * SEC));
        // 60 s exactly is allowed; beyond is not.
        let decision = policy.decide(4, first, first + 52 * SEC, Failure::Trap, &mut rng);
        assert_eq!(decision, Decision::RetryAfter(8 * SEC));
        let decision = policy.decide(4, first, first + 53 * SEC, Failure::Trap, &mut rng);
        assert_eq!(decision, Decision::DeadLetter(DeadReason::MaxAgeExceeded));
        // A requested delay counts too.
        let failure = Failure::Retry {
            requested_delay: Some(61 * SEC),
        };
        let decision = policy.decide(1, first, first, failure, &mut rng);
        assert_eq!(decision, Decision::DeadLetter(DeadReason::MaxAgeExceeded));
    }

    #[test]
    fn without_max_age_age_never_dead_letters() {
        let policy = no_jitter();
        let first = SystemTime::UNIX_EPOCH;
        let now = first + 10 * 365 * 24 * 3600 * SEC;
        assert_eq!(
            policy.decide(1, first, now, Failure::Trap, &mut rng()),
            Decision::RetryAfter(SEC)
        );
    }

    #[test]
    fn a_clock_that_went_back_counts_as_no_time_elapsed() {
        let policy = RetryPolicy {
            max_age: Some(10 * SEC),
            ..no_jitter()
        };
        let first = SystemTime::UNIX_EPOCH + 1000 * SEC;
        let decision = policy.decide(1, first, first - 500 * SEC, Failure::Trap, &mut rng());
        assert_eq!(decision, Decision::RetryAfter(SEC));
    }

    #[test]
    fn validate_refuses_policies_that_cannot_work() {
        let ok = RetryPolicy::default();
        let check = |policy: RetryPolicy| policy.validate();
        assert_eq!(
            check(RetryPolicy {
                max_attempts: 0,
                ..ok.clone()
            }),
            Err(PolicyError::NoAttempts)
        );
        assert_eq!(
            check(RetryPolicy {
                initial_backoff: 10 * SEC,
                max_backoff: 5 * SEC,
                ..ok.clone()
            }),
            Err(PolicyError::InitialAboveMax {
                initial: 10 * SEC,
                max: 5 * SEC
            })
        );
        assert_eq!(
            check(RetryPolicy {
                multiplier: 0.5,
                ..ok.clone()
            }),
            Err(PolicyError::BadMultiplier(0.5))
        );
        assert!(check(RetryPolicy {
            multiplier: f64::NAN,
            ..ok.clone()
        })
        .is_err());
        assert!(check(RetryPolicy {
            multiplier: f64::INFINITY,
            ..ok.clone()
        })
        .is_err());
        assert_eq!(
            check(RetryPolicy {
                max_age: Some(Duration::ZERO),
                ..ok.clone()
            }),
            Err(PolicyError::ZeroMaxAge)
        );
        assert_eq!(
            check(RetryPolicy {
                initial_backoff: Duration::ZERO,
                max_age: None,
                ..ok
            }),
            Ok(())
        );
    }

    #[test]
    fn a_manifest_policy_reads_with_human_durations_and_defaults() {
        let policy: RetryPolicy = toml::from_str(
            r#"
            max_attempts = 8
            initial_backoff = "500ms"
            max_backoff = "1m"
            jitter = "none"
            "#,
        )
        .unwrap();
        assert_eq!(
            policy,
            RetryPolicy {
                max_attempts: 8,
                initial_backoff: Duration::from_millis(500),
                max_backoff: 60 * SEC,
                jitter: Jitter::None,
                ..RetryPolicy::default()
            }
        );
        let empty: RetryPolicy = toml::from_str("").unwrap();
        assert_eq!(empty, RetryPolicy::default());
        let unlimited: RetryPolicy = toml::from_str(r#"max_age = "none""#).unwrap();
        assert_eq!(unlimited.max_age, None);
    }

    #[test]
    fn a_policy_writes_and_reads_back_the_same() {
        let policy = RetryPolicy {
            max_age: None,
            multiplier: 1.5,
            ..RetryPolicy::default()
        };
        let text = toml::to_string(&policy).unwrap();
        assert!(text.contains("initial_backoff = \"1s\""), "{text}");
        assert!(text.contains("max_backoff = \"5m\""), "{text}");
        assert!(text.contains("max_age = \"none\""), "{text}");
        assert_eq!(toml::from_str::<RetryPolicy>(&text).unwrap(), policy);
        let json = serde_json::to_string(&RetryPolicy::default()).unwrap();
        assert_eq!(
            json,
            r#"{"max_attempts":5,"initial_backoff":"1s","max_backoff":"5m","multiplier":2.0,"max_age":"24h","jitter":"full"}"#
        );
        assert_eq!(
            serde_json::from_str::<RetryPolicy>(&json).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<RetryPolicy>("max_retries = 3").unwrap_err();
        assert!(err.to_string().contains("max_retries"), "{err}");
    }

    #[test]
    fn dead_reasons_name_themselves() {
        assert_eq!(
            serde_json::to_string(&DeadReason::AttemptsExhausted).unwrap(),
            r#""attempts_exhausted""#
        );
        assert_eq!(
            DeadReason::MaxAgeExceeded.to_string(),
            "retry max age exceeded"
        );
    }
}
