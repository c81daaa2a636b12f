//! Property checks over async backends: proptest generates (and shrinks) operation sequences,
//! the kit runs them against the backend and a model.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::report::CheckResult;

/// Most shrinking steps after a failure.
const MAX_SHRINK_STEPS: u32 = 200;

/// A boxed future borrowing the backend.
pub(crate) type CaseFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// Runs `cases` generated values through `run` (which gets a fresh case number each time, for
/// isolating state). On failure, shrinks to a minimal failing value and reports it.
pub(crate) async fn property<'a, S, F>(cases: u32, strategy: S, mut run: F) -> CheckResult
where
    S: Strategy,
    S::Value: Debug,
    F: FnMut(S::Value, u32) -> CaseFuture<'a>,
{
    let mut runner = TestRunner::deterministic();
    let mut case = 0u32;
    for _ in 0..cases {
        let mut tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| format!("could not generate a case: {e}"))?;
        case += 1;
        let Err(first) = run(tree.current(), case).await else {
            continue;
        };
        let mut minimal = (tree.current(), first);
        let mut steps = 0;
        if tree.simplify() {
            while steps < MAX_SHRINK_STEPS {
                steps += 1;
                case += 1;
                match run(tree.current(), case).await {
                    Err(why) => {
                        minimal = (tree.current(), why);
                        if !tree.simplify() {
                            break;
                        }
                    }
                    Ok(()) => {
                        if !tree.complicate() {
                            break;
                        }
                    }
                }
            }
        }
        return Err(format!(
            "{}\n    minimal failing operations (after {steps} shrink steps): {:?}",
            minimal.1, minimal.0
        ));
    }
    Ok(())
}
