//! Endpoint URLs: `https://host[:port][/base]`, or `http://` for a loopback emulator only.

use std::net::IpAddr;

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// TLS (`https`) or plain (`http`, loopback only).
    pub https: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path without a trailing `/` (empty for the root), e.g. `/devstoreaccount1`.
    pub path: String,
}

impl Url {
    /// Parses `text`; plain `http` is refused unless the host is a loopback address, so that
    /// credentials and logs never cross a network unencrypted.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`{text}`: give an https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = split_port(authority)
            .ok_or_else(|| format!("`{text}`: bad host or port `{authority}`"))?;
        if host.is_empty() {
            return Err(format!("`{text}`: no host"));
        }
        let port = port.unwrap_or(if https { 443 } else { 80 });
        if !https && !is_loopback(&host) {
            return Err(format!(
                "`{text}`: plain http is allowed only for a loopback emulator; use https"
            ));
        }
        Ok(Url {
            https,
            host,
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header value (the port only when it is not the scheme's default).
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `scheme://host[:port]` for messages.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.host_header()
        )
    }

    /// The host as an IP literal, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

fn split_port(authority: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), Some(port.parse().ok()?))),
        None => Some((authority.to_string(), None)),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Percent-encodes `text` as RFC 3986 (and SigV4) want: everything but `A-Z a-z 0-9 - . _ ~`,
/// and `/` too unless `keep_slash`.
pub fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_off_loopback() {
        assert!(Url::parse("http://s3.amazonaws.com").is_err());
        assert!(Url::parse("http://10.0.0.1:9000").is_err());
        let local = Url::parse("http://127.0.0.1:10000/devstoreaccount1/").unwrap();
        assert_eq!(
            (local.https, local.port, local.path.as_str()),
            (false, 10000, "/devstoreaccount1")
        );
        assert!(Url::parse("http://[::1]:80").is_ok());
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let url = Url::parse("https://s3.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(url.port, 443);
        assert_eq!(url.host_header(), "s3.eu-west-1.amazonaws.com");
        assert_eq!(url.path, "");
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("a b/c~d*", true), "a%20b/c~d%2A");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
