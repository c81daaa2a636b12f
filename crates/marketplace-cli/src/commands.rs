//! One function per subcommand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use marketplace_client::{
    Archive, ArchiveLimits, InstallReport, LOCKFILE, LockMode, Lockfile, MarketplaceClient,
    Published, pack_dir,
};
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::{
    PackageId, PackageMetadata, PackageRef, SearchQuery, SortOrder, TrustLevel,
    parse_requirement_for, parse_version,
};
use serde_json::json;

use crate::home::{self, Home};
use crate::output::{Output, human_bytes, plain};
use crate::{
    CargoCommand, Cli, CliError, CliResult, Command, Filters, KeyCommand, Level, ListArgs,
    OwnerCommand, SearchArgs, Sort, TokenCommand, TrustCommand, UserCommand, exit,
};

pub(crate) async fn run(cli: Cli, config: crate::config::Config, out: &Output) -> CliResult {
    if let Command::Demo { packages } = cli.command {
        return demo(cli.home, packages, out).await;
    }
    if let Command::Pack { dir, output } = &cli.command {
        return pack(dir, output.as_deref(), out);
    }
    if let Command::Uninstall { package, dest } = &cli.command {
        let package = parse_package(package)?;
        let removed = marketplace_client::uninstall(&package, dest)
            .await
            .map_err(|e| {
                let not_found = e.kind() == marketplace_core::ErrorKind::NotFound;
                let e = CliError::from(e);
                if not_found {
                    e.with_hint("name a package installed on request into --dest (its marketplace.lock lists them as roots)")
                } else {
                    e
                }
            })?;
        for id in &removed {
            out.line(format!("removed {id}"));
        }
        out.line(format!(
            "{} removed; lockfile {}",
            removed.len(),
            dest.join(marketplace_client::LOCKFILE).display()
        ));
        return out.json(&json!({ "removed": removed }));
    }
    if let Command::Completions { shell } = cli.command {
        let mut command = <crate::Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "mkt", &mut script);
        out.raw(&String::from_utf8_lossy(&script));
        return Ok(());
    }
    if let Command::Man = cli.command {
        let command = <crate::Cli as clap::CommandFactory>::command();
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .map_err(|e| CliError {
                code: exit::FAILURE,
                message: format!("render the manual page: {e}"),
                hint: None,
            })?;
        out.raw(&String::from_utf8_lossy(&page));
        return Ok(());
    }
    let root = home::resolve(cli.home)?;
    if let Some(chosen) = crate::remote::choose(cli.registry.as_deref(), &config)? {
        let usage = remote_use(&cli.command);
        if cli.offline {
            match (&usage, works_offline(&cli.command)) {
                (RemoteUse::Served, true) => {
                    let client = crate::remote::offline_client(&root, &chosen)?;
                    let home = Home::remote(root, client);
                    return execute_named(cli.command, &home, out).await;
                }
                (RemoteUse::Served | RemoteUse::Login | RemoteUse::Accounts, _) => {
                    return Err(CliError::usage(format!(
                        "`mkt {}` needs the registry ({}); --offline uses only what is cached under the home",
                        command_name(&cli.command),
                        chosen.url
                    ))
                    .with_hint("offline: install, verify and tree work; drop --offline (or MKT_OFFLINE) for the rest"));
                }
                _ => {}
            }
        }
        match usage {
            RemoteUse::Served => {
                let client = crate::remote::client(&root, &chosen, false, out)?;
                let home = Home::remote(root, client);
                return execute_named(cli.command, &home, out).await;
            }
            RemoteUse::Login => {
                let Command::Login { trust_fingerprint } = &cli.command else {
                    unreachable!("remote_use says Login for Login only")
                };
                return crate::remote::login(&root, &chosen, trust_fingerprint, out).await;
            }
            RemoteUse::Logout => return crate::remote::logout(&root, &chosen, out),
            RemoteUse::Accounts => {
                let remote = crate::remote::connection(&root, &chosen)?;
                return match cli.command {
                    Command::Owner(command) => {
                        crate::accounts::owner_remote(&remote, command, out).await
                    }
                    Command::Token(command) => {
                        crate::accounts::token_remote(&remote, command, out).await
                    }
                    Command::Key(command) => {
                        let client = crate::remote::client(&root, &chosen, false, out)?;
                        let home = Home::remote(root, client);
                        crate::accounts::key_remote(&home, &remote, command, out).await
                    }
                    _ => unreachable!("remote_use says Accounts for token, owner and key only"),
                };
            }
            // Keys, trust and packing are the user's side: the home, registry or not.
            RemoteUse::UserSide => {}
            RemoteUse::HomeOnly(name) if chosen.explicit => {
                return Err(CliError::usage(format!(
                    "`mkt {name}` works on a marketplace home, not on a registry ({})",
                    chosen.url
                ))
                .with_hint(
                    "run it on the server's home (`mkt --home DIR …` there), or drop --registry / MKT_REGISTRY",
                ));
            }
            // The configuration's default registry: these run on the home.
            RemoteUse::HomeOnly(_) => {}
        }
    } else if matches!(cli.command, Command::Login { .. } | Command::Logout) {
        return Err(CliError::usage(
            "which registry? `mkt login` and `mkt logout` need --registry NAME|URL (or [registry] default in config.toml)",
        ));
    }
    let access = if creates_a_home(&cli.command) {
        home::Access::Create
    } else if changes_the_home(&cli.command).is_some() {
        home::Access::Write
    } else {
        home::Access::Read
    };
    // A server's settings are checked, and its store opened, before the home is.
    let served = match &cli.command {
        Command::Serve(args) => {
            let settings = crate::serve::Settings::resolve(args)?;
            let store = settings.open_store()?;
            Some((settings, store))
        }
        _ => None,
    };
    let store = served.as_ref().and_then(|(_, store)| store.clone());
    let database_url = cli
        .database_url
        .clone()
        .map(Some)
        .or_else(|| served.as_ref().and_then(|(s, _)| s.database.clone()));
    let database = match database_url {
        Some(url) => Some(crate::database::open(url.as_deref()).await?),
        None => None,
    };
    let location = database.as_ref().map(|d| d.location.clone());
    let backends = home::Backends { store, database };
    let home = Home::open(root, access, backends, out).await?;
    if let Some(key) = &home.created_key
        && !matches!(cli.command, Command::Init)
        && !out.is_json()
    {
        out.note(&format!(
            "new marketplace at {} with signing key `default` ({})",
            home.root.display(),
            key.public_key.key_id()
        ));
    }
    if let Some((why, versions)) = &home.repaired_index {
        out.note(&format!("{why} ({versions} versions indexed)"));
    }
    match &home.caught_up {
        Ok(0) => {}
        Ok(events) => out.note(&format!(
            "the search index caught up with {events} registry events it had missed"
        )),
        Err(e) if home.client.is_index_read_only() => {
            out.note(&format!("{e}: search may miss recent changes"));
        }
        Err(e) => out.note(&format!(
            "the search index could not catch up with the registry ({e}); search may miss recent changes until `mkt rebuild-index`"
        )),
    }
    if let Some(command) = changes_the_home(&cli.command) {
        home.require_writable(command)?;
    }
    if let Some((settings, _)) = served {
        return crate::serve::serve(home, settings, location, out).await;
    }
    execute_named(cli.command, &home, out).await
}

/// How a command relates to a registry given with `--registry` (or the configuration's).
enum RemoteUse {
    /// It runs against the registry.
    Served,
    /// `mkt login`.
    Login,
    /// `mkt logout`.
    Logout,
    /// It is the user's own side (keys, trust, packing): it runs on the home.
    UserSide,
    /// It makes sense only on a marketplace's home.
    HomeOnly(&'static str),
    /// An account command over the server's API (`token`, `owner`, `key`).
    Accounts,
}

fn remote_use(command: &Command) -> RemoteUse {
    match command {
        Command::Publish { .. }
        | Command::Search(_)
        | Command::List(_)
        | Command::Info { .. }
        | Command::Versions { .. }
        | Command::Install { .. }
        | Command::Outdated { .. }
        | Command::Audit { .. }
        | Command::Update { .. }
        | Command::Tree { .. }
        | Command::Yank { .. }
        | Command::Unyank { .. }
        | Command::Verify { .. }
        | Command::Stats { .. } => RemoteUse::Served,
        Command::Login { .. } => RemoteUse::Login,
        Command::Logout => RemoteUse::Logout,
        Command::Init
        | Command::Keygen { .. }
        | Command::Trust(_)
        | Command::Pack { .. }
        | Command::Uninstall { .. }
        | Command::Completions { .. }
        | Command::Man => RemoteUse::UserSide,
        Command::Serve(_) => RemoteUse::HomeOnly("serve"),
        Command::RebuildIndex => RemoteUse::HomeOnly("rebuild-index"),
        Command::Gc { .. } => RemoteUse::HomeOnly("gc"),
        Command::Cargo(_) => RemoteUse::HomeOnly("cargo import"),
        Command::Metrics => RemoteUse::HomeOnly("metrics"),
        Command::User(_) => RemoteUse::HomeOnly("user"),
        Command::Demo { .. } => RemoteUse::HomeOnly("demo"),
        Command::Token(_) | Command::Owner(_) | Command::Key(_) => RemoteUse::Accounts,
    }
}

/// The subcommand's name as typed, for messages: `Yank { .. }` is `yank` (every command
/// that runs against a registry is one word).
fn command_name(command: &Command) -> String {
    format!("{command:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

/// Whether `command` can run on a registry's caches alone (`--offline`).
fn works_offline(command: &Command) -> bool {
    // Not info (download statistics), versions or audit (yank state): offline they would
    // answer less than they say.
    matches!(
        command,
        Command::Install { .. } | Command::Verify { .. } | Command::Tree { .. }
    )
}

/// Runs `command`; a package that is not found gets the names close to it.
async fn execute_named(command: Command, home: &Home, out: &Output) -> CliResult {
    let named = named_package(&command).map(str::to_owned);
    let result = execute(command, home, out).await;
    match (result, named) {
        (Err(mut e), Some(named)) if e.code == exit::NOT_FOUND => {
            if let Some(names) = did_you_mean(&home.client, &named).await {
                e.hint = Some(format!("did you mean {names}?"));
            }
            Err(e)
        }
        (result, _) => result,
    }
}

/// The package a command names, as typed (without its version), if it names one.
fn named_package(command: &Command) -> Option<&str> {
    let text = match command {
        Command::Info { package }
        | Command::Versions { package }
        | Command::Tree { package, .. }
        | Command::Verify { package }
        | Command::Stats { package }
        | Command::Yank { package, .. }
        | Command::Unyank { package } => package.as_str(),
        _ => return None,
    };
    Some(text.split_once('@').map_or(text, |(name, _)| name))
}

/// Packages whose names are close to `typed` (a misspelling, another namespace, a `-` too
/// many or too few): candidates from the search index (its name and typo clauses) and from
/// name suggestions, kept when their name is within a few edits of the typed one, closest
/// first, as "`a/b` or `c`"; `None` when there are none, or when `typed` is itself a package
/// (only its version was missing).
async fn did_you_mean(client: &MarketplaceClient, typed: &str) -> Option<String> {
    let typed_package: Option<PackageRef> = typed.parse().ok();
    let typed_name = typed.rsplit('/').next().unwrap_or(typed).to_lowercase();
    let mut candidates: Vec<PackageRef> = Vec::new();
    for text in [typed.to_owned(), typed.replace(['/', '-', '_'], " ")] {
        let mut query = SearchQuery::text(text);
        query.forgive_short_typos = true;
        query.include_yanked = true;
        query.limit = 10;
        let hits = client.search(&query).await.ok()?;
        candidates.extend(hits.iter().map(|h| h.id.package()));
    }
    let prefix: String = typed_name.chars().take(3).collect();
    candidates.extend(client.suggest(&prefix, 20).await.unwrap_or_default());
    let most = (typed_name.chars().count() / 4).max(1);
    let mut close: Vec<(usize, String)> = Vec::new();
    for package in candidates {
        if typed_package
            .as_ref()
            .is_some_and(|t| t.canonical() == package.canonical())
        {
            return None;
        }
        let name = package.name.as_str().to_lowercase();
        let distance = strsim::levenshtein(&typed_name, &name);
        let shown = format!("`{package}`");
        if distance <= most && !close.iter().any(|(_, s)| *s == shown) {
            close.push((distance, shown));
        }
    }
    close.sort();
    let names: Vec<String> = close.into_iter().take(3).map(|(_, s)| s).collect();
    (!names.is_empty()).then(|| names.join(" or "))
}

async fn execute(command: Command, home: &Home, out: &Output) -> CliResult {
    let client = &home.client;
    match command {
        Command::Init => init(home, out),
        Command::Keygen { name, trust } => keygen(home, &name, trust, out).await,
        Command::Publish {
            paths,
            key,
            dry_run: true,
            ..
        } => publish_dry_run(home, &paths, &key, out).await,
        Command::Publish {
            paths, key, atomic, ..
        } => publish(home, &paths, &key, atomic, out).await,
        Command::Search(args) => search(client, args, out).await,
        Command::List(args) => list(client, args, out).await,
        Command::Info { package } => info(client, &package, out).await,
        Command::Versions { package } => versions(client, &package, out).await,
        Command::Install {
            packages,
            dest,
            resolution,
            locked,
            frozen,
        } => {
            let client = client.clone().with_resolution(resolution.into());
            let mode = match (locked, frozen) {
                (_, true) => LockMode::Frozen,
                (true, false) => LockMode::Locked,
                (false, false) => LockMode::Prefer,
            };
            install(&client, &packages, &dest, mode, out).await
        }
        Command::Outdated { dest } => outdated(client, &dest, out).await,
        Command::Audit { dest } => audit(client, &dest, out).await,
        Command::Update { package, dest } => update(client, package.as_deref(), &dest, out).await,
        Command::Tree {
            package,
            invert,
            resolution,
        } => {
            let client = client.clone().with_resolution(resolution.into());
            tree(&client, &package, invert.as_deref(), out).await
        }
        Command::Yank { package, reason } => {
            let id = parse_id(&package)?;
            client.yank(&id, &reason).await?;
            out.line(format!("yanked {id}: {}", plain(&reason)));
            out.json(&json!({ "id": id, "yanked": true, "reason": reason }))
        }
        Command::Unyank { package } => {
            let id = parse_id(&package)?;
            client.unyank(&id).await?;
            out.line(format!("unyanked {id}"));
            out.json(&json!({ "id": id, "yanked": false }))
        }
        Command::Verify { package } => verify(client, &package, out).await,
        Command::Trust(command) => trust(client, command, out).await,
        Command::Token(command) => crate::accounts::token(home, command, out).await,
        Command::Owner(command) => crate::accounts::owner(home, command, out).await,
        Command::Key(command) => crate::accounts::key(home, command, out).await,
        Command::User(command) => crate::accounts::user(home, command, out).await,
        Command::Stats { package } => stats(client, &package, out).await,
        Command::Cargo(CargoCommand::Import { paths, key }) => {
            crate::cargo::import(home, &paths, &key, out).await
        }
        Command::RebuildIndex => {
            let started = Instant::now();
            let count = client.rebuild_index().await?;
            out.line(format!(
                "rebuilt the search index: {count} versions in {:.2?}",
                started.elapsed()
            ));
            out.json(&json!({ "versions": count }))
        }
        Command::Gc { grace } => {
            let report = client.gc(Duration::from_secs(grace)).await?;
            out.line(format!(
                "{} objects scanned, {} orphaned, {} deleted ({} freed)",
                report.scanned,
                report.orphaned,
                report.deleted,
                human_bytes(report.bytes_freed)
            ));
            out.json(&json!({
                "scanned": report.scanned,
                "orphaned": report.orphaned,
                "deleted": report.deleted,
                "bytes_freed": report.bytes_freed,
            }))
        }
        Command::Metrics => metrics(client, out).await,
        // Handled before a home is opened.
        Command::Login { .. }
        | Command::Logout
        | Command::Serve(_)
        | Command::Pack { .. }
        | Command::Completions { .. }
        | Command::Uninstall { .. }
        | Command::Man
        | Command::Demo { .. } => Ok(()),
    }
}

/// The subcommand's name when it changes the home (refused on a read-only one).
/// Whether the command makes the home when there is none: the commands that put something
/// into it (`init`, a key, a package, a trusted key). Every other command needs a home that
/// exists and creates nothing in it, so a mistyped `--home` is an error, not a new marketplace.
fn creates_a_home(command: &Command) -> bool {
    matches!(
        command,
        Command::Init
            | Command::Keygen { .. }
            | Command::Publish { dry_run: false, .. }
            | Command::Trust(TrustCommand::Add { .. })
    )
}

fn changes_the_home(command: &Command) -> Option<&'static str> {
    match command {
        Command::Init => Some("init"),
        Command::Keygen { .. } => Some("keygen"),
        Command::Publish { dry_run: true, .. } => None,
        Command::Publish { .. } => Some("publish"),
        Command::Yank { .. } => Some("yank"),
        // It writes the destination, not the home; the home is read (downloads counted).
        Command::Update { .. } => None,
        Command::Unyank { .. } => Some("unyank"),
        Command::Trust(TrustCommand::Add { .. }) => Some("trust add"),
        Command::Trust(TrustCommand::Revoke { .. }) => Some("trust revoke"),
        Command::Token(TokenCommand::Create { .. }) => Some("token create"),
        Command::Token(TokenCommand::Revoke { .. }) => Some("token revoke"),
        Command::Owner(OwnerCommand::Add { .. }) => Some("owner add"),
        Command::Owner(OwnerCommand::Remove { .. }) => Some("owner remove"),
        Command::Key(KeyCommand::Add { .. }) => Some("key add"),
        Command::Key(KeyCommand::Revoke { .. }) => Some("key revoke"),
        Command::User(UserCommand::Add { .. }) => Some("user add"),
        Command::Token(TokenCommand::List { .. })
        | Command::Owner(OwnerCommand::List(_))
        | Command::Key(KeyCommand::List { .. })
        | Command::User(UserCommand::List) => None,
        Command::RebuildIndex => Some("rebuild-index"),
        Command::Gc { .. } => Some("gc"),
        Command::Cargo(CargoCommand::Import { .. }) => Some("cargo import"),
        // It publishes into the home (and holds its lock while it serves).
        Command::Serve(_) => Some("serve"),
        Command::Login { .. }
        | Command::Logout
        | Command::Search(_)
        | Command::List(_)
        | Command::Info { .. }
        | Command::Versions { .. }
        | Command::Install { .. }
        | Command::Tree { .. }
        | Command::Outdated { .. }
        | Command::Audit { .. }
        | Command::Verify { .. }
        | Command::Trust(TrustCommand::List)
        | Command::Stats { .. }
        | Command::Metrics
        | Command::Pack { .. }
        | Command::Completions { .. }
        | Command::Uninstall { .. }
        | Command::Man
        | Command::Demo { .. } => None,
    }
}

// ---- argument parsing ---------------------------------------------------------------------

fn parse_package(text: &str) -> CliResult<PackageRef> {
    PackageRef::parse_field("package", text).map_err(|e| {
        CliError::usage(e.to_string())
            .with_hint("a package is NAME or NAMESPACE/NAME, e.g. acme/web")
    })
}

/// `NAME@VERSION`.
fn parse_id(text: &str) -> CliResult<PackageId> {
    let Some((name, version)) = text.split_once('@') else {
        return Err(CliError::usage(format!("{text:?} has no version"))
            .with_hint("name an exact version: NAME@VERSION, e.g. acme/web@1.2.0"));
    };
    let package = parse_package(name)?;
    let version = parse_version(version)
        .map_err(|e| CliError::usage(e.to_string()).with_hint("a version looks like 1.2.3"))?;
    Ok(package.at(version))
}

/// `NAME[@REQUIREMENT]`; no requirement means any version (`*`).
fn parse_spec(text: &str) -> CliResult<(PackageRef, VersionReq)> {
    let (name, req) = text.split_once('@').unwrap_or((text, "*"));
    let package = parse_package(name)?;
    let req = parse_requirement_for("version requirement", req)
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok((package, req))
}

// ---- commands -----------------------------------------------------------------------------

fn init(home: &Home, out: &Output) -> CliResult {
    let key_id = match &home.created_key {
        Some(key) => {
            out.line(format!(
                "created a marketplace at {}\nsigning key `default`: {} (trusted, ultimate)\n  private: {}\n  public:  {}",
                home.root.display(),
                key.public_key.key_id(),
                home.key_path(home::DEFAULT_KEY).display(),
                home.public_key_path(home::DEFAULT_KEY).display()
            ));
            Some(key.public_key.key_id())
        }
        None => {
            out.line(format!(
                "the marketplace at {} already exists",
                home.root.display()
            ));
            None
        }
    };
    out.json(&json!({
        "home": home.root,
        "created": key_id.is_some(),
        "key_id": key_id,
    }))
}

async fn keygen(home: &Home, name: &str, trust: bool, out: &Output) -> CliResult {
    let level = trust.then_some(TrustLevel::Full);
    let pair = home.generate_key(name, level).await?;
    let id = pair.public_key.key_id();
    out.line(format!(
        "key {name}: {id}{}\n  private: {}\n  public:  {}",
        if trust { " (trusted, full)" } else { "" },
        home.key_path(name).display(),
        home.public_key_path(name).display()
    ));
    if !trust {
        out.line(out.dim(&format!(
            "to publish with it here: mkt trust add {}",
            home.public_key_path(name).display()
        )));
    }
    out.json(&json!({
        "name": name,
        "key_id": id,
        "private_key": home.key_path(name),
        "public_key": home.public_key_path(name),
        "trusted": trust,
    }))
}

fn pack(dir: &Path, output: Option<&Path>, out: &Output) -> CliResult {
    let packed = pack_dir(dir, &ArchiveLimits::default())?;
    let path = match output {
        Some(path) => path.to_owned(),
        None => PathBuf::from(format!("{}.tar.gz", packed.top())),
    };
    let archive = packed.archive();
    std::fs::write(&path, archive).map_err(|e| CliError {
        code: exit::FAILURE,
        message: format!("write {}: {e}", path.display()),
        hint: None,
    })?;
    let checksum = packed.digest();
    out.line(format!(
        "packed {} into {} ({}, {checksum})",
        packed.id(),
        path.display(),
        human_bytes(archive.len() as u64)
    ));
    out.json(&json!({
        "id": packed.id(),
        "path": path,
        "size": archive.len(),
        "checksum": checksum,
    }))
}

/// An archive file's bytes, or a directory packed on the fly (already validated while packing,
/// so publishing does not read it again).
fn read_package(path: &Path) -> CliResult<Archive> {
    if path.is_dir() {
        Ok(pack_dir(path, &ArchiveLimits::default())?.into())
    } else {
        std::fs::read(path)
            .map(Archive::from)
            .map_err(|e| CliError {
                code: exit::NOT_FOUND,
                message: format!("cannot read {}: {e}", path.display()),
                hint: Some("pass a .tar.gz made by `mkt pack`, or a package directory".into()),
            })
    }
}

/// What a publish of several paths did: the versions published, and every path refused with
/// why (in the order given).
struct PublishOutcome {
    published: Vec<Published>,
    refused: Vec<(PathBuf, CliError)>,
}

/// Publishes `paths`: one path on its own; several as an import does — every path is read and
/// validated first, every refusal is collected with its reason, and the valid ones are
/// published in one batch (with `atomic`, one refusal publishes nothing).
async fn publish_all(
    client: &MarketplaceClient,
    paths: &[PathBuf],
    key: &marketplace_core::KeyPair,
    atomic: bool,
    out: &Output,
) -> CliResult<PublishOutcome> {
    let with_path = |path: &Path, mut e: CliError| {
        e.message = format!("{}: {}", path.display(), e.message);
        e
    };
    if let [path] = paths {
        let archive = read_package(path).map_err(|e| with_path(path, e))?;
        let p = client
            .publish(archive, &key.private_key)
            .await
            .map_err(|e| with_path(path, e.into()))?;
        return Ok(PublishOutcome {
            published: vec![p],
            refused: Vec::new(),
        });
    }
    let bar = out.progress(paths.len() as u64, "reading");
    let mut archives = Vec::with_capacity(paths.len());
    let mut origins = Vec::with_capacity(paths.len());
    let mut refused: Vec<(usize, PathBuf, CliError)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        bar.set_message(path.display().to_string());
        match read_package(path) {
            Ok(archive) => {
                archives.push(archive);
                origins.push(i);
            }
            Err(e) => refused.push((i, path.clone(), e)),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let spinner = out.spinner("validating and publishing");
    let outcome = if atomic && !refused.is_empty() {
        marketplace_client::ManyPublished::default()
    } else {
        client
            .publish_many(archives, &key.private_key, atomic)
            .await?
    };
    spinner.finish_and_clear();
    for (position, e) in outcome.refused {
        let i = origins[position];
        refused.push((i, paths[i].clone(), e.into()));
    }
    refused.sort_by_key(|(i, _, _)| *i);
    Ok(PublishOutcome {
        published: outcome.published,
        refused: refused
            .into_iter()
            .map(|(_, path, e)| {
                let e = with_path(&path, e);
                (path, e)
            })
            .collect(),
    })
}

/// `mkt publish --dry-run`: every check of a publish, nothing changed; refusals are listed and
/// make the exit code as they would for a publish.
async fn publish_dry_run(home: &Home, paths: &[PathBuf], key: &str, out: &Output) -> CliResult {
    let key = home.load_key(key).await?;
    let mut archives = Vec::with_capacity(paths.len());
    let mut origins = Vec::with_capacity(paths.len());
    let mut refused: Vec<(usize, CliError)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match read_package(path) {
            Ok(archive) => {
                archives.push(archive);
                origins.push(i);
            }
            Err(e) => refused.push((i, e)),
        }
    }
    let checked = home.client.check_many(archives, &key.private_key).await?;
    refused.extend(
        checked
            .refused
            .into_iter()
            .map(|(position, e)| (origins[position], e.into())),
    );
    refused.sort_by_key(|(i, _)| *i);
    for (i, e) in &mut refused {
        e.message = format!("{}: {}", paths[*i].display(), e.message);
        out.error(e);
    }
    for metadata in &checked.valid {
        out.line(format!(
            "would publish {} ({}, {})",
            metadata.id,
            human_bytes(metadata.size),
            metadata.checksum
        ));
        let missing = missing_dependencies(&home.client, metadata).await?;
        if !missing.is_empty() {
            out.note(&format!(
                "{} depends on {}, not in this marketplace yet",
                metadata.id,
                missing.join(", ")
            ));
        }
    }
    out.line(format!(
        "dry run: {} of {} would be published{}; nothing was changed",
        checked.valid.len(),
        paths.len(),
        match refused.len() {
            0 => String::new(),
            n => format!(", {n} refused"),
        }
    ));
    out.json(&json!({
        "dry_run": true,
        "valid": checked.valid.iter().map(|m| json!({
            "id": m.id,
            "checksum": m.checksum,
            "size": m.size,
        })).collect::<Vec<_>>(),
        "refused": refused.iter().map(|(i, e)| json!({
            "path": paths[*i],
            "error": e.message,
        })).collect::<Vec<_>>(),
    }))?;
    match refused.into_iter().next() {
        None => Ok(()),
        Some((_, first)) => Err(CliError {
            code: first.code,
            message: "some packages would be refused (each is listed above)".into(),
            hint: Some("fix them and run the dry run again".into()),
        }),
    }
}

/// The dependencies (plain and renamed) of `metadata` on packages this marketplace does not
/// hold (yet), as `package requirement`.
async fn missing_dependencies(
    client: &MarketplaceClient,
    metadata: &PackageMetadata,
) -> CliResult<Vec<String>> {
    let mut missing = Vec::new();
    for (dep, req) in metadata.all_dependencies() {
        match client.registry().list_version_states(dep).await {
            Ok(states) if !states.is_empty() => {}
            Ok(_) | Err(marketplace_core::Error::NotFound { .. }) => {
                missing.push(format!("{dep} {req}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(missing)
}

async fn publish(
    home: &Home,
    paths: &[PathBuf],
    key: &str,
    atomic: bool,
    out: &Output,
) -> CliResult {
    let key = home.load_key(key).await?;
    let PublishOutcome { published, refused } =
        publish_all(&home.client, paths, &key, atomic, out).await?;
    for (_, e) in &refused {
        out.error(e);
    }
    for p in &published {
        out.line(format!(
            "published {} ({}){}",
            p.id,
            p.checksum,
            if p.indexed {
                ""
            } else {
                " — not indexed yet, run `mkt rebuild-index`"
            }
        ));
    }
    // A dependency on a package not published yet is allowed (imports come in any order),
    // but installs fail until it is there: say so.
    for p in &published {
        let metadata = home.client.registry().get(&p.id).await?;
        let missing = missing_dependencies(&home.client, &metadata).await?;
        if !missing.is_empty() {
            out.note(&format!(
                "{} depends on {}, not in this marketplace yet: installing it fails until {} published",
                p.id,
                missing.join(", "),
                if missing.len() == 1 { "that is" } else { "those are" }
            ));
        }
    }
    out.json(
        &published
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "checksum": p.checksum,
                    "size": p.size,
                    "indexed": p.indexed,
                })
            })
            .collect::<Vec<_>>(),
    )?;
    if paths.len() > 1 {
        out.line(format!(
            "published {} of {} packages{}",
            published.len(),
            paths.len(),
            match refused.len() {
                0 => String::new(),
                n if atomic => format!("; {n} refused, so nothing was published (--atomic)"),
                n => format!("; {n} refused"),
            }
        ));
    }
    match refused.into_iter().next() {
        None => Ok(()),
        Some((_, first)) => Err(CliError {
            code: first.code,
            message: "some packages were refused (each is listed above)".into(),
            hint: Some(if atomic {
                "fix them and publish all the paths again".into()
            } else {
                "fix them and publish those paths again; the others are published".into()
            }),
        }),
    }
}

fn search_query(text: String, sort: Sort, args: Filters) -> SearchQuery {
    let mut query = SearchQuery::text(text);
    query.categories = args.category;
    query.keywords = args.keyword;
    query.namespace = args.namespace;
    query.min_downloads = args.min_downloads;
    query.include_yanked = args.include_yanked;
    query.sort = match sort {
        Sort::Relevance => SortOrder::Relevance,
        Sort::Downloads => SortOrder::Downloads,
        Sort::Recent => SortOrder::Recent,
        Sort::Name => SortOrder::Name,
    };
    query.limit = args.limit;
    query.offset = args.offset;
    query
}

/// `mkt list`: every package's latest version, filtered and sorted, a page at a time.
async fn list(client: &MarketplaceClient, args: ListArgs, out: &Output) -> CliResult {
    let query = search_query(String::new(), args.sort, args.filters);
    let hits = client.search(&query).await?;
    if out.is_json() {
        return out.json(&hits_json(&hits));
    }
    if hits.is_empty() {
        out.line(if query.offset > 0 {
            format!("no packages after the first {}", query.offset)
        } else {
            "no packages match".to_owned()
        });
        return Ok(());
    }
    hits_table(client, &hits, out).await?;
    out.line(out.dim(&format!(
        "packages {}–{}{}",
        query.offset + 1,
        query.offset + hits.len(),
        if hits.len() == query.limit {
            format!("; the next page: --offset {}", query.offset + hits.len())
        } else {
            String::new()
        }
    )));
    Ok(())
}

/// Search hits for scripts: each hit as the library gives it, plus `snippets` — the
/// highlights as plain text with the matched ranges as byte offsets.
fn hits_json(hits: &[marketplace_core::SearchResult]) -> Vec<serde_json::Value> {
    hits.iter()
        .map(|h| {
            let mut value = serde_json::to_value(h).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("snippets".into(), json!(h.snippets()));
            }
            value
        })
        .collect()
}

/// Why each yanked hit was yanked (one version listing per package with a yanked hit; hits
/// are few and yanked ones rarer).
async fn yanks_of(
    client: &MarketplaceClient,
    hits: &[marketplace_core::SearchResult],
) -> CliResult<std::collections::HashMap<PackageId, marketplace_core::YankInfo>> {
    let mut yanks = std::collections::HashMap::new();
    for hit in hits.iter().filter(|h| h.yanked) {
        if yanks.contains_key(&hit.id) {
            continue;
        }
        let package = hit.id.package();
        for state in client.versions(&package).await? {
            if let Some(yank) = state.yanked {
                yanks.insert(package.at(state.version), yank);
            }
        }
    }
    Ok(yanks)
}

/// The table of search hits: package, version (marked when yanked, with the reason),
/// downloads, the matched text or the description.
async fn hits_table(
    client: &MarketplaceClient,
    hits: &[marketplace_core::SearchResult],
    out: &Output,
) -> CliResult {
    let yanks = yanks_of(client, hits).await?;
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            let text = h
                .highlights
                .first()
                .map(|s| out.snippet(s))
                .unwrap_or_else(|| plain(&h.description));
            vec![
                out.bold(&h.id.package().to_string()),
                match yanks.get(&h.id) {
                    Some(yank) => format!(
                        "{} {}",
                        h.id.version,
                        out.bad(&format!("(yanked: {})", plain(&yank.reason)))
                    ),
                    None if h.yanked => format!("{} {}", h.id.version, out.bad("(yanked)")),
                    None => h.id.version.to_string(),
                },
                h.downloads.to_string(),
                text,
            ]
        })
        .collect();
    out.table(&["PACKAGE", "VERSION", "DOWNLOADS", "DESCRIPTION"], &rows);
    Ok(())
}

async fn search(client: &MarketplaceClient, args: SearchArgs, out: &Output) -> CliResult {
    let query = search_query(args.query.join(" "), args.sort, args.filters);
    let started = Instant::now();
    let searched = client.search_or_closest(&query).await?;
    let elapsed = started.elapsed();
    let hits = searched.hits;
    if out.is_json() {
        return out.json(&hits_json(&hits));
    }
    if hits.is_empty() {
        out.line(format!("no packages match {:?}", query.text));
        return Ok(());
    }
    if searched.respelled {
        let closest: Vec<String> = hits
            .iter()
            .take(3)
            .map(|h| h.id.package().to_string())
            .collect();
        out.line(format!(
            "no packages match {:?} as written; did you mean {}?",
            query.text,
            closest.join(", ")
        ));
    }
    hits_table(client, &hits, out).await?;
    out.line(out.dim(&format!("{} results in {:.1?}", hits.len(), elapsed)));
    Ok(())
}

/// `NAME@VERSION`, or the latest version that is not yanked (the latest yanked one if all
/// are).
async fn id_or_latest(client: &MarketplaceClient, text: &str) -> CliResult<PackageId> {
    if text.contains('@') {
        return parse_id(text);
    }
    let package = parse_package(text)?;
    let states = client.versions(&package).await?;
    let latest = states
        .iter()
        .rev()
        .find(|s| !s.is_yanked())
        .or(states.last())
        .ok_or_else(|| {
            CliError::from(marketplace_core::Error::not_found(format!(
                "package {package}"
            )))
        })?;
    Ok(package.at(latest.version.clone()))
}

async fn info(client: &MarketplaceClient, text: &str, out: &Output) -> CliResult {
    let id = id_or_latest(client, text).await?;
    let info = client.info(&id).await?;
    if out.is_json() {
        return out.json(&json!({
            "metadata": info.metadata,
            "yanked": info.yanked,
            "stats": info.stats,
        }));
    }
    let m = &info.metadata;
    out.line(format!(
        "{}{}",
        out.bold(&m.id.to_string()),
        if info.yanked.is_some() {
            out.bad(" (yanked)")
        } else {
            String::new()
        }
    ));
    out.line(plain(&m.description));
    let mut rows = vec![
        (
            "yanked",
            info.yanked.as_ref().map(yank_text).unwrap_or_default(),
        ),
        (
            "license",
            m.license.as_ref().map_or_else(
                || "none".into(),
                |l| {
                    if l.was_normalised() {
                        format!("{} (written as {})", l.spdx(), plain(l.as_str()))
                    } else {
                        plain(l.as_str())
                    }
                },
            ),
        ),
        ("authors", plain(&m.authors.join(", "))),
        ("keywords", plain(&m.keywords.join(", "))),
        ("categories", plain(&m.categories.join(", "))),
        (
            "homepage",
            m.homepage
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            "repository",
            m.repository
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("size", human_bytes(m.size)),
        ("checksum", m.checksum.to_string()),
        (
            "signed by",
            m.signature
                .as_ref()
                .map(|s| s.key_id().to_string())
                .unwrap_or_else(|| "nobody (unsigned)".into()),
        ),
        ("published", rfc3339(m.published_at)),
        (
            "downloads",
            format!(
                "{} this version, {} all versions",
                info.stats.version_downloads, info.stats.total_downloads
            ),
        ),
    ];
    rows.retain(|(_, v)| !v.is_empty());
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        out.line(format!("  {}  {v}", out.dim(&format!("{k:<width$}"))));
    }
    if m.all_dependencies().next().is_some() {
        out.line(format!("  {}", out.dim("dependencies")));
        let missing = missing_dependencies(client, m).await?;
        let aliases = m.dependencies.keys().map(|_| None).chain(
            m.renamed_dependencies
                .keys()
                .map(|alias| Some(format!(" (as {alias})"))),
        );
        for ((dep, req), alias) in m.all_dependencies().zip(aliases) {
            let line = format!("{dep} {req}");
            let shown = format!("{line}{}", alias.unwrap_or_default());
            if missing.contains(&line) {
                out.line(format!(
                    "    {shown}  {}",
                    out.bad("(not in this marketplace: installs fail until it is published)")
                ));
            } else {
                out.line(format!("    {shown}"));
            }
        }
    }
    Ok(())
}

async fn versions(client: &MarketplaceClient, text: &str, out: &Output) -> CliResult {
    let package = parse_package(text)?;
    let states = client.versions(&package).await?;
    if out.is_json() {
        return out.json(&states);
    }
    let rows: Vec<Vec<String>> = states
        .iter()
        .rev()
        .map(|s| match &s.yanked {
            Some(yank) => vec![s.version.to_string(), out.bad("yanked"), yank_text(yank)],
            None => vec![s.version.to_string(), out.good("available"), String::new()],
        })
        .collect();
    out.table(&["VERSION", "STATE", "YANKED"], &rows);
    Ok(())
}

/// `at` in RFC 3339, as every date in the JSON output is.
fn rfc3339(at: marketplace_core::time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// A yank for people: `REASON (yanked DATE)`, the reason made plain.
fn yank_text(yank: &marketplace_core::YankInfo) -> String {
    format!("{} (yanked {})", plain(&yank.reason), yank.at.date())
}

fn install_json(report: &InstallReport) -> serde_json::Value {
    json!({
        "root": report.root,
        "installed": report.installed.iter().map(|p| json!({
            "id": p.id,
            "checksum": p.checksum,
            "path": p.path,
        })).collect::<Vec<_>>(),
        "already_present": report.already_present,
        "from_lockfile": report.from_lockfile,
        "lockfile": report.lockfile,
        "yanked": report.yanked.iter().map(|(id, yank)| json!({
            "id": id,
            "reason": yank.reason,
            "at": rfc3339(yank.at),
        })).collect::<Vec<_>>(),
        "passed_over": report.passed_over.iter().map(|(id, why)| json!({
            "id": id,
            "reason": why,
        })).collect::<Vec<_>>(),
    })
}

/// `mkt install SPEC…`: every spec parsed first, then each installed in turn (each install is
/// all-or-nothing; one that fails stops the rest, the ones before it stay). One spec prints
/// its report as an object in JSON, several as an array.
async fn install(
    client: &MarketplaceClient,
    texts: &[String],
    dest: &Path,
    mode: LockMode,
    out: &Output,
) -> CliResult {
    let specs = texts
        .iter()
        .map(|text| parse_spec(text))
        .collect::<CliResult<Vec<_>>>()?;
    let mut reports = Vec::with_capacity(specs.len());
    for ((package, req), text) in specs.iter().zip(texts) {
        let spinner = out.spinner(&format!("resolving and verifying {package} {req}"));
        let result = client.install_with(package, req, dest, mode).await;
        spinner.finish_and_clear();
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                let not_found = e.kind() == marketplace_core::ErrorKind::NotFound;
                let mut e = CliError::from(e);
                let typed = text.split_once('@').map_or(text.as_str(), |(name, _)| name);
                if not_found && let Some(names) = did_you_mean(client, typed).await {
                    e.hint = Some(format!("did you mean {names}?"));
                }
                if !reports.is_empty() {
                    e.message = format!(
                        "{}\n(installed before it: {})",
                        e.message,
                        texts[..reports.len()].join(", ")
                    );
                }
                return Err(e);
            }
        };
        if !out.is_json() {
            print_install(&report, out);
        }
        reports.push(install_json(&report));
    }
    match reports.as_slice() {
        [one] => out.json(one),
        _ => out.json(&reports),
    }
}

/// The lockfile of `dest`, or "not found" saying nothing is installed there.
fn read_lockfile(dest: &Path) -> CliResult<Lockfile> {
    match Lockfile::read(dest)? {
        Some(lock) => Ok(lock),
        None => Err(CliError {
            code: exit::NOT_FOUND,
            message: format!("nothing is installed in {} (no {LOCKFILE})", dest.display()),
            hint: Some("pass the --dest the packages were installed into".into()),
        }),
    }
}

/// The newest version of `package` that is not yanked and that `requirement` allows.
fn newest(states: &[marketplace_core::VersionState], requirement: &VersionReq) -> Option<Version> {
    states
        .iter()
        .filter(|s| !s.is_yanked() && requirement.matches(&s.version))
        .map(|s| s.version.clone())
        .max()
}

/// The requirement `mkt update` keeps a locked version to: its semver-compatible series.
fn compatible_with(version: &Version) -> VersionReq {
    VersionReq::parse(&format!("^{version}")).unwrap_or(VersionReq::STAR)
}

/// `mkt outdated`: every locked package with a newer compatible or newer latest version.
async fn outdated(client: &MarketplaceClient, dest: &Path, out: &Output) -> CliResult {
    let lock = read_lockfile(dest)?;
    let mut rows = Vec::new();
    let mut report = Vec::new();
    for locked in &lock.packages {
        let states = client.versions(&locked.id.package()).await?;
        let version = &locked.id.version;
        let compatible = newest(&states, &compatible_with(version));
        let latest = newest(&states, &VersionReq::STAR);
        let newer = |v: &Option<Version>| v.as_ref().is_some_and(|v| v > version);
        if !newer(&compatible) && !newer(&latest) {
            continue;
        }
        let show = |v: &Option<Version>| v.as_ref().map_or("—".into(), ToString::to_string);
        rows.push(vec![
            out.bold(&locked.id.package().to_string()),
            version.to_string(),
            show(&compatible),
            show(&latest),
            if lock.roots.contains(&locked.id) {
                "installed".into()
            } else {
                "dependency".into()
            },
        ]);
        report.push(json!({
            "package": locked.id.package(),
            "locked": version,
            "compatible": compatible,
            "latest": latest,
            "root": lock.roots.contains(&locked.id),
        }));
    }
    if out.is_json() {
        return out.json(&report);
    }
    if rows.is_empty() {
        out.line(format!(
            "all {} packages in {} are up to date",
            lock.packages.len(),
            dest.display()
        ));
        return Ok(());
    }
    out.table(
        &["PACKAGE", "LOCKED", "COMPATIBLE", "LATEST", "KIND"],
        &rows,
    );
    out.line(out.dim("`mkt update` moves to the compatible versions; a newer series needs `mkt install NAME@^VERSION`"));
    Ok(())
}

/// `mkt update`: each installed root (or the one named) resolved anew within its series, the
/// packages and the lockfile updated; prints what moved.
async fn update(
    client: &MarketplaceClient,
    only: Option<&str>,
    dest: &Path,
    out: &Output,
) -> CliResult {
    let before = read_lockfile(dest)?;
    let roots: Vec<PackageId> = match only {
        None => before.roots.iter().cloned().collect(),
        Some(text) => {
            let package = parse_package(text)?;
            let root = before.root_for(&package).cloned().ok_or_else(|| {
                CliError::from(marketplace_core::Error::not_found(format!(
                    "package {package} installed in {}",
                    dest.display()
                )))
                .with_hint("`mkt update` takes a package installed on request (see `mkt outdated`)")
            })?;
            vec![root]
        }
    };
    for root in &roots {
        client
            .install_with(
                &root.package(),
                &compatible_with(&root.version),
                dest,
                LockMode::Refresh,
            )
            .await?;
    }
    let after = read_lockfile(dest)?;
    let version_of = |lock: &Lockfile, package: &PackageRef| {
        lock.packages
            .iter()
            .find(|p| p.id.package().canonical() == package.canonical())
            .map(|p| p.id.version.clone())
    };
    let mut moved = Vec::new();
    for locked in &after.packages {
        let package = locked.id.package();
        let old = version_of(&before, &package);
        if old.as_ref() != Some(&locked.id.version) {
            out.line(format!(
                "updated {package} {} -> {}",
                old.as_ref().map_or("(new)".into(), ToString::to_string),
                locked.id.version
            ));
            moved.push(json!({ "package": package, "from": old, "to": locked.id.version }));
        }
    }
    // The versions updated away from are no longer locked: their directories go.
    for old in &before.packages {
        if after.get(&old.id).is_none() {
            let dir = marketplace_client::install_dir(dest, &old.id);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                out.note(&format!("could not remove {}: {e}", dir.display()));
            }
        }
    }
    if moved.is_empty() {
        out.line("everything is at the newest compatible version");
    }
    out.json(&json!({ "updated": moved }))
}

/// `mkt audit`: every locked package against the marketplace and the files on disk; any
/// finding fails the command (exit 4 when something does not verify, 1 otherwise).
async fn audit(client: &MarketplaceClient, dest: &Path, out: &Output) -> CliResult {
    use marketplace_client::Problem;
    read_lockfile(dest)?;
    let report = client.audit(dest).await?;
    let describe = |problem: &Problem| match problem {
        Problem::Yanked => "yanked since it was installed".to_owned(),
        Problem::Missing => "no longer in the marketplace".to_owned(),
        Problem::HashChanged { locked, registered } => {
            format!("the marketplace's archive hash is {registered}, the lockfile's {locked}")
        }
        Problem::Verification(why) => format!("does not verify: {why}"),
        Problem::NotInstalled => "its directory is missing".to_owned(),
        Problem::FilesDiffer {
            changed,
            missing,
            added,
        } => {
            let mut parts = Vec::new();
            for (what, paths) in [("changed", changed), ("missing", missing), ("added", added)] {
                if !paths.is_empty() {
                    parts.push(format!("{what}: {}", paths.join(", ")));
                }
            }
            format!("files differ from the archive ({})", parts.join("; "))
        }
        _ => format!("{problem:?}"),
    };
    let serious = report.findings.iter().any(|f| {
        matches!(
            f.problem,
            Problem::HashChanged { .. } | Problem::Verification(_) | Problem::FilesDiffer { .. }
        )
    });
    if out.is_json() {
        out.json(&json!({
            "checked": report.checked,
            "findings": report.findings.iter().map(|f| json!({
                "id": f.id,
                "problem": describe(&f.problem),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        for f in &report.findings {
            out.line(format!(
                "{} {}: {}",
                out.bad("✗"),
                f.id,
                plain(&describe(&f.problem))
            ));
        }
        if report.findings.is_empty() {
            out.line(format!(
                "{} all {} packages in {} verify, none yanked, files as published",
                out.good("ok"),
                report.checked,
                dest.display()
            ));
        }
    }
    if report.findings.is_empty() {
        return Ok(());
    }
    Err(CliError {
        code: if serious { exit::VERIFICATION } else { exit::FAILURE },
        message: format!(
            "{} of {} installed packages have problems (each is listed above)",
            report
                .findings
                .iter()
                .map(|f| &f.id)
                .collect::<BTreeSet<_>>()
                .len(),
            report.checked
        ),
        hint: Some("remove a changed package's directory and `mkt install` again to restore it; a yanked or revoked one needs another version (`mkt update`, or `mkt install NAME@REQUIREMENT`)".into()),
    })
}

/// `mkt tree`: the graph an install would put in place, drawn from the root (or, inverted,
/// from one package up to the root through everything that depends on it), each package
/// expanded once (`(*)` where it was shown already), as `cargo tree` draws.
async fn tree(
    client: &MarketplaceClient,
    text: &str,
    invert: Option<&str>,
    out: &Output,
) -> CliResult {
    let (package, req) = parse_spec(text)?;
    let graph = client.resolve(&package, &req).await?;
    let (start, edges): (PackageId, BTreeMap<PackageId, Vec<PackageId>>) = match invert {
        None => (
            graph.root.clone(),
            graph
                .nodes
                .iter()
                .map(|(id, node)| (id.clone(), node.dependencies.clone()))
                .collect(),
        ),
        Some(text) => {
            let target = parse_package(text)?;
            let Some(start) = graph.version_of(&target).cloned() else {
                return Err(CliError::from(marketplace_core::Error::not_found(format!(
                    "package {target} in the graph of {}",
                    graph.root
                )))
                .with_hint("`mkt tree` without --invert shows every package of the graph"));
            };
            let mut dependents: BTreeMap<PackageId, Vec<PackageId>> = BTreeMap::new();
            for (id, node) in &graph.nodes {
                for dep in &node.dependencies {
                    dependents.entry(dep.clone()).or_default().push(id.clone());
                }
            }
            (start, dependents)
        }
    };
    if out.is_json() {
        return out.json(&json!({
            "root": graph.root,
            "start": start,
            "inverted": invert.is_some(),
            "edges": edges,
        }));
    }
    let mut lines = vec![out.bold(&start.to_string())];
    let mut shown = BTreeSet::from([start.clone()]);
    draw_tree(&start, &edges, "", &mut shown, &mut lines);
    for line in lines {
        out.line(line);
    }
    Ok(())
}

fn draw_tree(
    id: &PackageId,
    edges: &BTreeMap<PackageId, Vec<PackageId>>,
    prefix: &str,
    shown: &mut BTreeSet<PackageId>,
    lines: &mut Vec<String>,
) {
    let children = edges.get(id).map_or(&[][..], Vec::as_slice);
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let again = !shown.insert(child.clone());
        let has_children = edges.get(child).is_some_and(|c| !c.is_empty());
        lines.push(format!(
            "{prefix}{}{child}{}",
            if last { "└── " } else { "├── " },
            if again && has_children { " (*)" } else { "" }
        ));
        if !again {
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            draw_tree(child, edges, &deeper, shown, lines);
        }
    }
}

fn print_install(report: &InstallReport, out: &Output) {
    for (id, revocation) in &report.passed_over {
        out.line(format!(
            "{} passed over {id}: {}; installing {}, the newest version whose signer's key is not revoked",
            out.bad("note:"),
            plain(revocation),
            report.root
        ));
    }
    for (id, yank) in &report.yanked {
        out.line(format!(
            "{} {id} is yanked: {} — installed because {}",
            out.bad("warning:"),
            yank_text(yank),
            if report.from_lockfile {
                "the lockfile holds it (`mkt update` moves to a version that is not yanked)"
            } else {
                "it was pinned exactly"
            }
        ));
    }
    let rows: Vec<Vec<String>> = report
        .installed
        .iter()
        .map(|p| {
            vec![
                out.bold(&p.id.to_string()),
                out.good("installed"),
                p.path.display().to_string(),
            ]
        })
        .chain(
            report
                .already_present
                .iter()
                .map(|id| vec![id.to_string(), out.dim("up to date"), String::new()]),
        )
        .collect();
    out.table(&["PACKAGE", "STATE", "PATH"], &rows);
    out.line(out.dim(&format!(
        "{} installed, {} already present{}; lockfile {}",
        report.installed.len(),
        report.already_present.len(),
        if report.from_lockfile {
            " (versions from the lockfile)"
        } else {
            ""
        },
        report.lockfile.display()
    )));
}

async fn verify(client: &MarketplaceClient, text: &str, out: &Output) -> CliResult {
    let id = id_or_latest(client, text).await?;
    let v = client.verify(&id).await?;
    out.line(format!(
        "{} {}: signature valid, signed by key {} (trusted, {}), archive {} with {} files intact",
        out.good("ok"),
        v.id,
        v.key_id,
        v.trust,
        v.checksum,
        v.files
    ));
    out.json(&json!({
        "id": v.id,
        "verified": true,
        "checksum": v.checksum,
        "key_id": v.key_id,
        "trust": v.trust,
        "files": v.files,
    }))
}

async fn trust(client: &MarketplaceClient, command: TrustCommand, out: &Output) -> CliResult {
    match command {
        TrustCommand::Add { pem, level } => {
            let text = std::fs::read_to_string(&pem).map_err(|e| CliError {
                code: exit::NOT_FOUND,
                message: format!("cannot read {}: {e}", pem.display()),
                hint: Some("pass the publisher's public key file (NAME.pub.pem)".into()),
            })?;
            let key = match client.import_key_pem(&text).await? {
                marketplace_core::Key::Public(key) => key,
                marketplace_core::Key::Private(pair) => pair.public_key,
            };
            let level = match level {
                Level::Marginal => TrustLevel::Marginal,
                Level::Full => TrustLevel::Full,
                Level::Ultimate => TrustLevel::Ultimate,
            };
            client.trust_key(&key, level).await?;
            out.line(format!("trusted key {} ({level})", key.key_id()));
            out.json(&json!({ "key_id": key.key_id(), "level": level }))
        }
        TrustCommand::Revoke { key_id, reason } => {
            let id: marketplace_core::KeyId =
                key_id.parse().map_err(|e: marketplace_core::Error| {
                    CliError::usage(e.to_string())
                        .with_hint("key ids are 32 hex digits; see `mkt trust list`")
                })?;
            client.revoke_key(&id, &reason).await?;
            out.line(format!("revoked key {id}: {}", plain(&reason)));
            out.json(&json!({ "key_id": id, "revoked": true, "reason": reason }))
        }
        TrustCommand::List => {
            let keys = client.trusted_keys().await?;
            if out.is_json() {
                return out.json(&keys);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| match &k.trust {
                    marketplace_core::TrustResult::Trusted {
                        key_id,
                        level,
                        since,
                    } => vec![
                        key_id.to_string(),
                        out.good(&level.to_string()),
                        since.date().to_string(),
                    ],
                    marketplace_core::TrustResult::Revoked { key_id, reason, at } => vec![
                        key_id.to_string(),
                        out.bad("revoked"),
                        format!("{}: {}", at.date(), plain(reason)),
                    ],
                    marketplace_core::TrustResult::Unknown { key_id } => {
                        vec![key_id.to_string(), "unknown".into(), String::new()]
                    }
                })
                .collect();
            out.table(&["KEY", "TRUST", "SINCE"], &rows);
            Ok(())
        }
    }
}

async fn stats(client: &MarketplaceClient, text: &str, out: &Output) -> CliResult {
    let id = id_or_latest(client, text).await?;
    let stats = client.stats(&id).await?;
    if out.is_json() {
        return out.json(&stats);
    }
    out.line(format!(
        "{}: {} downloads of this version, {} of all versions",
        out.bold(&stats.id.to_string()),
        stats.version_downloads,
        stats.total_downloads
    ));
    let rows: Vec<Vec<String>> = stats
        .per_version
        .iter()
        .rev()
        .map(|(v, n)| vec![v.to_string(), n.to_string()])
        .collect();
    out.table(&["VERSION", "DOWNLOADS"], &rows);
    let last: u64 = stats.last_30_days.iter().map(|d| d.downloads).sum();
    out.line(out.dim(&format!("{last} downloads in the last 30 days")));
    Ok(())
}

/// `mkt serve`: the home's marketplace over HTTP until SIGINT or SIGTERM. The home stays locked
/// for writing while it serves (other `mkt` writers wait; readers do not).
/// `n` requests per second with bursts of `2n`; none for 0.
async fn metrics(client: &MarketplaceClient, out: &Output) -> CliResult {
    let metrics = client.metrics().ok_or_else(|| CliError {
        code: exit::FAILURE,
        message: "this marketplace records no metrics".into(),
        hint: None,
    })?;
    // A command-line process is short-lived: report the state of the marketplace as gauges,
    // next to the counters and latencies of the reads that measured it.
    let summary = client.summary().await?;
    let gauges = [
        ("mkt_packages", summary.packages as f64),
        ("mkt_versions", summary.versions as f64),
        ("mkt_yanked_versions", summary.yanked_versions as f64),
        ("mkt_downloads", summary.downloads as f64),
        ("mkt_store_objects", summary.store.objects as f64),
        ("mkt_store_bytes", summary.store.bytes as f64),
        ("mkt_index_documents", summary.index.documents as f64),
    ];
    for (name, value) in gauges {
        metrics.gauge(name, value, &[]);
    }
    if out.is_json() {
        return out.json(&metrics.snapshot());
    }
    out.raw(&metrics.export_prometheus()?);
    Ok(())
}

// ---- the demo -----------------------------------------------------------------------------

/// The example packages: `--packages`, else `examples/packages` here, else in the source tree.
fn demo_packages(given: Option<PathBuf>) -> CliResult<PathBuf> {
    let candidates = match given {
        Some(dir) => vec![dir],
        None => vec![
            PathBuf::from("examples/packages"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packages"),
        ],
    };
    candidates
        .into_iter()
        .find(|d| d.is_dir())
        .ok_or_else(|| CliError {
            code: exit::NOT_FOUND,
            message: "no example packages found".into(),
            hint: Some("run from the repository root, or pass --packages DIR".into()),
        })
}

async fn demo(home: Option<PathBuf>, packages: Option<PathBuf>, out: &Output) -> CliResult {
    let packages = demo_packages(packages)?;
    let packages = packages.canonicalize().unwrap_or(packages);
    let root = match home {
        Some(root) => root,
        None => tempfile::Builder::new()
            .prefix("mkt-demo-")
            .tempdir()
            .map_err(|e| CliError {
                code: exit::FAILURE,
                message: format!("create a temporary directory: {e}"),
                hint: None,
            })?
            .keep(),
    };
    let started = Instant::now();
    out.step(&format!("a fresh marketplace in {}", root.display()));
    let home = Home::open(root.clone(), home::Access::Create, Default::default(), out).await?;
    let client = &home.client;
    let key = home.load_key(home::DEFAULT_KEY).await?;
    out.line(format!(
        "SQLite registry, local package store, tantivy index, ring keys; signing key {}",
        key.public_key.key_id()
    ));

    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&packages)
        .map_err(|e| CliError {
            code: exit::NOT_FOUND,
            message: format!("read {}: {e}", packages.display()),
            hint: None,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(marketplace_client::MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    out.step(&format!(
        "publish {} packages from {}",
        dirs.len(),
        packages.display()
    ));
    let publish_started = Instant::now();
    let outcome = publish_all(client, &dirs, &key, false, out).await?;
    if let Some((_, e)) = outcome.refused.into_iter().next() {
        return Err(e);
    }
    let published = outcome.published;
    let rows: Vec<Vec<String>> = published
        .iter()
        .map(|p| {
            vec![
                out.bold(&p.id.to_string()),
                human_bytes(p.size),
                p.checksum.to_string(),
            ]
        })
        .collect();
    out.table(&["PACKAGE", "SIZE", "CHECKSUM"], &rows);
    out.line(out.dim(&format!(
        "{} signed, stored, registered and indexed in {:.1?}",
        published.len(),
        publish_started.elapsed()
    )));

    out.step("search \"template\"");
    let mut query = SearchQuery::text("template");
    query.limit = 5;
    let hits = client.search(&query).await?;
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                out.bold(&h.id.to_string()),
                h.highlights
                    .first()
                    .map(|s| out.snippet(s))
                    .unwrap_or_else(|| plain(&h.description)),
            ]
        })
        .collect();
    out.table(&["PACKAGE", "MATCH"], &rows);

    let target = "starter/blog-template";
    out.step(&format!("install {target} ^1 with its dependencies"));
    let dest = root.join("installed");
    let package = parse_package(target)?;
    let req = parse_requirement_for("requirement", "^1")?;
    let report = client.install(&package, &req, &dest).await?;
    print_install(&report, out);

    out.step("verify what was installed");
    let mut verified = Vec::new();
    for p in &report.installed {
        let v = client.verify(&p.id).await?;
        out.line(format!(
            "{} {}: signed by {} ({}), {} files, {}",
            out.good("ok"),
            v.id,
            v.key_id,
            v.trust,
            v.files,
            v.checksum
        ));
        verified.push(v.id);
    }

    out.step(&format!("done in {:.1?}", started.elapsed()));
    out.line(format!(
        "explore it: MKT_HOME={} mkt search css   (or: mkt info {target}, mkt versions starter/base-styles)",
        root.display()
    ));
    out.json(&json!({
        "home": root,
        "published": published.iter().map(|p| &p.id).collect::<Vec<_>>(),
        "search": hits.iter().map(|h| &h.id).collect::<Vec<_>>(),
        "install": install_json(&report),
        "verified": verified,
    }))
}

#[cfg(test)]
mod tree_tests {
    use std::collections::{BTreeMap, BTreeSet};

    use marketplace_core::PackageId;

    use super::draw_tree;

    /// A package two others need is drawn once in full and marked `(*)` where it repeats.
    #[test]
    fn a_shared_dependency_is_expanded_once() {
        let id = |s: &str| -> PackageId { s.parse().unwrap() };
        let edges: BTreeMap<PackageId, Vec<PackageId>> = BTreeMap::from([
            (id("app@1.0.0"), vec![id("left@1.0.0"), id("right@1.0.0")]),
            (id("left@1.0.0"), vec![id("shared@1.0.0")]),
            (id("right@1.0.0"), vec![id("shared@1.0.0")]),
            (id("shared@1.0.0"), vec![id("leaf@1.0.0")]),
        ]);
        let mut shown = BTreeSet::from([id("app@1.0.0")]);
        let mut lines = Vec::new();
        draw_tree(&id("app@1.0.0"), &edges, "", &mut shown, &mut lines);
        assert_eq!(
            lines,
            [
                "├── left@1.0.0",
                "│   └── shared@1.0.0",
                "│       └── leaf@1.0.0",
                "└── right@1.0.0",
                "    └── shared@1.0.0 (*)",
            ]
        );
    }
}
