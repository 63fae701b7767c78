//! "Test connection": can this device reach its server, is it a `clinic-central`,
//! and does it accept the credential? Each failure is sorted into one kind an
//! installer can act on, with a sentence that says what to do.

use std::time::Duration;

use clinic_protocol::transport::{self, Transport, TransportError};
use clinic_protocol::{EnrolRequest, EnrolResponse, ErrorBody, error_code, paths};
use serde::Serialize;

/// What went wrong, from the network up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The URL is not a usable http(s) URL.
    BadUrl,
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on that port (connection refused).
    Refused,
    /// No answer in time: a firewall dropping packets, or a machine that is off.
    Timeout,
    /// The TLS handshake failed: certificate, or `https://` to a plain-HTTP port.
    Tls,
    /// Something answered, but not as `clinic-central` would.
    NotClinicCentral,
    /// The server refused the device credential.
    CredentialRejected,
    /// The server answered with an error of its own (5xx).
    ServerError,
    /// The connection broke for another reason.
    Network,
    /// The server refused the enrolment code: unknown, used, expired or another clinic's.
    EnrolmentRefused,
    /// Plain `http://` to another machine, and the profile does not say
    /// `allow_insecure_http = true`: nothing was sent.
    InsecureHttp,
}

impl Failure {
    /// Plain words for the installer (English; the UI translates the kind).
    pub fn advice(self) -> &'static str {
        match self {
            Failure::BadUrl => "the server address is not a valid http:// or https:// URL",
            Failure::Dns => {
                "the server's name could not be found (DNS): check the address for typos and the machine's DNS settings"
            }
            Failure::Refused => {
                "the server machine refused the connection: nothing is listening on that port, or the service is stopped"
            }
            Failure::Timeout => {
                "the server did not answer in time: the machine may be off, or a firewall is dropping the traffic"
            }
            Failure::Tls => {
                "the secure (TLS) connection failed: the certificate is not trusted or has the wrong name, or the port does not speak https"
            }
            Failure::NotClinicCentral => {
                "something answered at that address, but it is not a Clinic Desk central server: check the URL and port"
            }
            Failure::CredentialRejected => {
                "the server refused this device's credential: ask for a new token or enrolment code"
            }
            Failure::ServerError => {
                "the server is running but reported an error: ask its administrator to check its logs"
            }
            Failure::Network => "the connection broke off: check the network",
            Failure::EnrolmentRefused => {
                "the server refused the enrolment code: ask the clinic's administrator for a new one"
            }
            Failure::InsecureHttp => {
                "the server address uses plain http:// to another machine, which would send the credential and patient data unencrypted: use https://"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckError {
    pub failure: Failure,
    /// The technical detail (no URL query, no token), for support.
    pub detail: String,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.failure.advice(), self.detail)
    }
}

impl std::error::Error for CheckError {}

impl From<TransportError> for CheckError {
    fn from(e: TransportError) -> Self {
        let failure = match e {
            TransportError::BadUrl(_) => Failure::BadUrl,
            TransportError::InsecureHttp(_) => Failure::InsecureHttp,
            TransportError::CaFile { .. } => Failure::Tls,
            TransportError::Client(_) => Failure::Network,
        };
        fail(failure, e.to_string())
    }
}

fn fail(failure: Failure, detail: impl Into<String>) -> CheckError {
    CheckError {
        failure,
        detail: detail.into(),
    }
}

/// Route that needs the device credential and changes nothing: one item of the patients feed.
fn authenticated_probe(base: &str) -> String {
    format!("{base}{}?after=0&limit=1", paths::FEED_PATIENTS)
}

/// Checks `base_url` with `token` in two steps: `GET /healthz` (reachable, and a
/// `clinic-central` answering `ok`), then an authenticated read.
pub async fn check_connection(
    base_url: &str,
    token: &str,
    transport: &Transport,
    timeout: Duration,
) -> Result<(), CheckError> {
    let base = base_url.trim_end_matches('/');
    let http = client(base, transport, timeout)?;

    let health = http
        .get(format!("{base}{}", paths::HEALTH))
        .send()
        .await
        .map_err(classify)?;
    let status = health.status();
    if status.is_server_error() {
        let body = health.text().await.unwrap_or_default();
        // clinic-central answers 503 "database unavailable" when its store fails.
        return Err(fail(
            Failure::ServerError,
            format!(
                "/healthz answered HTTP {}: {}",
                status.as_u16(),
                first_line(&body)
            ),
        ));
    }
    let body = health.text().await.map_err(classify)?;
    if !status.is_success() || body.trim() != "ok" {
        return Err(fail(
            Failure::NotClinicCentral,
            format!(
                "/healthz answered HTTP {} with {:?}",
                status.as_u16(),
                first_line(&body)
            ),
        ));
    }

    let resp = http
        .get(authenticated_probe(base))
        .bearer_auth(token)
        .send()
        .await
        .map_err(classify)?;
    let status = resp.status();
    match status.as_u16() {
        200..=299 => Ok(()),
        401 | 403 => Err(fail(
            Failure::CredentialRejected,
            format!("HTTP {}", status.as_u16()),
        )),
        500..=599 => Err(fail(
            Failure::ServerError,
            format!("the feed answered HTTP {}", status.as_u16()),
        )),
        // A server in the hospital's original (compat) mode has no feeds: it cannot sync a device.
        code => Err(fail(
            Failure::NotClinicCentral,
            format!("the sync feed answered HTTP {code}"),
        )),
    }
}

/// Trades a one-time enrolment code at `base_url` for this device's own token
/// (`POST /v1/enrol`). No credential is sent: the code is the request. `Ok` is
/// the new token; the server's reason comes back in the error's detail.
pub async fn enrol(
    base_url: &str,
    transport: &Transport,
    request: &EnrolRequest,
    timeout: Duration,
) -> Result<EnrolResponse, CheckError> {
    let base = base_url.trim_end_matches('/');
    let http = client(base, transport, timeout)?;
    let resp = http
        .post(format!("{base}{}", paths::ENROL))
        .json(request)
        .send()
        .await
        .map_err(classify)?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(classify)?;
    if status.is_success() {
        return serde_json::from_slice::<EnrolResponse>(&bytes)
            .ok()
            .filter(|r| r.clinic_id == request.clinic_id && r.scope == "device")
            .ok_or_else(|| {
                fail(
                    Failure::NotClinicCentral,
                    "the enrolment answer is not a device token of this clinic",
                )
            });
    }
    let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
    let reason = body.as_ref().map_or_else(
        || first_line(&String::from_utf8_lossy(&bytes)),
        |b| b.error.clone(),
    );
    let refused = body
        .as_ref()
        .is_some_and(|b| b.code.as_deref() == Some(error_code::ENROLMENT_CODE_REFUSED));
    Err(match status.as_u16() {
        403 if refused => fail(Failure::EnrolmentRefused, reason),
        429 => fail(
            Failure::EnrolmentRefused,
            format!("too many refused attempts from this address; try again later ({reason})"),
        ),
        500..=599 => fail(
            Failure::ServerError,
            format!("enrolment answered HTTP {}: {reason}", status.as_u16()),
        ),
        code => fail(
            Failure::NotClinicCentral,
            format!("enrolment answered HTTP {code}: {reason}"),
        ),
    })
}

/// Gives `token` back to the server that issued it (`DELETE /v1/tokens/self`), so a
/// token this device will not keep is not left live with nobody holding it. Sent
/// only to `base_url`, the server that issued it a moment ago.
pub async fn revoke_own_token(
    base_url: &str,
    transport: &Transport,
    token: &str,
    timeout: Duration,
) -> Result<(), CheckError> {
    let base = base_url.trim_end_matches('/');
    let http = client(base, transport, timeout)?;
    let resp = http
        .delete(format!("{base}{}", paths::OWN_TOKEN))
        .bearer_auth(token)
        .send()
        .await
        .map_err(classify)?;
    match resp.status().as_u16() {
        204 => Ok(()),
        code => Err(fail(
            Failure::ServerError,
            format!("giving the token back answered HTTP {code}"),
        )),
    }
}

/// The app's one client builder ([`transport::client_builder`]: the URL rule, no
/// redirects, the clinic's CA file), with the check's timeout.
fn client(
    base: &str,
    transport: &Transport,
    timeout: Duration,
) -> Result<reqwest::Client, CheckError> {
    transport::client_builder(base, transport)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("clinic-desk-check/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(Failure::Network, e.to_string()))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(80).collect()
}

/// Sorts a transport error by looking through its causes: reqwest only says
/// "connect error", the kind (refused, DNS, TLS) is further down the chain.
fn classify(e: reqwest::Error) -> CheckError {
    let e = e.without_url();
    let mut chain = String::new();
    let mut refused = false;
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push_str(&err.to_string());
        chain.push_str(": ");
        source = err.source();
    }
    let lower = chain.to_lowercase();
    let detail = chain.trim_end_matches(": ").to_owned();
    let failure = if e.is_timeout() {
        Failure::Timeout
    } else if refused || lower.contains("connection refused") {
        Failure::Refused
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        Failure::Dns
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
    {
        Failure::Tls
    } else {
        Failure::Network
    };
    fail(failure, detail)
}
