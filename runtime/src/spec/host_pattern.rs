//! A host an agent file grants HTTP access to (`permissions.http`): its parsing and checks.
//! Matching a request against it is the sandbox's business (`sandbox::permissions`).

/// One allowed HTTP destination: `host`, `*.suffix`, optionally with a scheme and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com`, `https://api.example.com`, `http://localhost:8080`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) if scheme == "http" || scheme == "https" => {
                (Some(scheme.to_string()), rest)
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "`{text}`: only http and https can be granted, not {scheme}"
                ));
            }
            None => (None, text),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(format!("`{text}`: grant a host, not a path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse()
                    .map_err(|_| format!("`{text}`: `{port}` is not a port"))?;
                (host, Some(port))
            }
            None => (rest, None),
        };
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.is_empty() || bare.contains('*') {
            return Err(format!(
                "`{text}`: a host is a name such as api.example.com, optionally `*.` in front"
            ));
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `http` or `https` when the grant names one.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The host, lowercase; `*.example.com` for a wildcard.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_wildcards_schemes_and_ports() {
        let local = HostPattern::parse("http://LocalHost:8080/").expect("pattern");
        assert_eq!(
            (local.scheme(), local.host(), local.port()),
            (Some("http"), "localhost", Some(8080))
        );
        assert_eq!(
            HostPattern::parse("*.example.com").map(|p| p.host().to_string()),
            Ok("*.example.com".to_string())
        );
        assert!(HostPattern::parse("ftp://x").is_err());
        assert!(HostPattern::parse("x.com/path").is_err());
        assert!(HostPattern::parse("x.com:port").is_err());
        assert!(HostPattern::parse("*.*.com").is_err());
    }
}
