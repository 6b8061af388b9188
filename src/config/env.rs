//! `WAZUH_*` environment overrides (being written).
use super::Config;

/// Applies the installer variables to `config`.
pub fn apply_env(
    _config: &mut Config,
    _vars: &dyn Fn(&str) -> Option<String>,
) -> Result<(), super::ConfigError> {
    Ok(())
}
