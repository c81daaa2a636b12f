//! Named checks, their outcomes, and the report a suite returns.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use marketplace_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

/// Where [`SuiteReport::assert_passed`] also writes each report as JSON, when set: the
/// conformance matrix sets it while it runs backend crates' tests, and reads the reports back.
pub const REPORT_DIR_VAR: &str = "MARKETPLACE_CONFORMANCE_REPORTS";

/// What a check returns: `Err` carries why it failed.
pub type CheckResult = Result<(), String>;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "why", rename_all = "lowercase")]
pub enum Outcome {
    /// The backend behaved as the contract says.
    Passed,
    /// It did not; the message says how.
    Failed(String),
    /// Not run, because the backend does not claim the capability (the reason says which).
    Skipped(String),
}

/// One named check and how it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// `suite::check`, e.g. `registry::duplicate_version_rejected`.
    pub name: String,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    #[serde(with = "seconds")]
    pub duration: Duration,
}

/// The result of one suite run. Its serde form is the JSON the conformance matrix reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteReport {
    /// The suite's name (`registry`, `store`, `search`, `crypto`, `metrics`, `client`).
    pub suite: String,
    /// Which backend or mode was checked, when the caller said (see [`SuiteReport::named`]).
    #[serde(default)]
    pub backend: Option<String>,
    /// Every check in the order run.
    pub checks: Vec<CheckOutcome>,
    #[serde(skip)]
    timeout: Duration,
    #[serde(skip)]
    only: Vec<String>,
}

/// Durations as seconds (a float), in the JSON form of a report.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

impl SuiteReport {
    pub(crate) fn new(suite: &str, caps: &crate::Capabilities) -> Self {
        let only = if caps.only.is_empty() {
            std::env::var(crate::ONLY_VAR)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            caps.only.clone()
        };
        SuiteReport {
            suite: suite.to_owned(),
            backend: None,
            checks: Vec::new(),
            timeout: caps.check_timeout,
            only,
        }
    }

    /// Whether `name` (a full check name) is among the checks to run.
    fn selected(&self, name: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == pattern,
                })
    }

    /// Names the backend or mode the report is about (`sqlite-file`, `my-registry`), for the
    /// conformance matrix's columns.
    pub fn named(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// Whether every check was skipped or passed, and at least one was skipped.
    pub fn skipped_any(&self) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Skipped(_)))
    }

    /// Writes the report as JSON into the directory named by [`REPORT_DIR_VAR`], if it is set
    /// (as `SUITE-BACKEND-PID-N.json`). Errors are printed, not raised: saving a report must
    /// never fail the test that made it.
    pub fn save(&self) {
        static SAVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let Some(dir) = std::env::var_os(REPORT_DIR_VAR) else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let n = SAVED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let backend: String = self
            .backend
            .as_deref()
            .unwrap_or("unnamed")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = dir.join(format!(
            "{}-{backend}-{}-{n}.json",
            self.suite,
            std::process::id()
        ));
        let written = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_json::to_vec_pretty(self).map_err(|e| e.to_string()))
            .and_then(|json| std::fs::write(&path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!(
                "could not save the {} report to {}: {e}",
                self.suite,
                path.display()
            );
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
    /// one conformance test. Saves the report first (see [`SuiteReport::save`]).
    #[track_caller]
    pub fn assert_passed(&self) {
        self.save();
        if !self.passed() {
            panic!("{self}");
        }
    }

    pub(crate) async fn run<F>(&mut self, name: &str, check: F)
    where
        F: Future<Output = CheckResult>,
    {
        let full = format!("{}::{name}", self.suite);
        if !self.selected(&full) {
            self.skip(name, "not selected");
            return;
        }
        let started = Instant::now();
        let outcome = match within(self.timeout, AssertUnwindSafe(check).catch_unwind()).await {
            None => Outcome::Failed(format!(
                "hung: no answer within {:?} (Capabilities::check_timeout)",
                self.timeout
            )),
            Some(Ok(Ok(()))) => Outcome::Passed,
            Some(Ok(Err(why))) => Outcome::Failed(why),
            Some(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic".to_owned());
                Outcome::Failed(format!("panicked: {message}"))
            }
        };
        self.checks.push(CheckOutcome {
            name: full,
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
        let on = self
            .backend
            .as_deref()
            .map(|b| format!(" on {b}"))
            .unwrap_or_default();
        writeln!(
            f,
            "{} suite{on}: {} checks, {} passed, {failed} failed, {skipped} skipped ({:.2?})",
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

/// `future`'s output, or `None` when it did not finish within `limit`. The timer is a thread,
/// so the kit needs no particular async runtime (and no runtime timer); it ends as soon as the
/// future does.
async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let (done, done_rx) = std::sync::mpsc::channel::<()>();
    let (fire, fired) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
            let _ = fire.send(());
        }
    });
    let outcome = futures::future::select(Box::pin(future), fired).await;
    drop(done);
    match outcome {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
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

/// `Ok` when the two lists are equal; otherwise their lengths and the first difference (a log
/// of hundreds of events is not printed whole).
pub(crate) fn same_list<T: PartialEq + fmt::Debug>(
    got: &[T],
    want: &[T],
    what: &str,
) -> CheckResult {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Err(format!(
        "{what}: {} items where {} were expected; the first difference, at {at}: {:?}, expected {:?}",
        got.len(),
        want.len(),
        got.get(at),
        want.get(at)
    ))
}
