//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as S3 and CloudWatch Logs require.
//!
//! The canonical request covers the method, the path, the sorted query, the signed headers and
//! the payload hash; its hash is signed with a key derived from the secret, the day, the region
//! and the service. Written from AWS's published algorithm and checked against its example.

use super::http::url::encode;
use super::timefmt::civil;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Access key, secret and optional session token.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token (temporary credentials).
    pub session_token: Option<&'a str>,
}

/// What is signed.
pub struct Signing<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// `Host` header value.
    pub host: &'a str,
    /// Path, not yet encoded (each segment is encoded once, as S3 wants).
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, e.g. `s3` or `logs`.
    pub service: &'a str,
    /// Hex SHA-256 of the body.
    pub payload_sha256: &'a str,
    /// Unix seconds of the request.
    pub now: u64,
}

/// Signs a request: returns the request target (`/path?query`, encoded) and the headers to send
/// (`x-amz-date`, `x-amz-content-sha256`, the session token, `Authorization`, and `extra`).
pub fn sign(
    req: &Signing<'_>,
    creds: Credentials<'_>,
    extra: &[(&str, &str)],
) -> (String, Vec<(String, String)>) {
    let (y, mo, d, h, mi, s) = civil(req.now);
    let day = format!("{y:04}{mo:02}{d:02}");
    let stamp = format!("{day}T{h:02}{mi:02}{s:02}Z");
    let uri = encode(req.path, true);
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), req.host.to_string()),
        (
            "x-amz-content-sha256".into(),
            req.payload_sha256.to_string(),
        ),
        ("x-amz-date".into(), stamp.clone()),
    ];
    if let Some(token) = creds.session_token {
        headers.push(("x-amz-security-token".into(), token.to_string()));
    }
    for (name, value) in extra {
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    headers.sort();
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = format!("{}\n{uri}\n{query}\n", req.method);
    for (name, value) in &headers {
        canonical.push_str(&format!("{name}:{value}\n"));
    }
    canonical.push_str(&format!("\n{signed}\n{}", req.payload_sha256));
    let scope = format!("{day}/{}/{}/aws4_request", req.region, req.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        day.as_bytes(),
    );
    for part in [req.region, req.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed},Signature={signature}",
        creds.access_key_id
    );
    headers.retain(|(n, _)| n != "host");
    headers.push(("authorization".into(), authorization));
    let target = if query.is_empty() {
        uri
    } else {
        format!("{uri}?{query}")
    };
    (target, headers)
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's "GET Object" example in "Authenticating Requests (AWS Signature Version 4)".
    #[test]
    fn get_object_example_from_the_aws_documentation_signs_identically() {
        let req = Signing {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            region: "us-east-1",
            service: "s3",
            payload_sha256: EMPTY_SHA256,
            now: 1_369_353_600, // 2013-05-24T00:00:00Z
        };
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        let (target, headers) = sign(&req, creds, &[("Range", "bytes=0-9")]);
        assert_eq!(target, "/test.txt");
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn query_parameters_are_encoded_and_sorted() {
        let req = Signing {
            method: "GET",
            host: "h",
            path: "/b",
            query: &[("prefix", "AWSLogs/1 2/"), ("list-type", "2")],
            region: "r",
            service: "s3",
            payload_sha256: EMPTY_SHA256,
            now: 0,
        };
        let creds = Credentials {
            access_key_id: "a",
            secret_access_key: "s",
            session_token: Some("t"),
        };
        let (target, headers) = sign(&req, creds, &[]);
        assert_eq!(target, "/b?list-type=2&prefix=AWSLogs%2F1%202%2F");
        assert!(headers
            .iter()
            .any(|(n, v)| n == "x-amz-security-token" && v == "t"));
    }
}
