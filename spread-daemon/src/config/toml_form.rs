//! An optional TOML form of the configuration (files ending in `.toml`),
//! mapping onto the same [`Config`](super::Config).

use super::{Config, ConfigError};

/// Parse the TOML form.
pub fn parse_toml(_text: &str, file_label: &str) -> Result<Config, ConfigError> {
    Err(ConfigError::new(file_label, 0, "the TOML configuration form is not available yet"))
}
