//! Microsoft Graph audit logs (`auditLogs/signIns`, `auditLogs/directoryAudits`): entries newer
//! than the last one sent, oldest first, following `@odata.nextLink` pages, with a
//! client-credentials token. Each entry is an event; its time is the stored marker.

use super::config::{GraphKind, GraphSource};
use super::http::{url::encode, HttpClient, Url};
use super::log_analytics::{last_seen, send_timed};
use super::oauth::{self, call_json, Tokens};
use super::source_key;
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider, CloudRecord};

/// Pages followed per round at most.
const MAX_PAGES: usize = 100;

/// Reads the entries of one Graph log not sent yet; returns the entries sent.
pub async fn poll(
    source: &GraphSource,
    http: &mut HttpClient,
    tokens: &mut Tokens,
    ctx: &ModuleContext,
    today: u64,
) -> Result<u64, ModuleError> {
    let fail = |e: String| ModuleError(format!("graph `{}`: {e}", source.name));
    let url = Url::parse(&source.endpoint).map_err(|e| fail(format!("endpoint {e}")))?;
    let key = source_key("graph", &[&source.name]);
    let token = oauth::app_token(http, tokens, &key, &source.app, &source.endpoint)
        .await
        .map_err(fail)?;
    let (resource, field, service) = match source.kind {
        GraphKind::Signins => ("signIns", "createdDateTime", "graph_signins"),
        GraphKind::Audits => ("directoryAudits", "activityDateTime", "graph_audits"),
    };
    let since = last_seen(ctx, &key, source.only_logs_after.as_deref(), today);
    let mut target = format!(
        "{}/v1.0/auditLogs/{resource}?$filter={}&$orderby={}",
        url.path,
        encode(&format!("{field} gt {since}"), false),
        encode(&format!("{field} asc"), false)
    );
    let mut sent = 0;
    for _ in 0..MAX_PAGES {
        let (status, value) = call_json(http, "GET", &url, target, Some(&token), &[], false)
            .await
            .map_err(fail)?;
        if status == 401 || status == 403 {
            tokens.forget(&key);
        }
        if status != 200 {
            return Err(fail(format!("{resource}: HTTP {status}: {value}")));
        }
        for entry in value["value"].as_array().into_iter().flatten() {
            let time = entry[field].as_str().unwrap_or(&since).to_string();
            let event = CloudEvent::Record(Box::new(CloudRecord {
                provider: CloudProvider::Azure,
                service: service.into(),
                account: source.app.tenant.clone(),
                region: String::new(),
                source: resource.into(),
                time: Some(time.clone()),
                record: entry.to_string(),
            }));
            send_timed(ctx, &key, event, &time).await?;
            sent += 1;
        }
        let Some(next) = value["@odata.nextLink"].as_str() else {
            return Ok(sent);
        };
        target = next_target(&url, next).map_err(fail)?;
        if ctx.stopping() {
            break;
        }
    }
    Ok(sent)
}

/// The request target of a next-page link, which must point at the configured endpoint (the
/// bearer token is never sent elsewhere).
fn next_target(endpoint: &Url, link: &str) -> Result<String, String> {
    let next = Url::parse(link).map_err(|e| format!("@odata.nextLink {e}"))?;
    if (next.https, &next.host, next.port) != (endpoint.https, &endpoint.host, endpoint.port) {
        return Err(format!(
            "@odata.nextLink points at {}, not at the configured {}",
            next.origin(),
            endpoint.origin()
        ));
    }
    let after_origin = link
        .splitn(4, '/')
        .nth(3)
        .map(|rest| format!("/{rest}"))
        .unwrap_or_else(|| "/".into());
    Ok(after_origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_to_another_host_are_refused() {
        let endpoint = Url::parse("https://graph.microsoft.com").unwrap();
        assert_eq!(
            next_target(
                &endpoint,
                "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x"
            )
            .unwrap(),
            "/v1.0/auditLogs/signIns?$skiptoken=x"
        );
        assert!(next_target(&endpoint, "https://evil.example/v1.0/x").is_err());
    }
}
