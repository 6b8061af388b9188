//! Azure Storage blob containers (activity and sign-in logs exported by diagnostic settings):
//! List Blobs and Get Blob, authorized by the account's shared key or by a SAS token.
//!
//! Listing has no "start after": the container's prefix is listed in full each round and names
//! up to the marker are passed over (names come in lexical order). Azure appends to the hour's
//! `PT1H.json` while the hour lasts, so blobs are read as growing: the last one is read again
//! at the next round for records past the marker.

use super::config::AzureBlobSource;
use super::http::{url::encode, HttpClient, HttpError, Request, Response, Url};
use super::store::{self, Fetch, Object, Origin, Page, Scope, Store};
use super::{sigv4::hmac, source_key, timefmt, xml};
use crate::runtime::{ModuleContext, ModuleError};
use base64ct::{Base64, Encoding};
use gatewatch_proto::cloud::CloudProvider;

/// Storage service version the requests speak.
pub const API_VERSION: &str = "2021-08-06";
/// Largest listing page read.
const MAX_LISTING: usize = 4 * 1024 * 1024;

/// The `Authorization` header value of a Shared Key request. `path` is the request path as
/// sent (encoded), `query` its parameters (decoded), `headers` every header sent besides
/// `Host` (names in any case); `content_length` is 0 for an empty body.
pub fn shared_key(
    account: &str,
    key_base64: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    content_length: usize,
) -> Result<String, String> {
    let key = Base64::decode_vec(key_base64.trim())
        .map_err(|_| format!("the shared key of account `{account}` is not base64"))?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .unwrap_or("")
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut to_sign = format!(
        "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
        header("content-encoding"),
        header("content-language"),
        header("content-md5"),
        header("content-type"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    let mut ms: Vec<(String, &str)> = headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort();
    for (name, value) in ms {
        to_sign.push_str(&format!("{name}:{value}\n"));
    }
    to_sign.push_str(&format!("/{account}{path}"));
    let mut params: Vec<(String, &str)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    params.sort();
    for (name, value) in params {
        to_sign.push_str(&format!("\n{name}:{value}"));
    }
    let signature = Base64::encode_string(&hmac(&key, to_sign.as_bytes()));
    Ok(format!("SharedKey {account}:{signature}"))
}

/// One container, with the client that reaches it.
pub struct Container<'a> {
    source: &'a AzureBlobSource,
    url: Url,
    http: &'a mut HttpClient,
}

impl<'a> Container<'a> {
    /// The container of `source`.
    pub fn new(source: &'a AzureBlobSource, http: &'a mut HttpClient) -> Result<Self, String> {
        if source.shared_key.is_none() && source.sas_token.is_none() {
            return Err(format!(
                "azure_blob `{}`: set shared_key or sas_token",
                source.name
            ));
        }
        let endpoint = source
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", source.account));
        let url = Url::parse(&endpoint)
            .map_err(|e| format!("azure_blob `{}`: endpoint {e}", source.name))?;
        Ok(Container { source, url, http })
    }

    async fn get_path(
        &mut self,
        blob: Option<&str>,
        query: &[(&str, &str)],
        limit: usize,
    ) -> Result<Response, HttpError> {
        let mut path = format!(
            "{}/{}",
            self.url.path,
            encode(&self.source.container, false)
        );
        if let Some(blob) = blob {
            path.push('/');
            path.push_str(&encode(blob, true));
        }
        let mut target_query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k, false), encode(v, false)))
            .collect();
        let date = timefmt::http_date(timefmt::now_secs());
        let mut headers = vec![
            ("x-ms-date".to_string(), date.clone()),
            ("x-ms-version".to_string(), API_VERSION.to_string()),
        ];
        if let Some(key) = &self.source.shared_key {
            let signed = [("x-ms-date", date.as_str()), ("x-ms-version", API_VERSION)];
            let auth = shared_key(
                &self.source.account,
                &key.0,
                "GET",
                &path,
                query,
                &signed,
                0,
            )
            .map_err(HttpError::Request)?;
            headers.push(("Authorization".to_string(), auth));
        } else if let Some(sas) = &self.source.sas_token {
            target_query.push(sas.0.trim_start_matches('?').to_string());
        }
        let target = if target_query.is_empty() {
            path
        } else {
            format!("{path}?{}", target_query.join("&"))
        };
        let request = Request {
            method: "GET",
            target,
            headers,
            body: &[],
        };
        self.http.send(&self.url, &request, limit).await
    }
}

impl Store for Container<'_> {
    async fn list(
        &mut self,
        prefix: &str,
        _after: Option<&str>,
        _delimiter: bool,
        page: Option<&str>,
    ) -> Result<Page, String> {
        let mut query = vec![("restype", "container"), ("comp", "list")];
        if !prefix.is_empty() {
            query.push(("prefix", prefix));
        }
        if let Some(page) = page {
            query.push(("marker", page));
        }
        let response = self
            .get_path(None, &query, MAX_LISTING)
            .await
            .map_err(|e| e.to_string())?;
        if response.head.status != 200 {
            return Err(format!(
                "container {}: HTTP {}: {}",
                self.source.container,
                response.head.status,
                response.snippet(300)
            ));
        }
        Ok(parse_listing(&String::from_utf8_lossy(&response.body)))
    }

    async fn get(&mut self, name: &str, limit: usize) -> Result<Vec<u8>, Fetch> {
        let response = self.get_path(Some(name), &[], limit).await?;
        match response.head.status {
            200 => Ok(response.body),
            404 => Err(Fetch::Skip("the blob is gone".into())),
            status => Err(Fetch::Fail(format!(
                "HTTP {status}: {}",
                response.snippet(300)
            ))),
        }
    }
}

/// Reads an `EnumerationResults` of blobs.
pub fn parse_listing(body: &str) -> Page {
    let objects = xml::elements(body, "Blob")
        .into_iter()
        .filter_map(|b| {
            Some(Object {
                name: xml::text(b, "Name")?,
                modified: xml::text(b, "Last-Modified")
                    .and_then(|t| timefmt::parse_http_date(&t))
                    .unwrap_or(0),
                size: xml::text(b, "Content-Length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect();
    let next = xml::text(body, "NextMarker").filter(|m| !m.is_empty());
    Page {
        objects,
        prefixes: Vec::new(),
        next,
    }
}

/// Reads every new record of one container; returns the records sent.
pub async fn poll(
    source: &AzureBlobSource,
    http: &mut HttpClient,
    ctx: &ModuleContext,
    max_bytes: usize,
) -> Result<u64, ModuleError> {
    let mut container = Container::new(source, http).map_err(ModuleError)?;
    let key = source_key("blob", &[&source.name]);
    let min_modified = source
        .only_logs_after
        .as_deref()
        .and_then(timefmt::parse_day)
        .unwrap_or(0);
    let scope = Scope {
        key: &key,
        prefix: &source.prefix,
        floor: None,
        min_modified,
        max_bytes,
        header_prefix: None,
        growing: true,
    };
    let origin = Origin {
        provider: CloudProvider::Azure,
        service: source.service.clone(),
        account: source.account.clone(),
        region: String::new(),
        container: source.container.clone(),
    };
    store::read_new_objects(&mut container, ctx, &scope, &origin).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_listing_is_read_with_http_dates() {
        let body = "<EnumerationResults><Blobs><Blob><Name>y=2026/PT1H.json</Name><Properties>\
            <Last-Modified>Sat, 28 Nov 2026 06:40:29 GMT</Last-Modified><Content-Length>12</Content-Length>\
            </Properties></Blob></Blobs><NextMarker /></EnumerationResults>";
        let page = parse_listing(body);
        assert_eq!(page.objects[0].name, "y=2026/PT1H.json");
        assert_eq!(page.objects[0].modified, 1_795_848_029);
        assert_eq!(page.next, None);
    }
}
