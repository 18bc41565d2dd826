//! The update_* tests' shared setup lives in the library, [`sluice_e2e::updater`], so the
//! updater's benchmark can use it too; this module keeps the tests' `mod update_support;`.

#[allow(unused_imports)]
pub use sluice_e2e::updater::signing::{clone_from_server, git, keygen, verify};
#[allow(unused_imports)]
pub use sluice_e2e::updater::webhook::Receiver;
#[allow(unused_imports)]
pub use sluice_e2e::updater::*;
