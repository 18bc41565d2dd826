//! The sync_* tests' shared setup lives in the library, [`sluice_e2e::sync`], so benchmarks can use
//! it too; this module keeps the tests' `mod sync_support; use sync_support::*;`.

#[allow(unused_imports)]
pub use sluice_e2e::sync::*;
