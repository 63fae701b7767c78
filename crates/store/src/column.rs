//! How typed values are stored: each as one text form, written by the type's own
//! `as_str` and read back through its own parser, so a column holds exactly what
//! the type can become and an unknown value reads as a corrupt row
//! ([`crate::StoreError::CorruptRow`]), never as a default.
//!
//! The store's own enums implement `FromSql`/`ToSql` through [`TextForm`] (with
//! `sql_text!`); the
//! domain's types (which cannot implement rusqlite's traits outside their crate)
//! go through the [`Text`] wrapper: `row.get::<_, Text<PainScale>>("scale")?.0`.

use std::borrow::Cow;

use chrono::NaiveDate;
use clinic_domain::{
    Activity, AppointmentStatus, DoctorId, PainScale, PatientId, Sex, StaffRole,
    patient::parse_date,
};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A type stored as text in exactly one form.
pub trait TextForm: Sized {
    fn to_text(&self) -> Cow<'_, str>;
    /// Why `raw` is not a value of this type, in words for the log.
    fn from_text(raw: &str) -> Result<Self, String>;
}

/// A [`TextForm`] value as a column value, read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<T>(pub T);

impl<T: TextForm> FromSql for Text<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        read(value).map(Text)
    }
}

impl<T: TextForm> ToSql for Text<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(write(&self.0))
    }
}

/// `FromSql` for a [`TextForm`] type.
pub fn read<T: TextForm>(value: ValueRef<'_>) -> FromSqlResult<T> {
    T::from_text(value.as_str()?).map_err(|why| FromSqlError::Other(why.into()))
}

/// `ToSql` for a [`TextForm`] type.
pub fn write<T: TextForm>(value: &T) -> ToSqlOutput<'_> {
    match value.to_text() {
        Cow::Borrowed(text) => ToSqlOutput::from(text),
        Cow::Owned(text) => ToSqlOutput::from(text),
    }
}

/// `FromSql` and `ToSql` for one of the store's own [`TextForm`] types.
macro_rules! sql_text {
    ($t:ty) => {
        impl rusqlite::types::FromSql for $t {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                $crate::column::read(value)
            }
        }
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok($crate::column::write(self))
            }
        }
    };
}
pub(crate) use sql_text;

/// `TextForm` for the domain's enums, each by its `as_str` and `parse`.
macro_rules! domain_enum {
    ($($t:ty),*) => {$(
        impl TextForm for $t {
            fn to_text(&self) -> Cow<'_, str> {
                Cow::Borrowed(self.as_str())
            }
            fn from_text(raw: &str) -> Result<Self, String> {
                <$t>::parse(raw).map_err(|e| e.to_string())
            }
        }
    )*};
}

domain_enum!(PainScale, Activity, Sex, AppointmentStatus, StaffRole);

impl TextForm for PatientId {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(raw: &str) -> Result<Self, String> {
        PatientId::parse(raw).map_err(|e| format!("patient id: {e}"))
    }
}

impl TextForm for DoctorId {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(raw: &str) -> Result<Self, String> {
        DoctorId::parse(raw).map_err(|e| format!("doctor id: {e}"))
    }
}

/// A calendar date, as `YYYY-MM-DD`.
impl TextForm for NaiveDate {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.format("%Y-%m-%d").to_string())
    }
    fn from_text(raw: &str) -> Result<Self, String> {
        parse_date(raw).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use rusqlite::Connection;

    use super::*;
    use crate::StoreError;

    fn round_trip<T: TextForm>(value: T) -> T {
        let conn = Connection::open_in_memory().unwrap();
        conn.query_row("SELECT ?1", [Text(value)], |r| r.get::<_, Text<T>>(0))
            .unwrap()
            .0
    }

    #[test]
    fn every_stored_domain_value_reads_back_as_written() {
        for scale in [PainScale::Nrs, PainScale::WongBakerFaces] {
            assert_eq!(round_trip(scale), scale);
        }
        for activity in [Activity::Rest, Activity::Movement] {
            assert_eq!(round_trip(activity), activity);
        }
        for sex in [Sex::Female, Sex::Male, Sex::Unknown] {
            assert_eq!(round_trip(sex), sex);
        }
        for role in [StaffRole::Doctor, StaffRole::Nurse] {
            assert_eq!(round_trip(role), role);
        }
        let date = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
        assert_eq!(round_trip(date), date);
        let id = PatientId::parse("P0001").unwrap();
        assert_eq!(round_trip(id.clone()), id);
    }

    fn read_scale(sql: &str) -> StoreError {
        let conn = Connection::open_in_memory().unwrap();
        conn.query_row(sql, [], |r| r.get::<_, Text<PainScale>>(0))
            .map(|_| ())
            .unwrap_err()
            .into()
    }

    #[rstest]
    #[case::unknown_scale("SELECT 'vas'", "unknown pain scale 'vas'")]
    #[case::empty("SELECT ''", "unknown pain scale ''")]
    fn text_its_type_cannot_become_is_a_corrupt_row(#[case] sql: &str, #[case] why: &str) {
        let err = read_scale(sql);
        assert!(
            matches!(&err, StoreError::CorruptRow(m) if m == why),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_stored_id_says_which_id_and_a_number_is_no_text_at_all() {
        let conn = Connection::open_in_memory().unwrap();
        let err: StoreError = conn
            .query_row("SELECT 'no spaces'", [], |r| r.get::<_, Text<PatientId>>(0))
            .map(|_| ())
            .unwrap_err()
            .into();
        assert!(
            matches!(&err, StoreError::CorruptRow(m) if m.starts_with("patient id: ")),
            "{err:?}"
        );
        assert!(
            matches!(
                read_scale("SELECT 7"),
                StoreError::Sqlite(rusqlite::Error::InvalidColumnType(..))
            ),
            "the column's type is wrong, not its text"
        );
    }
}
