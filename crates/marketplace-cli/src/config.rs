//! Configuration files: a user-level `config.toml` and one in the marketplace home, below the
//! command line and the environment.
//!
//! Precedence, highest first: a flag, its environment variable (`MKT_HOME`), the home's
//! `config.toml`, the user's `config.toml`, the built-in default. The user's file is
//! `$MKT_CONFIG` when set, else `config.toml` in the platform's configuration directory under
//! `mkt` (`~/.config/mkt/config.toml` on Linux). A missing file is no configuration; a file
//! that does not parse, or names a key this version does not know, is an error that names the
//! file and the key (a typo must not be ignored silently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use crate::output::ColorChoice;
use crate::{CliError, CliResult, Command, exit};

/// The settings a configuration file may hold.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The marketplace home (user-level file only): relative paths are relative to the file's
    /// directory, `~/` is the user's home directory.
    pub(crate) home: Option<PathBuf>,
    /// The signing key for `publish`: a key name in the home's keys directory or a PEM file.
    pub(crate) key: Option<String>,
    /// The install destination for install, update, outdated, audit and uninstall (relative to
    /// the current directory, as `--dest` is; `~/` expands).
    pub(crate) dest: Option<PathBuf>,
    /// When to colour: `auto`, `always` or `never`.
    pub(crate) color: Option<ColorChoice>,
    /// Named registries (`[registries.NAME] url = "https://…"`), for `--registry NAME`.
    #[serde(default)]
    pub(crate) registries: BTreeMap<String, RegistryEntry>,
    /// `[registry] default = "NAME"`: the registry commands use without `--registry`.
    pub(crate) registry: Option<RegistrySection>,
}

/// One named registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryEntry {
    /// The server's URL.
    pub(crate) url: String,
}

/// The `[registry]` table.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySection {
    /// The name (in `[registries]`) or URL of the registry used without `--registry`.
    pub(crate) default: Option<String>,
}

/// The file's name, in the user's configuration directory and in a home.
pub(crate) const FILE: &str = "config.toml";

/// The user-level file: `$MKT_CONFIG`, or `<config dir>/mkt/config.toml`.
pub(crate) fn user_file() -> Option<PathBuf> {
    match std::env::var_os("MKT_CONFIG").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => dirs::config_dir().map(|d| d.join("mkt").join(FILE)),
    }
}

/// Reads `path`; `None` when there is no such file.
pub(crate) fn read(path: &Path) -> CliResult<Option<Config>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError {
                code: exit::INVALID,
                message: format!("could not read the configuration {}: {e}", path.display()),
                hint: None,
            });
        }
    };
    let mut config: Config = toml::from_str(&text).map_err(|e| CliError {
        code: exit::INVALID,
        message: format!(
            "the configuration {} is invalid: {}",
            path.display(),
            e.message()
        ),
        hint: Some(
            "the keys are home, key, dest, color (auto, always or never), [registries.NAME] url and [registry] default; see `mkt --help`"
                .into(),
        ),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.home = config
        .home
        .map(|h| expand(&h).unwrap_or_else(|| base.join(h)));
    config.dest = config.dest.map(|d| expand(&d).unwrap_or(d));
    Ok(Some(config))
}

/// `~/rest` under the user's home directory; `None` for any other path (kept as it is).
fn expand(path: &Path) -> Option<PathBuf> {
    if path.is_absolute() {
        return Some(path.to_owned());
    }
    let rest = path.strip_prefix("~").ok()?;
    Some(dirs::home_dir()?.join(rest))
}

/// The home's file, which may not choose the home.
fn read_home_file(path: &Path) -> CliResult<Config> {
    let config = read(path)?.unwrap_or_default();
    if config.home.is_some() {
        return Err(CliError {
            code: exit::INVALID,
            message: format!(
                "the configuration {} sets home, which only the user's configuration or MKT_HOME may",
                path.display()
            ),
            hint: Some(format!(
                "move `home = …` to {}",
                user_file().map_or_else(
                    || "the user configuration".into(),
                    |p| p.display().to_string()
                )
            )),
        });
    }
    Ok(config)
}

impl Config {
    /// `self` with every setting `over` sets replaced by it.
    fn overlaid(self, over: Config) -> Config {
        let mut registries = self.registries;
        registries.extend(over.registries);
        Config {
            home: over.home.or(self.home),
            key: over.key.or(self.key),
            dest: over.dest.or(self.dest),
            color: over.color.or(self.color),
            registries,
            registry: over.registry.or(self.registry),
        }
    }
}

/// What the command line left to the configuration, filled in from the files: the home (when
/// neither `--home` nor `MKT_HOME` gave one), `--color`, `publish --key` and the `--dest` of
/// the commands that take one, each only where the command line did not set it.
pub(crate) fn apply(cli: &mut crate::Cli, matches: &ArgMatches) -> CliResult<Config> {
    let user = match user_file() {
        Some(path) => read(&path)?.unwrap_or_default(),
        None => Config::default(),
    };
    if cli.home.is_none() {
        cli.home.clone_from(&user.home);
    }
    // No home at all (a platform without a data directory) leaves that error to the commands
    // that need a home; the others run with the user's configuration.
    let in_home = match crate::home::resolve(cli.home.clone()) {
        Ok(home_dir) => read_home_file(&home_dir.join(FILE))?,
        Err(_) => Config::default(),
    };
    let config = user.overlaid(in_home);
    let unset = |m: &ArgMatches, id: &str| {
        matches!(m.value_source(id), None | Some(ValueSource::DefaultValue))
    };
    if let Some(color) = config.color
        && unset(matches, "color")
    {
        cli.color = color;
    }
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(config);
    };
    match &mut cli.command {
        Command::Publish { key, .. } => {
            if let Some(configured) = &config.key
                && unset(sub, "key")
            {
                key.clone_from(configured);
            }
        }
        Command::Install { dest, .. }
        | Command::Outdated { dest }
        | Command::Update { dest, .. }
        | Command::Audit { dest }
        | Command::Uninstall { dest, .. } => {
            if let Some(configured) = &config.dest
                && unset(sub, "dest")
            {
                dest.clone_from(configured);
            }
        }
        _ => {}
    }
    Ok(config)
}
