//! The exit codes the README documents, in one place.

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const PARTIAL: u8 = 3;
pub const REFUSED: u8 = 4;
pub const DIFFERENCE: u8 = 5;
