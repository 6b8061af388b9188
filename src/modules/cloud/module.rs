//! The cloud task: every interval, poll each configured source in turn. A source that fails is
//! logged and retried at the next round; it does not stop the others.

use super::http::{HttpClient, Url};
use super::oauth::Tokens;
use super::{azure, cloudwatch, graph, log_analytics, pubsub, s3, timefmt, CloudConfig};
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use std::time::Duration;

/// The cloud module.
pub struct Cloud {
    config: CloudConfig,
    tokens: Tokens,
}

impl Cloud {
    /// A cloud module with the given settings.
    pub fn new(config: CloudConfig) -> Self {
        Cloud {
            config,
            tokens: Tokens::default(),
        }
    }

    async fn run_inner(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let problems = problems(&self.config);
        if !problems.is_empty() {
            return Err(ModuleError(problems.join("; ")));
        }
        let mut http = HttpClient::new(
            self.config.ca_file.clone(),
            ctx.memory().clone(),
            Duration::from_secs(self.config.timeout_secs.max(1)),
        );
        let today = timefmt::now_secs() / 86_400 * 86_400;
        let interval = Duration::from_secs(self.config.interval_secs.max(1));
        loop {
            self.round(&mut http, ctx, today).await;
            if !ctx.sleep(interval).await {
                return Ok(());
            }
        }
    }

    /// One poll of every source.
    async fn round(&mut self, http: &mut HttpClient, ctx: &ModuleContext, today: u64) {
        let max = self.config.max_object_bytes;
        for source in &self.config.s3 {
            let first_day = first_day(source.only_logs_after.as_deref(), today);
            let result = s3::poll(source, http, ctx, max, first_day).await;
            report("s3", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
        for source in &self.config.cloudwatch_logs {
            let first_day = first_day(source.only_logs_after.as_deref(), today);
            let result = cloudwatch::poll(source, http, ctx, first_day).await;
            report("cloudwatch_logs", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
        for source in &self.config.azure_blob {
            let result = azure::poll(source, http, ctx, max).await;
            report("azure_blob", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
        let tokens = &mut self.tokens;
        for source in &self.config.pubsub {
            let result = pubsub::poll(source, http, tokens, ctx).await;
            report("pubsub", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
        for source in &self.config.log_analytics {
            let result = log_analytics::poll(source, http, tokens, ctx, today).await;
            report("log_analytics", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
        for source in &self.config.graph {
            let result = graph::poll(source, http, tokens, ctx, today).await;
            report("graph", &source.name, result);
            if ctx.stopping() {
                return;
            }
        }
    }
}

/// The first day read without a marker: `only_logs_after`, else the day the module started.
fn first_day(only_logs_after: Option<&str>, today: u64) -> u64 {
    only_logs_after
        .and_then(timefmt::parse_day)
        .unwrap_or(today)
}

fn report(kind: &str, name: &str, result: Result<u64, ModuleError>) {
    match result {
        Ok(0) => {}
        Ok(n) => log::info!("cloud: {kind} `{name}`: {n} records"),
        Err(e) => log::warn!("cloud: {kind} `{name}`: {e}"),
    }
}

/// A source's settings that [`problems`] checks: its key, its endpoints and its first day.
type Checked<'a> = (
    String,
    Vec<(&'static str, Option<&'a str>)>,
    Option<&'a str>,
);

/// What is wrong with `config`, each naming its key.
pub fn problems(config: &CloudConfig) -> Vec<String> {
    let mut sources: Vec<Checked<'_>> = Vec::new();
    for (i, s) in config.s3.iter().enumerate() {
        let urls = vec![("endpoint", s.endpoint.as_deref())];
        sources.push((format!("s3[{i}]"), urls, s.only_logs_after.as_deref()));
    }
    for (i, s) in config.cloudwatch_logs.iter().enumerate() {
        let urls = vec![("endpoint", s.endpoint.as_deref())];
        let key = format!("cloudwatch_logs[{i}]");
        sources.push((key, urls, s.only_logs_after.as_deref()));
    }
    for (i, s) in config.azure_blob.iter().enumerate() {
        let urls = vec![("endpoint", s.endpoint.as_deref())];
        let key = format!("azure_blob[{i}]");
        sources.push((key, urls, s.only_logs_after.as_deref()));
    }
    for (i, s) in config.pubsub.iter().enumerate() {
        let urls = vec![
            ("endpoint", Some(s.endpoint.as_str())),
            ("token_uri", s.token_uri.as_deref()),
        ];
        sources.push((format!("pubsub[{i}]"), urls, None));
    }
    for (i, s) in config.log_analytics.iter().enumerate() {
        let urls = vec![
            ("endpoint", Some(s.endpoint.as_str())),
            ("app.login_endpoint", Some(s.app.login_endpoint.as_str())),
        ];
        let key = format!("log_analytics[{i}]");
        sources.push((key, urls, s.only_logs_after.as_deref()));
    }
    for (i, s) in config.graph.iter().enumerate() {
        let urls = vec![
            ("endpoint", Some(s.endpoint.as_str())),
            ("app.login_endpoint", Some(s.app.login_endpoint.as_str())),
        ];
        sources.push((format!("graph[{i}]"), urls, s.only_logs_after.as_deref()));
    }
    let mut out = Vec::new();
    for (key, urls, day) in sources {
        for (field, url) in urls {
            if let Some(Err(e)) = url.map(Url::parse) {
                out.push(format!("modules.cloud.{key}.{field}: {e}"));
            }
        }
        if day.is_some_and(|d| timefmt::parse_day(d).is_none()) {
            out.push(format!(
                "modules.cloud.{key}.only_logs_after: give a day as YYYY-MM-DD"
            ));
        }
    }
    for (i, s) in config.azure_blob.iter().enumerate() {
        if s.shared_key.is_none() && s.sas_token.is_none() {
            out.push(format!(
                "modules.cloud.azure_blob[{i}]: set shared_key or sas_token"
            ));
        }
    }
    out
}

impl Module for Cloud {
    fn name(&self) -> &'static str {
        "cloud"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(self.run_inner(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in `config.rs`'s documentation.
    fn documented_example() -> String {
        include_str!("config.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip_while(|l| *l != "```toml")
            .skip(1)
            .take_while(|l| *l != "```")
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn documented_example_configuration_is_valid() {
        let text = format!("[manager]\naddresses = [\"m\"]\n\n{}", documented_example());
        let config = crate::config::load_str(&text, "example").unwrap();
        let cloud = &config.modules.cloud;
        assert!(cloud.enabled);
        assert_eq!(
            (
                cloud.s3.len(),
                cloud.cloudwatch_logs.len(),
                cloud.azure_blob.len(),
                cloud.pubsub.len(),
                cloud.log_analytics.len(),
                cloud.graph.len()
            ),
            (1, 1, 1, 1, 1, 1)
        );
        assert_eq!(problems(cloud), Vec::<String>::new());
    }

    #[test]
    fn plain_http_to_a_remote_endpoint_is_a_problem_naming_its_key() {
        let text = "[manager]\naddresses = [\"m\"]\n[[modules.cloud.s3]]\nname = \"t\"\ntype = \"custom\"\n\
            bucket = \"b\"\nendpoint = \"http://s3.example.com\"\nonly_logs_after = \"28-11-2026\"\n\
            access_key_id = \"a\"\nsecret_access_key = \"s\"\n";
        let config = crate::config::load_str(text, "test").unwrap();
        let found = problems(&config.modules.cloud);
        assert!(
            found[0].starts_with("modules.cloud.s3[0].endpoint: "),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("modules.cloud.s3[0].only_logs_after"),
            "{found:?}"
        );
    }

    #[test]
    fn secrets_are_hidden_from_debug_output() {
        let secret = super::super::Secret("wJalrXUtnFEMI".into());
        assert!(!format!("{secret:?}").contains("wJalr"));
    }
}
