//! Settings of the component: command-line flags over a TOML file over
//! defaults.
//!
//! [`Args`] are the flags (flattened into `iotdisco component` by the CLI);
//! `--config FILE` names a TOML file with the same keys as the long flags
//! (`server = "127.0.0.1:5347"`, `domain = ...`, `secret-file = ...`,
//! `group-commit-ms = 10`, ...). A flag given on the command line wins over
//! the file. [`Settings::resolve`] checks everything once: a missing domain or
//! secret, a secret given twice, an unknown key in the file are one clear
//! error each. The secret never appears in `Debug` output or logs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default address of the server's component port.
pub const DEFAULT_SERVER: &str = "127.0.0.1:5347";

/// `iotdisco component` flags.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_help = "Example:\n  iotdisco component --server 127.0.0.1:5347 \
    --domain discovery.example.org --secret-file /etc/iotdisco/secret \
    --db /var/lib/iotdisco/registry.db\n\nLog filtering: RUST_LOG (default info; \
    RUST_LOG=debug adds the things' answers to notifications and
    ignored stanzas).")]
pub struct Args {
    /// The XMPP server's component port, host:port [default: 127.0.0.1:5347].
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// The component's domain, as configured on the server
    /// (e.g. discovery.example.org).
    #[arg(long)]
    pub domain: Option<String>,
    /// The component secret shared with the server (visible in `ps`: prefer
    /// --secret-file).
    #[arg(long, conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// A file holding the component secret (trailing white space ignored).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// The registry database (a sled directory, created if missing)
    /// [default: ./iotdisco-<domain>.db].
    #[arg(long, value_name = "PATH", conflicts_with = "memory")]
    pub db: Option<PathBuf>,
    /// Keep the registry in memory only (lost on exit).
    #[arg(long)]
    pub memory: bool,
    /// A TOML file with the same keys as these flags; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Flush the database every N ms instead of before each reply (faster;
    /// a crash can lose the last N ms of acknowledged changes).
    #[arg(long, value_name = "N")]
    pub group_commit_ms: Option<u64>,
    /// The name of the registry's disco#info identity [default: Thing Registry].
    #[arg(long, value_name = "NAME")]
    pub identity_name: Option<String>,
    /// The most things one search returns [default: 100].
    #[arg(long, value_name = "N")]
    pub max_search_results: Option<u32>,
    /// The most tags one thing may hold [default: 64].
    #[arg(long, value_name = "N")]
    pub max_tags_per_thing: Option<usize>,
    /// The most things the registry holds.
    #[arg(long, value_name = "N")]
    pub max_things: Option<u32>,
    /// How long a disown waits for the thing's acknowledgement, in ms
    /// [default: 30000].
    #[arg(long, value_name = "MS")]
    pub disown_timeout_ms: Option<u64>,
    /// Leave `owner` out of search results in the XEP-0347 namespace too (the
    /// successor namespaces never carry it).
    #[arg(long)]
    pub hide_owner_in_xep_results: bool,
    /// Keep a thing's KEY tag when it is claimed (by default the registry
    /// deletes it and keeps a salted digest for the owner's re-claim).
    #[arg(long)]
    pub keep_key_on_claim: bool,
    /// Longest tag name in the XEP-0347 namespace, 1-64 [default: 32].
    #[arg(long, value_name = "N")]
    pub max_tag_name_chars_xep: Option<usize>,
    /// Longest tag name in the successor namespaces, 1-64 [default: 64].
    #[arg(long, value_name = "N")]
    pub max_tag_name_chars_successor: Option<usize>,
    /// Any other engine or registry setting, by the key of the C ABI's options
    /// (e.g. `--set searches_per_hour=7200 --set max_tag_names=10000`; the
    /// README's "Security and limits" lists them). Repeatable; the flags above
    /// win over it.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The TOML file: the same keys as the long flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    server: Option<String>,
    domain: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    db: Option<PathBuf>,
    memory: Option<bool>,
    group_commit_ms: Option<u64>,
    identity_name: Option<String>,
    max_search_results: Option<u32>,
    max_tags_per_thing: Option<usize>,
    max_things: Option<u32>,
    disown_timeout_ms: Option<u64>,
    hide_owner_in_xep_results: Option<bool>,
    keep_key_on_claim: Option<bool>,
    max_tag_name_chars_xep: Option<usize>,
    max_tag_name_chars_successor: Option<usize>,
    set: Option<Vec<String>>,
}

/// Where the registry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory only.
    Memory,
    /// A sled database in this directory.
    Db(PathBuf),
}

/// The resolved settings, every value checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server's component port, `host:port`.
    pub server: String,
    /// The component's domain.
    pub domain: String,
    /// The shared secret.
    pub secret: String,
    /// Where the registry lives.
    pub storage: Storage,
    /// `Some(ms)`: group commit every `ms`; `None`: flush before each reply.
    pub group_commit_ms: Option<u64>,
    /// The disco#info identity name.
    pub identity_name: Option<String>,
    /// Registry limits left unset keep the engine's defaults.
    pub max_search_results: Option<u32>,
    /// See [`Args::max_tags_per_thing`].
    pub max_tags_per_thing: Option<usize>,
    /// See [`Args::max_things`].
    pub max_things: Option<u32>,
    /// See [`Args::disown_timeout_ms`].
    pub disown_timeout_ms: Option<u64>,
    /// See [`Args::hide_owner_in_xep_results`].
    pub hide_owner_in_xep_results: bool,
    /// See [`Args::keep_key_on_claim`].
    pub keep_key_on_claim: bool,
    /// See [`Args::max_tag_name_chars_xep`].
    pub max_tag_name_chars_xep: Option<usize>,
    /// See [`Args::max_tag_name_chars_successor`].
    pub max_tag_name_chars_successor: Option<usize>,
    /// See [`Args::set`]: the file's, then the command line's, checked.
    pub set: Vec<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("domain", &self.domain)
            .field("secret", &"<hidden>")
            .field("storage", &self.storage)
            .field("group_commit_ms", &self.group_commit_ms)
            .finish_non_exhaustive()
    }
}

fn read_secret(path: &Path) -> Result<String, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    let s = s.trim_end().to_owned();
    if s.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(s)
}

impl Settings {
    /// Merges `args` over the file named by `--config` (if any) over the
    /// defaults.
    pub fn resolve(args: Args) -> Result<Settings, String> {
        let file = match &args.config {
            None => File::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read the config file {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    format!(
                        "the config file {} is invalid: {}",
                        p.display(),
                        e.to_string().trim_end().replace('\n', " ")
                    )
                })?
            }
        };
        if file.secret.is_some() && file.secret_file.is_some() {
            return Err("the config file gives both secret and secret-file: keep one".into());
        }
        if file.db.is_some() && file.memory == Some(true) {
            return Err("the config file gives both db and memory = true: keep one".into());
        }
        let domain = args
            .domain
            .or(file.domain)
            .ok_or("no --domain given (the component's domain, e.g. discovery.example.org)")?;
        iotdisco::BareJid::parse(&domain)
            .ok()
            .filter(|j| j.local().is_none())
            .ok_or_else(|| format!("--domain {domain:?} is not a domain name"))?;
        let secret = match (args.secret, args.secret_file) {
            (Some(s), _) => s,
            (None, Some(p)) => read_secret(&p)?,
            (None, None) => match (file.secret, file.secret_file) {
                (Some(s), _) => s,
                (None, Some(p)) => read_secret(&p)?,
                (None, None) => return Err("no --secret or --secret-file given".into()),
            },
        };
        let storage = if args.memory {
            Storage::Memory
        } else if let Some(db) = args.db {
            Storage::Db(db)
        } else if file.memory == Some(true) {
            Storage::Memory
        } else {
            Storage::Db(
                file.db
                    .unwrap_or_else(|| PathBuf::from(format!("./iotdisco-{domain}.db"))),
            )
        };
        let group_commit_ms = args.group_commit_ms.or(file.group_commit_ms);
        if group_commit_ms == Some(0) {
            return Err("--group-commit-ms must be at least 1".into());
        }
        let max_tag_name_chars_xep = args.max_tag_name_chars_xep.or(file.max_tag_name_chars_xep);
        let max_tag_name_chars_successor = args
            .max_tag_name_chars_successor
            .or(file.max_tag_name_chars_successor);
        for (flag, n) in [
            ("--max-tag-name-chars-xep", max_tag_name_chars_xep),
            (
                "--max-tag-name-chars-successor",
                max_tag_name_chars_successor,
            ),
        ] {
            if n.is_some_and(|n| !(1..=iotdisco::tag::MAX_NAME_CHARS_ANY).contains(&n)) {
                return Err(format!(
                    "{flag} must be between 1 and {}",
                    iotdisco::tag::MAX_NAME_CHARS_ANY
                ));
            }
        }
        let mut set = file.set.unwrap_or_default();
        set.extend(args.set);
        for s in &set {
            if s.split_once('=')
                .is_some_and(|(k, _)| k.trim() == "durability")
            {
                return Err("--set durability=...: use --group-commit-ms".into());
            }
        }
        iotdisco::options::Options::parse(Some(&set.join(";")))
            .map_err(|e| format!("--set: {e}"))?;
        Ok(Settings {
            set,
            server: args
                .server
                .or(file.server)
                .unwrap_or_else(|| DEFAULT_SERVER.into()),
            domain,
            secret,
            storage,
            group_commit_ms,
            identity_name: args.identity_name.or(file.identity_name),
            max_search_results: args.max_search_results.or(file.max_search_results),
            max_tags_per_thing: args.max_tags_per_thing.or(file.max_tags_per_thing),
            max_things: args.max_things.or(file.max_things),
            disown_timeout_ms: args.disown_timeout_ms.or(file.disown_timeout_ms),
            hide_owner_in_xep_results: args.hide_owner_in_xep_results
                || file.hide_owner_in_xep_results.unwrap_or(false),
            keep_key_on_claim: args.keep_key_on_claim || file.keep_key_on_claim.unwrap_or(false),
            max_tag_name_chars_xep,
            max_tag_name_chars_successor,
        })
    }

    /// The `--set` settings (checked by `resolve`).
    fn options(&self) -> iotdisco::options::Options {
        iotdisco::options::Options::parse(Some(&self.set.join(";"))).unwrap_or_default()
    }

    /// The registry configuration these settings ask for.
    pub fn registry_config(&self) -> iotdisco::Config {
        let mut c = self.options().config;
        if let Some(n) = self.max_search_results {
            c.max_search_results = n;
        }
        if let Some(n) = self.max_tags_per_thing {
            c.max_tags_per_thing = n;
        }
        if let Some(n) = self.max_things {
            c.max_things = n;
        }
        if let Some(n) = self.disown_timeout_ms {
            c.disown_timeout_ms = n;
        }
        c.delete_key_on_claim = !self.keep_key_on_claim;
        c
    }

    /// The engine configuration: the component owns its address, so other
    /// namespaces get `service-unavailable`.
    pub fn engine_config(&self) -> iotdisco::EngineConfig {
        let mut c = iotdisco::EngineConfig {
            foreign: iotdisco::Foreign::ServiceUnavailable,
            ..self.options().engine
        };
        if let Some(n) = &self.identity_name {
            c.identity_name = n.clone();
        }
        c.hide_owner_in_xep_results = self.hide_owner_in_xep_results;
        if let Some(n) = self.max_tag_name_chars_xep {
            c.max_tag_name_chars_xep = n;
        }
        if let Some(n) = self.max_tag_name_chars_successor {
            c.max_tag_name_chars_successor = n;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(domain: &str) -> Args {
        Args {
            domain: Some(domain.into()),
            secret: Some("s".into()),
            ..Args::default()
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(args("discovery.example.org")).unwrap();
        assert_eq!(s.server, DEFAULT_SERVER);
        assert_eq!(
            s.storage,
            Storage::Db("./iotdisco-discovery.example.org.db".into())
        );
        assert_eq!(s.group_commit_ms, None);
        assert_eq!(
            s.engine_config().foreign,
            iotdisco::Foreign::ServiceUnavailable
        );
        assert!(!format!("{s:?}").contains("\"s\""));
        assert!(!s.engine_config().hide_owner_in_xep_results);
        assert!(s.registry_config().delete_key_on_claim);
        let mut a = args("discovery.example.org");
        a.hide_owner_in_xep_results = true;
        a.keep_key_on_claim = true;
        a.max_tag_name_chars_xep = Some(40);
        a.max_tag_name_chars_successor = Some(20);
        let s = Settings::resolve(a).unwrap();
        assert!(s.engine_config().hide_owner_in_xep_results);
        assert!(!s.registry_config().delete_key_on_claim);
        assert_eq!(s.engine_config().max_tag_name_chars_xep, 40);
        assert_eq!(s.engine_config().max_tag_name_chars_successor, 20);
        let mut a = args("discovery.example.org");
        a.set = vec!["searches_burst=7".into(), "max_tag_names=99".into()];
        a.max_search_results = Some(5);
        let s = Settings::resolve(a).unwrap();
        assert_eq!(s.engine_config().searches.burst, 7);
        assert_eq!(s.registry_config().max_tag_names, 99);
        assert_eq!(s.registry_config().max_search_results, 5);
        for bad in ["nope=1", "searches_burst=x", "durability=flush"] {
            let mut a = args("discovery.example.org");
            a.set = vec![bad.into()];
            assert!(Settings::resolve(a).is_err(), "{bad}");
        }
        let mut a = args("discovery.example.org");
        a.max_tag_name_chars_xep = Some(65);
        let e = Settings::resolve(a).unwrap_err();
        assert!(e.contains("--max-tag-name-chars-xep"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-file\n").unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "server = \"10.0.0.1:5347\"\ndomain = \"d.x\"\nsecret-file = {:?}\n\
                 memory = true\ngroup-commit-ms = 10\nmax-search-results = 7\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let s = Settings::resolve(Args {
            config: Some(cfg.clone()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(
            (s.server.as_str(), s.domain.as_str(), s.secret.as_str()),
            ("10.0.0.1:5347", "d.x", "from-file")
        );
        assert_eq!(s.storage, Storage::Memory);
        assert_eq!(s.group_commit_ms, Some(10));
        assert_eq!(s.registry_config().max_search_results, 7);
        let s = Settings::resolve(Args {
            config: Some(cfg),
            server: Some("127.0.0.1:1".into()),
            secret: Some("flag".into()),
            db: Some("x.db".into()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(
            (s.server.as_str(), s.secret.as_str()),
            ("127.0.0.1:1", "flag")
        );
        assert_eq!(s.storage, Storage::Db("x.db".into()));
    }

    #[test]
    fn errors_are_one_clear_line() {
        let e = Settings::resolve(Args::default()).unwrap_err();
        assert!(e.contains("--domain"), "{e}");
        let e = Settings::resolve(Args {
            domain: Some("d.x".into()),
            ..Args::default()
        })
        .unwrap_err();
        assert!(e.contains("--secret"), "{e}");
        let e = Settings::resolve(args("user@d.x")).unwrap_err();
        assert!(e.contains("not a domain"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "domian = \"d.x\"\n").unwrap();
        let e = Settings::resolve(Args {
            config: Some(cfg),
            ..Args::default()
        })
        .unwrap_err();
        assert!(e.contains("invalid") && e.contains("domian"), "{e}");
        assert!(!e.contains('\n'));
        let e = Settings::resolve(Args {
            secret: None,
            secret_file: Some(dir.path().join("missing")),
            ..args("d.x")
        })
        .unwrap_err();
        assert!(e.contains("cannot read the secret file"), "{e}");
    }
}
