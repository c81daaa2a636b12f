//! Plugins: hooks around publish and download, and the license allow-list policy.

use std::collections::BTreeSet;

use async_trait::async_trait;
use bytes::Bytes;
use marketplace_core::{Error, PackageMetadata, Result};

/// Hooks the client calls around its flows.
///
/// A `pre_*` hook that returns an error aborts the operation before anything changes, and the
/// caller gets that error as it is (so its message is the plugin's). A `post_*` hook runs after
/// the operation committed; its error is logged and counted
/// (`marketplace_plugin_errors_total`) but does not undo anything. Every method defaults to
/// doing nothing.
///
/// Downloads include the packages an install fetches.
#[async_trait]
pub trait MarketplacePlugin: Send + Sync {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// Before a package is stored and registered; `metadata` is complete and signed.
    async fn pre_publish(&self, metadata: &PackageMetadata) -> Result<()> {
        let _ = metadata;
        Ok(())
    }

    /// After a package was published.
    async fn post_publish(&self, metadata: &PackageMetadata) -> Result<()> {
        let _ = metadata;
        Ok(())
    }

    /// Before a package's bytes are fetched.
    async fn pre_download(&self, metadata: &PackageMetadata) -> Result<()> {
        let _ = metadata;
        Ok(())
    }

    /// After a package's bytes were fetched and verified.
    async fn post_download(&self, metadata: &PackageMetadata, archive: &Bytes) -> Result<()> {
        let _ = (metadata, archive);
        Ok(())
    }
}

/// A policy plugin: packages must be licensed under licenses from an allow-list.
///
/// A license expression passes when it can be satisfied with allowed licenses only:
/// `MIT OR GPL-3.0-only` passes an allow-list holding `MIT`; `MIT AND GPL-3.0-only` does not.
/// A package without a license is refused unless [`LicenseAllowList::allow_unlicensed`] was
/// called. The policy applies to publishing and to downloading (so also to installing).
///
/// ```
/// use marketplace_client::LicenseAllowList;
///
/// let policy = LicenseAllowList::new(["MIT", "Apache-2.0"]).unwrap();
/// assert!(policy.allows(Some("MIT OR GPL-3.0-only")));
/// assert!(!policy.allows(Some("GPL-3.0-only")));
/// assert!(policy.allows(Some("GPL-3.0/MIT")));
/// assert!(!policy.allows(None));
/// assert!(LicenseAllowList::new(["Not-A-License"]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct LicenseAllowList {
    allowed: BTreeSet<String>,
    allow_unlicensed: bool,
}

impl LicenseAllowList {
    /// A policy allowing exactly these SPDX license identifiers. `Invalid` for an identifier
    /// that is not an SPDX license.
    pub fn new<I, S>(licenses: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = BTreeSet::new();
        for license in licenses {
            let license = license.as_ref();
            let id = spdx::license_id(license).ok_or_else(|| {
                Error::invalid(
                    "license allow-list",
                    license,
                    "must be an SPDX license identifier such as MIT or Apache-2.0",
                )
            })?;
            allowed.insert(id.name.to_owned());
        }
        Ok(LicenseAllowList {
            allowed,
            allow_unlicensed: false,
        })
    }

    /// Also let packages without a license through.
    pub fn allow_unlicensed(mut self) -> Self {
        self.allow_unlicensed = true;
        self
    }

    /// Whether a package with this license expression is allowed (written loosely, as in
    /// `MIT/Apache-2.0`, it is judged by its normalised SPDX form).
    pub fn allows(&self, license: Option<&str>) -> bool {
        let Some(expression) = license else {
            return self.allow_unlicensed;
        };
        let Ok(license) = marketplace_core::License::new(expression) else {
            return false;
        };
        let Ok(expression) = spdx::Expression::parse(license.spdx()) else {
            return false;
        };
        expression.evaluate(|req| match req.license.id() {
            Some(id) => self.allowed.contains(id.name),
            None => false,
        })
    }

    fn check(&self, metadata: &PackageMetadata) -> Result<()> {
        let license = metadata.license.as_ref().map(|l| l.as_str());
        if self.allows(license) {
            return Ok(());
        }
        let allowed = self.allowed.iter().cloned().collect::<Vec<_>>().join(", ");
        Err(Error::invalid(
            "license",
            license.unwrap_or("(none)"),
            format!(
                "package {} is refused by the license policy: allowed licenses are {allowed}",
                metadata.id
            ),
        ))
    }
}

#[async_trait]
impl MarketplacePlugin for LicenseAllowList {
    fn name(&self) -> &str {
        "license-allow-list"
    }

    async fn pre_publish(&self, metadata: &PackageMetadata) -> Result<()> {
        self.check(metadata)
    }

    async fn pre_download(&self, metadata: &PackageMetadata) -> Result<()> {
        self.check(metadata)
    }
}
