//! A throwaway certificate authority for tests (feature `test-pki`): a CA made
//! fresh in each test, and server certificates it signs, as PEM text and files.
//! Tests of every crate that talk HTTPS to a real server take their CA from here.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// A CA's certificate and key.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM: what a client trusts (a profile's `server.ca_file`).
    pub cert_pem: String,
}

/// A server certificate (chain: the leaf) and its private key, PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where [`ServerCert::write`] put the files.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("a key pair");
        let cert_pem = params.clone().self_signed(&key).expect("a CA").pem();
        Self {
            params,
            key,
            cert_pem,
        }
    }

    /// A server certificate for `names` (host names and IP addresses), signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> ServerCert {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("a DNS name")),
            })
            .collect();
        let key = KeyPair::generate().expect("a key pair");
        let issuer = self.params.clone().self_signed(&self.key).expect("the CA");
        let cert = params
            .signed_by(&key, &issuer, &self.key)
            .expect("a server certificate");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.cert_pem).expect("CA file written");
        path.to_owned()
    }
}

impl ServerCert {
    /// Writes `<dir>/<stem>.crt` and `<dir>/<stem>.key` (replacing them: how a
    /// renewed certificate is put in place before a SIGHUP).
    pub fn write(&self, dir: &Path, stem: &str) -> CertFiles {
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, &self.cert_pem).expect("certificate written");
        std::fs::write(&files.key, &self.key_pem).expect("key written");
        files
    }
}
