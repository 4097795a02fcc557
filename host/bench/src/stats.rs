//! Summaries of timing samples and a description of the machine, shared by
//! every benchmark suite.

use std::time::Duration;

use serde::Serialize;

/// Median, p99 and friends of a set of timings, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Fastest sample.
    pub min_us: f64,
    /// Median.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarizes `samples` (sorted in place). Empty input gives zeros.
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let n = samples.len();
        if n == 0 {
            return Summary {
                samples: 0,
                min_us: 0.0,
                median_us: 0.0,
                p99_us: 0.0,
                mean_us: 0.0,
            };
        }
        let pick = |q: f64| us(samples[((n as f64 - 1.0) * q).round() as usize]);
        let total: Duration = samples.iter().sum();
        Summary {
            samples: n,
            min_us: us(samples[0]),
            median_us: pick(0.5),
            p99_us: pick(0.99),
            mean_us: us(total) / n as f64,
        }
    }
}

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// CPU model from /proc/cpuinfo, when readable.
    pub cpu_model: String,
    /// Operating system and architecture.
    pub os: String,
}

impl Machine {
    /// Looks at the current machine.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            cpus,
            cpu_model,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }

    /// One line for the console.
    pub fn describe(&self) -> String {
        format!("{} CPUs, {}, {}", self.cpus, self.cpu_model, self.os)
    }
}

/// CPU time this process has used so far (user + system, every thread:
/// the host's, librdkafka's and, on the mock, the broker's), from
/// `getrusage(RUSAGE_SELF)`, in microseconds. `None` if the call fails.
pub fn process_cpu() -> Option<Duration> {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed struct we own;
    // RUSAGE_SELF is always a valid `who`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let micros = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    Some(Duration::from_micros(
        micros(usage.ru_utime) + micros(usage.ru_stime),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_median_and_p99() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut samples);
        assert_eq!(s.samples, 100);
        assert_eq!(s.min_us, 1.0);
        assert!((s.median_us - 50.0).abs() <= 1.0, "{s:?}");
        assert_eq!(s.p99_us, 99.0);
        assert!((s.mean_us - 50.5).abs() < 1e-9);
    }
}
