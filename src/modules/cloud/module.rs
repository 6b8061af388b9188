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

/// What is wrong with `config`, each naming its key.
pub fn problems(config: &CloudConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = |key: String, url: Option<&str>| {
        if let Some(Err(e)) = url.map(Url::parse) {
            out.push(format!("{key}: {e}"));
        }
    };
    for (i, s) in config.s3.iter().enumerate() {
        url(
            format!("modules.cloud.s3[{i}].endpoint"),
            s.endpoint.as_deref(),
        );
    }
    for (i, s) in config.cloudwatch_logs.iter().enumerate() {
        url(
            format!("modules.cloud.cloudwatch_logs[{i}].endpoint"),
            s.endpoint.as_deref(),
        );
    }
    for (i, s) in config.azure_blob.iter().enumerate() {
        url(
            format!("modules.cloud.azure_blob[{i}].endpoint"),
            s.endpoint.as_deref(),
        );
    }
    for (i, s) in config.pubsub.iter().enumerate() {
        url(
            format!("modules.cloud.pubsub[{i}].endpoint"),
            Some(&s.endpoint),
        );
        url(
            format!("modules.cloud.pubsub[{i}].token_uri"),
            s.token_uri.as_deref(),
        );
    }
    for (i, s) in config.log_analytics.iter().enumerate() {
        url(
            format!("modules.cloud.log_analytics[{i}].endpoint"),
            Some(&s.endpoint),
        );
        url(
            format!("modules.cloud.log_analytics[{i}].app.login_endpoint"),
            Some(&s.app.login_endpoint),
        );
    }
    for (i, s) in config.graph.iter().enumerate() {
        url(
            format!("modules.cloud.graph[{i}].endpoint"),
            Some(&s.endpoint),
        );
        url(
            format!("modules.cloud.graph[{i}].app.login_endpoint"),
            Some(&s.app.login_endpoint),
        );
    }
    for (i, s) in config.s3.iter().enumerate() {
        if s.only_logs_after
            .as_deref()
            .is_some_and(|d| timefmt::parse_day(d).is_none())
        {
            out.push(format!(
                "modules.cloud.s3[{i}].only_logs_after: give a day as YYYY-MM-DD"
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
