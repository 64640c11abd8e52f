//! Where each setting's value came from, so a message about a value can say where to
//! change it, and the keys that are no setting at all, so a misspelt one is not
//! ignored in silence.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use config::{File, FileFormat, Source, Value, ValueKind};

use super::SettingsError;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing set it: the default built into the binary.
    Default,
    /// A configuration file on disk.
    File(PathBuf),
    /// A variable of the process's environment.
    Environment(String),
    /// A variable the `.env` file in the working directory set.
    DotEnv(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "set in {}", path.display()),
            Self::Environment(variable) => write!(f, "set by the environment variable {variable}"),
            Self::DotEnv(variable) => write!(f, "set by {variable} in .env"),
        }
    }
}

/// A setting and where its value came from, as messages name it:
/// `database.url (set by DATABASE_URL in .env)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key, e.g. `database.url`.
    pub key: String,
    /// Where its value came from.
    pub origin: Origin,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.origin)
    }
}

/// The seed's variables, and the keys they stand for.
pub(super) const ALIASES: [(&str, &str); 5] = [
    ("DATABASE_URL", "database.url"),
    ("SECRET_KEY", "session.secret"),
    ("PORT", "server.port"),
    ("HOST", "server.host"),
    ("OPENAI_API_KEY", "bot.api_key"),
];

/// Keys without a default, so absent from `config/default.toml`.
const OPTIONAL_KEYS: [&str; 8] = [
    "server.workers",
    "session.secret",
    "bot.model",
    "bot.api_key",
    "bot.temperature",
    "bot.simulated_reply_words",
    "mail.smtp_username",
    "mail.smtp_password",
];

/// The prefix of the variables that set keys.
const PREFIX: &str = "CHATBOT__";

/// The variable that sets `key`: `CHATBOT__SERVER__PORT` for `server.port`.
pub(super) fn variable_of(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
}

/// What the settings were read from: the names (never the values) of the variables,
/// which of them `.env` set, and the keys each file on disk sets.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources {
    variables: HashSet<String>,
    from_dotenv: HashSet<String>,
    /// Highest precedence first (the profile's file, then `default.toml`).
    files: Vec<(PathBuf, BTreeSet<String>)>,
}

impl Sources {
    /// `environment` as given, and the variables of `.env` that it lacks (a variable
    /// of the environment beats the same one in `.env`).
    pub(super) fn with_dotenv(
        environment: &mut HashMap<String, String>,
        dotenv: Option<&Path>,
    ) -> Result<Self, SettingsError> {
        let mut from_dotenv = HashSet::new();
        if let Some(path) = dotenv {
            match dotenvy::from_path_iter(path) {
                Ok(entries) => {
                    for entry in entries {
                        let (name, value) = entry?;
                        if let Entry::Vacant(unset) = environment.entry(name) {
                            from_dotenv.insert(unset.key().clone());
                            unset.insert(value);
                        }
                    }
                }
                Err(error) if error.not_found() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Self {
            variables: environment.keys().cloned().collect(),
            from_dotenv,
            files: Vec::new(),
        })
    }

    /// Notes that the file at `path`, which `text` holds, was read; its highest
    /// precedence so far.
    pub(super) fn add_file(&mut self, path: PathBuf, text: &str) -> Result<(), SettingsError> {
        let keys = keys_of(text)?;
        self.files.insert(0, (path, keys));
        Ok(())
    }

    /// Where `key`'s value came from.
    pub(super) fn origin(&self, key: &str) -> Origin {
        let canonical = variable_of(key);
        let alias = ALIASES
            .iter()
            .find(|(_, aliased)| *aliased == key)
            .map(|(alias, _)| (*alias).to_owned());
        let variable = std::iter::once(canonical)
            .chain(alias)
            .find(|name| self.variables.contains(name));
        if let Some(variable) = variable {
            return self.variable(variable);
        }
        self.files
            .iter()
            .find(|(_, keys)| keys.contains(key))
            .map_or(Origin::Default, |(path, _)| Origin::File(path.clone()))
    }

    /// `key` and where its value came from.
    pub(super) fn setting(&self, key: &str) -> Setting {
        Setting {
            key: key.to_owned(),
            origin: self.origin(key),
        }
    }

    /// Where the variable `name` came from.
    fn variable(&self, name: String) -> Origin {
        if self.from_dotenv.contains(&name) {
            Origin::DotEnv(name)
        } else {
            Origin::Environment(name)
        }
    }

    /// `" in .env"` for a variable `.env` set, else nothing: to follow its name.
    pub(super) fn place_of(&self, variable: &str) -> &'static str {
        if self.from_dotenv.contains(variable) {
            " in .env"
        } else {
            ""
        }
    }

    /// A sentence for every key a file on disk or a `CHATBOT__` variable sets that
    /// is no setting, naming the closest one.
    pub(super) fn unknown_keys(&self, defaults: &str) -> Result<Vec<String>, SettingsError> {
        let mut known = keys_of(defaults)?;
        known.extend(OPTIONAL_KEYS.map(str::to_owned));
        let mut warnings = Vec::new();
        for (path, keys) in self.files.iter().rev() {
            for key in keys.iter().filter(|key| !known.contains(*key)) {
                let hint = closest(key, &known)
                    .map(|close| format!(" (did you mean {close}?)"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "{}: {key} is not a setting{hint}; it is ignored",
                    path.display()
                ));
            }
        }
        let mut variables: Vec<_> = self
            .variables
            .iter()
            .filter_map(|name| Some((name, name.strip_prefix(PREFIX)?)))
            .collect();
        variables.sort();
        for (name, rest) in variables {
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if known.contains(&key) {
                continue;
            }
            let hint = closest(&key, &known)
                .map(|close| format!(" (did you mean {}?)", variable_of(close)))
                .unwrap_or_default();
            warnings.push(format!(
                "{name}{} sets no setting{hint}; it is ignored",
                self.place_of(name)
            ));
        }
        Ok(warnings)
    }
}

/// Every dotted key a TOML text sets.
fn keys_of(text: &str) -> Result<BTreeSet<String>, SettingsError> {
    fn walk(prefix: &str, table: HashMap<String, Value>, keys: &mut BTreeSet<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match value.kind {
                ValueKind::Table(table) => walk(&key, table.into_iter().collect(), keys),
                _ => {
                    keys.insert(key);
                }
            }
        }
    }
    let table = File::from_str(text, FileFormat::Toml).collect()?;
    let mut keys = BTreeSet::new();
    walk("", table.into_iter().collect(), &mut keys);
    Ok(keys)
}

/// The known key nearest to `key` in spelling, if one is near enough to be meant.
fn closest<'k>(key: &str, known: &'k BTreeSet<String>) -> Option<&'k str> {
    known
        .iter()
        .map(|candidate| (strsim::levenshtein(key, candidate), candidate))
        .filter(|(distance, _)| *distance <= 3.max(key.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_from_the_environment_beats_the_same_one_in_dotenv() {
        let folder = tempfile::tempdir().unwrap();
        let dotenv = folder.path().join(".env");
        std::fs::write(&dotenv, "PORT=6000\nHOST=0.0.0.0\n").unwrap();
        let mut environment = HashMap::from([("PORT".to_owned(), "7000".to_owned())]);
        let sources = Sources::with_dotenv(&mut environment, Some(&dotenv)).unwrap();
        assert_eq!(environment["PORT"], "7000");
        assert_eq!(environment["HOST"], "0.0.0.0");
        assert_eq!(
            sources.origin("server.port"),
            Origin::Environment("PORT".into())
        );
        assert_eq!(sources.origin("server.host"), Origin::DotEnv("HOST".into()));
        assert_eq!(sources.origin("database.url"), Origin::Default);
    }

    #[test]
    fn the_canonical_variable_is_named_before_its_alias_and_files_after_both() {
        let mut environment = HashMap::from([
            ("PORT".to_owned(), "1".to_owned()),
            ("CHATBOT__SERVER__PORT".to_owned(), "2".to_owned()),
        ]);
        let mut sources = Sources::with_dotenv(&mut environment, None).unwrap();
        sources
            .add_file(
                "config/default.toml".into(),
                "[server]\nport = 1\nhost = \"h\"\n",
            )
            .unwrap();
        sources
            .add_file("config/production.toml".into(), "[server]\nhost = \"h\"\n")
            .unwrap();
        assert_eq!(
            sources.origin("server.port").to_string(),
            "set by the environment variable CHATBOT__SERVER__PORT"
        );
        assert_eq!(
            sources.origin("server.host").to_string(),
            "set in config/production.toml"
        );
    }

    #[test]
    fn misspelt_keys_are_named_with_the_closest_setting() {
        let mut environment = HashMap::from([
            ("CHATBOT__SERVER__PROT".to_owned(), "1".to_owned()),
            ("CHATBOT__SERVER__PORT".to_owned(), "1".to_owned()),
            (
                "CHATBOT__WHOLLY__UNRELATED_THING".to_owned(),
                "1".to_owned(),
            ),
            ("CHATBOT_CONFIG_DIR".to_owned(), "x".to_owned()),
        ]);
        let mut sources = Sources::with_dotenv(&mut environment, None).unwrap();
        sources
            .add_file("custom.toml".into(), "[server]\nhots = \"h\"\n")
            .unwrap();
        let warnings = sources
            .unknown_keys("[server]\nport = 1\nhost = \"h\"\n")
            .unwrap();
        assert_eq!(
            warnings,
            [
                "custom.toml: server.hots is not a setting (did you mean server.host?); it is ignored",
                "CHATBOT__SERVER__PROT sets no setting (did you mean CHATBOT__SERVER__PORT?); it is ignored",
                "CHATBOT__WHOLLY__UNRELATED_THING sets no setting; it is ignored",
            ]
        );
    }
}
