//! Conversions between stored column values and the model's: counts (SQL integers are `i64`;
//! these saturate), 32-byte hashes and enums stored by name (these fail as `Corrupt`, since a
//! value the store wrote itself did not read back). Plain functions, used by every job.

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32], crate::StoreError> {
    v.try_into()
        .map_err(|_| crate::StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = String>>(
    s: &str,
) -> Result<T, crate::StoreError> {
    s.parse().map_err(crate::StoreError::Corrupt)
}
