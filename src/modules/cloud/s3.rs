//! AWS S3 buckets: path-style requests signed with SigV4, ListObjectsV2 and GetObject, and the
//! `AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/` layout of CloudTrail, GuardDuty and VPC
//! flow logs (accounts and regions found by listing with a delimiter unless configured).

use super::config::{S3Kind, S3Source};
use super::http::{HttpClient, HttpError, Request, Url};
use super::sigv4::{self, Credentials, Signing, EMPTY_SHA256};
use super::store::{self, Fetch, Object, Origin, Page, Scope, Store};
use super::{source_key, timefmt, xml};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::cloud::CloudProvider;

/// Largest listing page read.
const MAX_LISTING: usize = 4 * 1024 * 1024;

/// One bucket, with the client that reaches it.
pub struct Bucket<'a> {
    source: &'a S3Source,
    url: Url,
    http: &'a mut HttpClient,
}

impl<'a> Bucket<'a> {
    /// The bucket of `source`.
    pub fn new(source: &'a S3Source, http: &'a mut HttpClient) -> Result<Self, String> {
        let endpoint = source
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", source.region));
        let url =
            Url::parse(&endpoint).map_err(|e| format!("s3 `{}`: endpoint {e}", source.name))?;
        Ok(Bucket { source, url, http })
    }

    async fn request(
        &mut self,
        key: Option<&str>,
        query: &[(&str, &str)],
        limit: usize,
    ) -> Result<super::http::Response, HttpError> {
        let mut path = format!("{}/{}", self.url.path, self.source.bucket);
        if let Some(key) = key {
            path.push('/');
            path.push_str(key);
        }
        let host = self.url.host_header();
        let signing = Signing {
            method: "GET",
            host: &host,
            path: &path,
            query,
            region: &self.source.region,
            service: "s3",
            payload_sha256: EMPTY_SHA256,
            now: timefmt::now_secs(),
        };
        let creds = Credentials {
            access_key_id: &self.source.access_key_id,
            secret_access_key: &self.source.secret_access_key.0,
            session_token: self.source.session_token.as_ref().map(|t| t.0.as_str()),
        };
        let (target, headers) = sigv4::sign(&signing, creds, &[]);
        let request = Request {
            method: "GET",
            target,
            headers,
            body: &[],
        };
        self.http.send(&self.url, &request, limit).await
    }
}

impl Store for Bucket<'_> {
    async fn list(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        delimiter: bool,
        page: Option<&str>,
    ) -> Result<Page, String> {
        let mut query = vec![("list-type", "2"), ("prefix", prefix)];
        if let Some(after) = after {
            query.push(("start-after", after));
        }
        if let Some(page) = page {
            query.push(("continuation-token", page));
        }
        if delimiter {
            query.push(("delimiter", "/"));
        }
        let response = self
            .request(None, &query, MAX_LISTING)
            .await
            .map_err(|e| e.to_string())?;
        if response.head.status != 200 {
            return Err(format!(
                "bucket {}: HTTP {}: {}",
                self.source.bucket,
                response.head.status,
                response.snippet(300)
            ));
        }
        let body = String::from_utf8_lossy(&response.body);
        parse_listing(&body)
    }

    async fn get(&mut self, name: &str, limit: usize) -> Result<Vec<u8>, Fetch> {
        let response = self.request(Some(name), &[], limit).await?;
        match response.head.status {
            200 => Ok(response.body),
            404 => Err(Fetch::Skip("the object is gone".into())),
            status => Err(Fetch::Fail(format!(
                "HTTP {status}: {}",
                response.snippet(300)
            ))),
        }
    }
}

/// Reads a `ListBucketResult`.
pub fn parse_listing(body: &str) -> Result<Page, String> {
    if !body.contains("<ListBucketResult") {
        return Err(format!(
            "not a ListBucketResult: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    let objects = xml::elements(body, "Contents")
        .into_iter()
        .filter_map(|c| {
            Some(Object {
                name: xml::text(c, "Key")?,
                modified: xml::text(c, "LastModified")
                    .and_then(|t| timefmt::parse_iso8601(&t))
                    .unwrap_or(0),
                size: xml::text(c, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect();
    let prefixes = xml::elements(body, "CommonPrefixes")
        .into_iter()
        .filter_map(|c| xml::text(c, "Prefix"))
        .collect();
    let truncated = xml::text(body, "IsTruncated").is_some_and(|t| t == "true");
    let next = xml::text(body, "NextContinuationToken").filter(|_| truncated);
    Ok(Page {
        objects,
        prefixes,
        next,
    })
}

/// Reads every new object of one S3 source; returns the records sent.
pub async fn poll(
    source: &S3Source,
    http: &mut HttpClient,
    ctx: &ModuleContext,
    max_bytes: usize,
    first_day: u64,
) -> Result<u64, ModuleError> {
    let mut bucket = Bucket::new(source, http).map_err(ModuleError)?;
    let (service, folder) = source.kind.service();
    let base = if source.prefix.is_empty() || source.prefix.ends_with('/') {
        source.prefix.clone()
    } else {
        format!("{}/", source.prefix)
    };
    let origin = |account: &str, region: &str| Origin {
        provider: CloudProvider::Aws,
        service: service.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        container: source.bucket.clone(),
    };
    if source.kind == S3Kind::Custom {
        let key = source_key("s3", &[&source.name]);
        let scope = Scope {
            key: &key,
            prefix: &source.prefix,
            floor: None,
            min_modified: first_day,
            max_bytes,
            header_prefix: None,
            growing: false,
        };
        return store::read_new_objects(&mut bucket, ctx, &scope, &origin("", "")).await;
    }
    let logs = format!("{base}AWSLogs/");
    let accounts = match source.accounts.is_empty() {
        false => source.accounts.clone(),
        true => children(&mut bucket, &logs).await?,
    };
    let (y, m, d, ..) = timefmt::civil(first_day);
    let mut sent = 0;
    for account in &accounts {
        let service_prefix = format!("{logs}{account}/{folder}/");
        let regions = match source.regions.is_empty() {
            false => source.regions.clone(),
            true => children(&mut bucket, &service_prefix).await?,
        };
        for region in &regions {
            let prefix = format!("{service_prefix}{region}/");
            let key = source_key("s3", &[&source.name, account, region]);
            let scope = Scope {
                key: &key,
                prefix: &prefix,
                // Keys of the first day and later sort after `…/YYYY/MM/DD`.
                floor: Some(format!("{prefix}{y:04}/{m:02}/{d:02}")),
                min_modified: 0,
                max_bytes,
                header_prefix: (source.kind == S3Kind::Vpcflow).then_some("version "),
                growing: false,
            };
            sent +=
                store::read_new_objects(&mut bucket, ctx, &scope, &origin(account, region)).await?;
            if ctx.stopping() {
                return Ok(sent);
            }
        }
    }
    Ok(sent)
}

/// The next path segments under `prefix` (account ids, regions).
async fn children(bucket: &mut Bucket<'_>, prefix: &str) -> Result<Vec<String>, ModuleError> {
    let mut names = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let listing = bucket
            .list(prefix, None, true, page.as_deref())
            .await
            .map_err(|e| ModuleError(format!("listing {prefix}: {e}")))?;
        names.extend(listing.prefixes.iter().filter_map(|p| {
            let name = p.strip_prefix(prefix)?.trim_end_matches('/');
            (!name.is_empty()).then(|| name.to_string())
        }));
        match listing.next {
            Some(next) => page = Some(next),
            None => return Ok(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_pages_and_prefixes_are_read() {
        let body = r#"<?xml version="1.0"?><ListBucketResult xmlns="x"><Name>b</Name>
            <Contents><Key>AWSLogs/1/a.json.gz</Key><LastModified>2026-11-28T06:40:29.000Z</LastModified><Size>10</Size></Contents>
            <CommonPrefixes><Prefix>AWSLogs/2/</Prefix></CommonPrefixes>
            <IsTruncated>true</IsTruncated><NextContinuationToken>t+1</NextContinuationToken></ListBucketResult>"#;
        let page = parse_listing(body).unwrap();
        assert_eq!(page.objects[0].name, "AWSLogs/1/a.json.gz");
        assert_eq!(page.objects[0].modified, 1_795_848_029);
        assert_eq!(page.prefixes, ["AWSLogs/2/"]);
        assert_eq!(page.next.as_deref(), Some("t+1"));
    }
}
