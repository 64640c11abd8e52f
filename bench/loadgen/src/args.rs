//! The command line, read by hand: four subcommands with a dozen `--name value` options
//! do not justify a parser crate's build time.

use std::str::FromStr;

use crate::Result;

/// A subcommand and its options: `--name value`, `--name=value`, or a bare `--flag`.
/// Each option is taken once by the subcommand that knows it; [`Args::finish`] then
/// refuses any left over, so a misspelt option is an error rather than a default.
#[derive(Debug)]
pub(crate) struct Args {
    command: String,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    /// The process's arguments.
    pub(crate) fn from_env() -> Result<Self> {
        Self::parse(std::env::args().skip(1))
    }

    fn parse(mut words: impl Iterator<Item = String>) -> Result<Self> {
        let command = words.next().unwrap_or_else(|| "help".to_owned());
        let mut options = Vec::new();
        let mut words = words.peekable();
        while let Some(word) = words.next() {
            let Some(name) = word.strip_prefix("--") else {
                return Err(format!("unexpected argument `{word}`").into());
            };
            if let Some((name, value)) = name.split_once('=') {
                options.push((name.to_owned(), Some(value.to_owned())));
            } else {
                let value = words.next_if(|next| !next.starts_with("--"));
                options.push((name.to_owned(), value));
            }
        }
        Ok(Self { command, options })
    }

    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// Takes `--name`'s value, if given.
    pub(crate) fn value(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Some(value)) => Ok(Some(value)),
            Some(None) => Err(format!("--{name} needs a value").into()),
        }
    }

    /// Takes `--name`'s value, which must be given.
    pub(crate) fn required(&mut self, name: &str) -> Result<String> {
        self.value(name)?
            .ok_or_else(|| format!("{} needs --{name}", self.command).into())
    }

    /// Takes `--name`'s value parsed as a `T`, or `default`.
    pub(crate) fn parsed<T: FromStr>(&mut self, name: &str, default: T) -> Result<T> {
        match self.value(name)? {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| format!("--{name}: `{raw}` is not valid").into()),
        }
    }

    /// Takes `--name`'s value parsed as a `T`, if given.
    pub(crate) fn parsed_opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        self.value(name)?
            .map(|raw| {
                raw.parse()
                    .map_err(|_| format!("--{name}: `{raw}` is not valid").into())
            })
            .transpose()
    }

    /// Whether the flag `--name` is given.
    pub(crate) fn flag(&mut self, name: &str) -> Result<bool> {
        match self.take(name) {
            None => Ok(false),
            Some(None) => Ok(true),
            Some(Some(value)) => Err(format!("--{name} takes no value (got `{value}`)").into()),
        }
    }

    /// Refuses the options no one took.
    pub(crate) fn finish(self) -> Result<()> {
        match self.options.first() {
            None => Ok(()),
            Some((name, _)) => {
                Err(format!("{}: unknown or repeated option --{name}", self.command).into())
            }
        }
    }

    fn take(&mut self, name: &str) -> Option<Option<String>> {
        let at = self.options.iter().position(|(known, _)| known == name)?;
        Some(self.options.remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Args {
        let parsed = Args::parse(line.split_whitespace().map(str::to_owned));
        parsed.unwrap_or_else(|error| panic!("{line}: {error}"))
    }

    #[test]
    fn values_flags_and_leftovers() -> Result<()> {
        let mut a = args("mix --url http://x --flask --connections=8 --duration 5");
        assert_eq!(a.command(), "mix");
        assert_eq!(a.required("url")?, "http://x");
        assert!(a.flag("flask")?);
        assert!(!a.flag("same-user")?);
        assert_eq!(a.parsed("connections", 32_usize)?, 8);
        assert_eq!(a.parsed("threads", 1_usize)?, 1);
        assert!(a.finish().is_err(), "--duration was not taken");
        Ok(())
    }

    #[test]
    fn bad_values_are_errors() {
        let mut a = args("seed --users many --flask yes --url");
        assert!(a.parsed("users", 1_usize).is_err());
        assert!(a.flag("flask").is_err());
        assert!(a.required("url").is_err());
    }
}
