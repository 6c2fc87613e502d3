//! The one way a Disktro process takes its settings: command-line flags (and their environment
//! variables, through clap) over an optional TOML file (`--config`) over the defaults. The file's
//! keys are the flag names with `_` for `-`; unknown keys are refused by the caller's
//! `#[serde(deny_unknown_fields)]`.
//!
//! A process's flag struct derives both `clap::Parser` and `serde::Deserialize` with every field
//! optional; [`file_layer`] reads the file into the same struct, [`pick!`](crate::pick) takes a
//! field from the flags or else the file, and [`size`] / [`duration`] turn what people write
//! (`10GiB`, `30s`) into values with an error naming the flag.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::units::{parse_duration, parse_size};

/// A setting that could not be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// One setting's value is unusable: `--flag: reason`.
    #[error("--{flag}: {reason}")]
    Setting { flag: &'static str, reason: String },
    /// Settings that do not go together, or one that needs another.
    #[error("{0}")]
    Conflict(&'static str),
}

impl ConfigError {
    pub fn setting(flag: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Setting {
            flag,
            reason: reason.to_string(),
        }
    }
}

/// Read a `--config` TOML file into a process's flag struct.
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The file layer: the TOML file's settings, or none (all defaults) when no file is given.
pub fn file_layer<T: serde::de::DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigError> {
    path.map_or_else(|| Ok(T::default()), load_toml)
}

/// A field from the flags, else from the file layer: `pick!(flags, file, data_dir)`.
#[macro_export]
macro_rules! pick {
    ($flags:expr, $file:expr, $field:ident) => {
        $flags.$field.or($file.$field)
    };
}

/// A size setting (`500GB`, `2TiB`), if given.
pub fn size(flag: &'static str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|v| parse_size(&v).map_err(|e| ConfigError::setting(flag, e)))
        .transpose()
}

/// A duration setting (`30s`, `24h`), if given.
pub fn duration(flag: &'static str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|v| parse_duration(&v).map_err(|e| ConfigError::setting(flag, e)))
        .transpose()
}

/// `https://host:port/path` → `https://host:port`, the form browsers send in `Origin`.
pub fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(origin_of("https://disktro.example/app/x"), "https://disktro.example");
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
    }

    #[test]
    fn bad_values_name_their_flag() {
        // Tried: a size and a duration without numbers. Must hold: the error names the flag.
        let e = size("capacity", Some("lots".into())).unwrap_err();
        assert!(e.to_string().starts_with("--capacity: "), "{e}");
        let e = duration("gc-grace", Some("soon".into())).unwrap_err();
        assert!(e.to_string().starts_with("--gc-grace: "), "{e}");
        assert_eq!(size("capacity", None).unwrap(), None);
        assert_eq!(
            duration("gc-grace", Some("2m".into())).unwrap(),
            Some(Duration::from_secs(120))
        );
    }
}
