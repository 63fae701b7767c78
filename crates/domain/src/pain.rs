//! Pain assessment scales. The scale is stored with every score so a reassessment
//! is compared on the same scale (field notes: "store the scale with every score").

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PainScale {
    /// Numeric rating scale, any integer 0–10.
    Nrs,
    /// Wong-Baker FACES, for children and patients who cannot use numbers: 0, 2, 4, 6, 8, 10.
    WongBakerFaces,
}

impl PainScale {
    pub fn as_str(self) -> &'static str {
        match self {
            PainScale::Nrs => "nrs",
            PainScale::WongBakerFaces => "wong_baker_faces",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "nrs" => Ok(PainScale::Nrs),
            "wong_baker_faces" => Ok(PainScale::WongBakerFaces),
            other => Err(DomainError::UnknownScale(other.to_owned())),
        }
    }
}

/// The severity band used in Chinese practice: 0 none, 1–3 mild, 4–6 moderate, 7–10 severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PainBand {
    None,
    Mild,
    Moderate,
    Severe,
}

/// A score valid on its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PainScore {
    scale: PainScale,
    value: u8,
}

impl PainScore {
    pub fn new(scale: PainScale, value: i64) -> Result<Self, DomainError> {
        let valid = match scale {
            PainScale::Nrs => (0..=10).contains(&value),
            PainScale::WongBakerFaces => (0..=10).contains(&value) && value % 2 == 0,
        };
        if !valid {
            return Err(DomainError::ScoreOutOfRange {
                score: value,
                scale: scale.as_str(),
            });
        }
        Ok(Self {
            scale,
            value: value as u8,
        })
    }
    pub fn scale(self) -> PainScale {
        self.scale
    }
    pub fn value(self) -> u8 {
        self.value
    }
    pub fn band(self) -> PainBand {
        match self.value {
            0 => PainBand::None,
            1..=3 => PainBand::Mild,
            4..=6 => PainBand::Moderate,
            _ => PainBand::Severe,
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(PainScale::Nrs, 0, Some(PainBand::None))]
    #[case(PainScale::Nrs, 3, Some(PainBand::Mild))]
    #[case(PainScale::Nrs, 4, Some(PainBand::Moderate))]
    #[case(PainScale::Nrs, 7, Some(PainBand::Severe))]
    #[case(PainScale::Nrs, 10, Some(PainBand::Severe))]
    #[case(PainScale::Nrs, 11, None)]
    #[case(PainScale::Nrs, -1, None)]
    #[case(PainScale::WongBakerFaces, 6, Some(PainBand::Moderate))]
    #[case(PainScale::WongBakerFaces, 5, None)]
    #[case(PainScale::WongBakerFaces, 12, None)]
    fn scores_are_checked_against_their_scale(
        #[case] scale: PainScale,
        #[case] value: i64,
        #[case] band: Option<PainBand>,
    ) {
        assert_eq!(PainScore::new(scale, value).ok().map(PainScore::band), band);
    }

    #[rstest]
    #[case("nrs")]
    #[case("wong_baker_faces")]
    fn scale_names_round_trip(#[case] name: &str) {
        assert_eq!(PainScale::parse(name).unwrap().as_str(), name);
    }
}
