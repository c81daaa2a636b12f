//! Running a suite on a broken backend and asserting what caught it.

use marketplace_conformance::SuiteReport;

/// Asserts the report failed and that each of `checks` is among the failures.
pub(crate) fn assert_caught(report: &SuiteReport, checks: &[&str]) {
    assert!(
        !report.passed(),
        "the suite passed a broken backend:\n{report}"
    );
    for check in checks {
        assert!(
            report.failed_names().contains(check),
            "expected {check} to fail; failures were {:?}\n{report}",
            report.failed_names()
        );
    }
}

/// A test per defect: `defect!(test_name, suite_runner(Fault), ["suite::check", ...]);`
macro_rules! defect {
    ($test:ident, $run:ident($fault:expr), [$($check:literal),+ $(,)?]) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let report = $run($fault).await;
            $crate::common::assert_caught(&report, &[$($check),+]);
        }
    };
}
pub(crate) use defect;
