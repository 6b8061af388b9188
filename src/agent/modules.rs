//! Builds the modules the configuration enables (and the build includes).

use crate::config::Config;
use crate::modules::command::RemoteReceiver;
use crate::runtime::Module;

/// The enabled modules, in start order. `remote` carries the commands the manager pushes to the
/// command module (dropped, so that they are refused, when that module does not run).
pub fn build(config: &Config, remote: RemoteReceiver) -> Vec<Box<dyn Module>> {
    #[allow(unused_mut)]
    let mut modules: Vec<Box<dyn Module>> = Vec::new();
    #[cfg(feature = "generator")]
    if config.modules.generator.enabled {
        modules.push(Box::new(crate::modules::generator::Generator::new(
            config.modules.generator.clone(),
        )));
    }
    #[cfg(feature = "inventory")]
    if config.modules.inventory.enabled {
        modules.push(Box::new(crate::modules::inventory::Inventory::new(
            config.modules.inventory.clone(),
        )));
    }
    #[cfg(feature = "sca")]
    if config.modules.sca.enabled {
        modules.push(Box::new(crate::modules::sca::Sca::new(
            config.modules.sca.clone(),
        )));
    }
    #[cfg(feature = "logcollector")]
    if config.modules.logcollector.enabled {
        modules.push(Box::new(crate::modules::logcollector::LogCollector::new(
            config.modules.logcollector.clone(),
        )));
    }
    #[cfg(feature = "command")]
    if config.modules.command.enabled {
        modules.push(Box::new(crate::modules::command::CommandModule::new(
            config.modules.command.clone(),
            Some(remote.clone()),
        )));
    }
    #[cfg(feature = "fim")]
    if config.modules.fim.enabled {
        modules.push(Box::new(crate::modules::fim::Fim::new(
            config.modules.fim.clone(),
        )));
    }
    #[cfg(feature = "rootcheck")]
    if config.modules.rootcheck.enabled {
        modules.push(Box::new(crate::modules::rootcheck::Rootcheck::new(
            config.modules.rootcheck.clone(),
        )));
    }
    let _ = (config, remote);
    modules
}
