//! How the app reaches its server: the one rule for which server URLs it may use
//! ([`check_server_url`]: `https://` anywhere, plain `http://` only to this machine
//! unless the profile says `allow_insecure_http = true`), and, with the `client`
//! feature, the one HTTP client builder ([`client_builder`]) every request to the
//! server goes through (the sync client, the connection check, enrolment): the URL
//! rule, no redirects, and the clinic's own CA certificate when the profile names one.

use std::net::IpAddr;
use std::path::PathBuf;

pub use url::Url;

/// What the profile says about reaching the server, beside its URL and credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// `server.allow_insecure_http`: plain `http://` to another machine is allowed
    /// (everything, the token included, then crosses the network unencrypted).
    pub allow_insecure_http: bool,
    /// `server.ca_file`: a PEM file of CA certificates trusted in addition to the
    /// built-in roots, for a clinic that runs its own CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the server address is not a valid http:// or https:// URL: '{0}'")]
    BadUrl(String),
    /// Plain HTTP to another machine without `allow_insecure_http`.
    #[error(
        "the server address {0} uses plain http:// to another machine, so the device credential and patient data would cross the network unencrypted: use https://, or set server.allow_insecure_http = true in the profile (not recommended)"
    )]
    InsecureHttp(String),
    #[error("the CA certificate file {path} cannot be used: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

/// Whether `url`'s host is this machine: `localhost`, `127.0.0.0/8` or `::1`
/// (also as an IPv4-mapped address).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(v4)) => v4.is_loopback(),
        Some(url::Host::Ipv6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// The rule for a server URL: an `http://` or `https://` URL with a host;
/// `http://` only to this machine ([`is_loopback`]) unless `allow_insecure_http`.
pub fn check_server_url(raw: &str, allow_insecure_http: bool) -> Result<Url, TransportError> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|_| TransportError::BadUrl(raw.to_owned()))?;
    if url.host().is_none() {
        return Err(TransportError::BadUrl(raw.to_owned()));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(TransportError::InsecureHttp(origin(&url))),
        _ => Err(TransportError::BadUrl(raw.to_owned())),
    }
}

/// `scheme://host:port`, without credentials, path or query, for messages.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether an address is this machine's, as [`is_loopback`] judges a URL's host.
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The HTTP client builder for `server_url` under `transport`: refuses the URL by
/// [`check_server_url`], follows no redirect (a token or enrolment code is never
/// carried to wherever one points, and a portal's redirect never turns a POST into
/// someone else's GET), and trusts `transport.ca_file`'s certificates beside the
/// built-in roots. Callers add their timeouts and user agent.
#[cfg(feature = "client")]
pub fn client_builder(
    server_url: &str,
    transport: &Transport,
) -> Result<reqwest::ClientBuilder, TransportError> {
    check_server_url(server_url, transport.allow_insecure_http)?;
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &transport.ca_file {
        let ca_error = |reason: String| TransportError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ca_error(format!("not PEM certificates ({e})")))?;
        if certs.is_empty() {
            return Err(ca_error("it holds no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::private_address("http://10.0.0.5", false, false)]
    #[case::private_address_with_port("http://10.0.0.5:8080/", false, false)]
    #[case::a_name("http://clinic.example", false, false)]
    #[case::localhost_lookalike("http://localhost.example", false, false)]
    #[case::loopback_v4("http://127.0.0.1", false, true)]
    #[case::loopback_v4_other("http://127.8.9.1:8080", false, true)]
    #[case::localhost("http://localhost", false, true)]
    #[case::localhost_upper("http://LOCALHOST:8080", false, true)]
    #[case::loopback_v6("http://[::1]", false, true)]
    #[case::loopback_v6_mapped("http://[::ffff:127.0.0.1]:80", false, true)]
    #[case::https_anything("https://anything", false, true)]
    #[case::https_address("https://10.0.0.5:8443", false, true)]
    #[case::insecure_allowed("http://x", true, true)]
    #[case::insecure_allowed_address("http://10.0.0.5", true, true)]
    fn plain_http_is_only_for_this_machine_unless_allowed(
        #[case] url: &str,
        #[case] allow_insecure_http: bool,
        #[case] allowed: bool,
    ) {
        let checked = check_server_url(url, allow_insecure_http);
        assert_eq!(checked.is_ok(), allowed, "{url}: {checked:?}");
        if !allowed {
            let message = checked.unwrap_err().to_string();
            assert!(
                message.contains("plain http://") && message.contains("allow_insecure_http"),
                "{message}"
            );
        }
    }

    #[rstest]
    #[case::ftp("ftp://x")]
    #[case::no_scheme("clinic.example")]
    #[case::no_host("http://")]
    #[case::file("file:///etc/passwd")]
    fn what_is_no_server_url_is_a_bad_url(#[case] url: &str) {
        assert!(matches!(
            check_server_url(url, true),
            Err(TransportError::BadUrl(_))
        ));
    }

    #[test]
    fn the_refusal_names_no_credential_from_the_url() {
        let message = check_server_url("http://user:secret@10.0.0.5:8080/x?token=t", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("http://10.0.0.5:8080"), "{message}");
        assert!(!message.contains("secret") && !message.contains("token="));
    }

    #[cfg(feature = "client")]
    #[test]
    fn a_ca_file_that_holds_no_certificate_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let transport = Transport {
            ca_file: Some(path.clone()),
            ..Default::default()
        };
        let err = client_builder("https://clinic.example", &transport).unwrap_err();
        assert!(matches!(err, TransportError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("ca.pem"));
        let missing = Transport {
            ca_file: Some(dir.join("missing.pem")),
            ..Default::default()
        };
        assert!(matches!(
            client_builder("https://clinic.example", &missing),
            Err(TransportError::CaFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
