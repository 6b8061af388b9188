//! Builds the modules the configuration enables (and the build includes).

use crate::config::Config;
use crate::runtime::Module;

/// The enabled modules, in start order.
pub fn build(config: &Config) -> Vec<Box<dyn Module>> {
    #[allow(unused_mut)]
    let mut modules: Vec<Box<dyn Module>> = Vec::new();
    #[cfg(feature = "generator")]
    if config.modules.generator.enabled {
        modules.push(Box::new(crate::modules::generator::Generator::new(
            config.modules.generator.clone(),
        )));
    }
    #[cfg(feature = "fim")]
    if config.modules.fim.enabled {
        modules.push(Box::new(crate::modules::fim::Fim::new(
            config.modules.fim.clone(),
        )));
    }
    let _ = config;
    modules
}
