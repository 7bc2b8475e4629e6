//! What a node's sandbox grants: preopened folders, environment variables passed through, and
//! the hosts its outbound HTTP requests may reach. Nothing is granted by default.

pub use crate::spec::HostPattern;
use std::path::PathBuf;
use std::sync::Arc;

/// A folder grant, resolved against the agent file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGrant {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub writable: bool,
}

/// Matching a request against a grant parsed by the agent file's checks.
impl HostPattern {
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme().is_some_and(|s| s != scheme) {
            return false;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        if self.port().unwrap_or(default_port) != port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match self.host().strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host[..host.len() - suffix.len()].ends_with('.')
            }
            None => host == self.host(),
        }
    }
}

/// Everything a node's sandbox grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub fs: Vec<FsGrant>,
    /// Variables passed through, with the values read when the agent was loaded.
    pub env: Vec<(String, String)>,
    pub http: Arc<Vec<HostPattern>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("api.example.com").unwrap();
        assert!(exact.allows("https", "api.example.com", 443));
        assert!(exact.allows("http", "API.example.com", 80));
        assert!(!exact.allows("https", "api.example.com", 8443));
        assert!(!exact.allows("https", "evil.com", 443));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.allows("https", "a.b.example.com", 443));
        assert!(!wild.allows("https", "example.com", 443));
        assert!(!wild.allows("https", "badexample.com", 443));
        let local = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.allows("http", "127.0.0.1", 8080));
        assert!(!local.allows("https", "127.0.0.1", 8080));
        assert!(HostPattern::parse("ftp://x").is_err());
        assert!(HostPattern::parse("x.com/path").is_err());
        assert!(HostPattern::parse("x.com:port").is_err());
    }
}
