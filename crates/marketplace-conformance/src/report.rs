//! Named checks, their outcomes, and the report a suite returns.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use marketplace_core::{Error, ErrorKind};

/// What a check returns: `Err` carries why it failed.
pub type CheckResult = Result<(), String>;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The backend behaved as the contract says.
    Passed,
    /// It did not; the message says how.
    Failed(String),
    /// Not run, because the backend does not claim the capability (the reason says which).
    Skipped(String),
}

/// One named check and how it went.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// `suite::check`, e.g. `registry::duplicate_version_rejected`.
    pub name: String,
    /// The outcome.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

/// The result of one suite run.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// The suite's name (`registry`, `store`, `search`, `crypto`, `metrics`).
    pub suite: String,
    /// Every check in the order run.
    pub checks: Vec<CheckOutcome>,
}

impl SuiteReport {
    pub(crate) fn new(suite: &str) -> Self {
        SuiteReport {
            suite: suite.to_owned(),
            checks: Vec::new(),
        }
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// Names of the failed checks.
    pub fn failed_names(&self) -> Vec<&str> {
        self.failures().map(|c| c.name.as_str()).collect()
    }

    /// Total time of all checks.
    pub fn duration(&self) -> Duration {
        self.checks.iter().map(|c| c.duration).sum()
    }

    /// Panics with the list of failed checks and why, if any failed. For use in a backend's
    /// one conformance test.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }

    pub(crate) async fn run<F>(&mut self, name: &str, check: F)
    where
        F: Future<Output = CheckResult>,
    {
        let started = Instant::now();
        let outcome = match AssertUnwindSafe(check).catch_unwind().await {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(why)) => Outcome::Failed(why),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic".to_owned());
                Outcome::Failed(format!("panicked: {message}"))
            }
        };
        self.checks.push(CheckOutcome {
            name: format!("{}::{name}", self.suite),
            outcome,
            duration: started.elapsed(),
        });
    }

    pub(crate) fn skip(&mut self, name: &str, reason: &str) {
        self.checks.push(CheckOutcome {
            name: format!("{}::{name}", self.suite),
            outcome: Outcome::Skipped(reason.to_owned()),
            duration: Duration::ZERO,
        });
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count();
        writeln!(
            f,
            "{} suite: {} checks, {} passed, {failed} failed, {skipped} skipped ({:.2?})",
            self.suite,
            self.checks.len(),
            self.checks.len() - failed - skipped,
            self.duration()
        )?;
        for check in &self.checks {
            match &check.outcome {
                Outcome::Passed => {}
                Outcome::Failed(why) => writeln!(f, "  FAILED {}: {why}", check.name)?,
                Outcome::Skipped(why) => writeln!(f, "  skipped {}: {why}", check.name)?,
            }
        }
        Ok(())
    }
}

/// Fails a check with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// Fails a check unless the two values are equal, showing both.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err(format!("{}: expected {:?}, got {:?}", format!($($msg)+), right, left));
                }
            }
        }
    }};
}
pub(crate) use ensure_eq;

/// Adds what was being done to a backend error, for `?` in checks.
pub(crate) trait Context<T> {
    fn ctx(self, doing: impl fmt::Display) -> Result<T, String>;
}

impl<T> Context<T> for Result<T, Error> {
    fn ctx(self, doing: impl fmt::Display) -> Result<T, String> {
        self.map_err(|e| format!("{doing}: unexpected error: {e}"))
    }
}

/// Checks that `result` failed with `kind`.
pub(crate) fn expect_kind<T: fmt::Debug>(
    result: Result<T, Error>,
    kind: ErrorKind,
    doing: impl fmt::Display,
) -> CheckResult {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(format!(
            "{doing}: expected a {kind} error, got {} error: {e}",
            e.kind()
        )),
        Ok(v) => Err(format!("{doing}: expected a {kind} error, got Ok({v:?})")),
    }
}
