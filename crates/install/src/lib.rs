//! Clinic Desk's installation side, without Tauri: the clinic profile and where
//! each setting comes from, provisioning (check the server, then save), the
//! connection check an installer runs, size-capped JSON log files and the
//! support bundle. The app shell and its `provision` subcommand call into here.

pub mod bundle;
pub mod check;
pub mod instance;
pub mod logfile;
pub mod paths;
pub mod profile;
pub mod provision;
pub mod setup;
pub mod store_key;

pub use check::{CheckError, Failure, check_connection};
pub use profile::{Layers, Profile, Source};
pub use provision::{ProvisionError, StoreAt, provision};
pub use setup::Setup;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the clinic profile is not valid: {0}")]
    InvalidProfile(String),
    #[error("{0}")]
    Io(String),
    #[error(
        "this device holds data of clinic {stored}; it cannot be provisioned for clinic {wanted} (install on a clean data directory, or move the old one away first)"
    )]
    OtherClinic { stored: String, wanted: String },
    #[error(transparent)]
    StoreKey(#[from] store_key::KeyError),
    #[error("the local database failed: {0}")]
    Store(#[from] clinic_store::StoreError),
}
