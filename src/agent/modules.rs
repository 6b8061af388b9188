//! Builds the modules the configuration enables (and the build includes).

use crate::config::Config;
use crate::modules::command::RemoteReceiver;
use crate::modules::response::RequestReceiver;
use crate::pipeline::tap::TapReceiver;
use crate::runtime::Module;

/// The enabled modules, in start order. `remote` carries the commands the manager pushes to the
/// command module, `responses` the active responses it orders (each dropped, so that they are
/// refused, when its module does not run); `tap` the events for the response module's rules.
pub fn build(
    config: &Config,
    remote: RemoteReceiver,
    responses: RequestReceiver,
    tap: Option<TapReceiver>,
) -> Vec<Box<dyn Module>> {
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
    #[cfg(feature = "response")]
    if config.modules.response.enabled {
        modules.push(Box::new(crate::modules::response::ResponseModule::new(
            config.modules.response.clone(),
            config.manager.addresses.clone(),
            config.manager.port,
            Some(responses.clone()),
            tap.clone(),
        )));
    }
    #[cfg(feature = "containers")]
    if config.modules.containers.enabled {
        modules.push(Box::new(crate::modules::containers::Containers::new(
            config.modules.containers.clone(),
        )));
    }
    #[cfg(feature = "cloud")]
    if config.modules.cloud.enabled {
        modules.push(Box::new(crate::modules::cloud::Cloud::new(
            config.modules.cloud.clone(),
        )));
    }
    let _ = (config, remote, responses, tap);
    modules
}
