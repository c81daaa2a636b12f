//! The one public error type of Marketplace and its kinds.

use std::fmt;

/// A boxed error from a backend library, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type used by every Marketplace API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Marketplace, by the kind of thing a caller does about it.
///
/// Every message names what was being done and to what (a package id, a hash, a path, a field).
/// Backends keep their own private error enums and convert into this one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, e.g. `package acme/web@1.2.0`.
        what: String,
    },
    /// The thing being created exists already (for example a version that was published before).
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What exists already.
        what: String,
    },
    /// Input broke a validation rule. Nothing was changed.
    #[error("invalid {field} {value:?}: {rule}")]
    Invalid {
        /// The field or input that is wrong (`name`, `version`, `dependencies.serde`, `archive entry x/y` …).
        field: String,
        /// The offending value, possibly shortened.
        value: String,
        /// The rule that was broken, in words.
        rule: String,
    },
    /// Bytes do not match the digest they were stored or published under.
    #[error("integrity check failed for {what}: expected {expected}, got {actual}")]
    Integrity {
        /// What was checked (a hash, a package id, a path).
        what: String,
        /// The expected digest.
        expected: String,
        /// The digest of the bytes actually seen.
        actual: String,
    },
    /// A signature is missing, malformed, does not verify, or its key is untrusted or revoked.
    #[error("signature check failed for {what}: {reason}")]
    Signature {
        /// What was being verified.
        what: String,
        /// Which check failed, for callers to branch on.
        failure: SignatureFailure,
        /// Why it failed, in words, including the key id where one is known.
        reason: String,
    },
    /// Dependency resolution found no solution; the explanation names the clashing requirements.
    #[error("dependency resolution failed for {root}:\n{explanation}")]
    Conflict {
        /// The package whose dependencies were being resolved.
        root: String,
        /// A human-readable explanation of why no solution exists: short, naming the package
        /// and the requirements that clash, each with the chain of requirements that led to it.
        explanation: String,
        /// The solver's full derivation, step by step, for whoever asks for it (`--verbose`);
        /// empty when the explanation is all there is.
        trace: String,
    },
    /// The caller is not allowed to do this (for example a plugin or policy refused).
    #[error("unauthorized: {what}")]
    Unauthorized {
        /// What was refused and why.
        what: String,
    },
    /// A backend library failed.
    #[error("{backend} backend failed to {operation}: {source}")]
    Backend {
        /// The backend's name (`sqlite`, `objectstore`, `tantivy`, …).
        backend: String,
        /// What the backend was doing, e.g. `register acme/web@1.2.0`.
        operation: String,
        /// The underlying error.
        #[source]
        source: BoxError,
        /// Whether retrying the same operation later may succeed (timeouts, busy databases, I/O
        /// hiccups). Only transient errors are retried by the client.
        transient: bool,
    },
}

/// Which signature check failed, in an [`Error::Signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SignatureFailure {
    /// There is no signature.
    Unsigned,
    /// The signature is malformed or does not verify: the metadata was changed after signing,
    /// or another key made it.
    Bad,
    /// The signing key is not in the trust store.
    Untrusted,
    /// The signing key was revoked.
    Revoked,
}

impl SignatureFailure {
    /// A short, stable, snake_case label (`unsigned`, `bad`, `untrusted`, `revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFailure::Unsigned => "unsigned",
            SignatureFailure::Bad => "bad",
            SignatureFailure::Untrusted => "untrusted",
            SignatureFailure::Revoked => "revoked",
        }
    }
}

impl fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an [`Error`], for branching and for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::Invalid`].
    Invalid,
    /// See [`Error::Integrity`].
    Integrity,
    /// See [`Error::Signature`].
    Signature,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::Backend`].
    Backend,
}

impl ErrorKind {
    /// A short, stable, snake_case label (`not_found`, `already_exists`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Signature => "signature",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Backend => "backend",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest value quoted back in an [`Error::Invalid`] message; longer input is shortened.
const MAX_QUOTED_VALUE: usize = 80;

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::Integrity { .. } => ErrorKind::Integrity,
            Error::Signature { .. } => ErrorKind::Signature,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Whether retrying may succeed. Only [`Error::Backend`] errors marked transient are.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                transient: true,
                ..
            }
        )
    }

    /// The marketplace error an I/O error carries, if it carries one; the I/O error back if
    /// not. A reader made from a verified stream (as [`crate::PackageStore::copy_to`] makes)
    /// fails with the stream's own error wrapped in `std::io::Error`: an upload that reads it
    /// should report that error (`Integrity`, say), not a generic read failure.
    pub fn carried_by(error: std::io::Error) -> std::result::Result<Error, std::io::Error> {
        if !error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Err(error);
        }
        let kind = error.kind();
        match error.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(carried)) => Ok(*carried),
            Some(Err(other)) => Err(std::io::Error::new(kind, other)),
            None => Err(std::io::Error::from(kind)),
        }
    }

    /// A [`Error::NotFound`] for `what`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::NotFound {
            what: what.to_string(),
        }
    }

    /// An [`Error::AlreadyExists`] for `what`.
    pub fn already_exists(what: impl fmt::Display) -> Self {
        Error::AlreadyExists {
            what: what.to_string(),
        }
    }

    /// An [`Error::Invalid`]: `field` holding `value` broke `rule`. Long values are shortened.
    pub fn invalid(
        field: impl Into<String>,
        value: impl AsRef<str>,
        rule: impl Into<String>,
    ) -> Self {
        let value = value.as_ref();
        let value = match value.char_indices().nth(MAX_QUOTED_VALUE) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_owned(),
        };
        Error::Invalid {
            field: field.into(),
            value,
            rule: rule.into(),
        }
    }

    /// An [`Error::Integrity`]: the bytes of `what` hash to `actual`, not `expected`.
    pub fn integrity(
        what: impl fmt::Display,
        expected: impl fmt::Display,
        actual: impl fmt::Display,
    ) -> Self {
        Error::Integrity {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    /// A [`Error::Signature`] error for `what`: `failure` says which check, `reason` why.
    pub fn signature(
        what: impl fmt::Display,
        failure: SignatureFailure,
        reason: impl Into<String>,
    ) -> Self {
        Error::Signature {
            what: what.to_string(),
            failure,
            reason: reason.into(),
        }
    }

    /// Which signature check failed, for an [`Error::Signature`].
    pub fn signature_failure(&self) -> Option<SignatureFailure> {
        match self {
            Error::Signature { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// How long the service behind a transient [`Error::Backend`] asked to be left alone
    /// before a retry (an HTTP `Retry-After`), when its source is a [`RetryAfter`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Backend { source, .. } => source.downcast_ref::<RetryAfter>().map(|r| r.after),
            _ => None,
        }
    }

    /// A [`Error::Backend`] error.
    pub fn backend(
        backend: impl Into<String>,
        operation: impl Into<String>,
        source: impl Into<BoxError>,
        transient: bool,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            operation: operation.into(),
            source: source.into(),
            transient,
        }
    }
}

/// The source of a transient [`Error::Backend`] from a service that said when to retry (an
/// HTTP `429` or `503` with `Retry-After`): the client's retries wait at least `after`.
#[derive(Debug, thiserror::Error)]
#[error("{message} (the service asks to retry after {} s)", after.as_secs())]
pub struct RetryAfter {
    /// What the service answered.
    pub message: String,
    /// How long it asked to wait.
    pub after: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_shortens_long_values_on_a_char_boundary() {
        let long = "é".repeat(200);
        let err = Error::invalid("description", &long, "too long");
        let Error::Invalid { value, .. } = &err else {
            panic!("expected Invalid, got {err:?}");
        };
        assert_eq!(value.chars().count(), MAX_QUOTED_VALUE + 1);
        assert!(value.ends_with('…'));
    }

    #[test]
    fn only_backend_errors_marked_transient_are_transient() {
        let io = std::io::Error::other("timeout");
        assert!(Error::backend("sqlite", "get x", io, true).is_transient());
        assert!(!Error::not_found("package x@1.0.0").is_transient());
        assert_eq!(Error::not_found("x").kind(), ErrorKind::NotFound);
        assert_eq!(ErrorKind::AlreadyExists.to_string(), "already_exists");
    }
}
